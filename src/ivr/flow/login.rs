//! The seed's login, for a flow with no `start`: account, PIN, verification through the
//! directory, the greeting, then the menus. Every way out ends with a prompt and a BYE.

use std::sync::Mutex;

use super::actions::{self, Next};
use super::{farewell, verify, CallingParty, FlowEnv, Report};
use crate::directory::Verification;
use crate::ivr::call::{Answer, Call, Gone};

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
    // The name is synthesised while "Welcome" plays.
    actions::warm_greeting(call, env, &user);
    call.say(login.greeting).await?;
    actions::greeting(call, env, &user, report).await?;
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
