//! The seed's login, for a flow with no `start`: account, PIN, verification through the
//! directory, the greeting, then the menus. Every way out ends with a prompt and a BYE.

use std::sync::Mutex;

use tokio::time::timeout;

use super::actions::{self, Next};
use super::{farewell, note, verify, CallingParty, FlowEnv, Report};
use crate::directory::Verification;
use crate::ivr::call::{Answer, Call, Gone};
use crate::media::speech::clean_text;

pub(super) async fn conversation(
    call: &mut Call,
    env: &FlowEnv,
    caller: &CallingParty,
    report: &Mutex<Report>,
) -> Result<(), Gone> {
    let script = &env.script;
    let outcomes = &script.outcomes;
    let Some(login) = script.login() else {
        // Load refuses a flow with neither `start` nor a whole login.
        return farewell(call, outcomes.error.get_ref()).await;
    };
    let account = match call.ask(&login.account.ask()).await {
        Answer::Digits(d) => d,
        Answer::HungUp => return Err(Gone),
        _ => return farewell(call, outcomes.no_answer.get_ref()).await,
    };
    let pin = match call.ask(&login.pin.ask()).await {
        Answer::Digits(d) => d,
        Answer::HungUp => return Err(Gone),
        _ => return farewell(call, outcomes.no_answer.get_ref()).await,
    };
    let user = match verify::check(&call.call_id, env, &account, pin, caller, report).await {
        Verification::Verified(user) => user,
        Verification::WrongCredentials => return farewell(call, login.wrong_credentials).await,
        Verification::Locked => return farewell(call, login.locked).await,
        Verification::Unavailable(_) => return farewell(call, login.unavailable).await,
    };
    let recorded = user.greeting.as_deref().filter(|g| call.has_prompt(g));
    // The name is synthesised while "Welcome" plays.
    let synthesis = match (recorded, user.greeting_text.as_deref().and_then(clean_text)) {
        (None, Some(text)) => env
            .speech
            .clone()
            .map(|speech| tokio::spawn(async move { speech.prompt(&text).await })),
        _ => None,
    };
    call.say(login.greeting).await?;
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
    let mut vars = actions::call_variables(call, caller);
    actions::user_variables(&mut vars, &account, &user);
    let who = actions::Caller {
        id: &caller.number,
        user: &user,
        vars: &vars,
    };
    let mut current = login.start_menu.to_string();
    loop {
        match actions::menu_once(call, env, &current, &who, report).await? {
            Next::SameMenu => {}
            Next::Menu(next) => current = next,
            Next::Over => return Ok(()),
        }
    }
}
