//! How a pacer thread's streams reach the network: through the thread's io_uring, or, where the
//! kernel refuses one, a system call per datagram.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use super::uring::Ring;

pub enum Wire {
    Plain,
    /// Receives come from the ring's completions, not from each stream reading its sockets.
    Ring(Box<Ring>),
}

impl Wire {
    /// A ring when `wanted` and the kernel allows one, else plain calls (said once, at debug:
    /// the pacer logs the choice of its first thread).
    pub fn choose(wanted: bool) -> Wire {
        if !wanted {
            return Wire::Plain;
        }
        match Ring::new(RECEIVE_BUFFERS, SENDS_IN_FLIGHT) {
            Ok(ring) => Wire::Ring(Box::new(ring)),
            Err(e) => {
                tracing::debug!("no io_uring for RTP ({e}); plain system calls");
                Wire::Plain
            }
        }
    }

    /// Sends now, or queues for the ring's next submission.
    pub fn send(&mut self, socket: &UdpSocket, bytes: &[u8], target: SocketAddr) -> io::Result<()> {
        if let Wire::Ring(ring) = self {
            if ring.send(socket.as_raw_fd(), bytes, target) {
                return Ok(());
            }
        }
        socket.send_to(bytes, target).map(drop)
    }

    /// Whether streams read their own sockets on their visits.
    pub fn streams_read(&self) -> bool {
        matches!(self, Wire::Plain)
    }
}

/// Buffers for datagrams received and not yet heard: a phase of a thousand streams' frames,
/// RTCP included, twice over.
const RECEIVE_BUFFERS: u16 = 1024;
/// Datagrams queued for one submission: a phase of a busy thread's frames, relayed ones too.
const SENDS_IN_FLIGHT: u32 = 512;
