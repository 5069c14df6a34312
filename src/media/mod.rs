//! Media: codecs, the prompt library encoded once at start-up, the RTP port pool, and the
//! per-call RTP stream.

pub mod codec;
pub mod dtmf;
pub mod ports;
pub mod prompt;
pub mod stream;
