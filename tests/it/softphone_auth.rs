//! Softphones with credentials (`[[sip.users]]`): baresip and linphonec register and call
//! with digest; a wrong password gets no call; SIPVicious learns no extension and cracks no
//! password faster than the lockout allows.

use crate::support;

use std::process::Command;
use std::time::Duration;

use support::baresip::{self, Secure};
use support::linphone::Linphone;
use support::{free_port, require_tool, Ivr, TempDir};

/// The softphone user, and an extension with a guessable password for the scanners.
const USER: &str = "alice";
const PASSWORD: &str = "Tr0ub4dor3x";
const EXTENSION: &str = "2001";
const USERS: &str = r#"[{username="alice", password_env="TEST_SIP_PW_ALICE"}, {username="2001", password_env="TEST_SIP_PW_2001"}]"#;

fn ivr_with_users(tag: &str, extra: &[(&str, &str)]) -> Ivr {
    let mut env = vec![
        ("IVR_SIP__USERS", USERS),
        // Not IVR_-prefixed: that namespace is the settings'.
        ("TEST_SIP_PW_ALICE", PASSWORD),
        ("TEST_SIP_PW_2001", "250"),
    ];
    env.extend_from_slice(extra);
    Ivr::start(tag, &env)
}

/// baresip registers as `user` with `password`, then dials the IVR; what the IVR logged.
fn baresip_call(ivr: &Ivr, tag: &str, password: &'static str) -> TempDir {
    let dir = TempDir::new(tag);
    let secure = Secure {
        account: Some((USER, password, ivr.addr())),
        ..Secure::default()
    };
    let target = format!("sip:ivr@{}", ivr.addr());
    let (mut child, _) = baresip::call(&dir.0, &target, 12, &secure);
    child.wait().unwrap();
    dir
}

#[test]
fn baresip_registers_and_calls_with_its_password() {
    require_tool("baresip", "baresip");
    let ivr = ivr_with_users("auth-baresip", &[]);
    let dir = baresip_call(&ivr, "auth-baresip-phone", PASSWORD);
    ivr.wait_for_line(
        &["softphone registered", "username=alice"],
        Duration::from_secs(2),
    );
    ivr.wait_for_line(
        &["caller authenticated", "username=alice"],
        Duration::from_secs(2),
    );
    ivr.wait_for_log("reason=\"caller-bye\"", Duration::from_secs(5));
    let recording = baresip::heard(&dir.0).expect("baresip recorded the call");
    let (heard, rate) = support::audio::read_recording(&recording);
    let span = support::audio::active_span(&heard, rate);
    assert!(
        span > 3.0,
        "baresip heard the prompts ({span:.1} s of audio)"
    );
    assert!(
        !ivr.log_text().contains(PASSWORD),
        "the password never reaches the log"
    );
}

#[test]
fn a_wrong_password_neither_registers_nor_calls() {
    require_tool("baresip", "baresip");
    let ivr = ivr_with_users("auth-wrong", &[]);
    baresip_call(&ivr, "auth-wrong-phone", "999");
    let log = ivr.log_text();
    assert!(log.contains("SIP credentials refused"), "{log}");
    assert!(!log.contains("softphone registered"));
    assert!(
        !log.contains("call offered"),
        "no call without the password"
    );
}

#[test]
fn linphonec_registers_and_calls_with_its_password() {
    require_tool("linphonec", "linphone-cli");
    // Linphone takes SHA-256 when offered first (RFC 8760).
    let algorithms = ("IVR_SIP__DIGEST_ALGORITHMS", r#"["SHA-256", "MD5"]"#);
    let ivr = ivr_with_users("auth-linphone", &[algorithms]);
    let dir = TempDir::new("auth-linphone-phone");
    let mut phone = Linphone::start(&dir.0, None);
    let addr = ivr.addr();
    phone.say(&format!("register sip:{USER}@{addr} sip:{addr} {PASSWORD}"));
    ivr.wait_for_line(
        &["softphone registered", "username=alice"],
        Duration::from_secs(10),
    );
    phone.say(&format!("call sip:ivr@{addr}"));
    ivr.wait_for_line(
        &["caller authenticated", "username=alice"],
        Duration::from_secs(10),
    );
    ivr.wait_for_log("session negotiated", Duration::from_secs(5));
    ivr.wait_for_line(
        &["digest accepted", "algorithm=\"SHA-256\""],
        Duration::from_secs(1),
    );
    let status = phone.quit();
    assert!(status.success(), "linphonec exited with {status}");
    ivr.wait_for_log("reason=\"caller-bye\"", Duration::from_secs(5));
}

fn svcrack(ivr: &Ivr) -> String {
    let output = Command::new("timeout")
        .args(["120", "svcrack", "-u", EXTENSION, "-r", "200-300"])
        .args(["-p", &ivr.port.to_string(), "-P", &free_port().to_string()])
        .arg("127.0.0.1")
        .output()
        .expect("run svcrack");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn svcrack_finds_the_password_only_when_the_lockout_is_lifted() {
    require_tool("svcrack", "sipvicious");
    // Control: with the lockout out of the way, the password (the 51st guess) is found, so
    // the tool and the range do work.
    let open = ivr_with_users("svcrack-open", &[("IVR_SIP__AUTH_MAX_FAILURES", "1000")]);
    let found = svcrack(&open);
    assert!(found.contains("| 2001      | 250"), "control run:\n{found}");
    // With the default five failures per source, every later guess is refused unread.
    let ivr = ivr_with_users("svcrack", &[]);
    let output = svcrack(&ivr);
    assert!(output.contains("found nothing"), "{output}");
    assert!(!output.contains("| 250"), "{output}");
    // Five guesses evaluated: four refused, the fifth locks the source.
    assert_eq!(ivr.count("SIP credentials refused source="), 4);
    assert_eq!(
        ivr.count("wrong SIP credentials: source, network or user locked"),
        1
    );
}

#[test]
fn svwar_cannot_tell_a_real_extension_from_a_made_up_one() {
    require_tool("svwar", "sipvicious");
    let ivr = ivr_with_users("svwar-users", &[]);
    for method in ["REGISTER", "INVITE"] {
        let output = Command::new("timeout")
            .args(["60", "svwar", "-e", "1990-2010", "-m", method])
            .args(["-p", &ivr.port.to_string(), "-P", &free_port().to_string()])
            .args(["--force", "127.0.0.1"])
            .output()
            .expect("run svwar");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !text.contains("| 2001"),
            "{method}: svwar singled out 2001:\n{text}"
        );
        assert!(text.contains("found nothing"), "{method}:\n{text}");
    }
}
