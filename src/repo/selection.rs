//! Which blocks a restore takes, and which of them a server would keep.
//!
//! A targeted restore (`--from`/`--to`) takes the blocks whose time range
//! overlaps the requested window: Prometheus blocks are `[minTime, maxTime)`
//! in milliseconds, so a block that ends exactly where the window starts has
//! no sample in it and is left out. Times are given the way an on-call
//! engineer thinks about an incident: RFC 3339, `now`, or relative to now
//! (`-7d`, `-12h`, `-90m`); they are resolved against one `now` so that
//! `--from -2h --to -1h` is exactly one hour.
//!
//! A merge into a running Prometheus must also know what that server will
//! delete. Prometheus measures time retention from the newest block, not from
//! the wall clock: at every block reload (about once a minute) it deletes each
//! block whose `maxTime` lies more than the retention before the newest
//! block's `maxTime`. [`beyond_retention`] applies the same rule to the
//! blocks a merge would add, and [`retention_from_flags`] reads the retention
//! the way Prometheus's `main` derives it from its flags.

use std::collections::BTreeMap;
use std::str::FromStr;

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::manifest::BlockEntry;

/// Prometheus's retention when neither time nor size retention is set.
pub const DEFAULT_RETENTION_MS: i64 = 15 * 86_400_000;

/// A point in time as given on the command line, resolved later against `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSpec {
    Now,
    /// That long before now.
    Ago(std::time::Duration),
    At(DateTime<Utc>),
}

impl FromStr for TimeSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s == "now" {
            return Ok(TimeSpec::Now);
        }
        if let Some(ago) = s.strip_prefix('-') {
            return humantime::parse_duration(ago)
                .map(TimeSpec::Ago)
                .map_err(|e| format!("{s:?}: {e}; write e.g. -7d, -12h or -90m"));
        }
        DateTime::parse_from_rfc3339(s)
            .map(|t| TimeSpec::At(t.with_timezone(&Utc)))
            .map_err(|_| {
                format!(
                    "{s:?} is not a time: use RFC 3339 (2026-01-01T03:00:00Z), now, or -7d / -12h"
                )
            })
    }
}

impl TimeSpec {
    pub fn resolve(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            TimeSpec::Now => now,
            TimeSpec::Ago(d) => chrono::Duration::from_std(*d)
                .ok()
                .and_then(|d| now.checked_sub_signed(d))
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
            TimeSpec::At(t) => *t,
        }
    }
}

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

/// Parses a Prometheus duration (`15d`, `100y`, `1h30m`, `0s`): numbers with
/// units ms, s, m, h, d, w, y (365 days), as Prometheus's `model.Duration`.
pub fn parse_prometheus_duration(s: &str) -> Result<i64> {
    let s = s.trim();
    let mut total: i64 = 0;
    let mut rest = s;
    if rest.is_empty() {
        bail!("empty duration");
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let unit_len = rest[digits..]
            .bytes()
            .take_while(u8::is_ascii_alphabetic)
            .count();
        if digits == 0 || unit_len == 0 {
            bail!("{s:?} is not a Prometheus duration");
        }
        let n: i64 = rest[..digits].parse()?;
        let unit: i64 = match &rest[digits..digits + unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            other => bail!("{s:?}: unknown unit {other:?}"),
        };
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .unwrap_or(i64::MAX);
        rest = &rest[digits + unit_len..];
    }
    Ok(total)
}

/// The time retention a Prometheus applies, in milliseconds, from its
/// `/api/v1/status/flags`; `None` when it keeps data without a time limit
/// (only a size limit is set). Mirrors Prometheus's `main`: the deprecated
/// `storage.tsdb.retention` is overridden by `storage.tsdb.retention.time`,
/// and with neither (nor a size limit) the default of 15 days applies.
pub fn retention_from_flags(flags: &BTreeMap<String, String>) -> Result<Option<i64>> {
    let duration = |key: &str| -> Result<i64> {
        match flags.get(key).map(|v| v.trim()) {
            None | Some("") => Ok(0),
            Some(v) => parse_prometheus_duration(v)
                .map_err(|e| e.context(format!("Prometheus flag {key}={v:?}"))),
        }
    };
    let mut retention = duration("storage.tsdb.retention")?;
    let newer = duration("storage.tsdb.retention.time")?;
    if newer != 0 {
        retention = newer;
    }
    if retention != 0 {
        return Ok(Some(retention));
    }
    // A size limit alone means no time limit; "0B" (or nothing) is no limit.
    let size_set = flags.get("storage.tsdb.retention.size").is_some_and(|v| {
        let number: String = v
            .trim()
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        number.parse::<f64>().is_ok_and(|n| n > 0.0)
    });
    Ok((!size_set).then_some(DEFAULT_RETENTION_MS))
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
    fn times_parse_as_rfc3339_now_or_relative() {
        let at = |s: &str| s.parse::<TimeSpec>().unwrap().resolve(now());
        assert_eq!(at("now"), now());
        assert_eq!(
            at("-7d"),
            "2026-11-18T12:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            at("-12h"),
            "2026-11-25T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            at("-90m"),
            "2026-11-25T10:30:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            at("2026-01-01T03:00:00+01:00"),
            "2026-01-01T02:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        for bad in ["yesterday", "7d", "-7x", "2026-01-01", ""] {
            assert!(bad.parse::<TimeSpec>().is_err(), "{bad:?} accepted");
        }
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
    fn prometheus_durations_parse() {
        assert_eq!(
            parse_prometheus_duration("15d").unwrap(),
            DEFAULT_RETENTION_MS
        );
        assert_eq!(parse_prometheus_duration("1h30m").unwrap(), 5_400_000);
        assert_eq!(
            parse_prometheus_duration("100y").unwrap(),
            100 * 365 * 86_400_000
        );
        assert_eq!(parse_prometheus_duration("0s").unwrap(), 0);
        assert_eq!(parse_prometheus_duration("2w").unwrap(), 14 * 86_400_000);
        assert_eq!(parse_prometheus_duration("250ms").unwrap(), 250);
        for bad in ["", "15", "d", "1.5h", "3 days", "1q"] {
            assert!(parse_prometheus_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn retention_follows_prometheus_flag_rules() {
        let flags = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let get = |pairs: &[(&str, &str)]| retention_from_flags(&flags(pairs)).unwrap();
        // Nothing set: 15 days (Prometheus shows 0s for unset flags).
        let unset = [
            ("storage.tsdb.retention", "0s"),
            ("storage.tsdb.retention.time", "0s"),
            ("storage.tsdb.retention.size", "0B"),
        ];
        assert_eq!(get(&unset), Some(DEFAULT_RETENTION_MS));
        // 3.x has no deprecated flag and shows the default it applied.
        let unset_3x = [
            ("storage.tsdb.retention.time", "15d"),
            ("storage.tsdb.retention.size", "0B"),
        ];
        assert_eq!(get(&unset_3x), Some(15 * 86_400_000));
        assert_eq!(
            get(&[("storage.tsdb.retention.time", "3h")]),
            Some(3 * 3_600_000)
        );
        // The deprecated flag counts unless the new one is set.
        assert_eq!(
            get(&[("storage.tsdb.retention", "2d")]),
            Some(2 * 86_400_000)
        );
        assert_eq!(
            get(&[
                ("storage.tsdb.retention", "2d"),
                ("storage.tsdb.retention.time", "1d")
            ]),
            Some(86_400_000)
        );
        // Only a size limit: no time limit at all.
        assert_eq!(
            get(&[
                ("storage.tsdb.retention.time", "0s"),
                ("storage.tsdb.retention.size", "512MB")
            ]),
            None
        );
        assert!(retention_from_flags(&flags(&[("storage.tsdb.retention.time", "soon")])).is_err());
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
