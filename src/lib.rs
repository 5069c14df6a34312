//! A SIP IVR in one binary. The layers, bottom to top; each uses only those below it:
//!
//! 1. `sip`: transport, framing, transactions, dialogs, admission control, and the sans-I/O
//!    user agent with its driver.
//! 2. `media`: codecs, prompts, RTP streams, keys (RFC 4733 and in-band), the media clock.
//! 3. `session`: SDP offer/answer (it uses media's codec table).
//! 4. `directory`: who the caller is (local, Auth0, lockout) and the money it holds.
//! 5. `ivr`: the per-call API and the conversation.
//! 6. `server` wires them together and `config` reads the settings for all of them; the
//!    binary (`main.rs`, `cli/`) sits on top. `http` is the shared HTTPS client; `metrics`
//!    is a leaf every layer may count into, as every layer may log through `tracing`, whose
//!    lines the binary hands to `log_queue`.

pub mod config;
pub mod directory;
pub mod http;
pub mod ivr;
pub mod log_queue;
pub mod media;
pub mod metrics;
pub mod ops;
pub mod records;
pub mod server;
pub mod session;
pub mod sip;
#[cfg(test)]
mod testing;
