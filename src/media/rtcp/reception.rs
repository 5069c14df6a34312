//! What we heard of the caller's stream, as a report block says it (RFC 3550 A.3, A.8): loss
//! since the start and since the last report, interarrival jitter, and the caller's last
//! sender report so it can measure the round trip.

use std::time::{Duration, SystemTime};

use super::ntp::ntp_middle;
use super::packet::ReportBlock;
use crate::media::loss::Loss;

/// Two arrivals further apart in transit than this are a restarted clock, not jitter.
const MAX_TRANSIT_STEP_S: u32 = 10;

#[derive(Debug, Default)]
pub struct Reception {
    ssrc: Option<u32>,
    loss: Loss,
    received: u64,
    /// Counts at the last report, for "fraction lost since then".
    lost_prior: u64,
    received_prior: u64,
    /// Jitter in timestamp units, times 16 (RFC 3550 A.8's integer form).
    jitter_q4: u32,
    last_transit: Option<u32>,
    /// The middle of the caller's last SR's NTP time, and when it came.
    last_sr: Option<(u32, SystemTime)>,
}

impl Reception {
    /// A packet from the caller; `media` when it carries the call's audio (telephone-events
    /// hold their timestamp through a key, so they say nothing of jitter).
    pub fn on_rtp(
        &mut self,
        ssrc: u32,
        seq: u16,
        timestamp: u32,
        arrival: SystemTime,
        clock_rate: u32,
        media: bool,
    ) {
        if self.ssrc != Some(ssrc) {
            self.ssrc = Some(ssrc);
            self.last_transit = None;
        }
        self.loss.on_packet(ssrc, seq);
        self.received += 1;
        if media {
            self.update_jitter(timestamp, arrival, clock_rate);
        }
    }

    fn update_jitter(&mut self, timestamp: u32, arrival: SystemTime, clock_rate: u32) {
        let since_epoch = arrival
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let arrival_units =
            (since_epoch.as_nanos() * u128::from(clock_rate) / 1_000_000_000) as u32;
        let transit = arrival_units.wrapping_sub(timestamp);
        if let Some(last) = self.last_transit.replace(transit) {
            let step = (transit.wrapping_sub(last) as i32).unsigned_abs();
            if step <= clock_rate.saturating_mul(MAX_TRANSIT_STEP_S) {
                self.jitter_q4 = self
                    .jitter_q4
                    .saturating_add(step)
                    .saturating_sub((self.jitter_q4 + 8) >> 4);
            }
        }
    }

    pub fn on_sender_report(&mut self, ssrc: u32, ntp_time: u64, arrival: SystemTime) {
        if self.ssrc.is_none_or(|s| s == ssrc) {
            self.last_sr = Some((ntp_middle(ntp_time), arrival));
        }
    }

    pub fn ssrc(&self) -> Option<u32> {
        self.ssrc
    }

    /// The caller's packets that never came.
    pub fn lost(&self) -> u64 {
        self.loss.lost()
    }

    pub fn jitter(&self, clock_rate: u32) -> Duration {
        let units = u64::from(self.jitter_q4 >> 4);
        Duration::from_micros(units * 1_000_000 / u64::from(clock_rate.max(1)))
    }

    /// The block for our next report, and a new interval begun; `None` before the caller sent.
    pub fn report(&mut self, now: SystemTime) -> Option<ReportBlock> {
        let ssrc = self.ssrc?;
        let lost = self.loss.lost();
        let lost_interval = lost.saturating_sub(self.lost_prior);
        let received_interval = self.received.saturating_sub(self.received_prior);
        let expected_interval = lost_interval + received_interval;
        self.lost_prior = lost;
        self.received_prior = self.received;
        let fraction_lost = match expected_interval {
            0 => 0,
            n => (lost_interval * 256 / n).min(255) as u8,
        };
        let (last_sr, delay_since_last_sr) = match self.last_sr {
            Some((middle, at)) => {
                let waited = now.duration_since(at).unwrap_or_default();
                (middle, (waited.as_micros() * 65536 / 1_000_000) as u32)
            }
            None => (0, 0),
        };
        Some(ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost: lost.min(0x7f_ffff) as i32,
            highest_seq: self.loss.highest() as u32,
            jitter: self.jitter_q4 >> 4,
            last_sr,
            delay_since_last_sr,
        })
    }
}
