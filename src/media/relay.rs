//! Packet-for-packet relay between the two streams of a bridged call. Each stream puts what
//! its own peer sent (already latched, authenticated and decrypted) into the other's inbox,
//! and on its next visit the other sends it on under its own SSRC, sequence and timestamp
//! numbering (and its own SRTP keys). The inbox is a fixed ring of slots: relaying allocates
//! nothing per packet, and a stalled side loses its oldest packets instead of growing.

use std::sync::{Arc, Mutex};

/// The largest payload relayed (an Opus frame is at most 1275 bytes).
pub const MAX_PAYLOAD: usize = 1280;
/// About 300 ms of 20 ms packets: far more than one pacer visit gathers.
const SLOTS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Audio,
    /// An RFC 4733 telephone-event: keys pass through to the other side.
    Event,
}

/// The header fields of a relayed packet the sender needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub marker: bool,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

struct Slot {
    header: Header,
    len: usize,
    payload: [u8; MAX_PAYLOAD],
}

struct Ring {
    slots: Box<[Slot]>,
    head: usize,
    len: usize,
    overwritten: u64,
}

/// One direction of the relay.
pub struct Inbox {
    ring: Mutex<Ring>,
}

impl Inbox {
    fn new() -> Inbox {
        let empty = || Slot {
            header: Header {
                kind: Kind::Audio,
                marker: false,
                seq: 0,
                timestamp: 0,
                ssrc: 0,
            },
            len: 0,
            payload: [0; MAX_PAYLOAD],
        };
        Inbox {
            ring: Mutex::new(Ring {
                slots: (0..SLOTS).map(|_| empty()).collect(),
                head: 0,
                len: 0,
                overwritten: 0,
            }),
        }
    }

    /// Queues a packet; when full, the oldest is dropped. A payload too large is refused.
    pub fn push(&self, header: Header, payload: &[u8]) -> bool {
        if payload.len() > MAX_PAYLOAD {
            return false;
        }
        let Ok(mut ring) = self.ring.lock() else {
            return false;
        };
        if ring.len == SLOTS {
            ring.head = (ring.head + 1) % SLOTS;
            ring.len -= 1;
            ring.overwritten += 1;
        }
        let at = (ring.head + ring.len) % SLOTS;
        let slot = &mut ring.slots[at];
        slot.header = header;
        slot.len = payload.len();
        slot.payload[..payload.len()].copy_from_slice(payload);
        ring.len += 1;
        true
    }

    /// The oldest packet, its payload copied into `out`.
    pub fn pop_into(&self, out: &mut [u8]) -> Option<(Header, usize)> {
        let mut ring = self.ring.lock().ok()?;
        if ring.len == 0 {
            return None;
        }
        let head = ring.head;
        ring.head = (head + 1) % SLOTS;
        ring.len -= 1;
        let slot = &ring.slots[head];
        let len = slot.len.min(out.len());
        out[..len].copy_from_slice(&slot.payload[..len]);
        Some((slot.header, len))
    }

    /// Packets dropped because the sending side did not keep up (in the stream's end line).
    pub fn overwritten(&self) -> u64 {
        self.ring.lock().map_or(0, |r| r.overwritten)
    }
}

/// One stream's side of a relay: where its peer's packets go, and what it must send.
pub struct RelayEnd {
    pub heard: Arc<Inbox>,
    pub to_send: Arc<Inbox>,
}

impl std::fmt::Debug for RelayEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RelayEnd")
    }
}

/// The two ends of one bridge: give one to each stream.
pub fn pair() -> (RelayEnd, RelayEnd) {
    let (a, b) = (Arc::new(Inbox::new()), Arc::new(Inbox::new()));
    (
        RelayEnd {
            heard: a.clone(),
            to_send: b.clone(),
        },
        RelayEnd {
            heard: b,
            to_send: a,
        },
    )
}

/// Maps a relayed source's sequence numbers and timestamps onto the sending stream's own, so
/// its peer sees one continuous stream: offsets fixed at the first packet of each source,
/// which keeps gaps (losses) and the spacing of timestamps as they were.
#[derive(Debug, Default)]
pub struct Restamp {
    source: Option<u32>,
    seq_offset: u16,
    timestamp_offset: u32,
}

impl Restamp {
    /// The packet's sequence number, timestamp and marker in our numbering, given the next
    /// sequence number and the RTP clock of the sending stream.
    pub fn apply(&mut self, header: &Header, next_seq: u16, clock: u32) -> (u16, u32, bool) {
        let new_source = self.source != Some(header.ssrc);
        if new_source {
            self.source = Some(header.ssrc);
            self.seq_offset = next_seq.wrapping_sub(header.seq);
            self.timestamp_offset = clock.wrapping_sub(header.timestamp);
        }
        (
            header.seq.wrapping_add(self.seq_offset),
            header.timestamp.wrapping_add(self.timestamp_offset),
            header.marker || new_source,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(seq: u16, timestamp: u32, ssrc: u32) -> Header {
        Header {
            kind: Kind::Audio,
            marker: false,
            seq,
            timestamp,
            ssrc,
        }
    }

    #[test]
    fn packets_cross_in_order_and_a_full_inbox_drops_the_oldest() {
        let (caller, agent) = pair();
        for n in 0..(SLOTS as u16 + 3) {
            assert!(caller.heard.push(header(n, 0, 1), &[n as u8; 160]));
        }
        let mut out = [0u8; MAX_PAYLOAD];
        let first = agent.to_send.pop_into(&mut out).unwrap();
        assert_eq!(first.0.seq, 3, "the three oldest were dropped");
        assert_eq!(first.1, 160);
        assert_eq!(out[0], 3);
        assert_eq!(agent.to_send.overwritten(), 3);
        let rest = std::iter::from_fn(|| agent.to_send.pop_into(&mut out)).count();
        assert_eq!(rest, SLOTS - 1);
        assert!(
            caller.to_send.pop_into(&mut out).is_none(),
            "one direction only"
        );
    }

    #[test]
    fn an_oversized_payload_is_refused() {
        let (caller, _) = pair();
        assert!(!caller.heard.push(header(0, 0, 1), &[0; MAX_PAYLOAD + 1]));
    }

    #[test]
    fn restamping_continues_our_numbering_and_keeps_gaps_and_wraps() {
        let mut restamp = Restamp::default();
        let (seq, ts, marker) = restamp.apply(&header(65_535, 4_294_967_200, 9), 100, 5000);
        assert_eq!((seq, ts, marker), (100, 5000, true));
        let (seq, ts, marker) =
            restamp.apply(&header(1, 4_294_967_200u32.wrapping_add(320), 9), 101, 0);
        assert_eq!(
            (seq, ts, marker),
            (102, 5320, false),
            "one lost packet stays a gap"
        );
        // Another source (the 200 after early media came from elsewhere) starts afresh.
        let (seq, ts, marker) = restamp.apply(&header(7, 77, 10), 103, 9000);
        assert_eq!((seq, ts, marker), (103, 9000, true));
    }
}
