//! Rebuilding one format 2 block from its recipe: into a directory (a
//! restore), or as a stream through the TSDB checks (`verify --deep`).
//!
//! The recipe is read and checked first (`Repository::load_recipe`,
//! `Recipe::validate`), then every blob reference against its pack's header
//! ([`ReadAhead::open`]), before anything is written. Every file then comes
//! back from its blobs as a stream: the packs are read in few large ranged
//! reads and the blobs decoded on every core, ahead of the one thread that
//! writes ([`ReadAhead`]). The blobs are not hashed as they are decoded:
//! every file is, against the manifest's SHA-256, before it counts, and
//! that one pass checks every byte. When a file does not hash right, the
//! block's blobs are read once more, each checked against its id, so that
//! the error names the damaged blob and pack ([`name_the_damage`]). The files stored whole (`meta.json`,
//! `tombstones`) and the index are copied out, never past their recorded
//! size and checked against their SHA-256; the chunk segment files are then
//! joined from the window streams by walking the written index
//! (`tsdb::windows::join_into`, which checks every reference and length
//! before it hands a byte on, and each file's SHA-256 when it is complete),
//! or, for a block stored as files, copied out like the others.
//!
//! - [`rebuild`] writes the files into the caller's temporary directory
//!   (`<ULID>.tmp-for-creation`): a failure leaves it to be removed, and only
//!   a block rebuilt whole is renamed into place. With `durable`, each
//!   finished file goes to a syncing thread, which fsyncs it while the next
//!   file is written; `rebuild` returns only once every file is synced.
//! - [`check`] writes only `meta.json`, `tombstones` and the index (for the
//!   index checks) into a scratch directory; the chunk segments, nearly all
//!   of a block's bytes, pass through a bounded pipe to a thread that walks
//!   their records (`tsdb::check::StreamedBlock`) and are never written.
//!
//! Memory: the read-ahead's budget (40 MiB from an object store, 32 from a
//! local directory, plus one blob per stream), the join's buffers, a few
//! pipe buffers of 256 KiB; nothing grows with the number of series or
//! records.

use std::fs::File;
use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use super::datadir::DataDir;
use super::manifest::{BlockEntry, FileEntry};
use super::pack::hashes::PackHashes;
use super::pack::readahead::{Group, Order, ReadAhead, StreamReader};
use super::pack::{DamagedPack, PackReader};
use super::recipe::ChunkLayout;
use super::Repository;
use crate::error::{is_environment, local_io, Hinted};
use crate::progress::Progress;
use crate::tsdb::check::StreamedBlock;
use crate::tsdb::windows::{self, JoinError, SegmentFiles, SegmentLayout, SegmentSink};

/// What a rebuild read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rebuilt {
    /// Pack bytes downloaded (the blobs' stored lengths).
    pub bytes_downloaded: u64,
    /// Bytes written (or, for [`check`], rebuilt and checked).
    pub bytes_written: u64,
}

/// The hint for a block whose stored data is damaged.
const DAMAGED: &str = "the backup is damaged; `promsnap verify` checks the repository, and \
                       another snapshot may hold the block intact";

/// The copy buffer for files stored whole.
const COPY_BUF: usize = 256 << 10;

/// Bytes of chunk segments sent to the checking thread at a time, and how
/// many such pieces may wait for it.
const PIPE_PIECE: usize = 256 << 10;
const PIPE_DEPTH: usize = 4;

/// Files synced at most, waiting for the syncing thread, before the writer
/// waits for it.
const SYNC_DEPTH: usize = 2;

/// A block's streams, planned and checked, ready to be read.
struct Planned {
    /// The files read whole, in the order of the read-ahead's first group:
    /// the small files, the index, and (in the `files` layout) the segments.
    whole: Vec<FileEntry>,
    /// The window layout; the window streams are the second group.
    layout: Option<windows::WindowLayout>,
    ahead: ReadAhead,
    bytes_downloaded: u64,
}

/// Plans the rebuild of `entry`. Without `ids_checked` the blobs are not
/// hashed as they are decoded: every file is hashed as it is rebuilt, and
/// a file that does not hash right is damage [`name_the_damage`] locates.
async fn plan(
    repo: &Repository,
    entry: &BlockEntry,
    budget: u64,
    ids_checked: bool,
    hashes: Option<Arc<PackHashes>>,
) -> Result<Planned> {
    let recipe = repo.load_recipe(entry).await?;
    let file = |path: &str| {
        recipe
            .file(path)
            .cloned()
            .with_context(|| format!("{path} has no entry among the block's files"))
    };
    let mut whole = Vec::new();
    let mut streams = Vec::new();
    for (path, blobs) in &recipe.small {
        whole.push(file(path)?);
        streams.push(blobs.clone());
    }
    whole.push(file("index")?);
    streams.push(recipe.index.clone());
    let leaves = recipe.chunks.leaves.iter().map(|l| l.blobs.clone());
    let (layout, groups) = match recipe.chunks.layout {
        ChunkLayout::Windows => {
            let groups = vec![
                Group {
                    order: Order::OneAfterAnother,
                    streams,
                },
                Group {
                    order: Order::SideBySide,
                    streams: leaves.collect(),
                },
            ];
            (Some(recipe.layout()?), groups)
        }
        ChunkLayout::Files => {
            for s in &recipe.chunks.segments {
                whole.push(file(&s.path)?);
            }
            streams.extend(leaves);
            let group = Group {
                order: Order::OneAfterAnother,
                streams,
            };
            (None, vec![group])
        }
    };
    let dir = DataDir::of_recipe(&entry.object.key)?;
    let mut packs = PackReader::new(repo.storage().clone(), dir, repo.ids());
    if let Some(hashes) = hashes {
        packs = packs.hashing_into(hashes);
    }
    let packs = Arc::new(packs);
    let mut ahead = ReadAhead::with_budget(packs, groups, budget)
        .await
        .map_err(|e| damaged_block(e, &entry.ulid))?;
    if !ids_checked {
        ahead = ahead.without_id_checks();
    }
    Ok(Planned {
        whole,
        layout,
        ahead,
        bytes_downloaded: recipe.stored_bytes(),
    })
}

/// A reference its pack refutes, or a missing pack: damage, named.
fn damaged_block(e: anyhow::Error, ulid: &str) -> anyhow::Error {
    match DamagedPack::find(&e) {
        Some(_) => e.context(Hinted::failure(
            format!("the stored data of block {ulid} is damaged"),
            DAMAGED,
        )),
        None => e,
    }
}

/// Rebuilds the block `entry` describes into the empty directory `dir`.
/// `durable`: fsync every file (a restore), overlapped with the writing;
/// not for scratch copies. `budget`: the read-ahead's (its share of the
/// blocks rebuilt at once, [`Budgets`](super::pack::readahead::Budgets)).
pub async fn rebuild(
    repo: &Repository,
    entry: &BlockEntry,
    dir: &Path,
    progress: Arc<dyn Progress>,
    durable: bool,
    budget: u64,
) -> Result<Rebuilt> {
    match rebuild_unhashed(repo, entry, dir, progress, durable, budget).await {
        Ok(rebuilt) => Ok(rebuilt),
        Err(e) => Err(name_the_damage(repo, entry, budget, e).await),
    }
}

async fn rebuild_unhashed(
    repo: &Repository,
    entry: &BlockEntry,
    dir: &Path,
    progress: Arc<dyn Progress>,
    durable: bool,
    budget: u64,
) -> Result<Rebuilt> {
    let planned = plan(repo, entry, budget, false, None).await?;
    let bytes_downloaded = planned.bytes_downloaded;
    let (dir, ulid) = (dir.to_path_buf(), entry.ulid.clone());
    let written = tokio::task::spawn_blocking(move || {
        let Planned {
            whole,
            layout,
            ahead,
            ..
        } = planned;
        let (written, _) = ahead.run(Some(&*progress), |readers| {
            std::thread::scope(|scope| {
                let (tx, rx) = mpsc::sync_channel::<(PathBuf, File)>(SYNC_DEPTH);
                let syncing = durable.then(|| scope.spawn(move || sync_files(rx)));
                let tx = durable.then_some(tx);
                let written =
                    write_block(&dir, &whole, layout.as_ref(), readers, &ulid, tx.as_ref());
                drop(tx);
                let synced = match syncing {
                    Some(t) => t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                    None => Ok(()),
                };
                // A failed sync stops the writer too; its own error says why.
                synced.and(written)
            })
        });
        written
    })
    .await
    .context("the rebuilding thread failed")?
    .with_context(|| format!("could not rebuild block {}", entry.ulid))?;
    Ok(Rebuilt {
        bytes_downloaded,
        bytes_written: written,
    })
}

/// A rebuild that failed on damage naming no blob: a file that does not
/// hash to its SHA-256, or a stream the join refused (the blobs were
/// decoded without their own hashes, which would cost a second pass over
/// every byte). Reads the block's streams again, each blob checked against
/// its id, to name the damaged blob and its pack; `err` as it is when no
/// blob is damaged (the recipe is wrong) or the second read fails
/// otherwise.
async fn name_the_damage(
    repo: &Repository,
    entry: &BlockEntry,
    budget: u64,
    err: anyhow::Error,
) -> anyhow::Error {
    // Only damage is worth reading the block again for; a failure to
    // write or to connect says all there is to say.
    if crate::error::hint_of(&err) != Some(DAMAGED) || DamagedPack::find(&err).is_some() {
        return err;
    }
    let Ok(planned) = plan(repo, entry, budget, true, None).await else {
        return err;
    };
    let found = tokio::task::spawn_blocking(move || {
        let (found, _) = planned.ahead.run(None, |readers| {
            readers
                .into_iter()
                .find_map(|mut r| io::copy(&mut r, &mut io::sink()).err())
        });
        found
    })
    .await;
    match found {
        Ok(Some(e)) if is_damage(&e) => anyhow::Error::new(e)
            .context(Hinted::failure(
                format!(
                    "the stored data of block {} does not rebuild it",
                    entry.ulid
                ),
                DAMAGED,
            ))
            .context(format!("could not rebuild block {}", entry.ulid)),
        _ => err,
    }
}

/// The writing thread of [`rebuild`]: every file into `dir`, each sent to
/// `synced` once complete and checked.
fn write_block(
    dir: &Path,
    whole: &[FileEntry],
    layout: Option<&windows::WindowLayout>,
    mut readers: Vec<StreamReader<'_>>,
    ulid: &str,
    synced: Option<&SyncSender<(PathBuf, File)>>,
) -> Result<u64> {
    let mut leaves = readers.split_off(whole.len());
    let finished = |path: &Path, file: File| match synced {
        Some(tx) => tx
            .send((path.to_path_buf(), file))
            .map_err(|_| io::Error::other("the syncing thread stopped")),
        None => Ok(()),
    };
    let mut written = 0;
    for (file, data) in whole.iter().zip(readers) {
        let (path, out) = create(dir, file)?;
        let mut out = Checked::new(file, out);
        copy_checked(data, &mut out, file)?;
        let out = out.finish(file)?;
        finished(&path, out)
            .map_err(|e| local_io(e, format!("could not sync {}", path.display())))?;
        written += file.size;
    }
    if let Some(layout) = layout {
        let mut files = SegmentFiles::new(dir, finished)
            .map_err(|e| local_io(e, format!("could not create {}/chunks", dir.display())))?;
        let joined = windows::join_into(
            &dir.join("index"),
            layout,
            &mut leaves,
            &mut files,
            windows::Crcs::Skip,
        )
        .map_err(|e| join_error(e, ulid))?;
        written += joined.bytes;
    }
    Ok(written)
}

/// Creates `file` in `dir`, new (and `chunks/` for a segment).
fn create(dir: &Path, file: &FileEntry) -> Result<(PathBuf, File)> {
    let path = dir.join(&file.path);
    if file.path.starts_with("chunks/") {
        let chunks = dir.join("chunks");
        std::fs::create_dir_all(&chunks)
            .map_err(|e| local_io(e, format!("could not create {}", chunks.display())))?;
    }
    let out = File::options()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| local_io(e, format!("could not create {}", path.display())))?;
    Ok((path, out))
}

/// The syncing thread: fsyncs each file it is sent, until the writer is
/// done or a sync fails.
fn sync_files(files: Receiver<(PathBuf, File)>) -> Result<()> {
    for (path, file) in files {
        file.sync_all()
            .map_err(|e| local_io(e, format!("could not sync {}", path.display())))?;
    }
    Ok(())
}

/// Rebuilds the block `entry` describes through the checks of `block`,
/// writing only its small files and its index into the empty directory
/// `dir`: the chunk segments are walked by `block` as they are rebuilt and
/// never written. Call [`StreamedBlock::finish`] on `dir` afterwards.
/// `budget` as for [`rebuild`]. With `hashes`, every byte read of a pack
/// is handed to it as well (deep verify checks the packs' names from it).
pub async fn check(
    repo: &Repository,
    entry: &BlockEntry,
    dir: &Path,
    block: StreamedBlock,
    progress: Arc<dyn Progress>,
    budget: u64,
    hashes: Option<Arc<PackHashes>>,
) -> Result<(Rebuilt, StreamedBlock)> {
    match check_unhashed(repo, entry, dir, block, progress, budget, hashes).await {
        Ok(checked) => Ok(checked),
        Err(e) => Err(name_the_damage(repo, entry, budget, e).await),
    }
}

async fn check_unhashed(
    repo: &Repository,
    entry: &BlockEntry,
    dir: &Path,
    block: StreamedBlock,
    progress: Arc<dyn Progress>,
    budget: u64,
    hashes: Option<Arc<PackHashes>>,
) -> Result<(Rebuilt, StreamedBlock)> {
    let planned = plan(repo, entry, budget, false, hashes).await?;
    let bytes_downloaded = planned.bytes_downloaded;
    let (dir, ulid) = (dir.to_path_buf(), entry.ulid.clone());
    let (written, block) = tokio::task::spawn_blocking(move || {
        let Planned {
            whole,
            layout,
            ahead,
            ..
        } = planned;
        let (checked, _) = ahead.run(Some(&*progress), |readers| {
            check_block(&dir, &whole, layout.as_ref(), readers, &ulid, block)
        });
        checked
    })
    .await
    .context("the checking thread failed")?
    .with_context(|| format!("could not rebuild block {}", entry.ulid))?;
    Ok((
        Rebuilt {
            bytes_downloaded,
            bytes_written: written,
        },
        block,
    ))
}

/// The rebuilding thread of [`check`].
fn check_block(
    dir: &Path,
    whole: &[FileEntry],
    layout: Option<&windows::WindowLayout>,
    mut readers: Vec<StreamReader<'_>>,
    ulid: &str,
    mut block: StreamedBlock,
) -> Result<(u64, StreamedBlock)> {
    let mut leaves = readers.split_off(whole.len());
    let mut written = 0;
    for (file, data) in whole.iter().zip(readers) {
        if StreamedBlock::is_segment(&file.path) {
            check_segment(&mut block, file, data)?;
        } else {
            let (_, out) = create(dir, file)?;
            let mut out = Checked::new(file, out);
            copy_checked(data, &mut out, file)?;
            out.finish(file)?;
        }
        written += file.size;
    }
    let Some(layout) = layout else {
        return Ok((written, block));
    };
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel(PIPE_DEPTH);
        let (back_tx, back) = mpsc::sync_channel(2);
        let walking = scope.spawn(move || walk_segments(rx, back_tx, block));
        let mut pipe = Pipe {
            tx,
            back,
            buf: Vec::with_capacity(PIPE_PIECE),
        };
        let joined = windows::join_into(
            &dir.join("index"),
            layout,
            &mut leaves,
            &mut pipe,
            windows::Crcs::Skip,
        );
        drop(pipe);
        let walked = walking
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        match (joined, walked) {
            (Ok(joined), Ok(block)) => Ok((written + joined.bytes, block)),
            // The walk stopped first (its scratch file could not be written).
            (Err(JoinError::Write { .. }), Err(e)) => Err(e),
            (Err(e), _) => Err(join_error(e, ulid)),
            (Ok(_), Err(e)) => Err(e),
        }
    })
}

/// A chunk segment stored whole (the `files` layout), walked as it is read
/// and checked against its size and SHA-256.
fn check_segment(block: &mut StreamedBlock, file: &FileEntry, data: impl Read) -> Result<()> {
    let mut hashed = Checked::new(file, io::sink());
    let mut reader = Tee {
        inner: data,
        out: &mut hashed,
        error: None,
    };
    let walked = block.segment(&file.path, file.size, &mut reader);
    // The walk may stop early (at damage); the rest is still read and hashed.
    let rest = walked.and_then(|()| Ok(io::copy(&mut reader, &mut io::sink())?));
    if let Some(e) = reader.error.take() {
        return Err(read_error(e, file));
    }
    if let Err(e) = rest {
        if is_environment(&e) {
            return Err(e);
        }
        return Err(e.context(format!("could not read {}", file.path)));
    }
    hashed.finish(file)?;
    Ok(())
}

/// Copies `data` into `out` to its end.
fn copy_checked(mut data: impl Read, out: &mut Checked<'_, File>, file: &FileEntry) -> Result<()> {
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        let n = data.read(&mut buf).map_err(|e| read_error(e, file))?;
        if n == 0 {
            return Ok(());
        }
        out.write_all(&buf[..n]).map_err(|e| match out.too_long {
            true => read_error(e, file),
            false => local_io(e, format!("could not write {}", out.path)),
        })?;
    }
}

/// A file being written: never past its recorded size, hashed on the way.
struct Checked<'a, W> {
    out: W,
    path: &'a str,
    size: u64,
    written: u64,
    sha: Sha256,
    /// A write was refused for taking the file past its size.
    too_long: bool,
}

impl<'a, W: Write> Checked<'a, W> {
    fn new(file: &'a FileEntry, out: W) -> Self {
        Checked {
            out,
            path: &file.path,
            size: file.size,
            written: 0,
            sha: Sha256::new(),
            too_long: false,
        }
    }

    /// The file, once its length and SHA-256 are the recorded ones.
    fn finish(self, file: &FileEntry) -> Result<W> {
        let sha = hex::encode(self.sha.finalize());
        if self.written != file.size || sha != file.sha256 {
            return Err(Hinted::failure(
                format!(
                    "{} comes back as {} bytes with SHA-256 {sha}, not {} bytes with {}",
                    file.path, self.written, file.size, file.sha256
                ),
                DAMAGED,
            )
            .into());
        }
        Ok(self.out)
    }
}

impl<W: Write> Write for Checked<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.size {
            self.too_long = true;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} comes back longer than its {} bytes",
                    self.path, self.size
                ),
            ));
        }
        let n = self.out.write(buf)?;
        self.sha.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Passes what is read through `out` as well; keeps the first failure of
/// either, which is the stored data's (a read failure, or a file longer
/// than recorded).
struct Tee<'a, R, W> {
    inner: R,
    out: &'a mut W,
    error: Option<io::Error>,
}

impl<R: Read, W: Write> Read for Tee<'_, R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let done = self.inner.read(buf).and_then(|n| {
            self.out.write_all(&buf[..n])?;
            Ok(n)
        });
        done.inspect_err(|e| {
            if self.error.is_none() {
                self.error = Some(io::Error::new(e.kind(), e.to_string()));
            }
        })
    }
}

/// What the rebuilding thread sends the walking thread.
enum Piece {
    Start { path: String, size: u64 },
    Data(Vec<u8>),
    End,
}

/// Sends rebuilt chunk segments to [`walk_segments`], in pieces, through
/// a bounded channel; the walk sends each piece's buffer back on `back`
/// once read, to be filled again (rather than freed on one thread and
/// allocated afresh on the other).
struct Pipe {
    tx: SyncSender<Piece>,
    back: Receiver<Vec<u8>>,
    buf: Vec<u8>,
}

impl Pipe {
    fn send(&self, piece: Piece) -> io::Result<()> {
        self.tx
            .send(piece)
            .map_err(|_| io::Error::other("the chunk checking thread stopped"))
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let next = match self.back.try_recv() {
            Ok(mut used) => {
                used.clear();
                used
            }
            Err(_) => Vec::with_capacity(PIPE_PIECE),
        };
        let full = std::mem::replace(&mut self.buf, next);
        self.send(Piece::Data(full))
    }
}

impl SegmentSink for Pipe {
    fn start(&mut self, segment: &SegmentLayout) -> io::Result<Option<File>> {
        self.send(Piece::Start {
            path: segment.path.clone(),
            size: segment.size,
        })?;
        Ok(None)
    }

    fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        // Pieces of PIPE_PIECE bytes exactly: a buffer never grows.
        while !bytes.is_empty() {
            let n = (PIPE_PIECE - self.buf.len()).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.buf.len() >= PIPE_PIECE {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn end(&mut self, _: Option<File>) -> io::Result<()> {
        self.flush()?;
        self.send(Piece::End)
    }
}

/// The walking thread of [`check`]: each segment through `block`.
fn walk_segments(
    rx: Receiver<Piece>,
    back: SyncSender<Vec<u8>>,
    mut block: StreamedBlock,
) -> Result<StreamedBlock> {
    while let Ok(piece) = rx.recv() {
        let Piece::Start { path, size } = piece else {
            anyhow::bail!("a segment's bytes came before its start");
        };
        let mut reader = PipeReader {
            rx: &rx,
            back: &back,
            piece: Vec::new(),
            at: 0,
            ended: false,
        };
        block.segment(&path, size, &mut reader)?;
        io::copy(&mut reader, &mut io::sink())?;
    }
    Ok(block)
}

/// One segment's bytes, as they arrive through the pipe.
struct PipeReader<'a> {
    rx: &'a Receiver<Piece>,
    back: &'a SyncSender<Vec<u8>>,
    piece: Vec<u8>,
    at: usize,
    ended: bool,
}

impl BufRead for PipeReader<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.at == self.piece.len() && !self.ended {
            match self.rx.recv() {
                Ok(Piece::Data(piece)) => {
                    let used = std::mem::replace(&mut self.piece, piece);
                    self.at = 0;
                    // The writer may have enough spare buffers already.
                    if used.capacity() >= PIPE_PIECE {
                        let _ = self.back.try_send(used);
                    }
                }
                Ok(Piece::End) => self.ended = true,
                Ok(Piece::Start { .. }) => {
                    return Err(io::Error::other("a segment started before the last ended"))
                }
                Err(_) => return Err(io::Error::other("the rebuild of the block stopped")),
            }
        }
        Ok(&self.piece[self.at..])
    }

    fn consume(&mut self, amt: usize) {
        self.at = (self.at + amt).min(self.piece.len());
    }
}

impl Read for PipeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        super::pack::read_buffered(self, buf)
    }
}

/// A join error: damage in the backup, this machine's disk, or the
/// connection to the repository.
fn join_error(e: JoinError, ulid: &str) -> anyhow::Error {
    match e {
        JoinError::Write { path, source } => {
            local_io(source, format!("could not write {}", path.display()))
        }
        JoinError::StreamRead { source, .. } if !is_damage(&source) => {
            anyhow::Error::new(source).context(format!("reading the data of block {ulid}"))
        }
        other => anyhow::Error::new(other).context(Hinted::failure(
            format!("the stored data of block {ulid} does not rebuild it"),
            DAMAGED,
        )),
    }
}

/// Whether a read failure of stored data is damage (a bad blob or pack),
/// not a failure to read.
fn is_damage(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::InvalidData
        || super::blob::BlobError::of_io(e).is_some()
        || e.get_ref()
            .is_some_and(|inner| inner.downcast_ref::<DamagedPack>().is_some())
}

/// A read failure of stored data: damage when a blob or pack is bad, else
/// the connection.
fn read_error(e: io::Error, file: &FileEntry) -> anyhow::Error {
    let damaged = is_damage(&e);
    let err = anyhow::Error::new(e);
    match damaged {
        true => err.context(Hinted::failure(
            format!("the stored data of {} is damaged", file.path),
            DAMAGED,
        )),
        false => err.context(format!("reading the stored data of {}", file.path)),
    }
}
