//! When `promsnap serve` backs up: a cron expression, parsed by `croner`.
//!
//! Five fields (minute hour day-of-month month day-of-week) as in crontab,
//! or six with seconds first, so a test or a short-lived setup can back up
//! every few seconds. A `CRON_TZ=Zone ` prefix (as cronie and Kubernetes
//! CronJobs write it) names the time zone the fields are read in; without
//! it they are UTC, not the host's zone, so the same expression means the
//! same instant in a container and on a host. Daylight saving is croner's
//! business: a time that does not exist that night is skipped, one that
//! exists twice runs once.

use std::fmt;

use anyhow::Result;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

use crate::error::Hinted;

/// A parsed `--schedule`.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// As written, for messages.
    text: String,
    cron: Cron,
    zone: Tz,
}

impl Schedule {
    /// Parses `[CRON_TZ=Zone ]FIELDS`; anything else is a usage error that
    /// says what a valid one looks like.
    pub fn parse(text: &str) -> Result<Schedule> {
        let trimmed = text.trim();
        let (zone, fields) = match trimmed.strip_prefix("CRON_TZ=") {
            Some(rest) => {
                let (zone, fields) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                let zone: Tz = zone.parse().map_err(|_| {
                    invalid(
                        text,
                        format!("unknown time zone {zone:?}"),
                        "use an IANA zone name, e.g. CRON_TZ=Europe/Berlin",
                    )
                })?;
                (zone, fields.trim())
            }
            None => (Tz::UTC, trimmed),
        };
        let count = fields.split_whitespace().count();
        if !(5..=6).contains(&count) {
            return Err(invalid(
                text,
                format!("{count} fields"),
                "give five fields (minute hour day-of-month month day-of-week), or six with \
                 seconds first, e.g. '15 3 * * *' or '*/10 * * * * *'",
            ));
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build();
        let cron = parser.parse(fields).map_err(|e| {
            invalid(
                text,
                e.to_string(),
                "check each field, e.g. '15 3 * * *' is 03:15 every day",
            )
        })?;
        Ok(Schedule {
            text: trimmed.to_string(),
            cron,
            zone,
        })
    }

    /// The first scheduled time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Result<DateTime<Utc>> {
        let local = after.with_timezone(&self.zone);
        let next = self.cron.find_next_occurrence(&local, false).map_err(|e| {
            anyhow::Error::from(Hinted::usage(
                format!("the schedule {:?} names no time after {after}", self.text),
                format!("fix --schedule ({e})"),
            ))
        })?;
        Ok(next.with_timezone(&Utc))
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn invalid(text: &str, why: String, hint: &str) -> anyhow::Error {
    anyhow::anyhow!("{why}").context(Hinted::usage(
        format!("invalid schedule {text:?}"),
        hint.to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn five_fields_are_minutes_in_utc() {
        let s = Schedule::parse("15 3 * * *").unwrap();
        let next = s.next_after(at("2026-11-30T01:00:00Z")).unwrap();
        assert_eq!(next, at("2026-11-30T03:15:00Z"));
        // Strictly after: the time itself is the next day's.
        let next = s.next_after(at("2026-11-30T03:15:00Z")).unwrap();
        assert_eq!(next, at("2026-12-01T03:15:00Z"));
    }

    #[test]
    fn six_fields_start_with_seconds() {
        let s = Schedule::parse("*/5 * * * * *").unwrap();
        let next = s.next_after(at("2026-11-30T01:00:02Z")).unwrap();
        assert_eq!(next, at("2026-11-30T01:00:05Z"));
    }

    #[test]
    fn cron_tz_names_the_zone_the_fields_are_read_in() {
        let s = Schedule::parse("CRON_TZ=Europe/Berlin 15 3 * * *").unwrap();
        // Winter: Berlin is UTC+1.
        let next = s.next_after(at("2026-11-30T00:00:00Z")).unwrap();
        assert_eq!(next, at("2026-11-30T02:15:00Z"));
        // Summer: UTC+2.
        let next = s.next_after(at("2026-07-01T00:00:00Z")).unwrap();
        assert_eq!(next, at("2026-07-01T01:15:00Z"));
        // A 02:30 that does not exist on the night clocks go forward is
        // not run twice and not lost for good: the next day has it.
        let s = Schedule::parse("CRON_TZ=Europe/Berlin 30 2 * * *").unwrap();
        let next = s
            .next_after(Utc.with_ymd_and_hms(2026, 3, 28, 12, 0, 0).unwrap())
            .unwrap();
        assert!(next >= at("2026-03-29T00:00:00Z"), "{next}");
        assert!(next <= at("2026-03-30T00:30:00Z"), "{next}");
    }

    #[test]
    fn bad_schedules_are_usage_errors_that_say_why() {
        for (bad, needle) in [
            ("15 3 * *", "4 fields"),
            ("0 15 3 * * * 2026", "7 fields"),
            ("61 3 * * *", "invalid schedule"),
            ("CRON_TZ=Mars/Olympus 15 3 * * *", "unknown time zone"),
            ("", "0 fields"),
        ] {
            let err = Schedule::parse(bad).unwrap_err();
            let text = format!("{err:#}");
            assert!(text.contains(needle), "{bad}: {text}");
            assert_eq!(
                crate::error::status_of(&err),
                crate::error::ExitStatus::Usage,
                "{bad}"
            );
        }
    }
}
