//! Recordings an application names by URL (`<Play>https://…/hello.wav</Play>`): fetched once,
//! decoded, resampled and encoded for every codec like the prompt library, and shared by every
//! call that plays them. Capped in size and in number, so an application cannot fill memory.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::media::codec::Codec;
use crate::media::prompt::{prompt_from_wav, Prompt};

/// The largest recording fetched (a minute of 16 kHz 16-bit mono is 1.9 MiB).
pub const MAX_CLIP: usize = 4 << 20;
/// Recordings kept at once; the oldest is dropped for a new one.
const CAPACITY: usize = 64;

type Slot = Arc<OnceCell<Result<Arc<Prompt>, String>>>;

pub struct ClipCache {
    codecs: Vec<Codec>,
    slots: Mutex<(HashMap<String, Slot>, VecDeque<String>)>,
}

impl ClipCache {
    pub fn new(codecs: Vec<Codec>) -> ClipCache {
        ClipCache {
            codecs,
            slots: Mutex::default(),
        }
    }

    /// The recording at `url` (already checked against the endpoint's rules), fetching it once
    /// however many calls ask at the same time.
    pub async fn get(&self, http: &reqwest::Client, url: &str) -> Result<Arc<Prompt>, String> {
        let slot = {
            let mut guard = self.slots.lock().map_err(|_| "clip cache poisoned")?;
            let (slots, order) = &mut *guard;
            if let Some(slot) = slots.get(url) {
                slot.clone()
            } else {
                while slots.len() >= CAPACITY {
                    let Some(oldest) = order.pop_front() else {
                        break;
                    };
                    slots.remove(&oldest);
                }
                let slot = Slot::default();
                slots.insert(url.to_string(), slot.clone());
                order.push_back(url.to_string());
                slot
            }
        };
        let result = slot.get_or_init(|| self.fetch(http, url)).await.clone();
        if result.is_err() {
            if let Ok(mut guard) = self.slots.lock() {
                guard.0.remove(url);
            }
        }
        result
    }

    async fn fetch(&self, http: &reqwest::Client, url: &str) -> Result<Arc<Prompt>, String> {
        let response = http
            .get(url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| {
                format!(
                    "recording not fetched: {}",
                    if e.is_timeout() {
                        "timed out".into()
                    } else {
                        e.without_url().to_string()
                    }
                )
            })?;
        if !response.status().is_success() {
            return Err(format!("recording answered {}", response.status()));
        }
        let wav = crate::http::read_capped(response, MAX_CLIP).await?;
        let codecs = self.codecs.clone();
        tokio::task::spawn_blocking(move || prompt_from_wav("recording".into(), &wav, &codecs))
            .await
            .map_err(|e| format!("decoding task failed: {e}"))?
            .map(Arc::new)
            .map_err(|e| format!("recording unreadable: {e:#}"))
    }
}
