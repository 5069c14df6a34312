//! The same behaviour from both backends: the shipped local directory and Auth0 (the mock tenant
//! holds the same demo accounts), each behind our lockout as the server builds them.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use ivr::config::{Auth0Settings, Secret};
use ivr::directory::auth0::Auth0Directory;
use ivr::directory::local::LocalDirectory;
use ivr::directory::lockout::{Guarded, InMemoryCounter, Policy};
use ivr::directory::pin_key::PinKey;
use ivr::directory::{Directory, Verification};
use support::auth0_mock::{Auth0Mock, CLIENT_ID, CLIENT_SECRET, CONNECTION};

fn guarded(backend: Arc<dyn Directory>) -> Guarded {
    let policy = |max_failures| Policy {
        max_failures,
        window: Duration::from_secs(900),
        lock_for: Duration::from_secs(900),
    };
    Guarded::new(
        backend,
        Arc::new(InMemoryCounter::new(policy(5))),
        Arc::new(InMemoryCounter::new(policy(10))),
    )
}

async fn behaves(directory: Guarded, name: &str) {
    match directory.verify("12345", "2468", "555").await {
        Verification::Verified(user) => {
            assert_eq!(
                user.balance.map(|b| b.to_string()).as_deref(),
                Some("1234.56"),
                "{name}"
            )
        }
        other => panic!("{name}: {other:?}"),
    }
    assert_eq!(
        directory.verify("12345", "1111", "555").await,
        Verification::WrongCredentials,
        "{name}"
    );
    assert_eq!(
        directory.verify("99999", "2468", "555").await,
        Verification::WrongCredentials,
        "{name}"
    );
    assert_eq!(
        directory.verify("1\"*", "2468", "555").await,
        Verification::WrongCredentials,
        "{name}"
    );
    for _ in 0..5 {
        assert_eq!(
            directory.verify("24680", "0000", "777").await,
            Verification::WrongCredentials,
            "{name}"
        );
    }
    assert_eq!(
        directory.verify("24680", "1357", "777").await,
        Verification::Locked,
        "{name}: five failures lock"
    );
    assert!(
        matches!(
            directory.verify("12345", "2468", "888").await,
            Verification::Verified(_)
        ),
        "{name}: others go on"
    );
}

#[tokio::test]
async fn local_and_auth0_backends_behave_alike() {
    // A copy: a good login replaces the legacy hash in the file.
    let dir = support::TempDir::new("directories");
    let users = dir.0.join("users.toml");
    std::fs::copy(
        support::project_dir().join("sip-config/users.example.toml"),
        &users,
    )
    .unwrap();
    let key = Arc::new(PinKey::load(None, &dir.0.join("pin.key")).unwrap());
    behaves(
        guarded(Arc::new(LocalDirectory::load(&users, 0, key).unwrap())),
        "local",
    )
    .await;
    let mock = Auth0Mock::start();
    let settings = Auth0Settings {
        domain: mock.url.clone(),
        client_id: CLIENT_ID.into(),
        connection: CONNECTION.into(),
        ..Auth0Settings::default()
    };
    let auth0 = Auth0Directory::new(
        ivr::http::client().unwrap(),
        &settings,
        Secret::new(CLIENT_SECRET.into()),
    );
    behaves(guarded(Arc::new(auth0)), "auth0").await;
}
