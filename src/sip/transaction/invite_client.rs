//! The INVITE client transaction (RFC 3261 §17.1.1, with RFC 6026's Accepted state): Timer A
//! retransmits the INVITE over UDP until a response comes, Timer B gives up after 64·T1
//! without one. A failure response is acknowledged by the transaction itself (the ACK is
//! repeated for every retransmitted final until Timer D); a 2xx is handed up every time it
//! comes, since only the dialog can acknowledge it, until Timer M ends the transaction.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{earliest, fire, Backoff, TimerAction, Timers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteClientState {
    Calling,
    Proceeding,
    /// A 2xx came: later 2xx are retransmissions (or other forks) the dialog must ACK.
    Accepted,
    /// A failure came and was acknowledged.
    Completed,
    Terminated,
}

/// What a response means to the transaction's user.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    Provisional,
    /// A 2xx, the first or a repeat: the dialog acknowledges each.
    Success {
        first: bool,
    },
    /// The first failure: the transaction has sent its ACK (`ack`).
    Failure,
    /// A repeated failure or a stray response: nothing new.
    Absorbed,
}

#[derive(Debug)]
pub struct InviteClient {
    state: InviteClientState,
    request: Bytes,
    timers: Timers,
    reliable: bool,
    retransmit: Option<Backoff>,
    give_up: Option<Instant>,
    linger_until: Option<Instant>,
    /// Our ACK to the failure response, repeated for its retransmissions.
    ack: Option<Bytes>,
}

impl InviteClient {
    /// The INVITE has just been sent once.
    pub fn new(request: Bytes, timers: Timers, reliable: bool, now: Instant) -> InviteClient {
        let retransmit = (!reliable).then(|| Backoff {
            // Timer A doubles without the T2 cap non-INVITE requests have.
            cap: Duration::MAX,
            ..Backoff::new(now, &timers)
        });
        InviteClient {
            state: InviteClientState::Calling,
            request,
            timers,
            reliable,
            retransmit,
            give_up: Some(now + timers.timeout()),
            linger_until: None,
            ack: None,
        }
    }

    pub fn state(&self) -> InviteClientState {
        self.state
    }

    /// A response with `status`; `ack` builds the ACK a failure needs (same branch).
    pub fn on_response(
        &mut self,
        status: u16,
        now: Instant,
        ack: impl FnOnce() -> Bytes,
    ) -> (Received, Option<Bytes>) {
        use InviteClientState::*;
        match (self.state, status) {
            (Calling | Proceeding, 100..=199) => {
                self.state = Proceeding;
                // Someone is working on it: no more retransmissions, and the user's own
                // patience (a CANCEL) rather than Timer B bounds the wait.
                self.retransmit = None;
                self.give_up = None;
                (Received::Provisional, None)
            }
            (Calling | Proceeding, 200..=299) => {
                self.state = Accepted;
                self.retransmit = None;
                self.give_up = None;
                self.linger_until = Some(now + self.timers.timeout());
                (Received::Success { first: true }, None)
            }
            (Accepted, 200..=299) => (Received::Success { first: false }, None),
            (Calling | Proceeding, 300..) => {
                self.state = Completed;
                self.retransmit = None;
                self.give_up = None;
                let wait = if self.reliable {
                    Duration::ZERO
                } else {
                    Duration::from_secs(32)
                };
                self.linger_until = Some(now + wait);
                let ack = ack();
                self.ack = Some(ack.clone());
                (Received::Failure, Some(ack))
            }
            (Completed, 300..) => (Received::Absorbed, self.ack.clone()),
            _ => (Received::Absorbed, None),
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        earliest(self.retransmit, self.give_up, self.linger_until)
    }

    pub fn on_timer(&mut self, now: Instant) -> TimerAction {
        let action = fire(
            now,
            &mut self.retransmit,
            &mut self.give_up,
            &mut self.linger_until,
            Some(&self.request),
        );
        if matches!(action, TimerAction::TimedOut | TimerAction::Terminated) {
            self.state = InviteClientState::Terminated;
        }
        action
    }
}
