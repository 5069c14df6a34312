//! SIPp scenarios that press keys: one RFC 2833 pcap replay or one SIP INFO per key, spliced
//! into a template scenario where it says KEYS.

use std::path::PathBuf;

use super::TempDir;

const PCAPS: &str = "/usr/share/sip-tester";

pub fn pcap_for(key: char) -> String {
    let name = match key {
        '*' => "star".to_string(),
        '#' => "pound".to_string(),
        d => d.to_string(),
    };
    format!("{PCAPS}/dtmf_2833_{name}.pcap")
}

/// The key scenario with one pcap replay per key, 350 ms apart (each pcap lasts 140 ms).
pub fn pcap_scenario(dir: &TempDir, keys: &str) -> PathBuf {
    pcap_scenario_from(dir, "dtmf_keys.xml", keys)
}

/// Like `pcap_scenario`, spliced into another template from tests/sipp/.
pub fn pcap_scenario_from(dir: &TempDir, template: &str, keys: &str) -> PathBuf {
    let plays: String = keys
        .chars()
        .map(|k| {
            let pcap = pcap_for(k);
            assert!(std::path::Path::new(&pcap).exists(), "{pcap} missing: apt-get install -y sip-tester");
            format!("  <nop><action><exec play_pcap_audio=\"{pcap}\"/></action></nop>\n  <pause milliseconds=\"350\"/>\n")
        })
        .collect();
    write_scenario_from(dir, template, &plays)
}

/// The key scenario with one SIP INFO (application/dtmf-relay) per key.
pub fn info_scenario(dir: &TempDir, keys: &str) -> PathBuf {
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

pub fn write_scenario(dir: &TempDir, keys: &str) -> PathBuf {
    write_scenario_from(dir, "dtmf_keys.xml", keys)
}

fn write_scenario_from(dir: &TempDir, template: &str, keys: &str) -> PathBuf {
    let template = std::fs::read_to_string(super::scenario(template)).unwrap();
    let path = dir.0.join("keys.xml");
    std::fs::write(&path, template.replace("KEYS\n", keys)).unwrap();
    path
}

pub fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
