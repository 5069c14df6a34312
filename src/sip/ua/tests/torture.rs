//! Messages from RFC 4475's torture tests that the agent once got wrong, each answered as the
//! RFC says.

use super::*;

/// An out-of-dialog request from the phone, `first` its request line, `headers` between the
/// standard ones and the body.
fn raw(phone: &mut Phone, first: &str, headers: &str, body: &str) -> Vec<u16> {
    let text = format!(
        "{first}\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKt{}\nFrom: <sip:a@192.0.2.1>;tag=t\nTo: <sip:ivr@198.51.100.5>\nCall-ID: torture-{}\nCSeq: 1 {}\nMax-Forwards: 70\n{headers}Content-Length: {}\n\n{body}",
        first.len() + headers.len(),
        headers.len(),
        first.split(' ').next().unwrap(),
        body.len()
    );
    phone.send(&text);
    phone.statuses()
}

#[test]
fn another_sip_version_gets_505() {
    let mut phone = Phone::new(config());
    let got = raw(&mut phone, "OPTIONS sip:ivr@198.51.100.5 SIP/7.0", "", "");
    assert_eq!(got, [505]);
}

#[test]
fn an_unknown_uri_scheme_gets_416() {
    let mut phone = Phone::new(config());
    let got = raw(
        &mut phone,
        "OPTIONS nobarnobarnobar:ivr@198.51.100.5 SIP/2.0",
        "",
        "",
    );
    assert_eq!(got, [416]);
}

#[test]
fn a_body_we_cannot_read_gets_415_with_what_we_accept() {
    let mut phone = Phone::new(config());
    phone.send(&format!(
        "INVITE sip:ivr@198.51.100.5 SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKinvut\nFrom: <sip:a@192.0.2.1>;tag=t\nTo: <sip:ivr@198.51.100.5>\nCall-ID: invut\nCSeq: 1 INVITE\nContact: <sip:a@{CALLER}>\nMax-Forwards: 70\nContent-Type: application/unknownformat\nContent-Length: 4\n\nxxxx"
    ));
    let sent = phone.sent();
    let statuses: Vec<u16> = sent.iter().map(|(_, m)| status(m)).collect();
    assert_eq!(statuses.last(), Some(&415), "{statuses:?}");
    assert!(
        header(&sent.last().unwrap().1, "Accept").is_some_and(|a| a.contains("application/sdp"))
    );
    assert!(phone.events().is_empty());
}

#[test]
fn duplicate_identity_headers_and_conflicting_lengths_get_400() {
    for extra in [
        "Call-ID: another\n",
        "From: <sip:b@192.0.2.1>;tag=other\n",
        "To: <sip:someone@198.51.100.5>\n",
    ] {
        let mut phone = Phone::new(config());
        let got = raw(
            &mut phone,
            "OPTIONS sip:ivr@198.51.100.5 SIP/2.0",
            extra,
            "",
        );
        assert_eq!(got, [400], "{extra}");
    }
    let mut phone = Phone::new(config());
    let got = raw(
        &mut phone,
        "OPTIONS sip:ivr@198.51.100.5 SIP/2.0",
        "Content-Length: 4\n",
        "",
    );
    assert_eq!(got, [400], "two Content-Lengths that disagree");
}

#[test]
fn an_options_with_max_forwards_zero_is_answered_by_the_agent() {
    let mut phone = Phone::new(config());
    let text = format!(
        "OPTIONS sip:ivr@198.51.100.5 SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKmf0\nFrom: <sip:a@192.0.2.1>;tag=t\nTo: <sip:ivr@198.51.100.5>\nCall-ID: mf0\nCSeq: 1 OPTIONS\nMax-Forwards: 0\nContent-Length: 0\n\n"
    );
    phone.send(&text);
    assert_eq!(phone.statuses(), [200]);
}
