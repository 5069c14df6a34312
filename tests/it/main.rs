//! Every integration test in one binary (one link instead of one per file), a module per area.
//! libtest runs them on parallel threads, so each test takes free ports from the OS, its own
//! temporary directory and nothing global; the peers it starts die with it (`support`).

#[path = "../support/mod.rs"]
mod support;

mod allow_list;
mod attacks;
mod auth0;
mod auth0_calls;
mod bridge;
mod cluster;
mod conversation;
mod dashboards;
mod directories;
mod draining;
mod dtmf;
mod flow_graph;
mod g722;
mod ipv6;
mod kamailio_registrar;
mod operations;
mod opus;
mod pin_key;
mod prack;
mod registration;
mod reject;
mod remote;
mod routes;
mod rtcp;
mod session_timers;
mod shared_lockout;
mod simulate;
mod sip_sipp;
mod sip_wire;
mod softphone_auth;
mod softphones;
mod speech;
mod srtp;
mod steps;
mod tcp_edge;
mod tls;
mod transfer;
mod twiml;
