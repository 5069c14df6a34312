//! What a conversation does, told as it goes to whoever watches it without a phone: `ivr
//! simulate` prints it, `ivr flow test` checks it. A call on a real line has no tracer and
//! tells nothing (each `trace` is then a no-op). Secrets never appear: variables come masked.

use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq)]
pub enum Trace {
    /// The flow entered a step or a menu.
    Step(String),
    /// The call's variables after a step, sorted by name, secrets as `****`.
    Vars(Vec<(String, String)>),
    /// Speech about to be played: the clip that follows says this.
    Text(String),
    /// The call waits for keys now (its question asked); `secret`: they are a PIN's; `ask`:
    /// the question's number, which `MediaEvent::Expire` names to end the wait at once.
    Listening { secret: bool, ask: u64 },
    /// What a stood-in endpoint was sent (JSON, or TwiML's form as an object).
    Posted {
        endpoint: String,
        body: serde_json::Value,
    },
}

pub type Tracer = mpsc::UnboundedSender<Trace>;

/// Tells `tracer`, when there is one.
pub fn tell(tracer: Option<&Tracer>, event: Trace) {
    if let Some(tracer) = tracer {
        let _ = tracer.send(event);
    }
}
