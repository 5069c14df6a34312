//! Which RTP source is the caller. Media and keys are taken from one source only, the latched
//! `(address, SSRC)`; everything else is dropped and counted, so a stranger who finds a call's
//! port can neither type into it nor pull its audio away.
//!
//! - The address the SDP named latches as soon as a valid packet comes from it.
//! - Behind NAT the SDP names an address the caller's packets never come from, so until the
//!   window after the ACK closes the first source to send a short in-sequence run latches
//!   instead (Asterisk's strict RTP probation), provisionally: the SDP address still wins over
//!   it inside the window, so a guesser cannot beat a caller whose SDP is true.
//! - After that a new source takes over only when the latched one has been silent for a while
//!   *and* the new one sends a steady run of in-sequence packets from the latched IP or the SDP
//!   IP (a NAT rebinding keeps the public IP and changes the port), never on one packet.
//!   A re-INVITE starts over with the new SDP address.
//!
//! Sans I/O: the stream passes each packet's source, SSRC, sequence number and `now`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// After the ACK, how long a source other than the SDP's may be the first to latch.
pub const NAT_WINDOW: Duration = Duration::from_secs(2);
/// How long the latched source must have been quiet before another may take over.
pub const SILENT_BEFORE_RELATCH: Duration = Duration::from_secs(1);
/// In-sequence packets (200 ms of audio) a new source must send to take over.
pub const STEADY_RUN: u32 = 10;
/// In-sequence packets a source other than the SDP's must send to latch inside the window: one
/// forged packet is not enough, and a key press alone (several packets) still gets through.
pub const PROBATION: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// From the caller: play its keys and audio.
    Caller,
    /// From anyone else: drop.
    Foreign,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Source {
    addr: SocketAddr,
    ssrc: u32,
    last_packet: Instant,
    /// Latched from the address the SDP named (not provisional).
    named: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Candidate {
    addr: SocketAddr,
    ssrc: u32,
    next_seq: u16,
    run: u32,
}

#[derive(Debug)]
pub struct Latch {
    expected: Option<SocketAddr>,
    /// When the NAT window closes; `None` until the ACK sets it.
    window_closes: Option<Instant>,
    source: Option<Source>,
    candidate: Option<Candidate>,
    foreign: u64,
}

impl Latch {
    /// `expected`: the address from the SDP, if it named one.
    pub fn new(expected: Option<SocketAddr>) -> Latch {
        Latch {
            expected,
            window_closes: None,
            source: None,
            candidate: None,
            foreign: 0,
        }
    }

    /// The call is confirmed (ACK): the NAT window runs from now.
    pub fn confirmed(&mut self, now: Instant) {
        self.window_closes.get_or_insert(now + NAT_WINDOW);
    }

    /// A new offer named `expected`: latch afresh, with a new window from `now`.
    pub fn renegotiated(&mut self, expected: Option<SocketAddr>, now: Instant) {
        let foreign = self.foreign;
        *self = Latch::new(expected);
        self.foreign = foreign;
        self.window_closes = Some(now + NAT_WINDOW);
    }

    /// Where the caller's media comes from, once known.
    pub fn source(&self) -> Option<SocketAddr> {
        self.source.map(|s| s.addr)
    }

    /// Nothing heard from the caller and the window after the ACK is over: the SDP's address
    /// has had its 2 s of prompt and gets no more until it speaks (a forged SDP aims at a
    /// third party, who never sends us RTP).
    pub fn unheard_after_window(&self, now: Instant) -> bool {
        self.source.is_none() && self.window_closes.is_some_and(|closes| now >= closes)
    }

    /// Packets dropped because they came from someone other than the caller.
    pub fn foreign(&self) -> u64 {
        self.foreign
    }

    /// Judges one RTP packet. Only `negotiated` ones (a payload type of the answer) can make a
    /// source the caller; once it is, any packet of its stream is the caller's.
    pub fn on_packet(
        &mut self,
        addr: SocketAddr,
        ssrc: u32,
        seq: u16,
        negotiated: bool,
        now: Instant,
    ) -> Verdict {
        if let Some(source) = &mut self.source {
            if source.addr == addr && source.ssrc == ssrc {
                source.last_packet = now;
                self.candidate = None;
                return Verdict::Caller;
            }
        }
        if !negotiated {
            self.foreign += 1;
            return Verdict::Foreign;
        }
        let in_window = self.window_closes.is_none_or(|closes| now < closes);
        let named = Some(addr) == self.expected;
        let latch_now = match self.source {
            None => named,
            Some(source) => named && !source.named && in_window,
        };
        let run = if self.source.is_none() && in_window {
            PROBATION
        } else {
            STEADY_RUN
        };
        if latch_now || self.steady_newcomer(addr, ssrc, seq, run, now) {
            if let Some(old) = self.source {
                tracing::info!(from = %old.addr, to = %addr, "RTP source changed");
            }
            self.source = Some(Source {
                addr,
                ssrc,
                last_packet: now,
                named,
            });
            self.candidate = None;
            return Verdict::Caller;
        }
        if self.foreign == 0 {
            tracing::debug!(%addr, "RTP from a source other than the caller's, dropped");
        }
        self.foreign += 1;
        Verdict::Foreign
    }

    /// A source other than the latched one has sent `run` packets in sequence (while the
    /// latched one, if any, was silent).
    fn steady_newcomer(
        &mut self,
        addr: SocketAddr,
        ssrc: u32,
        seq: u16,
        run: u32,
        now: Instant,
    ) -> bool {
        if let Some(source) = self.source {
            let quiet = now.saturating_duration_since(source.last_packet) >= SILENT_BEFORE_RELATCH;
            let same_ip =
                addr.ip() == source.addr.ip() || self.expected.is_some_and(|e| e.ip() == addr.ip());
            if !quiet || !same_ip {
                self.candidate = None;
                return false;
            }
        }
        let next_seq = seq.wrapping_add(1);
        let candidate = match self.candidate {
            Some(c) if c.addr == addr && c.ssrc == ssrc && c.next_seq == seq => Candidate {
                next_seq,
                run: c.run + 1,
                ..c
            },
            _ => Candidate {
                addr,
                ssrc,
                next_seq,
                run: 1,
            },
        };
        self.candidate = Some(candidate);
        candidate.run >= run
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const PHONE: &str = "192.0.2.10:4000";
    const NAT: &str = "198.51.100.7:61000";
    const STRANGER: &str = "203.0.113.66:5000";

    /// Sends `n` in-sequence packets 20 ms apart from `from`; the verdict of each.
    fn stream(latch: &mut Latch, from: &str, ssrc: u32, n: u16, at: &mut Instant) -> Vec<Verdict> {
        (0..n)
            .map(|seq| {
                *at += Duration::from_millis(20);
                latch.on_packet(addr(from), ssrc, seq, true, *at)
            })
            .collect()
    }

    #[test]
    fn the_sdp_address_latches_and_a_stranger_is_dropped() {
        let t0 = Instant::now();
        let mut latch = Latch::new(Some(addr(PHONE)));
        latch.confirmed(t0);
        assert_eq!(
            latch.on_packet(addr(PHONE), 1, 7, true, t0),
            Verdict::Caller
        );
        let at = t0 + Duration::from_millis(10);
        assert_eq!(
            latch.on_packet(addr(STRANGER), 2, 7, true, at),
            Verdict::Foreign
        );
        // Same address, another SSRC: not the caller's stream either.
        assert_eq!(
            latch.on_packet(addr(PHONE), 2, 8, true, at),
            Verdict::Foreign
        );
        assert_eq!(latch.source(), Some(addr(PHONE)));
        assert_eq!(latch.foreign(), 2);
    }

    #[test]
    fn behind_nat_the_first_source_in_the_window_latches() {
        let t0 = Instant::now();
        let mut latch = Latch::new(Some(addr("10.0.0.5:4000")));
        latch.confirmed(t0);
        let mut at = t0 + Duration::from_millis(300);
        // One forged packet from anywhere is not a caller.
        assert_eq!(
            latch.on_packet(addr(STRANGER), 9, 1, true, at),
            Verdict::Foreign
        );
        let verdicts = stream(&mut latch, NAT, 1, PROBATION as u16, &mut at);
        assert_eq!(verdicts.last(), Some(&Verdict::Caller));
        assert_eq!(
            latch.on_packet(addr(STRANGER), 9, 2, true, at),
            Verdict::Foreign
        );
        assert_eq!(latch.source(), Some(addr(NAT)));
    }

    #[test]
    fn the_sdp_address_wins_over_a_guesser_who_came_first() {
        let t0 = Instant::now();
        let mut latch = Latch::new(Some(addr(PHONE)));
        latch.confirmed(t0);
        let mut at = t0;
        stream(&mut latch, STRANGER, 9, PROBATION as u16, &mut at);
        assert_eq!(latch.source(), Some(addr(STRANGER)));
        let later = at + Duration::from_millis(40);
        assert_eq!(
            latch.on_packet(addr(PHONE), 1, 1, true, later),
            Verdict::Caller
        );
        assert_eq!(
            latch.on_packet(addr(STRANGER), 9, 2, true, later),
            Verdict::Foreign
        );
        assert_eq!(latch.source(), Some(addr(PHONE)));
    }

    #[test]
    fn after_the_window_one_packet_never_latches_a_steady_stream_does() {
        let t0 = Instant::now();
        let mut latch = Latch::new(Some(addr("10.0.0.5:4000")));
        latch.confirmed(t0);
        let mut at = t0 + NAT_WINDOW;
        assert_eq!(
            latch.on_packet(addr(NAT), 9, 100, true, at),
            Verdict::Foreign
        );
        // A caller whose first packet comes late still gets in, after a steady run.
        let verdicts = stream(&mut latch, NAT, 9, STEADY_RUN as u16, &mut at);
        assert_eq!(verdicts.last(), Some(&Verdict::Caller));
        assert!(verdicts[..verdicts.len() - 1]
            .iter()
            .all(|v| *v == Verdict::Foreign));
    }

    #[test]
    fn a_talking_caller_cannot_be_displaced() {
        let t0 = Instant::now();
        let mut latch = Latch::new(Some(addr(PHONE)));
        latch.confirmed(t0);
        // For 10 s the caller sends every 20 ms; an attacker on the caller's own IP sends an
        // in-sequence stream at 100 packets a second.
        for ms in (0..10_000u64).step_by(10) {
            let at = t0 + Duration::from_millis(ms);
            if ms % 20 == 0 {
                assert_eq!(
                    latch.on_packet(addr(PHONE), 1, (ms / 20) as u16, true, at),
                    Verdict::Caller
                );
            }
            let forged = latch.on_packet(addr("192.0.2.10:4002"), 9, (ms / 10) as u16, true, at);
            assert_eq!(forged, Verdict::Foreign);
        }
        assert_eq!(latch.source(), Some(addr(PHONE)));
        assert_eq!(latch.foreign(), 1000);
    }

    #[test]
    fn a_nat_rebinding_relatches_after_silence_and_a_steady_stream() {
        let t0 = Instant::now();
        let mut latch = Latch::new(Some(addr("10.0.0.5:4000")));
        latch.confirmed(t0);
        let mut at = t0;
        stream(&mut latch, NAT, 1, PROBATION as u16, &mut at);
        assert_eq!(latch.source(), Some(addr(NAT)));
        // The NAT moves the caller to another port: the first packets are held back until the
        // old mapping has been silent long enough and the new one is steady.
        let rebound = "198.51.100.7:61002";
        let early = stream(&mut latch, rebound, 1, 100, &mut at);
        let taken = early.iter().position(|v| *v == Verdict::Caller).unwrap();
        let silent_frames = (SILENT_BEFORE_RELATCH.as_millis() / 20) as usize;
        assert!(
            taken >= silent_frames,
            "not before the old source fell silent"
        );
        assert!(early[taken..].iter().all(|v| *v == Verdict::Caller));
        assert_eq!(latch.source(), Some(addr(rebound)));
        // Another IP entirely never takes over without a re-INVITE.
        let mut later = at + Duration::from_secs(5);
        let stranger = stream(&mut latch, STRANGER, 9, 100, &mut later);
        assert!(stranger.iter().all(|v| *v == Verdict::Foreign));
    }

    #[test]
    fn an_out_of_sequence_flood_never_builds_a_steady_run() {
        let t0 = Instant::now();
        let mut latch = Latch::new(Some(addr(PHONE)));
        latch.confirmed(t0);
        latch.on_packet(addr(PHONE), 1, 1, true, t0);
        let mut at = t0 + Duration::from_secs(10);
        for i in 0..1000u16 {
            at += Duration::from_millis(1);
            let seq = i.wrapping_mul(7919);
            let v = latch.on_packet(addr("192.0.2.10:4002"), 9, seq, true, at);
            assert_eq!(v, Verdict::Foreign);
        }
    }

    #[test]
    fn a_reinvite_latches_afresh() {
        let t0 = Instant::now();
        let mut latch = Latch::new(Some(addr(PHONE)));
        latch.confirmed(t0);
        latch.on_packet(addr(PHONE), 1, 1, true, t0);
        let moved = "192.0.2.99:6000";
        let t1 = t0 + Duration::from_secs(30);
        latch.renegotiated(Some(addr(moved)), t1);
        assert_eq!(latch.source(), None);
        assert_eq!(
            latch.on_packet(addr(moved), 3, 1, true, t1),
            Verdict::Caller
        );
        assert_eq!(
            latch.on_packet(addr(PHONE), 1, 2, true, t1),
            Verdict::Foreign
        );
    }

    #[test]
    fn a_payload_type_outside_the_answer_never_latches() {
        let t0 = Instant::now();
        let mut latch = Latch::new(Some(addr(PHONE)));
        assert_eq!(
            latch.on_packet(addr(STRANGER), 9, 1, false, t0),
            Verdict::Foreign
        );
        assert_eq!(latch.source(), None);
        assert_eq!(
            latch.on_packet(addr(PHONE), 1, 1, true, t0),
            Verdict::Caller
        );
        // Comfort noise or another type from the caller's own stream is still the caller.
        assert_eq!(
            latch.on_packet(addr(PHONE), 1, 2, false, t0),
            Verdict::Caller
        );
    }
}
