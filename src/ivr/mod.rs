//! The conversation: a per-call API (`say`, `ask`, `hangup`) over the media stream, the flow
//! it runs (described in `sip-config/flow.toml`), and what the flow's actions need.

pub mod app;
pub mod call;
pub mod console;
pub mod flow;
pub mod graph;
pub mod numbers;
pub mod routes;
pub mod script;
pub mod trace;
pub mod webhook;
