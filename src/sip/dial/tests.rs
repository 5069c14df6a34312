//! The outbound call on a hand-advanced clock: retransmission, ringing, challenges, patience,
//! CANCEL and the ACKs, each checked on the bytes that would go out.

use super::*;
use crate::sip::message::Message;
use crate::sip::transport::Transport;

const AGENT: &str = "192.0.2.20:5060";

fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message.split("\r\n").find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn request(patience: Duration, credentials: bool) -> DialRequest {
    DialRequest {
        target: "sip:agents@192.0.2.20".into(),
        destination: Destination {
            transport: Transport::Udp,
            addr: AGENT.parse().unwrap(),
        },
        caller: "5551234".into(),
        offer: "v=0\r\no=- 1 1 IN IP4 198.51.100.5\r\n".into(),
        credentials: credentials.then(|| Credentials {
            username: "ivr".into(),
            password: "s3cret".into(),
        }),
        patience,
    }
}

fn local() -> Local {
    Local {
        public: "198.51.100.5:5060".parse().unwrap(),
        contact: "<sip:ivr@198.51.100.5:5060>".into(),
        user_agent: "test-ivr".into(),
    }
}

/// The agent's answer to the INVITE `invite`, with `extra` header lines and a body.
fn answer(invite: &str, status: &str, to_tag: Option<&str>, extra: &str, body: &str) -> Response {
    let mut text = format!("SIP/2.0 {status}\r\n");
    for name in ["Via", "From", "Call-ID", "CSeq"] {
        text.push_str(&format!("{name}: {}\r\n", header(invite, name).unwrap()));
    }
    let to = header(invite, "To").unwrap();
    match to_tag {
        Some(tag) => text.push_str(&format!("To: {to};tag={tag}\r\n")),
        None => text.push_str(&format!("To: {to}\r\n")),
    }
    text.push_str(extra);
    if body.is_empty() {
        text.push_str("Content-Length: 0\r\n\r\n");
    } else {
        text.push_str(&format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    }
    match message::parse(text.as_bytes(), AGENT.parse().unwrap()) {
        Ok(Message::Response(r)) => *r,
        other => panic!("not a response: {other:?}"),
    }
}

fn sent(dial: &mut Dial) -> Vec<String> {
    dial.drain_out()
        .map(|(_, b)| String::from_utf8(b.to_vec()).unwrap())
        .collect()
}

fn start(patience: Duration, credentials: bool) -> (Dial, String, Instant) {
    let now = Instant::now();
    let mut dial = Dial::start(
        request(patience, credentials),
        local(),
        Timers::default(),
        now,
    );
    let out = sent(&mut dial);
    assert_eq!(out.len(), 1);
    (dial, out[0].clone(), now)
}

/// Fires every deadline up to `until`; the steps and offsets (ms) of what each sent.
fn run(dial: &mut Dial, start: Instant, until: Duration) -> (Vec<DialStep>, Vec<(u128, String)>) {
    let (mut steps, mut out) = (Vec::new(), Vec::new());
    while let Some(at) = dial.next_deadline() {
        if at > start + until {
            break;
        }
        let step = dial.on_timer(at);
        if step != DialStep::Nothing {
            steps.push(step);
        }
        for (_, b) in dial.drain_out() {
            out.push((
                (at - start).as_millis(),
                String::from_utf8(b.to_vec()).unwrap(),
            ));
        }
    }
    (steps, out)
}

#[test]
fn the_invite_presents_the_caller_and_carries_our_offer() {
    let (_, invite, _) = start(Duration::from_secs(30), false);
    assert!(invite.starts_with("INVITE sip:agents@192.0.2.20 SIP/2.0\r\n"));
    assert!(header(&invite, "From")
        .unwrap()
        .starts_with("<sip:5551234@198.51.100.5>;tag="));
    assert_eq!(header(&invite, "To"), Some("<sip:agents@192.0.2.20>"));
    assert_eq!(header(&invite, "CSeq"), Some("1 INVITE"));
    assert_eq!(header(&invite, "Content-Type"), Some("application/sdp"));
    assert!(invite.ends_with("o=- 1 1 IN IP4 198.51.100.5\r\n"));
}

#[test]
fn a_silent_target_gets_timer_a_then_fails_408_at_timer_b_without_cancel() {
    let (mut dial, _, t0) = start(Duration::from_secs(60), false);
    let (steps, out) = run(&mut dial, t0, Duration::from_secs(40));
    let times: Vec<u128> = out.iter().map(|(t, _)| *t).collect();
    assert_eq!(times, vec![500, 1500, 3500, 7500, 15500, 31500]);
    assert!(out.iter().all(|(_, m)| m.starts_with("INVITE ")));
    assert_eq!(steps, vec![DialStep::Failed { status: 408 }]);
    assert!(dial.is_finished());
}

#[test]
fn ringing_too_long_is_cancelled_and_reported_as_no_answer() {
    let (mut dial, invite, t0) = start(Duration::from_secs(20), false);
    let ringing = answer(&invite, "180 Ringing", Some("a1"), "", "");
    assert_eq!(
        dial.on_response(&ringing, t0),
        DialStep::Ringing { early: None }
    );
    let early = answer(&invite, "183 Session Progress", Some("a1"), "", "v=0\r\n");
    assert_eq!(
        dial.on_response(&early, t0),
        DialStep::Ringing {
            early: Some(b"v=0\r\n".to_vec())
        }
    );
    let (steps, out) = run(&mut dial, t0, Duration::from_millis(20_100));
    assert_eq!(steps, vec![DialStep::Failed { status: 408 }]);
    assert_eq!(
        out.len(),
        1,
        "one CANCEL, no INVITE retransmission: {out:?}"
    );
    let (at, cancel) = &out[0];
    assert_eq!(*at, 20_000);
    assert!(cancel.starts_with("CANCEL sip:agents@192.0.2.20 SIP/2.0\r\n"));
    assert_eq!(header(cancel, "Via"), header(&invite, "Via"), "same branch");
    assert_eq!(header(cancel, "CSeq"), Some("1 CANCEL"));
    assert_eq!(header(cancel, "To"), header(&invite, "To"), "no tag");
    let now = t0 + Duration::from_secs(20);
    let terminated = answer(&invite, "487 Request Terminated", Some("a1"), "", "");
    assert_eq!(
        dial.on_response(&terminated, now),
        DialStep::Nothing,
        "told once"
    );
    let ack = sent(&mut dial);
    assert_eq!(ack.len(), 1);
    assert!(ack[0].starts_with("ACK sip:agents@192.0.2.20 SIP/2.0\r\n"));
    assert_eq!(header(&ack[0], "Via"), header(&invite, "Via"));
    assert_eq!(header(&ack[0], "CSeq"), Some("1 ACK"));
    assert!(header(&ack[0], "To").unwrap().ends_with(";tag=a1"));
    // The 487 repeated: the same ACK again.
    assert_eq!(dial.on_response(&terminated, now), DialStep::Nothing);
    assert_eq!(sent(&mut dial), ack);
}

#[test]
fn hanging_up_before_any_provisional_cancels_only_once_one_comes() {
    let (mut dial, invite, t0) = start(Duration::from_secs(30), false);
    assert_eq!(dial.give_up(487, t0), DialStep::Failed { status: 487 });
    assert!(
        sent(&mut dial).is_empty(),
        "§9.1: no CANCEL before a provisional"
    );
    let trying = answer(&invite, "100 Trying", None, "", "");
    assert_eq!(dial.on_response(&trying, t0), DialStep::Nothing);
    let out = sent(&mut dial);
    assert_eq!(out.len(), 1);
    assert!(out[0].starts_with("CANCEL "));
}

#[test]
fn busy_is_acknowledged_and_reported() {
    let (mut dial, invite, t0) = start(Duration::from_secs(30), false);
    let busy = answer(&invite, "486 Busy Here", Some("b"), "", "");
    assert_eq!(
        dial.on_response(&busy, t0),
        DialStep::Failed { status: 486 }
    );
    let out = sent(&mut dial);
    assert!(out[0].starts_with("ACK "));
    let (steps, _) = run(&mut dial, t0, Duration::from_secs(40));
    assert!(steps.is_empty());
    assert!(dial.is_finished(), "Timer D ends it");
}

#[test]
fn a_proxy_challenge_is_answered_then_the_answer_opens_a_dialog() {
    let (mut dial, invite, t0) = start(Duration::from_secs(30), true);
    let challenge = "Proxy-Authenticate: Digest realm=\"pbx\", nonce=\"abc\", qop=\"auth\"\r\n";
    let refused = answer(
        &invite,
        "407 Proxy Authentication Required",
        Some("p"),
        challenge,
        "",
    );
    assert_eq!(dial.on_response(&refused, t0), DialStep::Nothing);
    let out = sent(&mut dial);
    assert_eq!(out.len(), 2, "ACK, then the INVITE again: {out:?}");
    assert!(out[0].starts_with("ACK "));
    let again = &out[1];
    assert!(again.starts_with("INVITE "));
    assert_eq!(header(again, "CSeq"), Some("2 INVITE"));
    assert_ne!(header(again, "Via"), header(&invite, "Via"), "a new branch");
    assert_eq!(header(again, "Call-ID"), header(&invite, "Call-ID"));
    assert_eq!(header(again, "From"), header(&invite, "From"));
    let credentials = header(again, "Proxy-Authorization").unwrap();
    assert!(credentials.contains("username=\"ivr\""), "{credentials}");
    assert!(credentials.contains("realm=\"pbx\""));
    assert!(!again.contains("s3cret"), "the password never travels");
    assert!(!format!("{dial:?}").contains("s3cret"), "nor reaches a log");
    let extra = "Contact: <sip:agent@192.0.2.21:5070>\r\nRecord-Route: <sip:p1;lr>\r\nRecord-Route: <sip:p2;lr>\r\n";
    let ok = answer(again, "200 OK", Some("agent"), extra, "v=0\r\n");
    let DialStep::Answered {
        dialog,
        answer: sdp,
    } = dial.on_response(&ok, t0)
    else {
        panic!("not answered");
    };
    assert_eq!(sdp, b"v=0\r\n");
    assert_eq!(dialog.remote_target, "sip:agent@192.0.2.21:5070");
    assert_eq!(dialog.route_set, vec!["<sip:p2;lr>", "<sip:p1;lr>"]);
    assert_eq!(dialog.local_cseq, 2);
    assert!(dialog.remote.ends_with(";tag=agent"));
    let ack = sent(&mut dial);
    assert_eq!(ack.len(), 1);
    assert!(ack[0].starts_with("ACK sip:agent@192.0.2.21:5070 SIP/2.0\r\n"));
    assert_eq!(header(&ack[0], "CSeq"), Some("2 ACK"));
    assert_eq!(header(&ack[0], "Route"), Some("<sip:p2;lr>"));
    // A retransmitted 200 gets the same ACK; the layer above hears nothing new.
    assert_eq!(dial.on_response(&ok, t0), DialStep::Nothing);
    assert_eq!(sent(&mut dial), ack);
}

#[test]
fn wrong_credentials_fail_after_two_challenges() {
    let (mut dial, invite, t0) = start(Duration::from_secs(30), true);
    let challenge = "WWW-Authenticate: Digest realm=\"pbx\", nonce=\"n\"\r\n";
    let mut current = invite;
    for round in 0..2 {
        let refused = answer(&current, "401 Unauthorized", Some("u"), challenge, "");
        assert_eq!(
            dial.on_response(&refused, t0),
            DialStep::Nothing,
            "round {round}"
        );
        let out = sent(&mut dial);
        current = out[1].clone();
        assert!(header(&current, "Authorization").is_some());
    }
    let refused = answer(&current, "401 Unauthorized", Some("u"), challenge, "");
    assert_eq!(
        dial.on_response(&refused, t0),
        DialStep::Failed { status: 401 }
    );
}

#[test]
fn a_challenge_without_credentials_is_a_failure() {
    let (mut dial, invite, t0) = start(Duration::from_secs(30), false);
    let challenge = "WWW-Authenticate: Digest realm=\"pbx\", nonce=\"n\"\r\n";
    let refused = answer(&invite, "401 Unauthorized", Some("u"), challenge, "");
    assert_eq!(
        dial.on_response(&refused, t0),
        DialStep::Failed { status: 401 }
    );
}

#[test]
fn an_answer_that_crosses_our_cancel_is_acknowledged_and_handed_back_for_bye() {
    let (mut dial, invite, t0) = start(Duration::from_secs(30), false);
    let ringing = answer(&invite, "180 Ringing", Some("a"), "", "");
    dial.on_response(&ringing, t0);
    assert_eq!(dial.give_up(487, t0), DialStep::Failed { status: 487 });
    sent(&mut dial);
    let ok = answer(
        &invite,
        "200 OK",
        Some("a"),
        "Contact: <sip:a@192.0.2.20>\r\n",
        "v=0\r\n",
    );
    assert!(matches!(
        dial.on_response(&ok, t0),
        DialStep::AnsweredLate { .. }
    ));
    assert!(sent(&mut dial)[0].starts_with("ACK sip:a@192.0.2.20 "));
}

#[test]
fn responses_to_another_branch_or_cseq_are_ignored() {
    let (mut dial, invite, t0) = start(Duration::from_secs(30), false);
    let stray = invite.replace("branch=z9hG4bK", "branch=z9hG4bKx");
    let ok = answer(&stray, "200 OK", Some("a"), "", "");
    assert_eq!(dial.on_response(&ok, t0), DialStep::Nothing);
    assert!(sent(&mut dial).is_empty());
}
