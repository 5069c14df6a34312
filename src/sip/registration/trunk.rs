//! A trunk account as registration sees it: where to register, as whom, and the identity
//! (RFC 5626's instance id) it keeps across restarts.

use std::net::SocketAddr;

use crate::sip::transport::Transport;

#[derive(Clone, PartialEq, Eq)]
pub struct Trunk {
    /// The Request-URI of REGISTER: `sip:registrar.example.com`.
    pub registrar: String,
    /// The registrar's domain, for the address of record `sip:username@domain`.
    pub domain: String,
    pub transport: Transport,
    /// Where REGISTER goes, in order of preference: the registrar's (or outbound proxy's)
    /// addresses as DNS gave them (SRV, then A). Empty until located.
    pub targets: Vec<SocketAddr>,
    pub username: String,
    pub password: String,
    /// Seconds asked for.
    pub expires: u32,
}

impl std::fmt::Debug for Trunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trunk")
            .field("registrar", &self.registrar)
            .field("transport", &self.transport)
            .field("targets", &self.targets)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Trunk {
    /// Whether `ip` is one of the trunk's servers.
    pub fn is_from(&self, ip: std::net::IpAddr) -> bool {
        self.targets.iter().any(|t| t.ip() == ip)
    }

    /// The address of record we register: `sip:username@domain`.
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.username, self.domain)
    }
}

/// A UUID that stays the same for this trunk account at this address across restarts, as
/// RFC 5626 wants of `+sip.instance`, without a file to keep it in.
pub(super) fn instance_id(trunk: &Trunk, local: SocketAddr) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{}|{local}", trunk.aor()).as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}
