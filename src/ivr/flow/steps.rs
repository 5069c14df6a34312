//! Runs a flow's steps and menus from `start`: each step does its one thing and names where
//! the call goes next. Steps run between prompts, never per audio frame. A flow that loops
//! without the caller (1,000 steps in a call, or 10 visits in a row to one step) is a bug in
//! the flow: the caller hears the error prompt and the call ends, never hangs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::time::sleep;

use super::actions::{self, run_actions, say_all, Caller, Next};
use super::app_request::FirstReply;
use super::{farewell, verify, CallingParty, FlowEnv, Report};
use crate::directory::{User, Verification};
use crate::ivr::call::{Answer, Ask, Call, Gone};
use crate::ivr::script::steps::endpoint::{self, as_text};
use crate::ivr::script::steps::template::render;
use crate::ivr::script::steps::vars::Vars;
use crate::ivr::script::steps::{Collect, Confirm, HttpCall, Kind, Step, HANGUP};
use crate::ivr::trace::Trace;
use crate::ivr::webhook;
use crate::metrics::METRICS;

/// Steps and menus one call may pass through.
pub const MAX_STEPS: u32 = 1000;
/// Visits in a row to one step (a collect that keeps failing back to itself, a goto loop).
pub const MAX_IN_A_ROW: u32 = 10;
/// How long an API may think before the caller hears `outcomes.please_wait`.
const PLEASE_WAIT_AFTER: Duration = Duration::from_secs(2);

/// Where a step sends the call: a step, a menu or `hangup`; `None` when the call is over.
pub(super) type Onward = Option<String>;

pub(super) async fn run(
    call: &mut Call,
    env: &FlowEnv,
    (caller, first_reply): (&CallingParty, Option<FirstReply>),
    start: &str,
    report: &Mutex<Report>,
) -> Result<(), Gone> {
    let script = &env.script;
    let mut state = State {
        vars: actions::call_variables(call, caller),
        user: User {
            user_id: String::new(),
            greeting: None,
            balance: None,
            greeting_text: None,
        },
        visits: HashMap::new(),
        first_reply,
    };
    let mut current = start.to_string();
    let (mut passed, mut in_a_row, mut last) = (0u32, 0u32, String::new());
    loop {
        if current == HANGUP {
            call.hangup();
            return Ok(());
        }
        passed += 1;
        in_a_row = if current == last { in_a_row + 1 } else { 1 };
        last.clone_from(&current);
        let looping = script.steps.contains_key(&current) && in_a_row > MAX_IN_A_ROW;
        if passed > MAX_STEPS || looping {
            tracing::warn!(call_id = %call.call_id, step = %current, passed, "the flow loops without the caller: ending the call");
            return farewell(call, script.outcomes.error.get_ref()).await;
        }
        if call.traced() {
            call.trace(Trace::Step(current.clone()));
        }
        let onward = if script.menus.contains_key(&current) {
            let who = Caller {
                id: &caller.number,
                user: &state.user,
                vars: &state.vars,
            };
            match actions::menu_once(call, env, &current, &who, report).await? {
                Next::Menu(next) => Some(next),
                Next::SameMenu => Some(current.clone()),
                Next::Over => None,
            }
        } else if let Some(step) = script.steps.get(&current) {
            state
                .step(call, env, caller, (&current, step), report)
                .await?
        } else {
            tracing::warn!(call_id = %call.call_id, step = %current, "no such step or menu");
            return farewell(call, script.outcomes.error.get_ref()).await;
        };
        if call.traced() {
            call.trace(Trace::Vars(state.vars.shown()));
        }
        match onward {
            Some(next) => current = next,
            None => return Ok(()),
        }
    }
}

/// What a call's steps have learnt so far.
pub(super) struct State {
    pub(super) vars: Vars,
    pub(super) user: User,
    /// Visits per step: the idempotency key tells a retry from a second visit.
    visits: HashMap<String, u32>,
    /// The start step's application's reply, asked while the call rang.
    pub(super) first_reply: Option<FirstReply>,
}

impl State {
    async fn step(
        &mut self,
        call: &mut Call,
        env: &FlowEnv,
        caller: &CallingParty,
        (name, step): (&str, &Step),
        report: &Mutex<Report>,
    ) -> Result<Onward, Gone> {
        let visit = self.visits.entry(name.to_string()).or_default();
        *visit += 1;
        let visit = *visit;
        let exit = |exit: &str| Ok(Some(step.exit(exit).to_string()));
        let Ok(kind) = step.kind() else {
            return exit("hangup");
        };
        match kind {
            Kind::Collect => {
                let collect = step.collect.as_ref().expect("a collect step");
                match call.ask(&ask_for(collect)).await {
                    Answer::Digits(digits) if collect.secret => {
                        self.vars.set_secret(collect.into.get_ref(), &digits);
                        exit("next")
                    }
                    Answer::Digits(digits) => {
                        self.vars.set(collect.into.get_ref(), &digits);
                        exit("next")
                    }
                    Answer::HungUp => Err(Gone),
                    _ => exit("on_fail"),
                }
            }
            Kind::Confirm => {
                let confirm = step.confirm.as_ref().expect("a confirm step");
                match self.said(call, env, caller, &confirm.say, report).await? {
                    Next::SameMenu => {}
                    Next::Menu(elsewhere) => return Ok(Some(elsewhere)),
                    Next::Over => return Ok(None),
                }
                exit(confirmed(call, confirm).await?)
            }
            Kind::Http => {
                let http = step.http.as_ref().expect("an http step");
                let key = format!("{}-{name}-{visit}", call.call_id);
                exit(self.ask_api(call, env, (name, http), &key).await?)
            }
            Kind::Switch => {
                let value = render(
                    step.switch.as_ref().map_or("", |s| s.get_ref()),
                    &self.vars,
                    &[],
                );
                let target = step.cases.get(value.trim()).map(|t| t.get_ref().as_str());
                Ok(Some(
                    target.unwrap_or_else(|| step.exit("default")).to_string(),
                ))
            }
            Kind::Say => {
                let said = step.say.as_deref().unwrap_or_default();
                match self.said(call, env, caller, said, report).await? {
                    Next::SameMenu => exit("next"),
                    Next::Menu(elsewhere) => Ok(Some(elsewhere)),
                    Next::Over => Ok(None),
                }
            }
            Kind::Set => {
                let values: Vec<(String, String)> = step
                    .set
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), render(v.get_ref(), &self.vars, &[])))
                    .collect();
                for (k, v) in values {
                    self.vars.set(&k, &v);
                }
                exit("next")
            }
            Kind::Remote => {
                let endpoint = step.remote.as_ref().map_or("", |r| r.get_ref().as_str());
                match self
                    .remote(call, env, caller, (name, endpoint), report)
                    .await?
                {
                    Ok(onward) => Ok(onward),
                    Err(why) => {
                        tracing::warn!(call_id = %call.call_id, step = name, %why, "the application failed");
                        if let Some(target) = &step.on_error {
                            return Ok(Some(target.get_ref().clone()));
                        }
                        farewell(call, env.script.outcomes.error.get_ref()).await?;
                        Ok(None)
                    }
                }
            }
            Kind::Verify => {
                let v = step.verify.as_ref().expect("a verify step");
                let account = render(v.account.get_ref(), &self.vars, &[]);
                let pin = self
                    .vars
                    .get(v.pin.get_ref())
                    .unwrap_or_default()
                    .to_string();
                // Asked once, then forgotten: nothing later in the call can reach it.
                self.vars.set_secret(v.pin.get_ref(), "");
                match verify::check(&call.call_id, env, &account, pin, caller, report).await {
                    Verification::Verified(user) => {
                        actions::warm_greeting(call, env, &user);
                        actions::user_variables(&mut self.vars, &account, &user);
                        self.user = user;
                        exit("ok")
                    }
                    Verification::WrongCredentials => exit("wrong"),
                    Verification::Locked => exit("locked"),
                    Verification::Unavailable(_) => exit("unavailable"),
                }
            }
        }
    }

    async fn said(
        &self,
        call: &mut Call,
        env: &FlowEnv,
        caller: &CallingParty,
        said: &[crate::ivr::script::Action],
        report: &Mutex<Report>,
    ) -> Result<Next, Gone> {
        let who = Caller {
            id: &caller.number,
            user: &self.user,
            vars: &self.vars,
        };
        run_actions(call, env, &who, (said, ""), report).await
    }

    /// Calls the step's endpoint; `ok`, `rejected` or `failed`. The reply's `set` fields
    /// become variables and its `say` list is spoken.
    async fn ask_api(
        &mut self,
        call: &mut Call,
        env: &FlowEnv,
        (name, http): (&str, &HttpCall),
        idempotency_key: &str,
    ) -> Result<&'static str, Gone> {
        let Some(endpoint) = env.endpoints.get(http.endpoint.get_ref()) else {
            tracing::warn!(call_id = %call.call_id, step = name, endpoint = %http.endpoint.get_ref(), "no such endpoint in the settings");
            return Ok("failed");
        };
        let secrets: Vec<String> = http
            .send_secret
            .iter()
            .map(|s| s.get_ref().clone())
            .collect();
        let body: Map<String, Value> = http
            .body
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    Value::String(render(v.get_ref(), &self.vars, &secrets)),
                )
            })
            .collect();
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let wait = Duration::from_millis(http.timeout_ms);
        let asked = std::time::Instant::now();
        let request = endpoint::send(
            &env.http,
            endpoint,
            http.method.get_ref(),
            body,
            idempotency_key,
            wait,
        );
        let answer = with_please_wait(call, env, request).await?;
        METRICS
            .webhook_seconds
            .observe(asked.elapsed().as_secs_f64());
        let reply = match answer {
            Ok(reply) => reply,
            Err(why) => {
                tracing::warn!(call_id = %call.call_id, step = name, %why, "API failed");
                return Ok("failed");
            }
        };
        tracing::info!(call_id = %call.call_id, step = name, status = reply.status, "API answered");
        match reply.status {
            200..=299 => {}
            400..=499 => return Ok("rejected"),
            _ => return Ok("failed"),
        }
        for (var, pointer) in &http.set {
            let value = reply.json.pointer(pointer.get_ref()).and_then(as_text);
            self.vars.set(var, value.as_deref().unwrap_or_default());
        }
        let grammar = env.script.grammar(call.language());
        match webhook::say_list(&reply.json, grammar) {
            Ok(said) if said.is_empty() => {}
            Ok(said) => say_all(call, Some(said), env).await?,
            Err(why) => {
                tracing::warn!(call_id = %call.call_id, step = name, %why, "API reply unreadable");
                return Ok("failed");
            }
        }
        Ok("ok")
    }
}

/// Waits for `request`; past 2 s the caller hears `outcomes.please_wait` meanwhile.
pub(super) async fn with_please_wait<T>(
    call: &mut Call,
    env: &FlowEnv,
    request: impl std::future::Future<Output = T>,
) -> Result<T, Gone> {
    tokio::pin!(request);
    tokio::select! {
        answer = &mut request => Ok(answer),
        () = sleep(PLEASE_WAIT_AFTER) => {
            if let Some(prompt) = &env.script.outcomes.please_wait {
                call.play(prompt.get_ref(), false).await?;
            }
            Ok(request.await)
        }
    }
}

fn ask_for(c: &Collect) -> Ask<'_> {
    Ask {
        prompt: Some(c.prompt.get_ref()),
        min_digits: c.min_digits,
        max_digits: c.max_digits,
        terminator: c.terminator.as_deref().and_then(|t| t.chars().next()),
        first_timeout: Duration::from_secs(c.first_timeout_s),
        inter_timeout: Duration::from_secs(c.inter_timeout_s),
        attempts: c.attempts,
        retry_prompt: c.retry_prompt.as_ref().map(|p| p.get_ref().as_str()),
        barge_in: c.barge_in,
        secret: c.secret,
        pattern: c.compiled.as_ref(),
    }
}

/// "Press 1 to confirm, 2 to re-enter": `yes`, `no`, or `on_fail` after the attempts.
async fn confirmed(call: &mut Call, confirm: &Confirm) -> Result<&'static str, Gone> {
    let ask = Ask {
        prompt: Some(confirm.prompt.get_ref()),
        min_digits: 1,
        max_digits: 1,
        terminator: None,
        first_timeout: Duration::from_secs(confirm.timeout_s),
        inter_timeout: Duration::from_secs(confirm.timeout_s),
        attempts: 1,
        retry_prompt: None,
        barge_in: true,
        secret: false,
        pattern: None,
    };
    for _ in 0..confirm.attempts.max(1) {
        match call.ask(&ask).await {
            Answer::Digits(key) if key == "1" => return Ok("yes"),
            Answer::Digits(key) if key == "2" => return Ok("no"),
            Answer::HungUp => return Err(Gone),
            Answer::Digits(_) => {
                if let Some(invalid) = &confirm.invalid_prompt {
                    call.play(invalid.get_ref(), true).await?;
                }
            }
            _ => {}
        }
    }
    Ok("on_fail")
}
