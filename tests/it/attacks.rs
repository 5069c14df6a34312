//! An attacker on the internet, played on loopback: forged keys and audio aimed at a live
//! call, a TCP message whose length wraps, INVITEs that aim our RTP at a third party, a flood
//! of never-ACKed INVITEs, and SIPVicious' scans. 127.0.0.2 stands for another host.

use crate::support;
use support::process::Peer;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use support::keys::{is_root, pcap_scenario};
use support::raw::{header, retry_after, status, wait_rtp_ports_free, RawPhone};
use support::{assert_conversation, assert_sipp_file_ok, require_tool, Ivr, TempDir};

const ATTACKER: &str = "127.0.0.2";

/// An RFC 4733 packet for `event` (or PCMU audio when `event` is None) from the attacker.
fn forged(ssrc: u32, seq: u16, event: Option<u8>) -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, 0, 0, 0, 0x1f, 0x40];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    match event {
        Some(e) => {
            p[1] = 101;
            p.extend_from_slice(&[e, 10, 0, 160]);
        }
        None => p.extend_from_slice(&[0x55; 160]),
    }
    p
}

#[test]
fn a_stranger_cannot_type_into_a_call_or_take_its_audio() {
    assert!(
        is_root(),
        "pcap replay needs a raw socket: run the tests as root"
    );
    let ivr = Ivr::start("attack-keys", &[]);
    let stranger = UdpSocket::bind((ATTACKER, 0)).unwrap();
    stranger.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // The attacker sprays every RTP port of the IVR (they are in the 200 OK and sequential)
    // at 100 packets a second each: in-sequence runs of forged keys 9 and 0, and loud audio,
    // on its own SSRC and on a guess of the caller's.
    let spray = {
        let stop = stop.clone();
        let stranger = stranger.try_clone().unwrap();
        let (first, last) = ivr.rtp;
        thread::spawn(move || {
            let mut seq: u16 = 0;
            let mut received = 0;
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                seq = seq.wrapping_add(1);
                for port in (first..last).step_by(2) {
                    let to = SocketAddr::from(([127, 0, 0, 1], port));
                    let event = match seq % 3 {
                        0 => Some(9),
                        1 => Some(0),
                        _ => None,
                    };
                    for ssrc in [0x5eed, 0x0e05_384e] {
                        let _ = stranger.send_to(&forged(ssrc, seq, event), to);
                    }
                }
                while stranger.recv_from(&mut buf).is_ok() {
                    received += 1;
                }
                thread::sleep(Duration::from_millis(10));
            }
            received
        })
    };
    let dir = TempDir::new("attack-keys");
    assert_sipp_file_ok(&ivr, &pcap_scenario(&dir, "12345#2468#9"), &[]);
    stop.store(true, Ordering::Relaxed);
    let received = spray.join().unwrap();
    assert_conversation(&ivr, "12345", &["9"]);
    assert_eq!(received, 0, "no RTP reached the attacker");
    // The attack did reach the call's port: the stream counted and dropped it.
    ivr.wait_for_log("rtp pacing", Duration::from_secs(5));
    let dropped = ivr
        .log_text()
        .lines()
        .filter(|l| l.contains("rtp pacing"))
        .find_map(|l| {
            l.split("foreign_packets=")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(0);
    assert!(
        dropped > 100,
        "the forged packets were dropped, not missed ({dropped})"
    );
}

fn tcp_options(ivr: &Ivr, content_length: &str) -> (String, bool) {
    let mut stream = TcpStream::connect(ivr.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let local = stream.local_addr().unwrap();
    let head = format!(
        "OPTIONS sip:ivr@{target} SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bKwrap\r\nFrom: <sip:a@{local}>;tag=w\r\nTo: <sip:ivr@{target}>\r\nCall-ID: wrap@test\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: ",
        target = ivr.addr()
    );
    let message = format!("{head}{content_length}\r\n\r\n");
    stream.write_all(message.as_bytes()).unwrap();
    let mut reply = Vec::new();
    let closed = stream.read_to_end(&mut reply).is_ok();
    (String::from_utf8_lossy(&reply).into_owned(), closed)
}

#[test]
fn a_content_length_that_wraps_gets_413_and_a_closed_connection_and_no_spin() {
    let ivr = Ivr::start("attack-wrap", &[]);
    let head_len = |cl: &str| {
        // The length of the header block with this Content-Length value, CRLFCRLF included.
        let local_guess = "127.0.0.1:65535";
        format!(
            "OPTIONS sip:ivr@{t} SIP/2.0\r\nVia: SIP/2.0/TCP {local_guess};branch=z9hG4bKwrap\r\nFrom: <sip:a@{local_guess}>;tag=w\r\nTo: <sip:ivr@{t}>\r\nCall-ID: wrap@test\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: {cl}\r\n\r\n",
            t = ivr.addr()
        )
        .len() as u64
    };
    // 2^64 minus the header length wraps head + body to (about) zero; 2^64 - 1 to a small number.
    let wrap_to_zero = (u64::MAX - head_len("18446744073709551000") + 1).to_string();
    for value in [wrap_to_zero.as_str(), "18446744073709551615", "99999999"] {
        let (reply, closed) = tcp_options(&ivr, value);
        assert_eq!(status(&reply), 413, "Content-Length {value}: {reply}");
        assert!(closed, "the connection is closed after the 413");
    }
    let before = ivr.cpu_time();
    thread::sleep(Duration::from_secs(1));
    let spent = ivr.cpu_time() - before;
    assert!(
        spent < Duration::from_millis(200),
        "the IVR is idle afterwards, not spinning ({spent:?} CPU in 1 s)"
    );
    let phone = RawPhone::new("127.0.0.1", &ivr);
    let options = format!(
        "OPTIONS sip:ivr@{t} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bKafter;rport\r\nFrom: <sip:a@{l}>;tag=a\r\nTo: <sip:ivr@{t}>\r\nCall-ID: after@test\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        t = ivr.addr(),
        l = phone.sip.local_addr().unwrap()
    );
    phone.sip.send_to(options.as_bytes(), ivr.addr()).unwrap();
    let reply = phone.receive(Duration::from_secs(2)).unwrap_or_default();
    assert_eq!(status(&reply), 200, "OPTIONS still answered: {reply}");
}

#[test]
fn a_never_acked_invite_sends_no_rtp_to_the_address_its_sdp_names() {
    let ivr = Ivr::start_with_ports(
        "attack-reflect",
        &[("IVR_ADMISSION__ACK_WAIT_MS", "1500")],
        2,
    );
    let victim = UdpSocket::bind("127.0.0.1:0").unwrap();
    victim
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let forger = RawPhone::new(ATTACKER, &ivr);
    forger.send_invite("reflect-1", Some(victim.local_addr().unwrap()));
    let reply = forger
        .final_response("reflect-1", Duration::from_secs(3))
        .unwrap_or_default();
    assert_eq!(
        status(&reply),
        200,
        "the forged INVITE is answered: {reply}"
    );
    let start = Instant::now();
    let mut packets = 0;
    let mut buf = [0u8; 2048];
    while start.elapsed() < Duration::from_secs(4) {
        if victim.recv_from(&mut buf).is_ok() {
            packets += 1;
        }
    }
    assert_eq!(packets, 0, "the third party received RTP");
    // The port came back well before Timer H (32 s): the next caller gets it.
    assert_eq!(wait_rtp_ports_free(&ivr, Duration::from_secs(2)), Ok(()));
    let phone = RawPhone::new("127.0.0.1", &ivr);
    let call = phone
        .call("after-reflect")
        .expect("the only port is free again");
    assert!(phone.hears_prompt(Duration::from_secs(3)));
    phone.bye(&call);
}

#[test]
fn an_acked_call_whose_sdp_names_a_third_party_sends_it_two_seconds_at_most() {
    let ivr = Ivr::start_with_ports("attack-reflect-acked", &[], 2);
    let victim = UdpSocket::bind("127.0.0.1:0").unwrap();
    victim
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let forger = RawPhone::new(ATTACKER, &ivr);
    forger.send_invite("reflect-2", Some(victim.local_addr().unwrap()));
    let reply = forger
        .final_response("reflect-2", Duration::from_secs(3))
        .unwrap_or_default();
    assert_eq!(status(&reply), 200, "{reply}");
    forger.ack("reflect-2", header(&reply, "To").unwrap());
    let acked = Instant::now();
    let (mut early, mut late) = (0, 0);
    let mut buf = [0u8; 2048];
    while acked.elapsed() < Duration::from_secs(5) {
        if victim.recv_from(&mut buf).is_ok() {
            if acked.elapsed() < Duration::from_millis(2500) {
                early += 1;
            } else {
                late += 1;
            }
        }
    }
    assert!(early <= 110, "{early} packets in the first 2.5 s");
    assert_eq!(late, 0, "RTP went on to an address that never spoke");
}

#[test]
fn a_flood_of_never_acked_invites_does_not_keep_callers_out() {
    // 20 port pairs. The flood: 300 INVITEs at 50 a second from one address, never ACKed.
    let ivr = Ivr::start_with_ports("attack-flood", &[], 40);
    let flooder = Arc::new(RawPhone::new(ATTACKER, &ivr));
    let flood = {
        let flooder = flooder.clone();
        thread::spawn(move || {
            let start = Instant::now();
            let mut refusals = Vec::new();
            for i in 0..300u32 {
                let due = start + Duration::from_millis(20 * u64::from(i));
                while Instant::now() < due {
                    if let Some(reply) = flooder.receive(Duration::from_millis(1)) {
                        if status(&reply) == 503 {
                            refusals.push(retry_after(&reply));
                        }
                    }
                }
                flooder.send_invite(&format!("flood-{i}"), None);
            }
            while let Some(reply) = flooder.receive(Duration::from_millis(300)) {
                if status(&reply) == 503 {
                    refusals.push(retry_after(&reply));
                }
            }
            refusals
        })
    };
    // Meanwhile, callers from another address, one after another.
    thread::sleep(Duration::from_millis(500));
    let mut answered = 0;
    for i in 0..8 {
        let phone = RawPhone::new("127.0.0.1", &ivr);
        let call = phone
            .call(&format!("caller-{i}"))
            .unwrap_or_else(|refusal| {
                panic!("caller {i} was refused during the flood:\n{refusal}")
            });
        assert!(
            phone.hears_prompt(Duration::from_secs(3)),
            "caller {i} hears the prompt"
        );
        phone.bye(&call);
        answered += 1;
        thread::sleep(Duration::from_millis(300));
    }
    let refusals = flood.join().unwrap();
    assert_eq!(answered, 8);
    assert!(!refusals.is_empty(), "the flood was refused");
    assert!(
        refusals.iter().all(|r| r.is_some_and(|s| s >= 1)),
        "every 503 carries Retry-After"
    );
}

#[test]
fn sipvicious_scans_complete_and_leave_no_port_held() {
    require_tool("svwar", "sipvicious");
    let ivr = Ivr::start_with_ports("attack-svwar", &[], 40);
    let port = ivr.port.to_string();
    let map = std::process::Command::new("svmap")
        .args(["-p", &port, "127.0.0.1"])
        .output()
        .expect("run svmap");
    assert!(
        map.status.success(),
        "svmap: {}",
        String::from_utf8_lossy(&map.stderr)
    );
    assert!(
        String::from_utf8_lossy(&map.stdout).contains("127.0.0.1"),
        "svmap found the IVR:\n{}",
        String::from_utf8_lossy(&map.stdout)
    );
    let scanner_port = support::free_port().to_string();
    let war = Peer::spawn(
        std::process::Command::new("svwar")
            .args([
                "-m",
                "INVITE",
                "-e",
                "100-400",
                "-p",
                &port,
                "-P",
                &scanner_port,
            ])
            .args(["--force", "127.0.0.1"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
    )
    .expect("run svwar");
    // A caller from another address during the scan is answered and hears the prompt.
    thread::sleep(Duration::from_millis(500));
    let phone = RawPhone::new("127.0.0.2", &ivr);
    let call = phone
        .call("during-scan")
        .expect("a caller during the scan is answered");
    assert!(phone.hears_prompt(Duration::from_secs(3)));
    phone.bye(&call);
    let war = war.wait_with_output().unwrap();
    assert!(
        war.status.success(),
        "svwar: {}",
        String::from_utf8_lossy(&war.stderr)
    );
    // Every call the scan started gives its port back within the ACK wait (4 s), not Timer H.
    assert_eq!(wait_rtp_ports_free(&ivr, Duration::from_secs(6)), Ok(()));
    let phone = RawPhone::new("127.0.0.2", &ivr);
    let call = phone
        .call("after-scan")
        .expect("a caller after the scan is answered");
    assert!(phone.hears_prompt(Duration::from_secs(3)));
    phone.bye(&call);
}
