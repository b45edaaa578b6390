//! Where the log goes: stderr, at the level `RUST_LOG` asks.
//!
//! The server writes one access-log line per request, and stderr is unbuffered: written one
//! by one, each line is a system call, a sixth of the cost of a whoami (bench/README.md).
//! So the access log's lines are gathered and written together by a thread of their own,
//! [`MAX_WAIT`] after the first of them, or at once when [`MAX_PENDING`] bytes wait.
//! Every other line (errors, the audit log, start and stop) is written at once, after the
//! lines gathered before it, so the order never changes. A crash loses at most the last
//! [`MAX_WAIT`] of access-log lines. (tracing-appender's non-blocking writer would wake its
//! thread for every line under load; this one wakes it once per batch.)

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, Once};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// The target of the access log's lines (its module), the only lines that are gathered.
pub const ACCESS_LOG: &str = "homekey::http::access_log";

/// How long a gathered line may wait.
pub const MAX_WAIT: Duration = Duration::from_millis(50);

/// How many bytes of lines may wait.
pub const MAX_PENDING: usize = 32 * 1024;

/// Logs to stderr, at the level `RUST_LOG` asks (else `default_level`).
pub fn init(default_level: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(Stderr)
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .init();
}

/// Writes the gathered lines now: called before the process exits, so that none is lost.
pub fn flush() {
    let _ = write_out(&mut lock_pending());
}

/// Lines gathered and not yet written.
static PENDING: Mutex<Vec<u8>> = Mutex::new(Vec::new());
/// Wakes the writing thread when the first line of a batch arrives.
static BATCH_STARTED: Condvar = Condvar::new();
static WRITING_THREAD: Once = Once::new();
static WRITING_THREAD_STARTED: AtomicBool = AtomicBool::new(false);

fn lock_pending() -> std::sync::MutexGuard<'static, Vec<u8>> {
    // A panic while holding the lock leaves at worst a half-written batch: keep going.
    PENDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes the gathered lines and forgets them, written or not (stderr closed): memory stays
/// bounded.
fn write_out(pending: &mut Vec<u8>) -> io::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let result = io::stderr().write_all(pending);
    pending.clear();
    result
}

/// Whether lines can be gathered: the thread that writes each batch [`MAX_WAIT`] after its
/// first line runs (it sleeps while nothing is gathered). Started with the first gathered
/// line, so the one-shot commands never have it.
fn writing_thread_runs() -> bool {
    WRITING_THREAD.call_once(|| {
        let started = std::thread::Builder::new()
            .name("homekey-log".into())
            .spawn(|| {
                loop {
                    let mut pending = lock_pending();
                    while pending.is_empty() {
                        pending = BATCH_STARTED
                            .wait(pending)
                            .unwrap_or_else(|poisoned| poisoned.into_inner());
                    }
                    drop(pending);
                    std::thread::sleep(MAX_WAIT);
                    let _ = write_out(&mut lock_pending());
                }
            });
        match started {
            Ok(_) => WRITING_THREAD_STARTED.store(true, Ordering::Release),
            Err(err) => eprintln!(
                "homekey: the log's writing thread did not start ({err}): lines are written one by one"
            ),
        }
    });
    WRITING_THREAD_STARTED.load(Ordering::Acquire)
}

/// The subscriber's writer: one per line, gathering the access log's lines.
struct Stderr;

/// Writes one formatted line, gathered or at once.
struct LineWriter {
    gather: bool,
}

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter { gather: false }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> LineWriter {
        LineWriter {
            gather: meta.target() == ACCESS_LOG,
        }
    }
}

impl Write for LineWriter {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let gather = self.gather && writing_thread_runs();
        let mut pending = lock_pending();
        if !gather {
            write_out(&mut pending)?;
            io::stderr().write_all(line)?;
            return Ok(line.len());
        }
        if pending.is_empty() {
            BATCH_STARTED.notify_one();
        }
        pending.extend_from_slice(line);
        if pending.len() >= MAX_PENDING {
            write_out(&mut pending)?;
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
