//! Softphones that call with credentials (`[[sip.users]]`): digest challenges (RFC 3261 §22,
//! RFC 8760) for INVITE and REGISTER, nonces bound to the client's address with a lifetime,
//! `nc` replay refused, and wrong passwords throttled per source. Unknown users and wrong
//! passwords get the same answer at the same cost, so a scanner cannot tell which names exist.

mod nonce;
mod throttle;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::digest::{quote, Algorithm, Credentials};
use super::message::Request;
pub use nonce::{NonceCheck, Nonces};
pub use throttle::{Throttle, ThrottlePolicy};

/// Nonces remembered for their `nc`; past it, old ones are pruned (or clients re-challenged).
const MAX_NONCES_IN_USE: usize = 65_536;

/// One softphone account. HA1 is `H(username:realm:password)` for each algorithm it may use.
#[derive(Clone, PartialEq, Eq)]
pub struct SipUser {
    pub username: String,
    pub ha1_md5: Option<String>,
    pub ha1_sha256: Option<String>,
}

impl std::fmt::Debug for SipUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipUser")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl SipUser {
    /// A user whose password is known: both hashes.
    pub fn with_password(username: &str, realm: &str, password: &str) -> SipUser {
        let text = format!("{username}:{realm}:{password}");
        SipUser {
            username: username.to_string(),
            ha1_md5: Some(Algorithm::Md5.hash(&text)),
            ha1_sha256: Some(Algorithm::Sha256.hash(&text)),
        }
    }

    fn ha1(&self, algorithm: Algorithm) -> Option<&str> {
        match algorithm {
            Algorithm::Md5 | Algorithm::Md5Sess => self.ha1_md5.as_deref(),
            Algorithm::Sha256 | Algorithm::Sha256Sess => self.ha1_sha256.as_deref(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    pub realm: String,
    /// Offered in this order, one challenge each (RFC 8760 §2.4).
    pub algorithms: Vec<Algorithm>,
    pub users: Vec<SipUser>,
    pub nonce_lifetime: Duration,
    pub throttle: ThrottlePolicy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Authenticated {
        username: String,
        algorithm: Algorithm,
    },
    /// Answer 401 with `challenges` as `WWW-Authenticate` values.
    Challenge { challenges: Vec<String> },
    /// Wrong credentials: 403.
    Refused,
    /// Too many wrong passwords from this source: 403, credentials unread.
    Locked,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Authenticated { .. } => "ok",
            Outcome::Challenge { .. } => "challenged",
            Outcome::Refused => "refused",
            Outcome::Locked => "locked",
        }
    }
}

pub struct Authenticator {
    realm: String,
    users: HashMap<String, SipUser>,
    algorithms: Vec<Algorithm>,
    nonces: Nonces,
    /// Nonces that authenticated a request, with the highest `nc` seen.
    in_use: HashMap<String, u32>,
    throttle: Throttle,
}

impl Authenticator {
    /// `key` signs nonces: random per process.
    pub fn new(settings: AuthSettings, key: [u8; 32]) -> Authenticator {
        let algorithms = settings
            .algorithms
            .iter()
            .copied()
            .filter(|a| settings.users.iter().any(|u| u.ha1(*a).is_some()))
            .collect();
        Authenticator {
            realm: settings.realm,
            users: settings
                .users
                .into_iter()
                .map(|u| (u.username.clone(), u))
                .collect(),
            algorithms,
            nonces: Nonces::new(key, settings.nonce_lifetime),
            in_use: HashMap::new(),
            throttle: Throttle::new(settings.throttle),
        }
    }

    /// Whether `request`, from `source`, carries valid credentials for one of our users.
    pub fn check(&mut self, request: &Request, source: IpAddr, now: Instant) -> Outcome {
        let Some(creds) = request
            .credentials
            .iter()
            .filter_map(|value| Credentials::parse(value))
            .find(|c| c.realm == self.realm)
        else {
            return self.challenge(source, now, false);
        };
        if self.throttle.is_locked(source, &creds.username, now) {
            return Outcome::Locked;
        }
        if !self.algorithms.contains(&creds.algorithm) {
            // Only what we offered: a client may not pick a weaker hash, or a -sess form we
            // never asked for.
            return self.challenge(source, now, false);
        }
        match self.nonces.check(&creds.nonce, source, now) {
            NonceCheck::Fresh => {}
            NonceCheck::Stale | NonceCheck::Foreign => return self.challenge(source, now, true),
        }
        if self
            .in_use
            .get(&creds.nonce)
            .is_some_and(|&nc| creds.nc <= nc)
        {
            // A replay, or a client that lost count: either way, a new nonce.
            return self.challenge(source, now, true);
        }
        let user = self.users.get(&creds.username);
        let ha1 = user.and_then(|u| u.ha1(creds.algorithm));
        // Unknown users cost the same hash as known ones.
        let valid = creds.verify(ha1.unwrap_or(UNKNOWN_HA1), &request.method.to_string())
            && ha1.is_some()
            && creds.uri.eq_ignore_ascii_case(&request.uri);
        if !valid {
            return if self.throttle.fail(source, &creds.username, now) {
                tracing::warn!(%source, "wrong SIP credentials: source, network or user locked");
                Outcome::Locked
            } else {
                Outcome::Refused
            };
        }
        if !self.remember_nc(&creds.nonce, creds.nc, now) {
            return self.challenge(source, now, true);
        }
        Outcome::Authenticated {
            username: creds.username,
            algorithm: creds.algorithm,
        }
    }

    fn challenge(&mut self, source: IpAddr, now: Instant, stale: bool) -> Outcome {
        let nonce = self.nonces.mint(source, now);
        let stale = if stale { ", stale=true" } else { "" };
        let challenges = self
            .algorithms
            .iter()
            .map(|a| {
                format!(
                    "Digest realm=\"{}\", nonce=\"{nonce}\", qop=\"auth\", algorithm={}{stale}",
                    quote(&self.realm),
                    a.name()
                )
            })
            .collect();
        Outcome::Challenge { challenges }
    }

    fn remember_nc(&mut self, nonce: &str, nc: u32, now: Instant) -> bool {
        if !self.in_use.contains_key(nonce) && self.in_use.len() >= MAX_NONCES_IN_USE {
            let (nonces, lifetime) = (&self.nonces, self.nonces.lifetime());
            self.in_use.retain(|n, _| {
                nonces
                    .minted(n)
                    .is_some_and(|at| now.saturating_duration_since(at) <= lifetime)
            });
            if self.in_use.len() >= MAX_NONCES_IN_USE {
                return false;
            }
        }
        self.in_use.insert(nonce.to_string(), nc);
        true
    }
}

/// Stands in for a user that does not exist, so the check costs the same.
const UNKNOWN_HA1: &str = "00000000000000000000000000000000";

#[cfg(test)]
mod tests;
