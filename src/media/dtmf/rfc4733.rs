//! RFC 4733 telephone-event decoding. A key press is one event, identified by its RTP
//! timestamp and event code, and is reported once, on the first packet that shows it.
//!
//! Reporting on the first packet rather than on End gives the fastest barge-in (the prompt stops
//! one packet after the key goes down) and cannot lose a digit whose End packets are all lost.
//! The price is that a press is reported even if the caller's phone later cuts it short, which
//! for explicit signalling (unlike in-band detection) carries no risk of a false key.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::event_to_digit;

/// How long a closed event's packets are still treated as its redundant copies or
/// retransmissions. After that, a packet with the same timestamp and code that starts again
/// (duration back near zero) is a new press: SIPp's pcap replays and some gateways resend the
/// very same packets for a repeated key.
const REPLAY_GAP: Duration = Duration::from_millis(100);
/// Remembered closed events, for de-duplication.
const RECENT: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Event {
    timestamp: u32,
    code: u8,
    duration: u16,
    last_packet: Instant,
}

#[derive(Debug)]
pub struct Rfc4733Decoder {
    clock_rate: u32,
    end_timeout: Duration,
    active: Option<Event>,
    recent: VecDeque<Event>,
}

impl Rfc4733Decoder {
    /// `end_timeout`: an event with no packet for this long is over, End or not.
    pub fn new(clock_rate: u32, end_timeout: Duration) -> Rfc4733Decoder {
        Rfc4733Decoder {
            clock_rate,
            end_timeout,
            active: None,
            recent: VecDeque::with_capacity(RECENT),
        }
    }

    /// One telephone-event payload with its RTP timestamp; returns a newly pressed key.
    pub fn on_packet(&mut self, timestamp: u32, payload: &[u8], now: Instant) -> Option<char> {
        self.expire(now);
        let [code, flags, d0, d1, ..] = *payload else {
            return None;
        };
        let end = flags & 0x80 != 0;
        let duration = u16::from_be_bytes([d0, d1]);
        let digit = event_to_digit(code)?;

        if let Some(active) = &mut self.active {
            if active.code == code
                && (active.timestamp == timestamp || continues(active, timestamp, self.clock_rate))
            {
                // The same press: a later packet, a redundant End, or a long press re-stamped
                // or split into segments when its duration field would wrap.
                active.timestamp = timestamp;
                active.duration = duration;
                active.last_packet = now;
                if end {
                    self.close();
                }
                return None;
            }
        }
        if let Some(i) = self
            .recent
            .iter()
            .position(|e| e.code == code && e.timestamp == timestamp)
        {
            let old = &mut self.recent[i];
            let replay =
                now.duration_since(old.last_packet) > REPLAY_GAP && duration < old.duration && !end;
            if !replay {
                old.last_packet = old.last_packet.max(now);
                return None;
            }
            self.recent.remove(i);
        }
        // A new press; whatever was active is over (its End packets may all be lost).
        self.close();
        self.active = Some(Event {
            timestamp,
            code,
            duration,
            last_packet: now,
        });
        if end {
            self.close();
        }
        Some(digit)
    }

    fn expire(&mut self, now: Instant) {
        if self
            .active
            .is_some_and(|e| now.duration_since(e.last_packet) >= self.end_timeout)
        {
            self.close();
        }
    }

    fn close(&mut self) {
        if let Some(event) = self.active.take() {
            if self.recent.len() == RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back(event);
        }
    }
}

/// A new timestamp that carries on the active press: the next segment of a long event starts
/// where the previous one's duration ended (RFC 4733 §2.5.1.3), and re-stamping gateways move the
/// timestamp forward by about a packet each time. Allow up to 200 ms past the known duration.
fn continues(active: &Event, timestamp: u32, clock_rate: u32) -> bool {
    let ahead = timestamp.wrapping_sub(active.timestamp);
    let slack = clock_rate / 5;
    ahead > 0 && ahead <= active.duration as u32 + slack
}

#[cfg(test)]
mod tests;
