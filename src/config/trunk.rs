//! `[trunk]`: the SIP trunk the IVR registers with, when it wants registration.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::Secret;
use crate::sip::locate::Place;
use crate::sip::registration::Trunk;
use crate::sip::transport::Transport;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrunkSettings {
    /// The registrar, `sip:sip.provider.example` (`;transport=tcp` for TCP); empty: none.
    pub registrar: String,
    pub username: String,
    /// From the environment only (`IVR_TRUNK__PASSWORD`), or `password_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    /// Seconds of registration asked for.
    pub expires: u32,
    /// Send REGISTER here instead of the registrar's own address (`host[:port]`).
    pub outbound_proxy: String,
}

impl Default for TrunkSettings {
    fn default() -> Self {
        TrunkSettings {
            registrar: String::new(),
            username: String::new(),
            password: None,
            password_file: None,
            expires: 3600,
            outbound_proxy: String::new(),
        }
    }
}

/// The parts of a registrar URI that say where to send; no port means "ask DNS for SRV".
struct Target {
    host: String,
    port: Option<u16>,
    transport: Transport,
}

fn target(uri: &str) -> Result<Target> {
    let (scheme, rest) = uri
        .split_once(':')
        .context("trunk.registrar: expected sip:host")?;
    let sips = scheme.eq_ignore_ascii_case("sips");
    if !sips && !scheme.eq_ignore_ascii_case("sip") {
        bail!("trunk.registrar: expected a sip: or sips: URI, got {uri:?}");
    }
    let (hostport, params) = rest.split_once(';').unwrap_or((rest, ""));
    let hostport = hostport.rsplit('@').next().unwrap_or(hostport);
    let params = params.to_ascii_lowercase();
    let transport = if sips || params.contains("transport=tls") {
        Transport::Tls
    } else if params.contains("transport=tcp") {
        Transport::Tcp
    } else {
        Transport::Udp
    };
    let (host, port) = split_host_port(hostport)?;
    Ok(Target {
        host,
        port,
        transport,
    })
}

fn split_host_port(text: &str) -> Result<(String, Option<u16>)> {
    let (host, port) = match text.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && !p.contains(']') => (
            h,
            Some(p.parse().with_context(|| format!("port in {text:?}"))?),
        ),
        _ => (text, None),
    };
    let host = host.trim_matches(['[', ']']).to_string();
    if host.is_empty() {
        bail!("no host in {text:?}");
    }
    Ok((host, port))
}

impl TrunkSettings {
    pub fn enabled(&self) -> bool {
        !self.registrar.is_empty()
    }

    /// Checks the settings without touching the network.
    pub fn validate(&self) -> Result<()> {
        if !self.enabled() {
            return Ok(());
        }
        target(&self.registrar)?;
        if self.username.is_empty() {
            bail!("trunk.username is required with trunk.registrar");
        }
        if self.password.is_none() && self.password_file.is_none() {
            bail!("trunk: set IVR_TRUNK__PASSWORD or trunk.password_file");
        }
        if self.expires == 0 {
            bail!("trunk.expires must be > 0");
        }
        if !self.outbound_proxy.is_empty() {
            split_host_port(&self.outbound_proxy).context("trunk.outbound_proxy")?;
        }
        Ok(())
    }

    fn password(&self) -> Result<String> {
        if let Some(secret) = &self.password {
            return Ok(secret.expose().to_string());
        }
        let path = self.password_file.as_ref().context("trunk: no password")?;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("trunk.password_file {}", path.display()))?;
        Ok(text.trim().to_string())
    }

    /// The trunk, its targets still to be located, and where to look them up: the
    /// registrar's host, or the outbound proxy's.
    pub fn trunk(&self) -> Result<Option<(Trunk, Place)>> {
        if !self.enabled() {
            return Ok(None);
        }
        let registrar = target(&self.registrar)?;
        let place = if self.outbound_proxy.is_empty() {
            Place {
                host: registrar.host.clone(),
                port: registrar.port,
                transport: registrar.transport,
                tls_name: None,
            }
        } else {
            let (host, port) = split_host_port(&self.outbound_proxy)?;
            Place {
                host,
                port,
                transport: registrar.transport,
                tls_name: None,
            }
        };
        let place = Place {
            tls_name: (registrar.transport == Transport::Tls).then(|| registrar.host.clone()),
            ..place
        };
        let trunk = Trunk {
            registrar: self
                .registrar
                .split(';')
                .next()
                .unwrap_or_default()
                .to_string(),
            domain: registrar.host,
            transport: registrar.transport,
            targets: Vec::new(),
            username: self.username.clone(),
            password: self.password()?,
            expires: self.expires,
        };
        Ok(Some((trunk, place)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrar_uris_are_read_or_refused() {
        let t = target("sip:sip.example.net").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.transport),
            ("sip.example.net", None, Transport::Udp)
        );
        let t = target("sip:10.0.0.1:5080;transport=tcp").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.transport),
            ("10.0.0.1", Some(5080), Transport::Tcp)
        );
        let t = target("sips:sip.example.net").unwrap();
        assert_eq!((t.port, t.transport), (None, Transport::Tls));
        let t = target("sip:10.0.0.1:5061;transport=TLS").unwrap();
        assert_eq!(t.transport, Transport::Tls);
        assert!(target("http://x").is_err());
        assert!(target("sip:").is_err());
    }
}
