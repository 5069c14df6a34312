//! One pacer thread's streams: each in a slot whose number names its receives in the thread's
//! ring, listed by phase. A stream that ends on a ring is kept (and so its ports) until the
//! kernel says both its receives are over: a socket closed under an armed receive would stay
//! bound inside the kernel, and its port could not be leased again.

use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use super::super::stream::{RtpStream, Scratch, Tick};
use super::super::uring::{Heard, Receive};
use super::super::wire::Wire;
use super::PHASES;

struct Slot {
    stream: RtpStream,
    /// Receives armed in the ring: RTP, RTCP.
    armed: [bool; 2],
    /// The stream is over; the slot waits for its receives to end.
    ending: bool,
}

#[derive(Default)]
pub(super) struct Table {
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    phases: [Vec<u32>; PHASES],
    /// Slots of streams that ended, waiting for their receives.
    ending: usize,
    /// Receives to stop until their streams' next visits (over the flood budget).
    to_stop: Vec<Receive>,
}

impl Table {
    pub(super) fn is_phase_empty(&self, phase: usize) -> bool {
        self.phases[phase].is_empty()
    }

    pub(super) fn streams(&self) -> usize {
        self.phases.iter().map(Vec::len).sum()
    }

    /// Slots still waiting for the kernel to let go of an ended stream's sockets.
    pub(super) fn ending(&self) -> usize {
        self.ending
    }

    pub(super) fn add(&mut self, phase: usize, stream: RtpStream) {
        let slot = Slot {
            stream,
            armed: [false; 2],
            ending: false,
        };
        let index = match self.free.pop() {
            Some(index) => {
                self.slots[index as usize] = Some(slot);
                index
            }
            None => {
                self.slots.push(Some(slot));
                (self.slots.len() - 1) as u32
            }
        };
        self.phases[phase].push(index);
    }

    /// Hands every datagram the ring received to its stream.
    pub(super) fn hear(&mut self, scratch: &mut Scratch) {
        let Wire::Ring(ring) = &mut scratch.wire else {
            return;
        };
        let now = Instant::now();
        ring.reap(|receive, heard| {
            let Some(Some(slot)) = self.slots.get_mut(receive.slot as usize) else {
                return;
            };
            match heard {
                Heard::Datagram { data, from, at } => {
                    if slot.ending {
                        return;
                    }
                    let stream = &mut slot.stream;
                    let heard = catch_unwind(AssertUnwindSafe(|| {
                        stream.hear_from_ring(receive.rtcp, data, from, at, now)
                    }));
                    if !matches!(heard, Ok(true)) {
                        self.to_stop.push(receive);
                    }
                }
                Heard::Ended => {
                    slot.armed[usize::from(receive.rtcp)] = false;
                    if slot.ending && slot.armed == [false; 2] {
                        self.free(receive.slot);
                        self.ending -= 1;
                    }
                }
            }
        });
        for receive in self.to_stop.drain(..) {
            let _ = ring.cancel(receive);
        }
    }

    /// Visits every stream of `phase`: its receives armed again where they ended, then its
    /// tick. Streams that end leave the phase.
    pub(super) fn serve(&mut self, phase: usize, load: &AtomicUsize, scratch: &mut Scratch) {
        let mut i = 0;
        while i < self.phases[phase].len() {
            let index = self.phases[phase][i];
            let Some(slot) = self.slots[index as usize].as_mut() else {
                self.phases[phase].swap_remove(i);
                continue;
            };
            if let Wire::Ring(ring) = &mut scratch.wire {
                for (rtcp, socket) in slot.stream.sockets().into_iter().enumerate() {
                    let receive = Receive {
                        slot: index,
                        rtcp: rtcp == 1,
                    };
                    if !slot.armed[rtcp] && ring.arm(socket.as_raw_fd(), receive).is_ok() {
                        slot.armed[rtcp] = true;
                    }
                }
            }
            let now = Instant::now();
            let tick = catch_unwind(AssertUnwindSafe(|| slot.stream.tick(now, scratch)));
            if matches!(tick, Ok(Tick::Continue)) {
                i += 1;
                continue;
            }
            if tick.is_err() {
                tracing::error!("an RTP stream panicked; that call's media is stopped");
            }
            load.fetch_sub(1, Ordering::Relaxed);
            self.phases[phase].swap_remove(i);
            self.end(index, &mut scratch.wire);
        }
    }

    /// Ends the stream in slot `index`: at once with nothing armed (always, on plain calls),
    /// else once its receives are cancelled.
    fn end(&mut self, index: u32, wire: &mut Wire) {
        let Some(slot) = self.slots[index as usize].as_mut() else {
            return;
        };
        let Wire::Ring(ring) = wire else {
            return self.free(index);
        };
        if slot.armed == [false; 2] {
            return self.free(index);
        }
        slot.ending = true;
        self.ending += 1;
        for (rtcp, armed) in slot.armed.into_iter().enumerate() {
            if armed {
                let _ = ring.cancel(Receive {
                    slot: index,
                    rtcp: rtcp == 1,
                });
            }
        }
    }

    /// Drops the stream in slot `index` (freeing its ports, then telling the call).
    fn free(&mut self, index: u32) {
        self.slots[index as usize] = None;
        self.free.push(index);
    }

    /// Hands the ring what the visits queued (sends, receives to arm or cancel).
    pub(super) fn submit(&mut self, scratch: &mut Scratch) {
        if let Wire::Ring(ring) = &mut scratch.wire {
            if let Err(e) = ring.submit() {
                tracing::debug!("io_uring submission failed: {e}");
            }
        }
    }
}
