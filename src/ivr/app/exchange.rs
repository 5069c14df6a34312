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
        // A secret gather's digits stay in the IVR: the app is told it was one, not what.
        let secret = event["secret"] == true;
        if !secret || !text(&event["digits"]).is_empty() {
            params.push(("Digits".into(), text(&event["digits"])));
        }
        if secret {
            params.push(("Secret".into(), "true".into()));
        }
    }
    if event["event"] == "verify" {
        params.push(("Verified".into(), event["verified"].to_string()));
        params.push(("VerifyReason".into(), text(&event["reason"])));
        params.push(("Account".into(), text(&event["account"])));
        if let Some(greeting) = event["greeting"].as_str() {
            params.push(("Greeting".into(), greeting.into()));
        }
    }
    if event["event"] == "transfer" {
        params.push(("DialCallStatus".into(), text(&event["status"])));
        if let Some(seconds) = event["duration_s"].as_u64() {
            params.push(("DialCallDuration".into(), seconds.to_string()));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(event: Value) -> Vec<(String, String)> {
        let endpoint = Endpoint {
            dialect: Dialect::Twiml,
            ..Endpoint::new("https://app.example.com/voice".into(), b"token".to_vec())
        };
        twilio_params(&endpoint, &event)
    }

    fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_secret_gathers_digits_are_never_a_parameter() {
        let secret = params(json!({"event": "gather", "digits": "", "secret": true}));
        assert_eq!(get(&secret, "Digits"), None);
        assert_eq!(get(&secret, "Secret"), Some("true"));
        let plain = params(json!({"event": "gather", "digits": "12345", "secret": false}));
        assert_eq!(get(&plain, "Digits"), Some("12345"));
        assert_eq!(get(&plain, "Secret"), None);
        // An endpoint configured to receive secrets is sent them.
        let received = params(json!({"event": "gather", "digits": "2468", "secret": true}));
        assert_eq!(get(&received, "Digits"), Some("2468"));
    }

    #[test]
    fn a_verification_is_posted_as_its_outcome() {
        let event = json!({"event": "verify", "verified": true, "reason": "verified", "greeting": "Hello Ann", "account": "***45"});
        let sent = params(event);
        assert_eq!(get(&sent, "Verified"), Some("true"));
        assert_eq!(get(&sent, "VerifyReason"), Some("verified"));
        assert_eq!(get(&sent, "Greeting"), Some("Hello Ann"));
        assert_eq!(get(&sent, "Account"), Some("***45"));
        let refused = params(
            json!({"event": "verify", "verified": false, "reason": "locked", "greeting": null, "account": "***45"}),
        );
        assert_eq!(get(&refused, "Verified"), Some("false"));
        assert_eq!(get(&refused, "Greeting"), None);
    }
}
