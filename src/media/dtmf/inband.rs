//! In-band DTMF detection over 8 kHz audio, for calls without telephone-event. Goertzel filters
//! at the eight DTMF frequencies, each flanked by two guard filters 3.5% away: a tone is taken
//! only when it is nearer its nominal frequency than either guard, which accepts deviations up
//! to 1.5% and refuses 3.5% and beyond (ITU-T Q.24). Further checks keep speech out: the two
//! tones must carry most of the energy, stand well above the other frequencies of their group,
//! respect the twist limits, fill the analysis window evenly and last 30 ms or more; a pause of 20 ms or more separates digits.

const RATE: f32 = 8000.0;
/// Analysis window: 20 ms, 50 Hz resolution.
const WINDOW: usize = 160;
/// A new analysis every 10 ms.
const HOP: usize = 80;
const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];
const GUARD: f32 = 0.035;
/// Each tone at least about -36 dBFS (mean square of a sine of amplitude 520).
const MIN_TONE_POWER: f32 = 135_000.0;
/// The two tones together carry at least this share of the window's energy.
const MIN_TONE_SHARE: f32 = 0.4;
/// The strongest frequency of a group stands 6 dB above the others.
const GROUP_DOMINANCE: f32 = 4.0;
/// High group may be 8 dB louder than the low group (normal twist), low 4 dB louder (reverse).
const MAX_NORMAL_TWIST: f32 = 6.31;
const MAX_REVERSE_TWIST: f32 = 2.51;
/// Consecutive windows with the same key before it counts (30 ms of tone).
const HITS: u8 = 2;
/// Consecutive windows without it before the key is released (20 ms of pause).
const MISSES: u8 = 2;

#[derive(Debug, Clone, Copy)]
struct Filter {
    coefficient: f32,
}

impl Filter {
    fn new(frequency: f32) -> Filter {
        Filter {
            coefficient: 2.0 * (2.0 * std::f32::consts::PI * frequency / RATE).cos(),
        }
    }

    /// Mean-square power of the component at this frequency (A²/2 for a sine of amplitude A).
    fn power(&self, samples: &[f32]) -> f32 {
        let (mut s1, mut s2) = (0.0f32, 0.0f32);
        for &x in samples {
            let s0 = x + self.coefficient * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let raw = s1 * s1 + s2 * s2 - self.coefficient * s1 * s2;
        2.0 * raw / (samples.len() * samples.len()) as f32
    }
}

/// A nominal frequency with its two guards.
#[derive(Debug, Clone, Copy)]
struct Tone {
    nominal: Filter,
    low: Filter,
    high: Filter,
}

impl Tone {
    fn new(f: f32) -> Tone {
        Tone {
            nominal: Filter::new(f),
            low: Filter::new(f * (1.0 - GUARD)),
            high: Filter::new(f * (1.0 + GUARD)),
        }
    }
}

#[derive(Debug)]
pub struct InbandDetector {
    rows: [Tone; 4],
    cols: [Tone; 4],
    window: [f32; WINDOW],
    filled: usize,
    candidate: Option<char>,
    hits: u8,
    misses: u8,
    held: Option<char>,
}

impl Default for InbandDetector {
    fn default() -> Self {
        InbandDetector::new()
    }
}

impl InbandDetector {
    pub fn new() -> InbandDetector {
        InbandDetector {
            rows: ROWS.map(Tone::new),
            cols: COLS.map(Tone::new),
            window: [0.0; WINDOW],
            filled: 0,
            candidate: None,
            hits: 0,
            misses: 0,
            held: None,
        }
    }

    /// Feeds 8 kHz samples; returns each key the first time it is heard.
    pub fn push(&mut self, samples: &[i16], mut on_digit: impl FnMut(char)) {
        for &s in samples {
            self.window[self.filled] = s as f32;
            self.filled += 1;
            if self.filled == WINDOW {
                if let Some(digit) = self.step() {
                    on_digit(digit);
                }
                self.window.copy_within(HOP.., 0);
                self.filled = WINDOW - HOP;
            }
        }
    }

    fn step(&mut self) -> Option<char> {
        let seen = self.analyse();
        match (seen, self.held) {
            (Some(key), Some(held)) if key == held => {
                self.misses = 0;
                None
            }
            (Some(key), _) => {
                self.misses = self.misses.saturating_add(1);
                if self.held.is_some() && self.misses >= MISSES {
                    self.held = None;
                }
                self.hits = if self.candidate == Some(key) {
                    self.hits + 1
                } else {
                    1
                };
                self.candidate = Some(key);
                if self.held.is_none() && self.hits >= HITS {
                    self.held = Some(key);
                    self.misses = 0;
                    return Some(key);
                }
                None
            }
            (None, _) => {
                self.candidate = None;
                self.hits = 0;
                self.misses = self.misses.saturating_add(1);
                if self.misses >= MISSES {
                    self.held = None;
                }
                None
            }
        }
    }

    /// The key this window holds, if it passes every check.
    fn analyse(&self) -> Option<char> {
        let w = &self.window;
        let energy = w.iter().map(|x| x * x).sum::<f32>() / WINDOW as f32;
        if energy < 2.0 * MIN_TONE_POWER {
            return None;
        }
        // The tone must fill the window: a burst shorter than the window must not count twice.
        let (first, second) = w.split_at(WINDOW / 2);
        let half = |h: &[f32]| h.iter().map(|x| x * x).sum::<f32>();
        let (e1, e2) = (half(first), half(second));
        if e1 < 0.25 * e2 || e2 < 0.25 * e1 {
            return None;
        }
        let (row, row_power) = strongest(&self.rows, w)?;
        let (col, col_power) = strongest(&self.cols, w)?;
        if row_power < MIN_TONE_POWER || col_power < MIN_TONE_POWER {
            return None;
        }
        if (row_power + col_power) < MIN_TONE_SHARE * energy {
            return None;
        }
        if col_power > MAX_NORMAL_TWIST * row_power || row_power > MAX_REVERSE_TWIST * col_power {
            return None;
        }
        Some(KEYS[row][col])
    }
}

/// The dominant tone of a group, if it dominates and sits nearer its nominal frequency than its
/// guards.
fn strongest(group: &[Tone; 4], w: &[f32]) -> Option<(usize, f32)> {
    let powers = group.map(|t| t.nominal.power(w));
    let (best, &power) = powers
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))?;
    let dominated = powers
        .iter()
        .enumerate()
        .any(|(i, &p)| i != best && p * GROUP_DOMINANCE > power);
    if dominated {
        return None;
    }
    let tone = &group[best];
    if tone.low.power(w) >= power || tone.high.power(w) >= power {
        return None;
    }
    Some((best, power))
}

#[cfg(test)]
mod tests;
