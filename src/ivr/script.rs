//! The conversation as data (`sip-config/flow.toml`), so an operator can change prompts, limits,
//! menu options and actions without recompiling. Loading checks every prompt, menu and URL it
//! names and reports problems with their line in the file.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use toml::Spanned;

use super::call::{Ask, TransferMode};
use super::numbers::Grammar;
use crate::media::dtmf::is_digit;
use crate::media::prompt::{in_folder, PromptLibrary};
use crate::sip::refer;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// Hang up (after "goodbye") when a call lasts this long.
    #[serde(default = "default_max_call")]
    pub max_call_seconds: u64,
    pub welcome: Spanned<String>,
    pub account: Question,
    pub pin: Question,
    pub outcomes: Outcomes,
    pub start_menu: Spanned<String>,
    pub menus: BTreeMap<String, Menu>,
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
    /// Said before the recorded name of a verified caller.
    pub greeting: Spanned<String>,
    pub wrong_credentials: Spanned<String>,
    pub locked: Spanned<String>,
    pub unavailable: Spanned<String>,
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
    /// A number given in the file.
    SayNumber(u64),
    /// A field of the caller's profile spoken as money; `balance` is the one there is.
    SayAmount(Spanned<String>),
    /// Text for the speech engine.
    SayText(String),
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
        let script: Script = toml::from_str(text)?;
        let mut errors = Vec::new();
        let at = |span: std::ops::Range<usize>| {
            text[..span.start.min(text.len())].matches('\n').count() + 1
        };
        let o = &script.outcomes;
        let mut named: Vec<&Spanned<String>> = vec![&script.welcome];
        for q in [&script.account, &script.pin] {
            named.push(&q.prompt);
            named.extend(&q.retry_prompt);
        }
        named.extend([
            &o.greeting,
            &o.wrong_credentials,
            &o.locked,
            &o.unavailable,
            &o.no_answer,
            &o.goodbye,
            &o.error,
        ]);
        let mut needs_numbers = false;
        let mut gotos = vec![&script.start_menu];
        let mut languages: Vec<&Spanned<String>> = script.language.iter().collect();
        for menu in script.menus.values() {
            named.extend([&menu.prompt, &menu.invalid_prompt]);
        }
        let options = script
            .menus
            .values()
            .flat_map(|m| m.options.values().flatten());
        for action in options.chain(&script.on_transfer_failed) {
            match action {
                Action::Play(p) => named.push(p),
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
                Action::Hangup | Action::SayText(_) => {}
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
            if !script.menus.contains_key(target.get_ref()) {
                errors.push(format!(
                    "line {}: no menu named {:?}",
                    at(target.span()),
                    target.get_ref()
                ));
            }
        }
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
        for (name, q) in [("account", &script.account), ("pin", &script.pin)] {
            if q.min_digits == 0
                || q.min_digits > q.max_digits
                || q.max_digits > 20
                || q.attempts == 0
            {
                errors.push(format!(
                    "{name}: need 1 <= min_digits <= max_digits <= 20 and attempts >= 1"
                ));
            }
            if q.terminator.as_ref().is_some_and(|t| {
                t.chars().count() != 1 || !is_digit(t.chars().next().unwrap_or('x'))
            }) {
                errors.push(format!("{name}: terminator must be one key"));
            }
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

    /// The prompt folder of `language`: `None` for the base language (the top of the folder).
    pub fn folder_of(&self, language: &str) -> Option<String> {
        (!language.eq_ignore_ascii_case(&self.base_language)).then(|| language.to_ascii_lowercase())
    }

    /// How numbers are said in the language whose prompts are in `folder` (`None`: the base).
    pub fn grammar(&self, folder: Option<&str>) -> Option<&Grammar> {
        self.grammars.get(folder.unwrap_or_default())
    }
}
