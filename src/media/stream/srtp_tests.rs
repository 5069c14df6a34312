//! One SRTP stream on a real pacer: what the caller hears is encrypted, and only keys sealed
//! with the caller's own key, never replayed or altered, are heard.

use super::*;
use crate::media::pacer::Pacer;
use crate::media::srtp::{Inbound, InboundKey, MasterKey, Outbound, Suite};
use crate::metrics::Reason;
use crate::testing::free_port_pool;
use rtp_rs::RtpPacketBuilder;

fn inbound(master: &MasterKey) -> Inbound {
    let key = InboundKey {
        master: master.clone(),
        mki: None,
        lifetime: 1 << 48,
    };
    Inbound::new(Suite::AesCm128HmacSha1_80, &key)
}

fn sealed_key(out: &mut Outbound, seq: u16, timestamp: u32, event: u8) -> Vec<u8> {
    let mut buf = [0u8; 64];
    let len = RtpPacketBuilder::new()
        .payload_type(101)
        .ssrc(77)
        .sequence(Seq::from(seq))
        .timestamp(timestamp)
        .payload(&[event, 0x80 | 10, 0, 160])
        .build_into(&mut buf)
        .unwrap();
    let len = out.protect_rtp(&mut buf, len).unwrap();
    buf[..len].to_vec()
}

#[tokio::test]
async fn an_srtp_call_is_encrypted_both_ways_and_refuses_replays_and_forgeries() {
    let dir = crate::testing::TempDir::new("srtp-stream");
    let library = Arc::new(PromptLibrary::load(dir.path(), &[Codec::Pcmu]).unwrap());
    let pool = free_port_pool(1);
    let lease = pool.lease().unwrap();
    let stream_addr = SocketAddr::new("127.0.0.1".parse().unwrap(), lease.port());
    let phone = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let pacer = Pacer::start(1, false, true).unwrap();
    let remote = Some(phone.local_addr().unwrap());
    let (commands, mut events) = pacer.start_test_call(lease, remote, library.clone());
    let (ours, theirs) = (MasterKey::random(), MasterKey::random());
    let params = MediaParams {
        codec: Codec::Pcmu,
        payload_type: 0,
        telephone_event: Some(101),
        remote,
        send: true,
        peer_sends: true,
        inband: false,
        srtp: Some(SrtpKeys {
            suite: Suite::AesCm128HmacSha1_80,
            outbound: ours.clone(),
            inbound: InboundKey {
                master: theirs.clone(),
                mki: None,
                lifetime: 1 << 48,
            },
        }),
        rtcp_mux: false,
        remote_rtcp: None,
    };
    commands.send(MediaCommand::Update(params)).unwrap();
    commands.send(MediaCommand::Confirmed).unwrap();

    let mut hears = inbound(&ours);
    let silence = library.silence(Codec::Pcmu);
    let mut buf = [0u8; 1500];
    for _ in 0..5 {
        let (n, _) = phone.recv_from(&mut buf).await.unwrap();
        assert_eq!(
            n,
            12 + silence.len() + 10,
            "header, payload and an 80-bit tag"
        );
        assert_ne!(
            &buf[12..12 + silence.len()],
            &silence[..],
            "silence is not sent in clear"
        );
        let checked = hears
            .check_rtp(&buf[..n])
            .expect("our packets authenticate");
        let len = hears.accept_rtp(&checked, &mut buf[..n]);
        assert_eq!(&buf[12..len], &silence[..]);
    }

    let refused_before = refused_total();
    let mut caller = Outbound::new(Suite::AesCm128HmacSha1_80, &theirs);
    let five = sealed_key(&mut caller, 1, 8000, 5);
    phone.send_to(&five, stream_addr).await.unwrap();
    let heard = events.recv().await;
    assert_eq!(
        heard,
        Some(MediaEvent::Digit {
            digit: '5',
            source: DigitSource::Rfc4733
        })
    );

    let mut stranger = Outbound::new(Suite::AesCm128HmacSha1_80, &MasterKey::random());
    let mut tampered = sealed_key(&mut caller, 2, 16000, 7);
    tampered[13] ^= 0x01;
    let plain_nine = {
        let mut b = [0u8; 64];
        let len = RtpPacketBuilder::new()
            .payload_type(101)
            .ssrc(77)
            .sequence(Seq::from(3))
            .timestamp(24000)
            .payload(&[9, 0x80 | 10, 0, 160])
            .build_into(&mut b)
            .unwrap();
        b[..len].to_vec()
    };
    for attack in [
        five.clone(),
        sealed_key(&mut stranger, 4, 32000, 9),
        tampered,
        plain_nine,
    ] {
        phone.send_to(&attack, stream_addr).await.unwrap();
    }
    let three = sealed_key(&mut caller, 5, 40000, 3);
    phone.send_to(&three, stream_addr).await.unwrap();
    let heard = events.recv().await;
    assert_eq!(
        heard,
        Some(MediaEvent::Digit {
            digit: '3',
            source: DigitSource::Rfc4733
        }),
        "none of the replayed, forged, tampered or plain keys was heard"
    );
    // The stream adds its tallies to the metrics at the end of the visit that heard the '3'.
    let counted = async {
        while refused_total() < refused_before + 4 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    };
    assert!(
        tokio::time::timeout(std::time::Duration::from_secs(2), counted)
            .await
            .is_ok(),
        "each refusal counted"
    );
    drop(commands);
    while events.recv().await.is_some() {}
}

fn refused_total() -> u64 {
    ["forged", "replayed", "malformed"]
        .into_iter()
        .map(|reason| METRICS.srtp_refused.get_or_create(&Reason { reason }).get())
        .sum()
}
