//! Cleanup that must outlive the operation that started it.
//!
//! When Ctrl-C cancels an upload, the S3 multipart upload has to be aborted
//! with one more request, but a drop guard cannot await. It spawns the request
//! here instead, and `main` waits for these tasks (with a time limit) before
//! the runtime shuts down, which would otherwise drop them unfinished.
//!
//! Uploads that run in tasks of their own (format 2's packs) are cancelled
//! by aborting those tasks, and a task is dropped (its guards run) only
//! when the runtime gets to it. Such a task holds an [`InFlight`] token, and
//! `wait` first waits for every token to be gone, so that the cleanup their
//! guards spawn is not missed.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

static PENDING: Mutex<Vec<JoinHandle<()>>> = Mutex::new(Vec::new());

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Held by a task that may need cleanup when it is cancelled; declare it
/// before the guards, so it is dropped after them.
pub struct InFlight(());

impl InFlight {
    pub fn new() -> InFlight {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        InFlight(())
    }
}

impl Default for InFlight {
    fn default() -> Self {
        InFlight::new()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs `task` on the current runtime and remembers it; a no-op outside one.
pub fn spawn(task: impl Future<Output = ()> + Send + 'static) {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        let join = handle.spawn(task);
        PENDING.lock().unwrap_or_else(|e| e.into_inner()).push(join);
    }
}

/// Waits up to `limit` for cancelled tasks to be dropped, then for every
/// cleanup task spawned so far.
pub async fn wait(limit: Duration) {
    let deadline = Instant::now() + limit;
    while IN_FLIGHT.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let limit = deadline.saturating_duration_since(Instant::now());
    let tasks: Vec<_> = std::mem::take(&mut *PENDING.lock().unwrap_or_else(|e| e.into_inner()));
    let _ = tokio::time::timeout(limit, futures::future::join_all(tasks)).await;
}
