//! Chunk segment files: `chunks/000001`, `chunks/000002`, ...
//!
//! Each segment starts with an 8-byte header (magic `0x85BD40DD`, version 1,
//! three zero bytes) followed by records `uvarint len | encoding | data[len] |
//! CRC32C(encoding, data)`. Prometheus itself never scans a segment: it jumps
//! straight to the offsets the index gives it and checks that one record's
//! CRC. We walk every record from the header to EOF instead, so damage is
//! found even in chunks no query has touched yet.
//!
//! Format details taken from `tsdb/chunks/chunks.go` rather than the docs:
//! - The segment number in a chunk reference (`ref >> 32`) is the position of
//!   the file in the sorted directory listing, counting from 0, not the
//!   number in its name: reference segment 0 is `000001`. A missing file in
//!   the middle silently shifts every later segment, so gaps are reported.
//! - Files are preallocated while written but truncated to the end of their
//!   last record when the writer closes them, so a healthy segment ends
//!   exactly where its last record ends. We report anything after that as
//!   `TrailingGarbage`, including a run of zero bytes: zeros there are what a
//!   crash leaves when the file size reached the disk but the data did not.
//! - The three header padding bytes are written as zeros and never read; a
//!   non-zero one can only be damage, so it is reported too.
//! - The length field is at most 5 bytes (`binary.MaxVarintLen32`).
//! - Encodings (`tsdb/chunkenc/chunk.go`): 1 XOR, 2 histogram, 3 float
//!   histogram, and, newer than any packaged server, 4 XOR2 (3.11+, when
//!   configured), 5 HistogramST and 6 FloatHistogramST (3.14+). Every one
//!   starts its data with a big-endian u16 sample count (`NumSamples()` in
//!   each `<encoding>.go`); XOR's header is those 2 bytes, the others' 3 (a
//!   flags byte for 2 and 3, a start-timestamp byte for 4 to 6), and 5 and 6
//!   keep the counter-reset bits in the count's top 2 bits, so only its low
//!   14 are samples. We sum the counts to cross-check `stats.numSamples` and,
//!   when the block's writer records them (3.6+), `numFloatSamples` (1, 4)
//!   and `numHistogramSamples` (2, 3, 5, 6). Sample data itself is never
//!   decoded. Records of encodings 4 to 6 get one note per block (not a
//!   problem): their framing, CRCs and counts were checked, but a
//!   Prometheus older than the one that writes them cannot read them.
//!   A record with any other encoding but a valid CRC is reported as
//!   `UnknownEncoding` (not corruption), and the sample cross-checks are
//!   skipped; its length is still trustworthy, so the walk continues.
//! - After a CRC mismatch the walk also continues using the record's length:
//!   most damage is a flipped bit in the data, and if the length itself was
//!   hit, the following records fail loudly enough to say so.

use std::path::{Path, PathBuf};

use super::{open_or_report, ProblemKind, Problems};
use crate::tsdb::reader::{FileReader, Lookup, ReadError, ScanState, Source, StartCursor, Step};
pub(crate) use crate::tsdb::segment::SEGMENT_HEADER_LEN;
use crate::tsdb::segment::{MAX_LEN_FIELD, SEGMENT_MAGIC};

/// The longest chunk data header of a known encoding.
const MAX_HEADER: usize = 3;

/// What the checker knows about a chunk encoding (see the module docs).
pub(crate) struct Encoding {
    pub code: u8,
    pub name: &'static str,
    /// Bytes of the data header, which starts with the sample count.
    header: u64,
    /// Bits of the big-endian u16 at the start of the data that count samples.
    count_mask: u16,
    pub histogram: bool,
    /// For encodings newer than every packaged Prometheus: the first release
    /// that writes (and reads) them.
    pub since: Option<&'static str>,
}

pub(crate) const ENCODINGS: [Encoding; 6] = [
    Encoding {
        code: 1,
        name: "XOR",
        header: 2,
        count_mask: 0xffff,
        histogram: false,
        since: None,
    },
    Encoding {
        code: 2,
        name: "histogram",
        header: 3,
        count_mask: 0xffff,
        histogram: true,
        since: None,
    },
    Encoding {
        code: 3,
        name: "float histogram",
        header: 3,
        count_mask: 0xffff,
        histogram: true,
        since: None,
    },
    Encoding {
        code: 4,
        name: "XOR2",
        header: 3,
        count_mask: 0xffff,
        histogram: false,
        since: Some("3.11"),
    },
    Encoding {
        code: 5,
        name: "HistogramST",
        header: 3,
        count_mask: 0x3fff,
        histogram: true,
        since: Some("3.14"),
    },
    Encoding {
        code: 6,
        name: "FloatHistogramST",
        header: 3,
        count_mask: 0x3fff,
        histogram: true,
        since: Some("3.14"),
    },
];

pub(crate) fn encoding(code: u8) -> Option<&'static Encoding> {
    ENCODINGS.iter().find(|e| e.code == code)
}

/// Records of one encoding newer than every packaged Prometheus.
#[derive(Debug, Clone)]
pub(crate) struct NewerRecords {
    pub encoding: u8,
    pub records: u64,
    /// The first one: segment file and offset.
    pub file: String,
    pub offset: u64,
}

/// What the segment files hold, for cross-checks against `meta.json`.
#[derive(Debug, Default)]
pub(crate) struct ChunkFacts {
    pub records: u64,
    pub samples: u64,
    /// Samples in float chunks (XOR, XOR2) and in histogram chunks.
    pub float_samples: u64,
    pub histogram_samples: u64,
    pub unknown_encodings: u64,
    /// Records of encodings 4 to 6, by encoding, in the order first seen.
    pub newer: Vec<NewerRecords>,
    /// No corruption was found in any segment (and the directory exists).
    pub clean: bool,
}

impl ChunkFacts {
    /// Nothing counted, nothing found wrong yet.
    pub(crate) fn new() -> Self {
        ChunkFacts {
            clean: true,
            ..ChunkFacts::default()
        }
    }
}

/// Where a chunk reference from the index points.
pub(crate) enum RefVerdict {
    Ok,
    /// The segment index is past the last segment file.
    NoSegment,
    /// The offset is at or past the end of the segment file.
    PastEnd {
        segment: String,
        len: u64,
    },
    /// The offset is inside the file but no record starts there.
    NotRecordStart {
        segment: String,
        next: Option<u64>,
    },
}

struct Segment {
    /// Block-relative name, e.g. `chunks/000001`.
    name: String,
    path: PathBuf,
}

pub(crate) struct OpenSegment<S = std::fs::File> {
    r: FileReader<S>,
    next: u64,
    state: ScanState,
    cursor: StartCursor,
    /// Damage was found since the walk last landed on a referenced record, so
    /// record boundaries found since then may be wrong.
    tainted: bool,
}

/// The segment files of a block as the rest of the check sees them: the
/// index check asks where chunk references land, and at the end the totals
/// are collected. [`SegmentWalker`] walks files on disk as the references
/// arrive; `stream::Recorded` answers from a walk done earlier, while the
/// segments streamed out of an archive.
pub(crate) trait Segments {
    /// Checks that `chunk_ref` (segment index << 32 | offset) names a record.
    fn check_ref(&mut self, chunk_ref: u64, problems: &mut Problems) -> RefVerdict;

    /// Reports segment files that the index references but that do not exist.
    fn check_referenced(&self, max_segment: Option<u64>, problems: &mut Problems);

    /// Finishes the walk over every remaining segment and returns the totals.
    fn finish(self, problems: &mut Problems) -> ChunkFacts
    where
        Self: Sized;
}

/// Reports the segment files the index references beyond the `have` files
/// that exist.
pub(crate) fn report_unlisted(have: u64, max_segment: Option<u64>, problems: &mut Problems) {
    let Some(max) = max_segment.filter(|&m| m >= have) else {
        return;
    };
    let msg = format!(
        "the index references segment index {max} (file {:06}), but only {have} segment files \
         exist: {:06}..{:06} are missing",
        max + 1,
        have + 1,
        max + 1
    );
    problems.push(
        &format!("chunks/{:06}", have + 1),
        None,
        ProblemKind::Missing,
        msg,
    );
}

/// Walks all segments of a block once, in order, optionally resolving chunk
/// references along the way (they arrive in increasing order).
pub(crate) struct SegmentWalker {
    segments: Vec<Segment>,
    dir_missing: bool,
    cur: usize,
    open: Option<OpenSegment>,
    facts: ChunkFacts,
}

impl SegmentWalker {
    /// Lists `dir/chunks` the way Prometheus does and reports gaps.
    pub(crate) fn open(dir: &Path, problems: &mut Problems) -> SegmentWalker {
        let mut walker = SegmentWalker {
            segments: Vec::new(),
            dir_missing: false,
            cur: 0,
            open: None,
            facts: ChunkFacts::new(),
        };
        match list_segments(&dir.join("chunks")) {
            Ok(names) => {
                report_gaps(&names, problems, &mut walker.facts);
                walker.segments = names
                    .into_iter()
                    .map(|n| Segment {
                        path: dir.join("chunks").join(&n),
                        name: format!("chunks/{n}"),
                    })
                    .collect();
            }
            Err(e) => {
                let kind = if e.kind() == std::io::ErrorKind::NotFound {
                    ProblemKind::Missing
                } else {
                    ProblemKind::Io
                };
                problems.push(
                    "chunks",
                    None,
                    kind,
                    format!("cannot list the chunks directory: {e}"),
                );
                walker.dir_missing = true;
                walker.facts.clean = false;
            }
        }
        walker
    }
}

impl Segments for SegmentWalker {
    fn check_ref(&mut self, chunk_ref: u64, problems: &mut Problems) -> RefVerdict {
        if self.dir_missing {
            return RefVerdict::Ok; // Already reported once; no point repeating.
        }
        let seg = (chunk_ref >> 32) as usize;
        let off = chunk_ref & 0xffff_ffff;
        if seg >= self.segments.len() {
            return RefVerdict::NoSegment;
        }
        if seg < self.cur {
            return self.check_ref_range_only(seg, off);
        }
        while self.cur < seg {
            self.finish_current(problems);
            self.cur += 1;
        }
        self.locate_in_current(off, problems)
    }

    fn check_referenced(&self, max_segment: Option<u64>, problems: &mut Problems) {
        if !self.dir_missing {
            report_unlisted(self.segments.len() as u64, max_segment, problems);
        }
    }

    fn finish(mut self, problems: &mut Problems) -> ChunkFacts {
        while self.cur < self.segments.len() {
            self.finish_current(problems);
            self.cur += 1;
        }
        self.facts
    }
}

impl SegmentWalker {
    /// Resolves `off` against the forward walk of the current segment.
    fn locate_in_current(&mut self, off: u64, problems: &mut Problems) -> RefVerdict {
        let segment = &self.segments[self.cur];
        let name = segment.name.as_str();
        let facts = &mut self.facts;
        let Some(open) = ensure_open(&mut self.open, segment, facts, problems) else {
            return RefVerdict::Ok; // Unreadable segment: already reported.
        };
        let len = open.r.len();
        if off >= len {
            let segment = name.to_string();
            return RefVerdict::PastEnd { segment, len };
        }
        let mut cursor = std::mem::take(&mut open.cursor);
        let found = if off < SEGMENT_HEADER_LEN {
            Lookup::NotStart {
                next: Some(SEGMENT_HEADER_LEN),
            }
        } else {
            cursor.locate(off, || scan_record(open, name, facts, problems))
        };
        open.cursor = cursor;
        match found {
            Lookup::Start { .. } => {
                open.tainted = false;
                RefVerdict::Ok
            }
            // The record the walk stopped at is the one referenced: it was
            // reported already, and walking it again would report it twice.
            Lookup::Unknown if open.state == ScanState::Broken && off == open.next => {
                RefVerdict::Ok
            }
            _ if open.tainted && off >= SEGMENT_HEADER_LEN => {
                // The walk lost track of record boundaries after damage; the
                // index (whose entry passed its CRC) knows where the next
                // record starts, so continue the walk from there.
                open.next = off;
                open.state = ScanState::Records;
                open.cursor = StartCursor::default();
                open.tainted = false;
                RefVerdict::Ok
            }
            Lookup::Unknown => RefVerdict::Ok,
            Lookup::NotStart { next } => RefVerdict::NotRecordStart {
                segment: name.to_string(),
                next,
            },
        }
    }

    /// A reference that goes backwards cannot be resolved by the forward walk;
    /// Prometheus never writes one, so only its bounds are checked.
    fn check_ref_range_only(&self, seg: usize, off: u64) -> RefVerdict {
        let segment = &self.segments[seg];
        match std::fs::metadata(&segment.path) {
            Ok(m) if off >= m.len() => RefVerdict::PastEnd {
                segment: segment.name.clone(),
                len: m.len(),
            },
            _ => RefVerdict::Ok,
        }
    }

    fn finish_current(&mut self, problems: &mut Problems) {
        let name = self.segments[self.cur].name.clone();
        let facts = &mut self.facts;
        if let Some(open) = ensure_open(&mut self.open, &self.segments[self.cur], facts, problems) {
            while let Step::Item { .. } = scan_record(open, &name, facts, problems) {}
        }
        self.open = None;
    }
}

/// Opens `segment` (once) and checks its header.
fn ensure_open<'a>(
    slot: &'a mut Option<OpenSegment>,
    segment: &Segment,
    facts: &mut ChunkFacts,
    problems: &mut Problems,
) -> Option<&'a mut OpenSegment> {
    if slot.is_none() {
        let r = open_or_report(&segment.path, &segment.name, problems)?;
        *slot = Some(OpenSegment::start(r, &segment.name, facts, problems));
    }
    slot.as_mut()
}

impl<S: Source> OpenSegment<S> {
    /// Checks the segment header and positions the walk at the first record.
    pub(crate) fn start(
        mut r: FileReader<S>,
        name: &str,
        facts: &mut ChunkFacts,
        problems: &mut Problems,
    ) -> Self {
        let before = problems.count(name);
        let state = if check_header(&mut r, name, problems) {
            ScanState::Records
        } else {
            ScanState::Broken
        };
        if problems.count(name) > before {
            facts.clean = false;
        }
        OpenSegment {
            r,
            next: SEGMENT_HEADER_LEN,
            state,
            cursor: StartCursor::default(),
            tainted: false,
        }
    }

    /// Damage was found in this segment (and not yet resolved by an index
    /// reference), so record boundaries found since may be wrong.
    pub(crate) fn tainted(&self) -> bool {
        self.tainted
    }

    /// Where the walk reads the next record.
    pub(crate) fn next_record(&self) -> u64 {
        self.next
    }
}

/// Sorted names of the numeric files in `chunks/`, like Go's `sequenceFiles`.
fn list_segments(chunks_dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(chunks_dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_digit())
            && name.parse::<u64>().is_ok()
        {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Reports numbers missing from the 000001, 000002, ... sequence.
pub(crate) fn report_gaps(names: &[String], problems: &mut Problems, facts: &mut ChunkFacts) {
    let mut expected: u64 = 1;
    for (i, name) in names.iter().enumerate() {
        let n = name.parse::<u64>().unwrap_or(0);
        if n > expected {
            let first = format!("chunks/{expected:06}");
            let msg = format!(
                "segment files {expected:06}..{:06} are missing before chunks/{name}; chunk \
                 references to segment index {i} and later resolve to the wrong file",
                n - 1
            );
            problems.push(&first, None, ProblemKind::Missing, msg);
            facts.clean = false;
        } else if n < expected {
            let msg =
                format!("segment file name is out of sequence: expected {expected:06} or later");
            problems.push(
                &format!("chunks/{name}"),
                None,
                ProblemKind::OutOfRange,
                msg,
            );
            facts.clean = false;
        }
        expected = expected.max(n.saturating_add(1));
    }
}

/// Checks the 8-byte segment header; `false` means records cannot be trusted.
fn check_header<S: Source>(r: &mut FileReader<S>, name: &str, problems: &mut Problems) -> bool {
    let len = r.len();
    let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
    let avail = len.min(SEGMENT_HEADER_LEN) as usize;
    r.seek(0);
    if let Err(e) = r.read_exact(&mut header[..avail]) {
        problems.push(
            name,
            Some(0),
            ProblemKind::Io,
            format!("cannot read the segment header: {e}"),
        );
        return false;
    }
    if avail >= 4 {
        let magic = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        if magic != SEGMENT_MAGIC {
            let msg = format!("segment magic is {magic:#010x}, expected {SEGMENT_MAGIC:#010x}");
            problems.push(name, Some(0), ProblemKind::BadMagic, msg);
            return false;
        }
    }
    if (avail as u64) < SEGMENT_HEADER_LEN {
        let msg = format!(
            "file is {len} bytes, shorter than the {SEGMENT_HEADER_LEN}-byte segment header"
        );
        problems.push(name, Some(0), ProblemKind::Truncated, msg);
        return false;
    }
    if header[4] != 1 {
        let msg = format!("segment format version is {}, expected 1", header[4]);
        problems.push(name, Some(4), ProblemKind::BadVersion, msg);
        return false;
    }
    if let Some(i) = header[5..].iter().position(|&b| b != 0) {
        let msg = format!(
            "segment header padding byte {} is {:#04x}, expected 0",
            5 + i,
            header[5 + i]
        );
        problems.push(name, Some(5 + i as u64), ProblemKind::TrailingGarbage, msg);
    }
    true
}

/// Checks the record at `seg.next` and advances past it.
pub(crate) fn scan_record<S: Source>(
    seg: &mut OpenSegment<S>,
    name: &str,
    facts: &mut ChunkFacts,
    problems: &mut Problems,
) -> Step {
    match seg.state {
        ScanState::End => return Step::End,
        ScanState::Broken => return Step::Broken,
        ScanState::Records => {}
    }
    let start = seg.next;
    if start >= seg.r.len() {
        seg.state = ScanState::End;
        return Step::End;
    }
    let tainted = &mut seg.tainted;
    let after_damage = *tainted;
    let mut report = |facts: &mut ChunkFacts, kind: ProblemKind, mut msg: String| {
        if kind.is_corruption() {
            facts.clean = false;
            *tainted = true;
        }
        if after_damage {
            msg.push_str(
                " (follows earlier damage in this file, so this may not be a real record boundary)",
            );
        }
        problems.push(name, Some(start), kind, msg);
    };
    match read_record(&mut seg.r, start) {
        Ok(Record::Chunk(rec)) => {
            seg.next = rec.end;
            if rec.stored_crc != rec.computed_crc {
                let msg = format!(
                    "chunk record (encoding {}, {} data bytes): stored CRC32C {:#010x}, computed {:#010x}",
                    rec.encoding, rec.data_len, rec.stored_crc, rec.computed_crc
                );
                report(facts, ProblemKind::CrcMismatch, msg);
            } else if let Some(enc) = encoding(rec.encoding) {
                count_samples(facts, enc, &rec, name, start, &mut report);
            } else {
                let msg = format!(
                    "chunk record has encoding {}, which this checker does not know (1 XOR, 2 \
                     histogram, 3 float histogram, 4 XOR2, 5 HistogramST, 6 \
                     FloatHistogramST); its CRC is valid",
                    rec.encoding
                );
                report(facts, ProblemKind::UnknownEncoding, msg);
                facts.unknown_encodings += 1;
            }
            facts.records += 1;
            Step::Item {
                start,
                entries: rec.sample_count(),
            }
        }
        Ok(Record::Tail { nonzero }) => {
            let msg = tail_message(start, seg.r.len(), nonzero);
            report(facts, ProblemKind::TrailingGarbage, msg);
            seg.state = ScanState::Broken;
            Step::Broken
        }
        Err((kind, msg)) => {
            report(facts, kind, msg);
            seg.state = ScanState::Broken;
            Step::Broken
        }
    }
}

/// Adds a record's samples to the totals, or reports data too short for the
/// encoding's header.
fn count_samples(
    facts: &mut ChunkFacts,
    enc: &'static Encoding,
    rec: &ChunkRecord,
    name: &str,
    start: u64,
    report: &mut impl FnMut(&mut ChunkFacts, ProblemKind, String),
) {
    let Some(samples) = rec.sample_count() else {
        let msg = format!(
            "chunk data is {} bytes, shorter than the {}-byte header of a {} chunk (encoding {})",
            rec.data_len, enc.header, enc.name, enc.code
        );
        report(facts, ProblemKind::OutOfRange, msg);
        return;
    };
    facts.samples += samples;
    if enc.histogram {
        facts.histogram_samples += samples;
    } else {
        facts.float_samples += samples;
    }
    if enc.since.is_some() {
        match facts.newer.iter_mut().find(|n| n.encoding == enc.code) {
            Some(n) => n.records += 1,
            None => facts.newer.push(NewerRecords {
                encoding: enc.code,
                records: 1,
                file: name.to_string(),
                offset: start,
            }),
        }
    }
}

fn tail_message(start: u64, len: u64, nonzero: Option<u64>) -> String {
    match nonzero {
        None => format!(
            "{} zero bytes follow the last chunk record; a segment should end where its last \
             record ends (zeros here usually mean data that never reached the disk)",
            len - start
        ),
        Some(at) => format!(
            "a zero-length record starts here, followed by non-zero bytes at {at}; this is \
             not a valid record"
        ),
    }
}

struct ChunkRecord {
    end: u64,
    encoding: u8,
    data_len: u64,
    /// The first `min(data_len, MAX_HEADER)` data bytes, zero-padded.
    head: [u8; MAX_HEADER],
    stored_crc: u32,
    computed_crc: u32,
}

impl ChunkRecord {
    /// The sample count a known encoding's header gives (for the streamed
    /// check's bookkeeping), if the record is long enough to hold one.
    fn sample_count(&self) -> Option<u64> {
        let enc = encoding(self.encoding)?;
        (self.data_len >= enc.header)
            .then(|| u64::from(u16::from_be_bytes([self.head[0], self.head[1]]) & enc.count_mask))
    }
}

enum Record {
    Chunk(ChunkRecord),
    /// A zero byte where a record should start: padding or garbage to EOF.
    Tail {
        nonzero: Option<u64>,
    },
}

/// Reads and checksums one record; errors end the walk of this segment.
fn read_record<S: Source>(
    r: &mut FileReader<S>,
    start: u64,
) -> Result<Record, (ProblemKind, String)> {
    let len = r.len();
    r.seek(start);
    r.set_limit(len);
    let io = |e: ReadError| match e {
        ReadError::Io(e) => (ProblemKind::Io, format!("read failed: {e}")),
        other => (
            ProblemKind::Truncated,
            format!("file ends inside the record: {other}"),
        ),
    };
    if r.u8().map_err(io)? == 0 {
        let nonzero = r.find_nonzero(len).map_err(io)?;
        return Ok(Record::Tail { nonzero });
    }
    r.seek(start);
    r.set_limit(len.min(start + MAX_LEN_FIELD));
    let data_len = match r.uvarint() {
        Ok(n) => n,
        Err(ReadError::Overrun { .. }) if start + MAX_LEN_FIELD > len => {
            let msg = format!("file ends ({len} bytes) inside the record's length field");
            return Err((ProblemKind::Truncated, msg));
        }
        Err(ReadError::Io(e)) => return Err((ProblemKind::Io, format!("read failed: {e}"))),
        Err(_) => {
            let msg = "record length field is not a uvarint of at most 5 bytes".to_string();
            return Err((ProblemKind::OutOfRange, msg));
        }
    };
    let header = r.pos() - start;
    let end = (start + header)
        .checked_add(1 + 4)
        .and_then(|e| e.checked_add(data_len))
        .filter(|&e| e <= len)
        .ok_or_else(|| {
            let msg = format!(
                "record declares {data_len} data bytes and would end at {}, but the file is {len} bytes",
                (start + header + 5).saturating_add(data_len)
            );
            (ProblemKind::Truncated, msg)
        })?;
    r.set_limit(end);
    r.start_crc();
    let encoding = r.u8().map_err(io)?;
    let mut head = [0u8; MAX_HEADER];
    let head_len = data_len.min(MAX_HEADER as u64);
    r.read_exact(&mut head[..head_len as usize]).map_err(io)?;
    r.skip(data_len - head_len).map_err(io)?;
    let computed_crc = r.finish_crc();
    let stored_crc = r.be32().map_err(io)?;
    Ok(Record::Chunk(ChunkRecord {
        end,
        encoding,
        data_len,
        head,
        stored_crc,
        computed_crc,
    }))
}
