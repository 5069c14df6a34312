//! The negotiation table from the call-core issue: each row is an offer and what must happen.

use super::*;

const PCMU: &[Codec] = &[Codec::Pcmu, Codec::Pcma];

pub(super) fn local() -> LocalMedia {
    LocalMedia {
        ip: "192.0.2.10".parse().unwrap(),
        port: 30000,
        session_id: 42,
        version: 1,
        telephone_event: true,
        encryption: Encryption::Optional,
        keys_may_travel: false,
        key: MasterKey::random(),
    }
}

pub(super) fn sdp(media: &str) -> Vec<u8> {
    format!(
        "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n{media}"
    )
    .into_bytes()
}

const LINPHONE: &str = "m=audio 7078 RTP/AVP 96 97 98 0 8 18 99 100 101\r\n\
a=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\na=rtpmap:97 speex/16000\r\n\
a=rtpmap:98 speex/8000\r\na=rtpmap:18 G729/8000\r\na=rtpmap:99 telephone-event/48000\r\n\
a=rtpmap:100 telephone-event/16000\r\na=rtpmap:101 telephone-event/8000\r\n";

#[test]
fn pcmu_only_offer_is_answered_with_pcmu_and_its_event_type() {
    let offer = sdp("m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n");
    let (n, body) = answer(&offer, PCMU, &local()).unwrap();
    assert_eq!(
        (n.codec, n.payload_type, n.telephone_event),
        (Codec::Pcmu, 0, Some(101))
    );
    assert_eq!(n.remote, Some("198.51.100.7:4000".parse().unwrap()));
    assert!(body.contains("m=audio 30000 RTP/AVP 0 101\r\n"), "{body}");
    assert!(body.contains("a=rtpmap:101 telephone-event/8000\r\n"));
    assert!(body.contains("a=ptime:20\r\n"));
    assert!(body.contains("c=IN IP4 192.0.2.10\r\n"));
}

#[test]
fn pcma_only_offer_is_answered_with_pcma() {
    let offer = sdp("m=audio 4000 RTP/AVP 8\r\n");
    let (n, body) = answer(&offer, PCMU, &local()).unwrap();
    assert_eq!(
        (n.codec, n.payload_type, n.telephone_event),
        (Codec::Pcma, 8, None)
    );
    assert!(body.contains("m=audio 30000 RTP/AVP 8\r\n"), "{body}");
}

#[test]
fn linphone_offer_pairs_telephone_event_with_the_codec_clock_rate() {
    let (n, body) = answer(&sdp(LINPHONE), PCMU, &local()).unwrap();
    assert_eq!(
        (n.codec, n.payload_type, n.telephone_event),
        (Codec::Pcmu, 0, Some(101))
    );
    assert!(body.contains("m=audio 30000 RTP/AVP 0 101\r\n"), "{body}");
    assert!(!body.contains("opus"));
}

#[test]
fn opus_preferred_takes_offerers_number_and_event_at_48k() {
    let (n, body) = answer(&sdp(LINPHONE), &[Codec::Opus, Codec::Pcmu], &local()).unwrap();
    assert_eq!(
        (n.codec, n.payload_type, n.telephone_event),
        (Codec::Opus, 96, Some(99))
    );
    assert!(body.contains("m=audio 30000 RTP/AVP 96 99\r\n"), "{body}");
    assert!(body.contains("a=rtpmap:96 opus/48000/2\r\n"));
    assert!(body.contains("a=rtpmap:99 telephone-event/48000\r\n"));
}

#[test]
fn offerers_dynamic_numbers_are_kept() {
    let offer = sdp("m=audio 4000 RTP/AVP 0 126\r\na=rtpmap:126 telephone-event/8000\r\n");
    let (n, body) = answer(&offer, PCMU, &local()).unwrap();
    assert_eq!(n.telephone_event, Some(126));
    assert!(body.contains("a=rtpmap:126 telephone-event/8000"));
}

#[test]
fn opus_only_without_opus_in_preferences_is_488_incompatible() {
    let offer = sdp("m=audio 4000 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\n");
    let err = answer(&offer, PCMU, &local()).unwrap_err();
    assert_eq!(
        err,
        Rejection::NotAcceptable {
            warn_code: 305,
            text: "Incompatible media format".into()
        }
    );
}

#[test]
fn default_preferences_without_the_feature_refuse_opus_only() {
    let prefs = Codec::default_preference();
    let offer = sdp("m=audio 4000 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\n");
    let result = answer(&offer, &prefs, &local());
    if cfg!(feature = "opus") {
        assert_eq!(result.unwrap().0.codec, Codec::Opus);
    } else {
        assert!(matches!(
            result,
            Err(Rejection::NotAcceptable { warn_code: 305, .. })
        ));
    }
}

#[test]
fn directions_are_mirrored_and_hold_stops_sending() {
    let (n, body) = answer(
        &sdp("m=audio 4000 RTP/AVP 0\r\na=sendonly\r\n"),
        PCMU,
        &local(),
    )
    .unwrap();
    assert_eq!(n.direction, Direction::RecvOnly);
    assert!(body.contains("a=recvonly\r\n"));
    assert!(n.peer_sends);
    let (n, body) = answer(
        &sdp("m=audio 4000 RTP/AVP 0\r\na=inactive\r\n"),
        PCMU,
        &local(),
    )
    .unwrap();
    assert_eq!(n.direction, Direction::Inactive);
    assert!(body.contains("a=inactive\r\n") && !n.peer_sends);
    let (n, _) = answer(
        &sdp("m=audio 4000 RTP/AVP 0\r\na=recvonly\r\n"),
        PCMU,
        &local(),
    )
    .unwrap();
    assert_eq!(n.direction, Direction::SendOnly);
    let held = b"v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    let (n, _) = answer(held, PCMU, &local()).unwrap();
    assert_eq!(n.remote, None, "c=0.0.0.0 is the old hold: nowhere to send");
    assert!(!n.peer_sends);
}

#[test]
fn other_streams_are_declined_with_port_zero_in_order() {
    let offer =
        sdp("m=video 5000 RTP/AVP 31\r\nm=audio 4000 RTP/AVP 0\r\nm=audio 4002 RTP/AVP 0\r\n");
    let (_, body) = answer(&offer, PCMU, &local()).unwrap();
    let m: Vec<&str> = body.lines().filter(|l| l.starts_with("m=")).collect();
    assert_eq!(
        m,
        [
            "m=video 0 RTP/AVP 31",
            "m=audio 30000 RTP/AVP 0",
            "m=audio 0 RTP/AVP 0"
        ]
    );
}

#[test]
fn keyless_srtp_and_video_only_offers_are_refused() {
    let err = answer(&sdp("m=audio 4000 RTP/SAVP 0\r\n"), PCMU, &local()).unwrap_err();
    assert!(
        matches!(&err, Rejection::NotAcceptable { warn_code: 399, text } if text.contains("without a=crypto")),
        "{err:?}"
    );
    let err = answer(&sdp("m=video 4000 RTP/AVP 31\r\n"), PCMU, &local()).unwrap_err();
    assert!(matches!(
        err,
        Rejection::NotAcceptable { warn_code: 304, .. }
    ));
}

#[test]
fn hostile_sdp_is_refused_without_panic() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("missing m=", sdp("")),
        ("port 0 only", sdp("m=audio 0 RTP/AVP 0\r\n")),
        ("no formats", sdp("m=audio 4000 RTP/AVP\r\n")),
        ("port out of range", sdp("m=audio 99999 RTP/AVP 0\r\n")),
        (
            "absurd line",
            sdp(&format!(
                "a=x:{}\r\nm=audio 4000 RTP/AVP 0\r\n",
                "A".repeat(5000)
            )),
        ),
        ("absurd body", vec![b'v'; 100_000]),
        (
            "absurd format list",
            sdp(&format!("m=audio 4000 RTP/AVP {}\r\n", "0 ".repeat(500))),
        ),
        (
            "too many streams",
            sdp(&"m=audio 4000 RTP/AVP 0\r\n".repeat(40)),
        ),
        (
            "bad address",
            sdp("m=audio 4000 RTP/AVP 0\r\nc=IN IP4 999.1.1.1\r\n"),
        ),
        (
            "family mismatch",
            sdp("m=audio 4000 RTP/AVP 0\r\nc=IN IP6 10.0.0.1\r\n"),
        ),
        ("not SDP", b"hello world".to_vec()),
        ("binary", vec![0xff, 0xfe, 0x00, 0x3d]),
        ("empty", Vec::new()),
        ("rtcp port 0", sdp("m=audio 4000 RTP/AVP 0\r\na=rtcp:0\r\n")),
        (
            "rtcp port out of range",
            sdp("m=audio 4000 RTP/AVP 0\r\na=rtcp:70000\r\n"),
        ),
        (
            "rtcp address junk",
            sdp("m=audio 4000 RTP/AVP 0\r\na=rtcp:4001 IN IP4 nowhere\r\n"),
        ),
        (
            "rtpmap junk",
            sdp("m=audio 4000 RTP/AVP 0\r\na=rtpmap:999999 x\r\na=rtpmap:\r\n"),
        ),
    ];
    for (name, body) in cases {
        let result = answer(&body, PCMU, &local());
        match name {
            "rtpmap junk" => assert!(result.is_ok(), "{name}: unreadable rtpmaps are ignored"),
            "port 0 only" => assert!(
                matches!(result, Err(Rejection::NotAcceptable { warn_code: 304, .. })),
                "{name}: {result:?}"
            ),
            _ => assert!(
                matches!(result, Err(Rejection::Malformed(_))),
                "{name}: {result:?}"
            ),
        }
    }
}

#[test]
fn our_offer_lists_every_codec_and_answer_in_ack_is_read() {
    let body = offer(&[Codec::Pcmu, Codec::Pcma], &local()).unwrap();
    assert!(body.contains("m=audio 30000 RTP/AVP 0 8 101\r\n"), "{body}");
    assert!(body.contains("a=rtpmap:101 telephone-event/8000\r\n"));
    let ack = sdp("m=audio 4000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n");
    let n = read_answer(&ack, &[Codec::Pcmu, Codec::Pcma], &local()).unwrap();
    assert_eq!(
        (n.codec, n.payload_type, n.telephone_event),
        (Codec::Pcma, 8, Some(101))
    );
    assert_eq!(n.direction, Direction::SendRecv);
    let bad = sdp("m=audio 4000 RTP/AVP 18\r\n");
    assert!(read_answer(&bad, &[Codec::Pcmu], &local()).is_err());
}

#[test]
fn telephone_event_can_be_switched_off() {
    let no_events = LocalMedia {
        telephone_event: false,
        ..local()
    };
    let (n, body) = answer(&sdp(LINPHONE), PCMU, &no_events).unwrap();
    assert_eq!(n.telephone_event, None);
    assert!(!body.contains("telephone-event"), "{body}");
    assert!(!offer(PCMU, &no_events).unwrap().contains("telephone-event"));
}

#[test]
fn media_in_the_other_address_family_is_answered_for_the_latch_to_correct() {
    // linphonec on a host with an IPv6 address writes it in its SDP while it calls and sends
    // from IPv4: symmetric RTP takes the address its packets come from.
    let v6 = "v=0\r\no=- 1 1 IN IP6 fd00::2\r\ns=-\r\nc=IN IP6 fd00::2\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    let (n, body) = answer(v6.as_bytes(), PCMU, &local()).unwrap();
    assert_eq!(n.remote, Some("[fd00::2]:4000".parse().unwrap()));
    assert!(n.peer_sends);
    assert!(body.contains("c=IN IP4 192.0.2.10"), "{body}");
    let ours_v6 = LocalMedia {
        ip: "2001:db8::10".parse().unwrap(),
        ..local()
    };
    let (_, body) = answer(v6.as_bytes(), PCMU, &ours_v6).unwrap();
    assert!(body.contains("c=IN IP6 2001:db8::10"), "{body}");
}

#[test]
fn g722_is_chosen_by_its_static_number_and_keeps_an_8k_telephone_event() {
    let offer = sdp(
        "m=audio 4000 RTP/AVP 0 9 101\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-15\r\n",
    );
    let (n, body) = answer(&offer, &[Codec::G722, Codec::Pcmu], &local()).unwrap();
    assert_eq!(
        (n.codec, n.payload_type, n.telephone_event),
        (Codec::G722, 9, Some(101))
    );
    assert!(body.contains("m=audio 30000 RTP/AVP 9 101\r\n"), "{body}");
    assert!(body.contains("a=rtpmap:9 G722/8000\r\n"), "{body}");
}

#[test]
fn rtcp_goes_to_the_next_port_up_to_a_named_one_or_muxed_when_offered() {
    let (n, body) = answer(&sdp("m=audio 4000 RTP/AVP 0\r\n"), PCMU, &local()).unwrap();
    assert_eq!(n.remote_rtcp, Some("198.51.100.7:4001".parse().unwrap()));
    assert!(!n.rtcp_mux && !body.contains("rtcp-mux"));

    let named = sdp("m=audio 4000 RTP/AVP 0\r\na=rtcp:5555 IN IP4 203.0.113.9\r\n");
    let (n, _) = answer(&named, PCMU, &local()).unwrap();
    assert_eq!(n.remote_rtcp, Some("203.0.113.9:5555".parse().unwrap()));
    let port_only = sdp("m=audio 4000 RTP/AVP 0\r\na=rtcp:5555\r\n");
    let (n, _) = answer(&port_only, PCMU, &local()).unwrap();
    assert_eq!(n.remote_rtcp, Some("198.51.100.7:5555".parse().unwrap()));

    let muxed = sdp("m=audio 4000 RTP/AVP 0\r\na=rtcp-mux\r\n");
    let (n, body) = answer(&muxed, PCMU, &local()).unwrap();
    assert!(n.rtcp_mux);
    assert!(body.contains("a=rtcp-mux\r\n"), "{body}");
}
