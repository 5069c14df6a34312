//! The switchboard: starts the SIP stack and, for every call it reports, negotiates the
//! session, leases an RTP port, starts the media stream and, once the ACK confirms the call,
//! the flow. Dropping a call's entry ends its stream, frees its port and stops its flow.
//!
//! `serve` starts everything; `switchboard` is the loop and `answer` what it does with an
//! INVITE; `call` is one call's entry and record; `media_wiring` turns a negotiated session into
//! a stream; `bridge` holds bridged transfers. `crate::ops` is the operator's HTTP endpoint.

mod answer;
mod bridge;
mod call;
mod consult;
mod media_wiring;
mod switchboard;

use crate::sip::allow::is_public;
use switchboard::Switchboard;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};

use anyhow::Result;
use tokio::sync::{mpsc, watch};

use crate::config::Settings;
use crate::directory::Directory;
use crate::ivr::flow::Flows;
use crate::media::pacer::Pacer;
use crate::media::ports::PortPool;
use crate::media::prompt::PromptLibrary;
use crate::ops;
pub use crate::ops::Control;
use crate::records::RecordFile;
use crate::sip::admission::AdmissionLimits;
use crate::sip::driver;
use crate::sip::locate::{Locator, TrunkLocator};
use crate::sip::tls::Certificates;
use crate::sip::transport::TransportHandle;
use crate::sip::ua::{UaConfig, UserAgent};

/// A deadline that never comes (a year away), for a timer that is not armed.
const NEVER: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

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
    let pacer = Pacer::start(pacer_threads, settings.rtp.realtime, settings.rtp.io_uring)?;
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
            reloading: Arc::default(),
        };
        ops::serve(listen, status).await?;
    }
    tracing::info!(
        listen = %transport.local_addr(), tls = ?settings.sip.tls_listen, %public, rtp_ports = pool.capacity(), prompts = prompts.len(),
        "IVR listening on UDP and TCP"
    );
    settings.sip.check_exposure(public_ip)?;
    if settings.sip.allow.is_empty() && settings.sip.users.is_empty() && is_public(public_ip) {
        tracing::warn!(%public_ip, "sip.open_to_internet: anyone on the internet may start calls");
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
    let (consulted, consulted_rx) = mpsc::unbounded_channel();
    let switchboard = Switchboard {
        legs: HashMap::new(),
        locator: bridge_locator,
        located,
        consulted,
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
        .run(
            events,
            requests_rx,
            (located_rx, consulted_rx),
            controls,
            reloader,
        )
        .await;
    Ok(())
}
