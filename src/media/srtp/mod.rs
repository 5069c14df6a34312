//! SRTP and SRTCP (RFC 3711) with the AES-CM-128 / HMAC-SHA1 suites that SDES (RFC 4568) keys,
//! in place in the caller's buffers: a packet costs one keystream and one HMAC, never an
//! allocation. Pure Rust on RustCrypto, checked against the RFC 3711 Appendix B vectors.

mod call;
mod derive;
mod header;
mod keys;
mod replay;
mod session;

#[cfg(test)]
mod tests;

pub use call::CallCrypto;
pub use keys::{MasterKey, Suite, MASTER_KEY_LEN, MASTER_SALT_LEN};
pub use session::{Checked, Inbound, InboundKey, Outbound};

use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SrtpError {
    #[error("packet too short or its header lengths overrun it")]
    Malformed,
    #[error("authentication tag does not match")]
    Forged,
    #[error("index already seen or too old for the replay window")]
    Replayed,
    #[error("MKI does not name our key")]
    UnknownKey,
    #[error("the master key's lifetime is used up")]
    KeyExpired,
    #[error("no room in the buffer for the tag")]
    NoRoom,
}

impl SrtpError {
    pub const ALL: [SrtpError; 6] = [
        SrtpError::Malformed,
        SrtpError::Forged,
        SrtpError::Replayed,
        SrtpError::UnknownKey,
        SrtpError::KeyExpired,
        SrtpError::NoRoom,
    ];

    /// The metric label of a refused packet.
    pub fn as_str(self) -> &'static str {
        match self {
            SrtpError::Malformed => "malformed",
            SrtpError::Forged => "forged",
            SrtpError::Replayed => "replayed",
            SrtpError::UnknownKey => "unknown_key",
            SrtpError::KeyExpired => "key_expired",
            SrtpError::NoRoom => "no_room",
        }
    }
}

/// A call's SRTP: the suite, our key for what we send and the caller's for what it sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    pub suite: Suite,
    pub outbound: MasterKey,
    pub inbound: InboundKey,
}
