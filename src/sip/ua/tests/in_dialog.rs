//! Inside a dialog: re-INVITE, BYE, INFO, OPTIONS, unknown dialogs, routing.

use super::*;

#[test]
fn a_reinvite_with_sdp_is_answered_by_the_layer_above() {
    let mut phone = Phone::new(config());
    let call = phone.confirmed_call();
    let hold = SDP.replace(
        "m=audio 4000 RTP/AVP 0\r\n",
        "m=audio 4000 RTP/AVP 0\r\na=sendonly\r\n",
    );
    phone.cseq += 1;
    let branch = format!("reinv{}", phone.cseq);
    phone.invite(&branch, &hold);
    assert_eq!(
        phone.events(),
        [UaEvent::Reinvite {
            call,
            offer: Some(hold.into_bytes())
        }]
    );
    assert_eq!(phone.statuses(), [100]);
    phone.command(UaCommand::Answer {
        call,
        sdp: SDP.into(),
    });
    assert_eq!(phone.statuses(), [200]);
    phone.ack("");
    assert_eq!(phone.events(), [UaEvent::Confirmed { call, answer: None }]);
}

#[test]
fn a_reinvite_without_sdp_gets_our_offer_and_the_ack_brings_the_answer() {
    let mut phone = Phone::new(config());
    let call = phone.confirmed_call();
    phone.cseq += 1;
    phone.invite("reinv2", "");
    assert_eq!(phone.events(), [UaEvent::Reinvite { call, offer: None }]);
    phone.command(UaCommand::Answer {
        call,
        sdp: SDP.into(),
    });
    let sent = phone.sent();
    assert_eq!(status(&sent[1].1), 200);
    assert!(sent[1].1.ends_with(SDP), "our offer in the 200");
    phone.ack(SDP);
    assert_eq!(
        phone.events(),
        [UaEvent::Confirmed {
            call,
            answer: Some(SDP.as_bytes().to_vec())
        }]
    );
}

#[test]
fn a_second_reinvite_while_one_is_pending_gets_500_with_retry_after() {
    let mut phone = Phone::new(config());
    phone.confirmed_call();
    phone.cseq += 1;
    phone.invite("reinv2", SDP);
    phone.events();
    phone.sent();
    phone.cseq += 1;
    phone.invite("reinv3", SDP);
    let sent = phone.sent();
    assert_eq!(status(&sent[0].1), 500);
    assert_eq!(header(&sent[0].1, "Retry-After"), Some("1"));
    assert!(phone.events().is_empty());
}

#[test]
fn a_bye_crossing_ours_is_answered_and_the_call_ends_once() {
    let mut phone = Phone::new(config());
    let call = phone.confirmed_call();
    phone.command(UaCommand::Hangup { call });
    let sent = phone.sent();
    assert!(sent[0]
        .1
        .starts_with("BYE sip:alice@192.0.2.1:5070 SIP/2.0"));
    assert_eq!(phone.events(), [ended(call, EndReason::HungUp)]);
    phone.in_dialog("BYE", "", "");
    assert_eq!(phone.statuses(), [200]);
    assert!(phone.events().is_empty(), "Ended was told once");
}

#[test]
fn the_callers_bye_ends_the_call() {
    let mut phone = Phone::new(config());
    let call = phone.confirmed_call();
    phone.in_dialog("BYE", "", "");
    assert_eq!(phone.statuses(), [200]);
    assert_eq!(phone.events(), [ended(call, EndReason::CallerHungUp)]);
}

#[test]
fn requests_for_an_unknown_dialog_get_481() {
    let mut phone = Phone::new(config());
    phone.confirmed_call();
    phone.to = "<sip:ivr@198.51.100.5>;tag=nosuch".into();
    for method in ["BYE", "INFO", "OPTIONS"] {
        phone.in_dialog(method, "", "");
        assert_eq!(phone.statuses(), [481], "{method}");
    }
    phone.cseq += 1;
    phone.invite("reinv-unknown", SDP);
    assert_eq!(phone.statuses(), [481]);
    assert!(phone.events().is_empty());
}

#[test]
fn info_keys_reach_the_layer_above_and_other_bodies_get_415() {
    let mut phone = Phone::new(config());
    let call = phone.confirmed_call();
    let relay = "Content-Type: application/dtmf-relay\n";
    phone.in_dialog("INFO", relay, "Signal=5\r\nDuration=160\r\n");
    assert_eq!(phone.statuses(), [200]);
    assert_eq!(phone.events(), [UaEvent::InfoDigit { call, digit: '5' }]);
    phone.in_dialog("INFO", "Content-Type: text/plain\n", "hello");
    let sent = phone.sent();
    assert_eq!(status(&sent[0].1), 415);
    assert!(header(&sent[0].1, "Accept").is_some());
    assert!(phone.events().is_empty());
}

#[test]
fn options_are_answered_in_and_out_of_a_dialog() {
    let mut phone = Phone::new(config());
    phone.request("OPTIONS", "opt1", "", "");
    let sent = phone.sent();
    assert_eq!(status(&sent[0].1), 200);
    assert!(header(&sent[0].1, "Allow").is_some_and(|a| a.contains("INVITE")));
    phone.to = "<sip:ivr@198.51.100.5>".into();
    phone.confirmed_call();
    phone.in_dialog("OPTIONS", "", "");
    assert_eq!(phone.statuses(), [200]);
}

#[test]
fn responses_follow_rport_and_our_bye_follows_the_record_route() {
    let mut phone = Phone::new(config());
    // The request came from another port than its Via says: rport sends the answer back there.
    phone.source = "192.0.2.1:40000".parse().unwrap();
    let rr = "Record-Route: <sip:192.0.2.50:5080;lr>\n";
    phone.request(
        "INVITE",
        "inv1",
        &format!("{rr}Content-Type: application/sdp\n"),
        SDP,
    );
    phone.events();
    phone.command(UaCommand::Answer {
        call: 1,
        sdp: SDP.into(),
    });
    let sent = phone.sent();
    assert!(sent.iter().all(|(to, _)| *to == phone.source), "rport");
    assert_eq!(
        header(&sent[1].1, "Record-Route"),
        Some("<sip:192.0.2.50:5080;lr>")
    );
    phone.ack("");
    phone.events();
    phone.command(UaCommand::Hangup { call: 1 });
    let (to, bye) = phone.sent().remove(0);
    assert_eq!(to, "192.0.2.50:5080".parse().unwrap(), "to the first route");
    assert!(
        bye.starts_with("BYE sip:alice@192.0.2.1:5070 SIP/2.0"),
        "{bye}"
    );
    assert_eq!(header(&bye, "Route"), Some("<sip:192.0.2.50:5080;lr>"));
    assert!(
        header(&bye, "Via").is_some_and(|v| v.contains("198.51.100.5:5060") && v.contains("rport"))
    );
}
