//! What a remote step asks its application, and how: the request (the call and its public
//! variables), tried again after a refused connection or a 5xx, then the fallback URL; and the
//! first request of a flow that starts with an application, made while the call rings.

use std::collections::VecDeque;
use std::time::Duration;

use serde_json::{json, Value};

use super::{CallingParty, FlowEnv};
use crate::ivr::app::exchange;
use crate::ivr::app::verbs::Verb;
use crate::ivr::script::steps::endpoint::{self, Endpoint};
use crate::ivr::script::steps::vars::Vars;

/// How long an application may take to answer one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Tries after the first, when nothing was received or the application failed (5xx).
const RETRIES: u32 = 2;

/// The application's answer to the call, asked while the caller hears ringing (so its first
/// verb may refuse the call): the verbs, or why there are none.
pub type FirstReply = Result<VecDeque<Verb>, String>;

/// Whether the flow starts with a `remote` step (its application is asked before the answer).
pub fn starts_with_application(env: &FlowEnv) -> bool {
    start_application(env).is_some()
}

/// The start step and its endpoint's name, when the start step is `remote`.
fn start_application(env: &FlowEnv) -> Option<(&str, &str)> {
    let start = env.script.start.as_ref()?.get_ref();
    let endpoint = env.script.steps.get(start)?.remote.as_ref()?.get_ref();
    Some((start, endpoint))
}

/// Asks the application a flow starts with (a `remote` start step) about a new call before it
/// is answered; `None` when the flow does not start with one.
pub async fn consult_while_ringing(
    env: &FlowEnv,
    call_id: &str,
    caller: &CallingParty,
) -> Option<FirstReply> {
    let (start, endpoint_name) = start_application(env)?;
    let Some(endpoint) = env.endpoints.get(endpoint_name) else {
        return Some(Err(format!(
            "no endpoint {endpoint_name:?} in the settings"
        )));
    };
    let language = env.script.start_folder();
    let vars = super::actions::arrival_variables(call_id, caller, language.as_deref());
    let language = language.as_deref().unwrap_or("base");
    let event = request(json!({"event": "call"}), call_id, &vars, language);
    let key = format!("{call_id}-{start}-1");
    Some(
        fetch(
            &env.http,
            endpoint,
            &endpoint.url,
            &event,
            &key,
            (call_id, start),
        )
        .await,
    )
}
/// `event` with the call and its non-secret variables, as every request carries them.
pub(super) fn request(mut event: Value, call_id: &str, vars: &Vars, language: &str) -> Value {
    if let Value::Object(fields) = &mut event {
        fields.insert(
            "call".into(),
            json!({
                "id": call_id,
                "from": vars.get("call.from"),
                "to": vars.get("call.to"),
                "language": language,
            }),
        );
        let public = vars
            .public()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        fields.insert("vars".into(), Value::Object(public));
    }
    event
}

/// The verbs `url` answers `event` with, or the endpoint's `fallback_url`'s when it has none.
pub(super) async fn fetch(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    url: &str,
    event: &Value,
    key: &str,
    (call_id, step): (&str, &str),
) -> Result<VecDeque<Verb>, String> {
    let mut why = String::new();
    for target in std::iter::once(url).chain(endpoint.fallback_url.as_deref()) {
        match ask(http, endpoint, target, event, key).await {
            Ok(verbs) => return Ok(verbs),
            Err(failed) => {
                tracing::warn!(call_id, step, why = %failed, "the application did not answer");
                why = failed;
            }
        }
    }
    Err(why)
}

/// One URL, tried again (same idempotency key) after a refused connection or a 5xx, at most
/// `RETRIES` times.
async fn ask(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    url: &str,
    event: &Value,
    key: &str,
) -> Result<VecDeque<Verb>, String> {
    let mut attempt = 0;
    loop {
        let outgoing = exchange::encode(endpoint, url, event);
        let asked = ("POST", key, REQUEST_TIMEOUT);
        let answer = endpoint::deliver(http, endpoint, url, outgoing, asked).await;
        let again = match &answer {
            Ok((status, _)) => *status >= 500,
            Err(why) => why.starts_with(endpoint::NOT_CONNECTED),
        };
        if again && attempt < RETRIES {
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            continue;
        }
        let body = match answer {
            Ok((200..=299, body)) => body,
            Ok((status, _)) => return Err(format!("the application answered {status}")),
            Err(why) => return Err(why),
        };
        return exchange::decode(endpoint, url, &body)
            .map(VecDeque::from)
            .map_err(|why| format!("the application's reply: {why}"));
    }
}
