//! Session timers on a call (RFC 4028): the 422 for an interval too small, the headers of our
//! 2xx, UPDATE (RFC 3311) as a refresh, our own refreshes when we are the refresher, and the
//! BYE when a refresh does not come.

use std::net::SocketAddr;
use std::time::Instant;

use super::leg::State;
use super::{CallRef, EndReason, TimerKey, UserAgent};
use crate::sip::message::{Request, Response};
use crate::sip::session_timer::{self, Negotiation, Refresher};
use crate::sip::transaction::{NonInviteClient, TimerAction};
use crate::sip::transport::Transport;

/// What a request's session-timer headers come to: the session to keep (`None`: no timer),
/// or the refusal already sent.
pub(super) enum Asked {
    Session(Option<(u32, Refresher, Option<Instant>)>),
    Refused,
}

impl UserAgent {
    /// Reads an INVITE's (or UPDATE's) `Session-Expires`; an interval under our `Min-SE` is
    /// answered 422 here.
    pub(super) fn ask_session(
        &mut self,
        now: Instant,
        req: &Request,
        source: SocketAddr,
        transport: Transport,
    ) -> Asked {
        match session_timer::negotiate(req, self.config.session_timer) {
            Negotiation::Off => Asked::Session(None),
            Negotiation::Active {
                interval,
                refresher,
            } => Asked::Session(Some((interval, refresher, None))),
            Negotiation::TooSmall { min_se } => {
                let min_se = min_se.to_string();
                let extra = [("Min-SE", min_se.as_str())];
                let status = (422, "Session Interval Too Small");
                if req.method == rsip::Method::Invite {
                    self.refuse_invite(req, source, transport, status, &extra);
                } else {
                    self.answer_plain(now, req, source, transport, status, &extra);
                }
                Asked::Refused
            }
        }
    }

    /// The session-timer headers of a 2xx, and the timer started from `now`.
    pub(super) fn session_headers(
        &mut self,
        now: Instant,
        call_ref: CallRef,
    ) -> Vec<(&'static str, String)> {
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return Vec::new();
        };
        let Some((interval, refresher, due)) = &mut call.session else {
            return Vec::new();
        };
        *due = Some(session_timer::deadline(now, *interval, *refresher));
        let mut headers = vec![
            (
                "Session-Expires",
                session_timer::header(*interval, *refresher),
            ),
            ("Supported", "timer".to_string()),
        ];
        if *refresher == Refresher::Uac {
            headers.push(("Require", "timer".to_string()));
        }
        headers
    }

    /// UPDATE in a dialog: a session refresh (without SDP; a new offer belongs in a re-INVITE
    /// here).
    pub(super) fn on_update(
        &mut self,
        now: Instant,
        req: &Request,
        source: SocketAddr,
        transport: Transport,
    ) {
        let Some(call_ref) = self.find_dialog(req) else {
            return self.no_such_call(now, req, source, transport);
        };
        if !req.body.is_empty() {
            let warning = format!(
                "399 {} \"an offer in UPDATE is not taken; send a re-INVITE\"",
                self.config.public.ip()
            );
            let status = (488, "Not Acceptable Here");
            return self.answer_plain(
                now,
                req,
                source,
                transport,
                status,
                &[("Warning", &warning)],
            );
        }
        let session = match self.ask_session(now, req, source, transport) {
            Asked::Refused => return,
            Asked::Session(session) => session,
        };
        if let Some(call) = self.calls.get_mut(&call_ref) {
            if !call.dialog.accept_remote_cseq(req.cseq) {
                let status = (500, "Server Internal Error");
                return self.answer_plain(now, req, source, transport, status, &[]);
            }
            call.dialog.refresh_target(req);
            call.session = session;
            tracing::debug!(call_id = %req.call_id, "session refreshed by UPDATE");
        }
        let headers = self.session_headers(now, call_ref);
        let mut extra: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let contact = self.contact(transport);
        extra.push(("Contact", &contact));
        self.answer_plain(now, req, source, transport, (200, "OK"), &extra);
        self.rearm(TimerKey::Call(call_ref));
    }

    /// A refresh overdue from the caller ends the call; ours goes out when due.
    pub(super) fn session_timers(&mut self, now: Instant, call_ref: CallRef) {
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        if let Some((client, destination)) = &mut call.refresh {
            match client.on_timer(now) {
                TimerAction::Retransmit(bytes) => {
                    let destination = *destination;
                    self.send(destination, bytes);
                }
                TimerAction::TimedOut => {
                    call.refresh = None;
                    return self.session_failed(now, call_ref, "our refresh got no answer");
                }
                TimerAction::Terminated => call.refresh = None,
                TimerAction::Nothing => {}
            }
        }
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        let live = matches!(
            call.state,
            State::Confirmed | State::Reoffered | State::AwaitingReAck
        );
        let Some((interval, refresher, Some(due))) = call.session else {
            return;
        };
        if !live || due > now {
            return;
        }
        match refresher {
            Refresher::Uac => {
                self.session_failed(now, call_ref, "no session refresh from the caller")
            }
            Refresher::Uas => self.send_refresh(now, call_ref, interval),
        }
    }

    /// Our UPDATE, without SDP, renewing the session for `interval`.
    fn send_refresh(&mut self, now: Instant, call_ref: CallRef, interval: u32) {
        let user_agent = self.config.user_agent.clone();
        let timers = self.config.timers;
        let Some(transport) = self.calls.get(&call_ref).map(|c| c.dialog.transport) else {
            return;
        };
        let public = self.local_for(transport);
        let contact = self.contact(transport);
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        if let Some((_, _, due)) = &mut call.session {
            *due = None;
        }
        if call.refresh.is_some() {
            return;
        }
        let expires = session_timer::header(interval, Refresher::Uas);
        let extra = [
            ("Contact", contact.as_str()),
            ("Session-Expires", expires.as_str()),
            ("Supported", "timer"),
        ];
        let (bytes, dest, branch) =
            call.dialog
                .request("UPDATE", public, &user_agent, &extra, |_| None);
        self.updates.insert(branch.clone(), call_ref);
        call.branches.push(branch);
        let client = NonInviteClient::new(bytes.clone(), timers, dest.transport.reliable(), now);
        call.refresh = Some((client, dest));
        tracing::debug!(call_id = %call.dialog.call_id, "refreshing the session with UPDATE");
        self.send(dest, bytes);
    }

    pub(super) fn on_update_response(&mut self, now: Instant, resp: &Response) {
        let Some(&call_ref) = resp.branch.as_ref().and_then(|b| self.updates.get(b)) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        let Some((client, _)) = &mut call.refresh else {
            return;
        };
        if !client.on_response(resp.status, now) {
            return;
        }
        if (200..300).contains(&resp.status) {
            if let Some((interval, refresher, due)) = &mut call.session {
                *due = Some(session_timer::deadline(now, *interval, *refresher));
            }
            self.rearm(TimerKey::Call(call_ref));
        } else if resp.status >= 300 {
            let why = format!("our refresh was refused with {}", resp.status);
            self.session_failed(now, call_ref, &why);
        }
    }

    fn session_failed(&mut self, now: Instant, call_ref: CallRef, why: &str) {
        if let Some(call) = self.calls.get(&call_ref) {
            tracing::info!(call_id = %call.dialog.call_id, "session expired: {why}");
        }
        self.send_bye(now, call_ref);
        self.tell_ended(call_ref, EndReason::SessionExpired);
        self.rearm(TimerKey::Call(call_ref));
    }
}

/// The extensions `require` names that we do not support.
pub(super) fn unsupported(require: &[String], timers_on: bool) -> Vec<&str> {
    require
        .iter()
        .map(String::as_str)
        .filter(|r| !(timers_on && r.eq_ignore_ascii_case("timer")))
        .filter(|r| !r.eq_ignore_ascii_case(crate::sip::reliable::OPTION_TAG))
        .collect()
}
