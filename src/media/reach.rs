//! Where RTP may go before the caller has been heard from. An SDP address is the caller's word:
//! a stranger can name a third party to aim our prompts at it (reflection), or an address
//! inside our own network. So never a multicast, broadcast or unspecified address, and never a
//! loopback, private or link-local one unless the call's signalling came from that same class
//! (a PBX on the LAN may name a LAN phone; a caller from the internet may not). Behind NAT the
//! SDP names a private address anyway: the stream then waits to hear the caller and answers
//! where its packets come from.

use std::net::IpAddr;

use crate::sip::allow::is_public;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Loopback,
    Private,
    LinkLocal,
    Public,
}

fn class_of(ip: IpAddr) -> Option<Class> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) if v4.is_multicast() || v4.is_broadcast() || v4.is_unspecified() => None,
        IpAddr::V6(v6) if v6.is_multicast() || v6.is_unspecified() => None,
        ip if ip.is_loopback() => Some(Class::Loopback),
        IpAddr::V4(v4) if v4.is_link_local() => Some(Class::LinkLocal),
        IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => Some(Class::LinkLocal),
        ip if is_public(ip) => Some(Class::Public),
        _ => Some(Class::Private),
    }
}

/// Whether RTP may be sent to `to`, named by an SDP that came in signalling from `from`.
pub fn may_send_to(to: IpAddr, from: IpAddr) -> bool {
    match (class_of(to), class_of(from)) {
        (None, _) => false,
        (Some(Class::Public), _) => true,
        (Some(to), Some(from)) => to == from,
        (Some(_), None) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(to: &str, from: &str) -> bool {
        may_send_to(to.parse().unwrap(), from.parse().unwrap())
    }

    #[test]
    fn never_to_a_group_or_nowhere() {
        for to in [
            "224.0.0.1",
            "239.1.2.3",
            "255.255.255.255",
            "0.0.0.0",
            "ff02::1",
            "::",
        ] {
            assert!(!ok(to, "8.8.8.8"), "{to}");
            assert!(!ok(to, "10.0.0.1"), "{to}");
        }
    }

    #[test]
    fn inside_addresses_only_for_signalling_from_inside_the_same_class() {
        // Data only: nothing is sent anywhere.
        assert!(
            !ok("127.0.0.1", "8.8.8.8"),
            "the internet aiming at our loopback"
        );
        assert!(
            !ok("10.0.0.5", "8.8.8.8"),
            "the internet aiming inside our network"
        );
        assert!(!ok("169.254.1.1", "8.8.8.8"));
        assert!(!ok("fd00::5", "2001:4860::1"));
        assert!(!ok("10.0.0.5", "127.0.0.1"));
        assert!(ok("127.0.0.1", "127.0.0.1"));
        assert!(
            ok("192.168.1.20", "10.0.0.1"),
            "a LAN PBX naming a LAN phone"
        );
        assert!(ok("::ffff:10.0.0.5", "10.0.0.1"));
    }

    #[test]
    fn public_addresses_from_anywhere() {
        assert!(ok("8.8.4.4", "8.8.8.8"));
        assert!(ok("8.8.4.4", "10.0.0.1"));
        assert!(ok("2001:4860::8888", "127.0.0.1"));
    }
}
