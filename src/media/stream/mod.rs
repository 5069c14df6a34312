//! One call's RTP stream, driven by the pacer once per 20 ms frame: it takes the call's commands,
//! reads what the caller sent since the last frame, then sends the frames now due on absolute
//! deadlines. It plays queued prompts back to back with silence in between, latches on to where
//! the caller's RTP really comes from, hears keys (RFC 4733, or in-band tones when enabled) and
//! reports when the caller's RTP goes quiet. Keys are read just before the frame is built, so a
//! key stops an interruptible prompt and the very next frame sent is already silence.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use rtp_rs::Seq;
use tokio::sync::mpsc::{self, error::TryRecvError};

use super::arrival;
use super::codec::{Codec, FRAME_MS};
use super::dtmf::inband::InbandDetector;
use super::dtmf::rfc4733::Rfc4733Decoder;
use super::dtmf::DigitSource;
use super::latch::Latch;
use super::lateness::Lateness;
use super::ports::PortLease;
use super::prompt::{Prompt, PromptLibrary};
use super::relay::{RelayEnd, Restamp};
use super::rtcp::{millis, Quality, RtcpSession};
use super::srtp::{CallCrypto, SrtpError, SrtpKeys};
use super::wire::Wire;
use crate::metrics::METRICS;

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
pub(super) struct Visit {
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
    /// The bridge is over and the caller stays: prompts and silence are this stream's again.
    Unrelay,
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
    /// Question `ask`'s time is up now: a simulated caller (`ivr flow test`, `ivr simulate
    /// --fast`) pressed all it will and skips the wait. A stream never sends it.
    Expire {
        ask: u64,
    },
}

const FRAME: Duration = Duration::from_millis(FRAME_MS as u64);
/// When a stream falls further behind than this many frames, they are skipped rather than bursted.
const MAX_BURST: u64 = 5;
/// An RFC 4733 event with no packet for this long is over, End or not.
const EVENT_TIMEOUT: Duration = Duration::from_millis(1000);
/// A flood is read at most this many packets a frame; the rest waits or is dropped by the kernel.
const MAX_READ_PER_FRAME: usize = 32;
/// The RTCP socket is read every this many frames (half a second): reports come every few
/// seconds, and the kernel's arrival stamps keep the round trip exact however late they are
/// read. Each read that finds nothing is a system call per stream, so not every frame.
const RTCP_READ_EVERY: u8 = 25;
const MAX_RTCP_READ: usize = 4;
/// Room left after a report for the SRTCP index and tag.
const SRTCP_TRAILER: usize = 4 + 10;

/// Per-thread buffers the pacer lends each stream, so a frame allocates nothing.
pub(super) struct Scratch {
    received: [u8; 2048],
    packet: [u8; 1500],
    /// Control messages (arrival stamps) of one datagram.
    control: Vec<u8>,
    /// Packets this thread's streams sent, received and dropped since the pacer last added
    /// them to the shared metrics: one shared write a second, not one per visit per thread.
    pub(super) unpublished: Visit,
    pub(super) wire: Wire,
}

impl Scratch {
    pub(super) fn new(wire: Wire) -> Scratch {
        Scratch {
            received: [0; 2048],
            packet: [0; 1500],
            control: arrival::control_buffer(),
            unpublished: Visit::default(),
            wire,
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
    /// Set each visit: the caller has not been heard and its 2 s after the ACK are over.
    unheard: bool,
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
    /// Datagrams heard from the pacer's ring since the last visit, for the flood budget.
    heard_since_visit: usize,
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
            heard_since_visit: 0,
            params,
            liveness,
            confirmed: false,
            unheard: false,
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
                Err(TryRecvError::Disconnected) => return self.end(scratch),
            }
        }
        self.heard_since_visit = 0;
        if scratch.wire.streams_read() {
            self.read(now, scratch);
        }
        if self.params.peer_sends
            && now.saturating_duration_since(self.last_heard) >= self.liveness.timeout
        {
            let _ = self.events.send(MediaEvent::Inactive);
            return self.end(scratch);
        }
        self.send_relayed(scratch);
        self.send_due(now, scratch);
        if self.confirmed && self.rtcp.due(now) {
            self.send_report(now, scratch);
        }
        self.publish_counts(&mut scratch.unpublished);
        Tick::Continue
    }

    /// Its RTP and RTCP sockets, for the pacer's ring to receive on.
    pub(super) fn sockets(&self) -> [&std::net::UdpSocket; 2] {
        [&self.lease.rtp, &self.lease.rtcp]
    }

    /// The packet counts this stream keeps, for the call record.
    pub fn counts(&self) -> Arc<RtpCounts> {
        self.counts.clone()
    }

    fn end(&mut self, scratch: &mut Scratch) -> Tick {
        // The RTCP port is read every few hundred milliseconds: a report that came since is
        // still the call's. (A ring hears it as it comes.)
        if scratch.wire.streams_read() {
            self.read_socket(true, MAX_RTCP_READ, Instant::now(), scratch);
        }
        if self.confirmed {
            let mut goodbye = [0u8; 160];
            let wall = SystemTime::now();
            let rtp_time = self.rtp_time_at(Instant::now());
            let len = self
                .rtcp
                .write_goodbye(wall, rtp_time, &mut goodbye[..160 - SRTCP_TRAILER]);
            if let Some(len) = len {
                self.send_rtcp(&mut goodbye, len, &mut scratch.wire);
            }
        }
        self.publish_counts(&mut scratch.unpublished);
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
            MediaCommand::Unrelay => {
                if self.relay.take().is_some_and(|r| r.started) {
                    self.marker = true;
                }
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

// The stream's paths, each an `impl RtpStream` of its own.
mod counts;
mod receive;
mod reports;
mod send;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod srtp_tests;
