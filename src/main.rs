//! `ivr`: serve calls, or check the configuration and prompts without serving.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use clap::{Parser, Subcommand};

use ivr::config::{Settings, DEFAULT_CONFIG};
use ivr::ivr::flow::REQUIRED_PROMPTS;
use ivr::media::prompt::PromptLibrary;

#[derive(Parser)]
#[command(
    version,
    about = "A SIP IVR: answers calls, plays prompts, reads keys."
)]
struct Cli {
    /// Settings file; every key can be overridden by IVR_<SECTION>__<KEY>.
    #[arg(long, global = true, default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Answer calls (the default).
    Serve,
    /// Validate the settings and prompts, then exit.
    CheckConfig,
}

fn load(cli: &Cli) -> Result<(Settings, Arc<PromptLibrary>)> {
    let settings = Settings::load(&cli.config)?;
    let prompts = PromptLibrary::load(&settings.prompts.dir, &settings.codecs())?;
    prompts.require(REQUIRED_PROMPTS, &settings.prompts.dir)?;
    Ok((settings, Arc::new(prompts)))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let (settings, prompts) = match load(&cli) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("ivr: configuration error: {e:#}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => {
            println!(
                "configuration OK: {} prompts, codecs {:?}",
                prompts.len(),
                settings.sip.codecs
            );
            ExitCode::SUCCESS
        }
        Command::Serve => {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("ivr: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let result = runtime.block_on(async {
                tokio::select! {
                    r = ivr::server::serve(settings, prompts) => r,
                    _ = tokio::signal::ctrl_c() => Ok(()),
                }
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ivr: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
