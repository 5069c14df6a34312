//! Wrong passwords, counted three ways. Past its limit within `lock_for`, a key's credentials are
//! refused unread until `lock_for` has passed since its last failure, so a guesser gets a few
//! tries per period whatever its speed:
//! - per source: an IPv4 address, or the /64 an IPv6 subscriber holds (`max_failures`);
//! - per wider block: the /24 or /48 around it, four times as many, against a guesser that
//!   hops between the addresses of one network;
//! - per username, four times as many, against a guesser spread over many networks.
//!
//! Each table holds at most `MAX_KEYS`; when a flood of new keys fills it, the eighth that
//! failed longest ago is forgotten. Nobody is locked out for a table being full.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

/// Keys tracked at once in each table.
const MAX_KEYS: usize = 65_536;

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

/// Failures for one kind of key.
pub struct Counter<K> {
    max_failures: u32,
    lock_for: Duration,
    keys: HashMap<K, Failures>,
}

impl<K: Hash + Eq + Clone> Counter<K> {
    pub fn new(max_failures: u32, lock_for: Duration) -> Counter<K> {
        Counter {
            max_failures,
            lock_for,
            keys: HashMap::new(),
        }
    }

    pub fn is_locked<Q>(&mut self, key: &Q, now: Instant) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self.keys.get(key) {
            Some(f) if now.saturating_duration_since(f.last) >= self.lock_for => {
                self.keys.remove(key);
                false
            }
            Some(f) => f.count >= self.max_failures,
            None => false,
        }
    }

    /// Counts a failure; true when the key is now locked.
    pub fn fail(&mut self, key: K, now: Instant) -> bool {
        if !self.keys.contains_key(&key) && self.keys.len() >= MAX_KEYS {
            self.make_room(now);
        }
        let entry = self.keys.entry(key).or_insert(Failures {
            count: 0,
            last: now,
        });
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        entry.count >= self.max_failures
    }

    /// Drops what has expired and, if that is not enough, the eighth that failed longest ago:
    /// one pass per `MAX_KEYS / 8` new keys.
    fn make_room(&mut self, now: Instant) {
        let lock_for = self.lock_for;
        self.keys
            .retain(|_, f| now.saturating_duration_since(f.last) < lock_for);
        if self.keys.len() < MAX_KEYS {
            return;
        }
        let mut lasts: Vec<Instant> = self.keys.values().map(|f| f.last).collect();
        let cut = lasts.len() / 8;
        let (_, &mut oldest_kept, _) = lasts.select_nth_unstable(cut);
        self.keys.retain(|_, f| f.last >= oldest_kept);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.keys.len()
    }
}

/// The three counters a wrong password goes into.
pub struct Throttle {
    sources: Counter<IpAddr>,
    networks: Counter<IpAddr>,
    users: Counter<String>,
}

impl Throttle {
    pub fn new(policy: ThrottlePolicy) -> Throttle {
        let wider = policy.max_failures.saturating_mul(4);
        Throttle {
            sources: Counter::new(policy.max_failures, policy.lock_for),
            networks: Counter::new(wider, policy.lock_for),
            users: Counter::new(wider, policy.lock_for),
        }
    }

    pub fn is_locked(&mut self, source: IpAddr, username: &str, now: Instant) -> bool {
        // Every counter is asked, so each forgets what has expired.
        let by_source = self.sources.is_locked(&block_of(source), now);
        let by_network = self.networks.is_locked(&network_of(source), now);
        let by_user = self.users.is_locked(username, now);
        by_source || by_network || by_user
    }

    /// Counts a wrong password; true when the source, its network or the user is now locked.
    pub fn fail(&mut self, source: IpAddr, username: &str, now: Instant) -> bool {
        let by_source = self.sources.fail(block_of(source), now);
        let by_network = self.networks.fail(network_of(source), now);
        let by_user = self.users.fail(username.to_string(), now);
        by_source || by_network || by_user
    }
}

fn block_of(ip: IpAddr) -> IpAddr {
    match unmapped(ip) {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// The /24 (IPv4) or /48 (IPv6) around an address.
fn network_of(ip: IpAddr) -> IpAddr {
    match unmapped(ip) {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0))
        }
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::V4(Ipv4Addr::new(a, b, c, 0))
        }
    }
}

fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_failures: u32) -> ThrottlePolicy {
        ThrottlePolicy {
            max_failures,
            lock_for: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_source_is_locked_after_its_failures_until_the_period_passes() {
        let mut throttle = Throttle::new(policy(3));
        let t0 = Instant::now();
        let guesser: IpAddr = "198.51.100.9".parse().unwrap();
        let other: IpAddr = "198.51.100.10".parse().unwrap();
        assert!(!throttle.fail(guesser, "alice", t0));
        assert!(!throttle.fail(guesser, "bob", t0));
        assert!(!throttle.is_locked(guesser, "carol", t0));
        assert!(throttle.fail(guesser, "dave", t0 + Duration::from_secs(1)));
        assert!(throttle.is_locked(guesser, "erin", t0 + Duration::from_secs(60)));
        assert!(!throttle.is_locked(other, "erin", t0 + Duration::from_secs(2)));
        assert!(!throttle.is_locked(guesser, "erin", t0 + Duration::from_secs(61)));
        assert!(
            !throttle.fail(guesser, "frank", t0 + Duration::from_secs(62)),
            "counting starts over"
        );
    }

    #[test]
    fn ipv6_sources_count_per_64() {
        let mut throttle = Throttle::new(policy(2));
        let t0 = Instant::now();
        throttle.fail("2001:db8:1:2::1".parse().unwrap(), "a", t0);
        throttle.fail("2001:db8:1:2::ffff".parse().unwrap(), "b", t0);
        assert!(throttle.is_locked("2001:db8:1:2:aaaa::".parse().unwrap(), "c", t0));
        assert!(!throttle.is_locked("2001:db8:1:3::1".parse().unwrap(), "c", t0));
    }

    #[test]
    fn a_guesser_hopping_across_its_network_or_aiming_at_one_user_is_locked() {
        let mut throttle = Throttle::new(policy(2));
        let t0 = Instant::now();
        // One new address of 203.0.113.0/24 per guess, a new name each time: 8 for the /24.
        for host in 1..=8u8 {
            let source = IpAddr::from([203, 0, 113, host]);
            assert!(
                !throttle.is_locked(source, &format!("u{host}"), t0),
                "{host}"
            );
            throttle.fail(source, &format!("u{host}"), t0);
        }
        assert!(throttle.is_locked("203.0.113.200".parse().unwrap(), "fresh", t0));
        assert!(!throttle.is_locked("203.0.114.1".parse().unwrap(), "fresh", t0));
        // One user, guessed at from everywhere: 8 for the name.
        for n in 0..8u8 {
            throttle.fail(IpAddr::from([10, n, 0, 1]), "alice", t0);
        }
        assert!(throttle.is_locked("192.0.2.1".parse().unwrap(), "alice", t0));
        assert!(!throttle.is_locked("192.0.2.1".parse().unwrap(), "bob", t0));
    }

    #[test]
    fn a_full_table_forgets_its_oldest_and_locks_out_no_newcomer() {
        let mut counter: Counter<u32> = Counter::new(3, Duration::from_secs(3600));
        let t0 = Instant::now();
        for key in 0..MAX_KEYS as u32 {
            counter.fail(key, t0 + Duration::from_millis(u64::from(key)));
        }
        assert_eq!(counter.len(), MAX_KEYS);
        let late = t0 + Duration::from_secs(100);
        assert!(
            !counter.is_locked(&u32::MAX, late),
            "a newcomer is not locked"
        );
        assert!(
            !counter.fail(u32::MAX, late),
            "its first failure is only counted"
        );
        assert!(counter.len() <= MAX_KEYS - MAX_KEYS / 8 + 1);
        assert!(!counter.keys.contains_key(&0), "the oldest went first");
        assert!(counter.keys.contains_key(&(MAX_KEYS as u32 - 1)));
    }
}
