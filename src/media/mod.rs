//! Media: codecs, the prompt library encoded once at start-up, the RTP port pool, the per-call
//! RTP stream and the pacer threads that drive every stream on a shared 20 ms clock.

pub mod arrival;
pub mod codec;
pub mod dtmf;
pub mod latch;
pub mod lateness;
pub mod loss;
pub mod pacer;
pub mod ports;
pub mod prompt;
pub mod prompt_cache;
pub mod reach;
pub mod relay;
pub mod rtcp;
pub mod speech;
pub mod srtp;
pub mod stream;
pub mod uring;
pub mod wire;
