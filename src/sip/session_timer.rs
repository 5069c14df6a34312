//! Session timers (RFC 4028), as the answering side: what an INVITE (or a refresh) asks for,
//! what we grant, and when the call must be refreshed or is given up for dead. Pure: the user
//! agent applies the outcome to its call and its clock.

use std::time::{Duration, Instant};

use super::message::Request;

/// RFC 4028's floor for any interval.
pub const MIN_SE_FLOOR: u32 = 90;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimerConfig {
    /// The interval we grant at most, and ask for when the caller names none; 0 turns the
    /// extension off (then `Require: timer` gets 420 again).
    pub expires: u32,
    /// The shortest interval we accept (`Min-SE`).
    pub min_se: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    /// The caller refreshes; we hang up when it stops.
    Uac,
    /// We refresh (with UPDATE).
    Uas,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negotiation {
    /// No session timer on this call.
    Off,
    /// 422 with `Min-SE`.
    TooSmall {
        min_se: u32,
    },
    Active {
        interval: u32,
        refresher: Refresher,
    },
}

fn has_timer(list: &[String]) -> bool {
    list.iter().any(|t| t.eq_ignore_ascii_case("timer"))
}

/// What an INVITE or UPDATE asks for, and what we answer it with.
pub fn negotiate(req: &Request, config: SessionTimerConfig) -> Negotiation {
    if config.expires == 0 {
        return Negotiation::Off;
    }
    let caller_supports = has_timer(&req.supported) || has_timer(&req.require);
    let Some((asked, refresher)) = &req.session_expires else {
        // Nobody asked: the caller refreshes if it can, otherwise no timer (§9).
        return if caller_supports {
            Negotiation::Active {
                interval: config.expires,
                refresher: Refresher::Uac,
            }
        } else {
            Negotiation::Off
        };
    };
    let floor = config.min_se.max(MIN_SE_FLOOR);
    if *asked < floor {
        return Negotiation::TooSmall { min_se: floor };
    }
    // We may shorten it, never below what anyone on the path asked as their minimum (§9).
    let theirs = req.min_se.unwrap_or(MIN_SE_FLOOR).max(floor);
    let interval = (*asked).min(config.expires.max(theirs));
    let refresher = match refresher.as_deref() {
        Some("uas") => Refresher::Uas,
        Some("uac") if caller_supports => Refresher::Uac,
        _ if caller_supports => Refresher::Uac,
        _ => Refresher::Uas,
    };
    Negotiation::Active {
        interval,
        refresher,
    }
}

/// The `Session-Expires` value of our 2xx.
pub fn header(interval: u32, refresher: Refresher) -> String {
    let who = match refresher {
        Refresher::Uac => "uac",
        Refresher::Uas => "uas",
    };
    format!("{interval};refresher={who}")
}

/// When the next thing is due after a refresh at `now`: as refresher, our refresh at half
/// the interval (§7.4); otherwise the BYE, the interval less a third or 32 s, whichever is
/// less (§10).
pub fn deadline(now: Instant, interval: u32, refresher: Refresher) -> Instant {
    let interval = Duration::from_secs(u64::from(interval));
    match refresher {
        Refresher::Uas => now + interval / 2,
        Refresher::Uac => now + interval - (interval / 3).min(Duration::from_secs(32)),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::sip::message::{self, Message};

    const CONFIG: SessionTimerConfig = SessionTimerConfig {
        expires: 1800,
        min_se: 90,
    };

    fn active(interval: u32, refresher: Refresher) -> Negotiation {
        Negotiation::Active {
            interval,
            refresher,
        }
    }

    fn invite(headers: &str) -> Request {
        let text = format!(
            "INVITE sip:ivr@192.0.2.9 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKst\r\nFrom: <sip:a@192.0.2.1>;tag=a\r\nTo: <sip:ivr@192.0.2.9>\r\nCall-ID: st-1\r\nCSeq: 1 INVITE\r\n{headers}Content-Length: 0\r\n\r\n"
        );
        let source: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        match message::parse(text.as_bytes(), source) {
            Ok(Message::Request(r)) => *r,
            _ => panic!("test INVITE parses"),
        }
    }

    #[test]
    fn what_is_asked_is_granted_shortened_or_refused() {
        let asked = invite("Supported: timer\r\nSession-Expires: 600\r\n");
        assert_eq!(negotiate(&asked, CONFIG), active(600, Refresher::Uac));
        let long = invite("Supported: timer\r\nx: 7200;refresher=uac\r\n");
        assert_eq!(
            negotiate(&long, CONFIG),
            active(1800, Refresher::Uac),
            "shortened to ours (compact form read)"
        );
        let floor = invite("Supported: timer\r\nSession-Expires: 7200\r\nMin-SE: 3600\r\n");
        assert!(matches!(
            negotiate(&floor, CONFIG),
            Negotiation::Active { interval: 3600, .. }
        ));
        let small = invite("Supported: timer\r\nSession-Expires: 60\r\n");
        assert_eq!(
            negotiate(&small, CONFIG),
            Negotiation::TooSmall { min_se: 90 }
        );
    }

    #[test]
    fn the_refresher_is_the_caller_when_it_can_be_and_as_asked() {
        let nothing = invite("");
        assert_eq!(negotiate(&nothing, CONFIG), Negotiation::Off);
        let supports = invite("Supported: replaces, timer\r\n");
        assert_eq!(negotiate(&supports, CONFIG), active(1800, Refresher::Uac));
        let proxy_asked = invite("Session-Expires: 900\r\n");
        assert!(matches!(
            negotiate(&proxy_asked, CONFIG),
            Negotiation::Active {
                refresher: Refresher::Uas,
                ..
            }
        ));
        let wants_us = invite("Supported: timer\r\nSession-Expires: 900;refresher=uas\r\n");
        assert!(matches!(
            negotiate(&wants_us, CONFIG),
            Negotiation::Active {
                refresher: Refresher::Uas,
                ..
            }
        ));
        let off = SessionTimerConfig {
            expires: 0,
            ..CONFIG
        };
        assert_eq!(negotiate(&supports, off), Negotiation::Off);
    }

    #[test]
    fn absurd_values_from_the_wire_neither_panic_nor_grant_nonsense() {
        for junk in ["-5", "99999999999999", "abc;refresher=uac", ""] {
            let req = invite(&format!("Supported: timer\r\nSession-Expires: {junk}\r\n"));
            assert_eq!(req.session_expires, None, "{junk:?}");
            assert!(matches!(
                negotiate(&req, CONFIG),
                Negotiation::Active { interval: 1800, .. }
            ));
        }
        let huge =
            invite("Supported: timer\r\nSession-Expires: 4294967295\r\nMin-SE: 4294967295\r\n");
        let Negotiation::Active {
            interval,
            refresher,
        } = negotiate(&huge, CONFIG)
        else {
            panic!("a long session is still a session");
        };
        let t0 = Instant::now();
        assert!(deadline(t0, interval, refresher) > t0, "no overflow");
        let zero = invite("Supported: timer\r\nSession-Expires: 0\r\n");
        assert_eq!(
            negotiate(&zero, CONFIG),
            Negotiation::TooSmall { min_se: 90 }
        );
    }

    #[test]
    fn deadlines_leave_the_refresher_room() {
        let t0 = Instant::now();
        assert_eq!(
            deadline(t0, 1800, Refresher::Uas),
            t0 + Duration::from_secs(900)
        );
        assert_eq!(
            deadline(t0, 1800, Refresher::Uac),
            t0 + Duration::from_secs(1768)
        );
        assert_eq!(
            deadline(t0, 90, Refresher::Uac),
            t0 + Duration::from_secs(60)
        );
    }
}
