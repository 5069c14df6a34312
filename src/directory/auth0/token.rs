//! The Management API token: fetched by client credentials, cached until shortly before it
//! expires, and renewed by a single request however many calls need it at once.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

#[derive(Clone)]
struct Token {
    value: String,
    renew_at: Instant,
}

#[derive(Default)]
pub struct TokenCache {
    current: std::sync::Mutex<Option<Token>>,
    /// Held while one caller fetches; the others wait and then reuse its token.
    fetching: Mutex<()>,
}

impl TokenCache {
    fn valid(&self) -> Option<String> {
        let now = Instant::now();
        let current = self.current.lock().ok()?;
        current
            .as_ref()
            .filter(|t| now < t.renew_at)
            .map(|t| t.value.clone())
    }

    /// A valid token, fetching one with `fetch` (value, lifetime) only when none is cached.
    pub async fn get<F, Fut, E>(&self, fetch: F) -> Result<String, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(String, Duration), E>>,
    {
        if let Some(token) = self.valid() {
            return Ok(token);
        }
        let _turn = self.fetching.lock().await;
        if let Some(token) = self.valid() {
            return Ok(token);
        }
        let (value, lifetime) = fetch().await?;
        // Renew a minute early, or at 90% of a short lifetime.
        let early = Duration::from_secs(60).min(lifetime / 10);
        let token = Token {
            value: value.clone(),
            renew_at: Instant::now() + lifetime.saturating_sub(early),
        };
        if let Ok(mut current) = self.current.lock() {
            *current = Some(token);
        }
        Ok(value)
    }

    /// The API refused `rejected`: forget it, unless another caller already replaced it.
    pub fn invalidate(&self, rejected: &str) {
        if let Ok(mut current) = self.current.lock() {
            if current.as_ref().is_some_and(|t| t.value == rejected) {
                *current = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn one_fetch_serves_a_burst_and_renewal_comes_before_expiry() {
        let cache = Arc::new(TokenCache::default());
        let fetches = Arc::new(AtomicUsize::new(0));
        let get = |cache: Arc<TokenCache>, fetches: Arc<AtomicUsize>| async move {
            cache
                .get(|| async {
                    let n = fetches.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok::<_, ()>((format!("t{n}"), Duration::from_secs(86400)))
                })
                .await
        };
        let burst: Vec<_> = (0..100)
            .map(|_| tokio::spawn(get(cache.clone(), fetches.clone())))
            .collect();
        for task in burst {
            assert_eq!(task.await.unwrap(), Ok("t0".to_string()));
        }
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            1,
            "one request for the whole burst"
        );
        tokio::time::advance(Duration::from_secs(86400 - 61)).await;
        assert_eq!(get(cache.clone(), fetches.clone()).await, Ok("t0".into()));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            get(cache.clone(), fetches.clone()).await,
            Ok("t1".into()),
            "renewed a minute before expiry"
        );
        cache.invalidate("stale");
        assert_eq!(
            get(cache.clone(), fetches.clone()).await,
            Ok("t1".into()),
            "only the rejected token is dropped"
        );
        cache.invalidate("t1");
        assert_eq!(get(cache.clone(), fetches.clone()).await, Ok("t2".into()));
    }
}
