//! The Request-Line read by us, not by rsip (RFC 3261 §25.1: `Method SP Request-URI SP
//! SIP-Version CRLF`, one space each, nothing after the version). rsip then sees a stand-in
//! URI, so a URI it cannot read (an escaped `@`, an IPv6 host, a `tel:` number) still parses,
//! and the URI is checked here the way a user agent must answer it: 416 for a scheme we do not
//! serve, 400 for what no scheme allows.

use std::borrow::Cow;

use super::{split_host_port, UNSUPPORTED_SCHEME};

/// What rsip is given in place of every Request-URI; the original is kept beside it.
const STAND_IN: &str = "sip:ivr@request-uri.invalid";

/// The request rewritten for rsip and its original Request-URI, or why the line is unusable.
/// Responses (`SIP/2.0 …`) pass through untouched with no URI.
pub(super) fn for_rsip(message: &[u8]) -> Result<(Cow<'_, [u8]>, Option<String>), &'static str> {
    let line_end = message
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or("no end of the first line")?;
    if message.starts_with(b"SIP/") {
        return Ok((Cow::Borrowed(message), None));
    }
    let line = std::str::from_utf8(&message[..line_end]).map_err(|_| "Request-Line not UTF-8")?;
    let (method, uri, version) = split(line)?;
    check_uri(uri)?;
    let mut out = format!("{method} {STAND_IN} {version}").into_bytes();
    out.extend_from_slice(&message[line_end..]);
    Ok((Cow::Owned(out), Some(uri.to_string())))
}

fn split(line: &str) -> Result<(&str, &str, &str), &'static str> {
    let mut parts = line.split(' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(u), Some(v), None) if !m.is_empty() && !u.is_empty() && !v.is_empty() => {
            Ok((m, u, v))
        }
        _ => Err("Request-Line not three parts separated by single spaces"),
    }
}

fn check_uri(uri: &str) -> Result<(), &'static str> {
    if uri.starts_with('<') {
        return Err("Request-URI in angle brackets");
    }
    let (scheme, rest) = uri.split_once(':').ok_or("Request-URI without a scheme")?;
    let well_formed_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !well_formed_scheme || rest.is_empty() {
        return Err("Request-URI is not a URI");
    }
    if !["sip", "sips", "tel"]
        .iter()
        .any(|s| scheme.eq_ignore_ascii_case(s))
    {
        return Err(UNSUPPORTED_SCHEME);
    }
    // Headers (`?Route=…`) belong in a URI that is to be dialled, never in one that was
    // (RFC 3261 §19.1.5; RFC 4475 3.1.2.11).
    if rest.contains('?') {
        return Err("headers in the Request-URI");
    }
    if !rest.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("Request-URI with spaces or controls");
    }
    if !scheme.eq_ignore_ascii_case("tel") {
        let after_user = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        let host_port = after_user.split(';').next().unwrap_or_default();
        split_host_port(host_port).ok_or("Request-URI host or port unreadable")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri_of(line: &str) -> Result<Option<String>, &'static str> {
        for_rsip(format!("{line}\r\n\r\n").as_bytes()).map(|(_, uri)| uri)
    }

    #[test]
    fn a_plain_line_passes_with_its_uri_kept() {
        let uri = "sip:user;par=u%40example.net@host.example";
        assert_eq!(
            uri_of(&format!("OPTIONS {uri} SIP/2.0")),
            Ok(Some(uri.to_string()))
        );
        assert_eq!(
            uri_of("INVITE tel:+15551234 SIP/2.0"),
            Ok(Some("tel:+15551234".into()))
        );
        assert_eq!(uri_of("SIP/2.0 200 OK"), Ok(None));
    }

    #[test]
    fn spacing_brackets_and_headers_are_refused() {
        for line in [
            "INVITE  sip:a@h SIP/2.0",
            "INVITE sip:a@h SIP/2.0 ",
            "INVITE sip:a@h; lr SIP/2.0",
            "INVITE <sip:a@h> SIP/2.0",
            "INVITE sip:a@h?Route=%3Csip:x%3E SIP/2.0",
            "INVITE sip: SIP/2.0",
            "INVITE 1sip:a SIP/2.0",
            "INVITE sip:ivr@192.0.2.9:99999999999 SIP/2.0",
        ] {
            assert!(uri_of(line).is_err(), "{line}");
            assert_ne!(uri_of(line), Err(UNSUPPORTED_SCHEME), "{line}");
        }
    }

    #[test]
    fn another_scheme_is_unsupported() {
        for line in [
            "OPTIONS nobodyKnowsThisScheme:opaque SIP/2.0",
            "OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0",
            "OPTIONS http://example.com/ SIP/2.0",
        ] {
            assert_eq!(uri_of(line), Err(UNSUPPORTED_SCHEME), "{line}");
        }
    }
}
