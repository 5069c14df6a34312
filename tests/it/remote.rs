//! A web application drives real calls: SIPp keys the bank login into the built `ivr`, run
//! with `sip-config/examples/remote.toml` and the README's JSON application
//! (`sip-config/examples/apps/bank_app.py`, which checks our signature on every request). It
//! asks for the account and a secret PIN and has the IVR verify them; it must never see the PIN.

use crate::support;

use std::time::Duration;

use serde_json::Value;
use support::apps::App;
use support::keys::{is_root, pcap_scenario_from};
use support::{assert_sipp_file_ok, Ivr, TempDir};

const SECRET: &str = "bank-application-secret";

/// The IVR answering with the example remote flow, its application `app`.
fn ivr_for(name: &str, app: &App) -> Ivr {
    let flow = support::project_dir().join("sip-config/examples/remote.toml");
    Ivr::start(
        name,
        &[
            ("IVR_FLOW__FILE", flow.to_str().unwrap()),
            ("IVR_ENDPOINTS__APP__URL", &app.url("/app")),
            ("IVR_ENDPOINTS__APP__SECRET", SECRET),
            ("IVR_ENDPOINTS__APP__STATUS_URL", &app.url("/status")),
        ],
    )
}

fn path(request: &Value) -> &str {
    request["path"].as_str().unwrap()
}

fn statuses(requests: &[Value]) -> Vec<&Value> {
    requests
        .iter()
        .filter(|r| path(r) == "/status")
        .map(|r| &r["request"])
        .collect()
}

#[test]
fn a_json_application_logs_a_caller_in_and_never_sees_the_pin() {
    assert!(
        is_root(),
        "pcap replay needs a raw socket: run the tests as root (see README)"
    );
    let dir = TempDir::new("remote-bank");
    let app = App::start("bank_app.py", SECRET, &dir);
    let ivr = ivr_for("remote-bank", &app);
    // The README's demo account 12345: a wrong PIN first, then its own.
    let keys = pcap_scenario_from(&dir, "dtmf_keys.xml", "12345#1111#2468#");
    assert_sipp_file_ok(&ivr, &keys, &[]);
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
    let requests = app.wait_for(|r| statuses(r).len() == 3);
    for request in &requests {
        assert_eq!(request["valid"], true, "a bad signature: {request}");
    }
    let mut moments: Vec<&str> = statuses(&requests)
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    moments.sort();
    assert_eq!(moments, ["answered", "completed", "initiated"]);
    let completed = statuses(&requests)
        .into_iter()
        .find(|s| s["status"] == "completed")
        .unwrap();
    assert_eq!(completed["reason"], "server-bye");
    assert!(
        completed["duration_s"].as_f64().unwrap() > 1.0,
        "{completed}"
    );
    let asked: Vec<&Value> = requests.iter().filter(|r| path(r) != "/status").collect();
    let paths: Vec<&str> = asked.iter().map(|r| path(r)).collect();
    assert_eq!(
        paths,
        ["/app", "/account", "/pin", "/verified", "/pin", "/verified"]
    );
    for request in &asked {
        // Everything the app was sent but the call's id (SIPp's, with a process number).
        let mut sent = request["request"].clone();
        sent["call"]["id"] = Value::Null;
        let sent = sent.to_string();
        assert!(
            !sent.contains("2468") && !sent.contains("1111"),
            "a PIN reached the application: {sent}"
        );
    }
    let last = &asked[5]["request"];
    assert_eq!(
        (last["verified"].as_bool(), last["account"].as_str()),
        (Some(true), Some("***45"))
    );
    let leaks = ivr.lines_with_pin("2468");
    assert!(leaks.is_empty(), "the PIN is in the log: {leaks:?}");
}

#[test]
fn a_caller_who_hangs_up_mid_gather_is_reported_completed() {
    assert!(
        is_root(),
        "pcap replay needs a raw socket: run the tests as root (see README)"
    );
    let dir = TempDir::new("remote-hangup");
    let app = App::start("bank_app.py", SECRET, &dir);
    let ivr = ivr_for("remote-hangup", &app);
    // Two digits of the account, then BYE.
    let scenario = pcap_scenario_from(&dir, "keys_then_hangup.xml", "12");
    assert_sipp_file_ok(&ivr, &scenario, &[]);
    let done = |r: &[Value]| statuses(r).iter().any(|s| s["status"] == "completed");
    let requests = app.wait_for(done);
    let completed = statuses(&requests)
        .into_iter()
        .find(|s| s["status"] == "completed")
        .unwrap();
    assert_eq!(completed["reason"], "caller-bye", "{completed}");
    assert!(
        requests.iter().all(|r| path(r) != "/account"),
        "the gather was never finished: {requests:?}"
    );
}
