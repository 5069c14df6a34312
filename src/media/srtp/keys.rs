//! Master keys and the crypto suites we speak.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use zeroize::{Zeroize, ZeroizeOnDrop};

pub const MASTER_KEY_LEN: usize = 16;
pub const MASTER_SALT_LEN: usize = 14;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
}

impl Suite {
    /// In our order of preference when we offer.
    pub const ALL: [Suite; 2] = [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32];

    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    pub fn from_name(name: &str) -> Option<Suite> {
        Suite::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Bytes of authentication tag on an SRTP packet.
    pub fn rtp_tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 => 4,
        }
    }

    /// SRTCP keeps the 80-bit tag in both suites (RFC 4568 §6.2.1).
    pub fn rtcp_tag_len(self) -> usize {
        10
    }
}

/// A master key and salt: the secret half of an `a=crypto` line. Wiped when dropped, never
/// printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey {
    key: [u8; MASTER_KEY_LEN],
    salt: [u8; MASTER_SALT_LEN],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    pub fn new(key: [u8; MASTER_KEY_LEN], salt: [u8; MASTER_SALT_LEN]) -> MasterKey {
        MasterKey { key, salt }
    }

    /// A fresh key from the operating system's CSPRNG.
    pub fn random() -> MasterKey {
        let mut key = MasterKey::new([0; MASTER_KEY_LEN], [0; MASTER_SALT_LEN]);
        OsRng.fill_bytes(&mut key.key);
        OsRng.fill_bytes(&mut key.salt);
        key
    }

    /// From the base64 of an SDES `inline:` key: exactly key then salt.
    pub fn from_base64(text: &str) -> Option<MasterKey> {
        let mut raw = [0u8; MASTER_KEY_LEN + MASTER_SALT_LEN + 3];
        let len = STANDARD.decode_slice(text, &mut raw).ok()?;
        let key = (len == MASTER_KEY_LEN + MASTER_SALT_LEN).then(|| {
            let mut key = MasterKey::new([0; MASTER_KEY_LEN], [0; MASTER_SALT_LEN]);
            key.key.copy_from_slice(&raw[..MASTER_KEY_LEN]);
            key.salt.copy_from_slice(&raw[MASTER_KEY_LEN..len]);
            key
        });
        raw.zeroize();
        key
    }

    pub fn to_base64(&self) -> String {
        let mut raw = [0u8; MASTER_KEY_LEN + MASTER_SALT_LEN];
        raw[..MASTER_KEY_LEN].copy_from_slice(&self.key);
        raw[MASTER_KEY_LEN..].copy_from_slice(&self.salt);
        let text = STANDARD.encode(raw);
        raw.zeroize();
        text
    }

    pub(super) fn key(&self) -> &[u8; MASTER_KEY_LEN] {
        &self.key
    }

    pub(super) fn salt(&self) -> &[u8; MASTER_SALT_LEN] {
        &self.salt
    }
}
