//! Storing one block in repository format 2 (docs/FORMAT.md, "Backing up a
//! block").
//!
//! A blocking thread reads the block: its whole files (`meta.json`,
//! `tombstones`, the index) cut into blobs, and its chunk segments split
//! into window streams (`tsdb::windows`). A window whose start the
//! repository already holds a leaf for is only hashed on this first pass;
//! every other window is cut into blobs and compressed as it streams by.
//! After the pass, a hashed window whose SHA-256, length and record count
//! equal a stored leaf's is referenced; one that was expected but differs
//! (its chunks were re-encoded: deleted series, vertical compaction) is
//! read again and uploaded in a second pass over that block. A block whose
//! chunk files do not follow its index is stored file by file instead.
//!
//! The reading thread only cuts blobs; compressing them (zstd and the
//! SHA-256 that names each) is the heavy part, and runs on a pool of
//! `threads` worker threads of its own (`--zstd-threads`, by default one
//! per core), so that one big block uses every core. For each blob the
//! reading thread queues a job for the workers and sends, in the order the
//! blobs were cut, a promise of the result to the async side, which awaits
//! the promises in that order and fills packs with the blobs
//! (`pack::PackWriter`): blobs reach the packs in the same order whatever
//! the number of workers or the order they finish in, so the same block
//! gives the same packs, byte for byte. The recipe is written only once
//! every pack it references is stored. With one thread, blobs are
//! compressed on the reading thread itself.
//!
//! Memory per block: one blob buffer per window being uploaded (at most
//! [`WINDOW_BLOB_MAX`], less for blocks of many windows, see
//! [`blob_target`]), one hash state per window; at most [`blobs_in_flight`] blobs between
//! the cutter and the packs (`8 × threads + 2`: each one blob target of
//! raw data, then its compressed frame), one zstd context per worker
//! (about 1 MiB at level 1); the pack being filled and those uploading.
//! An error on either side stops the other: a failed upload or compression
//! drops the promises, so the reading thread's next send fails and it
//! stops; a failed read ends the stream of promises after the blobs
//! already cut; the workers finish the jobs queued (skipping those nobody
//! awaits any more) and end with the reading thread.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::{mpsc as queue, Arc, Mutex};

use anyhow::{Context, Result};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use super::blob::{BlobEncoder, BlobKind, EncodedBlob};
use super::content_id::{ContentId, IdHash, IdHasher};
use super::cutter::BlobCutter;
use super::datadir::DataDir;
use super::leaves::LeafTable;
use super::manifest::{FileEntry, ObjectRef};
use super::pack::{BlobRef, PackWriter, PackWriterOptions};
use super::recipe::{ChunkLayout, Chunks, Leaf, Recipe, Segment, RECIPE_VERSION};
use super::Repository;
use crate::progress::Progress;
use crate::storage::body::UploadAbandoned;
use crate::tsdb::windows::{self, RecordSink, Split, WindowLayout, DEFAULT_WINDOW_MS};
use crate::tsdb::Block;

/// How much window data one block may hold in blob buffers at once.
const WINDOW_BUFFERS: usize = 16 << 20;

/// The largest blob a window stream is cut into. A restore holds one decoded
/// blob of every window stream of a block at once (the join advances them
/// together), and a window stream keeps the blobs it was cut into when its
/// 2 h block was stored, also once it is reused by a 162 h block of 81
/// windows: with 1 MiB blobs (before this version) that was 81 MiB for one
/// block. Cut at 256 KiB it is 20 MiB; zstd stores chunk data no larger for
/// it (each frame's window is 128 KiB either way: 0.01 % on the bench set).
pub const WINDOW_BLOB_MAX: usize = 256 << 10;

/// How a block is stored.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// zstd level of every blob.
    pub level: i32,
    /// Threads compressing blobs; 0 or 1 compresses on the reading thread.
    pub threads: usize,
    pub window_ms: i64,
    /// The blob target; `None` picks it from the block's span
    /// ([`blob_target`]).
    pub blob_target: Option<usize>,
    /// How packs are cut and uploaded. Their `ids` are the repository's:
    /// [`store_block`] sets them (and names blobs and windows with them),
    /// whatever the caller passed.
    pub packs: PackWriterOptions,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            level: crate::archive::DEFAULT_LEVEL,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            window_ms: DEFAULT_WINDOW_MS,
            blob_target: None,
            packs: PackWriterOptions::default(),
        }
    }
}

/// The most blobs of one block between the cutter and the packs, with
/// `threads` compressing them: the promises the channel to the async side
/// holds (`8 × threads`: enough to keep every worker busy while the async
/// side waits for the oldest, and while the reading thread waits for its
/// next direct read; with `2 × threads` the workers of the largest block
/// sat idle for half a backup), the one the async side is adding to a pack,
/// and the one the reading thread is trying to send.
pub fn blobs_in_flight(threads: usize) -> usize {
    channel_capacity(threads) + 2
}

fn channel_capacity(threads: usize) -> usize {
    8 * threads.max(2)
}

/// What storing a block did.
#[derive(Debug)]
pub struct Stored {
    pub recipe: Recipe,
    /// The recipe object: its key, size and SHA-256 (the manifest's entry).
    pub object: ObjectRef,
    /// Block bytes read from disk (chunk files read twice count twice).
    pub bytes_read: u64,
    /// Pack bytes uploaded for this block (plus the recipe).
    pub bytes_uploaded: u64,
    /// Chunk data referenced from earlier snapshots instead of uploaded.
    pub bytes_reused: u64,
    /// What the block takes in the repository: what was uploaded for it,
    /// plus the stored bytes of the leaves it reuses.
    pub bytes_stored: u64,
}

/// The blob target for a block of `windows` windows: 1 MiB, less when
/// that many buffers would pass [`WINDOW_BUFFERS`], at least 128 KiB.
pub fn blob_target(windows: u64) -> usize {
    let per = WINDOW_BUFFERS as u64 / windows.max(1);
    per.clamp(128 << 10, super::cutter::DEFAULT_TARGET as u64) as usize
}

/// Where a blob belongs in the recipe.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Tag {
    /// A file stored whole, by path.
    Whole(String),
    Index,
    /// A window stream, by its start.
    Window(i64),
    /// A chunk file stored as it is (the `files` layout), by path.
    File(String),
}

/// One blob on its way to a pack, with its place in its stream: the
/// promise of its compressed form (kept by a worker, or already kept).
struct Msg {
    tag: Tag,
    seq: u32,
    blob: oneshot::Receiver<io::Result<EncodedBlob>>,
}

/// Stores `block` in format 2, referencing the leaves in `known` where its
/// windows match them, and writes its recipe. Its packs and recipe go to
/// `dir`; the leaves in `known` must be of recipes of that directory (a
/// recipe references only packs of its own directory).
pub async fn store_block(
    repo: &Repository,
    dir: &DataDir,
    block: &Block,
    known: Arc<LeafTable>,
    opts: StoreOptions,
    progress: Arc<dyn Progress>,
) -> Result<Stored> {
    let ulid = block.ulid.to_string();
    let packs = PackWriterOptions {
        ids: repo.ids(),
        ..opts.packs
    };
    let opts = StoreOptions { packs, ..opts };
    let (tx, mut rx) = mpsc::channel::<Msg>(channel_capacity(opts.threads));
    let reader = {
        let (block, known) = (block.clone(), known.clone());
        // Progress is counted as packs are stored (below), not as read.
        tokio::task::spawn_blocking(move || {
            read_block(&block, &known, opts, &tx, &crate::progress::Silent)
        })
    };
    // Chunk data and the rest go to separate packs: a window stream lives on
    // in the blocks compacted from this one, its index and meta.json do not,
    // and packs whose blobs die together are deleted whole by prune.
    // Progress counts a blob's block bytes as its pack is uploaded, so that
    // under --max-bandwidth it follows the upload, not the reading.
    let storage = repo.storage().clone();
    let mut data: PackWriter<(Tag, u32)> =
        PackWriter::new(storage.clone(), dir.clone(), opts.packs).reporting(progress.clone());
    let mut meta: PackWriter<(Tag, u32)> =
        PackWriter::new(storage, dir.clone(), opts.packs).reporting(progress.clone());
    let mut refs: HashMap<(Tag, u32), BlobRef> = HashMap::new();
    let packed = pack_blobs(&mut rx, &ulid, &mut data, &mut meta, &mut refs).await;
    // On an error, dropping `rx` (and with it every promise) stops the
    // reading thread at its next blob, or its next MiB of chunks if it is
    // only hashing; its workers skip what nobody awaits. Waiting for it
    // means nothing still reads the block once this returns.
    drop(rx);
    let read = reader.await.context("the block reading thread failed");
    packed?;
    let read = read?.with_context(|| format!("could not back up block {ulid}"))?;
    let (rest, stored_data) = data.finish().await?;
    refs.extend(rest);
    let (rest, stored_meta) = meta.finish().await?;
    refs.extend(rest);
    let stored = stored_data + stored_meta;
    let recipe = read.recipe(block, refs)?;
    recipe
        .validate()
        .context("the recipe just made does not check out")?;
    let json = Bytes::from(recipe.to_json());
    // Never write what no reader would read.
    anyhow::ensure!(
        json.len() as u64 <= super::recipe::MAX_RECIPE_BYTES,
        "block {ulid} would need a recipe of {} bytes, more than the {} a recipe may have; \
         promsnap cannot store a block this large",
        json.len(),
        super::recipe::MAX_RECIPE_BYTES
    );
    let key = dir.recipe_key(&ulid, &block.fingerprint)?;
    let object = ObjectRef {
        key: key.to_string(),
        size: json.len() as u64,
        sha256: hex::encode(Sha256::digest(&json)),
    };
    repo.storage()
        .put_bytes(&key, json)
        .await
        .with_context(|| format!("could not write recipe {key}"))?;
    // What was reused, and the segment headers, count as done now.
    let headers = 8 * recipe.chunks.segments.len() as u64;
    progress.advance(read.bytes_reused + headers);
    progress.note(&format!("block {ulid} stored ({stored} bytes new)"));
    let reused_blobs: u64 = match &read.chunks {
        ReadChunks::Windows { leaves, .. } => leaves
            .iter()
            .filter_map(|l| l.4.as_ref())
            .flat_map(|leaf| &leaf.blobs)
            .map(|b| u64::from(b.length))
            .sum(),
        ReadChunks::Files(_) => 0,
    };
    let bytes_uploaded = stored + object.size;
    Ok(Stored {
        bytes_reused: read.bytes_reused,
        bytes_read: read.bytes_read,
        bytes_uploaded,
        bytes_stored: bytes_uploaded + reused_blobs,
        recipe,
        object,
    })
}

/// The async side: takes the blobs' promises in the order they were cut
/// and adds each blob, once compressed, to its packs. Awaiting them in that
/// order puts the blobs into packs in that order, however the workers
/// finish, so the packs do not depend on the number of threads.
async fn pack_blobs(
    rx: &mut mpsc::Receiver<Msg>,
    ulid: &str,
    data: &mut PackWriter<(Tag, u32)>,
    meta: &mut PackWriter<(Tag, u32)>,
    refs: &mut HashMap<(Tag, u32), BlobRef>,
) -> Result<()> {
    while let Some(msg) = rx.recv().await {
        let blob = msg
            .blob
            .await
            .context("a thread compressing blobs failed")?
            .with_context(|| {
                format!(
                    "could not back up block {ulid}: compressing blob {} of {:?} failed",
                    msg.seq, msg.tag
                )
            })?;
        // Chunk data and the rest go to separate packs (see store_block).
        let packs = match msg.tag {
            Tag::Window(_) | Tag::File(_) => &mut *data,
            Tag::Whole(_) | Tag::Index => &mut *meta,
        };
        refs.extend(packs.add((msg.tag, msg.seq), blob).await?);
    }
    Ok(())
}

/// What the reading thread learned about the block.
struct ReadBlock {
    files: Vec<FileEntry>,
    /// Blobs of each stream, by tag, in stream order.
    counts: BTreeMap<Tag, u32>,
    chunks: ReadChunks,
    bytes_read: u64,
    bytes_reused: u64,
}

enum ReadChunks {
    Windows {
        layout: WindowLayout,
        /// Per window: its totals and SHA-256, and the stored leaf it
        /// reuses (none: it was uploaded).
        leaves: Vec<(i64, u64, u64, ContentId, Option<Leaf>)>,
    },
    Files(Vec<(String, u64)>),
}

impl ReadBlock {
    /// The recipe, from what was read and where each blob went.
    fn recipe(&self, block: &Block, refs: HashMap<(Tag, u32), BlobRef>) -> Result<Recipe> {
        let stream = |tag: Tag| -> Result<Vec<BlobRef>> {
            let n = self.counts.get(&tag).copied().unwrap_or(0);
            (0..n)
                .map(|seq| {
                    refs.get(&(tag.clone(), seq))
                        .copied()
                        .with_context(|| format!("blob {seq} of {tag:?} was not stored"))
                })
                .collect()
        };
        let mut small = BTreeMap::new();
        for f in &self.files {
            if f.path != "index" && !f.path.starts_with("chunks/") {
                small.insert(f.path.clone(), stream(Tag::Whole(f.path.clone()))?);
            }
        }
        let chunks = match &self.chunks {
            ReadChunks::Windows { layout, leaves } => Chunks {
                layout: ChunkLayout::Windows,
                window_ms: layout.window_ms,
                records: layout.records,
                segments: layout
                    .segments
                    .iter()
                    .map(|s| Segment {
                        path: s.path.clone(),
                        size: s.size,
                        header: hex::encode(s.header),
                    })
                    .collect(),
                leaves: leaves
                    .iter()
                    .map(|(start, records, bytes, sha, reused)| {
                        Ok(Leaf {
                            start: *start,
                            records: *records,
                            bytes: *bytes,
                            hash: *sha,
                            blobs: match reused {
                                Some(leaf) => leaf.blobs.clone(),
                                None => stream(Tag::Window(*start))?,
                            },
                        })
                    })
                    .collect::<Result<_>>()?,
            },
            ReadChunks::Files(files) => Chunks {
                layout: ChunkLayout::Files,
                window_ms: 0,
                records: 0,
                segments: files
                    .iter()
                    .map(|(path, size)| Segment {
                        path: path.clone(),
                        size: *size,
                        header: String::new(),
                    })
                    .collect(),
                leaves: files
                    .iter()
                    .map(|(path, size)| {
                        let sha = self
                            .files
                            .iter()
                            .find(|f| &f.path == path)
                            .map(|f| f.sha256.parse::<ContentId>())
                            .context("a chunk file without its entry")??;
                        Ok(Leaf {
                            start: 0,
                            records: 0,
                            bytes: *size,
                            hash: sha,
                            blobs: stream(Tag::File(path.clone()))?,
                        })
                    })
                    .collect::<Result<_>>()?,
            },
        };
        Ok(Recipe {
            format_version: RECIPE_VERSION,
            ulid: block.ulid.to_string(),
            fingerprint: block.fingerprint.clone(),
            min_time: block.meta.min_time,
            max_time: block.meta.max_time,
            compaction_level: block.meta.compaction.level,
            stats: block.meta.stats.clone(),
            files: self.files.clone(),
            small,
            index: stream(Tag::Index)?,
            chunks,
        })
    }
}

/// Where blobs are compressed.
enum Compress {
    /// On the reading thread.
    Here(BlobEncoder),
    /// On the workers, which take jobs from this queue.
    Workers(queue::Sender<Job>),
}

/// One blob for a worker to compress, and where to keep the result.
struct Job {
    kind: BlobKind,
    raw: Vec<u8>,
    done: oneshot::Sender<io::Result<EncodedBlob>>,
}

/// A worker: compresses the jobs it takes from `jobs` until the queue is
/// closed (the reading thread is done) and empty.
fn compress_jobs(jobs: &Mutex<queue::Receiver<Job>>, mut encoder: BlobEncoder) {
    loop {
        // The lock is held while waiting: the other workers wait for it
        // instead of for the queue, which is the same.
        let next = match jobs.lock() {
            Ok(jobs) => jobs.recv(),
            Err(_) => return,
        };
        let Ok(job) = next else { return };
        // Nobody awaits the blob any more: the block failed.
        if job.done.is_closed() {
            continue;
        }
        let _ = job.done.send(encoder.encode(job.kind, &job.raw));
    }
}

/// Sends blobs, with their place, on their way to the pack writer.
struct Out<'a> {
    compress: Compress,
    tx: &'a mpsc::Sender<Msg>,
    counts: BTreeMap<Tag, u32>,
}

impl Out<'_> {
    /// Sends the blob `raw` on; a worker takes the buffer itself, which
    /// leaves `raw` empty.
    fn emit(&mut self, tag: &Tag, kind: BlobKind, raw: &mut Vec<u8>) -> Result<()> {
        let (done, blob) = oneshot::channel();
        match &mut self.compress {
            Compress::Here(encoder) => {
                let _ = done.send(encoder.encode(kind, raw));
            }
            Compress::Workers(jobs) => {
                let job = Job {
                    kind,
                    raw: std::mem::take(raw),
                    done,
                };
                // Fails only if every worker is gone, which they are only
                // after a panic: the async side hears of it first.
                jobs.send(job).map_err(|_| UploadAbandoned)?;
            }
        }
        let seq = self.counts.entry(tag.clone()).or_insert(0);
        let msg = Msg {
            tag: tag.clone(),
            seq: *seq,
            blob,
        };
        *seq += 1;
        // Waits while the channel is full: the bound on blobs in flight.
        self.tx.blocking_send(msg).map_err(|_| UploadAbandoned)?;
        Ok(())
    }

    /// Cuts a whole file into blobs; returns its entry.
    fn file(
        &mut self,
        block: &Path,
        path: &str,
        tag: Tag,
        kind: BlobKind,
        target: usize,
        progress: &dyn Progress,
    ) -> Result<FileEntry> {
        let full = block.join(path);
        let mut file = File::open(&full).map_err(|e| read_error(e, &full))?;
        let mut cutter = BlobCutter::new(target);
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 << 10];
        let mut size: u64 = 0;
        loop {
            let n = file.read(&mut buf).map_err(|e| read_error(e, &full))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            size += n as u64;
            progress.advance(n as u64);
            cutter.push(&buf[..n], &mut |raw| self.emit(&tag, kind, raw))?;
        }
        cutter.finish(&mut |raw| self.emit(&tag, kind, raw))?;
        Ok(FileEntry {
            path: path.to_string(),
            size,
            sha256: hex::encode(hasher.finalize()),
        })
    }
}

fn read_error(e: io::Error, path: &Path) -> anyhow::Error {
    anyhow::Error::new(e).context(format!("could not read {}", path.display()))
}

/// The reading thread (module docs), with its compressing workers.
fn read_block(
    block: &Block,
    known: &LeafTable,
    opts: StoreOptions,
    tx: &mpsc::Sender<Msg>,
    progress: &dyn Progress,
) -> Result<ReadBlock> {
    let out = |compress| Out {
        compress,
        tx,
        counts: BTreeMap::new(),
    };
    if opts.threads <= 1 {
        let here = Compress::Here(BlobEncoder::new(opts.level, opts.packs.ids)?);
        return read_chunks(block, known, opts, out(here), progress);
    }
    let encoders = (0..opts.threads)
        .map(|_| BlobEncoder::new(opts.level, opts.packs.ids))
        .collect::<io::Result<Vec<_>>>()?;
    let (jobs, queue) = queue::channel();
    let queue = Mutex::new(queue);
    std::thread::scope(|scope| {
        for encoder in encoders {
            let queue = &queue;
            std::thread::Builder::new()
                .name("promsnap-zstd".into())
                .spawn_scoped(scope, move || compress_jobs(queue, encoder))
                .context("could not start a thread to compress blobs")?;
        }
        // `jobs` goes with `out` when this returns (also early, on an
        // error): the workers then finish the queue and the scope ends.
        read_chunks(block, known, opts, out(Compress::Workers(jobs)), progress)
    })
}

/// What the reading thread does: every file, then the chunks.
fn read_chunks(
    block: &Block,
    known: &LeafTable,
    opts: StoreOptions,
    mut out: Out<'_>,
    progress: &dyn Progress,
) -> Result<ReadBlock> {
    let span = (block.meta.max_time - block.meta.min_time).max(0) as u64;
    let target = opts
        .blob_target
        .unwrap_or_else(|| blob_target(span / opts.window_ms.max(1) as u64 + 2));
    let mut files = Vec::new();
    for f in &block.files {
        if f.rel != "index" && !f.rel.starts_with("chunks/") {
            let tag = Tag::Whole(f.rel.clone());
            files.push(out.file(
                &block.path,
                &f.rel,
                tag,
                BlobKind::SmallFile,
                target,
                progress,
            )?);
        }
    }
    files.push(out.file(
        &block.path,
        "index",
        Tag::Index,
        BlobKind::Index,
        target,
        progress,
    )?);
    let mut bytes_read: u64 = files.iter().map(|f| f.size).sum();

    // First pass: hash every window, upload the ones nothing matches.
    let window_target = target.min(WINDOW_BLOB_MAX);
    let upload = |start: i64| !known.has_window(start);
    let ids = opts.packs.ids;
    let mut first = Windows::new(&mut out, &upload, window_target, ids, progress);
    let split = windows::split(&block.path, opts.window_ms, &mut first)?;
    let hashed = first.finish()?;
    let layout = match split {
        Split::Windows(layout) => layout,
        Split::NotInStep(_) => {
            return store_files(block, out, files, bytes_read, target, progress);
        }
    };
    bytes_read += chunk_bytes(&layout);
    let mut leaves = Vec::with_capacity(layout.windows.len());
    let mut again = BTreeSet::new();
    for w in &layout.windows {
        let h = &hashed[&w.start];
        let found = match h.uploaded {
            true => None,
            false => known.find(w.start, &h.sha, w.bytes, w.records).cloned(),
        };
        if !h.uploaded && found.is_none() {
            again.insert(w.start);
        }
        leaves.push((w.start, w.records, w.bytes, h.sha, found));
    }
    // Second pass: the windows expected to be stored that differ.
    if !again.is_empty() {
        let upload = |start: i64| again.contains(&start);
        // Its bytes were counted as progress in the first pass already.
        let silent = &crate::progress::Silent;
        let mut second = Windows::new(&mut out, &upload, window_target, ids, silent);
        let split = windows::split(&block.path, opts.window_ms, &mut second)?;
        let rehashed = second.finish()?;
        anyhow::ensure!(
            matches!(split, Split::Windows(ref l) if *l == layout)
                && again.iter().all(|w| rehashed[w].sha == hashed[w].sha),
            "block {} changed while it was read",
            block.ulid
        );
        bytes_read += chunk_bytes(&layout);
    }
    let bytes_reused = leaves.iter().filter(|l| l.4.is_some()).map(|l| l.2).sum();
    for s in &layout.segments {
        files.push(FileEntry {
            path: s.path.clone(),
            size: s.size,
            sha256: hex::encode(s.sha256),
        });
    }
    Ok(ReadBlock {
        files,
        counts: out.counts,
        chunks: ReadChunks::Windows { layout, leaves },
        bytes_read,
        bytes_reused,
    })
}

fn chunk_bytes(layout: &WindowLayout) -> u64 {
    layout.segments.iter().map(|s| s.size).sum()
}

/// The fallback: every file below `chunks/` stored as it is.
fn store_files(
    block: &Block,
    mut out: Out<'_>,
    mut files: Vec<FileEntry>,
    mut bytes_read: u64,
    target: usize,
    progress: &dyn Progress,
) -> Result<ReadBlock> {
    let mut chunk_files = Vec::new();
    for f in block.files.iter().filter(|f| f.rel.starts_with("chunks/")) {
        let tag = Tag::File(f.rel.clone());
        let entry = out.file(&block.path, &f.rel, tag, BlobKind::Chunks, target, progress)?;
        bytes_read += entry.size;
        chunk_files.push((entry.path.clone(), entry.size));
        files.push(entry);
    }
    Ok(ReadBlock {
        files,
        counts: out.counts,
        chunks: ReadChunks::Files(chunk_files),
        bytes_read,
        bytes_reused: 0,
    })
}

/// What one pass learned about a window.
struct Hashed {
    sha: ContentId,
    uploaded: bool,
}

/// The record sink of a pass: hashes every window, cuts and uploads those
/// `upload` picks.
struct Windows<'o, 'a, U: Fn(i64) -> bool> {
    out: &'o mut Out<'a>,
    upload: &'o U,
    target: usize,
    ids: IdHash,
    progress: &'o dyn Progress,
    open: BTreeMap<i64, Open>,
    /// Bytes seen but not yet reported as progress.
    unreported: u64,
}

struct Open {
    hasher: IdHasher,
    cutter: Option<BlobCutter>,
}

impl<'o, 'a, U: Fn(i64) -> bool> Windows<'o, 'a, U> {
    fn new(
        out: &'o mut Out<'a>,
        upload: &'o U,
        target: usize,
        ids: IdHash,
        progress: &'o dyn Progress,
    ) -> Self {
        Windows {
            out,
            upload,
            target,
            ids,
            progress,
            open: BTreeMap::new(),
            unreported: 0,
        }
    }

    /// Cuts the last blobs and returns every window's hash.
    fn finish(mut self) -> Result<BTreeMap<i64, Hashed>> {
        self.progress.advance(self.unreported);
        let mut done = BTreeMap::new();
        for (start, open) in std::mem::take(&mut self.open) {
            let uploaded = open.cutter.is_some();
            if let Some(cutter) = open.cutter {
                let tag = Tag::Window(start);
                cutter.finish(&mut |raw| self.out.emit(&tag, BlobKind::Chunks, raw))?;
            }
            done.insert(
                start,
                Hashed {
                    sha: open.hasher.finish(),
                    uploaded,
                },
            );
        }
        Ok(done)
    }
}

impl<U: Fn(i64) -> bool> RecordSink for Windows<'_, '_, U> {
    fn record(&mut self, window: i64, bytes: &[u8]) -> io::Result<()> {
        let (target, upload, ids) = (self.target, self.upload, self.ids);
        let open = self.open.entry(window).or_insert_with(|| Open {
            hasher: ids.hasher(),
            cutter: upload(window).then(|| BlobCutter::new(target)),
        });
        open.hasher.update(bytes);
        if let Some(cutter) = &mut open.cutter {
            let tag = Tag::Window(window);
            let out = &mut *self.out;
            cutter
                .push(bytes, &mut |raw| out.emit(&tag, BlobKind::Chunks, raw))
                .map_err(io::Error::other)?;
        }
        self.unreported += bytes.len() as u64;
        if self.unreported >= 1 << 20 {
            self.progress.advance(self.unreported);
            self.unreported = 0;
            // A window only hashed sends nothing: look whether the block
            // was given up, rather than read the rest of it for nothing.
            if self.out.tx.is_closed() {
                return Err(io::Error::other(UploadAbandoned));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Silent;
    use crate::repo::rebuild;
    use crate::storage::{Key, LocalStorage};
    use std::path::PathBuf;

    /// Where the tests store: a group's data directory.
    fn test_dir() -> DataDir {
        DataDir::of_group("prom-a")
    }

    fn fixtures(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(rel)
    }

    /// The blocks in a fixture directory, by time.
    fn blocks(rel: &str) -> Vec<Block> {
        let mut blocks = crate::tsdb::find_blocks(&fixtures(rel)).unwrap().0;
        blocks.sort_by_key(|b| b.meta.min_time);
        assert!(!blocks.is_empty(), "no blocks in fixtures/{rel}");
        blocks
    }

    fn repo() -> (tempfile::TempDir, Repository) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::new(Arc::new(LocalStorage::new(dir.path().to_path_buf())));
        (dir, repo)
    }

    /// The block entry a manifest would hold for what was stored.
    fn entry(block: &Block, stored: &Stored) -> crate::repo::manifest::BlockEntry {
        crate::repo::manifest::BlockEntry {
            ulid: block.ulid.to_string(),
            min_time: block.meta.min_time,
            max_time: block.meta.max_time,
            compaction_level: block.meta.compaction.level,
            stats: block.meta.stats.clone(),
            fingerprint: block.fingerprint.clone(),
            object: stored.object.clone(),
            files: stored.recipe.files.clone(),
            bytes_stored: Some(stored.recipe.stored_bytes()),
            bytes_new: Some(stored.bytes_uploaded),
        }
    }

    /// Rebuilds `block` from the repository and compares every file.
    async fn rebuilds_identically(repo: &Repository, block: &Block, stored: &Stored) {
        let out = tempfile::tempdir().unwrap();
        let dir = out.path().join("b");
        fs::create_dir(&dir).unwrap();
        rebuild::rebuild(
            repo,
            &entry(block, stored),
            &dir,
            Arc::new(Silent),
            false,
            32 << 20,
        )
        .await
        .unwrap();
        for f in &block.files {
            assert_eq!(
                fs::read(block.path.join(&f.rel)).unwrap(),
                fs::read(dir.join(&f.rel)).unwrap(),
                "{} of {} differs",
                f.rel,
                block.ulid
            );
        }
    }

    use std::fs;

    #[tokio::test]
    async fn every_fixture_block_is_stored_and_rebuilt_byte_for_byte() {
        let (_dir, repo) = repo();
        let dirs = [
            "data",
            "histograms/prometheus-2.42",
            "histograms/prometheus-3.5",
            "utf8/data",
            "newer-encodings/data",
        ];
        for rel in dirs {
            for block in blocks(rel) {
                let known = Arc::new(LeafTable::new(DEFAULT_WINDOW_MS));
                let stored = store_block(
                    &repo,
                    &test_dir(),
                    &block,
                    known,
                    StoreOptions::default(),
                    Arc::new(Silent),
                )
                .await
                .unwrap();
                assert_eq!(stored.bytes_reused, 0);
                rebuilds_identically(&repo, &block, &stored).await;
            }
        }
    }

    /// The point of format 2: a block compacted from blocks the repository
    /// holds uploads only its index and small files; a block whose chunks
    /// were re-encoded in one window uploads that window alone.
    #[tokio::test]
    async fn a_compacted_block_reuses_its_sources_windows() {
        for line in ["prometheus-2.42", "prometheus-3.5"] {
            let (_dir, repo) = repo();
            let mut known = LeafTable::new(DEFAULT_WINDOW_MS);
            for source in blocks(&format!("compaction/{line}/source")) {
                let stored = store_block(
                    &repo,
                    &test_dir(),
                    &source,
                    Arc::new(LeafTable::new(DEFAULT_WINDOW_MS)),
                    StoreOptions::default(),
                    Arc::new(Silent),
                )
                .await
                .unwrap();
                known.add(&stored.recipe);
            }
            let known = Arc::new(known);
            let compacted = &blocks(&format!("compaction/{line}/compacted"))[0];
            let chunk_bytes: u64 = compacted
                .files
                .iter()
                .filter(|f| f.rel.starts_with("chunks/"))
                .map(|f| f.size - 8)
                .sum();
            let stored = store_block(
                &repo,
                &test_dir(),
                compacted,
                known.clone(),
                StoreOptions::default(),
                Arc::new(Silent),
            )
            .await
            .unwrap();
            assert_eq!(
                stored.bytes_reused, chunk_bytes,
                "{line}: every window reused"
            );
            let index = compacted
                .files
                .iter()
                .find(|f| f.rel == "index")
                .unwrap()
                .size;
            assert!(
                stored.bytes_uploaded < index + 4096,
                "{line}: uploaded {} bytes, the index alone is {index}",
                stored.bytes_uploaded
            );
            rebuilds_identically(&repo, compacted, &stored).await;

            // Deleted series re-encoded the 02:00 window: only it is new.
            let deleted = &blocks(&format!("compaction/{line}/deleted"))[0];
            let stored = store_block(
                &repo,
                &test_dir(),
                deleted,
                known,
                StoreOptions::default(),
                Arc::new(Silent),
            )
            .await
            .unwrap();
            let leaves = &stored.recipe.chunks.leaves;
            assert_eq!(leaves.len(), 3);
            let reused = chunk_bytes_of(deleted) - stored.bytes_reused;
            let two = leaves
                .iter()
                .find(|l| l.start % (6 * 3_600_000) == 2 * 3_600_000)
                .unwrap();
            assert_eq!(
                reused, two.bytes,
                "{line}: only the 02:00 window is uploaded"
            );
            rebuilds_identically(&repo, deleted, &stored).await;
        }
    }

    /// Packs of 4 KiB holding blobs of at most 256 bytes, so every chunk
    /// record is a blob of its own: dozens of blobs of many sizes,
    /// finishing on the workers in any order.
    fn small_blobs(threads: usize) -> StoreOptions {
        StoreOptions {
            threads,
            blob_target: Some(256),
            packs: PackWriterOptions {
                target: 4 << 10,
                in_flight: 2,
                ..Default::default()
            },
            ..StoreOptions::default()
        }
    }

    async fn pack_names(repo: &Repository) -> Vec<String> {
        let packs = repo.storage().list("packs/").await.unwrap();
        packs.into_iter().map(|o| o.key.to_string()).collect()
    }

    /// The blobs reach the packs in the order they were cut, however many
    /// workers compress them and whichever finishes first: the same block
    /// gives the same packs and the same recipe with 1, 2 or 8 threads.
    #[tokio::test]
    async fn the_packs_do_not_depend_on_the_number_of_threads() {
        let block = &blocks("compaction/prometheus-2.42/compacted")[0];
        let mut stored_with = Vec::new();
        for threads in [1, 2, 8] {
            let (_dir, repo) = repo();
            let known = Arc::new(LeafTable::new(DEFAULT_WINDOW_MS));
            let stored = store_block(
                &repo,
                &test_dir(),
                block,
                known,
                small_blobs(threads),
                Arc::new(Silent),
            )
            .await
            .unwrap();
            rebuilds_identically(&repo, block, &stored).await;
            stored_with.push((threads, stored.recipe.to_json(), pack_names(&repo).await));
        }
        let (_, recipe, packs) = &stored_with[0];
        let parsed = Recipe::parse(recipe).unwrap();
        let blobs: usize = parsed.chunks.leaves.iter().map(|l| l.blobs.len()).sum();
        assert!(
            parsed.chunks.leaves.len() >= 3 && blobs >= 40 && packs.len() >= 8,
            "{} windows, {blobs} blobs, {} packs: too few to mix them up",
            parsed.chunks.leaves.len(),
            packs.len()
        );
        for (threads, other_recipe, other_packs) in &stored_with[1..] {
            assert_eq!(other_packs, packs, "the packs with {threads} threads");
            assert_eq!(other_recipe, recipe, "the recipe with {threads} threads");
        }
    }

    /// A storage that refuses every upload.
    #[derive(Debug)]
    struct Full(LocalStorage);

    #[async_trait::async_trait]
    impl crate::storage::Storage for Full {
        fn describe(&self) -> String {
            self.0.describe()
        }
        async fn put(&self, _: &Key, _: crate::storage::Body) -> Result<u64> {
            anyhow::bail!("the disk is full")
        }
        async fn get(&self, key: &Key) -> Result<crate::storage::ByteStream> {
            self.0.get(key).await
        }
        async fn get_range(
            &self,
            key: &Key,
            offset: u64,
            length: u64,
        ) -> Result<crate::storage::ByteStream> {
            self.0.get_range(key, offset, length).await
        }
        async fn head(&self, key: &Key) -> Result<Option<crate::storage::ObjectMeta>> {
            self.0.head(key).await
        }
        async fn list(&self, prefix: &str) -> Result<Vec<crate::storage::ObjectMeta>> {
            self.0.list(prefix).await
        }
        async fn delete(&self, key: &Key) -> Result<()> {
            self.0.delete(key).await
        }
        async fn abort_incomplete(
            &self,
            before: chrono::DateTime<chrono::Utc>,
            dry_run: bool,
        ) -> Result<u64> {
            self.0.abort_incomplete(before, dry_run).await
        }
    }

    /// A failed upload fails the block with the storage's error, writes no
    /// recipe, and stops the reading thread and its workers: the call
    /// returns (they are waited for) although dozens of blobs were left.
    #[tokio::test]
    async fn a_failed_upload_stops_the_block() {
        let block = &blocks("compaction/prometheus-2.42/compacted")[0];
        for threads in [1, 4] {
            let dir = tempfile::tempdir().unwrap();
            let repo = Repository::new(Arc::new(Full(LocalStorage::new(dir.path().into()))));
            let known = Arc::new(LeafTable::new(DEFAULT_WINDOW_MS));
            let opts = StoreOptions {
                packs: PackWriterOptions {
                    target: 1,
                    in_flight: 1,
                    ..Default::default()
                },
                ..small_blobs(threads)
            };
            let dir = test_dir();
            let stored = store_block(&repo, &dir, block, known, opts, Arc::new(Silent));
            let err = tokio::time::timeout(std::time::Duration::from_secs(120), stored)
                .await
                .unwrap_or_else(|_| panic!("{threads} threads: the block never stopped"))
                .unwrap_err();
            assert!(
                format!("{err:#}").contains("the disk is full"),
                "{threads} threads: {err:#}"
            );
            assert!(
                !UploadAbandoned::is_cause_of(&err),
                "{threads} threads: the cause is the storage's error, not the abandoned reader: {err:#}"
            );
            assert!(repo.storage().list("").await.unwrap().is_empty());
        }
    }

    fn chunk_bytes_of(block: &Block) -> u64 {
        block
            .files
            .iter()
            .filter(|f| f.rel.starts_with("chunks/"))
            .map(|f| f.size - 8)
            .sum()
    }

    /// A block whose window streams are several blobs each (synthetic:
    /// 4 000 series, 3 windows, about 1.4 MB of chunk records per window):
    /// rebuilt byte for byte through the read-ahead and synced, and checked
    /// in the stream with no chunk segment written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_block_of_many_blobs_per_window_is_rebuilt_and_checked_in_the_stream() {
        use crate::tsdb::check::{CheckOptions, StreamedBlock};
        use crate::tsdb::windows::tests::synth::{write_block, Chunk};
        const W: i64 = DEFAULT_WINDOW_MS;
        let src = tempfile::tempdir().unwrap();
        let ulid = "01M8MW2KRH61SWDYDTM3B9VJXT";
        let chunks = (0..4000usize).map(|s| {
            (0..3)
                .map(|c| Chunk {
                    min_time: c * W + s as i64,
                    max_time: c * W + 7_000_000,
                    data_len: 300 + s % 100,
                })
                .collect::<Vec<_>>()
        });
        let written = write_block(&src.path().join(ulid), chunks, 2 << 20, |_, _, r| r);
        assert!(written.segments >= 2);
        let meta = serde_json::json!({
            "ulid": ulid, "minTime": 0, "maxTime": 3 * W, "version": 1,
            "stats": {"numSamples": 0, "numSeries": 4000, "numChunks": written.records},
            "compaction": {"level": 1, "sources": [ulid]},
        });
        fs::write(src.path().join(ulid).join("meta.json"), meta.to_string()).unwrap();
        let empty = fixtures("compaction/prometheus-2.42/compacted").join(ulid);
        fs::copy(
            empty.join("tombstones"),
            src.path().join(ulid).join("tombstones"),
        )
        .unwrap();
        let block = crate::tsdb::find_blocks(src.path()).unwrap().0.remove(0);
        let (_dir, repo) = repo();
        let known = Arc::new(LeafTable::new(DEFAULT_WINDOW_MS));
        let stored = store_block(
            &repo,
            &test_dir(),
            &block,
            known,
            StoreOptions::default(),
            Arc::new(Silent),
        )
        .await
        .unwrap();
        let leaves = &stored.recipe.chunks.leaves;
        assert_eq!(leaves.len(), 3);
        assert!(leaves.iter().all(|l| l.blobs.len() >= 2), "{leaves:?}");
        let entry = entry(&block, &stored);

        let out = tempfile::tempdir().unwrap();
        let dir = out.path().join("b");
        fs::create_dir(&dir).unwrap();
        rebuild::rebuild(&repo, &entry, &dir, Arc::new(Silent), true, 32 << 20)
            .await
            .unwrap();
        for f in &block.files {
            assert!(
                fs::read(block.path.join(&f.rel)).unwrap() == fs::read(dir.join(&f.rel)).unwrap(),
                "{} differs",
                f.rel
            );
        }

        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().join("b");
        fs::create_dir(&dir).unwrap();
        let streamed = StreamedBlock::new(scratch.path());
        let (rebuilt, streamed) = rebuild::check(
            &repo,
            &entry,
            &dir,
            streamed,
            Arc::new(Silent),
            8 << 20,
            None,
        )
        .await
        .unwrap();
        let total: u64 = block.files.iter().map(|f| f.size).sum();
        assert_eq!(rebuilt.bytes_written, total);
        assert!(!dir.join("chunks").exists(), "chunk segments were written");
        // The chunks and the index are sound: what the walk finds is only
        // that meta.json (synthetic) does not count their samples.
        let opts = CheckOptions { chunk_refs: true };
        let problems = streamed.finish(&dir, ulid, &opts).unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].file, "meta.json", "{problems:?}");
        assert!(
            problems[0]
                .message
                .contains("numSamples is 0, but the chunks hold"),
            "{problems:?}"
        );
    }
}
