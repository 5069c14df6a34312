//! Session timers on the fake clock: the caller refreshes or is hung up on, UPDATE refreshes,
//! 422 for a short interval, and our own refreshes when the caller makes us the refresher.

use super::*;

/// A call whose INVITE carried `extra` (session-timer headers), answered and ACKed; the 200.
fn timed_call(phone: &mut Phone, extra: &str) -> (CallRef, String) {
    let call = phone.answer_invite(extra);
    let ok = phone
        .sent()
        .into_iter()
        .map(|(_, m)| m)
        .find(|m| status(m) == 200)
        .expect("a 200");
    phone.ack("");
    phone.events();
    (call, ok)
}

fn bye_sent(phone: &mut Phone) -> bool {
    phone.sent().iter().any(|(_, m)| m.starts_with("BYE "))
}

#[test]
fn a_caller_that_stops_refreshing_is_hung_up_on_before_the_session_expires() {
    let mut phone = Phone::new(config());
    let (call, ok) = timed_call(&mut phone, "Supported: timer\nSession-Expires: 120\n");
    assert_eq!(header(&ok, "Session-Expires"), Some("120;refresher=uac"));
    assert_eq!(header(&ok, "Require"), Some("timer"));
    // 120 s less min(40, 32): the BYE goes at 88 s.
    phone.advance(Duration::from_secs(87));
    assert!(!bye_sent(&mut phone));
    phone.advance(Duration::from_secs(2));
    assert!(bye_sent(&mut phone), "BYE when no refresh came");
    assert_eq!(phone.events(), [ended(call, EndReason::SessionExpired)]);
}

#[test]
fn an_update_refreshes_the_session() {
    let mut phone = Phone::new(config());
    timed_call(&mut phone, "Supported: timer\nSession-Expires: 120\n");
    phone.advance(Duration::from_secs(60));
    phone.in_dialog(
        "UPDATE",
        "Supported: timer\nSession-Expires: 120;refresher=uac\n",
        "",
    );
    let sent = phone.sent();
    let ok = &sent[0].1;
    assert_eq!(status(ok), 200, "{ok}");
    assert_eq!(header(ok, "Session-Expires"), Some("120;refresher=uac"));
    phone.advance(Duration::from_secs(80));
    assert!(!bye_sent(&mut phone), "the refresh moved the deadline");
    phone.advance(Duration::from_secs(10));
    assert!(bye_sent(&mut phone), "60 + 88 s: no second refresh");
    phone.in_dialog("UPDATE", "", "v=0\r\n");
    assert_eq!(phone.statuses(), [481], "the dialog is gone");
}

#[test]
fn an_update_with_an_offer_is_refused_and_a_short_interval_gets_422() {
    let mut phone = Phone::new(config());
    timed_call(&mut phone, "Supported: timer\n");
    phone.in_dialog("UPDATE", "Content-Type: application/sdp\n", SDP);
    assert_eq!(phone.statuses(), [488]);
    phone.in_dialog("UPDATE", "Session-Expires: 30\n", "");
    let sent = phone.sent();
    assert_eq!(status(&sent[0].1), 422);
    assert_eq!(header(&sent[0].1, "Min-SE"), Some("90"));
    let mut fresh = Phone::new(config());
    fresh.request(
        "INVITE",
        "short",
        "Supported: timer\nSession-Expires: 30\n",
        "",
    );
    assert_eq!(fresh.statuses(), [422]);
    assert!(fresh.events().is_empty(), "no call for a 422");
}

#[test]
fn require_timer_is_accepted_and_other_extensions_still_get_420() {
    let mut phone = Phone::new(config());
    phone.request(
        "INVITE",
        "req",
        "Require: timer\nSession-Expires: 600\n",
        "",
    );
    assert_eq!(phone.statuses(), [100]);
    let mut other = Phone::new(config());
    other.request("INVITE", "rel", "Require: 100rel, timer, foo\n", "");
    let sent = other.sent();
    assert_eq!(status(&sent[0].1), 420);
    assert_eq!(header(&sent[0].1, "Unsupported"), Some("foo"));
}

#[test]
fn made_the_refresher_we_send_updates_and_a_refused_one_ends_the_call() {
    let mut phone = Phone::new(config());
    let (call, ok) = timed_call(
        &mut phone,
        "Supported: timer\nSession-Expires: 200;refresher=uas\n",
    );
    assert_eq!(header(&ok, "Session-Expires"), Some("200;refresher=uas"));
    phone.advance(Duration::from_secs(101));
    let sent = phone.sent();
    let update = &sent
        .iter()
        .find(|(_, m)| m.starts_with("UPDATE "))
        .expect("our refresh")
        .1;
    assert_eq!(header(update, "Session-Expires"), Some("200;refresher=uas"));
    reply(&mut phone, update, "200 OK", "");
    phone.advance(Duration::from_secs(99));
    assert!(
        phone.sent().iter().all(|(_, m)| !m.starts_with("UPDATE ")),
        "next at +100 s"
    );
    phone.advance(Duration::from_secs(2));
    let sent = phone.sent();
    let second = &sent
        .iter()
        .find(|(_, m)| m.starts_with("UPDATE "))
        .expect("second refresh")
        .1;
    reply(
        &mut phone,
        second,
        "481 Call/Transaction Does Not Exist",
        "",
    );
    assert!(bye_sent(&mut phone));
    assert_eq!(phone.events(), [ended(call, EndReason::SessionExpired)]);
}
