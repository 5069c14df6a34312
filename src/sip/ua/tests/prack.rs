//! Reliable provisionals (RFC 3262) on the fake clock: the 180 repeats until its PRACK, a PRACK
//! for something else is 481, and no PRACK at all refuses the INVITE.

use super::*;

/// An INVITE with `tag_header` (`Require: 100rel`, say), answered while ringing: the 180.
fn ringing(phone: &mut Phone, tag_header: &str) -> String {
    phone.answer_invite(tag_header);
    let sent = phone.sent();
    assert_eq!(sent.len(), 2, "100 and 180");
    sent[1].1.clone()
}

fn ringing_config(delay: Duration) -> UaConfig {
    UaConfig {
        answer_delay: delay,
        ..config()
    }
}

#[test]
fn the_180_repeats_until_its_prack_then_the_200_follows() {
    let mut phone = Phone::new(ringing_config(Duration::from_secs(3)));
    let ringing = ringing(&mut phone, "Require: 100rel\n");
    assert_eq!(status(&ringing), 180);
    assert_eq!(header(&ringing, "Require"), Some("100rel"));
    let rseq: u32 = header(&ringing, "RSeq").unwrap().parse().unwrap();
    assert!((1..1 << 31).contains(&rseq));
    assert!(header(&ringing, "Contact").is_some(), "the PRACK's target");
    assert!(header(&ringing, "Allow").unwrap().contains("PRACK"));
    phone.advance(Duration::from_millis(500));
    assert_eq!(phone.sent(), [(CALLER.parse().unwrap(), ringing.clone())]);
    phone.advance(Duration::from_millis(999));
    assert!(phone.sent().is_empty(), "the next one is 1 s later");
    phone.advance(Duration::from_millis(1));
    assert_eq!(phone.statuses(), [180]);

    phone.in_dialog("PRACK", &format!("RAck: {rseq} 1 INVITE\n"), "");
    assert_eq!(phone.statuses(), [200]);
    phone.advance(Duration::from_millis(1499));
    assert!(phone.sent().is_empty(), "acknowledged: no more 180s");
    phone.advance(Duration::from_millis(1));
    assert_eq!(phone.statuses(), [200], "the call is answered on time");
}

#[test]
fn a_prack_for_another_response_is_481_and_the_180_goes_on() {
    let mut phone = Phone::new(ringing_config(Duration::from_secs(3)));
    let ringing = ringing(&mut phone, "Supported: timer, 100rel\n");
    let rseq: u32 = header(&ringing, "RSeq").unwrap().parse().unwrap();
    for rack in [
        format!("RAck: {} 1 INVITE\n", rseq.wrapping_add(1)),
        format!("RAck: {rseq} 7 INVITE\n"),
        "RAck: nonsense\n".to_string(),
        String::new(),
    ] {
        phone.in_dialog("PRACK", &rack, "");
        assert_eq!(phone.statuses(), [481], "{rack:?}");
    }
    phone.advance(Duration::from_millis(500));
    assert_eq!(phone.statuses(), [180]);
}

#[test]
fn no_prack_in_64_t1_refuses_the_invite() {
    let mut phone = Phone::new(ringing_config(Duration::from_secs(60)));
    ringing(&mut phone, "Require: 100rel\n");
    phone.advance(Duration::from_millis(31_999));
    assert_eq!(phone.statuses(), [180; 6]);
    phone.advance(Duration::from_millis(1));
    let sent = phone.sent();
    assert_eq!(status(&sent[0].1), 500);
    assert!(sent[0].1.starts_with("SIP/2.0 500 No PRACK"));
    assert_eq!(phone.events(), [ended(1, EndReason::AckTimeout)]);
    phone.advance(Duration::from_secs(60));
    assert!(
        phone.sent().iter().all(|(_, m)| status(m) == 500),
        "never a 200"
    );
}

#[test]
fn without_100rel_the_180_goes_once() {
    let mut phone = Phone::new(ringing_config(Duration::from_secs(3)));
    let ringing = ringing(&mut phone, "");
    assert_eq!(header(&ringing, "RSeq"), None);
    phone.advance(Duration::from_millis(2999));
    assert!(phone.sent().is_empty());
}
