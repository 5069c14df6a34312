//! Audio checks for recordings made by real softphones: how long the audible part lasts,
//! compared with what the prompts should sound like.

use std::path::Path;

use ivr::media::prompt::{read_wav_mono, resample};

/// Samples louder than this (about -34 dBFS) count as sound.
const THRESHOLD: i32 = 650;

/// Seconds from the first to the last audible sample.
pub fn active_span(samples: &[i16], rate: u32) -> f64 {
    let loud = |s: &&i16| (**s as i32).abs() > THRESHOLD;
    let first = samples.iter().position(|s| loud(&s));
    let last = samples.iter().rposition(|s| loud(&s));
    match (first, last) {
        (Some(a), Some(b)) => (b - a) as f64 / rate as f64,
        _ => 0.0,
    }
}

pub fn read_recording(path: &Path) -> (Vec<i16>, u32) {
    let mut reader =
        hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = reader.spec();
    // Phones may close the file before fixing its header lengths: keep what was written.
    let samples: Vec<i16> = reader.samples::<i16>().map_while(Result::ok).collect();
    let mono = samples
        .chunks(spec.channels as usize)
        .map(|c| c[0])
        .collect();
    (mono, spec.sample_rate)
}

/// The prompts back to back as the IVR sends them at 8 kHz: each padded to a whole 20 ms frame.
pub fn expected_stream(prompts: &[&str]) -> Vec<i16> {
    let dir = super::project_dir().join("prompts");
    let mut out = Vec::new();
    for name in prompts {
        let (samples, rate) = read_wav_mono(&dir.join(format!("{name}.wav"))).unwrap();
        let mut pcm = resample(&samples, rate, 8000).unwrap();
        pcm.resize(pcm.len().div_ceil(160) * 160, 0);
        out.extend(pcm);
    }
    out
}

/// Writes mono 16-bit PCM at `rate` as a WAV file (what a test peer "says").
pub fn write_wav(path: &Path, rate: u32, samples: impl IntoIterator<Item = i16>) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for sample in samples {
        w.write_sample(sample).unwrap();
    }
    w.finalize().unwrap();
}

/// A tone of `freq` Hz for `seconds`, at half of full scale.
pub fn tone(rate: u32, freq: f64, seconds: u32) -> impl Iterator<Item = i16> {
    (0..rate * seconds).map(move |n| {
        let t = f64::from(n) / f64::from(rate);
        (16_000.0 * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16
    })
}

/// How many 200 ms windows of `samples` are mostly (over half their energy) a tone of `freq`:
/// Goertzel's power at that frequency against the window's whole energy.
pub fn tone_windows(samples: &[i16], rate: u32, freq: f64) -> usize {
    let window = (rate / 5) as usize;
    let coefficient = 2.0 * (2.0 * std::f64::consts::PI * freq / f64::from(rate)).cos();
    samples
        .chunks_exact(window)
        .filter(|chunk| {
            let (mut s1, mut s2, mut energy) = (0.0f64, 0.0f64, 0.0f64);
            for &x in *chunk {
                let x = f64::from(x);
                let s0 = x + coefficient * s1 - s2;
                s2 = s1;
                s1 = s0;
                energy += x * x;
            }
            let power = s1 * s1 + s2 * s2 - coefficient * s1 * s2;
            // A pure tone's Goertzel power is energy · N / 2.
            energy > 0.0 && power / (energy * window as f64 / 2.0) > 0.5
        })
        .count()
}
