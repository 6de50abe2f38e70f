//! The upload body: a bounded channel of chunks with an explicit end.
//!
//! A plain channel cannot tell "the producer finished" from "the producer
//! failed and dropped its end". Confusing the two would let a truncated
//! archive become a complete-looking object, so the producer must call
//! [`BodyWriter::finish`]; a body that closes without it is an error and the
//! backend discards what it received.
//!
//! A body can also carry progress ([`Body::reporting`]): each chunk says how
//! much work it completes (a backup: the block bytes it was packed from),
//! and the body reports that when the backend is done with the chunk, i.e.
//! asks for the next one. Progress then follows what the backend has taken,
//! which under `--max-bandwidth` is what has been uploaded, not what the
//! producer has read ahead into the channel.

use std::sync::Arc;

use anyhow::Result;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::progress::Progress;

/// A chunk or the end, each with the work it completes.
enum Msg {
    Data(Bytes, u64),
    End(u64),
}

/// The producer's end of an upload body.
pub struct BodyWriter(mpsc::Sender<Msg>);

/// The backend's end of an upload body.
pub struct Body {
    rx: mpsc::Receiver<Msg>,
    progress: Option<Arc<dyn Progress>>,
    /// The work of the chunk the backend holds, reported when it asks for more.
    pending: u64,
}

/// A body whose writer can run ahead of the backend by `capacity` chunks.
pub fn channel(capacity: usize) -> (BodyWriter, Body) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (BodyWriter(tx), Body::new(rx))
}

/// The backend stopped reading the body (it failed, or was cancelled):
/// the producer should stop, and report the backend's error, not this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the upload was abandoned")]
pub struct UploadAbandoned;

impl UploadAbandoned {
    /// Whether `err` is (or was caused by) an abandoned upload, also when a
    /// writer carried it through an `io::Error`.
    pub fn is_cause_of(err: &anyhow::Error) -> bool {
        err.chain().any(|cause| {
            cause.is::<UploadAbandoned>()
                || cause
                    .downcast_ref::<std::io::Error>()
                    .and_then(std::io::Error::get_ref)
                    .is_some_and(|inner| inner.is::<UploadAbandoned>())
        })
    }
}

fn upload_gone() -> anyhow::Error {
    UploadAbandoned.into()
}

impl BodyWriter {
    pub async fn send(&self, data: Bytes) -> Result<()> {
        self.0
            .send(Msg::Data(data, 0))
            .await
            .map_err(|_| upload_gone())
    }

    /// For producers on a blocking thread (tar and zstd run there).
    pub fn blocking_send(&self, data: Bytes) -> Result<()> {
        self.blocking_send_counted(data, 0)
    }

    /// [`BodyWriter::blocking_send`] of a chunk that completes `work`
    /// units of progress (see [`Body::reporting`]).
    pub fn blocking_send_counted(&self, data: Bytes, work: u64) -> Result<()> {
        self.0
            .blocking_send(Msg::Data(data, work))
            .map_err(|_| upload_gone())
    }

    /// [`BodyWriter::send`] of a chunk that completes `work` units of
    /// progress (see [`Body::reporting`]).
    pub async fn send_counted(&self, data: Bytes, work: u64) -> Result<()> {
        self.0
            .send(Msg::Data(data, work))
            .await
            .map_err(|_| upload_gone())
    }

    pub async fn finish(self) -> Result<()> {
        self.0.send(Msg::End(0)).await.map_err(|_| upload_gone())
    }

    pub fn blocking_finish(self) -> Result<()> {
        self.blocking_finish_counted(0)
    }

    /// [`BodyWriter::blocking_finish`], with the `work` no chunk carried.
    pub fn blocking_finish_counted(self, work: u64) -> Result<()> {
        self.0
            .blocking_send(Msg::End(work))
            .map_err(|_| upload_gone())
    }
}

impl Body {
    fn new(rx: mpsc::Receiver<Msg>) -> Body {
        Body {
            rx,
            progress: None,
            pending: 0,
        }
    }

    /// A complete body holding `data`.
    pub fn from_bytes(data: Bytes) -> Body {
        let (tx, rx) = mpsc::channel(2);
        tx.try_send(Msg::Data(data, 0)).ok();
        tx.try_send(Msg::End(0)).ok();
        Body::new(rx)
    }

    /// This body, reporting the work its chunks carry to `progress` as the
    /// backend takes them: a chunk counts once the backend asks for the
    /// next one (or the end).
    pub fn reporting(mut self, progress: Arc<dyn Progress>) -> Body {
        self.progress = Some(progress);
        self
    }

    /// The next chunk, `Ok(None)` at a proper end, an error when the
    /// producer went away without finishing.
    pub async fn next(&mut self) -> Result<Option<Bytes>> {
        self.report_pending();
        let msg = self.rx.recv().await;
        self.take(msg)
    }

    /// [`Body::next`] for consumers on a blocking thread.
    pub fn blocking_next(&mut self) -> Result<Option<Bytes>> {
        self.report_pending();
        let msg = self.rx.blocking_recv();
        self.take(msg)
    }

    fn report_pending(&mut self) {
        let work = std::mem::take(&mut self.pending);
        if let (Some(p), true) = (&self.progress, work > 0) {
            p.advance(work);
        }
    }

    fn take(&mut self, msg: Option<Msg>) -> Result<Option<Bytes>> {
        match msg {
            Some(Msg::Data(b, work)) => {
                self.pending = work;
                Ok(Some(b))
            }
            Some(Msg::End(work)) => {
                self.pending = work;
                self.report_pending();
                Ok(None)
            }
            None => Err(producer_gone()),
        }
    }
}

fn producer_gone() -> anyhow::Error {
    anyhow::anyhow!("the producer stopped before the end of the object; nothing was stored")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_abandoned_upload_is_recognised_by_type_through_io_errors() {
        let (w, b) = channel(1);
        drop(b);
        let err = w.send(Bytes::from_static(b"x")).await.unwrap_err();
        assert!(UploadAbandoned::is_cause_of(&err));
        let through_io: anyhow::Error =
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, UploadAbandoned).into();
        let wrapped = through_io.context("could not pack block 01X");
        assert!(UploadAbandoned::is_cause_of(&wrapped));
        // The same words from elsewhere are not the same thing.
        assert!(!UploadAbandoned::is_cause_of(&anyhow::anyhow!(
            "the upload was abandoned"
        )));
    }

    #[tokio::test]
    async fn a_dropped_writer_is_an_error_not_an_end() {
        let (w, mut b) = channel(4);
        w.send(Bytes::from_static(b"x")).await.unwrap();
        drop(w);
        assert_eq!(b.next().await.unwrap().unwrap(), Bytes::from_static(b"x"));
        assert!(b.next().await.is_err());
    }

    /// A chunk's work is reported when the backend asks for the next
    /// chunk, not when the producer sends it: progress follows the backend.
    #[tokio::test]
    async fn progress_follows_what_the_backend_has_taken() {
        #[derive(Default)]
        struct Sum(std::sync::atomic::AtomicU64);
        impl Progress for Sum {
            fn set_total(&self, _: u64) {}
            fn advance(&self, n: u64) {
                self.0.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            }
            fn note(&self, _: &str) {}
        }
        let sum = Arc::new(Sum::default());
        let done = || sum.0.load(std::sync::atomic::Ordering::Relaxed);
        let (w, b) = channel(4);
        let mut b = b.reporting(sum.clone());
        let w = tokio::task::spawn_blocking(move || {
            w.blocking_send_counted(Bytes::from_static(b"a"), 10)?;
            w.blocking_send_counted(Bytes::from_static(b"b"), 20)?;
            w.blocking_finish_counted(5)
        });
        w.await.unwrap().unwrap();
        assert_eq!(done(), 0, "sent is not taken");
        assert!(b.next().await.unwrap().is_some());
        assert_eq!(done(), 0, "the backend still holds the first chunk");
        assert!(b.next().await.unwrap().is_some());
        assert_eq!(done(), 10);
        assert!(b.next().await.unwrap().is_none());
        assert_eq!(done(), 35);
    }

    #[tokio::test]
    async fn finish_ends_cleanly() {
        let (w, mut b) = channel(4);
        w.send(Bytes::from_static(b"x")).await.unwrap();
        w.finish().await.unwrap();
        assert!(b.next().await.unwrap().is_some());
        assert!(b.next().await.unwrap().is_none());
    }
}
