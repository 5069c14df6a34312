//! Requests inside a dialog: re-INVITE, BYE, INFO (keys) and OPTIONS, one function each.

use std::net::SocketAddr;
use std::time::Instant;

use super::leg::State;
use super::{EndReason, UaEvent, UserAgent};
use crate::sip::info::{self, InfoDtmf};
use crate::sip::message::{self, Request, ALLOW};
use crate::sip::transaction::{InviteServer, InviteState};
use crate::sip::transport::Transport;

impl UserAgent {
    pub(super) fn on_reinvite(
        &mut self,
        now: Instant,
        req: Box<Request>,
        source: SocketAddr,
        transport: Transport,
    ) {
        let Some(call_ref) = self.find_dialog(&req) else {
            let status = (481, "Call/Transaction Does Not Exist");
            return self.refuse_invite(&req, source, transport, status, &[]);
        };
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        if let Some(wait) = call.reinvite_wait(now) {
            tracing::info!(call_id = %req.call_id, "re-INVITEs past {} a minute: refused", super::leg::REINVITES_PER_MINUTE);
            let wait = wait.to_string();
            let status = (500, "Server Internal Error");
            return self.refuse_invite(&req, source, transport, status, &[("Retry-After", &wait)]);
        }
        // §14.2: an INVITE while another is still pending gets 500 with Retry-After. (491 is
        // for glare with our own re-INVITE, which this agent never sends.)
        let pending = call.state != State::Confirmed
            || call.invite.as_ref().is_some_and(|(_, tx)| {
                matches!(tx.state(), InviteState::Proceeding | InviteState::Accepted)
            });
        if pending || !call.dialog.accept_remote_cseq(req.cseq) {
            let status = (500, "Server Internal Error");
            return self.refuse_invite(&req, source, transport, status, &[("Retry-After", "1")]);
        }
        let session = match self.ask_session(now, &req, source, transport) {
            super::session::Asked::Session(session) => session,
            super::session::Asked::Refused => return,
        };
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        // A re-INVITE is a refresh: the timer restarts with its 2xx (or stops, unasked).
        call.session = session;
        call.dialog.refresh_target(&req);
        let mut tx = InviteServer::new(self.config.timers, transport.reliable());
        let trying = message::response(&req, 100, "Trying", None, &[], None);
        tx.respond(trying.clone(), 100, now);
        let offer = (!req.body.is_empty()).then(|| req.body.clone());
        tracing::info!(call_id = %req.call_id, with_sdp = offer.is_some(), "re-INVITE");
        let branch = req.top_via.transaction_key();
        // The INVITE transaction this one replaces is over: forget it now, not at the call's
        // end, so a call re-INVITEd a thousand times holds one.
        if let Some((old, _)) = &call.invite {
            let old = old.top_via.transaction_key();
            call.branches.retain(|b| *b != old);
            self.invites.remove(&old);
        }
        call.branches.push(branch.clone());
        call.state = State::Reoffered;
        call.invite = Some((req, tx));
        self.invites.insert(branch, call_ref);
        let Some((req, _)) = self.calls.get(&call_ref).and_then(|c| c.invite.as_ref()) else {
            return;
        };
        let dest = Self::reply_destination(req, source, transport);
        self.send(dest, trying);
        self.events.push_back(UaEvent::Reinvite {
            call: call_ref,
            offer,
        });
    }

    pub(super) fn on_bye(
        &mut self,
        now: Instant,
        req: &Request,
        source: SocketAddr,
        transport: Transport,
    ) {
        let Some(call_ref) = self.find_any_dialog(req) else {
            return self.no_such_call(now, req, source, transport);
        };
        self.answer_plain(now, req, source, transport, (200, "OK"), &[]);
        if let Some(call) = self.calls.get_mut(&call_ref) {
            // A BYE before the ACK ends the 2xx retransmissions too.
            if let Some((_, tx)) = &mut call.invite {
                tx.on_ack(now);
            }
        }
        self.end(call_ref, EndReason::CallerHungUp);
    }

    pub(super) fn on_info(
        &mut self,
        now: Instant,
        req: &Request,
        source: SocketAddr,
        transport: Transport,
    ) {
        let Some(call_ref) = self.find_dialog(req) else {
            return self.no_such_call(now, req, source, transport);
        };
        match info::dtmf_from_info(req.content_type.as_deref(), &req.body) {
            InfoDtmf::Digit(digit) => {
                self.events.push_back(UaEvent::InfoDigit {
                    call: call_ref,
                    digit,
                });
                self.answer_plain(now, req, source, transport, (200, "OK"), &[]);
            }
            InfoDtmf::Empty => self.answer_plain(now, req, source, transport, (200, "OK"), &[]),
            InfoDtmf::Unsupported => {
                let extra = [("Accept", info::ACCEPT)];
                let status = (415, "Unsupported Media Type");
                self.answer_plain(now, req, source, transport, status, &extra);
            }
            InfoDtmf::Malformed => {
                self.answer_plain(now, req, source, transport, (400, "Bad Request"), &[])
            }
        }
    }

    pub(super) fn on_dialog_options(
        &mut self,
        now: Instant,
        req: &Request,
        source: SocketAddr,
        transport: Transport,
    ) {
        if self.find_dialog(req).is_none() {
            return self.no_such_call(now, req, source, transport);
        }
        let extra = [("Allow", ALLOW)];
        self.answer_plain(now, req, source, transport, (200, "OK"), &extra);
    }
}
