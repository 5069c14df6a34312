//! Test harness: starts the built `ivr` on free loopback ports with its log captured, and runs
//! real peers (SIPp, baresip, linphonec) against it. A missing peer fails the test with the
//! command that installs it.
#![allow(dead_code)]

pub mod apps;
pub mod audio;
pub mod auth0_mock;
pub mod baresip;
pub mod capture;
pub mod http;
pub mod kamailio;
pub mod keys;
pub mod linphone;
pub mod process;
pub mod raw;
pub mod redis;

use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use process::Peer;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub fn require_tool(tool: &str, package: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(found, "`{tool}` is not installed: run `apt-get install -y {package}` (or the README's test command)");
}

/// A UDP+TCP port pair free right now on loopback, and never handed to another test of this
/// process (the tests run in parallel, and the kernel may offer a port again once it is closed).
pub fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() && GIVEN.lock().unwrap().insert(port) {
            return port;
        }
    }
}

static RTP_NEXT: AtomicU16 = AtomicU16::new(0);
static DIRS: AtomicU16 = AtomicU16::new(0);

/// Where RTP blocks are cut from: below the kernel's ephemeral range (32768+), where
/// free_port() finds SIP ports.
const RTP_RANGE: (u16, u16) = (20_000, 32_000);

/// A block of `n` RTP ports (even start), free right now and handed to no other test of this
/// process.
pub fn rtp_block(n: u16) -> (u16, u16) {
    let span = u32::from(RTP_RANGE.1 - RTP_RANGE.0 - n - 1);
    // Each test process starts at its own place in the range, so two runs side by side rarely
    // meet; one that finds a port taken moves on.
    let start = std::process::id() % 24 * 500;
    loop {
        let offset = u32::from(RTP_NEXT.fetch_add(n.max(2) + n % 2, Ordering::SeqCst));
        let first = RTP_RANGE.0 + ((start + offset) % span / 2 * 2) as u16;
        let last = first + n - 1;
        if (first..=last).all(|p| UdpSocket::bind(("127.0.0.1", p)).is_ok()) {
            return (first, last);
        }
    }
}

/// Resampled prompts kept between the servers the tests start, and between runs.
pub fn prompt_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("prompt-cache")
}

pub fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn scenario(name: &str) -> PathBuf {
    project_dir().join("tests/sipp").join(name)
}

/// How long a server may take to start before the test gives up: a debug build on a busy
/// two-core machine, beside other tests, takes seconds.
const READY_WITHIN: Duration = Duration::from_secs(120);

/// Five of the server's log-writing periods (`src/log_queue.rs`).
const LOG_SETTLE: Duration = Duration::from_millis(100);

/// One page: a handful of calls' log lines fill it.
pub const UNREAD_PIPE_BYTES: usize = 4096;

pub struct Ivr {
    child: Peer,
    pub port: u16,
    pub log: PathBuf,
    pub rtp: (u16, u16),
    /// Its log, its copy of the users and the PIN key made beside them.
    pub dir: TempDir,
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "ivr-test-{tag}-{}-{}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Ivr {
    /// Starts the server with `env` (IVR_* overrides) on top of the test defaults.
    pub fn start(tag: &str, env: &[(&str, &str)]) -> Ivr {
        Self::start_with_ports(tag, env, 10)
    }

    pub fn start_with_ports(tag: &str, env: &[(&str, &str)], rtp_ports: u16) -> Ivr {
        let dir = TempDir::new(tag);
        let log = dir.0.join("ivr.log");
        let stderr = std::fs::File::create(&log).unwrap();
        let mut ivr = Self::spawn(dir, env, rtp_ports, stderr.into(), None);
        ivr.wait_ready();
        ivr
    }

    /// Starts the server allowed `nofile` open files (`prlimit`), as a host that runs out.
    pub fn start_with_fd_limit(tag: &str, env: &[(&str, &str)], nofile: u32) -> Ivr {
        require_tool("prlimit", "util-linux");
        let dir = TempDir::new(tag);
        let stderr = std::fs::File::create(dir.0.join("ivr.log")).unwrap();
        let mut ivr = Self::spawn(dir, env, 10, stderr.into(), Some(nofile));
        ivr.wait_ready();
        ivr
    }

    /// Waits for "IVR listening" while the server is alive; its log tail if it dies or hangs.
    fn wait_ready(&mut self) {
        let start = Instant::now();
        loop {
            if self.log_so_far().contains("IVR listening") {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "ivr exited before listening ({status}):\n{}",
                    self.log_tail()
                );
            }
            assert!(
                start.elapsed() < READY_WITHIN,
                "ivr not listening after {READY_WITHIN:?}:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last 40 lines of the log.
    fn log_tail(&self) -> String {
        let log = self.log_text();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Starts the server with its standard error on a pipe of `UNREAD_PIPE_BYTES` that nobody
    /// reads (a stalled journald); ready once it answers OPTIONS. Its log is not kept.
    pub fn start_with_unread_stderr(tag: &str, env: &[(&str, &str)]) -> Ivr {
        let ivr = Self::spawn(TempDir::new(tag), env, 10, Stdio::piped(), None);
        let pipe = ivr.child.stderr.as_ref().unwrap();
        let size = nix::fcntl::FcntlArg::F_SETPIPE_SZ(UNREAD_PIPE_BYTES as i32);
        nix::fcntl::fcntl(pipe, size).expect("shrink the stderr pipe");
        let phone = raw::RawPhone::new("127.0.0.1", &ivr);
        let start = Instant::now();
        loop {
            phone.send_options("ready");
            if phone
                .receive(Duration::from_millis(200))
                .is_some_and(|r| raw::status(&r) == 200)
            {
                return ivr;
            }
            assert!(start.elapsed() < READY_WITHIN, "ivr never answered OPTIONS");
        }
    }

    /// The read end of the server's standard error, when it was started on a pipe.
    pub fn take_stderr(&mut self) -> Option<std::process::ChildStderr> {
        self.child.stderr.take()
    }

    fn spawn(
        dir: TempDir,
        env: &[(&str, &str)],
        rtp_ports: u16,
        stderr: Stdio,
        nofile: Option<u32>,
    ) -> Ivr {
        let port = free_port();
        let rtp = rtp_block(rtp_ports);
        let log = dir.0.join("ivr.log");
        // prlimit sets the limit and execs the server: the same process, the same group.
        let mut cmd = match nofile {
            Some(n) => {
                let mut cmd = Command::new("prlimit");
                cmd.arg(format!("--nofile={n}:{n}"))
                    .arg("--")
                    .arg(env!("CARGO_BIN_EXE_ivr"));
                cmd
            }
            None => Command::new(env!("CARGO_BIN_EXE_ivr")),
        };
        cmd.current_dir(project_dir())
            .env("IVR_SIP__LISTEN", format!("127.0.0.1:{port}"))
            .env("IVR_RTP__PORTS", format!("{}-{}", rtp.0, rtp.1))
            .env("RUST_LOG", "debug")
            .env("IVR_PROMPTS__CACHE_DIR", prompt_cache())
            .stdout(Stdio::null())
            .stderr(stderr);
        // A copy of the users: a good login replaces a legacy hash in the file, and the PIN key
        // is made beside it; neither may touch the repository.
        if !env.iter().any(|(k, _)| *k == "IVR_DIRECTORY__USERS") {
            let users = dir.0.join("users.toml");
            std::fs::copy(project_dir().join("sip-config/users.example.toml"), &users).unwrap();
            cmd.env("IVR_DIRECTORY__USERS", &users);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = Peer::spawn(&mut cmd).expect("start ivr");
        Ivr {
            child,
            port,
            log,
            rtp,
            dir,
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The log as of now: what the server logged before this call is in it. Its lines reach the
    /// file from a thread that writes every 20 ms, so this waits five of those first.
    pub fn log_text(&self) -> String {
        std::thread::sleep(LOG_SETTLE);
        self.log_so_far()
    }

    /// The log file as it is, without waiting for lines still queued in the server.
    fn log_so_far(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log lines where `pin` stands as a value of its own. Call ids, tags and branches are
    /// random hex and can hold the same four digits inside them; a leaked PIN stands alone
    /// (`pin=2468`, `"2468"`), so only those are a leak.
    pub fn lines_with_pin(&self, pin: &str) -> Vec<String> {
        let part_of_a_token = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
        self.log_text()
            .lines()
            .filter(|line| {
                line.match_indices(pin).any(|(i, _)| {
                    let before = line[..i].chars().next_back();
                    let after = line[i + pin.len()..].chars().next();
                    !before.is_some_and(part_of_a_token) && !after.is_some_and(part_of_a_token)
                })
            })
            .map(str::to_owned)
            .collect()
    }

    pub fn count(&self, needle: &str) -> usize {
        self.log_text().matches(needle).count()
    }

    pub fn wait_for_log(&self, needle: &str, timeout: Duration) {
        self.wait_for_line(&[needle], timeout);
    }

    /// Waits for one log line holding every one of `needles`.
    pub fn wait_for_line(&self, needles: &[&str], timeout: Duration) {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self
                .log_so_far()
                .lines()
                .any(|l| needles.iter().all(|n| l.contains(n)))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "ivr log never showed {needles:?} within {timeout:?}:\n{}",
            self.log_text()
        );
    }

    /// CPU time the server has used so far (user + system), from /proc.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_millis(ticks * 10)
    }

    /// Sends the server a signal by name (`TERM`, `INT`, `HUP`).
    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{name} failed");
    }

    /// Waits for the server to exit on its own: its status, or `None` if it is still running.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < within {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn assert_alive(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "ivr exited:\n{}",
            self.log_text()
        );
    }
}

impl Drop for Ivr {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- ivr log ---\n{}", self.log_text());
        }
    }
}

/// Runs one SIPp scenario against the IVR and returns its output; exit code 0 means every
/// message of the scenario went as written.
pub fn sipp(ivr: &Ivr, scenario_file: &str, extra: &[&str]) -> Output {
    sipp_file(ivr, &scenario(scenario_file), extra)
}

/// Runs a scenario from any path (one the test wrote).
pub fn sipp_file(ivr: &Ivr, scenario_path: &std::path::Path, extra: &[&str]) -> Output {
    sipp_to(&ivr.addr(), scenario_path, extra)
}

/// Runs a scenario against `target` (`host:port`: a proxy in front of the IVR, say).
pub fn sipp_to(target: &str, scenario_path: &std::path::Path, extra: &[&str]) -> Output {
    let scenario_file = scenario_path.display();
    require_tool("sipp", "sip-tester");
    let local = free_port();
    let media = rtp_block(4).0;
    let dir = TempDir::new("sipp");
    let mut cmd = Command::new("sipp");
    cmd.current_dir(&dir.0)
        .arg(target)
        .args(["-sf", scenario_path.to_str().unwrap()])
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &local.to_string(),
            "-mp",
            &media.to_string(),
        ])
        .args([
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            "60s",
            "-timeout_error",
            "-trace_err",
        ])
        .args(extra);
    let output = cmd.output().expect("run sipp");
    let errors = std::fs::read_dir(&dir.0)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("errors.log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    if !output.status.success() {
        eprintln!(
            "sipp {scenario_file} failed:\n{}\n{errors}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output
}

pub fn assert_sipp_ok(ivr: &Ivr, scenario_file: &str, extra: &[&str]) {
    assert_sipp_file_ok(ivr, &scenario(scenario_file), extra);
}

pub fn assert_sipp_file_ok(ivr: &Ivr, scenario_path: &std::path::Path, extra: &[&str]) {
    let scenario_file = scenario_path.display();
    let out = sipp_file(ivr, scenario_path, extra);
    assert!(
        out.status.success(),
        "SIPp scenario {scenario_file} failed (exit {:?}); ivr log:\n{}",
        out.status.code(),
        ivr.log_text()
    );
}

/// The caller logged in as `account` (local directory), chose `options` in order, each once,
/// and the IVR hung up.
pub fn assert_conversation(ivr: &Ivr, account: &str, options: &[&str]) {
    ivr.wait_for_line(
        &[
            "caller verified",
            &format!("user=local|***{}", &account[account.len() - 2..]),
        ],
        Duration::from_secs(15),
    );
    for key in options {
        ivr.wait_for_line(
            &["menu option", &format!("key={key}")],
            Duration::from_secs(15),
        );
    }
    ivr.wait_for_log("reason=\"server-bye\"", Duration::from_secs(10));
    let chosen = ivr
        .log_text()
        .lines()
        .filter(|l| l.contains("menu option"))
        .count();
    assert_eq!(chosen, options.len(), "every key once: {options:?}");
}
