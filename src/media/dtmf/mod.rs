//! Key presses: RFC 4733 telephone-events (first choice) and in-band tones (fallback), both
//! sans-I/O: packets or samples and `now` in, digits out. SIP INFO digits are read in the SIP
//! layer and reach the stream as commands.

pub mod inband;
pub mod rfc4733;

/// Where a digit came from, for the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigitSource {
    Rfc4733,
    Info,
    Inband,
}

impl DigitSource {
    pub fn as_str(self) -> &'static str {
        match self {
            DigitSource::Rfc4733 => "rfc4733",
            DigitSource::Info => "info",
            DigitSource::Inband => "inband",
        }
    }
}

/// The telephone-event codes of keys (RFC 4733 §3.2): 0–9, *, #, A–D.
pub fn event_to_digit(code: u8) -> Option<char> {
    match code {
        0..=9 => Some((b'0' + code) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + code - 12) as char),
        _ => None,
    }
}

pub fn is_digit(c: char) -> bool {
    matches!(c, '0'..='9' | '*' | '#' | 'A'..='D')
}
