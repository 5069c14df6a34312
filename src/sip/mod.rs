//! SIP signalling: transport (UDP/TCP), framing and messages (rsip underneath), RFC 3261
//! transactions and dialogs, and the user-agent core that drives them and talks to the
//! layer above through events and commands.

pub mod admission;
pub mod allow;
pub mod auth;
pub mod dial;
pub mod dialog;
pub mod digest;
pub mod driver;
pub mod framing;
pub mod info;
pub mod locate;
pub mod message;
pub mod refer;
pub mod registration;
pub mod reliable;
pub mod session_timer;
pub mod tls;
pub mod transaction;
pub mod transport;
pub mod ua;
