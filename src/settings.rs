//! Settings, resolved once: flags > `PROMSNAP_*` environment > config file
//! > defaults.
//!
//! clap already merged flags and environment variables ([`crate::cli`]);
//! this module reads the optional TOML file and turns the three sources into
//! one resolved struct per command ([`CommandSettings`]), as uv's
//! `settings.rs` does. Commands receive only that struct: none of them looks
//! at a flag, a variable or the file again, and every default is chosen
//! here. Values are typed in both sources (a duration is a
//! [`crate::duration::Duration`] whether it came from `--grace` or from
//! `prune.grace`), so one parser and one message serve both.
//!
//! Unknown keys in the file are errors that name the key and the file,
//! because a misspelt `s3_endpiont` silently ignored would send a backup
//! elsewhere.
//!
//! Secrets are read from files (`*_file` keys and flags) and never printed.
//! The one exception to "from a file" is `repository.access_key_id`, which is
//! an identifier, not a secret; its secret is always read from a file.
//!
//! Paths are made absolute here, against the working directory, whether
//! they came from a flag or the file: every path promsnap prints (a data
//! directory to start Prometheus on, where old content was moved) can then
//! be pasted as it is, from any directory.
//!
//! `examples/promsnap.toml` shows every key; a test keeps it in step with the
//! structs here.

use std::path::{Path, PathBuf};

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::archive::{self, PackOptions};
use crate::cli::{
    BackupArgs, Cli, Command, ListArgs, LockArgs, LogFormat, MetricsArgs, NetworkArgs,
    PrometheusArgs, PruneArgs, RepoArgs, RestoreArgs, ServeArgs, UnlockArgs, VerifyArgs,
    VerifyLevel,
};
use crate::duration::Duration;
use crate::error::Hinted;
use crate::prometheus::PrometheusOptions;
use crate::repo::retention::Policy;
use crate::repo::selection::TimeRange;
use crate::repo::verify::{Level, Subset};
use crate::run_lock;
use crate::storage::throttle::Rate;
use crate::storage::{ChecksumMode, Location, S3Options, StaticCredentials};

/// The configuration file, as written by the user.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub repository: RepositoryConfig,
    #[serde(default)]
    pub prometheus: PrometheusConfig,
    #[serde(default)]
    pub backup: BackupConfig,
    /// `[prune]`: the same settings as `prune`'s flags.
    #[serde(default)]
    pub prune: Policy,
    #[serde(default)]
    pub network: NetworkConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub lock: LockConfig,
    #[serde(default)]
    pub serve: ServeConfig,
}

/// `[serve]`: `promsnap serve`'s schedule and service.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    pub schedule: Option<String>,
    pub random_delay: Option<Duration>,
    pub listen_address: Option<String>,
    /// Prune after each successful backup (the `[prune]` policy).
    pub prune: Option<bool>,
    pub verify: Option<VerifyLevel>,
    pub shutdown_grace: Option<Duration>,
    pub log_format: Option<LogFormat>,
    pub trigger_token_file: Option<PathBuf>,
}

/// `[network]`: retries, timeouts and bandwidth, for S3 and Prometheus.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    pub retries: Option<u32>,
    pub timeout: Option<Duration>,
    pub max_bandwidth: Option<Rate>,
}

/// `[metrics]`: where the metrics of every run go.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    pub file: Option<PathBuf>,
    pub pushgateway: Option<String>,
}

/// `[lock]`: the local lock that keeps runs from overlapping.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockConfig {
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryConfig {
    pub url: Option<String>,
    /// `backup` creates the repository if there is none yet.
    pub init: Option<bool>,
    pub s3_endpoint: Option<String>,
    pub s3_region: Option<String>,
    pub s3_path_style: Option<bool>,
    pub s3_checksums: Option<ChecksumMode>,
    pub access_key_id: Option<String>,
    pub access_key_id_file: Option<PathBuf>,
    pub secret_access_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
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

#[derive(Debug, Clone, Default, Deserialize)]
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
    pub min_interval: Option<Duration>,
    pub lock_wait: Option<Duration>,
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
}

// Defaults, all in one place.

/// How long one request may wait for an answer.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
/// How long a backup or prune waits for the repository lock.
const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(600);
/// With --ha-group: how young a group snapshot makes the other replicas skip.
const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(12 * 3600);
/// How long a backup waits for a Prometheus that answers /-/ready with 503.
const DEFAULT_WAIT_READY: Duration = Duration::from_secs(300);
/// Blocks a backup packs and uploads at once.
const DEFAULT_BACKUP_CONCURRENCY: usize = 2;
/// Objects the download levels of verify check at once (they wait on the network).
const DEFAULT_VERIFY_CONCURRENCY: usize = 4;
/// Size of the chunks handed from the compressor to the uploader.
const CHUNK_SIZE: usize = 4 * 1024 * 1024;
/// Where `promsnap serve` listens: outside 9100-9999, which Prometheus's
/// default port allocations page hands out completely, and 9090-9099
/// (Prometheus, Pushgateway, Alertmanager), and clear of the defaults of
/// VictoriaMetrics, Thanos, Loki and Grafana.
pub const DEFAULT_LISTEN_ADDRESS: &str = "0.0.0.0:8431";
/// How long a running backup may finish after SIGTERM.
const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// The replica labels `--ha-group auto` leaves out.
const DEFAULT_REPLICA_LABELS: [&str; 2] = ["replica", "prometheus_replica"];

/// Everything one run needs, resolved.
#[derive(Debug)]
pub struct Settings {
    pub quiet: bool,
    pub network: Network,
    pub metrics: MetricsSettings,
    /// The local lock this run takes (`run_lock`), for the commands that
    /// take one: a backup locks its Prometheus, prune and verify their
    /// repository.
    pub lock_file: Option<PathBuf>,
    /// The instance this run is about, as its metrics label it.
    pub instance: String,
    pub command: CommandSettings,
}

/// Retries, timeout and bandwidth, for every connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Network {
    /// Retries after the first attempt of a request.
    pub retries: u32,
    /// How long one attempt may wait for an answer.
    pub timeout: std::time::Duration,
    /// Bytes per second for all transfers together.
    pub max_bandwidth: Option<u64>,
}

/// Where the metrics of the run go.
#[derive(Debug, Clone, Default)]
pub struct MetricsSettings {
    pub file: Option<PathBuf>,
    pub pushgateway: Option<String>,
}

/// One command's settings.
#[derive(Debug)]
pub enum CommandSettings {
    Backup(Box<BackupSettings>),
    List(ListSettings),
    Restore(Box<RestoreSettings>),
    Prune(PruneSettings),
    Verify(VerifySettings),
    CheckDir(CheckDirSettings),
    Unlock(UnlockSettings),
    Init(InitSettings),
    Serve(Box<ServeSettings>),
    Completions(clap_complete::Shell),
    Man(Option<String>),
}

impl CommandSettings {
    /// The command's name in metrics, for the commands that write them.
    pub fn metrics_name(&self) -> Option<&'static str> {
        match self {
            CommandSettings::Backup(_) => Some("backup"),
            CommandSettings::Prune(_) => Some("prune"),
            CommandSettings::Verify(_) => Some("verify"),
            CommandSettings::Restore(_) => Some("restore"),
            _ => None,
        }
    }
}

/// Where the repository is and how to reach it.
#[derive(Debug, Clone)]
pub struct RepoSettings {
    /// As given (`--repo`), for the lock's identity.
    pub url: String,
    pub location: Location,
    pub s3: S3Options,
    /// `--max-bandwidth`, bytes per second.
    pub max_bandwidth: Option<u64>,
}

/// The Prometheus servers a command talks to.
#[derive(Debug, Clone)]
pub struct PrometheusSettings {
    /// Every URL to try, in order (never empty).
    pub urls: Vec<String>,
    /// How to reach and authenticate to them; its `url` is the first.
    pub client: PrometheusOptions,
}

#[derive(Debug)]
pub struct BackupSettings {
    pub repo: RepoSettings,
    pub source: BackupSource,
    /// The instance the snapshot is stored under.
    pub instance: String,
    /// Blocks packed and uploaded at the same time.
    pub concurrency: usize,
    pub pack: PackOptions,
    /// A configuration file named explicitly (it must be readable).
    pub prometheus_config: Option<PathBuf>,
    /// Further files stored with the snapshot (they must be readable).
    pub include: Vec<PathBuf>,
    pub ha: Option<HaSettings>,
    /// The snapshot's time: `--time`, else now.
    pub time: DateTime<Utc>,
    /// `--prune`: the configuration file's policy (never empty).
    pub prune: Option<Policy>,
    pub lock_wait: std::time::Duration,
    /// Create the repository when the location holds none.
    pub init: bool,
    /// The format new blocks are stored in (2; 1 for archives).
    pub format: u32,
    pub json: bool,
}

/// What a backup reads.
#[derive(Debug)]
pub enum BackupSource {
    /// A snapshot taken through the admin API.
    Api(ApiSource),
    /// `--from-dir`: a snapshot or a stopped Prometheus's data directory.
    Dir(PathBuf),
}

#[derive(Debug)]
pub struct ApiSource {
    pub prometheus: PrometheusSettings,
    /// Its data directory on this machine, when given (else asked).
    pub data_dir: Option<PathBuf>,
    pub wait_ready: std::time::Duration,
    pub skip_head: bool,
    pub keep_local_snapshot: bool,
}

/// Prometheus high availability: one snapshot per group and interval.
#[derive(Debug)]
pub struct HaSettings {
    pub group: HaGroup,
    /// External labels that tell replicas apart (for [`HaGroup::Auto`]).
    pub replica_labels: Vec<String>,
    pub min_interval: std::time::Duration,
}

#[derive(Debug, PartialEq, Eq)]
pub enum HaGroup {
    Named(String),
    /// Named after the external labels minus the replica labels.
    Auto,
}

/// `promsnap serve`: what it runs when, and the service around it.
#[derive(Debug)]
pub struct ServeSettings {
    pub schedule: crate::schedule::Schedule,
    pub random_delay: std::time::Duration,
    pub listen_address: String,
    pub verify: Option<Level>,
    pub shutdown_grace: std::time::Duration,
    pub log_format: LogFormat,
    /// The bearer token of POST /api/v1/backup; `None`: the endpoint is off.
    pub trigger_token: Option<String>,
    /// Each run resolves its backup settings again (a fresh time, secret
    /// files read again): see [`BackupPlan::resolve`].
    pub plan: BackupPlan,
    /// The instance the first run resolved (for metrics before any run).
    pub instance: String,
    pub metrics: MetricsSettings,
    pub network: Network,
    /// The local lock each run takes (the one `backup` takes).
    pub lock_file: Option<PathBuf>,
}

/// The backup `serve` runs, kept as its sources so that each run resolves
/// it afresh: the snapshot's time is now, and rotated secrets are read.
#[derive(Debug)]
pub struct BackupPlan {
    args: BackupArgs,
    file: FileConfig,
    network: Network,
}

impl BackupPlan {
    /// The settings of one run, as `backup` would resolve them now.
    pub fn resolve(&self) -> Result<BackupSettings> {
        let r = Resolver {
            file: &self.file,
            network: self.network,
        };
        r.backup(self.args.clone())
    }
}

#[derive(Debug)]
pub struct ListSettings {
    pub repo: RepoSettings,
    pub instance: Option<String>,
    pub json: bool,
}

#[derive(Debug)]
pub struct RestoreSettings {
    pub repo: RepoSettings,
    /// An id, a unique id prefix, or `latest`.
    pub snapshot: String,
    pub instance: Option<String>,
    /// Where the blocks go; `None` with `--no-data`.
    pub data_dir: Option<PathBuf>,
    pub force: bool,
    /// `--if-empty`: leave a directory that holds blocks alone.
    pub if_empty: bool,
    /// `--from`/`--to`, resolved against one `now`.
    pub range: TimeRange,
    pub merge: bool,
    pub config_to: Option<PathBuf>,
    /// With `--merge`: the server whose retention to check, when one is named.
    pub prometheus: Option<PrometheusSettings>,
    pub concurrency: usize,
    pub json: bool,
}

#[derive(Debug)]
pub struct PruneSettings {
    pub repo: RepoSettings,
    /// Delete damaged manifests instead of keeping every object for them.
    pub forget_damaged: bool,
    /// Flags over the file's `[prune]`; never empty.
    pub policy: Policy,
    pub instance: Option<String>,
    pub dry_run: bool,
    /// Packs with a larger unused share are repacked.
    pub max_unused: crate::repo::repack::MaxUnused,
    pub lock_wait: std::time::Duration,
    pub json: bool,
}

#[derive(Debug)]
pub struct VerifySettings {
    pub repo: RepoSettings,
    /// One snapshot (id, prefix or `latest`), or every one.
    pub snapshot: Option<String>,
    pub instance: Option<String>,
    pub level: Level,
    pub subset: Option<Subset>,
    /// Objects checked at the same time.
    pub concurrency: usize,
    pub restore_test: Option<RestoreTestSettings>,
    pub scratch: PathBuf,
    pub json: bool,
}

#[derive(Debug)]
pub struct RestoreTestSettings {
    /// The promtool that must load the restored blocks; `None` only with
    /// `--no-promtool`.
    pub promtool: Option<PathBuf>,
    /// Blocks restored at the same time.
    pub concurrency: usize,
}

#[derive(Debug)]
pub struct CheckDirSettings {
    pub dir: PathBuf,
    pub json: bool,
}

#[derive(Debug)]
pub struct InitSettings {
    pub repo: RepoSettings,
    pub json: bool,
}

#[derive(Debug)]
pub struct UnlockSettings {
    pub repo: RepoSettings,
    pub all: bool,
}

impl Settings {
    /// Resolves the command line and the configuration file it names.
    pub fn resolve(cli: Cli) -> Result<Settings> {
        let file = FileConfig::load(cli.global.config.as_deref())?;
        Settings::from_sources(cli, &file)
    }

    /// Resolves the command line against an already loaded file.
    pub fn from_sources(cli: Cli, file: &FileConfig) -> Result<Settings> {
        let (net, m, lock) = shared_args(&cli.command);
        let network = network(&net, file)?;
        let metrics = MetricsSettings {
            file: m
                .metrics_file
                .or_else(|| file.metrics.file.clone())
                .map(absolute),
            pushgateway: m.pushgateway.or_else(|| file.metrics.pushgateway.clone()),
        };
        let lock_override = lock
            .lock_file
            .or_else(|| file.lock.file.clone())
            .map(absolute);
        let r = Resolver { file, network };
        let command = match cli.command {
            Command::Backup(a) => CommandSettings::Backup(Box::new(r.backup(a)?)),
            Command::List(a) => CommandSettings::List(r.list(a)?),
            Command::Restore(a) => CommandSettings::Restore(Box::new(r.restore(a)?)),
            Command::Prune(a) => CommandSettings::Prune(r.prune(a)?),
            Command::Verify(a) => CommandSettings::Verify(r.verify(a)?),
            Command::CheckDir(a) => CommandSettings::CheckDir(CheckDirSettings {
                dir: absolute(a.dir),
                json: a.json,
            }),
            Command::Unlock(a) => CommandSettings::Unlock(r.unlock(a)?),
            Command::Init(a) => CommandSettings::Init(InitSettings {
                repo: r.repo(a.repo)?,
                json: a.json,
            }),
            Command::Serve(a) => {
                CommandSettings::Serve(Box::new(r.serve(a, lock_override.clone())?))
            }
            Command::Completions { shell } => CommandSettings::Completions(shell),
            Command::Man { command } => CommandSettings::Man(command),
        };
        let instance = match &command {
            CommandSettings::Backup(b) => b.instance.clone(),
            CommandSettings::Prune(PruneSettings { instance, .. })
            | CommandSettings::Verify(VerifySettings { instance, .. })
            | CommandSettings::List(ListSettings { instance, .. }) => {
                default_instance(instance.clone(), file)
            }
            CommandSettings::Restore(r) => default_instance(r.instance.clone(), file),
            CommandSettings::Serve(s) => s.instance.clone(),
            _ => default_instance(None, file),
        };
        let lock_file = lock_file(&command, lock_override);
        let command = match command {
            CommandSettings::Serve(mut s) => {
                s.metrics = metrics.clone();
                CommandSettings::Serve(s)
            }
            other => other,
        };
        Ok(Settings {
            quiet: cli.global.quiet,
            network,
            metrics,
            lock_file,
            instance,
            command,
        })
    }
}

/// The instance a run is about when it names none: `backup.instance`, else
/// the host name (as `backup` names it).
fn default_instance(flag: Option<String>, file: &FileConfig) -> String {
    flag.or_else(|| file.backup.instance.clone())
        .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned())
}

/// The network, metrics and lock options of the command, for those that
/// take them (the others get none, and only the file's settings apply).
fn shared_args(command: &Command) -> (NetworkArgs, MetricsArgs, LockArgs) {
    let none = (MetricsArgs::default(), LockArgs::default());
    let (network, (metrics, lock)) = match command {
        Command::Backup(a) => (&a.network, (a.metrics.clone(), a.lock.clone())),
        Command::Serve(a) => (
            &a.backup.network,
            (a.backup.metrics.clone(), a.backup.lock.clone()),
        ),
        Command::Prune(a) => (&a.network, (a.metrics.clone(), a.lock.clone())),
        Command::Verify(a) => (&a.network, (a.metrics.clone(), a.lock.clone())),
        Command::Restore(a) => (&a.network, (a.metrics.clone(), LockArgs::default())),
        Command::List(a) => (&a.network, none),
        Command::Init(a) => (&a.network, none),
        Command::Unlock(a) => (&a.network, none),
        Command::CheckDir(_) | Command::Completions { .. } | Command::Man { .. } => {
            return Default::default()
        }
    };
    (network.clone(), metrics, lock)
}

/// `path` made absolute against the working directory (without resolving
/// symbolic links), so that every path promsnap prints can be pasted as it
/// is, whatever directory the user gave it from.
fn absolute(path: PathBuf) -> PathBuf {
    match path.is_absolute() {
        true => path,
        false => std::path::absolute(&path).unwrap_or(path),
    }
}

fn network(flags: &NetworkArgs, file: &FileConfig) -> Result<Network> {
    let n = &file.network;
    let timeout = flags
        .timeout
        .or(n.timeout)
        .map_or(DEFAULT_TIMEOUT, Duration::std);
    if timeout < std::time::Duration::from_millis(100) {
        return Err(Hinted::usage(
            format!("the timeout {} is too short", Duration(timeout)),
            "give --timeout (or network.timeout) of at least 100ms, e.g. 30s or 2m",
        )
        .into());
    }
    Ok(Network {
        retries: flags
            .retries
            .or(n.retries)
            .unwrap_or(crate::retry::DEFAULT_RETRIES),
        timeout,
        max_bandwidth: flags.max_bandwidth.or(n.max_bandwidth).map(|r| r.0),
    })
}

/// Resolves one command's flags against the file and the network settings.
struct Resolver<'a> {
    file: &'a FileConfig,
    network: Network,
}

impl Resolver<'_> {
    fn repo(&self, args: RepoArgs) -> Result<RepoSettings> {
        let f = &self.file.repository;
        let Some(url) = args.repo.or_else(|| f.url.clone()) else {
            return Err(Hinted::usage(
                "no repository given",
                "pass --repo s3://BUCKET/PREFIX or --repo /path/to/dir, set PROMSNAP_REPO, or set \
                 repository.url in the configuration file",
            )
            .into());
        };
        let location = match Location::parse(&url)? {
            Location::Local(path) => Location::Local(absolute(path)),
            s3 => s3,
        };
        let credentials = match location {
            Location::S3 { .. } => s3_credentials(f)?,
            Location::Local(_) => None,
        };
        let s3 = S3Options {
            endpoint: args.s3_endpoint.or_else(|| f.s3_endpoint.clone()),
            region: args.s3_region.or_else(|| f.s3_region.clone()),
            path_style: args.s3_path_style.or(f.s3_path_style).unwrap_or(false),
            checksums: args.s3_checksums.or(f.s3_checksums).unwrap_or_default(),
            credentials,
            retries: self.network.retries,
            timeout: self.network.timeout,
            ..S3Options::default()
        };
        Ok(RepoSettings {
            url,
            location,
            s3,
            max_bandwidth: self.network.max_bandwidth,
        })
    }

    fn prometheus(&self, args: PrometheusArgs) -> Result<PrometheusSettings> {
        let f = &self.file.prometheus;
        let urls = if args.prometheus_url.is_empty() {
            vec![f
                .url
                .clone()
                .unwrap_or_else(|| "http://localhost:9090".into())]
        } else {
            args.prometheus_url
        };
        let secret = |flag: Option<PathBuf>, key: &Option<PathBuf>, what| {
            flag.or_else(|| key.clone())
                .map(|path| read_secret(&path, what))
                .transpose()
        };
        let client = PrometheusOptions {
            url: urls[0].clone(),
            username: args.prometheus_username.or_else(|| f.username.clone()),
            password: secret(
                args.prometheus_password_file,
                &f.password_file,
                "Prometheus password",
            )?,
            bearer_token: secret(
                args.prometheus_bearer_token_file,
                &f.bearer_token_file,
                "Prometheus bearer token",
            )?,
            ca_cert: args.prometheus_ca_cert.or_else(|| f.ca_cert.clone()),
            timeout: Some(self.network.timeout),
            retries: self.network.retries,
        };
        Ok(PrometheusSettings { urls, client })
    }

    fn backup(&self, a: BackupArgs) -> Result<BackupSettings> {
        let (b, p) = (&self.file.backup, &self.file.prometheus);
        let instance = default_instance(a.instance, self.file);
        if instance.is_empty() || instance.len() > 128 || instance.chars().any(char::is_control) {
            return Err(Hinted::usage(
                format!("invalid instance name {instance:?}"),
                "use --instance with a short printable name, e.g. prometheus-eu1-a",
            )
            .into());
        }
        let source = match a.from_dir {
            Some(dir) => BackupSource::Dir(absolute(dir)),
            None => BackupSource::Api(ApiSource {
                prometheus: self.prometheus(a.prometheus)?,
                data_dir: a.data_dir.or_else(|| p.data_dir.clone()).map(absolute),
                wait_ready: a.wait_ready.unwrap_or(DEFAULT_WAIT_READY).std(),
                skip_head: a.skip_head || b.skip_head.unwrap_or(false),
                keep_local_snapshot: a.keep_local_snapshot
                    || b.keep_local_snapshot.unwrap_or(false),
            }),
        };
        let level = a
            .zstd_level
            .or(b.zstd_level)
            .unwrap_or(archive::DEFAULT_LEVEL);
        if !(1..=19).contains(&level) {
            return Err(Hinted::usage(
                format!("zstd level {level} is out of range"),
                "give --zstd-level (or backup.zstd_level) from 1 to 19",
            )
            .into());
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        let ha = self.ha(a.ha_group, a.replica_label, a.min_interval, &source)?;
        let prune = match a.prune {
            false => None,
            true => Some(non_empty_policy(
                self.file.prune,
                "--prune needs a retention policy in the configuration file",
                "add a [prune] section with keep_daily = 7 or similar (see the README), or run \
                 `promsnap prune` with --keep-* flags",
            )?),
        };
        Ok(BackupSettings {
            repo: self.repo(a.repo)?,
            source,
            instance,
            concurrency: a
                .concurrency
                .or(b.concurrency)
                .unwrap_or(DEFAULT_BACKUP_CONCURRENCY)
                .max(1),
            pack: PackOptions {
                level,
                threads: a.zstd_threads.or(b.zstd_threads).unwrap_or(cpus),
                chunk_size: CHUNK_SIZE,
            },
            prometheus_config: a.prometheus_config.or_else(|| p.config_file.clone()),
            include: match a.include.is_empty() {
                true => b.include.clone().unwrap_or_default(),
                false => a.include,
            },
            ha,
            time: a.time.map_or_else(Utc::now, |t| t.with_timezone(&Utc)),
            prune,
            lock_wait: a
                .lock_wait
                .or(b.lock_wait)
                .unwrap_or(DEFAULT_LOCK_WAIT)
                .std(),
            init: a.init.or(self.file.repository.init).unwrap_or(false),
            format: a
                .repository_format
                .unwrap_or(crate::repo::manifest::FORMAT_VERSION),
            json: a.json,
        })
    }

    fn serve(&self, a: ServeArgs, lock_override: Option<PathBuf>) -> Result<ServeSettings> {
        let f = &self.file.serve;
        let Some(text) = a.schedule.or_else(|| f.schedule.clone()) else {
            return Err(Hinted::usage(
                "serve needs a schedule",
                "pass --schedule '15 3 * * *' (five cron fields, or six with seconds first), or \
                 set schedule in the [serve] section of the configuration file",
            )
            .into());
        };
        let schedule = crate::schedule::Schedule::parse(&text)?;
        let mut args = a.backup;
        if args.time.is_some() || args.json || args.from_dir.is_some() {
            return Err(Hinted::usage(
                "serve takes new snapshots of a running Prometheus: --time, --json and \
                 --from-dir are for one-shot backups",
                "leave them out, or run `promsnap backup` with them",
            )
            .into());
        }
        args.prune = args.prune || f.prune.unwrap_or(false);
        let plan = BackupPlan {
            args,
            file: self.file.clone(),
            network: self.network,
        };
        // Resolved once now so that a mistake stops serve before it starts.
        let first = plan.resolve()?;
        let lock_file = lock_file(&CommandSettings::Backup(Box::new(first)), lock_override);
        let first = plan.resolve()?;
        let trigger_token = a
            .trigger_token_file
            .or_else(|| f.trigger_token_file.clone())
            .map(|path| read_secret(&path, "trigger token"))
            .transpose()?;
        Ok(ServeSettings {
            schedule,
            random_delay: a
                .random_delay
                .or(f.random_delay)
                .unwrap_or(Duration::from_secs(0))
                .std(),
            listen_address: a
                .listen_address
                .or_else(|| f.listen_address.clone())
                .unwrap_or_else(|| DEFAULT_LISTEN_ADDRESS.into()),
            verify: a.verify.or(f.verify).map(|l| match l {
                VerifyLevel::Quick => Level::Quick,
                VerifyLevel::Read => Level::Read,
                VerifyLevel::Deep => Level::Deep,
            }),
            shutdown_grace: a
                .shutdown_grace
                .or(f.shutdown_grace)
                .unwrap_or(DEFAULT_SHUTDOWN_GRACE)
                .std(),
            log_format: a.log_format.or(f.log_format).unwrap_or_default(),
            trigger_token,
            instance: first.instance.clone(),
            plan,
            metrics: MetricsSettings::default(),
            network: self.network,
            lock_file,
        })
    }

    fn ha(
        &self,
        group: Option<String>,
        labels: Vec<String>,
        min_interval: Option<Duration>,
        source: &BackupSource,
    ) -> Result<Option<HaSettings>> {
        let b = &self.file.backup;
        let Some(spec) = group.or_else(|| b.ha_group.clone()) else {
            return Ok(None);
        };
        let group = if spec == "auto" {
            if matches!(source, BackupSource::Dir(_)) {
                return Err(Hinted::usage(
                    "--ha-group auto needs the external labels that Prometheus reports",
                    "with --from-dir, name the group: --ha-group NAME",
                )
                .into());
            }
            HaGroup::Auto
        } else if spec.is_empty() || spec.len() > 256 || spec.chars().any(char::is_control) {
            return Err(Hinted::usage(
                format!("invalid --ha-group {spec:?}"),
                "use a short printable name, or `auto`",
            )
            .into());
        } else {
            HaGroup::Named(spec)
        };
        let replica_labels = match labels.is_empty() {
            false => labels,
            true => b
                .replica_labels
                .clone()
                .unwrap_or_else(|| DEFAULT_REPLICA_LABELS.map(String::from).to_vec()),
        };
        Ok(Some(HaSettings {
            group,
            replica_labels,
            min_interval: min_interval
                .or(b.min_interval)
                .unwrap_or(DEFAULT_MIN_INTERVAL)
                .std(),
        }))
    }

    fn list(&self, a: ListArgs) -> Result<ListSettings> {
        Ok(ListSettings {
            repo: self.repo(a.repo)?,
            instance: a.instance,
            json: a.json,
        })
    }

    fn restore(&self, a: RestoreArgs) -> Result<RestoreSettings> {
        let range = TimeRange::new(a.from, a.to, Utc::now()).map_err(|e| {
            Hinted::usage(
                e.to_string(),
                "--from must be before --to, e.g. --from -2h --to -1h",
            )
        })?;
        let named = !a.prometheus.prometheus_url.is_empty() || self.file.prometheus.url.is_some();
        let prometheus = match a.merge && named {
            true => Some(self.prometheus(a.prometheus)?),
            false => None,
        };
        Ok(RestoreSettings {
            repo: self.repo(a.repo)?,
            snapshot: a.snapshot,
            instance: a.instance,
            data_dir: a.data_dir.map(absolute),
            force: a.force,
            if_empty: a.if_empty,
            range,
            merge: a.merge,
            config_to: a.config_to.map(absolute),
            prometheus,
            concurrency: a
                .concurrency
                .unwrap_or_else(crate::repo::cpu_concurrency)
                .max(1),
            json: a.json,
        })
    }

    fn prune(&self, a: PruneArgs) -> Result<PruneSettings> {
        let policy = non_empty_policy(
            a.policy.or(self.file.prune),
            "no retention rule given: refusing to prune (it would remove every snapshot)",
            "pass --keep-last, --keep-daily, ... or set them in the [prune] section of the \
             configuration file",
        )?;
        Ok(PruneSettings {
            repo: self.repo(a.repo)?,
            forget_damaged: a.forget_damaged,
            policy,
            instance: a.instance,
            dry_run: a.dry_run,
            max_unused: policy.max_unused.unwrap_or_default(),
            lock_wait: a.lock_wait.unwrap_or(DEFAULT_LOCK_WAIT).std(),
            json: a.json,
        })
    }

    fn verify(&self, a: VerifyArgs) -> Result<VerifySettings> {
        let level = match (a.quick, a.deep) {
            (true, _) => Level::Quick,
            (_, true) => Level::Deep,
            _ => Level::Read,
        };
        // --deep decompresses: CPU-bound. The other levels wait on downloads.
        let concurrency = a.concurrency.unwrap_or(match level {
            Level::Deep => crate::repo::cpu_concurrency(),
            _ => DEFAULT_VERIFY_CONCURRENCY,
        });
        let restore_test = match a.restore_test {
            false => None,
            true => Some(RestoreTestSettings {
                promtool: promtool(a.promtool, a.no_promtool)?,
                concurrency: a.concurrency.unwrap_or_else(crate::repo::cpu_concurrency),
            }),
        };
        Ok(VerifySettings {
            repo: self.repo(a.repo)?,
            snapshot: a.snapshot,
            instance: a.instance,
            level,
            subset: a.read_data_subset,
            concurrency: concurrency.max(1),
            restore_test,
            scratch: absolute(a.scratch_dir.unwrap_or_else(std::env::temp_dir)),
            json: a.json,
        })
    }

    fn unlock(&self, a: UnlockArgs) -> Result<UnlockSettings> {
        Ok(UnlockSettings {
            repo: self.repo(a.repo)?,
            all: a.all,
        })
    }
}

/// The promtool for `--restore-test`: `--promtool`, else the first on
/// PATH. None found is a usage error (a CI job must not stay green while
/// checking less), unless `--no-promtool` says the user accepts that.
fn promtool(flag: Option<PathBuf>, none: bool) -> Result<Option<PathBuf>> {
    if none {
        return Ok(None);
    }
    if let Some(path) = flag {
        if !path.is_file() {
            return Err(Hinted::usage(
                format!("--promtool {} does not exist", path.display()),
                "point it at the promtool binary",
            )
            .into());
        }
        return Ok(Some(path));
    }
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("promtool"))
        .find(|p| p.is_file());
    match found {
        Some(path) => Ok(Some(path)),
        None => Err(Hinted::usage(
            "--restore-test needs promtool to load the restored blocks, and there is none on PATH",
            "install it (Debian: apt install prometheus), name it with --promtool PATH, or pass \
             --no-promtool to restore and check hashes only",
        )
        .into()),
    }
}

/// The verify serve runs after a backup: the newest snapshot of
/// `instance`, at `level`.
pub fn verify_after_backup(repo: RepoSettings, instance: String, level: Level) -> VerifySettings {
    VerifySettings {
        repo,
        snapshot: Some("latest".into()),
        instance: Some(instance),
        level,
        subset: None,
        concurrency: match level {
            Level::Deep => crate::repo::cpu_concurrency(),
            _ => DEFAULT_VERIFY_CONCURRENCY,
        },
        restore_test: None,
        scratch: std::env::temp_dir(),
        json: false,
    }
}

/// `policy`, unless it has no rule (it would remove every snapshot).
fn non_empty_policy(policy: Policy, message: &str, hint: &str) -> Result<Policy> {
    match policy.is_empty() {
        true => Err(Hinted::usage(message, hint).into()),
        false => Ok(policy),
    }
}

/// The local lock file (see `run_lock`): `--lock-file` when given, else a
/// backup locks its Prometheus (its data directory when known) and prune
/// and verify their repository, never with a file inside it: a dry run
/// must not change it, and a repository may be shared by hosts whose
/// flocks do not meet.
fn lock_file(command: &CommandSettings, named: Option<PathBuf>) -> Option<PathBuf> {
    let repo = match command {
        CommandSettings::Backup(b) => &b.repo,
        CommandSettings::Prune(p) => &p.repo,
        CommandSettings::Verify(v) => &v.repo,
        _ => return None,
    };
    if named.is_some() {
        return named;
    }
    let endpoint = repo.s3.endpoint.as_deref().unwrap_or_default();
    let repo_key = format!("{}\n{endpoint}", repo.url);
    let (dir, key) = match command {
        CommandSettings::Backup(b) => match &b.source {
            BackupSource::Dir(dir) => (None, format!("backup\n{}\n{repo_key}", dir.display())),
            BackupSource::Api(api) => (
                api.data_dir.clone(),
                format!("backup\n{}\n{repo_key}", api.prometheus.urls.join(",")),
            ),
        },
        _ => (None, repo_key),
    };
    Some(run_lock::default_path(dir.as_deref(), &key))
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(toml: &str) -> Result<FileConfig> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("promsnap.toml");
        std::fs::write(&path, toml).unwrap();
        FileConfig::load(Some(&path))
    }

    /// Resolves `promsnap ARGS` against the file `toml`.
    fn resolve(args: &[&str], toml: &str) -> Result<Settings> {
        let cli = Cli::try_parse_from(std::iter::once("promsnap").chain(args.iter().copied()))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Settings::from_sources(cli, &parse(toml)?)
    }

    fn list_repo(s: Settings) -> RepoSettings {
        match s.command {
            CommandSettings::List(l) => l.repo,
            other => panic!("not list: {other:?}"),
        }
    }

    fn usage(err: anyhow::Error) -> bool {
        crate::error::status_of(&err) == crate::error::ExitStatus::Usage
    }

    #[test]
    fn flags_win_over_the_file() {
        let file =
            "[repository]\nurl = \"s3://from-file/x\"\ns3_region = \"eu\"\ns3_path_style = true\n";
        let s = list_repo(resolve(&["list", "--repo", "/from/flag"], file).unwrap());
        assert_eq!(s.location, Location::Local("/from/flag".into()));
        assert_eq!(s.s3.region.as_deref(), Some("eu"));
        assert!(s.s3.path_style);
        let s = list_repo(resolve(&["list"], file).unwrap());
        assert!(matches!(s.location, Location::S3 { ref bucket, .. } if bucket == "from-file"));
    }

    #[test]
    fn unknown_keys_name_the_key_and_the_file() {
        let err = parse("[repository]\ns3_endpiont = \"http://x\"\n").unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("s3_endpiont"), "{text}");
        assert!(text.contains("promsnap.toml"), "{text}");
        let err = parse("[prune]\nkeep_dayly = 3\n").unwrap_err();
        assert!(format!("{err:#}").contains("keep_dayly"), "{err:#}");
    }

    #[test]
    fn a_missing_repository_is_a_usage_error() {
        assert!(usage(resolve(&["list"], "").unwrap_err()));
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
        let repo = |body: &str| {
            resolve(
                &["list", "--repo", "s3://b/p"],
                &format!("[repository]\n{body}"),
            )
            .map(list_repo)
        };
        let s = repo(&format!(
            "access_key_id = \"GK1\"\nsecret_access_key_file = {secret:?}\n"
        ))
        .unwrap();
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
            assert!(usage(repo(&body).unwrap_err()), "{body}");
        }
        // An unreadable secret file names the file, not the secret.
        let err = repo("access_key_id = \"GK1\"\nsecret_access_key_file = \"/nonexistent/x\"\n")
            .unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/x"));
        // Without keys the AWS chain is used.
        assert!(repo("").unwrap().s3.credentials.is_none());
    }

    #[test]
    fn network_settings_flags_win_and_bad_values_are_usage_errors() {
        let file = "[network]\nretries = 2\ntimeout = \"30s\"\nmax_bandwidth = \"1MiB/s\"\n";
        let n = resolve(&["list", "--repo", "/r"], file).unwrap().network;
        assert_eq!(n.retries, 2);
        assert_eq!(n.timeout, std::time::Duration::from_secs(30));
        assert_eq!(n.max_bandwidth, Some(1 << 20));
        let n = resolve(
            &[
                "list",
                "--repo",
                "/r",
                "--retries",
                "0",
                "--max-bandwidth",
                "2MiB/s",
            ],
            file,
        )
        .unwrap()
        .network;
        assert_eq!((n.retries, n.max_bandwidth), (0, Some(2 << 20)));
        assert_eq!(n.timeout, std::time::Duration::from_secs(30));
        let defaults = resolve(&["list", "--repo", "/r"], "").unwrap().network;
        assert_eq!(defaults.retries, crate::retry::DEFAULT_RETRIES);
        assert_eq!(defaults.timeout, DEFAULT_TIMEOUT);
        assert_eq!(defaults.max_bandwidth, None);
        for bad in [
            "[network]\ntimeout = \"soon\"\n",
            "[network]\ntimeout = \"2 minutes\"\n",
            "[network]\nmax_bandwidth = \"fast\"\n",
        ] {
            assert!(usage(parse(bad).unwrap_err()), "{bad}");
        }
        let err = resolve(&["list", "--repo", "/r", "--timeout", "10ms"], "").unwrap_err();
        assert!(usage(err));
        assert!(resolve(&["list", "--repo", "/r", "--timeout", "1 min"], "").is_err());
    }

    #[test]
    fn prune_flags_fall_back_to_the_file_rule_by_rule() {
        let file = "[prune]\nkeep_daily = 7\nkeep_weekly = 4\ngrace = \"2h\"\ntimezone = \"Europe/Berlin\"\n";
        let s = resolve(&["prune", "--repo", "/r", "--keep-daily", "3"], file).unwrap();
        let CommandSettings::Prune(p) = s.command else {
            panic!()
        };
        assert_eq!(p.policy.keep_daily, Some(3));
        assert_eq!(p.policy.keep_weekly, Some(4));
        assert_eq!(p.policy.grace(), std::time::Duration::from_secs(7200));
        assert_eq!(p.policy.zone(), chrono_tz::Europe::Berlin);
        // No rule anywhere: refused before anything runs.
        assert!(usage(resolve(&["prune", "--repo", "/r"], "").unwrap_err()));
        assert!(usage(
            resolve(&["backup", "--repo", "/r", "--prune"], "").unwrap_err()
        ));
        // --keep-within takes Prometheus durations: 1m is a minute.
        let s = resolve(&["prune", "--repo", "/r", "--keep-within", "90m"], "").unwrap();
        let CommandSettings::Prune(p) = s.command else {
            panic!()
        };
        assert_eq!(
            p.policy.keep_within.unwrap().0.sub_day_millis(),
            90 * 60_000
        );
    }

    #[test]
    fn max_unused_comes_from_the_flag_else_the_file_else_5_percent() {
        use crate::repo::repack::MaxUnused;
        let prune = |args: &[&str], file: &str| {
            let all = [&["prune", "--repo", "/r", "--keep-last", "1"][..], args].concat();
            match resolve(&all, file).map(|s| s.command) {
                Ok(CommandSettings::Prune(p)) => Ok(p.max_unused),
                Ok(_) => panic!("not a prune"),
                Err(e) => Err(e),
            }
        };
        let file = "[prune]\nmax_unused = \"20%\"\n";
        assert_eq!(prune(&[], "").unwrap(), MaxUnused::Percent(5.0));
        assert_eq!(prune(&[], file).unwrap(), MaxUnused::Percent(20.0));
        assert_eq!(
            prune(&["--max-unused", "unlimited"], file).unwrap(),
            MaxUnused::Unlimited
        );
        let unlimited = "[prune]\nmax_unused = \"unlimited\"\n";
        assert_eq!(prune(&[], unlimited).unwrap(), MaxUnused::Unlimited);
        // A share that is none is refused, naming what it got.
        let err = prune(&[], "[prune]\nmax_unused = \"150%\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("150%"), "{err:#}");
    }

    #[test]
    fn backup_settings_come_from_flags_then_the_file() {
        let file = "[prometheus]\nurl = \"http://prom:9090\"\ndata_dir = \"/data\"\n\
                    [backup]\ninstance = \"eu1\"\nskip_head = true\nzstd_level = 3\n\
                    min_interval = \"6h\"\nha_group = \"auto\"\n";
        let s = resolve(&["backup", "--repo", "/r"], file).unwrap();
        assert_eq!(s.instance, "eu1");
        let CommandSettings::Backup(b) = s.command else {
            panic!()
        };
        let BackupSource::Api(api) = &b.source else {
            panic!()
        };
        assert_eq!(api.prometheus.urls, ["http://prom:9090"]);
        assert_eq!(api.data_dir.as_deref(), Some(Path::new("/data")));
        assert!(api.skip_head);
        assert_eq!(b.pack.level, 3);
        let ha = b.ha.unwrap();
        assert_eq!(ha.group, HaGroup::Auto);
        assert_eq!(ha.min_interval, std::time::Duration::from_secs(6 * 3600));
        assert_eq!(ha.replica_labels, ["replica", "prometheus_replica"]);
        // --ha-group auto has no labels to read with --from-dir.
        let err = resolve(&["backup", "--repo", "/r", "--from-dir", "/x"], file).unwrap_err();
        assert!(usage(err));
        // A level from the file is checked like the flag's.
        let err = resolve(&["backup", "--repo", "/r"], "[backup]\nzstd_level = 30\n").unwrap_err();
        assert!(usage(err));
        let err = resolve(&["backup", "--repo", "/r", "--instance", ""], "").unwrap_err();
        assert!(usage(err));
    }

    #[test]
    fn serve_takes_its_section_and_the_backup_settings() {
        let data = tempfile::tempdir().unwrap();
        let file = format!(
            "[prometheus]\ndata_dir = {:?}\n[backup]\ninstance = \"eu1\"\n",
            data.path()
        ) + "[serve]\nschedule = \"CRON_TZ=Europe/Berlin 15 3 * * *\"\n\
                    random_delay = \"10m\"\nverify = \"deep\"\nlog_format = \"json\"\n";
        let s = resolve(&["serve", "--repo", "/r", "--shutdown-grace", "5m"], &file).unwrap();
        assert_eq!(s.instance, "eu1");
        assert_eq!(s.lock_file, None, "serve locks each run, not the process");
        let CommandSettings::Serve(serve) = s.command else {
            panic!()
        };
        assert_eq!(
            serve.schedule.to_string(),
            "CRON_TZ=Europe/Berlin 15 3 * * *"
        );
        assert_eq!(serve.random_delay, std::time::Duration::from_secs(600));
        assert_eq!(serve.shutdown_grace, std::time::Duration::from_secs(300));
        assert_eq!(serve.verify, Some(Level::Deep));
        assert_eq!(serve.log_format, LogFormat::Json);
        assert_eq!(serve.listen_address, DEFAULT_LISTEN_ADDRESS);
        assert_eq!(serve.trigger_token, None);
        // Each run takes the lock a backup of that data directory takes.
        assert_eq!(serve.lock_file, Some(data.path().join(run_lock::FILE_NAME)));
        // Two runs resolve two snapshot times.
        let a = serve.plan.resolve().unwrap().time;
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(serve.plan.resolve().unwrap().time > a);
        // No schedule, a bad one, or one-shot options: usage errors.
        for args in [
            &["serve", "--repo", "/r"][..],
            &["serve", "--repo", "/r", "--schedule", "every night"],
            &["serve", "--repo", "/r", "--schedule", "* * * * *", "--json"],
            &[
                "serve",
                "--repo",
                "/r",
                "--schedule",
                "* * * * *",
                "--from-dir",
                "/x",
            ],
        ] {
            assert!(usage(resolve(args, "").unwrap_err()), "{args:?}");
        }
    }

    #[test]
    fn relative_paths_become_absolute() {
        let cwd = std::env::current_dir().unwrap();
        let s = resolve(
            &["restore", "latest", "--repo", "r", "--data-dir", "./d"],
            "",
        )
        .unwrap();
        let CommandSettings::Restore(r) = s.command else {
            panic!()
        };
        assert_eq!(r.data_dir, Some(cwd.join("d")));
        assert_eq!(r.repo.location, Location::Local(cwd.join("r")));
        let s = resolve(&["check-dir", "blocks/01X"], "").unwrap();
        let CommandSettings::CheckDir(c) = s.command else {
            panic!()
        };
        assert_eq!(c.dir, cwd.join("blocks/01X"));
    }

    #[test]
    fn backups_lock_their_data_directory_and_prunes_their_repository() {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().to_str().unwrap();
        let s = resolve(&["backup", "--repo", "/r", "--data-dir", dir], "").unwrap();
        assert_eq!(s.lock_file, Some(data.path().join(run_lock::FILE_NAME)));
        let named = resolve(&["backup", "--repo", "/r", "--lock-file", "/l"], "").unwrap();
        assert_eq!(named.lock_file, Some(PathBuf::from("/l")));
        let prune = |repo: &str| {
            resolve(&["prune", "--repo", repo, "--keep-last", "1"], "")
                .unwrap()
                .lock_file
                .unwrap()
        };
        assert_eq!(prune("/r1"), prune("/r1"));
        assert_ne!(prune("/r1"), prune("/r2"));
        assert!(
            !prune("/r1").starts_with("/r1"),
            "never inside the repository"
        );
        assert_eq!(
            resolve(&["list", "--repo", "/r"], "").unwrap().lock_file,
            None
        );
    }
}
