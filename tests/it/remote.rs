//! A web application drives real calls: SIPp keys the bank login into the built `ivr`, whose
//! remote step hands the call to a JSON application on loopback (a few lines of std here). The
//! application asks for the account and a secret PIN and has the IVR verify them; it must never
//! see the PIN.

use crate::support;

use std::time::Duration;

use serde_json::Value;
use support::http::Received;
use support::keys::{is_root, pcap_scenario};
use support::{assert_sipp_file_ok, Ivr, TempDir};

/// The bank login as a JSON application: a wrong PIN asks again, a right one hears the balance.
fn answer(path: &str, body: &Value) -> String {
    match path {
        "/app" => r#"{"verbs": [{"gather": {"max_digits": 10, "say": [{"prompt": "enter_account"}], "into": "account", "action": "/account"}}]}"#.into(),
        "/account" | "/again" => r#"{"verbs": [{"gather": {"min_digits": 4, "max_digits": 4, "say": [{"prompt": "enter_pin"}], "into": "pin", "secret": true, "action": "/pin"}}]}"#.into(),
        "/pin" => {
            let account = body["vars"]["account"].as_str().unwrap_or_default();
            format!(r#"{{"verbs": [{{"verify": {{"account": "{account}", "pin": "pin", "action": "/verified"}}}}]}}"#)
        }
        "/verified" if body["verified"] == true => r#"{"verbs": [{"play": {"prompt": "balance_is"}}, {"say": {"amount": "1234.56"}}, {"hangup": {}}]}"#.into(),
        "/verified" => r#"{"verbs": [{"play": {"prompt": "try_again"}}, {"redirect": {"url": "/again"}}]}"#.into(),
        _ => r#"{"verbs": [{"hangup": {}}]}"#.into(),
    }
}

fn application() -> (u16, Received) {
    support::http::serve(|path, body| {
        let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        (200, answer(path, &json))
    })
}

#[test]
fn a_json_application_logs_a_caller_in_and_never_sees_the_pin() {
    assert!(
        is_root(),
        "pcap replay needs a raw socket: run the tests as root (see README)"
    );
    let dir = TempDir::new("remote-bank");
    let flow = dir.0.join("remote.toml");
    std::fs::write(
        &flow,
        "welcome = \"welcome\"\nstart = \"app\"\n[outcomes]\nno_answer = \"goodbye\"\ngoodbye = \"goodbye\"\nerror = \"sorry_error\"\n[steps.app]\nremote = \"bank\"\n",
    )
    .unwrap();
    let (port, got) = application();
    let url = format!("http://127.0.0.1:{port}/app");
    let status_url = format!("http://127.0.0.1:{port}/status");
    let ivr = Ivr::start(
        "remote-bank",
        &[
            ("IVR_FLOW__FILE", flow.to_str().unwrap()),
            ("IVR_ENDPOINTS__BANK__URL", &url),
            ("IVR_ENDPOINTS__BANK__SECRET", "bank-application-secret"),
            ("IVR_ENDPOINTS__BANK__STATUS_URL", &status_url),
        ],
    );
    // The README's demo account 12345: a wrong PIN first, then its own.
    assert_sipp_file_ok(&ivr, &pcap_scenario(&dir, "12345#1111#2468#"), &[]);
    ivr.wait_for_line(
        &["wrong account number or PIN", "account=***45"],
        Duration::from_secs(5),
    );
    ivr.wait_for_line(
        &["caller verified", "user=local|***45"],
        Duration::from_secs(10),
    );
    ivr.wait_for_log("reason=\"server-bye\"", Duration::from_secs(10));
    // The status callbacks are sent from tasks of their own: wait for the last.
    let path = |head: &str| head.split(' ').nth(1).unwrap_or_default().to_string();
    let started = std::time::Instant::now();
    while got
        .lock()
        .unwrap()
        .iter()
        .filter(|(h, _)| path(h) == "/status")
        .count()
        < 3
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "status callbacks missing: {:?}",
            got.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (statuses, got): (Vec<_>, Vec<_>) = got
        .lock()
        .unwrap()
        .clone()
        .into_iter()
        .partition(|(h, _)| path(h) == "/status");
    let statuses: Vec<Value> = statuses
        .iter()
        .map(|(_, b)| serde_json::from_str(b).unwrap())
        .collect();
    let mut moments: Vec<&str> = statuses
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    moments.sort();
    assert_eq!(moments, ["answered", "completed", "initiated"]);
    let completed = statuses
        .iter()
        .find(|s| s["status"] == "completed")
        .unwrap();
    assert_eq!(completed["reason"], "server-bye");
    assert!(
        completed["duration_s"].as_f64().unwrap() > 1.0,
        "{completed}"
    );
    let paths: Vec<&str> = got
        .iter()
        .map(|(head, _)| head.split(' ').nth(1).unwrap_or_default())
        .collect();
    assert_eq!(
        paths,
        [
            "/app",
            "/account",
            "/pin",
            "/verified",
            "/again",
            "/pin",
            "/verified"
        ]
    );
    for (path, body) in &got {
        assert!(
            !body.contains("2468") && !body.contains("1111"),
            "a PIN reached the application at {path}: {body}"
        );
    }
    let last: Value = serde_json::from_str(&got[6].1).unwrap();
    assert_eq!(
        (last["verified"].as_bool(), last["account"].as_str()),
        (Some(true), Some("***45"))
    );
    let log = ivr.log_text();
    assert!(!log.contains("2468"), "the PIN is in the log");
}
