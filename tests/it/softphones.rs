//! Real softphones, headless on loopback: baresip records what it hears and keys in.

use crate::support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::audio::{active_span, expected_stream, read_recording};
use support::linphone::Linphone;
use support::{assert_conversation, baresip, free_port, require_tool, Ivr, TempDir};

#[test]
fn baresip_hears_the_welcome_and_the_first_question() {
    require_tool("baresip", "baresip");
    let ivr = Ivr::start("baresip", &[]);
    let dir = TempDir::new("baresip");
    baresip::config(
        &dir.0,
        free_port(),
        free_port(),
        &baresip::Secure::default(),
    );
    let status = Command::new("timeout")
        .args([
            "40",
            "baresip",
            "-f",
            dir.0.to_str().unwrap(),
            "-t",
            "10",
            "-e",
        ])
        .arg(format!("/dial sip:ivr@{}", ivr.addr()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "baresip exited with {status}");
    ivr.wait_for_log("reason=\"caller-bye\"", Duration::from_secs(5));
    let recording = baresip::heard(&dir.0).expect("baresip wrote no recording of what it heard");
    let (heard, rate) = read_recording(&recording);
    let heard_span = active_span(&heard, rate);
    let expected_span = active_span(&expected_stream(&["welcome", "enter_account"]), 8000);
    eprintln!("heard {heard_span:.3} s of audio, expected {expected_span:.3} s");
    assert!(
        expected_span > 5.0,
        "the shipped prompts are longer than that"
    );
    let ratio = heard_span / expected_span;
    assert!(
        (0.95..=1.05).contains(&ratio),
        "heard {heard_span:.3} s, expected {expected_span:.3} s"
    );
}

#[test]
fn baresip_sndcode_keys_arrive_once_each_as_rfc2833() {
    let ivr = Ivr::start("baresip-keys", &[]);
    let dir = TempDir::new("baresip-keys");
    let (mut child, ctrl) = baresip::call_ivr(&ivr, &dir.0, 20);
    ivr.wait_for_log("call confirmed", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    baresip::press(ctrl, "24680#1357#19");
    // A whole conversation: log in, hear the balance (1), leave (9); the IVR hangs up.
    assert_conversation(&ivr, "24680", &["1", "9"]);
    ivr.wait_for_line(&["key", "source=\"rfc4733\""], Duration::from_secs(1));
    let _ = baresip::command(ctrl, "quit", "");
    let _ = child.wait();
}

/// sox writes the tones a phone without telephone-event would play into the call.
fn sox_keys(path: &Path, keys: &str) {
    require_tool("sox", "sox");
    let dir = path.parent().unwrap();
    let mut parts = vec![dir.join("lead.wav")];
    let sox = |args: &[&str]| {
        let ok = Command::new("sox").args(args).status().unwrap().success();
        assert!(ok, "sox {args:?} failed");
    };
    let fmt = ["-r", "8000", "-b", "16", "-e", "signed-integer", "-c", "1"];
    let silence = |p: &Path, secs: &str| {
        sox(&[&["-n"][..], &fmt, &[p.to_str().unwrap(), "trim", "0", secs]].concat())
    };
    silence(&parts[0], "1.5");
    for (i, key) in keys.chars().enumerate() {
        let (row, col) = match key {
            '1' => (697, 1209),
            '2' => (697, 1336),
            '3' => (697, 1477),
            '4' => (770, 1209),
            '5' => (770, 1336),
            '6' => (770, 1477),
            '7' => (852, 1209),
            '8' => (852, 1336),
            '9' => (852, 1477),
            '*' => (941, 1209),
            '0' => (941, 1336),
            '#' => (941, 1477),
            _ => panic!("no tone for {key}"),
        };
        let tone = dir.join(format!("k{i}.wav"));
        let (r, c) = (row.to_string(), col.to_string());
        sox(&[
            &["-n"][..],
            &fmt,
            &[
                tone.to_str().unwrap(),
                "synth",
                "0.1",
                "sine",
                &r,
                "synth",
                "0.1",
                "sine",
                "mix",
                &c,
                "gain",
                "-6",
            ],
        ]
        .concat());
        let gap = dir.join(format!("g{i}.wav"));
        silence(&gap, "0.2");
        parts.push(tone);
        parts.push(gap);
    }
    let tail = dir.join("tail.wav");
    silence(&tail, "20");
    parts.push(tail);
    let mut args: Vec<&str> = parts.iter().map(|p| p.to_str().unwrap()).collect();
    args.push(path.to_str().unwrap());
    sox(&args);
}

#[test]
fn inband_tones_from_baresip_without_telephone_event_are_heard() {
    let ivr = Ivr::start("inband", &[("IVR_DTMF__TELEPHONE_EVENT", "false")]);
    let dir = TempDir::new("inband");
    sox_keys(&dir.0.join("say.wav"), "12345#2468#9");
    let (mut child, ctrl) = baresip::call_ivr(&ivr, &dir.0, 30);
    assert_conversation(&ivr, "12345", &["9"]);
    ivr.wait_for_line(&["key", "source=\"inband\""], Duration::from_secs(1));
    let _ = baresip::command(ctrl, "quit", "");
    let _ = child.wait();
}

#[test]
fn linphonec_digit_lines_arrive_once_each() {
    require_tool("linphonec", "linphone-cli");
    let ivr = Ivr::start("linphone-keys", &[]);
    let dir = TempDir::new("linphone-keys");
    let mut phone = Linphone::start(&dir.0, None);
    phone.say(&format!("call sip:ivr@{}", ivr.addr()));
    ivr.wait_for_log("call confirmed", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(700));
    // Log in as the README's demo account, hear the balance (1), payments (2), leave (9).
    for key in "12345#2468#129".chars() {
        phone.say(&key.to_string());
        std::thread::sleep(Duration::from_millis(400));
    }
    assert_conversation(&ivr, "12345", &["1", "2", "9"]);
    phone.quit();
}
