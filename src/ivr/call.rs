//! The per-call API the flow is written against, in the spirit of the seed's Tropo helpers and
//! Asterisk's `Read()`. Keys pressed at any time, during a prompt or between questions, wait in
//! a per-call buffer for the next question (type-ahead). Every method returns `Err(Gone)` once
//! the caller has hung up or the call was torn down, so a flow written with `?` stops at once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::time::{timeout_at, Instant};

use crate::ivr::trace::{tell, Trace, Tracer};
use crate::media::dtmf::DigitSource;
use crate::media::prompt::{in_folder, Prompt, PromptLibrary};
use crate::media::stream::{MediaCommand, MediaEvent};
use crate::sip::refer::TransferOutcome;

/// The caller is gone (or the call was ended): nothing more can be said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

/// How a transfer reaches its target; the flow file names it, the server carries it out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferMode {
    /// Blind transfer: the caller is asked (REFER) to call the target itself.
    #[default]
    Refer,
    /// We call the target and relay the audio between the two calls.
    Bridge,
}

impl TransferMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferMode::Refer => "refer",
            TransferMode::Bridge => "bridge",
        }
    }
}

/// One question's rules for reading keys (Tropo's `ask`, Asterisk's `Read`).
#[derive(Debug, Clone)]
pub struct Ask<'a> {
    pub prompt: Option<&'a str>,
    pub min_digits: usize,
    pub max_digits: usize,
    pub terminator: Option<char>,
    /// From the end of the prompt to the first key.
    pub first_timeout: Duration,
    /// Between keys.
    pub inter_timeout: Duration,
    /// Tries before giving up; the prompt is played again each time.
    pub attempts: u32,
    /// Played after a bad or missing answer, before the next attempt.
    pub retry_prompt: Option<&'a str>,
    /// A key stops the prompt.
    pub barge_in: bool,
    /// Keys are logged as `*` (PINs).
    pub secret: bool,
    /// What a whole answer must match; one that does not is a failed attempt.
    pub pattern: Option<&'a regex::Regex>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Digits(String),
    /// No key at all.
    Timeout,
    TooFew,
    TooMany,
    /// Enough digits, but not matching the question's pattern.
    NoMatch,
    HungUp,
}

/// What a call's flow asks of the signalling side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallRequest {
    /// End the call from our side: BYE.
    Hangup,
    /// Transfer to a SIP or tel URI; the outcome comes back on the call's transfers.
    Transfer(TransferRequest),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRequest {
    pub target: String,
    pub mode: TransferMode,
    /// How long a bridged target may ring; `None`: the configured default.
    pub ring_timeout: Option<Duration>,
    /// When a bridged target hangs up, the caller stays with the flow (Twilio's `<Dial>`),
    /// instead of being hung up too.
    pub caller_stays: bool,
}

pub struct Call {
    pub call_id: String,
    media: mpsc::UnboundedSender<MediaCommand>,
    events: mpsc::UnboundedReceiver<MediaEvent>,
    requests: mpsc::UnboundedSender<(u64, CallRequest)>,
    transfers: mpsc::UnboundedReceiver<TransferOutcome>,
    /// The prompt folder of the language the call speaks (`es`); `None`: the base language.
    language: Option<String>,
    call_ref: u64,
    prompts: Arc<PromptLibrary>,
    next_id: u64,
    typed: VecDeque<(char, DigitSource)>,
    /// What ended the last answer: an application's gather reports it.
    ended: AnswerEnd,
    /// Who watches the conversation (a simulation, a flow test); none on a real line.
    tracer: Option<Tracer>,
    /// Questions asked so far (each attempt one): the number of the one waiting for keys.
    asks: u64,
}

/// What ended an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AnswerEnd {
    Terminator,
    MaxDigits,
    #[default]
    Timeout,
}

impl AnswerEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerEnd::Terminator => "terminator",
            AnswerEnd::MaxDigits => "max_digits",
            AnswerEnd::Timeout => "timeout",
        }
    }
}

/// `digits` as the answer, unless the question's pattern refuses them.
fn matching(spec: &Ask<'_>, digits: String) -> Answer {
    match spec.pattern {
        Some(pattern) if !pattern.is_match(&digits) => Answer::NoMatch,
        _ => Answer::Digits(digits),
    }
}

impl Call {
    pub fn new(
        call_id: String,
        call_ref: u64,
        media: mpsc::UnboundedSender<MediaCommand>,
        events: mpsc::UnboundedReceiver<MediaEvent>,
        requests: mpsc::UnboundedSender<(u64, CallRequest)>,
        transfers: mpsc::UnboundedReceiver<TransferOutcome>,
        prompts: Arc<PromptLibrary>,
    ) -> Call {
        Call {
            call_id,
            media,
            events,
            requests,
            transfers,
            language: None,
            call_ref,
            prompts,
            next_id: 0,
            typed: VecDeque::new(),
            ended: AnswerEnd::default(),
            tracer: None,
            asks: 0,
        }
    }

    /// Tells `tracer` what the conversation does from now on.
    pub fn trace_to(&mut self, tracer: Tracer) {
        self.tracer = Some(tracer);
    }

    /// Whether anyone watches (so the work of describing a step is skipped on real calls).
    pub fn traced(&self) -> bool {
        self.tracer.is_some()
    }

    pub fn trace(&self, event: Trace) {
        tell(self.tracer.as_ref(), event);
    }

    /// Plays a prompt to the end; keys pressed meanwhile are kept for the next question.
    pub async fn say(&mut self, prompt: &str) -> Result<(), Gone> {
        self.play(prompt, false).await
    }

    /// Plays a prompt; an interruptible one stops at the first key, and is skipped when keys
    /// are already waiting.
    pub async fn play(&mut self, prompt: &str, interruptible: bool) -> Result<(), Gone> {
        if interruptible && !self.typed.is_empty() {
            return Ok(());
        }
        let Some(prompt) = self.prompt(prompt) else {
            tracing::error!(call_id = %self.call_id, prompt, "prompt missing from the library");
            return Ok(());
        };
        self.play_clip(prompt, interruptible).await
    }

    /// Plays a prompt made for this call (synthesised speech) as `play` does a named one.
    pub async fn play_clip(
        &mut self,
        prompt: Arc<Prompt>,
        interruptible: bool,
    ) -> Result<(), Gone> {
        if interruptible && !self.typed.is_empty() {
            return Ok(());
        }
        self.next_id += 1;
        let id = self.next_id;
        let play = MediaCommand::Play {
            prompt,
            id,
            interruptible,
        };
        self.media.send(play).map_err(|_| Gone)?;
        loop {
            match self.next_event(None).await? {
                Some(
                    MediaEvent::PlaybackDone { id: done }
                    | MediaEvent::PlaybackStopped { id: done },
                ) if done == id => return Ok(()),
                _ => {}
            }
        }
    }

    /// Asks until a valid answer or the attempts run out; the last failure is returned.
    pub async fn ask(&mut self, spec: &Ask<'_>) -> Answer {
        let mut answer = Answer::Timeout;
        for attempt in 1..=spec.attempts.max(1) {
            answer = match self.read_once(spec).await {
                Ok(answer) => answer,
                Err(Gone) => return Answer::HungUp,
            };
            if matches!(answer, Answer::Digits(_)) {
                return answer;
            }
            tracing::info!(call_id = %self.call_id, attempt, ?answer, "no usable answer");
            // Whatever else was typed belongs to the failed attempt.
            self.typed.clear();
            if attempt < spec.attempts {
                if let Some(retry) = spec.retry_prompt {
                    if self.say(retry).await.is_err() {
                        return Answer::HungUp;
                    }
                }
            }
        }
        answer
    }

    /// One attempt: the prompt, then keys until the terminator, one too many, or a timeout.
    /// On a timeout, enough digits are an answer (the terminator is a courtesy).
    async fn read_once(&mut self, spec: &Ask<'_>) -> Result<Answer, Gone> {
        if let Some(prompt) = spec.prompt {
            self.play(prompt, spec.barge_in).await?;
        }
        self.asks += 1;
        if self.typed.is_empty() {
            self.trace(Trace::Listening {
                secret: spec.secret,
                ask: self.asks,
            });
        }
        let mut digits = String::new();
        let mut deadline = Instant::now() + spec.first_timeout;
        loop {
            let Some((digit, source)) = self.typed.pop_front() else {
                if self.next_event(Some(deadline)).await?.is_none() {
                    self.ended = AnswerEnd::Timeout;
                    return Ok(match digits.len() {
                        0 => Answer::Timeout,
                        n if n < spec.min_digits => Answer::TooFew,
                        _ => matching(spec, digits),
                    });
                }
                continue;
            };
            let shown = if spec.secret { '*' } else { digit };
            tracing::debug!(call_id = %self.call_id, source = source.as_str(), digit = %shown, "key");
            if Some(digit) == spec.terminator {
                self.ended = AnswerEnd::Terminator;
                return Ok(if digits.len() < spec.min_digits {
                    Answer::TooFew
                } else {
                    matching(spec, digits)
                });
            }
            digits.push(digit);
            if digits.len() > spec.max_digits {
                return Ok(Answer::TooMany);
            }
            if digits.len() == spec.max_digits && spec.terminator.is_none() {
                self.ended = AnswerEnd::MaxDigits;
                return Ok(matching(spec, digits));
            }
            deadline = Instant::now() + spec.inter_timeout;
        }
    }

    /// What ended the last answer `ask` returned.
    pub fn answer_end(&self) -> AnswerEnd {
        self.ended
    }

    pub fn has_prompt(&self, name: &str) -> bool {
        self.prompt(name).is_some()
    }

    /// Speak the language whose prompts are in `folder` from now on (`None`: the base).
    pub fn set_language(&mut self, folder: Option<String>) {
        self.language = folder;
    }

    pub fn language(&self) -> Option<&str> {
        self.language.as_deref()
    }

    /// A prompt in the call's language, or in the base language when it has no recording.
    fn prompt(&self, name: &str) -> Option<Arc<Prompt>> {
        let translated = self
            .language
            .as_ref()
            .and_then(|folder| self.prompts.get(&in_folder(folder, name)));
        translated.or_else(|| self.prompts.get(name))
    }

    /// Stops whatever is playing and drops queued prompts.
    pub fn stop(&mut self) {
        let _ = self.media.send(MediaCommand::StopPlayback);
    }

    /// Ends the call from our side: BYE.
    pub fn hangup(&mut self) {
        let _ = self.requests.send((self.call_ref, CallRequest::Hangup));
    }

    /// Transfers the call (by REFER, or by calling the target and bridging) and waits for how
    /// that went. Keys pressed meanwhile answer nothing and are dropped.
    pub async fn transfer(&mut self, request: TransferRequest) -> Result<TransferOutcome, Gone> {
        let request = CallRequest::Transfer(request);
        let _ = self.requests.send((self.call_ref, request));
        loop {
            tokio::select! {
                outcome = self.transfers.recv() => {
                    return Ok(outcome.unwrap_or(TransferOutcome::Failed { status: 500 }));
                }
                event = self.events.recv() => self.still_here(event)?,
            }
        }
    }

    /// Waits while the call is bridged (asked with `caller_stays`) until the target hangs up:
    /// how long the bridge lasted. The caller hanging up or going quiet ends the call.
    pub async fn stay_bridged(&mut self) -> Result<u64, Gone> {
        loop {
            tokio::select! {
                outcome = self.transfers.recv() => match outcome {
                    Some(TransferOutcome::Ended { seconds }) => return Ok(seconds),
                    Some(_) => {}
                    None => return Err(self.stay_until_gone().await),
                },
                event = self.events.recv() => self.still_here(event)?,
            }
        }
    }

    /// Waits while the call is bridged, until it ends; a caller gone quiet is hung up.
    pub async fn stay_until_gone(&mut self) -> Gone {
        loop {
            let event = self.events.recv().await;
            if let Err(gone) = self.still_here(event) {
                return gone;
            }
        }
    }

    /// Whether the caller is still here after a media event that answers nothing: not when the
    /// call is over, nor when the caller went quiet (then hung up).
    fn still_here(&mut self, event: Option<MediaEvent>) -> Result<(), Gone> {
        match event {
            None => Err(Gone),
            Some(MediaEvent::Inactive) => {
                tracing::info!(call_id = %self.call_id, "no RTP from the caller, hanging up");
                self.hangup();
                Err(Gone)
            }
            Some(_) => Ok(()),
        }
    }

    /// The next media event (keys go to the buffer as well); `Ok(None)` when `deadline` passes.
    async fn next_event(&mut self, deadline: Option<Instant>) -> Result<Option<MediaEvent>, Gone> {
        let event = match deadline {
            Some(at) => match timeout_at(at, self.events.recv()).await {
                Ok(event) => event,
                Err(_) => return Ok(None),
            },
            None => self.events.recv().await,
        };
        match event.ok_or(Gone)? {
            MediaEvent::Inactive => {
                tracing::info!(call_id = %self.call_id, "no RTP from the caller, hanging up");
                self.hangup();
                Err(Gone)
            }
            MediaEvent::Digit { digit, source } => {
                self.typed.push_back((digit, source));
                Ok(Some(MediaEvent::Digit { digit, source }))
            }
            // The question waiting now is over, as if its deadline had passed.
            MediaEvent::Expire { ask } if deadline.is_some() && ask == self.asks => Ok(None),
            other => Ok(Some(other)),
        }
    }
}

#[cfg(test)]
mod tests;
