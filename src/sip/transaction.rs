//! RFC 3261 §17 transactions as sans-I/O state machines: they hold the last message sent and
//! their deadlines; the caller feeds them events and `now`, and sends what they hand back.
//! The INVITE server follows RFC 6026: after a 2xx it stays "Accepted", retransmitting the 2xx
//! (§13.3.1.4) and absorbing INVITE retransmissions until the ACK or 64·T1.

use std::time::{Duration, Instant};

use bytes::Bytes;

mod invite_client;
pub use invite_client::{InviteClient, InviteClientState, Received};

#[derive(Debug, Clone, Copy)]
pub struct Timers {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Timers {
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// What a timer firing asks the caller to do.
#[derive(Debug, PartialEq)]
pub enum TimerAction {
    Nothing,
    Retransmit(Bytes),
    /// No ACK (INVITE server) or no final response (client) in 64·T1.
    TimedOut,
    /// The transaction is over; forget it.
    Terminated,
}

/// A retransmission schedule: T1, doubling, capped at T2 (Timers G and E).
#[derive(Debug, Clone, Copy)]
struct Backoff {
    next: Instant,
    interval: Duration,
    cap: Duration,
}

impl Backoff {
    fn new(now: Instant, timers: &Timers) -> Backoff {
        Backoff {
            next: now + timers.t1,
            interval: timers.t1,
            cap: timers.t2,
        }
    }

    fn fire(&mut self) {
        self.interval = (self.interval * 2).min(self.cap);
        self.next += self.interval;
    }
}

fn earliest(
    retransmit: Option<Backoff>,
    give_up: Option<Instant>,
    linger: Option<Instant>,
) -> Option<Instant> {
    [retransmit.map(|b| b.next), give_up, linger]
        .into_iter()
        .flatten()
        .min()
}

/// The timers every machine here has, in their order of precedence: giving up (Timers B, F and
/// H), the end of lingering (D, I, J, K, M), then a retransmission (A, E, G) of `message`.
fn fire(
    now: Instant,
    retransmit: &mut Option<Backoff>,
    give_up: &mut Option<Instant>,
    linger_until: &mut Option<Instant>,
    message: Option<&Bytes>,
) -> TimerAction {
    if give_up.is_some_and(|t| now >= t) {
        *give_up = None;
        *retransmit = None;
        return TimerAction::TimedOut;
    }
    if linger_until.is_some_and(|t| now >= t) {
        *linger_until = None;
        return TimerAction::Terminated;
    }
    if let Some(backoff) = retransmit {
        if now >= backoff.next {
            backoff.fire();
            if let Some(message) = message {
                return TimerAction::Retransmit(message.clone());
            }
        }
    }
    TimerAction::Nothing
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteState {
    Proceeding,
    /// 2xx sent, waiting for the ACK.
    Accepted,
    /// 3xx–6xx sent, waiting for the ACK.
    Completed,
    /// ACK received; lingering to absorb retransmissions.
    Confirmed,
    Terminated,
}

#[derive(Debug)]
pub struct InviteServer {
    state: InviteState,
    timers: Timers,
    reliable: bool,
    last: Option<Bytes>,
    retransmit: Option<Backoff>,
    give_up: Option<Instant>,
    linger_until: Option<Instant>,
}

impl InviteServer {
    pub fn new(timers: Timers, reliable: bool) -> InviteServer {
        InviteServer {
            state: InviteState::Proceeding,
            timers,
            reliable,
            last: None,
            retransmit: None,
            give_up: None,
            linger_until: None,
        }
    }

    pub fn state(&self) -> InviteState {
        self.state
    }

    /// Records a response we send. Finals start the retransmit and give-up timers.
    pub fn respond(&mut self, response: Bytes, status: u16, now: Instant) {
        if self.state != InviteState::Proceeding {
            return;
        }
        self.last = Some(response);
        if status < 200 {
            return;
        }
        self.state = if status < 300 {
            InviteState::Accepted
        } else {
            InviteState::Completed
        };
        // 2xx is retransmitted by the UAS core on every transport; other finals only on UDP.
        if status < 300 || !self.reliable {
            self.retransmit = Some(Backoff::new(now, &self.timers));
        }
        self.give_up = Some(now + self.timers.timeout());
    }

    /// An INVITE retransmission arrived: the response to repeat, if any.
    pub fn on_retransmission(&self) -> Option<Bytes> {
        match self.state {
            InviteState::Proceeding | InviteState::Accepted | InviteState::Completed => {
                self.last.clone()
            }
            _ => None,
        }
    }

    /// The ACK arrived. True the first time (the caller confirms the dialog then).
    pub fn on_ack(&mut self, now: Instant) -> bool {
        match self.state {
            InviteState::Accepted | InviteState::Completed => {
                let linger = match (self.state, self.reliable) {
                    (InviteState::Accepted, _) => self.timers.timeout(),
                    (_, true) => Duration::ZERO,
                    (_, false) => self.timers.t4,
                };
                self.state = InviteState::Confirmed;
                self.retransmit = None;
                self.give_up = None;
                self.linger_until = Some(now + linger);
                true
            }
            _ => false,
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
            self.last.as_ref(),
        );
        if matches!(action, TimerAction::TimedOut | TimerAction::Terminated) {
            self.state = InviteState::Terminated;
        }
        action
    }
}

/// Non-INVITE server transaction (BYE, CANCEL, OPTIONS, INFO): repeats its final response to
/// retransmitted requests until Timer J (64·T1 on UDP, zero on TCP).
#[derive(Debug)]
pub struct NonInviteServer {
    last: Option<Bytes>,
    expires: Option<Instant>,
    timers: Timers,
    reliable: bool,
}

impl NonInviteServer {
    pub fn new(timers: Timers, reliable: bool) -> NonInviteServer {
        NonInviteServer {
            last: None,
            expires: None,
            timers,
            reliable,
        }
    }

    pub fn respond(&mut self, response: Bytes, status: u16, now: Instant) {
        if self.expires.is_some() {
            return;
        }
        self.last = Some(response);
        if status >= 200 {
            let linger = if self.reliable {
                Duration::ZERO
            } else {
                self.timers.timeout()
            };
            self.expires = Some(now + linger);
        }
    }

    pub fn on_retransmission(&self) -> Option<Bytes> {
        self.last.clone()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.expires
    }

    pub fn on_timer(&mut self, now: Instant) -> TimerAction {
        match self.expires {
            Some(t) if now >= t => TimerAction::Terminated,
            _ => TimerAction::Nothing,
        }
    }
}

/// Non-INVITE client transaction (our BYE): Timer E retransmits on UDP, Timer F gives up,
/// Timer K lingers to absorb response retransmissions.
#[derive(Debug)]
pub struct NonInviteClient {
    request: Bytes,
    retransmit: Option<Backoff>,
    give_up: Option<Instant>,
    linger_until: Option<Instant>,
    timers: Timers,
    reliable: bool,
    final_status: Option<u16>,
}

impl NonInviteClient {
    /// The request has just been sent once.
    pub fn new(request: Bytes, timers: Timers, reliable: bool, now: Instant) -> NonInviteClient {
        NonInviteClient {
            request,
            retransmit: (!reliable).then(|| Backoff::new(now, &timers)),
            give_up: Some(now + timers.timeout()),
            linger_until: None,
            timers,
            reliable,
            final_status: None,
        }
    }

    pub fn final_status(&self) -> Option<u16> {
        self.final_status
    }

    /// True when this response is the first final one.
    pub fn on_response(&mut self, status: u16, now: Instant) -> bool {
        if self.final_status.is_some() {
            return false;
        }
        if status < 200 {
            // Proceeding: keep retransmitting, but at T2 (§17.1.2.2).
            if let Some(b) = &mut self.retransmit {
                b.interval = self.timers.t2;
            }
            return false;
        }
        self.final_status = Some(status);
        self.retransmit = None;
        self.give_up = None;
        let linger = if self.reliable {
            Duration::ZERO
        } else {
            self.timers.t4
        };
        self.linger_until = Some(now + linger);
        true
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        earliest(self.retransmit, self.give_up, self.linger_until)
    }

    pub fn on_timer(&mut self, now: Instant) -> TimerAction {
        fire(
            now,
            &mut self.retransmit,
            &mut self.give_up,
            &mut self.linger_until,
            Some(&self.request),
        )
    }
}

#[cfg(test)]
mod tests;
