//! `[rtp]`, `[dtmf]`, `[prompts]` and `[speech]`: ports, keys, recorded and spoken audio.

use std::path::PathBuf;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::media::codec::Codec;
use crate::media::prompt::PromptLibrary;
use crate::media::prompt_cache::PcmCache;
use crate::session::negotiate::Encryption;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtpSettings {
    /// Inclusive range `first-last`; even ports carry RTP, the odd one above is kept for RTCP.
    pub ports: PortRange,
    /// Seconds without a packet from the caller before the call is ended.
    pub inactivity_timeout_s: u64,
    /// The caller's RTCP reports count as a sign of life too (a peer that stops sending RTP
    /// while on hold but keeps reporting).
    pub rtcp_keeps_alive: bool,
    /// Run the media clock threads at real-time priority (SCHED_FIFO) when allowed.
    pub realtime: bool,
    /// Do the media threads' receives and sends through io_uring where the kernel allows it
    /// (fewer system calls per call-frame); off (the default until a slow port release seen
    /// once in testing is explained), or where refused, one call per datagram.
    pub io_uring: bool,
    /// SRTP: `off`, `optional` (whatever the caller offers) or `mandatory` (488 without it).
    pub encryption: Encryption,
    /// Take SDES keys from SDP that arrived over plain UDP/TCP, where anyone on the path can
    /// read them. Off: keys are exchanged only over TLS.
    pub sdes_over_plain_sip: bool,
}

impl Default for RtpSettings {
    fn default() -> Self {
        RtpSettings {
            ports: PortRange {
                first: 30000,
                last: 30999,
            },
            inactivity_timeout_s: 60,
            rtcp_keeps_alive: false,
            realtime: true,
            io_uring: false,
            encryption: Encryption::Optional,
            sdes_over_plain_sip: false,
        }
    }
}

/// `rtp.ports`: `first-last`, inclusive, holding at least one even/odd pair. RTP uses the even
/// ports from the first even one up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl TryFrom<String> for PortRange {
    type Error = String;

    fn try_from(text: String) -> Result<PortRange, String> {
        let bad = || format!("expected `first-last`, got {text:?}");
        let (a, b) = text.split_once('-').ok_or_else(bad)?;
        let first: u16 = a.trim().parse().map_err(|_| bad())?;
        let last: u16 = b.trim().parse().map_err(|_| bad())?;
        let first = first.checked_add(first % 2).ok_or_else(bad)?;
        if first == 0 || first >= last {
            return Err(format!("{text} holds no even/odd port pair"));
        }
        Ok(PortRange { first, last })
    }
}

impl From<PortRange> for String {
    fn from(range: PortRange) -> String {
        format!("{}-{}", range.first, range.last)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InbandMode {
    /// Listen for tones only on calls that negotiated no telephone-event.
    Auto,
    On,
    Off,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DtmfSettings {
    /// Offer and answer RFC 4733 telephone-event.
    pub telephone_event: bool,
    /// In-band (Goertzel) detection over G.711 audio.
    pub inband: InbandMode,
}

impl Default for DtmfSettings {
    fn default() -> Self {
        DtmfSettings {
            telephone_event: true,
            inband: InbandMode::Auto,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromptSettings {
    pub dir: PathBuf,
    /// Where resampled prompt audio is kept between starts, by content hash (none: resample at
    /// every start).
    pub cache_dir: Option<PathBuf>,
}

impl Default for PromptSettings {
    fn default() -> Self {
        PromptSettings {
            dir: PathBuf::from("prompts"),
            cache_dir: None,
        }
    }
}

impl PromptSettings {
    /// The prompt library for `codecs`, through the cache when one is set.
    pub fn load(&self, codecs: &[Codec]) -> Result<PromptLibrary> {
        let cache = self.cache_dir.as_deref().map(PcmCache::new);
        PromptLibrary::load_cached(&self.dir, codecs, cache.as_ref())
    }
}

/// Text-to-speech for greetings from the directory, `say_text` and webhook texts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpeechSettings {
    /// The espeak-ng program (a path, or a name on PATH); missing = a warning and no speech.
    pub program: PathBuf,
    pub voice: String,
    /// Texts kept synthesised in memory.
    pub cache_entries: usize,
    /// How long a caller waits for speech that is not ready yet.
    pub wait_ms: u64,
}

impl Default for SpeechSettings {
    fn default() -> Self {
        SpeechSettings {
            program: PathBuf::from("espeak-ng"),
            voice: "en-us".into(),
            cache_entries: 1000,
            wait_ms: 3000,
        }
    }
}
