//! Session timers (RFC 4028) against SIPp: a caller that never refreshes gets the IVR's BYE
//! 60 s into a 90 s session; one that refreshes by UPDATE and by re-INVITE keeps its call; an
//! interval under 90 s gets 422 with Min-SE. The three run side by side (about 75 s in all).

use crate::support;

use std::time::Duration;

use support::{assert_sipp_ok, Ivr, TempDir};

/// These calls outlast SIPp's usual 60 s limit.
const LONG: &[&str] = &["-timeout", "100s"];

/// An IVR whose flow waits two minutes for the account number and whose media waits five for
/// the caller's RTP (SIPp sends none), so the calls here are ended by the session timer or the
/// caller, never by the flow or the media giving up on silence.
fn patient_ivr(tag: &str) -> (Ivr, TempDir) {
    let dir = TempDir::new(tag);
    let shipped =
        std::fs::read_to_string(support::project_dir().join("sip-config/flow.toml")).unwrap();
    let flow = dir.0.join("flow.toml");
    std::fs::write(
        &flow,
        shipped.replacen("first_timeout_s = 10", "first_timeout_s = 120", 1),
    )
    .unwrap();
    let ivr = Ivr::start(
        tag,
        &[
            ("IVR_FLOW__FILE", flow.to_str().unwrap()),
            ("IVR_RTP__INACTIVITY_TIMEOUT_S", "300"),
        ],
    );
    (ivr, dir)
}

#[test]
fn an_unrefreshed_session_is_ended_by_the_ivr() {
    let (ivr, _flow) = patient_ivr("st-overdue");
    assert_sipp_ok(&ivr, "session_overdue.xml", LONG);
    ivr.wait_for_line(
        &["session expired", "no session refresh from the caller"],
        Duration::from_secs(1),
    );
}

#[test]
fn refreshes_by_update_and_by_reinvite_keep_the_call() {
    let (ivr, _flow) = patient_ivr("st-refreshed");
    assert_sipp_ok(&ivr, "session_refreshed.xml", LONG);
    ivr.wait_for_log("reason=\"caller-bye\"", Duration::from_secs(2));
    assert_eq!(ivr.count("session expired"), 0);
}

#[test]
fn an_interval_under_the_floor_gets_422() {
    let ivr = Ivr::start("st-small", &[]);
    assert_sipp_ok(&ivr, "session_too_small.xml", &[]);
    assert_eq!(ivr.count("call offered"), 0);
}
