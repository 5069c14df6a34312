//! The ring of provided buffers that multishot receives fill: the kernel takes the next free
//! buffer for each datagram, and the pacer gives it back once the datagram is heard.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

/// One buffer: the kernel's header, the source address, the arrival stamp and the datagram.
pub(super) const BUFFER_LEN: usize = 2048;

pub(super) struct Buffers {
    /// The ring the kernel reads free buffers from (page-aligned, as it requires).
    entries: *mut BufRingEntry,
    layout: Layout,
    count: u16,
    memory: Box<[u8]>,
    tail: u16,
    /// Buffers given back since the tail was last published.
    unpublished: bool,
}

impl Buffers {
    /// `count` (a power of two) buffers registered with `ring` as group `group`.
    pub(super) fn register(ring: &IoUring, group: u16, count: u16) -> io::Result<Buffers> {
        assert!(count.is_power_of_two());
        let layout = Layout::from_size_align(usize::from(count) * size_of::<BufRingEntry>(), 4096)
            .map_err(io::Error::other)?;
        // SAFETY: the layout has a non-zero size; all-zero entries are valid.
        let entries = unsafe { alloc_zeroed(layout) }.cast::<BufRingEntry>();
        if entries.is_null() {
            return Err(io::ErrorKind::OutOfMemory.into());
        }
        let mut buffers = Buffers {
            entries,
            layout,
            count,
            memory: vec![0; usize::from(count) * BUFFER_LEN].into_boxed_slice(),
            tail: 0,
            unpublished: false,
        };
        // SAFETY: the entries stay allocated until `Buffers` is dropped, after the ring that
        // reads them (the pacer's `Ring` drops its io_uring first).
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(entries as u64, count, group, 0)?
        };
        for id in 0..count {
            buffers.give_back(id);
        }
        buffers.publish();
        Ok(buffers)
    }

    /// Buffer `id`, as the kernel filled it.
    pub(super) fn get(&mut self, id: u16) -> Option<&mut [u8]> {
        let start = usize::from(id).checked_mul(BUFFER_LEN)?;
        self.memory.get_mut(start..start + BUFFER_LEN)
    }

    /// Puts buffer `id` back at the ring's tail (seen by the kernel once published).
    pub(super) fn give_back(&mut self, id: u16) {
        if id >= self.count {
            return;
        }
        let index = usize::from(self.tail & (self.count - 1));
        let address = self.memory.as_ptr() as u64 + u64::from(id) * BUFFER_LEN as u64;
        // SAFETY: `index` is below the ring's `count` entries; the kernel reads only entries
        // before the published tail, and this one is after it.
        let entry = unsafe { &mut *self.entries.add(index) };
        entry.set_addr(address);
        entry.set_len(BUFFER_LEN as u32);
        entry.set_bid(id);
        self.tail = self.tail.wrapping_add(1);
        self.unpublished = true;
    }

    /// Lets the kernel see every buffer given back.
    pub(super) fn publish(&mut self) {
        if !std::mem::take(&mut self.unpublished) {
            return;
        }
        // SAFETY: the tail shares the first entry's reserved field, and the kernel reads it as
        // an atomic 16-bit value.
        let tail = unsafe { &*BufRingEntry::tail(self.entries).cast::<AtomicU16>() };
        tail.store(self.tail, Ordering::Release);
    }
}

impl Drop for Buffers {
    fn drop(&mut self) {
        // SAFETY: allocated in `register` with this layout.
        unsafe { dealloc(self.entries.cast(), self.layout) };
    }
}
