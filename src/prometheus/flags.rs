//! What a Prometheus server's command-line flags tell promsnap.
//!
//! `/api/v1/status/flags` answers every flag as a string (`"0s"` and
//! `"0B"` for unset limits). Three of them matter here: where the server
//! keeps its data (`storage.tsdb.path`, so a backup need not be told), which
//! configuration file it loaded (`config.file`, stored with the backup), and
//! how long it keeps data (`storage.tsdb.retention.time`, so a merge can warn
//! about blocks the server would delete at once).
//!
//! Retention is read the way Prometheus's `main` derives it: the deprecated
//! `storage.tsdb.retention` is overridden by `storage.tsdb.retention.time`,
//! and with neither (nor a size limit) the default of 15 days applies.
//! Durations are Prometheus durations, parsed by [`crate::duration`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::duration::Duration;
use crate::error::Hinted;

/// Prometheus's retention when neither time nor size retention is set.
pub const DEFAULT_RETENTION_MS: i64 = 15 * 86_400_000;

/// A server's flags, by name without the leading `--`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Flags(pub BTreeMap<String, String>);

impl Flags {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim())
    }

    /// `storage.tsdb.path`, when it is an absolute path that exists on this
    /// machine (promsnap must run on the Prometheus host).
    pub fn data_dir(&self) -> Result<PathBuf> {
        match self.get("storage.tsdb.path").map(PathBuf::from) {
            Some(p) if p.is_absolute() && p.is_dir() => Ok(p),
            other => Err(Hinted::usage(
                match other {
                    Some(p) => format!(
                        "Prometheus stores its data in {p:?}, which is not an absolute path \
                         that exists on this machine"
                    ),
                    None => "Prometheus did not say where it stores its data".into(),
                },
                "pass --data-dir with Prometheus's --storage.tsdb.path as seen from this machine",
            )
            .into()),
        }
    }

    /// `config.file`, when it is an absolute path (a relative one is
    /// relative to a working directory we cannot know); else why not.
    pub fn config_file(&self) -> Result<PathBuf, String> {
        let reported = self.get("config.file").unwrap_or_default();
        let path = PathBuf::from(reported);
        if reported.is_empty() || path.is_relative() {
            return Err(format!(
                "Prometheus names its configuration file {reported:?}, not an absolute path"
            ));
        }
        Ok(path)
    }

    /// The time retention, in milliseconds; `None` when the server keeps
    /// data without a time limit (only a size limit is set).
    pub fn retention_ms(&self) -> Result<Option<i64>> {
        let duration = |key: &str| -> Result<i64> {
            match self.get(key) {
                None | Some("") => Ok(0),
                Some(v) => v
                    .parse::<Duration>()
                    .map(Duration::as_millis)
                    .with_context(|| format!("Prometheus flag {key}={v:?}")),
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
        let size_set = self.get("storage.tsdb.retention.size").is_some_and(|v| {
            let number: String = v
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            number.parse::<f64>().is_ok_and(|n| n > 0.0)
        });
        Ok((!size_set).then_some(DEFAULT_RETENTION_MS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(pairs: &[(&str, &str)]) -> Flags {
        Flags(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn retention_follows_prometheus_flag_rules() {
        let get = |pairs: &[(&str, &str)]| flags(pairs).retention_ms().unwrap();
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
        assert_eq!(
            get(&[("storage.tsdb.retention.time", "1y2w")]),
            Some((365 + 14) * 86_400_000)
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
        assert!(flags(&[("storage.tsdb.retention.time", "soon")])
            .retention_ms()
            .is_err());
    }

    #[test]
    fn the_data_dir_must_exist_here_and_the_config_file_be_absolute() {
        let dir = tempfile::tempdir().unwrap();
        let here = dir.path().to_str().unwrap();
        assert_eq!(
            flags(&[("storage.tsdb.path", here)]).data_dir().unwrap(),
            dir.path()
        );
        for bad in ["data/", "/nonexistent/promsnap-data"] {
            let err = flags(&[("storage.tsdb.path", bad)]).data_dir().unwrap_err();
            assert!(crate::error::hint_of(&err).unwrap().contains("--data-dir"));
        }
        assert!(flags(&[]).data_dir().is_err());
        assert_eq!(
            flags(&[("config.file", "/etc/prometheus/prometheus.yml")]).config_file(),
            Ok(PathBuf::from("/etc/prometheus/prometheus.yml"))
        );
        assert!(flags(&[("config.file", "prometheus.yml")])
            .config_file()
            .is_err());
    }
}
