//! RTCP for one stream: our reports on their schedule, and the caller's read for loss, jitter and
//! round trip.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use super::*;
use crate::media::rtcp::packet::starts_with_report;
use crate::media::rtcp::Quality;

impl RtpStream {
    pub(super) fn send_report(&mut self, now: Instant, scratch: &mut Scratch) {
        let packet = &mut scratch.packet;
        let rtp_time = self.rtp_time_at(now);
        let room = packet.len() - SRTCP_TRAILER;
        let written = self
            .rtcp
            .write_report(now, SystemTime::now(), rtp_time, &mut packet[..room]);
        if let Some(len) = written {
            self.send_rtcp(packet, len, &mut scratch.wire);
        }
        self.publish_quality();
    }

    /// Sends the report in `packet[..len]`, sealed under SRTCP when the call is encrypted, to
    /// where the caller takes RTCP.
    pub(super) fn send_rtcp(&mut self, packet: &mut [u8], len: usize, wire: &mut Wire) {
        let len = match &mut self.crypto {
            Some(crypto) => match crypto.outbound.protect_rtcp(packet, len) {
                Ok(len) => len,
                Err(_) => return,
            },
            None => len,
        };
        let (socket, target) = if self.params.rtcp_mux {
            (&self.lease.rtp, self.target())
        } else {
            (
                &self.lease.rtcp,
                self.rtcp_source
                    .or(self.params.remote_rtcp.filter(|_| !self.unheard)),
            )
        };
        if let Some(target) = target {
            if let Err(e) = wire.send(socket, &packet[..len], target) {
                tracing::trace!(%target, "RTCP send failed: {e}");
            }
        }
    }

    /// RTCP from the caller: only from the address its RTP comes from (or, before any RTP,
    /// the SDP's), and under SRTP only with a good SRTCP tag. The first good report fixes the
    /// RTCP port; reports from any other port are dropped after.
    pub(super) fn on_rtcp(
        &mut self,
        data: &mut [u8],
        from: SocketAddr,
        arrival: SystemTime,
    ) -> Heard {
        let caller = self.latch.source().or(self.params.remote);
        let from_caller = match (self.params.rtcp_mux, self.rtcp_source) {
            (true, _) => caller == Some(from),
            (false, Some(source)) => source == from,
            (false, None) => caller.is_some_and(|c| c.ip() == from.ip()),
        };
        // Not a report (a STUN keep-alive, baresip's plain APP "PING"): nothing for SRTCP to
        // judge, and nothing RFC 3550 lets start a compound packet.
        if !from_caller || !starts_with_report(data) {
            return Heard::Refused;
        }
        let len = match &mut self.crypto {
            Some(crypto) => match crypto.inbound.unprotect_rtcp(data) {
                Ok(len) => len,
                Err(error) => {
                    tracing::trace!(%from, "SRTCP refused: {error}");
                    self.visit.refused[error as usize] += 1;
                    return Heard::Refused;
                }
            },
            None => data.len(),
        };
        if self.rtcp.on_rtcp(&data[..len], arrival).is_err() {
            return Heard::Refused;
        }
        if !self.params.rtcp_mux {
            self.rtcp_source.get_or_insert(from);
        }
        Heard::Control
    }

    pub(super) fn publish_quality(&self) -> Quality {
        let quality = self.rtcp.quality();
        if let Ok(mut shared) = self.counts.quality.lock() {
            *shared = quality;
        }
        quality
    }
}
