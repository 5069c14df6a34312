//! The media clock. A few threads (one per core) drive every call's stream: each new stream
//! gets the least busy of the five 4 ms phases of the 20 ms frame, so N calls make N/5 sends
//! a phase instead of all falling due together (calls that arrive at a steady 50 a second
//! would otherwise all share one phase), and one wake-up serves a whole phase. Phases are not
//! shorter because a wake-up is dear: about 20 µs of CPU on a virtual machine, more than a
//! dozen streams' sends and receives, while 200 streams' sends take a few hundred µs. The
//! threads sleep to absolute deadlines on one epoch; no call has a task or a timer.
//! Like Asterisk's and FreeSWITCH's timing threads they ask for real-time priority: on a busy
//! host an ordinary thread waking from sleep can wait milliseconds for a core, and every call
//! on that thread hears it. With `rtp.io_uring` (off by default: BENCHMARKS.md, issue 32) each
//! thread does its I/O through an io_uring where the kernel allows one (`super::uring`):
//! receives armed once per stream, a phase's sends submitted in one call.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use thread_priority::{
    set_thread_priority_and_policy, thread_native_id, RealtimeThreadSchedulePolicy, ThreadPriority,
    ThreadPriorityValue, ThreadSchedulePolicy,
};

use super::codec::FRAME_MS;
use super::stream::{RtpStream, Scratch};
use super::wire::Wire;
use table::Table;

mod table;

/// The length of one phase: each stream is visited every `PHASES` of them, once a frame.
const PHASE_MS: u64 = 4;
const PHASES: usize = (FRAME_MS as u64 / PHASE_MS) as usize;
/// How often a thread adds its streams' packet counts to the shared metrics.
const PUBLISH_EVERY: Duration = Duration::from_secs(1);
/// SCHED_FIFO priority: above every ordinary thread, below the kernel's own real-time work.
const REALTIME_PRIORITY: u8 = 10;

/// Hands streams to the pacer threads; cheap to clone.
#[derive(Clone)]
pub struct Pacer {
    lanes: Arc<[Lane]>,
}

struct Lane {
    joins: Sender<(usize, RtpStream)>,
    /// Streams per phase, for choosing the quietest one.
    load: Arc<[AtomicUsize; PHASES]>,
}

impl Pacer {
    /// Starts `threads` pacer threads, at real-time priority if `realtime` and the process may,
    /// each on an io_uring if `io_uring` and the kernel allows. They stop once every `Pacer`
    /// clone and stream is gone.
    pub fn start(threads: usize, realtime: bool, io_uring: bool) -> std::io::Result<Pacer> {
        let epoch = Instant::now();
        let mut lanes = Vec::new();
        for n in 0..threads.max(1) {
            let (joins, joined) = channel();
            let load: Arc<[AtomicUsize; PHASES]> = Arc::new(Default::default());
            let counts = load.clone();
            thread::Builder::new()
                .name(format!("rtp-pacer-{n}"))
                .spawn(move || {
                    if realtime {
                        let _ = ask_for_realtime(n);
                    }
                    let wire = Wire::choose(io_uring);
                    if n == 0 {
                        let io = if wire.streams_read() {
                            "system calls"
                        } else {
                            "io_uring"
                        };
                        tracing::info!(threads, "RTP pacers on {io}");
                    }
                    run(epoch, joined, &counts, Scratch::new(wire))
                })?;
            lanes.push(Lane { joins, load });
        }
        Ok(Pacer {
            lanes: lanes.into(),
        })
    }

    /// Starts sending for `stream` on the quietest phase of the quietest thread. (Filling one
    /// thread before waking the next saved wake-ups but cost more CPU and pacing than it saved:
    /// BENCHMARKS.md, issue 32.)
    pub fn add(&self, stream: RtpStream) {
        let load = |l: usize, p: usize| self.lanes[l].load[p].load(Ordering::Relaxed);
        let (lane, phase) = choose(self.lanes.len(), load);
        let lane = &self.lanes[lane];
        lane.load[phase].fetch_add(1, Ordering::Relaxed);
        if lane.joins.send((phase, stream)).is_err() {
            lane.load[phase].fetch_sub(1, Ordering::Relaxed);
            tracing::error!("the RTP pacer thread is gone; the call gets no media");
        }
    }
}

#[cfg(test)]
impl Pacer {
    /// A PCMU call with telephone-event whose SDP named `remote` (not yet confirmed by an ACK):
    /// its command and event channels.
    pub(super) fn start_test_call(
        &self,
        lease: super::ports::PortLease,
        remote: Option<std::net::SocketAddr>,
        library: Arc<super::prompt::PromptLibrary>,
    ) -> (
        tokio::sync::mpsc::UnboundedSender<super::stream::MediaCommand>,
        tokio::sync::mpsc::UnboundedReceiver<super::stream::MediaEvent>,
    ) {
        let (commands, commands_rx) = tokio::sync::mpsc::unbounded_channel();
        let (events_tx, events) = tokio::sync::mpsc::unbounded_channel();
        let params = super::stream::MediaParams {
            codec: super::codec::Codec::Pcmu,
            payload_type: 0,
            telephone_event: Some(101),
            remote,
            send: true,
            peer_sends: true,
            inband: false,
            srtp: None,
            rtcp_mux: false,
            remote_rtcp: None,
        };
        self.add(RtpStream::new(
            "test".into(),
            lease,
            params,
            library,
            super::stream::Liveness {
                timeout: Duration::from_secs(60),
                rtcp_counts: false,
            },
            commands_rx,
            events_tx,
        ));
        (commands, events)
    }
}

/// Puts the calling thread at the pacers' real-time priority where the process may; whether it
/// did. (Public for the wire bench's idle thread of the same shape.)
pub fn ask_for_realtime(thread: usize) -> bool {
    let policy = ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo);
    let set = ThreadPriorityValue::try_from(REALTIME_PRIORITY)
        .map_err(|e| format!("{e:?}"))
        .and_then(|value| {
            let priority = ThreadPriority::Crossplatform(value);
            set_thread_priority_and_policy(thread_native_id(), priority, policy)
                .map_err(|e| format!("{e:?}"))
        });
    match &set {
        Ok(()) => tracing::debug!(thread, "RTP pacer at SCHED_FIFO {REALTIME_PRIORITY}"),
        Err(e) if thread == 0 => tracing::warn!(
            "RTP pacers at normal priority ({e}): grant CAP_SYS_NICE or LimitRTPRIO=\
             {REALTIME_PRIORITY}, or set rtp.realtime = false to silence this"
        ),
        Err(_) => {}
    }
    set.is_ok()
}

/// The thread and phase a new stream goes to, given each thread's streams per phase
/// (`load(thread, phase)`): the quietest phase of all.
fn choose(threads: usize, load: impl Fn(usize, usize) -> usize) -> (usize, usize) {
    (0..threads)
        .flat_map(|l| (0..PHASES).map(move |p| (l, p)))
        .min_by_key(|&(l, p)| load(l, p))
        .unwrap_or((0, 0))
}

/// When slot `slot` (one phase long, counted from the epoch) begins.
fn slot_start(epoch: Instant, slot: u64) -> Instant {
    epoch + Duration::from_millis(slot * PHASE_MS)
}

/// The slot `now` falls in.
fn slot_at(epoch: Instant, now: Instant) -> u64 {
    now.saturating_duration_since(epoch).as_millis() as u64 / PHASE_MS
}

/// One pacer thread: its streams sorted by phase, visited on that phase of every frame.
fn run(
    epoch: Instant,
    joined: Receiver<(usize, RtpStream)>,
    load: &[AtomicUsize; PHASES],
    scratch: Scratch,
) {
    let mut table = Table::default();
    let mut scratch = Box::new(scratch);
    let mut stalls = Stalls::default();
    // The first slot not yet served.
    let mut next_slot = 0u64;
    let mut published = Instant::now();
    loop {
        while let Ok(join) = joined.try_recv() {
            place(join, epoch, next_slot, &mut table);
        }
        let Some(slot) =
            (next_slot..next_slot + PHASES as u64).find(|&s| !table.is_phase_empty(phase_of(s)))
        else {
            if table.ending() > 0 {
                // Ended streams wait for the kernel to let go of their sockets.
                table.submit(&mut scratch);
                thread::sleep(Duration::from_millis(PHASE_MS));
                table.hear(&mut scratch);
                continue;
            }
            // Idle: sleep until a stream comes, and start the clock again from now.
            scratch.unpublished.publish();
            let Ok(join) = joined.recv() else { return };
            next_slot = next_slot.max(slot_at(epoch, Instant::now()));
            place(join, epoch, next_slot, &mut table);
            continue;
        };
        let deadline = slot_start(epoch, slot);
        let now = Instant::now();
        if deadline > now {
            thread::sleep(deadline - now);
        }
        stalls.check(deadline, table.streams());
        table.hear(&mut scratch);
        // After a stall, each phase is visited once; its streams catch up or skip by themselves.
        let now_slot = slot_at(epoch, Instant::now()).max(slot);
        for s in slot.max(now_slot.saturating_sub(PHASES as u64 - 1))..=now_slot {
            let phase = phase_of(s);
            table.serve(phase, &load[phase], &mut scratch);
        }
        table.submit(&mut scratch);
        next_slot = now_slot + 1;
        if published.elapsed() >= PUBLISH_EVERY {
            scratch.unpublished.publish();
            published = Instant::now();
        }
    }
}

/// Wake-ups a whole frame late (an overloaded host, or a virtual CPU the hypervisor paused):
/// callers hear those, so they are logged, at most once a second.
#[derive(Default)]
struct Stalls {
    since_log: u32,
    last_log: Option<Instant>,
}

impl Stalls {
    fn check(&mut self, deadline: Instant, streams: usize) {
        let now = Instant::now();
        let late = now.saturating_duration_since(deadline);
        if late < Duration::from_millis(FRAME_MS as u64) {
            return;
        }
        self.since_log += 1;
        crate::metrics::METRICS.pacer_late_frames.inc();
        if self
            .last_log
            .is_some_and(|at| now - at < Duration::from_secs(1))
        {
            return;
        }
        tracing::warn!(
            late_ms = late.as_millis() as u64,
            stalls = self.since_log,
            streams,
            "the RTP pacer woke a frame late; callers hear a gap"
        );
        self.since_log = 0;
        self.last_log = Some(now);
    }
}

fn phase_of(slot: u64) -> usize {
    (slot % PHASES as u64) as usize
}

/// Puts a new stream on its phase, first due at that phase's next slot from `next_slot`.
fn place(
    (phase, mut stream): (usize, RtpStream),
    epoch: Instant,
    next_slot: u64,
    table: &mut Table,
) {
    let first = next_slot + (phase + PHASES - phase_of(next_slot)) as u64 % PHASES as u64;
    stream.begin(slot_start(epoch, first));
    table.add(phase, stream);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pacer: &Pacer) -> Vec<usize> {
        pacer.lanes[0]
            .load
            .iter()
            .map(|l| l.load(Ordering::Relaxed))
            .collect()
    }

    #[test]
    fn a_stream_goes_to_the_quietest_phase_of_any_thread() {
        let on = |loads: [[usize; PHASES]; 2]| choose(2, move |l, p| loads[l][p]);
        assert_eq!(on([[0; PHASES], [0; PHASES]]), (0, 0));
        let mut first = [3; PHASES];
        first[2] = 2;
        assert_eq!(on([first, [3; PHASES]]), (0, 2));
        let mut second = [3; PHASES];
        second[4] = 1;
        assert_eq!(on([first, second]), (1, 4));
    }

    async fn streams_spread_and_leave_with_their_calls(io_uring: bool) {
        let library = crate::testing::shipped_prompts();
        let pool = crate::testing::free_port_pool(2 * PHASES as u16);
        let pacer = Pacer::start(1, false, io_uring).unwrap();
        let calls: Vec<_> = (0..2 * PHASES)
            .map(|_| pacer.start_test_call(pool.lease().unwrap(), None, library.clone()))
            .collect();
        assert_eq!(
            load(&pacer),
            vec![2; PHASES],
            "two calls on every phase, none bunched"
        );
        let in_use = pool.capacity() - pool.available();
        assert_eq!(in_use, 2 * PHASES);
        for (commands, mut events) in calls {
            drop(commands);
            assert_eq!(events.recv().await, None, "the stream ends with its call");
        }
        assert_eq!(load(&pacer), vec![0; PHASES]);
        assert_eq!(pool.available(), pool.capacity(), "every port is back");
        let again: Vec<_> = (0..2 * PHASES).map(|_| pool.lease()).collect();
        assert!(
            again.iter().all(Option::is_some),
            "and every port can be bound again: the kernel let go of the sockets"
        );
    }

    #[tokio::test]
    async fn streams_spread_over_every_phase_and_leave_with_their_calls() {
        streams_spread_and_leave_with_their_calls(true).await;
    }

    #[tokio::test]
    async fn the_same_with_plain_system_calls() {
        streams_spread_and_leave_with_their_calls(false).await;
    }
}
