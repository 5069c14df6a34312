//! Ringing, reliably when the caller asks for it (RFC 3262): the 180 carries `Require: 100rel`
//! and an `RSeq`, goes again until a PRACK names it, and the INVITE is refused with 500 if none
//! comes in 64·T1. Without 100rel the 180 goes once, as RFC 3261 has it.

use std::net::SocketAddr;
use std::time::Instant;

use rand::Rng;

use super::leg::State;
use super::{CallRef, EndReason, TimerKey, UserAgent};
use crate::sip::message::{Request, ALLOW};
use crate::sip::reliable::{self, ReliableProvisional};
use crate::sip::transaction::TimerAction;
use crate::sip::transport::Transport;

impl UserAgent {
    /// Sends the call's 180, once, while the INVITE waits for an answer.
    pub(super) fn ring(&mut self, now: Instant, call_ref: CallRef) {
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        if call.rang || !matches!(call.state, State::Offered | State::Ringing { .. }) {
            return;
        }
        call.rang = true;
        let call = &self.calls[&call_ref];
        let Some((req, _)) = &call.invite else {
            return;
        };
        if !reliable::wanted(&req.require, &req.supported) {
            self.respond_to_invite(now, call_ref, 180, "Ringing", &[], None);
            return;
        }
        let invite_cseq = req.cseq;
        // RFC 3262 §3: the first RSeq is random, 1 to 2^31 - 1.
        let rseq: u32 = rand::thread_rng().gen_range(1..1 << 31);
        let rseq_value = rseq.to_string();
        let contact = self.contact(call.dialog.transport);
        let extra = [
            ("Require", reliable::OPTION_TAG),
            ("RSeq", rseq_value.as_str()),
            ("Contact", contact.as_str()),
            ("Allow", ALLOW),
        ];
        let Some(bytes) = self.respond_to_invite(now, call_ref, 180, "Ringing", &extra, None)
        else {
            return;
        };
        let timers = self.config.timers;
        if let Some(call) = self.calls.get_mut(&call_ref) {
            call.reliable = Some(ReliableProvisional::new(
                rseq,
                invite_cseq,
                bytes,
                timers,
                now,
            ));
        }
    }

    /// A PRACK: 200 when it acknowledges the 180 we are repeating, 481 otherwise.
    pub(super) fn on_prack(
        &mut self,
        now: Instant,
        req: &Request,
        source: SocketAddr,
        transport: Transport,
    ) {
        let acknowledged = self.find_dialog(req).filter(|call_ref| {
            let call = &self.calls[call_ref];
            let pending = call.reliable.as_ref();
            req.rack
                .as_ref()
                .is_some_and(|rack| pending.is_some_and(|p| p.acknowledged_by(rack)))
        });
        let Some(call_ref) = acknowledged else {
            return self.no_such_call(now, req, source, transport);
        };
        if let Some(call) = self.calls.get_mut(&call_ref) {
            call.reliable = None;
            tracing::debug!(call_id = %call.dialog.call_id, "180 acknowledged (PRACK)");
        }
        self.answer_plain(now, req, source, transport, (200, "OK"), &[]);
        self.rearm(TimerKey::Call(call_ref));
    }

    /// The reliable 180's schedule: again, or the INVITE refused when no PRACK came.
    pub(super) fn reliable_timer(&mut self, now: Instant, call_ref: CallRef) {
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        let Some(pending) = &mut call.reliable else {
            return;
        };
        match pending.on_timer(now) {
            TimerAction::Retransmit(bytes) => {
                if let Some((req, _)) = &call.invite {
                    let dest =
                        Self::reply_destination(req, call.dialog.source, call.dialog.transport);
                    self.send(dest, bytes);
                }
            }
            TimerAction::TimedOut => {
                call.reliable = None;
                if matches!(call.state, State::Ringing { .. }) {
                    tracing::info!(call_id = %call.dialog.call_id, "no PRACK for the reliable 180 in 64*T1");
                    let no_prack = super::Decline {
                        status: 500,
                        reason: "No PRACK",
                        warning: None,
                    };
                    self.final_failure(now, call_ref, &no_prack);
                    self.end(call_ref, EndReason::AckTimeout);
                }
            }
            TimerAction::Nothing | TimerAction::Terminated => {}
        }
    }
}
