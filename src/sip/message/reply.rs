//! Writing answers: a response to a request we parsed, and the few we can still give to one we
//! could not (400, 413, 416, 501, 505) from the raw bytes.

use std::fmt::Write;
use std::net::SocketAddr;

use bytes::Bytes;

use super::{
    parse_via, stamp_via, tag_of, Request, Unusable, ALLOW, SIP_METHODS, UNSUPPORTED_SCHEME,
};

/// A response to `req`. `to_tag` is added to To unless it already has one.
pub fn response(
    req: &Request,
    status: u16,
    reason: &str,
    to_tag: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Bytes {
    let mut out = String::with_capacity(512);
    let _ = write!(out, "SIP/2.0 {status} {reason}\r\n");
    for via in &req.vias {
        let _ = write!(out, "Via: {via}\r\n");
    }
    let _ = write!(out, "From: {}\r\n", req.from);
    match (to_tag, &req.to_tag) {
        (Some(tag), None) => {
            let _ = write!(out, "To: {};tag={tag}\r\n", req.to);
        }
        _ => {
            let _ = write!(out, "To: {}\r\n", req.to);
        }
    }
    let _ = write!(
        out,
        "Call-ID: {}\r\nCSeq: {} {}\r\n",
        req.call_id, req.cseq, req.cseq_method
    );
    finish(out, extra, body)
}

pub fn finish(mut out: String, extra: &[(&str, &str)], body: Option<(&str, &[u8])>) -> Bytes {
    for (name, value) in extra {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    let mut bytes = match body {
        Some((content_type, body)) => {
            let _ = write!(
                out,
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let mut b = out.into_bytes();
            b.extend_from_slice(body);
            b
        }
        None => {
            out.push_str("Content-Length: 0\r\n\r\n");
            out.into_bytes()
        }
    };
    bytes.shrink_to_fit();
    Bytes::from(bytes)
}

pub(super) fn unusable(bytes: &[u8], why: &str, source: SocketAddr) -> Unusable {
    let status = (why == UNSUPPORTED_SCHEME).then_some((416, "Unsupported URI Scheme"));
    Unusable {
        why: why.to_string(),
        reply: fallback_reply(bytes, why, source, status),
    }
}

/// 413 for a request whose header block (`head`) declares a body over the message limit.
pub fn too_large_reply(head: &[u8], source: SocketAddr) -> Option<Bytes> {
    let status = Some((413, "Request Entity Too Large"));
    fallback_reply(head, "message over the size limit", source, status)
}

/// Answers a request rsip refused by copying its raw Via, From, To, Call-ID and CSeq lines:
/// `status`, else 501 for an unknown method and 400 for anything else. Responses are never
/// answered.
pub(super) fn fallback_reply(
    bytes: &[u8],
    why: &str,
    source: SocketAddr,
    status: Option<(u16, &str)>,
) -> Option<Bytes> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.split("\r\n");
    let request_line = lines.next()?;
    let mut words = request_line.split_ascii_whitespace();
    let method = words.next()?;
    let version = words.next_back()?;
    if method.starts_with("SIP/") || method == "ACK" || !version.starts_with("SIP/") {
        return None;
    }
    // Another version of SIP (RFC 4475 3.1.2.16): say which one we speak.
    let status = match version {
        "SIP/2.0" => status,
        _ => Some((505, "Version Not Supported")),
    };
    if !method
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
    {
        return None;
    }
    let mut vias = Vec::new();
    let (mut from, mut to, mut call_id, mut cseq) = (None, None, None, None);
    for line in lines.take_while(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "via" | "v" => vias.extend(value.split(',').map(str::trim)),
            "from" | "f" => from = Some(value),
            "to" | "t" => to = Some(value),
            "call-id" | "i" => call_id = Some(value),
            "cseq" => cseq = Some(value),
            _ => {}
        }
    }
    let top = parse_via(vias.first()?)?;
    // What is missing cannot be copied, but the sender still learns why (RFC 4475 3.3.1): its
    // client transaction matches on the Via branch and CSeq.
    let cseq = cseq?;
    let known = SIP_METHODS.contains(&method);
    let (status, reason) = match status {
        Some(given) => given,
        None if known => (400, "Bad Request"),
        None => (501, "Not Implemented"),
    };
    let mut out = format!("SIP/2.0 {status} {reason}\r\n");
    let _ = write!(out, "Via: {}\r\n", stamp_via(vias[0], &top, source));
    for via in &vias[1..] {
        let _ = write!(out, "Via: {via}\r\n");
    }
    if let Some(from) = from {
        let _ = write!(out, "From: {from}\r\n");
    }
    if let Some(to) = to {
        let tag = if tag_of(to).is_some() { "" } else { ";tag=bad" };
        let _ = write!(out, "To: {to}{tag}\r\n");
    }
    if let Some(call_id) = call_id {
        let _ = write!(out, "Call-ID: {call_id}\r\n");
    }
    let _ = write!(out, "CSeq: {cseq}\r\n");
    // The parser's own words tell a scanner which library it is talking to: say less.
    let warning = if why.starts_with("rsip") {
        "399 ivr \"Malformed request\"".to_string()
    } else {
        format!("399 ivr \"{}\"", why.replace(['"', '\r', '\n'], "'"))
    };
    let extra: &[(&str, &str)] = if known {
        &[("Warning", &warning)]
    } else {
        &[("Allow", ALLOW)]
    };
    Some(finish(out, extra, None))
}
