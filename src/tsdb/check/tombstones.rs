//! The `tombstones` file: deletion intervals not yet compacted away.
//!
//! Layout (from `tsdb/tombstones/tombstones.go`; the format document still
//! describes an older layout with a trailing offset): magic `0x0130BA30`
//! (4 bytes), format version 1 (1 byte), then records `series ref
//! <uvarint64> | mint <varint64> | maxt <varint64>` up to the last four bytes,
//! which hold a CRC32C of the records. The version byte is *not* covered by
//! the CRC. A block without deletions has a 9-byte file: header plus the CRC
//! of nothing, which is 0. Prometheus always writes this file, and it is one
//! of only two files the delete API rewrites in place, so a missing one is
//! reported. Each record's series reference must name a series in the index.

use std::path::Path;

use super::index::SeriesIds;
use super::{open_or_report, ProblemKind, Problems};
use crate::tsdb::reader::{FileReader, ReadError};

pub(crate) const TOMBSTONES_FILE: &str = "tombstones";
const TOMBSTONES_MAGIC: u32 = 0x0130_BA30;
const HEADER_LEN: u64 = 5;
const MIN_LEN: u64 = HEADER_LEN + 4;

/// Checks the tombstones file; `series` (when the index was readable) is used
/// to check each record's series reference.
pub(crate) fn check_tombstones(dir: &Path, series: Option<&SeriesIds>, problems: &mut Problems) {
    let Some(mut r) = open_or_report(&dir.join(TOMBSTONES_FILE), TOMBSTONES_FILE, problems) else {
        return;
    };
    if !check_header(&mut r, problems) {
        return;
    }
    let end = r.len() - 4;
    r.seek(HEADER_LEN);
    r.set_limit(end);
    r.start_crc();
    let parsed = parse_stones(&mut r, series);
    let rest = end.saturating_sub(r.pos());
    let computed = r.skip(rest).map(|_| r.finish_crc());
    r.set_limit(r.len());
    let (Ok(computed), Ok(stored)) = (computed, r.be32()) else {
        problems.push(
            TOMBSTONES_FILE,
            None,
            ProblemKind::Io,
            "reading tombstones failed".into(),
        );
        return;
    };
    if computed != stored {
        let msg = format!(
            "tombstone records at {HEADER_LEN}..{end}: stored CRC32C {stored:#010x}, computed {computed:#010x}"
        );
        problems.push(
            TOMBSTONES_FILE,
            Some(HEADER_LEN),
            ProblemKind::CrcMismatch,
            msg,
        );
    } else if let Err((at, kind, msg)) = parsed {
        problems.push(TOMBSTONES_FILE, Some(at), kind, msg);
    }
}

fn check_header(r: &mut FileReader, problems: &mut Problems) -> bool {
    let len = r.len();
    r.seek(0);
    if len >= 4 {
        let Ok(magic) = r.be32() else {
            problems.push(
                TOMBSTONES_FILE,
                Some(0),
                ProblemKind::Io,
                "reading the header failed".into(),
            );
            return false;
        };
        if magic != TOMBSTONES_MAGIC {
            let msg =
                format!("tombstones magic is {magic:#010x}, expected {TOMBSTONES_MAGIC:#010x}");
            problems.push(TOMBSTONES_FILE, Some(0), ProblemKind::BadMagic, msg);
            return false;
        }
    }
    if len < MIN_LEN {
        let msg =
            format!("file is {len} bytes, shorter than the {MIN_LEN} bytes of header and CRC");
        problems.push(TOMBSTONES_FILE, Some(0), ProblemKind::Truncated, msg);
        return false;
    }
    match r.u8() {
        Ok(1) => true,
        Ok(v) => {
            let msg = format!("tombstones format version is {v}, expected 1");
            problems.push(TOMBSTONES_FILE, Some(4), ProblemKind::BadVersion, msg);
            false
        }
        Err(_) => {
            problems.push(
                TOMBSTONES_FILE,
                Some(4),
                ProblemKind::Io,
                "reading the header failed".into(),
            );
            false
        }
    }
}

/// Decodes the records up to the reader's limit; returns how many there are.
fn parse_stones(
    r: &mut FileReader,
    series: Option<&SeriesIds>,
) -> Result<u64, (u64, ProblemKind, String)> {
    let mut count = 0;
    while r.pos() < r.limit() {
        let at = r.pos();
        let fail = |e: ReadError| match e {
            ReadError::Io(e) => (at, ProblemKind::Io, format!("read failed: {e}")),
            _ => (
                at,
                ProblemKind::OutOfRange,
                "tombstone record runs past the CRC or has a malformed varint".into(),
            ),
        };
        let series_ref = r.uvarint().map_err(fail)?;
        r.varint().map_err(fail)?;
        r.varint().map_err(fail)?;
        if series.and_then(|s| s.contains(series_ref)) == Some(false) {
            let msg = format!("tombstone #{count} refers to series {series_ref}, but the index has no such series");
            return Err((at, ProblemKind::OutOfRange, msg));
        }
        count += 1;
    }
    Ok(count)
}
