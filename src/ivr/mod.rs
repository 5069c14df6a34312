//! The conversation: a per-call API (`say`, `hangup`) over the media stream, and the flow
//! that uses it.

pub mod call;
pub mod flow;
