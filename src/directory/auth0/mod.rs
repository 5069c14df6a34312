//! The Auth0 backend: find the caller by account number (Management API search, or the account
//! number as username), then check the PIN with the password-realm grant. One pooled client,
//! one cached Management token, and every documented answer mapped to what the caller hears.
//! PINs, the client secret and tokens are never logged.

pub mod protocol;
pub mod settings;
pub mod token;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::directory::Masked;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use tokio::time::Instant;

use self::protocol::{
    account_query, classify_login, classify_management, FoundUser, LoginOutcome, ManagementOutcome,
    TokenReply,
};
use self::token::TokenCache;
use super::{valid_account, valid_pin, Directory, User, Verification, VerifyFuture};
use settings::{Auth0Settings, Lookup, Secret};

const PASSWORD_REALM: &str = "http://auth0.com/oauth/grant-type/password-realm";

pub struct Auth0Directory {
    http: reqwest::Client,
    base: String,
    client_id: String,
    client_secret: Secret,
    connection: String,
    audience: String,
    lookup: Lookup,
    request_timeout: Duration,
    patience: Duration,
    token: TokenCache,
    /// How long a failed login takes, so an unknown account answers no faster.
    failed_login: Mutex<Duration>,
    /// The last login got an answer from Auth0 (not an outage).
    answered: AtomicBool,
}

enum Found {
    User(String, FoundUser),
    Nobody,
}

impl Auth0Directory {
    pub fn new(
        http: reqwest::Client,
        settings: &Auth0Settings,
        client_secret: Secret,
    ) -> Auth0Directory {
        let base = settings.domain.trim_end_matches('/').to_string();
        let audience = if settings.audience.is_empty() {
            format!("{base}/api/v2/")
        } else {
            settings.audience.clone()
        };
        Auth0Directory {
            http,
            client_id: settings.client_id.clone(),
            client_secret,
            connection: settings.connection.clone(),
            audience,
            lookup: settings.lookup,
            request_timeout: Duration::from_millis(settings.request_timeout_ms),
            patience: Duration::from_millis(settings.patience_ms),
            token: TokenCache::default(),
            answered: AtomicBool::new(true),
            failed_login: Mutex::new(Duration::from_millis(300)),
            base,
        }
    }

    async fn fetch_token(&self, deadline: Instant) -> Result<(String, Duration), String> {
        let body = serde_json::json!({
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret.expose(),
            "audience": self.audience,
        });
        let (status, text) = loop {
            let request = self
                .http
                .post(format!("{}/oauth/token", self.base))
                .timeout(self.request_timeout)
                .json(&body);
            let (status, reset, text) = exchange(request, "token request").await?;
            if let ManagementOutcome::RateLimited { reset } =
                classify_management(status, &text, reset.as_deref())
            {
                if wait_for_reset(reset, deadline).await {
                    continue;
                }
            }
            break (status, text);
        };
        if status != 200 {
            return Err(format!(
                "token request answered {status} ({})",
                protocol::ErrorBody::parse(&text).summary()
            ));
        }
        let reply: TokenReply = serde_json::from_str(&text)
            .map_err(|_| "token reply is not the documented JSON".to_string())?;
        tracing::debug!(expires_in = reply.expires_in, "management token fetched");
        Ok((reply.access_token, Duration::from_secs(reply.expires_in)))
    }

    /// Searches the account number; several matches are an operator's mistake, never a guess.
    async fn find(&self, account: &str, deadline: Instant) -> Result<Found, String> {
        let query = account_query(account).ok_or("account number is not 1-10 digits")?;
        let mut renewed = false;
        loop {
            let token = self.token.get(|| self.fetch_token(deadline)).await?;
            let request = self
                .http
                .get(format!("{}/api/v2/users", self.base))
                .query(&[
                    ("q", query.as_str()),
                    ("search_engine", "v3"),
                    ("fields", "user_id,email,username,app_metadata,blocked"),
                    ("include_fields", "true"),
                    ("per_page", "2"),
                ])
                .bearer_auth(&token)
                .timeout(self.request_timeout);
            let (status, reset, text) = exchange(request, "user search").await?;
            match classify_management(status, &text, reset.as_deref()) {
                ManagementOutcome::Success => {
                    let mut users: Vec<FoundUser> = serde_json::from_str(&text).map_err(|_| {
                        "user search reply is not a JSON array of users".to_string()
                    })?;
                    return match users.len() {
                        0 => Ok(Found::Nobody),
                        1 => {
                            let user = users.remove(0);
                            let login = user
                                .email
                                .clone()
                                .or_else(|| user.username.clone())
                                .ok_or("the user has no email or username")?;
                            Ok(Found::User(login, user))
                        }
                        n => {
                            tracing::error!(account = %Masked(account), matches = n, "OPERATOR: several Auth0 users have this account number; refusing to guess");
                            Err("account number is not unique".into())
                        }
                    };
                }
                ManagementOutcome::Unauthorized if !renewed => {
                    tracing::info!("management token refused, renewing once");
                    self.token.invalidate(&token);
                    renewed = true;
                }
                ManagementOutcome::RateLimited { reset }
                    if wait_for_reset(reset, deadline).await => {}
                ManagementOutcome::RateLimited { .. } => {
                    return Err("management API rate limit outlasts the caller's patience".into())
                }
                ManagementOutcome::Unauthorized => {
                    return Err("management token refused twice".into())
                }
                ManagementOutcome::Unavailable(why) => return Err(why),
            }
        }
    }

    async fn login(&self, username: &str, pin: &str, deadline: Instant) -> LoginOutcome {
        loop {
            let form = [
                ("grant_type", PASSWORD_REALM),
                ("realm", &self.connection),
                ("username", username),
                ("password", pin),
                ("client_id", &self.client_id),
                ("client_secret", self.client_secret.expose()),
                ("scope", "openid"),
            ];
            let request = self
                .http
                .post(format!("{}/oauth/token", self.base))
                .timeout(self.request_timeout)
                .form(&form);
            let (status, reset, text) = match exchange(request, "login request").await {
                Ok(answer) => answer,
                Err(why) => return LoginOutcome::Unavailable(why),
            };
            match classify_login(status, &text, reset.as_deref()) {
                LoginOutcome::RateLimited { reset } if wait_for_reset(reset, deadline).await => {
                    continue
                }
                LoginOutcome::RateLimited { .. } => {
                    return LoginOutcome::Unavailable(
                        "login rate limit outlasts the caller's patience".into(),
                    )
                }
                outcome => return outcome,
            }
        }
    }

    async fn verify_inner(&self, account: &str, pin: &str) -> Verification {
        if !valid_account(account) || !valid_pin(pin) {
            return Verification::WrongCredentials;
        }
        let deadline = Instant::now() + self.patience;
        let (login, found) = match self.lookup {
            Lookup::Username => (account.to_string(), None),
            Lookup::Search => match self.find(account, deadline).await {
                Ok(Found::User(login, user)) => (login, Some(user)),
                Ok(Found::Nobody) => {
                    // As slow as a wrong PIN, so callers cannot learn which accounts exist.
                    let delay = self.failed_login.lock().map(|d| *d).unwrap_or_default();
                    tokio::time::sleep(delay).await;
                    return Verification::WrongCredentials;
                }
                Err(why) => return Verification::Unavailable(why),
            },
        };
        if found.as_ref().is_some_and(|u| u.blocked) {
            return Verification::Locked;
        }
        let started = Instant::now();
        match self.login(&login, pin, deadline).await {
            LoginOutcome::Success => Verification::Verified(User {
                user_id: found
                    .as_ref()
                    .map_or_else(|| format!("auth0|{account}"), |u| u.user_id.clone()),
                greeting: Some(format!("greetings/{account}")),
                balance: found.as_ref().and_then(FoundUser::balance),
                greeting_text: found.as_ref().and_then(FoundUser::greeting_text),
            }),
            LoginOutcome::WrongCredentials => {
                if let Ok(mut d) = self.failed_login.lock() {
                    *d = (*d * 3 + started.elapsed()) / 4;
                }
                Verification::WrongCredentials
            }
            LoginOutcome::TooManyAttempts | LoginOutcome::UserBlocked => Verification::Locked,
            LoginOutcome::RateLimited { .. } => Verification::Unavailable("rate limited".into()),
            LoginOutcome::Unavailable(why) => Verification::Unavailable(why),
        }
    }
}

impl Directory for Auth0Directory {
    fn verify<'a>(&'a self, account: &'a str, pin: &'a str, _caller: &'a str) -> VerifyFuture<'a> {
        Box::pin(async move {
            let verification = self.verify_inner(account, pin).await;
            let answered = !matches!(verification, Verification::Unavailable(_));
            self.answered.store(answered, Ordering::Relaxed);
            verification
        })
    }

    fn reachable(&self) -> bool {
        self.answered.load(Ordering::Relaxed)
    }
}

/// Sends a request and reads its status, its rate-limit reset and its body. The error never
/// holds the URL (the search query) nor anything the request carried.
async fn exchange(
    request: reqwest::RequestBuilder,
    what: &str,
) -> Result<(u16, Option<String>, String), String> {
    let response = request
        .send()
        .await
        .map_err(|e| format!("{what} failed: {}", e.without_url()))?;
    let status = response.status().as_u16();
    let reset = response
        .headers()
        .get("x-ratelimit-reset")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = response
        .text()
        .await
        .map_err(|e| format!("{what}: reply unreadable: {}", e.without_url()))?;
    Ok((status, reset, text))
}

/// Sleeps until Auth0's rate-limit window resets (plus jitter, so waiting calls do not all come
/// back at once), if that fits before `deadline`. False when it does not.
async fn wait_for_reset(reset: Option<u64>, deadline: Instant) -> bool {
    let now_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let until_reset = reset.map_or(1.0, |r| (r as f64 - now_epoch).max(0.0));
    let jitter = rand::thread_rng().gen_range(0.0..0.25);
    let wait = Duration::from_secs_f64(until_reset + jitter);
    if Instant::now() + wait > deadline {
        return false;
    }
    tracing::info!(
        wait_ms = wait.as_millis() as u64,
        "Auth0 rate limit: waiting for the reset"
    );
    tokio::time::sleep(wait).await;
    true
}
