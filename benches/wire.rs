//! What one stream's visit costs in system calls, in the three shapes issue 16 asked about:
//! - today's: `recvmsg` until `EAGAIN` (the IVR's own `arrival::recv`), then `sendto`;
//! - `recvmmsg`: one call reads up to 4 datagrams, and coming back short says the socket is
//!   empty, so the `EAGAIN` call goes;
//! - io_uring: a phase's receives in one submission (again for the sockets that had a
//!   datagram, since UDP never sets `IORING_CQE_F_SOCK_NONEMPTY`), then its sends in another.
//!
//! Each of `STREAMS` sockets (default 500) holds one datagram when visited and sends one of
//! 172 bytes (a PCMU frame) to itself, for the next round to find: the I/O of a call whose
//! peer echoes, with kernel arrival stamps on as in the IVR. Sockets are visited in phases of
//! `PHASE` (default 100).
//!
//! Then what one wake-up of a pacer costs: a thread that sleeps to deadlines 1, 2 and 4 ms
//! apart, as the pacer does, and the CPU time it used per wake-up (RUSAGE_THREAD).
//! Then the same visit in the pacer's shape (phases, one thread sleeping between them) to a
//! peer thread that echoes, as SIPp does: its CPU per visit, the waking of the peer included.
//! Run: `cargo bench --bench wire` (prints figures, no pass or fail); with `VISIT_ONLY=1` it
//! prints only the two canaries (`visit_ns=...`, `peer_visit_ns=...`) the load benchmarks
//! divide by, and how late an idle pacer-shaped thread wakes (`wake_late_p99_us=...`): the
//! machine's own part of the pacing they report; `WAKE_ONLY=<seconds>` measures only that, for
//! as long as a pacing probe runs beside it.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::{opcode, types, IoUring};
use ivr::media::{arrival, pacer};

const FRAME: [u8; 172] = [0x80; 172];
const ROUNDS: usize = 400;
const BATCH: usize = 4;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Streams {
    sockets: Vec<UdpSocket>,
    addresses: Vec<SocketAddr>,
}

impl Streams {
    fn new(count: usize) -> Streams {
        let sockets: Vec<UdpSocket> = (0..count)
            .map(|_| {
                let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
                socket.set_nonblocking(true).unwrap();
                arrival::stamp_arrivals(&socket);
                socket
            })
            .collect();
        let addresses = sockets.iter().map(|s| s.local_addr().unwrap()).collect();
        Streams { sockets, addresses }
    }

    /// Empties every socket and puts one datagram in each.
    fn prime(&self) {
        let mut buf = [0u8; 2048];
        for (socket, address) in self.sockets.iter().zip(&self.addresses) {
            while socket.recv(&mut buf).is_ok() {}
            socket.send_to(&FRAME, address).unwrap();
        }
    }
}

/// Nanoseconds per stream visit and datagrams read per visit.
type Figures = (f64, f64);

fn per_visit(streams: &Streams, started: Instant, read: usize) -> Figures {
    let visits = (ROUNDS * streams.sockets.len()) as f64;
    (
        started.elapsed().as_nanos() as f64 / visits,
        read as f64 / visits,
    )
}

fn today(streams: &Streams) -> Figures {
    streams.prime();
    let mut buf = [0u8; 2048];
    let mut control = arrival::control_buffer();
    let mut read = 0;
    let started = Instant::now();
    for _ in 0..ROUNDS {
        for (socket, address) in streams.sockets.iter().zip(&streams.addresses) {
            loop {
                match arrival::recv(socket, &mut buf, &mut control) {
                    Ok(_) => read += 1,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
            }
            socket.send_to(&FRAME, address).unwrap();
        }
    }
    per_visit(streams, started, read)
}

/// One datagram's receive buffers, laid out for `recvmsg`, `recvmmsg` and io_uring alike.
struct Slot {
    buf: [u8; 2048],
    name: libc::sockaddr_storage,
    control: [u8; 64],
    iov: libc::iovec,
}

impl Slot {
    fn boxed(count: usize) -> Vec<Slot> {
        // SAFETY: every field is plain data, for which all zeroes is a valid value.
        (0..count).map(|_| unsafe { std::mem::zeroed() }).collect()
    }

    /// A header with every length at full capacity: the kernel shrinks them on each receive.
    fn header(&mut self) -> libc::msghdr {
        self.iov = libc::iovec {
            iov_base: self.buf.as_mut_ptr().cast(),
            iov_len: self.buf.len(),
        };
        // SAFETY: as above.
        let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
        header.msg_name = (&mut self.name as *mut libc::sockaddr_storage).cast();
        header.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
        header.msg_iov = &mut self.iov;
        header.msg_iovlen = 1;
        header.msg_control = self.control.as_mut_ptr().cast();
        header.msg_controllen = self.control.len();
        header
    }
}

fn recvmmsg(streams: &Streams) -> Figures {
    streams.prime();
    let mut slots = Slot::boxed(BATCH);
    // SAFETY: plain data.
    let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    let mut read = 0;
    let started = Instant::now();
    for _ in 0..ROUNDS {
        for (socket, address) in streams.sockets.iter().zip(&streams.addresses) {
            loop {
                for (header, slot) in headers.iter_mut().zip(&mut slots) {
                    header.msg_hdr = slot.header();
                }
                // SAFETY: each header points into its own live slot, at full capacity.
                let got = unsafe {
                    libc::recvmmsg(
                        socket.as_raw_fd(),
                        headers.as_mut_ptr(),
                        BATCH as u32,
                        libc::MSG_DONTWAIT,
                        std::ptr::null_mut(),
                    )
                };
                if got <= 0 {
                    break;
                }
                read += got as usize;
                if (got as usize) < BATCH {
                    break;
                }
            }
            socket.send_to(&FRAME, address).unwrap();
        }
    }
    per_visit(streams, started, read)
}

fn io_uring(streams: &Streams, phase: usize) -> std::io::Result<Figures> {
    streams.prime();
    let mut ring = IoUring::new((2 * phase).next_power_of_two() as u32)?;
    let mut slots = Slot::boxed(phase);
    // SAFETY: plain data.
    let mut headers: Vec<libc::msghdr> =
        (0..phase).map(|_| unsafe { std::mem::zeroed() }).collect();
    let targets: Vec<libc::sockaddr_in> = streams
        .addresses
        .iter()
        .map(|address| {
            let SocketAddr::V4(v4) = address else {
                unreachable!()
            };
            // SAFETY: plain data.
            let mut target: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            target.sin_family = libc::AF_INET as u16;
            target.sin_port = v4.port().to_be();
            target.sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
            target
        })
        .collect();
    let mut frame_iov = libc::iovec {
        iov_base: FRAME.as_ptr() as *mut libc::c_void,
        iov_len: FRAME.len(),
    };
    let sends: Vec<libc::msghdr> = targets
        .iter()
        .map(|target| {
            // SAFETY: plain data.
            let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
            header.msg_name = (target as *const libc::sockaddr_in as *mut libc::sockaddr_in).cast();
            header.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
            header.msg_iov = &mut frame_iov;
            header.msg_iovlen = 1;
            header
        })
        .collect();
    let mut pending = Vec::with_capacity(phase);
    let mut read = 0;
    let started = Instant::now();
    for _ in 0..ROUNDS {
        for first in (0..streams.sockets.len()).step_by(phase) {
            let members = first..(first + phase).min(streams.sockets.len());
            pending.clear();
            pending.extend(members.clone());
            while !pending.is_empty() {
                for &stream in &pending {
                    let slot = stream - first;
                    headers[slot] = slots[slot].header();
                    let fd = types::Fd(streams.sockets[stream].as_raw_fd());
                    let entry = opcode::RecvMsg::new(fd, &mut headers[slot])
                        .flags(libc::MSG_DONTWAIT as u32)
                        .build()
                        .user_data(stream as u64);
                    // SAFETY: the header and its buffers live until the completion is reaped below.
                    unsafe { ring.submission().push(&entry).unwrap() };
                }
                let submitted = pending.len();
                pending.clear();
                ring.submit_and_wait(submitted)?;
                for completion in ring.completion() {
                    if completion.result() >= 0 {
                        read += 1;
                        pending.push(completion.user_data() as usize);
                    }
                }
            }
            for stream in members.clone() {
                let fd = types::Fd(streams.sockets[stream].as_raw_fd());
                let entry = opcode::SendMsg::new(fd, &sends[stream])
                    .flags(libc::MSG_DONTWAIT as u32)
                    .build();
                // SAFETY: the header, its target and the frame outlive the submission.
                unsafe { ring.submission().push(&entry).unwrap() };
            }
            ring.submit_and_wait(members.len())?;
            for completion in ring.completion() {
                assert!(completion.result() > 0, "send: {}", completion.result());
            }
        }
    }
    Ok(per_visit(streams, started, read))
}

/// The pacer's own shape with nothing but its I/O: `STREAMS` sockets visited in five 4 ms
/// phases of a 20 ms frame (one thread sleeping to each phase), each visit reading until
/// `EAGAIN` and sending one frame to a peer thread that echoes it back, as SIPp's `-rtp_echo`
/// does on one socket for every call. The CPU this thread used per visit: the floor of a call's
/// frame, the peer's wake-ups and the pacer's own included.
fn with_peer(streams: &Streams, rounds: usize) -> Figures {
    let echo = UdpSocket::bind("127.0.0.1:0").unwrap();
    let echo_at = echo.local_addr().unwrap();
    // The peer stops on a flag, not on a datagram: one sent to a full receive buffer is lost,
    // and the canary hung on that once.
    echo.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let peer = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !stopped.load(Ordering::Relaxed) {
            if let Ok((len, from)) = echo.recv_from(&mut buf) {
                let _ = echo.send_to(&buf[..len], from);
            }
        }
    });
    streams.prime();
    let mut buf = [0u8; 2048];
    let mut control = arrival::control_buffer();
    let phase_len = streams.sockets.len().div_ceil(5);
    let mut read = 0;
    let before = thread_cpu();
    let mut deadline = Instant::now();
    for _ in 0..rounds {
        for phase in streams.sockets.chunks(phase_len) {
            deadline += Duration::from_millis(4);
            if let Some(wait) = deadline.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            for socket in phase {
                loop {
                    match arrival::recv(socket, &mut buf, &mut control) {
                        Ok(_) => read += 1,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => panic!("{e}"),
                    }
                }
                socket.send_to(&FRAME, echo_at).unwrap();
            }
        }
    }
    let cpu = thread_cpu() - before;
    stop.store(true, Ordering::Relaxed);
    peer.join().unwrap();
    let visits = (rounds * streams.sockets.len()) as f64;
    (cpu.as_nanos() as f64 / visits, read as f64 / visits)
}

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    use nix::sys::time::TimeValLike;
    let usage = getrusage(UsageWho::RUSAGE_THREAD).expect("getrusage");
    let micros = (usage.user_time() + usage.system_time()).num_microseconds();
    Duration::from_micros(micros as u64)
}

/// CPU per wake-up of a thread sleeping to deadlines `period` apart for two seconds.
fn wake_up_cost(period: Duration) -> Duration {
    let wake_ups = (Duration::from_secs(2).as_micros() / period.as_micros()) as u32;
    std::thread::spawn(move || {
        let before = thread_cpu();
        let mut deadline = Instant::now();
        for _ in 0..wake_ups {
            deadline += period;
            if let Some(wait) = deadline.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        (thread_cpu() - before) / wake_ups
    })
    .join()
    .unwrap()
}

/// How late a thread shaped like a pacer's (real-time priority where the process may, asleep
/// to deadlines 4 ms apart) wakes, over `period`: microseconds at p99 and at most. With no
/// work at all, this is the machine's own share of any call's pacing (a hypervisor that
/// pauses the virtual CPU, a busy neighbour), measured in the same run as the load.
fn wake_lateness(period: Duration) -> (u64, u64) {
    std::thread::spawn(move || {
        // As thread 1: thread 0 would log the pacers' own warning.
        if !pacer::ask_for_realtime(1) {
            eprintln!("wake lateness measured at normal priority (no CAP_SYS_NICE)");
        }
        let started = Instant::now();
        let mut deadline = started;
        let mut late = Vec::new();
        while deadline < started + period {
            deadline += Duration::from_millis(4);
            if let Some(wait) = deadline.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            late.push(
                Instant::now()
                    .saturating_duration_since(deadline)
                    .as_micros() as u64,
            );
        }
        late.sort_unstable();
        (late[late.len() * 99 / 100], late[late.len() - 1])
    })
    .join()
    .unwrap()
}

fn print_wake_lateness(period: Duration) {
    let (p99, max) = wake_lateness(period);
    println!("wake_late_p99_us={p99}");
    println!("wake_late_max_us={max}");
}

fn main() {
    if let Some(seconds) = std::env::var("WAKE_ONLY").ok().and_then(|v| v.parse().ok()) {
        // Beside a load's pacing probe, over the same seconds.
        return print_wake_lateness(Duration::from_secs(seconds));
    }
    let count = env("STREAMS", 500);
    let phase = env("PHASE", 100);
    let streams = Streams::new(count);
    if std::env::var_os("VISIT_ONLY").is_some() {
        // The canary of bench/sipp.sh and bench/run.sh: the floor of a call's frame (read until
        // EAGAIN, send one frame), the median of five runs, for the ratio of the same run.
        let mut runs: Vec<f64> = (0..5).map(|_| today(&streams).0).collect();
        runs.sort_by(f64::total_cmp);
        println!("visit_ns={:.0}", runs[2]);
        // The same visit in the pacer's shape, to a peer that echoes (two seconds).
        let (peer_ns, _) = with_peer(&streams, 100);
        println!("peer_visit_ns={peer_ns:.0}");
        // What the box does to a pacer's wake-ups with nothing to do, to read pacing beside.
        return print_wake_lateness(Duration::from_secs(5));
    }
    println!("{count} sockets, {ROUNDS} rounds, io_uring phases of {phase}; ns per stream visit (datagrams read per visit)");
    for run in 1..=3 {
        let (today_ns, today_read) = today(&streams);
        let (mmsg_ns, mmsg_read) = recvmmsg(&streams);
        let uring = match io_uring(&streams, phase) {
            Ok((ns, read)) => format!("{ns:.0} ({read:.2})"),
            Err(e) => format!("unavailable here: {e}"),
        };
        println!(
            "run {run}: recvmsg until EAGAIN + sendto {today_ns:.0} ({today_read:.2}); \
             recvmmsg + sendto {mmsg_ns:.0} ({mmsg_read:.2}); io_uring {uring}"
        );
    }
    let (peer_ns, peer_read) = with_peer(&streams, 100);
    println!(
        "the pacer's shape (4 ms phases), to a peer that echoes: {peer_ns:.0} ns of CPU per visit ({peer_read:.2})"
    );
    for period_ms in [1, 2, 4] {
        let cost = wake_up_cost(Duration::from_millis(period_ms));
        println!(
            "a thread waking every {period_ms} ms: {:.1} µs of CPU per wake-up",
            cost.as_nanos() as f64 / 1000.0
        );
    }
}
