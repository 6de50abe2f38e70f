//! The upload body: a bounded channel of chunks with an explicit end.
//!
//! A plain channel cannot tell "the producer finished" from "the producer
//! failed and dropped its end". Confusing the two would let a truncated
//! archive become a complete-looking object, so the producer must call
//! [`BodyWriter::finish`]; a body that closes without it is an error and the
//! backend discards what it received.

use anyhow::Result;
use bytes::Bytes;
use tokio::sync::mpsc;

enum Msg {
    Data(Bytes),
    End,
}

/// The producer's end of an upload body.
pub struct BodyWriter(mpsc::Sender<Msg>);

/// The backend's end of an upload body.
pub struct Body(mpsc::Receiver<Msg>);

/// A body whose writer can run ahead of the backend by `capacity` chunks.
pub fn channel(capacity: usize) -> (BodyWriter, Body) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (BodyWriter(tx), Body(rx))
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
            .send(Msg::Data(data))
            .await
            .map_err(|_| upload_gone())
    }

    /// For producers on a blocking thread (tar and zstd run there).
    pub fn blocking_send(&self, data: Bytes) -> Result<()> {
        self.0
            .blocking_send(Msg::Data(data))
            .map_err(|_| upload_gone())
    }

    pub async fn finish(self) -> Result<()> {
        self.0.send(Msg::End).await.map_err(|_| upload_gone())
    }

    pub fn blocking_finish(self) -> Result<()> {
        self.0.blocking_send(Msg::End).map_err(|_| upload_gone())
    }
}

impl Body {
    /// A complete body holding `data`.
    pub fn from_bytes(data: Bytes) -> Body {
        let (tx, rx) = mpsc::channel(2);
        tx.try_send(Msg::Data(data)).ok();
        tx.try_send(Msg::End).ok();
        Body(rx)
    }

    /// The next chunk, `Ok(None)` at a proper end, an error when the
    /// producer went away without finishing.
    pub async fn next(&mut self) -> Result<Option<Bytes>> {
        match self.0.recv().await {
            Some(Msg::Data(b)) => Ok(Some(b)),
            Some(Msg::End) => Ok(None),
            None => Err(producer_gone()),
        }
    }

    /// [`Body::next`] for consumers on a blocking thread.
    pub fn blocking_next(&mut self) -> Result<Option<Bytes>> {
        match self.0.blocking_recv() {
            Some(Msg::Data(b)) => Ok(Some(b)),
            Some(Msg::End) => Ok(None),
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

    #[tokio::test]
    async fn finish_ends_cleanly() {
        let (w, mut b) = channel(4);
        w.send(Bytes::from_static(b"x")).await.unwrap();
        w.finish().await.unwrap();
        assert!(b.next().await.unwrap().is_some());
        assert!(b.next().await.unwrap().is_none());
    }
}
