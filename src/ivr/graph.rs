//! A picture of a flow in Graphviz's DOT: the numbers that reach it, the login, the outcomes,
//! every menu with its keys and actions, where `goto`s lead, transfers and what follows a
//! failed one.

use std::fmt::Write;

use super::script::{Action, Menu, Script};

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
    let o = &script.outcomes;
    let _ = writeln!(out, "  call [shape=circle, label=\"call\"];");
    let _ = writeln!(out, "  call -> welcome;");
    node(
        &mut out,
        "welcome",
        &format!("play {}", script.welcome.get_ref()),
    );
    node(
        &mut out,
        "account",
        &format!("ask account\\n{}", script.account.prompt.get_ref()),
    );
    node(
        &mut out,
        "pin",
        &format!("ask PIN\\n{}", script.pin.prompt.get_ref()),
    );
    let _ = writeln!(out, "  verify [shape=diamond, label=\"verify\"];");
    let _ = writeln!(out, "  hangup [shape=doublecircle, label=\"BYE\"];");
    let _ = writeln!(out, "  welcome -> account -> pin -> verify;");
    for (outcome, prompt) in [
        ("wrong PIN", o.wrong_credentials.get_ref()),
        ("locked", o.locked.get_ref()),
        ("directory down", o.unavailable.get_ref()),
    ] {
        let id = format!("outcome {outcome}");
        node(&mut out, &id, &format!("play {prompt}"));
        let _ = writeln!(
            out,
            "  verify -> {} [label={}];",
            quote(&id),
            quote(outcome)
        );
        let _ = writeln!(out, "  {} -> hangup;", quote(&id));
    }
    node(
        &mut out,
        "greeting",
        &format!("play {}\\n+ the caller's name", o.greeting.get_ref()),
    );
    let _ = writeln!(out, "  verify -> greeting [label=\"verified\"];");
    let _ = writeln!(
        out,
        "  greeting -> {};",
        quote(&menu_id(script.start_menu.get_ref()))
    );
    for (name, menu) in &script.menus {
        draw_menu(&mut out, name, menu);
    }
    if !script.on_transfer_failed.is_empty() {
        let _ = writeln!(
            out,
            "  transfer_failed [shape=note, label=\"transfer failed\"];"
        );
        actions(&mut out, "transfer_failed", &script.on_transfer_failed);
    }
    let _ = writeln!(out, "}}");
    out
}

fn draw_menu(out: &mut String, name: &str, menu: &Menu) {
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
        actions(out, &start, list);
    }
}

/// Chains `list` after node `from`; a list that ends without goto or hangup returns to the
/// menu it came from, which the chain's start names.
fn actions(out: &mut String, from: &str, list: &[Action]) {
    let mut previous = from.to_string();
    for (i, action) in list.iter().enumerate() {
        let id = format!("{from} #{i}");
        let target = match action {
            Action::Goto(menu) => Some(menu_id(menu.get_ref())),
            Action::Hangup => Some("hangup".to_string()),
            _ => None,
        };
        if let Some(target) = target {
            let _ = writeln!(out, "  {} -> {};", quote(&previous), quote(&target));
            return;
        }
        let (label, shape) = match action {
            Action::Play(p) => (format!("play {}", p.get_ref()), "box"),
            Action::SayNumber(n) => (format!("say {n}"), "box"),
            Action::SayAmount(field) => (format!("say {}", field.get_ref()), "box"),
            Action::SayText(text) => (format!("say \\\"{}\\\"", text.replace('"', "'")), "box"),
            Action::Webhook(w) => (format!("webhook\\n{}", w.url.get_ref()), "component"),
            Action::Transfer(t) => (
                format!("transfer ({})\\n{}", t.mode().as_str(), t.to.get_ref()),
                "house",
            ),
            Action::Language(l) => (format!("speak {}", l.get_ref()), "box"),
            Action::Goto(_) | Action::Hangup => unreachable!("handled above"),
        };
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

fn node(out: &mut String, id: &str, label: &str) {
    let _ = writeln!(out, "  {} [label={}];", quote(id), quote(label));
}

fn menu_id(name: &str) -> String {
    format!("menu {name}")
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
            "welcome -> account -> pin -> verify;",
            "verify -> greeting [label=\"verified\"];",
            "\"greeting\" [label=\"play welcome_user\\n+ the caller's name\"];",
            "greeting -> \"menu main\";",
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
