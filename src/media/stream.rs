//! One call's RTP stream: a single task that paces outgoing frames on absolute 20 ms deadlines
//! from the stream start, plays queued prompts back to back with silence in between, latches on
//! to where the caller's RTP really comes from, and reports when the caller's RTP goes quiet.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use super::codec::{Codec, FRAME_MS};
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
}

#[derive(Debug)]
pub enum MediaCommand {
    Play {
        prompt: Arc<Prompt>,
        id: u64,
    },
    /// Stop the prompt playing now and drop the queue (barge-in).
    StopPlayback,
    Update(MediaParams),
}

#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    PlaybackDone {
        id: u64,
    },
    PlaybackStopped {
        id: u64,
    },
    /// No RTP from the caller for the inactivity timeout.
    Inactive,
}

const FRAME: Duration = Duration::from_millis(FRAME_MS as u64);
/// When the task falls further behind than this, frames are skipped rather than bursted.
const MAX_BURST: u64 = 5;

pub struct RtpStream {
    lease: PortLease,
    params: MediaParams,
    silence: Bytes,
    inactivity: Duration,
    latched: Option<SocketAddr>,
    ssrc: u32,
    seq: Seq,
    timestamp: u32,
    /// The next packet starts a talkspurt.
    marker: bool,
    playing: Option<(Arc<Prompt>, usize, u64)>,
    queue: VecDeque<(Arc<Prompt>, u64)>,
    events: mpsc::UnboundedSender<MediaEvent>,
    library: Arc<PromptLibrary>,
    last_heard: Instant,
}

impl RtpStream {
    pub fn new(
        lease: PortLease,
        params: MediaParams,
        library: Arc<PromptLibrary>,
        inactivity: Duration,
        events: mpsc::UnboundedSender<MediaEvent>,
    ) -> RtpStream {
        RtpStream {
            silence: library.silence(params.codec),
            library,
            last_heard: Instant::now(),
            lease,
            params,
            inactivity,
            latched: None,
            ssrc: rand::random(),
            seq: Seq::from(rand::random::<u16>()),
            timestamp: rand::random(),
            marker: true,
            playing: None,
            queue: VecDeque::new(),
            events,
        }
    }

    /// Runs until the command channel closes (the call ended) or the caller's RTP stops.
    pub async fn run(mut self, mut commands: mpsc::UnboundedReceiver<MediaCommand>) {
        let start = Instant::now();
        let mut frame_no: u64 = 0;
        self.last_heard = start;
        let mut buf = [0u8; 2048];
        let mut packet = [0u8; 1500];
        let tick = sleep_until(start);
        tokio::pin!(tick);
        let quiet = sleep_until(start + self.inactivity);
        tokio::pin!(quiet);
        loop {
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => return,
                },
                () = &mut tick => {
                    let now = Instant::now();
                    let due = (now - start).as_millis() as u64 / FRAME_MS as u64 + 1;
                    let behind = due.saturating_sub(frame_no);
                    if behind > MAX_BURST {
                        self.skip(behind - 1);
                        frame_no += behind - 1;
                    }
                    while frame_no < due {
                        self.send_next(&mut packet).await;
                        frame_no += 1;
                    }
                    tick.as_mut().reset(start + FRAME * frame_no as u32);
                }
                received = self.lease.rtp.recv_from(&mut buf) => {
                    if let Ok((len, from)) = received {
                        if self.on_packet(&buf[..len], from) {
                            self.last_heard = Instant::now();
                        }
                    }
                }
                () = &mut quiet, if self.params.peer_sends => {
                    if self.last_heard.elapsed() >= self.inactivity {
                        let _ = self.events.send(MediaEvent::Inactive);
                        return;
                    }
                    quiet.as_mut().reset(self.last_heard + self.inactivity);
                }
            }
        }
    }

    fn on_command(&mut self, command: MediaCommand) {
        match command {
            MediaCommand::Play { prompt, id } => self.queue.push_back((prompt, id)),
            MediaCommand::StopPlayback => {
                if let Some((_, _, id)) = self.playing.take() {
                    let _ = self.events.send(MediaEvent::PlaybackStopped { id });
                }
                for (_, id) in self.queue.drain(..) {
                    let _ = self.events.send(MediaEvent::PlaybackStopped { id });
                }
                self.marker = true;
            }
            MediaCommand::Update(params) => {
                if params.remote != self.params.remote {
                    self.latched = None;
                }
                if params.codec != self.params.codec {
                    self.silence = self.library.silence(params.codec);
                }
                if params.peer_sends && !self.params.peer_sends {
                    self.last_heard = Instant::now();
                }
                self.params = params;
            }
        }
    }

    /// Valid RTP from the caller; latches the send address on the first one (symmetric RTP).
    fn on_packet(&mut self, data: &[u8], from: SocketAddr) -> bool {
        let Ok(rtp) = RtpReader::new(data) else {
            return false;
        };
        if rtp.version() != 2 {
            return false;
        }
        if self.latched != Some(from) {
            tracing::debug!(%from, "RTP latched to the caller's source address");
            self.latched = Some(from);
        }
        true
    }

    fn target(&self) -> Option<SocketAddr> {
        if !self.params.send {
            return None;
        }
        self.latched.or(self.params.remote)
    }

    fn next_payload(&mut self) -> Bytes {
        loop {
            if let Some((prompt, index, id)) = &mut self.playing {
                if let Some(frame) = prompt.frames(self.params.codec).get(*index) {
                    *index += 1;
                    return frame.clone();
                }
                let _ = self.events.send(MediaEvent::PlaybackDone { id: *id });
                self.playing = None;
            }
            match self.queue.pop_front() {
                Some((prompt, id)) => {
                    self.marker = true;
                    self.playing = Some((prompt, 0, id));
                }
                None => return self.silence.clone(),
            }
        }
    }

    async fn send_next(&mut self, packet: &mut [u8]) {
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
                if let Err(e) = self.lease.rtp.send_to(&packet[..len], target).await {
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
