//! `ivr`: serve calls, or check the configuration and prompts without serving.

mod cli;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};

use ivr::config::{Backend, Settings, DEFAULT_CONFIG};
use ivr::directory::auth0::Auth0Directory;
use ivr::directory::local::LocalDirectory;
use ivr::directory::lockout::{Guarded, InMemoryCounter, Policy};
use ivr::directory::{Amount, Directory};
use ivr::ivr::flow::FlowEnv;
use ivr::ivr::script::Script;
use ivr::media::prompt::PromptLibrary;
use ivr::server::Stop;

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
    /// Validate the settings, prompts, flow and directory, then exit.
    CheckConfig,
    /// Edit the local directory (sip-config/users.toml); PINs are read from standard input.
    Users {
        #[command(subcommand)]
        edit: UsersCommand,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Add an account; its PIN is read from standard input.
    Add {
        account: String,
        /// Prompt name of a recorded greeting, e.g. greetings/12345.
        #[arg(long)]
        greeting: Option<String>,
        #[arg(long)]
        balance: Option<Amount>,
    },
    /// Change an account's PIN (read from standard input).
    SetPin {
        account: String,
    },
    Remove {
        account: String,
    },
}

struct Loaded {
    settings: Settings,
    prompts: Arc<PromptLibrary>,
    flow: Arc<FlowEnv>,
}

fn load(cli: &Cli) -> Result<Loaded> {
    let settings = Settings::load(&cli.config)?;
    let prompts = PromptLibrary::load(&settings.prompts.dir, &settings.sip.codecs)?;
    let script = Script::load(&settings.flow.file, &prompts)?;
    let http = ivr::http::client()?;
    let backend: Arc<dyn Directory> = match settings.directory.backend {
        Backend::Local => Arc::new(LocalDirectory::load(
            &settings.directory.users,
            settings.directory.pin_check_threads,
        )?),
        Backend::Auth0 => Arc::new(Auth0Directory::new(
            http.clone(),
            &settings.auth0,
            settings.auth0_secret()?,
        )),
    };
    let lockout = &settings.lockout;
    let policy = |max_failures| Policy {
        max_failures,
        window: Duration::from_secs(lockout.window_s),
        lock_for: Duration::from_secs(lockout.lock_s),
    };
    let directory = Arc::new(Guarded::new(
        backend,
        Arc::new(InMemoryCounter::new(policy(lockout.max_failures))),
        Arc::new(InMemoryCounter::new(policy(lockout.caller_max_failures))),
    ));
    let flow = Arc::new(FlowEnv {
        script,
        directory,
        http,
    });
    Ok(Loaded {
        settings,
        prompts: Arc::new(prompts),
        flow,
    })
}

/// SIGTERM (what `docker stop` and systemd send) or SIGINT: the first drains, the second ends
/// every call at once.
fn stop_signals() -> Result<tokio::sync::mpsc::UnboundedReceiver<Stop>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (stops, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut next = Stop::Drain;
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            if stops.send(next).is_err() {
                return;
            }
            next = Stop::Now;
        }
    });
    Ok(receiver)
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
    if let Some(Command::Users { edit }) = cli.command {
        let path = match Settings::load(&cli.config) {
            Ok(s) => s.directory.users,
            Err(e) => {
                eprintln!("ivr: configuration error: {e:#}");
                return ExitCode::from(2);
            }
        };
        let edit = match edit {
            UsersCommand::Add {
                account,
                greeting,
                balance,
            } => cli::users::Edit::Add {
                account,
                greeting,
                balance,
            },
            UsersCommand::SetPin { account } => cli::users::Edit::SetPin { account },
            UsersCommand::Remove { account } => cli::users::Edit::Remove { account },
        };
        return match cli::users::run(&path, edit) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ivr users: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let Loaded {
        settings,
        prompts,
        flow,
    } = match load(&cli) {
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
        Command::Users { .. } => ExitCode::SUCCESS,
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
                let stops = stop_signals()?;
                ivr::server::serve(settings, prompts, flow, stops).await
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
