//! An endpoint stood in by canned replies (`ivr simulate --endpoint`, `ivr flow test`): what
//! would have been posted is told to the tracer, and no socket is opened.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::ivr::trace::{tell, Trace, Tracer};

/// One canned reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Canned {
    pub status: u16,
    pub body: Vec<u8>,
}

pub struct StandIn {
    name: String,
    /// Replies in turn; the last one answers every request after it.
    replies: Mutex<VecDeque<Canned>>,
    tracer: Option<Tracer>,
}

impl StandIn {
    pub fn new(name: &str, replies: Vec<Canned>, tracer: Option<Tracer>) -> StandIn {
        StandIn {
            name: name.to_string(),
            replies: Mutex::new(replies.into()),
            tracer,
        }
    }

    /// The reply to a request carrying `body` (JSON, or a form), told to the tracer.
    pub fn answer(&self, content_type: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let posted = if content_type.contains("form") {
            let fields = form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
                .collect();
            serde_json::Value::Object(fields)
        } else {
            serde_json::from_slice(body).unwrap_or(serde_json::Value::Null)
        };
        let endpoint = self.name.clone();
        tell(
            self.tracer.as_ref(),
            Trace::Posted {
                endpoint,
                body: posted,
            },
        );
        let mut replies = self.replies.lock().unwrap_or_else(|p| p.into_inner());
        let reply = match replies.len() {
            0 => None,
            1 => replies.front().cloned(),
            _ => replies.pop_front(),
        };
        reply.map_or((200, Vec::new()), |r| (r.status, r.body))
    }
}
