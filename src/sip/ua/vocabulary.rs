//! What the user agent says to the layer above and what it takes from it: events, commands and
//! its configuration. The server speaks only these; nothing here does I/O.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use crate::sip::admission::AdmissionLimits;
use crate::sip::allow::AllowList;
use crate::sip::auth::AuthSettings;
use crate::sip::dial::DialRequest;
use crate::sip::refer::TransferOutcome;
use crate::sip::registration::Trunk;
use crate::sip::session_timer::SessionTimerConfig;
use crate::sip::transaction::Timers;
use crate::sip::transport::{Destination, Transport};

pub type CallRef = u64;

#[derive(Debug, PartialEq)]
pub enum UaEvent {
    /// A new call wants an answer (`Answer` or `Decline`).
    Incoming {
        call: CallRef,
        call_id: String,
        from: String,
        /// P-Asserted-Identity, when the caller's trunk sent one.
        asserted: Option<String>,
        /// The Request-URI: the number or name dialled.
        dialled: String,
        /// The To header (some trunks carry the DID there).
        to: String,
        transport: Transport,
        offer: Option<Vec<u8>>,
        /// Where the INVITE came from.
        source: SocketAddr,
        /// The source is a trunk or on `sip.allow`: its From and P-Asserted-Identity may be
        /// believed. Anyone else can write any number there.
        vouched: bool,
    },
    /// A re-INVITE wants an answer (or an offer, when it has no SDP).
    Reinvite {
        call: CallRef,
        offer: Option<Vec<u8>>,
    },
    /// The ACK arrived; it carries the answer when we made the offer.
    Confirmed {
        call: CallRef,
        answer: Option<Vec<u8>>,
    },
    /// A key sent in a SIP INFO.
    InfoDigit { call: CallRef, digit: char },
    /// The transfer asked for with `UaCommand::Transfer` is over.
    Transferred {
        call: CallRef,
        outcome: TransferOutcome,
    },
    /// Sent exactly once for every `Incoming`: the call's media can go.
    Ended { call: CallRef, reason: EndReason },
    /// How a call we placed with `UaCommand::Dial` for `call` is going. `leg` names it from
    /// `Calling` on (hang it up to CANCEL); once `Answered` it is a call like the others and
    /// ends with `Ended`.
    Dialled {
        call: CallRef,
        leg: CallRef,
        progress: DialProgress,
    },
    /// Trunk `trunk` (its index in `UaConfig::trunks`) needs its targets from DNS: at start,
    /// and after every target failed. Answered with `UaCommand::TrunkTargets`.
    LocateTrunk { trunk: usize },
}

#[derive(Debug, PartialEq)]
pub enum DialProgress {
    Calling,
    /// A provisional response; its SDP when it brings early media.
    Ringing {
        early: Option<Vec<u8>>,
    },
    Answered {
        answer: Vec<u8>,
    },
    /// No call: busy (486, 600), no answer (408, 480), refused, or cancelled (487).
    Failed {
        status: u16,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    CallerHungUp,
    Cancelled,
    AckTimeout,
    HungUp,
    Rejected,
    /// The session timer ran out: the caller stopped refreshing, or our refresh failed.
    SessionExpired,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::CallerHungUp => "caller-bye",
            EndReason::Cancelled => "cancelled",
            EndReason::AckTimeout => "ack-timeout",
            EndReason::HungUp => "server-bye",
            EndReason::Rejected => "rejected",
            EndReason::SessionExpired => "session-expired",
        }
    }
}

/// A `Warning` header (RFC 3261 §20.43): a three-digit code and a text for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub code: u16,
    pub text: String,
}

/// A final failure response to an INVITE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decline {
    pub status: u16,
    pub reason: &'static str,
    pub warning: Option<Warning>,
}

#[derive(Debug, PartialEq)]
pub enum UaCommand {
    /// Send 180 Ringing now: the layer above is still deciding (it asks an application).
    Ring {
        call: CallRef,
    },
    /// Accept with this SDP; the 200 goes after `UaConfig::answer_delay` (ringing until then).
    Answer {
        call: CallRef,
        sdp: String,
    },
    Decline {
        call: CallRef,
        decline: Decline,
    },
    Hangup {
        call: CallRef,
    },
    /// Ask the caller to call `target` (a SIP or tel URI) instead: blind transfer by REFER.
    Transfer {
        call: CallRef,
        target: String,
    },
    /// Place a call for `call` (a bridge's second leg).
    Dial {
        call: CallRef,
        request: DialRequest,
    },
    /// Stop taking calls: new INVITEs and out-of-dialog OPTIONS get 503; calls go on.
    Drain,
    /// Where trunk `trunk`'s registrar is, best first.
    TrunkTargets {
        trunk: usize,
        targets: Vec<SocketAddr>,
    },
}

#[derive(Debug, Clone)]
pub struct UaConfig {
    pub timers: Timers,
    /// Our address as the world reaches it: Contact, Via and the Warning host.
    pub public: SocketAddr,
    /// The port SIP over TLS listens on, when it does.
    pub tls_port: Option<u16>,
    pub user_agent: String,
    /// Ring (180) this long before answering a new call.
    pub answer_delay: Duration,
    /// How long an answered call may wait for its ACK before its media is released. Much
    /// shorter than Timer H (64·T1), so a never-ACKed INVITE holds a port only briefly.
    pub ack_wait: Duration,
    pub admission: AdmissionLimits,
    /// Who may start calls (besides the trunks).
    pub allow: AllowList,
    /// Trunks to register with.
    pub trunks: Vec<Trunk>,
    /// Softphones that may call and register with digest credentials.
    pub auth: Option<AuthSettings>,
    /// The Retry-After of the 503s a draining agent answers with.
    pub drain_retry_after: Duration,
    /// Session timers (RFC 4028).
    pub session_timer: SessionTimerConfig,
    /// How long a transfer may take, from our REFER to the final NOTIFY.
    pub transfer_timeout: Duration,
}

/// A message to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Transmit {
    pub destination: Destination,
    pub bytes: Bytes,
}
