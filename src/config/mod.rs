//! Typed settings: `sip-config/ivr.toml` overlaid by `IVR_<SECTION>__<KEY>` environment
//! variables, so a container or a test can change any key without editing the file.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::media::stream::Liveness;
use crate::session::negotiate::Encryption;
use signalling::outgoing_interface_ip;

// One file per group of sections, each with its defaults and checks; every setting is named
// `crate::config::X` wherever it lives.
mod conversation;
pub mod endpoints;
mod media;
mod operations;
mod signalling;
mod sip_users;
mod trunk;

pub use crate::directory::auth0::settings::{Auth0Settings, Lookup, Secret};
pub use conversation::*;
pub use media::*;
pub use operations::*;
pub use signalling::*;
pub use sip_users::SipUserSettings;
pub use trunk::TrunkSettings;

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
    /// The APIs a flow's http steps call, by name.
    pub endpoints: std::collections::BTreeMap<String, endpoints::EndpointSettings>,
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
        for name in settings.endpoints.keys() {
            let key = format!("endpoints.{name}.secret");
            if let Some(source) = figment.find_metadata(&key) {
                if !source.name.to_lowercase().contains("environment") {
                    bail!(
                        "{key} must not be in {}: set IVR_ENDPOINTS__{}__SECRET or secret_file",
                        path.display(),
                        name.to_ascii_uppercase()
                    );
                }
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
        // An address the settings name; a wildcard listen is checked when the server starts,
        // once the outgoing interface is known.
        let named = self.sip.public_addr.0.or_else(|| {
            let ip = self.sip.listen.ip();
            (!ip.is_unspecified()).then_some(ip)
        });
        if let Some(ip) = named {
            self.sip.check_exposure(ip)?;
        }
        self.transfer_credentials()?;
        let present_as = &self.transfer.present_as;
        if present_as.is_empty()
            || present_as.len() > 32
            || !present_as
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+*#._-".contains(c))
        {
            bail!("transfer.present_as must be 1-32 letters, digits or +*#._-");
        }
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

#[cfg(test)]
mod tests;
