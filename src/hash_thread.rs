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
//!
//! The thread can also write each stream to a file as it hashes it
//! ([`HashThread::write_to`]): rebuilding a chunk segment (format 2) then
//! costs the joining thread one memcpy per byte, and this thread another,
//! into the aligned buffers of a [`FileWriter`], whose own thread writes
//! them past the page cache (`O_DIRECT`; the kernel's copy into the page
//! cache cost a restore a fifth of its CPU), so that the caller's fsync
//! finds little left to write. A failed write is
//! remembered, stops the writing, and is returned by the stream's
//! [`HashThread::finish_file`] (or by the next batch handed over).

use std::fs::File;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

use crate::direct_io::FileWriter;

/// Bytes handed to the hashing thread at a time.
const BATCH: usize = 256 * 1024;

/// Batch buffers, allocated once: one being filled, the others queued or
/// being hashed. Filling waits for a buffer to come back, so memory stays
/// at `BUFFERS * BATCH` and nothing is allocated per batch.
const BUFFERS: usize = 4;

enum Msg {
    Data(Vec<u8>),
    /// Write the current stream's bytes (from the next batch on) to this file.
    Output(File),
    /// The current file ends: reply with its digest and start the next.
    End,
}

/// What the thread replies to [`Msg::End`].
struct Ended {
    digest: String,
    /// The file the stream was written to, if any.
    file: Option<File>,
    /// The first write that failed, if any.
    error: Option<io::Error>,
}

/// A thread hashing a sequence of byte streams (files), one at a time.
pub struct HashThread {
    tx: Option<SyncSender<Msg>>,
    spare: Receiver<Vec<u8>>,
    digests: Receiver<Ended>,
    batch: Vec<u8>,
    count: u64,
    /// Set by the thread when writing the current stream failed.
    failed: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl HashThread {
    pub fn spawn() -> io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<Msg>(BUFFERS);
        let (spare_tx, spare) = mpsc::sync_channel::<Vec<u8>>(BUFFERS);
        for _ in 1..BUFFERS {
            let _ = spare_tx.send(Vec::with_capacity(BATCH));
        }
        let (digest_tx, digests) = mpsc::sync_channel::<Ended>(1);
        let failed = Arc::new(AtomicBool::new(false));
        let flag = failed.clone();
        let handle = std::thread::Builder::new()
            .name("sha256".into())
            .spawn(move || {
                let mut hasher = Sha256::new();
                // Started for the first file to write.
                let mut writer: Option<FileWriter> = None;
                let mut writing = false;
                let mut error: Option<io::Error> = None;
                for msg in rx {
                    match msg {
                        Msg::Data(buf) => {
                            hasher.update(&buf);
                            if let (true, Some(w)) = (writing, writer.as_mut()) {
                                if let Err(e) = w.write(&buf) {
                                    error = Some(e);
                                    writing = false;
                                    flag.store(true, Ordering::Release);
                                }
                            }
                            let _ = spare_tx.send(buf);
                        }
                        Msg::Output(f) => {
                            let w = match writer.take().map_or_else(FileWriter::spawn, Ok) {
                                Ok(w) => writer.insert(w),
                                Err(e) => {
                                    error = Some(e);
                                    flag.store(true, Ordering::Release);
                                    continue;
                                }
                            };
                            match w.open(f) {
                                Ok(()) => writing = true,
                                Err(e) => {
                                    error = Some(e);
                                    flag.store(true, Ordering::Release);
                                }
                            }
                        }
                        Msg::End => {
                            let file = match (writing, writer.as_mut()) {
                                (true, Some(w)) => match w.close() {
                                    Ok(f) => Some(f),
                                    Err(e) => {
                                        error = Some(e);
                                        None
                                    }
                                },
                                _ => None,
                            };
                            writing = false;
                            let ended = Ended {
                                digest: hex::encode(hasher.finalize_reset()),
                                file,
                                error: error.take(),
                            };
                            flag.store(false, Ordering::Release);
                            if digest_tx.send(ended).is_err() {
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
            failed,
            handle: Some(handle),
        })
    }

    /// Writes the current stream to `file` as well, from its next byte on
    /// (call it before the stream's first [`update`](Self::update)).
    pub fn write_to(&mut self, file: File) -> io::Result<()> {
        if !self.batch.is_empty() {
            self.send_batch()?;
        }
        self.send(Msg::Output(file))
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
        let (count, digest, _) = self.finish_file()?;
        Ok((count, digest))
    }

    /// Ends the current stream: its length, hex SHA-256 and the file given
    /// to [`write_to`](Self::write_to), every byte written to it (not
    /// synced); or the error of the write that failed.
    pub fn finish_file(&mut self) -> io::Result<(u64, String, Option<File>)> {
        if !self.batch.is_empty() {
            self.send_batch()?;
        }
        self.send(Msg::End)?;
        let ended = self.digests.recv().map_err(|_| stopped())?;
        let count = std::mem::take(&mut self.count);
        match ended.error {
            Some(e) => Err(e),
            None => Ok((count, ended.digest, ended.file)),
        }
    }

    fn send_batch(&mut self) -> io::Result<()> {
        if self.failed.load(Ordering::Acquire) {
            // Writing the stream failed: stop here, with that error.
            self.batch.clear();
            return self.finish_file().map(|_| ());
        }
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
    fn writes_each_stream_to_its_file_as_it_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = HashThread::spawn().unwrap();
        for (name, size) in [("a", 3 * BATCH + 7), ("b", 10)] {
            let data: Vec<u8> = (0..size).map(|i| (i * 7 % 253) as u8).collect();
            h.write_to(File::create(dir.path().join(name)).unwrap())
                .unwrap();
            for piece in data.chunks(50_000) {
                h.update(piece).unwrap();
            }
            let (n, digest, file) = h.finish_file().unwrap();
            assert_eq!((n, digest), (size as u64, sha(&data)));
            drop(file.expect("the file comes back"));
            assert_eq!(std::fs::read(dir.path().join(name)).unwrap(), data);
        }
        // A stream without a file is only hashed.
        h.update(b"x").unwrap();
        assert!(h.finish_file().unwrap().2.is_none());
    }

    #[test]
    fn a_failed_write_is_returned_and_the_next_stream_starts_clean() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ro"), b"").unwrap();
        let read_only = File::open(dir.path().join("ro")).unwrap();
        let mut h = HashThread::spawn().unwrap();
        h.write_to(read_only).unwrap();
        let data = vec![1u8; 20 * BATCH];
        // The failure surfaces while the stream goes on, or at its end.
        let early = h.update(&data).err();
        let err = match early {
            Some(e) => e,
            None => h.finish_file().unwrap_err(),
        };
        assert_eq!(err.raw_os_error(), Some(9), "{err}"); // EBADF
        h.update(b"abc").unwrap();
        assert_eq!(h.finish().unwrap(), (3, sha(b"abc")));
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
