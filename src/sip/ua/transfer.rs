//! Blind transfer of a confirmed call (RFC 3515): our REFER with `Refer-To` and `Referred-By`,
//! the caller's answer, its NOTIFYs with the progress of the call it places, and one
//! `Transferred` event when that is over. Leaving the call after a success is the layer
//! above's choice (it hangs up).

use std::net::SocketAddr;
use std::time::Instant;

use super::leg::State;
use super::{CallRef, TimerKey, UaEvent, UserAgent};
use crate::sip::message::{Request, Response};
use crate::sip::refer::{self, Step, Transfer, TransferOutcome};
use crate::sip::transport::{Destination, Transport};

impl UserAgent {
    /// Asks the caller to call `target` instead.
    pub(super) fn refer(&mut self, now: Instant, call_ref: CallRef, target: &str) {
        let Some(call) = self.calls.get(&call_ref) else {
            return;
        };
        if call.state != State::Confirmed || call.transfer.is_some() || !refer::valid_target(target)
        {
            let outcome = TransferOutcome::Failed { status: 500 };
            return self.transferred(call_ref, outcome);
        }
        let transport = call.dialog.transport;
        let public = self.local_for(transport);
        let contact = self.contact(transport);
        let referred_by = contact.clone();
        let refer_to = format!("<{target}>");
        let user_agent = self.config.user_agent.clone();
        let (timers, patience) = (self.config.timers, self.config.transfer_timeout);
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        let extra = [
            ("Refer-To", refer_to.as_str()),
            ("Referred-By", referred_by.as_str()),
            ("Contact", contact.as_str()),
        ];
        let (bytes, dest, branch) =
            call.dialog
                .request("REFER", public, &user_agent, &extra, |_| None);
        self.refers.insert(branch.clone(), call_ref);
        call.branches.push(branch);
        let reliable = dest.transport.reliable();
        call.transfer = Some((
            Transfer::new(bytes.clone(), timers, reliable, patience, now),
            dest,
        ));
        tracing::info!(call_id = %call.dialog.call_id, %target, "transferring (REFER)");
        self.send(dest, bytes);
        self.rearm(TimerKey::Call(call_ref));
    }

    pub(super) fn on_refer_response(&mut self, now: Instant, resp: &Response) {
        let Some(&call_ref) = resp.branch.as_ref().and_then(|b| self.refers.get(b)) else {
            return;
        };
        let Some((transfer, _)) = self.transfer_of(call_ref) else {
            return;
        };
        let step = transfer.on_response(resp.status, now);
        self.transfer_step(call_ref, step);
    }

    /// A NOTIFY in a call: the progress of the transfer we asked for, or 481.
    pub(super) fn on_notify(
        &mut self,
        now: Instant,
        req: &Request,
        source: SocketAddr,
        transport: Transport,
    ) {
        let transferring = self
            .find_dialog(req)
            .filter(|c| self.calls[c].transfer.is_some());
        let Some(call_ref) = transferring.filter(|_| req.event.as_deref() == Some("refer")) else {
            return self.no_such_call(now, req, source, transport);
        };
        let Some(status) = refer::sipfrag_status(&req.body) else {
            return self.answer_plain(now, req, source, transport, (400, "Bad Request"), &[]);
        };
        self.answer_plain(now, req, source, transport, (200, "OK"), &[]);
        let Some((transfer, _)) = self.transfer_of(call_ref) else {
            return;
        };
        tracing::debug!(call_id = %req.call_id, status, "transfer progress (NOTIFY)");
        let step = transfer.on_notify(status);
        self.transfer_step(call_ref, step);
    }

    pub(super) fn transfer_timers(&mut self, now: Instant, call_ref: CallRef) {
        let Some((transfer, dest)) = self.transfer_of(call_ref) else {
            return;
        };
        let dest = *dest;
        let (again, step) = transfer.on_timer(now);
        if let Some(bytes) = again {
            self.send(dest, bytes);
        }
        self.transfer_step(call_ref, step);
    }

    fn transfer_of(&mut self, call_ref: CallRef) -> Option<&mut (Transfer, Destination)> {
        self.calls.get_mut(&call_ref)?.transfer.as_mut()
    }

    fn transfer_step(&mut self, call_ref: CallRef, step: Step) {
        if let Step::Over(outcome) = step {
            if let Some(call) = self.calls.get_mut(&call_ref) {
                call.transfer = None;
            }
            self.transferred(call_ref, outcome);
        }
        self.rearm(TimerKey::Call(call_ref));
    }

    fn transferred(&mut self, call_ref: CallRef, outcome: TransferOutcome) {
        if let Some(call) = self.calls.get(&call_ref) {
            tracing::info!(call_id = %call.dialog.call_id, ?outcome, "transfer over");
        }
        self.events.push_back(UaEvent::Transferred {
            call: call_ref,
            outcome,
        });
    }
}
