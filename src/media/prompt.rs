//! The prompt library: every WAV under the prompts directory, decoded, resampled and encoded
//! once per codec at start-up into 20 ms frames. Calls share the frames (`Bytes` slices of one
//! buffer per prompt), so playing a prompt copies bytes and never transcodes.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use super::codec::{linear_to_alaw, linear_to_ulaw, Codec, FRAME_MS};
use super::prompt_cache::PcmCache;

/// One prompt, ready to send in every codec the server was configured with.
#[derive(Debug)]
pub struct Prompt {
    pub name: String,
    frames: HashMap<Codec, Vec<Bytes>>,
}

impl Prompt {
    pub fn frames(&self, codec: Codec) -> &[Bytes] {
        self.frames.get(&codec).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn duration_ms(&self) -> u64 {
        self.frames
            .values()
            .next()
            .map_or(0, |f| f.len() as u64 * u64::from(FRAME_MS))
    }
}

#[derive(Debug)]
pub struct PromptLibrary {
    dir: PathBuf,
    prompts: HashMap<String, Arc<Prompt>>,
    silence: HashMap<Codec, Bytes>,
}

impl PromptLibrary {
    /// Loads every `*.wav` below `dir`; a prompt's name is its path without `.wav`
    /// (`welcome`, `greetings/1001`).
    pub fn load(dir: &Path, codecs: &[Codec]) -> Result<PromptLibrary> {
        Self::load_cached(dir, codecs, None)
    }

    /// As `load`, taking resampled audio from `cache` when it holds this WAV's content, and
    /// leaving there what it had to compute.
    pub fn load_cached(
        dir: &Path,
        codecs: &[Codec],
        cache: Option<&PcmCache>,
    ) -> Result<PromptLibrary> {
        let mut files = Vec::new();
        collect_wavs(dir, &mut files).with_context(|| format!("prompts dir {}", dir.display()))?;
        let mut encoders = Encoders::new(codecs)?;
        let mut prompts = HashMap::new();
        for path in files {
            let name = prompt_name(dir, &path);
            let wav = std::fs::read(&path)
                .with_context(|| format!("reading prompt {}", path.display()))?;
            let key = cache.map(|_| PcmCache::key(&wav));
            let mut decoded = None;
            let at_rate = |to: u32| -> Result<Vec<i16>> {
                if let Some(hit) = cache.zip(key.as_deref()).and_then(|(c, k)| c.get(k, to)) {
                    return Ok(hit);
                }
                let (samples, rate) = match &decoded {
                    Some(done) => done,
                    None => decoded.insert(decode_wav_mono(&wav, &path)?),
                };
                let pcm = resample(samples, *rate, to)?;
                if let Some((c, k)) = cache.zip(key.as_deref()) {
                    c.put(k, to, &pcm);
                }
                Ok(pcm)
            };
            let prompt = encode_frames(&mut encoders, name.clone(), codecs, at_rate)
                .with_context(|| format!("encoding {}", path.display()))?;
            prompts.insert(name, Arc::new(prompt));
        }
        let silence = codecs
            .iter()
            .map(|&c| {
                let frame = encoders.encode(c, &vec![0; c.pcm_samples_per_frame()])?;
                Ok((c, frame[0].clone()))
            })
            .collect::<Result<_>>()?;
        Ok(PromptLibrary {
            dir: dir.to_path_buf(),
            prompts,
            silence,
        })
    }

    pub fn get(&self, name: &str) -> Option<Arc<Prompt>> {
        self.prompts.get(name).cloned()
    }

    /// The folder the prompts were read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file a prompt of this name is read from.
    pub fn path_of(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.wav"))
    }

    pub fn silence(&self, codec: Codec) -> Bytes {
        self.silence.get(&codec).cloned().unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.prompts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }
}

/// A prompt's name in a language's folder (`es` + `num/7` → `es/num/7`).
pub fn in_folder(folder: &str, name: &str) -> String {
    if folder.is_empty() {
        name.to_string()
    } else {
        format!("{folder}/{name}")
    }
}

fn collect_wavs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_wavs(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("wav"))
        {
            out.push(path);
        }
    }
    out.sort();
    Ok(())
}

fn prompt_name(dir: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(dir).unwrap_or(path).with_extension("");
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// A prompt made at run time (synthesised speech): encoded once for every codec, like the
/// library's.
pub fn prompt_from_samples(
    name: String,
    samples: &[f32],
    rate: u32,
    codecs: &[Codec],
) -> Result<Prompt> {
    encode_clip(&mut Encoders::new(codecs)?, name, samples, rate, codecs)
}

/// A prompt from a WAV file's bytes (an application's recording), as the library's are made.
pub fn prompt_from_wav(name: String, wav: &[u8], codecs: &[Codec]) -> Result<Prompt> {
    let (samples, rate) = decode_wav_mono(wav, Path::new(&name))?;
    prompt_from_samples(name, &samples, rate, codecs)
}

fn encode_clip(
    encoders: &mut Encoders,
    name: String,
    samples: &[f32],
    rate: u32,
    codecs: &[Codec],
) -> Result<Prompt> {
    encode_frames(encoders, name, codecs, |to| resample(samples, rate, to))
}

/// Encodes for every codec, asking `at_rate` for the audio once per sample rate (PCMU and PCMA
/// share 8 kHz).
fn encode_frames(
    encoders: &mut Encoders,
    name: String,
    codecs: &[Codec],
    mut at_rate: impl FnMut(u32) -> Result<Vec<i16>>,
) -> Result<Prompt> {
    let mut frames = HashMap::new();
    let mut by_rate: HashMap<u32, Vec<i16>> = HashMap::new();
    for &codec in codecs {
        let to = codec.sample_rate();
        let pcm = match by_rate.entry(to) {
            Entry::Occupied(done) => done.into_mut(),
            Entry::Vacant(slot) => slot.insert(at_rate(to)?),
        };
        frames.insert(codec, encoders.encode(codec, pcm)?);
    }
    Ok(Prompt { name, frames })
}

/// Decodes any PCM or float WAV to mono f32 in [-1, 1], averaging channels.
pub fn read_wav_mono(path: &Path) -> Result<(Vec<f32>, u32)> {
    let wav = std::fs::read(path).with_context(|| format!("reading prompt {}", path.display()))?;
    decode_wav_mono(&wav, path)
}

/// `read_wav_mono` on a file already read; `path` names it in errors.
fn decode_wav_mono(wav: &[u8], path: &Path) -> Result<(Vec<f32>, u32)> {
    let mut reader = hound::WavReader::new(std::io::Cursor::new(wav))
        .with_context(|| format!("reading prompt {}", path.display()))?;
    let spec = reader.spec();
    if !matches!(spec.sample_rate, 8000 | 16000 | 22050 | 44100 | 48000) {
        bail!(
            "prompt {}: unsupported sample rate {} Hz (use 8, 16, 22.05, 44.1 or 48 kHz)",
            path.display(),
            spec.sample_rate
        );
    }
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>(),
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()
        }
    }
    .with_context(|| format!("decoding prompt {}", path.display()))?;
    let channels = spec.channels.max(1) as usize;
    let mono = interleaved
        .chunks(channels)
        .map(|frame| frame.iter().sum::<f32>() / channels as f32)
        .collect();
    Ok((mono, spec.sample_rate))
}

/// Band-limited FFT resampling of a whole clip, then conversion to 16-bit samples.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<i16>> {
    let resampled = if from == to || samples.is_empty() {
        samples.to_vec()
    } else {
        let mut resampler = Fft::<f32>::new(from as usize, to as usize, 1024, 1, FixedSync::Input)?;
        let input = InterleavedSlice::new(samples, 1, samples.len())?;
        resampler
            .process_all(&input, samples.len(), None)?
            .take_data()
    };
    Ok(resampled
        .iter()
        .map(|s| (s * 32767.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect())
}

struct Encoders {
    #[cfg(feature = "opus")]
    opus: Option<audiopus::coder::Encoder>,
}

impl Encoders {
    fn new(codecs: &[Codec]) -> Result<Encoders> {
        #[cfg(feature = "opus")]
        {
            use audiopus::{coder::Encoder, Application, Channels, SampleRate};
            let opus = if codecs.contains(&Codec::Opus) {
                Some(Encoder::new(
                    SampleRate::Hz48000,
                    Channels::Mono,
                    Application::Voip,
                )?)
            } else {
                None
            };
            Ok(Encoders { opus })
        }
        #[cfg(not(feature = "opus"))]
        {
            let _ = codecs;
            Ok(Encoders {})
        }
    }

    /// Splits into 20 ms frames, padding the last one with silence so no short packet clicks.
    fn encode(&mut self, codec: Codec, samples: &[i16]) -> Result<Vec<Bytes>> {
        let per_frame = codec.pcm_samples_per_frame();
        let mut padded = samples.to_vec();
        let frames = padded.len().div_ceil(per_frame).max(1);
        padded.resize(frames * per_frame, 0);
        match codec {
            Codec::Pcmu | Codec::Pcma => {
                let law = if codec == Codec::Pcmu {
                    linear_to_ulaw
                } else {
                    linear_to_alaw
                };
                let all = Bytes::from(padded.iter().map(|&s| law(s)).collect::<Vec<u8>>());
                Ok((0..frames)
                    .map(|i| all.slice(i * per_frame..(i + 1) * per_frame))
                    .collect())
            }
            Codec::G722 => encode_g722(&padded, per_frame),
            Codec::Opus => self.encode_opus(&padded, per_frame),
        }
    }

    #[cfg(feature = "opus")]
    fn encode_opus(&mut self, samples: &[i16], per_frame: usize) -> Result<Vec<Bytes>> {
        let encoder = self.opus.as_mut().context("opus encoder not configured")?;
        let mut all = Vec::new();
        let mut bounds = Vec::new();
        let mut packet = [0u8; 1500];
        for chunk in samples.chunks(per_frame) {
            let n = encoder.encode(chunk, &mut packet)?;
            let start = all.len();
            all.extend_from_slice(&packet[..n]);
            bounds.push(start..all.len());
        }
        let all = Bytes::from(all);
        Ok(bounds.into_iter().map(|r| all.slice(r)).collect())
    }

    #[cfg(not(feature = "opus"))]
    fn encode_opus(&mut self, _samples: &[i16], _per_frame: usize) -> Result<Vec<Bytes>> {
        bail!("opus support is not built in")
    }
}

/// 64 kbit/s G.722: one byte per two 16 kHz samples. Each clip starts from a fresh encoder,
/// the state a decoder has at the start of a talkspurt.
fn encode_g722(samples: &[i16], per_frame: usize) -> Result<Vec<Bytes>> {
    use audio_codec::Encoder;
    let mut encoder = audio_codec::g722::G722Encoder::new();
    let mut all = vec![0u8; samples.len() / 2];
    let written = encoder
        .encode_into(samples, &mut all)
        .map_err(|e| anyhow::anyhow!("G.722 encoder: {e:?}"))?;
    all.truncate(written);
    let all = Bytes::from(all);
    let per_packet = per_frame / 2;
    Ok((0..all.len() / per_packet)
        .map(|i| all.slice(i * per_packet..(i + 1) * per_packet))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f32, seconds: f32) -> Vec<f32> {
        let n = (rate as f32 * seconds) as usize;
        (0..n)
            .map(|i| 0.5 * (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin())
            .collect()
    }

    #[test]
    fn resampling_keeps_duration_and_tone() {
        let input = tone(44100, 1000.0, 1.0);
        let out = resample(&input, 44100, 8000).unwrap();
        assert!(
            (out.len() as i32 - 8000).abs() <= 2,
            "got {} samples",
            out.len()
        );
        // A 1 kHz tone at 8 kHz crosses zero about 2000 times a second.
        let crossings = out
            .windows(2)
            .filter(|w| (w[0] >= 0) != (w[1] >= 0))
            .count();
        assert!(
            (1950..=2050).contains(&crossings),
            "{crossings} zero crossings"
        );
    }

    #[test]
    fn frames_are_twenty_ms_and_last_is_padded() {
        let mut enc = Encoders::new(&[Codec::Pcmu]).unwrap();
        let frames = enc.encode(Codec::Pcmu, &[1000; 170]).unwrap();
        assert_eq!(frames.len(), 2);
        assert!(frames.iter().all(|f| f.len() == 160));
        assert_eq!(frames[1][10], linear_to_ulaw(0), "padding is silence");
    }

    #[test]
    fn g722_frames_carry_twenty_ms_of_wideband_audio() {
        use audio_codec::Decoder;
        let six_khz = tone(16000, 6000.0, 1.0);
        let prompt = prompt_from_samples("t".into(), &six_khz, 16000, &[Codec::G722]).unwrap();
        let frames = prompt.frames(Codec::G722);
        assert_eq!(frames.len(), 50);
        assert!(frames.iter().all(|f| f.len() == 160));
        let mut decoder = audio_codec::g722::G722Decoder::new();
        let mut pcm = Vec::new();
        for frame in frames {
            let mut out = [0i16; 320];
            let n = decoder.decode_into(frame, &mut out).unwrap();
            pcm.extend_from_slice(&out[..n]);
        }
        assert_eq!(pcm.len(), 16000);
        // A 6 kHz tone, above anything G.711 carries, crosses zero 12,000 times a second.
        let crossings = pcm[1600..]
            .windows(2)
            .filter(|w| (w[0] >= 0) != (w[1] >= 0))
            .count();
        assert!((10_500..=11_100).contains(&crossings), "{crossings}");
        let loud = pcm[1600..].iter().filter(|s| s.abs() > 8000).count();
        assert!(loud > 1000, "the tone kept its level: {loud}");
    }

    #[test]
    fn library_loads_wavs_and_names_missing_ones() {
        let temp = crate::testing::TempDir::new("prompts");
        let dir = temp.path();
        let stereo = tone(16000, 440.0, 0.5)
            .into_iter()
            .flat_map(|s| [(s * 20000.0) as i16; 2]);
        crate::testing::write_wav(&dir.join("greetings/7.wav"), 16000, 2, stereo);
        let lib = PromptLibrary::load(dir, &[Codec::Pcmu, Codec::Pcma]).unwrap();
        let p = lib
            .get("greetings/7")
            .expect("nested prompt is named by its path");
        assert_eq!(p.frames(Codec::Pcma).len(), 25);
        assert_eq!(p.duration_ms(), 500);
        assert!(lib.get("welcome").is_none());
        assert_eq!(lib.path_of("welcome"), dir.join("welcome.wav"));
    }
}
