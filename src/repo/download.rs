//! Streaming objects out of the repository, for restore and verify.
//!
//! Downloads are async, tar and zstd are blocking: a download task pumps
//! chunks through a small bounded channel to a blocking thread that reads
//! them through [`ChannelReader`]. Memory stays at a few chunks per object
//! however large the block is, and hashing, decompression and unpacking run
//! while the next bytes arrive.

use std::fs;
use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::manifest::BlockEntry;
use super::Repository;
use crate::archive;
use crate::progress::Progress;
use crate::storage::Key;

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
    // The thread cleans up after itself: if this future is dropped (a
    // sibling block failed, or Ctrl-C), the thread still runs to its
    // error and must not leave a half-written directory behind.
    read_object(repo, entry, progress, move |input| {
        let result = archive::unpack(input, &tmp, &files, durable);
        if result.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        result.map(|u| (u, ()))
    })
    .await
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
    let mut stream = repo.storage().get(&key).await?;
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
                    break;
                }
                None => break,
            }
        }
        hex::encode(hasher.finalize())
    };
    let reader = tokio::task::spawn_blocking(move || read(ChannelReader::new(rx)));
    let (sha256, read) = tokio::join!(pump, reader);
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

/// Downloads an object and returns its size and SHA-256.
pub async fn hash_object(
    repo: &Repository,
    key: &Key,
    progress: &Arc<dyn Progress>,
) -> Result<(u64, String)> {
    let mut stream = repo.storage().get(key).await?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        hasher.update(&chunk);
        size += chunk.len() as u64;
        progress.advance(chunk.len() as u64);
    }
    Ok((size, hex::encode(hasher.finalize())))
}
