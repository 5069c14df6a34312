//! Wrong passwords per source. Past `max_failures` within `lock_for`, a source's credentials are
//! refused unread until `lock_for` has passed since its last failure, so a guesser gets a few
//! tries per period whatever its speed. IPv6 sources count per /64, the block one subscriber
//! holds.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

/// Sources tracked at once. When full of live entries (a guessing campaign from this many
/// addresses), new sources are refused rather than given unlimited tries.
const MAX_SOURCES: usize = 65_536;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    pub max_failures: u32,
    pub lock_for: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

pub struct Throttle {
    policy: ThrottlePolicy,
    sources: HashMap<IpAddr, Failures>,
}

impl Throttle {
    pub fn new(policy: ThrottlePolicy) -> Throttle {
        Throttle {
            policy,
            sources: HashMap::new(),
        }
    }

    pub fn is_locked(&mut self, source: IpAddr, now: Instant) -> bool {
        let key = block_of(source);
        match self.sources.get(&key) {
            Some(f) if now.saturating_duration_since(f.last) >= self.policy.lock_for => {
                self.sources.remove(&key);
                false
            }
            Some(f) => f.count >= self.policy.max_failures,
            None => self.sources.len() >= MAX_SOURCES && !self.prune(now),
        }
    }

    /// Counts a wrong password; true when the source is now locked.
    pub fn fail(&mut self, source: IpAddr, now: Instant) -> bool {
        let key = block_of(source);
        if !self.sources.contains_key(&key) && self.sources.len() >= MAX_SOURCES && !self.prune(now)
        {
            return true;
        }
        let entry = self.sources.entry(key).or_insert(Failures {
            count: 0,
            last: now,
        });
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        entry.count >= self.policy.max_failures
    }

    /// Drops entries whose time has passed; whether that made room.
    fn prune(&mut self, now: Instant) -> bool {
        let lock_for = self.policy.lock_for;
        self.sources
            .retain(|_, f| now.saturating_duration_since(f.last) < lock_for);
        self.sources.len() < MAX_SOURCES
    }
}

fn block_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_locked_after_its_failures_until_the_period_passes() {
        let policy = ThrottlePolicy {
            max_failures: 3,
            lock_for: Duration::from_secs(60),
        };
        let mut throttle = Throttle::new(policy);
        let t0 = Instant::now();
        let guesser: IpAddr = "198.51.100.9".parse().unwrap();
        let other: IpAddr = "198.51.100.10".parse().unwrap();
        assert!(!throttle.fail(guesser, t0));
        assert!(!throttle.fail(guesser, t0));
        assert!(!throttle.is_locked(guesser, t0));
        assert!(throttle.fail(guesser, t0 + Duration::from_secs(1)));
        assert!(throttle.is_locked(guesser, t0 + Duration::from_secs(60)));
        assert!(!throttle.is_locked(other, t0 + Duration::from_secs(2)));
        assert!(!throttle.is_locked(guesser, t0 + Duration::from_secs(61)));
        assert!(
            !throttle.fail(guesser, t0 + Duration::from_secs(62)),
            "counting starts over"
        );
    }

    #[test]
    fn ipv6_sources_count_per_64() {
        let policy = ThrottlePolicy {
            max_failures: 2,
            lock_for: Duration::from_secs(60),
        };
        let mut throttle = Throttle::new(policy);
        let t0 = Instant::now();
        throttle.fail("2001:db8:1:2::1".parse().unwrap(), t0);
        throttle.fail("2001:db8:1:2::ffff".parse().unwrap(), t0);
        assert!(throttle.is_locked("2001:db8:1:2:aaaa::".parse().unwrap(), t0));
        assert!(!throttle.is_locked("2001:db8:1:3::1".parse().unwrap(), t0));
    }
}
