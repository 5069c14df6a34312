//! One request to an application and its answer, in the endpoint's dialect: JSON posted and
//! verbs read back, or Twilio's form parameters posted and TwiML read back.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::twiml;
use super::verbs::{self, Verb};
use crate::ivr::script::steps::endpoint::{signed_json, Dialect, Endpoint, Outgoing};

/// `event` (the JSON request: `event`, `call`, `vars` and the result's fields) as `endpoint`'s
/// dialect sends it to `url`.
pub fn encode(endpoint: &Endpoint, url: &str, event: &Value) -> Outgoing {
    match endpoint.dialect {
        Dialect::Json => signed_json(
            &endpoint.secret,
            serde_json::to_vec(event).unwrap_or_default(),
        ),
        Dialect::Twiml => {
            let params = twilio_params(endpoint, event);
            Outgoing {
                content_type: "application/x-www-form-urlencoded",
                signature: (
                    "X-Twilio-Signature",
                    twiml::signature(&endpoint.secret, url, &params),
                ),
                body: twiml::form(&params).into_bytes(),
            }
        }
    }
}

/// The verbs in a 2xx reply from `url`.
pub fn decode(endpoint: &Endpoint, url: &str, body: &[u8]) -> Result<Vec<Verb>, String> {
    match endpoint.dialect {
        Dialect::Json => verbs::parse(body),
        Dialect::Twiml => twiml::parse(body, url),
    }
}

/// Twilio's names for what the JSON request says: the call, and a gather's digits.
fn twilio_params(endpoint: &Endpoint, event: &Value) -> Vec<(String, String)> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let call = &event["call"];
    // Twilio's applications expect an account; ours is named after the endpoint, never secret.
    let account: String = Sha256::digest(endpoint.url.as_bytes())[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut params = vec![
        ("AccountSid".to_string(), format!("AC{account}")),
        ("ApiVersion".into(), "2010-04-01".into()),
        ("CallSid".into(), text(&call["id"])),
        ("CallStatus".into(), "in-progress".into()),
        ("Direction".into(), "inbound".into()),
        ("From".into(), text(&call["from"])),
        ("Caller".into(), text(&call["from"])),
        ("To".into(), text(&call["to"])),
        ("Called".into(), text(&call["to"])),
    ];
    if event["event"] == "gather" {
        params.push(("Digits".into(), text(&event["digits"])));
    }
    if event["event"] == "transfer" {
        params.push(("DialCallStatus".into(), text(&event["status"])));
    }
    if event["event"] == "status" {
        // Twilio's names for the moments of a call.
        let status = match event["status"].as_str() {
            Some("initiated") => "ringing",
            Some("answered") => "in-progress",
            _ => "completed",
        };
        params.retain(|(k, _)| k != "CallStatus");
        params.push(("CallStatus".into(), status.into()));
        if let Some(seconds) = event["duration_s"].as_f64() {
            params.push(("CallDuration".into(), format!("{}", seconds.round() as u64)));
        }
    }
    params
}
