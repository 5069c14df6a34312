//! RFC 4475's torture messages, one fixture each in `rfc4475/` (our own messages, each built
//! to exercise what its section of the RFC names), sent to the agent over UDP and answered as
//! the RFC says a user agent should.
//!
//! Fixtures are written with bare line feeds and sent with CRLF; `{len}` stands for the body's
//! length once sent, so a fixture about a wrong Content-Length says so by not using it.

use super::*;

/// What the RFC expects of a user agent that receives the message.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Exactly these answers, and nothing offered to the layer above.
    Answers(&'static [u16]),
    /// A call offered to the layer above (with the offer found), answered only provisionally.
    Call,
    /// A stray response, or something past a message's end: nothing sent, nothing told.
    Silence,
}

use Expect::{Answers, Call, Silence};

/// A registrar challenges every REGISTER it can read; these are sent to an agent with SIP
/// users, the others to the plain one.
const TO_THE_REGISTRAR: &[&str] = &[
    "escnull", "regbadct", "unksm2", "regaut01", "cparam01", "cparam02", "regescrt", "scalar02",
];

const CASES: &[(&str, Expect)] = &[
    // 3.1.1 valid messages: parsed and acted on.
    ("wsinv", Call),
    ("intmeth", Answers(&[501])),
    ("esc01", Call),
    ("escnull", Answers(&[401])),
    ("esc02", Answers(&[501])),
    ("lwsdisp", Answers(&[200])),
    ("longreq", Call),
    ("dblreq", Answers(&[200])),
    ("semiuri", Answers(&[200])),
    ("transports", Answers(&[200])),
    ("mpart01", Call),
    ("unreason", Silence),
    ("noreason", Silence),
    // 3.1.2 invalid messages.
    ("badinv01", Answers(&[400])),
    ("clerr", Answers(&[400])),
    ("ncl", Answers(&[400])),
    ("scalar02", Answers(&[400])),
    ("scalarlg", Silence),
    ("quotbal", Answers(&[400])),
    ("ltgtruri", Answers(&[400])),
    ("lwsruri", Answers(&[400])),
    ("lwsstart", Answers(&[400])),
    ("trws", Answers(&[400])),
    ("escruri", Answers(&[400])),
    // A Date SIP forbids may be ignored (the RFC allows either): we never read Date.
    ("baddate", Call),
    ("regbadct", Answers(&[400])),
    ("badaspec", Answers(&[400])),
    ("baddn", Answers(&[400])),
    ("badvers", Answers(&[505])),
    ("mismatch01", Answers(&[400])),
    ("mismatch02", Answers(&[501])),
    ("bigcode", Silence),
    // 3.2 the transaction layer.
    ("badbranch", Answers(&[200])),
    // 3.3 application-layer semantics.
    ("insuf", Answers(&[400])),
    ("unkscm", Answers(&[416])),
    ("novelsc", Answers(&[416])),
    ("unksm2", Answers(&[401])),
    ("bext01", Answers(&[420])),
    ("invut", Answers(&[415])),
    ("regaut01", Answers(&[401])),
    ("multi01", Answers(&[400])),
    ("mcl01", Answers(&[400])),
    ("bcast", Silence),
    ("zeromf", Answers(&[200])),
    ("cparam01", Answers(&[401])),
    ("cparam02", Answers(&[401])),
    ("regescrt", Answers(&[401])),
    ("sdp01", Answers(&[406])),
    // 3.4 backward compatibility.
    ("inv2543", Call),
];

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/src/sip/ua/tests/rfc4475/{name}.sip",
        env!("CARGO_MANIFEST_DIR")
    );
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut wire = Vec::with_capacity(raw.len() + 64);
    for &b in &raw {
        if b == b'\n' {
            wire.push(b'\r');
        }
        wire.push(b);
    }
    let Some(head) = wire
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
    else {
        return wire;
    };
    let body_len = (wire.len() - head).to_string();
    let marker = b"{len}";
    match wire[..head].windows(marker.len()).position(|w| w == marker) {
        Some(at) => {
            wire.splice(at..at + marker.len(), body_len.into_bytes());
            wire
        }
        None => wire,
    }
}

/// What the agent did with one fixture, or why that is not what the RFC expects.
fn check(name: &str, expect: Expect) -> Result<(), String> {
    let config = if TO_THE_REGISTRAR.contains(&name) {
        super::softphone::with_users(&[])
    } else {
        config()
    };
    let mut phone = Phone::new(config);
    let wire = fixture(name);
    let source = phone.source;
    phone
        .ua
        .handle_datagram(phone.now, source, Transport::Udp, &wire);
    let sent = phone.sent();
    let statuses: Vec<u16> = sent.iter().map(|(_, m)| status(m)).collect();
    let events = phone.events();
    let offered = events.iter().find_map(|e| match e {
        UaEvent::Incoming { offer, .. } => Some(offer.clone()),
        _ => None,
    });
    // Where a Via names no port the answer goes to 5060 (RFC 3261 §18.2.2), but always to the
    // address the request came from, never to one a Via names (`bcast`).
    if sent.iter().any(|(to, _)| to.ip() != source.ip()) {
        return Err(format!("answered somewhere else: {sent:?}"));
    }
    let fine = match expect {
        Answers(want) => statuses == want && offered.is_none(),
        Silence => sent.is_empty() && events.is_empty(),
        Call => {
            statuses.iter().all(|s| *s < 200)
                && offered
                    .flatten()
                    .is_some_and(|sdp| sdp.starts_with(b"v=0") && sdp.ends_with(b"PCMU/8000\r\n"))
        }
    };
    if fine {
        Ok(())
    } else {
        Err(format!("sent {statuses:?}, told {events:?}"))
    }
}

#[test]
fn every_rfc4475_message_is_answered_as_the_rfc_says() {
    let failures: Vec<String> = CASES
        .iter()
        .filter_map(|(name, expect)| {
            check(name, *expect)
                .err()
                .map(|why| format!("{name} (want {expect:?}): {why}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {}:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn the_fixtures_are_the_rfcs_49() {
    let dir = format!("{}/src/sip/ua/tests/rfc4475", env!("CARGO_MANIFEST_DIR"));
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".sip")
                .to_string()
        })
        .collect();
    on_disk.sort();
    let mut named: Vec<String> = CASES.iter().map(|(n, _)| n.to_string()).collect();
    named.sort();
    assert_eq!(on_disk, named);
    assert_eq!(named.len(), 49);
}

#[test]
fn a_body_we_cannot_read_names_what_we_accept() {
    let mut phone = Phone::new(config());
    let source = phone.source;
    let wire = fixture("invut");
    phone
        .ua
        .handle_datagram(phone.now, source, Transport::Udp, &wire);
    let sent = phone.sent();
    assert!(
        header(&sent.last().unwrap().1, "Accept").is_some_and(|a| a.contains("application/sdp"))
    );
}

#[test]
fn an_unsupported_requirement_is_named_in_unsupported() {
    let mut phone = Phone::new(config());
    let source = phone.source;
    phone
        .ua
        .handle_datagram(phone.now, source, Transport::Udp, &fixture("bext01"));
    let sent = phone.sent();
    let unsupported = header(&sent[0].1, "Unsupported").unwrap();
    assert!(unsupported.contains("nothingSupportsThis") && unsupported.contains("Either"));
    assert!(
        !unsupported.contains("Prox"),
        "Proxy-Require is for proxies: {unsupported}"
    );
}
