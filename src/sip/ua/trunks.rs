//! The user agent's registrations with its trunks: started once, driven by their responses
//! and timers, ended with `Expires: 0` when draining.

use std::cmp::Reverse;
use std::time::Instant;

use super::{TimerKey, Transmit, UserAgent};
use crate::sip::message::Response;

impl UserAgent {
    /// Makes the first REGISTER of each trunk.
    pub fn start(&mut self, now: Instant) {
        for index in 0..self.registrations.len() {
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

    /// Whether `ip` is one of our trunks: its calls are admitted past `sip.allow`.
    pub(super) fn is_trunk(&self, ip: std::net::IpAddr) -> bool {
        self.registrations
            .iter()
            .any(|(r, _)| r.trunk().destination.addr.ip() == ip)
    }

    fn after_registration(
        &mut self,
        index: usize,
        sent: Option<(crate::sip::transport::Destination, bytes::Bytes)>,
    ) {
        if let Some((destination, bytes)) = sent {
            self.transmits.push_back(Transmit { destination, bytes });
        }
        let Some((registration, armed)) = self.registrations.get_mut(index) else {
            return;
        };
        let next = registration.next_deadline();
        if next != *armed {
            *armed = next;
            if let Some(at) = next {
                self.timers
                    .push(Reverse((at, TimerKey::Registration(index))));
            }
        }
    }
}
