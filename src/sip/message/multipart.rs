//! A `multipart/mixed` body (RFC 5621, RFC 4475's `mpart01`): the session description found
//! among its parts, so an INVITE that carries SDP beside something else is still a call.

/// The `application/sdp` part of a multipart/mixed body whose Content-Type is `content_type`.
pub(super) fn sdp_part(content_type: &str, body: &[u8]) -> Option<Vec<u8>> {
    let mut params = content_type.split(';');
    if !params
        .next()?
        .trim()
        .eq_ignore_ascii_case("multipart/mixed")
    {
        return None;
    }
    let boundary = params.find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"'))
    })?;
    if boundary.is_empty() || boundary.len() > 70 {
        return None;
    }
    let delimiter = format!("--{boundary}");
    let text = std::str::from_utf8(body).ok()?;
    text.split(delimiter.as_str())
        .skip(1)
        .take_while(|part| !part.starts_with("--"))
        .find_map(|part| {
            let part = part.strip_prefix("\r\n")?;
            let (headers, content) = part.split_once("\r\n\r\n")?;
            let is_sdp = headers.split("\r\n").any(|h| {
                h.split_once(':').is_some_and(|(n, v)| {
                    n.trim().eq_ignore_ascii_case("content-type")
                        && v.trim().to_ascii_lowercase().starts_with("application/sdp")
                })
            });
            // The CRLF before the next delimiter belongs to the delimiter (RFC 2046 §5.1.1).
            is_sdp.then(|| {
                content
                    .strip_suffix("\r\n")
                    .unwrap_or(content)
                    .as_bytes()
                    .to_vec()
            })
        })
}

#[cfg(test)]
mod tests {
    use super::sdp_part;

    const BODY: &str = "--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\nm=audio 4 RTP/AVP 0\r\n\r\n--b1--\r\n";

    #[test]
    fn finds_the_offer_among_the_parts() {
        let got = sdp_part("multipart/mixed;boundary=b1", BODY.as_bytes()).unwrap();
        assert_eq!(got, b"v=0\r\nm=audio 4 RTP/AVP 0\r\n");
        assert_eq!(
            sdp_part("multipart/mixed; boundary=\"b1\"", BODY.as_bytes()).map(|b| b.len()),
            Some(26)
        );
    }

    #[test]
    fn no_sdp_part_or_no_boundary_is_none() {
        assert_eq!(
            sdp_part("multipart/mixed;boundary=b2", BODY.as_bytes()),
            None
        );
        assert_eq!(sdp_part("multipart/mixed", BODY.as_bytes()), None);
        assert_eq!(sdp_part("application/sdp", BODY.as_bytes()), None);
        // RFC 2046 caps a boundary at 70 characters: a longer one is not looked for.
        let long = "b".repeat(71);
        let body = BODY.replace("b1", &long);
        assert_eq!(
            sdp_part(&format!("multipart/mixed;boundary={long}"), body.as_bytes()),
            None
        );
        let no_sdp = BODY.replace("application/sdp", "text/html");
        assert_eq!(
            sdp_part("multipart/mixed;boundary=b1", no_sdp.as_bytes()),
            None
        );
    }
}
