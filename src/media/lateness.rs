//! How late a stream's frames leave against their absolute deadlines, kept as a tiny histogram
//! so a call can report its own pacing when it ends without storing every sample.

use std::time::Duration;

/// Buckets: <1, <2, <4, <8, <16, <32, <64, ≥64 ms.
#[derive(Debug, Default)]
pub struct Lateness {
    buckets: [u32; 8],
    max_us: u64,
}

impl Lateness {
    pub fn record(&mut self, late: Duration) {
        let ms = late.as_millis() as u64;
        let bucket = if ms == 0 {
            0
        } else {
            (64 - ms.leading_zeros() as usize).min(7)
        };
        self.buckets[bucket] += 1;
        self.max_us = self.max_us.max(late.as_micros() as u64);
    }

    pub fn frames(&self) -> u32 {
        self.buckets.iter().sum()
    }

    pub fn max_us(&self) -> u64 {
        self.max_us
    }

    /// The bucket's upper bound (ms) under which 99% of frames left.
    pub fn p99_ms(&self) -> u64 {
        let total = self.frames();
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen * 100 >= total * 99 {
                return 1 << i;
            }
        }
        128
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_p99() {
        let mut l = Lateness::default();
        for _ in 0..98 {
            l.record(Duration::from_micros(300));
        }
        l.record(Duration::from_millis(5));
        l.record(Duration::from_millis(40));
        assert_eq!(l.buckets[0], 98);
        assert_eq!(l.buckets[3], 1, "5 ms falls in [4, 8)");
        assert_eq!(l.buckets[6], 1, "40 ms falls in [32, 64)");
        assert_eq!(l.p99_ms(), 8);
        assert_eq!(l.max_us(), 40_000);
        assert_eq!(l.frames(), 100);
    }
}
