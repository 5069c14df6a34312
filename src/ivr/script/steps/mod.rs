//! Steps: the flow file as a small program. A call has variables; each `[steps.<name>]` does
//! one thing (collect digits, read them back for confirmation, call the operator's API, branch,
//! speak, set a variable, verify an account) and names where each of its exits goes: another
//! step, a menu, or `"hangup"`. Checked at load (`check`), run by `run`.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::Action;

pub mod check;
mod dataflow;
pub mod endpoint;
pub mod stand_in;
pub mod template;
pub mod vars;

/// The variables the engine fills in on every call.
pub const CALL_VARIABLES: [&str; 4] = ["call.id", "call.from", "call.to", "call.language"];
/// Those a `verify` step fills in when the caller is verified.
pub const USER_VARIABLES: [&str; 3] = ["user.account", "user.greeting", "user.balance"];

/// Where an exit may lead besides a step or a menu.
pub const HANGUP: &str = "hangup";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub collect: Option<Collect>,
    pub confirm: Option<Confirm>,
    pub http: Option<HttpCall>,
    pub switch: Option<Spanned<String>>,
    #[serde(default)]
    pub cases: BTreeMap<String, Spanned<String>>,
    pub default: Option<Spanned<String>>,
    pub say: Option<Vec<Action>>,
    pub set: Option<BTreeMap<String, Spanned<String>>>,
    pub verify: Option<Verify>,
    /// Hands the call to a web application (an endpoint's name) until it hangs up or returns.
    pub remote: Option<Spanned<String>>,
    pub next: Option<Spanned<String>>,
    pub on_fail: Option<Spanned<String>>,
    pub yes: Option<Spanned<String>>,
    pub no: Option<Spanned<String>>,
    pub ok: Option<Spanned<String>>,
    pub rejected: Option<Spanned<String>>,
    pub failed: Option<Spanned<String>>,
    pub wrong: Option<Spanned<String>>,
    pub locked: Option<Spanned<String>>,
    pub unavailable: Option<Spanned<String>>,
    pub on_error: Option<Spanned<String>>,
}

/// What a step does: exactly one of its kind keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Collect,
    Confirm,
    Http,
    Switch,
    Say,
    Set,
    Verify,
    Remote,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Collect => "collect",
            Kind::Confirm => "confirm",
            Kind::Http => "http",
            Kind::Switch => "switch",
            Kind::Say => "say",
            Kind::Set => "set",
            Kind::Verify => "verify",
            Kind::Remote => "remote",
        }
    }

    /// The exits a step of this kind must name (a switch names its cases and `default`).
    pub fn exits(self) -> &'static [&'static str] {
        match self {
            Kind::Collect => &["next", "on_fail"],
            Kind::Confirm => &["yes", "no", "on_fail"],
            Kind::Http => &["ok", "rejected", "failed"],
            Kind::Switch => &["default"],
            Kind::Say | Kind::Set => &["next"],
            Kind::Verify => &["ok", "wrong", "locked", "unavailable"],
            Kind::Remote => &[],
        }
    }

    /// Exits a step of this kind may name but need not.
    pub fn optional_exits(self) -> &'static [&'static str] {
        match self {
            // Unnamed: the error prompt and BYE when the application cannot be reached.
            Kind::Remote => &["on_error"],
            _ => &[],
        }
    }
}

impl Step {
    /// Its kind, or why it has none or several.
    pub fn kind(&self) -> Result<Kind, String> {
        let kinds: Vec<Kind> = [
            (self.collect.is_some(), Kind::Collect),
            (self.confirm.is_some(), Kind::Confirm),
            (self.http.is_some(), Kind::Http),
            (self.switch.is_some(), Kind::Switch),
            (self.say.is_some(), Kind::Say),
            (self.set.is_some(), Kind::Set),
            (self.verify.is_some(), Kind::Verify),
            (self.remote.is_some(), Kind::Remote),
        ]
        .into_iter()
        .filter_map(|(present, kind)| present.then_some(kind))
        .collect();
        match kinds.as_slice() {
            [kind] => Ok(*kind),
            [] => Err(
                "has no kind (collect, confirm, http, switch, say, set, verify or remote)".into(),
            ),
            _ => Err("has more than one kind: one step does one thing".into()),
        }
    }

    /// Every exit it names, by name: `(exit, target)`; a switch's cases as `case <value>`.
    pub fn named_exits(&self) -> Vec<(String, &Spanned<String>)> {
        let fixed = [
            ("next", &self.next),
            ("on_fail", &self.on_fail),
            ("yes", &self.yes),
            ("no", &self.no),
            ("ok", &self.ok),
            ("rejected", &self.rejected),
            ("failed", &self.failed),
            ("wrong", &self.wrong),
            ("locked", &self.locked),
            ("unavailable", &self.unavailable),
            ("default", &self.default),
            ("on_error", &self.on_error),
        ];
        let mut out: Vec<(String, &Spanned<String>)> = fixed
            .into_iter()
            .filter_map(|(name, target)| target.as_ref().map(|t| (name.to_string(), t)))
            .collect();
        out.extend(
            self.cases
                .iter()
                .map(|(value, t)| (format!("case {value}"), t)),
        );
        out
    }

    /// The actions the step runs: its `say` list, or what its confirmation reads back.
    pub fn actions(&self) -> impl Iterator<Item = &Action> {
        let said = self.say.iter().flatten();
        said.chain(self.confirm.iter().flat_map(|c| &c.say))
    }

    /// The target of exit `name` (checked at load to exist for the step's kind).
    pub fn exit(&self, name: &str) -> &str {
        self.named_exits()
            .into_iter()
            .find(|(n, _)| n == name)
            .map_or(HANGUP, |(_, t)| t.get_ref().as_str())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Collect {
    pub into: Spanned<String>,
    pub prompt: Spanned<String>,
    #[serde(default = "one")]
    pub min_digits: usize,
    pub max_digits: usize,
    #[serde(default = "pound")]
    pub terminator: Option<String>,
    #[serde(default = "ten")]
    pub first_timeout_s: u64,
    #[serde(default = "five")]
    pub inter_timeout_s: u64,
    #[serde(default = "three")]
    pub attempts: u32,
    pub retry_prompt: Option<Spanned<String>>,
    /// A regular expression the whole input must match (`^…$` is implied).
    pub pattern: Option<Spanned<String>>,
    /// Kept out of logs, read-backs, templates and URLs; sent only where `send_secret` says.
    #[serde(default)]
    pub secret: bool,
    #[serde(default = "yes")]
    pub barge_in: bool,
    /// `pattern`, compiled at load.
    #[serde(skip)]
    pub compiled: Option<regex::Regex>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confirm {
    /// What is read back first (`{ say_digits = "{{cow}}" }`).
    #[serde(default)]
    pub say: Vec<Action>,
    /// "Press 1 to confirm, 2 to re-enter."
    pub prompt: Spanned<String>,
    #[serde(default = "eight")]
    pub timeout_s: u64,
    #[serde(default = "three")]
    pub attempts: u32,
    pub invalid_prompt: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCall {
    /// A name under `[endpoints]` in the settings.
    pub endpoint: Spanned<String>,
    #[serde(default = "post")]
    pub method: Spanned<String>,
    /// The JSON object sent: each value a text with templates.
    #[serde(default)]
    pub body: BTreeMap<String, Spanned<String>>,
    /// Variables set from the JSON reply: `name = "/json/pointer"`.
    #[serde(default)]
    pub set: BTreeMap<String, Spanned<String>>,
    #[serde(default = "three_seconds")]
    pub timeout_ms: u64,
    /// Secret variables this request may carry in its body (https or loopback only).
    #[serde(default)]
    pub send_secret: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    /// A text with templates: `"{{acct}}"`.
    pub account: Spanned<String>,
    /// The name of the (secret) variable holding the PIN.
    pub pin: Spanned<String>,
}

fn one() -> usize {
    1
}
fn three() -> u32 {
    3
}
fn five() -> u64 {
    5
}
fn eight() -> u64 {
    8
}
fn ten() -> u64 {
    10
}
fn yes() -> bool {
    true
}
fn pound() -> Option<String> {
    Some("#".into())
}
fn post() -> Spanned<String> {
    Spanned::new(0..0, "POST".into())
}
fn three_seconds() -> u64 {
    3000
}
