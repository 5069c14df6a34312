//! The user agent driven by hand on a fake clock: raw SIP text in, what it sends and tells the
//! layer above out. No socket, no sleeping: a whole Timer H passes in microseconds.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::sip::admission::AdmissionLimits;

const CALLER: &str = "192.0.2.1:5070";
const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

fn config() -> UaConfig {
    UaConfig {
        timers: Timers::default(),
        public: "198.51.100.5:5060".parse().unwrap(),
        user_agent: "ivr-test".into(),
        answer_delay: Duration::ZERO,
        ack_wait: Duration::from_secs(4),
        admission: AdmissionLimits {
            invites_per_second: 20.0,
            burst: 40.0,
            pending_per_source: 10,
            capacity: 100,
            unproven_share: 0.5,
        },
    }
}

struct Phone {
    ua: UserAgent,
    now: Instant,
    source: SocketAddr,
    /// The To of the last 1xx/2xx with a tag: what our in-dialog requests carry.
    to: String,
    cseq: u32,
}

fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message.split("\r\n").find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn status(message: &str) -> u16 {
    message
        .strip_prefix("SIP/2.0 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

impl Phone {
    fn new(config: UaConfig) -> Phone {
        Phone {
            ua: UserAgent::new(config),
            now: Instant::now(),
            source: CALLER.parse().unwrap(),
            to: "<sip:ivr@198.51.100.5>".into(),
            cseq: 1,
        }
    }

    fn send(&mut self, text: &str) {
        let wire = text.replace("\r\n", "\n").replace('\n', "\r\n");
        self.ua
            .handle_datagram(self.now, self.source, Transport::Udp, wire.as_bytes());
    }

    /// A request of ours with Content-Length filled in; `to` and `cseq` as the dialog stands.
    fn request(&mut self, method: &str, branch: &str, extra: &str, body: &str) {
        let cseq = self.cseq;
        let text = format!(
            "{method} sip:ivr@198.51.100.5 SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK{branch};rport\nFrom: <sip:alice@192.0.2.1>;tag=alice\nTo: {to}\nCall-ID: call-1\nCSeq: {cseq} {method}\nContact: <sip:alice@{CALLER}>\nMax-Forwards: 70\n{extra}Content-Length: {len}\n\n{body}",
            to = self.to,
            len = body.len()
        );
        self.send(&text);
    }

    fn invite(&mut self, branch: &str, body: &str) {
        let extra = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\n"
        };
        self.request("INVITE", branch, extra, body);
    }

    /// ACK for a 2xx: a branch of its own and the dialog's To tag.
    fn ack(&mut self, body: &str) {
        let extra = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\n"
        };
        self.request("ACK", &format!("ack{}", self.cseq), extra, body);
    }

    fn in_dialog(&mut self, method: &str, extra: &str, body: &str) {
        self.cseq += 1;
        self.request(method, &format!("{method}{}", self.cseq), extra, body);
    }

    fn command(&mut self, command: UaCommand) {
        self.ua.handle_command(self.now, command);
    }

    /// Lets `by` pass on the fake clock, firing every timer on the way at its own instant.
    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        while let Some(next) = self.ua.poll_timeout() {
            if next > until {
                break;
            }
            self.now = self.now.max(next);
            self.ua.handle_timeout(self.now);
        }
        self.now = until;
    }

    /// What the agent sent since the last look, as text, remembering a tagged To.
    fn sent(&mut self) -> Vec<(SocketAddr, String)> {
        let mut out = Vec::new();
        while let Some(t) = self.ua.poll_transmit() {
            let text = String::from_utf8_lossy(&t.bytes).into_owned();
            let s = status(&text);
            if (101..300).contains(&s) {
                if let Some(to) = header(&text, "To").filter(|t| t.contains("tag=")) {
                    self.to = to.to_string();
                }
            }
            out.push((t.destination.addr, text));
        }
        out
    }

    fn statuses(&mut self) -> Vec<u16> {
        self.sent().iter().map(|(_, m)| status(m)).collect()
    }

    fn events(&mut self) -> Vec<UaEvent> {
        std::iter::from_fn(|| self.ua.poll_event()).collect()
    }

    /// A new call answered and ACKed: its reference.
    fn confirmed_call(&mut self) -> CallRef {
        self.invite("inv1", SDP);
        let call = match self.events().as_slice() {
            [UaEvent::Incoming { call, .. }] => *call,
            other => panic!("expected one Incoming, got {other:?}"),
        };
        self.command(UaCommand::Answer {
            call,
            sdp: SDP.into(),
        });
        assert_eq!(self.statuses(), [100, 200]);
        self.ack("");
        assert_eq!(self.events(), [UaEvent::Confirmed { call, answer: None }]);
        call
    }
}

fn ended(call: CallRef, reason: EndReason) -> UaEvent {
    UaEvent::Ended { call, reason }
}

#[test]
fn the_200_is_retransmitted_on_the_rfc_schedule_until_the_ack() {
    let mut phone = Phone::new(config());
    phone.invite("inv1", SDP);
    let events: [UaEvent; 1] = phone.events().try_into().unwrap();
    let [UaEvent::Incoming { call, offer, .. }] = events else {
        panic!("one Incoming, got {events:?}")
    };
    assert_eq!(offer.as_deref(), Some(SDP.as_bytes()));
    phone.command(UaCommand::Answer {
        call,
        sdp: SDP.into(),
    });
    assert_eq!(phone.statuses(), [100, 200]);
    let start = phone.now;
    let mut resent = Vec::new();
    for _ in 0..35 {
        phone.advance(Duration::from_millis(100));
        if phone.statuses() == [200] {
            resent.push((phone.now - start).as_millis());
        }
    }
    assert_eq!(resent, [500, 1500, 3500], "T1, then doubling (§17.2.1)");
    phone.ack("");
    assert_eq!(phone.events(), [UaEvent::Confirmed { call, answer: None }]);
    phone.advance(Duration::from_secs(60));
    assert!(phone.sent().is_empty(), "no retransmission after the ACK");
}

#[test]
fn without_an_ack_the_media_goes_at_the_wait_and_bye_at_timer_h() {
    let mut phone = Phone::new(config());
    phone.invite("inv1", SDP);
    let call = 1;
    phone.events();
    phone.command(UaCommand::Answer {
        call,
        sdp: SDP.into(),
    });
    phone.sent();
    phone.advance(Duration::from_millis(3999));
    assert!(phone.events().is_empty());
    phone.advance(Duration::from_millis(1));
    assert_eq!(phone.events(), [ended(call, EndReason::AckTimeout)]);
    // 64·T1 after the 200: Timer H, and the dialog is torn down with a BYE.
    phone.advance(Duration::from_millis(27_999));
    assert!(phone.sent().iter().all(|(_, m)| status(m) == 200));
    phone.advance(Duration::from_millis(1));
    let sent = phone.sent();
    assert!(sent.iter().any(|(_, m)| m.starts_with("BYE ")), "{sent:?}");
    assert!(phone.events().is_empty(), "Ended was told once");
}

#[test]
fn a_late_ack_after_the_media_went_gets_a_bye() {
    let mut phone = Phone::new(config());
    phone.invite("inv1", SDP);
    phone.events();
    phone.command(UaCommand::Answer {
        call: 1,
        sdp: SDP.into(),
    });
    phone.sent();
    phone.advance(Duration::from_secs(5));
    assert_eq!(phone.events(), [ended(1, EndReason::AckTimeout)]);
    phone.sent();
    phone.ack("");
    assert!(
        phone.events().is_empty(),
        "no Confirmed for a released call"
    );
    let sent = phone.sent();
    assert!(sent.iter().any(|(_, m)| m.starts_with("BYE ")), "{sent:?}");
}

#[test]
fn an_ack_without_our_tag_confirms_nothing() {
    let mut phone = Phone::new(config());
    phone.invite("inv1", SDP);
    phone.events();
    phone.command(UaCommand::Answer {
        call: 1,
        sdp: SDP.into(),
    });
    phone.sent();
    let tagged = std::mem::replace(&mut phone.to, "<sip:ivr@198.51.100.5>".into());
    // A blind forger: the INVITE's own branch, no To tag.
    phone.request("ACK", "inv1", "", "");
    phone.to = "<sip:ivr@198.51.100.5>;tag=guess".into();
    phone.ack("");
    assert!(phone.events().is_empty());
    phone.to = tagged;
    phone.ack("");
    assert_eq!(
        phone.events(),
        [UaEvent::Confirmed {
            call: 1,
            answer: None
        }]
    );
}

#[test]
fn cancel_before_the_answer_is_487_and_after_it_changes_nothing() {
    let mut phone = Phone::new(config());
    phone.invite("inv1", SDP);
    phone.events();
    phone.sent();
    phone.request("CANCEL", "inv1", "", "");
    let sent = phone.sent();
    let by_method: Vec<_> = sent
        .iter()
        .map(|(_, m)| (status(m), header(m, "CSeq").unwrap().to_string()))
        .collect();
    assert_eq!(
        by_method,
        [(200, "1 CANCEL".into()), (487, "1 INVITE".into())]
    );
    assert_eq!(phone.events(), [ended(1, EndReason::Cancelled)]);

    let mut phone = Phone::new(config());
    let call = phone.confirmed_call();
    phone.request("CANCEL", "inv1", "", "");
    assert_eq!(phone.statuses(), [200]);
    assert!(phone.events().is_empty(), "the call {call} goes on");
}

#[test]
fn cancel_while_ringing_stops_the_delayed_answer() {
    let mut phone = Phone::new(UaConfig {
        answer_delay: Duration::from_secs(2),
        ..config()
    });
    phone.invite("inv1", SDP);
    phone.events();
    phone.command(UaCommand::Answer {
        call: 1,
        sdp: SDP.into(),
    });
    assert_eq!(phone.statuses(), [100, 180]);
    phone.advance(Duration::from_secs(1));
    phone.request("CANCEL", "inv1", "", "");
    assert_eq!(phone.statuses(), [200, 487]);
    phone.advance(Duration::from_secs(10));
    assert!(
        phone.sent().iter().all(|(_, m)| status(m) == 487),
        "only the 487 is retransmitted, never a 200"
    );
    assert_eq!(phone.events(), [ended(1, EndReason::Cancelled)]);
}

#[test]
fn the_answer_delay_rings_then_answers() {
    let mut phone = Phone::new(UaConfig {
        answer_delay: Duration::from_secs(2),
        ..config()
    });
    phone.invite("inv1", SDP);
    phone.events();
    phone.command(UaCommand::Answer {
        call: 1,
        sdp: SDP.into(),
    });
    assert_eq!(phone.statuses(), [100, 180]);
    phone.advance(Duration::from_millis(1999));
    assert!(phone.sent().is_empty());
    phone.advance(Duration::from_millis(1));
    assert_eq!(phone.statuses(), [200]);
}

#[test]
fn a_reinvite_with_sdp_is_answered_by_the_layer_above() {
    let mut phone = Phone::new(config());
    let call = phone.confirmed_call();
    let hold = SDP.replace(
        "m=audio 4000 RTP/AVP 0\r\n",
        "m=audio 4000 RTP/AVP 0\r\na=sendonly\r\n",
    );
    phone.cseq += 1;
    let branch = format!("reinv{}", phone.cseq);
    phone.invite(&branch, &hold);
    assert_eq!(
        phone.events(),
        [UaEvent::Reinvite {
            call,
            offer: Some(hold.into_bytes())
        }]
    );
    assert_eq!(phone.statuses(), [100]);
    phone.command(UaCommand::Answer {
        call,
        sdp: SDP.into(),
    });
    assert_eq!(phone.statuses(), [200]);
    phone.ack("");
    assert_eq!(phone.events(), [UaEvent::Confirmed { call, answer: None }]);
}

#[test]
fn a_reinvite_without_sdp_gets_our_offer_and_the_ack_brings_the_answer() {
    let mut phone = Phone::new(config());
    let call = phone.confirmed_call();
    phone.cseq += 1;
    phone.invite("reinv2", "");
    assert_eq!(phone.events(), [UaEvent::Reinvite { call, offer: None }]);
    phone.command(UaCommand::Answer {
        call,
        sdp: SDP.into(),
    });
    let sent = phone.sent();
    assert_eq!(status(&sent[1].1), 200);
    assert!(sent[1].1.ends_with(SDP), "our offer in the 200");
    phone.ack(SDP);
    assert_eq!(
        phone.events(),
        [UaEvent::Confirmed {
            call,
            answer: Some(SDP.as_bytes().to_vec())
        }]
    );
}

#[test]
fn a_second_reinvite_while_one_is_pending_gets_500_with_retry_after() {
    let mut phone = Phone::new(config());
    phone.confirmed_call();
    phone.cseq += 1;
    phone.invite("reinv2", SDP);
    phone.events();
    phone.sent();
    phone.cseq += 1;
    phone.invite("reinv3", SDP);
    let sent = phone.sent();
    assert_eq!(status(&sent[0].1), 500);
    assert_eq!(header(&sent[0].1, "Retry-After"), Some("1"));
    assert!(phone.events().is_empty());
}

#[test]
fn a_bye_crossing_ours_is_answered_and_the_call_ends_once() {
    let mut phone = Phone::new(config());
    let call = phone.confirmed_call();
    phone.command(UaCommand::Hangup { call });
    let sent = phone.sent();
    assert!(sent[0]
        .1
        .starts_with("BYE sip:alice@192.0.2.1:5070 SIP/2.0"));
    assert_eq!(phone.events(), [ended(call, EndReason::HungUp)]);
    phone.in_dialog("BYE", "", "");
    assert_eq!(phone.statuses(), [200]);
    assert!(phone.events().is_empty(), "Ended was told once");
}

#[test]
fn the_callers_bye_ends_the_call() {
    let mut phone = Phone::new(config());
    let call = phone.confirmed_call();
    phone.in_dialog("BYE", "", "");
    assert_eq!(phone.statuses(), [200]);
    assert_eq!(phone.events(), [ended(call, EndReason::CallerHungUp)]);
}

#[test]
fn requests_for_an_unknown_dialog_get_481() {
    let mut phone = Phone::new(config());
    phone.confirmed_call();
    phone.to = "<sip:ivr@198.51.100.5>;tag=nosuch".into();
    for method in ["BYE", "INFO", "OPTIONS"] {
        phone.in_dialog(method, "", "");
        assert_eq!(phone.statuses(), [481], "{method}");
    }
    phone.cseq += 1;
    phone.invite("reinv-unknown", SDP);
    assert_eq!(phone.statuses(), [481]);
    assert!(phone.events().is_empty());
}

#[test]
fn info_keys_reach_the_layer_above_and_other_bodies_get_415() {
    let mut phone = Phone::new(config());
    let call = phone.confirmed_call();
    let relay = "Content-Type: application/dtmf-relay\n";
    phone.in_dialog("INFO", relay, "Signal=5\r\nDuration=160\r\n");
    assert_eq!(phone.statuses(), [200]);
    assert_eq!(phone.events(), [UaEvent::InfoDigit { call, digit: '5' }]);
    phone.in_dialog("INFO", "Content-Type: text/plain\n", "hello");
    let sent = phone.sent();
    assert_eq!(status(&sent[0].1), 415);
    assert!(header(&sent[0].1, "Accept").is_some());
    assert!(phone.events().is_empty());
}

#[test]
fn options_are_answered_in_and_out_of_a_dialog() {
    let mut phone = Phone::new(config());
    phone.request("OPTIONS", "opt1", "", "");
    let sent = phone.sent();
    assert_eq!(status(&sent[0].1), 200);
    assert!(header(&sent[0].1, "Allow").is_some_and(|a| a.contains("INVITE")));
    phone.to = "<sip:ivr@198.51.100.5>".into();
    phone.confirmed_call();
    phone.in_dialog("OPTIONS", "", "");
    assert_eq!(phone.statuses(), [200]);
}

#[test]
fn responses_follow_rport_and_our_bye_follows_the_record_route() {
    let mut phone = Phone::new(config());
    // The request came from another port than its Via says: rport sends the answer back there.
    phone.source = "192.0.2.1:40000".parse().unwrap();
    let rr = "Record-Route: <sip:192.0.2.50:5080;lr>\n";
    phone.request(
        "INVITE",
        "inv1",
        &format!("{rr}Content-Type: application/sdp\n"),
        SDP,
    );
    phone.events();
    phone.command(UaCommand::Answer {
        call: 1,
        sdp: SDP.into(),
    });
    let sent = phone.sent();
    assert!(sent.iter().all(|(to, _)| *to == phone.source), "rport");
    assert_eq!(
        header(&sent[1].1, "Record-Route"),
        Some("<sip:192.0.2.50:5080;lr>")
    );
    phone.ack("");
    phone.events();
    phone.command(UaCommand::Hangup { call: 1 });
    let (to, bye) = phone.sent().remove(0);
    assert_eq!(to, "192.0.2.50:5080".parse().unwrap(), "to the first route");
    assert!(
        bye.starts_with("BYE sip:alice@192.0.2.1:5070 SIP/2.0"),
        "{bye}"
    );
    assert_eq!(header(&bye, "Route"), Some("<sip:192.0.2.50:5080;lr>"));
    assert!(
        header(&bye, "Via").is_some_and(|v| v.contains("198.51.100.5:5060") && v.contains("rport"))
    );
}

#[test]
fn a_flood_from_one_source_gets_503_with_retry_after_then_silence() {
    let mut phone = Phone::new(config());
    let mut refused = 0;
    for i in 0..200 {
        phone.request("INVITE", &format!("flood{i}"), "", "");
        for (_, m) in phone.sent() {
            if status(&m) == 503 {
                refused += 1;
                assert!(header(&m, "Retry-After").is_some());
            }
        }
    }
    let offered = phone
        .events()
        .iter()
        .filter(|e| matches!(e, UaEvent::Incoming { .. }))
        .count();
    assert_eq!(offered, 10, "the pending budget of one source");
    assert!(
        refused > 0 && offered + refused < 200,
        "past twice the budget, silence"
    );
}

#[test]
fn hanging_up_before_the_ack_waits_for_it_then_sends_bye() {
    let mut phone = Phone::new(config());
    phone.invite("inv1", SDP);
    phone.events();
    phone.command(UaCommand::Answer {
        call: 1,
        sdp: SDP.into(),
    });
    phone.sent();
    phone.command(UaCommand::Hangup { call: 1 });
    assert_eq!(phone.events(), [ended(1, EndReason::HungUp)]);
    assert!(phone.sent().is_empty(), "no BYE before the ACK (§15)");
    phone.ack("");
    let sent = phone.sent();
    assert!(sent[0].1.starts_with("BYE "));
    assert!(phone.events().is_empty());
}
