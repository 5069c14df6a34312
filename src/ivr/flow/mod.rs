//! A call's conversation as its flow file describes it: the welcome, then either the steps and
//! menus from `start`, or the seed's login (account, PIN, verification, greeting) and its menus.
//! Every way out ends with a prompt and a BYE from us, or stops at once when the caller hangs up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::sleep;

use super::app::clips::ClipCache;
use super::app::status::StatusTarget;
use super::call::{Call, Gone};
use super::script::steps::endpoint::Endpoint;
use super::script::Script;
use crate::directory::Directory;
use crate::media::speech::SpeechCache;

mod actions;
mod app_request;
mod login;
mod remote;

pub use app_request::{consult_while_ringing, starts_with_application, FirstReply};
mod steps;
mod verify;

/// What every call's flow shares.
pub struct FlowEnv {
    pub script: Script,
    /// The file the script came from, for logs.
    pub name: String,
    pub directory: Arc<dyn Directory>,
    pub http: reqwest::Client,
    /// Text-to-speech; `None` when no engine is installed (names and texts are then skipped).
    pub speech: Option<Arc<SpeechCache>>,
    /// How long a caller waits for speech that is not ready, after "Welcome" has been said.
    pub speech_wait: Duration,
    /// The operator's APIs that http steps call, by name (`[endpoints.<name>]`).
    pub endpoints: HashMap<String, Endpoint>,
    /// Recordings applications play by URL.
    pub clips: Arc<ClipCache>,
    /// Where this flow's calls are reported as they go (the `status_url` of the endpoints its
    /// remote steps hand calls to).
    pub status: Vec<StatusTarget>,
}

/// The flows by number dialled.
pub type Flows = super::routes::Routes<Arc<FlowEnv>>;

/// What the conversation leaves for the call record: never the PIN, the account masked.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    pub verification: Option<&'static str>,
    pub account: Option<String>,
    /// The menu keys the caller chose, in order.
    pub menu_keys: String,
    /// A greeting (recorded or synthesised) followed "Welcome". Never the text itself.
    pub greeting_spoken: bool,
    /// Where the caller was transferred, when a transfer succeeded.
    pub transferred_to: Option<String>,
}

/// Who is calling: the number the flow shows (webhooks, call records), and the key its wrong
/// PINs are counted under. They differ for a stranger on the internet, who can write any number
/// in From: its guesses count against its network address instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallingParty {
    pub number: String,
    pub lockout_key: String,
    /// The number dialled (the Request-URI's user): `call.to` in the flow.
    pub dialled: String,
}

impl From<String> for CallingParty {
    /// A party whose number is believed (a trunk's caller, a test's).
    fn from(number: String) -> CallingParty {
        CallingParty {
            lockout_key: number.clone(),
            number,
            dialled: String::new(),
        }
    }
}

/// Runs the conversation until it ends, the call reaches its maximum length, or `closing`
/// turns true (the server's shutdown grace is over): then goodbye and BYE.
pub async fn run(
    mut call: Call,
    env: Arc<FlowEnv>,
    (caller, first_reply): (CallingParty, Option<FirstReply>),
    mut closing: watch::Receiver<bool>,
    report: Arc<Mutex<Report>>,
) {
    let script = &env.script;
    call.set_language(script.start_folder());
    let limit = Duration::from_secs(env.script.max_call_seconds);
    let closed = async {
        // A dropped sender means no shutdown will ever be announced.
        if closing.wait_for(|closing| *closing).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let outcome = tokio::select! {
        outcome = conversation(&mut call, &env, (&caller, first_reply), &report) => Some(outcome),
        () = sleep(limit) => {
            tracing::info!(call_id = %call.call_id, seconds = limit.as_secs(), "maximum call duration reached");
            None
        }
        () = closed => {
            tracing::info!(call_id = %call.call_id, "server shutting down, ending the call");
            None
        }
    };
    match outcome {
        Some(Ok(())) => {}
        Some(Err(Gone)) => tracing::debug!(call_id = %call.call_id, "flow stopped: call gone"),
        None => {
            call.stop();
            if call
                .say(env.script.outcomes.goodbye.get_ref())
                .await
                .is_ok()
            {
                call.hangup();
            }
        }
    }
}

/// Says `prompt`, then BYE.
async fn farewell(call: &mut Call, prompt: &str) -> Result<(), Gone> {
    call.say(prompt).await?;
    call.hangup();
    Ok(())
}

fn note(report: &Mutex<Report>, change: impl FnOnce(&mut Report)) {
    if let Ok(mut report) = report.lock() {
        change(&mut report);
    }
}

async fn conversation(
    call: &mut Call,
    env: &FlowEnv,
    (caller, first_reply): (&CallingParty, Option<FirstReply>),
    report: &Mutex<Report>,
) -> Result<(), Gone> {
    call.play(env.script.welcome.get_ref(), true).await?;
    match &env.script.start {
        Some(start) => {
            let arrival = (caller, first_reply);
            steps::run(call, env, arrival, start.get_ref(), report).await
        }
        None => login::conversation(call, env, caller, report).await,
    }
}

#[cfg(test)]
mod remote_tests;
#[cfg(test)]
mod step_tests;
#[cfg(test)]
mod tests;
