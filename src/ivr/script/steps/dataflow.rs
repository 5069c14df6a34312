//! Which variables are certainly set when a call reaches each step or menu: a must-analysis
//! over the flow's graph (what every way in has set), so `check-config` can name a template
//! that may be read before any step has set its variable on some path, not only one no step
//! sets at all.

use std::collections::{BTreeMap, BTreeSet};

use super::{Kind, Step};
use crate::ivr::script::{Action, Script};

/// Variables set on arrival at each step or menu the call can reach from `start`.
pub fn set_on_arrival<'a>(
    script: &'a Script,
    start: &'a str,
    always: &BTreeSet<&'a str>,
) -> BTreeMap<&'a str, BTreeSet<&'a str>> {
    let mut arrival: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    arrival.insert(start, always.clone());
    let mut todo: Vec<&str> = arrival.keys().copied().collect();
    while let Some(node) = todo.pop() {
        let known = arrival[node].clone();
        for (target, leaving) in successors(script, node, &known) {
            let changed = match arrival.get_mut(target) {
                Some(have) => {
                    let meet: BTreeSet<&str> = have.intersection(&leaving).copied().collect();
                    let changed = meet.len() != have.len();
                    *have = meet;
                    changed
                }
                None => {
                    arrival.insert(target, leaving);
                    true
                }
            };
            if changed {
                todo.push(target);
            }
        }
    }
    arrival
}

/// Where a call goes from `node`, each with what is set when it gets there.
fn successors<'a>(
    script: &'a Script,
    node: &str,
    known: &BTreeSet<&'a str>,
) -> Vec<(&'a str, BTreeSet<&'a str>)> {
    // A transfer that fails goes on with `on_transfer_failed`, knowing what was known there.
    let failed = gotos(&script.on_transfer_failed);
    let transfers = |actions: &[Action]| actions.iter().any(|a| matches!(a, Action::Transfer(_)));
    if let Some(menu) = script.menus.get(node) {
        let options = menu.options.values().flat_map(|actions| gotos(actions));
        let transfer = menu.options.values().any(|a| transfers(a));
        let failed = failed.filter(|_| transfer);
        return options.chain(failed).map(|t| (t, known.clone())).collect();
    }
    let Some(step) = script.steps.get(node) else {
        return Vec::new();
    };
    if step.remote.is_some() {
        // An application may return the call anywhere, having set what it likes: where it
        // returns is its business, and not followed here.
        return Vec::new();
    }
    let transfer = step.say.as_deref().is_some_and(transfers);
    let mut out: Vec<(&str, BTreeSet<&str>)> = failed
        .filter(|_| transfer)
        .map(|t| (t, known.clone()))
        .collect();
    for (exit, target) in step.named_exits() {
        let mut leaving = known.clone();
        leaving.extend(written(step, &exit));
        out.push((target.get_ref().as_str(), leaving));
    }
    out.extend(
        step.actions()
            .filter_map(Action::goto)
            .map(|t| (t, known.clone())),
    );
    out
}

/// What a step has set when it leaves by `exit`.
pub fn written<'a>(step: &'a Step, exit: &str) -> Vec<&'a str> {
    match (step.kind(), exit) {
        (Ok(Kind::Collect), "next") => step
            .collect
            .iter()
            .map(|c| c.into.get_ref().as_str())
            .collect(),
        (Ok(Kind::Set), _) => step
            .set
            .iter()
            .flat_map(|s| s.keys().map(String::as_str))
            .collect(),
        (Ok(Kind::Http), "ok") => step
            .http
            .iter()
            .flat_map(|h| h.set.keys().map(String::as_str))
            .collect(),
        (Ok(Kind::Verify), "ok") => super::USER_VARIABLES.to_vec(),
        _ => Vec::new(),
    }
}

fn gotos(actions: &[Action]) -> impl Iterator<Item = &str> {
    actions.iter().filter_map(Action::goto)
}
