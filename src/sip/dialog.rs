//! A dialog as the UAS sees it (RFC 3261 §12): identifiers, the route set from Record-Route,
//! the remote target from Contact, CSeq bookkeeping, and the BYE that ends it.

use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;

use super::message::{self, split_host_port, Request};
use super::transport::{Destination, Transport};

#[derive(Debug, Clone, PartialEq)]
pub struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    /// Our URI (the INVITE's To, without tag).
    pub local_uri: String,
    /// The caller's From, with its tag: the To of requests we send.
    pub remote: String,
    pub remote_target: String,
    /// Record-Route in received order, which is the UAS route set.
    pub route_set: Vec<String>,
    pub remote_cseq: u32,
    pub local_cseq: u32,
    pub transport: Transport,
    /// Where the INVITE came from: the fallback when a URI names a host we do not resolve.
    pub source: SocketAddr,
}

pub fn new_tag() -> String {
    format!("{:016x}", rand::random::<u64>())
}

pub fn new_branch() -> String {
    format!("z9hG4bK{:016x}", rand::random::<u64>())
}

impl Dialog {
    pub fn from_invite(
        req: &Request,
        local_tag: String,
        source: SocketAddr,
        transport: Transport,
    ) -> Dialog {
        Dialog {
            call_id: req.call_id.clone(),
            local_tag,
            local_uri: req.to.clone(),
            remote: req.from.clone(),
            remote_target: req
                .contact
                .clone()
                .unwrap_or_else(|| message::uri_of(&req.from).unwrap_or_default()),
            route_set: req.record_route.clone(),
            remote_cseq: req.cseq,
            local_cseq: rand::random::<u16>() as u32 + 1,
            transport,
            source,
        }
    }

    /// In-dialog requests must not go backwards (§12.2.2); equal is a retransmission elsewhere.
    pub fn accept_remote_cseq(&mut self, cseq: u32) -> bool {
        if cseq < self.remote_cseq {
            return false;
        }
        self.remote_cseq = cseq;
        true
    }

    /// A re-INVITE may move the remote target.
    pub fn refresh_target(&mut self, req: &Request) {
        if let Some(contact) = &req.contact {
            self.remote_target = contact.clone();
        }
    }

    /// Builds our BYE and where to send it: the first route if there is a route set, otherwise
    /// the remote target. Strict routers (no `;lr`) get the RFC 3261 §12.2.1.1 treatment.
    /// Also returns the BYE's branch, which its responses are matched by (§17.1.3).
    pub fn bye(&mut self, local: SocketAddr, user_agent: &str) -> (Bytes, Destination, String) {
        self.bye_with(local, user_agent, |_| None)
    }

    /// `bye` with a header `authorize` makes from the Request-URI (credentials for a
    /// challenge).
    pub fn bye_with(
        &mut self,
        local: SocketAddr,
        user_agent: &str,
        authorize: impl FnOnce(&str) -> Option<(&'static str, String)>,
    ) -> (Bytes, Destination, String) {
        self.request("BYE", local, user_agent, &[], authorize)
    }

    /// Any request of ours in the dialog (BYE, UPDATE), with `extra` headers and the header
    /// `authorize` makes from the Request-URI.
    pub fn request(
        &mut self,
        method: &str,
        local: SocketAddr,
        user_agent: &str,
        extra: &[(&str, &str)],
        authorize: impl FnOnce(&str) -> Option<(&'static str, String)>,
    ) -> (Bytes, Destination, String) {
        self.local_cseq += 1;
        let branch = new_branch();
        let mut routes: Vec<String> = self.route_set.clone();
        let loose = routes.first().is_none_or(|r| r.contains(";lr"));
        let request_uri = if loose {
            self.remote_target.clone()
        } else {
            let first = message::uri_of(&routes.remove(0)).unwrap_or_default();
            routes.push(format!("<{}>", self.remote_target));
            first
        };
        let next_hop = match self.route_set.first() {
            Some(route) if loose => message::uri_of(route).unwrap_or_default(),
            _ => request_uri.clone(),
        };
        let destination = self.resolve(&next_hop);
        let host = match local.ip() {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        };
        let mut out = String::with_capacity(512);
        let _ = write!(
            out,
            "{method} {request_uri} SIP/2.0\r\nVia: SIP/2.0/{} {host}:{};branch={branch};rport\r\nMax-Forwards: 70\r\n",
            destination.transport.via_name(),
            local.port()
        );
        for route in &routes {
            let _ = write!(out, "Route: {route}\r\n");
        }
        let _ = write!(
            out,
            "From: {};tag={}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} {method}\r\nUser-Agent: {user_agent}\r\n",
            self.local_uri, self.local_tag, self.remote, self.call_id, self.local_cseq
        );
        let credentials = authorize(&request_uri);
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        headers.extend(credentials.iter().map(|(n, v)| (*n, v.as_str())));
        (message::finish(out, &headers, None), destination, branch)
    }

    /// Where a SIP URI points: its IP and port, or the INVITE's source for names we do not
    /// resolve (the peer that sent us the INVITE can route its own dialog).
    fn resolve(&self, uri: &str) -> Destination {
        let lower = uri.to_ascii_lowercase();
        let transport = if self.transport == Transport::Tls || lower.starts_with("sips:") {
            // A dialog that began over TLS stays on TLS.
            Transport::Tls
        } else if lower.contains("transport=tcp") {
            Transport::Tcp
        } else {
            self.transport
        };
        let hostport = uri
            .split_once(':')
            .map(|(_, rest)| rest)
            .unwrap_or(uri)
            .split(';')
            .next()
            .unwrap_or_default();
        let hostport = hostport.rsplit('@').next().unwrap_or(hostport);
        let addr = split_host_port(hostport).and_then(|(host, port)| {
            let ip: IpAddr = host.parse().ok()?;
            Some(SocketAddr::new(ip, port.unwrap_or(message::DEFAULT_PORT)))
        });
        let addr = match (addr, transport) {
            // Over TLS only the caller's own connection can carry it.
            (_, Transport::Tls) => self.source,
            // A target in the other address family may be out of our socket's reach; the
            // caller's own address is not.
            (Some(a), _) if a.is_ipv4() != self.source.is_ipv4() => self.source,
            // Over TCP reuse the caller's connection when the target is the same host.
            (Some(a), Transport::Tcp) if a.ip() == self.source.ip() => self.source,
            (Some(a), _) => a,
            (None, _) => self.source,
        };
        Destination { transport, addr }
    }
}
