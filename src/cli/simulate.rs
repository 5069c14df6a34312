//! `ivr simulate`: a conversation in the terminal. The flow runs on the real engine; prompts
//! print as their transcripts, keys come from `--keys` or from what is typed, and each step
//! and variable shows as it goes (a secret as `****`).

use std::collections::VecDeque;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use tokio::sync::mpsc;

use super::conversation::Parts;
use ivr::config::Settings;
use ivr::ivr::console::{converse, tracing_channel, End, Keys, Said};
use ivr::ivr::flow::CallingParty;
use ivr::ivr::script::steps::stand_in::Canned;

#[derive(Args)]
pub struct Simulate {
    /// The flow file (default: the one `--to` is routed to, or `flow.file`).
    #[arg(long)]
    flow: Option<PathBuf>,
    /// The caller's number.
    #[arg(long, default_value = "+15550100")]
    from: String,
    /// The number dialled (it picks the route).
    #[arg(long, default_value = "")]
    to: String,
    /// The answers, one per question, separated by spaces (`-`: let that one time out), e.g.
    /// "1 12345# 1"; without it, type each answer and Enter (`hangup` or Ctrl-C ends the call).
    #[arg(long)]
    keys: Option<String>,
    /// Prompts take no time and a question ends as soon as its keys are pressed.
    #[arg(long)]
    fast: bool,
    /// Stand an endpoint in: NAME=FILE, the file the reply body (its status 200).
    #[arg(long = "endpoint", value_name = "NAME=FILE")]
    endpoints: Vec<String>,
}

pub fn run(settings: Settings, args: Simulate) -> Result<ExitCode> {
    let file = args.flow.clone().unwrap_or_else(|| {
        let routes = &settings.flow.routes;
        routes
            .get(&args.to)
            .cloned()
            .unwrap_or_else(|| settings.flow.file.clone())
    });
    let mut stand_ins = Vec::new();
    for given in &args.endpoints {
        let Some((name, path)) = given.split_once('=') else {
            bail!("--endpoint {given}: NAME=FILE");
        };
        let body = std::fs::read(path).with_context(|| format!("--endpoint {name}: {path}"))?;
        stand_ins.push((name.to_string(), vec![Canned { status: 200, body }]));
    }
    let parts = Parts::load(settings)?;
    let (tracer, traced) = tracing_channel();
    let env = parts.flow_env(&file, &stand_ins, &tracer, (None, false))?;
    let caller = CallingParty {
        number: args.from.clone(),
        lockout_key: args.from.clone(),
        dialled: args.to.clone(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let said = runtime.block_on(async {
        let keys = match &args.keys {
            Some(given) => Keys::Given(given.split_whitespace().map(String::from).collect()),
            None => Keys::Typed(typed_lines()),
        };
        println!(
            "{}: a call from {} to {}",
            file.display(),
            args.from,
            args.to
        );
        let mut show = |said: &Said| println!("{}", line(said));
        let parts_of_call = (env, parts.prompts.clone());
        let (keys, trace) = ((keys, args.fast), (tracer, traced));
        converse(
            parts_of_call,
            caller,
            keys,
            trace,
            &parts.transcripts,
            &mut show,
        )
        .await
    });
    let ended_well = matches!(
        said.last(),
        Some(Said::Ended(
            End::Hangup | End::Waiting(_) | End::Transferred
        ))
    );
    Ok(if ended_well || args.keys.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What the terminal types, a line at a time; Ctrl-C is `hangup`.
fn typed_lines() -> mpsc::UnboundedReceiver<String> {
    let (lines, typed) = mpsc::unbounded_channel();
    let on_interrupt = lines.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = on_interrupt.send("hangup".into());
        }
    });
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    println!("(type the keys of each answer and Enter; `hangup` or Ctrl-C ends the call)");
    typed
}

/// One thing that happened, as the terminal shows it.
pub fn line(said: &Said) -> String {
    match said {
        Said::Step(step) => format!("-> {step}"),
        Said::Var(name, value) => format!("     {name} = {value:?}"),
        Said::Heard { prompt, text, .. } => format!("   IVR: {text}   ({prompt})"),
        Said::Pressed(keys) => format!("   caller presses: {keys}"),
        Said::Posted { endpoint, body, .. } => format!("   posted to {endpoint}: {body}"),
        Said::Transfer { target } => format!("   transferred to {target}"),
        Said::Ended(End::Hangup) => "ended: the IVR hung up".into(),
        Said::Ended(End::Waiting(step)) => format!("ended: no more keys, waiting in {step}"),
        Said::Ended(End::CallerHungUp) => "ended: the caller hung up".into(),
        Said::Ended(End::Transferred) => "ended: transferred".into(),
    }
}

/// The answers of `--keys` or a test case: one per question.
pub fn given(keys: &[String]) -> Keys {
    Keys::Given(keys.iter().cloned().collect::<VecDeque<String>>())
}
