//! The circuit breaker over every account at once. Per-account and per-caller limits stop a
//! guesser who keeps to one account or one address; a campaign that tries one PIN on each of
//! thousands of accounts from thousands of addresses passes both. Wrong PINs across all
//! accounts are counted over the last minute: past the threshold every login waits before the
//! backend is asked (a guesser's rate drops to nothing, a real caller waits two seconds) and
//! `ivr_lockout_breaker_open` says so, for an alert.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::metrics::METRICS;

const MINUTE: Duration = Duration::from_secs(60);

pub struct Breaker {
    per_minute: usize,
    delay: Duration,
    wrong: Mutex<VecDeque<Instant>>,
}

impl Breaker {
    /// Open past `per_minute` wrong PINs in the last minute; each login then waits `delay`.
    pub fn new(per_minute: usize, delay: Duration) -> Breaker {
        Breaker {
            per_minute,
            delay,
            wrong: Mutex::new(VecDeque::new()),
        }
    }

    /// How long a login waits before the backend is asked: nothing while closed.
    pub fn wait(&self) -> Duration {
        if self.count(false) {
            self.delay
        } else {
            Duration::ZERO
        }
    }

    /// Counts a wrong PIN.
    pub fn wrong_pin(&self) {
        self.count(true);
    }

    /// Forgets what is over a minute old, adds a wrong PIN when given one, and says whether the
    /// breaker is open (and shows it in the metric).
    fn count(&self, wrong_pin: bool) -> bool {
        let now = Instant::now();
        let open = self.wrong.lock().is_ok_and(|mut wrong| {
            while wrong
                .front()
                .is_some_and(|&t| now.saturating_duration_since(t) >= MINUTE)
            {
                wrong.pop_front();
            }
            if wrong_pin {
                wrong.push_back(now);
                // Past the threshold only the count matters: hold no more than that.
                if wrong.len() > self.per_minute + 1 {
                    wrong.pop_front();
                }
            }
            wrong.len() > self.per_minute
        });
        let was = METRICS.lockout_breaker_open.set(i64::from(open)) == 1;
        if open != was {
            if open {
                tracing::warn!(
                    per_minute = self.per_minute,
                    "wrong PINs across all accounts past the limit: every login now waits"
                );
            } else {
                tracing::info!("wrong PINs across all accounts back under the limit");
            }
        }
        open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn past_the_minutes_wrong_pins_every_login_waits_until_they_age_out() {
        let breaker = Breaker::new(5, Duration::from_secs(2));
        for _ in 0..5 {
            breaker.wrong_pin();
        }
        assert_eq!(
            breaker.wait(),
            Duration::ZERO,
            "five is the limit, not past it"
        );
        breaker.wrong_pin();
        assert_eq!(breaker.wait(), Duration::from_secs(2));
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(breaker.wait(), Duration::ZERO, "a quiet minute closes it");
    }
}
