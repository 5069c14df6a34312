//! The codecs we can send: their SDP names, clock rates and the encoders that turn prompt
//! samples into 20 ms payloads once, at start-up.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

pub const FRAME_MS: u32 = 20;

/// Named in settings as in SDP (`"PCMU"`, `"PCMA"`, `"opus"`, any case); an unknown name or
/// `opus` in a build without it is refused when the settings are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Codec {
    Pcmu,
    Pcma,
    /// Wideband: sampled at 16 kHz, but its RTP clock runs at 8 kHz (RFC 3551 §4.5.2).
    G722,
    Opus,
}

impl TryFrom<String> for Codec {
    type Error = String;

    fn try_from(name: String) -> Result<Codec, String> {
        Codec::from_name(&name).map_err(|e| e.to_string())
    }
}

impl From<Codec> for String {
    fn from(codec: Codec) -> String {
        codec.sdp_name().to_string()
    }
}

impl Codec {
    /// What the IVR offers and prefers when `sip.codecs` is not set: Opus first when built in,
    /// then G.711 µ-law and A-law (every phone has one of them).
    pub fn default_preference() -> Vec<Codec> {
        let mut codecs = vec![Codec::Pcmu, Codec::Pcma];
        if cfg!(feature = "opus") {
            codecs.insert(0, Codec::Opus);
        }
        codecs
    }

    pub fn from_name(name: &str) -> Result<Codec> {
        match name.to_ascii_lowercase().as_str() {
            "pcmu" => Ok(Codec::Pcmu),
            "pcma" => Ok(Codec::Pcma),
            "g722" => Ok(Codec::G722),
            "opus" if cfg!(feature = "opus") => Ok(Codec::Opus),
            "opus" => bail!("opus needs a build with `--features opus`"),
            other => bail!("unknown codec {other:?} (known: PCMU, PCMA, G722, opus)"),
        }
    }

    /// Encoding name as written in `a=rtpmap`.
    pub fn sdp_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::G722 => "G722",
            Codec::Opus => "opus",
        }
    }

    /// RTP clock rate; Opus always uses 48 kHz on the wire (RFC 7587).
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma | Codec::G722 => 8000,
            Codec::Opus => 48000,
        }
    }

    /// The rate prompts are resampled to before encoding.
    pub fn sample_rate(self) -> u32 {
        match self {
            Codec::G722 => 16000,
            other => other.clock_rate(),
        }
    }

    pub fn channels_suffix(self) -> &'static str {
        match self {
            Codec::Opus => "/2",
            _ => "",
        }
    }

    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            Codec::Pcmu => Some(0),
            Codec::Pcma => Some(8),
            Codec::G722 => Some(9),
            Codec::Opus => None,
        }
    }

    /// Payload type we use when we make the offer.
    pub fn default_payload_type(self) -> u8 {
        self.static_payload_type().unwrap_or(111)
    }

    /// How far the RTP timestamp moves per frame.
    pub fn samples_per_frame(self) -> usize {
        (self.clock_rate() * FRAME_MS / 1000) as usize
    }

    /// Audio samples in one frame, at `sample_rate`.
    pub fn pcm_samples_per_frame(self) -> usize {
        (self.sample_rate() * FRAME_MS / 1000) as usize
    }
}

pub fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut pcm = sample as i32;
    let sign = if pcm < 0 {
        pcm = -pcm;
        0x80
    } else {
        0
    };
    pcm = pcm.min(CLIP) + BIAS;
    let exponent = (7 - (pcm.leading_zeros() as i32 - 17)).clamp(0, 7);
    let mantissa = (pcm >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) | mantissa) as u8
}

pub fn ulaw_to_linear(byte: u8) -> i16 {
    let u = !byte as i32;
    let sign = u & 0x80;
    let exponent = (u >> 4) & 0x07;
    let mantissa = u & 0x0F;
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}

pub fn linear_to_alaw(sample: i16) -> u8 {
    let mut pcm = sample as i32;
    let sign = if pcm >= 0 {
        0x80
    } else {
        pcm = -pcm - 1;
        0
    };
    pcm = pcm.min(32767) >> 3;
    let byte = if pcm < 32 {
        (pcm >> 1) as u8
    } else {
        let exponent = (31 - (pcm as u32).leading_zeros()) as i32 - 4;
        ((exponent << 4) | ((pcm >> exponent) & 0x0F)) as u8
    };
    (byte | sign) ^ 0x55
}

pub fn alaw_to_linear(byte: u8) -> i16 {
    let a = (byte ^ 0x55) as i32;
    let sign = a & 0x80;
    let exponent = (a >> 4) & 0x07;
    let mantissa = a & 0x0F;
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    (if sign != 0 { magnitude } else { -magnitude }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_values() {
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_ulaw(-1), 0x7F);
        assert_eq!(linear_to_ulaw(32767), 0x80);
        assert_eq!(linear_to_ulaw(-32768), 0x00);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x80), 32124);
    }

    #[test]
    fn alaw_known_values() {
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(linear_to_alaw(-1), 0x55);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
    }

    #[test]
    fn g711_round_trip_stays_within_quantisation_error() {
        for s in (-32768i32..=32767).step_by(7) {
            let s = s as i16;
            let tolerance = (s as i32).abs() / 16 + 16;
            let u = ulaw_to_linear(linear_to_ulaw(s)) as i32;
            let a = alaw_to_linear(linear_to_alaw(s)) as i32;
            assert!((u - s as i32).abs() <= tolerance, "ulaw {s} -> {u}");
            assert!((a - s as i32).abs() <= tolerance, "alaw {s} -> {a}");
        }
    }
}
