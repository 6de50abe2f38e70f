//! Checking a block while it streams out of an archive.
//!
//! `verify --deep` reads every block once, as the tar + zstd stream it was
//! stored as. The chunk segments, nearly all of a block's bytes, are checked
//! as they pass by: the record walk that `check_block` runs on disk
//! (`chunks::scan_record`) runs over the stream instead, and none of their
//! bytes are written anywhere. The only thing the rest of the check needs
//! from them is where each record starts (the index's chunk references must
//! land on one), and that is kept as a list of varint deltas: one or two
//! bytes per chunk, in memory up to [`SPILL_AT`] and in an anonymous file in
//! the scratch directory beyond that.
//!
//! The other files of a block (index, `meta.json`, tombstones; a few percent
//! of its size) are written to a scratch directory by the caller, and
//! [`StreamedBlock::finish`] checks them as `check_block` does, with chunk
//! references answered from the recorded starts.
//!
//! One difference from the walk on disk: there, after damage that may have
//! thrown the walk off record boundaries, the next chunk reference from the
//! index tells it where a record really starts and the walk continues from
//! there. In an archive the segments come before the index, so that cannot
//! be done: references past the first damage in a segment are not judged.
//! The damage itself is reported either way, at the same offset.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::chunks::{
    report_gaps, report_unlisted, scan_record, ChunkFacts, OpenSegment, RefVerdict, Segments,
    SEGMENT_HEADER_LEN,
};
use super::{check_rest, CheckOptions, Problem, ProblemKind, Problems};
use crate::error::local_io;
use crate::tsdb::reader::{decode_uvarint, FileReader, Lookup, StartCursor, Step};

/// How many bytes of record starts are kept in memory per block before they
/// go to a scratch file (about two million chunks).
const SPILL_AT: usize = 4 * 1024 * 1024;

/// A block being checked as its files stream out of an archive: feed every
/// chunk segment to [`StreamedBlock::segment`], write every other file into
/// a directory, then call [`StreamedBlock::finish`] on that directory.
pub struct StreamedBlock {
    problems: Problems,
    facts: ChunkFacts,
    segments: BTreeMap<String, SegmentLog>,
    log: StartLog,
}

/// What the walk of one segment left for the chunk reference checks.
struct SegmentLog {
    /// Block-relative name, e.g. `chunks/000001`.
    name: String,
    len: u64,
    /// Where this segment's record starts are in the log.
    range: (u64, u64),
    /// Offset of the first damage; references past it are not judged.
    damaged_from: Option<u64>,
    /// The walk stopped before the end of the file.
    broken: bool,
}

impl StreamedBlock {
    /// `scratch` is where record starts go once there are too many to keep
    /// in memory (an anonymous file, gone when the check ends).
    pub fn new(scratch: &Path) -> Self {
        Self::spilling_at(scratch, SPILL_AT)
    }

    /// As `new`, with record starts going to the scratch file once
    /// `spill_at` bytes of them are in memory (tests use tiny values).
    pub(crate) fn spilling_at(scratch: &Path, spill_at: usize) -> Self {
        StreamedBlock {
            problems: Problems::default(),
            facts: ChunkFacts::new(),
            segments: BTreeMap::new(),
            log: StartLog {
                dir: scratch.to_path_buf(),
                spill_at,
                mem: Vec::new(),
                file: None,
                spilled: 0,
            },
        }
    }

    /// Whether `path` (relative to the block) is a chunk segment, which
    /// [`StreamedBlock::segment`] checks; every other file goes to disk.
    pub fn is_segment(path: &str) -> bool {
        path.strip_prefix("chunks/")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    }

    /// Walks the segment `path` of `len` bytes as it is read from `data`,
    /// to its end. Problems in the segment are recorded; an error means the
    /// stream itself failed (the archive is damaged), or, marked as this
    /// machine's failure ([`local_io`]), that the scratch directory could
    /// not be written.
    pub fn segment(&mut self, path: &str, len: u64, data: impl Read) -> anyhow::Result<()> {
        let mut data = Capture {
            inner: data,
            error: None,
        };
        let r = FileReader::stream(&mut data, len);
        let (facts, problems) = (&mut self.facts, &mut self.problems);
        let mut seg = OpenSegment::start(r, path, facts, problems);
        let first = self.log.len();
        let (mut prev, mut damaged_from) = (0, None);
        let broken = loop {
            match scan_record(&mut seg, path, facts, problems) {
                Step::Item { start, .. } => {
                    if damaged_from.is_none() && seg.tainted() {
                        damaged_from = Some(start);
                    }
                    self.log.push(start - prev).map_err(scratch_failure)?;
                    prev = start;
                }
                Step::End => break false,
                Step::Broken => {
                    damaged_from.get_or_insert(seg.next_record());
                    break true;
                }
            }
        };
        drop(seg);
        if let Some(e) = data.error {
            return Err(e.into());
        }
        let log = SegmentLog {
            name: path.to_string(),
            len,
            range: (first, self.log.len()),
            damaged_from,
            broken,
        };
        self.segments.insert(path.to_string(), log);
        Ok(())
    }

    /// Checks the rest of the block, whose other files are in `dir`, and
    /// returns everything found wrong, as `check_block` would on disk.
    pub fn finish(
        mut self,
        dir: &Path,
        expected_ulid: &str,
        opts: &CheckOptions,
    ) -> anyhow::Result<Vec<Problem>> {
        let names: Vec<String> = self
            .segments
            .keys()
            .map(|k| k.trim_start_matches("chunks/").to_string())
            .collect();
        report_gaps(&names, &mut self.problems, &mut self.facts);
        self.log.seal().map_err(scratch_failure)?;
        let recorded = Recorded {
            segments: self.segments.into_values().collect(),
            log: self.log,
            facts: self.facts,
            cur: None,
            cursor: StartCursor::default(),
        };
        Ok(check_rest(
            dir,
            expected_ulid,
            opts,
            recorded,
            self.problems,
        ))
    }
}

fn scratch_failure(e: io::Error) -> anyhow::Error {
    local_io(
        e,
        "could not write the list of chunk record starts to the scratch directory",
    )
}

/// Answers chunk references from the record starts of the streamed walk.
struct Recorded {
    segments: Vec<SegmentLog>,
    log: StartLog,
    facts: ChunkFacts,
    /// The segment references currently resolve in, and where its starts are read.
    cur: Option<(usize, LogReader, u64)>,
    cursor: StartCursor,
}

impl Segments for Recorded {
    fn check_ref(&mut self, chunk_ref: u64, problems: &mut Problems) -> RefVerdict {
        let seg = (chunk_ref >> 32) as usize;
        let off = chunk_ref & 0xffff_ffff;
        let Some(s) = self.segments.get(seg) else {
            return RefVerdict::NoSegment;
        };
        if off >= s.len {
            let (segment, len) = (s.name.clone(), s.len);
            return RefVerdict::PastEnd { segment, len };
        }
        if off < SEGMENT_HEADER_LEN {
            let segment = s.name.clone();
            let next = Some(SEGMENT_HEADER_LEN);
            return RefVerdict::NotRecordStart { segment, next };
        }
        match &self.cur {
            // Backwards, which Prometheus never writes: bounds only, as on disk.
            Some((cur, ..)) if seg < *cur => return RefVerdict::Ok,
            Some((cur, ..)) if seg == *cur => {}
            _ => match self.log.reader(s.range) {
                Ok(r) => {
                    self.cur = Some((seg, r, 0));
                    self.cursor = StartCursor::default();
                }
                Err(e) => {
                    let msg = format!("cannot read back the record starts of {}: {e}", s.name);
                    problems.push(&s.name, None, ProblemKind::Io, msg);
                    self.cur = Some((seg, LogReader::Done, 0));
                }
            },
        }
        if s.damaged_from.is_some_and(|d| off > d) {
            return RefVerdict::Ok;
        }
        let Some((_, reader, prev)) = &mut self.cur else {
            return RefVerdict::Ok;
        };
        let (log, broken) = (&self.log, s.broken);
        let found = self.cursor.locate(off, || match reader.next(log) {
            Some(delta) => {
                *prev += delta;
                Step::Item {
                    start: *prev,
                    entries: None,
                }
            }
            None if broken => Step::Broken,
            None => Step::End,
        });
        match found {
            Lookup::Start { .. } | Lookup::Unknown => RefVerdict::Ok,
            Lookup::NotStart { next } => RefVerdict::NotRecordStart {
                segment: s.name.clone(),
                next,
            },
        }
    }

    fn check_referenced(&self, max_segment: Option<u64>, problems: &mut Problems) {
        report_unlisted(self.segments.len() as u64, max_segment, problems);
    }

    fn finish(self, _: &mut Problems) -> ChunkFacts {
        self.facts
    }
}

/// Record starts as uvarint deltas: in memory, then in a scratch file.
struct StartLog {
    dir: PathBuf,
    spill_at: usize,
    mem: Vec<u8>,
    file: Option<File>,
    /// Bytes already in `file`; `mem` continues the log after them.
    spilled: u64,
}

impl StartLog {
    fn len(&self) -> u64 {
        self.spilled + self.mem.len() as u64
    }

    fn push(&mut self, mut v: u64) -> io::Result<()> {
        while v >= 0x80 {
            self.mem.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.mem.push(v as u8);
        if self.mem.len() >= self.spill_at {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> io::Result<()> {
        let file = match &mut self.file {
            Some(f) => f,
            None => {
                std::fs::create_dir_all(&self.dir)?;
                self.file.insert(tempfile::tempfile_in(&self.dir)?)
            }
        };
        file.write_all(&self.mem)?;
        self.spilled += self.mem.len() as u64;
        self.mem.clear();
        Ok(())
    }

    /// Ends writing: once anything went to the file, all of it does, so a
    /// range is read from one place.
    fn seal(&mut self) -> io::Result<()> {
        if self.file.is_some() && !self.mem.is_empty() {
            self.spill()?;
        }
        Ok(())
    }

    fn reader(&self, (from, to): (u64, u64)) -> io::Result<LogReader> {
        Ok(match &self.file {
            None => LogReader::Mem {
                at: from as usize,
                end: to as usize,
            },
            Some(f) => {
                let mut f = f.try_clone()?;
                f.seek(SeekFrom::Start(from))?;
                LogReader::File(BufReader::with_capacity(64 * 1024, f.take(to - from)))
            }
        })
    }
}

/// Reads one segment's range of a [`StartLog`].
enum LogReader {
    Mem { at: usize, end: usize },
    File(BufReader<io::Take<File>>),
    Done,
}

impl LogReader {
    /// The next delta; `None` at the end of the range (or on a read error,
    /// which then ends the references that can be judged).
    fn next(&mut self, log: &StartLog) -> Option<u64> {
        let value = match self {
            LogReader::Mem { at, end } => {
                let bytes = &log.mem[*at..*end];
                let mut i = 0;
                let v = decode_uvarint(|| {
                    let b = bytes.get(i).copied().ok_or(());
                    i += 1;
                    b
                });
                *at += i.min(bytes.len());
                v.ok().flatten()
            }
            LogReader::File(r) => {
                let v = decode_uvarint(|| {
                    let mut b = [0u8];
                    r.read_exact(&mut b).map(|_| b[0])
                });
                v.ok().flatten()
            }
            LogReader::Done => None,
        };
        if value.is_none() {
            *self = LogReader::Done;
        }
        value
    }
}

/// Remembers the first read error of a stream, so that a damaged archive is
/// reported as such and not as damage in the segment being read.
struct Capture<R> {
    inner: R,
    error: Option<io::Error>,
}

impl<R: Read> Read for Capture<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if self.error.is_none() {
                self.error = Some(io::Error::new(e.kind(), e.to_string()));
            }
        })
    }
}
