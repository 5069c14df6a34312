//! Who may start a call. A scanner or a flood from one address must never keep a real caller
//! out, with no allow-list configured: every source IP gets a budget of new INVITEs (a token
//! bucket) and of calls still waiting for their ACK, and unconfirmed calls from sources not yet
//! in good standing (an ACKed call in the last hour) share at most part of the capacity, so
//! the rest stays for callers who are known to complete calls. Within that share one unproven
//! source holds at most a quarter (at least two calls), so a single scanner leaves room for new
//! callers too. A source over budget is told 503 with Retry-After; one that keeps sending far
//! past its budget is no longer answered.
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
    sources: HashMap<IpAddr, Source>,
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

    /// A new INVITE (not a retransmission) from `ip`. When admitted, the call counts as
    /// pending until `confirmed` or `finished` is called for it.
    pub fn on_invite(&mut self, ip: IpAddr, now: Instant) -> Verdict {
        if !self.sources.contains_key(&ip) && self.sources.len() >= MAX_SOURCES {
            self.prune(now);
            if self.sources.len() >= MAX_SOURCES {
                return self.refuse(Refusal::Sources, false, 1);
            }
        }
        let limits = self.limits;
        let unproven_ceiling = self.unproven_ceiling();
        let unproven_full = self.unproven_pending >= unproven_ceiling;
        let source = self.sources.entry(ip).or_insert(Source {
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
        let good = source.good_until.is_some_and(|until| now < until);
        let pending_cap = if good {
            limits.pending_per_source
        } else {
            let quarter = unproven_ceiling.div_ceil(UNPROVEN_SOURCES_AT_LEAST);
            limits
                .pending_per_source
                .min(quarter.max(UNPROVEN_SOURCE_FLOOR))
        };
        let refusal = if source.tokens < 1.0 {
            Some(Refusal::Rate)
        } else if source.pending >= pending_cap {
            Some(Refusal::Pending)
        } else if !good && unproven_full {
            Some(Refusal::Share)
        } else {
            None
        };
        let Some(refusal) = refusal else {
            source.tokens -= 1.0;
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

    /// An admitted call from `ip` was ACKed: it no longer counts as pending, and its source is
    /// in good standing.
    pub fn confirmed(&mut self, ip: IpAddr, now: Instant) {
        self.finished(ip);
        if let Some(source) = self.sources.get_mut(&ip) {
            source.good_until = Some(now + GOOD_STANDING);
            // Its other waiting calls now come from a source in good standing too.
            self.unproven_pending = self.unproven_pending.saturating_sub(source.unproven);
            source.unproven = 0;
        }
    }

    /// An admitted call from `ip` ended without an ACK.
    pub fn finished(&mut self, ip: IpAddr) {
        let Some(source) = self.sources.get_mut(&ip) else {
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
mod tests {
    use super::*;

    fn limits() -> AdmissionLimits {
        AdmissionLimits {
            invites_per_second: 10.0,
            burst: 20.0,
            pending_per_source: 5,
            capacity: 100,
            unproven_share: 0.5,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_source_gets_its_burst_then_its_rate_with_retry_after() {
        let mut a = Admission::new(AdmissionLimits {
            pending_per_source: 1000,
            capacity: 1000,
            ..limits()
        });
        let t0 = Instant::now();
        let flood = ip("203.0.113.9");
        for _ in 0..20 {
            assert_eq!(a.on_invite(flood, t0), Verdict::Admit);
        }
        assert_eq!(
            a.on_invite(flood, t0),
            Verdict::Busy {
                refusal: Refusal::Rate,
                retry_after: 1
            }
        );
        // A tenth of a second later, one more token.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(a.on_invite(flood, t1), Verdict::Admit);
        assert!(matches!(a.on_invite(flood, t1), Verdict::Busy { .. }));
        // Another source is untouched.
        assert_eq!(a.on_invite(ip("192.0.2.1"), t1), Verdict::Admit);
    }

    #[test]
    fn a_source_that_ignores_retry_after_gets_silence() {
        let mut a = Admission::new(limits());
        let t0 = Instant::now();
        let flood = ip("203.0.113.9");
        let verdicts: Vec<_> = (0..200).map(|_| a.on_invite(flood, t0)).collect();
        assert!(matches!(
            verdicts[5],
            Verdict::Busy {
                refusal: Refusal::Pending,
                ..
            }
        ));
        assert!(matches!(verdicts[199], Verdict::Ignore { .. }));
        let report = a.take_refusals();
        let total: u64 = report.iter().map(|(_, _, n)| n).sum();
        assert_eq!(total, 195);
        assert!(
            a.take_refusals().is_empty(),
            "counts reset after each report"
        );
    }

    #[test]
    fn pending_calls_are_capped_per_source_and_freed_by_ack_or_end() {
        let mut a = Admission::new(limits());
        let t0 = Instant::now();
        let scanner = ip("203.0.113.9");
        for _ in 0..5 {
            assert_eq!(a.on_invite(scanner, t0), Verdict::Admit);
        }
        assert!(matches!(
            a.on_invite(scanner, t0),
            Verdict::Busy {
                refusal: Refusal::Pending,
                ..
            }
        ));
        a.finished(scanner);
        assert_eq!(a.on_invite(scanner, t0), Verdict::Admit);
        a.confirmed(scanner, t0);
        assert_eq!(a.on_invite(scanner, t0), Verdict::Admit);
    }

    #[test]
    fn unproven_sources_share_half_and_good_standing_keeps_the_rest() {
        let mut a = Admission::new(limits());
        let t0 = Instant::now();
        let known = ip("192.0.2.1");
        assert_eq!(a.on_invite(known, t0), Verdict::Admit);
        a.confirmed(known, t0);
        // Many spoofed sources, one unconfirmed call each: half the capacity, then no more.
        let admitted = (0..100u8)
            .filter(|i| a.on_invite(ip(&format!("203.0.113.{i}")), t0) == Verdict::Admit)
            .count();
        assert_eq!(admitted, 50);
        assert!(matches!(
            a.on_invite(ip("198.51.100.1"), t0),
            Verdict::Busy {
                refusal: Refusal::Share,
                ..
            }
        ));
        // The caller in good standing still gets in.
        assert_eq!(a.on_invite(known, t0), Verdict::Admit);
        // When the flood's calls end, strangers get in again.
        a.finished(ip("203.0.113.0"));
        assert_eq!(a.on_invite(ip("198.51.100.1"), t0), Verdict::Admit);
    }

    #[test]
    fn good_standing_expires() {
        let mut a = Admission::new(limits());
        let t0 = Instant::now();
        let known = ip("192.0.2.1");
        a.on_invite(known, t0);
        a.confirmed(known, t0);
        let later = t0 + GOOD_STANDING + Duration::from_secs(1);
        for i in 0..50u8 {
            a.on_invite(ip(&format!("203.0.113.{i}")), later);
        }
        assert!(matches!(
            a.on_invite(known, later),
            Verdict::Busy {
                refusal: Refusal::Share,
                ..
            }
        ));
    }

    #[test]
    fn idle_sources_are_forgotten_when_the_table_fills() {
        let mut a = Admission::new(AdmissionLimits {
            capacity: 1_000_000,
            unproven_share: 1.0,
            ..limits()
        });
        let t0 = Instant::now();
        for i in 0..MAX_SOURCES as u32 {
            let source = IpAddr::from(i.to_be_bytes());
            assert_eq!(a.on_invite(source, t0), Verdict::Admit);
            a.finished(source);
        }
        assert!(matches!(
            a.on_invite(ip("192.0.2.1"), t0),
            Verdict::Busy {
                refusal: Refusal::Sources,
                ..
            }
        ));
        let later = t0 + Duration::from_secs(10);
        assert_eq!(a.on_invite(ip("192.0.2.1"), later), Verdict::Admit);
        assert_eq!(a.sources(), 1, "refilled, idle sources were dropped");
    }

    #[test]
    fn one_unproven_source_takes_at_most_a_quarter_of_the_share() {
        let mut a = Admission::new(AdmissionLimits {
            capacity: 20,
            ..limits()
        });
        let t0 = Instant::now();
        let scanner = ip("203.0.113.9");
        let admitted = (0..10)
            .filter(|_| a.on_invite(scanner, t0) == Verdict::Admit)
            .count();
        assert_eq!(
            admitted, 3,
            "a quarter of the 10 unproven places, rounded up"
        );
        for i in 0..7u8 {
            assert_eq!(a.on_invite(ip(&format!("192.0.2.{i}")), t0), Verdict::Admit);
        }
    }
}
