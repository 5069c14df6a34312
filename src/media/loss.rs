//! How many of the caller's packets never arrived (RFC 3550 A.3): the packets expected from the
//! highest extended sequence number seen, less those received. A jump of more than
//! `MAX_DROPOUT` is a restarted sequence, not a loss; so is a new SSRC.

/// RFC 3550 A.1's bound on a plausible forward jump.
const MAX_DROPOUT: u16 = 3000;

#[derive(Debug, Default, Clone)]
pub struct Loss {
    ssrc: Option<u32>,
    /// Extended sequence numbers of the current run: first and highest.
    first: u64,
    highest: u64,
    received: u64,
    /// Lost in runs already closed.
    closed: u64,
}

impl Loss {
    pub fn on_packet(&mut self, ssrc: u32, seq: u16) {
        let last = self.highest as u16;
        let ahead = seq.wrapping_sub(last);
        let restart = self.ssrc != Some(ssrc) || (ahead > MAX_DROPOUT && ahead < u16::MAX / 2);
        if restart {
            self.closed += self.open_run_lost();
            *self = Loss {
                ssrc: Some(ssrc),
                first: u64::from(seq),
                highest: u64::from(seq),
                received: 1,
                closed: self.closed,
            };
            return;
        }
        self.received += 1;
        // Ahead by less than half the space: newer (possibly across a wrap); else late or a copy.
        if ahead != 0 && ahead < u16::MAX / 2 {
            self.highest += u64::from(ahead);
        }
    }

    fn open_run_lost(&self) -> u64 {
        if self.ssrc.is_none() {
            return 0;
        }
        (self.highest - self.first + 1).saturating_sub(self.received)
    }

    /// The extended highest sequence number of the current run.
    pub fn highest(&self) -> u64 {
        self.highest
    }

    pub fn lost(&self) -> u64 {
        self.closed + self.open_run_lost()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_count_across_a_wrap_and_copies_do_not() {
        let mut loss = Loss::default();
        for seq in [65530u16, 65531, 65533, 65535, 0, 1, 1, 4] {
            loss.on_packet(7, seq);
        }
        // Expected 65530..=4 (11 packets), received 8 (one a copy): 3 lost, less the copy's
        // credit, as RFC 3550 counts it.
        assert_eq!(loss.lost(), 3);
        // A new SSRC starts a new run; the old run's loss is kept.
        loss.on_packet(9, 100);
        loss.on_packet(9, 102);
        assert_eq!(loss.lost(), 4);
        // A jump past MAX_DROPOUT is a restart, not thousands of lost packets.
        loss.on_packet(9, 20_000);
        loss.on_packet(9, 20_001);
        assert_eq!(loss.lost(), 4);
    }
}
