//! Reading blobs back out of packs, one ranged read per blob.
//!
//! A blob is found by its [`BlobRef`] and read with
//! [`Storage::get_range`]: a restore reads the blobs it needs, not whole
//! packs. No reference is trusted: before a blob's bytes are asked for, the
//! pack's header is read (its last bytes: one ranged read of up to 16 KiB,
//! which holds the whole header of a typical pack, and a second one for a
//! longer header) and checked, and the reference must name a blob the
//! header lists, inside the pack. Headers are kept for the packs read last
//! ([`HEADER_CACHE`] of them), so a stream of blobs from one pack reads its
//! header once.
//!
//! Everything that is wrong with a pack or a reference to it is a
//! [`DamagedPack`] naming the pack; a failure of the connection stays what
//! it is.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use bytes::Bytes;
use futures::StreamExt;

use super::hashes::PackHashes;
use super::{BlobRef, DamagedPack, PackHeader, TRAILER_LEN};
use crate::repo::blob;
use crate::repo::content_id::{ContentId, IdHash};
use crate::repo::datadir::DataDir;
use crate::storage::{BadKind, BadObject, ByteStream, NotFound, Storage};

/// How many packs' headers a reader keeps. A header is at most 656 KiB
/// ([`MAX_BLOBS`](super::MAX_BLOBS) entries), 2 KiB for a typical 32 MiB pack of 1 MiB blobs.
pub const HEADER_CACHE: usize = 64;

/// How much of a pack's end is read at first, in the hope that it holds the
/// whole header (it does for packs of up to about 390 blobs).
const TAIL_READ: u64 = 16 << 10;

/// Reads blobs from the packs of one storage; see the module documentation.
#[derive(Debug)]
pub struct PackReader {
    storage: Arc<dyn Storage>,
    /// The directory whose packs it reads.
    dir: DataDir,
    /// The hash that names the blobs (the repository's).
    ids: IdHash,
    headers: Mutex<VecDeque<Arc<PackHeader>>>,
    /// Where every byte read is also hashed (`verify --deep`).
    hashes: Option<Arc<PackHashes>>,
}

impl PackReader {
    /// Reads the packs of `dir`, whose blobs are named with `ids`.
    pub fn new(storage: Arc<dyn Storage>, dir: DataDir, ids: IdHash) -> PackReader {
        PackReader {
            storage,
            dir,
            ids,
            headers: Mutex::new(VecDeque::new()),
            hashes: None,
        }
    }

    /// Hands every byte this reader reads of a pack (blobs, runs, the
    /// header) to `hashes` as well, which checks the packs' names from
    /// them: `verify --deep` reads each pack once.
    pub fn hashing_into(mut self, hashes: Arc<PackHashes>) -> PackReader {
        self.hashes = Some(hashes);
        self
    }

    fn seen(&self, pack: &ContentId, offset: u64, bytes: &[u8]) {
        if let Some(h) = &self.hashes {
            h.seen(&(self.dir.clone(), *pack), offset, bytes);
        }
    }

    /// The hash that names the blobs.
    pub fn ids(&self) -> IdHash {
        self.ids
    }

    /// The directory whose packs it reads.
    pub fn dir(&self) -> &DataDir {
        &self.dir
    }

    /// The pack's header, read and checked (or kept from an earlier read).
    pub async fn header(&self, pack: &ContentId) -> Result<Arc<PackHeader>> {
        if let Some(h) = self.cached(pack) {
            return Ok(h);
        }
        let header = Arc::new(self.read_header(pack).await?);
        let mut cache = self.headers.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= HEADER_CACHE {
            cache.pop_front();
        }
        cache.push_back(header.clone());
        Ok(header)
    }

    fn cached(&self, pack: &ContentId) -> Option<Arc<PackHeader>> {
        let cache = self.headers.lock().unwrap_or_else(|e| e.into_inner());
        cache.iter().find(|h| h.pack == *pack).cloned()
    }

    /// Reads and checks the pack's header, without the cache: its size and
    /// its last bytes (one request to S3), then the rest of the header if
    /// it is longer; memory at most `TAIL_READ` plus the header.
    pub async fn read_header(&self, pack: &ContentId) -> Result<PackHeader> {
        let (size, tail) = self
            .storage
            .get_tail(&self.dir.pack_key(pack), TAIL_READ)
            .await
            .map_err(|e| self.read_failed(pack, e, "header"))?;
        let tail_len = size.min(TAIL_READ);
        if tail.len() as u64 != tail_len {
            let reason = format!("its last {tail_len} bytes came back as {}", tail.len());
            return Err(DamagedPack::damaged(*pack, reason).in_dir(&self.dir).into());
        }
        self.seen(pack, size - tail_len, &tail);
        let mut tail = tail.to_vec();
        let trailer = &tail[tail.len().saturating_sub(TRAILER_LEN as usize)..];
        // Checked against the size (and MAX_BLOBS) before more is read.
        let needed = PackHeader::header_len(*pack, size, trailer)
            .map_err(|d| d.in_dir(&self.dir))?
            + TRAILER_LEN;
        if needed > tail_len {
            let mut front = self.read(pack, size - needed, needed - tail_len).await?;
            self.seen(pack, size - needed, &front);
            front.extend_from_slice(&tail);
            tail = front;
        }
        Ok(PackHeader::parse(*pack, size, &tail).map_err(|d| d.in_dir(&self.dir))?)
    }

    /// Bytes `offset..offset + length` of the pack's header, in memory.
    async fn read(&self, pack: &ContentId, offset: u64, length: u64) -> Result<Vec<u8>> {
        let stream = self.range(pack, offset, length, "header").await?;
        collect(stream, length)
            .await
            .map_err(|e| self.read_failed(pack, e, "header"))
    }

    /// A ranged read of the pack (of `what` in it), with its failures
    /// sorted into damage and the rest.
    async fn range(
        &self,
        pack: &ContentId,
        offset: u64,
        length: u64,
        what: &str,
    ) -> Result<ByteStream> {
        self.storage
            .get_range(&self.dir.pack_key(pack), offset, length)
            .await
            .map_err(|e| self.read_failed(pack, e, what))
    }

    /// A storage error met while reading `what` of a pack: a missing pack
    /// or one shorter than its size are damage, anything else is passed on.
    fn read_failed(&self, pack: &ContentId, err: anyhow::Error, what: &str) -> anyhow::Error {
        if err.downcast_ref::<NotFound>().is_some() {
            return DamagedPack::missing(*pack).in_dir(&self.dir).into();
        }
        if let Some(bad) = err.downcast_ref::<BadObject>() {
            let reason = match &bad.kind {
                BadKind::TooShort { end } => format!("it ends before byte {end}"),
                BadKind::TooLarge { limit } => format!("it goes on past byte {limit}"),
                BadKind::NotAFile(what) => format!("it is {what}, not a regular file"),
            };
            return DamagedPack::damaged(*pack, reason).in_dir(&self.dir).into();
        }
        let key = self.dir.pack_key(pack);
        err.context(format!("could not read the {what} of pack {key}"))
    }

    /// The stored bytes of the blob `r` points at, as a stream, once the
    /// pack's header has confirmed the reference.
    pub async fn open_blob(&self, r: &BlobRef) -> Result<ByteStream> {
        let header = self.header(&r.pack).await?;
        header.find(r).map_err(|d| d.in_dir(&self.dir))?;
        self.range(&r.pack, r.offset, u64::from(r.length), "blobs")
            .await
    }

    /// Bytes `offset..offset + length` of a pack's blobs in one buffer: one
    /// ranged read (the read-ahead's runs of adjacent blobs). The caller
    /// has checked the blobs it wants there against the pack's header.
    pub async fn read_range(&self, pack: &ContentId, offset: u64, length: u64) -> Result<Bytes> {
        let bytes = self
            .storage
            .get_range_bytes(&self.dir.pack_key(pack), offset, length)
            .await
            .map_err(|e| self.read_failed(pack, e, "blobs"))?;
        self.seen(pack, offset, &bytes);
        Ok(bytes)
    }

    /// Reads and decodes a whole (small) blob, refusing a reference that
    /// claims more than `max_raw` bytes before anything is read. Returns
    /// nothing unless every check passed: the reference against the
    /// header, the frame's window, length and id. Memory: the frame
    /// and `raw_length` bytes.
    pub async fn read_blob(&self, r: &BlobRef, max_raw: u32) -> Result<Vec<u8>> {
        let frame = self.fetch_frame(r, max_raw).await?;
        self.decode(r, &frame)
    }

    /// The stored frame of a (small) blob, for copying it into another
    /// pack as it is, once the same checks as [`PackReader::read_blob`]'s
    /// have passed on it (the decoded bytes are dropped).
    pub async fn read_frame(&self, r: &BlobRef, max_raw: u32) -> Result<Vec<u8>> {
        let frame = self.fetch_frame(r, max_raw).await?;
        self.decode(r, &frame)?;
        Ok(frame)
    }

    fn decode(&self, r: &BlobRef, frame: &[u8]) -> Result<Vec<u8>> {
        blob::decode(frame, r.raw_length, r.id, self.ids).map_err(|e| {
            DamagedPack::damaged(r.pack, format!("blob {} at offset {}: {e}", r.id, r.offset))
                .in_dir(&self.dir)
                .into()
        })
    }

    /// The frame `r` points at, once the pack's header confirms `r`.
    async fn fetch_frame(&self, r: &BlobRef, max_raw: u32) -> Result<Vec<u8>> {
        if r.raw_length > max_raw {
            anyhow::bail!(
                "a reference to blob {} in pack {} claims {} bytes, more than the {max_raw} \
                 bytes such a blob may hold",
                r.id,
                self.dir.pack_key(&r.pack),
                r.raw_length
            );
        }
        let header = self.header(&r.pack).await?;
        header.find(r).map_err(|d| d.in_dir(&self.dir))?;
        // No frame of `raw_length` bytes needs more than this, whatever the
        // header says.
        let bound = zstd::zstd_safe::compress_bound(r.raw_length as usize) as u64;
        if u64::from(r.length) > bound {
            return Err(DamagedPack::damaged(
                r.pack,
                format!(
                    "blob {} at offset {} takes {} bytes, more than any {}-byte blob needs",
                    r.id, r.offset, r.length, r.raw_length
                ),
            )
            .in_dir(&self.dir)
            .into());
        }
        let stream = self
            .range(&r.pack, r.offset, u64::from(r.length), "blobs")
            .await?;
        collect(stream, u64::from(r.length))
            .await
            .map_err(|e| self.read_failed(&r.pack, e, "blobs"))
    }

    /// The storage the packs are read from.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }
}

/// A ranged read's `length` bytes in one buffer.
async fn collect(mut stream: ByteStream, length: u64) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(length as usize);
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::blob::{sample, BlobEncoder, BlobKind};
    use crate::repo::datadir::DataDir;
    use crate::repo::pack::writer::{PackWriter, PackWriterOptions};
    use crate::storage::LocalStorage;
    use bytes::Bytes;

    struct Fixture {
        _dir: tempfile::TempDir,
        storage: Arc<dyn Storage>,
        reader: PackReader,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir.path().to_path_buf()));
        Fixture {
            reader: PackReader::new(storage.clone(), DataDir::Legacy, IdHash::NEW),
            storage,
            _dir: dir,
        }
    }

    /// Stores blobs of `lengths` bytes in one pack; their data and refs.
    async fn stored(storage: &Arc<dyn Storage>, lengths: &[usize]) -> Vec<(Vec<u8>, BlobRef)> {
        let mut writer = PackWriter::new(
            storage.clone(),
            DataDir::Legacy,
            PackWriterOptions::default(),
        );
        let mut encoder = BlobEncoder::with_default_level().unwrap();
        let mut data = Vec::new();
        for (i, &len) in lengths.iter().enumerate() {
            let raw = sample(len, i as u64);
            let blob = encoder.encode(BlobKind::Chunks, &raw).unwrap();
            assert!(writer.add(i, blob).await.unwrap().is_empty());
            data.push(raw);
        }
        let (mut refs, _) = writer.finish().await.unwrap();
        refs.sort_by_key(|(i, _)| *i);
        data.into_iter()
            .zip(refs.into_iter().map(|(_, r)| r))
            .collect()
    }

    #[tokio::test]
    async fn blobs_are_read_back_through_ranged_reads() {
        let f = fixture();
        let blobs = stored(&f.storage, &[0, 1, 70_000, 5000, 0]).await;
        for (data, r) in &blobs {
            assert_eq!(&f.reader.read_blob(r, 1 << 20).await.unwrap(), data);
        }
        let header = f.reader.header(&blobs[0].1.pack).await.unwrap();
        assert_eq!(
            header.refs().collect::<Vec<_>>(),
            blobs.iter().map(|b| b.1).collect::<Vec<_>>()
        );
    }

    /// A header longer than the first read of a pack's end.
    #[tokio::test]
    async fn long_headers_are_read_in_a_second_request() {
        let f = fixture();
        let blobs = stored(&f.storage, &[10; 1000]).await;
        let header = f.reader.read_header(&blobs[0].1.pack).await.unwrap();
        assert_eq!(header.entries.len(), 1000);
        const { assert!(1000 * crate::repo::pack::ENTRY_LEN > TAIL_READ) };
        assert_eq!(
            f.reader.read_blob(&blobs[999].1, 10).await.unwrap(),
            blobs[999].0
        );
    }

    fn damage(err: &anyhow::Error) -> &DamagedPack {
        DamagedPack::find(err).unwrap_or_else(|| panic!("not damage: {err:#}"))
    }

    #[tokio::test]
    async fn references_that_lie_are_refused_before_the_blob_is_read() {
        let f = fixture();
        let blobs = stored(&f.storage, &[3000, 4000]).await;
        let good = blobs[1].1;
        for (lie, says) in [
            (
                BlobRef {
                    offset: good.offset + 1,
                    length: good.length - 1,
                    ..good
                },
                "lists no blob at offset",
            ),
            (
                BlobRef {
                    length: good.length + 1,
                    ..good
                },
                "lies outside",
            ),
            (
                BlobRef {
                    offset: u64::MAX,
                    ..good
                },
                "lies outside",
            ),
            (
                BlobRef {
                    raw_length: 3999,
                    ..good
                },
                "where a reference expects blob",
            ),
            (
                BlobRef {
                    id: blobs[0].1.id,
                    ..good
                },
                "where a reference expects blob",
            ),
        ] {
            let err = f.reader.read_blob(&lie, 1 << 20).await.unwrap_err();
            assert_eq!(damage(&err).pack, good.pack);
            assert!(err.to_string().contains(says), "{lie:?}: {err}");
        }
        let err = f.reader.read_blob(&good, 3999).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("claims 4000 bytes, more than the 3999"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_missing_or_truncated_pack_is_refused_by_name() {
        let f = fixture();
        let blobs = stored(&f.storage, &[3000]).await;
        let r = blobs[0].1;
        let k = DataDir::Legacy.pack_key(&r.pack);
        let bytes = f.storage.get_bytes(&k, 1 << 20).await.unwrap();
        f.storage
            .put_bytes(&k, bytes.slice(..bytes.len() - 20))
            .await
            .unwrap();
        let err = f.reader.read_blob(&r, 1 << 20).await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("pack {k} is damaged: it does not end")),
            "{err}"
        );
        f.storage.delete(&k).await.unwrap();
        let err = f.reader.read_blob(&r, 1 << 20).await.unwrap_err();
        assert_eq!(
            damage(&err),
            &DamagedPack::missing(r.pack).in_dir(&DataDir::Legacy)
        );
        f.storage
            .put_bytes(&k, Bytes::from_static(b"PSNP"))
            .await
            .unwrap();
        let err = f.reader.read_blob(&r, 1 << 20).await.unwrap_err();
        assert!(err.to_string().contains("too short to be a pack"), "{err}");
    }

    /// A pack whose header agrees with the reference but whose blob does
    /// not: a frame that decodes to other bytes, or to more bytes.
    #[tokio::test]
    async fn a_blob_that_is_not_what_the_header_says_is_refused() {
        let f = fixture();
        let mut encoder = BlobEncoder::with_default_level().unwrap();
        let real = vec![7u8; 6000];
        let mut lying = encoder.encode(BlobKind::Chunks, &real).unwrap();
        lying.id = ContentId::of(b"what the header claims");
        let mut longer = encoder.encode(BlobKind::Chunks, &real).unwrap();
        longer.raw_length = 5000;
        longer.id = ContentId::of(&real[..5000]);
        let mut writer = PackWriter::new(
            f.storage.clone(),
            DataDir::Legacy,
            PackWriterOptions::default(),
        );
        writer.add(0, lying).await.unwrap();
        writer.add(1, longer).await.unwrap();
        let (mut refs, _) = writer.finish().await.unwrap();
        refs.sort_by_key(|(i, _)| *i);
        let err = f.reader.read_blob(&refs[0].1, 1 << 20).await.unwrap_err();
        assert_eq!(damage(&err).pack, refs[0].1.pack);
        assert!(
            err.to_string()
                .contains(&format!("its content hashes to {}", ContentId::of(&real))),
            "{err}"
        );
        let err = f.reader.read_blob(&refs[1].1, 1 << 20).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("decompresses to more than the 5000 bytes"),
            "{err}"
        );
    }
}
