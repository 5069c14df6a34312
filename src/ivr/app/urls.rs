//! Where an application may send the call next. An `action` or `redirect` URL (relative ones
//! resolved against the endpoint's) must stay on the endpoint's own origin, or go to a host the
//! settings allow, and never to a loopback, private or link-local address the settings did not
//! name: an app cannot turn the IVR into a way into the operator's network.

use std::net::IpAddr;

use reqwest::Url;

/// The URL `candidate` names, resolved against `endpoint`, or why it may not be fetched.
pub fn resolve(endpoint: &str, candidate: &str, allowed_hosts: &[String]) -> Result<Url, String> {
    let base = Url::parse(endpoint).map_err(|e| format!("endpoint url: {e}"))?;
    let url = base
        .join(candidate)
        .map_err(|e| format!("{candidate:?} is not a URL: {e}"))?;
    if !crate::http::url_allowed(url.as_str()) {
        return Err(format!("{url}: https only (http only to this machine)"));
    }
    let same_origin = url.origin() == base.origin();
    if same_origin {
        return Ok(url);
    }
    let host = url.host_str().unwrap_or_default();
    if !allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
        return Err(format!(
            "{host}: not the endpoint's host, nor in its allowed hosts"
        ));
    }
    if let Some(ip) = literal_ip(host).filter(|ip| inward(*ip)) {
        return Err(format!("{ip}: a loopback, private or link-local address"));
    }
    Ok(url)
}

fn literal_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Loopback, private (RFC 1918, RFC 4193), link-local, unspecified or CGNAT.
pub fn inward(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || v6.to_ipv4_mapped().is_some_and(|v4| inward(IpAddr::V4(v4)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "https://app.example.com/ivr/start";

    #[test]
    fn relative_and_same_origin_urls_resolve() {
        assert_eq!(
            resolve(APP, "/ivr/pin", &[]).unwrap().as_str(),
            "https://app.example.com/ivr/pin"
        );
        assert_eq!(
            resolve(APP, "next", &[]).unwrap().as_str(),
            "https://app.example.com/ivr/next"
        );
        let local = "http://127.0.0.1:8080/app";
        assert_eq!(
            resolve(local, "/gather", &[]).unwrap().as_str(),
            "http://127.0.0.1:8080/gather"
        );
    }

    #[test]
    fn another_host_needs_the_settings_and_never_reaches_inward() {
        assert!(resolve(APP, "https://evil.example.net/x", &[]).is_err());
        let allowed = vec!["api.example.org".to_string(), "10.0.0.5".to_string()];
        assert!(resolve(APP, "https://api.example.org/x", &allowed).is_ok());
        assert!(
            resolve(APP, "http://api.example.org/x", &allowed).is_err(),
            "plain http"
        );
        assert!(
            resolve(APP, "https://10.0.0.5/x", &allowed).is_err(),
            "private"
        );
        assert!(resolve("http://127.0.0.1:8080/app", "http://127.0.0.2:9000/x", &[]).is_err());
        assert!(resolve(APP, "file:///etc/passwd", &[]).is_err());
        assert!(
            resolve(APP, "http://localhost:9090/reload", &[]).is_err(),
            "another origin"
        );
    }

    #[test]
    fn inward_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(inward(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["203.0.113.5", "8.8.8.8", "2001:db8::1", "100.128.0.1"] {
            assert!(!inward(ip.parse().unwrap()), "{ip}");
        }
    }
}
