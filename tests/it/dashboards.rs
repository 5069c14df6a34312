//! The dashboard and the alerts against the real parts: Debian's Prometheus scrapes a live IVR
//! (registered with a trunk, SIPp as its registrar) that takes a real call, logging in through
//! the README's JSON application; then every query of every panel of
//! `packaging/grafana/ivr.json` must return data, and every alert of
//! `packaging/prometheus/alerts.yml` must be a valid query whose `ivr_` series all exist (a
//! metric renamed on one side fails here). `promtool check rules` passes on the alerts.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::apps::App;
use support::keys::{is_root, pcap_scenario};
use support::process::Peer;
use support::{assert_sipp_file_ok, free_port, project_dir, require_tool, scenario, Ivr, TempDir};

/// A GET of Prometheus's HTTP API (HTTP/1.0: one plain body): the JSON it answers.
fn prometheus_get(port: u16, path: &str) -> Value {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("Prometheus listens");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or(Value::Null)
}

fn query(port: u16, expr: &str) -> Value {
    let encoded: String = form_urlencoded::byte_serialize(expr.as_bytes()).collect();
    prometheus_get(port, &format!("/api/v1/query?query={encoded}"))
}

/// Prometheus scraping the IVR's `/metrics` at `target` every second, with the alerts loaded.
fn start_prometheus(dir: &TempDir, target: u16) -> (Peer, u16) {
    require_tool("prometheus", "prometheus");
    let port = free_port();
    let rules = project_dir().join("packaging/prometheus/alerts.yml");
    let config = dir.0.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [{rules:?}]\nscrape_configs:\n  - job_name: ivr\n    static_configs:\n      - targets: [\"127.0.0.1:{target}\"]\n"
        ),
    )
    .unwrap();
    let prometheus = Peer::spawn(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.0.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .expect("prometheus starts");
    let started = Instant::now();
    while support::http::get_status(port, "/-/ready") != Some(200) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "Prometheus never became ready"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    (prometheus, port)
}

/// SIPp as the trunk's registrar.
fn registrar(dir: &TempDir) -> (Peer, u16) {
    require_tool("sipp", "sip-tester");
    let port = free_port();
    let sipp = Peer::spawn(
        Command::new("sipp")
            .current_dir(&dir.0)
            .args(["-sf", scenario("registrar.xml").to_str().unwrap()])
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-m", "1", "-nostdin", "-timeout", "120s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .expect("start sipp");
    std::thread::sleep(Duration::from_millis(300));
    (sipp, port)
}

#[test]
fn the_alerts_pass_promtool() {
    require_tool("promtool", "prometheus");
    let rules = project_dir().join("packaging/prometheus/alerts.yml");
    let out = Command::new("promtool")
        .args(["check", "rules", rules.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_panel_and_alert_finds_its_metrics_on_a_live_ivr() {
    assert!(
        is_root(),
        "pcap replay needs a raw socket: run the tests as root (see README)"
    );
    let dir = TempDir::new("dashboards");
    let (_registrar, registrar_port) = registrar(&dir);
    let secret = "dashboard-application-secret";
    let app = App::start("bank_app.py", secret, &dir);
    let http = free_port();
    let flow = project_dir().join("sip-config/examples/remote.toml");
    let ivr = Ivr::start(
        "dashboards",
        &[
            ("IVR_FLOW__FILE", flow.to_str().unwrap()),
            ("IVR_ENDPOINTS__APP__URL", &app.url("/app")),
            ("IVR_ENDPOINTS__APP__SECRET", secret),
            ("IVR_HTTP__LISTEN", &format!("127.0.0.1:{http}")),
            (
                "IVR_TRUNK__REGISTRAR",
                &format!("sip:127.0.0.1:{registrar_port}"),
            ),
            ("IVR_TRUNK__USERNAME", "ivr1"),
            ("IVR_TRUNK__PASSWORD", "s3cret"),
        ],
    );
    ivr.wait_for_line(&["status=\"registered\""], Duration::from_secs(10));
    let (_prometheus, port) = start_prometheus(&dir, http);
    // A login: a wrong PIN, then the right one, through the application.
    assert_sipp_file_ok(&ivr, &pcap_scenario(&dir, "12345#1111#2468#"), &[]);
    ivr.wait_for_log("reason=\"server-bye\"", Duration::from_secs(10));
    // Scrapes after the call, for rates over two samples at least.
    std::thread::sleep(Duration::from_secs(4));

    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(project_dir().join("packaging/grafana/ivr.json")).unwrap(),
    )
    .unwrap();
    let mut empty = Vec::new();
    let mut asked = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let answer = query(port, expr);
            asked += 1;
            assert_eq!(answer["status"], "success", "{expr}: {answer}");
            if answer["data"]["result"]
                .as_array()
                .is_none_or(Vec::is_empty)
            {
                empty.push(format!("{}: {expr}", panel["title"]));
            }
        }
    }
    assert!(asked >= 19, "only {asked} queries in the dashboard");
    assert!(
        empty.is_empty(),
        "panels without data:\n{}",
        empty.join("\n")
    );

    let rules = prometheus_get(port, "/api/v1/rules");
    let alerts: Vec<&Value> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    assert!(alerts.len() >= 6, "{rules}");
    let series = regex::Regex::new(r"ivr_[a-z_]+").unwrap();
    for alert in alerts {
        let expr = alert["query"].as_str().unwrap();
        assert_eq!(alert["health"], "ok", "{}: {alert}", alert["name"]);
        assert_eq!(query(port, expr)["status"], "success", "{expr}");
        for name in series.find_iter(expr) {
            let found = query(port, name.as_str());
            assert!(
                found["data"]["result"]
                    .as_array()
                    .is_some_and(|r| !r.is_empty()),
                "alert {}: no series {}",
                alert["name"],
                name.as_str()
            );
        }
    }
}
