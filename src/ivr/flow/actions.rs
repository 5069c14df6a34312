//! What a menu option or a `say` step does: play, speak numbers, amounts, digits and text,
//! ask a webhook, transfer, change language, go elsewhere or hang up. Anything that cannot be
//! said gets the error prompt, never silence.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::timeout;

use super::{farewell, note, CallingParty, FlowEnv, Report};
use crate::directory::User;
use crate::ivr::call::{Answer, Call, Gone, TransferMode, TransferRequest};
use crate::ivr::numbers::digit_prompts;
use crate::ivr::script::steps::template::render;
use crate::ivr::script::steps::vars::Vars;
use crate::ivr::script::Action;
use crate::ivr::trace::Trace;
use crate::ivr::webhook::{self, Spoken, WebhookRequest};
use crate::media::prompt::Prompt;
use crate::media::speech::clean_text;
use crate::metrics::{TransferLabel, METRICS};
use crate::sip::refer::TransferOutcome;

/// One menu: asked, and the chosen option's actions run. A menu that is not there (load
/// refuses one) or no answer after the attempts ends the call.
pub(super) async fn menu_once(
    call: &mut Call,
    env: &FlowEnv,
    name: &str,
    caller: &Caller<'_>,
    report: &Mutex<Report>,
) -> Result<Next, Gone> {
    let script = &env.script;
    let Some(menu) = script.menus.get(name) else {
        farewell(call, script.outcomes.error.get_ref()).await?;
        return Ok(Next::Over);
    };
    let key = match call.ask(&menu.ask()).await {
        Answer::Digits(key) => key,
        Answer::HungUp => return Err(Gone),
        _ => {
            farewell(call, script.outcomes.goodbye.get_ref()).await?;
            return Ok(Next::Over);
        }
    };
    let Some(actions) = menu.options.get(&key) else {
        tracing::info!(call_id = %call.call_id, menu = %name, %key, "invalid option");
        call.play(menu.invalid_prompt.get_ref(), true).await?;
        return Ok(Next::SameMenu);
    };
    tracing::info!(call_id = %call.call_id, menu = %name, %key, "menu option");
    note(report, |r| r.menu_keys.push_str(&key));
    match run_actions(call, env, caller, (actions, &key), report).await? {
        Next::SameMenu => Ok(Next::Menu(name.to_string())),
        other => Ok(other),
    }
}

/// The variables every call starts with.
pub(super) fn call_variables(call: &Call, caller: &CallingParty) -> Vars {
    arrival_variables(&call.call_id, caller, call.language())
}

/// The `call.*` variables a call starts with (`language`: its folder, none for the base).
pub(super) fn arrival_variables(
    call_id: &str,
    caller: &CallingParty,
    language: Option<&str>,
) -> Vars {
    let mut vars = Vars::default();
    vars.set("call.id", call_id);
    vars.set("call.from", &caller.number);
    vars.set("call.to", &caller.dialled);
    vars.set("call.language", language.unwrap_or("base"));
    vars
}

/// What a verification tells the flow about the caller.
pub(super) fn user_variables(vars: &mut Vars, account: &str, user: &User) {
    vars.set("user.account", account);
    vars.set(
        "user.greeting",
        user.greeting_text.as_deref().unwrap_or_default(),
    );
    let balance = user.balance.map(|b| b.to_string()).unwrap_or_default();
    vars.set("user.balance", &balance);
}

/// Starts speaking a verified caller's greeting text while the flow goes on ("Welcome." plays),
/// so the `greeting` action finds it ready: the speech cache joins the two.
pub(super) fn warm_greeting(call: &Call, env: &FlowEnv, user: &User) {
    let recorded = user.greeting.as_deref().is_some_and(|g| call.has_prompt(g));
    let text = user.greeting_text.as_deref().and_then(clean_text);
    if let (false, Some(text), Some(speech)) = (recorded, text, env.speech.clone()) {
        tokio::spawn(async move { speech.prompt(&text).await });
    }
}

/// The verified caller's recorded greeting, or its greeting text spoken; nothing for a caller
/// with neither.
pub(super) async fn greeting(
    call: &mut Call,
    env: &FlowEnv,
    user: &User,
    report: &Mutex<Report>,
) -> Result<(), Gone> {
    if let Some(name) = user.greeting.as_deref().filter(|g| call.has_prompt(g)) {
        call.say(name).await?;
        note(report, |r| r.greeting_spoken = true);
    } else if let Some(text) = user.greeting_text.as_deref() {
        match speak(env, text).await {
            Ok(clip) => {
                call.play_clip(clip, false).await?;
                note(report, |r| r.greeting_spoken = true);
            }
            Err(why) => tracing::warn!(call_id = %call.call_id, %why, "greeting not spoken"),
        }
    }
    Ok(())
}

/// Who is on the call, for the actions that need it.
pub(super) struct Caller<'a> {
    /// The caller's number, as the flow shows it.
    pub id: &'a str,
    /// The verified caller (an empty one before any verification).
    pub user: &'a User,
    pub vars: &'a Vars,
}

/// Where the conversation goes after a menu option's actions.
pub(super) enum Next {
    SameMenu,
    Menu(String),
    Over,
}

/// `key`: the menu key that chose the actions (for webhooks), empty in a step.
pub(super) async fn run_actions(
    call: &mut Call,
    env: &FlowEnv,
    caller: &Caller<'_>,
    (actions, key): (&[Action], &str),
    report: &Mutex<Report>,
) -> Result<Next, Gone> {
    let script = &env.script;
    for action in actions {
        match action {
            Action::Play(prompt) => call.play(prompt.get_ref(), true).await?,
            Action::Announce(prompt) => call.say(prompt.get_ref()).await?,
            Action::SayNumber(n) => {
                let said = script.grammar(call.language()).and_then(|g| g.number(*n));
                say_all(call, prompts(said), env).await?
            }
            Action::SayAmount(field) => {
                let grammar = script.grammar(call.language());
                let amount = match field.get_ref().as_str() {
                    "balance" => caller.user.balance,
                    text => render(text, caller.vars, &[]).trim().parse().ok(),
                };
                let said = grammar.zip(amount).and_then(|(g, a)| g.amount(a));
                say_all(call, prompts(said), env).await?
            }
            Action::SayDigits(text) => {
                let digits = render(text.get_ref(), caller.vars, &[]);
                let said: Vec<String> = digit_prompts(&digits).collect();
                say_all(call, prompts((!said.is_empty()).then_some(said)), env).await?
            }
            Action::Greeting => greeting(call, env, caller.user, report).await?,
            Action::Language(language) => call.set_language(script.folder_of(language.get_ref())),
            Action::SayText(text) => {
                let text = render(text, caller.vars, &[]);
                say_all(call, Some(vec![Spoken::Text(text)]), env).await?
            }
            Action::Webhook(hook) => {
                let request = WebhookRequest {
                    call_id: &call.call_id,
                    caller: caller.id,
                    account: caller.vars.get("user.account").unwrap_or_default(),
                    option: key,
                };
                let wait = Duration::from_millis(hook.timeout_ms);
                let asked = std::time::Instant::now();
                let grammar = script.grammar(call.language());
                let url = hook.url.get_ref();
                let answer = webhook::ask(&env.http, url, wait, &request, grammar).await;
                METRICS
                    .webhook_seconds
                    .observe(asked.elapsed().as_secs_f64());
                match answer {
                    Ok(prompts) => say_all(call, Some(prompts), env).await?,
                    Err(why) => {
                        tracing::warn!(call_id = %call.call_id, %why, "webhook failed");
                        call.say(script.outcomes.error.get_ref()).await?;
                    }
                }
            }
            Action::Goto(menu) => return Ok(Next::Menu(menu.get_ref().clone())),
            Action::Transfer(transfer) => {
                let target = transfer.to.get_ref();
                let request = TransferRequest {
                    target: target.clone(),
                    mode: transfer.mode(),
                    ring_timeout: transfer.timeout_s.map(Duration::from_secs),
                    caller_stays: false,
                };
                let outcome = call.transfer(request).await?;
                let label = TransferLabel {
                    mode: transfer.mode().as_str(),
                    outcome: match outcome {
                        TransferOutcome::Succeeded | TransferOutcome::Ended { .. } => {
                            "succeeded".into()
                        }
                        TransferOutcome::Failed { status } => status.to_string(),
                    },
                };
                METRICS.transfers.get_or_create(&label).inc();
                match outcome {
                    TransferOutcome::Succeeded | TransferOutcome::Ended { .. } => {
                        note(report, |r| r.transferred_to = Some(target.clone()));
                        if transfer.mode() == TransferMode::Bridge {
                            // The two calls are one now; either side's hang-up ends both.
                            return Err(call.stay_until_gone().await);
                        }
                        call.hangup();
                        return Ok(Next::Over);
                    }
                    TransferOutcome::Failed { status } => {
                        tracing::info!(call_id = %call.call_id, %target, status, "transfer failed");
                        // Validated at load: the fallback holds no transfer, so this recursion
                        // is one level deep.
                        let fallback = &script.on_transfer_failed;
                        let fallback = (fallback.as_slice(), key);
                        return Box::pin(run_actions(call, env, caller, fallback, report)).await;
                    }
                }
            }
            Action::Hangup => {
                call.hangup();
                return Ok(Next::Over);
            }
        }
    }
    Ok(Next::SameMenu)
}

/// Plays a sequence of prompts (a spoken number); an apology when there is nothing to say.
fn prompts(names: Option<Vec<String>>) -> Option<Vec<Spoken>> {
    names.map(|names| names.into_iter().map(Spoken::Prompt).collect())
}

/// Says each item in turn; anything that cannot be said (a missing prompt, speech that fails
/// or is not ready in time) gets the error prompt instead, never silence.
pub(super) async fn say_all(
    call: &mut Call,
    said: Option<Vec<Spoken>>,
    env: &FlowEnv,
) -> Result<(), Gone> {
    let playable = said.filter(|items| {
        items.iter().all(|item| match item {
            Spoken::Prompt(name) => call.has_prompt(name),
            Spoken::Text(_) => true,
        })
    });
    let Some(items) = playable else {
        tracing::warn!(call_id = %call.call_id, "nothing to say for this action");
        return call.say(env.script.outcomes.error.get_ref()).await;
    };
    for item in items {
        match item {
            Spoken::Prompt(name) => call.play(&name, true).await?,
            Spoken::Text(text) => match speak(env, &text).await {
                Ok(clip) => {
                    call.trace(Trace::Text(text));
                    call.play_clip(clip, true).await?
                }
                Err(why) => {
                    tracing::warn!(call_id = %call.call_id, %why, "text not spoken");
                    return call.say(env.script.outcomes.error.get_ref()).await;
                }
            },
        }
    }
    Ok(())
}

async fn speak(env: &FlowEnv, text: &str) -> Result<Arc<Prompt>, String> {
    let speech = env.speech.as_ref().ok_or("no speech engine installed")?;
    let text = clean_text(text).ok_or("empty text")?;
    timeout(env.speech_wait, speech.prompt(&text))
        .await
        .map_err(|_| "speech not ready in time".to_string())?
}
