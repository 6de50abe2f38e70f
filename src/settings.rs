//! Settings, resolved once: flags > `PROMSNAP_*` environment > config file.
//!
//! clap already merged flags and environment variables; this module reads
//! the optional TOML file and fills in whatever is still unset, then turns
//! the result into the plain option structs the lower layers take. Unknown
//! keys in the file are errors that name the key and the file, because a
//! misspelt `s3_endpiont` silently ignored would send a backup elsewhere.
//!
//! Secrets are read from files (`*_file` keys and flags) and never printed.
//! The one exception to "from a file" is `repository.access_key_id`, which is
//! an identifier, not a secret; its secret is always read from a file.
//!
//! `examples/promsnap.toml` shows every key; a test keeps it in step with the
//! structs here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::cli::{GlobalArgs, PolicyArgs, PrometheusArgs, RepoArgs};
use crate::error::Hinted;
use crate::prometheus::PrometheusOptions;
use crate::repo::retention::{Policy, PolicyError};
use crate::storage::{throttle, ChecksumMode, Location, S3Options, StaticCredentials};

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
    #[serde(default)]
    pub network: NetworkConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub lock: LockConfig,
}

/// `[network]`: retries, timeouts and bandwidth, for S3 and Prometheus.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    pub retries: Option<u32>,
    /// Duration such as "2m".
    pub timeout: Option<String>,
    /// Rate such as "50MiB/s".
    pub max_bandwidth: Option<String>,
}

/// `[metrics]`: where the metrics of every run go.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    pub file: Option<PathBuf>,
    pub pushgateway: Option<String>,
}

/// `[lock]`: the local lock that keeps runs from overlapping.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockConfig {
    pub file: Option<PathBuf>,
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
    pub access_key_id: Option<String>,
    pub access_key_id_file: Option<PathBuf>,
    pub secret_access_key_file: Option<PathBuf>,
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
    /// Prometheus's configuration file, stored with each backup.
    pub config_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupConfig {
    pub instance: Option<String>,
    pub concurrency: Option<usize>,
    pub zstd_level: Option<i32>,
    pub zstd_threads: Option<u32>,
    pub skip_head: Option<bool>,
    pub keep_local_snapshot: Option<bool>,
    /// Extra files stored with each backup.
    pub include: Option<Vec<PathBuf>>,
    pub ha_group: Option<String>,
    pub replica_labels: Option<Vec<String>>,
    /// Duration such as "12h".
    pub min_interval: Option<String>,
    /// Duration such as "10m".
    pub lock_wait: Option<String>,
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
                "examples/promsnap.toml shows every key the file accepts",
            ))
        })
    }

    /// Lets the global flags (and their `PROMSNAP_*` variables) win over the
    /// file's `[network]`, `[metrics]` and `[lock]` values, so every resolver
    /// below sees one value per setting.
    pub fn apply_global_flags(&mut self, flags: &GlobalArgs) {
        let n = &mut self.network;
        n.retries = flags.retries.or(n.retries);
        n.timeout = flags.timeout.clone().or(n.timeout.take());
        n.max_bandwidth = flags.max_bandwidth.clone().or(n.max_bandwidth.take());
        let m = &mut self.metrics;
        m.file = flags.metrics_file.clone().or(m.file.take());
        m.pushgateway = flags.pushgateway.clone().or(m.pushgateway.take());
        self.lock.file = flags.lock_file.clone().or(self.lock.file.take());
    }
}

/// Retries, timeout and bandwidth, resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Network {
    /// Retries after the first attempt of a request.
    pub retries: u32,
    /// How long one attempt may wait for an answer.
    pub timeout: Duration,
    /// Bytes per second for all transfers together.
    pub max_bandwidth: Option<u64>,
}

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

pub fn network(file: &FileConfig) -> Result<Network> {
    let n = &file.network;
    let timeout = match &n.timeout {
        None => DEFAULT_TIMEOUT,
        Some(text) => parse_timeout(text).map_err(|e| {
            Hinted::usage(
                format!("invalid timeout: {e}"),
                "give --timeout (or network.timeout) as a duration such as 30s or 2m",
            )
        })?,
    };
    let max_bandwidth = match &n.max_bandwidth {
        None => None,
        Some(text) => Some(throttle::parse_rate(text).map_err(|e| {
            Hinted::usage(e, "e.g. --max-bandwidth 50MiB/s (or network.max_bandwidth)")
        })?),
    };
    Ok(Network {
        retries: n.retries.unwrap_or(crate::retry::DEFAULT_RETRIES),
        timeout,
        max_bandwidth,
    })
}

/// A request timeout: a humantime duration of at least 100 ms (for clap and
/// the configuration file alike).
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e}"))?;
    if d < Duration::from_millis(100) {
        return Err(format!("{text:?} is too short (at least 100ms)"));
    }
    Ok(d)
}

/// The instance a run is about, for metrics: the flag, `backup.instance`,
/// else the host name (as `backup` names it).
pub fn instance_name(flag: Option<&str>, file: &FileConfig) -> String {
    flag.map(str::to_string)
        .or_else(|| file.backup.instance.clone())
        .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned())
}

/// Reads a secret from a file: the whole content without trailing newlines.
fn read_secret(path: &Path, what: &str) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow::Error::new(e).context(Hinted::usage(
            format!("could not read the {what} file {}", path.display()),
            "check the path and that this user may read it",
        ))
    })?;
    let secret = text.trim_end_matches(['\r', '\n']).to_string();
    if secret.is_empty() {
        return Err(Hinted::usage(
            format!("the {what} file {} is empty", path.display()),
            "write the secret into it (a trailing newline is fine)",
        )
        .into());
    }
    Ok(secret)
}

/// Static S3 keys from the `[repository]` section, if it names any.
fn s3_credentials(f: &RepositoryConfig) -> Result<Option<StaticCredentials>> {
    let id = match (&f.access_key_id, &f.access_key_id_file) {
        (Some(_), Some(_)) => {
            return Err(Hinted::usage(
                "repository.access_key_id and access_key_id_file are both set",
                "keep one of them",
            )
            .into())
        }
        (Some(id), None) => Some(id.trim().to_string()),
        (None, Some(path)) => Some(read_secret(path, "S3 access key id")?),
        (None, None) => None,
    };
    match (id, &f.secret_access_key_file) {
        (None, None) => Ok(None),
        (Some(access_key_id), Some(path)) => Ok(Some(StaticCredentials {
            access_key_id,
            secret_access_key: read_secret(path, "S3 secret access key")?,
        })),
        (Some(_), None) => Err(Hinted::usage(
            "repository.access_key_id is set without secret_access_key_file",
            "set repository.secret_access_key_file to a file holding the secret, or remove the key \
             id to use the AWS credential chain",
        )
        .into()),
        (None, Some(_)) => Err(Hinted::usage(
            "repository.secret_access_key_file is set without an access key id",
            "set repository.access_key_id (or access_key_id_file)",
        )
        .into()),
    }
}

/// Where the repository is and how to reach it.
#[derive(Debug)]
pub struct RepoSettings {
    pub location: Location,
    pub s3: S3Options,
    /// `--max-bandwidth`, bytes per second.
    pub max_bandwidth: Option<u64>,
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
    let net = network(file)?;
    let credentials = match location {
        Location::S3 { .. } => s3_credentials(f)?,
        Location::Local(_) => None,
    };
    let s3 = S3Options {
        endpoint: args.s3_endpoint.clone().or_else(|| f.s3_endpoint.clone()),
        region: args.s3_region.clone().or_else(|| f.s3_region.clone()),
        path_style: args.s3_path_style.or(f.s3_path_style).unwrap_or(false),
        checksums: args.s3_checksums.or(f.s3_checksums).unwrap_or_default(),
        credentials,
        retries: net.retries,
        timeout: net.timeout,
        ..S3Options::default()
    };
    Ok(RepoSettings {
        location,
        s3,
        max_bandwidth: net.max_bandwidth,
    })
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
    let net = network(file)?;
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
        timeout: Some(net.timeout),
        retries: net.retries,
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

    const EXAMPLE: &str = include_str!("../examples/promsnap.toml");

    /// `examples/promsnap.toml` parses as it is, and with every commented
    /// `# key = value` line switched on it sets every key there is: a key
    /// added here but not documented there fails this test.
    #[test]
    fn the_example_configuration_parses_and_shows_every_key() {
        parse(EXAMPLE).unwrap();
        let everything: String = EXAMPLE
            .lines()
            .map(|line| {
                let setting = line.strip_prefix("# ").filter(|rest| {
                    rest.split_once(" = ").is_some_and(|(key, _)| {
                        !key.is_empty()
                            && key
                                .bytes()
                                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                    })
                });
                format!("{}\n", setting.unwrap_or(line))
            })
            .collect();
        let config = parse(&everything).unwrap();
        let shown = format!("{config:#?}");
        let missing: Vec<&str> = shown
            .lines()
            .filter(|l| l.trim_end().ends_with(": None,"))
            .collect();
        assert!(
            missing.is_empty(),
            "keys missing from the example: {missing:?}"
        );
    }

    #[test]
    fn s3_keys_come_from_the_file_and_the_secret_from_its_own_file() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cr3t-value\n").unwrap();
        let args = RepoArgs {
            repo: Some("s3://b/p".into()),
            ..RepoArgs::default()
        };
        let config = |body: &str| parse(&format!("[repository]\n{body}")).unwrap();
        let file = config(&format!(
            "access_key_id = \"GK1\"\nsecret_access_key_file = {:?}\n",
            secret
        ));
        let s = repo_settings(&args, &file).unwrap();
        let creds = s.s3.credentials.clone().unwrap();
        assert_eq!(creds.access_key_id, "GK1");
        assert_eq!(creds.secret_access_key, "s3cr3t-value");
        assert!(
            !format!("{s:?}").contains("s3cr3t"),
            "Debug shows the secret"
        );
        // Half a key pair, or both forms of the id, is a usage error.
        for body in [
            "access_key_id = \"GK1\"\n".to_string(),
            format!("secret_access_key_file = {secret:?}\n"),
            format!("access_key_id = \"a\"\naccess_key_id_file = {secret:?}\nsecret_access_key_file = {secret:?}\n"),
        ] {
            let err = repo_settings(&args, &config(&body)).unwrap_err();
            assert_eq!(
                crate::error::status_of(&err),
                crate::error::ExitStatus::Usage,
                "{body}"
            );
        }
        // An unreadable secret file names the file, not the secret.
        let file = config("access_key_id = \"GK1\"\nsecret_access_key_file = \"/nonexistent/x\"\n");
        let err = repo_settings(&args, &file).unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/x"));
        // Without keys the AWS chain is used.
        let s = repo_settings(&args, &FileConfig::default()).unwrap();
        assert!(s.s3.credentials.is_none());
    }

    #[test]
    fn network_settings_flags_win_and_bad_values_are_usage_errors() {
        let mut file =
            parse("[network]\nretries = 2\ntimeout = \"30s\"\nmax_bandwidth = \"1MiB/s\"\n")
                .unwrap();
        let n = network(&file).unwrap();
        assert_eq!(n.retries, 2);
        assert_eq!(n.timeout, Duration::from_secs(30));
        assert_eq!(n.max_bandwidth, Some(1 << 20));
        let flags = GlobalArgs {
            config: None,
            quiet: false,
            metrics_file: None,
            pushgateway: None,
            retries: Some(0),
            timeout: None,
            max_bandwidth: Some("2MiB/s".into()),
            lock_file: None,
        };
        file.apply_global_flags(&flags);
        let n = network(&file).unwrap();
        assert_eq!((n.retries, n.max_bandwidth), (0, Some(2 << 20)));
        assert_eq!(n.timeout, Duration::from_secs(30));
        let defaults = network(&FileConfig::default()).unwrap();
        assert_eq!(defaults.retries, crate::retry::DEFAULT_RETRIES);
        assert_eq!(defaults.max_bandwidth, None);
        for bad in [
            "[network]\ntimeout = \"soon\"\n",
            "[network]\nmax_bandwidth = \"fast\"\n",
        ] {
            let err = network(&parse(bad).unwrap()).unwrap_err();
            assert_eq!(
                crate::error::status_of(&err),
                crate::error::ExitStatus::Usage
            );
        }
    }
}
