//! `[[sip.users]]`: softphones that may call (and register) with digest credentials. A
//! password never sits in the config file: an HA1 does, or the password comes from an
//! environment variable or a secret file named here.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::SipSettings;
use crate::sip::auth::{AuthSettings, SipUser, ThrottlePolicy};
use crate::sip::digest::Algorithm;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipUserSettings {
    pub username: String,
    /// Hex MD5 of `username:realm:password` (what `htdigest` and Kamailio's `ha1` hold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha1: Option<String>,
    /// Hex SHA-256 of the same, for clients that answer SHA-256 challenges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha1_sha256: Option<String>,
    /// The environment variable that holds the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Present only to be refused with a clear message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

fn username_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.+!~*'()".contains(c))
}

fn hex_of_len(text: &str, len: usize) -> bool {
    text.len() == len && text.chars().all(|c| c.is_ascii_hexdigit())
}

impl SipUserSettings {
    fn user(&self, realm: &str) -> Result<SipUser> {
        let name = &self.username;
        if !username_ok(name) {
            bail!("sip.users: {name:?} is not a usable username (letters, digits, -_.+!~*'(), at most 64)");
        }
        if self.password.is_some() {
            bail!("sip.users {name}: a password must not be in the config file; set ha1, password_env or password_file");
        }
        let secrets = [
            self.ha1.is_some() || self.ha1_sha256.is_some(),
            self.password_env.is_some(),
            self.password_file.is_some(),
        ];
        if secrets.iter().filter(|s| **s).count() != 1 {
            bail!("sip.users {name}: set exactly one of ha1 (and/or ha1_sha256), password_env, password_file");
        }
        if let Some(var) = &self.password_env {
            let password = std::env::var(var).with_context(|| {
                format!("sip.users {name}: environment variable {var} is not set")
            })?;
            return password_user(name, realm, &password);
        }
        if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("sip.users {name}: password_file {}", path.display()))?;
            return password_user(name, realm, text.trim_end_matches(['\r', '\n']));
        }
        let checked = |value: &Option<String>, len, what| -> Result<Option<String>> {
            match value {
                Some(v) if hex_of_len(v, len) => Ok(Some(v.to_ascii_lowercase())),
                Some(_) => bail!("sip.users {name}: {what} must be {len} hex digits"),
                None => Ok(None),
            }
        };
        Ok(SipUser {
            username: name.clone(),
            ha1_md5: checked(&self.ha1, 32, "ha1")?,
            ha1_sha256: checked(&self.ha1_sha256, 64, "ha1_sha256")?,
        })
    }
}

fn password_user(name: &str, realm: &str, password: &str) -> Result<SipUser> {
    if password.is_empty() {
        bail!("sip.users {name}: the password is empty");
    }
    Ok(SipUser::with_password(name, realm, password))
}

impl SipSettings {
    /// The softphone users with their secrets loaded; `None` when there are none.
    pub fn auth_settings(&self) -> Result<Option<AuthSettings>> {
        if self.users.is_empty() {
            return Ok(None);
        }
        if self.realm.is_empty() || self.realm.contains(['"', '\\']) {
            bail!("sip.realm must be non-empty and hold no quote or backslash");
        }
        if self.auth_max_failures == 0 || self.auth_lock_s == 0 {
            bail!("sip.auth_max_failures and sip.auth_lock_s must be > 0");
        }
        let users = self
            .users
            .iter()
            .map(|u| u.user(&self.realm))
            .collect::<Result<Vec<_>>>()?;
        let mut names: Vec<&str> = users.iter().map(|u| u.username.as_str()).collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|w| w[0] == w[1]) {
            bail!("sip.users: {} appears twice", pair[0]);
        }
        let algorithms = self
            .digest_algorithms
            .iter()
            .map(|name| match Algorithm::parse(name) {
                Some(a @ (Algorithm::Md5 | Algorithm::Sha256)) => Ok(a),
                _ => bail!("sip.digest_algorithms: {name:?} is not MD5 or SHA-256"),
            })
            .collect::<Result<Vec<_>>>()?;
        if algorithms.is_empty() {
            bail!("sip.digest_algorithms must name at least one of MD5, SHA-256");
        }
        Ok(Some(AuthSettings {
            realm: self.realm.clone(),
            algorithms,
            users,
            nonce_lifetime: Duration::from_secs(NONCE_LIFETIME_S),
            throttle: ThrottlePolicy {
                max_failures: self.auth_max_failures,
                lock_for: Duration::from_secs(self.auth_lock_s),
            },
        }))
    }
}

/// How long a nonce may be answered; a refresh after it gets `stale=true` and a new one.
const NONCE_LIFETIME_S: u64 = 300;

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(users: Vec<SipUserSettings>) -> SipSettings {
        SipSettings {
            users,
            ..SipSettings::default()
        }
    }

    fn user(name: &str) -> SipUserSettings {
        SipUserSettings {
            username: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn secrets_come_from_a_hash_the_environment_or_a_file_never_the_config() {
        assert!(settings(vec![]).auth_settings().unwrap().is_none());
        let ha1 = SipUserSettings {
            ha1: Some("0123456789ABCDEF0123456789abcdef".into()),
            ..user("alice")
        };
        let auth = settings(vec![ha1.clone()])
            .auth_settings()
            .unwrap()
            .unwrap();
        assert_eq!(
            auth.users[0].ha1_md5.as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        std::env::set_var("TEST_SIP_USER_PW", "s3cret");
        let env = SipUserSettings {
            password_env: Some("TEST_SIP_USER_PW".into()),
            ..user("bob")
        };
        let auth = settings(vec![env]).auth_settings().unwrap().unwrap();
        assert_eq!(
            auth.users[0],
            SipUser::with_password("bob", "ivr", "s3cret")
        );
        let refused = [
            SipUserSettings {
                password: Some("plain".into()),
                ..user("carol")
            },
            user("dave"),
            SipUserSettings {
                ha1: Some("abc".into()),
                ..user("erin")
            },
            SipUserSettings {
                ha1: ha1.ha1.clone(),
                password_env: Some("TEST_SIP_USER_PW".into()),
                ..user("frank")
            },
            SipUserSettings {
                password_env: Some("TEST_SIP_USER_UNSET".into()),
                ..user("gina")
            },
            SipUserSettings {
                ha1: ha1.ha1.clone(),
                ..user("bad\"name")
            },
        ];
        for bad in refused {
            let name = bad.username.clone();
            assert!(settings(vec![bad]).auth_settings().is_err(), "{name}");
        }
        assert!(
            settings(vec![ha1.clone(), ha1]).auth_settings().is_err(),
            "twice"
        );
    }
}
