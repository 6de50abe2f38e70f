//! Cleanup that must outlive the operation that started it.
//!
//! When Ctrl-C cancels an upload, the S3 multipart upload has to be aborted
//! with one more request, but a drop guard cannot await. It spawns the request
//! here instead, and `main` waits for these tasks (with a time limit) before
//! the runtime shuts down, which would otherwise drop them unfinished.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::task::JoinHandle;

static PENDING: Mutex<Vec<JoinHandle<()>>> = Mutex::new(Vec::new());

/// Runs `task` on the current runtime and remembers it; a no-op outside one.
pub fn spawn(task: impl Future<Output = ()> + Send + 'static) {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        let join = handle.spawn(task);
        PENDING.lock().unwrap_or_else(|e| e.into_inner()).push(join);
    }
}

/// Waits up to `limit` for every cleanup task spawned so far.
pub async fn wait(limit: Duration) {
    let tasks: Vec<_> = std::mem::take(&mut *PENDING.lock().unwrap_or_else(|e| e.into_inner()));
    let _ = tokio::time::timeout(limit, futures::future::join_all(tasks)).await;
}
