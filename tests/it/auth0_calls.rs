//! Phone calls through the built `ivr` with the Auth0 backend pointed at the mock tenant, keyed
//! by SIPp: every verification outcome ends with its prompt and a BYE from the server, and no
//! PIN, secret or token reaches the log at any level.

use crate::support;

use std::time::Duration;

use support::auth0_mock::{Auth0Mock, CLIENT_SECRET};
use support::keys::{is_root, pcap_scenario};
use support::{assert_sipp_file_ok, Ivr, TempDir};

fn ivr_with_auth0(tag: &str, mock: &Auth0Mock, log_level: &str) -> Ivr {
    ivr_with_auth0_and(tag, mock, log_level, &[])
}

fn ivr_with_auth0_and(tag: &str, mock: &Auth0Mock, log_level: &str, extra: &[(&str, &str)]) -> Ivr {
    assert!(
        is_root(),
        "pcap replay needs a raw socket: run the tests as root (see README)"
    );
    let mut env = mock.ivr_env();
    env.push(("RUST_LOG", log_level));
    env.extend_from_slice(extra);
    Ivr::start(tag, &env)
}

fn call(ivr: &Ivr, tag: &str, keys: &str) {
    let dir = TempDir::new(tag);
    assert_sipp_file_ok(ivr, &pcap_scenario(&dir, keys), &[]);
    ivr.wait_for_log("reason=\"server-bye\"", Duration::from_secs(5));
}

#[test]
fn good_login_wrong_pin_and_unknown_account() {
    let mock = Auth0Mock::start();
    let ivr = ivr_with_auth0("a0-good", &mock, "debug");
    call(&ivr, "a0-good", "12345#2468#19");
    ivr.wait_for_line(
        &["caller verified", "user=auth0|alice"],
        Duration::from_secs(1),
    );
    ivr.wait_for_line(&["menu option", "key=1"], Duration::from_secs(1));
    assert_eq!(mock.state.requests(), 3, "token, search, login");
    call(&ivr, "a0-wrong", "12345#1111#");
    ivr.wait_for_line(
        &["wrong account number or PIN", "account=***45"],
        Duration::from_secs(1),
    );
    call(&ivr, "a0-unknown", "99999#1111#");
    ivr.wait_for_line(
        &["wrong account number or PIN", "account=***99"],
        Duration::from_secs(1),
    );
    assert_eq!(
        mock.state
            .token_requests
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

#[test]
fn an_account_auth0_blocked_hears_the_locked_prompt() {
    let mock = Auth0Mock::start();
    mock.state.block("alice@example.com");
    let ivr = ivr_with_auth0("a0-locked", &mock, "debug");
    call(&ivr, "a0-locked", "12345#2468#");
    ivr.wait_for_line(&["account locked", "account=***45"], Duration::from_secs(1));
}

#[test]
fn auth0_down_is_the_outage_prompt_and_slow_auth0_is_waited_for() {
    let mock = Auth0Mock::start();
    mock.state.set(|s| s.server_error = true);
    let http = support::free_port();
    let listen = format!("127.0.0.1:{http}");
    let ivr = ivr_with_auth0_and("a0-down", &mock, "debug", &[("IVR_HTTP__LISTEN", &listen)]);
    assert_eq!(support::http::get(http, "/health/ready").0, 200);
    call(&ivr, "a0-down", "12345#2468#");
    assert_eq!(
        support::http::get(http, "/health/ready"),
        (503, "{\"status\":\"directory unreachable\"}".into())
    );
    ivr.wait_for_line(&["directory unavailable", "503"], Duration::from_secs(1));
    assert_eq!(
        ivr.count("wrong account number or PIN"),
        0,
        "an outage is never a wrong PIN"
    );
    mock.state.set(|s| {
        s.server_error = false;
        s.latency = Duration::from_millis(1500);
    });
    call(&ivr, "a0-slow", "12345#2468#9");
    ivr.wait_for_line(
        &["caller verified", "user=auth0|alice"],
        Duration::from_secs(1),
    );
    assert_eq!(
        support::http::get(http, "/health/ready").0,
        200,
        "Auth0 answers again"
    );
}

#[test]
fn no_pin_secret_or_token_is_ever_logged() {
    let mock = Auth0Mock::start();
    let ivr = ivr_with_auth0("a0-logs", &mock, "trace");
    call(&ivr, "a0-logs", "24680#1357#9");
    ivr.wait_for_line(
        &["caller verified", "user=auth0|bob"],
        Duration::from_secs(1),
    );
    let log = ivr.log_text();
    assert!(
        log.matches(" TRACE ").count() >= 5,
        "trace logging (the HTTP client's too) was on"
    );
    assert!(!log.contains(CLIENT_SECRET), "the client secret was logged");
    for token in mock.state.issued_tokens.lock().unwrap().iter() {
        assert!(!log.contains(token.as_str()), "a token was logged");
    }
    let leaks = ivr.lines_with_pin("1357");
    assert!(leaks.is_empty(), "the PIN appears in the log: {leaks:?}");
    assert!(
        !log.to_lowercase().contains("password="),
        "a form body was logged"
    );
    let pin_keys = log
        .lines()
        .filter(|l| l.contains(" key ") && l.contains("digit=*"))
        .count();
    assert_eq!(pin_keys, 5, "the PIN's four keys and its # are logged as *");
}
