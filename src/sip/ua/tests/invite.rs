//! The INVITE side: the 200 and its ACK, CANCEL, ringing, hanging up, admission.

use super::*;

#[test]
fn the_200_is_retransmitted_on_the_rfc_schedule_until_the_ack() {
    let mut phone = Phone::new(config());
    phone.invite("inv1", SDP);
    let events: [UaEvent; 1] = phone.events().try_into().unwrap();
    let [UaEvent::Incoming { call, offer, .. }] = events else {
        panic!("one Incoming, got {events:?}")
    };
    assert_eq!(offer.as_deref(), Some(SDP.as_bytes()));
    phone.command(UaCommand::Answer {
        call,
        sdp: SDP.into(),
    });
    assert_eq!(phone.statuses(), [100, 200]);
    let start = phone.now;
    let mut resent = Vec::new();
    for _ in 0..35 {
        phone.advance(Duration::from_millis(100));
        if phone.statuses() == [200] {
            resent.push((phone.now - start).as_millis());
        }
    }
    assert_eq!(resent, [500, 1500, 3500], "T1, then doubling (§17.2.1)");
    phone.ack("");
    assert_eq!(phone.events(), [UaEvent::Confirmed { call, answer: None }]);
    phone.advance(Duration::from_secs(60));
    assert!(phone.sent().is_empty(), "no retransmission after the ACK");
}

#[test]
fn without_an_ack_the_media_goes_at_the_wait_and_bye_at_timer_h() {
    let mut phone = Phone::new(config());
    let (call, _) = phone.answer_new_call();
    phone.advance(Duration::from_millis(3999));
    assert!(phone.events().is_empty());
    phone.advance(Duration::from_millis(1));
    assert_eq!(phone.events(), [ended(call, EndReason::AckTimeout)]);
    // 64·T1 after the 200: Timer H, and the dialog is torn down with a BYE.
    phone.advance(Duration::from_millis(27_999));
    assert!(phone.sent().iter().all(|(_, m)| status(m) == 200));
    phone.advance(Duration::from_millis(1));
    let sent = phone.sent();
    assert!(sent.iter().any(|(_, m)| m.starts_with("BYE ")), "{sent:?}");
    assert!(phone.events().is_empty(), "Ended was told once");
}

#[test]
fn a_late_ack_after_the_media_went_gets_a_bye() {
    let mut phone = Phone::new(config());
    phone.answer_new_call();
    phone.advance(Duration::from_secs(5));
    assert_eq!(phone.events(), [ended(1, EndReason::AckTimeout)]);
    phone.sent();
    phone.ack("");
    assert!(
        phone.events().is_empty(),
        "no Confirmed for a released call"
    );
    let sent = phone.sent();
    assert!(sent.iter().any(|(_, m)| m.starts_with("BYE ")), "{sent:?}");
}

#[test]
fn an_ack_without_our_tag_confirms_nothing() {
    let mut phone = Phone::new(config());
    phone.answer_new_call();
    let tagged = std::mem::replace(&mut phone.to, "<sip:ivr@198.51.100.5>".into());
    // A blind forger: the INVITE's own branch, no To tag.
    phone.request("ACK", "inv1", "", "");
    phone.to = "<sip:ivr@198.51.100.5>;tag=guess".into();
    phone.ack("");
    assert!(phone.events().is_empty());
    phone.to = tagged;
    phone.ack("");
    assert_eq!(
        phone.events(),
        [UaEvent::Confirmed {
            call: 1,
            answer: None
        }]
    );
}

#[test]
fn cancel_before_the_answer_is_487_and_after_it_changes_nothing() {
    let mut phone = Phone::new(config());
    phone.invite("inv1", SDP);
    phone.events();
    phone.sent();
    phone.request("CANCEL", "inv1", "", "");
    let sent = phone.sent();
    let by_method: Vec<_> = sent
        .iter()
        .map(|(_, m)| (status(m), header(m, "CSeq").unwrap().to_string()))
        .collect();
    assert_eq!(
        by_method,
        [(200, "1 CANCEL".into()), (487, "1 INVITE".into())]
    );
    assert_eq!(phone.events(), [ended(1, EndReason::Cancelled)]);

    let mut phone = Phone::new(config());
    let call = phone.confirmed_call();
    phone.request("CANCEL", "inv1", "", "");
    assert_eq!(phone.statuses(), [200]);
    assert!(phone.events().is_empty(), "the call {call} goes on");
}

#[test]
fn cancel_while_ringing_stops_the_delayed_answer() {
    let mut phone = Phone::new(UaConfig {
        answer_delay: Duration::from_secs(2),
        ..config()
    });
    assert_eq!(phone.answer_new_call().1, [100, 180]);
    phone.advance(Duration::from_secs(1));
    phone.request("CANCEL", "inv1", "", "");
    assert_eq!(phone.statuses(), [200, 487]);
    phone.advance(Duration::from_secs(10));
    assert!(
        phone.sent().iter().all(|(_, m)| status(m) == 487),
        "only the 487 is retransmitted, never a 200"
    );
    assert_eq!(phone.events(), [ended(1, EndReason::Cancelled)]);
}

#[test]
fn the_answer_delay_rings_then_answers() {
    let mut phone = Phone::new(UaConfig {
        answer_delay: Duration::from_secs(2),
        ..config()
    });
    assert_eq!(phone.answer_new_call().1, [100, 180]);
    phone.advance(Duration::from_millis(1999));
    assert!(phone.sent().is_empty());
    phone.advance(Duration::from_millis(1));
    assert_eq!(phone.statuses(), [200]);
}

#[test]
fn ringing_while_the_layer_above_decides_goes_once_then_a_decline_or_the_answer() {
    for delay in [Duration::ZERO, Duration::from_secs(2)] {
        let mut phone = Phone::new(UaConfig {
            answer_delay: delay,
            ..config()
        });
        phone.invite("inv1", SDP);
        let [UaEvent::Incoming { call, .. }] = <[UaEvent; 1]>::try_from(phone.events()).unwrap()
        else {
            panic!("one Incoming")
        };
        phone.command(UaCommand::Ring { call });
        phone.command(UaCommand::Ring { call });
        assert_eq!(phone.statuses(), [100, 180], "one 180");
        phone.advance(Duration::from_secs(5));
        phone.command(UaCommand::Answer {
            call,
            sdp: SDP.into(),
        });
        phone.advance(delay);
        assert_eq!(phone.statuses(), [200], "no second 180 before the 200");
    }
    let mut phone = Phone::new(config());
    phone.invite("inv1", SDP);
    let [UaEvent::Incoming { call, .. }] = <[UaEvent; 1]>::try_from(phone.events()).unwrap() else {
        panic!("one Incoming")
    };
    phone.command(UaCommand::Ring { call });
    let decline = Decline {
        status: 603,
        reason: "Decline",
        warning: None,
    };
    phone.command(UaCommand::Decline { call, decline });
    assert_eq!(phone.statuses(), [100, 180, 603]);
}

#[test]
fn a_flood_from_one_source_gets_503_with_retry_after_then_silence() {
    let mut phone = Phone::new(config());
    let mut refused = 0;
    for i in 0..200 {
        phone.request("INVITE", &format!("flood{i}"), "", "");
        for (_, m) in phone.sent() {
            if status(&m) == 503 {
                refused += 1;
                assert!(header(&m, "Retry-After").is_some());
            }
        }
    }
    let offered = phone
        .events()
        .iter()
        .filter(|e| matches!(e, UaEvent::Incoming { .. }))
        .count();
    assert_eq!(offered, 10, "the pending budget of one source");
    assert!(
        refused > 0 && offered + refused < 200,
        "past twice the budget, silence"
    );
}

#[test]
fn hanging_up_before_the_ack_waits_for_it_then_sends_bye() {
    let mut phone = Phone::new(config());
    phone.answer_new_call();
    phone.command(UaCommand::Hangup { call: 1 });
    assert_eq!(phone.events(), [ended(1, EndReason::HungUp)]);
    assert!(phone.sent().is_empty(), "no BYE before the ACK (§15)");
    phone.ack("");
    let sent = phone.sent();
    assert!(sent[0].1.starts_with("BYE "));
    assert!(phone.events().is_empty());
}

#[test]
fn a_draining_agent_refuses_new_calls_and_probes_but_keeps_its_calls() {
    let mut phone = Phone::new(config());
    let call = phone.confirmed_call();
    phone.command(UaCommand::Drain);
    let mut stranger = Phone::new(config());
    std::mem::swap(&mut stranger.ua, &mut phone.ua);
    stranger.request("OPTIONS", "probe", "", "");
    stranger.invite("new-call", SDP);
    let sent = stranger.sent();
    let answers: Vec<_> = sent
        .iter()
        .map(|(_, m)| (status(m), header(m, "Retry-After")))
        .collect();
    assert_eq!(answers, [(503, Some("30")), (503, Some("30"))]);
    assert!(stranger.events().is_empty(), "no new call");
    std::mem::swap(&mut stranger.ua, &mut phone.ua);
    phone.in_dialog(
        "INFO",
        "Content-Type: application/dtmf-relay\n",
        "Signal=1\r\n",
    );
    assert_eq!(phone.statuses(), [200]);
    assert_eq!(phone.events(), [UaEvent::InfoDigit { call, digit: '1' }]);
}

#[test]
fn only_the_allowed_ranges_may_call() {
    let allow = |silent| AllowList::parse(&["192.0.2.0/24".to_string()], silent).unwrap();
    let mut phone = Phone::new(UaConfig {
        allow: allow(false),
        ..config()
    });
    assert_eq!(
        phone.answer_new_call().1,
        [100, 200],
        "192.0.2.1 is in the range"
    );

    let mut stranger = Phone::new(UaConfig {
        allow: allow(false),
        ..config()
    });
    stranger.source = "203.0.113.9:5060".parse().unwrap();
    stranger.invite("inv1", SDP);
    assert_eq!(stranger.statuses(), [403]);
    assert!(
        stranger.events().is_empty(),
        "no call is offered to the layer above"
    );
    stranger.request("OPTIONS", "opt1", "", "");
    assert_eq!(
        stranger.statuses(),
        [200],
        "OPTIONS is still answered, as probes expect"
    );

    let mut ignored = Phone::new(UaConfig {
        allow: allow(true),
        ..config()
    });
    ignored.source = "203.0.113.9:5060".parse().unwrap();
    ignored.invite("inv1", SDP);
    ignored.advance(Duration::from_secs(40));
    assert!(ignored.sent().is_empty(), "silent drop: nothing at all");
    assert!(ignored.events().is_empty());
}

#[test]
fn a_sips_target_over_plain_udp_gets_416() {
    let mut phone = Phone::new(config());
    let text = format!(
        "INVITE sips:ivr@198.51.100.5 SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKsips;rport\nFrom: <sips:alice@192.0.2.1>;tag=alice\nTo: <sips:ivr@198.51.100.5>\nCall-ID: sips-1\nCSeq: 1 INVITE\nContact: <sips:alice@{CALLER}>\nMax-Forwards: 70\nContent-Length: 0\n\n"
    );
    phone.send(&text);
    assert_eq!(phone.statuses(), [416]);
    assert!(phone.events().is_empty(), "no call is offered");
}

#[test]
fn a_stranger_replaying_a_live_invites_branch_gets_neither_its_200_nor_its_cancel() {
    let mut phone = Phone::new(config());
    let (call, sent) = phone.answer_new_call();
    assert_eq!(sent, [100, 200]);
    // The caller itself retransmitting its INVITE gets the 200 again.
    phone.invite("inv1", SDP);
    assert_eq!(phone.statuses(), [200]);
    // The same INVITE, branch and sent-by and all, from another address: nothing.
    let caller = phone.source;
    phone.source = "203.0.113.66:5060".parse().unwrap();
    phone.invite("inv1", SDP);
    assert!(phone.sent().is_empty(), "the stranger got an answer");
    assert!(phone.events().is_empty());
    // Its CANCEL of that INVITE finds no transaction of its own.
    phone.request("CANCEL", "inv1", "", "");
    assert_eq!(phone.statuses(), [481]);
    assert!(phone.events().is_empty(), "the call goes on");
    phone.source = caller;
    phone.ack("");
    assert_eq!(phone.events(), [UaEvent::Confirmed { call, answer: None }]);
}

#[test]
fn the_same_branch_from_another_sent_by_is_a_new_transaction() {
    let mut phone = Phone::new(config());
    let (_, sent) = phone.answer_new_call();
    assert_eq!(sent, [100, 200]);
    let other = "198.51.100.77:5062";
    phone.source = other.parse().unwrap();
    let text = format!(
        "INVITE sip:ivr@198.51.100.5 SIP/2.0\nVia: SIP/2.0/UDP {other};branch=z9hG4bKinv1\nFrom: <sip:bob@198.51.100.77>;tag=bob\nTo: <sip:ivr@198.51.100.5>\nCall-ID: other-1\nCSeq: 1 INVITE\nContact: <sip:bob@{other}>\nMax-Forwards: 70\nContent-Type: application/sdp\nContent-Length: {}\n\n{SDP}",
        SDP.len()
    );
    phone.send(&text);
    assert_eq!(
        phone.statuses(),
        [100],
        "a call of its own, not the first call's 200"
    );
    assert!(matches!(
        phone.events().as_slice(),
        [UaEvent::Incoming { call_id, .. }] if call_id == "other-1"
    ));
}
