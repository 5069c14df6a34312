//! The call core against SIPp: each scenario must run to its end (SIPp exit 0) and the IVR's
//! log must show what it did.

use crate::support;

use std::time::Duration;

use support::raw::wait_rtp_ports_free;
use support::{assert_sipp_ok, Ivr};

#[test]
fn call_then_caller_hangs_up_udp() {
    let ivr = Ivr::start("hangup", &[]);
    assert_sipp_ok(&ivr, "call_hangup.xml", &[]);
    assert_eq!(wait_rtp_ports_free(&ivr, Duration::from_secs(2)), Ok(()));
}

#[test]
fn call_over_tcp() {
    let ivr = Ivr::start("tcp", &[]);
    assert_sipp_ok(&ivr, "call_hangup.xml", &["-t", "t1"]);
    assert_eq!(wait_rtp_ports_free(&ivr, Duration::from_secs(2)), Ok(()));
}

#[test]
fn cancel_while_ringing_gets_487_and_frees_the_port() {
    // One RTP port pair: the second call only works if the cancelled one gave it back.
    let ivr = Ivr::start_with_ports("cancel", &[("IVR_SIP__ANSWER_DELAY_MS", "1500")], 2);
    // The scenario fails on anything but 487 after the CANCEL (a 200 would be unexpected).
    assert_sipp_ok(&ivr, "cancel_ringing.xml", &[]);
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
    // The scenario waits for the BYE at 64·T1 (6.4 s); the retransmission schedule itself is
    // asserted on a fake clock in sip::ua's tests.
    assert_sipp_ok(&ivr, "ack_withheld.xml", &[]);
    assert_eq!(wait_rtp_ports_free(&ivr, Duration::from_secs(1)), Ok(()));
}

#[test]
fn reinvite_hold_resume_and_offerless_reinvite_keep_the_call() {
    let ivr = Ivr::start("hold", &[]);
    // The scenario checks each answer's direction and version; the IVR's reading of the
    // answer in the ACK has no message of its own, so the log shows it.
    assert_sipp_ok(&ivr, "hold_resume.xml", &[]);
    ivr.wait_for_line(
        &["answer received in ACK", "codec=\"PCMU\""],
        Duration::from_secs(1),
    );
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
    // The scenario sends no RTP and waits for the IVR's BYE.
    assert_sipp_ok(&ivr, "rtp_silent.xml", &[]);
    assert_eq!(wait_rtp_ports_free(&ivr, Duration::from_secs(2)), Ok(()));
}
