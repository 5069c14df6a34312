//! Menu actions that ask a web service what to say: POST JSON describing the call, get back the
//! prompts, numbers and amounts to speak.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::numbers::Grammar;

/// The largest reply read: a page of things to say is a few hundred bytes.
const MAX_REPLY: usize = 64 * 1024;
/// The most things one reply may ask to say.
const MAX_SAID: usize = 64;

#[derive(Debug, Serialize)]
pub struct WebhookRequest<'a> {
    pub call_id: &'a str,
    pub caller: &'a str,
    pub account: &'a str,
    pub option: &'a str,
}

#[derive(Debug, Deserialize)]
struct WebhookReply {
    say: Vec<SayItem>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SayItem {
    Prompt(String),
    Number(u64),
    Amount(String),
    Text(String),
}

/// One thing to say: a recorded prompt by name, or text for the speech engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Spoken {
    Prompt(String),
    Text(String),
}

/// What to say, or why there is nothing.
pub async fn ask(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
    request: &WebhookRequest<'_>,
    grammar: Option<&Grammar>,
) -> Result<Vec<Spoken>, String> {
    let response = http
        .post(url)
        .timeout(timeout)
        .json(request)
        .send()
        .await
        .map_err(|e| format!("webhook request failed: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("webhook answered {}", response.status()));
    }
    let body = crate::http::read_capped(response, MAX_REPLY)
        .await
        .map_err(|e| format!("webhook reply refused: {e}"))?;
    let reply: WebhookReply =
        serde_json::from_slice(&body).map_err(|e| format!("webhook reply unreadable: {e}"))?;
    spoken(reply.say, grammar)
}

/// The `say` list of an API's JSON reply (none: nothing to say).
pub fn say_list(
    reply: &serde_json::Value,
    grammar: Option<&Grammar>,
) -> Result<Vec<Spoken>, String> {
    match reply.get("say") {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(list) => {
            let items: Vec<SayItem> = serde_json::from_value(list.clone())
                .map_err(|e| format!("reply's say list unreadable: {e}"))?;
            spoken(items, grammar)
        }
    }
}

fn spoken(items: Vec<SayItem>, grammar: Option<&Grammar>) -> Result<Vec<Spoken>, String> {
    if items.len() > MAX_SAID {
        return Err(format!(
            "webhook asked to say {} things (at most {MAX_SAID})",
            items.len()
        ));
    }
    let mut said = Vec::new();
    for item in items {
        let prompts = match item {
            SayItem::Prompt(p) => vec![p],
            SayItem::Number(n) => grammar
                .and_then(|g| g.number(n))
                .ok_or("webhook number too large, or no number words loaded")?,
            SayItem::Amount(a) => a
                .parse()
                .ok()
                .zip(grammar)
                .and_then(|(a, g)| g.amount(a))
                .ok_or("webhook amount unreadable, or no number words loaded")?,
            SayItem::Text(text) => {
                said.push(Spoken::Text(text));
                continue;
            }
        };
        said.extend(prompts.into_iter().map(Spoken::Prompt));
    }
    Ok(said)
}
