//! Typed settings: `sip-config/ivr.toml` overlaid by `IVR_<SECTION>__<KEY>` environment
//! variables, so a container or a test can change any key without editing the file.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

pub use crate::directory::auth0::settings::{Auth0Settings, Lookup, Secret};
pub use sip_users::SipUserSettings;
pub use trunk::TrunkSettings;

mod sip_users;
mod trunk;
use crate::media::codec::Codec;
use crate::media::prompt::PromptLibrary;
use crate::media::prompt_cache::PcmCache;
use crate::media::stream::Liveness;
use crate::session::negotiate::Encryption;
use crate::sip::allow::AllowList;
use crate::sip::transaction::Timers;
use crate::sip::transport::ConnectionLimits;

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub sip: SipSettings,
    pub rtp: RtpSettings,
    pub dtmf: DtmfSettings,
    pub prompts: PromptSettings,
    pub flow: FlowSettings,
    pub directory: DirectorySettings,
    pub auth0: Auth0Settings,
    pub lockout: LockoutSettings,
    pub admission: AdmissionSettings,
    pub shutdown: ShutdownSettings,
    pub http: HttpSettings,
    pub cdr: CdrSettings,
    pub log: LogSettings,
    pub speech: SpeechSettings,
    pub tls: TlsSettings,
    /// The first trunk, also set from the environment (`IVR_TRUNK__*`).
    pub trunk: TrunkSettings,
    /// More trunks (`[[trunks]]`), each registered on its own.
    pub trunks: Vec<TrunkSettings>,
    pub transfer: TransferSettings,
}

/// The credentials a bridged transfer (`mode = "bridge"`) answers the PBX's digest challenges
/// with, when it asks.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransferSettings {
    pub username: String,
    /// From the environment only (`IVR_TRANSFER__PASSWORD`), or `password_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
}

/// The certificate SIP over TLS presents (`sip.tls_listen`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    /// PEM: the server certificate, then its chain.
    pub cert_file: Option<PathBuf>,
    /// PEM: its private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// PEM: CA certificates trusted for trunks over TLS, besides the system's.
    pub ca_file: Option<PathBuf>,
}

/// Text-to-speech for greetings from the directory, `say_text` and webhook texts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpeechSettings {
    /// The espeak-ng program (a path, or a name on PATH); missing = a warning and no speech.
    pub program: PathBuf,
    pub voice: String,
    /// Texts kept synthesised in memory.
    pub cache_entries: usize,
    /// How long a caller waits for speech that is not ready yet.
    pub wait_ms: u64,
}

impl Default for SpeechSettings {
    fn default() -> Self {
        SpeechSettings {
            program: PathBuf::from("espeak-ng"),
            voice: "en-us".into(),
            cache_entries: 1000,
            wait_ms: 3000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// A `tracing` filter (`info`, `debug`, `ivr=debug`); `RUST_LOG` wins when set.
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// Call records.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CdrSettings {
    /// One JSON line per ended call is appended here; off when unset.
    pub file: Option<PathBuf>,
}

/// The operations endpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Where `/metrics` and `/health/*` are served, e.g. `127.0.0.1:9090`; off when unset.
    pub listen: Option<SocketAddr>,
}

/// How a stop (SIGTERM, SIGINT) treats the calls in progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownSettings {
    /// Seconds calls in progress may go on after the first signal before they hear goodbye.
    pub grace_s: u64,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        ShutdownSettings { grace_s: 30 }
    }
}

/// Budgets per source IP for new calls, so one sender cannot take every port.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdmissionSettings {
    /// New INVITEs one source may send per second, on average.
    pub invites_per_second: f64,
    /// New INVITEs one source may send at once.
    pub burst: u32,
    /// Calls from one source still ringing or waiting for their ACK.
    pub pending_per_source: usize,
    /// Share of the RTP ports that unconfirmed calls from sources without a recent ACKed call
    /// may hold; the rest is kept for sources in good standing.
    pub unproven_share: f64,
    /// How long an answered call may wait for its ACK before its port is released.
    pub ack_wait_ms: u64,
}

impl Default for AdmissionSettings {
    fn default() -> Self {
        AdmissionSettings {
            invites_per_second: 20.0,
            burst: 40,
            pending_per_source: 10,
            unproven_share: 0.5,
            // Covers three retransmissions of the 200 at the default T1 (0.5, 1.5, 3.5 s).
            ack_wait_ms: 4000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutSettings {
    /// Wrong PINs for one account within the window that lock it.
    pub max_failures: usize,
    /// Wrong PINs from one caller ID (across accounts) within the window that lock it.
    pub caller_max_failures: usize,
    pub window_s: u64,
    pub lock_s: u64,
    /// Count in Redis, shared by every node (`redis://127.0.0.1:6379/0`); empty: in memory.
    pub redis_url: String,
    /// The secret every node hashes lockout keys with: from the environment only
    /// (`IVR_LOCKOUT__KEY`), or `key_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Secret>,
    pub key_file: Option<PathBuf>,
}

impl Default for LockoutSettings {
    fn default() -> Self {
        LockoutSettings {
            max_failures: 5,
            caller_max_failures: 10,
            window_s: 900,
            lock_s: 900,
            redis_url: String::new(),
            key: None,
            key_file: None,
        }
    }
}

impl LockoutSettings {
    /// The shared key, when Redis is used.
    pub fn key(&self) -> Result<Option<Vec<u8>>> {
        if self.redis_url.is_empty() {
            return Ok(None);
        }
        if let Some(key) = &self.key {
            return Ok(Some(key.expose().as_bytes().to_vec()));
        }
        let Some(path) = &self.key_file else {
            bail!("lockout.redis_url needs a key every node shares: IVR_LOCKOUT__KEY or lockout.key_file");
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("lockout.key_file {}", path.display()))?;
        let key = text.trim();
        if key.len() < 16 {
            bail!(
                "lockout.key_file {}: the key must be at least 16 characters",
                path.display()
            );
        }
        Ok(Some(key.as_bytes().to_vec()))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowSettings {
    /// The conversation: prompts, questions, menus and actions. Numbers no route names get it
    /// unless `unknown` is `reject`.
    pub file: PathBuf,
    /// A flow per dialled number (the DID, as the trunk sends it; a leading `+` is optional).
    pub routes: BTreeMap<String, PathBuf>,
    pub unknown: UnknownNumbers,
}

/// What a call to a number no route names gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownNumbers {
    /// The flow in `flow.file`.
    #[default]
    Default,
    /// 404 Not Found.
    Reject,
}

impl Default for FlowSettings {
    fn default() -> Self {
        FlowSettings {
            file: PathBuf::from("sip-config/flow.toml"),
            routes: BTreeMap::new(),
            unknown: UnknownNumbers::Default,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Local,
    Auth0,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectorySettings {
    pub backend: Backend,
    /// The local directory's users (account, PIN hash, greeting, balance).
    pub users: PathBuf,
    /// Threads checking legacy Argon2id PIN hashes (about 12 ms and 19 MiB each); 0 = half
    /// the cores.
    pub pin_check_threads: usize,
    /// The key PINs are hashed with, 64 hex digits: only from the environment
    /// (`IVR_DIRECTORY__PIN_KEY`); else `pin_key_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin_key: Option<Secret>,
    /// Where the PIN key is kept; made (mode 0600) on first start. Default: `pin.key` beside
    /// the users file.
    pub pin_key_file: Option<PathBuf>,
}

impl DirectorySettings {
    pub fn pin_key_file(&self) -> PathBuf {
        self.pin_key_file.clone().unwrap_or_else(|| {
            let dir = self.users.parent().unwrap_or(Path::new("."));
            dir.join("pin.key")
        })
    }

    /// The PIN key, read or made.
    pub fn pin_key(&self) -> Result<crate::directory::pin_key::PinKey> {
        let value = self.pin_key.as_ref().map(|k| k.expose());
        crate::directory::pin_key::PinKey::load(value, &self.pin_key_file())
    }
}

impl Default for DirectorySettings {
    fn default() -> Self {
        DirectorySettings {
            backend: Backend::Local,
            users: PathBuf::from("sip-config/users.toml"),
            pin_check_threads: 0,
            pin_key: None,
            pin_key_file: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InbandMode {
    /// Listen for tones only on calls that negotiated no telephone-event.
    Auto,
    On,
    Off,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DtmfSettings {
    /// Offer and answer RFC 4733 telephone-event.
    pub telephone_event: bool,
    /// In-band (Goertzel) detection over G.711 audio.
    pub inband: InbandMode,
}

impl Default for DtmfSettings {
    fn default() -> Self {
        DtmfSettings {
            telephone_event: true,
            inband: InbandMode::Auto,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipSettings {
    /// Address for both UDP and TCP.
    pub listen: SocketAddr,
    /// Address written into Contact and SDP `c=`; empty means "work it out".
    pub public_addr: PublicAddr,
    pub t1_ms: u64,
    pub t2_ms: u64,
    pub t4_ms: u64,
    /// Codec preference, first match in the caller's offer wins.
    pub codecs: Vec<Codec>,
    pub user_agent: String,
    /// Ring (180) this long before answering; 0 answers at once.
    pub answer_delay_ms: u64,
    /// SIP over TLS on this address (e.g. `0.0.0.0:5061`); off when unset.
    pub tls_listen: Option<SocketAddr>,
    /// Seconds of silence before a TCP or TLS connection that has spoken is closed.
    pub tcp_idle_s: u64,
    /// Threads for signalling, the flows and lookups; 0 = a quarter of the cores, at least
    /// one. Media has a thread per core of its own, and every thread that wakes costs CPU
    /// (about 20 µs a wake-up on a virtual machine), so more pay only for heavy signalling.
    pub threads: usize,
    /// TCP and TLS connections one IP address may hold at once.
    pub tcp_connections_per_source: usize,
    /// Addresses or CIDRs that may send INVITEs (the trunk's ranges); empty: everyone.
    pub allow: Vec<String>,
    /// INVITEs from elsewhere get no answer instead of 403.
    pub allow_silent_drop: bool,
    /// The digest realm softphones answer challenges for.
    pub realm: String,
    /// Softphones that may call and register with credentials.
    pub users: Vec<SipUserSettings>,
    /// The DNS server that locates trunks (SRV, A/AAAA); unset: the system's resolv.conf.
    pub dns_server: Option<SocketAddr>,
    /// Session timers (RFC 4028): the longest interval granted; 0 turns them off.
    pub session_expires_s: u32,
    /// The shortest interval accepted (at least 90, RFC 4028's floor).
    pub min_se_s: u32,
    /// How long a transfer may take, from our REFER to the caller's final NOTIFY.
    pub transfer_timeout_s: u64,
    /// Digest algorithms challenged with, in order (`MD5`, `SHA-256`).
    pub digest_algorithms: Vec<String>,
    /// Wrong passwords from one source before its credentials are refused unread...
    pub auth_max_failures: u32,
    /// ...for this long after its last one.
    pub auth_lock_s: u64,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl SipSettings {
    /// The async runtime's worker threads: `threads`, or a quarter of `cores`, at least one.
    pub fn runtime_threads_for(&self, cores: usize) -> usize {
        match self.threads {
            0 => (cores / 4).max(1),
            n => n,
        }
    }

    pub fn runtime_threads(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.runtime_threads_for(cores)
    }

    pub fn allow_list(&self) -> Result<AllowList> {
        AllowList::parse(&self.allow, self.allow_silent_drop).map_err(|e| anyhow::anyhow!(e))
    }

    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            idle: Duration::from_secs(self.tcp_idle_s),
            per_source: self.tcp_connections_per_source,
        }
    }

    pub fn timers(&self) -> Timers {
        Timers {
            t1: Duration::from_millis(self.t1_ms),
            t2: Duration::from_millis(self.t2_ms),
            t4: Duration::from_millis(self.t4_ms),
        }
    }
}

impl Default for SipSettings {
    fn default() -> Self {
        let timers = Timers::default();
        let mut codecs = vec![Codec::Pcmu, Codec::Pcma];
        if cfg!(feature = "opus") {
            codecs.insert(0, Codec::Opus);
        }
        SipSettings {
            listen: "0.0.0.0:5060".parse().expect("literal address"),
            public_addr: PublicAddr::default(),
            t1_ms: millis(timers.t1),
            t2_ms: millis(timers.t2),
            t4_ms: millis(timers.t4),
            codecs,
            // No version: a scanner learns nothing to look vulnerabilities up by.
            user_agent: "ivr".into(),
            answer_delay_ms: 0,
            tls_listen: None,
            tcp_idle_s: 3600,
            threads: 0,
            tcp_connections_per_source: 64,
            allow: Vec::new(),
            allow_silent_drop: false,
            realm: "ivr".into(),
            users: Vec::new(),
            dns_server: None,
            session_expires_s: 1800,
            transfer_timeout_s: 30,
            min_se_s: 90,
            // What Asterisk, FreeSWITCH and Kamailio challenge with by default: some phones
            // (baresip 1.0) give up on a SHA-256 challenge instead of taking the MD5 one.
            digest_algorithms: vec!["MD5".into()],
            auth_max_failures: 5,
            auth_lock_s: 300,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtpSettings {
    /// Inclusive range `first-last`; even ports carry RTP, the odd one above is kept for RTCP.
    pub ports: PortRange,
    /// Seconds without a packet from the caller before the call is ended.
    pub inactivity_timeout_s: u64,
    /// The caller's RTCP reports count as a sign of life too (a peer that stops sending RTP
    /// while on hold but keeps reporting).
    pub rtcp_keeps_alive: bool,
    /// Run the media clock threads at real-time priority (SCHED_FIFO) when allowed.
    pub realtime: bool,
    /// SRTP: `off`, `optional` (whatever the caller offers) or `mandatory` (488 without it).
    pub encryption: Encryption,
    /// Take SDES keys from SDP that arrived over plain UDP/TCP, where anyone on the path can
    /// read them. Off: keys are exchanged only over TLS.
    pub sdes_over_plain_sip: bool,
}

impl Default for RtpSettings {
    fn default() -> Self {
        RtpSettings {
            ports: PortRange {
                first: 30000,
                last: 30999,
            },
            inactivity_timeout_s: 60,
            rtcp_keeps_alive: false,
            realtime: true,
            encryption: Encryption::Optional,
            sdes_over_plain_sip: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromptSettings {
    pub dir: PathBuf,
    /// Where resampled prompt audio is kept between starts, by content hash (none: resample at
    /// every start).
    pub cache_dir: Option<PathBuf>,
}

impl Default for PromptSettings {
    fn default() -> Self {
        PromptSettings {
            dir: PathBuf::from("prompts"),
            cache_dir: None,
        }
    }
}

impl PromptSettings {
    /// The prompt library for `codecs`, through the cache when one is set.
    pub fn load(&self, codecs: &[Codec]) -> Result<PromptLibrary> {
        let cache = self.cache_dir.as_deref().map(PcmCache::new);
        PromptLibrary::load_cached(&self.dir, codecs, cache.as_ref())
    }
}

impl Settings {
    /// Defaults, then the file (if it exists), then the environment.
    pub fn load(path: &Path) -> Result<Settings> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if path.exists() {
            figment = figment.merge(Toml::file(path));
        } else if path != Path::new(DEFAULT_CONFIG) {
            bail!("config file {} does not exist", path.display());
        }
        figment = figment.merge(Env::prefixed("IVR_").split("__"));
        let settings: Settings = figment
            .extract()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if let Some(source) = figment.find_metadata("trunk.password") {
            if !source.name.to_lowercase().contains("environment") {
                bail!("trunk.password must not be in {}: set IVR_TRUNK__PASSWORD or trunk.password_file", path.display());
            }
        }
        if let Some(source) = figment.find_metadata("trunks") {
            if settings.trunks.iter().any(|t| t.password.is_some())
                && !source.name.to_lowercase().contains("environment")
            {
                bail!(
                    "[[trunks]]: a password must not be in {}: set password_file",
                    path.display()
                );
            }
        }
        if let Some(source) = figment.find_metadata("directory.pin_key") {
            if !source.name.to_lowercase().contains("environment") {
                bail!(
                    "directory.pin_key must not be in {}: set IVR_DIRECTORY__PIN_KEY or directory.pin_key_file",
                    path.display()
                );
            }
        }
        if let Some(source) = figment.find_metadata("lockout.key") {
            if !source.name.to_lowercase().contains("environment") {
                bail!(
                    "lockout.key must not be in {}: set IVR_LOCKOUT__KEY or lockout.key_file",
                    path.display()
                );
            }
        }
        if let Some(source) = figment.find_metadata("transfer.password") {
            if !source.name.to_lowercase().contains("environment") {
                bail!(
                    "transfer.password must not be in {}: set IVR_TRANSFER__PASSWORD or transfer.password_file",
                    path.display()
                );
            }
        }
        if let Some(source) = figment.find_metadata("auth0.client_secret") {
            if !source.name.to_lowercase().contains("environment") {
                bail!("auth0.client_secret must not be in {}: set IVR_AUTH0__CLIENT_SECRET or auth0.client_secret_file", path.display());
            }
        }
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<()> {
        if self.sip.t1_ms == 0 || self.sip.t2_ms < self.sip.t1_ms {
            bail!("sip.t1_ms must be > 0 and sip.t2_ms >= sip.t1_ms");
        }
        if self.sip.tls_listen.is_some()
            && (self.tls.cert_file.is_none() || self.tls.key_file.is_none())
        {
            bail!("sip.tls_listen needs tls.cert_file and tls.key_file");
        }
        self.sip.allow_list()?;
        self.sip.auth_settings()?;
        self.transfer_credentials()?;
        let listen = self.sip.listen.ip();
        if let Some(public) = self.sip.public_addr.0 {
            if !listen.is_unspecified() && listen.is_ipv4() != public.is_ipv4() {
                bail!("sip.public_addr {public} and sip.listen {listen} are of different address families: media is sent from the listen address");
            }
        }
        for trunk in self.all_trunks() {
            trunk.validate()?;
        }
        if self.sip.tcp_idle_s == 0 || self.sip.tcp_connections_per_source == 0 {
            bail!("sip.tcp_idle_s and sip.tcp_connections_per_source must be > 0");
        }
        if self.sip.min_se_s < 90
            || (self.sip.session_expires_s != 0 && self.sip.session_expires_s < self.sip.min_se_s)
        {
            bail!(
                "sip.min_se_s must be >= 90 and sip.session_expires_s 0 (off) or >= sip.min_se_s"
            );
        }
        if self.sip.codecs.is_empty() {
            bail!("sip.codecs must name at least one codec");
        }
        if self.rtp.encryption == Encryption::Mandatory
            && self.sip.tls_listen.is_none()
            && !self.rtp.sdes_over_plain_sip
        {
            bail!("rtp.encryption = mandatory refuses every call without sip.tls_listen (SDES keys travel only over TLS unless rtp.sdes_over_plain_sip = true)");
        }
        let a = &self.admission;
        if a.invites_per_second.is_nan()
            || a.invites_per_second <= 0.0
            || a.burst == 0
            || a.pending_per_source == 0
        {
            bail!("admission: invites_per_second, burst and pending_per_source must be > 0");
        }
        if !(a.unproven_share > 0.0 && a.unproven_share <= 1.0) {
            bail!("admission.unproven_share must be in (0, 1]");
        }
        if a.ack_wait_ms == 0 {
            bail!("admission.ack_wait_ms must be > 0");
        }
        if self.rtp.inactivity_timeout_s == 0 {
            bail!("rtp.inactivity_timeout_s must be > 0");
        }
        let l = &self.lockout;
        if l.max_failures == 0 || l.caller_max_failures == 0 || l.window_s == 0 {
            bail!("lockout: max_failures, caller_max_failures and window_s must be > 0");
        }
        if !l.redis_url.is_empty() {
            redis::Client::open(l.redis_url.as_str())
                .map_err(|e| anyhow::anyhow!("lockout.redis_url: {e}"))?;
            l.key()?;
        }
        if self.directory.backend == Backend::Auth0 {
            self.auth0_base()?;
            if self.auth0.client_id.is_empty() {
                bail!("auth0.client_id is required with directory.backend = auth0");
            }
        }
        Ok(())
    }

    /// `auth0.domain` checked: https, or http to a loopback address (a test mock).
    pub fn auth0_base(&self) -> Result<String> {
        let domain = self.auth0.domain.trim_end_matches('/');
        let bad = || format!("auth0.domain: expected https://tenant.auth0.com, got {domain:?}");
        if let Some(host) = domain.strip_prefix("http://") {
            let host = host.split('/').next().unwrap_or_default();
            let host = host
                .rsplit_once(':')
                .map_or(host, |(h, _)| h)
                .trim_matches(['[', ']']);
            let loopback =
                host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if !loopback {
                bail!(
                    "auth0.domain: http:// is accepted only for loopback addresses (a local mock)"
                );
            }
        } else if !domain.starts_with("https://") || domain.len() <= "https://".len() {
            bail!(bad());
        }
        Ok(domain.to_string())
    }

    /// What a bridged transfer answers digest challenges with: none without a username.
    pub fn transfer_credentials(&self) -> Result<Option<crate::sip::dial::Credentials>> {
        let t = &self.transfer;
        if t.username.is_empty() {
            return Ok(None);
        }
        let password = match (&t.password, &t.password_file) {
            (Some(secret), _) => secret.expose().to_string(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .with_context(|| format!("transfer.password_file {}", path.display()))?
                .trim()
                .to_string(),
            (None, None) => {
                bail!("transfer.username is set: set IVR_TRANSFER__PASSWORD or transfer.password_file")
            }
        };
        Ok(Some(crate::sip::dial::Credentials {
            username: t.username.clone(),
            password,
        }))
    }

    /// The client secret: from the environment, or the file `auth0.client_secret_file` names.
    pub fn auth0_secret(&self) -> Result<Secret> {
        if let Some(secret) = &self.auth0.client_secret {
            return Ok(secret.clone());
        }
        let path = self
            .auth0
            .client_secret_file
            .as_ref()
            .context("auth0: set IVR_AUTH0__CLIENT_SECRET or auth0.client_secret_file")?;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("auth0.client_secret_file {}", path.display()))?;
        Ok(Secret::new(text.trim().to_string()))
    }

    /// The address peers should reach us at.
    /// Every trunk to register with: `[trunk]` (when set) first, then `[[trunks]]`.
    pub fn all_trunks(&self) -> impl Iterator<Item = &TrunkSettings> {
        std::iter::once(&self.trunk)
            .chain(&self.trunks)
            .filter(|t| t.enabled())
    }

    pub fn public_ip(&self) -> IpAddr {
        if let Some(ip) = self.sip.public_addr.0 {
            return ip;
        }
        let ip = self.sip.listen.ip();
        if !ip.is_unspecified() {
            return ip;
        }
        outgoing_interface_ip().unwrap_or(IpAddr::from([127, 0, 0, 1]))
    }

    pub fn liveness(&self) -> Liveness {
        Liveness {
            timeout: Duration::from_secs(self.rtp.inactivity_timeout_s),
            rtcp_counts: self.rtp.rtcp_keeps_alive,
        }
    }
}

pub const DEFAULT_CONFIG: &str = "sip-config/ivr.toml";

/// `sip.public_addr`: an IP address, or empty for "work it out".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PublicAddr(pub Option<IpAddr>);

impl TryFrom<String> for PublicAddr {
    type Error = String;

    fn try_from(text: String) -> Result<PublicAddr, String> {
        match text.trim() {
            "" => Ok(PublicAddr(None)),
            ip => ip
                .parse()
                .map(|ip| PublicAddr(Some(ip)))
                .map_err(|_| format!("not an IP address: {text:?}")),
        }
    }
}

impl From<PublicAddr> for String {
    fn from(addr: PublicAddr) -> String {
        addr.0.map(|ip| ip.to_string()).unwrap_or_default()
    }
}

/// `rtp.ports`: `first-last`, inclusive, holding at least one even/odd pair. RTP uses the even
/// ports from the first even one up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl TryFrom<String> for PortRange {
    type Error = String;

    fn try_from(text: String) -> Result<PortRange, String> {
        let bad = || format!("expected `first-last`, got {text:?}");
        let (a, b) = text.split_once('-').ok_or_else(bad)?;
        let first: u16 = a.trim().parse().map_err(|_| bad())?;
        let last: u16 = b.trim().parse().map_err(|_| bad())?;
        let first = first.checked_add(first % 2).ok_or_else(bad)?;
        if first == 0 || first >= last {
            return Err(format!("{text} holds no even/odd port pair"));
        }
        Ok(PortRange { first, last })
    }
}

impl From<PortRange> for String {
    fn from(range: PortRange) -> String {
        format!("{}-{}", range.first, range.last)
    }
}

/// The source address the kernel would pick to reach the outside: connecting a UDP socket sends
/// nothing, it only consults the routing table.
fn outgoing_interface_ip() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    Some(socket.local_addr().ok()?.ip())
}

#[cfg(test)]
mod tests;
