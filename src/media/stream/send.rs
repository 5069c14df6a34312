//! The send path: the frames due now, on absolute deadlines, from the playing prompt, silence or
//! the other leg of a bridge, restamped and (under SRTP) encrypted in place.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtp_rs::{RtpPacketBuilder, Seq};

use super::*;
use crate::media::codec::FRAME_MS;
use crate::media::relay;

impl RtpStream {
    /// Sends every frame whose deadline has passed: a short lag is caught up in a burst, a long
    /// one is skipped so the caller hears a gap rather than sped-up audio.
    pub(super) fn send_due(&mut self, now: Instant, scratch: &mut Scratch) {
        self.unheard = self.latch.unheard_after_window(now);
        let Some(elapsed) = now.checked_duration_since(self.start) else {
            return;
        };
        let due = (elapsed.as_nanos() / FRAME.as_nanos()) as u64 + 1;
        if due <= self.frame_no {
            return;
        }
        let deadline = self.start + Duration::from_millis(FRAME_MS as u64 * self.frame_no);
        self.lateness
            .record(now.saturating_duration_since(deadline));
        let behind = due - self.frame_no;
        if behind > MAX_BURST {
            self.skip(behind - 1);
            self.frame_no += behind - 1;
        }
        while self.frame_no < due {
            self.send_next(scratch);
            self.frame_no += 1;
        }
    }

    /// Stops the current prompt and drops queued ones; with `barge_in`, only interruptible ones.
    pub(super) fn stop_playback(&mut self, barge_in: bool) {
        let stoppable = |p: &Playback| !barge_in || p.interruptible;
        if self.playing.as_ref().is_some_and(stoppable) {
            if let Some(p) = self.playing.take() {
                if barge_in {
                    tracing::debug!(prompt = %p.prompt.name, "prompt stopped by a key");
                }
                let _ = self.events.send(MediaEvent::PlaybackStopped { id: p.id });
                self.marker = true;
            }
        }
        let events = &self.events;
        self.queue.retain(|p| {
            let stop = stoppable(p);
            if stop {
                let _ = events.send(MediaEvent::PlaybackStopped { id: p.id });
            }
            !stop
        });
    }

    /// Moves on to the next frame: the playing prompt's frame at the index returned, or
    /// silence (`None`). The frame is read where it is: cloning its `Bytes` would bump one
    /// reference count that every stream playing it (silence: every quiet stream) shares
    /// across the pacer threads.
    pub(super) fn next_frame(&mut self) -> Option<usize> {
        loop {
            if let Some(p) = &mut self.playing {
                if p.frame < p.prompt.frames(self.params.codec).len() {
                    p.frame += 1;
                    return Some(p.frame - 1);
                }
                let _ = self.events.send(MediaEvent::PlaybackDone { id: p.id });
                self.playing = None;
            }
            match self.queue.pop_front() {
                Some(next) => {
                    self.marker = true;
                    self.playing = Some(next);
                }
                None => return None,
            }
        }
    }

    /// The bytes of the frame `next_frame` chose.
    fn frame_bytes(&self, frame: Option<usize>) -> &[u8] {
        match (frame, &self.playing) {
            (Some(n), Some(p)) => &p.prompt.frames(self.params.codec)[n],
            _ => &self.silence,
        }
    }

    /// Sends what the other side of a bridge sent since the last visit, restamped as ours.
    pub(super) fn send_relayed(&mut self, scratch: &mut Scratch) {
        let target = self.target();
        let Some(relay) = &mut self.relay else { return };
        let mut starting = false;
        while let Some((header, len)) = relay.end.to_send.pop_into(&mut scratch.received) {
            let Some(target) = target else { continue };
            let payload_type = match header.kind {
                relay::Kind::Audio => self.params.payload_type,
                relay::Kind::Event => match self.params.telephone_event {
                    Some(pt) => pt,
                    None => continue,
                },
            };
            starting |= !std::mem::replace(&mut relay.started, true);
            let (seq, timestamp, marker) =
                relay
                    .restamp
                    .apply(&header, u16::from(self.seq), self.timestamp);
            let built = RtpPacketBuilder::new()
                .payload_type(payload_type)
                .ssrc(self.ssrc)
                .sequence(Seq::from(seq))
                .timestamp(timestamp)
                .marked(marker)
                .payload(&scratch.received[..len])
                .build_into(&mut scratch.packet);
            let sealed = match (built, &mut self.crypto) {
                (Ok(len), Some(crypto)) => {
                    crypto.outbound.protect_rtp(&mut scratch.packet, len).ok()
                }
                (built, _) => built.ok(),
            };
            let Some(sealed) = sealed else { continue };
            match scratch
                .wire
                .send(&self.lease.rtp, &scratch.packet[..sealed], target)
            {
                Ok(_) => {
                    self.visit.sent += 1;
                    self.rtcp.on_rtp_sent(len);
                }
                Err(e) => tracing::trace!(%target, "RTP send failed: {e}"),
            }
            self.seq = Seq::from(seq).next();
        }
        if starting {
            self.stop_playback(false);
        }
    }

    pub(super) fn send_next(&mut self, scratch: &mut Scratch) {
        let packet = &mut scratch.packet;
        let samples = self.params.codec.samples_per_frame() as u32;
        if self.relay.as_ref().is_some_and(|r| r.started) {
            // The other side's packets are the stream now; our clock runs on for RTCP.
            self.timestamp = self.timestamp.wrapping_add(samples);
            return;
        }
        let frame = self.next_frame();
        if let Some(target) = self.target() {
            let payload = self.frame_bytes(frame);
            let payload_len = payload.len();
            let built = RtpPacketBuilder::new()
                .payload_type(self.params.payload_type)
                .ssrc(self.ssrc)
                .sequence(self.seq)
                .timestamp(self.timestamp)
                .marked(self.marker)
                .payload(payload)
                .build_into(packet);
            let sealed = match (built, &mut self.crypto) {
                (Ok(len), Some(crypto)) => crypto.outbound.protect_rtp(packet, len).ok(),
                (built, _) => built.ok(),
            };
            if let Some(len) = sealed {
                // A full send buffer (WouldBlock) loses this frame only; pacing goes on.
                match scratch.wire.send(&self.lease.rtp, &packet[..len], target) {
                    Ok(_) => {
                        self.visit.sent += 1;
                        self.rtcp.on_rtp_sent(payload_len);
                    }
                    Err(e) => tracing::trace!(%target, "RTP send failed: {e}"),
                }
                self.seq = self.seq.next();
                self.marker = false;
            }
        }
        self.timestamp = self.timestamp.wrapping_add(samples);
    }

    /// Drops `frames` frames of audio without sending them, keeping the timeline exact.
    pub(super) fn skip(&mut self, frames: u64) {
        for _ in 0..frames {
            self.next_frame();
            let samples = self.params.codec.samples_per_frame() as u32;
            self.timestamp = self.timestamp.wrapping_add(samples);
        }
        self.marker = true;
    }

    /// Our RTP clock at `now`: frame `frame_no` carries `timestamp` and is due at its deadline.
    pub(super) fn rtp_time_at(&self, now: Instant) -> u32 {
        let due = self.start + Duration::from_millis(FRAME_MS as u64 * self.frame_no);
        let rate = i128::from(self.params.codec.clock_rate());
        let ahead_ns = match due.checked_duration_since(now) {
            Some(ahead) => ahead.as_nanos() as i128,
            None => -(now.duration_since(due).as_nanos() as i128),
        };
        self.timestamp
            .wrapping_sub((ahead_ns * rate / 1_000_000_000) as i64 as u32)
    }

    pub(super) fn target(&self) -> Option<SocketAddr> {
        if !self.params.send || !self.confirmed {
            return None;
        }
        let named = if self.unheard {
            None
        } else {
            self.params.remote
        };
        self.latch.source().or(named)
    }
}
