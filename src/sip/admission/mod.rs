//! Who may start a call. A scanner or a flood from one address must never keep a real caller
//! out, with no allow-list configured: every source IP gets a budget of new INVITEs (a token
//! bucket) and of calls still waiting for their ACK, and unconfirmed calls from sources not yet
//! in good standing (an ACKed call in the last hour) share at most part of the capacity, so
//! the rest stays for callers who are known to complete calls. Within that share one unproven
//! source holds at most a quarter (at least two calls), so a single scanner leaves room for new
//! callers too. A source over budget is told 503 with Retry-After; one that keeps sending far
//! past its budget is no longer answered.
//!
//! A trunk's calls are not a stranger's. Over UDP a trunk's address can be forged, so its calls
//! keep the per-source budgets but are in good standing and outside the unproven share. Over
//! TCP or TLS the handshake proved the address: those calls are counted apart from anything
//! sent over UDP in the trunk's name and answer to the capacity alone (a trunk carries many
//! callers), so a forged UDP flood from a trunk's address cannot keep its real calls out.
//!
//! Sans I/O: the user agent passes `now` and reports how each admitted call went.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How long an ACKed call keeps its source in good standing.
const GOOD_STANDING: Duration = Duration::from_secs(3600);
/// Sources tracked at once; past it (a flood from spoofed addresses) new sources wait.
const MAX_SOURCES: usize = 65_536;
/// The most of the unproven share one unproven source may hold is 1 / this.
const UNPROVEN_SOURCES_AT_LEAST: usize = 4;
/// However small the capacity, an unproven source may have this many calls waiting (a caller
/// who redials before the first call's ACK is not a flood).
const UNPROVEN_SOURCE_FLOOR: usize = 2;
/// A source refused more than this many times its rate within one refill of its bucket is
/// ignoring Retry-After: it gets silence instead of responses.
const SILENCE_FACTOR: f64 = 2.0;

/// Where an INVITE comes from, as far as admission can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    Stranger,
    /// One of our trunks' addresses, over UDP (anyone can send with it).
    Trunk,
    /// One of our trunks over TCP or TLS: the address is proven.
    TrunkConnected,
}

/// Whom admission counts a call against: an address, and whether it was proven by a
/// connection to one of our trunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Caller {
    pub ip: IpAddr,
    pub origin: Origin,
}

impl Caller {
    fn key(self) -> (IpAddr, bool) {
        (self.ip, self.origin == Origin::TrunkConnected)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdmissionLimits {
    /// New INVITEs a source may send per second, on average.
    pub invites_per_second: f64,
    /// How many it may send at once.
    pub burst: f64,
    /// Calls from one source answered but not yet ACKed (or still ringing).
    pub pending_per_source: usize,
    /// Calls the server can carry at once (RTP port pairs).
    pub capacity: usize,
    /// Share of `capacity` that unconfirmed calls from sources not in good standing may hold.
    pub unproven_share: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The source sends INVITEs faster than its rate.
    Rate,
    /// The source has too many calls waiting for their ACK.
    Pending,
    /// Unproven sources hold their whole share of the capacity.
    Share,
    /// Too many sources at once.
    Sources,
    /// The source is not on the allow-list.
    NotAllowed,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Rate => "rate",
            Refusal::Pending => "pending",
            Refusal::Share => "share",
            Refusal::Sources => "sources",
            Refusal::NotAllowed => "not_allowed",
        }
    }

    /// The answer a refused INVITE got.
    pub fn answer(self, silent: bool) -> &'static str {
        match (self, silent) {
            (_, true) => "ignored",
            (Refusal::NotAllowed, false) => "403",
            (_, false) => "503",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Admit,
    /// 503 with `Retry-After` in seconds.
    Busy {
        refusal: Refusal,
        retry_after: u32,
    },
    /// No answer at all.
    Ignore {
        refusal: Refusal,
    },
}

#[derive(Debug, Clone, Copy)]
struct Source {
    tokens: f64,
    refilled: Instant,
    pending: usize,
    /// Of `pending`, the calls admitted while the source was not in good standing.
    unproven: usize,
    /// Refusals since the bucket was last full, to spot a sender that ignores Retry-After.
    refused: f64,
    good_until: Option<Instant>,
}

#[derive(Debug)]
pub struct Admission {
    limits: AdmissionLimits,
    sources: HashMap<(IpAddr, bool), Source>,
    unproven_pending: usize,
    /// Refusals per reason since the last report.
    refusals: HashMap<(Refusal, bool), u64>,
}

impl Admission {
    pub fn new(limits: AdmissionLimits) -> Admission {
        Admission {
            limits,
            sources: HashMap::new(),
            unproven_pending: 0,
            refusals: HashMap::new(),
        }
    }

    /// A new INVITE (not a retransmission) from `caller`. When admitted, the call counts as
    /// pending until `confirmed` or `finished` is called for it.
    pub fn on_invite(&mut self, caller: Caller, now: Instant) -> Verdict {
        let key = caller.key();
        let trunk = caller.origin != Origin::Stranger;
        if !trunk && !self.sources.contains_key(&key) && self.sources.len() >= MAX_SOURCES {
            self.prune(now);
            if self.sources.len() >= MAX_SOURCES {
                return self.refuse(Refusal::Sources, false, 1);
            }
        }
        let limits = self.limits;
        let unproven_ceiling = self.unproven_ceiling();
        let unproven_full = self.unproven_pending >= unproven_ceiling;
        let source = self.sources.entry(key).or_insert(Source {
            tokens: limits.burst,
            refilled: now,
            pending: 0,
            unproven: 0,
            refused: 0.0,
            good_until: None,
        });
        let elapsed = now.saturating_duration_since(source.refilled).as_secs_f64();
        source.refilled = now;
        source.tokens = (source.tokens + elapsed * limits.invites_per_second).min(limits.burst);
        if source.tokens >= limits.burst {
            source.refused = 0.0;
        }
        let good = trunk || source.good_until.is_some_and(|until| now < until);
        let pending_cap = if good {
            limits.pending_per_source
        } else {
            let quarter = unproven_ceiling.div_ceil(UNPROVEN_SOURCES_AT_LEAST);
            limits
                .pending_per_source
                .min(quarter.max(UNPROVEN_SOURCE_FLOOR))
        };
        let refusal = if caller.origin == Origin::TrunkConnected {
            (source.pending >= limits.capacity).then_some(Refusal::Pending)
        } else if source.tokens < 1.0 {
            Some(Refusal::Rate)
        } else if source.pending >= pending_cap {
            Some(Refusal::Pending)
        } else if !good && unproven_full {
            Some(Refusal::Share)
        } else {
            None
        };
        let Some(refusal) = refusal else {
            source.tokens = (source.tokens - 1.0).max(0.0);
            source.pending += 1;
            if !good {
                source.unproven += 1;
                self.unproven_pending += 1;
            }
            return Verdict::Admit;
        };
        source.refused += 1.0;
        let ignoring =
            source.refused > SILENCE_FACTOR * limits.burst.max(limits.invites_per_second);
        let retry_after = match refusal {
            Refusal::Rate => ((1.0 - source.tokens) / limits.invites_per_second).ceil() as u32,
            _ => 0,
        };
        self.refuse(refusal, ignoring, retry_after.max(1))
    }

    /// Counts a refusal decided elsewhere (the allow-list) into the same report.
    pub fn note_refusal(&mut self, refusal: Refusal, silent: bool) {
        *self.refusals.entry((refusal, silent)).or_default() += 1;
    }

    fn refuse(&mut self, refusal: Refusal, ignoring: bool, retry_after: u32) -> Verdict {
        *self.refusals.entry((refusal, ignoring)).or_default() += 1;
        if ignoring {
            Verdict::Ignore { refusal }
        } else {
            Verdict::Busy {
                refusal,
                retry_after,
            }
        }
    }

    fn unproven_ceiling(&self) -> usize {
        ((self.limits.capacity as f64) * self.limits.unproven_share).ceil() as usize
    }

    /// An admitted call from `caller` was ACKed: it no longer counts as pending, and its source
    /// is in good standing.
    pub fn confirmed(&mut self, caller: Caller, now: Instant) {
        self.finished(caller);
        if let Some(source) = self.sources.get_mut(&caller.key()) {
            source.good_until = Some(now + GOOD_STANDING);
            // Its other waiting calls now come from a source in good standing too.
            self.unproven_pending = self.unproven_pending.saturating_sub(source.unproven);
            source.unproven = 0;
        }
    }

    /// An admitted call from `caller` ended without an ACK.
    pub fn finished(&mut self, caller: Caller) {
        let Some(source) = self.sources.get_mut(&caller.key()) else {
            return;
        };
        source.pending = source.pending.saturating_sub(1);
        if source.unproven > 0 {
            source.unproven -= 1;
            self.unproven_pending = self.unproven_pending.saturating_sub(1);
        }
    }

    /// Forgets sources with nothing pending, a full bucket and no good standing.
    fn prune(&mut self, now: Instant) {
        let limits = self.limits;
        self.sources.retain(|_, s| {
            let refill = now.saturating_duration_since(s.refilled).as_secs_f64();
            let full = s.tokens + refill * limits.invites_per_second >= limits.burst;
            s.pending > 0 || !full || s.good_until.is_some_and(|until| now < until)
        });
    }

    /// Refusals per reason since the last call, for one log line an interval; empty when none.
    pub fn take_refusals(&mut self) -> Vec<(Refusal, bool, u64)> {
        let mut out: Vec<_> = self
            .refusals
            .drain()
            .map(|((refusal, silent), n)| (refusal, silent, n))
            .collect();
        out.sort_by_key(|(r, silent, _)| (r.as_str(), *silent));
        out
    }

    /// Sources being tracked (for tests and the refusal report).
    pub fn sources(&self) -> usize {
        self.sources.len()
    }
}

#[cfg(test)]
mod tests;
