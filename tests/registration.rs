//! Registering with a trunk against SIPp as the registrar: the digest answer is checked by
//! SIPp's own code, the grant is taken, and a drained IVR unregisters with `Expires: 0`.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::{free_port, require_tool, scenario, Ivr, TempDir};

#[test]
fn the_ivr_registers_with_digest_and_unregisters_when_it_stops() {
    require_tool("sipp", "sip-tester");
    let registrar_port = free_port();
    let http = free_port();
    let dir = TempDir::new("registrar");
    let sipp = Command::new("sipp")
        .current_dir(&dir.0)
        .args(["-sf", scenario("registrar.xml").to_str().unwrap()])
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
