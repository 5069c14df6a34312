//! Who may start a call: a trunk, an address on `sip.allow`, or a softphone with credentials
//! (`[[sip.users]]`), which may also REGISTER. Without an allow-list or users, everyone.

use std::net::SocketAddr;
use std::time::Instant;

use super::UserAgent;
use crate::metrics::{Outcome as OutcomeLabel, Reason, METRICS};
use crate::sip::admission::Refusal;
use crate::sip::auth::Outcome;
use crate::sip::message::Request;
use crate::sip::transport::Transport;

/// The longest registration we grant, and the shortest we accept (RFC 3261 §10.3 step 7).
const MAX_REGISTRATION_S: u32 = 3600;
const MIN_REGISTRATION_S: u32 = 60;

/// What a request without admissible credentials is answered.
struct Refused {
    status: (u16, &'static str),
    headers: Vec<(&'static str, String)>,
}

impl UserAgent {
    /// Whether `ip` is a trunk or on `sip.allow`: a source whose caller IDs may be believed.
    pub(super) fn vouches(&self, ip: std::net::IpAddr) -> bool {
        (!self.config.allow.is_open() && self.config.allow.permits(ip)) || self.is_trunk(ip)
    }

    /// Whether a new INVITE may become a call; when not, it has been answered (or ignored).
    pub(super) fn may_call(
        &mut self,
        now: Instant,
        req: &Request,
        source: SocketAddr,
        transport: Transport,
    ) -> bool {
        let ip = source.ip();
        let listed = !self.config.allow.is_open() && self.config.allow.permits(ip);
        if listed || self.is_trunk(ip) {
            return true;
        }
        if self.auth.is_none() {
            if self.config.allow.is_open() {
                return true;
            }
            let silent = self.config.allow.silent;
            self.note_not_allowed(now, silent);
            if !silent {
                self.refuse_invite(req, source, transport, (403, "Forbidden"), &[]);
            }
            return false;
        }
        match self.authenticate(now, req, source) {
            Ok(username) => {
                tracing::info!(call_id = %req.call_id, %username, "caller authenticated");
                true
            }
            Err(refused) => {
                if refused.status.0 == 403 {
                    self.note_not_allowed(now, false);
                }
                let headers: Vec<(&str, &str)> = refused
                    .headers
                    .iter()
                    .map(|(n, v)| (*n, v.as_str()))
                    .collect();
                self.refuse_invite(req, source, transport, refused.status, &headers);
                false
            }
        }
    }

    /// A softphone registering: checked like a call, then granted without being stored (the
    /// IVR places no calls to its users; registering only proves the credentials).
    pub(super) fn on_register(
        &mut self,
        now: Instant,
        req: &Request,
        source: SocketAddr,
        transport: Transport,
    ) {
        let username = match self.authenticate(now, req, source) {
            Ok(username) => username,
            Err(refused) => {
                let headers: Vec<(&str, &str)> = refused
                    .headers
                    .iter()
                    .map(|(n, v)| (*n, v.as_str()))
                    .collect();
                return self.answer_plain(now, req, source, transport, refused.status, &headers);
            }
        };
        let contacts: Vec<(String, Option<u32>)> = req
            .contacts
            .iter()
            .map(|c| (c.clone(), contact_expires(c)))
            .collect();
        let wildcard = contacts.iter().any(|(c, _)| c == "*");
        let asked = |own: Option<u32>| own.or(req.expires).unwrap_or(MAX_REGISTRATION_S);
        if !wildcard
            && contacts
                .iter()
                .any(|(_, e)| (1..MIN_REGISTRATION_S).contains(&asked(*e)))
        {
            let min = MIN_REGISTRATION_S.to_string();
            let extra = [("Min-Expires", min.as_str())];
            let status = (423, "Interval Too Brief");
            return self.answer_plain(now, req, source, transport, status, &extra);
        }
        let granted: Vec<String> = contacts
            .iter()
            .filter(|(c, e)| c != "*" && asked(*e) > 0)
            .map(|(c, e)| {
                let seconds = asked(*e).min(MAX_REGISTRATION_S);
                // Parameters such as +sip.instance and reg-id go back as they came (RFC 5626).
                let (addr, params) = split_contact(c);
                let kept: String = params
                    .split(';')
                    .filter(|p| !p.trim().is_empty() && !is_expires(p))
                    .map(|p| format!(";{}", p.trim()))
                    .collect();
                format!("{addr}{kept};expires={seconds}")
            })
            .collect();
        tracing::info!(%username, %source, bindings = granted.len(), "softphone registered");
        let extra: Vec<(&str, &str)> = granted.iter().map(|c| ("Contact", c.as_str())).collect();
        self.answer_plain(now, req, source, transport, (200, "OK"), &extra);
    }

    /// The username behind valid credentials, or what to answer instead.
    fn authenticate(
        &mut self,
        now: Instant,
        req: &Request,
        source: SocketAddr,
    ) -> Result<String, Refused> {
        let Some(auth) = self.auth.as_mut() else {
            return Err(Refused {
                status: (403, "Forbidden"),
                headers: Vec::new(),
            });
        };
        let outcome = auth.check(req, source.ip(), now);
        let outcome_name = outcome.as_str();
        METRICS
            .sip_auth
            .get_or_create(&OutcomeLabel {
                outcome: outcome_name,
            })
            .inc();
        match outcome {
            Outcome::Authenticated {
                username,
                algorithm,
            } => {
                tracing::debug!(%username, algorithm = algorithm.name(), "digest accepted");
                Ok(username)
            }
            Outcome::Challenge { challenges } => Err(Refused {
                status: (401, "Unauthorized"),
                headers: challenges
                    .into_iter()
                    .map(|c| ("WWW-Authenticate", c))
                    .collect(),
            }),
            Outcome::Refused | Outcome::Locked => {
                // A locked source's attempts come at its own pace: one line per lock, not each.
                if outcome == Outcome::Refused {
                    tracing::info!(%source, method = %req.method, "SIP credentials refused");
                } else {
                    tracing::debug!(%source, method = %req.method, "SIP credentials refused: source locked");
                }
                Err(Refused {
                    status: (403, "Forbidden"),
                    headers: Vec::new(),
                })
            }
        }
    }

    fn note_not_allowed(&mut self, now: Instant, silent: bool) {
        let reason = Refusal::NotAllowed.as_str();
        METRICS
            .admission_refusals
            .get_or_create(&Reason { reason })
            .inc();
        self.admission.note_refusal(Refusal::NotAllowed, silent);
        self.arm_refusal_report(now);
    }
}

/// A Contact as its name-addr (`<uri>`, display name kept) and its header parameters.
fn split_contact(contact: &str) -> (String, &str) {
    let closing = contact
        .find('<')
        .and_then(|open| contact[open..].find('>').map(|close| open + close));
    match closing {
        Some(close) => (contact[..=close].to_string(), &contact[close + 1..]),
        None => {
            let (uri, params) = contact.split_once(';').unwrap_or((contact, ""));
            (format!("<{}>", uri.trim()), params)
        }
    }
}

fn is_expires(param: &str) -> bool {
    let name = param.split_once('=').map_or(param, |(n, _)| n);
    name.trim().eq_ignore_ascii_case("expires")
}

/// A Contact's own `expires` parameter.
fn contact_expires(contact: &str) -> Option<u32> {
    split_contact(contact).1.split(';').find_map(|p| {
        let (_, value) = p.split_once('=').filter(|_| is_expires(p))?;
        value.trim().parse().ok()
    })
}
