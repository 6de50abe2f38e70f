//! Settings, resolved once: flags > `PROMSNAP_*` environment > config file.
//!
//! clap already merged flags and environment variables; this module reads
//! the optional TOML file and fills in whatever is still unset, then turns
//! the result into the plain option structs the lower layers take. Unknown
//! keys in the file are errors that name the key and the file, because a
//! misspelt `s3_endpiont` silently ignored would send a backup elsewhere.
//!
//! Secrets are read from files (`*_file` keys and flags) and never printed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::cli::{PolicyArgs, PrometheusArgs, RepoArgs};
use crate::error::Hinted;
use crate::prometheus::PrometheusOptions;
use crate::repo::retention::{Policy, PolicyError};
use crate::storage::{ChecksumMode, Location, S3Options};

/// The configuration file, as written by the user.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub repository: RepositoryConfig,
    #[serde(default)]
    pub prometheus: PrometheusConfig,
    #[serde(default)]
    pub backup: BackupConfig,
    #[serde(default)]
    pub prune: PruneConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneConfig {
    pub keep_last: Option<u32>,
    pub keep_hourly: Option<u32>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
    pub keep_yearly: Option<u32>,
    /// Calendar duration such as "30d" or "1y6m".
    pub keep_within: Option<String>,
    /// IANA zone name, e.g. "Europe/Berlin".
    pub timezone: Option<String>,
    /// Duration such as "24h".
    pub grace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryConfig {
    pub url: Option<String>,
    pub s3_endpoint: Option<String>,
    pub s3_region: Option<String>,
    pub s3_path_style: Option<bool>,
    pub s3_checksums: Option<ChecksumMode>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusConfig {
    pub url: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub bearer_token_file: Option<PathBuf>,
    pub ca_cert: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupConfig {
    pub instance: Option<String>,
    pub concurrency: Option<usize>,
    pub zstd_level: Option<i32>,
    pub zstd_threads: Option<u32>,
    pub skip_head: Option<bool>,
}

impl FileConfig {
    /// Reads the file named by `--config` / `PROMSNAP_CONFIG`, if any.
    pub fn load(path: Option<&Path>) -> Result<FileConfig> {
        let Some(path) = path else {
            return Ok(FileConfig::default());
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::Error::new(e).context(Hinted::usage(
                format!("could not read the configuration file {}", path.display()),
                "check --config / PROMSNAP_CONFIG",
            ))
        })?;
        toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!("{}", e.to_string().trim()).context(Hinted::usage(
                format!("invalid configuration file {}", path.display()),
                "see the README for every key the file accepts",
            ))
        })
    }
}

/// Where the repository is and how to reach it.
#[derive(Debug)]
pub struct RepoSettings {
    pub location: Location,
    pub s3: S3Options,
}

pub fn repo_settings(args: &RepoArgs, file: &FileConfig) -> Result<RepoSettings> {
    let f = &file.repository;
    let Some(url) = args.repo.clone().or_else(|| f.url.clone()) else {
        return Err(Hinted::usage(
            "no repository given",
            "pass --repo s3://BUCKET/PREFIX or --repo /path/to/dir, set PROMSNAP_REPO, or set \
             repository.url in the configuration file",
        )
        .into());
    };
    let location = Location::parse(&url)?;
    let s3 = S3Options {
        endpoint: args.s3_endpoint.clone().or_else(|| f.s3_endpoint.clone()),
        region: args.s3_region.clone().or_else(|| f.s3_region.clone()),
        path_style: args.s3_path_style.or(f.s3_path_style).unwrap_or(false),
        checksums: args.s3_checksums.or(f.s3_checksums).unwrap_or_default(),
        ..S3Options::default()
    };
    Ok(RepoSettings { location, s3 })
}

/// The retention policy: flags, then the file's [prune] section, per rule.
pub fn policy(args: &PolicyArgs, file: &FileConfig) -> Result<Policy> {
    let f = &file.prune;
    let bad = |key: &str, e: String| {
        Hinted::usage(
            format!("invalid prune.{key} in the configuration file: {e}"),
            "see the README",
        )
    };
    let within = match (&args.keep_within, &f.keep_within) {
        (Some(d), _) => Some(*d),
        (None, Some(text)) => Some(
            text.parse()
                .map_err(|e: PolicyError| bad("keep_within", e.to_string()))?,
        ),
        (None, None) => None,
    };
    let timezone = match (&args.timezone, &f.timezone) {
        (Some(tz), _) => *tz,
        (None, Some(text)) => text
            .parse()
            .map_err(|e: chrono_tz::ParseError| bad("timezone", e.to_string()))?,
        (None, None) => chrono_tz::Tz::UTC,
    };
    Ok(Policy {
        keep_last: args.keep_last.or(f.keep_last),
        keep_hourly: args.keep_hourly.or(f.keep_hourly),
        keep_daily: args.keep_daily.or(f.keep_daily),
        keep_weekly: args.keep_weekly.or(f.keep_weekly),
        keep_monthly: args.keep_monthly.or(f.keep_monthly),
        keep_yearly: args.keep_yearly.or(f.keep_yearly),
        keep_within: within,
        timezone,
    })
}

/// The orphan grace period: flag, then `prune.grace`, else 24 hours.
pub fn grace(flag: Option<Duration>, file: &FileConfig) -> Result<Duration> {
    match (flag, &file.prune.grace) {
        (Some(d), _) => Ok(d),
        (None, Some(text)) => humantime::parse_duration(text).map_err(|e| {
            Hinted::usage(
                format!("invalid prune.grace in the configuration file: {e}"),
                "e.g. grace = \"24h\"",
            )
            .into()
        }),
        (None, None) => Ok(Duration::from_secs(24 * 3600)),
    }
}

/// Every Prometheus URL to try, in order (never empty).
pub fn prometheus_urls(args: &PrometheusArgs, file: &FileConfig) -> Vec<String> {
    if !args.prometheus_url.is_empty() {
        return args.prometheus_url.clone();
    }
    vec![file
        .prometheus
        .url
        .clone()
        .unwrap_or_else(|| "http://localhost:9090".into())]
}

pub fn prometheus_options(args: &PrometheusArgs, file: &FileConfig) -> Result<PrometheusOptions> {
    let f = &file.prometheus;
    let secret =
        |flag: &Option<PathBuf>, key: &Option<PathBuf>, what: &str| -> Result<Option<String>> {
            match flag.as_ref().or(key.as_ref()) {
                None => Ok(None),
                Some(path) => {
                    let text = std::fs::read_to_string(path).with_context(|| {
                        format!("could not read the {what} file {}", path.display())
                    })?;
                    Ok(Some(text.trim_end_matches(['\r', '\n']).to_string()))
                }
            }
        };
    Ok(PrometheusOptions {
        url: prometheus_urls(args, file).swap_remove(0),
        username: args
            .prometheus_username
            .clone()
            .or_else(|| f.username.clone()),
        password: secret(&args.prometheus_password_file, &f.password_file, "password")?,
        bearer_token: secret(
            &args.prometheus_bearer_token_file,
            &f.bearer_token_file,
            "bearer token",
        )?,
        ca_cert: args
            .prometheus_ca_cert
            .clone()
            .or_else(|| f.ca_cert.clone()),
        timeout: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> Result<FileConfig> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("promsnap.toml");
        std::fs::write(&path, toml).unwrap();
        FileConfig::load(Some(&path))
    }

    #[test]
    fn flags_win_over_the_file() {
        let file = parse(
            "[repository]\nurl = \"s3://from-file/x\"\ns3_region = \"eu\"\ns3_path_style = true\n",
        )
        .unwrap();
        let args = RepoArgs {
            repo: Some("/from/flag".into()),
            ..RepoArgs::default()
        };
        let s = repo_settings(&args, &file).unwrap();
        assert_eq!(s.location, Location::Local("/from/flag".into()));
        assert_eq!(s.s3.region.as_deref(), Some("eu"));
        assert!(s.s3.path_style);
        let s = repo_settings(&RepoArgs::default(), &file).unwrap();
        assert!(matches!(s.location, Location::S3 { ref bucket, .. } if bucket == "from-file"));
    }

    #[test]
    fn unknown_keys_name_the_key_and_the_file() {
        let err = parse("[repository]\ns3_endpiont = \"http://x\"\n").unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("s3_endpiont"), "{text}");
        assert!(text.contains("promsnap.toml"), "{text}");
    }

    #[test]
    fn a_missing_repository_is_a_usage_error() {
        let err = repo_settings(&RepoArgs::default(), &FileConfig::default()).unwrap_err();
        assert_eq!(
            crate::error::status_of(&err),
            crate::error::ExitStatus::Usage
        );
    }
}
