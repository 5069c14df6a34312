//! Tones synthesised at the edges of the ITU-T Q.24 limits, and speech that must stay silent.

use super::*;

fn tone_pair(row: f32, col: f32, ms: u32, row_amp: f32, col_amp: f32) -> Vec<i16> {
    let n = 8 * ms as usize;
    (0..n)
        .map(|i| {
            let t = i as f32 / RATE;
            let v = row_amp * (2.0 * std::f32::consts::PI * row * t).sin()
                + col_amp * (2.0 * std::f32::consts::PI * col * t).sin();
            v.round() as i16
        })
        .collect()
}

fn silence(ms: u32) -> Vec<i16> {
    vec![0; 8 * ms as usize]
}

/// Keys as a phone sends them: each `tone_ms` long, `gap_ms` apart, frequencies scaled by `dev`.
fn keyed(keys: &str, tone_ms: u32, gap_ms: u32, dev: f32, row_amp: f32, col_amp: f32) -> Vec<i16> {
    let mut out = silence(30);
    for key in keys.chars() {
        let (r, c) = (0..4)
            .flat_map(|r| (0..4).map(move |c| (r, c)))
            .find(|&(r, c)| KEYS[r][c] == key)
            .unwrap();
        out.extend(tone_pair(
            ROWS[r] * dev,
            COLS[c] * dev,
            tone_ms,
            row_amp,
            col_amp,
        ));
        out.extend(silence(gap_ms));
    }
    out
}

fn detect(samples: &[i16]) -> String {
    let mut detector = InbandDetector::new();
    let mut out = String::new();
    // In 20 ms frames, as they arrive from RTP.
    for frame in samples.chunks(160) {
        detector.push(frame, |d| out.push(d));
    }
    out
}

#[test]
fn every_key_is_heard_once() {
    assert_eq!(
        detect(&keyed("0123456789*#ABCD", 100, 100, 1.0, 8000.0, 8000.0)),
        "0123456789*#ABCD"
    );
}

#[test]
fn minimum_tone_and_pause_of_40_ms_are_enough() {
    assert_eq!(detect(&keyed("1212", 40, 40, 1.0, 8000.0, 8000.0)), "1212");
    assert_eq!(detect(&keyed("55", 45, 40, 1.0, 8000.0, 8000.0)), "55");
}

#[test]
fn tones_shorter_than_20_ms_are_refused() {
    assert_eq!(detect(&keyed("123", 20, 60, 1.0, 8000.0, 8000.0)), "");
}

#[test]
fn deviation_up_to_1_5_percent_is_accepted() {
    for dev in [0.985, 1.015] {
        assert_eq!(
            detect(&keyed("147*2580369#", 60, 60, dev, 8000.0, 8000.0)),
            "147*2580369#",
            "deviation {dev}"
        );
    }
}

#[test]
fn deviation_of_3_5_percent_or_more_is_refused() {
    // (10% off lands on the neighbouring DTMF frequencies, so it is another key, not noise.)
    for dev in [0.965, 1.035, 0.95, 1.05] {
        assert_eq!(
            detect(&keyed("147*2580369#", 60, 60, dev, 8000.0, 8000.0)),
            "",
            "deviation {dev}"
        );
    }
}

#[test]
fn twist_within_limits_is_accepted_and_beyond_refused() {
    // High group 6 dB louder (normal twist within 8 dB), low group 3 dB louder (reverse within 4 dB).
    assert_eq!(detect(&keyed("19", 60, 60, 1.0, 4000.0, 8000.0)), "19");
    assert_eq!(detect(&keyed("19", 60, 60, 1.0, 8000.0, 5700.0)), "19");
    // 12 dB either way is refused.
    assert_eq!(detect(&keyed("19", 60, 60, 1.0, 2000.0, 8000.0)), "");
    assert_eq!(detect(&keyed("19", 60, 60, 1.0, 8000.0, 2000.0)), "");
}

#[test]
fn a_long_key_is_one_digit_and_quiet_tones_are_ignored() {
    assert_eq!(detect(&keyed("8", 2000, 50, 1.0, 8000.0, 8000.0)), "8");
    assert_eq!(detect(&keyed("8", 200, 50, 1.0, 200.0, 200.0)), "");
}

#[test]
fn a_single_tone_or_two_tones_of_one_group_is_not_a_key() {
    let single: Vec<i16> = tone_pair(697.0, 1209.0, 200, 8000.0, 0.0);
    assert_eq!(detect(&single), "");
    let mut chord = tone_pair(697.0, 1209.0, 200, 8000.0, 8000.0);
    let third = tone_pair(770.0, 1209.0, 200, 8000.0, 0.0);
    for (a, b) in chord.iter_mut().zip(third) {
        *a = a.saturating_add(b);
    }
    assert_eq!(detect(&chord), "");
}

/// Talk-off: the speech of every shipped prompt yields no key.
#[test]
fn shipped_prompts_never_sound_like_keys() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
    let mut files = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "wav") {
                files.push(p);
            }
        }
    }
    assert!(files.len() >= 40, "prompts not found");
    let mut total_seconds = 0.0;
    for file in files {
        let (samples, rate) = crate::media::prompt::read_wav_mono(&file).unwrap();
        let pcm = crate::media::prompt::resample(&samples, rate, 8000).unwrap();
        total_seconds += pcm.len() as f32 / 8000.0;
        // As loud as it will be sent, and 6 dB louder.
        for gain in [1.0f32, 2.0] {
            let loud: Vec<i16> = pcm
                .iter()
                .map(|&s| (s as f32 * gain).clamp(-32768.0, 32767.0) as i16)
                .collect();
            assert_eq!(
                detect(&loud),
                "",
                "{} at gain {gain} sounded like a key",
                file.display()
            );
        }
    }
    assert!(
        total_seconds > 60.0,
        "only {total_seconds} s of speech checked"
    );
}
