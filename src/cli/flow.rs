//! `ivr flow graph`: the flow as a picture, DOT or (through Graphviz's `dot`) SVG.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use clap::{Subcommand, ValueEnum};

use ivr::config::Settings;
use ivr::ivr::graph;
use ivr::ivr::script::Script;

#[derive(Subcommand)]
pub enum Flow {
    /// Draw the flow: menus, keys, actions, outcomes, transfers and the numbers routed to it.
    Graph {
        #[arg(long, value_enum, default_value_t = Format::Dot)]
        format: Format,
        /// A flow file other than `flow.file`.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Run conversation tests (case files, e.g. sip-config/tests/*.toml); exits 1 when one fails.
    Test {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print every case's conversation, not only a failed one's.
        #[arg(long)]
        verbose: bool,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Dot,
    Svg,
}

pub fn run(settings: Settings, flow: Flow) -> Result<ExitCode> {
    let (format, file) = match flow {
        Flow::Graph { format, file } => (format, file),
        Flow::Test { files, verbose } => return super::flow_test::run(settings, &files, verbose),
    };
    let file = file.unwrap_or_else(|| settings.flow.file.clone());
    let prompts = settings.prompts.load(&settings.sip.codecs)?;
    let script = Script::load(&file, &prompts)?;
    let numbers: Vec<String> = settings
        .flow
        .routes
        .iter()
        .filter(|(_, routed)| **routed == file)
        .map(|(number, _)| number.clone())
        .collect();
    let name = file.display().to_string();
    let dot = graph::dot(&script, &name, &numbers);
    let mut stdout = std::io::stdout();
    if format == Format::Svg {
        match svg(&dot) {
            Ok(svg) => {
                stdout.write_all(&svg)?;
                return Ok(ExitCode::SUCCESS);
            }
            Err(why) => eprintln!("ivr flow graph: no SVG ({why:#}); writing DOT instead"),
        }
    }
    stdout.write_all(dot.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn svg(dot: &str) -> Result<Vec<u8>> {
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("Graphviz is not installed (apt-get install graphviz)")?;
    child
        .stdin
        .take()
        .context("dot's input")?
        .write_all(dot.as_bytes())?;
    let out = child.wait_with_output()?;
    anyhow::ensure!(out.status.success(), "dot failed: {}", out.status);
    Ok(out.stdout)
}
