//! The INVITE server side of a call: admission, 100 Trying, ringing, the 200 and its ACK,
//! CANCEL, declining, hanging up, and what the call's timers do.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use super::leg::{Leg, State};
use super::{CallRef, Decline, EndReason, TimerKey, UaEvent, UserAgent};
use crate::metrics::{Reason, METRICS};
use crate::sip::admission::Verdict;
use crate::sip::dialog::{new_tag, Dialog};
use crate::sip::message::{self, Request, ALLOW};
use crate::sip::transaction::{InviteServer, NonInviteClient, TimerAction};
use crate::sip::transport::Transport;

impl UserAgent {
    pub(super) fn on_new_invite(
        &mut self,
        now: Instant,
        req: Box<Request>,
        source: SocketAddr,
        transport: Transport,
    ) {
        if !self.may_call(now, &req, source, transport) {
            return;
        }
        let session = match self.ask_session(now, &req, source, transport) {
            super::session::Asked::Session(session) => session,
            super::session::Asked::Refused => return,
        };
        let admitted_as = self.admission_caller(source, transport);
        match self.admission.on_invite(admitted_as, now) {
            Verdict::Admit => {}
            Verdict::Busy {
                retry_after,
                refusal,
            } => {
                let reason = refusal.as_str();
                METRICS
                    .admission_refusals
                    .get_or_create(&Reason { reason })
                    .inc();
                self.arm_refusal_report(now);
                let retry_after = retry_after.to_string();
                let status = (503, "Service Unavailable");
                let extra = [("Retry-After", retry_after.as_str())];
                return self.refuse_invite(&req, source, transport, status, &extra);
            }
            Verdict::Ignore { refusal } => {
                let reason = refusal.as_str();
                METRICS
                    .admission_refusals
                    .get_or_create(&Reason { reason })
                    .inc();
                return self.arm_refusal_report(now);
            }
        }
        let call_ref = self.next_ref;
        self.next_ref += 1;
        let local_tag = new_tag();
        let dialog = Dialog::from_invite(&req, local_tag.clone(), source, transport);
        let mut tx = InviteServer::new(self.config.timers, transport.reliable());
        let trying = message::response(&req, 100, "Trying", None, &[], None);
        tx.respond(trying.clone(), 100, now);
        self.send(Self::reply_destination(&req, source, transport), trying);
        let caller = message::masked_user(&req.from);
        tracing::info!(call_id = %req.call_id, %caller, %source, ?transport, "call offered");
        tracing::debug!(call_id = %req.call_id, from = %req.from, "the caller's From in full");
        self.events.push_back(UaEvent::Incoming {
            call: call_ref,
            call_id: req.call_id.clone(),
            from: req.from.clone(),
            asserted: req.asserted_identity.clone(),
            dialled: req.uri.clone(),
            to: req.to.clone(),
            transport,
            offer: (!req.body.is_empty()).then(|| req.body.clone()),
            source,
            vouched: self.vouches(source.ip()),
        });
        let branch = req.top_via.transaction_key();
        self.invites.insert(branch.clone(), call_ref);
        self.dialogs
            .insert((req.call_id.clone(), local_tag), call_ref);
        self.calls.insert(
            call_ref,
            Leg {
                dialog,
                state: State::Offered,
                invite: Some((req, tx)),
                bye: None,
                bye_authorized: false,
                branches: vec![branch],
                armed: None,
                unconfirmed: Some(admitted_as),
                session,
                refresh: None,
                reliable: None,
                transfer: None,
                reinvites: None,
                rang: false,
            },
        );
    }

    /// Refuses an INVITE that gets no call (401, 403, 481, admission's 503, or 500 while
    /// another INVITE is pending). Sent once: its ACK matches nothing and is dropped.
    pub(super) fn refuse_invite(
        &mut self,
        req: &Request,
        source: SocketAddr,
        transport: Transport,
        (status, reason): (u16, &str),
        extra: &[(&str, &str)],
    ) {
        let bytes = message::response(req, status, reason, Some(&new_tag()), extra, None);
        self.send(Self::reply_destination(req, source, transport), bytes);
    }

    pub(super) fn answer(&mut self, now: Instant, call_ref: CallRef, sdp: String) {
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        match call.state {
            State::Offered if !self.config.answer_delay.is_zero() => {
                let answer_at = now + self.config.answer_delay;
                call.state = State::Ringing { answer_at, sdp };
                self.ring(now, call_ref);
                self.rearm(TimerKey::Call(call_ref));
            }
            State::Offered | State::Reoffered => self.send_ok(now, call_ref, &sdp),
            _ => {}
        }
    }

    fn send_ok(&mut self, now: Instant, call_ref: CallRef, sdp: &str) {
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        call.state = if call.initial() {
            State::AwaitingAck {
                release_at: now + self.config.ack_wait,
            }
        } else {
            State::AwaitingReAck
        };
        let transport = call.dialog.transport;
        let record_route = call
            .invite
            .as_ref()
            .map(|(req, _)| req.record_route.clone())
            .unwrap_or_default();
        let contact = self.contact(transport);
        let server = self.config.user_agent.clone();
        let session = self.session_headers(now, call_ref);
        let mut extra: Vec<(&str, &str)> =
            vec![("Contact", &contact), ("Allow", ALLOW), ("Server", &server)];
        extra.extend(record_route.iter().map(|rr| ("Record-Route", rr.as_str())));
        extra.extend(session.iter().map(|(n, v)| (*n, v.as_str())));
        let body = Some(("application/sdp", sdp.as_bytes()));
        self.respond_to_invite(now, call_ref, 200, "OK", &extra, body);
        if let Some(call) = self.calls.get(&call_ref) {
            tracing::info!(call_id = %call.dialog.call_id, "answered 200 OK");
        }
        self.rearm(TimerKey::Call(call_ref));
    }

    /// Sends a response to the call's INVITE through its transaction, and hands back what was
    /// sent. A final response ends any reliable provisional.
    pub(super) fn respond_to_invite(
        &mut self,
        now: Instant,
        call_ref: CallRef,
        status: u16,
        reason: &str,
        extra: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> Option<Bytes> {
        let call = self.calls.get_mut(&call_ref)?;
        let (req, tx) = call.invite.as_mut()?;
        let tag = Some(call.dialog.local_tag.as_str());
        let bytes = message::response(req, status, reason, tag, extra, body);
        tx.respond(bytes.clone(), status, now);
        if status >= 200 {
            call.reliable = None;
        }
        let dest = Self::reply_destination(req, call.dialog.source, call.dialog.transport);
        self.send(dest, bytes.clone());
        Some(bytes)
    }

    pub(super) fn decline(&mut self, now: Instant, call_ref: CallRef, decline: Decline) {
        let Some(call) = self.calls.get(&call_ref) else {
            return;
        };
        match call.state {
            State::Offered | State::Ringing { .. } => {
                self.final_failure(now, call_ref, &decline);
                self.end(call_ref, EndReason::Rejected);
            }
            State::Reoffered => {
                self.final_failure(now, call_ref, &decline);
                if let Some(call) = self.calls.get_mut(&call_ref) {
                    call.state = State::Confirmed;
                }
            }
            _ => {}
        }
    }

    /// A final failure response to the call's INVITE (or re-INVITE).
    pub(super) fn final_failure(&mut self, now: Instant, call_ref: CallRef, decline: &Decline) {
        let warning = decline.warning.as_ref().map(|w| {
            let text = w.text.replace(['"', '\r', '\n'], "'");
            format!("{} {} \"{text}\"", w.code, self.config.public.ip())
        });
        // Out of capacity: calls waiting for their ACK give their ports back within the wait.
        let retry_after = self.config.ack_wait.as_secs().max(1).to_string();
        let mut extra: Vec<(&str, &str)> = Vec::new();
        if let Some(w) = &warning {
            extra.push(("Warning", w));
        }
        if decline.status == 503 {
            extra.push(("Retry-After", &retry_after));
        }
        self.respond_to_invite(now, call_ref, decline.status, decline.reason, &extra, None);
        if let Some(call) = self.calls.get(&call_ref) {
            tracing::info!(call_id = %call.dialog.call_id, status = decline.status, "INVITE refused");
        }
        self.rearm(TimerKey::Call(call_ref));
    }

    pub(super) fn on_cancel(
        &mut self,
        now: Instant,
        req: &Request,
        source: SocketAddr,
        transport: Transport,
    ) {
        let Some(&call_ref) = self.invites.get(&req.top_via.transaction_key()) else {
            return self.no_such_call(now, req, source, transport);
        };
        // Only the INVITE's sender may cancel it, as only it may retransmit it.
        if self.calls.get(&call_ref).map(|c| c.dialog.source.ip()) != Some(source.ip()) {
            return self.no_such_call(now, req, source, transport);
        }
        self.answer_plain(now, req, source, transport, (200, "OK"), &[]);
        let ringing = self.calls.get(&call_ref).is_some_and(|c| {
            matches!(c.state, State::Offered | State::Ringing { .. })
                && c.dialog.remote_cseq == req.cseq
        });
        if ringing {
            tracing::info!(call_id = %req.call_id, "call cancelled before answer");
            let terminated = Decline {
                status: 487,
                reason: "Request Terminated",
                warning: None,
            };
            self.final_failure(now, call_ref, &terminated);
            self.end(call_ref, EndReason::Cancelled);
        }
    }

    pub(super) fn on_ack(&mut self, now: Instant, req: &Request) {
        let call_ref = match (
            req.to_tag.as_ref(),
            self.invites.get(&req.top_via.transaction_key()),
        ) {
            // ACK to a failure shares the INVITE's branch.
            (_, Some(&r)) => r,
            (Some(tag), None) => match self.dialogs.get(&(req.call_id.clone(), tag.clone())) {
                Some(&r) => r,
                None => return,
            },
            (None, None) => return,
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
        let awaiting = matches!(
            call.state,
            State::AwaitingAck { .. } | State::Abandoned | State::AwaitingReAck
        );
        // The ACK of a 2xx must name our tag: a stranger who never saw the 200 cannot confirm
        // a call (and start its media) with the INVITE's branch alone.
        if awaiting && req.to_tag.as_ref() != Some(&call.dialog.local_tag) {
            return;
        }
        if !tx.on_ack(now) || !awaiting {
            self.rearm(TimerKey::Call(call_ref));
            return;
        }
        if let Some(caller) = call.unconfirmed.take() {
            self.admission.confirmed(caller, now);
        }
        if call.state == State::Abandoned {
            tracing::info!(call_id = %call.dialog.call_id, "ACK for a call already given up, sending BYE");
            call.state = State::Confirmed;
            self.send_bye(now, call_ref);
            self.rearm(TimerKey::Call(call_ref));
            return;
        }
        call.state = State::Confirmed;
        tracing::info!(call_id = %call.dialog.call_id, "call confirmed (ACK)");
        self.events.push_back(UaEvent::Confirmed {
            call: call_ref,
            answer: (!req.body.is_empty()).then(|| req.body.clone()),
        });
        self.rearm(TimerKey::Call(call_ref));
    }

    pub(super) fn hangup(&mut self, now: Instant, call_ref: CallRef) {
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return self.cancel_dial(now, call_ref);
        };
        match call.state {
            State::Offered | State::Ringing { .. } => {
                let unavailable = Decline {
                    status: 480,
                    reason: "Temporarily Unavailable",
                    warning: None,
                };
                self.final_failure(now, call_ref, &unavailable);
                self.end(call_ref, EndReason::HungUp);
            }
            // §15: no BYE before the ACK; it goes when the ACK comes or the wait times out.
            State::AwaitingAck { .. } => {
                call.state = State::Abandoned;
                self.tell_ended(call_ref, EndReason::HungUp);
                self.rearm(TimerKey::Call(call_ref));
            }
            State::Abandoned | State::Ending => {}
            State::Confirmed | State::Reoffered | State::AwaitingReAck => {
                self.send_bye(now, call_ref);
                self.tell_ended(call_ref, EndReason::HungUp);
                self.rearm(TimerKey::Call(call_ref));
            }
        }
    }

    /// Ends the call from any state that has not told the layer above yet: `Ending`, and the
    /// `Ended` event.
    pub(super) fn end(&mut self, call_ref: CallRef, reason: EndReason) {
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        let told = call.state.told_ended();
        call.state = State::Ending;
        if !told {
            self.tell_ended(call_ref, reason);
        }
        self.rearm(TimerKey::Call(call_ref));
    }

    /// Sends our BYE and moves the call to `Ending` (the caller is told by whoever called this).
    pub(super) fn send_bye(&mut self, now: Instant, call_ref: CallRef) {
        let user_agent = self.config.user_agent.clone();
        let Some(transport) = self.calls.get(&call_ref).map(|c| c.dialog.transport) else {
            return;
        };
        let public = self.local_for(transport);
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        call.state = State::Ending;
        if call.bye.is_some() {
            return;
        }
        let (bytes, dest, branch) = call.dialog.bye(public, &user_agent);
        self.byes.insert(branch.clone(), call_ref);
        call.branches.push(branch);
        let client = NonInviteClient::new(
            bytes.clone(),
            self.config.timers,
            dest.transport.reliable(),
            now,
        );
        call.bye = Some((client, dest));
        tracing::info!(call_id = %call.dialog.call_id, to = %dest.addr, "sending BYE");
        self.send(dest, bytes);
    }

    pub(super) fn call_timers(&mut self, now: Instant, call_ref: CallRef) {
        self.reliable_timer(now, call_ref);
        self.transfer_timers(now, call_ref);
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        let dest = call.invite.as_ref().map(|(req, _)| {
            Self::reply_destination(req, call.dialog.source, call.dialog.transport)
        });
        let mut gave_up = false;
        if let Some((_, tx)) = &mut call.invite {
            match tx.on_timer(now) {
                TimerAction::Retransmit(bytes) => {
                    if let Some(dest) = dest {
                        tracing::debug!(call_id = %call.dialog.call_id, "retransmitting final response");
                        self.transmits.push_back(super::Transmit {
                            destination: dest,
                            bytes,
                        });
                    }
                }
                TimerAction::TimedOut => {
                    gave_up = true;
                    call.invite = None;
                }
                TimerAction::Terminated => call.invite = None,
                TimerAction::Nothing => {}
            }
        }
        if let Some((bye, dest)) = &mut call.bye {
            match bye.on_timer(now) {
                TimerAction::Retransmit(bytes) => {
                    let destination = *dest;
                    self.transmits
                        .push_back(super::Transmit { destination, bytes });
                }
                TimerAction::TimedOut => {
                    tracing::info!(call_id = %call.dialog.call_id, "BYE got no answer (Timer F)");
                    call.bye = None;
                }
                TimerAction::Terminated => call.bye = None,
                TimerAction::Nothing => {}
            }
        }
        match &mut call.state {
            State::Ringing { answer_at, sdp } if *answer_at <= now => {
                let sdp = std::mem::take(sdp);
                self.send_ok(now, call_ref, &sdp);
            }
            State::AwaitingAck { release_at } if gave_up || *release_at <= now => {
                tracing::info!(call_id = %call.dialog.call_id, "no ACK yet, releasing the call's media");
                call.state = State::Abandoned;
                self.tell_ended(call_ref, EndReason::AckTimeout);
                if gave_up {
                    self.give_up_on_ack(now, call_ref);
                }
            }
            State::Abandoned | State::AwaitingReAck if gave_up => {
                if call.state == State::AwaitingReAck {
                    self.tell_ended(call_ref, EndReason::AckTimeout);
                }
                self.give_up_on_ack(now, call_ref);
            }
            _ => {}
        }
    }

    /// Timer H passed with no ACK: the dialog is torn down with a BYE (§13.3.1.4).
    fn give_up_on_ack(&mut self, now: Instant, call_ref: CallRef) {
        if let Some(call) = self.calls.get(&call_ref) {
            tracing::warn!(call_id = %call.dialog.call_id, "no ACK for 2xx within 64*T1, tearing down");
        }
        self.send_bye(now, call_ref);
    }
}
