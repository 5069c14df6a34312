//! Kamailio as a plain process (`kamailio -DD -E`), from a config text the test prepared, with
//! its control socket for `kamcmd`; stopped on drop.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::process::Peer;
use super::{require_tool, TempDir};

pub struct Kamailio {
    _process: Peer,
    pub rundir: PathBuf,
    log: PathBuf,
}

/// Where Debian put Kamailio's modules (the path names the architecture).
pub fn modules_dir() -> String {
    std::fs::read_dir("/usr/lib")
        .unwrap()
        .flatten()
        .map(|e| e.path().join("kamailio/modules"))
        .find(|p| p.join("tm.so").exists())
        .expect("kamailio's modules (apt-get install kamailio)")
        .display()
        .to_string()
}

impl Kamailio {
    /// Starts Kamailio on `cfg`, where `@RUNDIR@` and `@MODULES@` are filled in.
    pub fn start(dir: &TempDir, cfg: &str) -> Kamailio {
        require_tool("kamailio", "kamailio");
        let rundir = dir.0.join("run");
        std::fs::create_dir_all(&rundir).unwrap();
        let cfg = cfg
            .replace("@RUNDIR@", rundir.to_str().unwrap())
            .replace("@MODULES@", &modules_dir());
        let cfg_path = dir.0.join("kamailio.cfg");
        std::fs::write(&cfg_path, cfg).unwrap();
        let log = dir.0.join("kamailio.log");
        let process = Peer::spawn(
            Command::new("kamailio")
                .args([
                    "-f",
                    cfg_path.to_str().unwrap(),
                    "-DD",
                    "-E",
                    "-m",
                    "64",
                    "-M",
                    "8",
                ])
                .args(["-Y", rundir.to_str().unwrap()])
                .args(["-P", rundir.join("kamailio.pid").to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap()),
        )
        .expect("start kamailio");
        let kamailio = Kamailio {
            _process: process,
            rundir,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while kamailio.rpc(&["core.version"]).is_none() {
            assert!(
                Instant::now() < deadline,
                "kamailio did not start: {}",
                kamailio.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        kamailio
    }

    pub fn rpc(&self, command: &[&str]) -> Option<String> {
        let socket = format!("unix:{}", self.rundir.join("kamailio_ctl").display());
        let output = Command::new("kamcmd")
            .args(["-s", &socket])
            .args(command)
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}
