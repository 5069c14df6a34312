//! The conversation as data (`sip-config/flow.toml`), so an operator can change prompts, limits,
//! menu options and actions without recompiling. Loading checks every prompt, menu and URL it
//! names and reports problems with their line in the file.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use toml::Spanned;

use crate::ivr::call::{Ask, TransferMode};
use crate::ivr::numbers::Grammar;
use crate::media::dtmf::is_digit;
use crate::media::prompt::{in_folder, PromptLibrary};
use crate::sip::refer;
use steps::{check, Step};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// Hang up (after "goodbye") when a call lasts this long.
    #[serde(default = "default_max_call")]
    pub max_call_seconds: u64,
    pub welcome: Spanned<String>,
    /// The seed's login (account, PIN, verify, greeting, then `start_menu`): the shape of a
    /// flow with no `start`.
    pub account: Option<Question>,
    pub pin: Option<Question>,
    pub outcomes: Outcomes,
    pub start_menu: Option<Spanned<String>>,
    /// Where a call begins after the welcome: a step or a menu. Without it, the login above.
    pub start: Option<Spanned<String>>,
    #[serde(default)]
    pub menus: BTreeMap<String, Menu>,
    #[serde(default)]
    pub steps: BTreeMap<String, Step>,
    /// What follows a transfer that did not happen (refused, busy, no answer).
    #[serde(default)]
    pub on_transfer_failed: Vec<Action>,
    /// The language of the prompts at the top of the prompts folder.
    #[serde(default = "default_language")]
    pub base_language: String,
    /// The language calls start in; another than the base plays prompts from
    /// `prompts/<language>/` (a prompt missing there plays from the base).
    pub language: Option<Spanned<String>>,
    /// How each language used says numbers, read from its `numbers.toml` at load.
    #[serde(skip)]
    pub grammars: HashMap<String, Grammar>,
}

fn default_language() -> String {
    "en".into()
}

fn default_max_call() -> u64 {
    900
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub prompt: Spanned<String>,
    pub min_digits: usize,
    pub max_digits: usize,
    #[serde(default = "default_terminator")]
    pub terminator: Option<String>,
    #[serde(default = "default_first_timeout")]
    pub first_timeout_s: u64,
    #[serde(default = "default_inter_timeout")]
    pub inter_timeout_s: u64,
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    pub retry_prompt: Option<Spanned<String>>,
    #[serde(default = "default_true")]
    pub barge_in: bool,
    #[serde(default)]
    pub secret: bool,
}

fn default_terminator() -> Option<String> {
    Some("#".into())
}
fn default_first_timeout() -> u64 {
    10
}
fn default_inter_timeout() -> u64 {
    5
}
fn default_attempts() -> u32 {
    3
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcomes {
    /// Said before the recorded name of a verified caller. This and the next three: the login.
    pub greeting: Option<Spanned<String>>,
    pub wrong_credentials: Option<Spanned<String>>,
    pub locked: Option<Spanned<String>>,
    pub unavailable: Option<Spanned<String>>,
    /// Played when an API step has not answered in 2 s, so the caller knows to wait.
    pub please_wait: Option<Spanned<String>>,
    /// No usable answer after every attempt.
    pub no_answer: Spanned<String>,
    pub goodbye: Spanned<String>,
    /// A failed action (webhook down, unreadable amount).
    pub error: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Menu {
    pub prompt: Spanned<String>,
    #[serde(default = "default_menu_timeout")]
    pub timeout_s: u64,
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    pub invalid_prompt: Spanned<String>,
    pub options: BTreeMap<String, Vec<Action>>,
}

fn default_menu_timeout() -> u64 {
    8
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    Play(Spanned<String>),
    /// A prompt played whole: keys pressed meanwhile wait for the next question.
    Announce(Spanned<String>),
    /// A number given in the file.
    SayNumber(u64),
    /// A field of the caller's profile spoken as money; `balance` is the one there is.
    SayAmount(Spanned<String>),
    /// Text for the speech engine (templates allowed).
    SayText(String),
    /// Each digit of a text (`"{{cow}}"`), one by one.
    SayDigits(Spanned<String>),
    /// The verified caller's recorded greeting, or its greeting text spoken.
    Greeting,
    Webhook(Webhook),
    Goto(Spanned<String>),
    /// Speak another language from here on (`es`: prompts from `prompts/es/`).
    Language(Spanned<String>),
    /// Hand the caller to a person or another system.
    Transfer(Transfer),
    Hangup,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    /// A `sip:`, `sips:` or `tel:` URI.
    pub to: Spanned<String>,
    /// `refer` when not given.
    pub mode: Option<Spanned<TransferMode>>,
    /// `bridge`: how long the target may ring (`sip.transfer_timeout_s` when not given).
    pub timeout_s: Option<u64>,
}

impl Transfer {
    pub fn mode(&self) -> TransferMode {
        self.mode.as_ref().map(|m| *m.get_ref()).unwrap_or_default()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub url: Spanned<String>,
    #[serde(default = "default_webhook_timeout")]
    pub timeout_ms: u64,
}

fn default_webhook_timeout() -> u64 {
    3000
}

impl Action {
    /// Where a `goto` leads.
    pub fn goto(&self) -> Option<&str> {
        match self {
            Action::Goto(target) => Some(target.get_ref()),
            _ => None,
        }
    }
}

/// The seed's login, when the flow has one: what `conversation` needs, each checked at load.
pub struct Login<'a> {
    pub account: &'a Question,
    pub pin: &'a Question,
    pub start_menu: &'a str,
    pub greeting: &'a str,
    pub wrong_credentials: &'a str,
    pub locked: &'a str,
    pub unavailable: &'a str,
}

impl Question {
    pub fn ask(&self) -> Ask<'_> {
        Ask {
            prompt: Some(self.prompt.get_ref()),
            min_digits: self.min_digits,
            max_digits: self.max_digits,
            terminator: self.terminator.as_deref().and_then(|t| t.chars().next()),
            first_timeout: Duration::from_secs(self.first_timeout_s),
            inter_timeout: Duration::from_secs(self.inter_timeout_s),
            attempts: self.attempts,
            retry_prompt: self.retry_prompt.as_ref().map(|p| p.get_ref().as_str()),
            barge_in: self.barge_in,
            secret: self.secret,
            pattern: None,
        }
    }
}

impl Menu {
    pub fn ask(&self) -> Ask<'_> {
        Ask {
            prompt: Some(self.prompt.get_ref()),
            min_digits: 1,
            max_digits: 1,
            terminator: None,
            first_timeout: Duration::from_secs(self.timeout_s),
            inter_timeout: Duration::from_secs(self.timeout_s),
            attempts: self.attempts,
            retry_prompt: None,
            barge_in: true,
            secret: false,
            pattern: None,
        }
    }
}

impl Script {
    pub fn load(path: &Path, prompts: &PromptLibrary) -> Result<Script> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Script::parse(&text, prompts).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str, prompts: &PromptLibrary) -> Result<Script> {
        let mut script: Script = toml::from_str(text)?;
        let mut errors = Vec::new();
        let at = |span: std::ops::Range<usize>| {
            text[..span.start.min(text.len())].matches('\n').count() + 1
        };
        check::compile_patterns(&mut script, &mut errors);
        let o = &script.outcomes;
        let mut named: Vec<&Spanned<String>> = vec![&script.welcome];
        for q in script.account.iter().chain(&script.pin) {
            named.push(&q.prompt);
            named.extend(&q.retry_prompt);
        }
        named.extend(
            [
                &o.greeting,
                &o.wrong_credentials,
                &o.locked,
                &o.unavailable,
                &o.please_wait,
            ]
            .into_iter()
            .flatten(),
        );
        named.extend([&o.no_answer, &o.goodbye, &o.error]);
        named.extend(check::prompts(&script));
        let mut needs_numbers = false;
        let mut gotos: Vec<&Spanned<String>> = script.start_menu.iter().collect();
        let mut languages: Vec<&Spanned<String>> = script.language.iter().collect();
        for menu in script.menus.values() {
            named.extend([&menu.prompt, &menu.invalid_prompt]);
        }
        let options = script
            .menus
            .values()
            .flat_map(|m| m.options.values().flatten());
        for action in options
            .chain(&script.on_transfer_failed)
            .chain(check::actions(&script))
        {
            match action {
                Action::Play(p) | Action::Announce(p) => named.push(p),
                Action::SayNumber(_) => needs_numbers = true,
                Action::SayAmount(field) => {
                    needs_numbers = true;
                    if field.get_ref() != "balance" {
                        errors.push(format!(
                            "line {}: say_amount knows only \"balance\"",
                            at(field.span())
                        ));
                    }
                }
                Action::Webhook(w) => {
                    // Its answer may hold numbers and amounts.
                    needs_numbers = true;
                    let url = w.url.get_ref();
                    if !crate::http::url_allowed(url) {
                        errors.push(format!(
                            "line {}: webhook url must be https:// (http:// only to this machine)",
                            at(w.url.span())
                        ));
                    }
                }
                Action::Goto(m) => gotos.push(m),
                Action::Language(l) => languages.push(l),
                Action::Transfer(t) => {
                    if !refer::valid_target(t.to.get_ref()) {
                        errors.push(format!(
                            "line {}: transfer to must be a sip:, sips: or tel: URI",
                            at(t.to.span())
                        ));
                    }
                    let sip =
                        t.to.get_ref()
                            .get(..4)
                            .is_some_and(|s| s.eq_ignore_ascii_case("sip:"));
                    if t.mode() == TransferMode::Bridge && !sip {
                        errors.push(format!(
                            "line {}: mode = \"bridge\" calls sip: targets only (tel: needs a gateway's sip: address; sips: is not built)",
                            at(t.to.span())
                        ));
                    }
                    if t.timeout_s == Some(0) || t.timeout_s.is_some_and(|s| s > 600) {
                        errors.push(format!(
                            "line {}: transfer timeout_s must be 1 to 600",
                            at(t.to.span())
                        ));
                    }
                }
                // Spoken with the number words (`num/0` to `num/9`), checked with the grammar.
                Action::SayDigits(_) => needs_numbers = true,
                Action::Hangup | Action::SayText(_) | Action::Greeting => {}
            }
        }
        for p in named {
            if prompts.get(p.get_ref()).is_none() {
                let file = prompts.path_of(p.get_ref());
                errors.push(format!(
                    "line {}: prompt {:?}: {} is missing",
                    at(p.span()),
                    p.get_ref(),
                    file.display()
                ));
            }
        }
        let mut folders = vec![String::new()];
        for language in languages {
            match script.folder_of(language.get_ref()) {
                Some(folder) if prompts.dir().join(&folder).is_dir() => folders.push(folder),
                Some(folder) => errors.push(format!(
                    "line {}: language {:?}: {} is missing",
                    at(language.span()),
                    language.get_ref(),
                    prompts.dir().join(folder).display()
                )),
                None => {}
            }
        }
        folders.sort();
        folders.dedup();
        // An application may ask for a number or an amount at any time.
        needs_numbers |= script.steps.values().any(|s| s.remote.is_some());
        let mut grammars = HashMap::new();
        for folder in folders.into_iter().filter(|_| needs_numbers) {
            let file = prompts.dir().join(&folder).join("numbers.toml");
            match Grammar::load(&file) {
                Ok(grammar) => {
                    for name in grammar.word_prompts() {
                        let name = in_folder(&folder, &name);
                        if prompts.get(&name).is_none() {
                            let file = prompts.path_of(&name);
                            errors.push(format!(
                                "the menu speaks numbers but {} is missing",
                                file.display()
                            ));
                        }
                    }
                    grammars.insert(folder, grammar);
                }
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
        for target in gotos {
            let name = target.get_ref();
            if !script.menus.contains_key(name) && !script.steps.contains_key(name) {
                errors.push(format!(
                    "line {}: no menu or step named {name:?}",
                    at(target.span()),
                ));
            }
        }
        check::steps(&script, &at, &mut errors);
        for (name, menu) in &script.menus {
            for key in menu.options.keys() {
                let mut chars = key.chars();
                if !matches!((chars.next(), chars.next()), (Some(c), None) if is_digit(c)) {
                    errors.push(format!(
                        "menu {name}: option {key:?} is not a single key (0-9, *, #, A-D)"
                    ));
                }
            }
        }
        if script.start.is_none() && script.login().is_none() {
            errors.push("a flow needs `start` (a step or a menu), or the login: [account], [pin], start_menu and the outcomes greeting, wrong_credentials, locked and unavailable".into());
        }
        let questions = [("account", &script.account), ("pin", &script.pin)];
        for (name, q) in questions
            .iter()
            .filter_map(|(n, q)| q.as_ref().map(|q| (*n, q)))
        {
            let rules = (q.min_digits, q.max_digits, q.attempts);
            check::digit_rules(name, rules, q.terminator.as_ref(), &mut errors);
        }
        if script
            .on_transfer_failed
            .iter()
            .any(|a| matches!(a, Action::Transfer(_)))
        {
            errors.push("on_transfer_failed cannot transfer again".into());
        }
        if script.max_call_seconds == 0 {
            errors.push("max_call_seconds must be > 0".into());
        }
        if !errors.is_empty() {
            bail!("{}", errors.join("; "));
        }
        Ok(Script { grammars, ..script })
    }

    /// The login, when the flow has every part of it.
    pub fn login(&self) -> Option<Login<'_>> {
        let o = &self.outcomes;
        Some(Login {
            account: self.account.as_ref()?,
            pin: self.pin.as_ref()?,
            start_menu: self.start_menu.as_ref()?.get_ref(),
            greeting: o.greeting.as_ref()?.get_ref(),
            wrong_credentials: o.wrong_credentials.as_ref()?.get_ref(),
            locked: o.locked.as_ref()?.get_ref(),
            unavailable: o.unavailable.as_ref()?.get_ref(),
        })
    }

    /// The prompt folder of `language`: `None` for the base language (the top of the folder).
    /// The prompt folder a call starts in (the flow's `language`), none for the base.
    pub fn start_folder(&self) -> Option<String> {
        let language = self.language.as_ref()?;
        self.folder_of(language.get_ref())
    }

    pub fn folder_of(&self, language: &str) -> Option<String> {
        (!language.eq_ignore_ascii_case(&self.base_language)).then(|| language.to_ascii_lowercase())
    }

    /// How numbers are said in the language whose prompts are in `folder` (`None`: the base).
    pub fn grammar(&self, folder: Option<&str>) -> Option<&Grammar> {
        self.grammars.get(folder.unwrap_or_default())
    }
}

pub mod steps;
