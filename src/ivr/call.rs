//! The per-call API the flow is written against, in the spirit of the seed's Tropo helpers and
//! Asterisk's `Read()`. Keys pressed at any time, during a prompt or between questions, wait in
//! a per-call buffer for the next question (type-ahead). Every method returns `Err(Gone)` once
//! the caller has hung up or the call was torn down, so a flow written with `?` stops at once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{timeout_at, Instant};

use crate::media::dtmf::DigitSource;
use crate::media::prompt::PromptLibrary;
use crate::media::stream::{MediaCommand, MediaEvent};

/// The caller is gone (or the call was ended): nothing more can be said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

/// One question's rules for reading keys.
#[derive(Debug, Clone)]
pub struct Collect<'a> {
    pub prompt: Option<&'a str>,
    pub max_digits: usize,
    pub terminator: Option<char>,
    /// From the end of the prompt to the first key.
    pub first_timeout: Duration,
    /// Between keys.
    pub inter_timeout: Duration,
    /// A key stops the prompt (barge-in).
    pub interruptible: bool,
    /// Keys are logged as `*` (PINs).
    pub secret: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Terminator,
    MaxDigits,
    Timeout,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collected {
    pub digits: String,
    pub ended: Ended,
}

pub struct Call {
    pub call_id: String,
    media: mpsc::UnboundedSender<MediaCommand>,
    events: mpsc::UnboundedReceiver<MediaEvent>,
    hangup: mpsc::UnboundedSender<u64>,
    call_ref: u64,
    prompts: Arc<PromptLibrary>,
    next_id: u64,
    typed: VecDeque<(char, DigitSource)>,
}

impl Call {
    pub fn new(
        call_id: String,
        call_ref: u64,
        media: mpsc::UnboundedSender<MediaCommand>,
        events: mpsc::UnboundedReceiver<MediaEvent>,
        hangup: mpsc::UnboundedSender<u64>,
        prompts: Arc<PromptLibrary>,
    ) -> Call {
        Call {
            call_id,
            media,
            events,
            hangup,
            call_ref,
            prompts,
            next_id: 0,
            typed: VecDeque::new(),
        }
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
        let Some(prompt) = self.prompts.get(prompt) else {
            tracing::error!(call_id = %self.call_id, prompt, "prompt missing from the library");
            return Ok(());
        };
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

    /// Reads keys as `spec` says: until the terminator, the most digits, or a timeout.
    pub async fn collect(&mut self, spec: &Collect<'_>) -> Result<Collected, Gone> {
        if let Some(prompt) = spec.prompt {
            self.play(prompt, spec.interruptible).await?;
        }
        let mut digits = String::new();
        let mut deadline = Instant::now() + spec.first_timeout;
        loop {
            let Some((digit, source)) = self.typed.pop_front() else {
                if self.next_event(Some(deadline)).await?.is_none() {
                    return Ok(Collected {
                        digits,
                        ended: Ended::Timeout,
                    });
                }
                continue;
            };
            let shown = if spec.secret { '*' } else { digit };
            tracing::debug!(call_id = %self.call_id, source = source.as_str(), digit = %shown, "key");
            if Some(digit) == spec.terminator {
                return Ok(Collected {
                    digits,
                    ended: Ended::Terminator,
                });
            }
            digits.push(digit);
            if digits.len() >= spec.max_digits {
                return Ok(Collected {
                    digits,
                    ended: Ended::MaxDigits,
                });
            }
            deadline = Instant::now() + spec.inter_timeout;
        }
    }

    /// Waits until the call ends by itself (caller BYE or RTP inactivity).
    pub async fn wait(&mut self) -> Result<(), Gone> {
        loop {
            self.next_event(None).await?;
        }
    }

    /// Ends the call from our side: BYE.
    pub fn hangup(&mut self) {
        let _ = self.hangup.send(self.call_ref);
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
            other => Ok(Some(other)),
        }
    }
}

#[cfg(test)]
mod tests;
