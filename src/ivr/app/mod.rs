//! Web applications that drive a call: what they answer (the JSON verbs) and where they may
//! send it next. The engine that runs the verbs is the flow's (`flow::remote`).

pub mod clips;
pub mod exchange;
pub mod status;
pub mod twiml;
pub mod urls;
pub mod verbs;
