//! Typed settings: `sip-config/ivr.toml` overlaid by `IVR_<SECTION>__<KEY>` environment
//! variables, so a container or a test can change any key without editing the file.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::media::codec::Codec;

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub sip: SipSettings,
    pub rtp: RtpSettings,
    pub dtmf: DtmfSettings,
    pub prompts: PromptSettings,
    pub flow: FlowSettings,
    pub directory: DirectorySettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowSettings {
    /// The conversation: prompts, questions, menus and actions.
    pub file: PathBuf,
}

impl Default for FlowSettings {
    fn default() -> Self {
        FlowSettings {
            file: PathBuf::from("sip-config/flow.toml"),
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
    /// The local directory's users (account, Argon2id PIN hash, greeting, balance).
    pub users: PathBuf,
}

impl Default for DirectorySettings {
    fn default() -> Self {
        DirectorySettings {
            backend: Backend::Local,
            users: PathBuf::from("sip-config/users.toml"),
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
    pub public_addr: String,
    pub t1_ms: u64,
    pub t2_ms: u64,
    pub t4_ms: u64,
    /// Codec preference, first match in the caller's offer wins.
    pub codecs: Vec<String>,
    pub user_agent: String,
    /// Ring (180) this long before answering; 0 answers at once.
    pub answer_delay_ms: u64,
}

impl Default for SipSettings {
    fn default() -> Self {
        let mut codecs = vec!["PCMU".to_string(), "PCMA".to_string()];
        if cfg!(feature = "opus") {
            codecs.insert(0, "opus".to_string());
        }
        SipSettings {
            listen: "0.0.0.0:5060".parse().expect("literal address"),
            public_addr: String::new(),
            t1_ms: 500,
            t2_ms: 4000,
            t4_ms: 5000,
            codecs,
            user_agent: format!("ivr/{}", env!("CARGO_PKG_VERSION")),
            answer_delay_ms: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtpSettings {
    /// Inclusive range `first-last`; even ports carry RTP, the odd one above is kept for RTCP.
    pub ports: String,
    /// Seconds without a packet from the caller before the call is ended.
    pub inactivity_timeout_s: u64,
}

impl Default for RtpSettings {
    fn default() -> Self {
        RtpSettings {
            ports: "30000-30999".into(),
            inactivity_timeout_s: 60,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromptSettings {
    pub dir: PathBuf,
}

impl Default for PromptSettings {
    fn default() -> Self {
        PromptSettings {
            dir: PathBuf::from("prompts"),
        }
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
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<()> {
        self.rtp_port_range()?;
        self.public_ip()?;
        if self.sip.t1_ms == 0 || self.sip.t2_ms < self.sip.t1_ms {
            bail!("sip.t1_ms must be > 0 and sip.t2_ms >= sip.t1_ms");
        }
        if self.sip.codecs.is_empty() {
            bail!("sip.codecs must name at least one codec");
        }
        for name in &self.sip.codecs {
            Codec::from_name(name).with_context(|| format!("sip.codecs: {name}"))?;
        }
        if self.rtp.inactivity_timeout_s == 0 {
            bail!("rtp.inactivity_timeout_s must be > 0");
        }
        Ok(())
    }

    pub fn codecs(&self) -> Vec<Codec> {
        self.sip
            .codecs
            .iter()
            .filter_map(|n| Codec::from_name(n).ok())
            .collect()
    }

    /// The even-numbered RTP ports of `rtp.ports`.
    pub fn rtp_port_range(&self) -> Result<(u16, u16)> {
        let bad = || format!("rtp.ports: expected `first-last`, got {:?}", self.rtp.ports);
        let (a, b) = self.rtp.ports.split_once('-').with_context(bad)?;
        let first: u16 = a.trim().parse().with_context(bad)?;
        let last: u16 = b.trim().parse().with_context(bad)?;
        let first_even = first + first % 2;
        if first == 0 || last < first_even + 1 {
            bail!("rtp.ports: {first}-{last} holds no even/odd port pair");
        }
        Ok((first_even, last))
    }

    /// The address peers should reach us at.
    pub fn public_ip(&self) -> Result<IpAddr> {
        if !self.sip.public_addr.is_empty() {
            return self.sip.public_addr.parse().with_context(|| {
                format!(
                    "sip.public_addr: not an IP address: {:?}",
                    self.sip.public_addr
                )
            });
        }
        let ip = self.sip.listen.ip();
        if !ip.is_unspecified() {
            return Ok(ip);
        }
        Ok(outgoing_interface_ip().unwrap_or(IpAddr::from([127, 0, 0, 1])))
    }

    pub fn inactivity_timeout(&self) -> Duration {
        Duration::from_secs(self.rtp.inactivity_timeout_s)
    }
}

pub const DEFAULT_CONFIG: &str = "sip-config/ivr.toml";

/// The source address the kernel would pick to reach the outside: connecting a UDP socket sends
/// nothing, it only consults the routing table.
fn outgoing_interface_ip() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    Some(socket.local_addr().ok()?.ip())
}
