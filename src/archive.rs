//! One block <-> one `tar` + `zstd` stream.
//!
//! Packing reads each file of a block exactly once: the bytes go through a
//! SHA-256 hasher into the tar stream, through a (multi-threaded) zstd
//! encoder, through a second hasher that sees the archive as stored, and out
//! in parts to the uploader. Nothing is staged on disk and memory is bounded
//! by the part size and the upload channel, whatever the block size.
//!
//! Unpacking is the mirror image and trusts nothing: every tar entry must be
//! a plain file or the `chunks` directory, its path must be a valid block path
//! ([`crate::tsdb::validate_file_path`]) that the manifest lists, and every
//! file's size and SHA-256 must match the manifest. Archives are deterministic
//! (fixed owner, mode and time), so the same block always packs to the same
//! bytes.
//!
//! Unpacking is also bounded by the manifest, never by what the archive
//! claims: an entry whose header promises more bytes than the manifest
//! records for its file is refused before a byte of it is read, and the
//! decompressed stream as a whole is cut off at what the manifest's files
//! can take up in a tar stream (`tar_size_limit`), so a few hundred KiB of
//! zstd that expand to terabytes cost no more time, disk or memory than the
//! block the manifest describes. Entries are read raw: GNU long names and
//! PAX headers, which `pack` never writes and which the `tar` crate would
//! read into memory whole, are refused like any other unexpected entry.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};

use crate::direct_io::DirectReader;
use crate::error::local_io;
use crate::hash_thread::{HashThread, TeeReader};
use crate::progress::Progress;
use crate::storage::body::UploadAbandoned;
use crate::storage::BodyWriter;
use crate::tsdb::{validate_file_path, Block};

/// zstd's multi-threading job size.
const JOB_SIZE: u32 = 4 * 1024 * 1024;

/// The default zstd level (see [`MIN_MATCH`] for why level 1 is enough).
pub const DEFAULT_LEVEL: i32 = 1;

/// zstd's shortest match, in bytes. zstd's levels 1 to 16 look for matches
/// of 5 or 6 bytes, which suits text; Prometheus chunks are bit-packed
/// (delta-of-delta timestamps, XOR'd floats) and repeat mostly in short runs.
/// On the benchmark TSDB (1231 MB) a minimum of 4 makes level 1 store 929 MB
/// instead of 1060 MB for about 1.4x its CPU time, less than plain level 3
/// stores (934 MB) at two thirds of its CPU; level 3 itself goes to 886 MB.
/// Levels 17 and up already use 4 or 3 and keep their own.
pub(crate) const MIN_MATCH: u32 = 4;

/// One file of a block as an archive holds it: path in the block, size and
/// SHA-256 (hex). Manifests list these; unpacking checks every file against
/// them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// How to compress.
#[derive(Clone, Copy, Debug)]
pub struct PackOptions {
    pub level: i32,
    /// zstd worker threads; 0 or 1 compresses on the calling thread.
    pub threads: u32,
    /// Size of the chunks handed to the uploader.
    pub chunk_size: usize,
}

/// What packing one block produced.
#[derive(Debug)]
pub struct Packed {
    pub files: Vec<FileEntry>,
    pub archive_size: u64,
    pub archive_sha256: String,
    pub bytes_read: u64,
}

/// Packs `block` into `out`. Runs on a blocking thread.
///
/// Each chunk sent carries, as its progress work, the block bytes whose
/// compressed form it completes (see [`PackProgress`]), so a body that
/// reports progress ([`crate::storage::Body::reporting`]) counts block
/// bytes as the archive made of them is uploaded.
pub fn pack(block: &Block, out: BodyWriter, opts: PackOptions) -> Result<Packed> {
    let counts: Arc<PackProgress> = Arc::default();
    let progress: Arc<dyn Progress> = counts.clone();
    let progress = &progress;
    let sink = HashingWriter::new(ChunkWriter::new(out, opts.chunk_size, counts.clone()));
    let encoder = Compressor::new(sink, opts, counts)?;
    let mut tar = tar::Builder::new(encoder);
    let mut files = Vec::with_capacity(block.files.len());
    let mut chunks_dir_done = false;
    for f in &block.files {
        if f.rel.starts_with("chunks/") && !chunks_dir_done {
            tar.append(&dir_header("chunks/")?, io::empty())?;
            chunks_dir_done = true;
        }
        files.push(append_file(
            &mut tar,
            &block.path,
            &f.rel,
            f.size,
            progress,
        )?);
    }
    let encoder = tar.into_inner()?;
    let sink = encoder.finish()?;
    let (chunks, size, sha) = sink.finish();
    chunks.finish()?;
    Ok(Packed {
        bytes_read: files.iter().map(|f| f.size).sum(),
        files,
        archive_size: size,
        archive_sha256: sha,
    })
}

fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    block_dir: &Path,
    rel: &str,
    size: u64,
    progress: &Arc<dyn Progress>,
) -> Result<FileEntry> {
    let path = block_dir.join(rel);
    // Direct reads: each byte is read once, and caching it would only push
    // Prometheus's own pages out of memory (see `direct_io`).
    let file =
        DirectReader::open(&path).with_context(|| format!("could not open {}", path.display()))?;
    let mut header = tar::Header::new_gnu();
    header.set_path(rel)?;
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut reader = HashingReader::new(file.take(size), Some(progress.clone()));
    tar.append(&header, &mut reader)
        .with_context(|| format!("could not pack {}", path.display()))?;
    let (read, sha) = reader.finish();
    if read != size {
        // tar has already written a header with the old size: the archive is
        // unusable, and the error makes sure it never becomes an object.
        bail!(
            "{} changed size while it was read ({size} -> {read} bytes); snapshot files must \
             not change",
            path.display()
        );
    }
    Ok(FileEntry {
        path: rel.to_string(),
        size,
        sha256: sha,
    })
}

fn dir_header(path: &str) -> Result<tar::Header> {
    let mut h = tar::Header::new_gnu();
    h.set_path(path)?;
    h.set_size(0);
    h.set_mode(0o755);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Directory);
    h.set_cksum();
    Ok(h)
}

/// What unpacking found about the archive as a whole.
#[derive(Debug)]
pub struct Unpacked {
    /// Compressed bytes read; the caller hashes them as they arrive (on
    /// another thread, so hashing and unpacking run in parallel).
    pub archive_size: u64,
}

/// What is done with each entry while an archive is read (see
/// [`read_entries`]): [`unpack`] writes files, `verify --deep` checks them.
pub trait EntrySink {
    /// The `chunks` directory entry.
    fn chunks_dir(&mut self) -> Result<()>;

    /// One file the manifest lists. `data` yields its bytes; whatever the
    /// sink does not read is read (and hashed) after it returns.
    fn file(&mut self, want: &FileEntry, data: &mut dyn Read) -> Result<()>;
}

/// Reads an archive stream, handing every entry to `sink` and checking it
/// against `expected`: each path must be valid and listed once, each file's
/// size and SHA-256 must match, and nothing may be missing. Runs on a
/// blocking thread. The first mismatch is an error; what the sink did with
/// the entries so far is for the caller to undo.
pub fn read_entries(
    input: impl BufRead,
    expected: &[FileEntry],
    sink: &mut impl EntrySink,
) -> Result<Unpacked> {
    let mut wanted: HashMap<&str, &FileEntry> =
        expected.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut counted = CountingReader {
        inner: input,
        count: 0,
    };
    // Files are hashed on a second thread, while this one decompresses and
    // hands their bytes to the sink.
    let mut hash = HashThread::spawn()?;
    {
        let decoder = zstd::Decoder::with_buffer(&mut counted)?;
        let limit = tar_size_limit(expected);
        let bounded = Bounded {
            inner: decoder,
            left: limit,
            limit,
        };
        let mut archive = tar::Archive::new(bounded);
        let entries = archive.entries().context("not a valid archive")?.raw(true);
        for entry in entries {
            let mut entry = entry.context("not a valid archive")?;
            let name = entry_path(&entry)?;
            let claimed = entry.size();
            match entry.header().entry_type() {
                tar::EntryType::Directory if name.trim_end_matches('/') == "chunks" => {
                    if claimed != 0 {
                        bail!("archive entry {name:?} is a directory with {claimed} bytes of data");
                    }
                    sink.chunks_dir()?;
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let want = wanted.remove(name.as_str()).with_context(|| {
                        format!("archive entry {name:?} is not in the manifest (or appears twice)")
                    })?;
                    if claimed > want.size {
                        // Refused before a byte is read: the header may
                        // promise terabytes.
                        bail!(
                            "{} is {claimed} bytes long in the archive but {} bytes in the \
                             manifest; nothing of it was unpacked",
                            want.path,
                            want.size
                        );
                    }
                    let mut reader = TeeReader {
                        inner: &mut entry,
                        hash: &mut hash,
                    };
                    sink.file(want, &mut reader)?;
                    io::copy(&mut reader, &mut io::sink())?;
                    let (size, sha) = hash.finish()?;
                    if size != want.size || sha != want.sha256 {
                        bail!(
                            "{} does not match the manifest: expected {} bytes with SHA-256 {}, \
                             found {} bytes with SHA-256 {}",
                            want.path,
                            want.size,
                            want.sha256,
                            size,
                            sha
                        );
                    }
                }
                other => bail!("archive entry {name:?} has unsupported type {other:?}"),
            }
        }
        // Read the decoder dry so the archive hash covers every stored byte.
        io::copy(&mut archive.into_inner(), &mut io::sink())?;
    }
    io::copy(&mut counted, &mut io::sink())?;
    if let Some(missing) = wanted.keys().next() {
        bail!("the archive lacks {missing:?}, which the manifest lists");
    }
    Ok(Unpacked {
        archive_size: counted.count,
    })
}

/// The most bytes a tar stream of `files` can take up: a 512-byte header
/// and the data padded to 512 bytes per file, one header for the `chunks`
/// directory, the two zero blocks that end an archive, and slack for one
/// 10 KiB record of padding (which `pack` does not write, but other tar
/// writers do). Reading past it means the archive holds more than the
/// manifest says, whatever its entries claim.
fn tar_size_limit(files: &[FileEntry]) -> u64 {
    const BLOCK: u64 = 512;
    let data: u64 = files
        .iter()
        .map(|f| BLOCK + f.size.div_ceil(BLOCK).saturating_mul(BLOCK))
        .fold(0, u64::saturating_add);
    data.saturating_add(BLOCK + 2 * BLOCK + 20 * BLOCK)
}

/// Reads at most `limit` decompressed bytes; the byte after that is an
/// error (not an end of file, which tar would take for a short archive).
struct Bounded<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // One byte more than allowed is asked for, to see whether it exists.
        let room = usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX);
        let want = buf.len().min(room);
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            return Err(io::Error::other(format!(
                "the archive decompresses to more than {} bytes, all that the files its \
                 manifest lists can take up; reading stopped there",
                self.limit
            )));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Unpacks an archive stream into `dest` (which must exist and be empty),
/// checking every entry against `expected`. With `durable`, every file is
/// on disk (fsynced) when this returns; scratch copies (verify) skip that.
/// Runs on a blocking thread. On error `dest` may hold partial files: the
/// caller removes it.
pub fn unpack(
    input: impl BufRead,
    dest: &Path,
    expected: &[FileEntry],
    durable: bool,
) -> Result<Unpacked> {
    read_entries(input, expected, &mut Unpacker { dest, durable })
}

/// Writes the files of an archive under `dest`.
pub struct Unpacker<'a> {
    pub dest: &'a Path,
    /// fsync every file (a restore); not for scratch copies.
    pub durable: bool,
}

impl EntrySink for Unpacker<'_> {
    fn chunks_dir(&mut self) -> Result<()> {
        // create_dir, not create_dir_all: if `dest` was removed under us
        // (a cancelled restore), fail rather than recreate it.
        let dir = self.dest.join("chunks");
        match std::fs::create_dir(&dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                Err(local_io(e, format!("could not create {}", dir.display())))
            }
            _ => Ok(()),
        }
    }

    fn file(&mut self, want: &FileEntry, data: &mut dyn Read) -> Result<()> {
        if want.path.starts_with("chunks/") {
            self.chunks_dir()?;
        }
        write_file(data, &self.dest.join(&want.path), self.durable)
    }
}

struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for CountingReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        self.count += amt as u64;
        self.inner.consume(amt);
    }
}

fn entry_path<R: Read>(entry: &tar::Entry<R>) -> Result<String> {
    let raw = entry.path_bytes();
    let name = std::str::from_utf8(&raw)
        .map_err(|_| anyhow::anyhow!("archive entry name is not UTF-8: {:?}", raw))?
        .to_string();
    let check = name.strip_suffix('/').unwrap_or(&name);
    if check != "chunks" {
        validate_file_path(check).with_context(|| format!("refusing archive entry {name:?}"))?;
    }
    Ok(name)
}

/// How much is written before the kernel is asked to start writing it out:
/// with many GiB of RAM, dirty pages would otherwise pile up until the final
/// fsync, which then waits for the whole file at once.
pub(crate) const WRITEBACK_EVERY: u64 = 16 * 1024 * 1024;

/// Copies `data` into a new file at `path`. Failures to read `data` are
/// the archive's; failures to write are this machine's ([`local_io`]).
fn write_file(data: &mut dyn Read, path: &Path, durable: bool) -> Result<()> {
    let local =
        |e: io::Error, what: &str| local_io(e, format!("could not {what} {}", path.display()));
    let mut out = File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| local(e, "create"))?;
    // Reads go through a 1 MiB buffer and are written as they are: no
    // second buffer, no second copy.
    let mut buf = vec![0u8; 1 << 20];
    let mut since_writeback = 0u64;
    loop {
        let n = data.read(&mut buf)?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(|e| local(e, "write"))?;
        since_writeback += n as u64;
        if durable && since_writeback >= WRITEBACK_EVERY {
            start_writeback(&out);
            since_writeback = 0;
        }
    }
    if durable {
        out.sync_all().map_err(|e| local(e, "sync"))?;
    }
    Ok(())
}

/// Asks the kernel to start writing a file's dirty pages now, without
/// waiting (Linux `sync_file_range`); the final fsync still makes it durable.
pub(crate) fn start_writeback(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid open descriptor; the call only schedules I/O.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Counts and hashes what is read through it, reporting progress.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    progress: Option<Arc<dyn Progress>>,
}

impl<R> HashingReader<R> {
    pub fn new(inner: R, progress: Option<Arc<dyn Progress>>) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
            progress,
        }
    }

    pub fn finish(self) -> (u64, String) {
        (self.count, hex::encode(self.hasher.finalize()))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        if let Some(p) = &self.progress {
            p.advance(n as u64);
        }
        Ok(n)
    }
}

/// Counts and hashes what is written through it.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    fn finish(self) -> (W, u64, String) {
        (self.inner, self.count, hex::encode(self.hasher.finalize()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// How far packing one block has got, for progress. zstd holds several MiB
/// of input in its buffers when it runs with worker threads, so the bytes
/// read run ahead of the archive written; what a chunk of the archive
/// completes is the input zstd has compressed *and* written out, which
/// [`Compressor`] records.
#[derive(Default)]
struct PackProgress {
    /// Block file bytes read.
    read: AtomicU64,
    /// Bytes of the tar stream whose compressed form has been written out.
    written: AtomicU64,
}

impl PackProgress {
    /// Block bytes whose compressed form has been written out (the tar
    /// stream's headers make it a little larger than the files).
    fn done(&self) -> u64 {
        let read = self.read.load(Ordering::Relaxed);
        self.written.load(Ordering::Relaxed).min(read)
    }
}

impl Progress for PackProgress {
    fn set_total(&self, _: u64) {}
    fn advance(&self, bytes: u64) {
        self.read.fetch_add(bytes, Ordering::Relaxed);
    }
    fn note(&self, _: &str) {}
}

/// zstd onto `out`, as `zstd::Encoder` does, also recording in
/// [`PackProgress::written`] how much of its input the compressed bytes
/// written so far stand for: zstd's frame progression says how much input
/// it has compressed and how much output that produced, and the share of
/// that output written out is taken to stand for the same share of input.
struct Compressor<W: Write> {
    cctx: zstd::zstd_safe::CCtx<'static>,
    out: W,
    buf: Vec<u8>,
    /// Compressed bytes written to `out`.
    flushed: u64,
    progress: Arc<PackProgress>,
}

impl<W: Write> Compressor<W> {
    fn new(out: W, opts: PackOptions, progress: Arc<PackProgress>) -> Result<Self> {
        use zstd::zstd_safe::{CCtx, CParameter};
        let mut cctx = CCtx::try_create().context("could not create a zstd context")?;
        let mut set = |p: CParameter| cctx.set_parameter(p).map(|_| ()).map_err(zstd_error);
        set(CParameter::CompressionLevel(opts.level))?;
        if opts.level <= 16 {
            set(CParameter::MinMatch(MIN_MATCH))?;
        }
        // One thread means no zstd workers at all: the thread that reads and
        // hashes also compresses, so the whole backup stays on about one core.
        if opts.threads > 1 {
            set(CParameter::NbWorkers(opts.threads))?;
            // zstd's default job is up to 8 MiB, buffered in and out for
            // every worker plus two: smaller jobs keep memory flat at a ratio
            // cost of well under 1% (the jobs overlap by part of the window).
            set(CParameter::JobSize(JOB_SIZE))?;
        }
        Ok(Compressor {
            cctx,
            out,
            buf: vec![0; CCtx::out_size()],
            flushed: 0,
            progress,
        })
    }

    /// One call into zstd; writes out what it produced. Returns zstd's
    /// hint: 0 when a flush or end is complete.
    fn step(
        &mut self,
        input: &mut zstd::zstd_safe::InBuffer<'_>,
        op: zstd::zstd_safe::zstd_sys::ZSTD_EndDirective,
    ) -> io::Result<usize> {
        let mut output = zstd::zstd_safe::OutBuffer::around(&mut self.buf[..]);
        let hint = self
            .cctx
            .compress_stream2(&mut output, input, op)
            .map_err(zstd_error)?;
        let n = output.pos();
        self.flushed += n as u64;
        let p = self.cctx.get_frame_progression();
        let written = match p.produced {
            0 => 0,
            produced => {
                let share = u128::from(p.consumed) * u128::from(self.flushed.min(produced));
                (share / u128::from(produced)) as u64
            }
        };
        self.progress.written.store(written, Ordering::Relaxed);
        self.out.write_all(&self.buf[..n])?;
        Ok(hint)
    }

    /// Ends the zstd frame and returns the writer.
    fn finish(mut self) -> io::Result<W> {
        use zstd::zstd_safe::zstd_sys::ZSTD_EndDirective::ZSTD_e_end;
        let mut none = zstd::zstd_safe::InBuffer::around(&[]);
        while self.step(&mut none, ZSTD_e_end)? != 0 {}
        Ok(self.out)
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        use zstd::zstd_safe::zstd_sys::ZSTD_EndDirective::ZSTD_e_continue;
        let mut input = zstd::zstd_safe::InBuffer::around(data);
        while input.pos < data.len() {
            self.step(&mut input, ZSTD_e_continue)?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn zstd_error(code: usize) -> io::Error {
    io::Error::other(format!("zstd: {}", zstd::zstd_safe::get_error_name(code)))
}

/// Cuts the compressed stream into chunks for the uploader, each carrying
/// the block bytes it completes (see [`PackProgress`]).
struct ChunkWriter {
    out: BodyWriter,
    buf: BytesMut,
    chunk_size: usize,
    progress: Arc<PackProgress>,
    /// Block bytes already handed on with a chunk.
    counted: u64,
}

impl ChunkWriter {
    fn new(out: BodyWriter, chunk_size: usize, progress: Arc<PackProgress>) -> Self {
        ChunkWriter {
            out,
            buf: BytesMut::with_capacity(chunk_size),
            chunk_size,
            progress,
            counted: 0,
        }
    }

    /// Block bytes done since the last call.
    fn newly_done(&mut self) -> u64 {
        let done = self.progress.done();
        let new = done.saturating_sub(self.counted);
        self.counted = done.max(self.counted);
        new
    }

    fn send(&mut self) -> io::Result<()> {
        let chunk: Bytes = self.buf.split().freeze();
        self.buf.reserve(self.chunk_size);
        let work = self.newly_done();
        self.out
            .blocking_send_counted(chunk, work)
            .map_err(|e| match e.downcast() {
                Ok(gone @ UploadAbandoned) => io::Error::new(io::ErrorKind::BrokenPipe, gone),
                Err(other) => io::Error::other(other),
            })
    }

    /// Sends what is left and marks the body complete, with the block
    /// bytes no chunk has counted yet.
    fn finish(mut self) -> Result<()> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        let read = self.progress.read.load(Ordering::Relaxed);
        let rest = read.saturating_sub(self.counted);
        self.out.blocking_finish_counted(rest)
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.chunk_size - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= self.chunk_size {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::body;
    use crate::tsdb;

    /// A block-shaped directory with made-up content.
    fn fake_block(root: &Path) -> Block {
        let ulid = "01HQ3K6W2Z0000000000000000";
        let dir = root.join(ulid);
        std::fs::create_dir_all(dir.join("chunks")).unwrap();
        let meta = format!(r#"{{"ulid":"{ulid}","minTime":0,"maxTime":7200000,"version":1}}"#);
        std::fs::write(dir.join("meta.json"), meta).unwrap();
        std::fs::write(dir.join("index"), vec![3u8; 5000]).unwrap();
        std::fs::write(dir.join("tombstones"), b"tomb").unwrap();
        let chunk: Vec<u8> = (0..300_000u32).map(|i| (i % 97) as u8).collect();
        std::fs::write(dir.join("chunks/000001"), chunk).unwrap();
        tsdb::read_block(&dir, tsdb::parse_ulid(ulid).unwrap()).unwrap()
    }

    /// Packs on a blocking thread, as the backup does, and collects the bytes.
    async fn pack_to_vec(block: &Block) -> (Packed, Vec<u8>) {
        let (writer, mut body) = body::channel(2);
        let b = block.clone();
        let opts = PackOptions {
            level: 3,
            threads: 2,
            chunk_size: 64 * 1024,
        };
        let packer = tokio::task::spawn_blocking(move || pack(&b, writer, opts));
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await.unwrap() {
            bytes.extend_from_slice(&chunk);
        }
        (packer.await.unwrap().unwrap(), bytes)
    }

    #[tokio::test]
    async fn pack_then_unpack_restores_identical_files() {
        let src = tempfile::tempdir().unwrap();
        let block = fake_block(src.path());
        let (packed, bytes) = pack_to_vec(&block).await;
        assert_eq!(packed.archive_size, bytes.len() as u64);
        assert_eq!(packed.files.last().unwrap().path, "meta.json");
        let dest = tempfile::tempdir().unwrap();
        let un = unpack(&bytes[..], dest.path(), &packed.files, true).unwrap();
        assert_eq!(un.archive_size, bytes.len() as u64);
        assert_eq!(hex::encode(Sha256::digest(&bytes)), packed.archive_sha256);
        for f in &block.files {
            let a = std::fs::read(block.path.join(&f.rel)).unwrap();
            let b = std::fs::read(dest.path().join(&f.rel)).unwrap();
            assert_eq!(a, b, "{} differs", f.rel);
        }
        // Deterministic: the same block packs to the same bytes.
        let (again, _) = pack_to_vec(&block).await;
        assert_eq!(again.archive_sha256, packed.archive_sha256);
    }

    #[tokio::test]
    async fn a_file_that_differs_from_the_manifest_is_refused() {
        let src = tempfile::tempdir().unwrap();
        let block = fake_block(src.path());
        let (packed, bytes) = pack_to_vec(&block).await;
        let mut files = packed.files.clone();
        files[0].sha256 = "0".repeat(64);
        let dest = tempfile::tempdir().unwrap();
        let err = unpack(&bytes[..], dest.path(), &files, true).unwrap_err();
        assert!(
            format!("{err:#}").contains("does not match the manifest"),
            "{err:#}"
        );
        let mut files = packed.files.clone();
        files.push(FileEntry {
            path: "chunks/000002".into(),
            size: 1,
            sha256: "0".repeat(64),
        });
        let dest = tempfile::tempdir().unwrap();
        let err = unpack(&bytes[..], dest.path(), &files, true).unwrap_err();
        assert!(format!("{err:#}").contains("lacks"), "{err:#}");
    }

    /// Builds a tar.zst whose single entry has a raw, unvalidated name.
    fn evil_archive(name: &[u8], kind: tar::EntryType, data: &[u8]) -> Vec<u8> {
        let mut header = tar::Header::new_gnu();
        let field = &mut header.as_old_mut().name;
        field[..name.len()].copy_from_slice(name);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(kind);
        if kind == tar::EntryType::Symlink {
            header.set_link_name("/etc/passwd").unwrap();
        }
        header.set_cksum();
        let mut builder = tar::Builder::new(Vec::new());
        builder.append(&header, data).unwrap();
        zstd::encode_all(&builder.into_inner().unwrap()[..], 1).unwrap()
    }

    #[test]
    fn entries_escaping_the_block_are_refused() {
        let outer = tempfile::tempdir().unwrap();
        let dest = outer.path().join("block");
        std::fs::create_dir(&dest).unwrap();
        let sha = hex::encode(Sha256::digest(b"evil"));
        let cases: [(&[u8], tar::EntryType); 6] = [
            (b"../escaped", tar::EntryType::Regular),
            (b"chunks/../../escaped", tar::EntryType::Regular),
            (b"/tmp/escaped-abs", tar::EntryType::Regular),
            (b"index", tar::EntryType::Symlink),
            (b"index", tar::EntryType::Link),
            (b"unlisted", tar::EntryType::Regular),
        ];
        for (name, kind) in cases {
            let archive = evil_archive(name, kind, b"evil");
            let files = [FileEntry {
                path: String::from_utf8_lossy(name).into_owned(),
                size: 4,
                sha256: sha.clone(),
            }];
            let listed = if name == b"unlisted" {
                &[][..]
            } else {
                &files[..]
            };
            let result = unpack(&archive[..], &dest, listed, true);
            assert!(
                result.is_err(),
                "{:?} {kind:?} accepted",
                String::from_utf8_lossy(name)
            );
        }
        assert!(!outer.path().join("escaped").exists());
        assert!(!Path::new("/tmp/escaped-abs").exists());
        assert_eq!(
            std::fs::read_dir(&dest).unwrap().count(),
            0,
            "something was written"
        );
    }

    /// A zstd frame of `len` zero bytes made of RLE blocks: 4 bytes per
    /// 128 KiB, so a few hundred KiB expand to many GiB.
    fn zero_frame(len: u64) -> Vec<u8> {
        const BLOCK: u64 = 128 * 1024;
        // Magic; no content size, checksum or dictionary; a 128 KiB window.
        let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38];
        let mut left = len;
        loop {
            let n = left.min(BLOCK);
            left -= n;
            let last = u32::from(left == 0);
            let header = last | (1 << 1) | ((n as u32) << 3); // an RLE block of n bytes
            frame.extend_from_slice(&header.to_le_bytes()[..3]);
            frame.push(0);
            if left == 0 {
                return frame;
            }
        }
    }

    /// A tar header alone (zstd-compressed) that claims `size` bytes of data.
    fn claiming_header(name: &[u8], kind: tar::EntryType, size: u64) -> Vec<u8> {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_size(size);
        header.set_mode(0o644);
        header.set_entry_type(kind);
        header.set_cksum();
        zstd::encode_all(header.as_bytes().as_slice(), 1).unwrap()
    }

    /// The issue's bomb: an `index` entry that expands to 4 GiB of a few
    /// hundred KiB. It is refused at its header: nothing is written, and
    /// almost none of the input is read.
    #[test]
    fn an_entry_larger_than_the_manifest_is_refused_before_it_is_read() {
        let bomb = 4u64 << 30;
        let mut archive = claiming_header(b"index", tar::EntryType::Regular, bomb);
        archive.extend(zero_frame(bomb));
        let files = [FileEntry {
            path: "index".into(),
            size: 60832,
            sha256: "0".repeat(64),
        }];
        let dest = tempfile::tempdir().unwrap();
        let mut input = &archive[..];
        let err = unpack(&mut input, dest.path(), &files, false).unwrap_err();
        assert!(
            format!("{err:#}").contains(
                "index is 4294967296 bytes long in the archive but 60832 bytes in the manifest"
            ),
            "{err:#}"
        );
        assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 0);
        assert!(input.len() > archive.len() / 2, "the bomb was read");
    }

    /// Bytes the tar stream does not account for (after its end, in a
    /// directory entry, in a GNU long name the `tar` crate would read into
    /// memory whole) are cut off at what the manifest's files can take up.
    #[tokio::test]
    async fn data_the_manifest_does_not_account_for_is_cut_off() {
        let src = tempfile::tempdir().unwrap();
        let block = fake_block(src.path());
        let (packed, good) = pack_to_vec(&block).await;
        let bomb = 16u64 << 30;
        let mut trailing = good.clone();
        trailing.extend(zero_frame(bomb));
        let mut in_dir = claiming_header(b"chunks/", tar::EntryType::Directory, bomb);
        in_dir.extend(zero_frame(bomb));
        let mut long_name = claiming_header(b"././@LongLink", tar::EntryType::GNULongName, bomb);
        long_name.extend(zero_frame(bomb));
        let cases = [
            (trailing, "decompresses to more than"),
            (in_dir, "is a directory with 17179869184 bytes of data"),
            (long_name, "refusing archive entry \"././@LongLink\""),
        ];
        for (archive, message) in cases {
            let dest = tempfile::tempdir().unwrap();
            let mut input = &archive[..];
            let err = unpack(&mut input, dest.path(), &packed.files, false).unwrap_err();
            assert!(format!("{err:#}").contains(message), "{err:#}");
            assert!(input.len() > archive.len() / 2, "the bomb was read");
        }
        // What `pack` writes fits the limit with room to spare.
        let tar_size = zstd::decode_all(&good[..]).unwrap().len() as u64;
        assert!(tar_size <= tar_size_limit(&packed.files));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let dest = tempfile::tempdir().unwrap();
        assert!(unpack(&b"not zstd at all"[..], dest.path(), &[], true).is_err());
        let truncated = &evil_archive(b"index", tar::EntryType::Regular, &[1; 4096])[..20];
        assert!(unpack(truncated, dest.path(), &[], true).is_err());
    }
}
