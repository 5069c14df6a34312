//! One call's RTCP session: when our next report is due (about every 5 s, randomised by half
//! either way as RFC 3550 §6.3.1 asks), what it says (an SR while we send, else an RR, each
//! with a block on the caller's stream when we have heard it, then our CNAME), the BYE at the
//! end, and the call's quality as the caller's reports tell it: the loss and jitter it saw of
//! our stream and the round trip from its echo of our last SR.

use std::time::{Duration, Instant, SystemTime};

use rand::Rng;

use super::ntp::{ntp, ntp_middle};
use super::packet::{self, Malformed, Part, SenderInfo, Writer};
use super::reception::Reception;

/// RFC 3550's minimum interval, which a two-party call with 64 kbit/s of audio sits at.
const INTERVAL: Duration = Duration::from_secs(5);

/// What the call's RTCP tells of it, for its end line, record and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Quality {
    /// Jitter of the caller's stream as we measured it.
    pub jitter: Duration,
    /// The caller's packets we never got.
    pub lost: u64,
    /// From the caller's last report on our stream.
    pub peer_jitter: Option<Duration>,
    pub peer_lost: Option<i32>,
    pub peer_fraction_lost: Option<u8>,
    /// Round trip from the caller's echo of our last SR.
    pub rtt: Option<Duration>,
    pub reports_heard: u32,
}

#[derive(Debug)]
pub struct RtcpSession {
    ssrc: u32,
    cname: [u8; 12],
    clock_rate: u32,
    packets_sent: u32,
    octets_sent: u32,
    sent_since_report: bool,
    reception: Reception,
    peer: Quality,
    next_report: Instant,
}

impl RtcpSession {
    pub fn new(ssrc: u32, clock_rate: u32, now: Instant) -> RtcpSession {
        let mut cname = *b"ivr-00000000";
        for (i, digit) in format!("{ssrc:08x}").bytes().enumerate() {
            cname[4 + i] = digit;
        }
        RtcpSession {
            ssrc,
            cname,
            clock_rate,
            packets_sent: 0,
            octets_sent: 0,
            sent_since_report: false,
            reception: Reception::default(),
            peer: Quality::default(),
            // The first report comes after half an interval (RFC 3550 §6.3.1).
            next_report: now + jittered(INTERVAL / 2),
        }
    }

    /// The codec changed: jitter is counted in the new clock.
    pub fn set_clock_rate(&mut self, clock_rate: u32) {
        self.clock_rate = clock_rate;
    }

    pub fn on_rtp_sent(&mut self, payload_len: usize) {
        self.packets_sent = self.packets_sent.wrapping_add(1);
        self.octets_sent = self.octets_sent.wrapping_add(payload_len as u32);
        self.sent_since_report = true;
    }

    /// A packet of the caller's own stream (the latch decided that).
    pub fn on_rtp_received(
        &mut self,
        ssrc: u32,
        seq: u16,
        timestamp: u32,
        arrival: SystemTime,
        media: bool,
    ) {
        self.reception
            .on_rtp(ssrc, seq, timestamp, arrival, self.clock_rate, media);
    }

    /// A compound RTCP packet from the caller's address. Reports about other sources than
    /// ours, and any packet from a sender that is not the caller's stream, change nothing.
    pub fn on_rtcp(&mut self, data: &[u8], arrival: SystemTime) -> Result<(), Malformed> {
        let caller = self.reception.ssrc();
        let ours = self.ssrc;
        let mut heard = false;
        packet::read(data, |part| match part {
            Part::Sender { ssrc, info } if caller.is_none_or(|c| c == ssrc) => {
                heard = true;
                self.reception.on_sender_report(ssrc, info.ntp, arrival);
            }
            Part::Report { reporter, block }
                if block.ssrc == ours && caller.is_none_or(|c| c == reporter) =>
            {
                heard = true;
                self.on_report_of_us(&block, arrival);
            }
            _ => {}
        })?;
        if heard {
            self.peer.reports_heard = self.peer.reports_heard.saturating_add(1);
        }
        Ok(())
    }

    fn on_report_of_us(&mut self, block: &packet::ReportBlock, arrival: SystemTime) {
        self.peer.peer_lost = Some(block.cumulative_lost);
        self.peer.peer_fraction_lost = Some(block.fraction_lost);
        self.peer.peer_jitter = Some(Duration::from_micros(
            u64::from(block.jitter) * 1_000_000 / u64::from(self.clock_rate.max(1)),
        ));
        if block.last_sr != 0 {
            // RFC 3550 §6.4.1: arrival − LSR − DLSR, all in 1/65536 s.
            let round_trip = ntp_middle(ntp(arrival))
                .wrapping_sub(block.last_sr)
                .wrapping_sub(block.delay_since_last_sr);
            if (round_trip as i32) >= 0 {
                self.peer.rtt = Some(Duration::from_micros(
                    u64::from(round_trip) * 1_000_000 / 65536,
                ));
            }
        }
    }

    pub fn due(&self, now: Instant) -> bool {
        now >= self.next_report
    }

    /// Our next report into `buf`, and the one after scheduled: the length written, or `None`
    /// when `buf` is too small. `rtp_timestamp` is our stream's RTP time at `wall`.
    pub fn write_report(
        &mut self,
        now: Instant,
        wall: SystemTime,
        rtp_timestamp: u32,
        buf: &mut [u8],
    ) -> Option<usize> {
        self.next_report = now + jittered(INTERVAL);
        let mut writer = Writer::new(buf);
        self.write_reports(&mut writer, wall, rtp_timestamp)?;
        Some(writer.len())
    }

    /// The last report and a BYE, for when the call ends.
    pub fn write_goodbye(
        &mut self,
        wall: SystemTime,
        rtp_timestamp: u32,
        buf: &mut [u8],
    ) -> Option<usize> {
        let mut writer = Writer::new(buf);
        self.write_reports(&mut writer, wall, rtp_timestamp)?;
        writer.goodbye(self.ssrc)?;
        Some(writer.len())
    }

    fn write_reports(
        &mut self,
        writer: &mut Writer,
        wall: SystemTime,
        rtp_timestamp: u32,
    ) -> Option<()> {
        let info = self.sent_since_report.then(|| SenderInfo {
            ntp: ntp(wall),
            rtp_timestamp,
            packets: self.packets_sent,
            octets: self.octets_sent,
        });
        self.sent_since_report = false;
        let block = self.reception.report(wall);
        writer.report(self.ssrc, info.as_ref(), block.as_ref())?;
        writer.cname(self.ssrc, &self.cname)
    }

    /// The caller's packets that never came.
    pub fn lost(&self) -> u64 {
        self.reception.lost()
    }

    pub fn quality(&self) -> Quality {
        Quality {
            jitter: self.reception.jitter(self.clock_rate),
            lost: self.reception.lost(),
            ..self.peer
        }
    }
}

/// A duration as milliseconds to the microsecond, as logs and records show quality
/// (`0.396`, not `0.39599999999999996`).
pub fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

/// `interval` times a random factor in [0.5, 1.5), so calls that started together spread out.
fn jittered(interval: Duration) -> Duration {
    interval.mul_f64(rand::thread_rng().gen_range(0.5..1.5))
}

#[cfg(test)]
mod tests;
