//! Where the log goes: stderr, at the level `RUST_LOG` asks.
//!
//! The server writes one access-log line per request, and stderr is unbuffered: written one
//! by one, each line is a system call, a sixth of the cost of a whoami (bench/README.md).
//! So the access log's lines are gathered while requests are in flight and written in one
//! go when the server has none in flight, when the oldest has waited [`MAX_WAIT`], or when
//! [`MAX_PENDING`] bytes are waiting. Every other line (errors, the audit log, start and stop)
//! is written at once, after the lines gathered before it, so the order never changes. An
//! idle server therefore writes each line before it answers; a crash under load loses at most
//! the last [`MAX_WAIT`] of access-log lines.

use std::io::{self, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

/// The target of the access log's lines (its module), the only lines that are gathered.
pub const ACCESS_LOG: &str = "homekey::http::access_log";

/// How long a gathered line may wait for the server to go idle.
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

/// Counts a request as in flight until the guard is dropped; the last one out writes the
/// gathered lines.
pub fn request_started() -> InFlight {
    IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
    InFlight(())
}

#[must_use = "the request counts as in flight until this is dropped"]
pub struct InFlight(());

impl Drop for InFlight {
    fn drop(&mut self) {
        if IN_FLIGHT.fetch_sub(1, Ordering::SeqCst) == 1 {
            let _ = lock_pending().write_out();
        }
    }
}

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static PENDING: Mutex<Pending> = Mutex::new(Pending {
    bytes: Vec::new(),
    since: None,
});

/// Lines gathered and not yet written, and when the first of them was.
struct Pending {
    bytes: Vec<u8>,
    since: Option<Instant>,
}

impl Pending {
    fn write_out(&mut self) -> io::Result<()> {
        self.since = None;
        if self.bytes.is_empty() {
            return Ok(());
        }
        let result = io::stderr().write_all(&self.bytes);
        // Written or not (stderr closed), the lines are not kept: memory stays bounded.
        self.bytes.clear();
        result
    }
}

fn lock_pending() -> std::sync::MutexGuard<'static, Pending> {
    // A panic while holding the lock leaves at worst a half-written batch: keep going.
    PENDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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
        let mut pending = lock_pending();
        if !self.gather {
            pending.write_out()?;
            io::stderr().write_all(line)?;
            return Ok(line.len());
        }
        pending.bytes.extend_from_slice(line);
        let since = *pending.since.get_or_insert_with(Instant::now);
        let idle = IN_FLIGHT.load(Ordering::SeqCst) == 0;
        if idle || pending.bytes.len() >= MAX_PENDING || since.elapsed() >= MAX_WAIT {
            pending.write_out()?;
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
