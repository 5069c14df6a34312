//! Our own lockout, in front of any backend. Auth0 counts failures per user *per IP*, and every
//! caller reaches it from the IVR's one address, so one PIN guesser could lock the real user out
//! for everyone or throttle the whole IVR. We count failures per account and per caller ID, and
//! refuse further attempts for a while without asking the backend.
//!
//! The counters live in memory behind `FailureCounter`; with several IVR nodes, Redis takes
//! their place (`shared_lockout`).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::{Directory, Masked, Verification, VerifyFuture};

pub type CounterFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Failure counting for one kind of key (account, caller ID).
pub trait FailureCounter: Send + Sync {
    fn is_locked<'a>(&'a self, key: &'a str) -> CounterFuture<'a, bool>;
    /// Counts a failure; true when the key is now locked.
    fn record_failure<'a>(&'a self, key: &'a str) -> CounterFuture<'a, bool>;
    fn reset<'a>(&'a self, key: &'a str) -> CounterFuture<'a, ()>;
}

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub max_failures: usize,
    pub window: Duration,
    pub lock_for: Duration,
}

#[derive(Default)]
struct Entry {
    failures: VecDeque<Instant>,
    locked_until: Option<Instant>,
}

/// Keys past this many are pruned of stale entries, so a flood of made-up accounts cannot
/// grow memory without bound.
const PRUNE_AT: usize = 10_000;

#[derive(Default)]
struct Entries {
    by_key: HashMap<String, Entry>,
    /// The size at which the next pruning pass runs: twice what the last one kept, so a
    /// flood of live keys costs each failure O(1) on average, not a pass over them all.
    prune_at: usize,
}

pub struct InMemoryCounter {
    policy: Policy,
    entries: Mutex<Entries>,
}

impl InMemoryCounter {
    pub fn new(policy: Policy) -> InMemoryCounter {
        InMemoryCounter {
            policy,
            entries: Mutex::new(Entries {
                by_key: HashMap::new(),
                prune_at: PRUNE_AT,
            }),
        }
    }
}

impl FailureCounter for InMemoryCounter {
    fn is_locked<'a>(&'a self, key: &'a str) -> CounterFuture<'a, bool> {
        let locked = self.locked(key);
        Box::pin(async move { locked })
    }

    fn record_failure<'a>(&'a self, key: &'a str) -> CounterFuture<'a, bool> {
        let locked = self.failure(key);
        Box::pin(async move { locked })
    }

    fn reset<'a>(&'a self, key: &'a str) -> CounterFuture<'a, ()> {
        self.forget(key);
        Box::pin(async {})
    }
}

impl InMemoryCounter {
    pub fn locked(&self, key: &str) -> bool {
        let now = Instant::now();
        let Ok(entries) = self.entries.lock() else {
            return false;
        };
        entries
            .by_key
            .get(key)
            .and_then(|e| e.locked_until)
            .is_some_and(|until| now < until)
    }

    pub fn failure(&self, key: &str) -> bool {
        let now = Instant::now();
        let Ok(mut entries) = self.entries.lock() else {
            return false;
        };
        if entries.by_key.len() >= entries.prune_at {
            let policy = self.policy;
            entries.by_key.retain(|_, e| {
                e.locked_until.is_some_and(|u| now < u)
                    || e.failures.back().is_some_and(|&t| now - t < policy.window)
            });
            entries.prune_at = (entries.by_key.len() * 2).max(PRUNE_AT);
        }
        let entry = entries.by_key.entry(key.to_string()).or_default();
        while entry
            .failures
            .front()
            .is_some_and(|&t| now - t >= self.policy.window)
        {
            entry.failures.pop_front();
        }
        entry.failures.push_back(now);
        if entry.failures.len() >= self.policy.max_failures {
            entry.failures.clear();
            entry.locked_until = Some(now + self.policy.lock_for);
            return true;
        }
        false
    }

    pub fn forget(&self, key: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.by_key.remove(key);
        }
    }
}

/// Any directory, behind per-account and per-caller failure limits.
pub struct Guarded {
    inner: Arc<dyn Directory>,
    accounts: Arc<dyn FailureCounter>,
    callers: Arc<dyn FailureCounter>,
}

impl Guarded {
    pub fn new(
        inner: Arc<dyn Directory>,
        accounts: Arc<dyn FailureCounter>,
        callers: Arc<dyn FailureCounter>,
    ) -> Guarded {
        Guarded {
            inner,
            accounts,
            callers,
        }
    }
}

impl Directory for Guarded {
    fn reachable(&self) -> bool {
        self.inner.reachable()
    }

    fn verify<'a>(&'a self, account: &'a str, pin: &'a str, caller: &'a str) -> VerifyFuture<'a> {
        Box::pin(async move {
            if self.accounts.is_locked(account).await || self.callers.is_locked(caller).await {
                let account = Masked(account);
                tracing::info!(%account, %caller, "refused by our lockout, backend not asked");
                return Verification::Locked;
            }
            let result = self.inner.verify(account, pin, caller).await;
            match &result {
                Verification::Verified(_) => {
                    self.accounts.reset(account).await;
                }
                Verification::WrongCredentials => {
                    let account_locked = self.accounts.record_failure(account).await;
                    let caller_locked = self.callers.record_failure(caller).await;
                    if account_locked || caller_locked {
                        let account = Masked(account);
                        tracing::warn!(%account, %caller, account_locked, caller_locked, "too many wrong PINs: locked");
                    }
                }
                Verification::Locked | Verification::Unavailable(_) => {}
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::User;

    fn policy() -> Policy {
        Policy {
            max_failures: 5,
            window: Duration::from_secs(15 * 60),
            lock_for: Duration::from_secs(15 * 60),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn five_failures_in_the_window_lock_for_the_period() {
        let c = InMemoryCounter::new(policy());
        for _ in 0..4 {
            assert!(!c.failure("12345"));
        }
        assert!(!c.locked("12345"));
        assert!(c.failure("12345"), "the fifth failure locks");
        assert!(c.locked("12345"));
        assert!(!c.locked("99999"), "other accounts are untouched");
        tokio::time::advance(Duration::from_secs(15 * 60 - 1)).await;
        assert!(c.locked("12345"));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!c.locked("12345"), "the lock ends after its period");
    }

    #[tokio::test(start_paused = true)]
    async fn failures_older_than_the_window_do_not_count() {
        let c = InMemoryCounter::new(policy());
        for _ in 0..4 {
            c.failure("12345");
        }
        tokio::time::advance(Duration::from_secs(15 * 60)).await;
        assert!(!c.failure("12345"), "the old four have left the window");
        c.forget("12345");
        assert!(!c.locked("12345"));
    }

    struct Fixed(Verification, std::sync::atomic::AtomicUsize);

    impl Directory for Fixed {
        fn verify<'a>(&'a self, _: &'a str, _: &'a str, _: &'a str) -> VerifyFuture<'a> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let v = self.0.clone();
            Box::pin(async move { v })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_guesser_is_stopped_before_the_backend_is_asked_again() {
        let backend = Arc::new(Fixed(Verification::WrongCredentials, Default::default()));
        let guarded = Guarded::new(
            backend.clone(),
            Arc::new(InMemoryCounter::new(policy())),
            Arc::new(InMemoryCounter::new(Policy {
                max_failures: 20,
                ..policy()
            })),
        );
        for _ in 0..5 {
            assert_eq!(
                guarded.verify("12345", "0000", "555").await,
                Verification::WrongCredentials
            );
        }
        for _ in 0..10 {
            assert_eq!(
                guarded.verify("12345", "0000", "555").await,
                Verification::Locked
            );
        }
        assert_eq!(
            backend.1.load(std::sync::atomic::Ordering::SeqCst),
            5,
            "locked attempts never reach the backend"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn one_caller_guessing_across_accounts_is_stopped_by_caller_id() {
        let backend = Arc::new(Fixed(Verification::WrongCredentials, Default::default()));
        let guarded = Guarded::new(
            backend.clone(),
            Arc::new(InMemoryCounter::new(policy())),
            Arc::new(InMemoryCounter::new(Policy {
                max_failures: 8,
                ..policy()
            })),
        );
        for account in 0..8 {
            assert_eq!(
                guarded.verify(&format!("{account}"), "0000", "555").await,
                Verification::WrongCredentials
            );
        }
        assert_eq!(
            guarded.verify("42", "0000", "555").await,
            Verification::Locked
        );
        assert_eq!(
            guarded.verify("42", "0000", "556").await,
            Verification::WrongCredentials,
            "other callers go on"
        );
        let ok = Arc::new(Fixed(
            Verification::Verified(User {
                user_id: "u".into(),
                greeting: None,
                balance: None,
                greeting_text: None,
            }),
            Default::default(),
        ));
        let guarded = Guarded::new(
            ok,
            Arc::new(InMemoryCounter::new(policy())),
            Arc::new(InMemoryCounter::new(policy())),
        );
        assert!(matches!(
            guarded.verify("1", "1234", "5").await,
            Verification::Verified(_)
        ));
    }
}
