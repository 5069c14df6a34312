//! Registering with a trunk against SIPp as the registrar: the digest answer is checked by
//! SIPp's own code, the grant is taken, and a drained IVR unregisters with `Expires: 0`.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::{free_port, require_tool, scenario, Ivr, TempDir};

/// SIPp playing `scenario` as a registrar on a port of its own.
fn registrar(scenario_file: &str, dir: &TempDir) -> (std::process::Child, u16) {
    require_tool("sipp", "sip-tester");
    let registrar_port = free_port();
    let sipp = Command::new("sipp")
        .current_dir(&dir.0)
        .args(["-sf", scenario(scenario_file).to_str().unwrap()])
        .args(["-i", "127.0.0.1", "-p", &registrar_port.to_string()])
        .args([
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            "30s",
            "-timeout_error",
            "-trace_err",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sipp");
    std::thread::sleep(Duration::from_millis(300));
    (sipp, registrar_port)
}

#[test]
fn the_ivr_registers_with_digest_and_unregisters_when_it_stops() {
    let dir = TempDir::new("registrar");
    let (sipp, registrar_port) = registrar("registrar.xml", &dir);
    let http = free_port();
    let mut ivr = Ivr::start(
        "registration",
        &[
            (
                "IVR_TRUNK__REGISTRAR",
                &format!("sip:127.0.0.1:{registrar_port}"),
            ),
            ("IVR_TRUNK__USERNAME", "ivr1"),
            ("IVR_TRUNK__PASSWORD", "s3cret"),
            ("IVR_SHUTDOWN__GRACE_S", "1"),
            ("IVR_HTTP__LISTEN", &format!("127.0.0.1:{http}")),
        ],
    );
    ivr.wait_for_line(
        &["status=\"registered\"", "registered for 60 s"],
        Duration::from_secs(10),
    );
    assert!(
        !ivr.log_text().contains("s3cret"),
        "the password never reaches the log"
    );
    ivr.signal("TERM");
    assert!(
        ivr.wait_exit(Duration::from_secs(10)).is_some(),
        "the IVR stops"
    );
    let output = sipp.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "SIPp's registrar saw the whole exchange: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        ivr.log_text().contains("status=\"unregistered\""),
        "{}",
        ivr.log_text()
    );
}

#[test]
fn retry_after_a_proxy_challenge_a_stale_nonce_and_min_expires_are_all_honoured() {
    let dir = TempDir::new("registrar-odd");
    let (sipp, registrar_port) = registrar("registrar_odd.xml", &dir);
    let mut ivr = Ivr::start(
        "registration-odd",
        &[
            (
                "IVR_TRUNK__REGISTRAR",
                &format!("sip:127.0.0.1:{registrar_port}"),
            ),
            ("IVR_TRUNK__USERNAME", "ivr1"),
            ("IVR_TRUNK__PASSWORD", "s3cret"),
            ("IVR_SHUTDOWN__GRACE_S", "1"),
        ],
    );
    ivr.wait_for_line(
        &["status=\"failed\"", "refused with 503; retrying in 2 s"],
        Duration::from_secs(5),
    );
    ivr.wait_for_line(
        &["status=\"registered\"", "registered for 7200 s"],
        Duration::from_secs(10),
    );
    ivr.signal("TERM");
    assert!(
        ivr.wait_exit(Duration::from_secs(10)).is_some(),
        "the IVR stops"
    );
    let output = sipp.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "SIPp's registrar saw the whole exchange: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
