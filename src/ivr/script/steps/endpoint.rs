//! An http step's request to the operator's API: JSON, signed with the endpoint's secret
//! (`X-IVR-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, the scheme
//! Stripe and Twilio users know), with an `Idempotency-Key` so a retried request is recorded
//! once, no redirect followed and the reply capped.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::stand_in::StandIn;
use crate::metrics::{EndpointLabel, METRICS};

/// The largest reply read.
pub const MAX_REPLY: usize = 64 * 1024;
/// How a failure to connect begins: nothing was sent, so sending again is safe.
pub const NOT_CONNECTED: &str = "could not connect";

/// A named API from the settings (`[endpoints.<name>]`).
#[derive(Clone)]
pub struct Endpoint {
    /// Its name in the settings, for metrics.
    pub name: String,
    pub url: String,
    pub secret: Vec<u8>,
    /// Hosts besides the endpoint's own that an application's `action` and `redirect` URLs may
    /// name.
    pub allowed_hosts: Vec<String>,
    /// Where a remote step's request goes when the application cannot answer it.
    pub fallback_url: Option<String>,
    /// What a remote step speaks with it.
    pub dialect: Dialect,
    /// Where the calls a remote step hands it are reported as they go.
    pub status_url: Option<String>,
    /// An application trusted with the digits of its secret gathers (https only).
    pub receive_secrets: bool,
    /// Canned replies instead of the network (simulation and flow tests).
    pub stand_in: Option<Arc<StandIn>>,
}

/// An application's language: our JSON verbs, or Twilio's TwiML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    #[default]
    Json,
    Twiml,
}

impl Endpoint {
    /// An endpoint speaking JSON at `url`, with nothing else configured.
    pub fn new(url: String, secret: Vec<u8>) -> Endpoint {
        Endpoint {
            name: String::new(),
            url,
            secret,
            allowed_hosts: Vec::new(),
            fallback_url: None,
            dialect: Dialect::Json,
            status_url: None,
            receive_secrets: false,
            stand_in: None,
        }
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("secret", &"***")
            .finish()
    }
}

/// How the API answered.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// The JSON of a 2xx reply (`Null` for an empty one).
    pub json: serde_json::Value,
}

/// `t=…,v1=…` for `body` sent at `unix_seconds`.
pub fn signature(secret: &[u8], unix_seconds: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(unix_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={unix_seconds},v1={hex}")
}

/// A request ready to send: its content type, its signature header and its body.
pub struct Outgoing {
    pub content_type: &'static str,
    pub signature: (&'static str, String),
    pub body: Vec<u8>,
}

/// `body` as JSON, signed now with `X-IVR-Signature`.
pub fn signed_json(secret: &[u8], body: Vec<u8>) -> Outgoing {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Outgoing {
        content_type: "application/json",
        signature: ("X-IVR-Signature", signature(secret, now, &body)),
        body,
    }
}

/// Sends `body` as JSON, signed with `X-IVR-Signature`, and reads the answer: `Err` for no
/// answer in time, a refused or unreadable reply (an http step's `failed` exit).
pub async fn send(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    method: &str,
    body: Vec<u8>,
    idempotency_key: &str,
    timeout: Duration,
) -> Result<Reply, String> {
    let outgoing = signed_json(&endpoint.secret, body);
    let url = &endpoint.url;
    let asked = (method, idempotency_key, timeout);
    let (status, bytes) = deliver(http, endpoint, url, outgoing, asked).await?;
    if !(200..300).contains(&status) {
        return Ok(Reply {
            status,
            json: serde_json::Value::Null,
        });
    }
    let json = if bytes.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).map_err(|e| format!("reply is not JSON: {e}"))?
    };
    Ok(Reply { status, json })
}

/// Sends `outgoing` to `url` on `endpoint`'s behalf (or has its stand-in answer), as `post`
/// does, and counts the request in the endpoint's metrics.
pub async fn deliver(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    url: &str,
    outgoing: Outgoing,
    (method, idempotency_key, timeout): (&str, &str, Duration),
) -> Result<(u16, Vec<u8>), String> {
    let started = std::time::Instant::now();
    let answer = match &endpoint.stand_in {
        Some(stand_in) => Ok(stand_in.answer(outgoing.content_type, &outgoing.body)),
        None => post(http, url, method, outgoing, idempotency_key, timeout).await,
    };
    let outcome = match &answer {
        Ok((200..=299, _)) => "ok",
        Ok((400..=499, _)) => "rejected",
        _ => "failed",
    };
    let label = EndpointLabel {
        endpoint: endpoint.name.clone(),
        outcome,
    };
    METRICS.endpoint_requests.get_or_create(&label).inc();
    let took = started.elapsed();
    METRICS.endpoint_seconds.observe(took.as_secs_f64());
    answer
}

/// Sends `outgoing` to `url` and reads a 2xx reply's body (capped); other statuses come back
/// with no body.
pub async fn post(
    http: &reqwest::Client,
    url: &str,
    method: &str,
    outgoing: Outgoing,
    idempotency_key: &str,
    timeout: Duration,
) -> Result<(u16, Vec<u8>), String> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let (name, value) = outgoing.signature;
    let response = http
        .request(method, url)
        .timeout(timeout)
        .header("Content-Type", outgoing.content_type)
        .header(name, value)
        .header("Idempotency-Key", idempotency_key)
        .body(outgoing.body)
        .send()
        .await
        .map_err(|e| {
            let prefix = if e.is_connect() {
                NOT_CONNECTED
            } else {
                "request failed"
            };
            format!("{prefix}: {}", without_url(&e))
        })?;
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        return Ok((status, Vec::new()));
    }
    let bytes = tokio::time::timeout(timeout, crate::http::read_capped(response, MAX_REPLY))
        .await
        .map_err(|_| "reply not read in time".to_string())?
        .map_err(|e| format!("reply refused: {e}"))?;
    Ok((status, bytes))
}

/// reqwest's error without the URL (it may carry a token in its query).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<endpoint>");
    }
    if e.is_timeout() {
        "timed out".into()
    } else {
        text
    }
}

/// A value from a JSON reply as a variable's text: strings as they are, numbers and booleans
/// written out, anything else (objects, arrays, null) as nothing.
pub fn as_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_time_dot_body() {
        // Python: hmac.new(b"k", b'1700000000.{"cow":"12345"}', hashlib.sha256).hexdigest()
        let a = signature(b"k", 1700000000, b"{\"cow\":\"12345\"}");
        assert_eq!(
            a,
            "t=1700000000,v1=b47e6cef39e7e26d4c5dae89dbcb47f16e427d35258f212217de0736636a05b3"
        );
        let b = signature(b"k", 1700000000, b"{\"cow\":\"12346\"}");
        assert_ne!(a, b);
        let endpoint = Endpoint::new("https://x".into(), b"s3cret".to_vec());
        assert!(!format!("{endpoint:?}").contains("s3cret"));
    }

    #[test]
    fn reply_values_become_text() {
        let v: serde_json::Value = serde_json::json!({"m": "ok", "n": 42, "b": true, "o": {}});
        assert_eq!(as_text(&v["m"]).as_deref(), Some("ok"));
        assert_eq!(as_text(&v["n"]).as_deref(), Some("42"));
        assert_eq!(as_text(&v["b"]).as_deref(), Some("true"));
        assert_eq!(as_text(&v["o"]), None);
    }
}
