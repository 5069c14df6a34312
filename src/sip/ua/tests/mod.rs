//! The user agent driven by hand on a fake clock: raw SIP text in, what it sends and tells the
//! layer above out. No socket, no sleeping: a whole Timer H passes in microseconds.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;

mod dial;
mod in_dialog;
mod invite;
mod prack;
mod session;
mod softphone;
mod strangers;
mod torture;
mod transfer;
mod trunk;
use crate::sip::admission::AdmissionLimits;
use crate::sip::allow::AllowList;
use crate::sip::transaction::Timers;

const CALLER: &str = "192.0.2.1:5070";
const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

fn config() -> UaConfig {
    UaConfig {
        timers: Timers::default(),
        public: "198.51.100.5:5060".parse().unwrap(),
        tls_port: Some(5061),
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
        allow: AllowList::default(),
        trunks: Vec::new(),
        auth: None,
        session_timer: crate::sip::session_timer::SessionTimerConfig {
            expires: 1800,
            min_se: 90,
        },
        transfer_timeout: Duration::from_secs(30),
        drain_retry_after: Duration::from_secs(30),
    }
}

struct Phone {
    ua: UserAgent,
    now: Instant,
    source: SocketAddr,
    /// The To of the last 1xx/2xx with a tag: what our in-dialog requests carry.
    to: String,
    cseq: u32,
    /// Where our requests' Contact points: the phone itself unless a test says otherwise.
    contact: String,
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
            contact: CALLER.into(),
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
            "{method} sip:ivr@198.51.100.5 SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK{branch};rport\nFrom: <sip:alice@192.0.2.1>;tag=alice\nTo: {to}\nCall-ID: call-1\nCSeq: {cseq} {method}\nContact: <sip:alice@{contact}>\nMax-Forwards: 70\n{extra}Content-Length: {len}\n\n{body}",
            to = self.to,
            contact = self.contact,
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

    /// A new call (INVITE `inv1`) that the layer above answers at once: its reference and
    /// the statuses sent so far.
    fn answer_new_call(&mut self) -> (CallRef, Vec<u16>) {
        let call = self.answer_invite("");
        (call, self.statuses())
    }

    /// An INVITE (`inv1`) with an offer and `extra` headers, answered by the layer above at
    /// once: the call's reference (what was sent stays to be looked at).
    fn answer_invite(&mut self, extra: &str) -> CallRef {
        let headers = format!("Content-Type: application/sdp\n{extra}");
        self.request("INVITE", "inv1", &headers, SDP);
        let call = match self.events().as_slice() {
            [UaEvent::Incoming { call, .. }] => *call,
            other => panic!("expected one Incoming, got {other:?}"),
        };
        self.command(UaCommand::Answer {
            call,
            sdp: SDP.into(),
        });
        call
    }

    /// A new call answered and ACKed: its reference.
    fn confirmed_call(&mut self) -> CallRef {
        let (call, sent) = self.answer_new_call();
        assert_eq!(sent, [100, 200]);
        self.ack("");
        assert_eq!(self.events(), [UaEvent::Confirmed { call, answer: None }]);
        call
    }
}

/// The phone's answer to a request the agent sent (our BYE, our UPDATE).
fn reply(phone: &mut Phone, request: &str, status: &str, extra: &str) {
    let mut text = format!("SIP/2.0 {status}\n");
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        text.push_str(&format!("{name}: {}\n", header(request, name).unwrap()));
    }
    text.push_str(extra);
    text.push_str("Content-Length: 0\n\n");
    phone.send(&text);
}

pub(super) fn ended(call: CallRef, reason: EndReason) -> UaEvent {
    UaEvent::Ended { call, reason }
}
