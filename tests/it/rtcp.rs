//! RTCP with real peers: baresip reads our reports and we read its; a caller on raw sockets
//! checks our SR/RR byte by byte (RFC 3550 §6.4), on the next port up, at an `a=rtcp` address
//! and muxed on the RTP port (RFC 5761), and a stranger's reports change nothing.

use crate::support;
use support::process::Peer;

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::baresip;
use support::raw::{pcmu_packet, Answered, RawPhone, PHONE_SSRC};
use support::{free_port, require_tool, Ivr, TempDir};

/// The stream's end line: its counts and the call's quality.
fn pacing_line(ivr: &Ivr) -> String {
    let log = ivr.log_text();
    let line = log.lines().find(|l| l.contains("rtp pacing"));
    line.expect("the stream's end line").to_string()
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The first RTCP compound packet on `socket` within `within` (RTP on a muxed port is skipped).
fn next_rtcp(socket: &UdpSocket, within: Duration) -> Option<Vec<u8>> {
    let start = Instant::now();
    let mut buf = [0u8; 1500];
    while start.elapsed() < within {
        if let Ok((n, _)) = socket.recv_from(&mut buf) {
            if n >= 8 && (200..=204).contains(&buf[1]) {
                return Some(buf[..n].to_vec());
            }
        }
    }
    None
}

/// The SSRC of the IVR's RTP as the phone receives it.
fn ivr_ssrc(phone: &RawPhone) -> u32 {
    let mut buf = [0u8; 1500];
    loop {
        let (n, _) = phone.rtp.recv_from(&mut buf).expect("the IVR's RTP");
        if n >= 12 && buf[1] & 0x7f == 0 {
            return be32(&buf, 8);
        }
    }
}

/// Checks an SR from `ssrc` with one block on the phone's stream and a CNAME after it; the
/// middle of its NTP time (for the phone to echo).
fn assert_sender_report(packet: &[u8], ssrc: u32, phone_sent: u32) -> u32 {
    assert_eq!(
        packet[0], 0x81,
        "V=2, no padding, one report block: {packet:02x?}"
    );
    assert_eq!(packet[1], 200, "an SR while we send");
    let words = u16::from_be_bytes([packet[2], packet[3]]) as usize;
    assert_eq!(words, 12, "header, sender info and one block: 52 bytes");
    assert_eq!(
        be32(packet, 4),
        ssrc,
        "the SR is from the stream the phone hears"
    );
    let ntp_seconds = be32(packet, 8) as u64;
    let unix_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        ntp_seconds.abs_diff(unix_now + 2_208_988_800) < 5,
        "NTP time is now"
    );
    let packets = be32(packet, 20);
    let octets = be32(packet, 24);
    assert!(packets > 50, "{packets} packets sent");
    assert_eq!(octets, packets * 160, "PCMU: 160 bytes a packet");
    assert_eq!(
        be32(packet, 28),
        PHONE_SSRC,
        "the block is on the phone's stream"
    );
    assert_eq!(
        be32(packet, 32) & 0x00ff_ffff,
        0,
        "nothing lost on loopback"
    );
    let highest = be32(packet, 36);
    assert!(
        highest > 10 && highest < phone_sent,
        "highest seq {highest}"
    );
    let sdes = &packet[52..];
    assert_eq!(sdes[1], 202, "SDES follows the report");
    assert_eq!((sdes[8], &sdes[10..14]), (1, &b"ivr-"[..]), "a CNAME item");
    (be32(packet, 8) << 16) | (be32(packet, 12) >> 16)
}

/// The phone's RR on the IVR's stream: `lost` packets gone, echoing `last_sr` after `held`.
fn phone_report(ivr_ssrc: u32, lost: u32, last_sr: u32, held: Duration) -> Vec<u8> {
    let mut p = vec![0x81, 201, 0, 7];
    p.extend_from_slice(&PHONE_SSRC.to_be_bytes());
    p.extend_from_slice(&ivr_ssrc.to_be_bytes());
    p.extend_from_slice(&(lost & 0x00ff_ffff).to_be_bytes());
    p.extend_from_slice(&1000u32.to_be_bytes());
    p.extend_from_slice(&16u32.to_be_bytes());
    p.extend_from_slice(&last_sr.to_be_bytes());
    let dlsr = (held.as_micros() * 65536 / 1_000_000) as u32;
    p.extend_from_slice(&dlsr.to_be_bytes());
    p
}

fn speak_for(phone: &RawPhone, call: &Answered, packets: u16) -> std::thread::JoinHandle<()> {
    let rtp = phone.rtp.try_clone().unwrap();
    let port = call.rtp_port;
    std::thread::spawn(move || {
        for seq in 0..packets {
            let packet = pcmu_packet(seq, PHONE_SSRC, 0xff);
            let _ = rtp.send_to(&packet, ("127.0.0.1", port));
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

#[test]
fn our_reports_read_byte_by_byte_and_the_callers_give_loss_and_round_trip() {
    let ivr = Ivr::start("rtcp", &[]);
    let mut phone = RawPhone::new("127.0.0.1", &ivr);
    let rtcp = UdpSocket::bind("127.0.0.1:0").unwrap();
    rtcp.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    // RFC 3605: RTCP at a port of the phone's choosing, not the next one up.
    phone.media_lines = format!(
        "a=rtcp:{} IN IP4 127.0.0.1\r\n",
        rtcp.local_addr().unwrap().port()
    );
    let call = phone.call("rtcp-1").expect("answered");
    let speaking = speak_for(&phone, &call, 400);
    let ssrc = ivr_ssrc(&phone);
    let report = next_rtcp(&rtcp, Duration::from_secs(9)).expect("an SR within 7.5 s");
    let last_sr = assert_sender_report(&report, ssrc, 400);

    // A stranger on another address reports on our stream with absurd loss: ignored.
    let stranger = UdpSocket::bind("127.0.0.2:0").unwrap();
    let ivr_rtcp = ("127.0.0.1", call.rtp_port + 1);
    stranger
        .send_to(&phone_report(ssrc, 99_999, 0, Duration::ZERO), ivr_rtcp)
        .unwrap();
    // The phone holds the SR 250 ms before echoing it.
    std::thread::sleep(Duration::from_millis(250));
    rtcp.send_to(
        &phone_report(ssrc, 3, last_sr, Duration::from_millis(250)),
        ivr_rtcp,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    phone.bye(&call);
    let goodbye = next_rtcp(&rtcp, Duration::from_secs(3)).expect("a last report with BYE");
    let mut at = 0;
    let mut types = Vec::new();
    while at + 4 <= goodbye.len() {
        types.push(goodbye[at + 1]);
        at += 4 * (1 + u16::from_be_bytes([goodbye[at + 2], goodbye[at + 3]]) as usize);
    }
    assert_eq!(at, goodbye.len(), "lengths add up");
    assert_eq!(types, [200, 202, 203], "SR, SDES, BYE");
    speaking.join().unwrap();
    ivr.wait_for_line(
        &["rtp pacing", "rtcp_reports=1", "peer_lost=3", "lost=0"],
        Duration::from_secs(3),
    );
    let line = pacing_line(&ivr);
    let rtt: f64 = line
        .split("rtt_ms=")
        .nth(1)
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("a round trip in {line}"));
    // Loopback: the echo came back within 10 ms of the held 250 ms, however late it was read.
    assert!(rtt < 10.0, "rtt {rtt} ms");
}

#[test]
fn a_caller_offering_rtcp_mux_gets_it_and_reports_on_the_rtp_port() {
    let ivr = Ivr::start("rtcp-mux", &[]);
    let mut phone = RawPhone::new("127.0.0.1", &ivr);
    phone.media_lines = "a=rtcp-mux\r\n".into();
    let call = phone.call("rtcp-mux-1").expect("answered");
    assert!(call.answer.contains("a=rtcp-mux\r\n"), "{}", call.answer);
    let speaking = speak_for(&phone, &call, 400);
    let ssrc = ivr_ssrc(&phone);
    let report = next_rtcp(&phone.rtp, Duration::from_secs(9)).expect("an SR on the RTP port");
    let last_sr = assert_sender_report(&report, ssrc, 400);
    std::thread::sleep(Duration::from_millis(10));
    phone
        .rtp
        .send_to(
            &phone_report(ssrc, 2, last_sr, Duration::from_millis(10)),
            ("127.0.0.1", call.rtp_port),
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    phone.bye(&call);
    speaking.join().unwrap();
    ivr.wait_for_line(
        &["rtp pacing", "rtcp_reports=1", "peer_lost=2", "rtt_ms="],
        Duration::from_secs(3),
    );
}

#[test]
fn baresip_reads_our_reports_and_we_read_its() {
    require_tool("baresip", "baresip");
    let ivr = Ivr::start("rtcp-baresip", &[]);
    let dir = TempDir::new("rtcp-baresip");
    // baresip hangs up when its file ends; a call it ends itself prints the summary. Our first
    // SR leaves within 7.5 s (RFC 3550's randomised interval) and baresip's next report up to
    // 7.5 s after that: 20 s leaves room for a report that carries our SR's time back (12 s
    // once came out without a round trip).
    baresip::silence_wav(&dir.0.join("say.wav"), 20);
    let ctrl = free_port();
    baresip::config(&dir.0, free_port(), ctrl, &baresip::Secure::default());
    let config = dir.0.join("config");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("module g711.so", "module g711.so\nmodule rtcpsummary.so"),
    )
    .unwrap();
    let phone = Peer::spawn(
        Command::new("timeout")
            .args(["40", "baresip", "-f", dir.0.to_str().unwrap(), "-e"])
            .arg(format!("/dial sip:ivr@{}", ivr.addr()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .unwrap();
    ivr.wait_for_log("reason=\"caller-bye\"", Duration::from_secs(35));
    std::thread::sleep(Duration::from_millis(500));
    let _ = baresip::command(ctrl, "quit", "");
    let out = phone.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    // baresip's rtcpsummary: PR is what our SRs say we sent, JI's second figure the jitter
    // our RRs say we measured of its stream.
    let summary = text
        .lines()
        .find(|l| l.starts_with("EX=BareSip;"))
        .unwrap_or_else(|| panic!("no RTCP summary from baresip:\n{text}"));
    assert!(!summary.contains("ERROR"), "{summary}");
    let field = |name: &str| -> String {
        summary
            .split(';')
            .find_map(|f| f.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} in {summary}"))
            .to_string()
    };
    let from_our_sr: u32 = field("PR").parse().unwrap();
    assert!(
        from_our_sr > 200,
        "our SR counted {from_our_sr} packets: {summary}"
    );
    assert_eq!(field("PL"), "0,0", "{summary}");
    ivr.wait_for_line(&["rtp pacing", "rtt_ms="], Duration::from_secs(5));
    let line = pacing_line(&ivr);
    assert!(
        !line.contains("rtcp_reports=0"),
        "baresip's reports were read: {line}"
    );
    assert!(line.contains("peer_lost=0"), "{line}");
}

/// Sends the phone's RR (on no stream of ours yet) every 500 ms for `seconds`.
fn report_for(socket: &UdpSocket, port: u16, seconds: u64) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(seconds) {
        socket
            .send_to(&phone_report(0, 0, 0, Duration::ZERO), ("127.0.0.1", port))
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn rtcp_keeps_a_silent_caller_only_when_configured() {
    for keeps_alive in [true, false] {
        let ivr = Ivr::start(
            "rtcp-alive",
            &[
                ("IVR_RTP__INACTIVITY_TIMEOUT_S", "2"),
                ("IVR_RTP__RTCP_KEEPS_ALIVE", &keeps_alive.to_string()),
            ],
        );
        let mut phone = RawPhone::new("127.0.0.1", &ivr);
        let rtcp = UdpSocket::bind("127.0.0.1:0").unwrap();
        phone.media_lines = format!("a=rtcp:{}\r\n", rtcp.local_addr().unwrap().port());
        let call = phone.call("alive-1").expect("answered");
        // No RTP at all: only reports, for twice the timeout.
        report_for(&rtcp, call.rtp_port + 1, 4);
        let hung_up = ivr.log_text().contains("no RTP from the caller");
        assert_eq!(hung_up, !keeps_alive, "keeps_alive={keeps_alive}");
        if keeps_alive {
            // Once the reports stop too, the caller is gone.
            ivr.wait_for_log("no RTP from the caller", Duration::from_secs(4));
        }
    }
}
