//! The call core against SIPp: each scenario must run to its end (SIPp exit 0) and the IVR's
//! log must show what it did.

mod support;

use std::time::Duration;

use support::{assert_sipp_ok, Ivr};

#[test]
fn call_then_caller_hangs_up_udp() {
    let ivr = Ivr::start("hangup", &[]);
    assert_sipp_ok(&ivr, "call_hangup.xml", &[]);
    ivr.wait_for_log("reason=\"caller-bye\"", Duration::from_secs(5));
    ivr.wait_for_log("media released", Duration::from_secs(5));
    assert_eq!(
        ivr.count("call offered"),
        1,
        "one call, however many retransmissions"
    );
}

#[test]
fn call_over_tcp() {
    let ivr = Ivr::start("tcp", &[]);
    assert_sipp_ok(&ivr, "call_hangup.xml", &["-t", "t1"]);
    ivr.wait_for_log("transport=Tcp", Duration::from_secs(5));
    ivr.wait_for_log("reason=\"caller-bye\"", Duration::from_secs(5));
}

#[test]
fn cancel_while_ringing_gets_487_and_frees_the_port() {
    // One RTP port pair: the second call only works if the cancelled one gave it back.
    let ivr = Ivr::start_with_ports("cancel", &[("IVR_SIP__ANSWER_DELAY_MS", "1500")], 2);
    assert_sipp_ok(&ivr, "cancel_ringing.xml", &[]);
    ivr.wait_for_log("reason=\"cancelled\"", Duration::from_secs(5));
    assert_eq!(
        ivr.count("answered 200 OK"),
        0,
        "a cancelled call is never answered"
    );
    assert_sipp_ok(&ivr, "call_hangup.xml", &[]);
}

#[test]
fn options_out_of_dialog() {
    let ivr = Ivr::start("options", &[]);
    assert_sipp_ok(&ivr, "options.xml", &[]);
}

#[test]
fn withheld_ack_retransmits_200_then_tears_down_with_bye() {
    let ivr = Ivr::start(
        "noack",
        &[("IVR_SIP__T1_MS", "100"), ("IVR_SIP__T2_MS", "400")],
    );
    assert_sipp_ok(&ivr, "ack_withheld.xml", &[]);
    ivr.wait_for_log("reason=\"ack-timeout\"", Duration::from_secs(5));
    // T1=100 ms, T2=400 ms, 64*T1=6.4 s: 100, 300, 700, 1100, ... about 16 retransmissions.
    let retransmissions = ivr.count("retransmitting final response");
    assert!(
        retransmissions >= 10,
        "only {retransmissions} retransmissions of the 200"
    );
}

#[test]
fn reinvite_hold_resume_and_offerless_reinvite_keep_the_call() {
    let ivr = Ivr::start("hold", &[]);
    assert_sipp_ok(&ivr, "hold_resume.xml", &[]);
    assert_eq!(ivr.count("re-INVITE"), 3);
    ivr.wait_for_line(&["re-INVITE", "with_sdp=false"], Duration::from_secs(1));
    ivr.wait_for_line(
        &["answer received in ACK", "codec=\"PCMU\""],
        Duration::from_secs(1),
    );
    ivr.wait_for_log("direction=\"recvonly\"", Duration::from_secs(1));
    ivr.wait_for_log("reason=\"caller-bye\"", Duration::from_secs(5));
}

#[test]
fn invite_without_sdp_gets_our_offer_and_reads_the_answer_in_ack() {
    let ivr = Ivr::start("late", &[]);
    assert_sipp_ok(&ivr, "late_offer.xml", &[]);
    ivr.wait_for_line(
        &["answer received in ACK", "codec=\"PCMA\""],
        Duration::from_secs(2),
    );
}

#[test]
fn silent_caller_is_hung_up_after_rtp_inactivity() {
    let ivr = Ivr::start("silent", &[("IVR_RTP__INACTIVITY_TIMEOUT_S", "2")]);
    assert_sipp_ok(&ivr, "rtp_silent.xml", &[]);
    ivr.wait_for_log("no RTP from the caller", Duration::from_secs(2));
    ivr.wait_for_log("reason=\"server-bye\"", Duration::from_secs(2));
}
