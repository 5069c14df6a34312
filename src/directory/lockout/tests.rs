//! The lockout on tokio's paused clock: counting, the race it closes, the breaker.

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
        assert_eq!(c.try_attempt("12345"), Some(false));
    }
    assert!(!c.locked("12345"));
    assert_eq!(
        c.try_attempt("12345"),
        Some(true),
        "the fifth failure locks"
    );
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
        c.try_attempt("12345");
    }
    tokio::time::advance(Duration::from_secs(15 * 60)).await;
    assert_eq!(
        c.try_attempt("12345"),
        Some(false),
        "the old four have left the window"
    );
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

/// A backend that takes 1.5 s to answer, as Auth0 can.
struct Slow(Verification, std::sync::atomic::AtomicUsize);

impl Directory for Slow {
    fn verify<'a>(&'a self, _: &'a str, _: &'a str, _: &'a str) -> VerifyFuture<'a> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let v = self.0.clone();
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            v
        })
    }
}

fn guarded(backend: Arc<dyn Directory>) -> Arc<Guarded> {
    Arc::new(Guarded::new(
        backend,
        Arc::new(InMemoryCounter::new(policy())),
        Arc::new(InMemoryCounter::new(Policy {
            max_failures: 20,
            ..policy()
        })),
    ))
}

#[tokio::test(start_paused = true)]
async fn twenty_wrong_pins_keyed_at_once_reach_a_slow_backend_five_times() {
    let backend = Arc::new(Slow(Verification::WrongCredentials, Default::default()));
    let guarded = guarded(backend.clone());
    let tries: Vec<_> = (0..20)
        .map(|i| {
            let guarded = guarded.clone();
            tokio::spawn(async move { guarded.verify("12345", &format!("{i:04}"), "555").await })
        })
        .collect();
    let mut wrong = 0;
    for attempt in tries {
        match attempt.await.unwrap() {
            Verification::WrongCredentials => wrong += 1,
            other => assert_eq!(other, Verification::Locked),
        }
    }
    assert_eq!(wrong, 5);
    assert_eq!(backend.1.load(std::sync::atomic::Ordering::SeqCst), 5);
}

#[tokio::test(start_paused = true)]
async fn outages_and_good_pins_use_up_no_guesses() {
    let outage = Arc::new(Slow(
        Verification::Unavailable("down".into()),
        Default::default(),
    ));
    let accounts = Arc::new(InMemoryCounter::new(policy()));
    let callers = Arc::new(InMemoryCounter::new(policy()));
    let down = Guarded::new(outage, accounts.clone(), callers.clone());
    for _ in 0..10 {
        assert!(matches!(
            down.verify("12345", "0000", "555").await,
            Verification::Unavailable(_)
        ));
    }
    let wrong = Guarded::new(
        Arc::new(Fixed(Verification::WrongCredentials, Default::default())),
        accounts.clone(),
        callers.clone(),
    );
    for _ in 0..4 {
        assert_eq!(
            wrong.verify("12345", "0000", "555").await,
            Verification::WrongCredentials,
            "the outage counted nothing"
        );
    }
    assert!(!accounts.locked("12345") && !callers.locked("555"));
}

#[tokio::test(start_paused = true)]
async fn one_guess_on_each_of_many_accounts_from_many_callers_trips_the_breaker() {
    let backend = Arc::new(Fixed(Verification::WrongCredentials, Default::default()));
    let breaker = Arc::new(Breaker::new(5, Duration::from_secs(2)));
    let guarded = Guarded::new(
        backend,
        Arc::new(InMemoryCounter::new(policy())),
        Arc::new(InMemoryCounter::new(policy())),
    )
    .with_breaker(breaker);
    let login = |n: u32| {
        let guarded = &guarded;
        async move {
            let start = Instant::now();
            let answer = guarded
                .verify(&format!("{n}"), "0000", &format!("net:10.0.{n}.1"))
                .await;
            assert_eq!(answer, Verification::WrongCredentials);
            start.elapsed()
        }
    };
    for n in 0..6 {
        assert_eq!(login(n).await, Duration::ZERO, "login {n}");
    }
    assert_eq!(
        login(6).await,
        Duration::from_secs(2),
        "past 5 a minute, every login waits"
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
