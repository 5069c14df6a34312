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
    /// The stream cannot be framed (oversized, or no usable Content-Length): close it.
    Broken(&'static str),
}

fn header_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// The Content-Length of a header block, if it has one.
pub fn content_length(head: &[u8]) -> Result<Option<usize>, &'static str> {
    let text = std::str::from_utf8(head).map_err(|_| "headers are not UTF-8")?;
    for line in text.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
            return value
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| "bad Content-Length");
        }
    }
    Ok(None)
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
    let len = head + body;
    if len > MAX_MESSAGE {
        Frame::Broken("message over 64 KiB")
    } else if buf.len() < len {
        Frame::Incomplete
    } else {
        Frame::Message { len }
    }
}

const COMPACT: [(&str, &str); 10] = [
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
    let mut out = Vec::with_capacity(message.len() + 64);
    for (i, line) in head.split("\r\n").enumerate() {
        if i > 0 && line.starts_with([' ', '\t']) {
            out.push(b' ');
            out.extend_from_slice(line.trim_start().as_bytes());
            continue;
        }
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(expand_name(line).as_bytes());
    }
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
    Ok(out)
}

fn expand_name(line: &str) -> Cow<'_, str> {
    if let Some((name, rest)) = line.split_once(':') {
        let trimmed = name.trim();
        if let Some((_, full)) = COMPACT
            .iter()
            .find(|(c, _)| trimmed.eq_ignore_ascii_case(c))
        {
            return Cow::Owned(format!("{full}:{rest}"));
        }
    }
    Cow::Borrowed(line)
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
            Frame::Broken("message over 64 KiB")
        );
        assert!(matches!(
            next_frame(&vec![b'a'; MAX_MESSAGE + 1]),
            Frame::Broken(_)
        ));
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
}
