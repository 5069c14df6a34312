//! Datagrams with the time the kernel took them in (SO_TIMESTAMPNS): the pacer reads a stream's
//! sockets once a frame, so the moment of reading says nothing of when a packet came, and
//! jitter and round trips need the moment it came.

use std::io;
use std::io::IoSliceMut;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, SystemTime};

use nix::sys::socket::{
    recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrLike, SockaddrStorage,
};

/// Asks the kernel to stamp every datagram `socket` receives. Where it cannot, `recv` falls
/// back to the time of reading.
pub fn stamp_arrivals(socket: &UdpSocket) {
    if let Err(e) = setsockopt(socket, sockopt::ReceiveTimestampns, &true) {
        tracing::debug!("no kernel receive timestamps: {e}");
    }
}

/// Room for one timestamp's control message; made once per pacer thread.
pub fn control_buffer() -> Vec<u8> {
    nix::cmsg_space!(nix::sys::time::TimeSpec)
}

/// One datagram into `buf`: its length, source and arrival.
pub fn recv(
    socket: &UdpSocket,
    buf: &mut [u8],
    control: &mut [u8],
) -> io::Result<(usize, SocketAddr, SystemTime)> {
    let mut iov = [IoSliceMut::new(buf)];
    let message = recvmsg::<SockaddrStorage>(
        socket.as_raw_fd(),
        &mut iov,
        Some(control),
        MsgFlags::empty(),
    )
    .map_err(io::Error::from)?;
    let mut arrival = None;
    if let Ok(messages) = message.cmsgs() {
        for cmsg in messages {
            if let ControlMessageOwned::ScmTimestampns(at) = cmsg {
                let since_epoch = Duration::new(at.tv_sec() as u64, at.tv_nsec() as u32);
                arrival = Some(SystemTime::UNIX_EPOCH + since_epoch);
            }
        }
    }
    let from = message
        .address
        .and_then(|a| to_socket_addr(&a))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "datagram without source"))?;
    Ok((message.bytes, from, arrival.unwrap_or_else(SystemTime::now)))
}

fn to_socket_addr(address: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddr::from((v4.ip(), v4.port())));
    }
    let v6 = address.as_sockaddr_in6()?;
    let _ = address.family()?;
    Some(SocketAddr::from((v6.ip(), v6.port())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_carry_the_kernels_arrival_time() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        stamp_arrivals(&receiver);
        // The kernel turns stamping on a moment later (a deferred static key); until then it
        // stamps at reading.
        std::thread::sleep(Duration::from_millis(100));
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sent_at = SystemTime::now();
        sender
            .send_to(b"hello", receiver.local_addr().unwrap())
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let mut buf = [0u8; 16];
        let mut control = control_buffer();
        let (len, from, arrival) = recv(&receiver, &mut buf, &mut control).unwrap();
        assert_eq!(
            (&buf[..len], from),
            (&b"hello"[..], sender.local_addr().unwrap())
        );
        // Stamped when it came, not 50 ms later when read.
        let after_send = arrival.duration_since(sent_at).unwrap();
        assert!(after_send < Duration::from_millis(25), "{after_send:?}");
    }
}
