//! Splitting a block's chunk segment files into window streams.
//!
//! The index's series section and the segment files are read together, each
//! front to back once: for every chunk meta, in index order, the chunk's
//! reference must name exactly the next record of the segment files (the
//! record right after the previous one, or the first record of the next
//! file once the current one is used up). That is how Prometheus writes
//! blocks (`PopulateBlock` writes each series' chunks, then its index
//! entry), and it is what makes the files rebuildable from the streams
//! alone: the index says where every record goes, the streams give the
//! records in that order.
//!
//! When a block does not follow that pattern (a record the index does not
//! reference, a reference out of order, a malformed record (its framing:
//! record CRCs are not checked, see `read_framed`), an unexpected
//! file in `chunks/`, a damaged index), `split` says why in a
//! [`NotInStep`] instead of failing: the block is not necessarily broken,
//! it just cannot be stored as window streams, and the caller stores its
//! files as they are. Records already handed to the sink must then be
//! dropped. `Err` is kept for I/O failures and for errors of the sink.

use std::fmt;
use std::fs;
use std::io;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{window_start, RecordSink, SegmentLayout, WindowLayout, WindowTotals};
use super::{MAX_RECORD_DATA, MAX_WINDOWS};
use crate::direct_io::DirectReader;
use crate::tsdb::index::{IndexError, SeriesReader};
use crate::tsdb::reader::{FileReader, ReadError, BUF_SIZE};
use crate::tsdb::segment::{self, MAX_LEN_FIELD, RECORD_OVERHEAD, SEGMENT_HEADER_LEN};

/// What [`split`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Split {
    /// Every record went to the sink; this rebuilds the files.
    Windows(WindowLayout),
    /// The chunk files cannot be rebuilt from window streams; why.
    NotInStep(NotInStep),
}

/// Why a block's chunk files are not in step with its index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotInStep {
    /// `chunks/` holds something other than the files `000001` to `N`.
    SegmentFiles(String),
    /// A segment file's header is not magic `0x85BD40DD`, version 1.
    SegmentHeader { segment: String, reason: String },
    /// The index cannot be walked (damaged, or not a TSDB index).
    Index(String),
    /// A chunk reference is not the next record in file order.
    Ref {
        /// Offset of the series entry in the index.
        entry: u64,
        chunk_ref: u64,
        /// Where the next record starts (segment and offset).
        expected: (u64, u64),
        /// Whether that segment file was used up, so the first record of
        /// the next file would have been in step too.
        at_end: bool,
    },
    /// Records that no chunk reference names, from `offset` on.
    Unreferenced { segment: String, offset: u64 },
    /// A referenced record is truncated or malformed.
    Record {
        segment: String,
        offset: u64,
        reason: String,
    },
    /// A chunk's `minTime` has no window (within one window of `i64::MIN`).
    Time { entry: u64, min_time: i64 },
    /// The chunks span more than [`MAX_WINDOWS`] windows.
    TooManyWindows,
}

impl fmt::Display for NotInStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotInStep::SegmentFiles(what) => write!(f, "chunks/ {what}"),
            NotInStep::SegmentHeader { segment, reason } => write!(f, "{segment}: {reason}"),
            NotInStep::Index(e) => write!(f, "the index cannot be walked: {e}"),
            NotInStep::Ref {
                entry,
                chunk_ref,
                expected,
                at_end,
            } => {
                let (seg, off) = (chunk_ref >> 32, chunk_ref & 0xffff_ffff);
                let next = segment::segment_path(expected.0);
                write!(
                    f,
                    "the series entry at index offset {entry} references {} offset {off} \
                     (ref {chunk_ref:#x}), but the next record is at {next} offset {}{}: {}",
                    segment::segment_path(seg),
                    expected.1,
                    if *at_end {
                        " (or the next file's first)"
                    } else {
                        ""
                    },
                    ref_mismatch(seg, off, *expected),
                )
            }
            NotInStep::Unreferenced { segment, offset } => write!(
                f,
                "{segment} holds records from offset {offset} on that no chunk reference names"
            ),
            NotInStep::Record {
                segment,
                offset,
                reason,
            } => write!(f, "{segment} offset {offset}: {reason}"),
            NotInStep::Time { entry, min_time } => write!(
                f,
                "a chunk of the series entry at index offset {entry} starts at {min_time} ms, \
                 which has no window"
            ),
            NotInStep::TooManyWindows => {
                write!(f, "the chunks span more than {MAX_WINDOWS} windows")
            }
        }
    }
}

/// How a reference to `seg`/`off` differs from the expected position.
pub(super) fn ref_mismatch(seg: u64, off: u64, (want_seg, want_off): (u64, u64)) -> String {
    match (seg.cmp(&want_seg), off.cmp(&want_off)) {
        (std::cmp::Ordering::Less, _) => "it goes back to an earlier segment file".into(),
        (std::cmp::Ordering::Equal, std::cmp::Ordering::Less) => {
            format!("it goes back {} bytes", want_off - off)
        }
        (std::cmp::Ordering::Equal, _) => format!(
            "it skips {} bytes the index does not reference",
            off - want_off
        ),
        (std::cmp::Ordering::Greater, _) => {
            "it jumps to a later segment file before this one is used up".into()
        }
    }
}

/// Splits the chunk files of the block in `dir` into window streams of
/// `window_ms` (see the module docs). `window_ms` must be positive.
pub fn split<S: RecordSink + ?Sized>(
    dir: &Path,
    window_ms: i64,
    sink: &mut S,
) -> io::Result<Split> {
    if window_ms <= 0 {
        let msg = format!("window length must be positive, not {window_ms} ms");
        return Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
    }
    let names = match list_segments(&dir.join("chunks"))? {
        Ok(names) => names,
        Err(why) => return Ok(Split::NotInStep(why)),
    };
    let series = match SeriesReader::open(&dir.join("index")) {
        Ok(r) => r,
        Err(e) => return index_failure(e),
    };
    let mut walk = Walk {
        dir,
        names,
        window_ms,
        segment: None,
        done: Vec::new(),
        windows: Vec::new(),
        records: 0,
        record: Vec::new(),
    };
    match walk.run(series, sink)? {
        Some(why) => Ok(Split::NotInStep(why)),
        None => Ok(Split::Windows(WindowLayout {
            window_ms,
            segments: walk.done,
            records: walk.records,
            windows: walk.windows,
        })),
    }
}

fn index_failure(e: IndexError) -> io::Result<Split> {
    match e {
        IndexError::Io(e) => Err(e),
        e @ IndexError::Format { .. } => Ok(Split::NotInStep(NotInStep::Index(e.to_string()))),
    }
}

/// The segment files, which must be exactly `000001` to `N`, regular
/// files. A missing `chunks/` is a block without chunks.
fn list_segments(chunks: &Path) -> io::Result<Result<Vec<String>, NotInStep>> {
    let entries = match fs::read_dir(chunks) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Ok(Vec::new())),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !entry.file_type()?.is_file() {
            let why = format!("holds {name}, which is not a regular file");
            return Ok(Err(NotInStep::SegmentFiles(why)));
        }
        names.push(name);
    }
    names.sort();
    for (i, name) in names.iter().enumerate() {
        let want = segment::segment_path(i as u64);
        if want.strip_prefix("chunks/") != Some(name.as_str()) {
            let why = format!(
                "holds {} files, but file #{} is named {name}, not {}",
                names.len(),
                i + 1,
                &want["chunks/".len()..]
            );
            return Ok(Err(NotInStep::SegmentFiles(why)));
        }
    }
    Ok(Ok(names))
}

/// The segment file being read.
struct OpenSegment {
    index: u64,
    path: String,
    r: FileReader<DirectReader>,
    header: [u8; 8],
    sha: Sha256,
}

/// The state of one split.
struct Walk<'a> {
    dir: &'a Path,
    names: Vec<String>,
    window_ms: i64,
    segment: Option<OpenSegment>,
    /// The segment files read to their end.
    done: Vec<SegmentLayout>,
    windows: Vec<WindowTotals>,
    records: u64,
    /// A record too large for the reader's buffer, reused.
    record: Vec<u8>,
}

impl Walk<'_> {
    /// Walks every chunk meta; `Some` says why the files are not in step.
    fn run<S: RecordSink + ?Sized>(
        &mut self,
        mut series: SeriesReader,
        sink: &mut S,
    ) -> io::Result<Option<NotInStep>> {
        if !self.names.is_empty() {
            if let Some(why) = self.open_segment(0)? {
                return Ok(Some(why));
            }
        }
        loop {
            let entry = match series.next_series() {
                Ok(Some(entry)) => entry,
                Ok(None) => break,
                Err(IndexError::Io(e)) => return Err(e),
                Err(e) => return Ok(Some(NotInStep::Index(e.to_string()))),
            };
            let offset = entry.offset;
            for meta in entry.chunks {
                let meta = match meta {
                    Ok(meta) => meta,
                    Err(e) => {
                        let e = crate::tsdb::index::meta_error(offset, e);
                        return Ok(Some(NotInStep::Index(e.to_string())));
                    }
                };
                let Some(window) = window_start(meta.min_time, self.window_ms) else {
                    let min_time = meta.min_time;
                    return Ok(Some(NotInStep::Time {
                        entry: offset,
                        min_time,
                    }));
                };
                if let Some(why) = self.step_to(meta.chunk_ref, offset)? {
                    return Ok(Some(why));
                }
                let seg = self.segment.as_mut().expect("step_to opened a segment");
                let start = seg.r.pos();
                let record = match read_framed(&mut seg.r, &mut self.record)? {
                    Ok(record) => record,
                    Err(reason) => {
                        return Ok(Some(NotInStep::Record {
                            segment: seg.path.clone(),
                            offset: start,
                            reason,
                        }))
                    }
                };
                seg.sha.update(record);
                self.records += 1;
                if let Some(why) = count(&mut self.windows, window, record.len()) {
                    return Ok(Some(why));
                }
                sink.record(window, record)?;
            }
        }
        self.finish()
    }

    /// Checks that `chunk_ref` names the next record, moving on to the next
    /// segment file when the current one is used up and the reference
    /// names its first record.
    fn step_to(&mut self, chunk_ref: u64, entry: u64) -> io::Result<Option<NotInStep>> {
        let (seg, off) = (chunk_ref >> 32, chunk_ref & 0xffff_ffff);
        let Some(cur) = &self.segment else {
            // No segment files at all, yet the index references a chunk.
            let why = NotInStep::SegmentFiles(format!(
                "holds no segment files, but the series entry at index offset {entry} \
                 references {}",
                segment::segment_path(seg)
            ));
            return Ok(Some(why));
        };
        if seg >= self.names.len() as u64 {
            let why = NotInStep::SegmentFiles(format!(
                "holds {} segment files, but the series entry at index offset {entry} \
                 references {}",
                self.names.len(),
                segment::segment_path(seg)
            ));
            return Ok(Some(why));
        }
        let (index, pos, len) = (cur.index, cur.r.pos(), cur.r.len());
        if seg == index && off == pos {
            return Ok(None);
        }
        let at_end = pos == len && index + 1 < self.names.len() as u64;
        if at_end && (seg, off) == (index + 1, SEGMENT_HEADER_LEN) {
            self.close_segment();
            return self.open_segment(seg);
        }
        Ok(Some(NotInStep::Ref {
            entry,
            chunk_ref,
            expected: (index, pos),
            at_end,
        }))
    }

    fn open_segment(&mut self, index: u64) -> io::Result<Option<NotInStep>> {
        let path = segment::segment_path(index);
        // Read once, front to back: past the page cache (crate::direct_io).
        let mut r = FileReader::open_direct(&self.dir.join(&path))?;
        let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
        if r.len() < SEGMENT_HEADER_LEN {
            let reason = format!("the file is {} bytes, shorter than its header", r.len());
            return Ok(Some(NotInStep::SegmentHeader {
                segment: path,
                reason,
            }));
        }
        r.read_exact(&mut header).map_err(read_error)?;
        if let Err(reason) = segment::check_header(&header) {
            return Ok(Some(NotInStep::SegmentHeader {
                segment: path,
                reason,
            }));
        }
        let mut sha = Sha256::new();
        sha.update(header);
        self.segment = Some(OpenSegment {
            index,
            path,
            r,
            header,
            sha,
        });
        Ok(None)
    }

    fn close_segment(&mut self) {
        if let Some(s) = self.segment.take() {
            self.done.push(SegmentLayout {
                path: s.path,
                size: s.r.len(),
                header: s.header,
                sha256: s.sha.finalize().into(),
            });
        }
    }

    /// After the last chunk meta: every segment file must be used up.
    fn finish(&mut self) -> io::Result<Option<NotInStep>> {
        if let Some(seg) = &self.segment {
            if seg.r.pos() < seg.r.len() {
                return Ok(Some(NotInStep::Unreferenced {
                    segment: seg.path.clone(),
                    offset: seg.r.pos(),
                }));
            }
            if let Some(next) = self.names.get(seg.index as usize + 1) {
                return Ok(Some(NotInStep::Unreferenced {
                    segment: format!("chunks/{next}"),
                    offset: SEGMENT_HEADER_LEN,
                }));
            }
        }
        self.close_segment();
        Ok(None)
    }
}

/// Adds a record of `bytes` to its window's totals.
fn count(windows: &mut Vec<WindowTotals>, window: i64, bytes: usize) -> Option<NotInStep> {
    let i = match windows.binary_search_by_key(&window, |w| w.start) {
        Ok(i) => i,
        Err(_) if windows.len() >= MAX_WINDOWS => return Some(NotInStep::TooManyWindows),
        Err(i) => {
            let totals = WindowTotals {
                start: window,
                records: 0,
                bytes: 0,
            };
            windows.insert(i, totals);
            i
        }
    };
    windows[i].records += 1;
    windows[i].bytes += bytes as u64;
    None
}

/// Reads one record (`uvarint len | encoding | data | CRC32C`); the inner
/// `Err` says what is wrong with its framing. The record is a slice of the
/// reader's buffer, or of `big` when it does not fit there.
///
/// Its CRC is not checked: the record is stored byte for byte whatever it
/// holds (as a block's files always were in format 1), and a rebuilt
/// segment's SHA-256 covers it. A damaged record is reported by `verify
/// --deep` and `check-dir`, which walk the records; checking here cost
/// 3 % of a backup's CPU and only sent the block to the `files` layout,
/// where its other windows are not deduplicated.
fn read_framed<'a>(
    r: &'a mut FileReader<DirectReader>,
    big: &'a mut Vec<u8>,
) -> io::Result<Result<&'a [u8], String>> {
    let head = r.buffered(MAX_LEN_FIELD as usize).map_err(read_error)?;
    let mut len: u64 = 0;
    let mut field = None;
    for (i, &b) in head.iter().take(MAX_LEN_FIELD as usize).enumerate() {
        len |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            field = Some(i as u64 + 1);
            break;
        }
    }
    let Some(field) = field else {
        return Ok(Err(if head.len() < MAX_LEN_FIELD as usize {
            "the file ends inside a record's length".into()
        } else {
            "a record length longer than 5 bytes".into()
        }));
    };
    if len > MAX_RECORD_DATA {
        return Ok(Err(format!(
            "a record of {len} bytes of data, more than the {MAX_RECORD_DATA} a window stream \
             takes"
        )));
    }
    let left = r.len() - r.pos() - field;
    if len + RECORD_OVERHEAD > left {
        return Ok(Err(format!(
            "a record of {len} bytes of data, but the file ends {left} bytes later"
        )));
    }
    let total = (field + len + RECORD_OVERHEAD) as usize;
    let record = if total <= BUF_SIZE {
        r.take(total).map_err(read_error)?
    } else {
        big.clear();
        big.resize(total, 0);
        r.read_exact(big).map_err(read_error)?;
        &big[..]
    };
    Ok(Ok(record))
}

/// Checks the CRC32C at the end of `body` (encoding, data, CRC).
pub(super) fn check_crc(body: &[u8]) -> Result<(), String> {
    let (data, crc) = body.split_at(body.len() - 4);
    let stored = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let computed = crc32c::crc32c(data);
    if stored != computed {
        return Err(format!(
            "stored CRC32C {stored:#010x}, computed {computed:#010x}"
        ));
    }
    Ok(())
}

fn read_error(e: ReadError) -> io::Error {
    match e {
        ReadError::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}
