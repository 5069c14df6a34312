//! Call records: one JSON line per ended call, appended to `cdr.file` and flushed as the call
//! ends, for the audit. Never a PIN; the account number is masked. SIGHUP reopens the file, so
//! logrotate can move it away.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct CallRecord {
    pub call_id: String,
    /// The From header.
    pub caller: String,
    /// P-Asserted-Identity, when the trunk sent one.
    pub asserted_identity: Option<String>,
    /// The Request-URI.
    pub dialled: String,
    pub transport: &'static str,
    pub codec: &'static str,
    pub encryption: &'static str,
    /// Milliseconds since the Unix epoch.
    pub started_ms: u64,
    pub answered_ms: Option<u64>,
    pub ended_ms: u64,
    pub duration_s: f64,
    /// `verified`, `wrong_credentials`, `locked`, `unavailable`, or none when no PIN was given.
    pub verification: Option<&'static str>,
    pub account: Option<String>,
    pub menu_keys: String,
    /// A greeting followed "Welcome" (never the text: it is personal data).
    pub greeting_spoken: bool,
    /// Where a successful transfer sent the caller.
    pub transferred_to: Option<String>,
    /// How long the caller talked to a bridged transfer's target.
    pub bridged_s: Option<f64>,
    /// `caller` or `ivr`.
    pub ended_by: &'static str,
    pub end_reason: &'static str,
    pub rtp_sent: u64,
    pub rtp_received: u64,
    pub rtp_dropped: u64,
    pub rtp_lost: u64,
    /// Interarrival jitter of the caller's RTP (RFC 3550 A.8).
    pub rtp_jitter_ms: f64,
    /// From the caller's RTCP: the round trip, and how many of ours it says it lost.
    pub rtt_ms: Option<f64>,
    pub peer_lost: Option<i32>,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The records file, appended to.
pub struct RecordFile {
    path: PathBuf,
    file: File,
}

impl RecordFile {
    pub fn open(path: PathBuf) -> Result<RecordFile> {
        let file = append(&path)?;
        Ok(RecordFile { path, file })
    }

    pub fn write(&mut self, record: &CallRecord) {
        let mut line = match serde_json::to_vec(record) {
            Ok(line) => line,
            Err(e) => return tracing::error!("call record not written: {e}"),
        };
        line.push(b'\n');
        if let Err(e) = self.file.write_all(&line).and_then(|()| self.file.flush()) {
            tracing::error!(path = %self.path.display(), "call record not written: {e}");
        }
    }

    /// Starts a new file under the same name (after logrotate moved the old one).
    pub fn reopen(&mut self) {
        match append(&self.path) {
            Ok(file) => self.file = file,
            Err(e) => tracing::error!("{e:#}"),
        }
    }
}

fn append(path: &PathBuf) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // Callers' numbers and what they did: readable by the IVR's user alone.
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("opening cdr.file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_file_is_made_readable_by_its_owner_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = crate::testing::TempDir::new("cdr");
        let path = dir.path().join("calls.jsonl");
        let _records = RecordFile::open(path.clone()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
    }
}
