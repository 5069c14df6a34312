//! One call's RTP stream, driven by the pacer once per 20 ms frame: it takes the call's commands,
//! reads what the caller sent since the last frame, then sends the frames now due on absolute
//! deadlines. It plays queued prompts back to back with silence in between, latches on to where
//! the caller's RTP really comes from, hears keys (RFC 4733, or in-band tones when enabled) and
//! reports when the caller's RTP goes quiet. Keys are read just before the frame is built, so a
//! key stops an interruptible prompt and the very next frame sent is already silence.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};
use tokio::sync::mpsc::{self, error::TryRecvError};

use super::codec::{alaw_to_linear, ulaw_to_linear, Codec, FRAME_MS};
use super::dtmf::inband::InbandDetector;
use super::dtmf::rfc4733::Rfc4733Decoder;
use super::dtmf::DigitSource;
use super::latch::{Latch, Verdict};
use super::lateness::Lateness;
use super::ports::PortLease;
use super::prompt::{Prompt, PromptLibrary};

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

/// Per-thread buffers the pacer lends each stream, so a frame allocates nothing.
pub(super) struct Scratch {
    received: [u8; 2048],
    packet: [u8; 1500],
}

impl Default for Scratch {
    fn default() -> Scratch {
        Scratch {
            received: [0; 2048],
            packet: [0; 1500],
        }
    }
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
    inactivity: Duration,
    /// Which source is the caller: the only one whose media and keys count.
    latch: Latch,
    /// Nothing is sent before the ACK, so a forged INVITE cannot aim our RTP at a stranger.
    confirmed: bool,
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
    commands: mpsc::UnboundedReceiver<MediaCommand>,
    events: mpsc::UnboundedSender<MediaEvent>,
    library: Arc<PromptLibrary>,
    last_heard: Instant,
    /// The deadline of frame 0; frame n is due `n` frames later.
    start: Instant,
    /// Frames sent or skipped so far.
    frame_no: u64,
}

impl RtpStream {
    pub fn new(
        call_id: String,
        lease: PortLease,
        params: MediaParams,
        library: Arc<PromptLibrary>,
        inactivity: Duration,
        commands: mpsc::UnboundedReceiver<MediaCommand>,
        events: mpsc::UnboundedSender<MediaEvent>,
    ) -> RtpStream {
        let keys = Rfc4733Decoder::new(params.codec.clock_rate(), EVENT_TIMEOUT);
        let tones = params.inband.then(InbandDetector::new);
        let latch = Latch::new(params.remote);
        let now = Instant::now();
        RtpStream {
            call_id,
            silence: library.silence(params.codec),
            library,
            last_heard: now,
            start: now,
            frame_no: 0,
            latch,
            lease,
            params,
            inactivity,
            confirmed: false,
            ssrc: rand::random(),
            seq: Seq::from(rand::random::<u16>()),
            timestamp: rand::random(),
            marker: true,
            playing: None,
            queue: VecDeque::new(),
            keys,
            tones,
            lateness: Lateness::default(),
            commands,
            events,
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
        self.read(now, &mut scratch.received);
        if self.params.peer_sends
            && now.saturating_duration_since(self.last_heard) >= self.inactivity
        {
            let _ = self.events.send(MediaEvent::Inactive);
            return self.end();
        }
        self.send_due(now, &mut scratch.packet);
        Tick::Continue
    }

    fn end(&self) -> Tick {
        let l = &self.lateness;
        tracing::info!(
            call_id = %self.call_id,
            frames = l.frames(),
            late_p99_under_ms = l.p99_ms(),
            late_max_us = l.max_us(),
            foreign_packets = self.latch.foreign(),
            "rtp pacing"
        );
        Tick::Ended
    }

    fn read(&mut self, now: Instant, buf: &mut [u8]) {
        for _ in 0..MAX_READ_PER_FRAME {
            match self.lease.rtp.recv_from(buf) {
                Ok((len, from)) => {
                    if self.on_packet(&buf[..len], from, now) {
                        self.last_heard = now;
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
            } => self.queue.push_back(Playback {
                prompt,
                frame: 0,
                id,
                interruptible,
            }),
            MediaCommand::Digit { digit, source } => self.on_digit(digit, source),
            MediaCommand::StopPlayback => self.stop_playback(false),
            MediaCommand::Confirmed => {
                self.confirmed = true;
                self.latch.confirmed(now);
            }
            MediaCommand::Update(params) => {
                if params.remote != self.params.remote {
                    self.latch.renegotiated(params.remote, now);
                }
                if params.codec != self.params.codec {
                    self.silence = self.library.silence(params.codec);
                    self.keys = Rfc4733Decoder::new(params.codec.clock_rate(), EVENT_TIMEOUT);
                }
                if params.inband != self.tones.is_some() {
                    self.tones = params.inband.then(InbandDetector::new);
                }
                if params.peer_sends && !self.params.peer_sends {
                    self.last_heard = now;
                }
                self.params = params;
            }
        }
    }

    /// RTP from the caller's own stream; anything else is dropped before its keys or audio
    /// are looked at.
    fn on_packet(&mut self, data: &[u8], from: SocketAddr, now: Instant) -> bool {
        let Ok(rtp) = RtpReader::new(data) else {
            return false;
        };
        if rtp.version() != 2 {
            return false;
        }
        let pt = rtp.payload_type();
        let negotiated = pt == self.params.payload_type || Some(pt) == self.params.telephone_event;
        let seq = u16::from(rtp.sequence_number());
        if self.latch.on_packet(from, rtp.ssrc(), seq, negotiated, now) == Verdict::Foreign {
            return false;
        }
        if Some(pt) == self.params.telephone_event {
            if let Some(digit) = self.keys.on_packet(rtp.timestamp(), rtp.payload(), now) {
                self.on_digit(digit, DigitSource::Rfc4733);
            }
        } else if pt == self.params.payload_type {
            self.listen_for_tones(rtp.payload());
        }
        true
    }

    fn listen_for_tones(&mut self, payload: &[u8]) {
        let Some(tones) = &mut self.tones else { return };
        let decode = match self.params.codec {
            Codec::Pcmu => ulaw_to_linear,
            Codec::Pcma => alaw_to_linear,
            Codec::Opus => return,
        };
        let mut pcm = [0i16; 160];
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

    fn send_next(&mut self, packet: &mut [u8]) {
        let payload = self.next_payload();
        let samples = self.params.codec.samples_per_frame() as u32;
        if let Some(target) = self.target() {
            let built = RtpPacketBuilder::new()
                .payload_type(self.params.payload_type)
                .ssrc(self.ssrc)
                .sequence(self.seq)
                .timestamp(self.timestamp)
                .marked(self.marker)
                .payload(&payload)
                .build_into(packet);
            if let Ok(len) = built {
                // A full send buffer (WouldBlock) loses this frame only; pacing goes on.
                if let Err(e) = self.lease.rtp.send_to(&packet[..len], target) {
                    tracing::trace!(%target, "RTP send failed: {e}");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::pacer::Pacer;
    use crate::media::ports::PortPool;
    use std::path::Path;

    /// A library with one 5-frame prompt, written to a temporary directory.
    fn library() -> Arc<PromptLibrary> {
        let dir = std::env::temp_dir().join(format!(
            "ivr-stream-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(dir.join("beep.wav"), spec).unwrap();
        for i in 0..780 {
            w.write_sample(if i % 2 == 0 { 8000i16 } else { -8000 })
                .unwrap();
        }
        w.finalize().unwrap();
        let lib = PromptLibrary::load(Path::new(&dir), &[Codec::Pcmu]).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        Arc::new(lib)
    }

    #[tokio::test]
    async fn a_key_stops_an_interruptible_prompt_before_the_next_frame() {
        let lib = Arc::new(
            PromptLibrary::load(
                &Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts"),
                &[Codec::Pcmu],
            )
            .unwrap(),
        );
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 42110, 42111);
        let lease = pool.lease().unwrap();
        let stream_addr = SocketAddr::new("127.0.0.1".parse().unwrap(), lease.port());
        let phone = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let pacer = Pacer::start(1, false).unwrap();
        let (commands, mut events) =
            pacer.start_test_call(lease, Some(phone.local_addr().unwrap()), lib.clone());
        commands.send(MediaCommand::Confirmed).unwrap();
        let welcome = lib.get("welcome").unwrap();
        commands
            .send(MediaCommand::Play {
                prompt: welcome,
                id: 1,
                interruptible: true,
            })
            .unwrap();
        let silence = lib.silence(Codec::Pcmu);
        let mut buf = [0u8; 1500];
        // Wait until the prompt is audible, then press 5.
        loop {
            let (n, _) = phone.recv_from(&mut buf).await.unwrap();
            let rtp = RtpReader::new(&buf[..n]).unwrap();
            if rtp.payload() != &silence[..] {
                break;
            }
        }
        let key = RtpPacketBuilder::new()
            .payload_type(101)
            .ssrc(9)
            .sequence(Seq::from(1))
            .timestamp(4000)
            .marked(true)
            .payload(&[5, 10, 0, 160])
            .build()
            .unwrap();
        let pressed = std::time::Instant::now();
        phone.send_to(&key, stream_addr).await.unwrap();
        let mut frames_after_key = 0;
        let latency = loop {
            let (n, _) = phone.recv_from(&mut buf).await.unwrap();
            let rtp = RtpReader::new(&buf[..n]).unwrap();
            frames_after_key += 1;
            if rtp.payload() == &silence[..] {
                break pressed.elapsed();
            }
        };
        eprintln!("key to silence: {latency:?} ({frames_after_key} packet(s) after the key)");
        assert!(
            frames_after_key <= 2,
            "at most the frame already in flight, then silence"
        );
        let DigitSource::Rfc4733 = source_of(events.recv().await) else {
            unreachable!()
        };
        assert_eq!(
            events.recv().await,
            Some(MediaEvent::PlaybackStopped { id: 1 })
        );
        drop(commands);
        assert_eq!(events.recv().await, None, "the stream ends with its call");
    }

    fn source_of(event: Option<MediaEvent>) -> DigitSource {
        match event {
            Some(MediaEvent::Digit { digit: '5', source }) => source,
            other => panic!("expected the key 5, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn stream_is_continuous_across_silence_and_prompts() {
        let lib = library();
        let beep = lib.get("beep").unwrap();
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 42100, 42101);
        let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let pacer = Pacer::start(1, false).unwrap();
        let (commands, mut events) = pacer.start_test_call(
            pool.lease().unwrap(),
            Some(peer.local_addr().unwrap()),
            lib.clone(),
        );
        commands.send(MediaCommand::Confirmed).unwrap();
        let mut packets = Vec::new();
        let mut buf = [0u8; 1500];
        for i in 0..20 {
            if i == 3 {
                commands
                    .send(MediaCommand::Play {
                        prompt: beep.clone(),
                        id: 7,
                        interruptible: false,
                    })
                    .unwrap();
            }
            let (n, _) = peer.recv_from(&mut buf).await.unwrap();
            let rtp = RtpReader::new(&buf[..n]).unwrap();
            packets.push((
                u16::from(rtp.sequence_number()),
                rtp.timestamp(),
                rtp.mark(),
                rtp.payload().to_vec(),
            ));
        }
        assert_eq!(
            events.recv().await,
            Some(MediaEvent::PlaybackDone { id: 7 })
        );
        drop(commands);
        assert_eq!(events.recv().await, None, "the stream ends with its call");
        assert_eq!(pool.available(), 1, "the port is back once the stream ends");

        for pair in packets.windows(2) {
            assert_eq!(pair[1].0, pair[0].0.wrapping_add(1), "sequence runs on");
            assert_eq!(
                pair[1].1,
                pair[0].1.wrapping_add(160),
                "timestamp advances one frame"
            );
        }
        assert!(
            packets.iter().all(|p| p.3.len() == 160),
            "every frame is 20 ms, the last one padded"
        );
        let silence = lib.silence(Codec::Pcmu);
        let first_beep = packets
            .iter()
            .position(|p| p.3 != silence)
            .expect("the prompt was sent");
        let beep_frames: Vec<_> = packets.iter().filter(|p| p.3 != silence).collect();
        assert_eq!(beep_frames.len(), 5, "780 samples make 5 frames");
        assert!(packets[0].2, "marker on the first packet of the stream");
        assert!(
            packets[first_beep].2,
            "marker on the first packet of the prompt"
        );
        assert_eq!(
            packets.iter().filter(|p| p.2).count(),
            2,
            "no other markers"
        );
        let last_beep = &beep_frames[4].3;
        assert_eq!(
            last_beep[159], silence[0],
            "the short last frame is padded with silence"
        );
    }

    fn key_packet(ssrc: u32, seq: u16, event: u8) -> Vec<u8> {
        RtpPacketBuilder::new()
            .payload_type(101)
            .ssrc(ssrc)
            .sequence(Seq::from(seq))
            .timestamp(8000)
            .payload(&[event, 10, 0, 160])
            .build()
            .unwrap()
    }

    /// Everything a stranger might send to a call's port: forged keys on its own SSRC and on the
    /// caller's, audio, garbage, and RTP headers whose lengths lie.
    fn hostile_packets(caller_ssrc: u32) -> Vec<Vec<u8>> {
        let audio = RtpPacketBuilder::new()
            .payload_type(0)
            .ssrc(caller_ssrc)
            .sequence(Seq::from(500))
            .payload(&[0xff; 160])
            .build()
            .unwrap();
        let mut lying_csrc = audio[..16].to_vec();
        lying_csrc[0] = 0x8f; // 15 CSRCs in a 16-byte packet
        let mut lying_extension = audio[..20].to_vec();
        lying_extension[0] = 0x90;
        lying_extension[14..16].copy_from_slice(&[0xff, 0xff]); // 65535 words of extension
        let mut lying_padding = audio.clone();
        lying_padding[0] = 0xa0;
        *lying_padding.last_mut().unwrap() = 0xff; // more padding than packet
        vec![
            key_packet(9, 1, 1),
            key_packet(caller_ssrc, 2, 2),
            audio,
            b"garbage that is not RTP at all".to_vec(),
            lying_csrc,
            lying_extension,
            lying_padding,
            vec![0x80],
            Vec::new(),
        ]
    }

    #[tokio::test]
    async fn a_stranger_can_neither_type_into_a_call_nor_take_its_audio() {
        let lib = library();
        let (first, _) = support_ports();
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), first, first + 1);
        let lease = pool.lease().unwrap();
        let stream_addr = SocketAddr::new("127.0.0.1".parse().unwrap(), lease.port());
        let phone = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let stranger = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let pacer = Pacer::start(1, false).unwrap();
        let (commands, mut events) =
            pacer.start_test_call(lease, Some(phone.local_addr().unwrap()), lib.clone());
        commands.send(MediaCommand::Confirmed).unwrap();
        // The caller's first key latches its stream.
        phone
            .send_to(&key_packet(7, 1, 5), stream_addr)
            .await
            .unwrap();
        let mut buf = [0u8; 1500];
        phone.recv_from(&mut buf).await.unwrap();
        assert_eq!(
            events.recv().await,
            Some(MediaEvent::Digit {
                digit: '5',
                source: DigitSource::Rfc4733
            })
        );
        // 50 rounds of everything, 10 ms apart: 500 ms, about 25 of the caller's frames.
        for _ in 0..50 {
            for packet in hostile_packets(7) {
                stranger.send_to(&packet, stream_addr).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut received = 0;
        while let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(1), phone.recv_from(&mut buf)).await
        {
            received += 1;
        }
        assert!(
            received >= 15,
            "the caller still hears the call ({received} packets)"
        );
        let diverted =
            tokio::time::timeout(Duration::from_millis(100), stranger.recv_from(&mut buf)).await;
        assert!(diverted.is_err(), "no audio went to the stranger");
        assert!(events.try_recv().is_err(), "no key from the stranger");
        drop(commands);
        assert_eq!(events.recv().await, None);
    }

    #[tokio::test]
    async fn nothing_is_sent_before_the_ack() {
        let lib = library();
        let (first, _) = support_ports();
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), first, first + 1);
        let victim = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let pacer = Pacer::start(1, false).unwrap();
        let (commands, mut events) = pacer.start_test_call(
            pool.lease().unwrap(),
            Some(victim.local_addr().unwrap()),
            lib,
        );
        let mut buf = [0u8; 1500];
        let sent =
            tokio::time::timeout(Duration::from_millis(300), victim.recv_from(&mut buf)).await;
        assert!(sent.is_err(), "no RTP to the SDP's address before the ACK");
        commands.send(MediaCommand::Confirmed).unwrap();
        let sent =
            tokio::time::timeout(Duration::from_millis(300), victim.recv_from(&mut buf)).await;
        assert!(sent.is_ok(), "RTP flows once the ACK confirmed the caller");
        drop(commands);
        assert_eq!(events.recv().await, None);
    }

    /// Two ports of their own for each test here: a free UDP port pair below the ephemeral range.
    fn support_ports() -> (u16, u16) {
        loop {
            let port = 20000 + rand::random::<u16>() % 10000 / 2 * 2;
            if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
                && std::net::UdpSocket::bind(("127.0.0.1", port + 1)).is_ok()
            {
                return (port, port + 1);
            }
        }
    }
}
