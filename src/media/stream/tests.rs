//! One stream on a real pacer and loopback sockets: prompts, keys, barge-in, and strangers.

use super::*;
use crate::media::pacer::Pacer;
use crate::testing::{free_port_pool, write_wav, TempDir};
use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};
use std::path::Path;

/// A library with one 5-frame prompt.
fn library() -> Arc<PromptLibrary> {
    let dir = TempDir::new("stream");
    let beep = (0..780).map(|i| if i % 2 == 0 { 8000 } else { -8000 });
    write_wav(&dir.path().join("beep.wav"), 8000, 1, beep);
    Arc::new(PromptLibrary::load(dir.path(), &[Codec::Pcmu]).unwrap())
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
    let pool = free_port_pool(1);
    let lease = pool.lease().unwrap();
    let stream_addr = SocketAddr::new("127.0.0.1".parse().unwrap(), lease.port());
    let phone = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let pacer = Pacer::start(1, false, true).unwrap();
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
    let pool = free_port_pool(1);
    let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let pacer = Pacer::start(1, false, true).unwrap();
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
    let pool = free_port_pool(1);
    let lease = pool.lease().unwrap();
    let stream_addr = SocketAddr::new("127.0.0.1".parse().unwrap(), lease.port());
    let phone = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let stranger = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let pacer = Pacer::start(1, false, true).unwrap();
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
    let pool = free_port_pool(1);
    let victim = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let pacer = Pacer::start(1, false, true).unwrap();
    let (commands, mut events) = pacer.start_test_call(
        pool.lease().unwrap(),
        Some(victim.local_addr().unwrap()),
        lib,
    );
    let mut buf = [0u8; 1500];
    let sent = tokio::time::timeout(Duration::from_millis(300), victim.recv_from(&mut buf)).await;
    assert!(sent.is_err(), "no RTP to the SDP's address before the ACK");
    commands.send(MediaCommand::Confirmed).unwrap();
    let sent = tokio::time::timeout(Duration::from_millis(300), victim.recv_from(&mut buf)).await;
    assert!(sent.is_ok(), "RTP flows once the ACK confirmed the caller");
    drop(commands);
    assert_eq!(events.recv().await, None);
}

#[tokio::test]
async fn a_strangers_flood_leaves_the_callers_keys_heard() {
    let lib = library();
    let pool = free_port_pool(1);
    let lease = pool.lease().unwrap();
    let stream_addr = SocketAddr::new("127.0.0.1".parse().unwrap(), lease.port());
    let phone = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let stranger = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let pacer = Pacer::start(1, false, true).unwrap();
    let (commands, mut events) =
        pacer.start_test_call(lease, Some(phone.local_addr().unwrap()), lib.clone());
    commands.send(MediaCommand::Confirmed).unwrap();
    phone
        .send_to(&key_packet(7, 1, 5), stream_addr)
        .await
        .unwrap();
    assert!(matches!(
        events.recv().await,
        Some(MediaEvent::Digit { digit: '5', .. })
    ));
    // Far over the per-frame budget: on a ring the stream's receive is stopped until its next
    // visit, and must be armed again then, or the caller would go unheard.
    for seq in 0..3000u16 {
        let _ = stranger.send_to(&key_packet(99, seq, 1), stream_addr);
    }
    tokio::time::sleep(Duration::from_millis(60)).await;
    phone
        .send_to(&key_packet(7, 2, 8), stream_addr)
        .await
        .unwrap();
    let heard = tokio::time::timeout(Duration::from_secs(2), events.recv()).await;
    assert!(
        matches!(heard, Ok(Some(MediaEvent::Digit { digit: '8', .. }))),
        "the caller's next key is heard, none of the stranger's: {heard:?}"
    );
}
