//! Finding a trunk's servers (RFC 3263, without NAPTR): an IP address or an explicit port is
//! used as given (a name then resolved to its addresses); otherwise the SRV records for the
//! transport (`_sip._udp`, `_sip._tcp`, `_sips._tcp`) in priority order, weighted at random
//! within a priority (RFC 2782), each target's addresses in turn; no SRV falls back to the
//! name's addresses on the default port. The I/O half of the registrations: the user agent
//! asks (`UaEvent::LocateTrunk`), this answers (`UaCommand::TrunkTargets`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::TokioResolver;
use rand::Rng;
use tokio::sync::mpsc::UnboundedSender;

use super::transport::{Transport, TransportHandle};
use super::ua::UaCommand;

/// A failed lookup is tried again this often until it succeeds.
const RETRY: Duration = Duration::from_secs(30);

/// Where a trunk's registrar (or outbound proxy) is, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub host: String,
    pub port: Option<u16>,
    pub transport: Transport,
    /// Over TLS, the name the servers' certificates must carry: the registrar's domain
    /// (RFC 5922), whatever SRV target serves it.
    pub tls_name: Option<String>,
}

pub struct Locator {
    resolver: TokioResolver,
    /// Our SIP socket's family: targets of the other are left out.
    ipv6: bool,
}

impl Locator {
    /// The system's resolvers, or the one at `server`.
    pub fn new(server: Option<SocketAddr>, ipv6: bool) -> anyhow::Result<Locator> {
        let resolver = match server {
            Some(addr) => {
                let group = NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true);
                let config = ResolverConfig::from_parts(None, vec![], group);
                TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
                    .build()
            }
            None => TokioResolver::builder_tokio()?.build(),
        };
        Ok(Locator { resolver, ipv6 })
    }

    /// The place's addresses, best first.
    pub async fn locate(&self, place: &Place) -> Result<Vec<SocketAddr>, String> {
        let default_port = if place.transport == Transport::Tls {
            5061
        } else {
            5060
        };
        if let Ok(ip) = place.host.parse::<IpAddr>() {
            return Ok(self.usable(vec![SocketAddr::new(
                ip,
                place.port.unwrap_or(default_port),
            )]));
        }
        if let Some(port) = place.port {
            return self.addresses(&place.host, port).await;
        }
        let service = match place.transport {
            Transport::Udp => "_sip._udp",
            Transport::Tcp => "_sip._tcp",
            Transport::Tls => "_sips._tcp",
        };
        let name = format!("{service}.{}.", place.host.trim_end_matches('.'));
        let records: Vec<(u16, u16, u16, String)> = match self.resolver.srv_lookup(name).await {
            Ok(lookup) => lookup
                .iter()
                .map(|r| (r.priority(), r.weight(), r.port(), r.target().to_utf8()))
                .collect(),
            Err(_) => Vec::new(),
        };
        if records.is_empty() {
            return self.addresses(&place.host, default_port).await;
        }
        let order = srv_order(records, &mut rand::thread_rng());
        let mut targets = Vec::new();
        for (_, _, port, host) in order {
            if let Ok(addrs) = self.addresses(&host, port).await {
                targets.extend(addrs);
            }
        }
        if targets.is_empty() {
            return Err(format!("no address for any SRV target of {}", place.host));
        }
        Ok(targets)
    }

    async fn addresses(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        let lookup = self
            .resolver
            .lookup_ip(host)
            .await
            .map_err(|e| format!("resolving {host}: {e}"))?;
        let found = self.usable(lookup.iter().map(|ip| SocketAddr::new(ip, port)).collect());
        if found.is_empty() {
            return Err(format!("{host} has no address we can reach"));
        }
        Ok(found)
    }

    fn usable(&self, addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
        addrs
            .into_iter()
            .filter(|a| self.ipv6 || a.is_ipv4())
            .collect()
    }
}

/// SRV records in the order to try: ascending priority; within one, a weighted random order.
fn srv_order(
    mut records: Vec<(u16, u16, u16, String)>,
    rng: &mut impl Rng,
) -> Vec<(u16, u16, u16, String)> {
    records.sort_by_key(|r| r.0);
    let mut out = Vec::with_capacity(records.len());
    while !records.is_empty() {
        let priority = records[0].0;
        let same = records.iter().take_while(|r| r.0 == priority).count();
        let mut group: Vec<_> = records.drain(..same).collect();
        while !group.is_empty() {
            let total: u32 = group.iter().map(|r| u32::from(r.1)).sum();
            let mut pick = rng.gen_range(0..=total);
            let index = group
                .iter()
                .position(|r| {
                    let w = u32::from(r.1);
                    if pick <= w {
                        true
                    } else {
                        pick -= w;
                        false
                    }
                })
                .unwrap_or(0);
            out.push(group.remove(index));
        }
    }
    out
}

/// Every trunk's place, by the trunk's index in the user agent.
pub struct TrunkLocator {
    locator: Arc<Locator>,
    places: Vec<Place>,
    transport: TransportHandle,
}

impl TrunkLocator {
    pub fn new(locator: Locator, places: Vec<Place>, transport: TransportHandle) -> TrunkLocator {
        TrunkLocator {
            locator: Arc::new(locator),
            places,
            transport,
        }
    }

    /// Answers `UaEvent::LocateTrunk` in the background.
    pub fn locate(&self, trunk: usize, commands: &UnboundedSender<UaCommand>) {
        let Some(place) = self.places.get(trunk).cloned() else {
            return;
        };
        let (locator, transport, commands) = (
            self.locator.clone(),
            self.transport.clone(),
            commands.clone(),
        );
        tokio::spawn(async move {
            locate_until_found(&locator, trunk, &place, &transport, &commands).await
        });
    }
}

/// Looks `place` up until it resolves, then hands the targets to the user agent.
async fn locate_until_found(
    locator: &Locator,
    trunk: usize,
    place: &Place,
    transport: &TransportHandle,
    commands: &UnboundedSender<UaCommand>,
) {
    loop {
        match locator.locate(place).await {
            Ok(targets) => {
                if let Some(name) = &place.tls_name {
                    for target in &targets {
                        transport.name_tls_peer(*target, name);
                    }
                }
                let _ = commands.send(UaCommand::TrunkTargets { trunk, targets });
                return;
            }
            Err(why) => {
                tracing::warn!(host = %place.host, "locating the trunk failed: {why}; retrying in {} s", RETRY.as_secs());
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn srv_records_go_by_priority_then_weight() {
        let records = vec![
            (20, 0, 5060, "backup".to_string()),
            (10, 90, 5060, "heavy".to_string()),
            (10, 10, 5060, "light".to_string()),
        ];
        let mut heavy_first = 0;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..1000 {
            let order = srv_order(records.clone(), &mut rng);
            assert_eq!(order[2].3, "backup", "the lower priority comes last");
            if order[0].3 == "heavy" {
                heavy_first += 1;
            }
        }
        assert!(
            (850..=950).contains(&heavy_first),
            "weight 90 of 100: {heavy_first}"
        );
    }
}
