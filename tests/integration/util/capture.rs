//! A capture of what one test's thread logs, from one process-wide subscriber that writes
//! only for threads that are capturing (and costs the others a thread-local check).

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tracing_subscriber::filter::dynamic_filter_fn;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::prelude::*;

/// Everything logged on this thread while it lives, as plain text.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

thread_local! {
    static CAPTURING: RefCell<Option<Capture>> = const { RefCell::new(None) };
}

impl Capture {
    /// Starts capturing this thread's logs (TRACE and up, span openings and closings) until
    /// the guard is dropped.
    pub fn start() -> (Self, Capturing) {
        install();
        let capture = Self::default();
        CAPTURING.with(|c| *c.borrow_mut() = Some(capture.clone()));
        (capture, Capturing)
    }

    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Ends the capture on this thread when dropped.
pub struct Capturing;

impl Drop for Capturing {
    fn drop(&mut self) {
        CAPTURING.with(|c| c.borrow_mut().take());
    }
}

/// Writes to the capture of the thread that logs, if it has one.
struct ThreadCapture;

impl Write for ThreadCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURING.with(|c| {
            if let Some(capture) = c.borrow().as_ref() {
                capture
                    .0
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the process-wide subscriber that writes to capturing threads, once. `spawn_app`
/// calls it before a test does anything. (A subscriber per test, `set_default`, lost lines at
/// random: tracing caches per call site whether anyone listens, and a call site first reached
/// on a thread without one stayed silent.)
pub fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        // Dynamic, so it is asked at every event: a plain `filter_fn` caches its first answer
        // per call site, whichever thread reached it first.
        let capturing = dynamic_filter_fn(|_, _| CAPTURING.with(|c| c.borrow().is_some()));
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_span_events(FmtSpan::NEW | FmtSpan::CLOSE)
            .with_writer(|| ThreadCapture)
            .with_filter(capturing);
        // The only subscriber of this test binary.
        drop(tracing_subscriber::registry().with(layer).try_init());
    });
}
