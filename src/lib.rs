//! A SIP IVR in one binary. The modules below are listed bottom to top, and each uses only
//! those above it in this list (`tests/shape/check.py` holds the code to that):
//!
//! - leaves every layer may use: `metrics` (counters and histograms), `http` (the one HTTPS
//!   client, for Auth0 and webhooks) and `log_queue` (where the binary's log lines wait for
//!   their writer thread);
//! - `sip`: transport, framing, messages, transactions, dialogs, admission control, and the
//!   sans-I/O user agent with its driver;
//! - `media`: codecs, prompts, RTP streams, keys (RFC 4733 and in-band), SRTP, RTCP and the
//!   pacer threads that are the media clock;
//! - `session`: SDP offer/answer (it uses media's codec table);
//! - `directory`: who the caller is (local, Auth0), the lockout in front, and money amounts;
//! - `ivr`: the per-call API (`call`), the flow file as data (`script`), the engine that runs
//!   it (`flow`) and its webhooks;
//! - `records` (call records) and `ops` (the operator's HTTP endpoint);
//! - `server`, which wires all of them together for each call, and `config`, which reads the
//!   settings for all of them;
//! - then the binary: `main.rs` and `cli/`.

pub mod http;
pub mod log_queue;
pub mod metrics;

pub mod sip;

pub mod media;

pub mod session;

pub mod directory;

pub mod ivr;

pub mod ops;
pub mod records;

pub mod config;
pub mod server;

#[cfg(test)]
mod testing;
