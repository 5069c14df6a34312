//! The Auth0 backend against the local mock tenant: request counts, error mapping on the wire,
//! token caching under a burst, renewal after 401, rate limits, outages, and our lockout
//! stopping a PIN guesser before Auth0's brute-force protection trips.

use crate::support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ivr::config::{Auth0Settings, Lookup, Secret};
use ivr::directory::auth0::Auth0Directory;
use ivr::directory::lockout::{Guarded, InMemoryCounter, Policy};
use ivr::directory::{Directory, Verification};
use support::auth0_mock::{Auth0Mock, MockUser, CLIENT_ID, CLIENT_SECRET, CONNECTION};

fn settings(mock: &Auth0Mock) -> Auth0Settings {
    Auth0Settings {
        domain: mock.url.clone(),
        client_id: CLIENT_ID.into(),
        connection: CONNECTION.into(),
        request_timeout_ms: 1000,
        patience_ms: 3000,
        ..Auth0Settings::default()
    }
}

fn directory(mock: &Auth0Mock) -> Auth0Directory {
    Auth0Directory::new(
        ivr::http::client().unwrap(),
        &settings(mock),
        Secret::new(CLIENT_SECRET.into()),
    )
}

fn assert_clean(mock: &Auth0Mock) {
    let violations = mock.state.violations.lock().unwrap().clone();
    assert!(
        violations.is_empty(),
        "the client broke the contract: {violations:?}"
    );
}

#[tokio::test]
async fn a_login_costs_three_requests_then_two() {
    let mock = Auth0Mock::start();
    let d = directory(&mock);
    match d.verify("12345", "2468", "555").await {
        Verification::Verified(user) => {
            assert_eq!(user.user_id, "auth0|alice");
            assert_eq!(
                user.balance.map(|b| b.to_string()).as_deref(),
                Some("1234.56")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(mock.state.requests(), 3, "token, search, login");
    assert!(matches!(
        d.verify("24680", "1357", "555").await,
        Verification::Verified(_)
    ));
    assert_eq!(
        mock.state.requests(),
        5,
        "the token is cached: search and login only"
    );
    assert_clean(&mock);
}

#[tokio::test]
async fn wrong_pin_and_unknown_account_are_wrong_credentials_and_take_as_long() {
    let mock = Auth0Mock::start();
    let d = directory(&mock);
    let started = Instant::now();
    assert_eq!(
        d.verify("12345", "1111", "555").await,
        Verification::WrongCredentials
    );
    let wrong_pin = started.elapsed();
    let started = Instant::now();
    assert_eq!(
        d.verify("99999", "1111", "555").await,
        Verification::WrongCredentials
    );
    let unknown = started.elapsed();
    assert_eq!(
        mock.state.login_requests.load(Ordering::SeqCst),
        1,
        "no login for an unknown account"
    );
    assert!(
        unknown >= wrong_pin / 2,
        "unknown account answered in {unknown:?}, a wrong PIN in {wrong_pin:?}"
    );
    assert_clean(&mock);
}

#[tokio::test]
async fn hostile_account_numbers_never_reach_a_query() {
    let mock = Auth0Mock::start();
    let d = directory(&mock);
    for hostile in ["1\" OR \"1", "*", "12345678901", ""] {
        assert_eq!(
            d.verify(hostile, "2468", "555").await,
            Verification::WrongCredentials
        );
    }
    assert_eq!(mock.state.requests(), 0);
}

#[tokio::test]
async fn several_users_with_one_account_number_are_refused_not_guessed() {
    let mock = Auth0Mock::start();
    mock.state.users.lock().unwrap().push(MockUser {
        user_id: "auth0|eve".into(),
        email: "eve@example.com".into(),
        account_number: "12345".into(),
        pin: "2468".into(),
        balance: "0".into(),
        mfa: false,
        ivr_greeting: None,
    });
    let d = directory(&mock);
    assert!(matches!(
        d.verify("12345", "2468", "555").await,
        Verification::Unavailable(_)
    ));
    assert_eq!(mock.state.login_requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_burst_of_100_verifications_fetches_one_token() {
    let mock = Auth0Mock::start();
    let d = Arc::new(directory(&mock));
    let burst: Vec<_> = (0..100)
        .map(|_| {
            let d = d.clone();
            tokio::spawn(async move { d.verify("24680", "1357", "555").await })
        })
        .collect();
    for call in burst {
        assert!(matches!(call.await.unwrap(), Verification::Verified(_)));
    }
    assert_eq!(mock.state.token_requests.load(Ordering::SeqCst), 1);
    assert_clean(&mock);
}

#[tokio::test]
async fn a_revoked_token_is_renewed_once_and_the_search_retried() {
    let mock = Auth0Mock::start();
    let d = directory(&mock);
    assert!(matches!(
        d.verify("12345", "2468", "555").await,
        Verification::Verified(_)
    ));
    mock.state.expire_tokens();
    assert!(matches!(
        d.verify("12345", "2468", "555").await,
        Verification::Verified(_)
    ));
    assert_eq!(mock.state.token_requests.load(Ordering::SeqCst), 2);
    assert_eq!(
        mock.state.search_requests.load(Ordering::SeqCst),
        3,
        "one 401, one retry"
    );
}

#[tokio::test]
async fn auth0_brute_force_block_is_locked_and_never_retried() {
    let mock = Auth0Mock::start();
    let d = directory(&mock);
    for _ in 0..10 {
        assert_eq!(
            d.verify("12345", "0000", "555").await,
            Verification::WrongCredentials
        );
    }
    let logins = mock.state.login_requests.load(Ordering::SeqCst);
    assert_eq!(d.verify("12345", "2468", "555").await, Verification::Locked);
    assert_eq!(
        mock.state.login_requests.load(Ordering::SeqCst),
        logins + 1,
        "too_many_attempts is not retried"
    );
}

#[tokio::test]
async fn our_lockout_stops_a_guesser_before_auth0_blocks_the_real_user() {
    let mock = Auth0Mock::start();
    let policy = |max_failures| Policy {
        max_failures,
        window: Duration::from_secs(900),
        lock_for: Duration::from_secs(900),
    };
    let guarded = Guarded::new(
        Arc::new(directory(&mock)),
        Arc::new(InMemoryCounter::new(policy(5))),
        Arc::new(InMemoryCounter::new(policy(10))),
    );
    for _ in 0..5 {
        assert_eq!(
            guarded.verify("12345", "0000", "555").await,
            Verification::WrongCredentials
        );
    }
    for _ in 0..20 {
        assert_eq!(
            guarded.verify("12345", "0000", "555").await,
            Verification::Locked
        );
    }
    assert_eq!(
        mock.state.login_requests.load(Ordering::SeqCst),
        5,
        "guesses 6..25 never reached Auth0"
    );
    // Auth0 itself never blocked Alice: her PIN works once our lock ends (another IVR node, say).
    assert!(matches!(
        directory(&mock).verify("12345", "2468", "556").await,
        Verification::Verified(_)
    ));
}

#[tokio::test]
async fn outages_are_unavailable_never_wrong_credentials() {
    let mock = Auth0Mock::start();
    let d = directory(&mock);
    mock.state.set(|s| s.server_error = true);
    assert!(matches!(
        d.verify("12345", "2468", "555").await,
        Verification::Unavailable(_)
    ));
    mock.state.set(|s| {
        s.server_error = false;
        s.drop_connections = true;
    });
    assert!(matches!(
        d.verify("12345", "2468", "555").await,
        Verification::Unavailable(_)
    ));
    mock.state.set(|s| {
        s.drop_connections = false;
        s.latency = Duration::from_millis(1500);
    });
    let started = Instant::now();
    assert!(matches!(
        d.verify("12345", "2468", "555").await,
        Verification::Unavailable(_)
    ));
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "the 1 s request timeout held"
    );
    let unreachable = Auth0Settings {
        domain: "http://127.0.0.1:9".into(),
        ..settings(&mock)
    };
    let d = Auth0Directory::new(
        ivr::http::client().unwrap(),
        &unreachable,
        Secret::new(CLIENT_SECRET.into()),
    );
    assert!(matches!(
        d.verify("12345", "2468", "555").await,
        Verification::Unavailable(_)
    ));
}

#[tokio::test]
async fn a_slow_tenant_within_the_timeout_still_verifies() {
    let mock = Auth0Mock::start();
    mock.state.set(|s| s.latency = Duration::from_millis(300));
    assert!(matches!(
        directory(&mock).verify("12345", "2468", "555").await,
        Verification::Verified(_)
    ));
}

#[tokio::test]
async fn rate_limits_are_waited_out_within_patience_and_refused_beyond() {
    let mock = Auth0Mock::start();
    let d = directory(&mock);
    // X-RateLimit-Reset is a whole epoch second: "now + 2" is at least one second away
    // wherever in the current second the request falls ("now + 1" may be a few ms away).
    mock.state.set(|s| {
        s.rate_limit_next = 1;
        s.rate_limit_reset_s = 2;
    });
    let started = Instant::now();
    assert!(matches!(
        d.verify("12345", "2468", "555").await,
        Verification::Verified(_)
    ));
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "it waited for the reset"
    );
    mock.state.set(|s| {
        s.rate_limit_next = 1;
        s.rate_limit_reset_s = 30;
    });
    let started = Instant::now();
    assert!(matches!(
        d.verify("12345", "2468", "555").await,
        Verification::Unavailable(_)
    ));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no waiting past the caller's patience"
    );
}

#[tokio::test]
async fn mfa_is_unavailable_and_username_lookup_skips_the_search() {
    let mock = Auth0Mock::start();
    mock.state.users.lock().unwrap()[0].mfa = true;
    assert!(
        matches!(directory(&mock).verify("12345", "2468", "555").await, Verification::Unavailable(m) if m.contains("MFA"))
    );
    mock.state.users.lock().unwrap().push(MockUser {
        user_id: "auth0|carol".into(),
        email: "13579".into(),
        account_number: "13579".into(),
        pin: "8642".into(),
        balance: "5".into(),
        mfa: false,
        ivr_greeting: None,
    });
    let by_username = Auth0Settings {
        lookup: Lookup::Username,
        ..settings(&mock)
    };
    let before = mock.state.requests();
    let d = Auth0Directory::new(
        ivr::http::client().unwrap(),
        &by_username,
        Secret::new(CLIENT_SECRET.into()),
    );
    assert!(matches!(
        d.verify("13579", "8642", "555").await,
        Verification::Verified(_)
    ));
    assert_eq!(mock.state.requests() - before, 1, "the login alone");
}
