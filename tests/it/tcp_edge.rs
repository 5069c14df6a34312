//! The TCP edge under abuse: silent and slowloris connections are closed, one address cannot
//! hold every connection, and pipelined requests are all answered (back-pressure, not drops).

use crate::support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use support::Ivr;

fn options(target: &str, local: SocketAddr, n: usize) -> String {
    format!(
        "OPTIONS sip:ivr@{target} SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bKedge{n}\r\nFrom: <sip:a@{local}>;tag=e{n}\r\nTo: <sip:ivr@{target}>\r\nCall-ID: edge-{n}@test\r\nCSeq: {n} OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Waits for the IVR to close `stream`: how long that took, or `None` if it stayed open.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 1024];
    while start.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return Some(start.elapsed()),
        }
    }
    None
}

/// One OPTIONS on a new connection from `stream`: the reply.
fn ask(stream: &mut TcpStream, ivr: &Ivr, n: usize) -> String {
    let local = stream.local_addr().unwrap();
    stream
        .write_all(options(&ivr.addr(), local, n).as_bytes())
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let got = stream.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..got]).into_owned()
}

#[test]
fn silent_and_stalled_connections_are_closed_while_callers_are_still_answered() {
    let ivr = Ivr::start("tcp-edge", &[]);
    let mut silent: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(ivr.addr()).unwrap())
        .collect();
    let mut stalled: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(ivr.addr()).unwrap())
        .collect();
    let local = stalled[0].local_addr().unwrap();
    let message = options(&ivr.addr(), local, 0).into_bytes();
    // Slowloris: the first bytes of a request, then one more byte a second, never the end.
    let trickle: Vec<TcpStream> = stalled.iter().map(|s| s.try_clone().unwrap()).collect();
    let trickler = thread::spawn(move || {
        let mut streams = trickle;
        for byte in &message[..9] {
            for s in &mut streams {
                let _ = s.write_all(std::slice::from_ref(byte));
            }
            thread::sleep(Duration::from_millis(1000));
        }
    });
    thread::sleep(Duration::from_millis(300));
    let mut fresh = TcpStream::connect(ivr.addr()).unwrap();
    assert!(
        ask(&mut fresh, &ivr, 1).starts_with("SIP/2.0 200"),
        "a caller is answered meanwhile"
    );

    for s in &mut stalled {
        let took = closed_within(s, Duration::from_secs(9));
        assert!(
            took.is_some(),
            "a request begun but never finished is cut off after 5 s"
        );
    }
    for s in &mut silent {
        let took = closed_within(s, Duration::from_secs(12));
        assert!(
            took.is_some(),
            "a connection that never sends a message is closed after 10 s"
        );
    }
    // One that spoke is kept (the idle limit is an hour by default).
    assert_eq!(closed_within(&mut fresh, Duration::from_secs(1)), None);
    assert!(ask(&mut fresh, &ivr, 2).starts_with("SIP/2.0 200"));
    let _ = trickler.join();
}

#[test]
fn one_address_cannot_hold_every_connection() {
    let ivr = Ivr::start(
        "tcp-per-source",
        &[("IVR_SIP__TCP_CONNECTIONS_PER_SOURCE", "5")],
    );
    let mut held = Vec::new();
    for n in 0..5 {
        let mut s = TcpStream::connect(ivr.addr()).unwrap();
        assert!(ask(&mut s, &ivr, n).starts_with("SIP/2.0 200"));
        held.push(s);
    }
    let mut sixth = TcpStream::connect(ivr.addr()).unwrap();
    let reply = ask(&mut sixth, &ivr, 6);
    assert!(
        reply.is_empty(),
        "the sixth connection from one address is refused: {reply}"
    );
    // Another address is not held back by the first one's connections.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut other = runtime
        .block_on(async {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
            socket
                .connect(ivr.addr().parse().unwrap())
                .await
                .unwrap()
                .into_std()
        })
        .unwrap();
    other.set_nonblocking(false).unwrap();
    assert!(ask(&mut other, &ivr, 7).starts_with("SIP/2.0 200"));
}

#[test]
fn pipelined_requests_are_all_answered() {
    let ivr = Ivr::start("tcp-pipeline", &[]);
    let stream = TcpStream::connect(ivr.addr()).unwrap();
    let local = stream.local_addr().unwrap();
    let burst: String = (0..500).map(|n| options(&ivr.addr(), local, n)).collect();
    let mut writer = stream.try_clone().unwrap();
    // The burst goes out whole while this thread reads: a reader that paused would be waited for.
    let sender = thread::spawn(move || writer.write_all(burst.as_bytes()).is_ok());
    let mut reader = stream;
    reader
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut text = String::new();
    let mut buf = [0u8; 65536];
    while text.matches("SIP/2.0 200").count() < 500 {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    assert!(sender.join().unwrap(), "the burst was taken");
    assert_eq!(
        text.matches("SIP/2.0 200").count(),
        500,
        "every pipelined OPTIONS answered"
    );
}

/// Out of file descriptors (EMFILE), accept fails at once for as long as connections wait in
/// the kernel's queue: an acceptor that asks again at once takes a core from every call.
#[test]
fn out_of_file_descriptors_the_acceptor_pauses_instead_of_spinning() {
    let ivr = Ivr::start_with_fd_limit("edge-emfile", &[], 64);
    // More connections than it has descriptors left; they wait in the accept queue.
    let held: Vec<TcpStream> = (0..80)
        .filter_map(|_| TcpStream::connect(ivr.addr()).ok())
        .collect();
    assert!(held.len() >= 60, "only {} connected", held.len());
    ivr.wait_for_log("SIP TCP accept failed", Duration::from_secs(5));
    let before = ivr.cpu_time();
    thread::sleep(Duration::from_secs(3));
    let used = ivr.cpu_time() - before;
    assert!(
        used < Duration::from_millis(600),
        "the server used {used:?} of CPU in 3 s while out of descriptors"
    );
    drop(held);
}
