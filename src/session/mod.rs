//! The session layer: SDP parsing and RFC 3264 offer/answer. Pure functions, no I/O; the call
//! layer turns the outcome into an RTP stream.

pub mod negotiate;
pub mod sdes;
pub mod sdp;
