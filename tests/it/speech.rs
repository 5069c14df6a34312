//! Greetings as text from the directory, spoken by espeak-ng: a real call through the binary
//! with the Auth0 mock hears a longer greeting for longer, the text never reaches the log or the
//! call record, and without the engine calls still complete.

use crate::support;

use std::time::Duration;

use support::auth0_mock::Auth0Mock;
use support::raw::RawPhone;
use support::{require_tool, Ivr, TempDir};

const LONG: &str =
    "Robert Bartholomew Montgomery the Third, of the North Valley Farmers Cooperative";

/// The shipped flow with a menu that asks once and waits a second, so a silent caller is said
/// goodbye soon after the greeting.
fn quick_flow(dir: &TempDir) -> String {
    let shipped =
        std::fs::read_to_string(support::project_dir().join("sip-config/flow.toml")).unwrap();
    let quick = shipped.replace("timeout_s = 8", "timeout_s = 1").replace(
        "attempts = 3\ninvalid_prompt",
        "attempts = 1\ninvalid_prompt",
    );
    let path = dir.0.join("flow.toml");
    std::fs::write(&path, quick).unwrap();
    path.to_str().unwrap().to_string()
}

fn ivr(tag: &str, mock: &Auth0Mock, dir: &TempDir, extra: &[(&str, &str)]) -> Ivr {
    let flow = quick_flow(dir);
    let records = dir.0.join("calls.jsonl");
    let mut env = mock.ivr_env();
    env.push(("IVR_FLOW__FILE", flow.as_str()));
    env.push(("IVR_CDR__FILE", records.to_str().unwrap()));
    env.extend_from_slice(extra);
    Ivr::start(tag, &env)
}

/// Bob (24680, no recorded greeting) logs in and stays silent: the frames of audio he hears.
fn bobs_call(ivr: &Ivr, id: &str) -> usize {
    let phone = RawPhone::new("127.0.0.1", ivr);
    let call = phone.call(id).expect("answered");
    assert!(phone.hears_prompt(Duration::from_secs(3)));
    phone.press(call.rtp_port, "24680#1357#");
    let frames = phone
        .audio_until_bye(Duration::from_secs(30))
        .expect("the IVR says goodbye and hangs up");
    // The record is written, then "media released" logged, a moment after our BYE's 200:
    // reading it sooner found the file empty once.
    ivr.wait_for_line(
        &["media released", &format!("call_id={id}")],
        Duration::from_secs(5),
    );
    frames
}

fn records(dir: &TempDir) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.0.join("calls.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_longer_greeting_text_is_heard_for_longer_and_never_logged() {
    require_tool("espeak-ng", "espeak-ng");
    let mock = Auth0Mock::start();
    let set_greeting = |text: &str| {
        let mut users = mock.state.users.lock().unwrap();
        let bob = users
            .iter_mut()
            .find(|u| u.account_number == "24680")
            .unwrap();
        bob.ivr_greeting = Some(text.to_string());
    };
    let dir = TempDir::new("speech");
    let ivr = ivr("speech", &mock, &dir, &[]);
    set_greeting("Bob");
    let short = bobs_call(&ivr, "short-greeting");
    set_greeting(LONG);
    let long = bobs_call(&ivr, "long-greeting");
    eprintln!("frames of audio heard: short greeting {short}, long greeting {long}");
    // The long name takes several seconds to say, the short one under one: 50 frames a second.
    assert!(
        long > short + 100,
        "long {long} vs short {short} frames of audio"
    );
    let records = records(&dir);
    assert_eq!(records.len(), 2);
    assert!(
        records.iter().all(|r| r["greeting_spoken"] == true),
        "{records:?}"
    );
    let log = ivr.log_text();
    assert!(
        !log.contains("Bartholomew"),
        "the greeting text is personal data: not logged"
    );
    let file = std::fs::read_to_string(dir.0.join("calls.jsonl")).unwrap();
    assert!(!file.contains("Bartholomew"), "nor in the call record");
}

#[test]
fn without_espeak_calls_complete_without_the_name() {
    let mock = Auth0Mock::start();
    {
        let mut users = mock.state.users.lock().unwrap();
        let bob = users
            .iter_mut()
            .find(|u| u.account_number == "24680")
            .unwrap();
        bob.ivr_greeting = Some("Bob".into());
    }
    let dir = TempDir::new("no-speech");
    let ivr = ivr(
        "no-speech",
        &mock,
        &dir,
        &[("IVR_SPEECH__PROGRAM", "/nonexistent/espeak-ng")],
    );
    assert!(
        ivr.log_text().contains("no text-to-speech"),
        "a warning at start"
    );
    bobs_call(&ivr, "no-engine");
    let records = records(&dir);
    assert_eq!(records[0]["verification"], "verified");
    assert_eq!(records[0]["greeting_spoken"], false);
}
