//! A conversation without a phone: the real flow engine (`flow::run`, as a call runs it) with
//! this console standing where the RTP stream and the switchboard stand. Prompts are "heard" as
//! their transcripts, keys come from a list or from the terminal, a prompt lasts its length or
//! (fast) no time at all. Everything that happens is a `Said`, shown as it goes and kept, so
//! `ivr simulate` prints it and `ivr flow test` compares it with what a case expects.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, Instant};

use super::call::{Call, CallRequest};
use super::flow::{self, CallingParty, FlowEnv};
use super::trace::{Trace, Tracer};
use crate::media::dtmf::DigitSource;
use crate::media::prompt::PromptLibrary;
use crate::media::stream::{MediaCommand, MediaEvent};
use crate::sip::refer::TransferOutcome;

mod transcripts;

pub use transcripts::Transcripts;

/// Where the keys come from.
pub enum Keys {
    /// One answer per question, in order (`""`: let that question time out); when they run
    /// out at a question, the caller hangs up there.
    Given(VecDeque<String>),
    /// Lines typed at the terminal, each an answer as it comes; `hangup` ends the call.
    Typed(mpsc::UnboundedReceiver<String>),
}

/// One thing that happened, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Said {
    Step(String),
    /// A variable set or changed (a secret's value as `****`).
    Var(String, String),
    /// A prompt played (its name; `text`: what it says), in `step`.
    Heard {
        prompt: String,
        text: String,
        step: String,
    },
    /// Keys the caller pressed (`****` for a secret's).
    Pressed(String),
    Posted {
        endpoint: String,
        body: serde_json::Value,
        step: String,
    },
    Transfer {
        target: String,
    },
    Ended(End),
}

/// How the conversation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum End {
    /// The IVR hung up.
    Hangup,
    /// The keys ran out while the flow waited in this step or menu.
    Waiting(String),
    /// The caller hung up (typed `hangup`, or Ctrl-C).
    CallerHungUp,
    /// The call was transferred away.
    Transferred,
}

/// A prompt being played: when it ends (now, when fast), and whether a key stops it.
struct Playing {
    id: u64,
    ends: Instant,
    interruptible: bool,
}

/// The caller's side of one conversation.
struct Console<'a> {
    transcripts: &'a Transcripts,
    fast: bool,
    step: String,
    vars: HashMap<String, String>,
    text: Option<String>,
    /// The question waiting for keys: whether secret, and its number.
    listening: Option<(bool, u64)>,
    playing: VecDeque<Playing>,
    said: Vec<Said>,
    show: &'a mut dyn FnMut(&Said),
}

/// A conversation's tracer and what it tells: the stand-ins of its flow's endpoints are given
/// the tracer before the conversation starts.
pub fn tracing_channel() -> (Tracer, mpsc::UnboundedReceiver<Trace>) {
    mpsc::unbounded_channel()
}

/// Runs `env`'s conversation for `caller` until it ends; every `Said` goes to `show` as it
/// happens, and all of them are returned.
pub async fn converse(
    (env, prompts): (Arc<FlowEnv>, Arc<PromptLibrary>),
    caller: CallingParty,
    (mut keys, fast): (Keys, bool),
    (tracer, mut traced): (Tracer, mpsc::UnboundedReceiver<Trace>),
    transcripts: &Transcripts,
    show: &mut dyn FnMut(&Said),
) -> Vec<Said> {
    let (media, mut commands) = mpsc::unbounded_channel();
    let (events_tx, events) = mpsc::unbounded_channel();
    let (requests, mut asked) = mpsc::unbounded_channel();
    let (transfers, transfers_rx) = mpsc::unbounded_channel();
    let mut call = Call::new(
        "console".into(),
        1,
        media,
        events,
        requests,
        transfers_rx,
        prompts,
    );
    call.trace_to(tracer);
    let (_never_closing, closing) = watch::channel(false);
    let flow = tokio::spawn(flow::run(
        call,
        env,
        (caller, None),
        closing,
        Arc::default(),
    ));
    let mut console = Console {
        transcripts,
        fast,
        step: String::new(),
        vars: HashMap::new(),
        text: None,
        listening: None,
        playing: VecDeque::new(),
        said: Vec::new(),
        show,
    };
    let mut events = Some(events_tx);
    let end = loop {
        let ready = console.listening.is_some() && console.playing.is_empty();
        let next_done = console.playing.front().map(|p| p.ends);
        tokio::select! {
            Some(trace) = traced.recv() => console.on_trace(trace),
            command = commands.recv() => {
                while let Ok(trace) = traced.try_recv() {
                    console.on_trace(trace);
                }
                match command {
                    Some(command) => console.on_command(command, events.as_ref()),
                    None => break End::Hangup,
                }
            }
            Some((_, request)) = asked.recv() => match request {
                CallRequest::Hangup => break End::Hangup,
                CallRequest::Transfer(request) => {
                    console.tell(Said::Transfer { target: request.target.clone() });
                    // The target takes the call: our part of it is over.
                    let _ = transfers.send(TransferOutcome::Succeeded);
                    break End::Transferred;
                }
            },
            () = sleep_until(next_done.unwrap_or_else(Instant::now)), if next_done.is_some() => {
                if let (Some(done), Some(events)) = (console.playing.pop_front(), &events) {
                    let _ = events.send(MediaEvent::PlaybackDone { id: done.id });
                }
            }
            line = next_answer(&mut keys), if ready || matches!(keys, Keys::Typed(_)) => {
                match line {
                    Some(line) if line.trim() == "hangup" => break End::CallerHungUp,
                    Some(line) => console.press(line.trim(), events.as_ref()),
                    None if matches!(keys, Keys::Typed(_)) => break End::CallerHungUp,
                    None => break End::Waiting(console.step.clone()),
                }
            }
        }
    };
    // The caller's side closes: a flow still running sees the call gone.
    events.take();
    drop(commands);
    let _ = tokio::time::timeout(Duration::from_secs(5), flow).await;
    console.tell(Said::Ended(end));
    console.said
}

/// The next answer: the next given one, or the next line typed.
async fn next_answer(keys: &mut Keys) -> Option<String> {
    match keys {
        Keys::Given(given) => given.pop_front(),
        Keys::Typed(lines) => lines.recv().await,
    }
}

impl Console<'_> {
    fn tell(&mut self, said: Said) {
        (self.show)(&said);
        self.said.push(said);
    }

    fn on_trace(&mut self, trace: Trace) {
        match trace {
            Trace::Step(step) => {
                self.step.clone_from(&step);
                self.tell(Said::Step(step));
            }
            Trace::Vars(vars) => {
                for (name, value) in vars {
                    if self.vars.get(&name) != Some(&value) {
                        self.vars.insert(name.clone(), value.clone());
                        self.tell(Said::Var(name, value));
                    }
                }
            }
            Trace::Text(text) => self.text = Some(text),
            Trace::Listening { secret, ask } => self.listening = Some((secret, ask)),
            Trace::Posted { endpoint, body } => {
                let step = self.step.clone();
                self.tell(Said::Posted {
                    endpoint,
                    body,
                    step,
                });
            }
        }
    }

    fn on_command(&mut self, command: MediaCommand, events: Option<&Events>) {
        match command {
            MediaCommand::Play {
                prompt,
                id,
                interruptible,
            } => {
                let text = match self.text.take() {
                    Some(text) => text,
                    None => self.transcripts.of(&prompt.name),
                };
                let step = self.step.clone();
                let length = if self.fast { 0 } else { prompt.duration_ms() };
                self.tell(Said::Heard {
                    prompt: prompt.name.clone(),
                    text,
                    step,
                });
                self.playing.push_back(Playing {
                    id,
                    ends: Instant::now() + Duration::from_millis(length),
                    interruptible,
                });
            }
            MediaCommand::StopPlayback => self.stop(|_| true, events),
            _ => {}
        }
    }

    /// The caller presses `keys` (`-` or nothing: none). Fast, the question's wait then ends
    /// at once (the caller pressed all it will), as its timeout would.
    fn press(&mut self, keys: &str, events: Option<&Events>) {
        let keys = if keys == "-" { "" } else { keys };
        let (secret, ask) = self.listening.take().unwrap_or((false, 0));
        let shown = match keys {
            "" => "(nothing)".to_string(),
            _ if secret => "****".to_string(),
            _ => keys.to_string(),
        };
        self.tell(Said::Pressed(shown));
        if !keys.is_empty() {
            self.stop(|p| p.interruptible, events);
        }
        let Some(events) = events else { return };
        for digit in keys
            .chars()
            .filter(|c| c.is_ascii_digit() || "*#ABCD".contains(*c))
        {
            let source = DigitSource::Rfc4733;
            let _ = events.send(MediaEvent::Digit { digit, source });
        }
        if self.fast && ask > 0 {
            let _ = events.send(MediaEvent::Expire { ask });
        }
    }

    /// Stops the prompts `which` names, as the stream would.
    fn stop(&mut self, which: impl Fn(&Playing) -> bool, events: Option<&Events>) {
        let (stopped, kept) = self.playing.drain(..).partition(which);
        self.playing = kept;
        for p in stopped.iter() {
            if let Some(events) = events {
                let _ = events.send(MediaEvent::PlaybackStopped { id: p.id });
            }
        }
    }
}

type Events = mpsc::UnboundedSender<MediaEvent>;
