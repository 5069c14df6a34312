//! Calls we place: `UaCommand::Dial` starts one, its responses and timers drive it, and each
//! step reaches the layer above as `UaEvent::Dialled`. Once answered it becomes an ordinary
//! confirmed leg, so BYE, re-INVITE, INFO and our hang-up work on it as on any call.

use std::time::Instant;

use super::leg::{Leg, State};
use super::{CallRef, DialProgress, TimerKey, UaEvent, UserAgent};
use crate::sip::dial::{Dial, DialRequest, DialStep, Local};
use crate::sip::dialog::Dialog;
use crate::sip::message::Response;

/// A call we are placing, and the call it is placed for.
pub(super) struct Outbound {
    pub dial: Dial,
    pub of: CallRef,
    pub armed: Option<Instant>,
}

impl UserAgent {
    pub(super) fn dial(&mut self, now: Instant, of: CallRef, request: DialRequest) {
        let leg = self.next_ref;
        self.next_ref += 1;
        let transport = request.destination.transport;
        let local = Local {
            public: self.local_for(transport),
            contact: self.contact(transport),
            user_agent: self.config.user_agent.clone(),
        };
        let dial = Dial::start(request, local, self.config.timers, now);
        tracing::info!(call_id = %dial.call_id(), target = %dial.target(), "dialling");
        self.events.push_back(UaEvent::Dialled {
            call: of,
            leg,
            progress: DialProgress::Calling,
        });
        self.dials.insert(
            leg,
            Outbound {
                dial,
                of,
                armed: None,
            },
        );
        self.dial_step(now, leg, DialStep::Nothing);
    }

    pub(super) fn on_dial_response(&mut self, now: Instant, resp: &Response) {
        let Some(&leg) = resp.branch.as_ref().and_then(|b| self.dial_branches.get(b)) else {
            return;
        };
        let Some(outbound) = self.dials.get_mut(&leg) else {
            return;
        };
        let step = outbound.dial.on_response(resp, now);
        self.dial_step(now, leg, step);
    }

    /// The layer above hung up a call it placed: CANCEL before the answer.
    pub(super) fn cancel_dial(&mut self, now: Instant, leg: CallRef) {
        if let Some(outbound) = self.dials.get_mut(&leg) {
            let step = outbound.dial.give_up(487, now);
            self.dial_step(now, leg, step);
        }
    }

    pub(super) fn dial_timer(&mut self, now: Instant, leg: CallRef, at: Instant) {
        let Some(outbound) = self.dials.get_mut(&leg) else {
            return;
        };
        if outbound.armed != Some(at) {
            return;
        }
        outbound.armed = None;
        let step = outbound.dial.on_timer(now);
        self.dial_step(now, leg, step);
    }

    /// Sends what the dial queued, tells the layer above what happened, and re-arms or forgets.
    fn dial_step(&mut self, now: Instant, leg: CallRef, step: DialStep) {
        let Some(outbound) = self.dials.get_mut(&leg) else {
            return;
        };
        let of = outbound.of;
        let out: Vec<_> = outbound.dial.drain_out().collect();
        let branch = outbound.dial.branch().to_string();
        for (destination, bytes) in out {
            self.send(destination, bytes);
        }
        self.dial_branches.insert(branch, leg);
        let progress = match step {
            DialStep::Nothing => None,
            DialStep::Ringing { early } => Some(DialProgress::Ringing { early }),
            DialStep::Failed { status } => {
                tracing::info!(status, "the call we placed failed");
                Some(DialProgress::Failed { status })
            }
            DialStep::Answered { dialog, answer } => {
                tracing::info!(call_id = %dialog.call_id, "the call we placed was answered");
                self.confirmed_leg(leg, *dialog);
                Some(DialProgress::Answered { answer })
            }
            DialStep::AnsweredLate { dialog } => {
                tracing::info!(call_id = %dialog.call_id, "answered after we gave up: BYE");
                self.confirmed_leg(leg, *dialog);
                self.send_bye(now, leg);
                self.rearm(TimerKey::Call(leg));
                None
            }
        };
        if let Some(progress) = progress {
            self.events.push_back(UaEvent::Dialled {
                call: of,
                leg,
                progress,
            });
        }
        let Some(outbound) = self.dials.get_mut(&leg) else {
            return;
        };
        if outbound.dial.is_finished() {
            self.dials.remove(&leg);
            self.dial_branches.retain(|_, l| *l != leg);
            return;
        }
        let next = outbound.dial.next_deadline();
        if next != outbound.armed {
            outbound.armed = next;
            if let Some(at) = next {
                self.timers
                    .push(std::cmp::Reverse((at, TimerKey::Dial(leg))));
            }
        }
    }

    /// The answered call as a leg like any other.
    fn confirmed_leg(&mut self, leg: CallRef, dialog: Dialog) {
        self.dialogs
            .insert((dialog.call_id.clone(), dialog.local_tag.clone()), leg);
        self.calls.insert(
            leg,
            Leg {
                dialog,
                state: State::Confirmed,
                invite: None,
                bye: None,
                bye_authorized: false,
                branches: Vec::new(),
                armed: None,
                unconfirmed: None,
                session: None,
                refresh: None,
                reliable: None,
                transfer: None,
                reinvites: None,
                rang: false,
            },
        );
    }
}
