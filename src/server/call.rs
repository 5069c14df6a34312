//! One call as the switchboard holds it: its channels to the media and the flow, what it
//! negotiated, and its record, written when the entry is dropped.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::ivr::flow::{FlowEnv, Report};
use crate::media::codec::Codec;
use crate::media::ports::PortLease;
use crate::media::relay::RelayEnd;
use crate::media::rtcp::millis;
use crate::media::stream::{MediaCommand, MediaEvent, RtpCounts};
use crate::records::{self, CallRecord};
use crate::session::negotiate::LocalMedia;
use crate::sip::dial::DialRequest;
use crate::sip::message::uri_user;
use crate::sip::refer::TransferOutcome;
use crate::sip::ua::CallRef;
use crate::sip::ua::EndReason;

pub(super) struct ActiveCall {
    pub(super) call_id: String,
    /// The caller ID (From user part), for the directory's limits and the webhook.
    pub(super) caller: String,
    pub(super) media: mpsc::UnboundedSender<MediaCommand>,
    /// Handed to the flow when the call is confirmed.
    pub(super) media_events: Option<mpsc::UnboundedReceiver<MediaEvent>>,
    pub(super) local: LocalMedia,
    /// We sent an offer (INVITE or re-INVITE without SDP); the answer comes in the ACK.
    pub(super) awaiting_answer: bool,
    pub(super) flow: Option<JoinHandle<()>>,
    /// The flow the number dialled routes to.
    pub(super) flow_env: Arc<FlowEnv>,
    /// The call record, filled in as the call goes.
    pub(super) record: CallRecord,
    pub(super) rtp: Arc<RtpCounts>,
    pub(super) report: Arc<Mutex<Report>>,
    /// Where the flow hears how its transfer went.
    pub(super) transfers: Option<mpsc::UnboundedSender<TransferOutcome>>,
    /// The codec the caller's stream speaks, which a bridged transfer offers the target.
    pub(super) codec: Codec,
    pub(super) bridge: Option<Bridge>,
}

/// A caller's bridge to a target we call.
pub(super) struct Bridge {
    pub(super) target: String,
    /// The call we placed, once the user agent has named it.
    pub(super) leg: Option<CallRef>,
    pub(super) codec: Codec,
    /// Our media toward the target.
    pub(super) local: LocalMedia,
    /// Held until the target's stream starts with it.
    pub(super) lease: Option<PortLease>,
    pub(super) relay: Option<RelayEnd>,
    pub(super) agent_media: Option<mpsc::UnboundedSender<MediaCommand>>,
    pub(super) answered_ms: Option<u64>,
    /// What the INVITE will carry once the target is located.
    pub(super) pending: Option<DialRequest>,
}

impl ActiveCall {
    /// The call's record, completed at its end.
    pub(super) fn finished(&self, reason: EndReason) -> CallRecord {
        let mut record = self.record.clone();
        record.ended_ms = records::now_ms();
        let since = record.answered_ms.unwrap_or(record.started_ms);
        record.duration_s = record.ended_ms.saturating_sub(since) as f64 / 1000.0;
        if let Ok(report) = self.report.lock() {
            record.verification = report.verification;
            record.account = report.account.clone();
            record.menu_keys = report.menu_keys.clone();
            record.greeting_spoken = report.greeting_spoken;
            record.transferred_to = report.transferred_to.clone();
        }
        if let Some(answered) = self.bridge.as_ref().and_then(|b| b.answered_ms) {
            record.bridged_s = Some(record.ended_ms.saturating_sub(answered) as f64 / 1000.0);
        }
        record.ended_by = match reason {
            EndReason::CallerHungUp | EndReason::Cancelled => "caller",
            EndReason::HungUp
            | EndReason::AckTimeout
            | EndReason::Rejected
            | EndReason::SessionExpired => "ivr",
        };
        record.end_reason = reason.as_str();
        record.rtp_sent = self.rtp.sent.load(Ordering::Relaxed);
        record.rtp_received = self.rtp.received.load(Ordering::Relaxed);
        record.rtp_dropped = self.rtp.dropped.load(Ordering::Relaxed);
        record.rtp_lost = self.rtp.lost.load(Ordering::Relaxed);
        if let Ok(quality) = self.rtp.quality.lock() {
            record.rtp_jitter_ms = millis(quality.jitter);
            record.rtt_ms = quality.rtt.map(millis);
            record.peer_lost = quality.peer_lost;
        }
        record
    }
}

impl Drop for ActiveCall {
    fn drop(&mut self) {
        if let Some(flow) = &self.flow {
            flow.abort();
        }
    }
}

/// The user part of the From URI, kept to characters a phone number or SIP user can have.
pub(super) fn caller_id(from: &str) -> String {
    let uri = crate::sip::message::uri_of(from).unwrap_or_default();
    let clean: String = uri_user(&uri)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "+*#._-".contains(*c))
        .take(32)
        .collect();
    if clean.is_empty() {
        "anonymous".into()
    } else {
        clean
    }
}

/// The number dialled: the Request-URI's user part, kept short.
pub(super) fn dialled_user(uri: &str) -> String {
    uri_user(uri).chars().take(64).collect()
}
