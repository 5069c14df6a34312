//! The operator's view of a running IVR: `/metrics` during and after a call, and the health
//! endpoints through a drain.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::raw::RawPhone;
use support::{free_port, Ivr};

/// A plain HTTP/1.1 GET: the status code and the body.
fn get(port: u16, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("the endpoint listens");
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let status = reply.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

/// The value of one sample line (`name{labels} value`) in a Prometheus text page.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

fn wait_for_sample(port: u16, series: &str, want: f64) -> String {
    let start = Instant::now();
    loop {
        let (_, page) = get(port, "/metrics");
        if sample(&page, series) == Some(want) || start.elapsed() > Duration::from_secs(5) {
            return page;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn metrics_follow_a_call_and_readiness_follows_a_drain() {
    let http = free_port();
    let ivr = Ivr::start("ops", &[("IVR_HTTP__LISTEN", &format!("127.0.0.1:{http}"))]);
    assert_eq!(get(http, "/health/live").0, 200);
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
    assert!(
        sample(&during, "ivr_rtp_packets_total{direction=\"sent\"}").is_some_and(|n| n > 10.0),
        "{during}"
    );

    phone.bye(&call);
    let after = wait_for_sample(http, "ivr_calls_active", 0.0);
    assert_eq!(sample(&after, "ivr_calls_active"), Some(0.0), "{after}");
    assert_eq!(
        sample(&after, "ivr_calls_ended_total{reason=\"caller-bye\"}"),
        Some(1.0)
    );

    ivr.signal("TERM");
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    let mut ready = get(http, "/health/ready");
    while ready.0 == 200 && start.elapsed() < Duration::from_secs(2) {
        ready = get(http, "/health/ready");
    }
    // The idle server may already be gone; if it still answers, it says it is draining.
    assert!(ready.0 == 503 || ready.0 == 0, "{ready:?}");
}
