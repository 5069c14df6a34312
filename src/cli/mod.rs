//! The binary's own commands beside `serve`: they use the library, the library never uses them.

mod conversation;
pub mod flow;
mod flow_test;
pub mod simulate;
pub mod users;
