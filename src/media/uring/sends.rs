//! Datagrams waiting for the ring to send them: each is copied into a slot of its own, whose
//! header, address and bytes stay put until the kernel says the send is done.

use std::net::SocketAddr;

use nix::sys::socket::{SockaddrLike, SockaddrStorage};

/// The largest datagram the pacer sends (an MTU).
const SLOT_BYTES: usize = 1500;

struct Slot {
    header: libc::msghdr,
    iov: libc::iovec,
    target: SockaddrStorage,
    bytes: [u8; SLOT_BYTES],
    busy: bool,
}

pub(super) struct Sends {
    slots: Box<[Slot]>,
    free: Vec<u32>,
}

impl Sends {
    pub(super) fn new(count: u32) -> Sends {
        let slots = (0..count)
            .map(|_| Slot {
                // SAFETY: both are plain C structs, valid all-zero; they are filled before use.
                header: unsafe { std::mem::zeroed() },
                iov: unsafe { std::mem::zeroed() },
                target: SockaddrStorage::from(SocketAddr::from(([0, 0, 0, 0], 0))),
                bytes: [0; SLOT_BYTES],
                busy: false,
            })
            .collect();
        Sends {
            slots,
            free: (0..count).rev().collect(),
        }
    }

    /// Copies `bytes` for `target` into a free slot: its index and the header to send, or
    /// `None` when every slot is taken or the datagram is too long.
    pub(super) fn fill(
        &mut self,
        bytes: &[u8],
        target: SocketAddr,
    ) -> Option<(u32, *const libc::msghdr)> {
        if bytes.len() > SLOT_BYTES {
            return None;
        }
        let index = self.free.pop()?;
        let slot = &mut self.slots[index as usize];
        slot.busy = true;
        slot.bytes[..bytes.len()].copy_from_slice(bytes);
        slot.target = SockaddrStorage::from(target);
        slot.iov = libc::iovec {
            iov_base: slot.bytes.as_mut_ptr().cast(),
            iov_len: bytes.len(),
        };
        slot.header.msg_name = (&mut slot.target as *mut SockaddrStorage).cast();
        slot.header.msg_namelen = slot.target.len();
        slot.header.msg_iov = &mut slot.iov;
        slot.header.msg_iovlen = 1;
        Some((index, &slot.header))
    }

    /// The kernel is done with slot `index`.
    pub(super) fn release(&mut self, index: u32) {
        if let Some(slot) = self.slots.get_mut(index as usize) {
            if std::mem::take(&mut slot.busy) {
                self.free.push(index);
            }
        }
    }

    pub(super) fn in_flight(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}
