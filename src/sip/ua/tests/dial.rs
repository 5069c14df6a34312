//! Calls we place, on the fake clock: answered then ended by either side, cancelled while
//! ringing, and given up on when nobody answers.

use super::*;
use crate::sip::dial::DialRequest;
use crate::sip::transport::Destination;

const AGENT: &str = "192.0.2.30:5080";

fn request() -> DialRequest {
    DialRequest {
        target: format!("sip:agents@{AGENT}"),
        destination: Destination {
            transport: Transport::Udp,
            addr: AGENT.parse().unwrap(),
        },
        caller: "alice".into(),
        offer: SDP.into(),
        credentials: None,
        patience: Duration::from_secs(20),
    }
}

/// The agent's response to our `invite`, with its tag and `extra` lines.
fn agent_answer(phone: &mut Phone, invite: &str, status: &str, extra: &str, body: &str) {
    let mut text = format!("SIP/2.0 {status}\n");
    for name in ["Via", "From", "Call-ID", "CSeq"] {
        text.push_str(&format!("{name}: {}\n", header(invite, name).unwrap()));
    }
    text.push_str(&format!(
        "To: {};tag=agent\n",
        header(invite, "To").unwrap()
    ));
    text.push_str(extra);
    text.push_str(&format!("Content-Length: {}\n\n{body}", body.len()));
    let wire = text.replace("\r\n", "\n").replace('\n', "\r\n");
    let agent = AGENT.parse().unwrap();
    phone
        .ua
        .handle_datagram(phone.now, agent, Transport::Udp, wire.as_bytes());
}

/// A dial for call 7: the leg's reference and the INVITE sent.
fn dialled(phone: &mut Phone) -> (CallRef, String) {
    phone.command(UaCommand::Dial {
        call: 7,
        request: request(),
    });
    let leg = match phone.events().as_slice() {
        [UaEvent::Dialled {
            call: 7,
            leg,
            progress: DialProgress::Calling,
        }] => *leg,
        other => panic!("expected Calling, got {other:?}"),
    };
    let sent = phone.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, AGENT.parse::<SocketAddr>().unwrap());
    (leg, sent[0].1.clone())
}

fn progress(leg: CallRef, progress: DialProgress) -> UaEvent {
    UaEvent::Dialled {
        call: 7,
        leg,
        progress,
    }
}

#[test]
fn an_answered_call_is_a_leg_the_agent_can_end_with_bye() {
    let mut phone = Phone::new(config());
    let (leg, invite) = dialled(&mut phone);
    let contact = format!("Contact: <sip:agent@{AGENT}>\n");
    agent_answer(&mut phone, &invite, "180 Ringing", "", "");
    assert_eq!(
        phone.events(),
        [progress(leg, DialProgress::Ringing { early: None })]
    );
    agent_answer(&mut phone, &invite, "200 OK", &contact, SDP);
    assert_eq!(
        phone.events(),
        [progress(
            leg,
            DialProgress::Answered {
                answer: SDP.as_bytes().to_vec()
            }
        )]
    );
    let sent = phone.sent();
    assert!(sent[0].1.starts_with(&format!("ACK sip:agent@{AGENT} ")));
    // The agent hangs up: its BYE names our From tag as its To tag.
    let from = header(&invite, "From").unwrap().to_string();
    let bye = format!(
        "BYE sip:ivr@198.51.100.5 SIP/2.0\nVia: SIP/2.0/UDP {AGENT};branch=z9hG4bKbye1\nFrom: <sip:agents@{AGENT}>;tag=agent\nTo: {from}\nCall-ID: {}\nCSeq: 5 BYE\nMax-Forwards: 70\nContent-Length: 0\n\n",
        header(&invite, "Call-ID").unwrap()
    );
    let wire = bye.replace('\n', "\r\n");
    phone.ua.handle_datagram(
        phone.now,
        AGENT.parse().unwrap(),
        Transport::Udp,
        wire.as_bytes(),
    );
    assert_eq!(phone.statuses(), [200]);
    assert_eq!(phone.events(), [ended(leg, EndReason::CallerHungUp)]);
}

#[test]
fn our_hangup_of_an_answered_leg_is_a_bye_to_its_contact() {
    let mut phone = Phone::new(config());
    let (leg, invite) = dialled(&mut phone);
    let contact = "Contact: <sip:agent@192.0.2.31:5090>\n";
    agent_answer(&mut phone, &invite, "200 OK", contact, SDP);
    phone.events();
    phone.sent();
    phone.command(UaCommand::Hangup { call: leg });
    let sent = phone.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, "192.0.2.31:5090".parse::<SocketAddr>().unwrap());
    assert!(sent[0].1.starts_with("BYE sip:agent@192.0.2.31:5090 "));
    assert_eq!(header(&sent[0].1, "CSeq"), Some("2 BYE"));
    assert_eq!(phone.events(), [ended(leg, EndReason::HungUp)]);
}

#[test]
fn hanging_up_while_it_rings_sends_cancel() {
    let mut phone = Phone::new(config());
    let (leg, invite) = dialled(&mut phone);
    agent_answer(&mut phone, &invite, "180 Ringing", "", "");
    phone.events();
    phone.command(UaCommand::Hangup { call: leg });
    assert_eq!(
        phone.events(),
        [progress(leg, DialProgress::Failed { status: 487 })]
    );
    let sent = phone.sent();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].1.starts_with("CANCEL "));
    agent_answer(&mut phone, &sent[0].1, "200 OK", "", "");
    agent_answer(&mut phone, &invite, "487 Request Terminated", "", "");
    let sent = phone.sent();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].1.starts_with("ACK "));
    assert!(phone.events().is_empty(), "told once");
    phone.advance(Duration::from_secs(40));
    assert!(phone.ua.dials.is_empty(), "forgotten after Timer D");
    assert!(phone.ua.dial_branches.is_empty());
}

#[test]
fn no_answer_within_the_patience_is_408_and_a_cancel() {
    let mut phone = Phone::new(config());
    let (leg, invite) = dialled(&mut phone);
    agent_answer(&mut phone, &invite, "183 Session Progress", "", SDP);
    assert_eq!(
        phone.events(),
        [progress(
            leg,
            DialProgress::Ringing {
                early: Some(SDP.as_bytes().to_vec())
            }
        )]
    );
    phone.advance(Duration::from_millis(19_900));
    assert!(phone.sent().is_empty());
    phone.advance(Duration::from_millis(200));
    assert_eq!(
        phone.events(),
        [progress(leg, DialProgress::Failed { status: 408 })]
    );
    assert!(phone.sent()[0].1.starts_with("CANCEL "));
}

#[test]
fn a_response_to_a_strangers_branch_reaches_no_dial() {
    let mut phone = Phone::new(config());
    let (_, invite) = dialled(&mut phone);
    let stray = invite.replace("branch=z9hG4bK", "branch=z9hG4bKother");
    agent_answer(&mut phone, &stray, "200 OK", "", SDP);
    assert!(phone.events().is_empty());
    assert!(phone.sent().is_empty());
}
