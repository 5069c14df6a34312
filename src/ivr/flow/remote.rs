//! A `remote` step: the call handed to a web application, which speaks our JSON verbs or
//! Twilio's TwiML (`app::exchange` reads either into the same verbs). The IVR posts the call,
//! runs the verbs the app answers in order, posts a verb's result to its `action` and runs the
//! reply in place of what was still queued (jambonz's rule); the verbs running out end the
//! call. Secrets gathered stay in the IVR (unless the endpoint has `receive_secrets`): `verify`
//! checks them against our own directory and the app hears only the outcome.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};

use super::actions::say_all;
use super::app_request::{fetch, request};
use super::steps::{with_please_wait, Onward, State};
use super::{verify, CallingParty, FlowEnv, Report};
use crate::directory::Verification;
use crate::ivr::app::urls::resolve;
use crate::ivr::app::verbs::{Gather, Say, Verb};
use crate::ivr::call::{Answer, Ask, Call, Gone, TransferMode, TransferRequest};
use crate::ivr::numbers::digit_prompts;
use crate::ivr::script::steps::endpoint::Endpoint;
use crate::ivr::trace::Trace;
use crate::ivr::webhook::Spoken;
use crate::sip::refer::TransferOutcome;

/// Requests one call may make of its application (the first, each action and redirect).
pub const MAX_REQUESTS: u32 = 50;

/// Why the application could not be followed: the step's `on_error`, or the error prompt.
struct Broken(String);

impl State {
    pub(super) async fn remote(
        &mut self,
        call: &mut Call,
        env: &FlowEnv,
        caller: &CallingParty,
        (name, endpoint_name): (&str, &str),
        report: &Mutex<Report>,
    ) -> Result<Result<Onward, String>, Gone> {
        let Some(endpoint) = env.endpoints.get(endpoint_name) else {
            return Ok(Err(format!(
                "no endpoint {endpoint_name:?} in the settings"
            )));
        };
        let mut app = App {
            endpoint,
            step: name,
            requests: 0,
        };
        let first = match self.first_reply.take() {
            // Asked while ringing, for the start step: not asked again.
            Some(reply) => {
                app.requests = 1;
                reply.map_err(Broken)
            }
            None => {
                let url = endpoint.url.clone();
                app.post(call, env, self, &url, json!({"event": "call"}))
                    .await?
            }
        };
        let mut queue = match first {
            Ok(verbs) => verbs,
            Err(Broken(why)) => return Ok(Err(why)),
        };
        while let Some(verb) = queue.pop_front() {
            let next = match self
                .run_verb(call, env, caller, &mut app, verb, report)
                .await?
            {
                Ok(next) => next,
                Err(Broken(why)) => return Ok(Err(why)),
            };
            match next {
                Next::Go => {}
                Next::Replace(verbs) => queue = verbs,
                Next::Leave(onward) => return Ok(Ok(onward)),
            }
        }
        tracing::info!(call_id = %call.call_id, step = name, "the application's verbs ran out: ending the call");
        call.hangup();
        Ok(Ok(None))
    }

    async fn run_verb(
        &mut self,
        call: &mut Call,
        env: &FlowEnv,
        caller: &CallingParty,
        app: &mut App<'_>,
        verb: Verb,
        report: &Mutex<Report>,
    ) -> Result<Result<Next, Broken>, Gone> {
        match verb {
            Verb::Say(Say { url: Some(url), .. }) | Verb::PlayUrl(url) => {
                if let Err(broken) = play_url(call, env, app.endpoint, &url).await? {
                    return Ok(Err(broken));
                }
            }
            Verb::Say(say) => say_all(call, spoken(call, env, &[say]), env).await?,
            Verb::Play(prompt) => call.play(&prompt, true).await?,
            Verb::Pause(seconds) => tokio::time::sleep(Duration::from_secs(seconds)).await,
            Verb::Set(values) => {
                for (k, v) in values.into_iter().filter(|(k, _)| !k.contains('.')) {
                    self.vars.set(&k, &v);
                }
            }
            Verb::Language(code) => call.set_language(env.script.folder_of(&code)),
            Verb::Hangup => {
                call.hangup();
                return Ok(Ok(Next::Leave(None)));
            }
            Verb::Reject { .. } => {
                tracing::warn!(call_id = %call.call_id, step = app.step, "reject: the call is already answered, hanging up instead (reject only as the first verb of the first reply)");
                call.hangup();
                return Ok(Ok(Next::Leave(None)));
            }
            Verb::Return(target) => {
                let script = &env.script;
                if !script.steps.contains_key(&target) && !script.menus.contains_key(&target) {
                    return Ok(Err(Broken(format!(
                        "return to {target:?}: no such step or menu"
                    ))));
                }
                return Ok(Ok(Next::Leave(Some(target))));
            }
            Verb::Redirect(url) => {
                return app
                    .post(call, env, self, &url, json!({"event": "redirect"}))
                    .await
                    .map(|r| r.map(Next::Replace));
            }
            Verb::Gather(gather) => {
                let (digits, reason) = self.gather(call, env, &gather, app.endpoint).await?;
                let Some(action) = gather
                    .action
                    .filter(|_| gather.post_empty || !digits.is_empty())
                else {
                    return Ok(Ok(Next::Go));
                };
                // A secret's digits stay in the IVR unless the endpoint was configured to receive
                // them (https only): the app learns that it was given.
                let shown = if gather.secret && !app.endpoint.receive_secrets {
                    String::new()
                } else {
                    digits
                };
                let result = json!({"event": "gather", "digits": shown, "reason": reason, "secret": gather.secret});
                return app
                    .post(call, env, self, &action, result)
                    .await
                    .map(|r| r.map(Next::Replace));
            }
            Verb::Verify(v) => {
                let pin = self.vars.get(&v.pin).unwrap_or_default().to_string();
                self.vars.set_secret(&v.pin, "");
                let outcome =
                    verify::check(&call.call_id, env, &v.account, pin, caller, report).await;
                let (verified, reason, greeting) = match &outcome {
                    Verification::Verified(user) => (true, "verified", user.greeting_text.clone()),
                    Verification::WrongCredentials => (false, "wrong_credentials", None),
                    Verification::Locked => (false, "locked", None),
                    Verification::Unavailable(_) => (false, "unavailable", None),
                };
                if let Verification::Verified(user) = outcome {
                    super::actions::user_variables(&mut self.vars, &v.account, &user);
                    self.user = user;
                }
                let Some(action) = v.action else {
                    return Ok(Ok(Next::Go));
                };
                let masked = crate::directory::Masked(&v.account).to_string();
                let result = json!({"event": "verify", "verified": verified, "reason": reason, "greeting": greeting, "account": masked});
                return app
                    .post(call, env, self, &action, result)
                    .await
                    .map(|r| r.map(Next::Replace));
            }
            Verb::Transfer(t) => {
                let mode = match t.mode.as_deref() {
                    Some("bridge") => TransferMode::Bridge,
                    _ => TransferMode::Refer,
                };
                if !crate::sip::refer::valid_target(&t.to) {
                    return Ok(Err(Broken(format!(
                        "transfer to {:?}: not a sip:, sips: or tel: URI",
                        t.to
                    ))));
                }
                let request = TransferRequest {
                    target: t.to.clone(),
                    mode,
                    ring_timeout: t.timeout_s.map(|s| Duration::from_secs(s.clamp(1, 600))),
                    // As Twilio's <Dial>: the target hanging up leaves the caller with the app.
                    caller_stays: mode == TransferMode::Bridge,
                };
                match call.transfer(request).await? {
                    TransferOutcome::Succeeded if mode == TransferMode::Bridge => {
                        let seconds = call.stay_bridged().await?;
                        if let Some(action) = t.action {
                            let result = json!({"event": "transfer", "status": "completed", "duration_s": seconds});
                            return app
                                .post(call, env, self, &action, result)
                                .await
                                .map(|r| r.map(Next::Replace));
                        }
                    }
                    TransferOutcome::Succeeded | TransferOutcome::Ended { .. } => {
                        call.hangup();
                        return Ok(Ok(Next::Leave(None)));
                    }
                    TransferOutcome::Failed { status } => {
                        tracing::info!(call_id = %call.call_id, status, "the application's transfer failed");
                        if let Some(action) = t.action {
                            let outcome = match status {
                                486 | 600 => "busy",
                                408 | 480 | 487 => "no-answer",
                                _ => "failed",
                            };
                            let result = json!({"event": "transfer", "status": outcome, "sip_status": status});
                            return app
                                .post(call, env, self, &action, result)
                                .await
                                .map(|r| r.map(Next::Replace));
                        }
                    }
                }
            }
        }
        Ok(Ok(Next::Go))
    }

    /// The caller's digits and why the gather ended: `terminator`, `max_digits` or `timeout`.
    async fn gather(
        &mut self,
        call: &mut Call,
        env: &FlowEnv,
        g: &Gather,
        endpoint: &Endpoint,
    ) -> Result<(String, &'static str), Gone> {
        let ask = Ask {
            prompt: None,
            min_digits: g.min_digits,
            max_digits: g.max_digits,
            terminator: g.finish_on_key.as_deref().and_then(|t| t.chars().next()),
            first_timeout: Duration::from_secs(g.timeout_s.min(60)),
            inter_timeout: Duration::from_secs(g.inter_digit_timeout_s.min(60)),
            attempts: 1,
            retry_prompt: None,
            barge_in: true,
            secret: g.secret,
            pattern: None,
        };
        for _ in 0..g.attempts {
            for said in &g.say {
                match &said.url {
                    Some(url) => {
                        if let Err(Broken(why)) = play_url(call, env, endpoint, url).await? {
                            tracing::warn!(call_id = %call.call_id, %why, "a gather's recording not played");
                        }
                    }
                    None => {
                        say_all(call, spoken(call, env, std::slice::from_ref(said)), env).await?
                    }
                }
            }
            match call.ask(&ask).await {
                Answer::Digits(digits) => {
                    let reason = call.answer_end().as_str();
                    // `call.*` and `user.*` are the engine's: an application cannot write them.
                    match (g.into.as_deref().filter(|i| !i.contains('.')), g.secret) {
                        (Some(into), true) => self.vars.set_secret(into, &digits),
                        (Some(into), false) => self.vars.set(into, &digits),
                        (None, _) => {}
                    }
                    return Ok((digits, reason));
                }
                Answer::HungUp => return Err(Gone),
                _ => {}
            }
        }
        Ok((String::new(), "timeout"))
    }
}

/// What runs after a verb.
enum Next {
    Go,
    /// An action's or redirect's reply: the verbs still queued are dropped.
    Replace(VecDeque<Verb>),
    /// Leave the application: to a step or menu, or the call is over.
    Leave(Onward),
}

/// The application a remote step follows.
struct App<'a> {
    endpoint: &'a Endpoint,
    step: &'a str,
    requests: u32,
}

impl App<'_> {
    /// Posts `event` (with the call and its non-secret variables) to `url` and reads the verbs.
    async fn post(
        &mut self,
        call: &mut Call,
        env: &FlowEnv,
        state: &State,
        url: &str,
        mut event: Value,
    ) -> Result<Result<VecDeque<Verb>, Broken>, Gone> {
        self.requests += 1;
        if self.requests > MAX_REQUESTS {
            return Ok(Err(Broken(format!(
                "more than {MAX_REQUESTS} requests in one call"
            ))));
        }
        let url = match resolve(&self.endpoint.url, url, &self.endpoint.allowed_hosts) {
            Ok(url) => url,
            Err(why) => return Ok(Err(Broken(format!("refused to fetch: {why}")))),
        };
        let language = call.language().unwrap_or("base");
        event = request(event, &call.call_id, &state.vars, language);
        let key = format!("{}-{}-{}", call.call_id, self.step, self.requests);
        let call_id = call.call_id.clone();
        let asked = fetch(
            &env.http,
            self.endpoint,
            url.as_str(),
            &event,
            &key,
            (&call_id, self.step),
        );
        Ok(with_please_wait(call, env, asked).await?.map_err(Broken))
    }
}

/// Plays the recording at `url` (resolved under the endpoint's rules, fetched once for every
/// call).
async fn play_url(
    call: &mut Call,
    env: &FlowEnv,
    endpoint: &Endpoint,
    url: &str,
) -> Result<Result<(), Broken>, Gone> {
    let url = match resolve(&endpoint.url, url, &endpoint.allowed_hosts) {
        Ok(url) => url,
        Err(why) => return Ok(Err(Broken(format!("play: refused to fetch: {why}")))),
    };
    match env.clips.get(&env.http, url.as_str()).await {
        Ok(clip) => {
            if call.traced() {
                call.trace(Trace::Text(format!("(the recording at {url})")));
            }
            call.play_clip(clip, true).await.map(Ok)
        }
        Err(why) => Ok(Err(Broken(format!("play {url}: {why}")))),
    }
}

/// `say` objects as things to say, numbers and amounts in the call's language (recordings by
/// URL are played by `play_url`); `None` when one cannot be said (no number words in that
/// language, an amount that is not one): the caller hears the error prompt, not silence.
fn spoken(call: &Call, env: &FlowEnv, said: &[Say]) -> Option<Vec<Spoken>> {
    let grammar = env.script.grammar(call.language());
    let mut out = Vec::new();
    for say in said {
        if let Some(text) = &say.text {
            out.push(Spoken::Text(text.clone()));
        } else if let Some(prompt) = &say.prompt {
            out.push(Spoken::Prompt(prompt.clone()));
        } else if let Some(digits) = &say.digits {
            out.extend(digit_prompts(digits).map(Spoken::Prompt));
        } else if let Some(n) = say.number {
            out.extend(grammar?.number(n)?.into_iter().map(Spoken::Prompt));
        } else if let Some(amount) = &say.amount {
            let words = grammar?.amount(amount.parse().ok()?)?;
            out.extend(words.into_iter().map(Spoken::Prompt));
        }
    }
    Some(out)
}
