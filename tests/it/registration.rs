//! Registering with a trunk against SIPp as the registrar: the digest answer is checked by
//! SIPp's own code, the grant is taken, and a drained IVR unregisters with `Expires: 0`.

use crate::support;
use support::process::Peer;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::{free_port, require_tool, scenario, Ivr, TempDir};

/// SIPp playing `scenario` as a registrar on a port of its own.
fn registrar(scenario_file: &str, dir: &TempDir) -> (Peer, u16) {
    require_tool("sipp", "sip-tester");
    let registrar_port = free_port();
    let sipp = Peer::spawn(
        Command::new("sipp")
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
            .stderr(Stdio::piped()),
    )
    .expect("start sipp");
    std::thread::sleep(Duration::from_millis(300));
    (sipp, registrar_port)
}

/// Stops the IVR (it unregisters as it drains) and checks SIPp's registrar saw `what`.
fn stop_and_check(ivr: &mut Ivr, sipp: Peer, what: &str) {
    ivr.signal("TERM");
    assert!(
        ivr.wait_exit(Duration::from_secs(10)).is_some(),
        "the IVR stops"
    );
    let output = sipp.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
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
    stop_and_check(&mut ivr, sipp, "SIPp's registrar saw the whole exchange");
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
    stop_and_check(&mut ivr, sipp, "SIPp's registrar saw the whole exchange");
}

/// dnsmasq answering for `trunk.test`: SRV records for `_sip._udp` naming `srv` (priority,
/// host, port) and A records for every host, on a port of its own.
fn dns(dir: &TempDir, srv: &[(u16, &str, u16)]) -> (Peer, u16) {
    require_tool("dnsmasq", "dnsmasq-base");
    let port = free_port();
    let mut args = vec![
        "-d".to_string(),
        "-p".into(),
        port.to_string(),
        "--listen-address=127.0.0.1".into(),
        "--bind-interfaces".into(),
        "--no-resolv".into(),
        "--no-hosts".into(),
        "--log-queries".into(),
        format!("--pid-file={}", dir.0.join("dnsmasq.pid").display()),
    ];
    for (priority, host, target_port) in srv {
        args.push(format!(
            "--srv-host=_sip._udp.trunk.test,{host},{target_port},{priority},0"
        ));
        args.push(format!("--host-record={host},127.0.0.1"));
    }
    let child = Peer::spawn(
        Command::new("dnsmasq")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.0.join("dnsmasq.log")).unwrap()),
    )
    .expect("start dnsmasq");
    std::thread::sleep(Duration::from_millis(300));
    (child, port)
}

#[test]
fn the_registrar_is_found_by_srv_and_a_dead_first_target_hands_over_to_the_next() {
    let dir = TempDir::new("registrar-srv");
    let (sipp, registrar_port) = registrar("registrar.xml", &dir);
    // The first SRV target, by priority, has nothing listening.
    let dead = free_port();
    let (mut dnsmasq, dns_port) = dns(
        &dir,
        &[
            (10, "sip1.trunk.test", dead),
            (20, "sip2.trunk.test", registrar_port),
        ],
    );
    let mut ivr = Ivr::start(
        "registration-srv",
        &[
            ("IVR_TRUNK__REGISTRAR", "sip:trunk.test"),
            ("IVR_TRUNK__USERNAME", "ivr1"),
            ("IVR_TRUNK__PASSWORD", "s3cret"),
            ("IVR_SIP__DNS_SERVER", &format!("127.0.0.1:{dns_port}")),
            // Timer F (64·T1) decides when a silent target is given up: 3.2 s here.
            ("IVR_SIP__T1_MS", "50"),
            ("IVR_SHUTDOWN__GRACE_S", "1"),
        ],
    );
    ivr.wait_for_line(
        &[
            "trunk located",
            &format!("127.0.0.1:{dead}, 127.0.0.1:{registrar_port}"),
        ],
        Duration::from_secs(5),
    );
    ivr.wait_for_line(
        &[
            "no answer from the registrar: trying the next target",
            &format!("next=127.0.0.1:{registrar_port}"),
        ],
        Duration::from_secs(8),
    );
    ivr.wait_for_line(
        &["status=\"registered\"", "registered for 60 s"],
        Duration::from_secs(5),
    );
    stop_and_check(
        &mut ivr,
        sipp,
        "SIPp's registrar took the REGISTER, then the Expires: 0",
    );
    let _ = dnsmasq.kill();
    let _ = dnsmasq.wait();
}
