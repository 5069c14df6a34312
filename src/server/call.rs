//! One call as the switchboard holds it: its channels to the media and the flow, what it
//! negotiated, and its record, written when the entry is dropped.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::ivr::flow::CallingParty;
use crate::ivr::flow::{FirstReply, FlowEnv, Report};
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
use crate::sip::transport::Transport;
use crate::sip::ua::CallRef;
use crate::sip::ua::EndReason;

pub(super) struct ActiveCall {
    pub(super) call_id: String,
    /// The caller ID (From user part), for the directory's limits and the webhook.
    pub(super) caller: CallingParty,
    /// Where the caller's signalling comes from: its SDP may name media only where `reach` allows.
    pub(super) signalled_from: IpAddr,
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
    /// Our answer (SDP), held while the flow's application is asked about the call.
    pub(super) held_answer: Option<String>,
    /// The application's reply, asked while ringing, for the flow.
    pub(super) first_reply: Option<FirstReply>,
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
    /// The target's hang-up leaves the caller with the flow.
    pub(super) caller_stays: bool,
}

impl ActiveCall {
    /// Tells the flow's status URLs where the call is (`initiated`, `answered`, `completed`).
    pub(super) fn report_status(&self, status: &'static str, ended: Option<&CallRecord>) {
        if self.flow_env.status.is_empty() {
            return;
        }
        let update = crate::ivr::app::status::CallStatus {
            call_id: self.call_id.clone(),
            from: self.caller.number.clone(),
            to: self.caller.dialled.clone(),
            status,
            duration_s: ended.map(|r| r.duration_s),
            reason: ended.map(|r| r.end_reason),
        };
        crate::ivr::app::status::notify(&self.flow_env.http, &self.flow_env.status, &update);
    }

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
/// How a call arrived: who it is from, the address its signalling came from, and over what.
pub(super) struct Arrival {
    pub(super) caller: CallingParty,
    pub(super) source: IpAddr,
    pub(super) transport: Transport,
}

/// Who is calling, as the flow and the lockout see it: the caller ID (P-Asserted-Identity
/// first) for everything, but for counting wrong PINs only when the source vouches for it; a
/// stranger's guesses count against its address (its /64 for IPv6), which it cannot change per
/// call as it can its From.
pub(super) fn calling_party(
    from: &str,
    asserted: Option<&str>,
    source: IpAddr,
    vouched: bool,
) -> CallingParty {
    let number = caller_id(from);
    let lockout_key = if vouched {
        format!("id:{}", caller_id(asserted.unwrap_or(from)))
    } else {
        match source {
            IpAddr::V4(v4) => format!("net:{v4}"),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("net:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        }
    };
    CallingParty {
        number,
        lockout_key,
        dialled: String::new(),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(from: &str, asserted: Option<&str>, source: &str, vouched: bool) -> String {
        calling_party(from, asserted, source.parse().unwrap(), vouched).lockout_key
    }

    #[test]
    fn a_strangers_guesses_count_against_its_address_whatever_its_from_says() {
        let first = key("<sip:+15550001@x>", None, "203.0.113.7", false);
        assert_eq!(first, "net:203.0.113.7");
        assert_eq!(key("<sip:+15559999@x>", None, "203.0.113.7", false), first);
        assert_ne!(key("<sip:+15550001@x>", None, "203.0.113.8", false), first);
        let party = calling_party(
            "<sip:+15550001@x>",
            None,
            "203.0.113.7".parse().unwrap(),
            false,
        );
        assert_eq!(
            party.number, "+15550001",
            "the number shown is still the From"
        );
    }

    #[test]
    fn an_ipv6_stranger_is_counted_by_its_64() {
        let a = key("<sip:1@x>", None, "2001:db8:1:2::1", false);
        assert_eq!(a, "net:2001:db8:1:2::/64");
        assert_eq!(key("<sip:2@x>", None, "2001:db8:1:2:ffff::9", false), a);
        assert_ne!(key("<sip:1@x>", None, "2001:db8:1:3::1", false), a);
    }

    #[test]
    fn a_trunks_callers_count_by_their_asserted_identity_then_their_from() {
        let trunk = "198.51.100.1";
        let alice = key("<sip:+15550001@x>", Some("<sip:+15557777@x>"), trunk, true);
        assert_eq!(alice, "id:+15557777");
        assert_eq!(key("<sip:+15550001@x>", None, trunk, true), "id:+15550001");
        assert_ne!(key("<sip:+15550002@x>", None, trunk, true), alice);
    }
}
