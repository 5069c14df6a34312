//! A call we place (the second leg of a bridge), sans I/O, from our INVITE until it is
//! answered or over: digest challenges (401/407) answered once each with the configured
//! credentials, provisional responses and their early media, our patience running out, and
//! CANCEL (RFC 3261 §9), which may only follow a provisional response: asked for earlier, it
//! waits for one. Once answered, the dialog it hands back is an ordinary confirmed call.

use std::fmt::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rsip::Method;

use super::dialog::{new_branch, new_tag, Dialog};
use super::digest::Challenge;
use super::message::{self, Response, ALLOW};
use super::transaction::{
    InviteClient, InviteClientState, NonInviteClient, Received, TimerAction, Timers,
};
use super::transport::Destination;

/// A challenge answered this many times in a row means the credentials are wrong.
const MAX_CHALLENGES: u8 = 2;

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}, <redacted>)", self.username)
    }
}

/// What the layer above asks to call.
#[derive(Debug, Clone, PartialEq)]
pub struct DialRequest {
    /// The Request-URI (`sip:agents@pbx.example`).
    pub target: String,
    /// Where the INVITE goes: the target's host as located.
    pub destination: Destination,
    /// The user part presented in From (`transfer.present_as`).
    pub caller: String,
    /// Our SDP offer.
    pub offer: String,
    pub credentials: Option<Credentials>,
    /// How long the target may ring before we give up with CANCEL.
    pub patience: Duration,
}

/// Who we are on the wire, as the user agent knows it.
#[derive(Debug, Clone)]
pub struct Local {
    pub public: SocketAddr,
    pub contact: String,
    pub user_agent: String,
}

#[derive(Debug, PartialEq)]
pub enum DialStep {
    Nothing,
    /// A provisional response other than 100; its SDP when it carries one (early media).
    Ringing {
        early: Option<Vec<u8>>,
    },
    /// The 2xx, already acknowledged: its SDP and the dialog it opened.
    Answered {
        dialog: Box<Dialog>,
        answer: Vec<u8>,
    },
    /// A 2xx after we gave up (it crossed our CANCEL): acknowledged, and the dialog must be
    /// ended with BYE at once.
    AnsweredLate {
        dialog: Box<Dialog>,
    },
    /// No call: the final status (486 busy, 408 no answer, 487 cancelled...).
    Failed {
        status: u16,
    },
}

#[derive(Debug)]
enum Cancel {
    NotAsked,
    /// Asked before any provisional response: sent when one comes.
    Waiting,
    Sent(NonInviteClient),
}

#[derive(Debug)]
pub struct Dial {
    request: DialRequest,
    local: Local,
    timers: Timers,
    call_id: String,
    /// Our From, without its tag (the dialog's local URI).
    from: String,
    from_tag: String,
    cseq: u32,
    branch: String,
    client: InviteClient,
    ring_until: Instant,
    provisional: bool,
    cancel: Cancel,
    challenges: u8,
    /// The layer above has heard the outcome (answered or failed).
    told: bool,
    /// The status reported when we gave up, for the record of a late final.
    gave_up: Option<u16>,
    /// Our ACK to the 2xx, repeated for each retransmitted 2xx.
    ack: Option<(Destination, Bytes)>,
    out: Vec<(Destination, Bytes)>,
}

impl Dial {
    /// Builds and queues the INVITE.
    pub fn start(request: DialRequest, local: Local, timers: Timers, now: Instant) -> Dial {
        let host = host_of(local.public.ip());
        let from = format!("<sip:{}@{host}>", request.caller);
        let ring_until = now + request.patience;
        let placeholder = InviteClient::new(Bytes::new(), timers, true, now);
        let mut dial = Dial {
            call_id: format!("{}@{host}", new_tag()),
            from,
            from_tag: new_tag(),
            cseq: 1,
            branch: String::new(),
            client: placeholder,
            ring_until,
            provisional: false,
            cancel: Cancel::NotAsked,
            challenges: 0,
            told: false,
            gave_up: None,
            ack: None,
            out: Vec::new(),
            request,
            local,
            timers,
        };
        dial.send_invite(None, now);
        dial
    }

    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The branch of the INVITE in progress (a new one after each challenge).
    pub fn branch(&self) -> &str {
        &self.branch
    }

    pub fn target(&self) -> &str {
        &self.request.target
    }

    /// Messages to send, in order.
    pub fn drain_out(&mut self) -> impl Iterator<Item = (Destination, Bytes)> + '_ {
        self.out.drain(..)
    }

    pub fn on_response(&mut self, resp: &Response, now: Instant) -> DialStep {
        if resp.cseq_method == Method::Cancel {
            if let Cancel::Sent(client) = &mut self.cancel {
                client.on_response(resp.status, now);
            }
            return DialStep::Nothing;
        }
        if resp.branch.as_deref() != Some(self.branch.as_str()) || resp.cseq != self.cseq {
            return DialStep::Nothing;
        }
        let failure_ack = (resp.status >= 300).then(|| self.head().failure_ack(&resp.to));
        let (received, ack) = self
            .client
            .on_response(resp.status, now, || failure_ack.unwrap_or_default());
        if let Some(ack) = ack {
            self.out.push((self.request.destination, ack));
        }
        match received {
            Received::Provisional => self.on_provisional(resp, now),
            Received::Success { first: true } => self.on_answer(resp),
            Received::Success { first: false } => {
                if let Some(ack) = self.ack.clone() {
                    self.out.push(ack);
                }
                DialStep::Nothing
            }
            Received::Failure => self.on_failure(resp, now),
            Received::Absorbed => DialStep::Nothing,
        }
    }

    /// The layer above no longer wants the call (`status` is what it is told: 487 when it hung
    /// up, 408 when the target rang too long).
    pub fn give_up(&mut self, status: u16, now: Instant) -> DialStep {
        if self.told || self.client.state() == InviteClientState::Accepted {
            return DialStep::Nothing;
        }
        self.told = true;
        self.gave_up = Some(status);
        if self.provisional {
            self.send_cancel(now);
        } else {
            self.cancel = Cancel::Waiting;
        }
        DialStep::Failed { status }
    }

    pub fn on_timer(&mut self, now: Instant) -> DialStep {
        let mut step = DialStep::Nothing;
        if !self.told && now >= self.ring_until {
            step = self.give_up(408, now);
        }
        if let Cancel::Sent(client) = &mut self.cancel {
            if let TimerAction::Retransmit(bytes) = client.on_timer(now) {
                self.out.push((self.request.destination, bytes));
            }
        }
        match self.client.on_timer(now) {
            TimerAction::Retransmit(bytes) => self.out.push((self.request.destination, bytes)),
            TimerAction::TimedOut if !self.told => {
                self.told = true;
                return DialStep::Failed { status: 408 };
            }
            _ => {}
        }
        step
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        let cancel = match &self.cancel {
            Cancel::Sent(client) => client.next_deadline(),
            _ => None,
        };
        let patience = (!self.told).then_some(self.ring_until);
        [self.client.next_deadline(), cancel, patience]
            .into_iter()
            .flatten()
            .min()
    }

    /// Nothing is left to send or absorb.
    pub fn is_finished(&self) -> bool {
        self.client.state() == InviteClientState::Terminated && self.next_deadline().is_none()
    }

    fn on_provisional(&mut self, resp: &Response, now: Instant) -> DialStep {
        self.provisional = true;
        if matches!(self.cancel, Cancel::Waiting) {
            self.send_cancel(now);
        }
        if self.told || resp.status == 100 {
            return DialStep::Nothing;
        }
        let early = (!resp.body.is_empty()).then(|| resp.body.clone());
        DialStep::Ringing { early }
    }

    fn on_answer(&mut self, resp: &Response) -> DialStep {
        let remote_target = resp
            .contacts
            .first()
            .and_then(|c| message::uri_of(c))
            .unwrap_or_else(|| self.request.target.clone());
        let mut dialog = Dialog {
            call_id: self.call_id.clone(),
            local_tag: self.from_tag.clone(),
            local_uri: self.from.clone(),
            remote: resp.to.clone(),
            remote_target,
            route_set: resp.record_route.iter().rev().cloned().collect(),
            remote_cseq: 0,
            // The ACK carries the INVITE's number; `request` counts up to it.
            local_cseq: self.cseq - 1,
            transport: self.request.destination.transport,
            source: self.request.destination.addr,
        };
        let (bytes, destination, _) = dialog.request(
            "ACK",
            self.local.public,
            &self.local.user_agent,
            &[],
            |_| None,
        );
        self.ack = Some((destination, bytes.clone()));
        self.out.push((destination, bytes));
        let dialog = Box::new(dialog);
        if std::mem::replace(&mut self.told, true) {
            return DialStep::AnsweredLate { dialog };
        }
        DialStep::Answered {
            dialog,
            answer: resp.body.clone(),
        }
    }

    fn on_failure(&mut self, resp: &Response, now: Instant) -> DialStep {
        if let (Some((proxy, value)), Some(credentials), false) =
            (&resp.challenge, &self.request.credentials, self.told)
        {
            if self.challenges < MAX_CHALLENGES {
                if let Some(challenge) = Challenge::parse(value) {
                    self.challenges += 1;
                    let header = if *proxy {
                        "Proxy-Authorization"
                    } else {
                        "Authorization"
                    };
                    let cnonce = new_tag();
                    let value = challenge.answer(
                        &credentials.username,
                        &credentials.password,
                        "INVITE",
                        &self.request.target,
                        1,
                        &cnonce,
                    );
                    self.cseq += 1;
                    self.provisional = false;
                    self.send_invite(Some((header, value)), now);
                    return DialStep::Nothing;
                }
            }
        }
        if std::mem::replace(&mut self.told, true) {
            return DialStep::Nothing;
        }
        DialStep::Failed {
            status: resp.status,
        }
    }

    fn head(&self) -> Head<'_> {
        Head {
            target: &self.request.target,
            local: &self.local,
            branch: &self.branch,
            from: &self.from,
            from_tag: &self.from_tag,
            call_id: &self.call_id,
            cseq: self.cseq,
            transport: self.request.destination.transport.via_name(),
        }
    }

    fn send_invite(&mut self, authorization: Option<(&str, String)>, now: Instant) {
        self.branch = new_branch();
        let mut out = self
            .head()
            .start("INVITE", &format!("<{}>", self.request.target));
        let _ = write!(
            out,
            "Contact: {}\r\nAllow: {ALLOW}\r\nUser-Agent: {}\r\n",
            self.local.contact, self.local.user_agent
        );
        let mut extra = Vec::new();
        if let Some((name, value)) = &authorization {
            extra.push((*name, value.as_str()));
        }
        let body = Some(("application/sdp", self.request.offer.as_bytes()));
        let bytes = message::finish(out, &extra, body);
        let reliable = self.request.destination.transport.reliable();
        self.client = InviteClient::new(bytes.clone(), self.timers, reliable, now);
        self.out.push((self.request.destination, bytes));
    }

    fn send_cancel(&mut self, now: Instant) {
        let out = self
            .head()
            .start("CANCEL", &format!("<{}>", self.request.target));
        let bytes = message::finish(out, &[], None);
        let reliable = self.request.destination.transport.reliable();
        let client = NonInviteClient::new(bytes.clone(), self.timers, reliable, now);
        self.cancel = Cancel::Sent(client);
        self.out.push((self.request.destination, bytes));
    }
}

/// The lines an INVITE, its CANCEL and its failure ACK share (§9.1, §17.1.1.3).
struct Head<'a> {
    target: &'a str,
    local: &'a Local,
    branch: &'a str,
    from: &'a str,
    from_tag: &'a str,
    call_id: &'a str,
    cseq: u32,
    transport: &'static str,
}

impl Head<'_> {
    fn start(&self, method: &str, to: &str) -> String {
        let mut out = String::with_capacity(768);
        let _ = write!(
            out,
            "{method} {} SIP/2.0\r\nVia: SIP/2.0/{} {}:{};branch={};rport\r\nMax-Forwards: 70\r\nFrom: {};tag={}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {} {method}\r\n",
            self.target,
            self.transport,
            host_of(self.local.public.ip()),
            self.local.public.port(),
            self.branch,
            self.from,
            self.from_tag,
            self.call_id,
            self.cseq,
        );
        out
    }

    /// The ACK to a failure: the INVITE's branch, and the To of the response (its tag).
    fn failure_ack(&self, to: &str) -> Bytes {
        message::finish(self.start("ACK", to), &[], None)
    }
}

fn host_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(ip) => format!("[{ip}]"),
        IpAddr::V4(ip) => ip.to_string(),
    }
}

#[cfg(test)]
mod tests;
