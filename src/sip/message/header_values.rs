//! Reading header values the way RFC 3261 writes them: lists split at top-level commas, Via and
//! CSeq taken apart, tags and URIs found inside name-addrs.

use std::fmt::Write;
use std::net::SocketAddr;

use rsip::Method;

use super::Via;

pub(super) fn split_list(values: Vec<&str>) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| split_top_level(v))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

/// Splits a header list at commas that are outside quotes and angle brackets.
pub(super) fn split_top_level(value: &str) -> Vec<&str> {
    let (mut parts, mut start, mut quoted, mut angle) = (Vec::new(), 0, false, false);
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

/// `Session-Expires: 1800;refresher=uac`: the interval and the refresher, if named.
pub(super) fn parse_session_expires(value: &str) -> Option<(u32, Option<String>)> {
    let mut parts = value.split(';');
    let delta = parts.next()?.trim().parse().ok()?;
    let refresher = parts.find_map(|p| {
        let (name, v) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("refresher")
            .then(|| v.trim().to_ascii_lowercase())
    });
    Some((delta, refresher))
}

pub(super) fn parse_cseq(value: &str) -> Option<(u32, Method)> {
    let mut parts = value.split_ascii_whitespace();
    let number = parts.next()?.parse().ok()?;
    let method = parts.next()?.parse().ok()?;
    Some((number, method))
}

/// `SIP/2.0/UDP host:port;branch=...;rport`
pub fn parse_via(value: &str) -> Option<Via> {
    let value = value.trim();
    let (protocol, rest) = value.split_once(char::is_whitespace)?;
    let transport = protocol.rsplit('/').next()?.to_ascii_uppercase();
    let mut params = rest.split(';');
    let sent_by = params.next()?.trim();
    let (host, port) = split_host_port(sent_by)?;
    let mut via = Via {
        transport,
        host,
        port,
        branch: String::new(),
        rport: false,
    };
    for param in params {
        let (name, val) = param.split_once('=').unwrap_or((param, ""));
        match name.trim().to_ascii_lowercase().as_str() {
            "branch" => via.branch = val.trim().to_string(),
            "rport" => via.rport = true,
            _ => {}
        }
    }
    Some(via)
}

/// A Via whose parameters include an empty one (`;;`, RFC 4475 3.1.2.1).
pub(super) fn has_empty_param(via: &str) -> bool {
    via.split(';').skip(1).any(|p| p.trim().is_empty())
}

pub fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((host, port)) => Some((host.to_string(), Some(port.parse().ok()?))),
        None if !s.is_empty() => Some((s.to_string(), None)),
        None => None,
    }
}

/// RFC 3261 §18.2.1 and RFC 3581: record where the request really came from.
pub(super) fn stamp_via(raw: &str, via: &Via, source: SocketAddr) -> String {
    let mut out = String::with_capacity(raw.len() + 40);
    let mut params = raw.split(';');
    out.push_str(params.next().unwrap_or_default());
    for p in params {
        let name = p
            .split('=')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if name == "received" || name == "rport" {
            continue;
        }
        out.push(';');
        out.push_str(p);
    }
    if via.host != source.ip().to_string() || via.rport {
        let _ = write!(out, ";received={}", source.ip());
    }
    if via.rport {
        let _ = write!(out, ";rport={}", source.port());
    }
    out
}

pub(super) fn tag_of(value: &str) -> Option<String> {
    let params = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value,
    };
    params
        .split(';')
        .skip(usize::from(!value.contains('>')))
        .find_map(|p| {
            let (name, val) = p.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("tag")
                .then(|| val.trim().to_string())
        })
}

/// The URI inside a name-addr (`"Bob" <sip:bob@h>;x`) or an addr-spec (`sip:bob@h;x`).
/// The user part of a SIP URI (`sip:5551234@host;…` → `5551234`), or a tel URI's number
/// (`tel:+15551234;…`); empty when there is none.
pub fn uri_user(uri: &str) -> &str {
    let (scheme, rest) = uri.split_once(':').unwrap_or(("", uri));
    if scheme.eq_ignore_ascii_case("tel") {
        return rest.split(';').next().unwrap_or_default();
    }
    rest.split_once('@').map_or("", |(user, _)| user)
}

pub fn uri_of(value: &str) -> Option<String> {
    let value = split_top_level(value).first()?.trim();
    if let Some(start) = value.find('<') {
        let end = value[start..].find('>')? + start;
        return Some(value[start + 1..end].to_string());
    }
    let uri = value.split(';').next()?.trim();
    (!uri.is_empty() && uri != "*").then(|| uri.to_string())
}

/// The user part of a From or To with all but its last two characters hidden, for logs at info
/// level: enough to tell calls apart, not a caller's number.
pub fn masked_user(value: &str) -> String {
    let uri = uri_of(value).unwrap_or_default();
    let user = uri_user(&uri);
    let shown = user.chars().count().saturating_sub(2);
    user.chars()
        .enumerate()
        .map(|(i, c)| if i < shown { '*' } else { c })
        .collect()
}
