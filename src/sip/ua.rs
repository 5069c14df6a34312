//! The user-agent core: one task that owns every transaction and dialog, so no locks guard SIP
//! state. It answers what it can on its own (100 Trying, OPTIONS, CANCEL, BYE, 405, 481, 483)
//! and asks the layer above, through `UaEvent`s, only what needs a session: the SDP of an
//! answer. That layer replies with `UaCommand`s.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use rsip::Method;
use tokio::sync::mpsc;
use tokio::time::sleep_until;

use super::admission::{Admission, AdmissionLimits, Verdict};
use super::dialog::{new_tag, Dialog};
use super::info::{self, InfoDtmf};
use super::message::{self, Message, Request, Response, ALLOW};
use super::transaction::{
    InviteServer, InviteState, NonInviteClient, NonInviteServer, TimerAction, Timers,
};
use super::transport::{Destination, Inbound, Transport, TransportHandle};

pub type CallRef = u64;

/// How often refused INVITEs are summed up in the log (one line per interval, not per packet).
const REFUSAL_REPORT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug)]
pub enum UaEvent {
    /// A new call wants an answer (`Answer` or `Reject`).
    Incoming {
        call: CallRef,
        call_id: String,
        from: String,
        offer: Option<Vec<u8>>,
    },
    /// A re-INVITE wants an answer (or an offer, when it has no SDP).
    Reinvite {
        call: CallRef,
        offer: Option<Vec<u8>>,
    },
    /// The ACK arrived; it carries the answer when we made the offer.
    Confirmed {
        call: CallRef,
        answer: Option<Vec<u8>>,
    },
    /// A key sent in a SIP INFO.
    InfoDigit { call: CallRef, digit: char },
    /// Sent exactly once for every `Incoming`.
    Ended { call: CallRef, reason: EndReason },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    CallerHungUp,
    Cancelled,
    AckTimeout,
    HungUp,
    Rejected,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::CallerHungUp => "caller-bye",
            EndReason::Cancelled => "cancelled",
            EndReason::AckTimeout => "ack-timeout",
            EndReason::HungUp => "server-bye",
            EndReason::Rejected => "rejected",
        }
    }
}

#[derive(Debug)]
pub enum UaCommand {
    /// 180 Ringing while the layer above waits before answering.
    Ring {
        call: CallRef,
    },
    Answer {
        call: CallRef,
        sdp: String,
    },
    Reject {
        call: CallRef,
        status: u16,
        reason: &'static str,
        warning: Option<String>,
    },
    Hangup {
        call: CallRef,
    },
}

#[derive(Debug, Clone)]
pub struct UaConfig {
    pub timers: Timers,
    pub public: SocketAddr,
    pub user_agent: String,
    /// How long an answered call may wait for its ACK before its media is released. Much
    /// shorter than Timer H (64·T1), so a never-ACKed INVITE holds a port only briefly.
    pub ack_wait: std::time::Duration,
    pub admission: AdmissionLimits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The INVITE waits for the layer above.
    Offered,
    /// 2xx sent, no ACK yet.
    Answered,
    Confirmed,
    /// We sent BYE (or a final failure); waiting for the transactions to finish.
    Ending,
}

struct Call {
    dialog: Dialog,
    phase: Phase,
    invite: Option<(Box<Request>, InviteServer)>,
    bye: Option<(NonInviteClient, Destination)>,
    /// Keys this call holds in `invites` and `byes`, so forgetting it touches only them.
    branches: Vec<String>,
    /// The layer above asked to hang up before the ACK; BYE goes once it is possible.
    hangup_pending: bool,
    ended: bool,
    armed: Option<Instant>,
    /// Counted by admission control as waiting for its ACK.
    unconfirmed: bool,
    /// When an answered call without ACK is given up (its media released).
    ack_deadline: Option<Instant>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum TimerKey {
    Call(CallRef),
    Server(String, String),
    RefusalReport,
}

pub struct UserAgent {
    config: UaConfig,
    transport: TransportHandle,
    events: mpsc::UnboundedSender<UaEvent>,
    next_ref: CallRef,
    calls: HashMap<CallRef, Call>,
    /// (Call-ID, our tag) → call
    dialogs: HashMap<(String, String), CallRef>,
    /// INVITE branch → call, for retransmissions, CANCEL and non-2xx ACK.
    invites: HashMap<String, CallRef>,
    /// Our BYE's branch → call, for its responses.
    byes: HashMap<String, CallRef>,
    servers: HashMap<(String, String), (NonInviteServer, Option<Instant>)>,
    timers: BinaryHeap<Reverse<(Instant, TimerKey)>>,
    admission: Admission,
    report_armed: bool,
}

impl UserAgent {
    pub fn new(
        config: UaConfig,
        transport: TransportHandle,
        events: mpsc::UnboundedSender<UaEvent>,
    ) -> Self {
        UserAgent {
            transport,
            events,
            next_ref: 1,
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            invites: HashMap::new(),
            byes: HashMap::new(),
            servers: HashMap::new(),
            timers: BinaryHeap::new(),
            admission: Admission::new(config.admission),
            report_armed: false,
            config,
        }
    }

    pub async fn run(
        mut self,
        mut inbound: mpsc::Receiver<Inbound>,
        mut commands: mpsc::UnboundedReceiver<UaCommand>,
    ) {
        loop {
            let next = self.timers.peek().map(|Reverse((t, _))| *t);
            tokio::select! {
                Some(msg) = inbound.recv() => self.on_inbound(msg),
                Some(cmd) = commands.recv() => self.on_command(cmd),
                () = sleep_until(next.unwrap_or_else(Instant::now).into()), if next.is_some() => {
                    self.on_timers(Instant::now());
                }
                else => return,
            }
        }
    }

    fn send(&self, dest: Destination, bytes: Bytes) {
        self.transport.send(dest, bytes);
    }

    fn contact(&self, transport: Transport) -> String {
        let suffix = if transport == Transport::Tcp {
            ";transport=tcp"
        } else {
            ""
        };
        match self.config.public {
            SocketAddr::V4(a) => format!("<sip:ivr@{}:{}{suffix}>", a.ip(), a.port()),
            SocketAddr::V6(a) => format!("<sip:ivr@[{}]:{}{suffix}>", a.ip(), a.port()),
        }
    }

    /// RFC 3261 §18.2.2 with RFC 3581: to the source IP, at rport or the sent-by port.
    fn reply_destination(req: &Request, source: SocketAddr, transport: Transport) -> Destination {
        let addr = match transport {
            Transport::Tcp => source,
            Transport::Udp if req.top_via.rport => source,
            Transport::Udp => SocketAddr::new(source.ip(), req.top_via.port.unwrap_or(5060)),
        };
        Destination { transport, addr }
    }

    fn on_inbound(&mut self, inbound: Inbound) {
        match inbound.message {
            Ok(Message::Request(req)) => self.on_request(req, inbound.source, inbound.transport),
            Ok(Message::Response(resp)) => self.on_response(resp),
            Err(unusable) => {
                tracing::debug!(source = %inbound.source, "unusable SIP message: {}", unusable.why);
                if let Some(reply) = unusable.reply {
                    let dest = Destination {
                        transport: inbound.transport,
                        addr: inbound.source,
                    };
                    self.send(dest, reply);
                }
            }
        }
    }

    /// Answers a non-INVITE request statelessly-but-remembered (Timer J absorbs retransmissions).
    fn answer_plain(
        &mut self,
        req: &Request,
        source: SocketAddr,
        transport: Transport,
        status: u16,
        reason: &str,
        extra: &[(&str, &str)],
    ) {
        let bytes = message::response(req, status, reason, Some(&new_tag()), extra, None);
        self.send(
            Self::reply_destination(req, source, transport),
            bytes.clone(),
        );
        if req.method == Method::Ack {
            return;
        }
        let key = (req.top_via.branch.clone(), req.method.to_string());
        let mut server = NonInviteServer::new(self.config.timers, transport.reliable());
        server.respond(bytes, status, Instant::now());
        self.servers.insert(key.clone(), (server, None));
        self.rearm(TimerKey::Server(key.0, key.1));
    }

    fn no_such_call(&mut self, req: &Request, source: SocketAddr, transport: Transport) {
        self.answer_plain(
            req,
            source,
            transport,
            481,
            "Call/Transaction Does Not Exist",
            &[],
        );
    }

    fn on_request(&mut self, req: Box<Request>, source: SocketAddr, transport: Transport) {
        let branch = req.top_via.branch.clone();
        // Retransmissions first: they must never reach the layer above twice.
        if req.method == Method::Invite {
            if let Some(call) = self.invites.get(&branch).and_then(|r| self.calls.get(r)) {
                if let Some(bytes) = call
                    .invite
                    .as_ref()
                    .and_then(|(_, tx)| tx.on_retransmission())
                {
                    self.send(Self::reply_destination(&req, source, transport), bytes);
                }
                return;
            }
        } else if req.method != Method::Ack {
            if let Some((server, _)) = self.servers.get(&(branch.clone(), req.method.to_string())) {
                if let Some(bytes) = server.on_retransmission() {
                    self.send(Self::reply_destination(&req, source, transport), bytes);
                }
                return;
            }
        }
        if req.method == Method::Ack {
            return self.on_ack(&req);
        }
        if req.max_forwards == Some(0) {
            return self.answer_plain(&req, source, transport, 483, "Too Many Hops", &[]);
        }
        if !req.require.is_empty() && req.method != Method::Cancel {
            let unsupported = req.require.join(", ");
            return self.answer_plain(
                &req,
                source,
                transport,
                420,
                "Bad Extension",
                &[("Unsupported", &unsupported)],
            );
        }
        match req.method {
            Method::Invite if req.to_tag.is_none() => self.on_new_invite(req, source, transport),
            Method::Invite => self.on_reinvite(req, source, transport),
            Method::Cancel => self.on_cancel(&req, source, transport),
            Method::Bye => self.on_bye(&req, source, transport),
            Method::Options if req.to_tag.is_none() => {
                let accept = "application/sdp, application/dtmf-relay, application/dtmf";
                let extra = [
                    ("Allow", ALLOW),
                    ("Accept", accept),
                    ("Supported", ""),
                    ("Server", &self.config.user_agent.clone()),
                ];
                self.answer_plain(&req, source, transport, 200, "OK", &extra);
            }
            Method::Options | Method::Info => {
                let Some(call_ref) = self.find_dialog(&req) else {
                    return self.no_such_call(&req, source, transport);
                };
                if req.method == Method::Options {
                    return self.answer_plain(
                        &req,
                        source,
                        transport,
                        200,
                        "OK",
                        &[("Allow", ALLOW)],
                    );
                }
                match info::dtmf_from_info(req.content_type.as_deref(), &req.body) {
                    InfoDtmf::Digit(digit) => {
                        let _ = self.events.send(UaEvent::InfoDigit {
                            call: call_ref,
                            digit,
                        });
                        self.answer_plain(&req, source, transport, 200, "OK", &[]);
                    }
                    InfoDtmf::Empty => self.answer_plain(&req, source, transport, 200, "OK", &[]),
                    InfoDtmf::Unsupported => {
                        let extra = [("Accept", info::ACCEPT)];
                        self.answer_plain(
                            &req,
                            source,
                            transport,
                            415,
                            "Unsupported Media Type",
                            &extra,
                        );
                    }
                    InfoDtmf::Malformed => {
                        self.answer_plain(&req, source, transport, 400, "Bad Request", &[])
                    }
                }
            }
            _ => self.answer_plain(
                &req,
                source,
                transport,
                405,
                "Method Not Allowed",
                &[("Allow", ALLOW)],
            ),
        }
    }

    fn find_dialog(&self, req: &Request) -> Option<CallRef> {
        let tag = req.to_tag.clone()?;
        let call = *self.dialogs.get(&(req.call_id.clone(), tag))?;
        self.calls.get(&call).filter(|c| !c.ended).map(|_| call)
    }

    fn on_new_invite(&mut self, req: Box<Request>, source: SocketAddr, transport: Transport) {
        let now = Instant::now();
        match self.admission.on_invite(source.ip(), now) {
            Verdict::Admit => {}
            Verdict::Busy { retry_after, .. } => {
                self.arm_refusal_report(now);
                let retry_after = retry_after.to_string();
                return self.send_invite_failure(
                    &req,
                    source,
                    transport,
                    503,
                    "Service Unavailable",
                    Some(&retry_after),
                );
            }
            Verdict::Ignore { .. } => return self.arm_refusal_report(now),
        }
        let call_ref = self.next_ref;
        self.next_ref += 1;
        let local_tag = new_tag();
        let dialog = Dialog::from_invite(&req, local_tag.clone(), source, transport);
        let mut tx = InviteServer::new(self.config.timers, transport.reliable());
        let trying = message::response(&req, 100, "Trying", None, &[], None);
        tx.respond(trying.clone(), 100, Instant::now());
        self.send(Self::reply_destination(&req, source, transport), trying);
        tracing::info!(call_id = %req.call_id, from = %req.from, %source, ?transport, "call offered");
        let event = UaEvent::Incoming {
            call: call_ref,
            call_id: req.call_id.clone(),
            from: req.from.clone(),
            offer: (!req.body.is_empty()).then(|| req.body.clone()),
        };
        let branch = req.top_via.branch.clone();
        self.invites.insert(branch.clone(), call_ref);
        self.dialogs
            .insert((req.call_id.clone(), local_tag), call_ref);
        self.calls.insert(
            call_ref,
            Call {
                dialog,
                phase: Phase::Offered,
                invite: Some((req, tx)),
                bye: None,
                branches: vec![branch],
                hangup_pending: false,
                ended: false,
                armed: None,
                unconfirmed: true,
                ack_deadline: None,
            },
        );
        let _ = self.events.send(event);
    }

    fn on_reinvite(&mut self, req: Box<Request>, source: SocketAddr, transport: Transport) {
        let Some(call_ref) = self.find_dialog(&req) else {
            return self.send_invite_failure(
                &req,
                source,
                transport,
                481,
                "Call/Transaction Does Not Exist",
                None,
            );
        };
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        let busy = call.phase != Phase::Confirmed
            || call.invite.as_ref().is_some_and(|(_, tx)| {
                tx.state() == InviteState::Proceeding || tx.state() == InviteState::Accepted
            });
        if busy {
            return self.send_invite_failure(
                &req,
                source,
                transport,
                500,
                "Server Internal Error",
                Some("1"),
            );
        }
        if !call.dialog.accept_remote_cseq(req.cseq) {
            return self.send_invite_failure(
                &req,
                source,
                transport,
                500,
                "Server Internal Error",
                Some("1"),
            );
        }
        call.dialog.refresh_target(&req);
        let mut tx = InviteServer::new(self.config.timers, transport.reliable());
        let trying = message::response(&req, 100, "Trying", None, &[], None);
        tx.respond(trying.clone(), 100, Instant::now());
        self.transport
            .send(Self::reply_destination(&req, source, transport), trying);
        let offer = (!req.body.is_empty()).then(|| req.body.clone());
        tracing::info!(call_id = %req.call_id, with_sdp = offer.is_some(), "re-INVITE");
        self.invites.insert(req.top_via.branch.clone(), call_ref);
        call.branches.push(req.top_via.branch.clone());
        call.phase = Phase::Offered;
        call.invite = Some((req, tx));
        let _ = self.events.send(UaEvent::Reinvite {
            call: call_ref,
            offer,
        });
    }

    /// Refuses an INVITE that has no usable call (481, or 500 while another INVITE is pending).
    /// Sent once: its ACK matches nothing and is dropped.
    fn send_invite_failure(
        &mut self,
        req: &Request,
        source: SocketAddr,
        transport: Transport,
        status: u16,
        reason: &str,
        retry_after: Option<&str>,
    ) {
        let mut extra: Vec<(&str, &str)> = Vec::new();
        if let Some(seconds) = retry_after {
            extra.push(("Retry-After", seconds));
        }
        let bytes = message::response(req, status, reason, Some(&new_tag()), &extra, None);
        self.send(Self::reply_destination(req, source, transport), bytes);
    }

    fn on_cancel(&mut self, req: &Request, source: SocketAddr, transport: Transport) {
        let Some(&call_ref) = self.invites.get(&req.top_via.branch) else {
            return self.no_such_call(req, source, transport);
        };
        self.answer_plain(req, source, transport, 200, "OK", &[]);
        let ringing = self
            .calls
            .get(&call_ref)
            .is_some_and(|c| c.phase == Phase::Offered && c.dialog.remote_cseq == req.cseq);
        if ringing {
            tracing::info!(call_id = %req.call_id, "call cancelled before answer");
            self.final_failure(call_ref, 487, "Request Terminated", None);
            self.end(call_ref, EndReason::Cancelled);
        }
    }

    fn on_bye(&mut self, req: &Request, source: SocketAddr, transport: Transport) {
        let Some(call_ref) = self.find_dialog(req) else {
            return self.no_such_call(req, source, transport);
        };
        self.answer_plain(req, source, transport, 200, "OK", &[]);
        if let Some(call) = self.calls.get_mut(&call_ref) {
            // A BYE before the ACK ends the 2xx retransmissions too.
            if let Some((_, tx)) = &mut call.invite {
                tx.on_ack(Instant::now());
            }
            call.phase = Phase::Ending;
        }
        self.end(call_ref, EndReason::CallerHungUp);
    }

    fn on_ack(&mut self, req: &Request) {
        let call_ref = match (req.to_tag.as_ref(), self.invites.get(&req.top_via.branch)) {
            // ACK to a failure shares the INVITE's branch.
            (_, Some(&r)) => r,
            (Some(_), None) => match self
                .dialogs
                .get(&(req.call_id.clone(), req.to_tag.clone().unwrap_or_default()))
            {
                Some(&r) => r,
                None => return,
            },
            _ => return,
        };
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        let Some((invite, tx)) = &mut call.invite else {
            return;
        };
        if invite.cseq != req.cseq {
            return;
        }
        // The ACK of a 2xx must name our tag: a stranger who never saw the 200 cannot confirm
        // a call (and start its media) with the INVITE's branch alone.
        if call.phase == Phase::Answered && req.to_tag.as_ref() != Some(&call.dialog.local_tag) {
            return;
        }
        let now = Instant::now();
        if !tx.on_ack(now) || call.phase != Phase::Answered {
            self.rearm(TimerKey::Call(call_ref));
            return;
        }
        call.phase = Phase::Confirmed;
        call.ack_deadline = None;
        if std::mem::take(&mut call.unconfirmed) {
            self.admission.confirmed(call.dialog.source.ip(), now);
        }
        if call.ended {
            // Too late: its media is gone. End the dialog properly.
            tracing::info!(call_id = %call.dialog.call_id, "ACK after the media was released, sending BYE");
            self.send_bye(call_ref, EndReason::AckTimeout);
            self.rearm(TimerKey::Call(call_ref));
            return;
        }
        let pending = call.hangup_pending;
        tracing::info!(call_id = %call.dialog.call_id, "call confirmed (ACK)");
        let _ = self.events.send(UaEvent::Confirmed {
            call: call_ref,
            answer: (!req.body.is_empty()).then(|| req.body.clone()),
        });
        if pending {
            self.send_bye(call_ref, EndReason::HungUp);
        }
        self.rearm(TimerKey::Call(call_ref));
    }

    fn on_response(&mut self, resp: Response) {
        if resp.cseq_method != Method::Bye {
            return;
        }
        let Some(&call_ref) = resp.branch.as_ref().and_then(|b| self.byes.get(b)) else {
            return;
        };
        let Some((bye, _)) = self.calls.get_mut(&call_ref).and_then(|c| c.bye.as_mut()) else {
            return;
        };
        if bye.on_response(resp.status, Instant::now()) {
            tracing::info!(call_id = %resp.call_id, status = resp.status, "BYE answered");
        }
        self.rearm(TimerKey::Call(call_ref));
    }

    fn on_command(&mut self, command: UaCommand) {
        match command {
            UaCommand::Ring { call } => self.ring(call),
            UaCommand::Answer { call, sdp } => self.answer(call, sdp),
            UaCommand::Reject {
                call,
                status,
                reason,
                warning,
            } => {
                let offered = self
                    .calls
                    .get(&call)
                    .is_some_and(|c| c.phase == Phase::Offered);
                if offered {
                    let initial = self.calls.get(&call).is_some_and(|c| {
                        c.invite.as_ref().is_some_and(|(r, _)| r.to_tag.is_none())
                    });
                    self.final_failure(call, status, reason, warning);
                    if initial {
                        self.end(call, EndReason::Rejected);
                    } else if let Some(c) = self.calls.get_mut(&call) {
                        c.phase = Phase::Confirmed;
                    }
                }
            }
            UaCommand::Hangup { call } => self.hangup(call),
        }
    }

    fn ring(&mut self, call_ref: CallRef) {
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        if call.phase != Phase::Offered {
            return;
        }
        let Some((req, tx)) = &mut call.invite else {
            return;
        };
        let bytes = message::response(req, 180, "Ringing", Some(&call.dialog.local_tag), &[], None);
        tx.respond(bytes.clone(), 180, Instant::now());
        let dest = Self::reply_destination(req, call.dialog.source, call.dialog.transport);
        self.send(dest, bytes);
    }

    fn answer(&mut self, call_ref: CallRef, sdp: String) {
        let contact = self.contact(
            self.calls
                .get(&call_ref)
                .map_or(Transport::Udp, |c| c.dialog.transport),
        );
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        if call.phase != Phase::Offered || call.ended {
            return;
        }
        let Some((req, tx)) = &mut call.invite else {
            return;
        };
        let record_route: Vec<String> = req.record_route.clone();
        let mut extra: Vec<(&str, &str)> = vec![
            ("Contact", &contact),
            ("Allow", ALLOW),
            ("Server", &self.config.user_agent),
        ];
        for rr in &record_route {
            extra.push(("Record-Route", rr));
        }
        let bytes = message::response(
            req,
            200,
            "OK",
            Some(&call.dialog.local_tag),
            &extra,
            Some(("application/sdp", sdp.as_bytes())),
        );
        let now = Instant::now();
        tx.respond(bytes.clone(), 200, now);
        let dest = Self::reply_destination(req, call.dialog.source, call.dialog.transport);
        call.phase = Phase::Answered;
        if call.unconfirmed {
            call.ack_deadline = Some(now + self.config.ack_wait);
        }
        tracing::info!(call_id = %call.dialog.call_id, "answered 200 OK");
        self.send(dest, bytes);
        self.rearm(TimerKey::Call(call_ref));
    }

    fn final_failure(
        &mut self,
        call_ref: CallRef,
        status: u16,
        reason: &str,
        warning: Option<String>,
    ) {
        let host = self.config.public.ip().to_string();
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        let Some((req, tx)) = &mut call.invite else {
            return;
        };
        let warning = warning.map(|w| {
            format!(
                "{} {host} \"{}\"",
                w.get(..3).unwrap_or("399"),
                w.get(4..).unwrap_or(&w)
            )
        });
        let retry_after = self.config.ack_wait.as_secs().max(1).to_string();
        let mut extra: Vec<(&str, &str)> = Vec::new();
        if let Some(w) = &warning {
            extra.push(("Warning", w));
        }
        // Out of capacity: pending calls give their ports back within the ACK wait.
        if status == 503 {
            extra.push(("Retry-After", &retry_after));
        }
        let bytes = message::response(
            req,
            status,
            reason,
            Some(&call.dialog.local_tag),
            &extra,
            None,
        );
        tx.respond(bytes.clone(), status, Instant::now());
        let dest = Self::reply_destination(req, call.dialog.source, call.dialog.transport);
        tracing::info!(call_id = %call.dialog.call_id, status, "INVITE refused");
        self.send(dest, bytes);
        self.rearm(TimerKey::Call(call_ref));
    }

    fn hangup(&mut self, call_ref: CallRef) {
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        match call.phase {
            Phase::Offered
                if call
                    .invite
                    .as_ref()
                    .is_some_and(|(r, _)| r.to_tag.is_none()) =>
            {
                self.final_failure(call_ref, 480, "Temporarily Unavailable", None);
                self.end(call_ref, EndReason::HungUp);
            }
            // §15: no BYE before the ACK; it goes when the ACK comes or the wait times out.
            Phase::Answered => call.hangup_pending = true,
            Phase::Ending => {}
            _ => self.send_bye(call_ref, EndReason::HungUp),
        }
    }

    fn send_bye(&mut self, call_ref: CallRef, reason: EndReason) {
        let local = self.transport.local_addr();
        let local = SocketAddr::new(self.config.public.ip(), local.port());
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        if call.bye.is_some() {
            return;
        }
        let (bytes, dest, branch) = call.dialog.bye(local, &self.config.user_agent);
        self.byes.insert(branch.clone(), call_ref);
        call.branches.push(branch);
        let client = NonInviteClient::new(
            bytes.clone(),
            self.config.timers,
            dest.transport.reliable(),
            Instant::now(),
        );
        call.bye = Some((client, dest));
        call.phase = Phase::Ending;
        tracing::info!(call_id = %call.dialog.call_id, to = %dest.addr, "sending BYE");
        self.send(dest, bytes);
        self.end(call_ref, reason);
    }

    /// Tells the layer above, once, that the call is over; the SIP state lingers until its
    /// transactions finish.
    fn end(&mut self, call_ref: CallRef, reason: EndReason) {
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        if std::mem::take(&mut call.unconfirmed) {
            self.admission.finished(call.dialog.source.ip());
        }
        if !call.ended {
            call.ended = true;
            tracing::info!(call_id = %call.dialog.call_id, reason = reason.as_str(), "call ended");
            let _ = self.events.send(UaEvent::Ended {
                call: call_ref,
                reason,
            });
        }
        self.rearm(TimerKey::Call(call_ref));
    }

    fn rearm(&mut self, key: TimerKey) {
        let (next, armed) = match &key {
            TimerKey::Call(r) => {
                let Some(call) = self.calls.get_mut(r) else {
                    return;
                };
                let next = [
                    call.invite.as_ref().and_then(|(_, tx)| tx.next_deadline()),
                    call.bye.as_ref().and_then(|(b, _)| b.next_deadline()),
                    call.ack_deadline,
                ]
                .into_iter()
                .flatten()
                .min();
                let done = call.ended && next.is_none();
                if done {
                    self.forget(*r);
                    return;
                }
                (next, &mut call.armed)
            }
            TimerKey::Server(b, m) => {
                let Some((server, armed)) = self.servers.get_mut(&(b.clone(), m.clone())) else {
                    return;
                };
                (server.next_deadline(), armed)
            }
            TimerKey::RefusalReport => return,
        };
        if next != *armed {
            *armed = next;
            if let Some(at) = next {
                self.timers.push(Reverse((at, key)));
            }
        }
    }

    fn forget(&mut self, call_ref: CallRef) {
        if let Some(call) = self.calls.remove(&call_ref) {
            self.dialogs
                .remove(&(call.dialog.call_id.clone(), call.dialog.local_tag.clone()));
            for branch in &call.branches {
                self.invites.remove(branch);
                self.byes.remove(branch);
            }
        }
    }

    fn on_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, key))) = self.timers.pop() else {
                break;
            };
            match key {
                TimerKey::Server(b, m) => {
                    let k = (b, m);
                    let Some((server, armed)) = self.servers.get_mut(&k) else {
                        continue;
                    };
                    if *armed != Some(at) {
                        continue;
                    }
                    *armed = None;
                    if server.on_timer(now) == TimerAction::Terminated {
                        self.servers.remove(&k);
                    } else {
                        self.rearm(TimerKey::Server(k.0, k.1));
                    }
                }
                TimerKey::RefusalReport => self.report_refusals(),
                TimerKey::Call(r) => {
                    let Some(call) = self.calls.get_mut(&r) else {
                        continue;
                    };
                    if call.armed != Some(at) {
                        continue;
                    }
                    call.armed = None;
                    self.call_timers(r, now);
                    self.rearm(TimerKey::Call(r));
                }
            }
        }
    }

    fn call_timers(&mut self, call_ref: CallRef, now: Instant) {
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        let dest = call.invite.as_ref().map(|(req, _)| {
            Self::reply_destination(req, call.dialog.source, call.dialog.transport)
        });
        let mut ack_timeout = false;
        if let Some((_, tx)) = &mut call.invite {
            match tx.on_timer(now) {
                TimerAction::Retransmit(bytes) => {
                    if let Some(dest) = dest {
                        tracing::debug!(call_id = %call.dialog.call_id, "retransmitting final response");
                        self.transport.send(dest, bytes);
                    }
                }
                TimerAction::TimedOut => {
                    ack_timeout = call.phase == Phase::Answered;
                    call.invite = None;
                }
                TimerAction::Terminated => call.invite = None,
                TimerAction::Nothing => {}
            }
        }
        if let Some((bye, dest)) = &mut call.bye {
            match bye.on_timer(now) {
                TimerAction::Retransmit(bytes) => self.transport.send(*dest, bytes),
                TimerAction::TimedOut => {
                    tracing::info!(call_id = %call.dialog.call_id, "BYE got no answer (Timer F)");
                    call.bye = None;
                }
                TimerAction::Terminated => call.bye = None,
                TimerAction::Nothing => {}
            }
        }
        let ack_overdue = call.ack_deadline.is_some_and(|at| at <= now);
        if ack_overdue {
            call.ack_deadline = None;
            tracing::info!(call_id = %call.dialog.call_id, "no ACK yet, releasing the call's media");
            self.end(call_ref, EndReason::AckTimeout);
        }
        if ack_timeout {
            let Some(call) = self.calls.get_mut(&call_ref) else {
                return;
            };
            tracing::warn!(call_id = %call.dialog.call_id, "no ACK for 2xx within 64*T1, tearing down");
            call.phase = Phase::Confirmed;
            self.send_bye(call_ref, EndReason::AckTimeout);
        }
    }

    fn arm_refusal_report(&mut self, now: Instant) {
        if !self.report_armed {
            self.report_armed = true;
            self.timers
                .push(Reverse((now + REFUSAL_REPORT, TimerKey::RefusalReport)));
        }
    }

    /// One line per reason for the INVITEs refused since the last report.
    fn report_refusals(&mut self) {
        self.report_armed = false;
        for (refusal, silent, count) in self.admission.take_refusals() {
            let answer = if silent { "ignored" } else { "503" };
            tracing::warn!(
                reason = refusal.as_str(),
                answer,
                count,
                sources = self.admission.sources(),
                "INVITEs refused by admission control in the last {}s",
                REFUSAL_REPORT.as_secs()
            );
        }
    }
}
