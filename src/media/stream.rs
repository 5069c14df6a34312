//! One call's RTP stream, driven by the pacer once per 20 ms frame: it takes the call's commands,
//! reads what the caller sent since the last frame, then sends the frames now due on absolute
//! deadlines. It plays queued prompts back to back with silence in between, latches on to where
//! the caller's RTP really comes from, hears keys (RFC 4733, or in-band tones when enabled) and
//! reports when the caller's RTP goes quiet. Keys are read just before the frame is built, so a
//! key stops an interruptible prompt and the very next frame sent is already silence.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};
use tokio::sync::mpsc::{self, error::TryRecvError};

use super::arrival;
use super::codec::{alaw_to_linear, ulaw_to_linear, Codec, FRAME_MS};
use super::dtmf::inband::InbandDetector;
use super::dtmf::rfc4733::Rfc4733Decoder;
use super::dtmf::DigitSource;
use super::latch::{Latch, Verdict};
use super::lateness::Lateness;
use super::ports::PortLease;
use super::prompt::{Prompt, PromptLibrary};
use super::relay::{self, RelayEnd, Restamp};
use super::rtcp::packet::{is_rtcp, starts_with_report};
use super::rtcp::{millis, Quality, RtcpSession};
use super::srtp::{CallCrypto, SrtpError, SrtpKeys};
use crate::metrics::{Reason, Source, METRICS};

/// What the session negotiated for this stream.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaParams {
    pub codec: Codec,
    pub payload_type: u8,
    pub telephone_event: Option<u8>,
    /// Where the SDP says to send; `None` until known or while on hold with `c=0.0.0.0`.
    pub remote: Option<SocketAddr>,
    /// We may send (the peer receives).
    pub send: bool,
    /// The peer says it sends, so silence from it means it is gone.
    pub peer_sends: bool,
    /// Listen for DTMF tones in the caller's audio (G.711 only).
    pub inband: bool,
    /// Keys when the media is SRTP.
    pub srtp: Option<SrtpKeys>,
    /// RTCP shares the RTP port (RFC 5761).
    pub rtcp_mux: bool,
    /// Where the SDP says to send RTCP when it is not muxed.
    pub remote_rtcp: Option<SocketAddr>,
}

/// When a caller counts as gone.
#[derive(Debug, Clone, Copy)]
pub struct Liveness {
    /// No RTP (or RTCP, with `rtcp_counts`) for this long.
    pub timeout: Duration,
    pub rtcp_counts: bool,
}

/// Packets one call's stream sent, took from the caller and dropped (not the caller's, or not
/// RTP): read by the call record when the call ends.
#[derive(Debug, Default)]
pub struct RtpCounts {
    pub sent: AtomicU64,
    pub received: AtomicU64,
    pub dropped: AtomicU64,
    /// The caller's packets that never arrived.
    pub lost: AtomicU64,
    /// What RTCP says of the call, updated with each report.
    pub quality: Mutex<Quality>,
}

/// Counts of one pacer visit, published in one step at its end.
#[derive(Default)]
struct Visit {
    sent: u64,
    received: u64,
    dropped: u64,
    /// SRTP refusals, indexed as `SrtpError::ALL`.
    refused: [u64; SrtpError::ALL.len()],
}

#[derive(Debug)]
pub enum MediaCommand {
    Play {
        prompt: Arc<Prompt>,
        id: u64,
        interruptible: bool,
    },
    /// A key that arrived another way (SIP INFO): handled like one heard in the stream.
    Digit {
        digit: char,
        source: DigitSource,
    },
    /// Stop the prompt playing now and drop the queue.
    StopPlayback,
    Update(MediaParams),
    /// The caller's ACK arrived: the caller is proven, so media may flow.
    Confirmed,
    /// Bridge this stream to another: what its peer sends goes to the other stream, and what
    /// the other's peer sends is sent here, replacing prompts from its first packet.
    Relay(RelayEnd),
}

#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    PlaybackDone {
        id: u64,
    },
    PlaybackStopped {
        id: u64,
    },
    Digit {
        digit: char,
        source: DigitSource,
    },
    /// No RTP from the caller for the inactivity timeout.
    Inactive,
}

const FRAME: Duration = Duration::from_millis(FRAME_MS as u64);
/// When a stream falls further behind than this many frames, they are skipped rather than bursted.
const MAX_BURST: u64 = 5;
/// An RFC 4733 event with no packet for this long is over, End or not.
const EVENT_TIMEOUT: Duration = Duration::from_millis(1000);
/// A flood is read at most this many packets a frame; the rest waits or is dropped by the kernel.
const MAX_READ_PER_FRAME: usize = 32;
/// The RTCP socket is read every this many frames: reports come every few seconds, and the
/// kernel's arrival stamps keep the round trip exact however late they are read.
const RTCP_READ_EVERY: u8 = 5;
const MAX_RTCP_READ: usize = 4;
/// Room left after a report for the SRTCP index and tag.
const SRTCP_TRAILER: usize = 4 + 10;

/// Per-thread buffers the pacer lends each stream, so a frame allocates nothing.
pub(super) struct Scratch {
    received: [u8; 2048],
    packet: [u8; 1500],
    /// Control messages (arrival stamps) of one datagram.
    control: Vec<u8>,
}

impl Default for Scratch {
    fn default() -> Scratch {
        Scratch {
            received: [0; 2048],
            packet: [0; 1500],
            control: arrival::control_buffer(),
        }
    }
}

/// What one datagram turned out to be.
enum Heard {
    Media,
    Control,
    Refused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tick {
    Continue,
    Ended,
}

struct Playback {
    prompt: Arc<Prompt>,
    frame: usize,
    id: u64,
    interruptible: bool,
}

pub struct RtpStream {
    /// For the log line the stream writes when it ends.
    call_id: String,
    lease: PortLease,
    params: MediaParams,
    silence: Bytes,
    liveness: Liveness,
    /// Which source is the caller: the only one whose media and keys count.
    latch: Latch,
    /// Nothing is sent before the ACK, so a forged INVITE cannot aim our RTP at a stranger.
    confirmed: bool,
    /// Boxed: the expanded keys are larger than the rest of the stream, and most calls are
    /// plain.
    crypto: Option<Box<CallCrypto>>,
    /// SRTP packets refused over the call, indexed as `SrtpError::ALL`, for its end line.
    srtp_refused: [u64; SrtpError::ALL.len()],
    ssrc: u32,
    seq: Seq,
    timestamp: u32,
    /// The next packet starts a talkspurt.
    marker: bool,
    playing: Option<Playback>,
    queue: VecDeque<Playback>,
    keys: Rfc4733Decoder,
    tones: Option<InbandDetector>,
    lateness: Lateness,
    counts: Arc<RtpCounts>,
    visit: Visit,
    rtcp: RtcpSession,
    /// Where the caller's RTCP comes from, once it has come (not muxed).
    rtcp_source: Option<SocketAddr>,
    /// Frames until the RTCP socket is read again.
    rtcp_read_in: u8,
    commands: mpsc::UnboundedReceiver<MediaCommand>,
    events: mpsc::UnboundedSender<MediaEvent>,
    library: Arc<PromptLibrary>,
    last_heard: Instant,
    /// The deadline of frame 0; frame n is due `n` frames later.
    start: Instant,
    /// Frames sent or skipped so far.
    frame_no: u64,
    relay: Option<Relay>,
}

struct Relay {
    end: RelayEnd,
    restamp: Restamp,
    /// The other side's packets have begun: prompts and silence stop.
    started: bool,
}

impl RtpStream {
    pub fn new(
        call_id: String,
        lease: PortLease,
        params: MediaParams,
        library: Arc<PromptLibrary>,
        liveness: Liveness,
        commands: mpsc::UnboundedReceiver<MediaCommand>,
        events: mpsc::UnboundedSender<MediaEvent>,
    ) -> RtpStream {
        let keys = Rfc4733Decoder::new(params.codec.clock_rate(), EVENT_TIMEOUT);
        let tones = params.inband.then(InbandDetector::new);
        let latch = Latch::new(params.remote);
        let crypto = params
            .srtp
            .clone()
            .map(|keys| Box::new(CallCrypto::new(keys)));
        let now = Instant::now();
        let ssrc = rand::random();
        RtpStream {
            call_id,
            silence: library.silence(params.codec),
            library,
            last_heard: now,
            start: now,
            frame_no: 0,
            latch,
            lease,
            rtcp: RtcpSession::new(ssrc, params.codec.clock_rate(), now),
            rtcp_source: None,
            rtcp_read_in: 0,
            params,
            liveness,
            confirmed: false,
            crypto,
            srtp_refused: Default::default(),
            ssrc,
            seq: Seq::from(rand::random::<u16>()),
            timestamp: rand::random(),
            marker: true,
            playing: None,
            queue: VecDeque::new(),
            keys,
            tones,
            lateness: Lateness::default(),
            counts: Arc::default(),
            visit: Visit::default(),
            commands,
            events,
            relay: None,
        }
    }

    /// Sets when frame 0 is due: the pacer puts every stream on its own phase of the 20 ms clock.
    pub(super) fn begin(&mut self, first_frame: Instant) {
        self.start = first_frame;
        self.last_heard = Instant::now();
    }

    /// One visit from the pacer: commands, then what the caller sent, then the frames due by
    /// `now`. `Ended` when the call is gone (its command channel closed) or its RTP went quiet.
    pub(super) fn tick(&mut self, now: Instant, scratch: &mut Scratch) -> Tick {
        loop {
            match self.commands.try_recv() {
                Ok(command) => self.on_command(command, now),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return self.end(),
            }
        }
        self.read(now, scratch);
        if self.params.peer_sends
            && now.saturating_duration_since(self.last_heard) >= self.liveness.timeout
        {
            let _ = self.events.send(MediaEvent::Inactive);
            return self.end();
        }
        self.send_relayed(scratch);
        self.send_due(now, &mut scratch.packet);
        if self.confirmed && self.rtcp.due(now) {
            self.send_report(now, &mut scratch.packet);
        }
        self.publish_counts();
        Tick::Continue
    }

    /// The packet counts this stream keeps, for the call record.
    pub fn counts(&self) -> Arc<RtpCounts> {
        self.counts.clone()
    }

    fn publish_counts(&mut self) {
        let visit = std::mem::take(&mut self.visit);
        for ((error, count), total) in SrtpError::ALL
            .iter()
            .zip(visit.refused)
            .zip(&mut self.srtp_refused)
        {
            if count > 0 {
                *total += count;
                let label = Reason {
                    reason: error.as_str(),
                };
                METRICS.srtp_refused.get_or_create(&label).inc_by(count);
            }
        }
        if visit.received > 0 {
            self.counts.lost.store(self.rtcp.lost(), Ordering::Relaxed);
        }
        for (count, total, metric) in [
            (visit.sent, &self.counts.sent, &METRICS.rtp_sent),
            (visit.received, &self.counts.received, &METRICS.rtp_received),
            (visit.dropped, &self.counts.dropped, &METRICS.rtp_dropped),
        ] {
            if count > 0 {
                total.fetch_add(count, Ordering::Relaxed);
                metric.inc_by(count);
            }
        }
    }

    fn end(&mut self) -> Tick {
        if self.confirmed {
            let mut goodbye = [0u8; 160];
            let wall = SystemTime::now();
            let rtp_time = self.rtp_time_at(Instant::now());
            let len = self
                .rtcp
                .write_goodbye(wall, rtp_time, &mut goodbye[..160 - SRTCP_TRAILER]);
            if let Some(len) = len {
                self.send_rtcp(&mut goodbye, len);
            }
        }
        self.publish_counts();
        let quality = self.publish_quality();
        METRICS
            .rtp_jitter_seconds
            .observe(quality.jitter.as_secs_f64());
        if let Some(rtt) = quality.rtt {
            METRICS.rtcp_rtt_seconds.observe(rtt.as_secs_f64());
        }
        let l = &self.lateness;
        tracing::info!(
            call_id = %self.call_id,
            frames = l.frames(),
            late_p99_under_ms = l.p99_ms(),
            late_max_us = l.max_us(),
            foreign_packets = self.latch.foreign(),
            relay_overwritten = self.relay.as_ref().map(|r| r.end.to_send.overwritten()),
            srtp_refused = %refusals(&self.srtp_refused),
            lost = quality.lost,
            jitter_ms = millis(quality.jitter),
            rtt_ms = quality.rtt.map(millis),
            peer_lost = quality.peer_lost,
            peer_jitter_ms = quality.peer_jitter.map(millis),
            rtcp_reports = quality.reports_heard,
            "rtp pacing"
        );
        Tick::Ended
    }

    fn publish_quality(&self) -> Quality {
        let quality = self.rtcp.quality();
        if let Ok(mut shared) = self.counts.quality.lock() {
            *shared = quality;
        }
        quality
    }

    /// Our RTP clock at `now`: frame `frame_no` carries `timestamp` and is due at its deadline.
    fn rtp_time_at(&self, now: Instant) -> u32 {
        let due = self.start + Duration::from_millis(FRAME_MS as u64 * self.frame_no);
        let rate = i128::from(self.params.codec.clock_rate());
        let ahead_ns = match due.checked_duration_since(now) {
            Some(ahead) => ahead.as_nanos() as i128,
            None => -(now.duration_since(due).as_nanos() as i128),
        };
        self.timestamp
            .wrapping_sub((ahead_ns * rate / 1_000_000_000) as i64 as u32)
    }

    fn send_report(&mut self, now: Instant, packet: &mut [u8]) {
        let rtp_time = self.rtp_time_at(now);
        let room = packet.len() - SRTCP_TRAILER;
        let written = self
            .rtcp
            .write_report(now, SystemTime::now(), rtp_time, &mut packet[..room]);
        if let Some(len) = written {
            self.send_rtcp(packet, len);
        }
        self.publish_quality();
    }

    /// Sends the report in `packet[..len]`, sealed under SRTCP when the call is encrypted, to
    /// where the caller takes RTCP.
    fn send_rtcp(&mut self, packet: &mut [u8], len: usize) {
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
                self.rtcp_source.or(self.params.remote_rtcp),
            )
        };
        if let Some(target) = target {
            if let Err(e) = socket.send_to(&packet[..len], target) {
                tracing::trace!(%target, "RTCP send failed: {e}");
            }
        }
    }

    fn read(&mut self, now: Instant, scratch: &mut Scratch) {
        self.read_socket(false, MAX_READ_PER_FRAME, now, scratch);
        if self.rtcp_read_in == 0 {
            self.rtcp_read_in = RTCP_READ_EVERY;
            self.read_socket(true, MAX_RTCP_READ, now, scratch);
        }
        self.rtcp_read_in -= 1;
    }

    fn read_socket(&mut self, rtcp_port: bool, budget: usize, now: Instant, scratch: &mut Scratch) {
        let buf = &mut scratch.received;
        for _ in 0..budget {
            let socket = if rtcp_port {
                &self.lease.rtcp
            } else {
                &self.lease.rtp
            };
            match arrival::recv(socket, buf, &mut scratch.control) {
                Ok((len, from, at)) => {
                    let data = &mut buf[..len];
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
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::trace!("RTP receive failed: {e}");
                    return;
                }
            }
        }
    }

    /// RTCP from the caller: only from the address its RTP comes from (or, before any RTP,
    /// the SDP's), and under SRTP only with a good SRTCP tag. The first good report fixes the
    /// RTCP port; reports from any other port are dropped after.
    fn on_rtcp(&mut self, data: &mut [u8], from: SocketAddr, arrival: SystemTime) -> Heard {
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

    /// Sends every frame whose deadline has passed: a short lag is caught up in a burst, a long
    /// one is skipped so the caller hears a gap rather than sped-up audio.
    fn send_due(&mut self, now: Instant, packet: &mut [u8]) {
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
            self.send_next(packet);
            self.frame_no += 1;
        }
    }

    fn on_command(&mut self, command: MediaCommand, now: Instant) {
        match command {
            MediaCommand::Play {
                prompt,
                id,
                interruptible,
            } => {
                // The flow speaks again: a bridge it began is over for this stream.
                if self.relay.as_ref().is_some_and(|r| r.started) {
                    self.relay = None;
                    self.marker = true;
                }
                self.queue.push_back(Playback {
                    prompt,
                    frame: 0,
                    id,
                    interruptible,
                })
            }
            MediaCommand::Digit { digit, source } => self.on_digit(digit, source),
            MediaCommand::StopPlayback => self.stop_playback(false),
            MediaCommand::Confirmed => {
                self.confirmed = true;
                self.latch.confirmed(now);
            }
            MediaCommand::Relay(end) => {
                self.relay = Some(Relay {
                    end,
                    restamp: Restamp::default(),
                    started: false,
                })
            }
            MediaCommand::Update(params) => {
                if params.remote != self.params.remote {
                    self.latch.renegotiated(params.remote, now);
                }
                if params.codec != self.params.codec {
                    self.rtcp.set_clock_rate(params.codec.clock_rate());
                    self.silence = self.library.silence(params.codec);
                    self.keys = Rfc4733Decoder::new(params.codec.clock_rate(), EVENT_TIMEOUT);
                }
                if params.inband != self.tones.is_some() {
                    self.tones = params.inband.then(InbandDetector::new);
                }
                if params.peer_sends && !self.params.peer_sends {
                    self.last_heard = now;
                }
                CallCrypto::update(&mut self.crypto, params.srtp.as_ref());
                self.params = params;
            }
        }
    }

    /// RTP from the caller's own stream; anything else is dropped before its keys or audio
    /// are looked at. SRTP is authenticated before its source may count as the caller's, and
    /// decrypted in place only after.
    fn on_packet(
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
    fn admit(&mut self, data: &mut [u8], from: SocketAddr, now: Instant) -> Option<usize> {
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

    fn listen_for_tones(&mut self, payload: &[u8]) {
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
    fn on_digit(&mut self, digit: char, source: DigitSource) {
        let source_label = Source {
            source: source.as_str(),
        };
        METRICS.dtmf_keys.get_or_create(&source_label).inc();
        let _ = self.events.send(MediaEvent::Digit { digit, source });
        self.stop_playback(true);
    }

    /// Stops the current prompt and drops queued ones; with `barge_in`, only interruptible ones.
    fn stop_playback(&mut self, barge_in: bool) {
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

    fn target(&self) -> Option<SocketAddr> {
        if !self.params.send || !self.confirmed {
            return None;
        }
        self.latch.source().or(self.params.remote)
    }

    fn next_payload(&mut self) -> Bytes {
        loop {
            if let Some(p) = &mut self.playing {
                if let Some(frame) = p.prompt.frames(self.params.codec).get(p.frame) {
                    p.frame += 1;
                    return frame.clone();
                }
                let _ = self.events.send(MediaEvent::PlaybackDone { id: p.id });
                self.playing = None;
            }
            match self.queue.pop_front() {
                Some(next) => {
                    self.marker = true;
                    self.playing = Some(next);
                }
                None => return self.silence.clone(),
            }
        }
    }

    /// Sends what the other side of a bridge sent since the last visit, restamped as ours.
    fn send_relayed(&mut self, scratch: &mut Scratch) {
        let Some(relay) = &mut self.relay else { return };
        let mut starting = false;
        let target = if self.params.send && self.confirmed {
            self.latch.source().or(self.params.remote)
        } else {
            None
        };
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
            match self.lease.rtp.send_to(&scratch.packet[..sealed], target) {
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

    fn send_next(&mut self, packet: &mut [u8]) {
        let samples = self.params.codec.samples_per_frame() as u32;
        if self.relay.as_ref().is_some_and(|r| r.started) {
            // The other side's packets are the stream now; our clock runs on for RTCP.
            self.timestamp = self.timestamp.wrapping_add(samples);
            return;
        }
        let payload = self.next_payload();
        if let Some(target) = self.target() {
            let built = RtpPacketBuilder::new()
                .payload_type(self.params.payload_type)
                .ssrc(self.ssrc)
                .sequence(self.seq)
                .timestamp(self.timestamp)
                .marked(self.marker)
                .payload(&payload)
                .build_into(packet);
            let sealed = match (built, &mut self.crypto) {
                (Ok(len), Some(crypto)) => crypto.outbound.protect_rtp(packet, len).ok(),
                (built, _) => built.ok(),
            };
            if let Some(len) = sealed {
                // A full send buffer (WouldBlock) loses this frame only; pacing goes on.
                match self.lease.rtp.send_to(&packet[..len], target) {
                    Ok(_) => {
                        self.visit.sent += 1;
                        self.rtcp.on_rtp_sent(payload.len());
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
    fn skip(&mut self, frames: u64) {
        for _ in 0..frames {
            self.next_payload();
            let samples = self.params.codec.samples_per_frame() as u32;
            self.timestamp = self.timestamp.wrapping_add(samples);
        }
        self.marker = true;
    }
}

/// `replayed:2,forged:1`, or `none`.
fn refusals(counts: &[u64; SrtpError::ALL.len()]) -> String {
    let parts: Vec<String> = SrtpError::ALL
        .iter()
        .zip(counts)
        .filter(|(_, &n)| n > 0)
        .map(|(e, n)| format!("{}:{n}", e.as_str()))
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(",")
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod srtp_tests;
