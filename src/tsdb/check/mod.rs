//! Structural verification of one Prometheus TSDB block directory on disk.
//!
//! A backup is only worth keeping if Prometheus can open what it restores, so
//! `check_block` reads every file of a block the way Prometheus would and
//! reports what it could not trust: `meta.json` (parses, names the right ULID,
//! sane time range), the `index` (header, table of contents, and the CRC and
//! internal structure of every section), every `chunks/NNNNNN` segment (header
//! and every record's CRC, nothing after the last record) and `tombstones`.
//! Optionally every chunk reference in the index is followed to make sure it
//! lands on a record start. Finally the counts in `meta.json` are compared
//! with what the files actually hold.
//!
//! The checks never stop at the first finding: they report as many
//! independent problems as they can, each naming the file (relative to the
//! block directory), the byte offset, and what was expected versus found.
//! Files are streamed through bounded buffers, so a multi-gigabyte block costs
//! one sequential read of its bytes; memory is a few fixed 256 KiB buffers
//! plus one bit per 16 bytes of the index's series section (the set of valid
//! series IDs that postings and tombstones are checked against).
//! Corrupt input never panics: every length read from disk is checked before
//! it is used. The formats are described in `tsdb/docs/format/*.md` of
//! prometheus/prometheus; the comments in the submodules note where the Go
//! code differs from or adds to those documents.

mod chunks;
mod index;
mod meta;
mod stream;
mod tombstones;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::Serialize;

pub use meta::read_summary;
pub use stream::StreamedBlock;

use crate::tsdb::reader::FileReader;
use chunks::Segments;

/// One thing found wrong with a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Path relative to the block directory, e.g. `chunks/000001`.
    pub file: String,
    /// Byte offset in `file` of the record or section at fault, when known.
    pub offset: Option<u64>,
    pub kind: ProblemKind,
    /// What was expected and what was found.
    pub message: String,
}

/// The category of a [`Problem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A file or directory the block needs does not exist.
    Missing,
    /// A file ends before the data it declares.
    Truncated,
    /// A file does not start with its format's magic number.
    BadMagic,
    /// A format version this checker (and Prometheus) does not know.
    BadVersion,
    /// Stored and computed CRC32-Castagnoli checksums differ.
    CrcMismatch,
    /// `meta.json` is unreadable or disagrees with the block.
    BadMeta,
    /// A chunk with an encoding this checker does not know; its checksum is
    /// fine, so this is reported for information and is not corruption.
    UnknownEncoding,
    /// Chunks of an encoding newer than every packaged Prometheus (XOR2,
    /// HistogramST, FloatHistogramST): checked, but older servers cannot read
    /// them. A note, not corruption.
    NewerEncoding,
    /// A length, count or reference points outside where it must point.
    OutOfRange,
    /// Non-zero bytes where padding belongs, or bytes after the last record.
    TrailingGarbage,
    /// The operating system failed a read.
    Io,
}

impl ProblemKind {
    /// Whether this finding means the block is damaged (everything except
    /// the notes [`ProblemKind::UnknownEncoding`] and
    /// [`ProblemKind::NewerEncoding`]).
    pub fn is_corruption(&self) -> bool {
        !matches!(
            self,
            ProblemKind::UnknownEncoding | ProblemKind::NewerEncoding
        )
    }

    /// Whether `name` (an [`as_str`](Self::as_str) value) is a note rather
    /// than damage.
    pub fn is_note_name(name: &str) -> bool {
        [ProblemKind::UnknownEncoding, ProblemKind::NewerEncoding]
            .iter()
            .any(|k| k.as_str() == name)
    }

    /// A short, stable, lowercase name for humans and JSON output.
    pub fn as_str(&self) -> &'static str {
        match self {
            ProblemKind::Missing => "missing",
            ProblemKind::Truncated => "truncated",
            ProblemKind::BadMagic => "bad_magic",
            ProblemKind::BadVersion => "bad_version",
            ProblemKind::CrcMismatch => "crc_mismatch",
            ProblemKind::BadMeta => "bad_meta",
            ProblemKind::UnknownEncoding => "unknown_encoding",
            ProblemKind::NewerEncoding => "newer_encoding",
            ProblemKind::OutOfRange => "out_of_range",
            ProblemKind::TrailingGarbage => "trailing_garbage",
            ProblemKind::Io => "io",
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(off) => write!(f, "{} @{}: {}: {}", self.file, off, self.kind, self.message),
            None => write!(f, "{}: {}: {}", self.file, self.kind, self.message),
        }
    }
}

/// What `check_block` should verify beyond the always-on checks.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Also follow every chunk reference in the index's series section and
    /// verify it lands on the start of a record in an existing segment file.
    pub chunk_refs: bool,
}

/// The headline facts of a block, as recorded in its `meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockSummary {
    pub ulid: String,
    /// Inclusive lower bound of sample timestamps (ms since the epoch).
    pub min_time: i64,
    /// Exclusive upper bound of sample timestamps (ms since the epoch).
    pub max_time: i64,
    pub num_samples: u64,
    pub num_series: u64,
    pub num_chunks: u64,
    pub num_tombstones: u64,
    pub compaction_level: u32,
}

/// Verifies the block in `dir` and returns everything found wrong with it.
///
/// `expected_ulid` is the ULID the caller believes the block has; when it is
/// `None`, the directory's own name is expected instead. An empty result
/// means the block is structurally sound. Problems are ordered by file, then
/// by offset.
pub fn check_block(dir: &Path, expected_ulid: Option<&str>, opts: &CheckOptions) -> Vec<Problem> {
    let mut problems = Problems::default();
    if !dir.is_dir() {
        problems.push(
            "",
            None,
            ProblemKind::Missing,
            format!("block directory {} does not exist", dir.display()),
        );
        return problems.into_sorted();
    }
    let expected = match expected_ulid {
        Some(u) => u.to_string(),
        None => dir
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
    };
    let segments = chunks::SegmentWalker::open(dir, &mut problems);
    check_rest(dir, &expected, opts, segments, problems)
}

/// Everything after the segment files are found: `meta.json`, the index
/// (resolving chunk references through `segments`), the segment walk's
/// totals, tombstones, and the cross-checks between them.
fn check_rest(
    dir: &Path,
    expected: &str,
    opts: &CheckOptions,
    mut segments: impl Segments,
    mut problems: Problems,
) -> Vec<Problem> {
    let meta = meta::check_meta(dir, expected, &mut problems);
    let refs = opts
        .chunk_refs
        .then_some(&mut segments as &mut dyn Segments);
    let range = meta
        .as_ref()
        .map(|m| (m.min_time, m.max_time))
        .filter(|(min, max)| min < max);
    let index = index::check_index(dir, range, refs, &mut problems);
    segments.check_referenced(index.as_ref().and_then(|i| i.max_segment), &mut problems);
    let chunks = segments.finish(&mut problems);
    note_newer_encodings(&chunks, &mut problems);
    tombstones::check_tombstones(dir, index.as_ref().map(|i| &i.series), &mut problems);
    if let Some(meta) = &meta {
        cross_check(meta, index.as_ref(), &chunks, &mut problems);
    }
    problems.into_sorted()
}

/// Compares the counts promised by `meta.json` with what the files hold.
///
/// The compactor computes `stats` from exactly the series, chunks and samples
/// it writes, so any difference means a file was swapped, truncated in a way
/// that still parses, or `meta.json` belongs to another block. Counts from a
/// file that already has problems are skipped: they would only echo them.
fn cross_check(
    meta: &meta::MetaFacts,
    index: Option<&index::IndexFacts>,
    chunks: &chunks::ChunkFacts,
    problems: &mut Problems,
) {
    let mut compare = |field: &str, want: u64, got: u64, source: &str| {
        if want != got {
            let msg = format!("stats.{field} is {want}, but {source} {got}");
            problems.push(meta::META_FILE, None, ProblemKind::BadMeta, msg);
        }
    };
    if let Some(index) = index.filter(|i| i.clean) {
        compare(
            "numSeries",
            meta.num_series,
            index.num_series,
            "the index holds",
        );
        compare(
            "numChunks",
            meta.num_chunks,
            index.num_chunks,
            "the index references",
        );
    }
    if chunks.clean {
        compare(
            "numChunks",
            meta.num_chunks,
            chunks.records,
            "the segment files hold",
        );
        if chunks.unknown_encodings == 0 {
            compare(
                "numSamples",
                meta.num_samples,
                chunks.samples,
                "the chunks hold",
            );
            if let Some((floats, histograms)) = meta.sample_kinds {
                let (f, h) = (chunks.float_samples, chunks.histogram_samples);
                compare("numFloatSamples", floats, f, "the float chunks hold");
                compare(
                    "numHistogramSamples",
                    histograms,
                    h,
                    "the histogram chunks hold",
                );
            }
        }
    }
    if let Some(o) = index.and_then(|i| i.outside_block) {
        let msg = format!(
            "{} chunks lie entirely outside the block's range [minTime {}, maxTime {}), the first \
             covering [{}, {}] (series entry at index offset {})",
            o.count, meta.min_time, meta.max_time, o.min_time, o.max_time, o.entry
        );
        problems.push(meta::META_FILE, None, ProblemKind::BadMeta, msg);
    }
}

/// One note per encoding newer than every packaged Prometheus, at its first
/// record: what was checked, and which servers can read the block.
fn note_newer_encodings(chunks: &chunks::ChunkFacts, problems: &mut Problems) {
    for n in &chunks.newer {
        let Some(enc) = chunks::encoding(n.encoding) else {
            continue;
        };
        let since = enc.since.unwrap_or("?");
        let records = match n.records {
            1 => "1 chunk record in this block (here) uses".to_string(),
            n => format!("{n} chunk records in this block (the first here) use"),
        };
        let msg = format!(
            "{records} encoding {} ({}), which Prometheus {since} and later write: framing, \
             CRC and sample count were checked, the sample data was not decoded; Prometheus \
             before {since} cannot read these chunks, so restore this block only into {since} \
             or later",
            enc.code, enc.name
        );
        problems.push(&n.file, Some(n.offset), ProblemKind::NewerEncoding, msg);
    }
}

/// Opens one file of the block, reporting `Missing` or `Io` if it cannot.
pub(crate) fn open_or_report(
    path: &Path,
    file: &str,
    problems: &mut Problems,
) -> Option<FileReader> {
    match FileReader::open(path) {
        Ok(r) => Some(r),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            problems.push(
                file,
                None,
                ProblemKind::Missing,
                format!("{file} does not exist"),
            );
            None
        }
        Err(e) => {
            problems.push(
                file,
                None,
                ProblemKind::Io,
                format!("cannot open {file}: {e}"),
            );
            None
        }
    }
}

/// Most problems one file may report before the rest are only counted: a
/// single corrupt length early in a file can otherwise cascade into millions.
const MAX_PROBLEMS_PER_FILE: usize = 50;

/// Collects problems, capping how many each file may contribute.
#[derive(Default)]
pub(crate) struct Problems {
    list: Vec<Problem>,
    per_file: HashMap<String, FileTally>,
}

#[derive(Default)]
struct FileTally {
    reported: usize,
    suppressed: usize,
    first_suppressed: Option<ProblemKind>,
}

impl Problems {
    pub(crate) fn push(
        &mut self,
        file: &str,
        offset: Option<u64>,
        kind: ProblemKind,
        message: String,
    ) {
        let tally = self.per_file.entry(file.to_string()).or_default();
        if tally.reported >= MAX_PROBLEMS_PER_FILE {
            tally.suppressed += 1;
            tally.first_suppressed.get_or_insert(kind);
            return;
        }
        tally.reported += 1;
        self.list.push(Problem {
            file: file.to_string(),
            offset,
            kind,
            message,
        });
    }

    /// How many problems have been recorded for `file` so far.
    pub(crate) fn count(&self, file: &str) -> usize {
        self.per_file
            .get(file)
            .map_or(0, |t| t.reported + t.suppressed)
    }

    fn into_sorted(mut self) -> Vec<Problem> {
        for (file, tally) in &self.per_file {
            if let (n @ 1.., Some(kind)) = (tally.suppressed, tally.first_suppressed) {
                self.list.push(Problem {
                    file: file.clone(),
                    offset: None,
                    kind,
                    message: format!(
                        "{n} more problems in this file not listed (listing stops after {MAX_PROBLEMS_PER_FILE})"
                    ),
                });
            }
        }
        self.list.sort_by(|a, b| {
            (&a.file, a.offset.unwrap_or(u64::MAX)).cmp(&(&b.file, b.offset.unwrap_or(u64::MAX)))
        });
        self.list
    }
}

#[cfg(test)]
mod tests;
