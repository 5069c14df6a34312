//! Reliable provisional responses (RFC 3262), the UAS side, sans I/O: a 180 sent with
//! `Require: 100rel` and an `RSeq` is sent again at T1, 2·T1, 4·T1... (no T2 cap, and over any
//! transport: the PRACK that stops it is end to end) until a PRACK names it; after 64·T1
//! without one the INVITE is refused.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rsip::Method;

use super::transaction::{TimerAction, Timers};

/// The option tag, in `Require` and `Supported`.
pub const OPTION_TAG: &str = "100rel";

/// Whether an INVITE asks for (`Require`) or allows (`Supported`) reliable provisionals.
pub fn wanted(require: &[String], supported: &[String]) -> bool {
    require
        .iter()
        .chain(supported)
        .any(|tag| tag.eq_ignore_ascii_case(OPTION_TAG))
}

/// `RAck: <rseq> <cseq> <method>`: what a PRACK acknowledges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RAck {
    pub rseq: u32,
    pub cseq: u32,
    pub invite: bool,
}

impl RAck {
    pub fn parse(value: &str) -> Option<RAck> {
        let mut parts = value.split_ascii_whitespace();
        let rseq = parts.next()?.parse().ok()?;
        let cseq = parts.next()?.parse().ok()?;
        let invite = parts.next()?.parse::<Method>().ok()? == Method::Invite;
        parts
            .next()
            .is_none()
            .then_some(RAck { rseq, cseq, invite })
    }
}

#[derive(Debug)]
pub struct ReliableProvisional {
    rseq: u32,
    invite_cseq: u32,
    bytes: Bytes,
    next: Instant,
    interval: Duration,
    gives_up_at: Instant,
}

impl ReliableProvisional {
    /// `bytes`, already sent once at `now`, carries `RSeq: rseq` for the INVITE `invite_cseq`.
    pub fn new(
        rseq: u32,
        invite_cseq: u32,
        bytes: Bytes,
        timers: Timers,
        now: Instant,
    ) -> ReliableProvisional {
        ReliableProvisional {
            rseq,
            invite_cseq,
            bytes,
            next: now + timers.t1,
            interval: timers.t1,
            gives_up_at: now + timers.timeout(),
        }
    }

    /// Whether a PRACK's `RAck` names this response.
    pub fn acknowledged_by(&self, rack: &RAck) -> bool {
        rack.invite && rack.rseq == self.rseq && rack.cseq == self.invite_cseq
    }

    pub fn next_deadline(&self) -> Instant {
        self.next.min(self.gives_up_at)
    }

    pub fn on_timer(&mut self, now: Instant) -> TimerAction {
        if now >= self.gives_up_at {
            return TimerAction::TimedOut;
        }
        if now < self.next {
            return TimerAction::Nothing;
        }
        self.interval *= 2;
        self.next = now + self.interval;
        TimerAction::Retransmit(self.bytes.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retransmits_doubling_without_a_cap_then_gives_up_at_64_t1() {
        let timers = Timers::default();
        let start = Instant::now();
        let mut r = ReliableProvisional::new(7, 1, Bytes::from_static(b"180"), timers, start);
        let mut sent = Vec::new();
        let gave_up = loop {
            let now = r.next_deadline();
            match r.on_timer(now) {
                TimerAction::Retransmit(_) => sent.push(now - start),
                TimerAction::TimedOut => break now,
                other => panic!("{other:?}"),
            }
        };
        let t1 = timers.t1;
        // T1, then 2, 4, 8, 16 and 32 T1 later: past T2 (8 T1) with no cap.
        assert_eq!(sent, [t1, t1 * 3, t1 * 7, t1 * 15, t1 * 31, t1 * 63]);
        assert_eq!(gave_up - start, timers.timeout());
    }

    #[test]
    fn only_its_own_rack_acknowledges_it() {
        let r = ReliableProvisional::new(7, 3, Bytes::new(), Timers::default(), Instant::now());
        let rack = |s: &str| RAck::parse(s).unwrap();
        assert!(r.acknowledged_by(&rack("7 3 INVITE")));
        assert!(!r.acknowledged_by(&rack("8 3 INVITE")));
        assert!(!r.acknowledged_by(&rack("7 2 INVITE")));
        assert!(!r.acknowledged_by(&rack("7 3 UPDATE")));
        for junk in [
            "",
            "7",
            "7 3",
            "x 3 INVITE",
            "7 3 INVITE extra",
            "99999999999 1 INVITE",
        ] {
            assert_eq!(RAck::parse(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn either_header_asks_for_it() {
        let tags = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(wanted(&tags(&["100rel"]), &[]));
        assert!(wanted(&[], &tags(&["timer", "100REL"])));
        assert!(!wanted(&tags(&["timer"]), &tags(&["replaces"])));
    }
}
