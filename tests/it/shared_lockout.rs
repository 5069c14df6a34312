//! The lockout in a real Redis, as two nodes share it: failures on either count toward one
//! limit, keys name no account, and an outage leaves each node counting alone (degraded) until
//! Redis is back.

use crate::support;

use std::time::Duration;

use ivr::directory::lockout::{FailureCounter, Policy};
use ivr::directory::shared_lockout::RedisCounter;
use support::redis::Redis;

const KEY: &[u8] = b"a key every node shares";
const ACCOUNT: &str = "12345678";

fn node(redis: &Redis) -> RedisCounter {
    let policy = Policy {
        max_failures: 5,
        window: Duration::from_secs(900),
        lock_for: Duration::from_secs(900),
    };
    RedisCounter::new("account", &redis.url(), KEY, policy).unwrap()
}

#[tokio::test]
async fn attempts_at_once_on_two_nodes_pass_the_limit_never_and_released_ones_come_back() {
    let redis = Redis::start("redis-attempts");
    let (a, b) = (node(&redis), node(&redis));
    let tries = (0..20).map(|i| {
        let node = if i % 2 == 0 { &a } else { &b };
        node.attempt(ACCOUNT)
    });
    let counted = join_all(tries).await;
    assert_eq!(
        counted.iter().filter(|c| c.is_some()).count(),
        5,
        "{counted:?}"
    );
    assert_eq!(
        counted.iter().filter(|c| **c == Some(true)).count(),
        1,
        "one locked it"
    );
    assert!(a.is_locked(ACCOUNT).await && b.is_locked(ACCOUNT).await);
    // Taken back (an outage, a good PIN): the count goes down on every node.
    let other = "87654321";
    for _ in 0..4 {
        assert_eq!(a.attempt(other).await, Some(false));
    }
    b.release(other).await;
    assert_eq!(a.attempt(other).await, Some(false), "four again, not five");
    assert_eq!(b.attempt(other).await, Some(true), "the fifth locks");
}

/// Polls every future together on this task, as concurrent logins would arrive.
async fn join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut running: Vec<_> = futures.map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = running.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (future, result) in running.iter_mut().zip(done.iter_mut()) {
            if result.is_none() {
                if let std::task::Poll::Ready(v) = future.as_mut().poll(cx) {
                    *result = Some(v);
                }
            }
        }
        if done.iter().all(Option::is_some) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    done.into_iter().map(Option::unwrap).collect()
}

#[tokio::test]
async fn failures_on_two_nodes_count_toward_one_limit_under_keys_that_hide_the_account() {
    let redis = Redis::start("redis-shared");
    let (a, b) = (node(&redis), node(&redis));
    for attempt in 1..=4 {
        let node = if attempt % 2 == 1 { &a } else { &b };
        assert_eq!(
            node.attempt(ACCOUNT).await,
            Some(false),
            "attempt {attempt}"
        );
    }
    assert!(!a.is_locked(ACCOUNT).await && !b.is_locked(ACCOUNT).await);
    assert_eq!(
        a.attempt(ACCOUNT).await,
        Some(true),
        "the fifth, on either node, locks"
    );
    assert!(b.is_locked(ACCOUNT).await, "the other node sees the lock");
    assert!(
        !b.is_locked("87654321").await,
        "other accounts are untouched"
    );
    let keys = redis.cli(&["KEYS", "*"]);
    assert!(keys.contains("ivr:lockout:account:lock:"), "{keys}");
    assert!(!keys.contains(ACCOUNT), "no key names the account: {keys}");
    let ttl: i64 = redis
        .cli(&["PTTL", keys.lines().next().unwrap().trim()])
        .trim()
        .parse()
        .unwrap();
    assert!(
        ttl > 890_000,
        "the lock expires with the policy's period: {ttl} ms"
    );
    assert!(!a.degraded() && !b.degraded());
}

#[tokio::test]
async fn while_redis_is_down_each_node_counts_alone_then_goes_back_to_redis() {
    let mut redis = Redis::start("redis-outage");
    let a = node(&redis);
    assert_eq!(a.attempt(ACCOUNT).await, Some(false));
    redis.stop();
    // Never unlimited tries: the node's own count locks after five.
    for attempt in 1..=4 {
        assert_eq!(a.attempt(ACCOUNT).await, Some(false), "attempt {attempt}");
    }
    assert!(a.degraded(), "the outage is visible");
    assert_eq!(
        a.attempt(ACCOUNT).await,
        Some(true),
        "locked by the local count"
    );
    assert!(a.is_locked(ACCOUNT).await);
    redis.restart();
    // The back-off after a failure is 2 s; then Redis counts again.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let other = "55555555";
    assert_eq!(a.attempt(other).await, Some(false));
    assert!(!a.degraded(), "counting resumed in Redis");
    assert!(
        redis
            .cli(&["KEYS", "ivr:lockout:account:fail:*"])
            .lines()
            .count()
            == 1,
        "the new failure is in Redis"
    );
    assert!(
        a.is_locked(ACCOUNT).await,
        "the lock taken alone still holds"
    );
}
