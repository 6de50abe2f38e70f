//! Rebuilding a block's chunk segment files from its window streams.
//!
//! The index (restored first) says where every record goes: walking its
//! series in order, each chunk's record is the next one of the stream of the
//! window holding the chunk's `minTime`, and it belongs at the chunk's
//! reference. Everything here comes from a repository that may be damaged
//! or hostile (the index, the [`WindowLayout`] and the streams alike), so
//! every check is made before the bytes it guards are written:
//!
//! - the layout is consistent on its own: a positive window length, windows
//!   aligned, ascending and at most [`MAX_WINDOWS`], segment paths
//!   `chunks/000001` to `N`, valid headers, and the streams' bytes and
//!   records adding up to the segments' (without overflow);
//! - a reference names exactly the current end of the output: the current
//!   segment file, or offset 8 of the next once the current one has reached
//!   its recorded size (no gap, no overlap, no going back);
//! - a record's length is plausible (at most [`MAX_RECORD_DATA`] of data,
//!   a length field of at most 5 bytes) and fits in what is left of its
//!   stream's declared length and of its segment's recorded size; its
//!   CRC32C matches (unless the caller leaves that to the segment's
//!   SHA-256, [`Crcs::Skip`]: a restore, `verify --deep`); its stream and
//!   the block still owe a record;
//! - a segment file ends exactly at its recorded size and hashes to its
//!   recorded SHA-256 before the next one is started;
//! - at the end, every segment file has been written and every stream used
//!   up exactly: its declared bytes and records, and nothing after them.
//!
//! So no file ever grows past its recorded size. The bytes go to a
//! [`SegmentSink`]: [`SegmentFiles`] writes them as files (a restore), a
//! checker may walk them as they pass (`verify --deep`, which never writes
//! chunk segments to disk). On an error the files written so far stay (the
//! caller writes into a staging directory and removes it); new files are
//! created with `create_new`, never over existing ones.

use std::fs::{self, File};
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};

use super::split::{check_crc, ref_mismatch};
use super::{window_start, SegmentLayout, WindowLayout, WindowTotals};
use super::{MAX_RECORD_DATA, MAX_WINDOWS};
use crate::hash_thread::HashThread;
use crate::tsdb::index::{meta_error, IndexError, SeriesReader};
use crate::tsdb::segment::{self, MAX_LEN_FIELD, RECORD_OVERHEAD, SEGMENT_HEADER_LEN};

/// Where [`join_into`] sends the segment files it rebuilds, one after the
/// other: `start`, the file's bytes in order through `write` (its 8-byte
/// header first), then `end` once its size and SHA-256 have been checked.
///
/// A sink that stores the files as they are gives `start` the file to
/// write: the thread that hashes the segment then writes it too, beside the
/// joining thread, and `write` only sees what is also written there.
pub trait SegmentSink {
    /// Starts a segment; returns the file its bytes are to be written to,
    /// if they go to a file.
    fn start(&mut self, segment: &SegmentLayout) -> io::Result<Option<File>>;
    fn write(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// The segment is complete and checked; `file` is the one `start`
    /// returned, every byte written (not synced).
    fn end(&mut self, file: Option<File>) -> io::Result<()>;
    /// How errors of this sink name a segment (`chunks/000001` by default).
    fn path(&self, segment: &SegmentLayout) -> PathBuf {
        PathBuf::from(&segment.path)
    }
}

/// Writes the segment files into `<dir>/chunks/`, each created new; a
/// finished file goes to `finished` with its path (which may sync it).
pub struct SegmentFiles<'a> {
    dir: PathBuf,
    current: Option<PathBuf>,
    finished: Box<Finished<'a>>,
}

/// What [`SegmentFiles`] does with a finished file.
type Finished<'a> = dyn FnMut(&Path, File) -> io::Result<()> + 'a;

impl<'a> SegmentFiles<'a> {
    /// Files in `dir/chunks/` (created if needed); `finished` gets each
    /// file once it is complete and checked.
    pub fn new(
        dir: &Path,
        finished: impl FnMut(&Path, File) -> io::Result<()> + 'a,
    ) -> io::Result<SegmentFiles<'a>> {
        fs::create_dir_all(dir.join("chunks"))?;
        Ok(SegmentFiles {
            dir: dir.to_path_buf(),
            current: None,
            finished: Box::new(finished),
        })
    }
}

impl SegmentSink for SegmentFiles<'_> {
    fn start(&mut self, segment: &SegmentLayout) -> io::Result<Option<File>> {
        let path = self.dir.join(&segment.path);
        let file = File::options().write(true).create_new(true).open(&path)?;
        self.current = Some(path);
        Ok(Some(file))
    }

    fn write(&mut self, _: &[u8]) -> io::Result<()> {
        Ok(())
    }

    fn end(&mut self, file: Option<File>) -> io::Result<()> {
        let path = self.current.take().expect("a segment was started");
        let file = file.expect("start gave a file");
        (self.finished)(&path, file)
    }

    fn path(&self, segment: &SegmentLayout) -> PathBuf {
        self.dir.join(&segment.path)
    }
}

/// What [`join`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Joined {
    pub records: u64,
    /// Bytes written, segment headers included.
    pub bytes: u64,
}

/// Why the segment files could not be rebuilt. Every variant but `Write`
/// means the stored block (its index, layout or streams) is damaged.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("could not write {}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("the index cannot be walked: {0}")]
    Index(#[from] IndexError),
    #[error("the chunk layout is inconsistent: {0}")]
    Layout(String),
    #[error(
        "the series entry at index offset {entry} references {} offset {} (ref {chunk_ref:#x}), \
         but the output ends at {} offset {}: {}",
        segment::segment_path(chunk_ref >> 32), chunk_ref & 0xffff_ffff,
        segment::segment_path(expected.0), expected.1,
        ref_mismatch(chunk_ref >> 32, chunk_ref & 0xffff_ffff, *expected)
    )]
    Ref {
        entry: u64,
        chunk_ref: u64,
        /// The current end of the output: segment and offset.
        expected: (u64, u64),
    },
    #[error(
        "a chunk of the series entry at index offset {entry} starts at {min_time} ms, in no \
         window of the layout"
    )]
    NoStream { entry: u64, min_time: i64 },
    #[error("the stream of window {window}: {reason}")]
    Stream { window: i64, reason: String },
    #[error("reading the stream of window {window} failed")]
    StreamRead { window: i64, source: io::Error },
    #[error("{segment}: {reason}")]
    Segment { segment: String, reason: String },
    #[error("{0}")]
    Count(String),
}

/// Rebuilds the chunk segment files of a block into `dir/chunks/`, from
/// its restored `index`, its `layout` and one reader per window stream
/// (`streams[i]` yields the stream of `layout.windows[i]`). The files are
/// not synced.
pub fn join<R: BufRead>(
    index: &Path,
    layout: &WindowLayout,
    streams: &mut [R],
    dir: &Path,
) -> Result<Joined, JoinError> {
    check_layout(layout, streams.len())?;
    let mut files = SegmentFiles::new(dir, |_, _| Ok(())).map_err(|source| JoinError::Write {
        path: dir.join("chunks"),
        source,
    })?;
    join_into(index, layout, streams, &mut files, Crcs::Check)
}

/// Whether [`join_into`] checks each record's CRC32C.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crcs {
    /// Refuse a record whose CRC32C does not match, naming it.
    Check,
    /// Leave it to the segment's SHA-256, which covers every byte and is
    /// checked before the segment is finished (and, in `verify --deep`, to
    /// the walk of the records, which checks them again): the CRC was a
    /// second pass over every byte on the joining thread, which sets the
    /// pace of a rebuild.
    Skip,
}

/// As [`join`], sending the segment files to `sink`, checking the records'
/// CRC32C or not (`crcs`).
pub fn join_into<R: BufRead>(
    index: &Path,
    layout: &WindowLayout,
    streams: &mut [R],
    sink: &mut dyn SegmentSink,
    crcs: Crcs,
) -> Result<Joined, JoinError> {
    check_layout(layout, streams.len())?;
    let mut series = SeriesReader::open(index)?;
    // The segments' SHA-256 on a thread of their own: this one walks the
    // index and copies the records, and is what sets the wall time of a
    // restore of a large block.
    let hash = HashThread::spawn().map_err(|source| JoinError::Write {
        path: PathBuf::from("chunks"),
        source,
    })?;
    let mut out = Output {
        sink,
        segments: &layout.segments,
        current: None,
        hash,
    };
    if !layout.segments.is_empty() {
        out.open(0)?;
    }
    let mut used = vec![WindowTotals::default(); layout.windows.len()];
    let mut record = Vec::new();
    let mut records: u64 = 0;
    while let Some(entry) = series.next_series()? {
        let offset = entry.offset;
        for meta in entry.chunks {
            let meta = meta.map_err(|e| meta_error(offset, e))?;
            let stream = window_start(meta.min_time, layout.window_ms)
                .and_then(|w| layout.windows.binary_search_by_key(&w, |w| w.start).ok());
            let Some(i) = stream else {
                return Err(JoinError::NoStream {
                    entry: offset,
                    min_time: meta.min_time,
                });
            };
            let seg_left = out.step_to(meta.chunk_ref, offset)?;
            records = count_record(records, layout.records)?;
            let mut stream = Stream {
                r: &mut streams[i],
                declared: &layout.windows[i],
                used: &mut used[i],
                crcs,
            };
            let segment = out
                .current_index()
                .map_or("chunks/", |i| layout.segments[i as usize].path.as_str());
            stream.read_record(&mut record, seg_left, segment, &mut |r| out.write(r))?;
        }
    }
    out.finish()?;
    finish_streams(layout, streams, &used, records)?;
    let bytes = layout.segments.iter().map(|s| s.size).sum();
    Ok(Joined { records, bytes })
}

/// Checks the layout on its own, before anything is written.
fn check_layout(layout: &WindowLayout, streams: usize) -> Result<(), JoinError> {
    let bad = |m: String| Err(JoinError::Layout(m));
    let w = layout.window_ms;
    if w <= 0 {
        return bad(format!("the window length is {w} ms"));
    }
    if layout.windows.len() != streams {
        let n = layout.windows.len();
        return bad(format!(
            "it lists {n} windows, but {streams} streams were given"
        ));
    }
    if layout.windows.len() > MAX_WINDOWS {
        let n = layout.windows.len();
        return bad(format!("it lists {n} windows, more than {MAX_WINDOWS}"));
    }
    let (mut bytes, mut records) = (0u64, 0u64);
    for (i, win) in layout.windows.iter().enumerate() {
        if win.start.rem_euclid(w) != 0 {
            return bad(format!("window {} is not a multiple of {w} ms", win.start));
        }
        if i > 0 && layout.windows[i - 1].start >= win.start {
            return bad(format!("window {} is out of order", win.start));
        }
        bytes = bytes
            .checked_add(win.bytes)
            .ok_or(JoinError::Layout("the windows' lengths overflow".into()))?;
        records = records.checked_add(win.records).ok_or(JoinError::Layout(
            "the windows' record counts overflow".into(),
        ))?;
    }
    let mut data = 0u64;
    for (i, seg) in layout.segments.iter().enumerate() {
        let want = segment::segment_path(i as u64);
        if seg.path != want {
            return bad(format!("segment #{} is {:?}, not {want}", i + 1, seg.path));
        }
        if seg.size < SEGMENT_HEADER_LEN {
            return bad(format!(
                "{want} is {} bytes, shorter than its header",
                seg.size
            ));
        }
        if let Err(e) = segment::check_header(&seg.header) {
            return bad(format!("{want}: {e}"));
        }
        data = data
            .checked_add(seg.size - SEGMENT_HEADER_LEN)
            .ok_or(JoinError::Layout("the segment sizes overflow".into()))?;
    }
    if data != bytes {
        return bad(format!(
            "the segment files hold {data} bytes of records, but the window streams {bytes}"
        ));
    }
    if records != layout.records {
        return bad(format!(
            "the block has {} records, but the window streams {records}",
            layout.records
        ));
    }
    Ok(())
}

/// One more record, which the block must still owe.
fn count_record(records: u64, total: u64) -> Result<u64, JoinError> {
    match records.checked_add(1) {
        Some(n) if n <= total => Ok(n),
        _ => Err(JoinError::Count(format!(
            "the index references more chunks than the block's {total} records"
        ))),
    }
}

/// A window stream and what has been taken from it.
struct Stream<'a, R> {
    r: &'a mut R,
    declared: &'a WindowTotals,
    used: &'a mut WindowTotals,
    crcs: Crcs,
}

impl<R: BufRead> Stream<'_, R> {
    fn error(&self, reason: String) -> JoinError {
        JoinError::Stream {
            window: self.declared.start,
            reason,
        }
    }

    /// Reads the next record, checks it against what is left of the stream
    /// and of the segment (`seg_left` bytes of `segment`), and hands it to
    /// `emit`. A record that lies whole in the reader's buffer (nearly
    /// all) is checked and handed on where it lies; one that straddles two
    /// blobs is gathered in `buf` first.
    fn read_record(
        &mut self,
        buf: &mut Vec<u8>,
        seg_left: u64,
        segment: &str,
        emit: &mut dyn FnMut(&[u8]) -> Result<(), JoinError>,
    ) -> Result<(), JoinError> {
        if let Some(total) = self.record_in_place(seg_left, emit)? {
            self.r.consume(total as usize);
            self.used.bytes += total;
            self.used.records += 1;
            return Ok(());
        }
        self.read_record_into(buf, seg_left, segment)?;
        emit(buf)
    }

    /// The fast path of [`Stream::read_record`]: when the next record lies
    /// whole in the reader's buffer and passes every check, hands it to
    /// `emit` and returns its length (for the caller to consume). Anything
    /// else (a record across blobs, or one that fails a check) returns
    /// `None` without consuming, for [`Stream::read_record_into`] to read
    /// again and name what is wrong.
    fn record_in_place(
        &mut self,
        seg_left: u64,
        emit: &mut dyn FnMut(&[u8]) -> Result<(), JoinError>,
    ) -> Result<Option<u64>, JoinError> {
        if self.used.records >= self.declared.records {
            return Ok(None);
        }
        let left = self.declared.bytes - self.used.bytes;
        let Ok(avail) = self.r.fill_buf() else {
            return Ok(None);
        };
        let mut len = 0u64;
        let mut field = None;
        for (i, &b) in avail.iter().take(MAX_LEN_FIELD as usize).enumerate() {
            len |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                field = Some(i as u64 + 1);
                break;
            }
        }
        let Some(field) = field else {
            return Ok(None);
        };
        if len > MAX_RECORD_DATA {
            return Ok(None);
        }
        let total = field + len + RECORD_OVERHEAD;
        if total > left || total > seg_left || total > avail.len() as u64 {
            return Ok(None);
        }
        let record = &avail[..total as usize];
        if self.crcs == Crcs::Check && check_crc(&record[field as usize..]).is_err() {
            return Ok(None);
        }
        emit(record)?;
        prefetch(&avail[total as usize..]);
        Ok(Some(total))
    }

    /// Reads the next record into `buf`, checking it against what is left
    /// of the stream and of the segment (`seg_left` bytes of `segment`).
    fn read_record_into(
        &mut self,
        buf: &mut Vec<u8>,
        seg_left: u64,
        segment: &str,
    ) -> Result<(), JoinError> {
        let declared = self.declared;
        let at = self.used.bytes;
        if self.used.records >= declared.records {
            let n = declared.records;
            return Err(self.error(format!("the index wants more than its {n} records")));
        }
        let left = declared.bytes - at;
        buf.clear();
        let len = self.read_len(buf, left)?;
        if len > MAX_RECORD_DATA {
            return Err(self.error(format!(
                "a record at byte {at} claims {len} bytes of data, more than any chunk \
                 ({MAX_RECORD_DATA})"
            )));
        }
        let total = buf.len() as u64 + len + RECORD_OVERHEAD;
        if total > left {
            return Err(self.error(format!(
                "a record at byte {at} is {total} bytes long, but only {left} of the stream's \
                 declared {} bytes are left",
                declared.bytes
            )));
        }
        if total > seg_left {
            return Err(JoinError::Segment {
                segment: segment.to_string(),
                reason: format!(
                    "a {total}-byte record from window {} would overshoot the recorded size \
                     ({seg_left} bytes left)",
                    declared.start
                ),
            });
        }
        let field = buf.len();
        buf.resize(field + (len + RECORD_OVERHEAD) as usize, 0);
        self.fill(&mut buf[field..], at + field as u64)?;
        if let Err(e) = check_crc(&buf[field..]).or_else(|e| match self.crcs {
            Crcs::Check => Err(e),
            Crcs::Skip => Ok(()),
        }) {
            return Err(self.error(format!("the record at byte {at}: {e}")));
        }
        self.used.bytes += total;
        self.used.records += 1;
        Ok(())
    }

    /// Reads a record's length field (at most 5 bytes, and no further than
    /// `left`) into `buf`; returns the length.
    fn read_len(&mut self, buf: &mut Vec<u8>, left: u64) -> Result<u64, JoinError> {
        let mut len = 0u64;
        for i in 0..MAX_LEN_FIELD {
            if buf.len() as u64 >= left {
                let at = self.used.bytes;
                return Err(self.error(format!(
                    "the record length at byte {at} runs past the stream's declared end"
                )));
            }
            let mut b = [0u8];
            self.fill(&mut b, self.used.bytes + i)?;
            buf.push(b[0]);
            len |= u64::from(b[0] & 0x7f) << (7 * i);
            if b[0] < 0x80 {
                return Ok(len);
            }
        }
        let at = self.used.bytes;
        Err(self.error(format!(
            "the record length at byte {at} is longer than 5 bytes"
        )))
    }

    /// Fills `out` from the stream, which must not end first.
    fn fill(&mut self, out: &mut [u8], at: u64) -> Result<(), JoinError> {
        match self.r.read_exact(out) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(self.error(format!(
                "it ends before byte {} of its declared {}",
                at + out.len() as u64,
                self.declared.bytes
            ))),
            Err(source) => Err(JoinError::StreamRead {
                window: self.declared.start,
                source,
            }),
        }
    }
}

/// After the walk: the block's records all written, every stream used up
/// exactly, with nothing after its declared end.
fn finish_streams<R: BufRead>(
    layout: &WindowLayout,
    streams: &mut [R],
    used: &[WindowTotals],
    records: u64,
) -> Result<(), JoinError> {
    if records != layout.records {
        return Err(JoinError::Count(format!(
            "the index references {records} chunks, but the block has {} records",
            layout.records
        )));
    }
    for ((declared, used), r) in layout.windows.iter().zip(used).zip(streams.iter_mut()) {
        let window = declared.start;
        if used.bytes != declared.bytes || used.records != declared.records {
            return Err(JoinError::Stream {
                window,
                reason: format!(
                    "the index used {} of its {} records and {} of its {} bytes",
                    used.records, declared.records, used.bytes, declared.bytes
                ),
            });
        }
        match r.fill_buf() {
            Ok([]) => {}
            Ok(_) => {
                return Err(JoinError::Stream {
                    window,
                    reason: format!("it goes on after its declared {} bytes", declared.bytes),
                })
            }
            Err(source) => return Err(JoinError::StreamRead { window, source }),
        }
    }
    Ok(())
}

/// The segment files being written.
struct Output<'a> {
    sink: &'a mut dyn SegmentSink,
    segments: &'a [SegmentLayout],
    current: Option<OutSegment>,
    /// Hashes the current segment file.
    hash: HashThread,
}

struct OutSegment {
    index: u64,
    written: u64,
}

impl Output<'_> {
    fn layout(&self, index: u64) -> &SegmentLayout {
        &self.segments[index as usize]
    }

    /// The segment file being written, if any.
    fn current_index(&self) -> Option<u64> {
        self.current.as_ref().map(|c| c.index)
    }

    /// The sink's failure on segment `index`.
    fn write_error(&self, index: u64, source: io::Error) -> JoinError {
        JoinError::Write {
            path: self.sink.path(self.layout(index)),
            source,
        }
    }

    /// Starts segment file `index` and writes its header.
    fn open(&mut self, index: u64) -> Result<(), JoinError> {
        let seg = &self.segments[index as usize];
        let file = self
            .sink
            .start(seg)
            .map_err(|e| self.write_error(index, e))?;
        if let Some(file) = file {
            self.hash
                .write_to(file)
                .map_err(|e| self.write_error(index, e))?;
        }
        self.sink
            .write(&seg.header)
            .and_then(|()| self.hash.update(&seg.header))
            .map_err(|e| self.write_error(index, e))?;
        self.current = Some(OutSegment {
            index,
            written: SEGMENT_HEADER_LEN,
        });
        Ok(())
    }

    /// Checks that `chunk_ref` names the current end of the output, moving
    /// on to the next segment file if the current one is complete and the
    /// reference names the next one's first record. Returns the bytes left
    /// in the segment the record goes to.
    fn step_to(&mut self, chunk_ref: u64, entry: u64) -> Result<u64, JoinError> {
        let (seg, off) = (chunk_ref >> 32, chunk_ref & 0xffff_ffff);
        let Some(cur) = &self.current else {
            return Err(JoinError::Layout(format!(
                "it has no segment files, but the series entry at index offset {entry} \
                 references {}",
                segment::segment_path(seg)
            )));
        };
        if seg >= self.segments.len() as u64 {
            return Err(JoinError::Layout(format!(
                "it lists {} segment files, but the series entry at index offset {entry} \
                 references {}",
                self.segments.len(),
                segment::segment_path(seg)
            )));
        }
        let (index, written) = (cur.index, cur.written);
        let size = self.layout(index).size;
        if (seg, off) == (index, written) {
            return Ok(size - written);
        }
        let next = index + 1;
        if written == size && (seg, off) == (next, SEGMENT_HEADER_LEN) {
            self.close()?;
            self.open(next)?;
            return Ok(self.layout(next).size - SEGMENT_HEADER_LEN);
        }
        Err(JoinError::Ref {
            entry,
            chunk_ref,
            expected: (index, written),
        })
    }

    /// Appends a record that [`Stream::read_record`] checked against the
    /// space left in the current segment.
    fn write(&mut self, record: &[u8]) -> Result<(), JoinError> {
        let cur = self.current.as_mut().expect("step_to found a segment");
        let index = cur.index;
        cur.written += record.len() as u64;
        if let Err(e) = self
            .sink
            .write(record)
            .and_then(|()| self.hash.update(record))
        {
            return Err(self.write_error(index, e));
        }
        Ok(())
    }

    /// Finishes the current segment file: its recorded size and SHA-256.
    fn close(&mut self) -> Result<(), JoinError> {
        let Some(cur) = self.current.take() else {
            return Ok(());
        };
        let segments = self.segments;
        let seg = &segments[cur.index as usize];
        let fail = |reason: String| JoinError::Segment {
            segment: seg.path.clone(),
            reason,
        };
        if cur.written != seg.size {
            return Err(fail(format!(
                "the index's references end at {} bytes, but its recorded size is {}",
                cur.written, seg.size
            )));
        }
        let (sha, file) = match self.hash.finish_file() {
            Ok((_, sha, file)) => (sha, file),
            Err(e) => return Err(self.write_error(cur.index, e)),
        };
        if sha != hex::encode(seg.sha256) {
            return Err(fail(format!(
                "the rebuilt file's SHA-256 is {sha}, the recorded one {}",
                hex::encode(seg.sha256)
            )));
        }
        self.sink
            .end(file)
            .map_err(|e| self.write_error(cur.index, e))
    }

    /// After the walk: the last segment complete, and no segment unwritten.
    fn finish(&mut self) -> Result<(), JoinError> {
        let last = self.current.as_ref().map(|c| c.index);
        self.close()?;
        let written = last.map_or(0, |i| i + 1) as usize;
        if written < self.segments.len() {
            return Err(JoinError::Segment {
                segment: self.segments[written].path.clone(),
                reason: "the layout lists it, but the index references no record in it".into(),
            });
        }
        Ok(())
    }
}

/// Asks the processor to fetch the first [`PREFETCH_LINES`] cache lines of
/// `next` into its cache: the stream's next record, which the join reads
/// when it comes back to this window for the next series, after one record
/// of every other window. Restoring the bench's largest block (81 windows,
/// 1.8 million records), the copy of the records fell from 9.5-9.8 % of the
/// CPU samples to 5.4-5.9 %, and the joining thread's share from 15-17 %
/// to 14-15 %.
#[inline]
fn prefetch(next: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in next.chunks(64).take(PREFETCH_LINES) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
        // SAFETY: a prefetch is only a hint (it never faults, whatever the
        // address), and SSE is part of every x86_64 processor.
        unsafe { _mm_prefetch::<_MM_HINT_T1>(line.as_ptr().cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = next;
}

/// Cache lines of 64 bytes [`prefetch`] asks for: about a record (they
/// average 325 bytes in the bench's data; 3 and 6 measured the same).
const PREFETCH_LINES: usize = 4;
