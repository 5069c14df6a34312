//! Log lines wait in memory and a thread of their own writes them out every 20 ms. A reader of
//! standard error that stalls (journald busy, a full pipe) then holds up no call, and a line
//! costs no wake-up: a writer thread woken per line (tracing-appender's) added 500-700 context
//! switches a second at 2,000 calls, at ~20 µs of CPU each on this kind of VM.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

const WRITE_EVERY: Duration = Duration::from_millis(20);
/// How long the last lines may take to leave when the process ends.
const LAST_WRITE_PATIENCE: Duration = Duration::from_secs(1);

/// Where the formatter puts lines: cheap to clone, one per layer.
#[derive(Clone)]
pub struct LogQueue {
    shared: Arc<Shared>,
}

struct Shared {
    pending: Mutex<Vec<u8>>,
    /// Bytes that may wait; beyond them a line is dropped and counted.
    limit: usize,
    dropped: AtomicU64,
}

/// Writes what is still queued when dropped (waiting at most a second).
pub struct LogFlush {
    stop: Option<mpsc::Sender<()>>,
    done: mpsc::Receiver<()>,
}

impl LogQueue {
    /// A queue of at most `limit` bytes, written to `out` by a new thread.
    pub fn start(
        out: impl Write + Send + 'static,
        limit: usize,
    ) -> io::Result<(LogQueue, LogFlush)> {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Vec::new()),
            limit,
            dropped: AtomicU64::new(0),
        });
        let (stop, stopped) = mpsc::channel();
        let (finished, done) = mpsc::channel();
        let writer = shared.clone();
        thread::Builder::new()
            .name("ivr-log".into())
            .spawn(move || {
                write_until_stopped(&writer, out, &stopped);
                let _ = finished.send(());
            })?;
        Ok((
            LogQueue { shared },
            LogFlush {
                stop: Some(stop),
                done,
            },
        ))
    }

    /// Lines dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

fn write_until_stopped(shared: &Shared, mut out: impl Write, stopped: &mpsc::Receiver<()>) {
    let mut spare = Vec::new();
    loop {
        let last = !matches!(
            stopped.recv_timeout(WRITE_EVERY),
            Err(RecvTimeoutError::Timeout)
        );
        std::mem::swap(&mut *shared.lock(), &mut spare);
        if !spare.is_empty() {
            // Nowhere to report a failed write to but the stream that failed.
            let _ = out.write_all(&spare).and_then(|()| out.flush());
            spare.clear();
        }
        if last {
            return;
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for LogFlush {
    fn drop(&mut self) {
        drop(self.stop.take());
        let _ = self.done.recv_timeout(LAST_WRITE_PATIENCE);
    }
}

impl<'a> MakeWriter<'a> for LogQueue {
    type Writer = QueueWriter<'a>;

    fn make_writer(&'a self) -> QueueWriter<'a> {
        QueueWriter(&self.shared)
    }
}

pub struct QueueWriter<'a>(&'a Shared);

/// The formatter writes each event as one `write` of the whole line.
impl Write for QueueWriter<'_> {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let mut pending = self.0.lock();
        if pending.len().saturating_add(line.len()) > self.0.limit {
            self.0.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            pending.extend_from_slice(line);
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn log(queue: &LogQueue, line: &str) {
        queue.make_writer().write_all(line.as_bytes()).unwrap();
    }

    #[test]
    fn lines_leave_in_order_and_the_last_ones_at_the_end() {
        let sink = Sink::default();
        let (queue, flush) = LogQueue::start(sink.clone(), 1 << 20).unwrap();
        log(&queue, "one\n");
        let start = std::time::Instant::now();
        while sink.0.lock().unwrap().is_empty() {
            assert!(start.elapsed() < Duration::from_secs(10), "never written");
            thread::sleep(WRITE_EVERY);
        }
        assert_eq!(&*sink.0.lock().unwrap(), b"one\n");
        log(&queue, "two\n");
        log(&queue, "three\n");
        drop(flush);
        assert_eq!(&*sink.0.lock().unwrap(), b"one\ntwo\nthree\n");
        assert_eq!(queue.dropped(), 0);
    }

    #[test]
    fn a_full_queue_drops_whole_lines_and_counts_them() {
        /// Never accepts a byte, like a pipe nobody reads.
        struct Stalled;
        impl Write for Stalled {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                thread::sleep(Duration::from_secs(3600));
                Ok(0)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let (queue, flush) = LogQueue::start(Stalled, 10).unwrap();
        log(&queue, "first\n");
        let start = std::time::Instant::now();
        while !queue.shared.lock().is_empty() {
            assert!(start.elapsed() < Duration::from_secs(10), "never taken");
            thread::sleep(WRITE_EVERY);
        }
        for _ in 0..3 {
            log(&queue, "12345\n");
        }
        assert_eq!(queue.dropped(), 2, "one line fits in 10 bytes, two do not");
        assert_eq!(&*queue.shared.lock(), b"12345\n");
        drop(flush);
    }
}
