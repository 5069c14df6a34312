//! The Auth0 HTTP contract as pure functions: how a search query is written, and what each
//! documented answer means for a caller. No I/O here, so every mapping has a unit test.

use serde::Deserialize;

use crate::directory::Amount;

/// The Lucene query for an account number. Only digits get here (checked before), and the value
/// is always quoted, so nothing a caller keys can change the query's meaning.
pub fn account_query(account: &str) -> Option<String> {
    super::super::valid_account(account)
        .then(|| format!("app_metadata.account_number:\"{account}\""))
}

/// Both Auth0 error shapes: the authentication API's `{error, error_description}` and the
/// Management API's `{statusCode, error, message, errorCode}`.
#[derive(Debug, Default, Deserialize)]
pub struct ErrorBody {
    pub error: Option<String>,
    pub error_description: Option<String>,
    #[serde(rename = "errorCode")]
    pub error_code: Option<String>,
    pub message: Option<String>,
}

impl ErrorBody {
    pub fn parse(body: &str) -> ErrorBody {
        serde_json::from_str(body).unwrap_or_default()
    }

    /// A short description for logs (never holds credentials: Auth0 does not echo them).
    pub fn summary(&self) -> String {
        let code = self
            .error_code
            .as_deref()
            .or(self.error.as_deref())
            .unwrap_or("?");
        let text = self
            .error_description
            .as_deref()
            .or(self.message.as_deref())
            .unwrap_or("");
        format!("{code}: {text}")
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum LoginOutcome {
    Success,
    WrongCredentials,
    /// Auth0's brute-force protection blocked the user: a block, never retried.
    TooManyAttempts,
    /// The user is blocked by an administrator.
    UserBlocked,
    /// Waiting until this UTC epoch second may help.
    RateLimited {
        reset: Option<u64>,
    },
    /// The tenant, not the caller, is at fault: MFA required, grant not enabled, server errors.
    Unavailable(String),
}

/// What the password-realm grant's answer means.
pub fn classify_login(status: u16, body: &str, rate_limit_reset: Option<&str>) -> LoginOutcome {
    if (200..300).contains(&status) {
        return LoginOutcome::Success;
    }
    let error = ErrorBody::parse(body);
    let code = error.error.as_deref().unwrap_or("");
    match (status, code) {
        (403, "invalid_grant") => LoginOutcome::WrongCredentials,
        (429, "too_many_attempts") => LoginOutcome::TooManyAttempts,
        (429, _) => LoginOutcome::RateLimited {
            reset: rate_limit_reset.and_then(|r| r.trim().parse().ok()),
        },
        (401, _) if error.summary().to_ascii_lowercase().contains("blocked") => {
            LoginOutcome::UserBlocked
        }
        (403, "mfa_required") => LoginOutcome::Unavailable(
            "MFA is required for this user: PIN login cannot pass it".into(),
        ),
        (403, "unauthorized_client") => LoginOutcome::Unavailable(
            "the password-realm grant is not enabled for this application".into(),
        ),
        _ => LoginOutcome::Unavailable(format!("login answered {status} ({})", error.summary())),
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum ManagementOutcome {
    Success,
    /// The token expired or was revoked: renew it once and retry.
    Unauthorized,
    RateLimited {
        reset: Option<u64>,
    },
    Unavailable(String),
}

pub fn classify_management(
    status: u16,
    body: &str,
    rate_limit_reset: Option<&str>,
) -> ManagementOutcome {
    match status {
        200..=299 => ManagementOutcome::Success,
        401 => ManagementOutcome::Unauthorized,
        429 => ManagementOutcome::RateLimited {
            reset: rate_limit_reset.and_then(|r| r.trim().parse().ok()),
        },
        _ => ManagementOutcome::Unavailable(format!(
            "management API answered {status} ({})",
            ErrorBody::parse(body).summary()
        )),
    }
}

#[derive(Debug, Deserialize)]
pub struct TokenReply {
    pub access_token: String,
    #[serde(default = "default_expiry")]
    pub expires_in: u64,
}

fn default_expiry() -> u64 {
    86400
}

#[derive(Debug, Deserialize)]
pub struct FoundUser {
    pub user_id: String,
    pub email: Option<String>,
    pub username: Option<String>,
    #[serde(default)]
    pub blocked: bool,
    #[serde(default)]
    pub app_metadata: serde_json::Value,
}

impl FoundUser {
    /// The balance, whether stored as a string or a number; `None` when it is not an amount.
    pub fn balance(&self) -> Option<Amount> {
        self.balance_text()?.parse().ok()
    }

    /// `app_metadata.ivr_greeting`: the name the seed's IVR says after "Welcome".
    pub fn greeting_text(&self) -> Option<String> {
        match self.app_metadata.get("ivr_greeting")? {
            serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
            _ => None,
        }
    }

    fn balance_text(&self) -> Option<String> {
        match self.app_metadata.get("balance")? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_take_digits_only_and_always_quote() {
        assert_eq!(
            account_query("12345").as_deref(),
            Some("app_metadata.account_number:\"12345\"")
        );
        for hostile in [
            "",
            "12345678901",
            "1*",
            "1 OR 1",
            "1\" OR app_metadata.x:\"",
            "１２",
            "1\\",
            "12)",
        ] {
            assert_eq!(account_query(hostile), None, "{hostile:?}");
        }
    }

    #[test]
    fn every_documented_login_answer_has_its_meaning() {
        let body = |e: &str, d: &str| format!(r#"{{"error":"{e}","error_description":"{d}"}}"#);
        assert_eq!(
            classify_login(200, r#"{"access_token":"x"}"#, None),
            LoginOutcome::Success
        );
        assert_eq!(
            classify_login(
                403,
                &body("invalid_grant", "Wrong email or password."),
                None
            ),
            LoginOutcome::WrongCredentials
        );
        assert_eq!(
            classify_login(429, &body("too_many_attempts", "blocked"), Some("99")),
            LoginOutcome::TooManyAttempts
        );
        assert_eq!(
            classify_login(
                429,
                &body("too_many_requests", "slow down"),
                Some("1700000000")
            ),
            LoginOutcome::RateLimited {
                reset: Some(1_700_000_000)
            }
        );
        assert_eq!(
            classify_login(401, &body("unauthorized", "user is blocked"), None),
            LoginOutcome::UserBlocked
        );
        assert!(
            matches!(classify_login(403, &body("mfa_required", "x"), None), LoginOutcome::Unavailable(m) if m.contains("MFA"))
        );
        assert!(
            matches!(classify_login(403, &body("unauthorized_client", "x"), None), LoginOutcome::Unavailable(m) if m.contains("grant"))
        );
        assert!(matches!(
            classify_login(500, &body("server_error", "x"), None),
            LoginOutcome::Unavailable(_)
        ));
        assert!(matches!(
            classify_login(503, "<html>bad gateway</html>", None),
            LoginOutcome::Unavailable(_)
        ));
        assert!(matches!(
            classify_login(401, &body("access_denied", "Unauthorized"), None),
            LoginOutcome::Unavailable(_)
        ));
    }

    #[test]
    fn management_answers_renew_wait_or_give_up() {
        let body = r#"{"statusCode":403,"error":"Forbidden","message":"Insufficient scope, expected any of: read:users","errorCode":"insufficient_scope"}"#;
        assert_eq!(
            classify_management(200, "[]", None),
            ManagementOutcome::Success
        );
        assert_eq!(
            classify_management(401, "{}", None),
            ManagementOutcome::Unauthorized
        );
        assert_eq!(
            classify_management(429, "{}", Some("12")),
            ManagementOutcome::RateLimited { reset: Some(12) }
        );
        assert!(
            matches!(classify_management(403, body, None), ManagementOutcome::Unavailable(m) if m.contains("insufficient_scope"))
        );
        assert!(matches!(
            classify_management(503, "", None),
            ManagementOutcome::Unavailable(_)
        ));
    }

    #[test]
    fn balances_are_read_as_strings_or_numbers() {
        let user = |meta: &str| FoundUser {
            user_id: "u".into(),
            email: None,
            username: None,
            blocked: false,
            app_metadata: serde_json::from_str(meta).unwrap(),
        };
        let said = |meta: &str| user(meta).balance().map(|b| b.to_string());
        assert_eq!(said(r#"{"balance":"12.50"}"#).as_deref(), Some("12.50"));
        assert_eq!(said(r#"{"balance":12.5}"#).as_deref(), Some("12.50"));
        assert_eq!(said(r#"{"balance":"lots"}"#), None);
        assert_eq!(user(r#"{}"#).balance(), None);
    }
}
