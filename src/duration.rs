//! Durations, in the one grammar promsnap accepts everywhere: Prometheus's.
//!
//! The people who run promsnap read Prometheus durations every day
//! (`--storage.tsdb.retention.time=15d`, `rate(x[5m])`, `for: 1h30m`), so
//! every duration promsnap takes, as a flag, a `PROMSNAP_*` variable or a
//! configuration key, is written the same way: numbers with units `y` (365
//! days), `w`, `d`, `h`, `m` (minutes), `s` and `ms`, largest unit first, each
//! at most once (`90m`, `1h30m`, `7d`, `2w`, `0`). It is the grammar of
//! Prometheus's `model.ParseDuration`, so a retention read from a server's
//! flags parses with the same code. There are no months: `m` is always
//! minutes, as in Prometheus.
//!
//! [`Parts`] keeps the units as written, for the one place that treats
//! days differently from hours (retention's `keep_within` steps days on the
//! calendar of a time zone); [`Duration`] is the elapsed time, for everything
//! else.

use std::fmt;
use std::str::FromStr;

/// The units, largest first, with their length in milliseconds.
const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// What a duration must look like, for error messages and `--help`.
pub const GRAMMAR: &str = "a number and a unit (ms, s, m, h, d, w, y), largest unit first, \
                           e.g. 90s, 15m, 1h30m, 7d, 2w";

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a duration ({reason}): write {GRAMMAR}")]
pub struct DurationError {
    input: String,
    reason: &'static str,
}

/// A duration as written: the count of each unit, largest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Parts {
    /// Counts of y, w, d, h, m, s, ms, in that order.
    counts: [u64; 7],
}

impl Parts {
    /// Whole days: years (365 days), weeks and days together.
    pub fn days(&self) -> u64 {
        self.counts[0] * 365 + self.counts[1] * 7 + self.counts[2]
    }

    /// What is left below a day (hours, minutes, seconds, milliseconds),
    /// in milliseconds.
    pub fn sub_day_millis(&self) -> u64 {
        UNITS[3..]
            .iter()
            .zip(&self.counts[3..])
            .map(|((_, ms), n)| ms * n)
            .sum()
    }

    pub fn is_zero(&self) -> bool {
        self.counts.iter().all(|&n| n == 0)
    }

    /// The elapsed time, or `None` when it overflows.
    pub fn millis(&self) -> Option<u64> {
        UNITS
            .iter()
            .zip(&self.counts)
            .try_fold(0u64, |total, ((_, ms), n)| {
                total.checked_add(ms.checked_mul(*n)?)
            })
    }
}

impl FromStr for Parts {
    type Err = DurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let bad = |reason| DurationError {
            input: input.to_string(),
            reason,
        };
        let s = input.trim();
        if s == "0" {
            return Ok(Parts::default());
        }
        if s.is_empty() {
            return Err(bad("it is empty"));
        }
        let mut parts = Parts::default();
        let mut rest = s;
        // The index of the next unit allowed: units come largest first, once.
        let mut next = 0;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(bad("expected a number"));
            }
            let n: u64 = rest[..digits].parse().map_err(|_| bad("too large"))?;
            let tail = &rest[digits..];
            let letters = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
            let unit = &tail[..letters];
            let Some(index) = UNITS.iter().position(|(u, _)| *u == unit) else {
                return Err(bad(if unit.is_empty() {
                    "a number without a unit"
                } else {
                    "unknown unit"
                }));
            };
            if index < next {
                return Err(bad("units must come largest first, each once"));
            }
            parts.counts[index] = n;
            next = index + 1;
            rest = &tail[letters..];
        }
        parts.millis().ok_or_else(|| bad("too large"))?;
        Ok(parts)
    }
}

impl fmt::Display for Parts {
    /// As written, normalised: `1h30m`, `7d`; zero is `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0s");
        }
        for ((unit, _), n) in UNITS.iter().zip(&self.counts) {
            if *n != 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        Ok(())
    }
}

/// An elapsed time written in the Prometheus grammar. Parses from flags
/// (`FromStr`) and configuration files (`Deserialize`) alike.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub const fn from_secs(secs: u64) -> Self {
        Duration(std::time::Duration::from_secs(secs))
    }

    pub fn std(self) -> std::time::Duration {
        self.0
    }

    pub fn as_millis(self) -> i64 {
        i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX)
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.0
    }
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Parts = s.parse()?;
        let ms = parts.millis().expect("checked by Parts::from_str");
        Ok(Duration(std::time::Duration::from_millis(ms)))
    }
}

impl fmt::Display for Duration {
    /// In the same grammar, the largest units first: `1h30m`, `2d`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX);
        let mut parts = Parts::default();
        for (count, (_, size)) in parts.counts.iter_mut().zip(UNITS) {
            *count = ms / size;
            ms %= size;
        }
        parts.fmt(f)
    }
}

/// Parses any `FromStr` value from a configuration file's string, with its
/// own error message (which names the grammar).
pub(crate) fn deserialize_str<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    let text = <String as serde::Deserialize>::deserialize(deserializer)?;
    text.parse().map_err(serde::de::Error::custom)
}

impl<'de> serde::Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_str(d)
    }
}

impl<'de> serde::Deserialize<'de> for Parts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_str(d)
    }
}

impl serde::Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> u64 {
        s.parse::<Duration>().unwrap().0.as_millis() as u64
    }

    #[test]
    fn prometheus_durations_parse() {
        assert_eq!(ms("15d"), 15 * 86_400_000);
        assert_eq!(ms("1h30m"), 5_400_000);
        assert_eq!(ms("90m"), 5_400_000);
        assert_eq!(ms("100y"), 100 * 365 * 86_400_000);
        assert_eq!(ms("0s"), 0);
        assert_eq!(ms("0"), 0);
        assert_eq!(ms("2w"), 14 * 86_400_000);
        assert_eq!(ms("250ms"), 250);
        assert_eq!(ms("1m30s"), 90_000);
        assert_eq!(ms(" 30s "), 30_000);
        assert_eq!(
            ms("1y2w3d4h5m6s7ms"),
            ms("1y") + ms("2w") + ms("3d") + 14_706_007
        );
    }

    #[test]
    fn other_grammars_are_refused_with_the_grammar_in_the_message() {
        for bad in [
            "",
            "15",
            "d",
            "1.5h",
            "3 days",
            "1q",
            "1h 30m",
            "30m1h",
            "1m1m",
            "90min",
            "-5m",
            "1M",
            "99999999999999999999y",
            "5124095576y",
        ] {
            let err = bad.parse::<Duration>().unwrap_err();
            assert!(
                err.to_string().contains("largest unit first"),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn durations_print_in_the_same_grammar() {
        for (input, shown) in [
            ("90m", "1h30m"),
            ("1h30m", "1h30m"),
            ("48h", "2d"),
            ("0", "0s"),
            ("1500ms", "1s500ms"),
            ("400d", "1y5w"),
        ] {
            let d: Duration = input.parse().unwrap();
            assert_eq!(d.to_string(), shown);
            assert_eq!(d.to_string().parse::<Duration>().unwrap(), d);
        }
    }

    #[test]
    fn parts_keep_days_apart_from_hours() {
        let p: Parts = "1y2w3d4h5m".parse().unwrap();
        assert_eq!(p.days(), 365 + 14 + 3);
        assert_eq!(p.sub_day_millis(), 4 * 3_600_000 + 5 * 60_000);
        assert_eq!(p.to_string(), "1y2w3d4h5m");
        let h: Parts = "24h".parse().unwrap();
        assert_eq!((h.days(), h.sub_day_millis()), (0, 86_400_000));
        assert!("0".parse::<Parts>().unwrap().is_zero());
    }
}
