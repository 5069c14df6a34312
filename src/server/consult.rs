//! A call whose flow starts with an application is rung (180) while the application is asked
//! about it, so the application's first verb may refuse it (`reject`: 486 or 603) before it is
//! ever answered. Whatever else it answers is held for the flow, which does not ask again.

use super::switchboard::Switchboard;
use crate::ivr::app::verbs::Verb;
use crate::ivr::flow::{self, FirstReply};
use crate::sip::ua::{CallRef, Decline, UaCommand};

impl Switchboard {
    /// Answers the new call with `sdp` at once, or rings it and asks its flow's application
    /// first.
    pub(super) fn answer_or_consult(&mut self, call: CallRef, sdp: String) {
        let Some(active) = self.calls.get_mut(&call) else {
            return;
        };
        let env = active.flow_env.clone();
        let consulted = self.consulted.clone();
        let (call_id, caller) = (active.call_id.clone(), active.caller.clone());
        if !flow::starts_with_application(&env) {
            return self.command(UaCommand::Answer { call, sdp });
        }
        active.held_answer = Some(sdp);
        self.command(UaCommand::Ring { call });
        tokio::spawn(async move {
            if let Some(reply) = flow::consult_while_ringing(&env, &call_id, &caller).await {
                let _ = consulted.send((call, reply));
            }
        });
    }

    /// The application's first reply: the call refused, or answered with the reply held for
    /// its flow. A call cancelled meanwhile is gone and the reply dropped.
    pub(super) fn on_consulted(&mut self, call: CallRef, reply: FirstReply) {
        let Some(active) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(sdp) = active.held_answer.take() else {
            return;
        };
        if let Ok(verbs) = &reply {
            if let Some(Verb::Reject { busy }) = verbs.front() {
                let decline = if *busy {
                    Decline {
                        status: 486,
                        reason: "Busy Here",
                        warning: None,
                    }
                } else {
                    Decline {
                        status: 603,
                        reason: "Decline",
                        warning: None,
                    }
                };
                tracing::info!(call_id = %active.call_id, status = decline.status, "the application rejected the call before it was answered");
                return self.command(UaCommand::Decline { call, decline });
            }
        }
        active.first_reply = Some(reply);
        self.command(UaCommand::Answer { call, sdp });
    }
}
