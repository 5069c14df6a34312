//! The operator's view of a running IVR: `/metrics` during and after a call, and the health
//! endpoints through a drain.

use crate::support;

use std::time::{Duration, Instant};

use support::http::{get, sample};
use support::raw::RawPhone;
use support::{free_port, Ivr, UNREAD_PIPE_BYTES};

/// The metrics page once `series` reads `want`; fails after 20 s (a reload reads every prompt
/// again, which takes seconds in a debug build on a busy machine).
fn wait_for_sample(port: u16, series: &str, want: f64) -> String {
    let start = Instant::now();
    loop {
        let (_, page) = get(port, "/metrics");
        if sample(&page, series) == Some(want) {
            return page;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{series} never read {want}:\n{page}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn metrics_follow_a_call_and_readiness_follows_a_drain() {
    let http = free_port();
    let ivr = Ivr::start("ops", &[("IVR_HTTP__LISTEN", &format!("127.0.0.1:{http}"))]);
    assert_eq!(get(http, "/health/live").0, 200);
    let health = std::process::Command::new(env!("CARGO_BIN_EXE_ivr"))
        .arg("health")
        .current_dir(support::project_dir())
        .env("IVR_HTTP__LISTEN", format!("127.0.0.1:{http}"))
        .output()
        .expect("run ivr health");
    assert!(health.status.success(), "ivr health: {health:?}");
    assert_eq!(
        get(http, "/health/ready"),
        (200, "{\"status\":\"ready\"}".into())
    );
    let (_, idle) = get(http, "/metrics");
    assert_eq!(sample(&idle, "ivr_calls_active"), Some(0.0), "{idle}");
    assert_eq!(
        sample(&idle, "ivr_rtp_port_pairs_free"),
        Some(5.0),
        "{idle}"
    );

    let phone = RawPhone::new("127.0.0.1", &ivr);
    let call = phone.call("ops-1").expect("answered");
    assert!(phone.hears_prompt(Duration::from_secs(3)));
    // Half a second of the prompt: about 25 packets.
    std::thread::sleep(Duration::from_millis(500));
    let during = wait_for_sample(http, "ivr_calls_active", 1.0);
    assert_eq!(sample(&during, "ivr_calls_active"), Some(1.0), "{during}");
    assert_eq!(sample(&during, "ivr_rtp_port_pairs_free"), Some(4.0));
    assert_eq!(
        sample(&during, "ivr_sip_requests_total{method=\"INVITE\"}"),
        Some(1.0)
    );
    assert!(sample(&during, "ivr_sip_responses_total{status=\"200\"}").is_some_and(|n| n >= 1.0));
    // The media threads add their packet counts to the metrics once a second.
    let started = std::time::Instant::now();
    let sent = loop {
        let (_, page) = get(http, "/metrics");
        let sent = sample(&page, "ivr_rtp_packets_total{direction=\"sent\"}").unwrap_or(0.0);
        if sent > 10.0 || started.elapsed() > Duration::from_secs(3) {
            break sent;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(sent > 10.0, "{sent} packets sent, counted within a second");

    phone.bye(&call);
    let after = wait_for_sample(http, "ivr_calls_active", 0.0);
    assert_eq!(sample(&after, "ivr_calls_active"), Some(0.0), "{after}");
    assert_eq!(
        sample(&after, "ivr_calls_ended_total{reason=\"caller-bye\"}"),
        Some(1.0)
    );

    // A call in progress keeps the server up through its drain.
    let staying = RawPhone::new("127.0.0.1", &ivr);
    staying.call("ops-2").expect("answered");
    ivr.signal("TERM");
    let start = Instant::now();
    let mut ready = get(http, "/health/ready");
    while ready.0 == 200 && start.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(20));
        ready = get(http, "/health/ready");
    }
    assert_eq!(ready, (503, "{\"status\":\"draining\"}".into()));
}

/// `ivr reload`, as an operator types it: the exit status and what it printed.
fn ivr_reload(http: u16) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ivr"))
        .arg("reload")
        .current_dir(support::project_dir())
        .env("IVR_HTTP__LISTEN", format!("127.0.0.1:{http}"))
        .output()
        .expect("run ivr reload");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn a_reload_changes_new_calls_only_and_a_broken_flow_is_refused() {
    let dir = support::TempDir::new("reload");
    let flow = dir.0.join("flow.toml");
    let shipped =
        std::fs::read_to_string(support::project_dir().join("sip-config/flow.toml")).unwrap();
    std::fs::write(&flow, &shipped).unwrap();
    let http = free_port();
    let ivr = Ivr::start(
        "reload",
        &[
            ("IVR_HTTP__LISTEN", &format!("127.0.0.1:{http}")),
            ("IVR_FLOW__FILE", flow.to_str().unwrap()),
        ],
    );
    let live = RawPhone::new("127.0.0.1", &ivr);
    live.call("before-reload").expect("answered");

    // New calls end after 2 s; the call in progress keeps its 900 s.
    let short = shipped.replace("max_call_seconds = 900", "max_call_seconds = 2");
    std::fs::write(&flow, short).unwrap();
    let (ok, said) = ivr_reload(http);
    assert!(ok && said.contains("reloaded"), "{said}");
    let next = RawPhone::new("127.0.0.1", &ivr);
    next.call("after-reload").expect("answered");
    assert!(
        next.await_bye(Duration::from_secs(8)).is_some(),
        "the new flow's limit"
    );
    assert!(
        live.await_bye(Duration::from_millis(500)).is_none(),
        "the live call goes on"
    );

    // A broken flow is refused with its reason, and the last good one stays.
    std::fs::write(&flow, "this is not a flow").unwrap();
    let (ok, said) = ivr_reload(http);
    assert!(!ok, "a broken flow must be refused: {said}");
    assert!(
        said.contains("flow.toml"),
        "the reason names the file: {said}"
    );
    let third = RawPhone::new("127.0.0.1", &ivr);
    third.call("after-broken").expect("answered");
    assert!(
        third.await_bye(Duration::from_secs(8)).is_some(),
        "still the 2 s flow"
    );

    // SIGHUP reloads too.
    std::fs::write(&flow, &shipped).unwrap();
    ivr.signal("HUP");
    let page = wait_for_sample(http, "ivr_reloads_total{outcome=\"ok\"}", 2.0);
    assert_eq!(
        sample(&page, "ivr_reloads_total{outcome=\"refused\"}"),
        Some(1.0)
    );
    let fourth = RawPhone::new("127.0.0.1", &ivr);
    fourth.call("after-hup").expect("answered");
    assert!(
        fourth.await_bye(Duration::from_secs(4)).is_none(),
        "back to 900 s"
    );
    assert!(live.await_bye(Duration::from_millis(100)).is_none());
}

#[test]
fn json_logs_are_one_object_per_line() {
    let ivr = Ivr::start("json-log", &[("IVR_LOG__FORMAT", "json")]);
    let phone = RawPhone::new("127.0.0.1", &ivr);
    let call = phone.call("json-1").expect("answered");
    phone.bye(&call);
    ivr.wait_for_log("media released", Duration::from_secs(5));
    let text = ivr.log_text();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let offered = lines
        .iter()
        .find(|l| l["fields"]["message"] == "call offered")
        .expect("the call's first line");
    assert_eq!(offered["fields"]["call_id"], "json-1");
}

/// Nobody reads the server's standard error (journald stalled, a pipe full): logging must hold
/// up no call. The pipe is one page, which the first calls' lines fill; before logging went
/// through its own thread, the next write blocked signalling and media, and the next INVITE
/// went unanswered.
#[test]
fn a_log_pipe_nobody_reads_holds_up_no_call() {
    let http = free_port();
    let listen = format!("127.0.0.1:{http}");
    let mut ivr = Ivr::start_with_unread_stderr("unread-log", &[("IVR_HTTP__LISTEN", &listen)]);
    for n in 0..20 {
        let phone = RawPhone::new("127.0.0.1", &ivr);
        let call = phone
            .call(&format!("unread-log-{n}"))
            .unwrap_or_else(|e| panic!("call {n} was not answered: {e}"));
        assert!(
            phone.hears_prompt(Duration::from_secs(3)),
            "call {n} heard no prompt"
        );
        phone.bye(&call);
    }
    let pipe_was_full = {
        use std::io::Read;
        let mut stderr = ivr.take_stderr().expect("stderr is a pipe");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut full = [0u8; UNREAD_PIPE_BYTES];
            let _ = tx.send(stderr.read_exact(&mut full).is_ok());
        });
        rx.recv_timeout(Duration::from_secs(2)).unwrap_or(false)
    };
    assert!(
        pipe_was_full,
        "the log never filled its pipe: the test proved nothing"
    );
    // Far from the writer's queue of lines: none dropped yet, and the operator can watch that.
    let (_, page) = get(http, "/metrics");
    assert_eq!(
        sample(&page, "ivr_log_lines_dropped_total"),
        Some(0.0),
        "{page}"
    );
}
