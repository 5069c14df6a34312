//! The one pooled HTTPS client (reqwest on rustls with the `ring` provider) that the webhook
//! actions and the Auth0 directory share.

use std::time::Duration;

pub fn client() -> anyhow::Result<reqwest::Client> {
    // Installing twice is harmless: the first provider stays.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("ivr/", env!("CARGO_PKG_VERSION")))
        .build()?)
}
