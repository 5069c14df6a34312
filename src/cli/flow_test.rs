//! `ivr flow test CASES...`: conversations pinned as data. Each case file names its flow and
//! holds cases: the caller's answers, the endpoints' canned replies, and what must come of it
//! (prompts heard in that order, the posts each endpoint got, variables, where it ended). Cases
//! run on the real engine with no socket and no waiting; a case that goes another way fails
//! with a diff that names the step where it did.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::Value;

use super::conversation::Parts;
use super::simulate::{given, line};
use ivr::config::Settings;
use ivr::ivr::console::{converse, tracing_channel, End, Said};
use ivr::ivr::flow::CallingParty;
use ivr::ivr::script::steps::stand_in::Canned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    /// The flow, relative to the case file.
    flow: PathBuf,
    /// A local users file (relative to the case file) that each case logs in against, a fresh
    /// copy each time (a good login rewrites a PIN's hash); default: the configured directory.
    users: Option<PathBuf>,
    #[serde(default = "caller")]
    from: String,
    #[serde(default)]
    to: String,
    case: Vec<Case>,
}

fn caller() -> String {
    "+15550100".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    /// One answer per question; "-" lets it time out.
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    endpoints: BTreeMap<String, Replies>,
    #[serde(default)]
    expect_heard: Vec<String>,
    #[serde(default)]
    expect_posts: BTreeMap<String, Vec<Value>>,
    #[serde(default)]
    expect_vars: BTreeMap<String, String>,
    expect_end: Option<String>,
}

/// One reply, or the replies in turn (the last repeats).
#[derive(Deserialize)]
#[serde(untagged)]
enum Replies {
    One(Reply),
    Several(Vec<Reply>),
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Reply {
    #[serde(default = "ok")]
    status: u16,
    /// JSON (a table), or text as it is (TwiML).
    #[serde(default)]
    body: Option<Value>,
}

fn ok() -> u16 {
    200
}

impl Reply {
    fn canned(&self) -> Canned {
        let body = match &self.body {
            None => Vec::new(),
            Some(Value::String(text)) => text.clone().into_bytes(),
            Some(json) => json.to_string().into_bytes(),
        };
        Canned {
            status: self.status,
            body,
        }
    }
}

pub fn run(settings: Settings, files: &[PathBuf], verbose: bool) -> Result<ExitCode> {
    let parts = Parts::load(settings)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut passed, mut failed) = (0, 0);
    for file in files {
        let text = std::fs::read_to_string(file).with_context(|| file.display().to_string())?;
        let cases: CaseFile =
            toml::from_str(&text).with_context(|| format!("{}", file.display()))?;
        let here = file.parent().unwrap_or(Path::new("."));
        let flow = here.join(&cases.flow);
        let users = cases.users.as_ref().map(|u| here.join(u));
        for (n, case) in cases.case.iter().enumerate() {
            let started = Instant::now();
            let copy = match &users {
                Some(users) => Some(fresh_copy(users, n)?),
                None => None,
            };
            let run = run_case(&parts, (&flow, copy.as_deref()), &cases, case);
            let said = runtime.block_on(run);
            if let Some(copy) = &copy {
                let _ = std::fs::remove_dir_all(copy.parent().unwrap_or(copy));
            }
            let said = said?;
            let ms = started.elapsed().as_millis();
            let wrong = differences(case, &said);
            let show = verbose || !wrong.is_empty();
            if wrong.is_empty() {
                passed += 1;
                println!("ok   {}: {} ({ms} ms)", file.display(), case.name);
            } else {
                failed += 1;
                println!("FAIL {}: {} ({ms} ms)", file.display(), case.name);
                for why in wrong {
                    println!("     {why}");
                }
            }
            if show {
                said.iter().for_each(|s| println!("       | {}", line(s)));
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A copy of `users` in a directory of its own, where its PIN key goes too.
fn fresh_copy(users: &Path, n: usize) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("ivr-flow-test-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let copy = dir.join("users.toml");
    std::fs::copy(users, &copy).with_context(|| users.display().to_string())?;
    // Its PIN key, so none is made (with a warning) for every case.
    let key: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
    file.open(copy.with_extension("key"))?
        .write_all(key.as_bytes())?;
    Ok(copy)
}

async fn run_case(
    parts: &Parts,
    (flow, users): (&Path, Option<&Path>),
    file: &CaseFile,
    case: &Case,
) -> Result<Vec<Said>> {
    let stand_ins: Vec<(String, Vec<Canned>)> = case
        .endpoints
        .iter()
        .map(|(name, replies)| {
            let canned = match replies {
                Replies::One(one) => vec![one.canned()],
                Replies::Several(all) => all.iter().map(Reply::canned).collect(),
            };
            (name.clone(), canned)
        })
        .collect();
    let (tracer, traced) = tracing_channel();
    let env = parts
        .flow_env(flow, &stand_ins, &tracer, (users, true))
        .with_context(|| case.name.clone())?;
    let caller = CallingParty {
        number: file.from.clone(),
        lockout_key: file.from.clone(),
        dialled: file.to.clone(),
    };
    let keys = (given(&case.keys), true);
    let call = (env, parts.prompts.clone());
    let mut quiet = |_: &Said| {};
    let transcripts = &parts.transcripts;
    Ok(converse(
        call,
        caller,
        keys,
        (tracer, traced),
        transcripts,
        &mut quiet,
    )
    .await)
}

/// What went another way than `case` expects, each naming the step where it did.
fn differences(case: &Case, said: &[Said]) -> Vec<String> {
    let mut wrong = Vec::new();
    let heard: Vec<(&str, &str)> = said
        .iter()
        .filter_map(|s| match s {
            Said::Heard { prompt, step, .. } => Some((prompt.as_str(), step.as_str())),
            _ => None,
        })
        .collect();
    let mut next = 0;
    for expected in &case.expect_heard {
        match heard[next..].iter().position(|(p, _)| p == expected) {
            Some(at) => next += at + 1,
            None => {
                let (step, rest) = match heard.get(next) {
                    Some((_, step)) => (*step, names(&heard[next..])),
                    None => (last_step(said), "nothing more".to_string()),
                };
                wrong.push(format!(
                    "at step {step:?}: expected to hear {expected:?}, heard {rest}"
                ));
                break;
            }
        }
    }
    for (endpoint, expected) in &case.expect_posts {
        let posts: Vec<(&Value, &str)> = said
            .iter()
            .filter_map(|s| match s {
                Said::Posted {
                    endpoint: e,
                    body,
                    step,
                } if e == endpoint => Some((body, step.as_str())),
                _ => None,
            })
            .collect();
        for i in 0..expected.len().max(posts.len()) {
            match (expected.get(i), posts.get(i)) {
                (Some(want), Some((got, step))) if !contains(got, want) => wrong.push(format!(
                    "at step {step:?}: posted {got} to {endpoint}, expected {want}"
                )),
                (Some(want), None) => wrong.push(format!(
                    "at step {:?}: expected a post {want} to {endpoint}, none came",
                    last_step(said)
                )),
                (None, Some((got, step))) => wrong.push(format!(
                    "at step {step:?}: posted {got} to {endpoint}, expected no more posts"
                )),
                _ => {}
            }
        }
    }
    let vars = final_vars(said);
    for (name, want) in &case.expect_vars {
        let got = vars.get(name.as_str()).copied();
        if got != Some(want.as_str()) {
            wrong.push(format!(
                "at the end (step {:?}): {name} is {got:?}, expected {want:?}",
                last_step(said)
            ));
        }
    }
    if let Some(want) = &case.expect_end {
        let got = match said.last() {
            Some(Said::Ended(End::Hangup)) => "hangup".to_string(),
            Some(Said::Ended(End::Transferred)) => "transferred".to_string(),
            Some(Said::Ended(End::Waiting(step))) => step.clone(),
            _ => "the caller hanging up".to_string(),
        };
        if &got != want {
            wrong.push(format!(
                "at step {:?}: ended with {got:?}, expected {want:?}",
                last_step(said)
            ));
        }
    }
    wrong
}

/// Whether `got` has every field of `want` with the same value (a post may carry more).
fn contains(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::Object(got), Value::Object(want)) => want
            .iter()
            .all(|(k, w)| got.get(k).is_some_and(|g| contains(g, w))),
        // A number expected as TOML writes it may come as the text a template made.
        (Value::String(g), w) if !w.is_string() => {
            let written = w.to_string();
            *g == written
        }
        _ => got == want,
    }
}

fn names(heard: &[(&str, &str)]) -> String {
    let shown: Vec<&str> = heard.iter().take(8).map(|(p, _)| *p).collect();
    format!("{shown:?}")
}

fn last_step(said: &[Said]) -> &str {
    said.iter()
        .rev()
        .find_map(|s| match s {
            Said::Step(step) => Some(step.as_str()),
            _ => None,
        })
        .unwrap_or("(before the first step)")
}

fn final_vars(said: &[Said]) -> BTreeMap<&str, &str> {
    said.iter()
        .filter_map(|s| match s {
            Said::Var(name, value) => Some((name.as_str(), value.as_str())),
            _ => None,
        })
        .collect()
}
