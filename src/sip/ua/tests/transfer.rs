//! Blind transfer by REFER (RFC 3515) on the fake clock: accepted and followed to its end by
//! NOTIFY, refused, unanswered, and stray NOTIFYs.

use super::*;
use crate::sip::refer::TransferOutcome;

const TARGET: &str = "sip:agents@pbx.example";

/// A confirmed call asked to transfer: the REFER sent.
fn referred(phone: &mut Phone) -> (CallRef, String) {
    let call = phone.confirmed_call();
    phone.command(UaCommand::Transfer {
        call,
        target: TARGET.into(),
    });
    let sent = phone.sent();
    assert_eq!(sent.len(), 1);
    (call, sent[0].1.clone())
}

fn notify(phone: &mut Phone, sipfrag: &str) {
    phone.in_dialog(
        "NOTIFY",
        "Event: refer\nSubscription-State: active;expires=60\nContent-Type: message/sipfrag\n",
        sipfrag,
    );
}

fn transferred(call: CallRef, outcome: TransferOutcome) -> UaEvent {
    UaEvent::Transferred { call, outcome }
}

#[test]
fn an_accepted_refer_is_followed_by_notify_to_the_targets_answer() {
    let mut phone = Phone::new(config());
    let (call, refer) = referred(&mut phone);
    assert!(
        refer.starts_with("REFER sip:alice@192.0.2.1:5070 SIP/2.0\r\n"),
        "{refer}"
    );
    assert_eq!(header(&refer, "Refer-To"), Some("<sip:agents@pbx.example>"));
    assert!(header(&refer, "Referred-By")
        .unwrap()
        .contains("sip:ivr@198.51.100.5"));
    assert!(header(&refer, "CSeq").unwrap().ends_with(" REFER"));
    reply(&mut phone, &refer, "202 Accepted", "");
    notify(&mut phone, "SIP/2.0 100 Trying\r\n");
    assert_eq!(phone.statuses(), [200]);
    notify(&mut phone, "SIP/2.0 180 Ringing\r\n");
    assert_eq!(phone.statuses(), [200]);
    assert!(phone.events().is_empty(), "still ringing");
    notify(&mut phone, "SIP/2.0 200 OK\r\n");
    assert_eq!(phone.statuses(), [200]);
    assert_eq!(
        phone.events(),
        [transferred(call, TransferOutcome::Succeeded)]
    );
    // Over: a late NOTIFY names no transfer.
    notify(&mut phone, "SIP/2.0 200 OK\r\n");
    assert_eq!(phone.statuses(), [481]);
}

#[test]
fn a_refused_refer_or_a_busy_target_fails_the_transfer_and_the_call_goes_on() {
    let mut phone = Phone::new(config());
    let (call, refer) = referred(&mut phone);
    reply(&mut phone, &refer, "405 Method Not Allowed", "");
    assert_eq!(
        phone.events(),
        [transferred(call, TransferOutcome::Failed { status: 405 })]
    );
    // A second try: the target is busy.
    phone.command(UaCommand::Transfer {
        call,
        target: TARGET.into(),
    });
    let refer = phone.sent().remove(0).1;
    reply(&mut phone, &refer, "202 Accepted", "");
    notify(&mut phone, "SIP/2.0 486 Busy Here\r\n");
    assert_eq!(phone.statuses(), [200]);
    assert_eq!(
        phone.events(),
        [transferred(call, TransferOutcome::Failed { status: 486 })]
    );
    phone.in_dialog("BYE", "", "");
    assert_eq!(phone.statuses(), [200]);
}

#[test]
fn silence_fails_the_transfer_with_408() {
    let mut phone = Phone::new(config());
    let (call, _) = referred(&mut phone);
    phone.advance(Duration::from_millis(31_999));
    assert!(phone.sent().iter().all(|(_, m)| m.starts_with("REFER ")));
    assert!(phone.events().is_empty());
    phone.advance(Duration::from_millis(1));
    assert_eq!(
        phone.events(),
        [transferred(call, TransferOutcome::Failed { status: 408 })]
    );
}

#[test]
fn strays_and_junk_get_481_and_400_and_bad_targets_fail_at_once() {
    let mut phone = Phone::new(config());
    let call = phone.confirmed_call();
    notify(&mut phone, "SIP/2.0 200 OK\r\n");
    assert_eq!(phone.statuses(), [481], "no transfer asked for");
    phone.command(UaCommand::Transfer {
        call,
        target: "sip:x@y>\r\nEvil: 1".into(),
    });
    assert!(
        phone.sent().is_empty(),
        "no REFER with a header in its target"
    );
    assert_eq!(
        phone.events(),
        [transferred(call, TransferOutcome::Failed { status: 500 })]
    );
    phone.command(UaCommand::Transfer {
        call,
        target: TARGET.into(),
    });
    phone.sent();
    notify(&mut phone, "not a status line");
    assert_eq!(phone.statuses(), [400]);
    // The caller hangs up mid-transfer: no outcome for a call that is gone.
    phone.in_dialog("BYE", "", "");
    phone.advance(Duration::from_secs(60));
    assert_eq!(phone.events(), [ended(call, EndReason::CallerHungUp)]);
}
