//! Points in time, as promsnap prints them and as users write them.
//!
//! One grammar for every time a user types (`restore --from/--to`): what
//! promsnap itself prints (`2026-07-06 22:00`, UTC, from `list` and the
//! summaries), RFC 3339 with any offset (`2026-07-06T22:00:00+02:00`), a
//! date (`2026-07-06`, midnight UTC), Unix seconds as promtool takes them
//! (`1783375200`), `now`, and times relative to now: a minus and a
//! [duration](crate::duration) (`-7d`, `-12h`, `-90m`). Times without an
//! offset are UTC, like everything promsnap prints, so a time copied from
//! `list` means the same instant when pasted back.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// What the grammar accepts, for error messages and `--help`.
pub const GRAMMAR: &str = "a time: 2026-07-06 22:00 (UTC, as promsnap prints it), RFC 3339 \
                           (2026-07-06T22:00:00Z), a date (2026-07-06), Unix seconds, now, \
                           or relative to now (-7d, -12h, -90m)";

/// How promsnap prints a Prometheus millisecond timestamp: UTC, to the minute.
pub fn format_ms(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// A point in time as given on the command line, resolved later against
/// one `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSpec {
    Now,
    /// That long before now.
    Ago(std::time::Duration),
    At(DateTime<Utc>),
}

/// Why a text is not a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeError(String);

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TimeError {}

impl FromStr for TimeSpec {
    type Err = TimeError;

    fn from_str(input: &str) -> Result<Self, TimeError> {
        let s = input.trim();
        if s == "now" {
            return Ok(TimeSpec::Now);
        }
        if let Some(ago) = s.strip_prefix('-') {
            return ago
                .parse::<crate::duration::Duration>()
                .map(|d| TimeSpec::Ago(d.std()))
                .map_err(|e| {
                    TimeError(format!(
                        "{e}; a relative time is a minus and a duration: -7d, -12h, -90m"
                    ))
                });
        }
        absolute(s)
            .map(TimeSpec::At)
            .ok_or_else(|| TimeError(format!("{input:?} is not {GRAMMAR}")))
    }
}

/// An absolute time in any of the accepted forms.
fn absolute(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let secs: f64 = s.parse().ok()?;
        return DateTime::from_timestamp_millis((secs * 1000.0).round() as i64);
    }
    for format in [
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-25T12:00:00Z".parse().unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse::<TimeSpec>()
            .unwrap_or_else(|e| panic!("{s:?}: {e}"))
            .resolve(now())
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn every_accepted_form_means_the_instant_it_says() {
        assert_eq!(at("now"), now());
        assert_eq!(at("-7d"), utc("2026-11-18T12:00:00Z"));
        assert_eq!(at("-12h"), utc("2026-11-25T00:00:00Z"));
        assert_eq!(at("-90m"), utc("2026-11-25T10:30:00Z"));
        assert_eq!(at("-1h30m"), utc("2026-11-25T10:30:00Z"));
        assert_eq!(at("2026-01-01T03:00:00+01:00"), utc("2026-01-01T02:00:00Z"));
        assert_eq!(at("2026-01-01T03:00:00Z"), utc("2026-01-01T03:00:00Z"));
        assert_eq!(at("2024-07-06 22:00"), utc("2024-07-06T22:00:00Z"));
        assert_eq!(at("2024-07-06 22:00:30"), utc("2024-07-06T22:00:30Z"));
        assert_eq!(at("2024-07-06T22:00"), utc("2024-07-06T22:00:00Z"));
        assert_eq!(at("2024-07-06"), utc("2024-07-06T00:00:00Z"));
        assert_eq!(at("1720303200"), utc("2024-07-06T22:00:00Z"));
        assert_eq!(at("1720303200.5"), utc("2024-07-06T22:00:00.5Z"));
    }

    #[test]
    fn what_promsnap_prints_parses_back_to_the_same_minute() {
        let ms = 1_767_225_600_000 + 17 * 60_000;
        let printed = format_ms(ms);
        assert_eq!(printed, "2026-01-01 00:17");
        assert_eq!(at(&printed).timestamp_millis(), ms);
    }

    #[test]
    fn other_text_is_refused_with_the_grammar() {
        for bad in [
            "yesterday",
            "7d",
            "-7x",
            "",
            "2026-13-01",
            "01/02/2026",
            "-5",
            "12:00",
        ] {
            let err = bad.parse::<TimeSpec>().unwrap_err().to_string();
            assert!(
                err.contains("promsnap prints") || err.contains("relative time"),
                "{bad:?}: {err}"
            );
        }
    }
}
