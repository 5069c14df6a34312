//! Text spoken as a prompt: a caller's greeting from the directory, a flow's `say_text`, a
//! webhook's text. The engine runs as a separate process (espeak-ng by default; no linking, no
//! shell), on the blocking pool, never on a call's media path; each text is synthesised once,
//! encoded for every codec like the recorded prompts, and kept in a bounded cache.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use super::codec::Codec;
use super::prompt::{prompt_from_samples, read_wav_mono, Prompt};

/// Longest text spoken; longer ones are cut (a name or a sentence, not a document).
pub const MAX_TEXT: usize = 200;

/// Turns text into audio: mono samples in [-1, 1] and their rate.
pub trait Speech: Send + Sync {
    fn synthesize(&self, text: &str) -> Result<(Vec<f32>, u32), String>;
}

/// espeak-ng as a process: `espeak-ng -v VOICE -w FILE -- TEXT`.
pub struct Espeak {
    pub program: PathBuf,
    pub voice: String,
}

impl Espeak {
    /// Whether the program runs at all (`--version`).
    pub fn available(&self) -> bool {
        Command::new(&self.program)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }
}

impl Speech for Espeak {
    fn synthesize(&self, text: &str) -> Result<(Vec<f32>, u32), String> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let file = std::env::temp_dir().join(format!(
            "ivr-speech-{}-{}.wav",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let run = Command::new(&self.program)
            .args(["-v", &self.voice, "-w"])
            .arg(&file)
            .arg("--")
            .arg(text)
            .output();
        let result = match run {
            Ok(out) if out.status.success() => read_wav_mono(&file)
                .map_err(|e| format!("{} output: {e:#}", self.program.display())),
            Ok(out) => Err(format!(
                "{} exited with {}",
                self.program.display(),
                out.status
            )),
            Err(e) => Err(format!("{} did not start: {e}", self.program.display())),
        };
        let _ = std::fs::remove_file(&file);
        result
    }
}

/// Text fit to speak: control characters gone, white space folded, at most `MAX_TEXT`
/// characters; `None` when nothing is left.
pub fn clean_text(text: &str) -> Option<String> {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect();
    let cleaned: String = words.join(" ").chars().take(MAX_TEXT).collect();
    (!cleaned.is_empty()).then_some(cleaned)
}

type Slot = Arc<OnceCell<Result<Arc<Prompt>, String>>>;

/// Synthesised prompts by text, at most `capacity` of them (the oldest go first). Calls asking
/// for the same text at once share one synthesis.
pub struct SpeechCache {
    engine: Arc<dyn Speech>,
    codecs: Vec<Codec>,
    capacity: usize,
    slots: Mutex<(HashMap<String, Slot>, VecDeque<String>)>,
    syntheses: AtomicU64,
}

impl SpeechCache {
    pub fn new(engine: Arc<dyn Speech>, codecs: Vec<Codec>, capacity: usize) -> SpeechCache {
        SpeechCache {
            engine,
            codecs,
            capacity: capacity.max(1),
            slots: Mutex::default(),
            syntheses: AtomicU64::default(),
        }
    }

    /// How many times the engine has run.
    pub fn syntheses(&self) -> u64 {
        self.syntheses.load(Ordering::Relaxed)
    }

    /// The prompt that says `text` (already cleaned), synthesising it if no call has yet.
    pub async fn prompt(self: &Arc<Self>, text: &str) -> Result<Arc<Prompt>, String> {
        let slot = self.slot(text)?;
        let cache = self.clone();
        let owned = text.to_string();
        let result = slot
            .get_or_init(|| async move {
                tokio::task::spawn_blocking(move || cache.synthesize(&owned))
                    .await
                    .unwrap_or_else(|e| Err(format!("speech task failed: {e}")))
            })
            .await
            .clone();
        if result.is_err() {
            // A failure is not remembered: the next call tries again.
            if let Ok(mut guard) = self.slots.lock() {
                guard.0.remove(text);
            }
        }
        result
    }

    fn slot(&self, text: &str) -> Result<Slot, String> {
        let mut guard = self.slots.lock().map_err(|_| "speech cache poisoned")?;
        let (slots, order) = &mut *guard;
        if let Some(slot) = slots.get(text) {
            return Ok(slot.clone());
        }
        while slots.len() >= self.capacity {
            let Some(oldest) = order.pop_front() else {
                break;
            };
            slots.remove(&oldest);
        }
        let slot = Slot::default();
        slots.insert(text.to_string(), slot.clone());
        order.push_back(text.to_string());
        Ok(slot)
    }

    fn synthesize(&self, text: &str) -> Result<Arc<Prompt>, String> {
        self.syntheses.fetch_add(1, Ordering::Relaxed);
        let (samples, rate) = self.engine.synthesize(text)?;
        prompt_from_samples("speech".into(), &samples, rate, &self.codecs)
            .map(Arc::new)
            .map_err(|e| format!("encoding speech: {e:#}"))
    }
}

/// espeak-ng as the tests find it: installed, or a failure that says how to install it.
#[cfg(test)]
pub(crate) fn installed_espeak() -> Espeak {
    let engine = Espeak {
        program: "espeak-ng".into(),
        voice: "en-us".into(),
    };
    assert!(
        engine.available(),
        "espeak-ng is not installed: apt-get install -y espeak-ng (or the README's test command)"
    );
    engine
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cleaned_before_it_reaches_the_engine() {
        assert_eq!(
            clean_text("  Alice\n\tExample\u{7}  ").as_deref(),
            Some("Alice Example")
        );
        assert_eq!(clean_text("\u{0}\u{1b}[2J"), Some("[2J".into()));
        assert_eq!(clean_text(" \n "), None);
        assert_eq!(
            clean_text(&"a".repeat(1000)).map(|t| t.len()),
            Some(MAX_TEXT)
        );
        // An option-looking text stays text: it is passed after `--`, never as a flag.
        assert_eq!(clean_text("--help").as_deref(), Some("--help"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hundred_calls_with_one_greeting_synthesise_once() {
        let cache = Arc::new(SpeechCache::new(
            Arc::new(installed_espeak()),
            vec![Codec::Pcmu],
            10,
        ));
        let asks: Vec<_> = (0..100)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.prompt("Alice Example").await })
            })
            .collect();
        for ask in asks {
            let prompt = ask.await.unwrap().unwrap();
            assert!(prompt.duration_ms() > 400, "a name takes a moment to say");
        }
        assert_eq!(cache.syntheses(), 1);
        let other = cache.prompt("Bob").await.unwrap();
        assert!(other.duration_ms() > 100);
        assert_eq!(cache.syntheses(), 2);
    }

    #[tokio::test]
    async fn a_missing_engine_is_an_error_not_a_panic() {
        let missing = Espeak {
            program: "/nonexistent/espeak-ng".into(),
            voice: "en-us".into(),
        };
        assert!(!missing.available());
        let cache = Arc::new(SpeechCache::new(Arc::new(missing), vec![Codec::Pcmu], 10));
        let err = cache.prompt("Alice").await.unwrap_err();
        assert!(err.contains("did not start"), "{err}");
    }
}
