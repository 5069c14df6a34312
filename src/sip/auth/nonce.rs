//! Nonces that need no table: the time they were minted and an HMAC over it and the client's
//! address, under a key that lives as long as the process. Any node restart makes old nonces
//! unreadable, and clients simply answer the next challenge.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Hex digits of the time (milliseconds since the minter began) and of the truncated MAC.
const TIME_DIGITS: usize = 16;
const MAC_BYTES: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    Fresh,
    /// Ours, for this client, but older than the lifetime.
    Stale,
    /// Not one we minted for this address.
    Foreign,
}

pub struct Nonces {
    key: [u8; 32],
    /// Times in nonces count from the first `now` seen.
    epoch: Option<Instant>,
    lifetime: Duration,
}

impl Nonces {
    pub fn new(key: [u8; 32], lifetime: Duration) -> Nonces {
        Nonces {
            key,
            epoch: None,
            lifetime,
        }
    }

    pub fn mint(&mut self, client: IpAddr, now: Instant) -> String {
        let epoch = *self.epoch.get_or_insert(now);
        let millis = now.saturating_duration_since(epoch).as_millis();
        let millis = u64::try_from(millis).unwrap_or(u64::MAX);
        let mut nonce = format!("{millis:016x}");
        for byte in self.mac(millis, client) {
            nonce.push_str(&format!("{byte:02x}"));
        }
        nonce
    }

    pub fn check(&self, nonce: &str, client: IpAddr, now: Instant) -> NonceCheck {
        if nonce.len() != TIME_DIGITS + 2 * MAC_BYTES || !nonce.is_ascii() {
            return NonceCheck::Foreign;
        }
        let (time, mac) = nonce.split_at(TIME_DIGITS);
        let Ok(millis) = u64::from_str_radix(time, 16) else {
            return NonceCheck::Foreign;
        };
        let expected = self.mac(millis, client);
        let given = (0..MAC_BYTES).map(|i| u8::from_str_radix(&mac[2 * i..2 * i + 2], 16));
        let mut matches = true;
        for (want, got) in expected.iter().zip(given) {
            matches &= got == Ok(*want);
        }
        let Some(minted) = self.minted(nonce).filter(|_| matches) else {
            return NonceCheck::Foreign;
        };
        if minted > now {
            NonceCheck::Foreign
        } else if now - minted > self.lifetime {
            NonceCheck::Stale
        } else {
            NonceCheck::Fresh
        }
    }

    /// When a nonce that `check` found fresh or stale was minted.
    pub fn minted(&self, nonce: &str) -> Option<Instant> {
        let millis = u64::from_str_radix(nonce.get(..TIME_DIGITS)?, 16).ok()?;
        self.epoch?.checked_add(Duration::from_millis(millis))
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    fn mac(&self, millis: u64, client: IpAddr) -> [u8; MAC_BYTES] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(&millis.to_be_bytes());
        match client {
            IpAddr::V4(v4) => mac.update(&v4.octets()),
            IpAddr::V6(v6) => mac.update(&v6.octets()),
        }
        let full = mac.finalize().into_bytes();
        let mut out = [0; MAC_BYTES];
        out.copy_from_slice(&full[..MAC_BYTES]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_fresh_then_stale_and_only_for_its_client() {
        let start = Instant::now();
        let mut nonces = Nonces::new([7; 32], Duration::from_secs(30));
        nonces.mint("192.0.2.200".parse().unwrap(), start);
        let alice: IpAddr = "192.0.2.1".parse().unwrap();
        let mallory: IpAddr = "192.0.2.2".parse().unwrap();
        let nonce = nonces.mint(alice, start + Duration::from_secs(5));
        let at = |s| start + Duration::from_secs(s);
        assert_eq!(nonces.check(&nonce, alice, at(6)), NonceCheck::Fresh);
        assert_eq!(nonces.check(&nonce, mallory, at(6)), NonceCheck::Foreign);
        assert_eq!(nonces.check(&nonce, alice, at(36)), NonceCheck::Stale);
        assert_eq!(nonces.minted(&nonce), Some(at(5)));
        let mut other_key = Nonces::new([8; 32], Duration::from_secs(30));
        other_key.mint(alice, start);
        assert_eq!(other_key.check(&nonce, alice, at(6)), NonceCheck::Foreign);
        let mut forged = nonce.clone();
        forged.replace_range(0..16, &format!("{:016x}", 99_000));
        assert_eq!(nonces.check(&forged, alice, at(100)), NonceCheck::Foreign);
        for junk in ["", "zz", &"é".repeat(24), &"0".repeat(48)] {
            assert_eq!(nonces.check(junk, alice, at(6)), NonceCheck::Foreign);
        }
    }
}
