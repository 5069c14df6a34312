//! Encrypted calls end to end: baresip over TLS with mandatory SRTP runs the whole conversation
//! while tcpdump shows that neither the prompts nor the keys crossed loopback readable; and a
//! plain offer is refused when encryption is mandatory.

use crate::support;

use std::path::PathBuf;
use std::time::Duration;

use support::audio::{active_span, read_recording};
use support::baresip::{self, Secure};
use support::capture::{Capture, Datagram};
use support::linphone::Linphone;
use support::raw::{header, status, RawPhone};
use support::{assert_conversation, free_port, Ivr, TempDir};

/// A self-signed certificate for 127.0.0.1: (certificate, key, certificate+key) PEM files.
fn certificate(dir: &TempDir) -> (PathBuf, PathBuf, PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    // linphonec (mbedTLS) takes a self-signed certificate as its own trust anchor only as a CA,
    // and matches the host it dialled against DNS names only, not IP addresses.
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let host = rcgen::SanType::DnsName("127.0.0.1".try_into().unwrap());
    params.subject_alt_names.push(host);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "127.0.0.1");
    let cert = params.self_signed(&key).unwrap();
    let paths = ["cert.pem", "key.pem", "both.pem"].map(|n| dir.0.join(n));
    std::fs::write(&paths[0], cert.pem()).unwrap();
    std::fs::write(&paths[1], key.serialize_pem()).unwrap();
    std::fs::write(&paths[2], cert.pem() + &key.serialize_pem()).unwrap();
    let [cert, key, both] = paths;
    (cert, key, both)
}

/// Plain G.711 carries runs of one byte value (silence is 0xff or 0xd5 for a whole frame, quiet
/// passages nearly so); keystream output has none that long.
fn readable_g711(payload: &[u8]) -> bool {
    payload.windows(12).any(|w| w.iter().all(|&b| b == w[0]))
}

fn rtp_payload(d: &Datagram) -> &[u8] {
    &d.payload[12.min(d.payload.len())..]
}

#[test]
fn the_readability_check_catches_plain_g711() {
    assert!(readable_g711(&[0xff; 160]));
    assert!(readable_g711(
        &[&[0x12, 0x34][..], &[0xd5; 40], &[0x56][..]].concat()
    ));
    let keystream: Vec<u8> = (0u32..160)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    assert!(!readable_g711(&keystream));
}

#[test]
fn baresip_over_tls_and_mandatory_srtp_completes_the_conversation_unreadable_on_the_wire() {
    let dir = TempDir::new("srtp-baresip");
    let (ivr, tls_port, cert, both) = secure_ivr("srtp-baresip", &dir);
    let capture = Capture::start(dir.0.join("call.pcap"), ivr.rtp);
    let secure = Secure {
        tls: Some((both, cert)),
        mediaenc: Some("srtp-mand"),
        ..Secure::default()
    };
    let target = format!("sip:ivr@127.0.0.1:{tls_port};transport=tls");
    let (mut phone, ctrl) = baresip::call(&dir.0, &target, 45, &secure);
    ivr.wait_for_line(
        &["session negotiated", "srtp=true"],
        Duration::from_secs(15),
    );
    ivr.wait_for_log("call confirmed", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    baresip::press(ctrl, "24680#1357#19");
    assert_conversation(&ivr, "24680", &["1", "9"]);
    ivr.wait_for_line(&["rtp pacing", "srtp_refused=none"], Duration::from_secs(5));
    let _ = baresip::command(ctrl, "quit", "");
    let _ = phone.wait();
    let packets = capture.stop();

    let recording = baresip::heard(&dir.0).expect("baresip wrote no recording of what it heard");
    let (heard, rate) = read_recording(&recording);
    let span = active_span(&heard, rate);
    assert!(
        span > 5.0,
        "baresip decrypted and heard the prompts ({span:.1} s)"
    );

    let in_range = |port: u16| (ivr.rtp.0..=ivr.rtp.1).contains(&port);
    let ours: Vec<&Datagram> = packets
        .iter()
        .filter(|d| in_range(d.from_port) && d.from_port % 2 == 0)
        .collect();
    // Our RTCP leaves from the odd port as SRTCP: the E flag set and the CNAME unreadable.
    let our_rtcp: Vec<&Datagram> = packets
        .iter()
        .filter(|d| in_range(d.from_port) && d.from_port % 2 == 1)
        .collect();
    assert!(!our_rtcp.is_empty(), "we sent RTCP");
    for d in &our_rtcp {
        let p = &d.payload;
        assert!(matches!(p[1], 200 | 201), "a report first: {p:02x?}");
        assert!(p[p.len() - 14] & 0x80 != 0, "the SRTCP E flag: {p:02x?}");
        assert!(
            !p.windows(4).any(|w| w == b"ivr-"),
            "CNAME in clear: {p:02x?}"
        );
    }
    let theirs: Vec<&Datagram> = packets.iter().filter(|d| in_range(d.to_port)).collect();
    assert!(
        ours.len() > 200,
        "the capture saw our media ({} packets)",
        ours.len()
    );
    for d in &ours {
        assert_eq!(
            d.payload.len(),
            12 + 160 + 10,
            "PCMU frame with an 80-bit tag"
        );
        assert!(
            !readable_g711(rtp_payload(d)),
            "a plain G.711 frame on the wire"
        );
    }
    // telephone-event packets keep their payload type in the clear header, never their event.
    let events: Vec<&[u8]> = theirs
        .iter()
        .filter(|d| d.payload.len() > 12 && d.payload[1] & 0x7f >= 96)
        .map(|d| rtp_payload(d))
        .filter(|p| p.len() == 4 + 10)
        .collect();
    assert!(
        events.len() >= 13,
        "every key crossed the wire ({})",
        events.len()
    );
    let plausible = events
        .iter()
        .filter(|p| p[0] <= 16 && p[2..4] != [0, 0])
        .count();
    assert!(
        plausible * 3 < events.len(),
        "{plausible} of {} key packets read as plain RFC 4733 events",
        events.len()
    );
}

/// The IVR with a TLS listener and mandatory SRTP; the TLS port and the certificate.
fn secure_ivr(tag: &str, dir: &TempDir) -> (Ivr, u16, PathBuf, PathBuf) {
    let (cert, key, both) = certificate(dir);
    let tls_port = free_port();
    let ivr = Ivr::start(
        tag,
        &[
            ("IVR_SIP__TLS_LISTEN", &format!("127.0.0.1:{tls_port}")),
            ("IVR_TLS__CERT_FILE", cert.to_str().unwrap()),
            ("IVR_TLS__KEY_FILE", key.to_str().unwrap()),
            ("IVR_RTP__ENCRYPTION", "mandatory"),
        ],
    );
    (ivr, tls_port, cert, both)
}

#[test]
fn linphonec_over_tls_and_mandatory_srtp_logs_in_and_hears_the_prompts() {
    let dir = TempDir::new("srtp-linphone");
    let (ivr, tls_port, cert, _) = secure_ivr("srtp-linphone", &dir);
    let mut phone = Linphone::start(&dir.0, Some(&cert));
    phone.say(&format!("call sip:ivr@127.0.0.1:{tls_port};transport=tls"));
    ivr.wait_for_line(
        &["session negotiated", "srtp=true"],
        Duration::from_secs(15),
    );
    ivr.wait_for_log("call confirmed", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(700));
    for key in "12345#2468#19".chars() {
        phone.say(&key.to_string());
        std::thread::sleep(Duration::from_millis(400));
    }
    assert_conversation(&ivr, "12345", &["1", "9"]);
    // linphonec repeats each key's final packet under one sequence number: SRTP replays.
    ivr.wait_for_log("rtp pacing", Duration::from_secs(5));
    let pacing = ivr.log_text();
    let line = pacing.lines().find(|l| l.contains("rtp pacing")).unwrap();
    assert!(
        !line.contains("forged") && !line.contains("malformed"),
        "{line}"
    );
    phone.quit();
    let (heard, rate) = read_recording(&dir.0.join("rec.wav"));
    let span = active_span(&heard, rate);
    assert!(
        span > 5.0,
        "linphonec decrypted and heard the prompts ({span:.1} s)"
    );
}

#[test]
fn a_plain_offer_is_refused_when_encryption_is_mandatory() {
    let dir = TempDir::new("srtp-mandatory");
    let (ivr, ..) = secure_ivr("srtp-mandatory", &dir);
    let phone = RawPhone::new("127.0.0.1", &ivr);
    let reply = phone
        .final_response("plain-offer", Duration::from_secs(5))
        .expect("a final response");
    assert_eq!(status(&reply), 488, "{reply}");
    let warning = header(&reply, "Warning").unwrap_or_default();
    assert!(
        warning.contains("mandatory"),
        "the Warning says why: {reply}"
    );
    ivr.wait_for_line(&["offer refused", "mandatory"], Duration::from_secs(2));
}
