//! Softphones with credentials: challenged, admitted with the right password, throttled
//! with wrong ones, and able to REGISTER.

use super::*;
use crate::sip::allow::AllowList;
use crate::sip::auth::{AuthSettings, SipUser, ThrottlePolicy};
use crate::sip::digest::{Algorithm, Challenge};

const URI: &str = "sip:ivr@198.51.100.5";

pub(super) fn with_users(allow: &[&str]) -> UaConfig {
    let allow: Vec<String> = allow.iter().map(|a| a.to_string()).collect();
    UaConfig {
        auth: Some(AuthSettings {
            realm: "ivr".into(),
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            users: vec![SipUser::with_password("alice", "ivr", "open sesame")],
            nonce_lifetime: Duration::from_secs(300),
            throttle: ThrottlePolicy {
                max_failures: 3,
                lock_for: Duration::from_secs(60),
            },
        }),
        allow: AllowList::parse(&allow, false).unwrap(),
        ..config()
    }
}

fn challenge_in(message: &str) -> Challenge {
    assert_eq!(status(message), 401, "{message}");
    Challenge::parse(header(message, "WWW-Authenticate").unwrap()).unwrap()
}

/// An INVITE (a new transaction each time) answering `challenge` with `password`.
fn invite_with(phone: &mut Phone, challenge: &Challenge, password: &str, nc: u32) {
    phone.cseq += 1;
    let creds = challenge.answer("alice", password, "INVITE", URI, nc, "cn");
    let branch = format!("auth{}", phone.cseq);
    let extra = format!("Content-Type: application/sdp\nAuthorization: {creds}\n");
    phone.request("INVITE", &branch, &extra, SDP);
}

fn first_challenge(phone: &mut Phone) -> Challenge {
    phone.invite("inv1", SDP);
    let sent = phone.sent();
    assert_eq!(sent.len(), 1);
    assert!(phone.events().is_empty(), "no call before the credentials");
    challenge_in(&sent[0].1)
}

#[test]
fn a_softphone_is_challenged_then_its_call_is_offered() {
    let mut phone = Phone::new(with_users(&[]));
    let challenge = first_challenge(&mut phone);
    assert_eq!(challenge.algorithm, Algorithm::Sha256);
    invite_with(&mut phone, &challenge, "open sesame", 1);
    assert_eq!(phone.statuses(), [100]);
    assert!(matches!(
        phone.events().as_slice(),
        [UaEvent::Incoming { .. }]
    ));
}

#[test]
fn wrong_passwords_are_refused_then_the_source_is_locked_out() {
    let mut phone = Phone::new(with_users(&[]));
    let challenge = first_challenge(&mut phone);
    for nc in 1..=3 {
        invite_with(&mut phone, &challenge, "guess", nc);
        assert_eq!(phone.statuses(), [403]);
    }
    invite_with(&mut phone, &challenge, "open sesame", 4);
    assert_eq!(phone.statuses(), [403], "locked: even the right password");
    assert!(phone.events().is_empty());
    phone.advance(Duration::from_secs(61));
    let challenge = first_challenge(&mut phone);
    invite_with(&mut phone, &challenge, "open sesame", 1);
    assert_eq!(phone.statuses(), [100], "let in once the lock has passed");
}

#[test]
fn the_allow_list_still_admits_its_addresses_without_credentials() {
    let mut phone = Phone::new(with_users(&["192.0.2.0/24"]));
    phone.invite("inv1", SDP);
    assert_eq!(phone.statuses(), [100]);
    let mut stranger = Phone::new(with_users(&["203.0.113.0/24"]));
    stranger.invite("inv1", SDP);
    assert_eq!(
        stranger.statuses(),
        [401],
        "outside the list: credentials asked for"
    );
}

fn register(phone: &mut Phone, extra: &str) -> String {
    phone.cseq += 1;
    let cseq = phone.cseq;
    let text = format!(
        "REGISTER sip:198.51.100.5 SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKreg{cseq};rport\nFrom: <sip:alice@198.51.100.5>;tag=r\nTo: <sip:alice@198.51.100.5>\nCall-ID: reg-1\nCSeq: {cseq} REGISTER\nContact: <sip:alice@{CALLER};transport=udp>;+sip.instance=\"<urn:uuid:1>\"\n{extra}Content-Length: 0\n\n"
    );
    phone.send(&text);
    let mut sent = phone.sent();
    assert_eq!(sent.len(), 1);
    sent.remove(0).1
}

#[test]
fn a_softphone_registers_and_is_granted_at_most_an_hour() {
    let mut phone = Phone::new(with_users(&[]));
    let challenge = challenge_in(&register(&mut phone, "Expires: 7200\n"));
    let creds = challenge.answer(
        "alice",
        "open sesame",
        "REGISTER",
        "sip:198.51.100.5",
        1,
        "c",
    );
    let ok = register(
        &mut phone,
        &format!("Expires: 7200\nAuthorization: {creds}\n"),
    );
    assert_eq!(status(&ok), 200, "{ok}");
    let contact = header(&ok, "Contact").unwrap();
    assert_eq!(
        contact,
        format!("<sip:alice@{CALLER};transport=udp>;+sip.instance=\"<urn:uuid:1>\";expires=3600")
    );
    let creds = challenge.answer(
        "alice",
        "open sesame",
        "REGISTER",
        "sip:198.51.100.5",
        2,
        "c",
    );
    let brief = register(
        &mut phone,
        &format!("Expires: 10\nAuthorization: {creds}\n"),
    );
    assert_eq!(status(&brief), 423);
    assert_eq!(header(&brief, "Min-Expires"), Some("60"));
    let creds = challenge.answer(
        "alice",
        "open sesame",
        "REGISTER",
        "sip:198.51.100.5",
        3,
        "c",
    );
    let gone = register(&mut phone, &format!("Expires: 0\nAuthorization: {creds}\n"));
    assert_eq!(status(&gone), 200);
    assert_eq!(
        header(&gone, "Contact"),
        None,
        "unregistered: no binding left"
    );
}

#[test]
fn without_users_register_is_not_allowed() {
    let mut phone = Phone::new(config());
    let answer = register(&mut phone, "");
    assert_eq!(status(&answer), 405);
}
