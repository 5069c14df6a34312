//! Reliable provisionals (RFC 3262) against SIPp: with an answer delay the IVR rings with a
//! reliable 180 to an INVITE that requires 100rel, takes its PRACK, then answers.

use crate::support;

use std::time::Duration;

use support::{assert_sipp_ok, Ivr};

#[test]
fn a_required_100rel_gets_a_reliable_180_and_the_200_after_its_prack() {
    let ivr = Ivr::start("prack", &[("IVR_SIP__ANSWER_DELAY_MS", "2000")]);
    assert_sipp_ok(&ivr, "prack.xml", &[]);
    ivr.wait_for_log("180 acknowledged (PRACK)", Duration::from_secs(2));
    ivr.wait_for_log("reason=\"caller-bye\"", Duration::from_secs(2));
}
