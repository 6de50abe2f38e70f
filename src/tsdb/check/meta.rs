//! `meta.json`: the block's identity card.
//!
//! Prometheus decides whether a directory is a block, and which time range it
//! covers, from this file alone; it refuses any `version` other than 1. We
//! check that it parses, that its `ulid` is a valid ULID equal to the one the
//! caller expects (by default the directory name, since Prometheus only loads
//! directories whose name parses as a ULID), and that `minTime < maxTime`
//! (the range is half-open, `[minTime, maxTime)`). The `stats` counts are
//! handed back so the caller can compare them with the index and chunks.
//! `compaction.level` must be at least 1 and every ULID in `compaction` must
//! parse (Go's decoder rejects the file otherwise). The file has no checksum,
//! so damage inside a number or a string that still parses can only be caught
//! by those cross-checks: the counts against the index and segments, and the
//! time range against the chunks the index lists.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::Path;

use serde::Deserialize;

use super::{BlockSummary, Problem, ProblemKind, Problems};

pub(crate) const META_FILE: &str = "meta.json";

/// Refuse to parse anything larger: real files are a few KiB even for blocks
/// compacted from thousands of sources.
const MAX_META_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetaJson {
    ulid: String,
    min_time: i64,
    max_time: i64,
    #[serde(default)]
    stats: StatsJson,
    compaction: Option<CompactionJson>,
    version: u64,
}

/// Go writes these with `omitempty`, so an absent count means zero.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct StatsJson {
    #[serde(default)]
    num_samples: u64,
    #[serde(default)]
    num_series: u64,
    #[serde(default)]
    num_chunks: u64,
    #[serde(default)]
    num_tombstones: u64,
    /// Written by Prometheus 3.6+ only (absent when zero, like the others).
    num_float_samples: Option<u64>,
    num_histogram_samples: Option<u64>,
}

#[derive(Deserialize)]
struct CompactionJson {
    #[serde(default)]
    level: u32,
    #[serde(default)]
    sources: Vec<String>,
    #[serde(default)]
    parents: Vec<ParentJson>,
}

#[derive(Deserialize)]
struct ParentJson {
    ulid: String,
}

/// The parts of `meta.json` other checks compare against.
pub(crate) struct MetaFacts {
    pub min_time: i64,
    pub max_time: i64,
    pub num_samples: u64,
    pub num_series: u64,
    pub num_chunks: u64,
    /// `(numFloatSamples, numHistogramSamples)` when the writer records them
    /// (Prometheus 3.6+; then at least one is present in a block with
    /// samples, and an absent one means zero). `None` for older writers.
    pub sample_kinds: Option<(u64, u64)>,
}

/// Checks `meta.json`; returns its counts when it could be parsed at all.
pub(crate) fn check_meta(
    dir: &Path,
    expected_ulid: &str,
    problems: &mut Problems,
) -> Option<MetaFacts> {
    let meta = match load(dir) {
        Ok(meta) => meta,
        Err(p) => {
            problems.push(&p.file, p.offset, p.kind, p.message);
            return None;
        }
    };
    let mut bad =
        |kind: ProblemKind, message: String| problems.push(META_FILE, None, kind, message);
    if ulid::Ulid::from_string(&meta.ulid).is_err() {
        bad(
            ProblemKind::BadMeta,
            format!("ulid {:?} is not a valid ULID", meta.ulid),
        );
    }
    if !meta.ulid.eq_ignore_ascii_case(expected_ulid) {
        bad(
            ProblemKind::BadMeta,
            format!("ulid is {:?}, expected {expected_ulid:?}", meta.ulid),
        );
    }
    if meta.min_time >= meta.max_time {
        bad(
            ProblemKind::BadMeta,
            format!(
                "minTime {} is not before maxTime {} (the range is [minTime, maxTime))",
                meta.min_time, meta.max_time
            ),
        );
    }
    if meta.version != 1 {
        bad(
            ProblemKind::BadVersion,
            format!(
                "version is {}, expected 1 (the only meta.json version Prometheus reads)",
                meta.version
            ),
        );
    }
    check_compaction(meta.compaction.as_ref(), &mut bad);
    Some(MetaFacts {
        min_time: meta.min_time,
        max_time: meta.max_time,
        num_samples: meta.stats.num_samples,
        num_series: meta.stats.num_series,
        num_chunks: meta.stats.num_chunks,
        sample_kinds: match (
            meta.stats.num_float_samples,
            meta.stats.num_histogram_samples,
        ) {
            (None, None) => None,
            (f, h) => Some((f.unwrap_or(0), h.unwrap_or(0))),
        },
    })
}

/// Every Prometheus-written block has `compaction.level >= 1`, and Go parses
/// `sources` and `parents[].ulid` as ULIDs, refusing the whole file if one is
/// not.
fn check_compaction(
    compaction: Option<&CompactionJson>,
    bad: &mut impl FnMut(ProblemKind, String),
) {
    let Some(c) = compaction else {
        bad(ProblemKind::BadMeta, "compaction section is missing".into());
        return;
    };
    if c.level == 0 {
        bad(
            ProblemKind::BadMeta,
            "compaction.level is 0 or missing; Prometheus writes 1 or more".into(),
        );
    }
    let parents = c.parents.iter().map(|p| &p.ulid);
    let ids = c
        .sources
        .iter()
        .map(|s| ("sources", s))
        .chain(parents.map(|p| ("parents", p)));
    for (field, id) in ids {
        if ulid::Ulid::from_string(id).is_err() {
            bad(
                ProblemKind::BadMeta,
                format!("compaction.{field} holds {id:?}, which is not a valid ULID"),
            );
            return;
        }
    }
}

/// Reads the summary of the block in `dir` from its `meta.json`.
///
/// This does not verify anything beyond "the file exists and parses"; use
/// [`super::check_block`] for that.
pub fn read_summary(dir: &Path) -> Result<BlockSummary, Problem> {
    let meta = load(dir)?;
    let stats = meta.stats;
    Ok(BlockSummary {
        ulid: meta.ulid,
        min_time: meta.min_time,
        max_time: meta.max_time,
        num_samples: stats.num_samples,
        num_series: stats.num_series,
        num_chunks: stats.num_chunks,
        num_tombstones: stats.num_tombstones,
        compaction_level: meta.compaction.map_or(0, |c| c.level),
    })
}

fn load(dir: &Path) -> Result<MetaJson, Problem> {
    let problem = |kind, message| Problem {
        file: META_FILE.to_string(),
        offset: None,
        kind,
        message,
    };
    let path = dir.join(META_FILE);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(problem(
                ProblemKind::Missing,
                "meta.json does not exist".into(),
            ));
        }
        Err(e) => {
            return Err(problem(
                ProblemKind::Io,
                format!("cannot open meta.json: {e}"),
            ))
        }
    };
    let mut bytes = Vec::new();
    if let Err(e) = file.take(MAX_META_BYTES + 1).read_to_end(&mut bytes) {
        return Err(problem(
            ProblemKind::Io,
            format!("cannot read meta.json: {e}"),
        ));
    }
    if bytes.len() as u64 > MAX_META_BYTES {
        return Err(problem(
            ProblemKind::BadMeta,
            format!("meta.json is larger than {MAX_META_BYTES} bytes; real ones are a few KiB"),
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        let at = e.column();
        let offset = line_col_to_offset(&bytes, e.line(), at);
        Problem {
            offset,
            ..problem(
                ProblemKind::BadMeta,
                format!("meta.json does not parse: {e}"),
            )
        }
    })
}

/// Turns serde_json's 1-based line/column into a byte offset, if it has one.
fn line_col_to_offset(bytes: &[u8], line: usize, column: usize) -> Option<u64> {
    if line == 0 {
        return None;
    }
    let line_start = if line == 1 {
        0
    } else {
        bytes
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'\n')
            .nth(line - 2)
            .map(|(i, _)| i + 1)?
    };
    Some((line_start + column.saturating_sub(1)) as u64)
}
