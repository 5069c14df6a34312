//! A SIP IVR in one binary. The layers, bottom to top: `sip` (transport, transactions,
//! dialogs, user agent), `session` (SDP offer/answer), `media` (RTP, codecs, prompts), `ivr`
//! (the per-call API and the flow), `directory` (who the caller is). `server` wires them
//! together; `config` feeds them all.

pub mod config;
pub mod directory;
pub mod http;
pub mod ivr;
pub mod media;
pub mod server;
pub mod session;
pub mod sip;
