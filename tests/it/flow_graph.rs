//! `ivr flow graph`: the shipped flow drawn as DOT, and as SVG through Graphviz.

use crate::support;

use std::process::{Command, Output};

use support::{project_dir, require_tool};

fn graph(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ivr"))
        .current_dir(project_dir())
        .args(["flow", "graph"])
        .args(args)
        .env(
            "IVR_FLOW__ROUTES",
            "{\"+15551230001\" = \"sip-config/flow.toml\"}",
        )
        .output()
        .unwrap()
}

#[test]
fn the_shipped_flow_is_drawn_as_dot_with_its_numbers_menus_and_transfer() {
    let out = graph(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dot = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "digraph flow {",
        "\"☎ +15551230001\" -> call;",
        "\"menu main\" -> \"main key 1\" [label=\"1\"];",
        "transfer (refer)\\nsip:agents@pbx.example",
        "\"transfer_failed #0\" [shape=box, label=\"play transfer_failed\"];",
    ] {
        assert!(dot.contains(needle), "missing {needle:?} in\n{dot}");
    }
}

#[test]
fn with_graphviz_it_is_an_svg_picture() {
    require_tool("dot", "graphviz");
    let out = graph(&["--format", "svg"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let svg = String::from_utf8(out.stdout).unwrap();
    assert!(svg.contains("<svg"), "{svg:.200}");
    assert!(
        svg.contains("sip:agents@pbx.example"),
        "the transfer is drawn"
    );
    assert!(svg.contains("menu main"));
}
