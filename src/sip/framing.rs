//! Byte-level SIP framing, before rsip sees a message: where a message ends on a TCP stream
//! (Content-Length, RFC 3261 §18.3), compact header names spelled out in full, and the body cut
//! to its declared length.

use std::borrow::Cow;

/// The largest message we accept on any transport.
pub const MAX_MESSAGE: usize = 64 * 1024;

#[derive(Debug, PartialEq)]
pub enum Frame {
    /// Need more bytes.
    Incomplete,
    /// `skip` bytes of keep-alive CRLFs to drop first.
    KeepAlive { skip: usize },
    /// A whole message occupies the first `len` bytes.
    Message { len: usize },
    /// The header block (its first `head` bytes) declares a message over `MAX_MESSAGE`:
    /// refuse it (413) and close the stream, since its body cannot be skipped safely.
    TooLarge { head: usize },
    /// The stream cannot be framed (no header end in sight, or no usable Content-Length): close it.
    Broken(&'static str),
}

fn header_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// The Content-Length of a header block, if it has one.
pub fn content_length(head: &[u8]) -> Result<Option<usize>, &'static str> {
    let text = std::str::from_utf8(head).map_err(|_| "headers are not UTF-8")?;
    let mut found = None;
    for line in text.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
            let n: usize = value.trim().parse().map_err(|_| "bad Content-Length")?;
            // Two that disagree (RFC 4475 3.1.2.11): which body is meant cannot be known.
            if found.is_some_and(|first| first != n) {
                return Err("two Content-Length values that disagree");
            }
            found = Some(n);
        }
    }
    Ok(found)
}

/// Finds the first message in a TCP stream buffer.
pub fn next_frame(buf: &[u8]) -> Frame {
    let skip = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    if skip > 0 {
        return Frame::KeepAlive { skip };
    }
    let Some(head) = header_end(buf) else {
        return if buf.len() > MAX_MESSAGE {
            Frame::Broken("header block over 64 KiB")
        } else {
            Frame::Incomplete
        };
    };
    // On a stream Content-Length is mandatory (§20.14); without it we cannot find the end.
    let body = match content_length(&buf[..head]) {
        Ok(Some(n)) => n,
        Ok(None) => return Frame::Broken("no Content-Length on a stream transport"),
        Err(e) => return Frame::Broken(e),
    };
    // The length comes off the wire: a huge Content-Length must not wrap to a small frame.
    let len = match head.checked_add(body) {
        Some(len) if len <= MAX_MESSAGE => len,
        _ => return Frame::TooLarge { head },
    };
    if buf.len() < len {
        Frame::Incomplete
    } else {
        Frame::Message { len }
    }
}

const COMPACT: [(&str, &str); 11] = [
    ("i", "Call-ID"),
    ("m", "Contact"),
    ("e", "Content-Encoding"),
    ("l", "Content-Length"),
    ("c", "Content-Type"),
    ("f", "From"),
    ("s", "Subject"),
    ("k", "Supported"),
    ("t", "To"),
    ("v", "Via"),
    ("x", "Session-Expires"),
];

/// Prepares one message for rsip: compact names expanded, header lines folded onto one line,
/// and the body cut to Content-Length (a datagram shorter than it declares is an error).
pub fn normalize(message: &[u8]) -> Result<Vec<u8>, &'static str> {
    let head_len = header_end(message).ok_or("no blank line after the headers")?;
    let head =
        std::str::from_utf8(&message[..head_len - 4]).map_err(|_| "headers are not UTF-8")?;
    let body = &message[head_len..];
    let body = match content_length(&message[..head_len])? {
        Some(n) if n > body.len() => return Err("body shorter than Content-Length"),
        Some(n) => &body[..n],
        None => body,
    };
    // Folded lines joined first (a continuation is one space, §7.3.1), then each header
    // spelled out: the name and the value may be on different lines.
    let mut lines: Vec<Cow<'_, str>> = Vec::new();
    for line in head.split("\r\n") {
        match lines.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => {
                let joined = last.to_mut();
                joined.push(' ');
                joined.push_str(line.trim_start());
            }
            _ => lines.push(Cow::Borrowed(line)),
        }
    }
    let mut out = Vec::with_capacity(message.len() + 64);
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(expand_name(line).as_bytes());
        } else {
            out.extend_from_slice(line.as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
    Ok(out)
}

/// A header line with its name spelled out and no space before the colon (`TO :` is legal,
/// RFC 3261 §7.3.1), and the value of a header we take apart squeezed (see `squeeze`).
fn expand_name(line: &str) -> Cow<'_, str> {
    let Some((name, rest)) = line.split_once(':') else {
        return Cow::Borrowed(line);
    };
    let trimmed = name.trim();
    let full = COMPACT
        .iter()
        .find(|(c, _)| trimmed.eq_ignore_ascii_case(c))
        .map_or(trimmed, |(_, full)| full);
    let structured = STRUCTURED.iter().any(|h| h.eq_ignore_ascii_case(full));
    if !structured && full.len() == name.len() && full == trimmed {
        return Cow::Borrowed(line);
    }
    let value = if structured {
        squeeze(rest.trim())
    } else {
        Cow::Borrowed(rest)
    };
    let space = if structured { " " } else { "" };
    Cow::Owned(format!("{full}:{space}{value}"))
}

/// Headers whose values we read parameter by parameter.
const STRUCTURED: [&str; 7] = [
    "Via",
    "From",
    "To",
    "Contact",
    "Route",
    "Record-Route",
    "P-Asserted-Identity",
];

/// Drops the optional whitespace RFC 3261's grammar allows around `/ ; = ,` (SLASH, SEMI,
/// EQUAL, COMMA are `SWS x SWS`), outside quoted strings: `SIP / 2.0 / UDP h ; branch = x`
/// reads as `SIP/2.0/UDP h;branch=x`.
fn squeeze(value: &str) -> Cow<'_, str> {
    const SEPARATORS: &[char] = &['/', ';', '=', ','];
    if !value.contains(char::is_whitespace) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let (mut quoted, mut escaped, mut pending_space) = (false, false, false);
    for c in value.chars() {
        if quoted {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
            continue;
        }
        if c == ' ' || c == '\t' {
            pending_space = true;
            continue;
        }
        let after_separator = out.ends_with(SEPARATORS);
        if pending_space && !after_separator && !SEPARATORS.contains(&c) && !out.is_empty() {
            out.push(' ');
        }
        pending_space = false;
        quoted = c == '"';
        out.push(c);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_a_stream_by_content_length() {
        let msg = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 3\r\n\r\nabcINVITE";
        assert_eq!(next_frame(msg), Frame::Message { len: msg.len() - 6 });
        assert_eq!(next_frame(&msg[..30]), Frame::Incomplete);
        assert_eq!(next_frame(b"\r\n\r\nOPTIONS"), Frame::KeepAlive { skip: 4 });
        assert_eq!(
            next_frame(b"OPTIONS sip:a SIP/2.0\r\nVia: x\r\n\r\n"),
            Frame::Broken("no Content-Length on a stream transport")
        );
        assert_eq!(
            next_frame(b"OPTIONS sip:a SIP/2.0\r\nl: 99999999\r\n\r\n"),
            Frame::TooLarge { head: 38 }
        );
        assert!(matches!(
            next_frame(&vec![b'a'; MAX_MESSAGE + 1]),
            Frame::Broken(_)
        ));
    }

    #[test]
    fn optional_whitespace_is_squeezed_out_of_structured_headers() {
        let msg = b"INVITE sip:a SIP/2.0\r\nVia  : SIP  /   2.0 /UDP\r\n    192.0.2.1 ;  branch = z9hG4bKx\r\nTO :\r\n sip:a@h ;   tag    = 83\r\nf: \"A \\\" ; b\" <sip:a@h> ; tag = 9\r\nSubject :  a  ; b\r\n\r\n";
        let out = String::from_utf8(normalize(msg).unwrap()).unwrap();
        assert!(
            out.contains("\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx\r\n"),
            "{out}"
        );
        assert!(out.contains("\r\nTO: sip:a@h;tag=83\r\n"), "{out}");
        assert!(
            out.contains("\r\nFrom: \"A \\\" ; b\" <sip:a@h>;tag=9\r\n"),
            "{out}"
        );
        assert!(out.contains("\r\nSubject:  a  ; b\r\n"), "{out}");
    }

    #[test]
    fn normalize_expands_compact_names_and_cuts_the_body() {
        let msg = b"BYE sip:a SIP/2.0\r\nv: SIP/2.0/UDP h\r\ni: x\r\nl: 2\r\n\r\nabcd";
        let out = normalize(msg).unwrap();
        assert_eq!(
            out,
            b"BYE sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nCall-ID: x\r\nContent-Length: 2\r\n\r\nab"
        );
        assert!(normalize(b"BYE sip:a SIP/2.0\r\nl: 9\r\n\r\nab").is_err());
        assert!(normalize(b"BYE sip:a SIP/2.0\r\nl: -1\r\n\r\n").is_err());
        assert!(normalize(b"garbage").is_err());
    }

    #[test]
    fn a_content_length_that_would_wrap_is_too_large() {
        let head = "OPTIONS sip:a SIP/2.0\r\nContent-Length: ";
        for declared in [
            u64::MAX,
            u64::MAX - 1,
            u64::MAX - 40,
            u64::MAX - 47,
            u64::MAX - 48,
            (usize::MAX - 50) as u64,
            1 << 63,
            MAX_MESSAGE as u64,
        ] {
            let msg = format!("{head}{declared}\r\n\r\n");
            assert_eq!(
                next_frame(msg.as_bytes()),
                Frame::TooLarge { head: msg.len() },
                "Content-Length {declared}"
            );
        }
        // Past u64, the number no longer parses: the stream is broken, not a small frame.
        let msg = format!("{head}18446744073709551616\r\n\r\n");
        assert_eq!(
            next_frame(msg.as_bytes()),
            Frame::Broken("bad Content-Length")
        );
        assert!(normalize(msg.as_bytes()).is_err());
    }

    /// Feeds a stream in random pieces, the way a TCP reader sees it, and checks every step
    /// either consumes bytes, waits for more, or gives up: never a frame of zero bytes.
    fn drain(stream: &[u8], cuts: &[usize]) -> usize {
        let mut buf = Vec::new();
        let mut fed = 0;
        let mut framed = 0;
        let mut cuts = cuts.iter().copied().chain([stream.len()]);
        loop {
            match next_frame(&buf) {
                Frame::KeepAlive { skip } => {
                    assert!(skip > 0 && skip <= buf.len());
                    buf.drain(..skip);
                }
                Frame::Message { len } => {
                    assert!(len > 0 && len <= buf.len() && len <= MAX_MESSAGE);
                    buf.drain(..len);
                    framed += 1;
                }
                Frame::TooLarge { head } => {
                    assert!(head > 0 && head <= buf.len());
                    return framed;
                }
                Frame::Broken(_) => return framed,
                Frame::Incomplete => {
                    let Some(cut) = cuts.next() else {
                        return framed;
                    };
                    let to = cut.clamp(fed, stream.len());
                    if to == fed && fed == stream.len() {
                        return framed;
                    }
                    buf.extend_from_slice(&stream[fed..to]);
                    fed = to;
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn the_framer_always_makes_progress(
            lengths in proptest::collection::vec(proptest::prelude::any::<u64>(), 1..4),
            bodies in proptest::collection::vec(0usize..64, 1..4),
            cuts in proptest::collection::vec(0usize..400, 0..12),
        ) {
            let mut stream = Vec::new();
            for (declared, body) in lengths.iter().zip(&bodies) {
                let declared = if declared % 2 == 0 { *body as u64 } else { *declared };
                stream.extend_from_slice(
                    format!("\r\nOPTIONS sip:a SIP/2.0\r\nl: {declared}\r\n\r\n").as_bytes(),
                );
                stream.extend(std::iter::repeat_n(b'x', *body));
            }
            let mut cuts = cuts;
            cuts.sort_unstable();
            drain(&stream, &cuts);
        }
    }

    #[test]
    fn honest_messages_in_any_pieces_all_frame() {
        let one = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 3\r\n\r\nabc";
        let stream: Vec<u8> = one.iter().chain(b"\r\n").chain(one).copied().collect();
        for cut in 0..stream.len() {
            assert_eq!(drain(&stream, &[cut]), 2, "cut at {cut}");
        }
    }
}
