//! What `ivr check-config` says of a flow's steps before any call runs them: every step has one
//! kind and the exits that kind needs, each exit leads somewhere, every step can be reached,
//! every variable read is set by some step (or is one the engine fills in), and a secret is
//! never read back, templated or sent where it was not asked for.

use std::collections::{BTreeSet, HashSet};
use std::ops::Range;

use toml::Spanned;

use super::template::{names, valid_name};
use super::{dataflow, Kind, Step, CALL_VARIABLES, HANGUP, USER_VARIABLES};
use crate::ivr::script::{Action, Script};
use crate::media::dtmf::is_digit;

/// Compiles each collect step's `pattern` (anchored: the whole input must match).
pub fn compile_patterns(script: &mut Script, errors: &mut Vec<String>) {
    for (name, step) in &mut script.steps {
        let Some(collect) = step.collect.as_mut() else {
            continue;
        };
        if let Some(pattern) = &collect.pattern {
            match regex::Regex::new(&format!("^(?:{})$", pattern.get_ref())) {
                Ok(re) => collect.compiled = Some(re),
                Err(e) => errors.push(format!("step {name}: pattern: {e}")),
            }
        }
    }
}

/// Every prompt the steps name (the actions' prompts come through `actions`).
pub fn prompts(script: &Script) -> Vec<&Spanned<String>> {
    let mut out = Vec::new();
    for step in script.steps.values() {
        if let Some(c) = &step.collect {
            out.push(&c.prompt);
            out.extend(&c.retry_prompt);
        }
        if let Some(c) = &step.confirm {
            out.push(&c.prompt);
            out.extend(&c.invalid_prompt);
        }
    }
    out
}

/// The actions inside steps (`say` lists and what a confirmation reads back).
pub fn actions(script: &Script) -> impl Iterator<Item = &Action> {
    script.steps.values().flat_map(Step::actions)
}

/// The digit rules a question must follow (`what` names it in the message).
pub fn digit_rules(
    what: &str,
    (min, max, attempts): (usize, usize, u32),
    terminator: Option<&String>,
    errors: &mut Vec<String>,
) {
    if min == 0 || min > max || max > 20 || attempts == 0 {
        errors.push(format!(
            "{what}: need 1 <= min_digits <= max_digits <= 20 and attempts >= 1"
        ));
    }
    if terminator.is_some_and(|t| t.chars().count() != 1 || !t.chars().all(is_digit)) {
        errors.push(format!("{what}: terminator must be one key"));
    }
}

/// Every check of the steps; `at` turns a span into a line number.
pub fn steps(script: &Script, at: &dyn Fn(Range<usize>) -> usize, errors: &mut Vec<String>) {
    let exists =
        |t: &str| t == HANGUP || script.steps.contains_key(t) || script.menus.contains_key(t);
    if let Some(start) = &script.start {
        if !exists(start.get_ref()) || start.get_ref() == HANGUP {
            let line = at(start.span());
            errors.push(format!(
                "line {line}: start: no step or menu named {:?}",
                start.get_ref()
            ));
        }
    }
    for (name, step) in &script.steps {
        if name == HANGUP || !valid_name(name) || name.contains('.') {
            errors.push(format!(
                "step {name:?}: a step's name is letters, digits and _ (and not \"hangup\")"
            ));
        }
        let kind = match step.kind() {
            Ok(kind) => kind,
            Err(why) => {
                errors.push(format!("step {name} {why}"));
                continue;
            }
        };
        let exits = step.named_exits();
        for needed in kind.exits() {
            if !exits.iter().any(|(n, _)| n == needed) {
                errors.push(format!(
                    "step {name}: a {} step needs `{needed}`",
                    kind.as_str()
                ));
            }
        }
        for (exit, target) in &exits {
            let fits = kind.exits().contains(&exit.as_str())
                || kind.optional_exits().contains(&exit.as_str())
                || (kind == Kind::Switch && exit.starts_with("case "));
            if !fits {
                errors.push(format!(
                    "line {}: step {name}: a {} step has no exit `{exit}`",
                    at(target.span()),
                    kind.as_str()
                ));
            }
            if !exists(target.get_ref()) {
                errors.push(format!("line {}: step {name}: {exit} leads to {:?}, which is no step, menu or \"hangup\"", at(target.span()), target.get_ref()));
            }
        }
        if let Some(c) = &step.collect {
            let rules = (c.min_digits, c.max_digits, c.attempts);
            digit_rules(
                &format!("step {name}"),
                rules,
                c.terminator.as_ref(),
                errors,
            );
            if !valid_name(c.into.get_ref()) || c.into.get_ref().contains('.') {
                errors.push(format!("line {}: step {name}: into must be a plain name (call.* and user.* are the engine's)", at(c.into.span())));
            }
        }
        if let Some(h) = &step.http {
            if !["POST", "PUT"].contains(&h.method.get_ref().as_str()) {
                errors.push(format!("step {name}: method is POST or PUT"));
            }
            if h.timeout_ms == 0 || h.timeout_ms > 30_000 {
                errors.push(format!("step {name}: timeout_ms must be 1 to 30000"));
            }
            for (var, pointer) in &h.set {
                if !pointer.get_ref().is_empty() && !pointer.get_ref().starts_with('/') {
                    errors.push(format!(
                        "line {}: step {name}: set {var}: a JSON pointer starts with /",
                        at(pointer.span())
                    ));
                }
            }
        }
    }
    reachability(script, errors);
    variables(script, at, errors);
    read_before_set(script, at, errors);
}

/// The templates a step reads (its actions' too).
fn step_reads(step: &Step) -> Vec<&Spanned<String>> {
    let mut out: Vec<&Spanned<String>> = Vec::new();
    out.extend(step.set.iter().flat_map(|s| s.values()));
    out.extend(&step.switch);
    out.extend(step.verify.iter().map(|v| &v.account));
    out.extend(step.http.iter().flat_map(|h| h.body.values()));
    out.extend(step.actions().filter_map(action_reads));
    out
}

fn action_reads(action: &Action) -> Option<&Spanned<String>> {
    match action {
        Action::SayDigits(t) | Action::SayAmount(t) => Some(t),
        _ => None,
    }
}

/// A template read where some way in has not set its variable yet (a collect's `on_fail`
/// path, an API that failed) is refused: it would read as the empty string on that call.
fn read_before_set(script: &Script, at: &dyn Fn(Range<usize>) -> usize, errors: &mut Vec<String>) {
    let Some(start) = &script.start else {
        return;
    };
    let always: BTreeSet<&str> = CALL_VARIABLES.into_iter().collect();
    let arrival = dataflow::set_on_arrival(script, start.get_ref(), &always);
    let set_somewhere: BTreeSet<&str> = script
        .steps
        .values()
        .flat_map(|step| {
            step.named_exits()
                .into_iter()
                .flat_map(move |(exit, _)| dataflow::written(step, &exit))
        })
        .collect();
    for (node, known) in &arrival {
        let reads: Vec<&Spanned<String>> = match (script.steps.get(*node), script.menus.get(*node))
        {
            (Some(step), _) => step_reads(step),
            (None, Some(menu)) => menu
                .options
                .values()
                .flatten()
                .filter_map(action_reads)
                .collect(),
            _ => continue,
        };
        for text in reads {
            for name in names(text.get_ref()).unwrap_or_default() {
                if set_somewhere.contains(name) && !known.contains(name) {
                    errors.push(format!("line {}: {{{{{name}}}}} may be read in {node} before any step sets it (some way there does not)", at(text.span())));
                }
            }
        }
    }
}

/// Steps no call can reach are a mistake in the flow (a misspelt exit, usually).
fn reachability(script: &Script, errors: &mut Vec<String>) {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut todo: Vec<&str> = script
        .start
        .iter()
        .chain(&script.start_menu)
        .map(|s| s.get_ref().as_str())
        .chain(script.on_transfer_failed.iter().filter_map(Action::goto))
        .collect();
    while let Some(node) = todo.pop() {
        if !seen.insert(node) {
            continue;
        }
        if let Some(menu) = script.menus.get(node) {
            todo.extend(menu.options.values().flatten().filter_map(Action::goto));
        }
        if let Some(step) = script.steps.get(node) {
            todo.extend(
                step.named_exits()
                    .into_iter()
                    .map(|(_, t)| t.get_ref().as_str()),
            );
            todo.extend(step.actions().filter_map(Action::goto));
            if step.remote.is_some() {
                // An application may return the call to any step or menu.
                todo.extend(
                    script
                        .steps
                        .keys()
                        .chain(script.menus.keys())
                        .map(String::as_str),
                );
            }
        }
    }
    for name in script.steps.keys().filter(|n| !seen.contains(n.as_str())) {
        errors.push(format!("step {name} is never reached"));
    }
}

/// Each template's names are set somewhere, and no secret is read where it could be heard,
/// logged or sent unasked.
fn variables(script: &Script, at: &dyn Fn(Range<usize>) -> usize, errors: &mut Vec<String>) {
    let mut set: BTreeSet<&str> = CALL_VARIABLES.into_iter().collect();
    let mut secrets: BTreeSet<&str> = BTreeSet::new();
    if script.steps.values().any(|s| s.verify.is_some()) {
        set.extend(USER_VARIABLES);
    }
    for step in script.steps.values() {
        if let Some(c) = &step.collect {
            set.insert(c.into.get_ref());
            if c.secret {
                secrets.insert(c.into.get_ref());
            }
        }
        set.extend(step.set.iter().flat_map(|s| s.keys().map(String::as_str)));
        set.extend(
            step.http
                .iter()
                .flat_map(|h| h.set.keys().map(String::as_str)),
        );
    }
    // A value set by `set` or an API is not secret, whatever name it has.
    for step in script.steps.values() {
        let setters = step
            .set
            .iter()
            .flat_map(|s| s.keys())
            .chain(step.http.iter().flat_map(|h| h.set.keys()));
        for name in setters {
            if secrets.contains(name.as_str()) {
                errors.push(format!(
                    "{name} is secret (collected with secret = true): no step may overwrite it"
                ));
            }
        }
    }
    let read = |text: &Spanned<String>, may_send: &[Spanned<String>], errors: &mut Vec<String>| {
        let line = at(text.span());
        match names(text.get_ref()) {
            Err(why) => errors.push(format!("line {line}: {why}")),
            Ok(found) => {
                for name in found {
                    if !set.contains(name) {
                        errors.push(format!(
                            "line {line}: {{{{{name}}}}} is never set by any step"
                        ));
                    } else if secrets.contains(name)
                        && !may_send.iter().any(|s| s.get_ref() == name)
                    {
                        errors.push(format!("line {line}: {{{{{name}}}}} is secret: it is never read back, spoken, logged or sent unless an http step lists it in send_secret"));
                    }
                }
            }
        }
    };
    let all_actions = script
        .menus
        .values()
        .flat_map(|m| m.options.values().flatten())
        .chain(&script.on_transfer_failed)
        .chain(actions(script));
    for action in all_actions {
        match action {
            Action::SayDigits(t) | Action::SayAmount(t) => read(t, &[], errors),
            Action::SayText(t) => read(&Spanned::new(0..0, t.clone()), &[], errors),
            _ => {}
        }
    }
    for (name, step) in &script.steps {
        for value in step.set.iter().flat_map(|s| s.values()) {
            read(value, &[], errors);
        }
        if let Some(switch) = &step.switch {
            read(switch, &[], errors);
        }
        if let Some(v) = &step.verify {
            read(&v.account, &[], errors);
            if !set.contains(v.pin.get_ref().as_str()) {
                errors.push(format!(
                    "line {}: step {name}: pin names {:?}, which no collect step sets",
                    at(v.pin.span()),
                    v.pin.get_ref()
                ));
            }
        }
        if let Some(h) = &step.http {
            for sent in &h.send_secret {
                if !secrets.contains(sent.get_ref().as_str()) {
                    errors.push(format!("line {}: step {name}: send_secret names {:?}, which is not a secret variable", at(sent.span()), sent.get_ref()));
                }
            }
            for value in h.body.values() {
                read(value, &h.send_secret, errors);
            }
        }
    }
}
