//! The RTP port pool. A lease binds the even RTP port and the RTCP port above it, and gives both
//! back when dropped, so every way a call can end (BYE, CANCEL, timeout, error, panic) frees them.
//! The sockets are plain non-blocking ones: the pacer threads poll them on their own schedule.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct PortPool {
    inner: Arc<PoolInner>,
}

#[derive(Debug)]
struct PoolInner {
    ip: IpAddr,
    free: Mutex<VecDeque<u16>>,
    size: usize,
}

/// A bound RTP socket and its RTCP twin, on loan from the pool.
#[derive(Debug)]
pub struct PortLease {
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
    /// Declared last: fields drop in order, so both sockets are closed before the port is free.
    ticket: Ticket,
}

impl PortLease {
    pub fn port(&self) -> u16 {
        self.ticket.port
    }
}

#[derive(Debug)]
struct Ticket {
    port: u16,
    pool: Arc<PoolInner>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Ok(mut free) = self.pool.free.lock() {
            free.push_back(self.port);
        }
    }
}

impl PortPool {
    /// Even ports from `first` to `last` (inclusive), each with `port + 1` reserved for RTCP.
    pub fn new(ip: IpAddr, first: u16, last: u16) -> PortPool {
        let free: VecDeque<u16> = (first..last).step_by(2).filter(|p| p % 2 == 0).collect();
        let size = free.len();
        PortPool {
            inner: Arc::new(PoolInner {
                ip,
                free: Mutex::new(free),
                size,
            }),
        }
    }

    pub fn available(&self) -> usize {
        self.inner.free.lock().map(|f| f.len()).unwrap_or(0)
    }

    pub fn capacity(&self) -> usize {
        self.inner.size
    }

    /// Binds the next free pair; ports another program holds are skipped and kept for later.
    pub fn lease(&self) -> Option<PortLease> {
        for _ in 0..self.inner.size {
            let port = self.inner.free.lock().ok()?.pop_front()?;
            match self.bind_pair(port) {
                Some((rtp, rtcp)) => {
                    return Some(PortLease {
                        rtp,
                        rtcp,
                        ticket: Ticket {
                            port,
                            pool: self.inner.clone(),
                        },
                    })
                }
                None => {
                    tracing::warn!(port, "RTP port pair in use by another process, skipped");
                    self.inner.free.lock().ok()?.push_back(port);
                }
            }
        }
        None
    }

    fn bind_pair(&self, port: u16) -> Option<(UdpSocket, UdpSocket)> {
        let bind = |p: u16| {
            let socket = UdpSocket::bind(SocketAddr::new(self.inner.ip, p)).ok()?;
            socket.set_nonblocking(true).ok()?;
            super::arrival::stamp_arrivals(&socket);
            Some(socket)
        };
        Some((bind(port)?, bind(port + 1)?))
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn lease_returns_ports_on_drop_and_pool_runs_dry() {
        let pool = crate::testing::free_port_pool(2);
        assert_eq!(pool.capacity(), 2);
        let a = pool.lease().expect("first pair");
        let b = pool.lease().expect("second pair");
        assert_eq!(a.port() % 2, 0);
        assert!(pool.lease().is_none(), "pool of two is exhausted");
        drop(a);
        assert_eq!(pool.available(), 1);
        let c = pool.lease().expect("freed pair is reused");
        drop((b, c));
        assert_eq!(pool.available(), 2);
    }
}
