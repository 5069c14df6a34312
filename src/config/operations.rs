//! `[log]`, `[cdr]`, `[http]` and `[shutdown]`: what the IVR tells its operator, and how it
//! stops.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// A `tracing` filter (`info`, `debug`, `ivr=debug`); `RUST_LOG` wins when set.
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// Call records.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CdrSettings {
    /// One JSON line per ended call is appended here; off when unset.
    pub file: Option<PathBuf>,
}

/// The operations endpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Where `/metrics` and `/health/*` are served, e.g. `127.0.0.1:9090`; off when unset.
    pub listen: Option<SocketAddr>,
}

/// How a stop (SIGTERM, SIGINT) treats the calls in progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownSettings {
    /// Seconds calls in progress may go on after the first signal before they hear goodbye.
    pub grace_s: u64,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        ShutdownSettings { grace_s: 30 }
    }
}
