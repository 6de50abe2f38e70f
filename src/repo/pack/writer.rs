//! Filling packs with blobs and uploading them.
//!
//! A pack's name is the hash of its bytes (the repository's content id hash)
//! and its key contains the name,
//! so a pack cannot be streamed to storage while it is filled: it is built
//! in memory, hashed as its bytes are appended (finishing it costs the
//! header, not another pass over 16 MiB), and handed to the storage once
//! complete. Uploads run in the background while the next pack fills, a few
//! at a time.
//!
//! The caller learns where a blob went only once its pack is stored: every
//! [`BlobRef`] [`PackWriter`] returns points into a pack that exists. That
//! is the write order format 2 needs: a recipe may be written once all the
//! refs it holds have come back.
//!
//! Memory: a pack holds at most `target` bytes of blobs (more only when a
//! single blob is larger), plus its header (41 bytes a blob). The writer
//! holds the pack being filled and at most `in_flight` packs being
//! uploaded: `(in_flight + 1) × (target + header)`, 48 MiB with the
//! defaults, plus what the storage buffers for one upload (S3: its parts).
//! The references waiting to be returned are 80 bytes a blob plus the
//! caller's tag.
//!
//! The same blobs added in the same order give the same packs, byte for
//! byte and so by name. Dropping the writer cancels its uploads (a backend
//! makes nothing visible of an upload it did not finish).

use std::mem;
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use tokio::task::JoinSet;

use super::{trailer, BlobRef, HeaderEntry, MAX_BLOBS};
use crate::progress::Progress;
use crate::repo::blob::EncodedBlob;
use crate::repo::content_id::{ContentId, IdHash, IdHasher};
use crate::repo::datadir::DataDir;
use crate::storage::{body, Key, Storage};

/// The default size at which a pack is finished: 16 MiB of blobs (as
/// restic's default): two blocks backed up at once, each with a pack
/// filling and two uploading, stay within the backup's memory target.
pub const DEFAULT_TARGET: usize = 16 << 20;

/// The default number of packs uploaded at the same time.
pub const DEFAULT_IN_FLIGHT: usize = 2;

/// How packs are cut and uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackWriterOptions {
    /// A pack is finished once its blobs reach this many bytes.
    pub target: usize,
    /// Packs uploaded at the same time (at least 1).
    pub in_flight: usize,
    /// The hash that names packs (the repository's).
    pub ids: IdHash,
}

impl Default for PackWriterOptions {
    fn default() -> Self {
        PackWriterOptions {
            target: DEFAULT_TARGET,
            in_flight: DEFAULT_IN_FLIGHT,
            ids: IdHash::NEW,
        }
    }
}

/// The pack being filled.
struct Filling<T> {
    bytes: Vec<u8>,
    hasher: IdHasher,
    entries: Vec<HeaderEntry>,
    tags: Vec<T>,
}

impl<T> Filling<T> {
    /// A pack to fill, in `spare` (the buffer of a pack already stored) if
    /// there is one: a fresh 16 MiB buffer costs a page fault per 4 KiB as
    /// it fills, more than the SHA-256 of its bytes on these machines.
    fn new(target: usize, spare: Option<Vec<u8>>, ids: IdHash) -> Filling<T> {
        // Room for a typical header too: finishing should not copy.
        let capacity = target + (64 << 10);
        let bytes = match spare {
            Some(mut buf) if buf.capacity() >= capacity => {
                buf.clear();
                buf
            }
            _ => Vec::with_capacity(capacity),
        };
        Filling {
            bytes,
            hasher: ids.hasher(),
            entries: Vec::new(),
            tags: Vec::new(),
        }
    }

    fn push(&mut self, tag: T, blob: EncodedBlob) -> Result<()> {
        let length = u32::try_from(blob.frame.len())
            .context("a compressed blob is over the 4 GiB a pack header can record")?;
        self.entries.push(HeaderEntry {
            kind: blob.kind,
            raw_length: blob.raw_length,
            length,
            id: blob.id,
            offset: self.bytes.len() as u64,
        });
        self.tags.push(tag);
        self.hasher.update(&blob.frame);
        self.bytes.extend_from_slice(&blob.frame);
        Ok(())
    }

    /// Appends the header; the pack's bytes, its name and the refs.
    fn seal(mut self) -> (Bytes, ContentId, Vec<(T, BlobRef)>) {
        let end = trailer(&self.entries);
        self.hasher.update(&end);
        self.bytes.extend_from_slice(&end);
        let pack: ContentId = self.hasher.finish();
        let refs = self
            .tags
            .into_iter()
            .zip(&self.entries)
            .map(|(tag, e)| {
                let r = BlobRef {
                    pack,
                    offset: e.offset,
                    length: e.length,
                    raw_length: e.raw_length,
                    id: e.id,
                };
                (tag, r)
            })
            .collect();
        (Bytes::from(self.bytes), pack, refs)
    }
}

/// Fills packs with blobs and stores them; see the module documentation.
/// `T` is the caller's tag for a blob, returned with its ref.
pub struct PackWriter<T> {
    storage: Arc<dyn Storage>,
    /// The directory its packs go to.
    dir: DataDir,
    opts: PackWriterOptions,
    /// Hears the raw bytes of a pack's blobs as its upload proceeds.
    progress: Option<Arc<dyn Progress>>,
    filling: Filling<T>,
    uploads: JoinSet<Result<Uploaded<T>>>,
    /// Buffers of packs stored, for the next packs (at most `in_flight`).
    spare: Vec<Vec<u8>>,
    /// Bytes of the packs stored so far.
    stored: u64,
}

impl<T: Send + 'static> PackWriter<T> {
    pub fn new(storage: Arc<dyn Storage>, dir: DataDir, opts: PackWriterOptions) -> PackWriter<T> {
        let opts = PackWriterOptions {
            target: opts.target.max(1),
            in_flight: opts.in_flight.max(1),
            ids: opts.ids,
        };
        PackWriter {
            storage,
            dir,
            opts,
            progress: None,
            filling: Filling::new(opts.target, None, opts.ids),
            uploads: JoinSet::new(),
            spare: Vec::new(),
            stored: 0,
        }
    }

    /// Reports the raw bytes of each pack's blobs to `progress` while the
    /// pack uploads, in proportion to the bytes the storage has taken: a
    /// progress bar then follows the upload (with `--max-bandwidth` too).
    pub fn reporting(mut self, progress: Arc<dyn Progress>) -> PackWriter<T> {
        self.progress = Some(progress);
        self
    }

    /// Adds a blob. Returns the refs of every blob whose pack has been
    /// stored since the last call (of this blob or earlier ones), with their
    /// tags. Waits only when `in_flight` packs are already uploading. Not
    /// cancel-safe: a call dropped while it waits may lose its blob, so
    /// stop by dropping the writer (which cancels its uploads) instead.
    /// An error (a failed upload) leaves the writer unusable.
    pub async fn add(&mut self, tag: T, blob: EncodedBlob) -> Result<Vec<(T, BlobRef)>> {
        let mut done = self.collect_finished()?;
        let full = self.filling.bytes.len() + blob.frame.len() > self.opts.target
            || self.filling.entries.len() == MAX_BLOBS;
        if full && !self.filling.entries.is_empty() {
            done.extend(self.seal().await?);
        }
        self.filling.push(tag, blob)?;
        if self.filling.bytes.len() >= self.opts.target {
            done.extend(self.seal().await?);
        }
        Ok(done)
    }

    /// Finishes the last pack and waits for every upload; returns the refs
    /// not returned yet and the bytes of all the packs stored.
    pub async fn finish(mut self) -> Result<(Vec<(T, BlobRef)>, u64)> {
        let mut done = Vec::new();
        if !self.filling.entries.is_empty() {
            done.extend(self.seal().await?);
        }
        while let Some(joined) = self.uploads.join_next().await {
            done.extend(self.stored(joined)?);
        }
        Ok((done, self.stored))
    }

    /// Starts uploading the pack being filled, after waiting for a slot.
    async fn seal(&mut self) -> Result<Vec<(T, BlobRef)>> {
        let mut done = Vec::new();
        while self.uploads.len() >= self.opts.in_flight {
            let joined = self.uploads.join_next().await.expect("uploads are running");
            done.extend(self.stored(joined)?);
        }
        let next = Filling::new(self.opts.target, self.spare.pop(), self.opts.ids);
        let filled = mem::replace(&mut self.filling, next);
        let (bytes, pack, refs) = filled.seal();
        let storage = self.storage.clone();
        let key = self.dir.pack_key(&pack);
        let raw: u64 = refs.iter().map(|(_, r)| u64::from(r.raw_length)).sum();
        let progress = self.progress.clone().map(|p| (p, raw));
        self.uploads.spawn(async move {
            // Dropped after the upload's own guards when the task is
            // aborted: main then waits for the abort they start.
            let _in_flight = crate::storage::cleanup::InFlight::new();
            let (size, buffer) = upload(storage.as_ref(), &key, bytes, progress)
                .await
                .with_context(|| format!("could not store pack {key}"))?;
            Ok((size, refs, buffer))
        });
        Ok(done)
    }

    fn collect_finished(&mut self) -> Result<Vec<(T, BlobRef)>> {
        let mut done = Vec::new();
        while let Some(joined) = self.uploads.try_join_next() {
            done.extend(self.stored(joined)?);
        }
        Ok(done)
    }

    /// The refs of an upload that ended, counting its bytes.
    fn stored(&mut self, joined: Joined<T>) -> Result<Vec<(T, BlobRef)>> {
        let (size, refs, buffer) = joined.context("a pack upload stopped")??;
        self.stored += size;
        if let Some(buffer) = buffer {
            if self.spare.len() < self.opts.in_flight {
                self.spare.push(buffer);
            }
        }
        Ok(refs)
    }
}

/// What an upload ends with: the pack's size, its refs, and its buffer
/// for the next pack (unless the storage kept a piece of it).
type Uploaded<T> = (u64, Vec<(T, BlobRef)>, Option<Vec<u8>>);

type Joined<T> = Result<Result<Uploaded<T>>, tokio::task::JoinError>;

/// Stores a pack, handed on in pieces of its one buffer (no copies). With
/// `progress`, each piece reports its share of the pack's `raw` bytes as
/// the storage takes it. Returns the pack's size and, when the storage
/// holds no piece of it any more, its buffer.
async fn upload(
    storage: &dyn Storage,
    key: &Key,
    bytes: Bytes,
    progress: Option<(Arc<dyn Progress>, u64)>,
) -> Result<(u64, Option<Vec<u8>>)> {
    let (writer, mut body) = body::channel(4);
    let raw = progress.as_ref().map_or(0, |(_, raw)| *raw);
    if let Some((p, _)) = progress {
        body = body.reporting(p);
    }
    let send = async move {
        let len = bytes.len().max(1) as u64;
        let mut reported = 0;
        // Pieces of the storage's liking: of S3's part size, each part is
        // sent as the slice of the pack it is. Pieces of 1 MiB were
        // gathered into a copy of each part there, up to three 8 MiB copies
        // per upload, which took a backup of the large bench set to Garage
        // from 126 MB resident (to a local directory) to 211. Locally 1 MiB
        // pieces keep the progress close to what is written.
        let piece = storage.upload_piece().max(1);
        for at in (0..bytes.len()).step_by(piece) {
            let end = (at + piece).min(bytes.len());
            // The raw bytes up to this piece's end, in proportion.
            let upto = (u128::from(raw) * end as u128 / u128::from(len)) as u64;
            writer
                .send_counted(bytes.slice(at..end), upto - reported)
                .await?;
            reported = upto;
        }
        writer.finish().await.map(|()| bytes)
    };
    let (stored, sent) = tokio::join!(storage.put(key, body), send);
    let n = stored?;
    let buffer = sent?.try_into_mut().ok().map(Vec::from);
    Ok((n, buffer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::datadir::DataDir;
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use chrono::{DateTime, Utc};
    use tokio::sync::Semaphore;

    use crate::repo::blob::{sample, BlobEncoder, BlobKind};
    use crate::repo::pack::{PackHeader, PackReader};
    use crate::storage::{Body, ByteStream, Key, LocalStorage, ObjectMeta};

    fn local() -> (tempfile::TempDir, Arc<dyn Storage>) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(LocalStorage::new(dir.path().to_path_buf()));
        (dir, storage)
    }

    /// Blobs of many sizes: empty ones, small ones, one larger than a pack.
    fn blobs(big: usize) -> Vec<(Vec<u8>, EncodedBlob)> {
        let mut encoder = BlobEncoder::with_default_level().unwrap();
        let mut lengths: Vec<usize> = (0..200).map(|i| (i * 7919) % 9000).collect();
        lengths[3] = 0;
        lengths[150] = 0;
        lengths[77] = big;
        lengths
            .into_iter()
            .enumerate()
            .map(|(i, len)| {
                let raw = sample(len, i as u64);
                let kind = [BlobKind::Chunks, BlobKind::Index, BlobKind::SmallFile][i % 3];
                let blob = encoder.encode(kind, &raw).unwrap();
                (raw, blob)
            })
            .collect()
    }

    fn group() -> DataDir {
        DataDir::of_group("prom-a")
    }

    async fn write_all(
        storage: &Arc<dyn Storage>,
        opts: PackWriterOptions,
        blobs: &[(Vec<u8>, EncodedBlob)],
    ) -> (BTreeMap<usize, BlobRef>, u64) {
        let mut writer = PackWriter::new(storage.clone(), group(), opts);
        let mut refs = Vec::new();
        for (i, (_, blob)) in blobs.iter().enumerate() {
            refs.extend(writer.add(i, blob.clone()).await.unwrap());
        }
        let (rest, stored) = writer.finish().await.unwrap();
        refs.extend(rest);
        let by_tag: BTreeMap<usize, BlobRef> = refs.iter().copied().collect();
        assert_eq!(by_tag.len(), refs.len(), "a tag came back twice");
        (by_tag, stored)
    }

    #[tokio::test]
    async fn an_uploaded_packs_buffer_comes_back_for_the_next_pack() {
        let (dir, storage) = local();
        let mut buf = Vec::with_capacity(1 << 20);
        buf.extend_from_slice(b"pack bytes");
        let (size, buffer) = upload(storage.as_ref(), &Key::new("x").unwrap(), buf.into(), None)
            .await
            .unwrap();
        assert_eq!(size, 10);
        assert_eq!(std::fs::read(dir.path().join("x")).unwrap(), b"pack bytes");
        let buffer = buffer.expect("a local directory keeps no piece of the pack");
        assert!(buffer.capacity() >= 1 << 20, "{}", buffer.capacity());
        // The next pack is filled in it, emptied.
        let filling = Filling::<usize>::new(1 << 19, Some(buffer), IdHash::NEW);
        assert!(filling.bytes.is_empty() && filling.bytes.capacity() >= 1 << 20);
    }

    #[tokio::test]
    async fn many_blobs_fill_several_packs_and_read_back() {
        let (_dir, storage) = local();
        let target = 64 << 10;
        let blobs = blobs(300_000);
        let opts = PackWriterOptions {
            target,
            in_flight: 3,
            ..Default::default()
        };
        let (refs, stored) = write_all(&storage, opts, &blobs).await;
        assert_eq!(refs.len(), blobs.len(), "every blob has its ref");
        let objects = storage.list("packs/").await.unwrap();
        assert_eq!(stored, objects.iter().map(|o| o.size).sum::<u64>());
        let packs: BTreeSet<ContentId> = refs.values().map(|r| r.pack).collect();
        let listed: BTreeSet<ContentId> = objects
            .iter()
            .map(|o| match DataDir::parse_pack_key(o.key.as_str()) {
                Some((dir, pack)) if dir == group() => pack,
                _ => panic!("{} is not a pack of the group", o.key),
            })
            .collect();
        assert_eq!(packs, listed);
        assert!(packs.len() >= 5, "{} packs", packs.len());
        for pack in &packs {
            // Named by its bytes; no bigger than the target unless it
            // holds a single larger blob; its header lists its blobs.
            let bytes = storage
                .get_bytes(&group().pack_key(pack), 1 << 30)
                .await
                .unwrap();
            assert_eq!(ContentId::of(&bytes), *pack);
            let header = PackHeader::parse(*pack, bytes.len() as u64, &bytes).unwrap();
            let blobs_len = header.blobs_end() as usize;
            assert!(
                blobs_len <= target || header.entries.len() == 1,
                "{blobs_len} bytes"
            );
            for entry in &header.entries {
                let (i, _) = refs
                    .iter()
                    .find(|(_, r)| r.pack == *pack && r.offset == entry.offset)
                    .unwrap();
                assert_eq!(entry.kind, blobs[*i].1.kind);
            }
        }
        let reader = PackReader::new(storage.clone(), group(), IdHash::NEW);
        for (i, r) in &refs {
            assert_eq!(
                reader.read_blob(r, 1 << 20).await.unwrap(),
                blobs[*i].0,
                "blob {i}"
            );
        }
    }

    /// The same blobs in the same order make the same packs, wherever and
    /// however fast they are uploaded.
    #[tokio::test]
    async fn packs_are_deterministic() {
        let blobs = blobs(100_000);
        let (_a, first) = local();
        let (_b, second) = local();
        let opts = |in_flight| PackWriterOptions {
            target: 128 << 10,
            in_flight,
            ..Default::default()
        };
        let (refs_a, size_a) = write_all(&first, opts(1), &blobs).await;
        let (refs_b, size_b) = write_all(&second, opts(4), &blobs).await;
        assert_eq!(refs_a, refs_b);
        assert_eq!(size_a, size_b);
        let keys =
            |objects: Vec<ObjectMeta>| objects.into_iter().map(|o| o.key).collect::<Vec<_>>();
        assert_eq!(
            keys(first.list("packs/").await.unwrap()),
            keys(second.list("packs/").await.unwrap())
        );
    }

    /// A storage whose uploads wait for the test's permission, counting
    /// them; or that fails every upload.
    #[derive(Debug)]
    struct Gated {
        inner: LocalStorage,
        gate: Semaphore,
        started: AtomicUsize,
        fail: bool,
    }

    #[async_trait]
    impl Storage for Gated {
        fn describe(&self) -> String {
            self.inner.describe()
        }
        async fn put(&self, key: &Key, body: Body) -> anyhow::Result<u64> {
            self.started.fetch_add(1, Ordering::SeqCst);
            if self.fail {
                anyhow::bail!("the disk is full");
            }
            let _permit = self.gate.acquire().await?;
            self.inner.put(key, body).await
        }
        async fn get(&self, key: &Key) -> anyhow::Result<ByteStream> {
            self.inner.get(key).await
        }
        async fn get_range(
            &self,
            key: &Key,
            offset: u64,
            length: u64,
        ) -> anyhow::Result<ByteStream> {
            self.inner.get_range(key, offset, length).await
        }
        async fn head(&self, key: &Key) -> anyhow::Result<Option<ObjectMeta>> {
            self.inner.head(key).await
        }
        async fn list(&self, prefix: &str) -> anyhow::Result<Vec<ObjectMeta>> {
            self.inner.list(prefix).await
        }
        async fn delete(&self, key: &Key) -> anyhow::Result<()> {
            self.inner.delete(key).await
        }
        async fn abort_incomplete(
            &self,
            before: DateTime<Utc>,
            dry_run: bool,
        ) -> anyhow::Result<u64> {
            self.inner.abort_incomplete(before, dry_run).await
        }
    }

    fn gated(dir: &tempfile::TempDir, fail: bool) -> Arc<Gated> {
        Arc::new(Gated {
            inner: LocalStorage::new(dir.path().to_path_buf()),
            gate: Semaphore::new(0),
            started: AtomicUsize::new(0),
            fail,
        })
    }

    /// With two uploads stuck, the writer fills no third pack: memory stays
    /// at the packs in flight plus the one being filled.
    #[tokio::test]
    async fn no_more_than_in_flight_packs_are_uploading() {
        let dir = tempfile::tempdir().unwrap();
        let storage = gated(&dir, false);
        // Every blob fills a pack of its own.
        let opts = PackWriterOptions {
            target: 1,
            in_flight: 2,
            ..Default::default()
        };
        let mut encoder = BlobEncoder::with_default_level().unwrap();
        let blobs: Vec<EncodedBlob> = (0..6)
            .map(|i| encoder.encode(BlobKind::Chunks, &sample(6000, i)).unwrap())
            .collect();
        let dyn_storage: Arc<dyn Storage> = storage.clone();
        let writer = tokio::spawn(async move {
            let mut writer = PackWriter::new(dyn_storage, DataDir::Legacy, opts);
            let mut refs = Vec::new();
            for (i, blob) in blobs.into_iter().enumerate() {
                refs.extend(writer.add(i, blob).await?);
            }
            refs.extend(writer.finish().await?.0);
            anyhow::Ok(refs)
        });
        let started = || storage.started.load(Ordering::SeqCst);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while started() < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "uploads did not start"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert_eq!(started(), 2, "a third upload started while two were stuck");
        assert!(!writer.is_finished());
        storage.gate.add_permits(100);
        let refs = writer.await.unwrap().unwrap();
        assert_eq!(refs.len(), 6);
        assert_eq!(started(), 6);
    }

    #[tokio::test]
    async fn a_failed_upload_is_an_error_naming_the_pack() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = gated(&dir, true);
        let mut writer = PackWriter::new(storage, DataDir::Legacy, PackWriterOptions::default());
        let blob = BlobEncoder::with_default_level()
            .unwrap()
            .encode(BlobKind::Index, b"index")
            .unwrap();
        writer.add((), blob).await.unwrap();
        let err = writer.finish().await.unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.starts_with("could not store pack packs/"), "{msg}");
        assert!(msg.ends_with("the disk is full"), "{msg}");
    }
}
