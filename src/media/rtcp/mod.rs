//! RTCP (RFC 3550 §6): the reports a call's stream sends about what it sent and heard, and what
//! it learns from the caller's reports. Sans I/O: the stream hands in packets and times, and
//! takes back bytes to send and the call's quality figures.

pub mod ntp;
pub mod packet;
pub mod reception;
pub mod session;

pub use session::{millis, Quality, RtcpSession};
