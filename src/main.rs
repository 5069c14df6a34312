//! `ivr`: serve calls, or check the configuration and prompts without serving.

mod cli;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use ivr::config::UnknownNumbers;
use ivr::config::{Backend, LogFormat, Settings, DEFAULT_CONFIG};
use ivr::directory::auth0::Auth0Directory;
use ivr::directory::breaker::Breaker;
use ivr::directory::local::LocalDirectory;
use ivr::directory::lockout::{FailureCounter, Guarded, InMemoryCounter, Policy};
use ivr::directory::shared_lockout::RedisCounter;
use ivr::directory::Directory;
use ivr::ivr::flow::{FlowEnv, Flows};
use ivr::ivr::routes::Routes;
use ivr::ivr::script::Script;
use ivr::log_queue::{LogFlush, LogQueue};
use ivr::media::prompt::PromptLibrary;
use ivr::media::speech::{Espeak, SpeechCache};
use ivr::metrics::METRICS;
use ivr::server::{Control, Reloaded, Reloader};
use tokio::sync::mpsc;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

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
    /// Ask the running server to reload (POST /reload on `http.listen`); SIGHUP does the same.
    Reload,
    /// Exit 0 when the running server is ready for calls (GET /health/ready on `http.listen`):
    /// a container healthcheck.
    Health,
    /// Edit the local directory (sip-config/users.toml); PINs are read from standard input.
    Users {
        #[command(subcommand)]
        edit: cli::users::Edit,
    },
    /// Talk to a flow in the terminal, no phone: `ivr simulate [--flow FILE] [--keys "1 12345#"]`.
    Simulate(cli::simulate::Simulate),
    /// Look at the flow: `ivr flow graph [--format dot|svg] [--file FLOW]`; check it:
    /// `ivr flow test CASES...`.
    Flow {
        #[command(subcommand)]
        flow: cli::flow::Flow,
    },
}

struct Loaded {
    settings: Settings,
    prompts: Arc<PromptLibrary>,
    flows: Arc<Flows>,
    directory: Arc<dyn Directory>,
}

/// What outlives reloads: the lockout's counters (a reload must never forgive a guesser) and
/// the speech already synthesised.
struct Counters {
    accounts: Arc<dyn FailureCounter>,
    callers: Arc<dyn FailureCounter>,
    /// The circuit breaker over every account; like the counters, it survives a reload.
    breaker: Arc<Breaker>,
    speech: Option<Arc<SpeechCache>>,
}

fn start_speech(settings: &Settings) -> Option<Arc<SpeechCache>> {
    let engine = Espeak {
        program: settings.speech.program.clone(),
        voice: settings.speech.voice.clone(),
    };
    if !engine.available() {
        tracing::warn!(
            program = %settings.speech.program.display(),
            "no text-to-speech: greetings from the directory and texts are skipped (apt-get install espeak-ng)"
        );
        return None;
    }
    let cache = SpeechCache::new(
        Arc::new(engine),
        settings.sip.codecs.clone(),
        settings.speech.cache_entries,
    );
    Some(Arc::new(cache))
}

impl Counters {
    fn new(settings: &Settings) -> Result<Counters> {
        let lockout = &settings.lockout;
        let policy = |max_failures| Policy {
            max_failures,
            window: Duration::from_secs(lockout.window_s),
            lock_for: Duration::from_secs(lockout.lock_s),
        };
        let counter = |kind, max_failures| -> Result<Arc<dyn FailureCounter>> {
            Ok(match lockout.key()? {
                Some(key) => Arc::new(RedisCounter::new(
                    kind,
                    &lockout.redis_url,
                    &key,
                    policy(max_failures),
                )?),
                None => Arc::new(InMemoryCounter::new(policy(max_failures))),
            })
        };
        if !lockout.redis_url.is_empty() {
            tracing::info!("the lockout counts in Redis, shared with every node");
        }
        Ok(Counters {
            accounts: counter("account", lockout.max_failures)?,
            callers: counter("caller", lockout.caller_max_failures)?,
            breaker: Arc::new(Breaker::new(
                lockout.breaker_per_minute,
                Duration::from_millis(lockout.breaker_delay_ms),
            )),
            speech: start_speech(settings),
        })
    }
}

/// The configured directory (local or Auth0) behind the lockout.
fn directory(
    settings: &Settings,
    http: &reqwest::Client,
    counters: &Counters,
) -> Result<Arc<dyn Directory>> {
    let backend: Arc<dyn Directory> = match settings.directory.backend {
        Backend::Local => Arc::new(LocalDirectory::load(
            &settings.directory.users,
            settings.directory.pin_check_threads,
            Arc::new(settings.directory.pin_key()?),
        )?),
        Backend::Auth0 => Arc::new(Auth0Directory::new(
            http.clone(),
            &settings.auth0,
            settings.auth0_secret()?,
        )),
    };
    Ok(Arc::new(
        Guarded::new(backend, counters.accounts.clone(), counters.callers.clone())
            .with_breaker(counters.breaker.clone()),
    ))
}

fn load(path: &std::path::Path, counters: Option<&Counters>) -> Result<(Loaded, Counters)> {
    let settings = Settings::load(path)?;
    let counters = match counters {
        Some(c) => Counters {
            accounts: c.accounts.clone(),
            callers: c.callers.clone(),
            breaker: c.breaker.clone(),
            speech: c.speech.clone(),
        },
        None => Counters::new(&settings)?,
    };
    let prompts = settings.prompts.load(&settings.sip.codecs)?;
    let http = ivr::http::client()?;
    let directory = directory(&settings, &http, &counters)?;
    let endpoints = ivr::config::endpoints::endpoints(&settings.endpoints)?;
    let clips = Arc::new(ivr::ivr::app::clips::ClipCache::new(
        settings.sip.codecs.clone(),
    ));
    // One environment per flow file, however many numbers share it.
    let mut envs: HashMap<&Path, Arc<FlowEnv>> = HashMap::new();
    let flow = &settings.flow;
    for file in std::iter::once(&flow.file).chain(flow.routes.values()) {
        if envs.contains_key(file.as_path()) {
            continue;
        }
        let script = Script::load(file, &prompts)?;
        ivr::config::endpoints::check_flow(&script, &file.display().to_string(), &endpoints)?;
        let status = ivr::config::endpoints::status_targets(&script, &endpoints);
        let env = Arc::new(FlowEnv {
            status,
            script,
            endpoints: endpoints.clone(),
            clips: clips.clone(),
            name: file.display().to_string(),
            directory: directory.clone(),
            http: http.clone(),
            speech: counters.speech.clone(),
            speech_wait: Duration::from_millis(settings.speech.wait_ms),
        });
        envs.insert(file, env);
    }
    let numbers = flow
        .routes
        .iter()
        .map(|(number, file)| (number.clone(), envs[file.as_path()].clone()));
    let default =
        (flow.unknown == UnknownNumbers::Default).then(|| envs[flow.file.as_path()].clone());
    let flows = Arc::new(Routes::new(numbers, default));
    let loaded = Loaded {
        prompts: Arc::new(prompts),
        flows,
        directory,
        settings,
    };
    Ok((loaded, counters))
}

/// SIGTERM (what `docker stop` and systemd send) or SIGINT: the first drains, the second ends
/// every call at once. SIGHUP reloads.
fn control_signals(control: mpsc::UnboundedSender<Control>) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        let mut stop = Control::Drain;
        loop {
            let next = tokio::select! {
                _ = term.recv() => std::mem::replace(&mut stop, Control::Now),
                _ = int.recv() => std::mem::replace(&mut stop, Control::Now),
                _ = hup.recv() => Control::Reload(None),
            };
            if control.send(next).is_err() {
                return;
            }
        }
    });
    Ok(())
}

/// About 60,000 lines of text; a stall longer than that costs lines, never calls.
const LOG_QUEUE_BYTES: usize = 16 << 20;

type LogFilter = tracing_subscriber::reload::Handle<EnvFilter, tracing_subscriber::Registry>;

/// Logs to standard error as text or JSON; the level comes from `RUST_LOG` when set, else from
/// `log.level`, and a reload may change the latter. Lines wait for a thread of their own, and are
/// dropped (and counted) beyond `LOG_QUEUE_BYTES`: a reader of stderr that stalls must never stop
/// a call. Dropping the `LogFlush` writes what is queued.
fn start_logging(settings: Option<&Settings>) -> (LogFilter, LogFlush) {
    let level = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| settings.map(|s| s.log.level.clone()))
        .unwrap_or_else(|| "info".into());
    let (filter, handle) = tracing_subscriber::reload::Layer::new(EnvFilter::new(level));
    let (writer, flush) =
        LogQueue::start(std::io::stderr(), LOG_QUEUE_BYTES).expect("cannot start the log thread");
    let dropped = writer.clone();
    METRICS.count_dropped_log_lines(move || dropped.dropped());
    let json = settings.is_some_and(|s| s.log.format == LogFormat::Json);
    let registry = tracing_subscriber::registry().with(filter);
    let text = (!json).then(|| {
        tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_writer(writer.clone())
            .with_ansi(std::io::stderr().is_terminal())
    });
    let json = json.then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .with_target(false)
            .with_writer(writer)
    });
    registry.with(text).with(json).init();
    (handle, flush)
}

/// `ivr reload` and `ivr health`: one request to the running server's operations endpoint.
fn ask_server(settings: &Settings, method: &str, path: &str) -> Result<String> {
    use std::io::{Read, Write};
    let listen = settings
        .http
        .listen
        .context("http.listen is not set: send SIGHUP to the server instead")?;
    let mut stream =
        std::net::TcpStream::connect(listen).with_context(|| format!("connecting to {listen}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {listen}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    if reply.starts_with("HTTP/1.1 200") {
        Ok(body.to_string())
    } else {
        anyhow::bail!("{body}")
    }
}

/// After an edit of the users file: a running server with an operations endpoint reloads, so
/// the change counts from the next call.
fn tell_running_server(settings: &Settings) {
    if settings.http.listen.is_none() {
        eprintln!("saved; a running server sees it after `ivr reload` or SIGHUP");
        return;
    }
    match ask_server(settings, "POST", "/reload") {
        Ok(_) => eprintln!("saved; the running server reloaded it"),
        Err(e) => eprintln!("saved; the running server did not reload it: {e:#}"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut first = Settings::load(&cli.config);
    if matches!(
        cli.command,
        Some(Command::Simulate(_) | Command::Flow { .. })
    ) {
        // A conversation in the terminal: its log only when something is wrong.
        if let Ok(settings) = &mut first {
            settings.log.level = "warn".into();
        }
    }
    let (log_filter, _log_flush) = start_logging(first.as_ref().ok());
    let ask = match cli.command {
        Some(Command::Reload) => Some(("POST", "/reload")),
        Some(Command::Health) => Some(("GET", "/health/ready")),
        _ => None,
    };
    if let Some((method, path)) = ask {
        return match first.and_then(|s| ask_server(&s, method, path)) {
            Ok(body) => {
                println!("{body}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ivr: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(Command::Simulate(args)) = cli.command {
        return first
            .and_then(|settings| cli::simulate::run(settings, args))
            .unwrap_or_else(|e| {
                eprintln!("ivr simulate: {e:#}");
                ExitCode::from(2)
            });
    }
    if let Some(Command::Flow { flow }) = cli.command {
        return first
            .and_then(|settings| cli::flow::run(settings, flow))
            .unwrap_or_else(|e| {
                eprintln!("ivr flow: {e:#}");
                ExitCode::from(2)
            });
    }
    if let Some(Command::Users { edit }) = cli.command {
        let settings = match first {
            Ok(s) => s,
            Err(e) => {
                eprintln!("ivr: configuration error: {e:#}");
                return ExitCode::from(2);
            }
        };
        let path = settings.directory.users.clone();
        let edited = settings
            .directory
            .pin_key()
            .and_then(|key| cli::users::run(&path, &key, edit));
        return match edited {
            Ok(()) => {
                tell_running_server(&settings);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ivr users: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let (loaded, counters) = match load(&cli.config, None) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("ivr: configuration error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let Loaded {
        settings,
        prompts,
        flows,
        directory,
    } = loaded;
    match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => {
            println!(
                "configuration OK: {} prompts, codecs {:?}",
                prompts.len(),
                settings.sip.codecs
            );
            ExitCode::SUCCESS
        }
        Command::Users { .. }
        | Command::Flow { .. }
        | Command::Simulate(_)
        | Command::Reload
        | Command::Health => ExitCode::SUCCESS,
        Command::Serve => {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(settings.sip.runtime_threads())
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("ivr: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let path = cli.config.clone();
            let reloader: Reloader = Arc::new(move || {
                let (loaded, _) = load(&path, Some(&counters))?;
                if std::env::var("RUST_LOG").is_err() {
                    let level = EnvFilter::new(&loaded.settings.log.level);
                    if let Err(e) = log_filter.reload(level) {
                        tracing::warn!("log level not changed: {e}");
                    }
                }
                Ok(Reloaded {
                    prompts: loaded.prompts,
                    flows: loaded.flows,
                    directory: loaded.directory,
                })
            });
            let result = runtime.block_on(async {
                let (control, controls) = mpsc::unbounded_channel();
                control_signals(control.clone())?;
                let served = Reloaded {
                    prompts,
                    flows,
                    directory,
                };
                ivr::server::serve(settings, served, control, controls, reloader).await
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
