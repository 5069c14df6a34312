//! Keys from real peers reach the IVR exactly once each, in order, and stop the prompt.
//! The oracle is what the IVR does next: it logs the account number it read, then says goodbye
//! and hangs up.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use support::{assert_sipp_file_ok, Ivr, TempDir};

const PCAPS: &str = "/usr/share/sip-tester";

fn pcap_for(key: char) -> String {
    let name = match key {
        '*' => "star".to_string(),
        '#' => "pound".to_string(),
        d => d.to_string(),
    };
    format!("{PCAPS}/dtmf_2833_{name}.pcap")
}

/// The key scenario with one pcap replay per key, 350 ms apart (each pcap lasts 140 ms).
fn pcap_scenario(dir: &TempDir, keys: &str) -> PathBuf {
    let plays: String = keys
        .chars()
        .map(|k| {
            let pcap = pcap_for(k);
            assert!(std::path::Path::new(&pcap).exists(), "{pcap} missing: apt-get install -y sip-tester");
            format!("  <nop><action><exec play_pcap_audio=\"{pcap}\"/></action></nop>\n  <pause milliseconds=\"350\"/>\n")
        })
        .collect();
    write_scenario(dir, &plays)
}

/// The key scenario with one SIP INFO (application/dtmf-relay) per key.
fn info_scenario(dir: &TempDir, keys: &str) -> PathBuf {
    let infos: String = keys
        .chars()
        .enumerate()
        .map(|(i, k)| {
            format!(
                r#"  <send retrans="500">
    <![CDATA[
      INFO sip:ivr@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:ivr@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {} INFO
      Max-Forwards: 70
      Content-Type: application/dtmf-relay
      Content-Length: [len]

      Signal={k}
      Duration=160
    ]]>
  </send>
  <recv response="200"/>
  <pause milliseconds="100"/>
"#,
                i + 2
            )
        })
        .collect();
    write_scenario(dir, &infos)
}

fn write_scenario(dir: &TempDir, keys: &str) -> PathBuf {
    let template = std::fs::read_to_string(support::scenario("dtmf_keys.xml")).unwrap();
    let path = dir.0.join("keys.xml");
    std::fs::write(&path, template.replace("KEYS\n", keys)).unwrap();
    path
}

fn assert_account_read(ivr: &Ivr, digits: &str) {
    ivr.wait_for_line(
        &[
            "account number entered",
            &format!("digits={digits} "),
            "ended=Terminator",
        ],
        Duration::from_secs(5),
    );
    assert_eq!(ivr.count("account number entered"), 1);
    ivr.wait_for_log("reason=\"server-bye\"", Duration::from_secs(5));
}

#[test]
fn sipp_rfc2833_pcaps_key_every_digit_once_in_order() {
    assert!(
        nix_is_root(),
        "pcap replay needs a raw socket: run the tests as root (see README)"
    );
    let ivr = Ivr::start("pcap", &[]);
    let dir = TempDir::new("pcap");
    assert_sipp_file_ok(&ivr, &pcap_scenario(&dir, "90817263*#"), &[]);
    // `*` is a key like any other: it is part of what was read before `#`.
    assert_account_read(&ivr, "90817263*");
    ivr.wait_for_line(
        &["prompt stopped by a key", "welcome"],
        Duration::from_secs(1),
    );
}

#[test]
fn sipp_replaying_the_same_pcap_twice_is_two_presses() {
    assert!(
        nix_is_root(),
        "pcap replay needs a raw socket: run the tests as root (see README)"
    );
    let ivr = Ivr::start("pcap-repeat", &[]);
    let dir = TempDir::new("pcap-repeat");
    assert_sipp_file_ok(&ivr, &pcap_scenario(&dir, "5445#"), &[]);
    assert_account_read(&ivr, "5445");
}

#[test]
fn sip_info_keys_are_read_like_rtp_ones() {
    let ivr = Ivr::start("info", &[]);
    let dir = TempDir::new("info");
    assert_sipp_file_ok(&ivr, &info_scenario(&dir, "4242#"), &[]);
    assert_account_read(&ivr, "4242");
    ivr.wait_for_line(&["key", "source=\"info\""], Duration::from_secs(1));
}

fn nix_is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
