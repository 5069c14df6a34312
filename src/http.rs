//! The one pooled HTTPS client (reqwest on rustls with the `ring` provider) that the webhook
//! actions and the Auth0 directory share. It follows no redirect: a 307 would re-POST a call's
//! details (or a token request) to wherever the answer points, our own `/reload` included.

use std::time::Duration;

pub fn client() -> anyhow::Result<reqwest::Client> {
    // Installing twice is harmless: the first provider stays.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("ivr/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// A reply's body, refused once it passes `cap` bytes (an app's runaway answer would otherwise
/// be held whole in memory).
pub async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, String> {
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err(format!("reply larger than {cap} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > cap {
            return Err(format!("reply larger than {cap} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Whether `url` may carry a call's details: https, or plain http to this machine only (an app
/// beside the IVR). Anything else would send them readable across a network.
pub fn url_allowed(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_plain_http_to_this_machine_is_allowed() {
        for ok in [
            "https://api.example.com/ivr",
            "http://127.0.0.1:8080/ivr",
            "http://127.9.9.9/ivr",
            "http://localhost/ivr",
            "http://[::1]:9000/ivr",
        ] {
            assert!(url_allowed(ok), "{ok}");
        }
        for refused in [
            "http://api.example.com/ivr",
            "http://10.0.0.5/ivr",
            "http://127.0.0.1.evil.example/ivr",
            "http://[2001:db8::1]/ivr",
            "ftp://127.0.0.1/ivr",
            "http://user@localhost.evil.example/ivr",
        ] {
            assert!(!url_allowed(refused), "{refused}");
        }
    }
}
