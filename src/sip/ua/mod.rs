//! The user-agent core, sans I/O (in the manner of quinn-proto's `Connection` and str0m's
//! `Rtc`): SIP messages, commands from the layer above and timeouts go in with the time they
//! happen at; datagrams to send, events for the layer above and the next deadline come out. It
//! owns every transaction and dialog, never reads a clock, owns no socket and spawns nothing,
//! so its tests drive whole calls faster than real time. `sip::driver` feeds it.
//!
//! It answers what it can on its own (100 Trying, OPTIONS, CANCEL, BYE, 405, 481, 483, and
//! admission control's 503) and asks the layer above, through `UaEvent`s, only what needs a
//! session: the SDP of an answer. That layer replies with `UaCommand`s.

mod dial;
mod gate;
mod in_dialog;
mod invite;
mod leg;
mod provisional;
mod requests;
mod session;
#[cfg(test)]
mod tests;
mod transfer;
mod trunks;
mod vocabulary;

pub use vocabulary::*;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rsip::Method;

use super::admission::Admission;
use super::auth::Authenticator;
use super::message::{self, Message};
use super::registration::Registration;
use super::transaction::{NonInviteServer, TimerAction};
use super::transport::{Destination, Inbound, Transport};
use leg::Leg;

/// How often refused INVITEs are summed up in the log (one line per interval, not per packet).
const REFUSAL_REPORT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum TimerKey {
    Call(CallRef),
    Server(String, String),
    RefusalReport,
    Registration(usize),
    Dial(CallRef),
}

pub struct UserAgent {
    config: UaConfig,
    next_ref: CallRef,
    calls: HashMap<CallRef, Leg>,
    /// (Call-ID, our tag) → call
    dialogs: HashMap<(String, String), CallRef>,
    /// INVITE branch → call, for retransmissions, CANCEL and non-2xx ACK.
    invites: HashMap<String, CallRef>,
    /// Our BYE's branch → call, for its responses.
    byes: HashMap<String, CallRef>,
    /// Our refreshing UPDATE's branch → call, for its responses.
    updates: HashMap<String, CallRef>,
    /// Branches of our REFERs.
    refers: HashMap<String, CallRef>,
    /// Calls we place, until answered or over (an answered one is also in `calls`).
    dials: HashMap<CallRef, dial::Outbound>,
    /// Our INVITEs' branches (and their CANCELs') → the call placed.
    dial_branches: HashMap<String, CallRef>,
    /// Non-INVITE server transactions by (branch, method), each with its armed deadline.
    servers: HashMap<(String, String), (NonInviteServer, Option<Instant>)>,
    timers: BinaryHeap<Reverse<(Instant, TimerKey)>>,
    admission: Admission,
    auth: Option<Authenticator>,
    report_armed: bool,
    draining: bool,
    /// Each trunk's registration and when its timer is armed.
    registrations: Vec<(Registration, Option<Instant>)>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<UaEvent>,
}

impl UserAgent {
    pub fn new(config: UaConfig) -> Self {
        let registrations = config
            .trunks
            .iter()
            .map(|trunk| {
                let local = match (trunk.transport, config.tls_port) {
                    (Transport::Tls, Some(port)) => SocketAddr::new(config.public.ip(), port),
                    _ => config.public,
                };
                let registration =
                    Registration::new(trunk.clone(), local, &config.user_agent, config.timers);
                (registration, None)
            })
            .collect();
        UserAgent {
            registrations,
            next_ref: 1,
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            invites: HashMap::new(),
            byes: HashMap::new(),
            updates: HashMap::new(),
            refers: HashMap::new(),
            dials: HashMap::new(),
            dial_branches: HashMap::new(),
            servers: HashMap::new(),
            timers: BinaryHeap::new(),
            admission: Admission::new(config.admission),
            auth: config.auth.clone().map(|settings| {
                let mut key = [0; 32];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
                Authenticator::new(settings, key)
            }),
            report_armed: false,
            draining: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            config,
        }
    }

    /// Bytes that arrived from `source`: parsed, then handled as `handle_inbound`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        transport: Transport,
        bytes: &[u8],
    ) {
        let message = message::parse(bytes, source);
        self.handle_inbound(
            now,
            Inbound {
                message,
                source,
                transport,
            },
        );
    }

    /// A message the transport already parsed.
    pub fn handle_inbound(&mut self, now: Instant, inbound: Inbound) {
        match inbound.message {
            Ok(Message::Request(req)) => {
                self.on_request(now, req, inbound.source, inbound.transport)
            }
            Ok(Message::Response(resp)) if resp.cseq_method == Method::Register => {
                self.registration_response(now, &resp)
            }
            Ok(Message::Response(resp)) if resp.cseq_method == Method::Update => {
                self.on_update_response(now, &resp)
            }
            Ok(Message::Response(resp)) if resp.cseq_method == Method::Refer => {
                self.on_refer_response(now, &resp)
            }
            Ok(Message::Response(resp))
                if matches!(resp.cseq_method, Method::Invite | Method::Cancel) =>
            {
                self.on_dial_response(now, &resp)
            }
            Ok(Message::Response(resp)) => self.on_bye_response(now, *resp),
            Err(unusable) => {
                tracing::debug!(source = %inbound.source, "unusable SIP message: {}", unusable.why);
                if let Some(bytes) = unusable.reply {
                    let destination = Destination {
                        transport: inbound.transport,
                        addr: inbound.source,
                    };
                    self.transmits.push_back(Transmit { destination, bytes });
                }
            }
        }
    }

    pub fn handle_command(&mut self, now: Instant, command: UaCommand) {
        match command {
            UaCommand::Ring { call } => self.ring(now, call),
            UaCommand::Answer { call, sdp } => self.answer(now, call, sdp),
            UaCommand::Decline { call, decline } => self.decline(now, call, decline),
            UaCommand::Hangup { call } => self.hangup(now, call),
            UaCommand::Transfer { call, target } => self.refer(now, call, &target),
            UaCommand::Dial { call, request } => self.dial(now, call, request),
            UaCommand::TrunkTargets { trunk, targets } => self.trunk_targets(now, trunk, targets),
            UaCommand::Drain => {
                tracing::info!(calls = self.calls.len(), "draining: new calls get 503");
                self.draining = true;
                self.unregister_all(now);
            }
        }
    }

    /// Runs every timer due by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, key))) = self.timers.pop() else {
                break;
            };
            match key {
                TimerKey::RefusalReport => self.report_refusals(),
                TimerKey::Registration(index) => self.registration_timer(now, index, at),
                TimerKey::Server(branch, method) => self.server_timer(now, at, (branch, method)),
                TimerKey::Dial(leg) => self.dial_timer(now, leg, at),
                TimerKey::Call(r) => {
                    let Some(call) = self.calls.get_mut(&r) else {
                        continue;
                    };
                    if call.armed != Some(at) {
                        continue;
                    }
                    call.armed = None;
                    self.call_timers(now, r);
                    self.session_timers(now, r);
                    self.rearm(TimerKey::Call(r));
                }
            }
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<UaEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    fn send(&mut self, destination: Destination, bytes: Bytes) {
        self.transmits.push_back(Transmit { destination, bytes });
    }

    /// Tells the layer above, once, that the call is over; the SIP state lingers until its
    /// transactions finish.
    fn tell_ended(&mut self, call_ref: CallRef, reason: EndReason) {
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        if let Some(caller) = call.unconfirmed.take() {
            self.admission.finished(caller);
        }
        // A transfer still under way has no one left to tell.
        call.transfer = None;
        tracing::info!(call_id = %call.dialog.call_id, reason = reason.as_str(), "call ended");
        self.events.push_back(UaEvent::Ended {
            call: call_ref,
            reason,
        });
    }

    fn rearm(&mut self, key: TimerKey) {
        let (next, armed) = match &key {
            TimerKey::Call(r) => {
                let Some(call) = self.calls.get_mut(r) else {
                    return;
                };
                let next = call.next_deadline();
                if call.is_finished() {
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
            TimerKey::Registration(index) => {
                let Some((registration, armed)) = self.registrations.get_mut(*index) else {
                    return;
                };
                (registration.next_deadline(), armed)
            }
            TimerKey::RefusalReport | TimerKey::Dial(_) => return,
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
                self.updates.remove(branch);
                self.refers.remove(branch);
            }
        }
    }

    fn server_timer(&mut self, now: Instant, at: Instant, key: (String, String)) {
        let Some((server, armed)) = self.servers.get_mut(&key) else {
            return;
        };
        if *armed != Some(at) {
            return;
        }
        *armed = None;
        if server.on_timer(now) == TimerAction::Terminated {
            self.servers.remove(&key);
        } else {
            self.rearm(TimerKey::Server(key.0, key.1));
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
            let answer = refusal.answer(silent);
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
