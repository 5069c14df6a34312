//! Where a request goes: retransmissions to their transaction, ACK to its call, then one
//! handler per method; and the plain answers (with Timer J) most requests get.

use std::net::SocketAddr;
use std::time::Instant;

use rsip::Method;

use super::{CallRef, TimerKey, UserAgent};
use crate::sip::dialog::new_tag;
use crate::sip::message::{self, Request};
use crate::sip::transaction::NonInviteServer;
use crate::sip::transport::{Destination, Transport};

/// Non-INVITE server transactions remembered at once (each lives 64·T1 after its answer): a
/// few megabytes at most, whatever a stranger sends.
pub(super) const MAX_SERVER_TRANSACTIONS: usize = 8192;

impl UserAgent {
    pub(super) fn contact(&self, transport: Transport) -> String {
        let suffix = match transport {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
            Transport::Tls => ";transport=tls",
        };
        match self.local_for(transport) {
            SocketAddr::V4(a) => format!("<sip:ivr@{}:{}{suffix}>", a.ip(), a.port()),
            SocketAddr::V6(a) => format!("<sip:ivr@[{}]:{}{suffix}>", a.ip(), a.port()),
        }
    }

    /// Our address as the world reaches it over `transport` (TLS listens on a port of its own).
    pub(super) fn local_for(&self, transport: Transport) -> SocketAddr {
        match (transport, self.config.tls_port) {
            (Transport::Tls, Some(port)) => SocketAddr::new(self.config.public.ip(), port),
            _ => self.config.public,
        }
    }

    /// RFC 3261 §18.2.2 with RFC 3581: to the source IP, at rport or the sent-by port.
    pub(super) fn reply_destination(
        req: &Request,
        source: SocketAddr,
        transport: Transport,
    ) -> Destination {
        let addr = match transport {
            Transport::Tcp | Transport::Tls => source,
            Transport::Udp if req.top_via.rport => source,
            Transport::Udp => SocketAddr::new(
                source.ip(),
                req.top_via.port.unwrap_or(message::DEFAULT_PORT),
            ),
        };
        Destination { transport, addr }
    }

    /// Answers a non-INVITE request and remembers the answer, so Timer J absorbs
    /// retransmissions.
    pub(super) fn answer_plain(
        &mut self,
        now: Instant,
        req: &Request,
        source: SocketAddr,
        transport: Transport,
        (status, reason): (u16, &str),
        extra: &[(&str, &str)],
    ) {
        let bytes = message::response(req, status, reason, Some(&new_tag()), extra, None);
        self.send(
            Self::reply_destination(req, source, transport),
            bytes.clone(),
        );
        if req.method == Method::Ack {
            return;
        }
        if self.servers.len() >= MAX_SERVER_TRANSACTIONS {
            // A flood of requests each on a new branch: answered, but remembered no more, so
            // their retransmissions get a fresh answer instead of memory held for 32 s each.
            return;
        }
        let key = (req.top_via.transaction_key(), req.method.to_string());
        let mut server = NonInviteServer::new(self.config.timers, transport.reliable());
        server.respond(bytes, status, now);
        self.servers.insert(key.clone(), (server, None));
        self.rearm(TimerKey::Server(key.0, key.1));
    }

    /// An INVITE or UPDATE whose body is declared as something other than SDP (RFC 4475's
    /// `invut`): nothing we could answer.
    fn unreadable_session_body(req: &Request) -> bool {
        matches!(req.method, Method::Invite | Method::Update)
            && !req.body.is_empty()
            && req.content_type.as_deref().is_some_and(|t| {
                t.split(';').next().unwrap_or_default().trim() != "application/sdp"
            })
    }

    /// An INVITE whose Accept leaves out SDP (RFC 4475's `sdp01`): our answer could not carry
    /// the session description it needs.
    fn refuses_our_answer(req: &Request) -> bool {
        req.method == Method::Invite
            && req.accept.as_deref().is_some_and(|accept| {
                !accept.split(',').any(|t| {
                    let t = t.split(';').next().unwrap_or_default().trim();
                    ["application/sdp", "application/*", "*/*"]
                        .iter()
                        .any(|ok| t.eq_ignore_ascii_case(ok))
                })
            })
    }

    pub(super) fn on_request(
        &mut self,
        now: Instant,
        req: Box<Request>,
        source: SocketAddr,
        transport: Transport,
    ) {
        let branch = req.top_via.transaction_key();
        // Retransmissions first: they must never reach the layer above twice. A retransmission
        // comes from the address the request came from (a new TCP connection may change the
        // port); the same branch and sent-by from another address is a stranger replaying what
        // it saw, and gets nothing (not the call's 200, with its tag and keys).
        if req.method == Method::Invite {
            if let Some(call) = self.invites.get(&branch).and_then(|r| self.calls.get(r)) {
                if call.dialog.source.ip() != source.ip() {
                    tracing::debug!(%source, "an INVITE's branch from another source: dropped");
                    return;
                }
                if let Some(bytes) = call
                    .invite
                    .as_ref()
                    .and_then(|(_, tx)| tx.on_retransmission())
                {
                    self.send(Self::reply_destination(&req, source, transport), bytes);
                }
                return;
            }
        } else if req.method != Method::Ack {
            let key = (branch, req.method.to_string());
            if let Some((server, _)) = self.servers.get(&key) {
                if let Some(bytes) = server.on_retransmission() {
                    self.send(Self::reply_destination(&req, source, transport), bytes);
                }
                return;
            }
        }
        if req.method == Method::Ack {
            return self.on_ack(now, &req);
        }
        // A user agent forwards nothing, but an OPTIONS that reached zero is still for us to
        // answer: it is how a route is probed hop by hop.
        if req.max_forwards == Some(0) && req.method != Method::Options {
            return self.answer_plain(now, &req, source, transport, (483, "Too Many Hops"), &[]);
        }
        if Self::unreadable_session_body(&req) {
            let status = (415, "Unsupported Media Type");
            let accept = [("Accept", "application/sdp")];
            if req.method == Method::Invite {
                return self.refuse_invite(&req, source, transport, status, &accept);
            }
            return self.answer_plain(now, &req, source, transport, status, &accept);
        }
        if Self::refuses_our_answer(&req) {
            let status = (406, "Not Acceptable");
            return self.refuse_invite(
                &req,
                source,
                transport,
                status,
                &[("Accept", "application/sdp")],
            );
        }
        if transport != Transport::Tls
            && req
                .uri
                .get(..5)
                .is_some_and(|s| s.eq_ignore_ascii_case("sips:"))
        {
            // A sips: target demands TLS on every hop (RFC 5630); this one arrived without.
            let status = (416, "Unsupported URI Scheme");
            return self.answer_plain(now, &req, source, transport, status, &[]);
        }
        let timers_on = self.config.session_timer.expires > 0;
        let unsupported = super::session::unsupported(&req.require, timers_on);
        if !unsupported.is_empty() && req.method != Method::Cancel {
            let unsupported = unsupported.join(", ");
            let extra = [("Unsupported", unsupported.as_str())];
            return self.answer_plain(now, &req, source, transport, (420, "Bad Extension"), &extra);
        }
        match req.method {
            Method::Invite | Method::Options if req.to_tag.is_none() && self.draining => {
                // A dispatcher or SBC probing with OPTIONS takes a draining node out of rotation.
                let retry_after = self.config.drain_retry_after.as_secs().max(1).to_string();
                let extra = [("Retry-After", retry_after.as_str())];
                let status = (503, "Service Unavailable");
                if req.method == Method::Invite {
                    self.refuse_invite(&req, source, transport, status, &extra);
                } else {
                    self.answer_plain(now, &req, source, transport, status, &extra);
                }
            }
            Method::Invite if req.to_tag.is_none() => {
                self.on_new_invite(now, req, source, transport)
            }
            Method::Invite => self.on_reinvite(now, req, source, transport),
            Method::Cancel => self.on_cancel(now, &req, source, transport),
            Method::Bye => self.on_bye(now, &req, source, transport),
            Method::Options if req.to_tag.is_none() => {
                let accept = "application/sdp, application/dtmf-relay, application/dtmf";
                let server = self.config.user_agent.clone();
                let extra = [
                    ("Allow", message::ALLOW),
                    ("Accept", accept),
                    (
                        "Supported",
                        if timers_on { "timer, 100rel" } else { "100rel" },
                    ),
                    ("Server", server.as_str()),
                ];
                self.answer_plain(now, &req, source, transport, (200, "OK"), &extra);
            }
            Method::Options => self.on_dialog_options(now, &req, source, transport),
            Method::Info => self.on_info(now, &req, source, transport),
            Method::Update => self.on_update(now, &req, source, transport),
            Method::PRack => self.on_prack(now, &req, source, transport),
            Method::Notify => self.on_notify(now, &req, source, transport),
            Method::Register if self.auth.is_some() => {
                self.on_register(now, &req, source, transport)
            }
            _ => self.answer_plain(
                now,
                &req,
                source,
                transport,
                (405, "Method Not Allowed"),
                &[("Allow", message::ALLOW)],
            ),
        }
    }

    /// The live call a request's dialog identifiers name.
    pub(super) fn find_dialog(&self, req: &Request) -> Option<CallRef> {
        self.find_any_dialog(req)
            .filter(|call| self.calls.get(call).is_some_and(|c| !c.state.told_ended()))
    }

    /// The call a request's dialog identifiers name, even one that is ending (a BYE that
    /// crosses ours still gets its 200).
    pub(super) fn find_any_dialog(&self, req: &Request) -> Option<CallRef> {
        let tag = req.to_tag.clone()?;
        self.dialogs.get(&(req.call_id.clone(), tag)).copied()
    }

    pub(super) fn no_such_call(
        &mut self,
        now: Instant,
        req: &Request,
        source: SocketAddr,
        t: Transport,
    ) {
        let status = (481, "Call/Transaction Does Not Exist");
        self.answer_plain(now, req, source, t, status, &[]);
    }

    pub(super) fn on_bye_response(&mut self, now: Instant, resp: message::Response) {
        if resp.cseq_method != Method::Bye {
            return;
        }
        let Some(&call_ref) = resp.branch.as_ref().and_then(|b| self.byes.get(b)) else {
            return;
        };
        let Some((bye, _)) = self.calls.get_mut(&call_ref).and_then(|c| c.bye.as_mut()) else {
            return;
        };
        if bye.on_response(resp.status, now) {
            tracing::info!(call_id = %resp.call_id, status = resp.status, "BYE answered");
            if matches!(resp.status, 401 | 407) {
                self.answer_bye_challenge(now, call_ref, &resp);
            }
        }
        self.rearm(TimerKey::Call(call_ref));
    }
}
