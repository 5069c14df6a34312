//! Blind transfer (RFC 3515) with SIPp as the caller: it logs in, presses 0 for an operator
//! and gets the IVR's REFER. Accepted and reported by NOTIFY, the IVR leaves the call; refused,
//! the caller hears the flow's fallback and is back in the menu.

use crate::support;

use std::time::Duration;

use support::keys::pcap_scenario_from;
use support::{assert_sipp_file_ok, Ivr, TempDir};

#[test]
fn an_accepted_refer_ends_our_part_of_the_call_when_the_target_answers() {
    let ivr = Ivr::start("refer-ok", &[]);
    let dir = TempDir::new("refer-ok");
    let scenario = pcap_scenario_from(&dir, "refer_accepted.xml", "24680#1357#0");
    assert_sipp_file_ok(&ivr, &scenario, &["-timeout", "100s"]);
    ivr.wait_for_line(&["menu option", "key=0"], Duration::from_secs(1));
    ivr.wait_for_line(&["transfer over", "Succeeded"], Duration::from_secs(1));
    ivr.wait_for_log("reason=\"server-bye\"", Duration::from_secs(2));
}

#[test]
fn a_refused_refer_plays_the_fallback_and_returns_to_the_menu() {
    let ivr = Ivr::start("refer-refused", &[]);
    let dir = TempDir::new("refer-refused");
    let scenario = pcap_scenario_from(&dir, "refer_refused.xml", "24680#1357#0");
    assert_sipp_file_ok(&ivr, &scenario, &["-timeout", "100s"]);
    ivr.wait_for_line(&["transfer failed", "status=405"], Duration::from_secs(1));
    // Back in the menu: the 9 pressed after the fallback was read as a menu option.
    ivr.wait_for_line(&["menu option", "key=9"], Duration::from_secs(1));
    ivr.wait_for_log("reason=\"server-bye\"", Duration::from_secs(2));
}
