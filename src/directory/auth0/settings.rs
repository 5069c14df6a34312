//! The Auth0 backend's settings: the tenant, the application, how users are found, and the
//! client secret, which only the environment or a secret file may hold.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A secret: shown as `***` by Debug, never Display-ed, only handed out by `expose`.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lookup {
    /// Find the user by `app_metadata.account_number` (Management API search).
    Search,
    /// The account number is the username: no search.
    Username,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth0Settings {
    /// Base URL, `https://tenant.auth0.com`; `http://` only for loopback (a local mock).
    pub domain: String,
    pub client_id: String,
    /// Only from IVR_AUTH0__CLIENT_SECRET; a file setting it is refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    /// Or a file holding only the secret (a Docker or Kubernetes secret mount).
    pub client_secret_file: Option<PathBuf>,
    /// The database connection (realm) the PIN is checked against.
    pub connection: String,
    /// Defaults to `{domain}/api/v2/`.
    pub audience: String,
    pub lookup: Lookup,
    pub request_timeout_ms: u64,
    /// How long a caller may wait for Auth0's rate limit to reset.
    pub patience_ms: u64,
}

impl Default for Auth0Settings {
    fn default() -> Self {
        Auth0Settings {
            domain: String::new(),
            client_id: String::new(),
            client_secret: None,
            client_secret_file: None,
            connection: "Username-Password-Authentication".into(),
            audience: String::new(),
            lookup: Lookup::Search,
            request_timeout_ms: 5000,
            patience_ms: 3000,
        }
    }
}
