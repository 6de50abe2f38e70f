//! Streaming objects out of the repository, for restore and verify.
//!
//! Downloads are async, tar and zstd are blocking: a download task pumps
//! chunks through a small bounded channel to a blocking thread that reads
//! them through [`ChannelReader`]. Memory stays at a few chunks per object
//! however large the block is, and hashing, decompression and unpacking run
//! while the next bytes arrive.
//!
//! Every download stops at the size the manifest records for the object
//! (plus at most one chunk, to see that there is more): an object that never
//! ends, or is a thousand times longer than recorded, costs the recorded size
//! and is reported as damage ([`BadObject`]), not as a broken connection.

use std::fs;
use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::content_id::ContentId;
use super::manifest::BlockEntry;
use super::Repository;
use crate::archive;
use crate::error::{Environment, Place};
use crate::progress::Progress;
use crate::storage::{BadObject, Key};

/// How much downloaded data is handed to the unpacking thread at once.
const HANDOFF: usize = 1 << 20;

/// Downloads a block's archive and unpacks it into `tmp` (an empty
/// directory), checking every file and the archive itself against `entry`.
/// `durable`: fsync every file (a restore); not for scratch copies.
pub async fn unpack_object(
    repo: &Repository,
    entry: &BlockEntry,
    tmp: &Path,
    progress: Arc<dyn Progress>,
    durable: bool,
) -> Result<()> {
    let (tmp, files) = (tmp.to_path_buf(), entry.files.clone());
    // The thread cleans up after itself. If this future is dropped (a
    // sibling block failed, or Ctrl-C), the thread still runs, to an error
    // or to the end, while the caller's guard may be removing the directory
    // under it; so on an error, or once it sees it was abandoned, the
    // thread removes the directory itself when it has written its last byte.
    let abandoned = Abandoned::default();
    let seen = abandoned.0.clone();
    read_object(repo, entry, progress, move |input| {
        let result = archive::unpack(input, &tmp, &files, durable);
        if result.is_err() || seen.load(Ordering::SeqCst) {
            let _ = fs::remove_dir_all(&tmp);
        }
        result.map(|u| (u, ()))
    })
    .await
}

/// Set when the future holding it is dropped before it finished.
#[derive(Default)]
struct Abandoned(Arc<AtomicBool>);

impl Drop for Abandoned {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Downloads a block's archive and hands the stream to `read` on a blocking
/// thread (which must read it to the end, e.g. with `archive::read_entries`),
/// then checks the archive's size and SHA-256 against `entry`.
pub async fn read_object<T: Send + 'static>(
    repo: &Repository,
    entry: &BlockEntry,
    progress: Arc<dyn Progress>,
    read: impl FnOnce(ChannelReader) -> Result<(archive::Unpacked, T)> + Send + 'static,
) -> Result<T> {
    let key = Key::new(entry.object.key.clone())?;
    let mut stream = repo.storage().get_limited(&key, entry.object.size).await?;
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(4);
    // The archive is hashed here, as chunks arrive, so that hashing and
    // decompressing run on two cores.
    let pump = async move {
        let mut hasher = Sha256::new();
        // HTTP bodies arrive in small pieces: hand them on in ~1 MiB batches,
        // so the unpacking thread wakes up per MiB, not per packet.
        let mut batch = BytesMut::new();
        loop {
            let next = stream.next().await;
            let flush = match &next {
                Some(Ok(c)) => {
                    hasher.update(c);
                    progress.advance(c.len() as u64);
                    if batch.is_empty() && c.len() >= HANDOFF {
                        // Already big (a whole range): hand it on as it is.
                        if tx.send(Ok(c.clone())).await.is_err() {
                            break;
                        }
                        continue;
                    }
                    batch.extend_from_slice(c);
                    batch.len() >= HANDOFF
                }
                _ => !batch.is_empty(),
            };
            if flush && tx.send(Ok(batch.split().freeze())).await.is_err() {
                break; // the unpacker stopped
            }
            match next {
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    let _ = tx.send(Err(io::Error::other(format!("{e:#}")))).await;
                    if e.downcast_ref::<BadObject>().is_some() {
                        return Err(e); // damage, not the connection
                    }
                    let what = format!("the download of {} broke off", entry.object.key);
                    return Err(e.context(Environment {
                        what,
                        place: Place::Connection,
                    }));
                }
                None => break,
            }
        }
        Ok(hex::encode(hasher.finalize()))
    };
    let reader = tokio::task::spawn_blocking(move || read(ChannelReader::new(rx)));
    let (pumped, read) = tokio::join!(pump, reader);
    // A download that broke off is the root cause of whatever the reader
    // then made of the truncated stream.
    let sha256 = pumped?;
    let (unpacked, value) = read.context("the unpacking thread failed")??;
    if unpacked.archive_size != entry.object.size || sha256 != entry.object.sha256 {
        bail!(
            "object {} is damaged: expected {} bytes with SHA-256 {}, got {} bytes with SHA-256 {}",
            entry.object.key,
            entry.object.size,
            entry.object.sha256,
            unpacked.archive_size,
            sha256
        );
    }
    Ok(value)
}

/// Removes a temporary directory unless disarmed (a restored block renamed
/// into place): on errors, and when the work is cancelled or a sibling failed.
pub struct TmpDir(pub Option<PathBuf>);

impl Drop for TmpDir {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

/// A blocking `Read` over chunks arriving from an async download.
pub struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl ChannelReader {
    fn new(rx: mpsc::Receiver<io::Result<Bytes>>) -> Self {
        ChannelReader {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = buf.len().min(available.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// The decompressor reads straight out of the downloaded chunks: no copy
/// into a buffer of its own.
impl BufRead for ChannelReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk?,
                None => break,
            }
        }
        Ok(&self.current)
    }

    fn consume(&mut self, amt: usize) {
        bytes::Buf::advance(&mut self.current, amt);
    }
}

/// Downloads an object of at most `max` bytes and returns its size and
/// SHA-256; a longer one is a [`BadObject`] error once `max` is passed.
pub async fn hash_object(
    repo: &Repository,
    key: &Key,
    max: u64,
    progress: &Arc<dyn Progress>,
) -> Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let size = read_through(repo, key, max, progress, |c| hasher.update(c)).await?;
    Ok((size, hex::encode(hasher.finalize())))
}

/// Downloads a pack of at most `max` bytes and returns its size and what
/// its bytes hash to under the repository's content ids (which must be
/// its name); a longer one is a [`BadObject`] error once `max` is passed.
pub async fn hash_pack(
    repo: &Repository,
    key: &Key,
    max: u64,
    progress: &Arc<dyn Progress>,
) -> Result<(u64, ContentId)> {
    let mut hasher = repo.ids().hasher();
    let size = read_through(repo, key, max, progress, |c| hasher.update(c)).await?;
    Ok((size, hasher.finish()))
}

/// Downloads an object of at most `max` bytes, handing each piece to `f`;
/// returns its size.
async fn read_through(
    repo: &Repository,
    key: &Key,
    max: u64,
    progress: &Arc<dyn Progress>,
    mut f: impl FnMut(&[u8]),
) -> Result<u64> {
    let mut stream = repo.storage().get_limited(key, max).await?;
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        f(&chunk);
        size += chunk.len() as u64;
        progress.advance(chunk.len() as u64);
    }
    Ok(size)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::error::{environment, Place};
    use crate::progress::Silent;
    use crate::storage::{BadKind, Body, ByteStream, LocalStorage, ObjectMeta, Storage};
    use async_trait::async_trait;
    use chrono::{DateTime, Utc};

    /// A local storage whose downloads break off after their first chunk,
    /// as a dropped connection does once the retries are spent; with
    /// `false`, one that serves whole objects as streams of unknown length,
    /// as S3 does (no size check before the first byte).
    #[derive(Debug)]
    pub(crate) struct BreaksOff(pub LocalStorage, pub bool);

    #[async_trait]
    impl Storage for BreaksOff {
        fn describe(&self) -> String {
            self.0.describe()
        }
        async fn put(&self, key: &Key, body: Body) -> Result<u64> {
            self.0.put(key, body).await
        }
        async fn get(&self, key: &Key) -> Result<ByteStream> {
            if !self.1 {
                return self.0.get(key).await; // whole
            }
            let first = self.0.get(key).await?.take(1);
            let reset = futures::stream::once(async { Err(anyhow::anyhow!("connection reset")) });
            Ok(Box::pin(first.chain(reset)))
        }
        async fn get_range(&self, key: &Key, offset: u64, length: u64) -> Result<ByteStream> {
            self.0.get_range(key, offset, length).await
        }
        async fn head(&self, key: &Key) -> Result<Option<ObjectMeta>> {
            self.0.head(key).await
        }
        async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
            self.0.list(prefix).await
        }
        async fn delete(&self, key: &Key) -> Result<()> {
            self.0.delete(key).await
        }
        async fn abort_incomplete(&self, before: DateTime<Utc>, dry_run: bool) -> Result<u64> {
            self.0.abort_incomplete(before, dry_run).await
        }
    }

    /// An object longer than its manifest records is read no further than
    /// that (plus one chunk) and is damage, not a broken connection.
    #[tokio::test]
    async fn an_object_longer_than_recorded_is_cut_off_as_damage() {
        let dir = tempfile::tempdir().unwrap();
        let mut entry = crate::repo::manifest::tests::sample_entry("01HQ3K6W2Z0000000000000000");
        let storage = LocalStorage::new(dir.path().to_path_buf());
        let key = Key::new(entry.object.key.clone()).unwrap();
        storage
            .put_bytes(&key, Bytes::from(vec![7u8; 5 << 20]))
            .await
            .unwrap();
        entry.object.size = 1 << 20;
        // Through a stream, as S3 serves it: the size is not known up front.
        let repo = Repository::new(Arc::new(BreaksOff(storage.clone(), false)));
        let err = read_object(
            &repo,
            &entry,
            Arc::new(Silent),
            |mut input| -> Result<(archive::Unpacked, u64)> {
                let mut sink = Vec::new();
                let read = input.read_to_end(&mut sink);
                let n = sink.len() as u64;
                assert!(n <= 1 << 20, "{n} bytes handed on");
                read?;
                Ok((archive::Unpacked { archive_size: n }, n))
            },
        )
        .await
        .unwrap_err();
        assert_eq!(environment(&err), None, "{err:#}");
        let bad = err.downcast_ref::<BadObject>().expect("a BadObject");
        assert_eq!(bad.kind, BadKind::TooLarge { limit: 1 << 20 });
        let repo = Repository::new(Arc::new(storage));
        let progress: Arc<dyn Progress> = Arc::new(Silent);
        let err = hash_object(&repo, &key, 1 << 20, &progress)
            .await
            .unwrap_err();
        assert!(err.downcast_ref::<BadObject>().is_some(), "{err:#}");
    }

    /// The broken download is the error, marked as this machine's (so that
    /// verify fails instead of calling the object damaged), not whatever the
    /// reader made of the truncated stream.
    #[tokio::test]
    async fn a_download_that_breaks_off_is_an_environment_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut entry = crate::repo::manifest::tests::sample_entry("01HQ3K6W2Z0000000000000000");
        let data = Bytes::from(vec![7u8; 5 << 20]);
        let storage = LocalStorage::new(dir.path().to_path_buf());
        let key = Key::new(entry.object.key.clone()).unwrap();
        storage.put_bytes(&key, data.clone()).await.unwrap();
        entry.object.size = data.len() as u64;
        let repo = Repository::new(Arc::new(BreaksOff(storage, true)));
        let err = read_object(
            &repo,
            &entry,
            Arc::new(Silent),
            |mut input| -> Result<(archive::Unpacked, ())> {
                let mut sink = Vec::new();
                input.read_to_end(&mut sink)?;
                bail!("the archive ended early: only {} bytes", sink.len())
            },
        )
        .await
        .unwrap_err();
        assert_eq!(environment(&err), Some(Place::Connection), "{err:#}");
        let text = format!("{err:#}");
        assert!(
            text.contains("broke off") && text.contains("connection reset"),
            "{text}"
        );
    }
}
