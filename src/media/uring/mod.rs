//! io_uring for a pacer thread. Every stream's sockets keep one multishot receive armed on a
//! ring of provided buffers, so the kernel copies what callers send as the thread wakes, with
//! no system call per socket (before, each visit read until `EAGAIN`: two calls for one echoed
//! frame); a phase's sends reach the kernel in one submission. Where io_uring is refused (old
//! kernels, container seccomp profiles), `Ring::new` fails and the pacer makes the plain calls.

mod buffers;
mod datagram;
mod sends;

use std::io;
use std::mem::ManuallyDrop;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, SystemTime};

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use buffers::{Buffers, BUFFER_LEN};
use datagram::{CONTROL_LEN, NAME_LEN};

/// Entries of the submission queue: a phase of a busy thread's sends (it is flushed when full).
const SUBMISSIONS: u32 = 1024;
/// Calls a reap may make to run deferred receives (each runs about twenty sockets' worth).
const MAX_RUNS: usize = 256;
/// The buffer group of the pacer's receives.
const GROUP: u16 = 1;
const KIND_SHIFT: u32 = 62;
const RECEIVE: u64 = 0;
const SEND: u64 = 1;
const CANCEL: u64 = 2;

/// Names one stream's receive on one of its sockets in the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receive {
    pub slot: u32,
    pub rtcp: bool,
}

impl Receive {
    fn user_data(self) -> u64 {
        (RECEIVE << KIND_SHIFT) | (u64::from(self.rtcp) << 32) | u64::from(self.slot)
    }

    fn from_user_data(data: u64) -> Receive {
        Receive {
            slot: data as u32,
            rtcp: (data >> 32) & 1 == 1,
        }
    }
}

/// What a reaped completion says of a receive.
pub enum Heard<'a> {
    /// A datagram (in a buffer of ours, mutable for SRTP's in-place decryption).
    Datagram {
        data: &'a mut [u8],
        from: SocketAddr,
        at: SystemTime,
    },
    /// The receive is over (cancelled, out of buffers, or failed): arm it again to hear more.
    Ended,
}

pub struct Ring {
    ring: IoUring,
    /// Given back on drop only when the kernel holds no receive or send in them.
    buffers: ManuallyDrop<Buffers>,
    sends: ManuallyDrop<sends::Sends>,
    /// What multishot receives read of a `msghdr`: the name and control lengths.
    receive: Box<libc::msghdr>,
    /// Receives armed and not yet reported ended.
    armed: usize,
}

impl Ring {
    /// A ring with `buffers` receive buffers (a power of two) and room for `sends` datagrams
    /// in flight, proven to receive a datagram before it is trusted with calls.
    pub fn new(buffers: u16, sends: u32) -> io::Result<Ring> {
        let ring = IoUring::<squeue::Entry, cqueue::Entry>::builder()
            .setup_single_issuer()
            // Completions are made only when the thread asks (it wakes every phase): any
            // other mode let each datagram cut the thread's sleep short (14,000 context
            // switches a second at 500 calls, against 900 with plain calls).
            .setup_defer_taskrun()
            .setup_taskrun_flag()
            .setup_cqsize((4 * u32::from(buffers)).max(2 * SUBMISSIONS))
            .build(SUBMISSIONS)?;
        let buffers = Buffers::register(&ring, GROUP, buffers)?;
        // SAFETY: a plain C struct, valid all-zero.
        let mut receive: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
        receive.msg_namelen = NAME_LEN as u32;
        receive.msg_controllen = CONTROL_LEN;
        let mut ring = Ring {
            ring,
            buffers: ManuallyDrop::new(buffers),
            sends: ManuallyDrop::new(sends::Sends::new(sends)),
            receive,
            armed: 0,
        };
        ring.prove()?;
        Ok(ring)
    }

    /// Multishot receives came with Linux 6.0: a kernel that takes the ring but not them is
    /// found here, on a loopback socket talking to itself, not on a caller's stream.
    fn prove(&mut self) -> io::Result<()> {
        let socket = UdpSocket::bind((std::net::Ipv4Addr::LOCALHOST, 0))?;
        let probe = Receive {
            slot: u32::MAX,
            rtcp: false,
        };
        self.arm(socket.as_raw_fd(), probe)?;
        self.submit()?;
        socket.send_to(b"probe", socket.local_addr()?)?;
        let mut heard = false;
        for _ in 0..100 {
            self.submit()?;
            self.ring.submitter().submit_and_wait(0)?;
            self.reap(|receive, what| {
                heard |= receive == probe
                    && matches!(what, Heard::Datagram { data, .. } if data == b"probe")
            });
            if heard {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.cancel(probe)?;
        for _ in 0..100 {
            self.submit()?;
            self.reap(|_, _| {});
            if self.armed == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if heard && self.armed == 0 {
            Ok(())
        } else {
            Err(io::Error::other("io_uring took no multishot receive"))
        }
    }

    fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        if self.ring.submission().is_full() {
            self.submit()?;
        }
        // SAFETY: every entry points at memory this `Ring` owns and keeps until its completion
        // is reaped (the receive template, a send slot) or at nothing (a cancel).
        unsafe { self.ring.submission().push(entry) }.map_err(io::Error::other)
    }

    /// Starts hearing every datagram `fd` receives, as `receive`.
    pub fn arm(&mut self, fd: RawFd, receive: Receive) -> io::Result<()> {
        let entry = opcode::RecvMsgMulti::new(types::Fd(fd), &*self.receive, GROUP)
            .build()
            .user_data(receive.user_data());
        self.push(&entry)?;
        self.armed += 1;
        Ok(())
    }

    /// Stops `receive`; it is over when `reap` reports it `Ended`.
    pub fn cancel(&mut self, receive: Receive) -> io::Result<()> {
        let entry = opcode::AsyncCancel::new(receive.user_data())
            .build()
            .user_data(CANCEL << KIND_SHIFT);
        self.push(&entry)
    }

    /// Queues `bytes` for `target` from `fd`, sent at the next `submit`: false when there is no
    /// room (the caller sends it itself).
    pub fn send(&mut self, fd: RawFd, bytes: &[u8], target: SocketAddr) -> bool {
        let Some((index, header)) = self.sends.fill(bytes, target) else {
            return false;
        };
        let entry = opcode::SendMsg::new(types::Fd(fd), header)
            .build()
            .user_data((SEND << KIND_SHIFT) | u64::from(index));
        if self.push(&entry).is_err() {
            self.sends.release(index);
            return false;
        }
        true
    }

    /// Hands the kernel everything queued, in one call, and runs the completions waiting.
    pub fn submit(&mut self) -> io::Result<()> {
        self.ring.submitter().submit_and_wait(0).map(drop)
    }

    /// Every completion waiting: sends are settled here, receives told to `heard`.
    pub fn reap(&mut self, mut heard: impl FnMut(Receive, Heard<'_>)) {
        for _ in 0..MAX_RUNS {
            self.reap_posted(&mut heard);
            // The kernel runs a few sockets' deferred receives per call and says whether
            // more wait.
            if !self.ring.submission().taskrun()
                || self.ring.submitter().submit_and_wait(0).is_err()
            {
                break;
            }
        }
        self.buffers.publish();
    }

    fn reap_posted(&mut self, heard: &mut impl FnMut(Receive, Heard<'_>)) {
        let mut ended = 0;
        for completion in self.ring.completion() {
            let data = completion.user_data();
            match data >> KIND_SHIFT {
                SEND => {
                    self.sends.release(data as u32);
                    if completion.result() < 0 {
                        let e = io::Error::from_raw_os_error(-completion.result());
                        tracing::trace!("RTP send failed: {e}");
                    }
                }
                RECEIVE => {
                    let receive = Receive::from_user_data(data);
                    if let Some(id) = cqueue::buffer_select(completion.flags()) {
                        if completion.result() >= 0 {
                            if let Some(buffer) = self.buffers.get(id) {
                                hear(receive, buffer, heard);
                            }
                        }
                        self.buffers.give_back(id);
                    }
                    if !cqueue::more(completion.flags()) {
                        ended += 1;
                        heard(receive, Heard::Ended);
                    }
                }
                _ => {}
            }
        }
        self.armed = self.armed.saturating_sub(ended);
    }
}

fn hear(receive: Receive, buffer: &mut [u8], heard: &mut impl FnMut(Receive, Heard<'_>)) {
    debug_assert_eq!(buffer.len(), BUFFER_LEN);
    let Some(found) = datagram::parse(buffer) else {
        return;
    };
    let at = found.at.unwrap_or_else(SystemTime::now);
    let data = &mut buffer[found.payload];
    heard(
        receive,
        Heard::Datagram {
            data,
            from: found.from,
            at,
        },
    );
}

impl Drop for Ring {
    fn drop(&mut self) {
        // With a receive armed or a send in flight, the kernel may still write to or read
        // them as the ring closes: they are never given back then (only at exit, mid-call).
        if self.armed == 0 && self.sends.in_flight() == 0 {
            let _ = self.ring.submitter().unregister_buf_ring(GROUP);
            // SAFETY: dropped once, here, and never used again.
            unsafe {
                ManuallyDrop::drop(&mut self.buffers);
                ManuallyDrop::drop(&mut self.sends);
            }
        }
    }
}

#[cfg(test)]
mod tests;
