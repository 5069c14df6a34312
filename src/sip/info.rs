//! Keys carried in SIP INFO bodies: `application/dtmf-relay` (`Signal=5` / `Duration=160`)
//! and `application/dtmf` (the key alone).

#[derive(Debug, PartialEq, Eq)]
pub enum InfoDtmf {
    Digit(char),
    /// No body: a keep-alive or a probe, answered 200.
    Empty,
    /// A body type we do not read: 415.
    Unsupported,
    /// A DTMF body we cannot read: 400.
    Malformed,
}

pub const ACCEPT: &str = "application/dtmf-relay, application/dtmf";

pub fn dtmf_from_info(content_type: Option<&str>, body: &[u8]) -> InfoDtmf {
    if body.iter().all(u8::is_ascii_whitespace) {
        return InfoDtmf::Empty;
    }
    let media_type = content_type
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim();
    let Ok(text) = std::str::from_utf8(body) else {
        return InfoDtmf::Malformed;
    };
    let signal = match media_type {
        "application/dtmf-relay" => text.lines().find_map(|line| {
            let (name, value) = line.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("signal")
                .then(|| value.trim())
        }),
        "application/dtmf" => Some(text.trim()),
        _ => return InfoDtmf::Unsupported,
    };
    match signal.map(parse_signal) {
        Some(Some(d)) => InfoDtmf::Digit(d),
        _ => InfoDtmf::Malformed,
    }
}

/// `5`, `*`, `#`, `A`–`D` (any case), or the event codes 10 and 11 some phones send.
fn parse_signal(s: &str) -> Option<char> {
    match s {
        "10" => return Some('*'),
        "11" => return Some('#'),
        _ => {}
    }
    let mut chars = s.chars();
    let c = chars.next()?.to_ascii_uppercase();
    (chars.next().is_none() && matches!(c, '0'..='9' | '*' | '#' | 'A'..='D')).then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dtmf_relay_and_dtmf_bodies() {
        let relay = Some("application/dtmf-relay");
        assert_eq!(
            dtmf_from_info(relay, b"Signal=5\r\nDuration=160\r\n"),
            InfoDtmf::Digit('5')
        );
        assert_eq!(
            dtmf_from_info(relay, b"Signal= #\r\nDuration= 250\r\n"),
            InfoDtmf::Digit('#')
        );
        assert_eq!(dtmf_from_info(relay, b"signal=11\n"), InfoDtmf::Digit('#'));
        assert_eq!(
            dtmf_from_info(Some("application/dtmf"), b"*"),
            InfoDtmf::Digit('*')
        );
        assert_eq!(
            dtmf_from_info(Some("application/dtmf; x=y"), b"d\r\n"),
            InfoDtmf::Digit('D')
        );
    }

    #[test]
    fn other_bodies_give_no_digit() {
        assert_eq!(dtmf_from_info(None, b""), InfoDtmf::Empty);
        assert_eq!(
            dtmf_from_info(Some("application/media_control+xml"), b"<x/>"),
            InfoDtmf::Unsupported
        );
        assert_eq!(
            dtmf_from_info(Some("application/dtmf-relay"), b"Duration=160"),
            InfoDtmf::Malformed
        );
        assert_eq!(
            dtmf_from_info(Some("application/dtmf-relay"), b"Signal=55"),
            InfoDtmf::Malformed
        );
        assert_eq!(
            dtmf_from_info(Some("application/dtmf"), b"E"),
            InfoDtmf::Malformed
        );
        assert_eq!(
            dtmf_from_info(Some("application/dtmf"), &[0xff, 0xfe]),
            InfoDtmf::Malformed
        );
    }
}
