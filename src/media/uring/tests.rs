use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::*;

fn ring() -> Ring {
    Ring::new(64, 16)
        .expect("io_uring with multishot receives (Linux 6.0+, not refused by seccomp)")
}

/// Reaps until `done` says so or a second passes.
fn reap_until(ring: &mut Ring, mut done: impl FnMut(Receive, Heard<'_>) -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(1);
    let mut finished = false;
    while !finished && Instant::now() < until {
        ring.submit().unwrap();
        ring.reap(|receive, heard| finished |= done(receive, heard));
        std::thread::sleep(Duration::from_millis(2));
    }
    finished
}

#[test]
fn a_ring_hears_each_datagram_with_its_source_and_sends_what_is_queued() {
    let mut ring = ring();
    let ours = UdpSocket::bind("127.0.0.1:0").unwrap();
    crate::media::arrival::stamp_arrivals(&ours);
    let caller = UdpSocket::bind("127.0.0.1:0").unwrap();
    let rtp = Receive {
        slot: 7,
        rtcp: false,
    };
    ring.arm(ours.as_raw_fd(), rtp).unwrap();
    ring.submit().unwrap();
    for n in 0..3u8 {
        caller
            .send_to(&[n; 20], ours.local_addr().unwrap())
            .unwrap();
    }
    let mut heard = Vec::new();
    reap_until(&mut ring, |receive, what| {
        if let Heard::Datagram { data, from, at } = what {
            assert_eq!(receive, rtp);
            assert!(SystemTime::now().duration_since(at).unwrap() < Duration::from_secs(1));
            heard.push((data.to_vec(), from));
        }
        heard.len() == 3
    });
    let from = caller.local_addr().unwrap();
    let expected: Vec<_> = (0..3u8).map(|n| (vec![n; 20], from)).collect();
    assert_eq!(
        heard, expected,
        "every datagram, in order, still armed for more"
    );

    assert!(ring.send(ours.as_raw_fd(), b"frame", from));
    ring.submit().unwrap();
    caller
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut buf = [0u8; 16];
    let (len, sender) = caller.recv_from(&mut buf).unwrap();
    assert_eq!(
        (&buf[..len], sender),
        (&b"frame"[..], ours.local_addr().unwrap())
    );
}

#[test]
fn a_socket_closed_under_an_armed_receive_keeps_its_port_until_the_receive_ends() {
    let mut ring = ring();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = socket.local_addr().unwrap();
    let receive = Receive {
        slot: 1,
        rtcp: true,
    };
    ring.arm(socket.as_raw_fd(), receive).unwrap();
    ring.submit().unwrap();
    drop(socket);
    assert!(
        UdpSocket::bind(address).is_err(),
        "the kernel still holds the socket: why the pacer drains a stream before dropping it"
    );
    ring.cancel(receive).unwrap();
    let ended = reap_until(&mut ring, |r, heard| {
        r == receive && matches!(heard, Heard::Ended)
    });
    assert!(ended, "a cancelled receive is reported over");
    assert!(
        UdpSocket::bind(address).is_ok(),
        "and its port is free again"
    );
}

#[test]
fn a_full_send_queue_says_so_and_the_caller_sends_itself() {
    let mut ring = Ring::new(64, 2).expect("io_uring");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = socket.local_addr().unwrap();
    assert!(ring.send(socket.as_raw_fd(), b"a", target));
    assert!(ring.send(socket.as_raw_fd(), b"b", target));
    assert!(
        !ring.send(socket.as_raw_fd(), b"c", target),
        "no third slot"
    );
    assert!(
        !ring.send(socket.as_raw_fd(), &[0; 1501], target),
        "longer than an MTU"
    );
    ring.submit().unwrap();
    ring.reap(|_, _| {});
    assert!(
        ring.send(socket.as_raw_fd(), b"d", target),
        "slots come back once sent"
    );
}
