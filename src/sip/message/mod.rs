//! SIP messages as the layers above need them: rsip parses, and this module lifts out the
//! headers a user agent acts on (Via, tags, CSeq, Contact, Record-Route) and writes responses
//! and requests back as text. A message too broken for rsip can still get an answer when its
//! Via, From, To, Call-ID and CSeq lines can be found.

use std::net::SocketAddr;

use bytes::Bytes;
use rsip::headers::UntypedHeader;
use rsip::{Header, Method, SipMessage};

use crate::sip::framing;

#[derive(Debug, Clone)]
pub struct Via {
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub branch: String,
    pub rport: bool,
}

impl Via {
    /// What names a server transaction (RFC 3261 §17.2.3): the branch and the sent-by that
    /// made it. A request that reuses a branch from another sent-by is a new transaction.
    pub fn transaction_key(&self) -> String {
        let port = self.port.map_or(String::new(), |p| p.to_string());
        format!("{} {}:{port}", self.branch, self.host.to_ascii_lowercase())
    }
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub uri: String,
    /// Every Via value, one per hop, top first; the top one already carries received/rport.
    pub vias: Vec<String>,
    pub top_via: Via,
    pub from: String,
    pub from_tag: Option<String>,
    pub to: String,
    pub to_tag: Option<String>,
    pub call_id: String,
    pub cseq: u32,
    pub cseq_method: Method,
    pub contact: Option<String>,
    /// P-Asserted-Identity (RFC 3325): the caller as a trusted trunk vouches for it.
    pub asserted_identity: Option<String>,
    pub record_route: Vec<String>,
    pub max_forwards: Option<u32>,
    pub require: Vec<String>,
    pub supported: Vec<String>,
    /// `Session-Expires` (RFC 4028): the interval asked for and `refresher`, when given.
    pub session_expires: Option<(u32, Option<String>)>,
    pub min_se: Option<u32>,
    /// A PRACK's `RAck` (RFC 3262).
    pub rack: Option<super::reliable::RAck>,
    /// A NOTIFY's event package, without parameters (`refer`).
    pub event: Option<String>,
    /// `Authorization` and `Proxy-Authorization` values, in order.
    pub credentials: Vec<String>,
    /// Every Contact value (a REGISTER may carry several).
    pub contacts: Vec<String>,
    pub expires: Option<u32>,
    pub content_type: Option<String>,
    /// `Accept`, every value joined: what the sender can read in our answer's body.
    pub accept: Option<String>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub branch: Option<String>,
    pub cseq_method: Method,
    pub call_id: String,
    /// A digest challenge: (`Proxy-Authenticate` rather than `WWW-Authenticate`, its value).
    pub challenge: Option<(bool, String)>,
    pub expires: Option<u32>,
    pub min_expires: Option<u32>,
    /// `Retry-After` seconds (its comment and parameters left aside).
    pub retry_after: Option<u32>,
    /// Every Contact value (a registrar lists each binding).
    pub contacts: Vec<String>,
    /// The To header as sent, with the answering side's tag.
    pub to: String,
    pub to_tag: Option<String>,
    pub cseq: u32,
    /// Record-Route in received order (a UAC's route set is its reverse).
    pub record_route: Vec<String>,
    pub body: Vec<u8>,
}

#[derive(Debug)]
pub enum Message {
    Request(Box<Request>),
    Response(Box<Response>),
}

/// Why a message could not be used, and what we can still answer with.
#[derive(Debug)]
pub struct Unusable {
    pub why: String,
    pub reply: Option<Bytes>,
}

const SIP_METHODS: &[&str] = &[
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "INFO",
    "REGISTER",
    "SUBSCRIBE",
    "NOTIFY",
    "REFER",
    "MESSAGE",
    "UPDATE",
    "PRACK",
    "PUBLISH",
];

/// The SIP port when a URI or Via names none (RFC 3261 §19.1.2).
pub const DEFAULT_PORT: u16 = 5060;

/// The longest branch or Call-ID kept: real ones are tens of bytes, and a stranger's 30 KB ones
/// would otherwise sit in our transaction tables.
pub const MAX_ID_LEN: usize = 256;
/// The longest From or To tag kept.
pub const MAX_TAG_LEN: usize = 128;

/// Why a request was refused when its Request-URI is neither sip: nor sips: (nor tel:, read
/// as a number): answered 416.
pub(super) const UNSUPPORTED_SCHEME: &str = "unsupported URI scheme";

pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, PRACK, NOTIFY";

/// Parses one datagram or framed stream message.
pub fn parse(bytes: &[u8], source: SocketAddr) -> Result<Message, Unusable> {
    let normalized = framing::normalize(bytes).map_err(|why| unusable(bytes, why, source))?;
    let (readable, original_uri) =
        request_line::for_rsip(&normalized).map_err(|why| unusable(&normalized, why, source))?;
    let parsed = SipMessage::try_from(readable.as_ref())
        .map_err(|e| unusable(&normalized, &format!("rsip: {e}"), source))?;
    match parsed {
        SipMessage::Request(r) => lift_request(r, source)
            .map(|mut r| {
                if let Some(uri) = original_uri {
                    r.uri = uri;
                }
                Message::Request(Box::new(r))
            })
            .map_err(|why| unusable(&normalized, why, source)),
        SipMessage::Response(r) => lift_response(r)
            .map(|r| Message::Response(Box::new(r)))
            .map_err(|why| Unusable {
                why: why.to_string(),
                reply: None,
            }),
    }
}

/// The header values a user agent acts on, gathered in one pass over rsip's headers (the
/// first of each single-valued header, every one of the list headers).
#[derive(Default)]
struct Gathered<'a> {
    vias: Vec<&'a str>,
    from: Option<&'a str>,
    to: Option<&'a str>,
    call_id: Option<&'a str>,
    cseq: Option<&'a str>,
    max_forwards: Option<&'a str>,
    contact: Option<&'a str>,
    record_route: Vec<&'a str>,
    require: Vec<&'a str>,
    content_type: Option<&'a str>,
    asserted_identity: Option<&'a str>,
    contacts: Vec<&'a str>,
    challenge: Option<(bool, &'a str)>,
    credentials: Vec<&'a str>,
    supported: Vec<&'a str>,
    session_expires: Option<&'a str>,
    min_se: Option<&'a str>,
    rack: Option<&'a str>,
    event: Option<&'a str>,
    expires: Option<&'a str>,
    min_expires: Option<&'a str>,
    retry_after: Option<&'a str>,
    accept: Vec<&'a str>,
    /// A header that may appear once appeared again (RFC 4475 3.1.2.19).
    repeated: bool,
}

impl<'a> Gathered<'a> {
    /// Keeps the first value of a header that may appear once, and notes a second.
    fn once(&mut self, slot: impl Fn(&mut Self) -> &mut Option<&'a str>, value: &'a str) {
        let kept = slot(self);
        if kept.is_some() {
            self.repeated = true;
        } else {
            *kept = Some(value);
        }
    }

    fn from_headers(headers: &'a rsip::Headers) -> Gathered<'a> {
        let mut g = Gathered::default();
        for header in headers.iter() {
            match header {
                Header::Via(v) => g.vias.push(v.value()),
                Header::From(v) => g.once(|g| &mut g.from, v.value()),
                Header::To(v) => g.once(|g| &mut g.to, v.value()),
                Header::CallId(v) => g.once(|g| &mut g.call_id, v.value()),
                Header::CSeq(v) => g.once(|g| &mut g.cseq, v.value()),
                Header::MaxForwards(v) => g.once(|g| &mut g.max_forwards, v.value()),
                Header::Contact(v) => {
                    g.contact.get_or_insert(v.value());
                    g.contacts.push(v.value());
                }
                Header::WwwAuthenticate(v) => _ = g.challenge.get_or_insert((false, v.value())),
                Header::ProxyAuthenticate(v) => _ = g.challenge.get_or_insert((true, v.value())),
                Header::Authorization(v) => g.credentials.push(v.value()),
                Header::ProxyAuthorization(v) => g.credentials.push(v.value()),
                Header::Expires(v) => _ = g.expires.get_or_insert(v.value()),
                Header::MinExpires(v) => _ = g.min_expires.get_or_insert(v.value()),
                Header::RetryAfter(v) => _ = g.retry_after.get_or_insert(v.value()),
                Header::RecordRoute(v) => g.record_route.push(v.value()),
                Header::Require(v) => g.require.push(v.value()),
                Header::Supported(v) => g.supported.push(v.value()),
                Header::Other(name, value) if name.eq_ignore_ascii_case("Session-Expires") => {
                    _ = g.session_expires.get_or_insert(value)
                }
                Header::Other(name, value) if name.eq_ignore_ascii_case("Min-SE") => {
                    _ = g.min_se.get_or_insert(value)
                }
                Header::Event(v) => _ = g.event.get_or_insert(v.value()),
                Header::Other(name, value) if name.eq_ignore_ascii_case("o") => {
                    _ = g.event.get_or_insert(value)
                }
                Header::Other(name, value) if name.eq_ignore_ascii_case("RAck") => {
                    _ = g.rack.get_or_insert(value)
                }
                Header::ContentType(v) => _ = g.content_type.get_or_insert(v.value()),
                Header::Accept(v) => g.accept.push(v.value()),
                Header::Other(name, value) if name.eq_ignore_ascii_case("P-Asserted-Identity") => {
                    _ = g.asserted_identity.get_or_insert(value)
                }
                _ => {}
            }
        }
        g
    }
}

fn lift_request(r: rsip::Request, source: SocketAddr) -> Result<Request, &'static str> {
    let h = Gathered::from_headers(&r.headers);
    if h.vias
        .iter()
        .flat_map(|v| split_top_level(v))
        .any(|v| v.trim().is_empty() || has_empty_param(v))
    {
        return Err("an empty Via value or parameter");
    }
    let mut vias = split_list(h.vias);
    let top = vias.first().ok_or("no Via")?;
    let top_via = parse_via(top).ok_or("unreadable top Via")?;
    vias[0] = stamp_via(top, &top_via, source);
    let from = h.from.ok_or("no From")?;
    let to = h.to.ok_or("no To")?;
    if h.repeated {
        return Err("From, To, Call-ID, CSeq or Max-Forwards appears twice");
    }
    name_addr::check(from)?;
    name_addr::check(to)?;
    for contact in h.contacts.iter().flat_map(|c| split_top_level(c)) {
        if contact.trim() != "*" {
            name_addr::check(contact)?;
        }
    }
    let uri = r.uri.to_string();
    let call_id = h.call_id.ok_or("no Call-ID")?;
    let (cseq, cseq_method) = h.cseq.and_then(parse_cseq).ok_or("no readable CSeq")?;
    if cseq_method != r.method && !(r.method == Method::Ack && cseq_method == Method::Invite) {
        return Err("CSeq method does not match the request");
    }
    let max_forwards = match h.max_forwards {
        Some(v) => Some(v.trim().parse().map_err(|_| "bad Max-Forwards")?),
        None => None,
    };
    if top_via.branch.len() > MAX_ID_LEN || call_id.trim().len() > MAX_ID_LEN {
        return Err("a branch or Call-ID longer than 256 bytes");
    }
    let (from_tag, to_tag) = (tag_of(from), tag_of(to));
    if [&from_tag, &to_tag]
        .iter()
        .any(|t| t.as_ref().is_some_and(|t| t.len() > MAX_TAG_LEN))
    {
        return Err("a tag longer than 128 bytes");
    }
    let mut content_type = h.content_type.map(|v| v.trim().to_ascii_lowercase());
    let mut body = r.body;
    if let Some(sdp) = h
        .content_type
        .and_then(|t| multipart::sdp_part(t.trim(), &body))
    {
        (content_type, body) = (Some("application/sdp".into()), sdp);
    }
    Ok(Request {
        method: r.method,
        uri,
        top_via,
        vias,
        from_tag,
        from: from.trim().to_string(),
        to_tag,
        to: to.trim().to_string(),
        call_id: call_id.trim().to_string(),
        cseq,
        cseq_method,
        contact: h.contact.and_then(uri_of),
        asserted_identity: h.asserted_identity.map(|v| v.trim().to_string()),
        record_route: split_list(h.record_route),
        max_forwards,
        require: split_list(h.require),
        supported: split_list(h.supported),
        session_expires: h.session_expires.and_then(parse_session_expires),
        min_se: h
            .min_se
            .and_then(|v| v.split(';').next()?.trim().parse().ok()),
        rack: h.rack.and_then(super::reliable::RAck::parse),
        event: h
            .event
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase()),
        credentials: h.credentials.iter().map(|v| v.trim().to_string()).collect(),
        contacts: split_list(h.contacts),
        expires: h.expires.and_then(|v| v.trim().parse().ok()),
        accept: (!h.accept.is_empty()).then(|| h.accept.join(", ")),
        content_type,
        body,
    })
}

fn lift_response(r: rsip::Response) -> Result<Response, &'static str> {
    let h = Gathered::from_headers(&r.headers);
    let via = h.vias.first().ok_or("no Via")?;
    let (cseq, cseq_method) = h.cseq.and_then(parse_cseq).ok_or("no readable CSeq")?;
    let to = h.to.unwrap_or_default();
    Ok(Response {
        to_tag: tag_of(to),
        to: to.trim().to_string(),
        cseq,
        record_route: split_list(h.record_route),
        body: r.body,
        status: r.status_code.code(),
        branch: via.split(',').next().and_then(parse_via).map(|v| v.branch),
        cseq_method,
        call_id: h.call_id.unwrap_or_default().trim().to_string(),
        challenge: h.challenge.map(|(proxy, v)| (proxy, v.trim().to_string())),
        expires: h.expires.and_then(|v| v.trim().parse().ok()),
        min_expires: h.min_expires.and_then(|v| v.trim().parse().ok()),
        retry_after: h.retry_after.and_then(|v| {
            let seconds = v.trim().split([' ', ';', '(']).next()?;
            seconds.parse().ok()
        }),
        contacts: split_list(h.contacts),
    })
}

mod header_values;
mod multipart;
mod name_addr;
mod reply;
mod request_line;

use header_values::{
    has_empty_param, parse_cseq, parse_session_expires, split_list, split_top_level, stamp_via,
    tag_of,
};
pub use header_values::{masked_user, parse_via, split_host_port, uri_of, uri_user};
use reply::unusable;
pub use reply::{finish, response, too_large_reply};

#[cfg(test)]
mod tests;
