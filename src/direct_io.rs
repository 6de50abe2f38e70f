//! Reading and writing big files past the page cache (`O_DIRECT`).
//!
//! A backup reads every byte of a snapshot once and writes (to a local
//! repository) every byte of its archives once. Through the page cache each of
//! those bytes is copied by the kernel once more, and on the VMs this project
//! measures, that copy is expensive: writing 1 GB buffered costs 1.2 to 2
//! CPU-seconds (`dd`), direct 0.06; a cold backup spent 2.6 CPU-seconds in the
//! kernel reading the snapshot, against 0.3 with the data cached. Neither
//! side is read again soon, so caching it also pushes out the pages
//! Prometheus itself queries.
//!
//! [`DirectReader`] (packing a snapshot's files, splitting its chunk
//! segments), [`StagingWriter`] (objects in a local repository),
//! [`FileWriter`] (a restore's rebuilt chunk segments, on a thread of its
//! own) and [`read_range`] (a run of blobs of a pack in a local repository)
//! use `O_DIRECT` and move whole aligned buffers; an unaligned tail is read
//! or written through the page cache. Filesystems that refuse `O_DIRECT`
//! (tmpfs, some FUSE and network mounts) get plain buffered I/O: the bytes
//! are the same either way.
//!
//! Format 1 archives are read through the page cache by restores and
//! verification: a stream read front to back needs the kernel's readahead,
//! and direct reads measured slower there. Format 2 reads ahead of its own
//! (`repo::pack::readahead`), several runs at once.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use memmap2::MmapMut;

/// Alignment of direct I/O: covers 512-byte and 4 KiB logical sectors.
const ALIGN: usize = 4096;
/// Size of one direct read or write: large enough that a disk stays busy
/// without the kernel's readahead, small next to the upload buffers (the
/// tar stream is cut into 4 MiB zstd jobs and 8 MiB parts downstream).
const DIRECT_BUF: usize = 1024 * 1024;

/// `DIRECT_BUF` bytes of an anonymous mapping: page-aligned (as direct I/O
/// needs). Freed heap blocks of this size stayed in the allocator's
/// per-thread arenas, which showed as 30 MB more peak RSS; a mapping made
/// afresh for every file cost a page fault per 4 KiB (a local repository is
/// written a pack file at a time). So a dropped buffer of this size goes
/// back to a small pool of [`IDLE_BUFS`] for the next file, and beyond that
/// to the kernel.
fn aligned_buf() -> io::Result<AlignedBuf> {
    aligned_buf_of(DIRECT_BUF)
}

/// As [`aligned_buf`], of `len` bytes (a multiple of [`ALIGN`]); only
/// buffers of `DIRECT_BUF` come from (and go back to) the idle pool.
fn aligned_buf_of(len: usize) -> io::Result<AlignedBuf> {
    debug_assert_eq!(len % ALIGN, 0);
    if len == DIRECT_BUF {
        if let Some(buf) = IDLE.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(AlignedBuf(Some(buf)));
        }
    }
    // Populated at once (`MAP_POPULATE`): one call instead of a fault per
    // page as it is first filled, and what it holds is resident from the
    // start, whatever is written into it.
    let buf = memmap2::MmapOptions::new().len(len).populate().map_anon()?;
    debug_assert_eq!(buf.as_ptr() as usize % ALIGN, 0);
    Ok(AlignedBuf(Some(buf)))
}

/// Idle buffers kept at most: one per file read or written at once, about.
const IDLE_BUFS: usize = 4;

static IDLE: std::sync::Mutex<Vec<MmapMut>> = std::sync::Mutex::new(Vec::new());

/// A buffer of [`aligned_buf`], back to the pool when dropped.
struct AlignedBuf(Option<MmapMut>);

impl std::ops::Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or_default()
    }
}

impl std::ops::DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.0.as_deref_mut().unwrap_or_default()
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if let (Some(buf), Ok(mut idle)) = (self.0.take(), IDLE.lock()) {
            // Only the common size: a writer's large buffers go back to
            // the kernel with it.
            if idle.len() < IDLE_BUFS && buf.len() == DIRECT_BUF {
                idle.push(buf);
            }
        }
    }
}

fn is_einval(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINVAL)
}

/// Opens `path` for reading or creates it for writing, direct if asked and
/// possible.
fn open(path: &Path, options: &OpenOptions, try_direct: bool) -> io::Result<(File, bool)> {
    if !try_direct {
        return Ok((options.open(path)?, false));
    }
    match options.clone().custom_flags(libc::O_DIRECT).open(path) {
        Ok(f) => Ok((f, true)),
        Err(e) if is_einval(&e) => Ok((options.open(path)?, false)),
        Err(e) => Err(e),
    }
}

/// Reads one file front to back, direct where the filesystem allows it.
pub struct DirectReader {
    path: PathBuf,
    file: File,
    direct: bool,
    buf: Option<AlignedBuf>,
    /// The unread bytes are `buf[pos..end]`.
    pos: usize,
    end: usize,
    /// Bytes read from the file so far.
    offset: u64,
}

impl DirectReader {
    pub fn open(path: &Path) -> io::Result<Self> {
        Self::open_with(path, true)
    }

    fn open_with(path: &Path, try_direct: bool) -> io::Result<Self> {
        let (file, direct) = open(path, OpenOptions::new().read(true), try_direct)?;
        Ok(DirectReader {
            path: path.to_path_buf(),
            file,
            direct,
            buf: None,
            pos: 0,
            end: 0,
            offset: 0,
        })
    }

    /// Refills the buffer with up to `DIRECT_BUF` bytes.
    fn fill(&mut self) -> io::Result<()> {
        let buf = match &mut self.buf {
            Some(b) => b,
            None => self.buf.insert(aligned_buf()?),
        };
        let n = loop {
            match self.file.read(buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Refused after all, or a short read (end of file) left the
                // offset unaligned: carry on through an ordinary handle.
                Err(e) if self.direct && is_einval(&e) => {
                    let mut file = File::open(&self.path)?;
                    file.seek(SeekFrom::Start(self.offset))?;
                    self.file = file;
                    self.direct = false;
                }
                Err(e) => return Err(e),
            }
        };
        self.offset += n as u64;
        self.pos = 0;
        self.end = n;
        Ok(())
    }
}

impl DirectReader {
    /// The file's length now.
    pub fn file_len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// Makes `to` the offset of the next byte read: inside the buffer by
    /// moving its cursor, else by seeking the file (direct reads start at
    /// the aligned offset at or below `to`, and skip up to it).
    pub fn seek_to(&mut self, to: u64) -> io::Result<()> {
        let buf_start = self.offset - self.end as u64;
        if (buf_start..=self.offset).contains(&to) {
            self.pos = (to - buf_start) as usize;
            return Ok(());
        }
        let from = if self.direct {
            to - to % ALIGN as u64
        } else {
            to
        };
        self.file.seek(SeekFrom::Start(from))?;
        self.offset = from;
        self.pos = 0;
        self.end = 0;
        if to > from {
            self.fill()?;
            self.pos = ((to - from) as usize).min(self.end);
        }
        Ok(())
    }
}

impl Read for DirectReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.end {
            self.fill()?;
        }
        let n = (self.end - self.pos).min(out.len());
        if n > 0 {
            let buf = self.buf.as_ref().expect("filled");
            out[..n].copy_from_slice(&buf[self.pos..self.pos + n]);
        }
        self.pos += n;
        Ok(n)
    }
}

/// Writes one new file, direct where the filesystem allows it.
pub struct StagingWriter {
    path: PathBuf,
    file: File,
    /// Holds `filled` bytes not yet written.
    buf: Option<AlignedBuf>,
    filled: usize,
    direct: bool,
    written: u64,
}

impl StagingWriter {
    /// Creates `path`, which must not exist yet.
    pub fn create(path: &Path) -> io::Result<Self> {
        Self::create_with(path, true)
    }

    fn create_with(path: &Path, try_direct: bool) -> io::Result<Self> {
        let options = OpenOptions::new().write(true).create_new(true).clone();
        let (file, direct) = open(path, &options, try_direct)?;
        Ok(StagingWriter {
            path: path.to_path_buf(),
            file,
            buf: None,
            filled: 0,
            direct,
            written: 0,
        })
    }

    /// Appends `data`.
    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        self.written += data.len() as u64;
        if !self.direct {
            return self.file.write_all(data);
        }
        while !data.is_empty() {
            // Mapped on first use; small objects touch a page or two.
            let buf = match &mut self.buf {
                Some(b) => b,
                None => self.buf.insert(aligned_buf()?),
            };
            let n = (DIRECT_BUF - self.filled).min(data.len());
            buf[self.filled..self.filled + n].copy_from_slice(&data[..n]);
            self.filled += n;
            data = &data[n..];
            if self.filled == DIRECT_BUF {
                self.flush_direct()?;
            }
        }
        Ok(())
    }

    fn flush_direct(&mut self) -> io::Result<()> {
        let buf = self.buf.as_ref().expect("a full buffer");
        write_whole(&mut self.file, &mut self.direct, buf)?;
        self.filled = 0;
        Ok(())
    }

    /// Writes the tail, makes the file durable and returns its size.
    pub fn finish(self) -> io::Result<u64> {
        let StagingWriter {
            path,
            file,
            buf,
            filled,
            written,
            ..
        } = self;
        if let Some(buf) = buf.filter(|_| filled > 0) {
            // Less than a whole aligned buffer: an ordinary write.
            let mut tail = OpenOptions::new().append(true).open(&path)?;
            tail.write_all(&buf[..filled])?;
        }
        // fsync covers the inode, whichever handle wrote what.
        file.sync_all()?;
        Ok(written)
    }
}

/// Writes files that are already open (a restore's rebuilt files, each from
/// offset 0) on a thread of its own, direct where the filesystem allows it
/// (`O_DIRECT` set on the handle), so that the caller pays one memcpy per
/// byte: neither the kernel's copy into the page cache nor the wait for
/// the disk. Full aligned buffers go to the thread, `BUFFERS_IN_FLIGHT`
/// at most; [`FileWriter::close`] writes the unaligned tail (buffered),
/// waits for every byte and gives the file back, written, not synced. A
/// filesystem that refuses direct I/O gets buffered writes on the same
/// thread, its writeback started every [`crate::archive::WRITEBACK_EVERY`]
/// bytes.
pub struct FileWriter {
    jobs: Option<SyncSender<Job>>,
    free: Receiver<AlignedBuf>,
    done: Receiver<io::Result<File>>,
    cur: Option<AlignedBuf>,
    filled: usize,
    /// Set by the thread when a write of the current file failed.
    failed: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    /// Dropped after the thread has ended (fields drop in order).
    _live: Live,
}

/// Counts a [`FileWriter`] in [`WRITERS`] while it lives.
struct Live {
    first: bool,
}

impl Live {
    fn new() -> Live {
        Live {
            first: WRITERS.fetch_add(1, Ordering::AcqRel) == 0,
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        WRITERS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Aligned buffers of a [`FileWriter`]: one being filled, the others
/// queued or being written.
const BUFFERS_IN_FLIGHT: usize = 3;

/// The size of the buffers of the first [`FileWriter`] alive, and so of
/// each of its writes: 4 MiB; any other writer alive at the time gets
/// buffers of [`DIRECT_BUF`]. The writing thread waits for the disk on
/// every write, and then for a core: a restore keeps both busy decoding
/// and hashing, so each write is followed by a wait for the scheduler as
/// much as for the disk. Measured restoring the bench's largest block
/// (`--concurrency 1`, page cache dropped, interleaved runs): with 1 MiB
/// writes the hashing thread waited 310-350 ms for a free buffer and the
/// restore took 0.88-0.90 s; with 4 MiB, 17-57 ms and 0.73-0.74 s (2 MiB:
/// 0.77-0.80 s; 8 MiB in two buffers: 0.74-0.78 s). Only the first:
/// four blocks at once each with 12 MiB of buffers took a whole restore of
/// the large bench set past 200 MB resident. With `--concurrency 1` every
/// block's writer is the first in turn; with several blocks at once it is
/// the writer of whichever reaches its chunk segments first (blocks start
/// largest first, but a smaller index is written sooner), and a writer
/// started after it keeps 1 MiB buffers to its end.
const FIRST_WRITE_BUF: usize = 4 * 1024 * 1024;

/// [`FileWriter`]s alive (see [`FIRST_WRITE_BUF`]).
static WRITERS: AtomicUsize = AtomicUsize::new(0);

enum Job {
    Open(File),
    Write(AlignedBuf),
    /// The last bytes (`.1` of them), then reply with the file.
    Close(Option<(AlignedBuf, usize)>),
}

impl FileWriter {
    pub fn spawn() -> io::Result<FileWriter> {
        let live = Live::new();
        let len = match live.first {
            true => FIRST_WRITE_BUF,
            false => DIRECT_BUF,
        };
        Self::start(len, live)
    }

    /// A writer whose buffers (and writes) are `len` bytes.
    fn start(len: usize, live: Live) -> io::Result<FileWriter> {
        let (jobs, rx) = mpsc::sync_channel::<Job>(BUFFERS_IN_FLIGHT);
        let (free_tx, free) = mpsc::sync_channel(BUFFERS_IN_FLIGHT);
        for _ in 1..BUFFERS_IN_FLIGHT {
            let _ = free_tx.send(aligned_buf_of(len)?);
        }
        let (done_tx, done) = mpsc::sync_channel(1);
        let failed = Arc::new(AtomicBool::new(false));
        let flag = failed.clone();
        let handle = std::thread::Builder::new()
            .name("writer".into())
            .spawn(move || {
                let mut out: Option<(File, bool)> = None;
                let mut error: Option<io::Error> = None;
                let mut since_writeback = 0;
                for job in rx {
                    match job {
                        Job::Open(file) => {
                            let direct = set_direct(&file, true).is_ok();
                            out = Some((file, direct));
                            since_writeback = 0;
                        }
                        Job::Write(buf) => {
                            if let (Some((file, direct)), None) = (out.as_mut(), &error) {
                                match write_whole(file, direct, &buf) {
                                    Ok(()) if !*direct => {
                                        since_writeback += buf.len() as u64;
                                        if since_writeback >= crate::archive::WRITEBACK_EVERY {
                                            crate::archive::start_writeback(file);
                                            since_writeback = 0;
                                        }
                                    }
                                    Ok(()) => {}
                                    Err(e) => {
                                        error = Some(e);
                                        flag.store(true, Ordering::Release);
                                    }
                                }
                            }
                            let _ = free_tx.send(buf);
                        }
                        Job::Close(tail) => {
                            let mut result = match (out.take(), error.take()) {
                                (_, Some(e)) => Err(e),
                                (Some((file, direct)), None) => Ok((file, direct)),
                                (None, None) => Err(io::Error::other("no file was open")),
                            };
                            if let Some((buf, n)) = tail {
                                if let Ok((file, direct)) = &mut result {
                                    // Unaligned: through the page cache.
                                    let tail = match *direct {
                                        true => set_direct(file, false),
                                        false => Ok(()),
                                    };
                                    if let Err(e) = tail.and_then(|()| file.write_all(&buf[..n])) {
                                        result = Err(e);
                                    }
                                }
                                let _ = free_tx.send(buf);
                            }
                            flag.store(false, Ordering::Release);
                            if done_tx.send(result.map(|(file, _)| file)).is_err() {
                                return;
                            }
                        }
                    }
                }
            })?;
        Ok(FileWriter {
            jobs: Some(jobs),
            free,
            done,
            cur: Some(aligned_buf_of(len)?),
            filled: 0,
            failed,
            handle: Some(handle),
            _live: live,
        })
    }

    /// Writes to `file` from now on, from its offset 0.
    pub fn open(&mut self, file: File) -> io::Result<()> {
        self.send(Job::Open(file))
    }

    /// Appends `data` to the open file. A failed write is returned here
    /// (soon after it happened) or by [`FileWriter::close`].
    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        if self.failed.load(Ordering::Acquire) {
            return self.close().map(|_| ());
        }
        while !data.is_empty() {
            let buf = match &mut self.cur {
                Some(b) => b,
                None => self.cur.insert(self.free.recv().map_err(|_| stopped())?),
            };
            let n = (buf.len() - self.filled).min(data.len());
            buf[self.filled..self.filled + n].copy_from_slice(&data[..n]);
            self.filled += n;
            data = &data[n..];
            if self.filled == buf.len() {
                let full = self.cur.take().expect("filled");
                self.filled = 0;
                self.send(Job::Write(full))?;
            }
        }
        Ok(())
    }

    /// Writes what is left, waits for every write and returns the file
    /// (or the first write's error).
    pub fn close(&mut self) -> io::Result<File> {
        let tail = match self.filled {
            0 => None,
            n => self.cur.take().map(|b| (b, n)),
        };
        self.filled = 0;
        self.send(Job::Close(tail))?;
        self.done.recv().map_err(|_| stopped())?
    }

    fn send(&self, job: Job) -> io::Result<()> {
        let jobs = self.jobs.as_ref().ok_or_else(stopped)?;
        jobs.send(job).map_err(|_| stopped())
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        drop(self.jobs.take()); // ends the thread's loop
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn stopped() -> io::Error {
    io::Error::other("the writing thread stopped")
}

/// Writes one whole buffer at the file's offset: direct if `direct`, which
/// a filesystem that refuses it after all turns off.
fn write_whole(file: &mut File, direct: &mut bool, buf: &[u8]) -> io::Result<()> {
    if *direct {
        match file.write(buf) {
            Ok(n) if n == buf.len() => return Ok(()),
            // A short direct write leaves the offset unaligned; only a full
            // disk does that.
            Ok(_) => return Err(io::Error::from(io::ErrorKind::StorageFull)),
            // Refused after all: nothing was written.
            Err(e) if is_einval(&e) => {
                set_direct(file, false)?;
                *direct = false;
            }
            Err(e) => return Err(e),
        }
    }
    file.write_all(buf)
}

/// Reads `len` bytes at `offset` of `file` into a recycled buffer
/// (`crate::buffers`), past the page cache where the filesystem allows it:
/// a run of blobs of a pack in a local repository, read once by a restore
/// or a deep verify, which read ahead of their own (so the kernel's
/// readahead is not missed). The aligned range around the bytes is read and
/// the bytes are a slice of it. `UnexpectedEof` if the file ends first.
pub fn read_range(file: &File, offset: u64, len: usize) -> io::Result<bytes::Bytes> {
    use std::os::unix::fs::FileExt;
    let align = ALIGN as u64;
    let from = offset - offset % align;
    let skip = (offset - from) as usize;
    let need = skip + len;
    let span = need.next_multiple_of(ALIGN);
    // A run of blobs, often megabytes: a recycled buffer, not fresh pages
    // to fault in; ALIGN more, to start the read at an aligned address.
    let mut buf = crate::buffers::take(span + ALIGN);
    let pad = buf.as_ptr().align_offset(ALIGN);
    let mut got = 0;
    if len >= ALIGN && set_direct(file, true).is_ok() {
        while got < need {
            match file.read_at(&mut buf[pad + got..pad + span], from + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Refused after all, or a short read left the offset
                // unaligned: the rest through the page cache.
                Err(e) if is_einval(&e) => break,
                Err(e) => return Err(e),
            }
            if got % ALIGN != 0 {
                break;
            }
        }
        let _ = set_direct(file, false);
    }
    if got < need {
        file.read_exact_at(&mut buf[pad + got..pad + need], from + got as u64)?;
    }
    let start = pad + skip;
    Ok(crate::buffers::into_bytes(buf).slice(start..start + len))
}

/// Sets or clears `O_DIRECT` on an open file.
fn set_direct(file: &File, on: bool) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this `File` owns; only its flags change.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let flags = if on {
        flags | libc::O_DIRECT
    } else {
        flags & !libc::O_DIRECT
    };
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZES: [usize; 7] = [
        0,
        1,
        4095,
        4096,
        DIRECT_BUF - 1,
        DIRECT_BUF,
        2 * DIRECT_BUF + 7,
    ];

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    /// Writes and reads back files of awkward sizes, direct (where the
    /// filesystem allows it) or buffered.
    fn round_trips(direct: bool) {
        let dir = tempfile::tempdir().unwrap();
        for len in SIZES {
            let data = pattern(len);
            let path = dir.path().join(format!("f{len}"));
            let mut w = StagingWriter::create_with(&path, direct).unwrap();
            // Odd-sized pieces, as archive chunks arrive.
            for piece in data.chunks(1_000_003) {
                w.write(piece).unwrap();
            }
            assert_eq!(w.finish().unwrap(), len as u64);
            assert_eq!(std::fs::read(&path).unwrap(), data, "written, {len} bytes");

            let mut back = Vec::new();
            let mut r = DirectReader::open_with(&path, direct).unwrap();
            let mut buf = vec![0; 8192 + 3];
            loop {
                let n = r.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                back.extend_from_slice(&buf[..n]);
            }
            assert_eq!(back, data, "read back, {len} bytes");
        }
    }

    #[test]
    fn files_of_every_awkward_size_round_trip_direct() {
        round_trips(true);
    }

    #[test]
    fn files_of_every_awkward_size_round_trip_buffered() {
        round_trips(false);
    }

    #[test]
    fn open_files_written_on_the_thread_hold_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        for buf in [DIRECT_BUF, FIRST_WRITE_BUF] {
            let mut w = FileWriter::start(buf, Live::new()).unwrap();
            for len in SIZES.into_iter().chain([2 * FIRST_WRITE_BUF + 7]) {
                written_whole(&mut w, &dir.path().join(format!("{buf}-{len}")), len);
            }
        }
    }

    /// Writes a file of `len` bytes through `w` and reads it back.
    fn written_whole(w: &mut FileWriter, path: &Path, len: usize) {
        let data = pattern(len);
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(path)
            .unwrap();
        w.open(file).unwrap();
        for piece in data.chunks(262_147) {
            w.write(piece).unwrap();
        }
        let file = w.close().unwrap();
        file.sync_all().unwrap();
        assert_eq!(file.metadata().unwrap().len(), len as u64);
        assert_eq!(std::fs::read(path).unwrap(), data, "{len} bytes");
    }

    #[test]
    fn a_failed_write_is_returned_and_the_next_file_starts_clean() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ro"), b"").unwrap();
        let mut w = FileWriter::spawn().unwrap();
        w.open(File::open(dir.path().join("ro")).unwrap()).unwrap();
        let data = pattern(5 * DIRECT_BUF);
        let err = match w.write(&data) {
            Err(e) => e,
            Ok(()) => w.close().unwrap_err(),
        };
        assert_eq!(err.raw_os_error(), Some(libc::EBADF), "{err}");
        let path = dir.path().join("next");
        w.open(File::create(&path).unwrap()).unwrap();
        w.write(b"abc").unwrap();
        w.close().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");
    }

    #[test]
    fn a_direct_reader_seeks_anywhere_and_reads_on_from_there() {
        let dir = tempfile::tempdir().unwrap();
        let data = pattern(3 * DIRECT_BUF + 123);
        let path = dir.path().join("f");
        std::fs::write(&path, &data).unwrap();
        let mut r = DirectReader::open(&path).unwrap();
        let mut buf = vec![0; 5000];
        r.read_exact(&mut buf).unwrap();
        // Inside the buffer, back before it, unaligned ahead, near the end.
        for to in [
            100,
            2_000_001,
            7,
            DIRECT_BUF as u64 + 4095,
            data.len() as u64 - 10,
        ] {
            r.seek_to(to).unwrap();
            let n = 5000.min(data.len() - to as usize);
            r.read_exact(&mut buf[..n]).unwrap();
            assert_eq!(&buf[..n], &data[to as usize..to as usize + n], "at {to}");
        }
        assert_eq!(r.read(&mut buf).unwrap(), 0, "at the end");
    }

    #[test]
    fn buffers_are_aligned_as_direct_io_needs() {
        let buf = aligned_buf().unwrap();
        assert_eq!(buf.len(), DIRECT_BUF);
        assert_eq!(buf.as_ptr() as usize % ALIGN, 0);
    }

    #[test]
    fn an_existing_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        std::fs::write(&path, b"keep").unwrap();
        assert!(StagingWriter::create(&path).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"keep");
    }
}
