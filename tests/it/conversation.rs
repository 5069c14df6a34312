//! The seed's conversation end to end: SIPp keys RFC 2833 pcaps into the built `ivr` with the
//! shipped local directory (README's demo accounts), and every ending is the right prompt and a
//! BYE from the server.

use crate::support;

use std::time::Duration;

use support::keys::{is_root, pcap_scenario, pcap_scenario_from};
use support::{assert_sipp_file_ok, assert_sipp_ok, Ivr, TempDir};

fn needs_root() {
    assert!(
        is_root(),
        "pcap replay needs a raw socket: run the tests as root (see README)"
    );
}

#[test]
fn login_then_balance_payments_an_invalid_key_and_exit() {
    needs_root();
    let dir = TempDir::new("conv-menu");
    let records = dir.0.join("calls.jsonl");
    let http = support::free_port();
    let listen = format!("127.0.0.1:{http}");
    let ivr = Ivr::start(
        "conv-menu",
        &[
            ("IVR_CDR__FILE", records.to_str().unwrap()),
            ("IVR_HTTP__LISTEN", &listen),
        ],
    );
    assert_sipp_file_ok(&ivr, &pcap_scenario(&dir, "12345#2468#1259"), &[]);
    ivr.wait_for_line(
        &["caller verified", "user=local|***45"],
        Duration::from_secs(1),
    );
    for key in ["1", "2"] {
        ivr.wait_for_line(
            &["menu option", &format!("key={key}")],
            Duration::from_secs(1),
        );
    }
    ivr.wait_for_line(&["invalid option", "key=5"], Duration::from_secs(1));
    ivr.wait_for_line(&["menu option", "key=9"], Duration::from_secs(1));
    ivr.wait_for_log("reason=\"server-bye\"", Duration::from_secs(5));

    // One call record: the outcome, the masked account, the keys; never the PIN.
    ivr.wait_for_log("media released", Duration::from_secs(2));
    let text = std::fs::read_to_string(&records).unwrap();
    assert!(
        !text.contains("2468"),
        "the PIN is in the call record: {text}"
    );
    assert!(!text.contains("12345"), "the account is in clear: {text}");
    let leaks = ivr.lines_with_pin("2468");
    assert!(leaks.is_empty(), "the PIN is in the log: {leaks:?}");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    let record = &lines[0];
    assert_eq!(record["verification"], "verified");
    assert_eq!(record["account"], "***45");
    assert_eq!(record["menu_keys"], "129");
    assert_eq!(record["ended_by"], "ivr");
    assert_eq!(record["end_reason"], "server-bye");
    assert_eq!(record["codec"], "PCMU");
    assert_eq!(record["transport"], "UDP");
    assert_eq!(record["dialled"], "ivr", "the Request-URI's user");
    assert!(record["rtp_lost"].is_u64());
    assert!(record["rtp_sent"].as_u64().unwrap() > 100);
    assert!(
        record["rtp_received"].as_u64().unwrap() > 50,
        "the caller's keys"
    );
    assert!(record["answered_ms"].as_u64().unwrap() >= record["started_ms"].as_u64().unwrap());

    // The same call as the operator's scraper sees it.
    let (_, page) = support::http::get(http, "/metrics");
    let value = |series: &str| support::http::sample(&page, series).unwrap_or(-1.0);
    assert_eq!(value("ivr_verifications_total{outcome=\"verified\"}"), 1.0);
    assert_eq!(value("ivr_calls_ended_total{reason=\"server-bye\"}"), 1.0);
    assert_eq!(value("ivr_calls_active"), 0.0);
    assert!(
        value("ivr_dtmf_keys_total{source=\"rfc4733\"}") >= 14.0,
        "{page}"
    );
}

#[test]
fn a_wrong_pin_is_told_and_the_server_hangs_up() {
    needs_root();
    let ivr = Ivr::start("conv-wrong", &[]);
    let dir = TempDir::new("conv-wrong");
    assert_sipp_file_ok(&ivr, &pcap_scenario(&dir, "12345#1111#"), &[]);
    ivr.wait_for_line(
        &["wrong account number or PIN", "account=***45"],
        Duration::from_secs(1),
    );
    assert_eq!(ivr.count("caller verified"), 0);
    ivr.wait_for_log("reason=\"server-bye\"", Duration::from_secs(5));
}

#[test]
fn total_silence_ends_with_goodbye_and_bye() {
    // The shipped flow with short timeouts and two attempts, so the test takes seconds.
    let dir = TempDir::new("conv-silent");
    let shipped =
        std::fs::read_to_string(support::project_dir().join("sip-config/flow.toml")).unwrap();
    let quick = shipped
        .replace("first_timeout_s = 10", "first_timeout_s = 1")
        .replace("attempts = 3", "attempts = 2");
    let flow = dir.0.join("flow.toml");
    std::fs::write(&flow, quick).unwrap();
    let ivr = Ivr::start("conv-silent", &[("IVR_FLOW__FILE", flow.to_str().unwrap())]);
    let keys_dir = TempDir::new("conv-silent-keys");
    assert_sipp_file_ok(&ivr, &pcap_scenario(&keys_dir, ""), &[]);
    assert_eq!(ivr.count("no usable answer"), 2);
    ivr.wait_for_log("reason=\"server-bye\"", Duration::from_secs(5));
}

#[test]
fn hanging_up_during_the_pin_question_frees_the_port() {
    needs_root();
    // One RTP port pair: the second call works only if the first gave it back.
    let ivr = Ivr::start_with_ports("conv-hangup", &[], 2);
    let dir = TempDir::new("conv-hangup");
    assert_sipp_file_ok(
        &ivr,
        &pcap_scenario_from(&dir, "keys_then_hangup.xml", "12345#"),
        &[],
    );
    ivr.wait_for_log("reason=\"caller-bye\"", Duration::from_secs(5));
    ivr.wait_for_log("media released", Duration::from_secs(5));
    assert_eq!(
        ivr.count("caller verified") + ivr.count("wrong account"),
        0,
        "never got to the directory"
    );
    assert_sipp_ok(&ivr, "call_hangup.xml", &[]);
}

#[test]
fn a_user_added_while_the_server_runs_logs_in_on_the_next_call() {
    needs_root();
    let dir = TempDir::new("conv-new-user");
    let users = dir.0.join("users.toml");
    std::fs::copy(
        support::project_dir().join("sip-config/users.example.toml"),
        &users,
    )
    .unwrap();
    let listen = format!("127.0.0.1:{}", support::free_port());
    let env = [
        ("IVR_DIRECTORY__USERS", users.to_str().unwrap()),
        ("IVR_HTTP__LISTEN", listen.as_str()),
    ];
    let ivr = Ivr::start("conv-new-user", &env);
    let mut add = std::process::Command::new(env!("CARGO_BIN_EXE_ivr"));
    add.args(["users", "add", "77777"])
        .current_dir(support::project_dir())
        .envs(env)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = add.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"4321\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("the running server reloaded it"), "{said}");
    assert_sipp_file_ok(&ivr, &pcap_scenario(&dir, "77777#4321#9"), &[]);
    support::assert_conversation(&ivr, "77777", &["9"]);
}
