//! The switchboard: starts the SIP stack and, for every call it reports, negotiates the
//! session, leases an RTP port, starts the media stream and, once the ACK confirms the call,
//! the flow. Dropping a call's entry ends its stream, frees its port and stops its flow.

mod bridge;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Result;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::config::{InbandMode, Settings};
use crate::directory::Directory;
use crate::ivr::call::{Call, CallRequest};
use crate::ivr::flow::{self, FlowEnv, Flows, Report};
use crate::media::codec::Codec;
use crate::media::dtmf::DigitSource;
use crate::media::pacer::Pacer;
use crate::media::ports::{PortLease, PortPool};
use crate::media::prompt::PromptLibrary;
use crate::media::rtcp::millis;
use crate::media::srtp::MasterKey;
use crate::media::stream::{MediaCommand, MediaEvent, MediaParams, RtpCounts, RtpStream};
use crate::metrics::{Outcome, Reason, METRICS};
use crate::ops;
use crate::records::{self, CallRecord, RecordFile};
use crate::session::negotiate::{self, Encryption, LocalMedia, Negotiated, Rejection};
use crate::sip::admission::AdmissionLimits;
use crate::sip::driver;
use crate::sip::locate::{Locator, TrunkLocator};
use crate::sip::message::{self, uri_user};
use crate::sip::refer::TransferOutcome;
use crate::sip::tls::Certificates;
use crate::sip::transport::{Transport, TransportHandle};
use crate::sip::ua::{
    CallRef, Decline, EndReason, UaCommand, UaConfig, UaEvent, UserAgent, Warning,
};

struct ActiveCall {
    call_id: String,
    /// The caller ID (From user part), for the directory's limits and the webhook.
    caller: String,
    media: mpsc::UnboundedSender<MediaCommand>,
    /// Handed to the flow when the call is confirmed.
    media_events: Option<mpsc::UnboundedReceiver<MediaEvent>>,
    local: LocalMedia,
    /// We sent an offer (INVITE or re-INVITE without SDP); the answer comes in the ACK.
    awaiting_answer: bool,
    flow: Option<JoinHandle<()>>,
    /// The flow the number dialled routes to.
    flow_env: Arc<FlowEnv>,
    /// The call record, filled in as the call goes.
    record: CallRecord,
    rtp: Arc<RtpCounts>,
    report: Arc<Mutex<Report>>,
    /// Where the flow hears how its transfer went.
    transfers: Option<mpsc::UnboundedSender<TransferOutcome>>,
    /// The codec the caller's stream speaks, which a bridged transfer offers the target.
    codec: Codec,
    bridge: Option<bridge::Bridge>,
}

impl ActiveCall {
    /// The call's record, completed at its end.
    fn finished(&self, reason: EndReason) -> CallRecord {
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

/// A deadline that never comes (a year away), for a timer that is not armed.
const NEVER: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

struct Switchboard {
    settings: Settings,
    prompts: Arc<PromptLibrary>,
    flows: Arc<Flows>,
    pool: PortPool,
    pacer: Pacer,
    codecs: Vec<Codec>,
    media_ip: IpAddr,
    commands: mpsc::UnboundedSender<UaCommand>,
    requests: mpsc::UnboundedSender<(CallRef, CallRequest)>,
    calls: HashMap<CallRef, ActiveCall>,
    /// Turned true when the shutdown grace is over: every flow says goodbye and hangs up.
    closing: watch::Sender<bool>,
    /// Set at the first stop signal, for `/health/ready`.
    draining: Arc<AtomicBool>,
    records: Option<RecordFile>,
    /// Shared with the operations endpoint's readiness check.
    directory: Arc<RwLock<Arc<dyn Directory>>>,
    /// SIP over TLS's certificate, re-read on reload.
    certificates: Option<Arc<Certificates>>,
    trunk_locator: TrunkLocator,
    /// Bridged transfers: the call placed → the caller's call.
    legs: HashMap<CallRef, CallRef>,
    locator: bridge::SharedLocator,
    located: mpsc::UnboundedSender<(CallRef, Located)>,
    transfer_credentials: Option<crate::sip::dial::Credentials>,
}

/// A bridge target's address, once DNS has answered.
type Located = Result<Option<SocketAddr>, String>;

/// What the process asks of the server.
#[derive(Debug)]
pub enum Control {
    /// The first stop signal: no new calls, the others go on for the grace.
    Drain,
    /// A second stop signal: every call ends now.
    Now,
    /// Re-read what can change live; the answer, when someone waits for it.
    Reload(Option<oneshot::Sender<Result<(), String>>>),
}

/// What a reload swaps in for new calls; calls in progress keep what they started with.
pub struct Reloaded {
    pub prompts: Arc<PromptLibrary>,
    pub flows: Arc<Flows>,
    /// The directory every flow verifies against, for `/health/ready`.
    pub directory: Arc<dyn Directory>,
}

/// Reads the settings, prompts, flow and directory again, checked as `check-config` checks.
pub type Reloader = Arc<dyn Fn() -> Result<Reloaded> + Send + Sync>;

/// Runs the IVR until `controls` asks it to drain and the last call has ended (or to stop now).
pub async fn serve(
    settings: Settings,
    loaded: Reloaded,
    control: mpsc::UnboundedSender<Control>,
    controls: mpsc::UnboundedReceiver<Control>,
    reloader: Reloader,
) -> Result<()> {
    let certificates = match (&settings.tls.cert_file, &settings.tls.key_file) {
        (Some(cert), Some(key)) if settings.sip.tls_listen.is_some() => {
            Some(Certificates::load(cert, key)?)
        }
        _ => None,
    };
    let tls = match (settings.sip.tls_listen, &certificates) {
        (Some(listen), Some(certs)) => Some((listen, certs.acceptor()?)),
        _ => None,
    };
    let limits = settings.sip.connection_limits();
    let mut trunks = Vec::new();
    let mut places = Vec::new();
    for configured in settings.all_trunks() {
        if let Some((trunk, place)) = configured.trunk()? {
            trunks.push(trunk);
            places.push(place);
        }
    }
    let tls_client = if places.iter().any(|p| p.tls_name.is_some()) {
        Some(crate::sip::tls::connector(settings.tls.ca_file.as_deref())?)
    } else {
        None
    };
    let (transport, inbound) =
        TransportHandle::start(settings.sip.listen, tls, tls_client, limits).await?;
    let public_ip = settings.public_ip();
    let public = SocketAddr::new(public_ip, transport.local_addr().port());
    let ports = settings.rtp.ports;
    // Media sockets speak the family the SDP advertises (a dual-stack SIP socket can take
    // IPv4 callers, but an IPv6 RTP socket cannot send to an IPv4 address).
    let bind_ip = match (settings.sip.listen.ip(), public_ip) {
        (listen, IpAddr::V4(_)) if listen.is_unspecified() => IpAddr::from([0, 0, 0, 0]),
        (listen, IpAddr::V6(_)) if listen.is_unspecified() => IpAddr::from([0u16; 8]),
        (listen, _) => listen,
    };
    let pool = PortPool::new(bind_ip, ports.first, ports.last);
    let pacer_threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pacer = Pacer::start(pacer_threads, settings.rtp.realtime)?;
    let draining = Arc::new(AtomicBool::new(false));
    let Reloaded {
        prompts,
        flows,
        directory,
    } = loaded;
    let directory = Arc::new(RwLock::new(directory));
    let records = match &settings.cdr.file {
        Some(path) => Some(RecordFile::open(path.clone())?),
        None => None,
    };
    if let Some(listen) = settings.http.listen {
        let status = ops::Status {
            ports: pool.clone(),
            draining: draining.clone(),
            control,
            directory: directory.clone(),
        };
        ops::serve(listen, status).await?;
    }
    tracing::info!(
        listen = %transport.local_addr(), tls = ?settings.sip.tls_listen, %public, rtp_ports = pool.capacity(), prompts = prompts.len(),
        "IVR listening on UDP and TCP"
    );
    if settings.sip.allow.is_empty() && settings.sip.users.is_empty() && is_public(public_ip) {
        tracing::warn!(%public_ip, "sip.allow is empty: anyone on the internet may start calls; list your trunk's address ranges");
    }
    let (events_tx, events) = mpsc::unbounded_channel();
    let (commands, commands_rx) = mpsc::unbounded_channel();
    let ipv6 = settings.sip.listen.is_ipv6();
    let locator = Locator::new(settings.sip.dns_server, ipv6)?;
    let bridge_locator = Arc::new(Locator::new(settings.sip.dns_server, ipv6)?);
    let transfer_credentials = settings.transfer_credentials()?;
    let trunk_locator = TrunkLocator::new(locator, places, transport.clone());
    let ua_config = UaConfig {
        timers: settings.sip.timers(),
        public,
        tls_port: settings.sip.tls_listen.map(|a| a.port()),
        user_agent: settings.sip.user_agent.clone(),
        answer_delay: std::time::Duration::from_millis(settings.sip.answer_delay_ms),
        ack_wait: std::time::Duration::from_millis(settings.admission.ack_wait_ms),
        drain_retry_after: std::time::Duration::from_secs(settings.shutdown.grace_s),
        session_timer: crate::sip::session_timer::SessionTimerConfig {
            expires: settings.sip.session_expires_s,
            min_se: settings.sip.min_se_s,
        },
        transfer_timeout: std::time::Duration::from_secs(settings.sip.transfer_timeout_s),
        admission: AdmissionLimits {
            invites_per_second: settings.admission.invites_per_second,
            burst: f64::from(settings.admission.burst),
            pending_per_source: settings.admission.pending_per_source,
            capacity: pool.capacity(),
            unproven_share: settings.admission.unproven_share,
        },
        allow: settings.sip.allow_list()?,
        auth: settings.sip.auth_settings()?,
        trunks,
    };
    let mut user_agent = UserAgent::new(ua_config);
    user_agent.start(std::time::Instant::now());
    tokio::spawn(driver::run(
        user_agent,
        transport,
        inbound,
        commands_rx,
        events_tx,
    ));
    let (requests, requests_rx) = mpsc::unbounded_channel();
    let (located, located_rx) = mpsc::unbounded_channel();
    let switchboard = Switchboard {
        legs: HashMap::new(),
        locator: bridge_locator,
        located,
        transfer_credentials,
        codecs: settings.sip.codecs.clone(),
        settings,
        prompts,
        flows,
        pool,
        pacer,
        media_ip: public_ip,
        commands,
        requests,
        calls: HashMap::new(),
        closing: watch::channel(false).0,
        draining,
        records,
        directory,
        certificates,
        trunk_locator,
    };
    switchboard
        .run(events, requests_rx, located_rx, controls, reloader)
        .await;
    Ok(())
}

fn media_params(n: &Negotiated, inband: InbandMode) -> MediaParams {
    let g711 = matches!(n.codec, Codec::Pcmu | Codec::Pcma);
    MediaParams {
        inband: g711
            && match inband {
                InbandMode::On => true,
                InbandMode::Off => false,
                InbandMode::Auto => n.telephone_event.is_none(),
            },
        codec: n.codec,
        payload_type: n.payload_type,
        telephone_event: n.telephone_event,
        remote: n.remote,
        send: n.direction.sends(),
        peer_sends: n.peer_sends,
        srtp: n.srtp.clone(),
        rtcp_mux: n.rtcp_mux,
        remote_rtcp: n.remote_rtcp,
    }
}

/// An address the internet can reach (not loopback, private, link-local or documentation).
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_documentation())
        }
        IpAddr::V6(v6) => {
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80)
        }
    }
}

fn encryption_name(params: &MediaParams) -> &'static str {
    match params.srtp {
        Some(_) => "srtp",
        None => "none",
    }
}

/// The user part of the From URI, kept to characters a phone number or SIP user can have.
fn caller_id(from: &str) -> String {
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
fn dialled_user(uri: &str) -> String {
    uri_user(uri).chars().take(64).collect()
}

fn rejection(call: CallRef, r: Rejection) -> UaCommand {
    let decline = match r {
        Rejection::Malformed(why) => Decline {
            status: 400,
            reason: "Bad Request",
            warning: Some(Warning {
                code: 399,
                text: why,
            }),
        },
        Rejection::NotAcceptable { warn_code, text } => Decline {
            status: 488,
            reason: "Not Acceptable Here",
            warning: Some(Warning {
                code: warn_code,
                text,
            }),
        },
    };
    UaCommand::Decline { call, decline }
}

impl Switchboard {
    async fn run(
        mut self,
        mut events: mpsc::UnboundedReceiver<UaEvent>,
        mut requests: mpsc::UnboundedReceiver<(CallRef, CallRequest)>,
        mut located: mpsc::UnboundedReceiver<(CallRef, Located)>,
        mut controls: mpsc::UnboundedReceiver<Control>,
        reloader: Reloader,
    ) {
        let (reloaded_tx, mut reloaded) = mpsc::unbounded_channel();
        let grace = std::time::Duration::from_secs(self.settings.shutdown.grace_s);
        let mut draining = false;
        let grace_over = tokio::time::sleep(NEVER);
        tokio::pin!(grace_over);
        loop {
            if draining && self.calls.is_empty() {
                // Let the transport hand the last BYEs to the kernel, and the trunk answer our
                // Expires: 0.
                let linger = if self.settings.all_trunks().next().is_some() {
                    1000
                } else {
                    200
                };
                tokio::time::sleep(std::time::Duration::from_millis(linger)).await;
                tracing::info!("drained: every call has ended");
                return;
            }
            tokio::select! {
                Some(event) = events.recv() => self.on_event(event),
                Some((call, request)) = requests.recv() => match request {
                    CallRequest::Hangup => self.command(UaCommand::Hangup { call }),
                    CallRequest::Transfer(request) => self.transfer(call, request),
                },
                Some((call, found)) = located.recv() => self.on_located(call, found),
                Some(control) = controls.recv() => match control {
                    Control::Reload(reply) => {
                        let reloader = reloader.clone();
                        let done = reloaded_tx.clone();
                        tokio::spawn(async move {
                            let result = tokio::task::spawn_blocking(move || reloader())
                                .await
                                .unwrap_or_else(|e| Err(anyhow::anyhow!("reload panicked: {e}")));
                            let _ = done.send((result, reply));
                        });
                    }
                    stop => {
                        self.command(UaCommand::Drain);
                        self.draining.store(true, Ordering::Relaxed);
                        if matches!(stop, Control::Drain) && !draining {
                            tracing::info!(calls = self.calls.len(), grace_s = grace.as_secs(), "stopping: no new calls, calls in progress go on");
                            grace_over.as_mut().reset(tokio::time::Instant::now() + grace);
                        } else {
                            tracing::info!(calls = self.calls.len(), "stopping now: every call gets BYE");
                            for &call in self.calls.keys() {
                                self.command(UaCommand::Hangup { call });
                            }
                        }
                        draining = true;
                    }
                },
                Some((result, reply)) = reloaded.recv() => self.on_reloaded(result, reply),
                () = &mut grace_over, if draining => {
                    tracing::info!(calls = self.calls.len(), "shutdown grace over: goodbye to the calls left");
                    let _ = self.closing.send(true);
                    // A call not yet confirmed has no conversation to say goodbye.
                    for (&call, active) in &self.calls {
                        if active.flow.is_none() {
                            self.command(UaCommand::Hangup { call });
                        }
                    }
                    grace_over.as_mut().reset(tokio::time::Instant::now() + NEVER);
                }
                else => return,
            }
        }
    }

    fn on_reloaded(
        &mut self,
        result: Result<Reloaded>,
        reply: Option<oneshot::Sender<Result<(), String>>>,
    ) {
        if let Some(records) = &mut self.records {
            records.reopen();
        }
        let result = match (result, &self.certificates) {
            (Ok(reloaded), Some(certs)) => certs.reload().map(|()| reloaded),
            (result, _) => result,
        };
        let outcome = if result.is_ok() { "ok" } else { "refused" };
        METRICS.reloads.get_or_create(&Outcome { outcome }).inc();
        let answer = match result {
            Ok(reloaded) => {
                self.prompts = reloaded.prompts;
                self.flows = reloaded.flows;
                if let Ok(mut directory) = self.directory.write() {
                    *directory = reloaded.directory;
                }
                tracing::info!(
                    prompts = self.prompts.len(),
                    "reloaded: new calls use the new flow, prompts and users"
                );
                Ok(())
            }
            Err(e) => {
                tracing::error!("reload refused, the running configuration stays: {e:#}");
                Err(format!("{e:#}"))
            }
        };
        if let Some(reply) = reply {
            let _ = reply.send(answer);
        }
    }

    fn command(&self, command: UaCommand) {
        let _ = self.commands.send(command);
    }

    fn on_event(&mut self, event: UaEvent) {
        match event {
            UaEvent::Incoming {
                call,
                call_id,
                from,
                asserted,
                dialled,
                to,
                transport,
                offer,
            } => {
                let record = CallRecord {
                    call_id: call_id.clone(),
                    caller: from.clone(),
                    asserted_identity: asserted,
                    dialled: dialled_user(&dialled),
                    transport: transport.via_name(),
                    encryption: "none",
                    started_ms: records::now_ms(),
                    ..CallRecord::default()
                };
                let to_user = message::uri_of(&to).unwrap_or_default();
                let to_user = uri_user(&to_user);
                let Some(flow) = self.flows.pick(&record.dialled, to_user).cloned() else {
                    tracing::info!(call_id = %record.call_id, dialled = %record.dialled, "no route for the number dialled: 404");
                    let decline = Decline {
                        status: 404,
                        reason: "Not Found",
                        warning: None,
                    };
                    return self.command(UaCommand::Decline { call, decline });
                };
                tracing::info!(call_id = %record.call_id, dialled = %record.dialled, flow = %flow.name, "routed");
                self.on_incoming(call, caller_id(&from), transport, offer, record, flow)
            }
            UaEvent::Reinvite { call, offer } if self.legs.contains_key(&call) => {
                self.leg_reoffer(call, offer)
            }
            UaEvent::Reinvite { call, offer } => self.on_reinvite(call, offer),
            UaEvent::LocateTrunk { trunk } => self.trunk_locator.locate(trunk, &self.commands),
            UaEvent::Confirmed { call, answer } if self.legs.contains_key(&call) => {
                // The target's answer to our offer in a re-INVITE it sent without one.
                if let Some(answer) = answer {
                    self.leg_answer(call, &answer);
                }
            }
            UaEvent::Confirmed { call, answer } => self.on_confirmed(call, answer),
            UaEvent::Transferred { call, outcome } => {
                let flow = self.calls.get(&call).and_then(|a| a.transfers.as_ref());
                if let Some(flow) = flow {
                    let _ = flow.send(outcome);
                }
            }
            UaEvent::Dialled {
                call,
                leg,
                progress,
            } => self.on_dialled(call, leg, progress),
            UaEvent::InfoDigit { call, digit } => {
                if let Some(active) = self.calls.get(&call) {
                    let source = DigitSource::Info;
                    let _ = active.media.send(MediaCommand::Digit { digit, source });
                }
            }
            UaEvent::Ended { call, .. } if self.on_leg_ended(call) => {}
            UaEvent::Ended { call, reason } => {
                let label = Reason {
                    reason: reason.as_str(),
                };
                METRICS.calls_ended.get_or_create(&label).inc();
                if let Some(active) = self.calls.remove(&call) {
                    self.caller_ended(&active);
                    METRICS.calls_active.dec();
                    tracing::info!(call_id = %active.call_id, reason = reason.as_str(), "media released");
                    if let Some(file) = &mut self.records {
                        file.write(&active.finished(reason));
                    }
                }
            }
        }
    }

    fn on_incoming(
        &mut self,
        call: CallRef,
        caller: String,
        transport: Transport,
        offer: Option<Vec<u8>>,
        mut record: CallRecord,
        flow_env: Arc<FlowEnv>,
    ) {
        let call_id = record.call_id.clone();
        let Some(lease) = self.pool.lease() else {
            tracing::warn!(%call_id, "no free RTP port, refusing the call");
            let decline = Decline {
                status: 503,
                reason: "Service Unavailable",
                warning: Some(Warning {
                    code: 399,
                    text: "No media port available".into(),
                }),
            };
            return self.command(UaCommand::Decline { call, decline });
        };
        let keys_may_travel = transport == Transport::Tls || self.settings.rtp.sdes_over_plain_sip;
        let local = self.local_media(&lease, self.settings.rtp.encryption, keys_may_travel);
        let (params, sdp, awaiting_answer) = match offer {
            Some(offer) => match negotiate::answer(&offer, &self.codecs, &local) {
                Ok((n, sdp)) => {
                    if let Some(why) = &n.crypto_declined {
                        tracing::info!(%call_id, "plain RTP answered, a=crypto not used: {why}");
                    }
                    (media_params(&n, self.settings.dtmf.inband), sdp, false)
                }
                Err(r) => {
                    tracing::info!(%call_id, "offer refused: {r:?}");
                    return self.command(rejection(call, r));
                }
            },
            None => {
                let sdp = match negotiate::offer(&self.codecs, &local) {
                    Ok(sdp) => sdp,
                    Err(r) => {
                        tracing::info!(%call_id, "no offer we may make: {r:?}");
                        return self.command(rejection(call, r));
                    }
                };
                let codec = self.codecs[0];
                let params = MediaParams {
                    codec,
                    payload_type: codec.default_payload_type(),
                    telephone_event: None,
                    remote: None,
                    send: true,
                    peer_sends: false,
                    inband: false,
                    srtp: None,
                    rtcp_mux: false,
                    remote_rtcp: None,
                };
                (params, sdp, true)
            }
        };
        tracing::info!(%call_id, codec = params.codec.sdp_name(), srtp = params.srtp.is_some(), rtp_port = local.port, remote = ?params.remote, "session negotiated");
        record.codec = params.codec.sdp_name();
        record.encryption = encryption_name(&params);
        let codec = params.codec;
        let (media, media_rx) = mpsc::unbounded_channel();
        let (media_events_tx, media_events) = mpsc::unbounded_channel();
        let stream = RtpStream::new(
            call_id.clone(),
            lease,
            params,
            self.prompts.clone(),
            self.settings.liveness(),
            media_rx,
            media_events_tx,
        );
        let rtp = stream.counts();
        self.pacer.add(stream);
        METRICS.calls_active.inc();
        self.calls.insert(
            call,
            ActiveCall {
                call_id,
                caller,
                media,
                media_events: Some(media_events),
                local,
                awaiting_answer,
                flow: None,
                flow_env,
                record,
                rtp,
                report: Arc::default(),
                transfers: None,
                codec,
                bridge: None,
            },
        );
        self.command(UaCommand::Answer { call, sdp });
    }

    /// Our side of a new stream on `lease`, as its SDP will describe it.
    fn local_media(
        &self,
        lease: &PortLease,
        encryption: Encryption,
        keys_may_travel: bool,
    ) -> LocalMedia {
        LocalMedia {
            ip: self.media_ip,
            port: lease.port(),
            session_id: rand::random::<u32>() as u64,
            version: 1,
            telephone_event: self.settings.dtmf.telephone_event,
            encryption,
            keys_may_travel,
            key: MasterKey::random(),
        }
    }

    fn on_reinvite(&mut self, call: CallRef, offer: Option<Vec<u8>>) {
        let Some(active) = self.calls.get_mut(&call) else {
            return;
        };
        active.local.version += 1;
        let command = match offer {
            Some(offer) => match negotiate::answer(&offer, &self.codecs, &active.local) {
                Ok((n, sdp)) => {
                    tracing::info!(call_id = %active.call_id, direction = n.direction.attribute(), "session updated");
                    let params = media_params(&n, self.settings.dtmf.inband);
                    active.record.codec = n.codec.sdp_name();
                    active.codec = n.codec;
                    active.record.encryption = encryption_name(&params);
                    let _ = active.media.send(MediaCommand::Update(params));
                    UaCommand::Answer { call, sdp }
                }
                Err(r) => rejection(call, r),
            },
            None => match negotiate::offer(&self.codecs, &active.local) {
                Ok(sdp) => {
                    active.awaiting_answer = true;
                    UaCommand::Answer { call, sdp }
                }
                Err(r) => rejection(call, r),
            },
        };
        self.command(command);
    }

    fn on_confirmed(&mut self, call: CallRef, answer: Option<Vec<u8>>) {
        let Some(active) = self.calls.get_mut(&call) else {
            return;
        };
        if active.awaiting_answer {
            active.awaiting_answer = false;
            match answer
                .as_deref()
                .map(|a| negotiate::read_answer(a, &self.codecs, &active.local))
            {
                Some(Ok(n)) => {
                    tracing::info!(call_id = %active.call_id, codec = n.codec.sdp_name(), srtp = n.srtp.is_some(), "answer received in ACK");
                    let params = media_params(&n, self.settings.dtmf.inband);
                    active.record.codec = n.codec.sdp_name();
                    active.codec = n.codec;
                    active.record.encryption = encryption_name(&params);
                    let _ = active.media.send(MediaCommand::Update(params));
                }
                failed => {
                    tracing::warn!(call_id = %active.call_id, "ACK without a usable answer ({failed:?}), hanging up");
                    return self.command(UaCommand::Hangup { call });
                }
            }
        }
        let _ = active.media.send(MediaCommand::Confirmed);
        active
            .record
            .answered_ms
            .get_or_insert_with(records::now_ms);
        if let Some(events) = active.media_events.take() {
            let (transfers, transfers_rx) = mpsc::unbounded_channel();
            active.transfers = Some(transfers);
            let handle = Call::new(
                active.call_id.clone(),
                call,
                active.media.clone(),
                events,
                self.requests.clone(),
                transfers_rx,
                self.prompts.clone(),
            );
            let caller = active.caller.clone();
            let closing = self.closing.subscribe();
            active.flow = Some(tokio::spawn(flow::run(
                handle,
                active.flow_env.clone(),
                caller,
                closing,
                active.report.clone(),
            )));
        }
    }
}
