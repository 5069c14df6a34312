//! An application asked while the call rings: its first verb `reject` refuses the call (486 for
//! busy, 603 otherwise) before it is ever answered, in either dialect; a caller who hangs up
//! while the application thinks is let go, and the late reply answers nothing.

use crate::support;

use std::time::Duration;

use support::{assert_sipp_file_ok, Ivr, TempDir};

const FLOW: &str = "welcome = \"welcome\"\nstart = \"app\"\n[outcomes]\nno_answer = \"goodbye\"\ngoodbye = \"goodbye\"\nerror = \"sorry_error\"\n[steps.app]\nremote = \"line\"\n";

/// The IVR with the flow above, its application at `port` speaking `dialect`.
fn ivr_asking(dir: &TempDir, port: u16, dialect: &str) -> Ivr {
    let flow = dir.0.join("line.toml");
    std::fs::write(&flow, FLOW).unwrap();
    let url = format!("http://127.0.0.1:{port}/app");
    Ivr::start(
        "reject",
        &[
            ("IVR_FLOW__FILE", flow.to_str().unwrap()),
            ("IVR_ENDPOINTS__LINE__URL", &url),
            ("IVR_ENDPOINTS__LINE__SECRET", "line-application-secret"),
            ("IVR_ENDPOINTS__LINE__DIALECT", dialect),
        ],
    )
}

/// The scenario that expects 180, then `status`.
fn refused_with(dir: &TempDir, status: u16) -> std::path::PathBuf {
    let template = support::project_dir().join("tests/sipp/refused_ringing.xml");
    let scenario = std::fs::read_to_string(template)
        .unwrap()
        .replace("STATUS", &status.to_string());
    let path = dir.0.join(format!("refused_{status}.xml"));
    std::fs::write(&path, scenario).unwrap();
    path
}

#[test]
fn a_json_reject_busy_is_486_and_a_twiml_reject_is_603_never_answered() {
    for (dialect, reply, status) in [
        (
            "json",
            r#"{"verbs": [{"reject": {"reason": "busy"}}]}"#,
            486,
        ),
        ("twiml", "<Response><Reject/></Response>", 603),
    ] {
        let dir = TempDir::new("reject");
        let (port, got) = support::http::serve(move |_, _| (200, reply.to_string()));
        let ivr = ivr_asking(&dir, port, dialect);
        assert_sipp_file_ok(&ivr, &refused_with(&dir, status), &[]);
        ivr.wait_for_line(
            &[
                "the application rejected the call",
                &format!("status={status}"),
            ],
            Duration::from_secs(5),
        );
        // SIPp's scenario fails on a 200; the call ends refused.
        ivr.wait_for_line(
            &["media released", "reason=\"rejected\""],
            Duration::from_secs(5),
        );
        let asked = got.lock().unwrap().clone();
        assert_eq!(asked.len(), 1, "asked once, while ringing: {asked:?}");
        assert!(asked[0].0.starts_with("POST /app "), "{asked:?}");
    }
}

#[test]
fn a_caller_who_hangs_up_while_the_application_thinks_is_let_go() {
    let dir = TempDir::new("reject-cancel");
    let (port, got) = support::http::serve(|_, _| {
        std::thread::sleep(Duration::from_secs(2));
        (
            200,
            r#"{"verbs": [{"say": {"text": "Hello"}}]}"#.to_string(),
        )
    });
    let ivr = ivr_asking(&dir, port, "json");
    let scenario = support::project_dir().join("tests/sipp/cancel_ringing.xml");
    assert_sipp_file_ok(&ivr, &scenario, &[]);
    ivr.wait_for_line(&["media released", "cancelled"], Duration::from_secs(5));
    // The reply comes after the CANCEL: it is dropped, no 200 goes (SIPp's scenario, pausing
    // 3 s after the 487, fails on one) and no flow runs it.
    let started = std::time::Instant::now();
    while got.lock().unwrap().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(10), "never asked");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(ivr.count("ending the call"), 0, "{}", ivr.log_text());
}

#[test]
fn an_application_that_fails_while_the_call_rings_gets_the_call_answered_with_the_error_prompt() {
    assert!(
        support::keys::is_root(),
        "pcap replay needs a raw socket: run the tests as root (see README)"
    );
    let dir = TempDir::new("reject-broken");
    let (port, got) = support::http::serve(|_, _| (500, "{}".to_string()));
    let ivr = ivr_asking(&dir, port, "json");
    // No keys: the caller waits for our BYE, which follows the error prompt.
    assert_sipp_file_ok(&ivr, &support::keys::pcap_scenario(&dir, ""), &[]);
    ivr.wait_for_line(
        &["the application did not answer", "answered 500"],
        Duration::from_secs(5),
    );
    ivr.wait_for_log("reason=\"server-bye\"", Duration::from_secs(10));
    // Asked while ringing, tried twice more on the 5xx, and not asked again once answered.
    assert_eq!(got.lock().unwrap().len(), 3, "{:?}", got.lock().unwrap());
}
