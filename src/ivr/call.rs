//! The per-call API the flow is written against, in the spirit of the seed's Tropo helpers.
//! Every method returns `Err(Gone)` once the caller has hung up or the call was torn down, so
//! a flow written with `?` stops at once.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::media::prompt::PromptLibrary;
use crate::media::stream::{MediaCommand, MediaEvent};

/// The caller is gone (or the call was ended): nothing more can be said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

pub struct Call {
    pub call_id: String,
    media: mpsc::UnboundedSender<MediaCommand>,
    events: mpsc::UnboundedReceiver<MediaEvent>,
    hangup: mpsc::UnboundedSender<u64>,
    call_ref: u64,
    prompts: Arc<PromptLibrary>,
    next_id: u64,
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
        }
    }

    /// Plays a prompt to the end.
    pub async fn say(&mut self, prompt: &str) -> Result<(), Gone> {
        let Some(prompt) = self.prompts.get(prompt) else {
            tracing::error!(call_id = %self.call_id, prompt, "prompt missing from the library");
            return Ok(());
        };
        self.next_id += 1;
        let id = self.next_id;
        self.media
            .send(MediaCommand::Play { prompt, id })
            .map_err(|_| Gone)?;
        loop {
            match self.events.recv().await.ok_or(Gone)? {
                MediaEvent::PlaybackDone { id: done }
                | MediaEvent::PlaybackStopped { id: done }
                    if done == id =>
                {
                    return Ok(())
                }
                MediaEvent::Inactive => return self.gone_quiet(),
                _ => {}
            }
        }
    }

    /// Waits until the call ends by itself (caller BYE or RTP inactivity).
    pub async fn wait(&mut self) -> Result<(), Gone> {
        loop {
            if self.events.recv().await.ok_or(Gone)? == MediaEvent::Inactive {
                return self.gone_quiet();
            }
        }
    }

    /// Ends the call from our side: BYE.
    pub fn hangup(&mut self) {
        let _ = self.hangup.send(self.call_ref);
    }

    fn gone_quiet(&mut self) -> Result<(), Gone> {
        tracing::info!(call_id = %self.call_id, "no RTP from the caller, hanging up");
        self.hangup();
        Err(Gone)
    }
}
