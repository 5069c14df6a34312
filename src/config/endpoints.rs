//! `[endpoints.<name>]`: the operator's APIs a flow's http steps call. The URL may be in the
//! file or come from `IVR_ENDPOINTS__<NAME>__URL`; the signing secret only from
//! `IVR_ENDPOINTS__<NAME>__SECRET` or the file `secret_file` names, never from `ivr.toml`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::directory::auth0::settings::Secret;
use crate::ivr::app::status::StatusTarget;
use crate::ivr::script::steps::endpoint::{Dialect, Endpoint};
use crate::ivr::script::Script;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EndpointSettings {
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    pub secret_file: Option<PathBuf>,
    /// What the endpoint speaks when a `remote` step hands it the call: `json` (the verbs).
    pub dialect: Option<String>,
    /// Hosts besides the endpoint's own that its `action` and `redirect` URLs may name.
    pub allowed_hosts: Vec<String>,
    /// Where a remote step's request goes when the application cannot answer it.
    pub fallback_url: Option<String>,
    /// Where the calls a remote step hands it are reported (initiated, answered, completed).
    pub status_url: Option<String>,
    /// Post the digits of the application's secret gathers to it (its url must be https).
    pub receive_secrets: bool,
}

/// The endpoints, each with its URL checked (https, or http to this machine) and its secret
/// read.
pub fn endpoints(
    settings: &BTreeMap<String, EndpointSettings>,
) -> Result<HashMap<String, Endpoint>> {
    let mut out = HashMap::new();
    for (name, e) in settings {
        let upper = name.to_ascii_uppercase();
        let url = e.url.clone().with_context(|| {
            format!("endpoints.{name}: no url (set it, or IVR_ENDPOINTS__{upper}__URL)")
        })?;
        if !crate::http::url_allowed(&url) {
            bail!("endpoints.{name}: url must be https:// (http:// only to this machine)");
        }
        let secret = match (&e.secret, &e.secret_file) {
            (Some(secret), _) => secret.expose().to_string(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .with_context(|| format!("endpoints.{name}.secret_file {}", path.display()))?
                .trim()
                .to_string(),
            (None, None) => bail!("endpoints.{name}: every request is signed: set IVR_ENDPOINTS__{upper}__SECRET or secret_file"),
        };
        for (key, url) in [
            ("fallback_url", &e.fallback_url),
            ("status_url", &e.status_url),
        ] {
            if url.as_deref().is_some_and(|u| !crate::http::url_allowed(u)) {
                bail!("endpoints.{name}: {key} must be https:// (http:// only to this machine)");
            }
        }
        let dialect = match e.dialect.as_deref() {
            None | Some("json") => Dialect::Json,
            Some("twiml") => Dialect::Twiml,
            Some(other) => bail!("endpoints.{name}: dialect {other:?}: \"json\" or \"twiml\""),
        };
        if !may_receive_secrets(e.receive_secrets, &url) {
            bail!("endpoints.{name}: receive_secrets needs an https:// url: a PIN never crosses a network in clear");
        }
        if secret.len() < 16 {
            bail!("endpoints.{name}: the secret must be at least 16 characters");
        }
        out.insert(
            name.clone(),
            Endpoint {
                name: name.clone(),
                url,
                secret: secret.into_bytes(),
                allowed_hosts: e.allowed_hosts.clone(),
                fallback_url: e.fallback_url.clone(),
                dialect,
                status_url: e.status_url.clone(),
                receive_secrets: e.receive_secrets,
                stand_in: None,
            },
        );
    }
    Ok(out)
}

/// Where `script`'s calls are reported: the status URLs of the endpoints its remote steps name.
pub fn status_targets(script: &Script, endpoints: &HashMap<String, Endpoint>) -> Vec<StatusTarget> {
    let mut names: Vec<&String> = script
        .steps
        .values()
        .filter_map(|s| s.remote.as_ref().map(|r| r.get_ref()))
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let endpoint = endpoints.get(name)?;
            let url = endpoint.status_url.clone()?;
            Some(StatusTarget {
                endpoint: endpoint.clone(),
                url,
            })
        })
        .collect()
}

/// Every endpoint `script`'s http steps name is configured.
pub fn check_flow(
    script: &Script,
    file: &str,
    endpoints: &HashMap<String, Endpoint>,
) -> Result<()> {
    let named = script.steps.iter().filter_map(|(step, s)| {
        let endpoint = s.http.as_ref().map(|h| &h.endpoint).or(s.remote.as_ref())?;
        Some((step, endpoint))
    });
    for (step, endpoint) in named {
        let name = endpoint.get_ref();
        if !endpoints.contains_key(name) {
            let upper = name.to_ascii_uppercase();
            bail!("{file}: step {step}: endpoint {name:?} is not configured ([endpoints.{name}] url, or IVR_ENDPOINTS__{upper}__URL and IVR_ENDPOINTS__{upper}__SECRET)");
        }
    }
    Ok(())
}

/// Whether an endpoint asking for secrets may have them: only over https, even on this machine.
pub fn may_receive_secrets(asked: bool, url: &str) -> bool {
    !asked || url.starts_with("https://")
}

#[cfg(test)]
mod tests {
    use super::may_receive_secrets;

    #[test]
    fn secrets_travel_only_over_https() {
        assert!(may_receive_secrets(true, "https://app.example.com/ivr"));
        assert!(!may_receive_secrets(true, "http://127.0.0.1:8080/ivr"));
        assert!(!may_receive_secrets(true, "http://app.example.com/ivr"));
        assert!(may_receive_secrets(false, "http://127.0.0.1:8080/ivr"));
    }
}
