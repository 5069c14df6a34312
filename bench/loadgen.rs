//! Load generator: whole phone conversations against a running `ivr`, on loopback.
//!
//! Each simulated caller dials, waits for the welcome, keys the account number and PIN as RFC
//! 4733 events, waits for the greeting, presses 1 during the menu (balance), stays in the menu
//! for `--hold-s`, presses 9 and answers the IVR's BYE. Calls start at `--rate` per second
//! with at most `--concurrent` at once. It reports setup time, digit-to-response time, barge-in
//! time, RTP pacing on a sample of calls, and the IVR's CPU and memory read from /proc.
//!
//! Like a phone, every caller also sends a 20 ms frame of audio (silence) for the whole call,
//! pausing it while a key is sent; or, with `--echo`, sends back every packet it hears, as
//! SIPp's `-rtp_echo` does (the load shape of an independent measurement with SIPp). Pacing is measured on kernel receive timestamps
//! (SO_TIMESTAMPNS), so the generator's own scheduling is left out; the same gaps timed when
//! the generator's task wakes are reported beside them.
//!
//! With `--tls-ca`, the signalling of every call shares one TLS connection to `--target` (as a
//! trunk's would), and with `--srtp` each call offers RTP/SAVP with its own SDES key and
//! encrypts and authenticates what it sends and hears.

use std::collections::HashMap;
use std::io::IoSliceMut;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use ivr::media::srtp::{Inbound, MasterKey, Outbound, Suite};
use ivr::session::sdes;
use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags};
use nix::sys::time::TimeSpec;
use tokio::io::Interest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::{sleep, Instant};

#[derive(Parser, Clone)]
struct Args {
    /// The IVR's SIP address.
    #[arg(long, default_value = "127.0.0.1:5060")]
    target: SocketAddr,
    #[arg(long, default_value_t = 100)]
    concurrent: usize,
    /// Calls started per second.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Calls in all (default: --concurrent).
    #[arg(long)]
    total: Option<usize>,
    /// Seconds spent in the menu before pressing 9.
    #[arg(long, default_value_t = 20)]
    hold_s: u64,
    /// Calls whose every RTP arrival is timed for the pacing figures.
    #[arg(long, default_value_t = 50)]
    sample: usize,
    /// The IVR's process id, for CPU and memory.
    #[arg(long)]
    ivr_pid: Option<u32>,
    #[arg(long, default_value = "24680")]
    account: String,
    #[arg(long, default_value = "1357")]
    pin: String,
    /// Write the report as JSON here too.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Print one Markdown table row instead of the JSON.
    #[arg(long)]
    markdown: bool,
    /// The generator's runtime threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Send the caller's audio (a silent 20 ms frame every 20 ms), as a phone does.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    caller_audio: bool,
    /// Send every RTP packet heard back, as SIPp's `-rtp_echo` does (use with
    /// `--caller-audio false`), under the caller's SSRC; plain RTP only.
    #[arg(long)]
    echo: bool,
    /// SIP over one TLS connection to `--target`, trusting this CA certificate (PEM).
    #[arg(long)]
    tls_ca: Option<std::path::PathBuf>,
    /// Offer SRTP (RTP/SAVP, AES_CM_128_HMAC_SHA1_80 keyed by SDES).
    #[arg(long)]
    srtp: bool,
}

/// Where a caller's SIP goes: the shared UDP socket, or the writer of the shared TLS connection.
#[derive(Clone)]
enum SipLink {
    Udp(Arc<UdpSocket>),
    Tls {
        writer: mpsc::UnboundedSender<Vec<u8>>,
        local: SocketAddr,
    },
}

impl SipLink {
    fn local_addr(&self) -> SocketAddr {
        match self {
            SipLink::Udp(socket) => socket.local_addr().unwrap(),
            SipLink::Tls { local, .. } => *local,
        }
    }

    fn via(&self) -> &'static str {
        match self {
            SipLink::Udp(_) => "UDP",
            SipLink::Tls { .. } => "TLS",
        }
    }
}

/// A call's SRTP: the caller's key for what it sends, the IVR's (from the answer) for what
/// it hears.
struct Crypto {
    outbound: Outbound,
    inbound: Option<Inbound>,
    key: MasterKey,
}

type Routes = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<String>>>>;

#[derive(Default)]
struct Report {
    attempted: usize,
    completed: usize,
    failed: HashMap<String, usize>,
    setup_us: Vec<u64>,
    digit_response_us: Vec<u64>,
    barge_in_us: Vec<u64>,
    pacing_dev_us: Vec<u64>,
    pacing_wake_dev_us: Vec<u64>,
    seq_gaps: u64,
    packets: u64,
    active: usize,
}

struct Rtp {
    socket: UdpSocket,
    buf: [u8; 1500],
    audible: bool,
    last_seq: Option<u16>,
    last_at: Option<Instant>,
    /// Kernel arrival time of the last packet (timed calls only).
    last_stamp: Option<Duration>,
    timed: bool,
    /// |gap - 20 ms| on kernel receive timestamps, and on the task's wake-up times.
    deviations: Vec<u64>,
    wake_deviations: Vec<u64>,
    /// Room for the SO_TIMESTAMPNS control message, reused for every packet.
    cmsg: Vec<u8>,
    /// When the caller's next audio frame is due (from the answer on).
    next_audio: Option<Instant>,
    /// A key is being sent: audio frames are held back, their time still passes.
    in_event: bool,
    seq_gaps: u64,
    packets: u64,
    seq: u16,
    ts: u32,
    /// While set, the first silent or marked packet after it is remembered (barge-in timing).
    watch_from: Option<Instant>,
    changed_at: Option<Instant>,
    crypto: Option<Crypto>,
}

impl Rtp {
    /// Sends one plain RTP packet, sealed first when the call is SRTP.
    async fn send(&mut self, plain: &[u8], target: SocketAddr) {
        let mut sealed = [0u8; 256];
        sealed[..plain.len()].copy_from_slice(plain);
        let len = match &mut self.crypto {
            Some(c) => c.outbound.protect_rtp(&mut sealed, plain.len()).unwrap(),
            None => plain.len(),
        };
        let _ = self.socket.send_to(&sealed[..len], target).await;
    }
}

enum Heard {
    Packet {
        audible: bool,
        marker: bool,
        at: Instant,
    },
    Sip(String),
    Timeout,
}

struct Caller {
    n: usize,
    args: Arc<Args>,
    sip: SipLink,
    inbox: mpsc::UnboundedReceiver<String>,
    rtp: Rtp,
    ivr_media: Option<SocketAddr>,
    call_id: String,
    to_tag: String,
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

impl Caller {
    async fn hear(&mut self, until: Instant) -> Heard {
        loop {
            let audio_at = self.rtp.next_audio.unwrap_or(until);
            tokio::select! {
                r = receive(&self.rtp.socket, &mut self.rtp.buf, self.rtp.timed.then_some(&mut self.rtp.cmsg)) => {
                    let at = Instant::now();
                    let Ok((n, stamp)) = r else { return Heard::Timeout };
                    // RTCP: the IVR's reports go to the port above a caller's RTP, which the
                    // OS may have given to this caller's RTP socket. Not audio to count.
                    if n >= 8 && (192..=223).contains(&self.rtp.buf[1]) {
                        continue;
                    }
                    if let (true, Some(ivr), 12..=1500) = (self.args.echo, self.ivr_media, n) {
                        // Back under the caller's own SSRC, which its keys use too: one stream.
                        let mut echo = [0u8; 1500];
                        echo[..n].copy_from_slice(&self.rtp.buf[..n]);
                        echo[8..12].copy_from_slice(&(0x1000_0000u32 + self.n as u32).to_be_bytes());
                        let _ = self.rtp.socket.send_to(&echo[..n], ivr).await;
                    }
                    return self.on_rtp(n, at, stamp);
                }
                m = self.inbox.recv() => return m.map_or(Heard::Timeout, Heard::Sip),
                () = tokio::time::sleep_until(until) => return Heard::Timeout,
                () = tokio::time::sleep_until(audio_at), if self.rtp.next_audio.is_some() => self.send_audio().await,
            }
        }
    }

    fn on_rtp(&mut self, n: usize, at: Instant, stamp: Option<Duration>) -> Heard {
        let n = match &mut self.rtp.crypto {
            Some(Crypto {
                inbound: Some(inbound),
                ..
            }) => match inbound.check_rtp(&self.rtp.buf[..n]) {
                Ok(checked) => inbound.accept_rtp(&checked, &mut self.rtp.buf[..n]),
                Err(_) => 0,
            },
            _ => n,
        };
        if n < 12 {
            return Heard::Packet {
                audible: self.rtp.audible,
                marker: false,
                at,
            };
        }
        let marker = self.rtp.buf[1] & 0x80 != 0;
        let seq = u16::from_be_bytes([self.rtp.buf[2], self.rtp.buf[3]]);
        if let Some(last) = self.rtp.last_seq {
            if seq != last.wrapping_add(1) {
                self.rtp.seq_gaps += 1;
            }
        }
        self.rtp.last_seq = Some(seq);
        if self.rtp.timed {
            let deviation = |gap: Duration| (gap.as_micros() as i64 - 20_000).unsigned_abs();
            if let Some(prev) = self.rtp.last_at {
                self.rtp.wake_deviations.push(deviation(at - prev));
            }
            if let (Some(prev), Some(now)) = (self.rtp.last_stamp, stamp) {
                self.rtp
                    .deviations
                    .push(deviation(now.saturating_sub(prev)));
            }
            self.rtp.last_stamp = stamp;
        }
        self.rtp.last_at = Some(at);
        self.rtp.packets += 1;
        self.rtp.audible = self.rtp.buf[12..n].iter().any(|&b| b != 0xFF);
        if self.rtp.watch_from.is_some_and(|w| at >= w)
            && self.rtp.changed_at.is_none()
            && (!self.rtp.audible || marker)
        {
            self.rtp.changed_at = Some(at);
        }
        Heard::Packet {
            audible: self.rtp.audible,
            marker,
            at,
        }
    }

    /// The caller's audio: one silent PCMU frame, on absolute 20 ms deadlines.
    async fn send_audio(&mut self) {
        let Some(at) = self.rtp.next_audio else {
            return;
        };
        self.rtp.next_audio = Some(at + Duration::from_millis(20));
        let ts = self.rtp.ts;
        self.rtp.ts = self.rtp.ts.wrapping_add(160);
        let Some(target) = self.ivr_media else { return };
        if self.rtp.in_event {
            return;
        }
        let mut p = [0xFFu8; 172];
        p[0] = 0x80;
        p[1] = 0;
        p[2..4].copy_from_slice(&self.rtp.seq.to_be_bytes());
        p[4..8].copy_from_slice(&ts.to_be_bytes());
        p[8..12].copy_from_slice(&(0x1000_0000u32 + self.n as u32).to_be_bytes());
        self.rtp.seq = self.rtp.seq.wrapping_add(1);
        self.rtp.send(&p, target).await;
    }

    /// Waits for an audible (`true`) or silent packet; answers a BYE if one comes.
    async fn wait_audio(&mut self, audible: bool, within: Duration) -> Result<Instant, String> {
        let until = Instant::now() + within;
        loop {
            match self.hear(until).await {
                Heard::Packet { audible: a, at, .. } if a == audible => return Ok(at),
                Heard::Packet { .. } => {}
                Heard::Sip(m) if m.starts_with("BYE ") => {
                    self.answer_bye(&m).await;
                    return Err("IVR hung up early".into());
                }
                Heard::Sip(_) => {}
                Heard::Timeout => {
                    return Err(format!(
                        "no {} audio",
                        if audible { "audible" } else { "silent" }
                    ))
                }
            }
        }
    }

    /// Waits for the prompt playing now to stop: a silent packet, or a new talkspurt (marker).
    async fn wait_prompt_change(&mut self, within: Duration) -> Result<Instant, String> {
        let until = Instant::now() + within;
        loop {
            match self.hear(until).await {
                Heard::Packet {
                    audible,
                    marker,
                    at,
                } if !audible || marker => return Ok(at),
                Heard::Timeout => return Err("the prompt never stopped".into()),
                _ => {}
            }
        }
    }

    async fn idle(&mut self, d: Duration) -> Result<(), String> {
        let until = Instant::now() + d;
        loop {
            match self.hear(until).await {
                Heard::Timeout => return Ok(()),
                Heard::Sip(m) if m.starts_with("BYE ") => {
                    self.answer_bye(&m).await;
                    return Err("IVR hung up early".into());
                }
                _ => {}
            }
        }
    }

    async fn send_sip(&self, text: String) {
        // Idempotent: bodies already in CRLF stay as they are.
        let wire = text.replace("\r\n", "\n").replace('\n', "\r\n");
        match &self.sip {
            SipLink::Udp(socket) => {
                let _ = socket.send_to(wire.as_bytes(), self.args.target).await;
            }
            SipLink::Tls { writer, .. } => {
                let _ = writer.send(wire.into_bytes());
            }
        }
    }

    async fn answer_bye(&self, bye: &str) {
        let mut out = String::from("SIP/2.0 200 OK\n");
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            if let Some(v) = header(bye, name) {
                out.push_str(&format!("{name}: {v}\n"));
            }
        }
        out.push_str("Content-Length: 0\n\n");
        self.send_sip(out).await;
    }

    /// One key: three packets 20 ms apart, then three redundant Ends.
    async fn key(&mut self, key: char) -> Instant {
        let code: u8 = match key {
            '*' => 10,
            '#' => 11,
            d => d as u8 - b'0',
        };
        let target = self.ivr_media.expect("media address");
        if !self.args.caller_audio {
            // Without audio the clock does not run on by itself; a new press needs a new time.
            self.rtp.ts = self.rtp.ts.wrapping_add(1600);
        }
        self.rtp.in_event = true;
        let event_ts = self.rtp.ts;
        let first = Instant::now();
        for i in 0..6u16 {
            let end = i >= 3;
            let duration = 160 * (i.min(3) + 1);
            let mut p = [0u8; 16];
            p[0] = 0x80;
            p[1] = 101 | if i == 0 { 0x80 } else { 0 };
            p[2..4].copy_from_slice(&self.rtp.seq.to_be_bytes());
            p[4..8].copy_from_slice(&event_ts.to_be_bytes());
            p[8..12].copy_from_slice(&(0x1000_0000u32 + self.n as u32).to_be_bytes());
            p[12] = code;
            p[13] = if end { 0x80 | 10 } else { 10 };
            p[14..16].copy_from_slice(&duration.to_be_bytes());
            self.rtp.seq = self.rtp.seq.wrapping_add(1);
            self.rtp.send(&p, target).await;
            if i < 3 {
                let _ = self.idle(Duration::from_millis(20)).await;
            }
        }
        self.rtp.in_event = false;
        first
    }

    async fn keys(&mut self, keys: &str) -> Result<(), String> {
        for k in keys.chars() {
            self.key(k).await;
            self.idle(Duration::from_millis(100)).await?;
        }
        Ok(())
    }

    async fn converse(&mut self, report: &Mutex<Report>) -> Result<(), String> {
        let local_sip = self.sip.local_addr();
        let via = self.sip.via();
        let rtp_port = self.rtp.socket.local_addr().unwrap().port();
        let (profile, crypto) = match &self.rtp.crypto {
            Some(c) => (
                "RTP/SAVP",
                sdes::attribute(1, Suite::AesCm128HmacSha1_80, &c.key),
            ),
            None => ("RTP/AVP", String::new()),
        };
        let sdp = format!(
            "v=0\no=load 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio {rtp_port} {profile} 0 101\na=rtpmap:0 PCMU/8000\na=rtpmap:101 telephone-event/8000\na=fmtp:101 0-16\n{crypto}"
        )
        .replace("\r\n", "\n")
        .replace('\n', "\r\n");
        let n = self.n;
        let target = self.args.target;
        let invite = format!(
            "INVITE sip:ivr@{target} SIP/2.0\nVia: SIP/2.0/{via} {local_sip};branch=z9hG4bKload{n}i{};rport\nMax-Forwards: 70\nFrom: <sip:load{n}@127.0.0.1>;tag=l{n}\nTo: <sip:ivr@{target}>\nCall-ID: {}\nCSeq: 1 INVITE\nContact: <sip:load{n}@{local_sip}>\nContent-Type: application/sdp\nContent-Length: {}\n\n",
            std::process::id(),
            self.call_id,
            sdp.len()
        );
        let sent = Instant::now();
        self.send_sip(invite + &sdp).await;
        let until = sent + Duration::from_secs(5);
        let ok = loop {
            match self.hear(until).await {
                Heard::Sip(m) if m.starts_with("SIP/2.0 200") => break m,
                Heard::Sip(m) if m.starts_with("SIP/2.0 1") => {}
                Heard::Sip(m) => {
                    return Err(format!(
                        "INVITE answered {}",
                        m.lines().next().unwrap_or("")
                    ))
                }
                Heard::Packet { .. } => {}
                Heard::Timeout => return Err("no 200 to INVITE".into()),
            }
        };
        let setup = sent.elapsed();
        self.to_tag = header(&ok, "To")
            .and_then(|t| t.split(";tag=").nth(1))
            .unwrap_or("")
            .to_string();
        let port: u16 = ok
            .lines()
            .find_map(|l| l.strip_prefix("m=audio ")?.split(' ').next()?.parse().ok())
            .ok_or("no m= in 200")?;
        self.ivr_media = Some(SocketAddr::new(target.ip(), port));
        if let Some(crypto) = &mut self.rtp.crypto {
            let line = ok
                .lines()
                .find_map(|l| l.strip_prefix("a=crypto:"))
                .ok_or("no a=crypto in the answer")?;
            let answered = sdes::parse(line)?;
            crypto.inbound = Some(Inbound::new(answered.suite, &answered.key));
        }
        if self.args.caller_audio {
            // Phones start their audio whenever they answer: a random phase, not the generator's.
            let phase = Duration::from_micros(rand::random::<u64>() % 20_000);
            self.rtp.next_audio = Some(Instant::now() + phase);
        }
        self.send_sip(format!(
            "ACK sip:ivr@{target} SIP/2.0\nVia: SIP/2.0/{via} {local_sip};branch=z9hG4bKload{n}a{};rport\nMax-Forwards: 70\nFrom: <sip:load{n}@127.0.0.1>;tag=l{n}\nTo: <sip:ivr@{target}>;tag={}\nCall-ID: {}\nCSeq: 1 ACK\nContent-Length: 0\n\n",
            std::process::id(),
            self.to_tag,
            self.call_id
        ))
        .await;
        report
            .lock()
            .unwrap()
            .setup_us
            .push(setup.as_micros() as u64);

        self.wait_audio(true, Duration::from_secs(5))
            .await
            .map_err(|e| format!("welcome: {e}"))?;
        let account = format!("{}#", self.args.account);
        self.keys(&account).await?;
        let pin = format!("{}#", self.args.pin);
        self.keys(&pin).await?;
        let pin_done = Instant::now();
        let greeting = self
            .wait_audio(true, Duration::from_secs(15))
            .await
            .map_err(|e| format!("greeting: {e}"))?;
        report
            .lock()
            .unwrap()
            .digit_response_us
            .push((greeting - pin_done).as_micros() as u64);

        // Into the menu prompt, then 1 (balance) while it plays: how fast does it stop?
        self.idle(Duration::from_millis(1500)).await?;
        if self.rtp.audible {
            self.rtp.watch_from = Some(Instant::now());
            let pressed = self.key('1').await;
            let stopped = match self.rtp.changed_at {
                Some(at) => at,
                None => self
                    .wait_prompt_change(Duration::from_secs(2))
                    .await
                    .map_err(|e| format!("barge-in: {e}"))?,
            };
            self.rtp.watch_from = None;
            report
                .lock()
                .unwrap()
                .barge_in_us
                .push(stopped.saturating_duration_since(pressed).as_micros() as u64);
        } else {
            self.key('1').await;
        }
        // Stay in the menu: `*` (menu again) every 10 s keeps its timeouts from ending the call.
        let leave = Instant::now() + Duration::from_secs(self.args.hold_s);
        while Instant::now() + Duration::from_secs(10) < leave {
            self.idle(Duration::from_secs(10)).await?;
            self.key('*').await;
        }
        self.idle(leave.saturating_duration_since(Instant::now()))
            .await?;
        self.key('9').await;
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            match self.hear(until).await {
                Heard::Sip(m) if m.starts_with("BYE ") => {
                    self.answer_bye(&m).await;
                    return Ok(());
                }
                Heard::Timeout => return Err("no BYE after 9".into()),
                _ => {}
            }
        }
    }
}

fn route(routes: &Routes, text: String) {
    if let Some(id) = header(&text, "Call-ID") {
        if let Some(tx) = routes.lock().unwrap().get(id) {
            let _ = tx.send(text);
        }
    }
}

async fn udp_link(routes: Routes) -> SipLink {
    let sip = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let reader = sip.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, _)) = reader.recv_from(&mut buf).await {
            route(&routes, String::from_utf8_lossy(&buf[..n]).to_string());
        }
    });
    SipLink::Udp(sip)
}

/// One TLS connection for every call's signalling, on a thread of its own so that hundreds of
/// callers' tasks never delay its reads and writes: a writer, and a reader that frames messages
/// by Content-Length.
async fn tls_link(target: SocketAddr, ca: &std::path::Path, routes: Routes) -> SipLink {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).expect("read --tls-ca") {
        roots.add(cert.expect("a PEM certificate")).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let (writer, outgoing) = mpsc::unbounded_channel::<Vec<u8>>();
    let (ready, connected) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(run_tls_link(target, config, routes, outgoing, ready));
    });
    let local = connected.await.expect("the TLS link connected");
    SipLink::Tls { writer, local }
}

async fn run_tls_link(
    target: SocketAddr,
    config: rustls::ClientConfig,
    routes: Routes,
    mut outgoing: mpsc::UnboundedReceiver<Vec<u8>>,
    ready: tokio::sync::oneshot::Sender<SocketAddr>,
) {
    let tcp = tokio::net::TcpStream::connect(target)
        .await
        .expect("connect to the TLS port");
    tcp.set_nodelay(true).unwrap();
    let local = tcp.local_addr().unwrap();
    let name = rustls::pki_types::ServerName::from(target.ip());
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    let (mut read, mut write) = tokio::io::split(tls);
    let _ = ready.send(local);
    tokio::spawn(async move {
        while let Some(message) = outgoing.recv().await {
            if write.write_all(&message).await.is_err() {
                return;
            }
        }
    });
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 65536];
    while let Ok(n) = read.read(&mut chunk).await {
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        // CRLF keep-alives between messages.
        while buf.starts_with(b"\r\n") {
            buf.drain(..2);
        }
        while let Some(head) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&buf[..head]).to_string();
            let body: usize = header(&text, "Content-Length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let len = head + 4 + body;
            if buf.len() < len {
                break;
            }
            let message: Vec<u8> = buf.drain(..len).collect();
            route(&routes, String::from_utf8_lossy(&message).to_string());
        }
    }
}

/// One datagram, with its kernel arrival time when `cmsg` is given (and SO_TIMESTAMPNS is on).
async fn receive(
    socket: &UdpSocket,
    buf: &mut [u8],
    cmsg: Option<&mut Vec<u8>>,
) -> std::io::Result<(usize, Option<Duration>)> {
    let Some(space) = cmsg else {
        return socket.recv_from(buf).await.map(|(n, _)| (n, None));
    };
    loop {
        socket.readable().await?;
        let got = socket.try_io(Interest::READABLE, || {
            let mut iov = [IoSliceMut::new(buf)];
            let msg = recvmsg::<()>(
                socket.as_raw_fd(),
                &mut iov,
                Some(&mut *space),
                MsgFlags::empty(),
            )?;
            let stamp = msg.cmsgs()?.find_map(|c| match c {
                ControlMessageOwned::ScmTimestampns(t) => Some(Duration::from(t)),
                _ => None,
            });
            Ok((msg.bytes, stamp))
        });
        match got {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn rss_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix(field)?
            .trim()
            .strip_suffix(" kB")?
            .trim()
            .parse()
            .ok()
    })
}

fn percentile(v: &mut [u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let args = Arc::new(Args::parse());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(args));
}

async fn run(args: Arc<Args>) {
    let total = args.total.unwrap_or(args.concurrent);
    let routes: Routes = Arc::default();
    let sip = match &args.tls_ca {
        None => udp_link(routes.clone()).await,
        Some(ca) => tls_link(args.target, ca, routes.clone()).await,
    };
    let report = Arc::new(Mutex::new(Report::default()));
    let slots = Arc::new(Semaphore::new(args.concurrent));
    let idle_rss = args.ivr_pid.and_then(|p| rss_kib(p, "VmRSS:"));
    let started = Instant::now();
    let self_start = cpu_ticks(std::process::id()).unwrap_or(0);
    // Samples of (time, active calls, IVR CPU ticks, RSS) every second.
    let samples = Arc::new(Mutex::new(Vec::<(f64, usize, u64, u64)>::new()));
    {
        let (samples, report, args) = (samples.clone(), report.clone(), args.clone());
        tokio::spawn(async move {
            loop {
                sleep(Duration::from_secs(1)).await;
                let Some(pid) = args.ivr_pid else { return };
                let active = report.lock().unwrap().active;
                let row = (
                    started.elapsed().as_secs_f64(),
                    active,
                    cpu_ticks(pid).unwrap_or(0),
                    rss_kib(pid, "VmRSS:").unwrap_or(0),
                );
                samples.lock().unwrap().push(row);
            }
        });
    }
    let mut calls = Vec::with_capacity(total);
    let every = Duration::from_secs_f64(1.0 / args.rate);
    let sample_every = (total / args.sample.max(1)).max(1);
    for n in 0..total {
        tokio::time::sleep_until(started + every * n as u32).await;
        let permit = slots.clone().acquire_owned().await.unwrap();
        let (tx, inbox) = mpsc::unbounded_channel();
        let call_id = format!("load-{n}-{}", std::process::id());
        routes.lock().unwrap().insert(call_id.clone(), tx);
        let socket = UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("RTP socket: raise `ulimit -n`");
        let timed = n % sample_every == 0;
        if timed {
            setsockopt(&socket, sockopt::ReceiveTimestampns, &true).expect("SO_TIMESTAMPNS");
        }
        let mut caller = Caller {
            n,
            args: args.clone(),
            sip: sip.clone(),
            inbox,
            rtp: Rtp {
                socket,
                buf: [0; 1500],
                audible: false,
                last_seq: None,
                last_at: None,
                last_stamp: None,
                timed,
                deviations: Vec::new(),
                wake_deviations: Vec::new(),
                cmsg: nix::cmsg_space!(TimeSpec),
                next_audio: None,
                in_event: false,
                seq_gaps: 0,
                packets: 0,
                seq: 1,
                ts: 0,
                watch_from: None,
                changed_at: None,
                crypto: args.srtp.then(|| {
                    let key = MasterKey::random();
                    Crypto {
                        outbound: Outbound::new(Suite::AesCm128HmacSha1_80, &key),
                        inbound: None,
                        key,
                    }
                }),
            },
            ivr_media: None,
            call_id,
            to_tag: String::new(),
        };
        let (report, routes) = (report.clone(), routes.clone());
        calls.push(tokio::spawn(async move {
            {
                let mut r = report.lock().unwrap();
                r.attempted += 1;
                r.active += 1;
            }
            let outcome = caller.converse(&report).await;
            let mut r = report.lock().unwrap();
            r.active -= 1;
            match outcome {
                Ok(()) => r.completed += 1,
                Err(why) => *r.failed.entry(why).or_default() += 1,
            }
            r.pacing_dev_us.append(&mut caller.rtp.deviations);
            r.pacing_wake_dev_us.append(&mut caller.rtp.wake_deviations);
            r.seq_gaps += caller.rtp.seq_gaps;
            r.packets += caller.rtp.packets;
            routes.lock().unwrap().remove(&caller.call_id);
            drop(permit);
        }));
    }
    let ramp_end = started.elapsed().as_secs_f64();
    for c in calls {
        let _ = c.await;
    }
    let wall = started.elapsed().as_secs_f64();
    let self_cpu = (cpu_ticks(std::process::id()).unwrap_or(0) - self_start) as f64 / 100.0;
    let mut r = report.lock().unwrap();
    let samples = samples.lock().unwrap().clone();
    // Steady window: at least 95% of the concurrent calls up, and no login (Argon2) running:
    // from 5 s after the last call started.
    let full: Vec<_> = samples
        .iter()
        .filter(|s| s.1 * 100 >= args.concurrent.min(total) * 95 && s.0 >= ramp_end + 5.0)
        .collect();
    let (cpu_per_call_s, window_s, cores) = match (full.first(), full.last()) {
        (Some(a), Some(b)) if b.0 > a.0 => {
            let secs = b.0 - a.0;
            let cpu = (b.2 - a.2) as f64 / 100.0;
            let call_seconds: f64 = full
                .windows(2)
                .map(|w| (w[1].0 - w[0].0) * w[0].1 as f64)
                .sum();
            (cpu / call_seconds.max(1e-9), secs, cpu / secs)
        }
        _ => (f64::NAN, 0.0, f64::NAN),
    };
    let peak_rss = args.ivr_pid.and_then(|p| rss_kib(p, "VmHWM:")).unwrap_or(0);
    let steady_rss = full.iter().map(|s| s.3).max().unwrap_or(0);
    let per_call_kib =
        idle_rss.map(|i| (steady_rss.saturating_sub(i)) as f64 / args.concurrent.min(total) as f64);
    let calls_per_core = if cpu_per_call_s.is_finite() {
        1.0 / cpu_per_call_s
    } else {
        f64::NAN
    };
    let json = serde_json::json!({
        "concurrent": args.concurrent, "rate_cps": args.rate, "hold_s": args.hold_s,
        "attempted": r.attempted, "completed": r.completed, "failed": r.failed,
        "setup_ms": {"p50": percentile(&mut r.setup_us, 0.5) as f64 / 1000.0, "p99": percentile(&mut r.setup_us, 0.99) as f64 / 1000.0},
        "digit_to_response_ms": {"p50": percentile(&mut r.digit_response_us, 0.5) as f64 / 1000.0, "p99": percentile(&mut r.digit_response_us, 0.99) as f64 / 1000.0},
        "barge_in_ms": {"p50": percentile(&mut r.barge_in_us, 0.5) as f64 / 1000.0, "p99": percentile(&mut r.barge_in_us, 0.99) as f64 / 1000.0},
        "caller_audio": args.caller_audio,
        "echo": args.echo,
        "pacing_deviation_ms": {"p50": percentile(&mut r.pacing_dev_us, 0.5) as f64 / 1000.0, "p99": percentile(&mut r.pacing_dev_us, 0.99) as f64 / 1000.0, "max": percentile(&mut r.pacing_dev_us, 1.0) as f64 / 1000.0, "gaps_timed": r.pacing_dev_us.len(), "clock": "kernel receive timestamps"},
        "pacing_deviation_at_wakeup_ms": {"p50": percentile(&mut r.pacing_wake_dev_us, 0.5) as f64 / 1000.0, "p99": percentile(&mut r.pacing_wake_dev_us, 0.99) as f64 / 1000.0, "max": percentile(&mut r.pacing_wake_dev_us, 1.0) as f64 / 1000.0},
        "rtp": {"packets": r.packets, "sequence_gaps": r.seq_gaps},
        "ivr": {"steady_window_s": window_s, "cores_in_window": cores, "cpu_s_per_call_s": cpu_per_call_s, "calls_per_core": calls_per_core,
                "rss_before_kib": idle_rss, "steady_rss_kib": steady_rss, "peak_rss_kib": peak_rss, "rss_per_call_kib": per_call_kib},
        "loadgen": {"cpu_s": self_cpu, "wall_s": wall, "cores": self_cpu / wall},
    });
    if args.markdown {
        let failed: usize = r.failed.values().sum();
        let f = |v: &serde_json::Value, a: &str, b: &str| v[a][b].as_f64().unwrap_or(f64::NAN);
        println!(
            "| {} | {}/{}/{} | {:.2} / {:.2} | {:.1} / {:.1} | {:.1} / {:.1} | {:.2} / {:.2} / {:.2} | {:.2} | {} | {:.3} | {:.0} | {:.0} | {:.1} | {:.2} |",
            args.concurrent, r.attempted, r.completed, failed,
            f(&json, "setup_ms", "p50"), f(&json, "setup_ms", "p99"),
            f(&json, "digit_to_response_ms", "p50"), f(&json, "digit_to_response_ms", "p99"),
            f(&json, "barge_in_ms", "p50"), f(&json, "barge_in_ms", "p99"),
            f(&json, "pacing_deviation_ms", "p50"), f(&json, "pacing_deviation_ms", "p99"), f(&json, "pacing_deviation_ms", "max"),
            f(&json, "pacing_deviation_at_wakeup_ms", "p99"),
            r.seq_gaps, cores, calls_per_core, steady_rss as f64 / 1024.0 * 1024.0 / 1024.0, per_call_kib.unwrap_or(f64::NAN),
            self_cpu / wall,
        );
    } else {
        println!("{}", serde_json::to_string_pretty(&json).unwrap());
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    }
}
