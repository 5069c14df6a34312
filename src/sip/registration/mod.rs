//! Registering with a trunk (RFC 3261 §10), sans I/O: one Call-ID for the registration's life
//! and a growing CSeq, digest challenges answered (a stale nonce is no failure), 423
//! Min-Expires honoured, a refresh before the granted expiry, retries with backoff and jitter
//! after failures, and `Expires: 0` on the way out.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::dialog::{new_branch, new_tag};
use super::digest::Challenge;
use super::message::Response;
use super::transaction::{NonInviteClient, TimerAction, Timers};
use super::transport::{Destination, Transport};

/// Retries after a failure start here and double up to `MAX_RETRY`.
const FIRST_RETRY: Duration = Duration::from_secs(30);
const MAX_RETRY: Duration = Duration::from_secs(1800);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Registering,
    Registered,
    /// Refused or unreachable; a retry is scheduled.
    Failed,
    Unregistered,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Registering => "registering",
            Status::Registered => "registered",
            Status::Failed => "failed",
            Status::Unregistered => "unregistered",
        }
    }
}

/// A challenge being answered: which header it came in, and how often its nonce was used.
struct Credentials {
    proxy: bool,
    challenge: Challenge,
    nc: u32,
}

pub struct Registration {
    trunk: Trunk,
    local: SocketAddr,
    contact: String,
    user_agent: String,
    timers: Timers,
    call_id: String,
    from_tag: String,
    cseq: u32,
    expires: u32,
    credentials: Option<Credentials>,
    /// The request in flight: its branch and transaction.
    pending: Option<(String, NonInviteClient)>,
    /// The request in flight carried credentials for the nonce it was challenged with.
    answered_challenge: bool,
    /// When to register again (refresh or retry).
    next: Option<Instant>,
    failures: u32,
    leaving: bool,
    status: Status,
    /// Index into `trunk.targets` of the one in use, and how many failed in this round.
    target: usize,
    tried: usize,
    /// Every target failed: DNS should be asked again.
    wants_locating: bool,
    /// When to send the next CRLF keep-alive on the connection (RFC 5626 §4.4.1).
    keepalive_at: Option<Instant>,
}

impl Registration {
    /// `local` is the address our Contact names (the public one).
    pub fn new(trunk: Trunk, local: SocketAddr, user_agent: &str, timers: Timers) -> Registration {
        let transport = match trunk.transport {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
            Transport::Tls => ";transport=tls",
        };
        let mut contact = format!("<sip:{}@{local}{transport}>", trunk.username);
        if trunk.transport.reliable() {
            // One flow per registration (RFC 5626 §4.2): the registrar routes our calls down
            // the connection we registered over, wherever NAT put its far end.
            contact.push_str(&format!(
                ";+sip.instance=\"<urn:uuid:{}>\";reg-id=1",
                instance_id(&trunk, local)
            ));
        }
        Registration {
            local,
            contact,
            expires: trunk.expires,
            trunk,
            user_agent: user_agent.to_string(),
            timers,
            call_id: format!("{}@ivr", new_tag()),
            from_tag: new_tag(),
            cseq: 0,
            credentials: None,
            pending: None,
            answered_challenge: false,
            next: None,
            failures: 0,
            leaving: false,
            status: Status::Registering,
            target: 0,
            tried: 0,
            wants_locating: false,
            keepalive_at: None,
        }
    }

    /// Whether a challenge inside a call from this trunk may be answered with its credentials:
    /// its realm is the one the registrar named (the trunk's domain before any challenge), and
    /// it is no weaker than the registrar's (`qop=auth` kept, an algorithm as strong). Anything
    /// else may be a stranger fishing for a digest to crack offline.
    pub fn may_answer(&self, challenge: &Challenge) -> bool {
        match &self.credentials {
            Some(seen) => {
                let seen = &seen.challenge;
                challenge.realm == seen.realm
                    && (challenge.qop_auth || !seen.qop_auth)
                    && challenge.algorithm.strength() >= seen.algorithm.strength()
            }
            None => challenge.realm.eq_ignore_ascii_case(&self.trunk.domain) && challenge.qop_auth,
        }
    }

    pub fn status(&self) -> Status {
        self.status
    }

    pub fn trunk(&self) -> &Trunk {
        &self.trunk
    }

    /// Sends the first REGISTER, once the trunk has targets.
    pub fn start(&mut self, now: Instant) -> Option<(Destination, Bytes)> {
        (!self.trunk.targets.is_empty()).then(|| self.send(now))
    }

    /// New targets from DNS. The first REGISTER goes at once if none went yet; otherwise they
    /// serve from the next attempt on, keeping the one in use when it is still listed.
    pub fn set_targets(
        &mut self,
        targets: Vec<SocketAddr>,
        now: Instant,
    ) -> Option<(Destination, Bytes)> {
        let current = self.trunk.targets.get(self.target).copied();
        self.target = current
            .and_then(|c| targets.iter().position(|t| *t == c))
            .unwrap_or(0);
        self.tried = 0;
        let first = self.trunk.targets.is_empty() && self.cseq == 0;
        self.trunk.targets = targets;
        (first && !self.leaving && !self.trunk.targets.is_empty()).then(|| self.send(now))
    }

    /// Whether every target failed since the last call: time to ask DNS again.
    pub fn take_wants_locating(&mut self) -> bool {
        std::mem::take(&mut self.wants_locating)
    }

    /// Sends `Expires: 0` (once), so the trunk stops routing calls here.
    pub fn unregister(&mut self, now: Instant) -> Option<(Destination, Bytes)> {
        let first = !self.leaving;
        self.leaving = true;
        self.next = None;
        (first && self.status == Status::Registered).then(|| self.send(now))
    }

    pub fn owns(&self, response: &Response) -> bool {
        response.call_id == self.call_id
            && self.pending.as_ref().map(|(b, _)| Some(b)) == Some(response.branch.as_ref())
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        let tx = self.pending.as_ref().and_then(|(_, tx)| tx.next_deadline());
        [tx, self.next, self.keepalive_at]
            .into_iter()
            .flatten()
            .min()
    }

    fn send(&mut self, now: Instant) -> (Destination, Bytes) {
        self.cseq += 1;
        let branch = new_branch();
        let expires = if self.leaving { 0 } else { self.expires };
        let aor = self.trunk.aor();
        let mut auth = String::new();
        self.answered_challenge = false;
        if let Some(c) = &mut self.credentials {
            c.nc += 1;
            let cnonce = new_tag();
            let value = c.challenge.answer(
                &self.trunk.username,
                &self.trunk.password,
                "REGISTER",
                &self.trunk.registrar,
                c.nc,
                &cnonce,
            );
            let name = if c.proxy {
                "Proxy-Authorization"
            } else {
                "Authorization"
            };
            auth = format!("{name}: {value}\r\n");
            self.answered_challenge = true;
        }
        let via = self.trunk.transport.via_name();
        let local = self.local;
        let text = format!(
            "REGISTER {registrar} SIP/2.0\r\nVia: SIP/2.0/{via} {local};branch={branch};rport\r\nMax-Forwards: 70\r\nFrom: <{aor}>;tag={tag}\r\nTo: <{aor}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\nContact: {contact}\r\nExpires: {expires}\r\n{supported}User-Agent: {ua}\r\n{auth}Content-Length: 0\r\n\r\n",
            registrar = self.trunk.registrar,
            tag = self.from_tag,
            call_id = self.call_id,
            cseq = self.cseq,
            contact = self.contact,
            ua = self.user_agent,
            supported = if self.trunk.transport.reliable() {
                "Supported: path, outbound\r\n"
            } else {
                ""
            },
        );
        let bytes = Bytes::from(text);
        let reliable = self.trunk.transport.reliable();
        let tx = NonInviteClient::new(bytes.clone(), self.timers, reliable, now);
        self.pending = Some((branch, tx));
        (self.destination(), bytes)
    }

    /// The target in use.
    fn destination(&self) -> Destination {
        Destination {
            transport: self.trunk.transport,
            addr: self.trunk.targets[self.target % self.trunk.targets.len().max(1)],
        }
    }

    /// A response to our REGISTER; what to send next, if anything at once.
    pub fn on_response(
        &mut self,
        response: &Response,
        now: Instant,
    ) -> Option<(Destination, Bytes)> {
        let (_, tx) = self.pending.as_mut()?;
        if !tx.on_response(response.status, now) {
            return None;
        }
        self.pending = None;
        match response.status {
            200..=299 if self.leaving => {
                self.keepalive_at = None;
                self.set_status(Status::Unregistered, "unregistered");
                None
            }
            200..=299 => {
                let granted = self.granted(response);
                self.failures = 0;
                self.tried = 0;
                // Refresh at 80% of the grant (half of a very short one).
                let refresh = if granted >= 10 {
                    granted * 4 / 5
                } else {
                    granted.max(2) / 2
                };
                self.next = Some(now + Duration::from_secs(u64::from(refresh)));
                if self.trunk.transport.reliable() && self.keepalive_at.is_none() {
                    self.keepalive_at = Some(now + keepalive_interval());
                }
                self.set_status(Status::Registered, &format!("registered for {granted} s"));
                None
            }
            401 | 407 => self.on_challenge(response, now),
            423 => match response.min_expires {
                Some(min) if min > self.expires && min <= 86_400 => {
                    tracing::info!(trunk = %self.trunk.aor(), min, "registrar wants a longer expiry");
                    self.expires = min;
                    Some(self.send(now))
                }
                _ => self.failed(now, "423 without a usable Min-Expires"),
            },
            status => {
                let why = format!("refused with {status}");
                if status >= 500 && self.tried + 1 < self.trunk.targets.len() {
                    // A server in trouble: another of the trunk's servers may not be.
                    return self.next_target(now, &why);
                }
                // 503 (and others) may say when to come back (RFC 3261 §21.5.4).
                let retry_after = response.retry_after.map(|s| {
                    Duration::from_secs(u64::from(s)).clamp(Duration::from_secs(1), MAX_RETRY)
                });
                self.end_round(now, &why, retry_after)
            }
        }
    }

    fn on_challenge(&mut self, response: &Response, now: Instant) -> Option<(Destination, Bytes)> {
        let Some((proxy, value)) = &response.challenge else {
            return self.failed(now, "challenged without a digest header");
        };
        let Some(challenge) = Challenge::parse(value) else {
            return self.failed(now, "a digest challenge we cannot answer");
        };
        let renewed = challenge.stale
            || self
                .credentials
                .as_ref()
                .is_none_or(|c| c.challenge.nonce != challenge.nonce);
        if self.answered_challenge && !renewed {
            self.credentials = None;
            return self.failed(now, "credentials refused");
        }
        self.credentials = Some(Credentials {
            proxy: *proxy,
            challenge,
            nc: 0,
        });
        Some(self.send(now))
    }

    /// The expiry the registrar granted our binding: our Contact's `expires`, else `Expires`.
    fn granted(&self, response: &Response) -> u32 {
        // Our URI, between the brackets (the registrar may reorder what follows).
        let ours = self
            .contact
            .split('>')
            .next()
            .unwrap_or_default()
            .trim_start_matches('<');
        response
            .contacts
            .iter()
            .filter(|c| c.contains(ours))
            .find_map(|c| {
                c.split(';')
                    .find_map(|p| p.trim().strip_prefix("expires="))
                    .and_then(|v| v.trim().parse().ok())
            })
            .or(response.expires)
            .unwrap_or(self.expires)
    }

    fn failed(&mut self, now: Instant, why: &str) -> Option<(Destination, Bytes)> {
        self.failed_after(now, why, None)
    }

    /// The target in use failed to answer (or answered 5xx): the next one at once, or, when
    /// every one has failed in this round, a retry after the backoff and a new DNS lookup.
    fn next_target(&mut self, now: Instant, why: &str) -> Option<(Destination, Bytes)> {
        if self.leaving || self.tried + 1 >= self.trunk.targets.len() {
            return self.end_round(now, why, None);
        }
        self.tried += 1;
        let failed = self.destination().addr;
        self.target = (self.target + 1) % self.trunk.targets.len();
        tracing::warn!(trunk = %self.trunk.aor(), %failed, next = %self.destination().addr, "{why}: trying the next target");
        Some(self.send(now))
    }

    fn end_round(
        &mut self,
        now: Instant,
        why: &str,
        retry_after: Option<Duration>,
    ) -> Option<(Destination, Bytes)> {
        // The addresses may have moved: DNS is asked again before the retry.
        self.wants_locating = !self.leaving;
        self.tried = 0;
        self.target = 0;
        self.failed_after(now, why, retry_after)
    }

    /// A failure; the next try after `retry_after` when the registrar named it, else after
    /// the backoff.
    fn failed_after(
        &mut self,
        now: Instant,
        why: &str,
        retry_after: Option<Duration>,
    ) -> Option<(Destination, Bytes)> {
        if self.leaving {
            self.set_status(Status::Unregistered, why);
            return None;
        }
        self.failures += 1;
        let backoff = FIRST_RETRY
            .saturating_mul(1 << (self.failures - 1).min(6))
            .min(MAX_RETRY);
        // ±20% so that many nodes restarted together do not retry together; never sooner
        // than the registrar asked.
        let jitter = 0.8 + rand::random::<f64>() * 0.4;
        let wait = match retry_after {
            Some(asked) => asked.mul_f64(1.0 + rand::random::<f64>() * 0.2),
            None => backoff.mul_f64(jitter),
        };
        self.next = Some(now + wait);
        self.set_status(
            Status::Failed,
            &format!("{why}; retrying in {} s", wait.as_secs()),
        );
        None
    }

    fn set_status(&mut self, status: Status, detail: &str) {
        let trunk = self.trunk.aor();
        if status != self.status || status == Status::Failed {
            tracing::warn!(%trunk, status = status.as_str(), "{detail}");
        } else {
            tracing::debug!(%trunk, status = status.as_str(), "{detail}");
        }
        self.status = status;
        crate::metrics::METRICS
            .trunk_registered
            .get_or_create(&crate::metrics::TrunkLabel { trunk })
            .set(i64::from(status == Status::Registered));
    }

    /// Retransmissions, time-outs, refreshes, retries and keep-alives due by `now`.
    pub fn on_timer(&mut self, now: Instant) -> Option<(Destination, Bytes)> {
        if self.keepalive_at.is_some_and(|at| now >= at) {
            if self.status == Status::Registered && !self.leaving {
                self.keepalive_at = Some(now + keepalive_interval());
                return Some((self.destination(), Bytes::from_static(b"\r\n\r\n")));
            }
            self.keepalive_at = None;
        }
        if let Some((_, tx)) = &mut self.pending {
            match tx.on_timer(now) {
                TimerAction::Retransmit(bytes) => return Some((self.destination(), bytes)),
                TimerAction::TimedOut => {
                    self.pending = None;
                    return self.next_target(now, "no answer from the registrar");
                }
                TimerAction::Terminated => self.pending = None,
                TimerAction::Nothing => {}
            }
            return None;
        }
        if self.next.is_some_and(|at| now >= at) {
            self.next = None;
            if self.status != Status::Registered {
                self.status = Status::Registering;
            }
            return Some(self.send(now));
        }
        None
    }
}

/// 95 to 120 s between pings, at random (RFC 5626 §4.4.1), so many registrations do not ping
/// together.
fn keepalive_interval() -> Duration {
    Duration::from_secs(95) + Duration::from_secs(25).mul_f64(rand::random::<f64>())
}

#[cfg(test)]
mod tests;
mod trunk;

use trunk::instance_id;
pub use trunk::Trunk;
