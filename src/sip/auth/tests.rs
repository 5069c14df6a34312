use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::*;
use crate::sip::digest::{Algorithm, Challenge};
use crate::sip::message::{self, Message};

const REALM: &str = "ivr";

fn authenticator() -> Authenticator {
    let settings = AuthSettings {
        realm: REALM.into(),
        algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
        users: vec![
            SipUser::with_password("alice", REALM, "correct horse"),
            SipUser {
                username: "bob".into(),
                ha1_md5: Some(Algorithm::Md5.hash("bob:ivr:hunter2")),
                ha1_sha256: None,
            },
        ],
        nonce_lifetime: Duration::from_secs(60),
        throttle: ThrottlePolicy {
            max_failures: 3,
            lock_for: Duration::from_secs(300),
        },
    };
    Authenticator::new(settings, [3; 32])
}

fn register(credentials: Option<&str>) -> Request {
    let auth = credentials.map_or(String::new(), |c| format!("Authorization: {c}\r\n"));
    let text = format!(
        "REGISTER sip:ivr.example SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\nFrom: <sip:alice@ivr.example>;tag=a\r\nTo: <sip:alice@ivr.example>\r\nCall-ID: c1\r\nCSeq: 2 REGISTER\r\nContact: <sip:alice@192.0.2.1>\r\n{auth}Content-Length: 0\r\n\r\n"
    );
    let source: SocketAddr = "192.0.2.1:5060".parse().unwrap();
    match message::parse(text.as_bytes(), source) {
        Ok(Message::Request(r)) => *r,
        _ => panic!("test request parses"),
    }
}

fn challenges(outcome: Outcome) -> Vec<Challenge> {
    match outcome {
        Outcome::Challenge { challenges } => challenges
            .iter()
            .map(|c| Challenge::parse(c).unwrap())
            .collect(),
        other => panic!("expected a challenge, got {other:?}"),
    }
}

fn answer(c: &Challenge, user: &str, password: &str, nc: u32) -> Request {
    let creds = c.answer(user, password, "REGISTER", "sip:ivr.example", nc, "cn");
    register(Some(&creds))
}

const ALICE: &str = "192.0.2.1";

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn the_right_password_gets_through_with_either_algorithm() {
    let t0 = Instant::now();
    let mut auth = authenticator();
    let offered = challenges(auth.check(&register(None), ip(ALICE), t0));
    assert_eq!(
        offered.iter().map(|c| c.algorithm).collect::<Vec<_>>(),
        [Algorithm::Sha256, Algorithm::Md5],
        "SHA-256 first"
    );
    assert!(offered
        .iter()
        .all(|c| c.qop_auth && !c.stale && c.realm == REALM));
    // Both challenges carry one nonce, so its count goes on from one to the next.
    for (nc, c) in (1..).zip(&offered) {
        let outcome = auth.check(&answer(c, "alice", "correct horse", nc), ip(ALICE), t0);
        assert_eq!(
            outcome,
            Outcome::Authenticated {
                username: "alice".into(),
                algorithm: c.algorithm,
            }
        );
    }
    // Bob has only an MD5 HA1: his SHA-256 answer cannot be checked, so it fails.
    let ok = auth.check(&answer(&offered[1], "bob", "hunter2", 3), ip(ALICE), t0);
    assert_eq!(ok.as_str(), "ok");
    let sha = auth.check(&answer(&offered[0], "bob", "hunter2", 4), ip(ALICE), t0);
    assert_eq!(sha, Outcome::Refused);
}

#[test]
fn a_replayed_nc_or_an_old_nonce_gets_a_stale_challenge_not_a_failure() {
    let t0 = Instant::now();
    let mut auth = authenticator();
    let c = challenges(auth.check(&register(None), ip(ALICE), t0)).remove(0);
    let first = answer(&c, "alice", "correct horse", 1);
    assert_eq!(auth.check(&first, ip(ALICE), t0).as_str(), "ok");
    for _ in 0..5 {
        let again = challenges(auth.check(&first, ip(ALICE), t0));
        assert!(again.iter().all(|c| c.stale), "a replay is re-challenged");
    }
    let next = answer(&c, "alice", "correct horse", 2);
    assert_eq!(
        auth.check(&next, ip(ALICE), t0).as_str(),
        "ok",
        "replays did not lock"
    );
    let later = t0 + Duration::from_secs(61);
    let old = answer(&c, "alice", "correct horse", 3);
    let fresh = challenges(auth.check(&old, ip(ALICE), later));
    assert!(fresh[0].stale && fresh[0].nonce != c.nonce);
    let retried = answer(&fresh[0], "alice", "correct horse", 1);
    assert_eq!(auth.check(&retried, ip(ALICE), later).as_str(), "ok");
}

#[test]
fn a_nonce_from_another_address_is_not_accepted() {
    let t0 = Instant::now();
    let mut auth = authenticator();
    let c = challenges(auth.check(&register(None), ip(ALICE), t0)).remove(0);
    let stolen = answer(&c, "alice", "correct horse", 1);
    let outcome = auth.check(&stolen, ip("203.0.113.5"), t0);
    assert!(matches!(outcome, Outcome::Challenge { .. }), "{outcome:?}");
}

#[test]
fn guessing_locks_the_source_and_unknown_users_look_like_wrong_passwords() {
    let t0 = Instant::now();
    let mut auth = authenticator();
    let c = challenges(auth.check(&register(None), ip(ALICE), t0)).remove(0);
    let unknown = auth.check(&answer(&c, "mallory", "x", 1), ip(ALICE), t0);
    let wrong = auth.check(&answer(&c, "alice", "wrong", 2), ip(ALICE), t0);
    assert_eq!(
        (unknown.clone(), wrong),
        (Outcome::Refused, Outcome::Refused)
    );
    let third = auth.check(&answer(&c, "alice", "guess", 3), ip(ALICE), t0);
    assert_eq!(third, Outcome::Locked);
    // Locked: even the right password is refused unread, but new challenges still come.
    let right = auth.check(&answer(&c, "alice", "correct horse", 4), ip(ALICE), t0);
    assert_eq!(right, Outcome::Locked);
    assert!(matches!(
        auth.check(&register(None), ip(ALICE), t0),
        Outcome::Challenge { .. }
    ));
    // Another source is not held back by the guesser.
    let elsewhere = "192.0.2.77";
    let c2 = challenges(auth.check(&register(None), ip(elsewhere), t0)).remove(0);
    let ok = auth.check(&answer(&c2, "alice", "correct horse", 1), ip(elsewhere), t0);
    assert_eq!(ok.as_str(), "ok");
    // Once the period has passed, the right password works again.
    let later = t0 + Duration::from_secs(301);
    let c = challenges(auth.check(&register(None), ip(ALICE), later)).remove(0);
    let ok = auth.check(&answer(&c, "alice", "correct horse", 1), ip(ALICE), later);
    assert_eq!(ok.as_str(), "ok");
}

#[test]
fn credentials_for_another_uri_or_realm_do_not_count() {
    let t0 = Instant::now();
    let mut auth = authenticator();
    let c = challenges(auth.check(&register(None), ip(ALICE), t0)).remove(0);
    let other_uri = c.answer(
        "alice",
        "correct horse",
        "REGISTER",
        "sip:elsewhere",
        1,
        "cn",
    );
    assert_eq!(
        auth.check(&register(Some(&other_uri)), ip(ALICE), t0),
        Outcome::Refused
    );
    let mut other_realm = c.clone();
    other_realm.realm = "provider".into();
    let creds = other_realm.answer(
        "alice",
        "correct horse",
        "REGISTER",
        "sip:ivr.example",
        2,
        "cn",
    );
    assert!(matches!(
        auth.check(&register(Some(&creds)), ip(ALICE), t0),
        Outcome::Challenge { .. }
    ));
}

#[test]
fn an_algorithm_we_did_not_offer_is_challenged_again_not_checked() {
    let t0 = Instant::now();
    let mut auth = authenticator();
    let mut offered = challenges(auth.check(&register(None), ip(ALICE), t0)).remove(1);
    assert_eq!(offered.algorithm, Algorithm::Md5);
    // The client names MD5-sess, which we never offered, and answers it correctly.
    offered.algorithm = Algorithm::Md5Sess;
    let outcome = auth.check(
        &answer(&offered, "alice", "correct horse", 1),
        ip(ALICE),
        t0,
    );
    assert!(
        matches!(outcome, Outcome::Challenge { .. }),
        "a client may not choose its own algorithm: {outcome:?}"
    );
}
