//! The conversation of the seed's Tropo script, driven by `sip-config/flow.toml`: welcome,
//! account number, PIN, verification through the directory, greeting, then the menu loop.
//! Every way out ends with a prompt and a BYE from us, or stops at once when the caller hangs up.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{sleep, timeout};

use super::call::TransferMode;
use super::call::{Answer, Call, Gone, TransferRequest};
use super::script::{Action, Script};
use super::webhook::{self, Spoken, WebhookRequest};
use crate::directory::{Directory, Masked, User, Verification};
use crate::media::prompt::Prompt;
use crate::media::speech::{clean_text, SpeechCache};
use crate::metrics::{Outcome, TransferLabel, METRICS};
use crate::sip::refer::TransferOutcome;

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
}

impl From<String> for CallingParty {
    /// A party whose number is believed (a trunk's caller, a test's).
    fn from(number: String) -> CallingParty {
        CallingParty {
            lockout_key: number.clone(),
            number,
        }
    }
}

/// Runs the conversation until it ends, the call reaches its maximum length, or `closing`
/// turns true (the server's shutdown grace is over): then goodbye and BYE.
pub async fn run(
    mut call: Call,
    env: Arc<FlowEnv>,
    caller: CallingParty,
    mut closing: watch::Receiver<bool>,
    report: Arc<Mutex<Report>>,
) {
    let script = &env.script;
    call.set_language(
        script
            .language
            .as_ref()
            .and_then(|l| script.folder_of(l.get_ref())),
    );
    let limit = Duration::from_secs(env.script.max_call_seconds);
    let closed = async {
        // A dropped sender means no shutdown will ever be announced.
        if closing.wait_for(|closing| *closing).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let outcome = tokio::select! {
        outcome = conversation(&mut call, &env, &caller, &report) => Some(outcome),
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
    caller: &CallingParty,
    report: &Mutex<Report>,
) -> Result<(), Gone> {
    let script = &env.script;
    let outcomes = &script.outcomes;
    call.play(script.welcome.get_ref(), true).await?;
    let account = match call.ask(&script.account.ask()).await {
        Answer::Digits(d) => d,
        Answer::HungUp => return Err(Gone),
        _ => return farewell(call, outcomes.no_answer.get_ref()).await,
    };
    let pin = match call.ask(&script.pin.ask()).await {
        Answer::Digits(d) => d,
        Answer::HungUp => return Err(Gone),
        _ => return farewell(call, outcomes.no_answer.get_ref()).await,
    };
    let asked = std::time::Instant::now();
    let verification = env
        .directory
        .verify(&account, &pin, &caller.lockout_key)
        .await;
    drop(pin);
    METRICS
        .directory_seconds
        .observe(asked.elapsed().as_secs_f64());
    let outcome = match &verification {
        Verification::Verified(_) => "verified",
        Verification::WrongCredentials => "wrong_credentials",
        Verification::Locked => "locked",
        Verification::Unavailable(_) => "unavailable",
    };
    METRICS
        .verifications
        .get_or_create(&Outcome { outcome })
        .inc();
    note(report, |r| {
        r.verification = Some(outcome);
        r.account = Some(Masked(&account).to_string());
    });
    let user = match verification {
        Verification::Verified(user) => user,
        Verification::WrongCredentials => {
            let account = Masked(&account);
            tracing::info!(call_id = %call.call_id, %account, "wrong account number or PIN");
            return farewell(call, outcomes.wrong_credentials.get_ref()).await;
        }
        Verification::Locked => {
            let account = Masked(&account);
            tracing::info!(call_id = %call.call_id, %account, "account locked");
            return farewell(call, outcomes.locked.get_ref()).await;
        }
        Verification::Unavailable(reason) => {
            tracing::warn!(call_id = %call.call_id, %reason, "directory unavailable");
            return farewell(call, outcomes.unavailable.get_ref()).await;
        }
    };
    let shown = user
        .user_id
        .replace(&account, &Masked(&account).to_string());
    tracing::info!(call_id = %call.call_id, user = %shown, "caller verified");
    let recorded = user.greeting.as_deref().filter(|g| call.has_prompt(g));
    // The name is synthesised while "Welcome" plays.
    let synthesis = match (recorded, user.greeting_text.as_deref().and_then(clean_text)) {
        (None, Some(text)) => env
            .speech
            .clone()
            .map(|speech| tokio::spawn(async move { speech.prompt(&text).await })),
        _ => None,
    };
    call.say(outcomes.greeting.get_ref()).await?;
    if let Some(name) = recorded {
        call.say(name).await?;
        note(report, |r| r.greeting_spoken = true);
    } else if let Some(synthesis) = synthesis {
        match timeout(env.speech_wait, synthesis).await {
            Ok(Ok(Ok(name))) => {
                call.play_clip(name, false).await?;
                note(report, |r| r.greeting_spoken = true);
            }
            Ok(Ok(Err(why))) => {
                tracing::warn!(call_id = %call.call_id, %why, "greeting not spoken")
            }
            _ => {
                tracing::warn!(call_id = %call.call_id, "greeting not spoken: speech not ready in time")
            }
        }
    }
    menus(call, env, &caller.number, &account, &user, report).await
}

async fn menus(
    call: &mut Call,
    env: &FlowEnv,
    caller: &str,
    account: &str,
    user: &User,
    report: &Mutex<Report>,
) -> Result<(), Gone> {
    let script = &env.script;
    let mut current = script.start_menu.get_ref().clone();
    loop {
        let Some(menu) = script.menus.get(&current) else {
            return farewell(call, script.outcomes.error.get_ref()).await;
        };
        let key = match call.ask(&menu.ask()).await {
            Answer::Digits(key) => key,
            Answer::HungUp => return Err(Gone),
            _ => return farewell(call, script.outcomes.goodbye.get_ref()).await,
        };
        let Some(actions) = menu.options.get(&key) else {
            tracing::info!(call_id = %call.call_id, menu = %current, %key, "invalid option");
            call.play(menu.invalid_prompt.get_ref(), true).await?;
            continue;
        };
        tracing::info!(call_id = %call.call_id, menu = %current, %key, "menu option");
        note(report, |r| r.menu_keys.push_str(&key));
        let who = Caller {
            id: caller,
            account,
            user,
            key: &key,
        };
        match run_actions(call, env, &who, actions, report).await? {
            Next::SameMenu => {}
            Next::Menu(menu) => current = menu,
            Next::Over => return Ok(()),
        }
    }
}

/// Who is on the call, for the actions that need it.
struct Caller<'a> {
    id: &'a str,
    account: &'a str,
    user: &'a User,
    /// The menu key that chose the actions.
    key: &'a str,
}

/// Where the conversation goes after a menu option's actions.
enum Next {
    SameMenu,
    Menu(String),
    Over,
}

async fn run_actions(
    call: &mut Call,
    env: &FlowEnv,
    caller: &Caller<'_>,
    actions: &[Action],
    report: &Mutex<Report>,
) -> Result<Next, Gone> {
    let script = &env.script;
    for action in actions {
        match action {
            Action::Play(prompt) => call.play(prompt.get_ref(), true).await?,
            Action::SayNumber(n) => {
                let said = script.grammar(call.language()).and_then(|g| g.number(*n));
                say_all(call, prompts(said), env).await?
            }
            Action::SayAmount(_) => {
                let grammar = script.grammar(call.language());
                let said = grammar
                    .zip(caller.user.balance)
                    .and_then(|(g, b)| g.amount(b));
                say_all(call, prompts(said), env).await?
            }
            Action::Language(language) => call.set_language(script.folder_of(language.get_ref())),
            Action::SayText(text) => {
                say_all(call, Some(vec![Spoken::Text(text.clone())]), env).await?
            }
            Action::Webhook(hook) => {
                let request = WebhookRequest {
                    call_id: &call.call_id,
                    caller: caller.id,
                    account: caller.account,
                    option: caller.key,
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
                };
                let outcome = call.transfer(request).await?;
                let label = TransferLabel {
                    mode: transfer.mode().as_str(),
                    outcome: match outcome {
                        TransferOutcome::Succeeded => "succeeded".into(),
                        TransferOutcome::Failed { status } => status.to_string(),
                    },
                };
                METRICS.transfers.get_or_create(&label).inc();
                match outcome {
                    TransferOutcome::Succeeded => {
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
async fn say_all(call: &mut Call, said: Option<Vec<Spoken>>, env: &FlowEnv) -> Result<(), Gone> {
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
                Ok(clip) => call.play_clip(clip, true).await?,
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

#[cfg(test)]
mod tests;
