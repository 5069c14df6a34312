//! The service's counters in one Prometheus registry. A leaf every layer may record into, like
//! `tracing`: each metric is an atomic whose handle is resolved once, so recording costs no
//! lock and no allocation. The media hot path adds its packet counts once per pacer visit.

use std::sync::{LazyLock, OnceLock};

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Direction {
    pub direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Method {
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Status {
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TrunkLabel {
    /// The registration's address of record, `sip:username@domain`.
    pub trunk: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransferLabel {
    /// `refer` or `bridge`.
    pub mode: &'static str,
    /// `succeeded`, or the status of the failure (`486`, `408`...).
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabel {
    /// The endpoint's name in the settings (`[endpoints.<name>]`).
    pub endpoint: String,
    /// `ok` (2xx), `rejected` (4xx) or `failed` (5xx, or no answer in time).
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Source {
    pub source: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub calls_active: Gauge,
    pub calls_ended: Family<Reason, Counter>,
    pub verifications: Family<Outcome, Counter>,
    pub admission_refusals: Family<Reason, Counter>,
    pub sip_requests: Family<Method, Counter>,
    pub sip_responses: Family<Status, Counter>,
    pub rtp_sent: Counter,
    pub rtp_received: Counter,
    /// Packets that were not the caller's (a stranger's, or unreadable).
    pub rtp_dropped: Counter,
    /// SRTP packets refused (forged, replayed, wrong key...), also counted as dropped.
    pub srtp_refused: Family<Reason, Counter>,
    pub pacer_late_frames: Counter,
    pub rtp_port_pairs_free: Gauge,
    pub pin_check_queue: Gauge,
    pub directory_seconds: Histogram,
    pub webhook_seconds: Histogram,
    /// From an INVITE to the ACK of our 200: ringing, an application asked, the answer.
    pub call_setup_seconds: Histogram,
    /// Requests to the operator's endpoints (http steps, applications), by endpoint and outcome.
    pub endpoint_requests: Family<EndpointLabel, Counter>,
    pub endpoint_seconds: Histogram,
    pub rtp_jitter_seconds: Histogram,
    pub rtcp_rtt_seconds: Histogram,
    pub dtmf_keys: Family<Source, Counter>,
    pub reloads: Family<Outcome, Counter>,
    /// 1 while a trunk's registration holds, 0 otherwise (absent without trunks).
    pub trunk_registered: Family<TrunkLabel, Gauge>,
    /// Softphone digest checks, by outcome (ok, challenged, refused, locked).
    pub sip_auth: Family<Outcome, Counter>,
    pub transfers: Family<TransferLabel, Counter>,
    /// Lockout counters (account, caller) counting on this node alone: Redis is unreachable.
    pub lockout_degraded: Gauge,
    /// 1 while wrong PINs across all accounts are past the breaker's limit.
    pub lockout_breaker_open: Gauge,
    log_lines_dropped: Counter,
    /// Where the dropped log lines are counted (the log writer's own counter), read at scrape.
    dropped_log_lines: OnceLock<Box<dyn Fn() -> u64 + Send + Sync>>,
}

fn latency() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Metrics {
    fn new() -> Metrics {
        let rtp = Family::<Direction, Counter>::default();
        let packets = |direction| rtp.get_or_create(&Direction { direction }).clone();
        let mut m = Metrics {
            registry: Registry::with_prefix("ivr"),
            calls_active: Gauge::default(),
            calls_ended: Family::default(),
            verifications: Family::default(),
            admission_refusals: Family::default(),
            sip_requests: Family::default(),
            sip_responses: Family::default(),
            rtp_sent: packets("sent"),
            rtp_received: packets("received"),
            rtp_dropped: packets("dropped"),
            srtp_refused: Family::default(),
            pacer_late_frames: Counter::default(),
            rtp_port_pairs_free: Gauge::default(),
            pin_check_queue: Gauge::default(),
            directory_seconds: latency(),
            webhook_seconds: latency(),
            call_setup_seconds: latency(),
            endpoint_requests: Family::default(),
            endpoint_seconds: latency(),
            rtp_jitter_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 12)),
            rtcp_rtt_seconds: latency(),
            dtmf_keys: Family::default(),
            reloads: Family::default(),
            trunk_registered: Family::default(),
            sip_auth: Family::default(),
            transfers: Family::default(),
            lockout_degraded: Gauge::default(),
            lockout_breaker_open: Gauge::default(),
            log_lines_dropped: Counter::default(),
            dropped_log_lines: OnceLock::new(),
        };
        m.start_at_zero();
        let r = &mut m.registry;
        r.register("calls_active", "Calls in progress", m.calls_active.clone());
        r.register(
            "calls_ended",
            "Calls ended, by reason",
            m.calls_ended.clone(),
        );
        r.register(
            "verifications",
            "Caller verifications, by outcome",
            m.verifications.clone(),
        );
        r.register(
            "admission_refusals",
            "New INVITEs refused by admission control, by reason",
            m.admission_refusals.clone(),
        );
        r.register(
            "sip_requests",
            "SIP requests received, by method",
            m.sip_requests.clone(),
        );
        r.register(
            "sip_responses",
            "SIP responses sent, by status",
            m.sip_responses.clone(),
        );
        r.register("rtp_packets", "RTP packets sent, received and dropped", rtp);
        r.register(
            "trunk_registered",
            "1 while the registration with a trunk holds, by address of record",
            m.trunk_registered.clone(),
        );
        r.register(
            "lockout_degraded",
            "Lockout counters counting on this node alone because Redis is unreachable",
            m.lockout_degraded.clone(),
        );
        r.register(
            "lockout_breaker_open",
            "1 while wrong PINs across all accounts are past lockout.breaker_per_minute: every login waits",
            m.lockout_breaker_open.clone(),
        );
        r.register(
            "log_lines_dropped",
            "Log lines dropped because standard error was not read fast enough",
            m.log_lines_dropped.clone(),
        );
        r.register(
            "sip_auth",
            "Softphone digest checks on INVITE and REGISTER, by outcome",
            m.sip_auth.clone(),
        );
        r.register(
            "transfers",
            "Transfers to a person, by mode and outcome",
            m.transfers.clone(),
        );
        r.register(
            "srtp_refused",
            "SRTP packets refused, by reason",
            m.srtp_refused.clone(),
        );
        r.register(
            "pacer_late_frames",
            "Times a media clock thread woke a whole frame late",
            m.pacer_late_frames.clone(),
        );
        r.register(
            "rtp_port_pairs_free",
            "RTP port pairs free for new calls",
            m.rtp_port_pairs_free.clone(),
        );
        r.register(
            "pin_check_queue",
            "Logins waiting for a PIN-check thread",
            m.pin_check_queue.clone(),
        );
        r.register(
            "directory_seconds",
            "Time to verify a caller",
            m.directory_seconds.clone(),
        );
        r.register(
            "webhook_seconds",
            "Time a menu webhook or an http step took",
            m.webhook_seconds.clone(),
        );
        r.register(
            "call_setup_seconds",
            "From a call's INVITE to the ACK of its 200",
            m.call_setup_seconds.clone(),
        );
        r.register(
            "endpoint_requests",
            "Requests to the operator's endpoints (http steps, applications), by endpoint and outcome",
            m.endpoint_requests.clone(),
        );
        r.register(
            "endpoint_seconds",
            "Time an endpoint took to answer one request",
            m.endpoint_seconds.clone(),
        );
        r.register(
            "rtp_jitter_seconds",
            "Interarrival jitter of each caller's RTP at the end of its call (RFC 3550)",
            m.rtp_jitter_seconds.clone(),
        );
        r.register(
            "rtcp_rtt_seconds",
            "Round trip to each caller from its RTCP reports, at the end of its call",
            m.rtcp_rtt_seconds.clone(),
        );
        r.register(
            "dtmf_keys",
            "Keys heard, by how they came",
            m.dtmf_keys.clone(),
        );
        r.register("reloads", "Reloads, by outcome", m.reloads.clone());
        m
    }

    /// Reads `ivr_log_lines_dropped_total` from `dropped` at each scrape (set once, at start).
    /// Every label a dashboard or an alert asks for exists from the start, at 0: a rate of
    /// "no lockouts yet" is 0, not "no data", and a renamed metric is missed at once.
    fn start_at_zero(&self) {
        for reason in [
            "caller-bye",
            "cancelled",
            "ack-timeout",
            "server-bye",
            "rejected",
            "session-expired",
        ] {
            let _ = self.calls_ended.get_or_create(&Reason { reason });
        }
        for outcome in ["verified", "wrong_credentials", "locked", "unavailable"] {
            let _ = self.verifications.get_or_create(&Outcome { outcome });
        }
        for reason in ["rate", "pending", "share", "sources", "not_allowed"] {
            let _ = self.admission_refusals.get_or_create(&Reason { reason });
        }
    }

    pub fn count_dropped_log_lines(&self, dropped: impl Fn() -> u64 + Send + Sync + 'static) {
        let _ = self.dropped_log_lines.set(Box::new(dropped));
    }

    /// The Prometheus text format.
    pub fn encode(&self) -> String {
        if let Some(dropped) = self.dropped_log_lines.get() {
            self.log_lines_dropped
                .inner()
                .store(dropped(), std::sync::atomic::Ordering::Relaxed);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
