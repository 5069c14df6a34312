//! G.722 with a real softphone: baresip offering only G.722 holds a whole conversation by
//! telephone-event keys and hears the prompts in wideband.

use crate::support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::audio::{active_span, expected_stream, read_recording, write_wav};
use support::baresip::{self, Secure};
use support::{assert_conversation, require_tool, Ivr, TempDir};

/// RMS amplitude sox reports for `path`, after `effect` (e.g. a high-pass).
fn sox_rms(path: &Path, effect: &[&str]) -> f64 {
    require_tool("sox", "sox");
    let out = Command::new("sox")
        .arg(path)
        .args(["-n"])
        .args(effect)
        .arg("stat")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    text.lines()
        .find(|l| l.starts_with("RMS     amplitude"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no RMS amplitude from sox for {}:\n{text}", path.display()))
}

#[test]
fn baresip_with_only_g722_logs_in_and_hears_wideband_prompts() {
    let ivr = Ivr::start("g722", &[("IVR_SIP__CODECS", "[G722, PCMU]")]);
    let dir = TempDir::new("g722");
    let secure = Secure {
        codecs: Some("G722"),
        ..Secure::default()
    };
    // baresip's file source must match the codec's 16 kHz.
    write_wav(
        &dir.0.join("say.wav"),
        16000,
        std::iter::repeat_n(0, 16000 * 40),
    );
    let target = format!("sip:ivr@{}", ivr.addr());
    let (mut phone, ctrl) = baresip::call(&dir.0, &target, 40, &secure);
    ivr.wait_for_line(
        &["session negotiated", "codec=\"G722\""],
        Duration::from_secs(10),
    );
    ivr.wait_for_log("call confirmed", Duration::from_secs(5));
    // The welcome and the first question play whole before the first key.
    std::thread::sleep(Duration::from_secs(8));
    baresip::press(ctrl, "24680#1357#19");
    assert_conversation(&ivr, "24680", &["1", "9"]);
    let _ = baresip::command(ctrl, "quit", "");
    let _ = phone.wait();

    let recording = baresip::heard(&dir.0).expect("baresip wrote no recording of what it heard");
    let (heard, rate) = read_recording(&recording);
    assert_eq!(rate, 16000, "baresip decoded G.722 at 16 kHz");
    // The first 7 s hold the welcome and the first question, before any key.
    let opening = &heard[..(7 * rate as usize).min(heard.len())];
    let heard_span = active_span(opening, rate);
    let expected_span = active_span(&expected_stream(&["welcome", "enter_account"]), 8000);
    assert!(
        (heard_span / expected_span - 1.0).abs() < 0.05,
        "heard {heard_span:.3} s, expected {expected_span:.3} s"
    );
    // Narrowband audio has nothing above 4 kHz; the prompts sent in G.722 keep their sibilants.
    let full = sox_rms(&recording, &[]);
    let high = sox_rms(&recording, &["sinc", "4500"]);
    eprintln!("RMS {full:.5} in all, {high:.5} above 4.5 kHz");
    assert!(full > 0.01, "the recording is silent");
    assert!(
        high / full > 0.01,
        "no wideband energy: {high:.6} above 4.5 kHz of {full:.6}"
    );
}
