//! Keys from real peers reach the IVR exactly once each, in order, and stop the prompt.
//! The oracle is what the IVR does next: it logs the account number it read, then says goodbye
//! and hangs up.

use crate::support;

use std::time::Duration;

use support::keys::{info_scenario, is_root, pcap_scenario};
use support::{assert_conversation, assert_sipp_file_ok, Ivr, TempDir};

#[test]
fn sipp_rfc2833_pcaps_key_every_digit_once_in_order() {
    assert!(
        is_root(),
        "pcap replay needs a raw socket: run the tests as root (see README)"
    );
    let ivr = Ivr::start("pcap", &[]);
    let dir = TempDir::new("pcap");
    // Every key: 0-9 in the account and PIN, # after each, * (menu again) and 9 (goodbye).
    assert_sipp_file_ok(&ivr, &pcap_scenario(&dir, "24680#1357#*9"), &[]);
    assert_conversation(&ivr, "24680", &["*", "9"]);
    ivr.wait_for_line(
        &["prompt stopped by a key", "welcome"],
        Duration::from_secs(1),
    );
}

#[test]
fn sipp_replaying_the_same_pcap_twice_is_two_presses() {
    assert!(
        is_root(),
        "pcap replay needs a raw socket: run the tests as root (see README)"
    );
    let ivr = Ivr::start("pcap-repeat", &[]);
    let dir = TempDir::new("pcap-repeat");
    assert_sipp_file_ok(&ivr, &pcap_scenario(&dir, "12345#2468#229"), &[]);
    assert_conversation(&ivr, "12345", &["2", "2", "9"]);
}

#[test]
fn sip_info_keys_are_read_like_rtp_ones() {
    let ivr = Ivr::start("info", &[]);
    let dir = TempDir::new("info");
    assert_sipp_file_ok(&ivr, &info_scenario(&dir, "12345#2468#9"), &[]);
    assert_conversation(&ivr, "12345", &["9"]);
    ivr.wait_for_line(&["key", "source=\"info\""], Duration::from_secs(1));
}
