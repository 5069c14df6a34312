//! The lockout shared by every IVR node in Redis, so a guesser spread over N nodes gets the
//! same five tries as on one. Counting and expiry are one atomic script per attempt. Keys hold
//! an HMAC of the account (or caller ID) under a key every node shares, never the number
//! itself. When Redis does not answer, each node counts on its own (never unlimited tries),
//! says so once in the log and in `ivr_lockout_degraded`, and goes back to Redis when it
//! answers again; a caller is never told "wrong PIN" because Redis is down.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hmac::{Hmac, Mac};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use sha2::Sha256;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::lockout::{CounterFuture, FailureCounter, InMemoryCounter, Policy};

/// How long one Redis command may take before the node counts on its own.
const TIMEOUT: Duration = Duration::from_millis(300);
/// After a failure, Redis is left alone this long, so a PIN check does not wait on it each time.
const BACK_OFF: Duration = Duration::from_secs(2);

/// An attempt before the backend is asked, in one step so that concurrent attempts on every
/// node share the count: refused (-1) while locked; else counted, the window started on the
/// first, and the key locked (1) once the count is reached.
const ATTEMPT: &str = r"
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if n >= tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
";

/// An attempt taken back: one count less, never below nothing.
const RELEASE: &str = r"
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then redis.call('DECR', KEYS[1]) end
return 0
";

pub struct RedisCounter {
    /// `account` or `caller`: part of every key.
    kind: &'static str,
    policy: Policy,
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    key: Vec<u8>,
    attempt: Script,
    release: Script,
    /// Counts while Redis is away; its locks hold even once Redis is back.
    local: InMemoryCounter,
    away_until: Mutex<Option<Instant>>,
    degraded: AtomicBool,
}

impl RedisCounter {
    /// `url` is `redis://host:port/db`; `key` is the secret every node hashes keys with.
    pub fn new(
        kind: &'static str,
        url: &str,
        key: &[u8],
        policy: Policy,
    ) -> redis::RedisResult<RedisCounter> {
        Ok(RedisCounter {
            kind,
            policy,
            client: redis::Client::open(url)?,
            connection: OnceCell::new(),
            key: key.to_vec(),
            attempt: Script::new(ATTEMPT),
            release: Script::new(RELEASE),
            local: InMemoryCounter::new(policy),
            away_until: Mutex::new(None),
            degraded: AtomicBool::new(false),
        })
    }

    /// Whether this node is counting on its own because Redis did not answer.
    pub fn degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
    }

    fn keys(&self, key: &str) -> (String, String) {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(self.kind.as_bytes());
        mac.update(b"\0");
        mac.update(key.as_bytes());
        let digest = mac.finalize().into_bytes();
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        (
            format!("ivr:lockout:{}:fail:{hex}", self.kind),
            format!("ivr:lockout:{}:lock:{hex}", self.kind),
        )
    }

    /// The connection, unless Redis failed a moment ago.
    async fn connection(&self) -> Option<ConnectionManager> {
        let away = self
            .away_until
            .lock()
            .ok()
            .and_then(|a| *a)
            .is_some_and(|until| Instant::now() < until);
        if away {
            return None;
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1);
        let init = self.client.get_connection_manager_with_config(config);
        match self.connection.get_or_try_init(|| init).await {
            Ok(c) => Some(c.clone()),
            Err(e) => {
                self.went_away(&e);
                None
            }
        }
    }

    fn went_away(&self, error: &redis::RedisError) {
        if let Ok(mut away) = self.away_until.lock() {
            *away = Some(Instant::now() + BACK_OFF);
        }
        if !self.degraded.swap(true, Ordering::Relaxed) {
            tracing::warn!(kind = self.kind, "shared lockout unreachable ({error}): counting on this node alone until Redis answers");
            crate::metrics::METRICS.lockout_degraded.inc();
        }
    }

    fn came_back(&self) {
        if self.degraded.swap(false, Ordering::Relaxed) {
            tracing::info!(kind = self.kind, "shared lockout reachable again");
            crate::metrics::METRICS.lockout_degraded.dec();
        }
    }

    async fn shared_locked(&self, key: &str) -> Option<bool> {
        let mut c = self.connection().await?;
        let (_, lock) = self.keys(key);
        match c.exists::<_, bool>(&lock).await {
            Ok(locked) => {
                self.came_back();
                Some(locked)
            }
            Err(e) => {
                self.went_away(&e);
                None
            }
        }
    }

    async fn shared_attempt(&self, key: &str) -> Option<Option<bool>> {
        let mut c = self.connection().await?;
        let (fail, lock) = self.keys(key);
        let result: redis::RedisResult<i64> = self
            .attempt
            .key(&fail)
            .key(&lock)
            .arg(millis(self.policy.window))
            .arg(self.policy.max_failures)
            .arg(millis(self.policy.lock_for))
            .invoke_async(&mut c)
            .await;
        match result {
            Ok(answer) => {
                self.came_back();
                Some((answer >= 0).then_some(answer == 1))
            }
            Err(e) => {
                self.went_away(&e);
                None
            }
        }
    }

    async fn shared_release(&self, key: &str) {
        if let Some(mut c) = self.connection().await {
            let (fail, _) = self.keys(key);
            let result: redis::RedisResult<i64> =
                self.release.key(&fail).invoke_async(&mut c).await;
            if let Err(e) = result {
                self.went_away(&e);
            }
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl FailureCounter for RedisCounter {
    fn is_locked<'a>(&'a self, key: &'a str) -> CounterFuture<'a, bool> {
        Box::pin(
            async move { self.local.locked(key) || self.shared_locked(key).await.unwrap_or(false) },
        )
    }

    fn attempt<'a>(&'a self, key: &'a str) -> CounterFuture<'a, Option<bool>> {
        Box::pin(async move {
            // A lock counted alone while Redis was away holds once it is back.
            if self.local.locked(key) {
                return None;
            }
            match self.shared_attempt(key).await {
                Some(counted) => counted,
                None => self.local.try_attempt(key),
            }
        })
    }

    fn release<'a>(&'a self, key: &'a str) -> CounterFuture<'a, ()> {
        Box::pin(async move {
            self.local.take_back(key);
            self.shared_release(key).await;
        })
    }

    fn reset<'a>(&'a self, key: &'a str) -> CounterFuture<'a, ()> {
        Box::pin(async move {
            self.local.forget(key);
            if let Some(mut c) = self.connection().await {
                let (fail, _) = self.keys(key);
                if let Err(e) = c.del::<_, ()>(&fail).await {
                    self.went_away(&e);
                }
            }
        })
    }
}
