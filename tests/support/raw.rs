//! A minimal phone on raw sockets, for tests that need a caller on an address of their own
//! (127.0.0.2 is another host to the IVR) or that must see exactly what the IVR sends back:
//! INVITE with a G.711 offer, ACK, listen for RTP, BYE. Also a never-ACKing INVITE sender.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::Ivr;

/// PCMU silence: what the IVR sends between prompts.
const PCMU_SILENCE: u8 = 0xff;

pub struct RawPhone {
    pub sip: UdpSocket,
    pub rtp: UdpSocket,
    target: String,
    ip: String,
    /// The Contact our INVITE carries, when not our own address.
    pub contact: Option<String>,
    /// Lines added to the offer's audio section (`a=rtcp-mux\r\n`).
    pub media_lines: String,
    /// The user dialled (the Request-URI's and To's): `ivr` unless set.
    pub dialled: String,
}

/// What the IVR answered: enough to ACK and BYE.
pub struct Answered {
    pub call_id: String,
    pub to: String,
    pub rtp_port: u16,
    /// The whole 200 OK.
    pub answer: String,
}

pub fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message.split("\r\n").find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The status code of a response, or 0.
pub fn status(message: &str) -> u16 {
    message
        .strip_prefix("SIP/2.0 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

pub fn retry_after(message: &str) -> Option<u32> {
    header(message, "Retry-After").and_then(|v| v.split(';').next()?.trim().parse().ok())
}

impl RawPhone {
    /// A phone whose SIP and RTP sockets are bound on `ip` (a loopback address).
    pub fn new(ip: &str, ivr: &Ivr) -> RawPhone {
        Self::dialling(ip, ivr.addr())
    }

    /// A phone on `ip` (IPv4 or IPv6) calling `target` (`host:port`, IPv6 in brackets).
    pub fn dialling(ip: &str, target: String) -> RawPhone {
        let sip = UdpSocket::bind((ip, 0)).unwrap();
        sip.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let rtp = UdpSocket::bind((ip, 0)).unwrap();
        rtp.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        RawPhone {
            sip,
            rtp,
            target,
            ip: ip.to_string(),
            contact: None,
            media_lines: String::new(),
            dialled: "ivr".into(),
        }
    }

    fn sip_port(&self) -> u16 {
        self.sip.local_addr().unwrap().port()
    }

    /// Our address as SIP writes a host: IPv6 in brackets.
    fn host(&self) -> String {
        if self.ip.contains(':') {
            format!("[{}]", self.ip)
        } else {
            self.ip.clone()
        }
    }

    /// Sends an INVITE whose SDP names `media` (its own RTP socket unless told otherwise).
    pub fn send_invite(&self, call_id: &str, media: Option<SocketAddr>) {
        let media = media.unwrap_or_else(|| self.rtp.local_addr().unwrap());
        let family = |ip: std::net::IpAddr| if ip.is_ipv4() { "IP4" } else { "IP6" };
        let sdp = format!(
            "v=0\r\no=- 1 1 IN {of} {ip}\r\ns=-\r\nc=IN {mf} {mip}\r\nt=0 0\r\nm=audio {mport} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n{extra}",
            extra = self.media_lines,
            of = family(self.sip.local_addr().unwrap().ip()),
            ip = self.ip,
            mf = family(media.ip()),
            mip = media.ip(),
            mport = media.port()
        );
        let contact = self
            .contact
            .clone()
            .unwrap_or_else(|| format!("<sip:raw@{}:{}>", self.host(), self.sip_port()));
        let invite = format!(
            "INVITE sip:{dialled}@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {ip}:{port};branch=z9hG4bK{call_id};rport\r\nFrom: <sip:raw@{ip}>;tag=raw{call_id}\r\nTo: <sip:{dialled}@{target}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: {contact}\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{sdp}",
            target = self.target,
            dialled = self.dialled,
            ip = self.host(),
            port = self.sip_port(),
            len = sdp.len()
        );
        self.sip.send_to(invite.as_bytes(), &self.target).unwrap();
    }

    /// The next SIP message within `wait`.
    pub fn receive(&self, wait: Duration) -> Option<String> {
        let start = Instant::now();
        let mut buf = [0u8; 65536];
        while start.elapsed() < wait {
            if let Ok((n, _)) = self.sip.recv_from(&mut buf) {
                return Some(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
        None
    }

    /// The final response to our INVITE (retransmitted as RFC 3261 says until one comes).
    pub fn final_response(&self, call_id: &str, wait: Duration) -> Option<String> {
        let start = Instant::now();
        let mut resend = Instant::now() + Duration::from_millis(500);
        while start.elapsed() < wait {
            if Instant::now() >= resend {
                self.send_invite(call_id, None);
                resend += Duration::from_millis(1000);
            }
            let Some(reply) = self.receive(Duration::from_millis(100)) else {
                continue;
            };
            if header(&reply, "Call-ID") == Some(call_id) && status(&reply) >= 200 {
                return Some(reply);
            }
        }
        None
    }

    /// Dials and ACKs; the answer, or the response that refused the call.
    pub fn call(&self, call_id: &str) -> Result<Answered, String> {
        self.send_invite(call_id, None);
        let reply = self
            .final_response(call_id, Duration::from_secs(5))
            .ok_or("no final response")?;
        if status(&reply) != 200 {
            return Err(reply);
        }
        let to = header(&reply, "To").ok_or("no To")?.to_string();
        let rtp_port = reply
            .lines()
            .find_map(|l| l.strip_prefix("m=audio "))
            .and_then(|m| m.split(' ').next()?.parse().ok())
            .ok_or("no m=audio")?;
        self.send_in_dialog("ACK", call_id, &to, 1);
        // A phone sends RTP from the start (the IVR stops talking after 2 s to an address it
        // never hears from).
        if let Ok(ivr) = self.target.parse::<std::net::SocketAddr>() {
            let hello = pcmu_packet(0, PHONE_SSRC, PCMU_SILENCE);
            let _ = self.rtp.send_to(&hello, (ivr.ip(), rtp_port));
        }
        Ok(Answered {
            call_id: call_id.to_string(),
            to,
            rtp_port,
            answer: reply,
        })
    }

    /// ACKs the 2xx of `call_id` (whose To carried `to`).
    pub fn ack(&self, call_id: &str, to: &str) {
        self.send_in_dialog("ACK", call_id, to, 1);
    }

    fn send_in_dialog(&self, method: &str, call_id: &str, to: &str, cseq: u32) {
        let branch: u64 = rand_branch();
        let message = format!(
            "{method} sip:ivr@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {ip}:{port};branch=z9hG4bK{branch:x};rport\r\nFrom: <sip:raw@{ip}>;tag=raw{call_id}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            target = self.target,
            ip = self.host(),
            port = self.sip_port(),
        );
        self.sip.send_to(message.as_bytes(), &self.target).unwrap();
    }

    /// An out-of-dialog OPTIONS, as a dispatcher or an SBC probes.
    pub fn send_options(&self, call_id: &str) {
        let message = format!(
            "OPTIONS sip:ivr@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {ip}:{port};branch=z9hG4bKopt{call_id};rport\r\nFrom: <sip:raw@{ip}>;tag=opt\r\nTo: <sip:ivr@{target}>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            target = self.target,
            ip = self.host(),
            port = self.sip_port(),
        );
        self.sip.send_to(message.as_bytes(), &self.target).unwrap();
    }

    /// Answers a request the IVR sent (its BYE) with 200 OK.
    pub fn answer_ok(&self, request: &str) {
        let mut out = String::from("SIP/2.0 200 OK\r\n");
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            for line in request.split("\r\n") {
                if line
                    .split_once(':')
                    .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
                {
                    out.push_str(line);
                    out.push_str("\r\n");
                }
            }
        }
        out.push_str("Content-Length: 0\r\n\r\n");
        self.sip.send_to(out.as_bytes(), &self.target).unwrap();
    }

    /// Waits for the IVR's BYE and answers it with 200: when it came, or `None`.
    pub fn await_bye(&self, within: Duration) -> Option<Instant> {
        let start = Instant::now();
        while start.elapsed() < within {
            if let Some(message) = self.receive(Duration::from_millis(100)) {
                if message.starts_with("BYE ") {
                    self.answer_ok(&message);
                    return Some(Instant::now());
                }
            }
        }
        None
    }

    pub fn bye(&self, call: &Answered) {
        self.send_in_dialog("BYE", &call.call_id, &call.to, 2);
    }

    /// Sends `packets` of PCMU silence, 20 ms apart, to the IVR's `rtp_port`: a phone that
    /// speaks, so symmetric RTP can find it.
    pub fn speak(&self, rtp_port: u16, packets: u16) {
        for seq in 0..packets {
            let packet = pcmu_packet(seq, PHONE_SSRC, PCMU_SILENCE);
            self.rtp.send_to(&packet, ("127.0.0.1", rtp_port)).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Presses `keys` as RFC 4733 events from the phone's RTP socket to the IVR's `rtp_port`:
    /// per key three packets while held and three redundant Ends, 20 ms apart, 150 ms between
    /// keys, as a phone does.
    pub fn press(&self, rtp_port: u16, keys: &str) {
        static SEQ: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(1);
        let to = ("127.0.0.1", rtp_port);
        for (n, key) in keys.chars().enumerate() {
            let event = match key {
                '0'..='9' => key as u8 - b'0',
                '*' => 10,
                '#' => 11,
                _ => continue,
            };
            let timestamp = 8000 * (n as u32 + 1);
            for step in 0..6u16 {
                let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let end = if step >= 3 { 0x80 } else { 0 };
                let duration = 160 * (step.min(3) + 1);
                let mut packet = vec![0x80, 101];
                packet.extend_from_slice(&seq.to_be_bytes());
                packet.extend_from_slice(&timestamp.to_be_bytes());
                packet.extend_from_slice(&PHONE_SSRC.to_be_bytes());
                packet.extend_from_slice(&[event, end | 10]);
                packet.extend_from_slice(&duration.to_be_bytes());
                self.rtp.send_to(&packet, to).unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// Counts the call's audio frames that are not silence until the IVR's BYE (answered), or
    /// `None` when no BYE came within `within`.
    pub fn audio_until_bye(&self, within: Duration) -> Option<usize> {
        let rtp = self.rtp.try_clone().unwrap();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let counter = {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                let mut heard = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok((n, _)) = rtp.recv_from(&mut buf) {
                        if n > 12 && buf[12..n].iter().any(|&b| b != PCMU_SILENCE) {
                            heard += 1;
                        }
                    }
                }
                heard
            })
        };
        let bye = self.await_bye(within);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let heard = counter.join().unwrap();
        bye.map(|_| heard)
    }

    /// Listens to the call's audio until a frame that is not silence arrives (a prompt).
    pub fn hears_prompt(&self, within: Duration) -> bool {
        let start = Instant::now();
        let mut buf = [0u8; 2048];
        while start.elapsed() < within {
            if let Ok((n, _)) = self.rtp.recv_from(&mut buf) {
                if n > 12 && buf[12..n].iter().any(|&b| b != PCMU_SILENCE) {
                    return true;
                }
            }
        }
        false
    }
}

fn rand_branch() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    nanos ^ NEXT.fetch_add(1, Ordering::Relaxed) << 40
}

/// Every even port of the IVR's RTP range (and the odd one above it) can be bound: the IVR
/// holds none of them.
pub fn rtp_ports_all_free(ivr: &Ivr) -> Result<(), u16> {
    let (first, last) = ivr.rtp;
    for port in (first..last).step_by(2) {
        for p in [port, port + 1] {
            if UdpSocket::bind(("127.0.0.1", p)).is_err() {
                return Err(p);
            }
        }
    }
    Ok(())
}

/// Waits up to `within` for every RTP port to be free again.
pub fn wait_rtp_ports_free(ivr: &Ivr, within: Duration) -> Result<(), u16> {
    let start = Instant::now();
    loop {
        match rtp_ports_all_free(ivr) {
            Ok(()) => return Ok(()),
            Err(p) if start.elapsed() >= within => return Err(p),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The SSRC a `RawPhone` sends its audio under.
pub const PHONE_SSRC: u32 = 0x5eed;

/// One 20 ms PCMU packet numbered `seq`, its 160 payload bytes all `byte`.
pub fn pcmu_packet(seq: u16, ssrc: u32, byte: u8) -> Vec<u8> {
    let mut packet = vec![0x80, 0];
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&(160 * u32::from(seq)).to_be_bytes());
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet.extend_from_slice(&[byte; 160]);
    packet
}
