//! Which blocks a restore takes, and which of them a server would keep.
//!
//! A targeted restore (`--from`/`--to`) takes the blocks whose time range
//! overlaps the requested window: Prometheus blocks are `[minTime, maxTime)`
//! in milliseconds, so a block that ends exactly where the window starts has
//! no sample in it and is left out. Times are given the way an on-call
//! engineer thinks about an incident ([`crate::time`]: RFC 3339, what
//! promsnap prints, dates, Unix seconds, `now`, or relative to now: `-7d`,
//! `-12h`, `-90m`); they are resolved against one `now` so that `--from -2h
//! --to -1h` is exactly one hour.
//!
//! A merge into a running Prometheus must also know what that server will
//! delete. Prometheus measures time retention from the newest block, not from
//! the wall clock: at every block reload (about once a minute) it deletes each
//! block whose `maxTime` lies more than the retention before the newest
//! block's `maxTime`. [`beyond_retention`] applies the same rule to the
//! blocks a merge would add (the server's retention comes from its flags,
//! [`crate::prometheus::Flags::retention_ms`]).

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::manifest::BlockEntry;
pub use crate::time::TimeSpec;

/// A window of time in Prometheus milliseconds, both ends inclusive; an
/// open end is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TimeRange {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

impl TimeRange {
    /// Resolves `--from`/`--to` against `now`; `from` after `to` is refused.
    pub fn new(
        from: Option<TimeSpec>,
        to: Option<TimeSpec>,
        now: DateTime<Utc>,
    ) -> Result<TimeRange> {
        let range = TimeRange {
            from_ms: from.map(|t| t.resolve(now).timestamp_millis()),
            to_ms: to.map(|t| t.resolve(now).timestamp_millis()),
        };
        if let (Some(a), Some(b)) = (range.from_ms, range.to_ms) {
            if a > b {
                bail!("--from is after --to");
            }
        }
        Ok(range)
    }

    pub fn is_bounded(&self) -> bool {
        self.from_ms.is_some() || self.to_ms.is_some()
    }

    /// Whether a block `[min_time, max_time)` holds time inside the window.
    pub fn overlaps(&self, min_time: i64, max_time: i64) -> bool {
        self.from_ms.is_none_or(|from| max_time > from)
            && self.to_ms.is_none_or(|to| min_time <= to)
    }
}

/// The blocks that overlap `range`, in manifest order.
pub fn in_range(blocks: &[BlockEntry], range: TimeRange) -> Vec<&BlockEntry> {
    blocks
        .iter()
        .filter(|b| range.overlaps(b.min_time, b.max_time))
        .collect()
}

/// The ULIDs among `candidates` (ULID, maxTime) that a server with this
/// retention deletes at its next reload, once they sit next to blocks whose
/// newest `maxTime` is `newest_existing`: those whose `maxTime` lies at least
/// the retention before the newest block of all.
pub fn beyond_retention(
    candidates: &[(&str, i64)],
    newest_existing: Option<i64>,
    retention_ms: i64,
) -> Vec<String> {
    let newest = candidates.iter().map(|c| c.1).chain(newest_existing).max();
    let Some(newest) = newest else {
        return Vec::new();
    };
    candidates
        .iter()
        .filter(|(_, max)| newest.saturating_sub(*max) >= retention_ms)
        .map(|(ulid, _)| ulid.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::manifest::tests::sample_entry;

    fn now() -> DateTime<Utc> {
        "2026-11-25T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn from_after_to_is_refused() {
        let from = Some("-1h".parse().unwrap());
        let to = Some("-2h".parse().unwrap());
        assert!(TimeRange::new(from, to, now()).is_err());
        let r = TimeRange::new(to, from, now()).unwrap();
        assert_eq!(r.to_ms.unwrap() - r.from_ms.unwrap(), 3_600_000);
    }

    #[test]
    fn blocks_are_selected_when_they_overlap_the_window() {
        // Three 2h blocks, [0,2h), [2h,4h), [4h,6h), like the fixtures.
        let h = 3_600_000;
        let blocks: Vec<BlockEntry> = (0..3)
            .map(|i| {
                let mut b = sample_entry(&format!("01HQ3K6W2Z000000000000000{i}"));
                b.min_time = i * 2 * h;
                b.max_time = (i + 1) * 2 * h;
                b
            })
            .collect();
        let pick = |from: Option<i64>, to: Option<i64>| -> Vec<i64> {
            in_range(
                &blocks,
                TimeRange {
                    from_ms: from,
                    to_ms: to,
                },
            )
            .iter()
            .map(|b| b.min_time / (2 * h))
            .collect()
        };
        assert_eq!(pick(None, None), [0, 1, 2]);
        assert_eq!(pick(Some(3 * h), Some(3 * h)), [1]);
        // maxTime is exclusive: a window starting at 2h misses the first block.
        assert_eq!(pick(Some(2 * h), Some(2 * h)), [1]);
        assert_eq!(pick(Some(2 * h - 1), Some(2 * h)), [0, 1]);
        assert_eq!(pick(None, Some(h)), [0]);
        assert_eq!(pick(Some(5 * h), None), [2]);
        assert!(pick(Some(7 * h), None).is_empty());
    }

    #[test]
    fn retention_counts_from_the_newest_block() {
        let h = 3_600_000;
        let blocks = [("a", 2 * h), ("b", 4 * h), ("c", 6 * h)];
        // Newest is c (6h); with 3h retention only a (4h before) goes.
        assert_eq!(beyond_retention(&blocks, None, 3 * h), ["a"]);
        // A newer block already on the server moves the reference forward.
        assert_eq!(
            beyond_retention(&blocks, Some(9 * h), 3 * h),
            ["a", "b", "c"]
        );
        assert!(beyond_retention(&blocks, Some(h), 100 * h).is_empty());
        assert!(beyond_retention(&[], None, h).is_empty());
    }
}
