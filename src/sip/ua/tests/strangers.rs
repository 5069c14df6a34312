//! What a stranger can make the agent hold: bounded whatever it sends.

use super::*;
use crate::sip::ua::leg::REINVITES_PER_MINUTE;
use crate::sip::ua::requests::MAX_SERVER_TRANSACTIONS;

#[test]
fn a_thousand_reinvites_leave_one_invite_transaction_held() {
    let mut phone = Phone::new(config());
    let call = phone.confirmed_call();
    for _ in 0..1000 {
        // Paced under the per-minute limit, so each one is taken.
        phone.advance(Duration::from_secs(4));
        phone.cseq += 1;
        let branch = format!("reinv{}", phone.cseq);
        phone.invite(&branch, "");
        assert_eq!(phone.events(), [UaEvent::Reinvite { call, offer: None }]);
        phone.command(UaCommand::Answer {
            call,
            sdp: SDP.into(),
        });
        assert_eq!(phone.statuses(), [100, 200]);
        phone.ack(SDP);
        phone.events();
    }
    assert_eq!(
        phone.ua.invites.len(),
        1,
        "only the latest INVITE is remembered"
    );
    assert!(phone.ua.calls[&call].branches.len() <= 2);
}

#[test]
fn unique_branches_by_the_thousand_are_answered_but_not_all_remembered() {
    let mut phone = Phone::new(config());
    for i in 0..(MAX_SERVER_TRANSACTIONS + 2000) {
        let text = format!(
            "OPTIONS sip:ivr@198.51.100.5 SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKo{i}\nFrom: <sip:x@192.0.2.1>;tag=x\nTo: <sip:ivr@198.51.100.5>\nCall-ID: o{i}\nCSeq: 1 OPTIONS\nMax-Forwards: 70\nContent-Length: 0\n\n"
        );
        phone.send(&text);
        assert_eq!(phone.statuses(), [200]);
    }
    assert_eq!(phone.ua.servers.len(), MAX_SERVER_TRANSACTIONS);
    // Their time passes and the table empties.
    phone.advance(Duration::from_secs(40));
    assert!(phone.ua.servers.is_empty());
}

#[test]
fn a_thirty_kilobyte_branch_is_refused_and_kept_nowhere() {
    let mut phone = Phone::new(config());
    let huge = "b".repeat(30_000);
    phone.invite(&huge, SDP);
    assert_eq!(phone.statuses(), [400]);
    assert!(phone.events().is_empty());
    assert!(phone.ua.invites.is_empty() && phone.ua.servers.is_empty());
}

#[test]
fn a_flood_of_reinvites_is_refused_past_the_minutes_share_then_taken_again() {
    let mut phone = Phone::new(config());
    let call = phone.confirmed_call();
    let reinvite = |phone: &mut Phone| -> Vec<u16> {
        phone.cseq += 1;
        let branch = format!("flood{}", phone.cseq);
        phone.invite(&branch, "");
        let offered = phone.events() == [UaEvent::Reinvite { call, offer: None }];
        if offered {
            phone.command(UaCommand::Answer {
                call,
                sdp: SDP.into(),
            });
        }
        let statuses = phone.statuses();
        if offered {
            phone.ack(SDP);
            phone.events();
        }
        statuses
    };
    for _ in 0..REINVITES_PER_MINUTE {
        assert_eq!(reinvite(&mut phone), [100, 200]);
    }
    let sent = {
        phone.cseq += 1;
        phone.invite("flood-over", "");
        phone.sent()
    };
    assert_eq!(status(&sent[0].1), 500);
    assert!(header(&sent[0].1, "Retry-After").is_some());
    assert!(phone.events().is_empty(), "the layer above is not asked");
    phone.advance(Duration::from_secs(61));
    assert_eq!(
        reinvite(&mut phone),
        [100, 200],
        "a new minute, a new share"
    );
}
