//! SHA-256 on a thread of its own.
//!
//! Reading an archive (restore, `verify --deep`) is a chain of work on one
//! thread: decompress, split the tar stream, then for each file hash it and
//! write or check it. Hashing runs at about 1.85 GB/s even with SHA-NI, so it
//! is a third of that chain, and the largest block of a TSDB (often most of
//! its bytes) finishes only when its one thread has done all of it.
//! [`HashThread`] moves the hashing to a second thread: bytes are copied into
//! 256 KiB batches that go over a channel, and the emptied buffers come back
//! for reuse. The reading thread pays one memcpy per byte
//! (about 10 GB/s) instead of the hash, and with a core to spare the hash
//! costs no wall time at all. Memory is fixed: four batch buffers.

use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

/// Bytes handed to the hashing thread at a time.
const BATCH: usize = 256 * 1024;

/// Batch buffers, allocated once: one being filled, the others queued or
/// being hashed. Filling waits for a buffer to come back, so memory stays
/// at `BUFFERS * BATCH` and nothing is allocated per batch.
const BUFFERS: usize = 4;

enum Msg {
    Data(Vec<u8>),
    /// The current file ends: reply with its digest and start the next.
    End,
}

/// A thread hashing a sequence of byte streams (files), one at a time.
pub struct HashThread {
    tx: Option<SyncSender<Msg>>,
    spare: Receiver<Vec<u8>>,
    digests: Receiver<String>,
    batch: Vec<u8>,
    count: u64,
    handle: Option<JoinHandle<()>>,
}

impl HashThread {
    pub fn spawn() -> io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<Msg>(BUFFERS);
        let (spare_tx, spare) = mpsc::sync_channel::<Vec<u8>>(BUFFERS);
        for _ in 1..BUFFERS {
            let _ = spare_tx.send(Vec::with_capacity(BATCH));
        }
        let (digest_tx, digests) = mpsc::sync_channel::<String>(1);
        let handle = std::thread::Builder::new()
            .name("sha256".into())
            .spawn(move || {
                let mut hasher = Sha256::new();
                for msg in rx {
                    match msg {
                        Msg::Data(buf) => {
                            hasher.update(&buf);
                            let _ = spare_tx.send(buf);
                        }
                        Msg::End => {
                            let digest = hex::encode(hasher.finalize_reset());
                            if digest_tx.send(digest).is_err() {
                                return;
                            }
                        }
                    }
                }
            })?;
        Ok(HashThread {
            tx: Some(tx),
            spare,
            digests,
            batch: Vec::with_capacity(BATCH),
            count: 0,
            handle: Some(handle),
        })
    }

    /// Adds `data` to the current stream's hash.
    pub fn update(&mut self, mut data: &[u8]) -> io::Result<()> {
        self.count += data.len() as u64;
        while !data.is_empty() {
            let take = (BATCH - self.batch.len()).min(data.len());
            self.batch.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.batch.len() == BATCH {
                self.send_batch()?;
            }
        }
        Ok(())
    }

    /// Ends the current stream: its length and hex SHA-256.
    pub fn finish(&mut self) -> io::Result<(u64, String)> {
        if !self.batch.is_empty() {
            self.send_batch()?;
        }
        self.send(Msg::End)?;
        let digest = self.digests.recv().map_err(|_| stopped())?;
        Ok((std::mem::take(&mut self.count), digest))
    }

    fn send_batch(&mut self) -> io::Result<()> {
        let mut next = self.spare.recv().map_err(|_| stopped())?;
        next.clear();
        let full = std::mem::replace(&mut self.batch, next);
        self.send(Msg::Data(full))
    }

    fn send(&self, msg: Msg) -> io::Result<()> {
        let tx = self.tx.as_ref().ok_or_else(stopped)?;
        tx.send(msg).map_err(|_| stopped())
    }
}

fn stopped() -> io::Error {
    io::Error::other("the hashing thread stopped")
}

impl Drop for HashThread {
    fn drop(&mut self) {
        drop(self.tx.take()); // ends the thread's loop
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Reads through to `inner`, handing every byte read to a [`HashThread`].
pub struct TeeReader<'a, R> {
    pub inner: R,
    pub hash: &'a mut HashThread,
}

impl<R: Read> Read for TeeReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    #[test]
    fn digests_match_sha256_for_a_sequence_of_streams() {
        let mut h = HashThread::spawn().unwrap();
        // Empty, small, exactly one batch, and several batches plus a tail,
        // written in awkward pieces.
        let sizes = [0, 5, BATCH, 3 * BATCH + 12_345];
        for size in sizes {
            let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            for piece in data.chunks(70_001) {
                h.update(piece).unwrap();
            }
            assert_eq!(h.finish().unwrap(), (size as u64, sha(&data)), "{size}");
        }
    }

    #[test]
    fn tee_reader_hashes_what_passes_through() {
        let data = vec![7u8; 2 * BATCH + 1];
        let mut h = HashThread::spawn().unwrap();
        let mut out = Vec::new();
        TeeReader {
            inner: &data[..],
            hash: &mut h,
        }
        .read_to_end(&mut out)
        .unwrap();
        assert_eq!(out, data);
        assert_eq!(h.finish().unwrap(), (data.len() as u64, sha(&data)));
    }
}
