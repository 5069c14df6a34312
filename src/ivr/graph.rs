//! A picture of a flow in Graphviz's DOT: the numbers that reach it, the login, the outcomes,
//! every menu with its keys and actions, where `goto`s lead, transfers and what follows a
//! failed one.

use std::fmt::Write;

use super::script::steps::{Kind, Step, HANGUP};
use super::script::{Action, Login, Menu, Script};

/// DOT for `script`; `numbers` are the dialled numbers routed to it.
pub fn dot(script: &Script, title: &str, numbers: &[String]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph flow {{");
    let _ = writeln!(
        out,
        "  label={};\n  labelloc=t;\n  rankdir=LR;",
        quote(title)
    );
    let _ = writeln!(
        out,
        "  node [shape=box, style=rounded, fontname=Helvetica];"
    );
    let _ = writeln!(out, "  edge [fontname=Helvetica];");
    for number in numbers {
        let _ = writeln!(out, "  {} [shape=cds];", quote(&format!("☎ {number}")));
        let _ = writeln!(out, "  {} -> call;", quote(&format!("☎ {number}")));
    }
    let _ = writeln!(out, "  call [shape=circle, label=\"call\"];");
    let _ = writeln!(out, "  call -> welcome;");
    node(
        &mut out,
        "welcome",
        &format!("play {}", script.welcome.get_ref()),
    );
    let _ = writeln!(out, "  hangup [shape=doublecircle, label=\"BYE\"];");
    match (&script.start, script.login()) {
        (Some(start), _) => {
            let first = node_id(script, start.get_ref());
            let _ = writeln!(out, "  welcome -> {};", quote(&first));
        }
        (None, Some(login)) => draw_login(&mut out, script, &login),
        (None, None) => {}
    }
    for (name, step) in &script.steps {
        draw_step(&mut out, script, name, step);
    }
    for (name, menu) in &script.menus {
        draw_menu(&mut out, script, name, menu);
    }
    if !script.on_transfer_failed.is_empty() {
        let _ = writeln!(
            out,
            "  transfer_failed [shape=note, label=\"transfer failed\"];"
        );
        actions(
            &mut out,
            script,
            "transfer_failed",
            &script.on_transfer_failed,
        );
    }
    let _ = writeln!(out, "}}");
    out
}

/// The seed's login: account, PIN, verify and its outcomes, the greeting, the first menu.
fn draw_login(out: &mut String, script: &Script, login: &Login<'_>) {
    node(
        out,
        "account",
        &format!("ask account\\n{}", login.account.prompt.get_ref()),
    );
    node(
        out,
        "pin",
        &format!("ask PIN\\n{}", login.pin.prompt.get_ref()),
    );
    let _ = writeln!(out, "  verify [shape=diamond, label=\"verify\"];");
    let _ = writeln!(out, "  welcome -> account -> pin -> verify;");
    for (outcome, prompt) in [
        ("wrong PIN", login.wrong_credentials),
        ("locked", login.locked),
        ("directory down", login.unavailable),
    ] {
        let id = format!("outcome {outcome}");
        node(out, &id, &format!("play {prompt}"));
        let _ = writeln!(
            out,
            "  verify -> {} [label={}];",
            quote(&id),
            quote(outcome)
        );
        let _ = writeln!(out, "  {} -> hangup;", quote(&id));
    }
    node(
        out,
        "greeting",
        &format!("play {}\\n+ the caller's name", login.greeting),
    );
    let _ = writeln!(out, "  verify -> greeting [label=\"verified\"];");
    let first = node_id(script, login.start_menu);
    let _ = writeln!(out, "  greeting -> {};", quote(&first));
}

/// A step, shaped by its kind, with an edge per exit named after it.
fn draw_step(out: &mut String, script: &Script, name: &str, step: &Step) {
    let id = node_id(script, name);
    let (shape, what) = match step.kind() {
        Ok(Kind::Collect) => {
            let c = step
                .collect
                .as_ref()
                .map(|c| (c.into.get_ref().as_str(), c.prompt.get_ref().as_str()));
            let (into, prompt) = c.unwrap_or_default();
            ("parallelogram", format!("collect {into}\\n{prompt}"))
        }
        Ok(Kind::Confirm) => ("diamond", "confirm\\n1 yes, 2 no".to_string()),
        Ok(Kind::Http) => {
            let endpoint = step
                .http
                .as_ref()
                .map_or("", |h| h.endpoint.get_ref().as_str());
            ("component", format!("http {endpoint}"))
        }
        Ok(Kind::Switch) => {
            let on = step.switch.as_ref().map_or("", |s| s.get_ref().as_str());
            ("diamond", format!("switch {on}"))
        }
        Ok(Kind::Verify) => ("diamond", "verify".to_string()),
        Ok(Kind::Remote) => {
            let endpoint = step.remote.as_ref().map_or("", |r| r.get_ref().as_str());
            ("component", format!("application {endpoint}"))
        }
        Ok(kind) => ("box", kind.as_str().to_string()),
        Err(_) => ("box", "?".to_string()),
    };
    let label = format!("step {name}\\n{what}");
    let _ = writeln!(
        out,
        "  {} [shape={shape}, label={}];",
        quote(&id),
        quote(&label)
    );
    if let Some(said) = step
        .say
        .as_deref()
        .or(step.confirm.as_ref().map(|c| c.say.as_slice()))
    {
        let said: Vec<String> = said.iter().map(action_label).collect();
        let _ = writeln!(
            out,
            "  {} [tooltip={}];",
            quote(&id),
            quote(&said.join(", "))
        );
    }
    for (exit, target) in step.named_exits() {
        let to = node_id(script, target.get_ref());
        let _ = writeln!(
            out,
            "  {} -> {} [label={}];",
            quote(&id),
            quote(&to),
            quote(&exit)
        );
    }
}

fn draw_menu(out: &mut String, script: &Script, name: &str, menu: &Menu) {
    let id = menu_id(name);
    let _ = writeln!(
        out,
        "  {} [shape=box, style=\"rounded,bold\", label={}];",
        quote(&id),
        quote(&format!("menu {name}\\n{}", menu.prompt.get_ref()))
    );
    let _ = writeln!(
        out,
        "  {} -> hangup [label=\"no key\", style=dashed];",
        quote(&id)
    );
    for (key, list) in &menu.options {
        let start = format!("{name} key {key}");
        let _ = writeln!(out, "  {} [shape=point];", quote(&start));
        let _ = writeln!(
            out,
            "  {} -> {} [label={}];",
            quote(&id),
            quote(&start),
            quote(key)
        );
        actions(out, script, &start, list);
    }
}

/// Chains `list` after node `from`; a list that ends without goto or hangup returns to the
/// menu it came from, which the chain's start names.
fn actions(out: &mut String, script: &Script, from: &str, list: &[Action]) {
    let mut previous = from.to_string();
    for (i, action) in list.iter().enumerate() {
        let id = format!("{from} #{i}");
        let target = match action {
            Action::Goto(target) => Some(node_id(script, target.get_ref())),
            Action::Hangup => Some("hangup".to_string()),
            _ => None,
        };
        if let Some(target) = target {
            let _ = writeln!(out, "  {} -> {};", quote(&previous), quote(&target));
            return;
        }
        let shape = match action {
            Action::Webhook(_) => "component",
            Action::Transfer(_) => "house",
            _ => "box",
        };
        let label = action_label(action);
        let _ = writeln!(
            out,
            "  {} [shape={shape}, label={}];",
            quote(&id),
            quote(&label)
        );
        let _ = writeln!(out, "  {} -> {};", quote(&previous), quote(&id));
        if let Action::Transfer(_) = action {
            let _ = writeln!(out, "  {} -> hangup [label=\"answered\"];", quote(&id));
            let _ = writeln!(
                out,
                "  {} -> transfer_failed [label=\"failed\", style=dashed];",
                quote(&id)
            );
            return;
        }
        previous = id;
    }
    if let Some((menu, _)) = from.split_once(" key ") {
        let _ = writeln!(
            out,
            "  {} -> {} [style=dotted];",
            quote(&previous),
            quote(&menu_id(menu))
        );
    }
}

fn action_label(action: &Action) -> String {
    match action {
        Action::Play(p) => format!("play {}", p.get_ref()),
        Action::Announce(p) => format!("play {} whole", p.get_ref()),
        Action::SayNumber(n) => format!("say {n}"),
        Action::SayAmount(field) => format!("say {}", field.get_ref()),
        Action::SayText(text) => format!("say \\\"{}\\\"", text.replace('"', "'")),
        Action::SayDigits(text) => format!("say digits {}", text.get_ref()),
        Action::Greeting => "the caller's greeting".to_string(),
        Action::Webhook(w) => format!("webhook\\n{}", w.url.get_ref()),
        Action::Transfer(t) => format!("transfer ({})\\n{}", t.mode().as_str(), t.to.get_ref()),
        Action::Language(l) => format!("speak {}", l.get_ref()),
        Action::Goto(g) => format!("go to {}", g.get_ref()),
        Action::Hangup => "hang up".to_string(),
    }
}

fn node(out: &mut String, id: &str, label: &str) {
    let _ = writeln!(out, "  {} [label={}];", quote(id), quote(label));
}

fn menu_id(name: &str) -> String {
    format!("menu {name}")
}

/// A step's, a menu's or the end's node.
fn node_id(script: &Script, name: &str) -> String {
    if name == HANGUP {
        "hangup".to_string()
    } else if script.steps.contains_key(name) {
        format!("step {name}")
    } else {
        menu_id(name)
    }
}

/// A DOT string; `\n` written by the caller stays a line break.
fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_flow_is_drawn_whole() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let prompts = crate::testing::shipped_prompts();
        let script = Script::load(&root.join("sip-config/flow.toml"), &prompts).unwrap();
        let dot = dot(&script, "flow.toml", &["+15551230001".into()]);
        for needle in [
            "digraph flow {",
            "\"☎ +15551230001\" -> call;",
            "welcome -> \"step account\";",
            "\"step account\" [shape=parallelogram, label=\"step account\\ncollect account\\nenter_account\"];",
            "\"step account\" -> \"step pin\" [label=\"next\"];",
            "\"step verify\" -> \"step greeting\" [label=\"ok\"];",
            "\"step verify\" -> \"step locked\" [label=\"locked\"];",
            "\"step greeting\" -> \"menu main\" [label=\"next\"];",
            "\"step wrong_credentials\" -> \"hangup\" [label=\"next\"];",
            "\"menu main\" -> \"main key 0\" [label=\"0\"];",
            "\"main key 0 #1\" [shape=house, label=\"transfer (refer)\\nsip:agents@pbx.example\"];",
            "\"main key 0 #1\" -> transfer_failed [label=\"failed\", style=dashed];",
            "\"main key 9 #0\" -> \"hangup\";",
            "\"main key *\" -> \"menu main\";",
            "\"transfer_failed #0\" -> \"menu main\";",
            "\"main key 2 #0\" -> \"menu main\" [style=dotted];",
        ] {
            assert!(dot.contains(needle), "missing {needle:?} in\n{dot}");
        }
        assert!(dot.trim_end().ends_with('}'));
    }
}
