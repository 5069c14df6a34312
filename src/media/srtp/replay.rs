//! The packet index of a received stream (RFC 3711 §3.3.1) and the replay window (§3.3.2).

/// How far behind the newest packet an older one may still arrive.
const WINDOW: u64 = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ReplayWindow {
    /// The highest index accepted so far.
    highest: u64,
    /// Bit `n` set: index `highest - n` was accepted.
    seen: u128,
}

impl ReplayWindow {
    pub(super) fn starting_at(index: u64) -> ReplayWindow {
        ReplayWindow {
            highest: index,
            seen: 1,
        }
    }

    /// The rollover counter of the highest index: what the next packet's index is guessed from.
    fn roc(&self) -> u64 {
        self.highest >> 16
    }

    /// The 48-bit index a packet with sequence number `seq` most likely has (Appendix A): the
    /// one of ROC−1, ROC and ROC+1 that puts it closest to the highest seen.
    pub(super) fn estimate(&self, seq: u16) -> Option<u64> {
        let s_l = (self.highest & 0xffff) as i64;
        let seq_i = i64::from(seq);
        let roc = self.roc() as i64;
        let v = if s_l < 0x8000 {
            if seq_i - s_l > 0x8000 {
                roc - 1
            } else {
                roc
            }
        } else if s_l - 0x8000 > seq_i {
            roc + 1
        } else {
            roc
        };
        // Before the stream's first rollover, or past the 2^32 rollovers a key may see.
        u32::try_from(v)
            .ok()
            .map(|v| (u64::from(v) << 16) | u64::from(seq))
    }

    /// Whether `index` may be accepted: not seen before and not older than the window.
    pub(super) fn fresh(&self, index: u64) -> bool {
        match self.highest.checked_sub(index) {
            None => true,
            Some(behind) if behind >= WINDOW => false,
            Some(behind) => self.seen & (1 << behind) == 0,
        }
    }

    /// Records an authenticated `index`.
    pub(super) fn accept(&mut self, index: u64) {
        match self.highest.checked_sub(index) {
            None => {
                let ahead = index - self.highest;
                self.seen = if ahead >= WINDOW {
                    1
                } else {
                    (self.seen << ahead) | 1
                };
                self.highest = index;
            }
            Some(behind) if behind < WINDOW => self.seen |= 1 << behind,
            Some(_) => {}
        }
    }
}
