//! A real redis-server on a port of its own, in memory only, stopped on drop.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::process::Peer;
use super::{free_port, require_tool, TempDir};

pub struct Redis {
    child: Option<Peer>,
    pub port: u16,
    dir: TempDir,
}

impl Redis {
    pub fn start(tag: &str) -> Redis {
        require_tool("redis-server", "redis-server");
        let mut redis = Redis {
            child: None,
            port: free_port(),
            dir: TempDir::new(tag),
        };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Starts it again on the same port (after `stop`), empty.
    pub fn restart(&mut self) {
        let child = Peer::spawn(
            Command::new("redis-server")
                .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&self.dir.0)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.cli(&["PING"]).trim() != "PONG" {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// One redis-cli command's output.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
