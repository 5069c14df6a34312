//! The example applications of `sip-config/examples/apps/`, run as the README says: Python on
//! a free loopback port, writing one JSON line per request they get.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::process::Peer;
use super::{free_port, project_dir, TempDir};

/// A running example application.
pub struct App {
    _process: Peer,
    pub port: u16,
    log: PathBuf,
}

impl App {
    /// Starts `sip-config/examples/apps/<script>` with its secret (or auth token).
    pub fn start(script: &str, secret: &str, dir: &TempDir) -> App {
        let log = dir.0.join(format!("{script}.jsonl"));
        let port = free_port();
        let path = project_dir().join("sip-config/examples/apps").join(script);
        let process = Peer::spawn(Command::new("python3").args([
            path.to_str().unwrap(),
            &port.to_string(),
            secret,
            log.to_str().unwrap(),
        ]))
        .expect("python3 runs the application");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{script} did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        App {
            _process: process,
            port,
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// What it has been sent so far, a JSON object per request.
    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits until `enough` says the requests so far suffice, and returns them.
    pub fn wait_for(&self, enough: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let requests = self.requests();
            if enough(&requests) {
                return requests;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the application's requests never sufficed: {requests:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
