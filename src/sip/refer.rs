//! Blind transfer by REFER (RFC 3515), the referrer's side, sans I/O: our REFER goes out as a
//! non-INVITE client transaction; once the caller accepts it (2xx), its NOTIFYs carry the
//! progress of the call it places as a `message/sipfrag` status line, and the transfer is over
//! at the first final status there, or when none comes in time.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::transaction::{NonInviteClient, TimerAction, Timers};

/// How a transfer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferOutcome {
    /// The caller reached the target (a 2xx sipfrag): our part of the call is over.
    Succeeded,
    /// The caller refused the REFER, the target refused the caller, or nothing came in time
    /// (408); the status says which.
    Failed { status: u16 },
    /// A bridge that was made is over, the target having hung up after `seconds`; the caller
    /// stays with the flow (asked for by `TransferRequest::caller_stays`; a REFER never ends so).
    Ended { seconds: u64 },
}

/// What one step of a transfer came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Pending,
    Over(TransferOutcome),
}

#[derive(Debug)]
pub struct Transfer {
    refer: Option<NonInviteClient>,
    accepted: bool,
    /// The final NOTIFY must come by then.
    gives_up_at: Instant,
}

impl Transfer {
    /// Our REFER (`bytes`), just sent at `now`; the whole transfer may take `patience`.
    pub fn new(
        bytes: Bytes,
        timers: Timers,
        reliable: bool,
        patience: Duration,
        now: Instant,
    ) -> Transfer {
        Transfer {
            refer: Some(NonInviteClient::new(bytes, timers, reliable, now)),
            accepted: false,
            gives_up_at: now + patience,
        }
    }

    /// The caller's answer to our REFER.
    pub fn on_response(&mut self, status: u16, now: Instant) -> Step {
        let Some(refer) = &mut self.refer else {
            return Step::Pending;
        };
        if !refer.on_response(status, now) {
            return Step::Pending;
        }
        match status {
            200..=299 => {
                self.accepted = true;
                Step::Pending
            }
            300.. => Step::Over(TransferOutcome::Failed { status }),
            _ => Step::Pending,
        }
    }

    /// A NOTIFY's sipfrag status line.
    pub fn on_notify(&mut self, status: u16) -> Step {
        // A NOTIFY may overtake the 202 (RFC 3515 §2.4.4): it accepts the REFER as well.
        self.accepted = true;
        match status {
            200..=299 => Step::Over(TransferOutcome::Succeeded),
            300.. => Step::Over(TransferOutcome::Failed { status }),
            _ => Step::Pending,
        }
    }

    /// The REFER to send again, or the transfer over for want of an answer.
    pub fn on_timer(&mut self, now: Instant) -> (Option<Bytes>, Step) {
        let mut again = None;
        if let Some(refer) = &mut self.refer {
            match refer.on_timer(now) {
                TimerAction::Retransmit(bytes) => again = Some(bytes),
                TimerAction::TimedOut if !self.accepted => {
                    return (None, Step::Over(TransferOutcome::Failed { status: 408 }))
                }
                TimerAction::TimedOut | TimerAction::Terminated => self.refer = None,
                TimerAction::Nothing => {}
            }
        }
        if now >= self.gives_up_at {
            return (again, Step::Over(TransferOutcome::Failed { status: 408 }));
        }
        (again, Step::Pending)
    }

    pub fn next_deadline(&self) -> Instant {
        let refer = self.refer.as_ref().and_then(NonInviteClient::next_deadline);
        refer.map_or(self.gives_up_at, |r| r.min(self.gives_up_at))
    }
}

/// The status of a `message/sipfrag` body's status line (`SIP/2.0 200 OK`).
pub fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let line = body.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim();
    let mut parts = line.split_ascii_whitespace();
    if !parts.next()?.eq_ignore_ascii_case("SIP/2.0") {
        return None;
    }
    parts
        .next()?
        .parse()
        .ok()
        .filter(|s| (100..700).contains(s))
}

/// Whether a transfer target is a URI we may put in `Refer-To`: `sip:`, `sips:` or `tel:`,
/// with nothing that could break out of the header.
pub fn valid_target(target: &str) -> bool {
    let scheme_ok = ["sip:", "sips:", "tel:"]
        .iter()
        .any(|s| target.len() > s.len() && target[..s.len()].eq_ignore_ascii_case(s));
    scheme_ok
        && target.len() <= 256
        && !target
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b"<>\"".contains(&b))
}

#[cfg(test)]
mod tests;
