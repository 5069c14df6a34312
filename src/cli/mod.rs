//! The binary's own commands beside `serve`: they use the library, the library never uses them.

pub mod flow;
pub mod users;
