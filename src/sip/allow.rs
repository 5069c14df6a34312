//! Which addresses may start calls: the trunk's published ranges (`sip.allow`). Empty allows
//! everyone.

use std::net::IpAddr;

use ipnet::IpNet;

/// An address the internet can reach (not loopback, private, link-local or documentation).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_documentation())
        }
        IpAddr::V6(v6) => {
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80)
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    nets: Vec<IpNet>,
    /// Refused INVITEs get no answer at all, rather than 403.
    pub silent: bool,
}

impl AllowList {
    /// From `sip.allow` entries: CIDRs (`203.0.113.0/24`, `2001:db8::/32`) or single addresses.
    pub fn parse(entries: &[String], silent: bool) -> Result<AllowList, String> {
        let nets = entries
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| format!("sip.allow: {entry:?} is not an address or CIDR"))
            })
            .collect::<Result<_, _>>()?;
        Ok(AllowList { nets, silent })
    }

    pub fn is_open(&self) -> bool {
        self.nets.is_empty()
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.is_open() || self.nets.iter().any(|net| net.contains(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowList {
        let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        AllowList::parse(&entries, false).unwrap()
    }

    #[test]
    fn ranges_and_single_addresses_of_both_families() {
        let allow = list(&["203.0.113.0/24", "198.51.100.7", "2001:db8::/32"]);
        for ip in [
            "203.0.113.1",
            "203.0.113.255",
            "198.51.100.7",
            "2001:db8::1",
            "::ffff:203.0.113.9",
        ] {
            assert!(allow.permits(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["203.0.114.1", "198.51.100.8", "2001:db9::1", "127.0.0.1"] {
            assert!(!allow.permits(ip.parse().unwrap()), "{ip}");
        }
        assert!(
            list(&[]).permits("192.0.2.1".parse().unwrap()),
            "empty allows everyone"
        );
        // Host bits in a CIDR are ignored, as routers do.
        assert!(list(&["10.1.2.3/8"]).permits("10.200.0.1".parse().unwrap()));
    }

    #[test]
    fn entries_that_are_not_addresses_are_refused_by_name() {
        let err = AllowList::parse(&["trunk.example.com".to_string()], false).unwrap_err();
        assert!(err.contains("trunk.example.com"), "{err}");
        assert!(AllowList::parse(&["10.0.0.0/33".to_string()], false).is_err());
    }
}
