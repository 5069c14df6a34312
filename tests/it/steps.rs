//! A flow written in steps, from a real call: SIPp keys the farm line (RFC 4733 pcaps) into the
//! built `ivr`, whose http step posts the event to an API on loopback. The API is a few lines of
//! std here; the signature is checked by Python's own hmac, not by our code.

use crate::support;

use std::process::Command;
use std::time::Duration;

use support::http::{header, Received};
use support::keys::{is_root, pcap_scenario};
use support::{assert_sipp_file_ok, Ivr, TempDir};

const SECRET: &str = "farm-line-secret-0123456789";

/// An API on loopback answering every request with `status`.
fn api(status: u16) -> (u16, Received) {
    support::http::serve(move |_, _| (status, "{}".into()))
}

/// Python's verdict on `signature` for `body`, with the README's own snippet.
fn python_verifies(signature: &str, body: &str) -> bool {
    let script = r#"
import hmac, hashlib, sys, time
secret, header, body = sys.argv[1].encode(), sys.argv[2], sys.argv[3].encode()
parts = dict(p.split("=", 1) for p in header.split(","))
expected = hmac.new(secret, parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
ok = hmac.compare_digest(expected, parts["v1"]) and abs(time.time() - int(parts["t"])) < 300
sys.exit(0 if ok else 1)
"#;
    Command::new("python3")
        .args(["-c", script, SECRET, signature, body])
        .status()
        .expect("python3 (apt-get install -y python3)")
        .success()
}

fn farm_line(tag: &str, api_port: u16, records: &std::path::Path) -> Ivr {
    let flow = support::project_dir().join("sip-config/examples/farm.toml");
    let url = format!("http://127.0.0.1:{api_port}/events");
    Ivr::start(
        tag,
        &[
            ("IVR_FLOW__FILE", flow.to_str().unwrap()),
            ("IVR_ENDPOINTS__FARM__URL", &url),
            ("IVR_ENDPOINTS__FARM__SECRET", SECRET),
            ("IVR_CDR__FILE", records.to_str().unwrap()),
        ],
    )
}

#[test]
fn a_caller_reports_a_death_and_the_api_gets_one_signed_post() {
    assert!(
        is_root(),
        "pcap replay needs a raw socket: run the tests as root (see README)"
    );
    let dir = TempDir::new("steps-farm");
    let records = dir.0.join("calls.jsonl");
    let (port, got) = api(200);
    let ivr = farm_line("steps-farm", port, &records);
    // 1 (death), the cow 12345 and #, 1 (confirm), then 9 (goodbye) at the menu again.
    assert_sipp_file_ok(&ivr, &pcap_scenario(&dir, "112345#19"), &[]);
    ivr.wait_for_line(
        &["API answered", "step=\"record\"", "status=200"],
        Duration::from_secs(5),
    );
    ivr.wait_for_log("reason=\"server-bye\"", Duration::from_secs(10));
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    let (head, body) = &got[0];
    assert!(head.starts_with("POST /events HTTP/1.1"), "{head}");
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["event"], "death");
    assert_eq!(json["cow"], "12345");
    assert!(json["caller"].is_string(), "{json}");
    let key = header(head, "Idempotency-Key").unwrap();
    assert!(key.ends_with("-record-1"), "{key}");
    let signature = header(head, "X-IVR-Signature").unwrap();
    assert!(python_verifies(signature, body), "{signature} for {body}");
    assert!(!python_verifies(signature, &body.replace("12345", "12346")));
}

#[test]
fn an_api_that_refuses_is_said_to_the_caller_and_the_menu_comes_back() {
    assert!(
        is_root(),
        "pcap replay needs a raw socket: run the tests as root (see README)"
    );
    let dir = TempDir::new("steps-refused");
    let records = dir.0.join("calls.jsonl");
    let (port, got) = api(503);
    let ivr = farm_line("steps-refused", port, &records);
    assert_sipp_file_ok(&ivr, &pcap_scenario(&dir, "212345#19"), &[]);
    ivr.wait_for_line(&["API answered", "status=503"], Duration::from_secs(5));
    // Back at the menu, whose 9 says goodbye: the call did not end at the failure.
    ivr.wait_for_line(&["menu option", "key=9"], Duration::from_secs(10));
    ivr.wait_for_log("reason=\"server-bye\"", Duration::from_secs(10));
    assert_eq!(got.lock().unwrap().len(), 1);
}
