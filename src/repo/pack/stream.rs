//! A stream stored as blobs, read back as one: a window stream, an index.
//!
//! A stream is the concatenation of its blobs. [`BlobsReader`] decodes them
//! one after the other and holds one decoder at a time, so a restore can
//! keep hundreds of streams open (one per window of a block) at about
//! [`DECODER_MEMORY`](crate::repo::blob::DECODER_MEMORY) plus one input chunk each. Every blob is checked
//! as it ends ([`BlobReader`]): a failure is a [`DamagedPack`] naming the
//! pack and the blob, carried in an `io::Error` (find it with
//! [`DamagedPack::find`]); a failure of the connection stays what it is.
//! Bytes are handed on as they decode, before their blob's id can be
//! checked, so an error voids what the stream has yielded: a caller writes
//! into a place it throws away on error, as restore does.
//!
//! [`PackReader::stream`] reads the blobs from storage: it is a plain
//! `Read` for a blocking thread (where zstd and the TSDB writer run), which
//! waits on the storage's async ranged reads one chunk at a time.

use std::io::{self, BufRead, Read};
use std::sync::Arc;

use bytes::{Buf, Bytes};
use futures::StreamExt;
use tokio::runtime::Handle;

use super::{BlobRef, DamagedPack, PackReader};
use crate::repo::blob::{BlobError, BlobReader};
use crate::repo::content_id::IdHash;
use crate::storage::ByteStream;

/// Reads the blobs `frames` yields (each with its reference and exactly its
/// stored bytes) as one stream; see the module documentation.
pub struct BlobsReader<I, R: BufRead> {
    frames: I,
    /// The hash that names the blobs.
    ids: IdHash,
    current: Option<(BlobRef, BlobReader<R>)>,
}

impl<I, R> BlobsReader<I, R>
where
    I: Iterator<Item = io::Result<(BlobRef, R)>>,
    R: BufRead,
{
    pub fn new(frames: I, ids: IdHash) -> BlobsReader<I, R> {
        BlobsReader {
            frames,
            ids,
            current: None,
        }
    }
}

impl<I, R> Read for BlobsReader<I, R>
where
    I: Iterator<Item = io::Result<(BlobRef, R)>>,
    R: BufRead,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let (r, reader) = match &mut self.current {
                Some(current) => current,
                None => match self.frames.next() {
                    None => return Ok(0),
                    Some(next) => {
                        let (r, input) = next?;
                        let reader = BlobReader::new(input, r.raw_length, r.id, self.ids)
                            .map_err(|e| in_pack(&r, e))?;
                        self.current.insert((r, reader))
                    }
                },
            };
            match reader.read(buf) {
                // This blob is done (and checked): on to the next.
                Ok(0) => self.current = None,
                Ok(n) => return Ok(n),
                Err(e) => return Err(in_pack(r, e)),
            }
        }
    }
}

/// A blob's damage as damage of its pack, naming both.
fn in_pack(r: &BlobRef, e: io::Error) -> io::Error {
    match BlobError::of_io(&e) {
        Some(b) => io::Error::new(
            io::ErrorKind::InvalidData,
            DamagedPack::damaged(r.pack, format!("blob {} at offset {}: {b}", r.id, r.offset)),
        ),
        None => e,
    }
}

/// An error from the async side, keeping a [`DamagedPack`] findable.
fn to_io(err: anyhow::Error) -> io::Error {
    match err.downcast::<DamagedPack>() {
        Ok(d) => io::Error::new(io::ErrorKind::InvalidData, d),
        Err(e) => io::Error::other(e),
    }
}

/// A ranged read's stream as a `BufRead` on a blocking thread: holds one
/// chunk (64 KiB from a local repository, what the connection delivers
/// from S3).
pub struct BlockingRange {
    handle: Handle,
    stream: ByteStream,
    chunk: Bytes,
}

impl Read for BlockingRange {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        super::read_buffered(self, buf)
    }
}

impl BufRead for BlockingRange {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.chunk.is_empty() {
            match self.handle.block_on(self.stream.next()) {
                None => break,
                Some(chunk) => self.chunk = chunk.map_err(to_io)?,
            }
        }
        Ok(&self.chunk)
    }

    fn consume(&mut self, amt: usize) {
        self.chunk.advance(amt);
    }
}

/// The blobs of a stream, opened from storage one at a time as the reader
/// gets to them.
pub struct StorageBlobs {
    packs: Arc<PackReader>,
    handle: Handle,
    refs: std::vec::IntoIter<BlobRef>,
}

impl Iterator for StorageBlobs {
    type Item = io::Result<(BlobRef, BlockingRange)>;

    fn next(&mut self) -> Option<Self::Item> {
        let r = self.refs.next()?;
        let opened = self.handle.block_on(self.packs.open_blob(&r));
        Some(opened.map_err(to_io).map(|stream| {
            let input = BlockingRange {
                handle: self.handle.clone(),
                stream,
                chunk: Bytes::new(),
            };
            (r, input)
        }))
    }
}

impl PackReader {
    /// The stream that is the concatenation of the blobs `refs` point at,
    /// as a `Read` to use on a blocking thread (`spawn_blocking`); call this
    /// inside the runtime, whose handle it keeps. Each blob's reference is
    /// checked against its pack's header before its bytes are read.
    /// Memory: one decoder ([`DECODER_MEMORY`](crate::repo::blob::DECODER_MEMORY)) and one chunk.
    pub fn stream(
        self: &Arc<Self>,
        refs: Vec<BlobRef>,
    ) -> BlobsReader<StorageBlobs, BlockingRange> {
        let blobs = StorageBlobs {
            packs: self.clone(),
            handle: Handle::current(),
            refs: refs.into_iter(),
        };
        BlobsReader::new(blobs, self.ids())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::blob::{sample, BlobEncoder, BlobKind};
    use crate::repo::content_id::ContentId;
    use crate::repo::cutter::BlobCutter;
    use crate::repo::datadir::DataDir;
    use crate::repo::pack::{PackWriter, PackWriterOptions};
    use crate::storage::{LocalStorage, Storage};

    /// Frames in memory, as `BlobsReader` sees them.
    fn in_memory(
        blobs: &[(BlobRef, Vec<u8>)],
    ) -> impl Iterator<Item = io::Result<(BlobRef, &[u8])>> {
        blobs.iter().map(|(r, frame)| Ok((*r, frame.as_slice())))
    }

    fn encoded(parts: &[&[u8]]) -> Vec<(BlobRef, Vec<u8>)> {
        let mut encoder = BlobEncoder::with_default_level().unwrap();
        let mut offset = 0;
        parts
            .iter()
            .map(|raw| {
                let b = encoder.encode(BlobKind::Chunks, raw).unwrap();
                let r = BlobRef {
                    pack: ContentId([1; 32]),
                    offset,
                    length: b.frame.len() as u32,
                    raw_length: b.raw_length,
                    id: b.id,
                };
                offset += b.frame.len() as u64;
                (r, b.frame)
            })
            .collect()
    }

    #[test]
    fn a_stream_is_the_concatenation_of_its_blobs() {
        let parts = [
            sample(70_000, 1),
            Vec::new(),
            sample(3, 2),
            sample(200_000, 3),
        ];
        let slices: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let blobs = encoded(&slices);
        let mut out = Vec::new();
        BlobsReader::new(in_memory(&blobs), IdHash::NEW)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, parts.concat());
        let mut nothing = Vec::new();
        BlobsReader::new(in_memory(&[]), IdHash::NEW)
            .read_to_end(&mut nothing)
            .unwrap();
        assert!(nothing.is_empty());
    }

    #[test]
    fn a_damaged_blob_names_its_pack_and_itself() {
        let parts = [sample(5000, 1), sample(5000, 2)];
        let mut blobs = encoded(&[&parts[0], &parts[1]]);
        blobs[1].0.id = ContentId::of(b"another blob");
        let mut out = Vec::new();
        let err = BlobsReader::new(in_memory(&blobs), IdHash::NEW)
            .read_to_end(&mut out)
            .unwrap_err();
        let err = anyhow::Error::from(err);
        let damaged = DamagedPack::find(&err).expect("damage");
        assert_eq!(damaged.pack, ContentId([1; 32]));
        let msg = err.to_string();
        assert!(
            msg.contains(&format!(
                "blob {} at offset {}",
                blobs[1].0.id, blobs[1].0.offset
            )),
            "{msg}"
        );
        assert!(msg.contains("its content hashes to"), "{msg}");
        // The first blob came through; none of the second's last bytes did.
        assert_eq!(&out[..5000], parts[0].as_slice());
        assert!(out.len() < 10_000);
    }

    /// Records cut into blobs, packed, stored, and read back as one stream
    /// on a blocking thread.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stream_round_trips_through_cutter_packs_and_storage() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir.path().to_path_buf()));
        let records: Vec<Vec<u8>> = (0..3000u64)
            .map(|i| sample((i as usize * 7919) % 2000 + 1, i))
            .chain([sample(300_000, 1)]) // a record larger than the target
            .collect();
        let mut encoder = BlobEncoder::with_default_level().unwrap();
        let mut encoded = Vec::new();
        let mut cutter = BlobCutter::new(64 << 10);
        let mut emit = |raw: &mut Vec<u8>| {
            encoded.push(encoder.encode(BlobKind::Chunks, raw)?);
            Ok(())
        };
        for r in &records {
            cutter.push(r, &mut emit).unwrap();
        }
        cutter.finish(&mut emit).unwrap();
        let opts = PackWriterOptions {
            target: 256 << 10,
            in_flight: 2,
            ..Default::default()
        };
        let mut writer = PackWriter::new(storage.clone(), DataDir::Legacy, opts);
        let mut refs = Vec::new();
        for (i, blob) in encoded.into_iter().enumerate() {
            refs.extend(writer.add(i, blob).await.unwrap());
        }
        refs.extend(writer.finish().await.unwrap().0);
        refs.sort_by_key(|(i, _)| *i);
        let refs: Vec<BlobRef> = refs.into_iter().map(|(_, r)| r).collect();
        let packs: std::collections::HashSet<_> = refs.iter().map(|r| r.pack).collect();
        assert!(packs.len() >= 3, "{} packs", packs.len());
        let reader = Arc::new(PackReader::new(storage, DataDir::Legacy, IdHash::NEW));
        let mut stream = reader.stream(refs);
        let out = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            stream.read_to_end(&mut out).map(|_| out)
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(out, records.concat());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_pack_fails_the_stream_as_damage() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir.path().to_path_buf()));
        let blobs = encoded(&[b"abc"]);
        let reader = Arc::new(PackReader::new(storage, DataDir::Legacy, IdHash::NEW));
        let mut stream = reader.stream(vec![blobs[0].0]);
        let err = tokio::task::spawn_blocking(move || stream.read_to_end(&mut Vec::new()))
            .await
            .unwrap()
            .unwrap_err();
        let err = anyhow::Error::from(err);
        assert_eq!(
            DamagedPack::find(&err),
            Some(&DamagedPack::missing(ContentId([1; 32])).in_dir(&DataDir::Legacy))
        );
    }
}
