//! The user agent's registrations with its trunks: started once, driven by their responses
//! and timers, ended with `Expires: 0` when draining.

use std::net::SocketAddr;
use std::time::Instant;

use super::{CallRef, TimerKey, Transmit, UaEvent, UserAgent};
use crate::sip::admission::{Caller, Origin};
use crate::sip::dialog::new_tag;
use crate::sip::digest::Challenge;
use crate::sip::message::Response;
use crate::sip::transaction::NonInviteClient;
use crate::sip::transport::{Destination, Transport};

use bytes::Bytes;

impl UserAgent {
    /// Makes the first REGISTER of each trunk whose targets are known, and asks for the
    /// others' (`UaEvent::LocateTrunk`).
    pub fn start(&mut self, now: Instant) {
        for index in 0..self.registrations.len() {
            if self.registrations[index].0.trunk().targets.is_empty() {
                self.events.push_back(UaEvent::LocateTrunk { trunk: index });
            }
            let sent = self.registrations[index].0.start(now);
            self.after_registration(index, sent);
        }
    }

    pub(super) fn registration_response(&mut self, now: Instant, response: &Response) {
        let Some(index) = self
            .registrations
            .iter()
            .position(|(r, _)| r.owns(response))
        else {
            return;
        };
        let sent = self.registrations[index].0.on_response(response, now);
        self.after_registration(index, sent);
    }

    pub(super) fn registration_timer(&mut self, now: Instant, index: usize, at: Instant) {
        let Some((registration, armed)) = self.registrations.get_mut(index) else {
            return;
        };
        if *armed != Some(at) {
            return;
        }
        *armed = None;
        let sent = registration.on_timer(now);
        self.after_registration(index, sent);
    }

    pub(super) fn unregister_all(&mut self, now: Instant) {
        for index in 0..self.registrations.len() {
            let sent = self.registrations[index].0.unregister(now);
            self.after_registration(index, sent);
        }
    }

    /// Re-sends a challenged BYE once, with the credentials of the trunk the call came from.
    pub(super) fn answer_bye_challenge(
        &mut self,
        now: Instant,
        call_ref: CallRef,
        response: &Response,
    ) {
        let Some((proxy, value)) = &response.challenge else {
            return;
        };
        let Some(challenge) = Challenge::parse(value) else {
            return;
        };
        let user_agent = self.config.user_agent.clone();
        let timers = self.config.timers;
        let Some(transport) = self.calls.get(&call_ref).map(|c| c.dialog.transport) else {
            return;
        };
        let public = self.local_for(transport);
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        let source = call.dialog.source.ip();
        let Some((registration, _)) = self
            .registrations
            .iter()
            .find(|(r, _)| r.trunk().is_from(source))
        else {
            tracing::info!(call_id = %call.dialog.call_id, "BYE challenged by a peer we hold no credentials for");
            return;
        };
        // The call came from the trunk's address, but its Contact (where the BYE went) is the
        // caller's word: credentials go only to the trunk's own servers.
        let bye_went_to = call.bye.as_ref().map(|(_, dest)| dest.addr.ip());
        if !bye_went_to.is_some_and(|ip| registration.trunk().is_from(ip)) {
            tracing::warn!(call_id = %call.dialog.call_id, "BYE challenged by an address that is not our trunk's: not answered");
            return;
        }
        if !registration.may_answer(&challenge) {
            tracing::warn!(call_id = %call.dialog.call_id, realm = %challenge.realm, "BYE challenged for another realm or more weakly than the trunk: not answered");
            return;
        }
        if call.bye_authorized {
            tracing::warn!(call_id = %call.dialog.call_id, "BYE refused with our trunk credentials");
            return;
        }
        call.bye_authorized = true;
        let trunk = registration.trunk();
        let header = if *proxy {
            "Proxy-Authorization"
        } else {
            "Authorization"
        };
        let cnonce = new_tag();
        let (bytes, dest, branch) = call.dialog.bye_with(public, &user_agent, |uri| {
            let value = challenge.answer(&trunk.username, &trunk.password, "BYE", uri, 1, &cnonce);
            Some((header, value))
        });
        self.byes.insert(branch.clone(), call_ref);
        call.branches.push(branch);
        let client = NonInviteClient::new(bytes.clone(), timers, dest.transport.reliable(), now);
        call.bye = Some((client, dest));
        tracing::info!(call_id = %call.dialog.call_id, "BYE re-sent with the trunk's credentials");
        self.send(dest, bytes);
    }

    /// Whether `ip` is one of our trunks: its calls are admitted past `sip.allow`.
    pub(super) fn is_trunk(&self, ip: std::net::IpAddr) -> bool {
        self.registrations
            .iter()
            .any(|(r, _)| r.trunk().is_from(ip))
    }

    /// Whom admission counts a call from `source` against (see `admission`).
    pub(super) fn admission_caller(&self, source: SocketAddr, transport: Transport) -> Caller {
        let origin = match (self.is_trunk(source.ip()), transport.reliable()) {
            (false, _) => Origin::Stranger,
            (true, false) => Origin::Trunk,
            (true, true) => Origin::TrunkConnected,
        };
        Caller {
            ip: source.ip(),
            origin,
        }
    }

    /// DNS found `targets` for trunk `index`.
    pub(super) fn trunk_targets(&mut self, now: Instant, index: usize, targets: Vec<SocketAddr>) {
        let Some((registration, _)) = self.registrations.get_mut(index) else {
            return;
        };
        tracing::info!(trunk = %registration.trunk().aor(), ?targets, "trunk located");
        let sent = registration.set_targets(targets, now);
        self.after_registration(index, sent);
    }

    fn after_registration(&mut self, index: usize, sent: Option<(Destination, Bytes)>) {
        if let Some((destination, bytes)) = sent {
            self.transmits.push_back(Transmit { destination, bytes });
        }
        if let Some((registration, _)) = self.registrations.get_mut(index) {
            if registration.take_wants_locating() {
                self.events.push_back(UaEvent::LocateTrunk { trunk: index });
            }
        }
        self.rearm(TimerKey::Registration(index));
    }
}
