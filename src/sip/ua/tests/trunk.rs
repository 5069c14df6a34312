//! A trunk's challenge to our BYE is answered once with the trunk's credentials.

use super::*;
use crate::sip::allow::AllowList;
use crate::sip::digest::Challenge;
use crate::sip::registration::Trunk;

fn with_trunk() -> UaConfig {
    UaConfig {
        trunks: vec![Trunk {
            registrar: "sip:sip.example.net".into(),
            domain: "sip.example.net".into(),
            transport: Transport::Udp,
            targets: vec![CALLER.parse().unwrap()],
            username: "ivr1".into(),
            password: "s3cret".into(),
            expires: 3600,
        }],
        ..config()
    }
}

const CHALLENGE: &str =
    "Proxy-Authenticate: Digest realm=\"sip.example.net\", nonce=\"b1\", qop=\"auth\"\n";

#[test]
fn a_challenged_bye_is_sent_again_with_the_trunks_credentials() {
    let mut phone = Phone::new(with_trunk());
    let call = phone.confirmed_call();
    phone.command(UaCommand::Hangup { call });
    let (_, bye) = phone.sent().remove(0);
    reply(
        &mut phone,
        &bye,
        "407 Proxy Authentication Required",
        CHALLENGE,
    );
    let (_, again) = phone.sent().remove(0);
    assert!(
        again.starts_with("BYE sip:alice@192.0.2.1:5070 SIP/2.0"),
        "{again}"
    );
    let cseq = |m: &str| {
        header(m, "CSeq")
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse::<u32>()
            .unwrap()
    };
    assert_eq!(cseq(&again), cseq(&bye) + 1);
    let auth = header(&again, "Proxy-Authorization").expect("credentials");
    let cnonce = auth
        .split("cnonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let expected = Challenge::parse(CHALLENGE.trim_start_matches("Proxy-Authenticate: "))
        .unwrap()
        .answer(
            "ivr1",
            "s3cret",
            "BYE",
            "sip:alice@192.0.2.1:5070",
            1,
            cnonce,
        );
    assert_eq!(auth, expected);

    // A second refusal is not answered again.
    reply(
        &mut phone,
        &again,
        "407 Proxy Authentication Required",
        CHALLENGE,
    );
    assert!(phone.sent().is_empty());
}

#[test]
fn a_challenge_from_a_stranger_is_not_answered() {
    let mut phone = Phone::new(config());
    let call = phone.confirmed_call();
    phone.command(UaCommand::Hangup { call });
    let (_, bye) = phone.sent().remove(0);
    reply(
        &mut phone,
        &bye,
        "401 Unauthorized",
        &CHALLENGE.replace("Proxy-", "WWW-"),
    );
    assert!(
        phone.sent().is_empty(),
        "no credentials go to a peer that is not our trunk"
    );
}

#[test]
fn several_trunks_register_each_on_its_own_and_all_may_call() {
    let second = Trunk {
        registrar: "sip:other.example.org".into(),
        domain: "other.example.org".into(),
        transport: Transport::Udp,
        targets: vec!["203.0.113.9:5060".parse().unwrap()],
        username: "ivr2".into(),
        password: "pw2".into(),
        expires: 600,
    };
    let mut config = with_trunk();
    config.trunks.push(second);
    config.allow = AllowList::parse(&["198.18.0.0/15".to_string()], false).unwrap();
    let mut phone = Phone::new(config);
    phone.ua.start(phone.now);
    let sent = phone.sent();
    let targets: Vec<SocketAddr> = sent.iter().map(|(to, _)| *to).collect();
    assert_eq!(
        targets,
        [CALLER.parse().unwrap(), "203.0.113.9:5060".parse().unwrap()]
    );
    assert!(sent[1].1.contains("From: <sip:ivr2@other.example.org>"));
    // Each answer reaches its own registration: the second's grant arms only its refresh.
    reply(&mut phone, &sent[1].1, "200 OK", "Expires: 600\n");
    assert!(phone.sent().is_empty());
    phone.advance(Duration::from_secs(481));
    let refreshed = phone.sent();
    assert!(
        refreshed
            .iter()
            .any(|(to, m)| to.port() == 5060 && m.contains("ivr2")),
        "the second trunk refreshes at 80% of its 600 s: {refreshed:?}"
    );
    // Calls from either trunk pass the allow-list.
    assert!(phone.ua.is_trunk("203.0.113.9".parse().unwrap()));
    phone.invite("inv1", SDP);
    assert_eq!(
        phone.statuses(),
        [100],
        "the first trunk's address calls in"
    );
}

#[test]
fn a_challenge_from_the_contact_of_a_call_from_the_trunk_gets_no_credentials() {
    let mut phone = Phone::new(with_trunk());
    // A call from the trunk's address whose Contact names someone else: our BYE goes there.
    phone.contact = "203.0.113.9:5060".into();
    let call = phone.confirmed_call();
    phone.command(UaCommand::Hangup { call });
    let (to, bye) = phone.sent().remove(0);
    assert_eq!(
        to,
        "203.0.113.9:5060".parse().unwrap(),
        "the BYE goes to the Contact"
    );
    reply(
        &mut phone,
        &bye,
        "401 Unauthorized",
        &CHALLENGE.replace("Proxy-", "WWW-"),
    );
    assert!(
        phone.sent().is_empty(),
        "the trunk's digest went to a stranger"
    );
}

#[test]
fn a_challenge_for_another_realm_or_without_qop_is_not_answered() {
    for challenge in [
        CHALLENGE.replace("sip.example.net", "attacker.example"),
        CHALLENGE.replace(", qop=\"auth\"", ""),
    ] {
        let mut phone = Phone::new(with_trunk());
        let call = phone.confirmed_call();
        phone.command(UaCommand::Hangup { call });
        let (_, bye) = phone.sent().remove(0);
        reply(
            &mut phone,
            &bye,
            "407 Proxy Authentication Required",
            &challenge,
        );
        assert!(phone.sent().is_empty(), "answered {challenge}");
    }
}

/// A new call from the trunk's address (`from`) over `transport`: the statuses it got.
fn trunk_invite(phone: &mut Phone, n: u32, from: SocketAddr, transport: Transport) -> Vec<u16> {
    let text = format!(
        "INVITE sip:ivr@198.51.100.5 SIP/2.0\r\nVia: SIP/2.0/{} {from};branch=z9hG4bKforged{n}\r\nFrom: <sip:+15550000{n}@sip.example.net>;tag=f{n}\r\nTo: <sip:ivr@198.51.100.5>\r\nCall-ID: forged-{n}\r\nCSeq: 1 INVITE\r\nContact: <sip:x@{from}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{}",
        if transport == Transport::Udp { "UDP" } else { "TCP" },
        SDP.len(),
        SDP
    );
    let now = phone.now;
    phone
        .ua
        .handle_datagram(now, from, transport, text.as_bytes());
    phone.events();
    phone.statuses()
}

#[test]
fn a_forged_udp_flood_from_the_trunks_address_does_not_keep_its_tcp_calls_out() {
    let mut phone = Phone::new(with_trunk());
    let trunk_ip: SocketAddr = CALLER.parse().unwrap();
    // INVITEs in the trunk's name that will never be ACKed, until admission refuses them.
    let refused = (0..30)
        .map(|n| trunk_invite(&mut phone, n, trunk_ip, Transport::Udp))
        .position(|statuses| statuses.contains(&503))
        .expect("a forged flood is refused at some point");
    assert!(refused <= 10, "refused only after {refused}");
    // The trunk itself, over TCP from its address: its call is offered.
    let tcp = SocketAddr::new(trunk_ip.ip(), 41000);
    assert_eq!(trunk_invite(&mut phone, 100, tcp, Transport::Tcp), [100]);
}
