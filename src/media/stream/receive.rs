//! The receive path: what the caller sent since the last frame, read in bounded batches, admitted
//! only from the latched source (and, under SRTP, only when authentic), then heard as keys.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use rtp_rs::RtpReader;

use super::*;
use crate::media::arrival;
use crate::media::codec::{alaw_to_linear, ulaw_to_linear, Codec, FRAME_MS};
use crate::media::dtmf::DigitSource;
use crate::media::latch::Verdict;
use crate::media::relay;
use crate::media::rtcp::packet::is_rtcp;
use crate::metrics::{Source, METRICS};

impl RtpStream {
    pub(super) fn read(&mut self, now: Instant, scratch: &mut Scratch) {
        self.read_socket(false, MAX_READ_PER_FRAME, now, scratch);
        if self.rtcp_read_in == 0 {
            self.rtcp_read_in = RTCP_READ_EVERY;
            self.read_socket(true, MAX_RTCP_READ, now, scratch);
        }
        self.rtcp_read_in -= 1;
    }

    pub(super) fn read_socket(
        &mut self,
        rtcp_port: bool,
        budget: usize,
        now: Instant,
        scratch: &mut Scratch,
    ) {
        let buf = &mut scratch.received;
        for _ in 0..budget {
            let socket = if rtcp_port {
                &self.lease.rtcp
            } else {
                &self.lease.rtp
            };
            match arrival::recv(socket, buf, &mut scratch.control) {
                Ok((len, from, at)) => self.hear(rtcp_port, &mut buf[..len], from, at, now),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::trace!("RTP receive failed: {e}");
                    return;
                }
            }
        }
    }

    /// A datagram the pacer's ring received on the RTP (or RTCP) port: false the first time
    /// this visit's flood budget is spent, when the ring should stop receiving for the
    /// stream until its next visit (what is over the budget is dropped).
    pub(in crate::media) fn hear_from_ring(
        &mut self,
        rtcp_port: bool,
        data: &mut [u8],
        from: SocketAddr,
        at: SystemTime,
        now: Instant,
    ) -> bool {
        self.heard_since_visit = self.heard_since_visit.saturating_add(1);
        if self.heard_since_visit > MAX_READ_PER_FRAME {
            self.visit.dropped += 1;
            return self.heard_since_visit != MAX_READ_PER_FRAME + 1;
        }
        self.hear(rtcp_port, data, from, at, now);
        true
    }

    fn hear(
        &mut self,
        rtcp_port: bool,
        data: &mut [u8],
        from: SocketAddr,
        at: SystemTime,
        now: Instant,
    ) {
        let heard = if rtcp_port || (self.params.rtcp_mux && is_rtcp(data)) {
            self.on_rtcp(data, from, at)
        } else {
            self.on_packet(data, from, now, at)
        };
        match heard {
            Heard::Media => {
                self.last_heard = now;
                self.visit.received += 1;
            }
            Heard::Control if self.liveness.rtcp_counts => self.last_heard = now,
            Heard::Control => {}
            Heard::Refused => self.visit.dropped += 1,
        }
    }

    /// RTP from the caller's own stream; anything else is dropped before its keys or audio
    /// are looked at. SRTP is authenticated before its source may count as the caller's, and
    /// decrypted in place only after.
    pub(super) fn on_packet(
        &mut self,
        data: &mut [u8],
        from: SocketAddr,
        now: Instant,
        arrival: SystemTime,
    ) -> Heard {
        let Some(len) = self.admit(data, from, now) else {
            return Heard::Refused;
        };
        let Ok(rtp) = RtpReader::new(&data[..len]) else {
            return Heard::Refused;
        };
        let pt = rtp.payload_type();
        self.rtcp.on_rtp_received(
            rtp.ssrc(),
            u16::from(rtp.sequence_number()),
            rtp.timestamp(),
            arrival,
            pt == self.params.payload_type,
        );
        if let Some(relay) = &self.relay {
            let kind = if pt == self.params.payload_type {
                Some(relay::Kind::Audio)
            } else if Some(pt) == self.params.telephone_event {
                Some(relay::Kind::Event)
            } else {
                None
            };
            if let Some(kind) = kind {
                let header = relay::Header {
                    kind,
                    marker: rtp.mark(),
                    seq: u16::from(rtp.sequence_number()),
                    timestamp: rtp.timestamp(),
                    ssrc: rtp.ssrc(),
                };
                relay.end.heard.push(header, rtp.payload());
            }
        }
        if Some(pt) == self.params.telephone_event {
            if let Some(digit) = self.keys.on_packet(rtp.timestamp(), rtp.payload(), now) {
                self.on_digit(digit, DigitSource::Rfc4733);
            }
        } else if pt == self.params.payload_type {
            self.listen_for_tones(rtp.payload());
        }
        Heard::Media
    }

    /// Whether the packet is the caller's: then the length of its plain RTP at the start of
    /// `data`.
    pub(super) fn admit(
        &mut self,
        data: &mut [u8],
        from: SocketAddr,
        now: Instant,
    ) -> Option<usize> {
        // The fixed header travels in clear under SRTP too.
        if data.len() < 12 || data[0] >> 6 != 2 {
            return None;
        }
        let pt = data[1] & 0x7f;
        let seq = u16::from_be_bytes([data[2], data[3]]);
        let ssrc = u32::from_be_bytes([data[8], data[9], data[10], data[11]]);
        let negotiated = pt == self.params.payload_type || Some(pt) == self.params.telephone_event;
        let checked = match &self.crypto {
            Some(crypto) => match crypto.inbound.check_rtp(data) {
                Ok(checked) => Some(checked),
                Err(error) => {
                    self.visit.refused[error as usize] += 1;
                    return None;
                }
            },
            None => {
                RtpReader::new(data).ok()?;
                None
            }
        };
        if self.latch.on_packet(from, ssrc, seq, negotiated, now) == Verdict::Foreign {
            return None;
        }
        match (checked, &mut self.crypto) {
            (Some(checked), Some(crypto)) => Some(crypto.inbound.accept_rtp(&checked, data)),
            _ => Some(data.len()),
        }
    }

    pub(super) fn listen_for_tones(&mut self, payload: &[u8]) {
        let Some(tones) = &mut self.tones else { return };
        let decode = match self.params.codec {
            Codec::Pcmu => ulaw_to_linear,
            Codec::Pcma => alaw_to_linear,
            Codec::G722 | Codec::Opus => return,
        };
        // One G.711 frame at a time: 8 samples a millisecond.
        let mut pcm = [0i16; 8 * FRAME_MS as usize];
        let mut heard = None;
        for chunk in payload.chunks(pcm.len()) {
            for (out, &b) in pcm.iter_mut().zip(chunk) {
                *out = decode(b);
            }
            tones.push(&pcm[..chunk.len()], |d| heard = Some(d));
        }
        if let Some(digit) = heard {
            self.on_digit(digit, DigitSource::Inband);
        }
    }

    /// Reports a key and stops whatever interruptible prompt is playing or queued.
    pub(super) fn on_digit(&mut self, digit: char, source: DigitSource) {
        let source_label = Source {
            source: source.as_str(),
        };
        METRICS.dtmf_keys.get_or_create(&source_label).inc();
        let _ = self.events.send(MediaEvent::Digit { digit, source });
        self.stop_playback(true);
    }
}
