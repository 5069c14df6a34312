//! Parsing, Via stamping and the answers given to broken messages.

use super::*;

const SOURCE: &str = "203.0.113.5:40000";

fn src() -> SocketAddr {
    SOURCE.parse().unwrap()
}

const INVITE: &str = "INVITE sip:ivr@192.0.2.1 SIP/2.0\r\n\
v: SIP/2.0/UDP 10.0.0.2:5062;branch=z9hG4bKabc;rport, SIP/2.0/UDP proxy.example;branch=z9hG4bKp\r\n\
Via: SIP/2.0/TCP [2001:db8::1]:5070;branch=z9hG4bKq\r\n\
Max-Forwards: 69\r\n\
f: \"Alice\" <sip:alice@example.com>;tag=a1\r\n\
t: <sip:ivr@192.0.2.1>\r\n\
i: call-1@example.com\r\n\
CSeq: 7 INVITE\r\n\
m: <sip:alice@10.0.0.2:5062;transport=udp>;expires=60\r\n\
Record-Route: <sip:p1.example;lr>, <sip:p2.example;lr>\r\n\
Record-Route: <sip:p3.example;lr>\r\n\
c: application/sdp\r\n\
l: 4\r\n\r\nv=0\r\nEXTRA";

fn request(text: &str) -> Request {
    match parse(text.as_bytes(), src()) {
        Ok(Message::Request(r)) => *r,
        other => panic!("expected a request, got {other:?}"),
    }
}

#[test]
fn lifts_the_headers_a_ua_needs_from_compact_and_multi_value_forms() {
    let r = request(INVITE);
    assert_eq!(r.method, Method::Invite);
    assert_eq!(r.vias.len(), 3);
    assert_eq!(r.top_via.branch, "z9hG4bKabc");
    assert_eq!(
        (r.top_via.host.as_str(), r.top_via.port, r.top_via.rport),
        ("10.0.0.2", Some(5062), true)
    );
    assert_eq!(
        r.vias[0],
        "SIP/2.0/UDP 10.0.0.2:5062;branch=z9hG4bKabc;received=203.0.113.5;rport=40000"
    );
    assert_eq!(r.from_tag.as_deref(), Some("a1"));
    assert_eq!(r.to_tag, None);
    assert_eq!(r.call_id, "call-1@example.com");
    assert_eq!((r.cseq, r.cseq_method), (7, Method::Invite));
    assert_eq!(
        r.contact.as_deref(),
        Some("sip:alice@10.0.0.2:5062;transport=udp")
    );
    assert_eq!(
        r.record_route,
        [
            "<sip:p1.example;lr>",
            "<sip:p2.example;lr>",
            "<sip:p3.example;lr>"
        ]
    );
    assert_eq!(r.max_forwards, Some(69));
    assert_eq!(r.content_type.as_deref(), Some("application/sdp"));
    assert_eq!(r.body, b"v=0\r");
}

#[test]
fn via_without_rport_from_another_address_gets_received_only() {
    let text = INVITE.replace(";rport,", ",");
    let r = request(&text);
    assert_eq!(
        r.vias[0],
        "SIP/2.0/UDP 10.0.0.2:5062;branch=z9hG4bKabc;received=203.0.113.5"
    );
}

#[test]
fn response_copies_vias_and_adds_our_tag_once() {
    let r = request(INVITE);
    let bytes = response(
        &r,
        200,
        "OK",
        Some("ours"),
        &[("Contact", "<sip:ivr@192.0.2.1>")],
        Some(("application/sdp", b"v=0\r\n")),
    );
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(text.starts_with(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.2:5062;branch=z9hG4bKabc;received="
    ));
    assert_eq!(text.matches("Via: ").count(), 3);
    assert!(text.contains("To: <sip:ivr@192.0.2.1>;tag=ours\r\n"));
    assert!(text.contains("CSeq: 7 INVITE\r\n"));
    assert!(text.ends_with("Content-Length: 5\r\n\r\nv=0\r\n"));
    assert!(matches!(parse(&bytes, src()), Ok(Message::Response(r)) if r.status == 200));
}

#[test]
fn broken_request_with_findable_headers_gets_400() {
    let text = INVITE.replace("CSeq: 7 INVITE", "CSeq: seven INVITE");
    let err = parse(text.as_bytes(), src()).unwrap_err();
    let reply = String::from_utf8(err.reply.expect("a 400 can be formed").to_vec()).unwrap();
    assert!(reply.starts_with("SIP/2.0 400 Bad Request\r\n"), "{reply}");
    assert!(reply.contains("Call-ID: call-1@example.com\r\n"));
    assert!(reply.contains("received=203.0.113.5;rport=40000"));
}

#[test]
fn unknown_method_gets_501_and_unsupported_known_ones_parse() {
    let text = INVITE
        .replacen("INVITE sip", "FROBNICATE sip", 1)
        .replace("7 INVITE", "7 FROBNICATE");
    let err = parse(text.as_bytes(), src()).unwrap_err();
    let reply = String::from_utf8(err.reply.expect("501").to_vec()).unwrap();
    assert!(
        reply.starts_with("SIP/2.0 501 Not Implemented\r\n"),
        "{reply}"
    );
    assert!(
        reply.contains("Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, PRACK, NOTIFY\r\n")
    );
}

#[test]
fn garbage_and_responses_and_acks_are_never_answered() {
    for text in [
        "",
        "hello",
        "SIP/2.0 200 OK\r\n\r\n",
        "ACK sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nCSeq: x\r\n\r\n",
    ] {
        let err = parse(text.as_bytes(), src()).unwrap_err();
        assert!(err.reply.is_none(), "{text:?} must not be answered");
    }
}

#[test]
fn missing_mandatory_header_gets_400_unless_via_or_cseq_is_missing() {
    let no_call_id = INVITE.replace("i: call-1@example.com\r\n", "");
    let err = parse(no_call_id.as_bytes(), src()).unwrap_err();
    let reply = err.reply.expect("a 400 without the Call-ID it cannot copy");
    assert!(reply.starts_with(b"SIP/2.0 400") && !reply.windows(8).any(|w| w == b"Call-ID:"));
    let no_cseq = INVITE.replace("CSeq: 7 INVITE\r\n", "");
    assert!(
        parse(no_cseq.as_bytes(), src())
            .unwrap_err()
            .reply
            .is_none(),
        "no CSeq: silence"
    );
    let bad_mf = INVITE.replace("Max-Forwards: 69", "Max-Forwards: many");
    let err = parse(bad_mf.as_bytes(), src()).unwrap_err();
    assert!(err.reply.is_some_and(|r| r.starts_with(b"SIP/2.0 400")));
}

#[test]
fn tags_and_uris_come_out_of_name_addr_and_addr_spec() {
    assert_eq!(tag_of("<sip:a@b;tag=no>;tag=yes").as_deref(), Some("yes"));
    assert_eq!(tag_of("sip:a@b;tag=x").as_deref(), Some("x"));
    assert_eq!(tag_of("<sip:a@b>"), None);
    assert_eq!(
        uri_of("\"B, C\" <sip:b@h;lr>;x=1").as_deref(),
        Some("sip:b@h;lr")
    );
    assert_eq!(uri_of("sip:b@h;x=1").as_deref(), Some("sip:b@h"));
    assert_eq!(uri_of("*"), None);
    assert_eq!(
        split_host_port("[::1]:5060"),
        Some(("::1".into(), Some(5060)))
    );
    assert_eq!(split_host_port("h:99999"), None);
}

/// Deterministic mutation of a real INVITE: no input may panic the parser.
#[test]
fn mutated_messages_never_panic() {
    let base = INVITE.as_bytes();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b":;,<>\"\r\n =@[]0123456789zZ\x00\xff";
    for _ in 0..20_000 {
        let mut msg = base.to_vec();
        for _ in 0..(next() % 8 + 1) {
            let at = (next() as usize) % msg.len();
            match next() % 3 {
                0 => msg[at] = alphabet[(next() as usize) % alphabet.len()],
                1 => {
                    msg.remove(at);
                }
                _ => msg.insert(at, alphabet[(next() as usize) % alphabet.len()]),
            }
            if msg.is_empty() {
                break;
            }
        }
        let _ = parse(&msg, src());
    }
}

#[test]
fn the_user_part_of_a_uri() {
    assert_eq!(uri_user("sip:5551234@trunk.example;user=phone"), "5551234");
    assert_eq!(uri_user("sips:ivr@127.0.0.1:5061"), "ivr");
    assert_eq!(uri_user("sip:127.0.0.1:5060"), "");
    assert_eq!(uri_user("tel:+15551234;phone-context=x"), "+15551234");
}

#[test]
fn a_tel_request_uri_is_read_and_kept() {
    let req = request(
        "INVITE tel:+1-555-123-4567;phone-context=example SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKtel\r\nFrom: <sip:a@192.0.2.1>;tag=a\r\nTo: <tel:+15551234567>\r\nCall-ID: tel-1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(req.uri, "tel:+1-555-123-4567;phone-context=example");
    assert_eq!(uri_user(&req.uri), "+1-555-123-4567");
}

#[test]
fn an_ipv6_request_uri_is_read_and_kept() {
    let req = request(
        "INVITE sip:ivr@[2001:db8::5]:5060;transport=udp SIP/2.0\r\nVia: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKv6\r\nFrom: <sip:a@[2001:db8::1]>;tag=a\r\nTo: <sip:ivr@[2001:db8::5]>\r\nCall-ID: v6-1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(req.uri, "sip:ivr@[2001:db8::5]:5060;transport=udp");
    assert_eq!(uri_user(&req.uri), "ivr");
}

#[test]
fn a_parser_failure_is_not_described_to_the_sender() {
    let text = "INVITE sip:ivr@192.0.2.9 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKbad\r\nFrom: <sip:a@192.0.2.1>;tag=a\r\nTo: <sip:ivr@192.0.2.9>\r\nCall-ID: bad-1\r\nCSeq: 1 INVITE\r\nNot a header line\r\nContent-Length: 0\r\n\r\n";
    let Err(unusable) = parse(text.as_bytes(), src()) else {
        panic!("a line that is not a header is refused");
    };
    let reply = String::from_utf8(unusable.reply.expect("a 400").to_vec()).unwrap();
    assert!(reply.starts_with("SIP/2.0 400"), "{reply}");
    assert!(
        reply.contains("Warning: 399 ivr \"Malformed request\""),
        "{reply}"
    );
    assert!(!reply.contains("rsip"), "{reply}");
}
