//! One call leg as the user agent keeps it: its dialog, its transactions, and one state that says
//! what the call is waiting for.

use std::time::Instant;

use crate::sip::admission::Caller;
use crate::sip::dialog::Dialog;
use crate::sip::message::Request;
use crate::sip::refer::Transfer;
use crate::sip::reliable::ReliableProvisional;
use crate::sip::session_timer::Refresher;
use crate::sip::transaction::{InviteServer, NonInviteClient};
use crate::sip::transport::Destination;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum State {
    /// The INVITE waits for the layer above to answer or decline.
    Offered,
    /// Answered: 180 sent, the 200 with `sdp` goes at `answer_at`.
    Ringing {
        answer_at: Instant,
        sdp: String,
    },
    /// 200 sent; the ACK has until `release_at` before the call's media is released.
    AwaitingAck {
        release_at: Instant,
    },
    /// 200 sent but the layer above is done with the call (it hung up, or the ACK was late):
    /// BYE goes as soon as the ACK comes or the INVITE transaction gives up (§15).
    Abandoned,
    Confirmed,
    /// A re-INVITE waits for the layer above.
    Reoffered,
    /// The re-INVITE's 200 is sent; its ACK may carry the answer to our offer.
    AwaitingReAck,
    /// BYE sent or received, or the INVITE declined: the transactions are finishing.
    Ending,
}

impl State {
    /// The layer above has been told `Ended`.
    pub(super) fn told_ended(&self) -> bool {
        matches!(self, State::Abandoned | State::Ending)
    }
}

pub(super) struct Leg {
    pub dialog: Dialog,
    pub state: State,
    /// The INVITE (or re-INVITE) transaction in progress or finishing.
    pub invite: Option<(Box<Request>, InviteServer)>,
    pub bye: Option<(NonInviteClient, Destination)>,
    /// Our BYE was challenged once already and re-sent with credentials.
    pub bye_authorized: bool,
    /// Keys this call holds in the agent's branch maps, so forgetting it touches only them.
    pub branches: Vec<String>,
    /// The deadline the agent's timer heap holds for this call.
    pub armed: Option<Instant>,
    /// Counted by admission control as waiting for its ACK, against this caller.
    pub unconfirmed: Option<Caller>,
    /// The session timer agreed (or about to be, with the pending 2xx): interval, refresher,
    /// and when the next refresh (ours) or BYE (theirs missing) is due.
    pub session: Option<(u32, Refresher, Option<Instant>)>,
    /// Our refreshing UPDATE in flight.
    pub refresh: Option<(NonInviteClient, Destination)>,
    /// Our 180, sent reliably and not yet acknowledged by a PRACK.
    pub reliable: Option<ReliableProvisional>,
    /// Our REFER and what came of it so far.
    pub transfer: Option<(Transfer, Destination)>,
    /// Re-INVITEs taken in the current minute: when it started, and how many.
    pub reinvites: Option<(Instant, u32)>,
    /// Our 180 has gone (the layer above rang while it decided, or the answer delay).
    pub rang: bool,
}

/// Re-INVITEs one call may send in a minute. A phone re-INVITEs for hold, resume, a codec
/// change or a session refresh, a few times a call; each one costs a negotiation and a media
/// update, so a stranger's flood of them is refused (500 with Retry-After) past this.
pub(super) const REINVITES_PER_MINUTE: u32 = 20;

impl Leg {
    /// Counts a re-INVITE; the seconds to wait when the minute's are used up.
    pub(super) fn reinvite_wait(&mut self, now: Instant) -> Option<u64> {
        let minute = std::time::Duration::from_secs(60);
        let (start, count) = match self.reinvites {
            Some((start, count)) if now.saturating_duration_since(start) < minute => (start, count),
            _ => (now, 0),
        };
        if count >= REINVITES_PER_MINUTE {
            return Some(
                (minute - now.saturating_duration_since(start))
                    .as_secs()
                    .max(1),
            );
        }
        self.reinvites = Some((start, count + 1));
        None
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let own = match self.state {
            State::Ringing { answer_at, .. } => Some(answer_at),
            State::AwaitingAck { release_at } => Some(release_at),
            _ => None,
        };
        let session = match self.state {
            State::Confirmed | State::Reoffered | State::AwaitingReAck => {
                self.session.and_then(|(_, _, due)| due)
            }
            _ => None,
        };
        [
            self.invite.as_ref().and_then(|(_, tx)| tx.next_deadline()),
            self.bye.as_ref().and_then(|(b, _)| b.next_deadline()),
            self.refresh.as_ref().and_then(|(r, _)| r.next_deadline()),
            self.reliable
                .as_ref()
                .map(ReliableProvisional::next_deadline),
            own,
            session,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Nothing left to do: the call can be forgotten.
    pub(super) fn is_finished(&self) -> bool {
        self.state == State::Ending && self.next_deadline().is_none()
    }

    /// The initial INVITE is still the transaction in progress (not a re-INVITE).
    pub(super) fn initial(&self) -> bool {
        matches!(
            self.state,
            State::Offered | State::Ringing { .. } | State::AwaitingAck { .. } | State::Abandoned
        )
    }
}
