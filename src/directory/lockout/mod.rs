//! Our own lockout, in front of any backend. Auth0 counts failures per user *per IP*, and every
//! caller reaches it from the IVR's one address, so one PIN guesser could lock the real user out
//! for everyone or throttle the whole IVR. We count failures per account and per caller ID, and
//! refuse further attempts for a while without asking the backend.
//!
//! An attempt is counted *before* the backend is asked, atomically, and taken back when it
//! proves not to be a wrong guess (a good PIN, an outage): twenty wrong PINs keyed at once on
//! one account against a slow backend reach it five times, not twenty.
//!
//! The counters live in memory behind `FailureCounter`; with several IVR nodes, Redis takes
//! their place (`shared_lockout`).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::breaker::Breaker;
use super::{Directory, Masked, Verification, VerifyFuture};

pub type CounterFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Failure counting for one kind of key (account, caller ID).
pub trait FailureCounter: Send + Sync {
    fn is_locked<'a>(&'a self, key: &'a str) -> CounterFuture<'a, bool>;
    fn reset<'a>(&'a self, key: &'a str) -> CounterFuture<'a, ()>;
    /// Counts an attempt before the backend is asked: `None` when the key is locked (nothing
    /// is counted), else whether this attempt locked it. Atomic: concurrent attempts on one key
    /// never pass the threshold.
    fn attempt<'a>(&'a self, key: &'a str) -> CounterFuture<'a, Option<bool>>;
    /// Takes back one counted attempt that proved not to be a wrong guess. A lock the attempt
    /// set stays: it only ever errs towards fewer guesses.
    fn release<'a>(&'a self, key: &'a str) -> CounterFuture<'a, ()>;
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

    fn reset<'a>(&'a self, key: &'a str) -> CounterFuture<'a, ()> {
        self.forget(key);
        Box::pin(async {})
    }

    fn attempt<'a>(&'a self, key: &'a str) -> CounterFuture<'a, Option<bool>> {
        let counted = self.try_attempt(key);
        Box::pin(async move { counted })
    }

    fn release<'a>(&'a self, key: &'a str) -> CounterFuture<'a, ()> {
        self.take_back(key);
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

    /// `attempt`, under the one lock: refused when locked, else counted.
    pub fn try_attempt(&self, key: &str) -> Option<bool> {
        let now = Instant::now();
        // A poisoned lock counts nothing and refuses: never unlimited tries.
        let mut entries = self.entries.lock().ok()?;
        let locked = entries
            .by_key
            .get(key)
            .and_then(|e| e.locked_until)
            .is_some_and(|until| now < until);
        if locked {
            return None;
        }
        Some(self.count(&mut entries, key, now))
    }

    /// `release`: the newest counted failure is forgotten.
    pub fn take_back(&self, key: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            if let Some(entry) = entries.by_key.get_mut(key) {
                entry.failures.pop_back();
            }
        }
    }

    /// Counts one failure; true when it locked the key.
    fn count(&self, entries: &mut Entries, key: &str, now: Instant) -> bool {
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

/// A caller's lockout key as a log may show it: a network address whole, a caller ID masked
/// like an account (`id:*********34`).
struct Shown<'a>(&'a str);

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.strip_prefix("id:") {
            Some(id) => write!(f, "id:{}", Masked(id)),
            None if self.0.starts_with("net:") => f.write_str(self.0),
            None => write!(f, "{}", Masked(self.0)),
        }
    }
}

/// Any directory, behind per-account and per-caller failure limits.
pub struct Guarded {
    inner: Arc<dyn Directory>,
    accounts: Arc<dyn FailureCounter>,
    callers: Arc<dyn FailureCounter>,
    breaker: Option<Arc<Breaker>>,
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
            breaker: None,
        }
    }

    /// Behind the circuit breaker over every account too.
    pub fn with_breaker(mut self, breaker: Arc<Breaker>) -> Guarded {
        self.breaker = Some(breaker);
        self
    }
}

impl Directory for Guarded {
    fn reachable(&self) -> bool {
        self.inner.reachable()
    }

    fn verify<'a>(&'a self, account: &'a str, pin: &'a str, caller: &'a str) -> VerifyFuture<'a> {
        Box::pin(async move {
            if let Some(wait) = self.breaker.as_ref().map(|b| b.wait()) {
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
            }
            let refused = || {
                let account = Masked(account);
                let caller = Shown(caller);
                tracing::info!(%account, %caller, "refused by our lockout, backend not asked");
                Verification::Locked
            };
            let Some(account_locked) = self.accounts.attempt(account).await else {
                return refused();
            };
            let Some(caller_locked) = self.callers.attempt(caller).await else {
                self.accounts.release(account).await;
                return refused();
            };
            let result = self.inner.verify(account, pin, caller).await;
            match &result {
                Verification::Verified(_) => {
                    self.accounts.reset(account).await;
                    self.callers.release(caller).await;
                }
                Verification::WrongCredentials => {
                    if let Some(breaker) = &self.breaker {
                        breaker.wrong_pin();
                    }
                    if account_locked || caller_locked {
                        let (account, caller) = (Masked(account), Shown(caller));
                        tracing::warn!(%account, %caller, account_locked, caller_locked, "too many wrong PINs: locked");
                    }
                }
                Verification::Locked | Verification::Unavailable(_) => {
                    self.accounts.release(account).await;
                    self.callers.release(caller).await;
                }
            }
            result
        })
    }
}

#[cfg(test)]
mod tests;
