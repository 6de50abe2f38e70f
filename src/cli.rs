//! The command line. Every `///` comment here is `--help` text, so it is
//! written for the person reading `promsnap backup --help` at 3 a.m.
//!
//! clap resolves flags and their `PROMSNAP_*` environment variables (a flag
//! wins over its variable); `settings.rs` then fills what is still unset from
//! the configuration file, so all three sources meet in one place. Values are
//! typed here already (durations in Prometheus's grammar, rates, times), so
//! a malformed one is refused before anything runs, with the same message
//! whether it came from a flag or from the file.
//!
//! A command offers only the options that do something for it: the shared
//! ones come in groups ([`RepoArgs`], [`PrometheusArgs`], [`NetworkArgs`],
//! [`MetricsArgs`], [`LockArgs`]) that each command flattens in when it uses
//! them, and each group has its own heading in `--help`, after the command's
//! own options. Only `--config` and `--quiet` are global (accepted before or
//! after the command's name, as in `promsnap --config F backup`).

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};

use crate::duration::Duration;
use crate::repo::retention::Policy;
use crate::storage::throttle::Rate;
use crate::storage::ChecksumMode;

const AFTER_HELP: &str = "\
Exit codes: 0 ok, 1 failed, 2 usage or configuration error, 3 finished with problems, \
4 another promsnap run holds the lock (nothing done), 130 interrupted.

Durations are written as in Prometheus: 90s, 15m, 1h30m, 7d, 2w, 1y (m is minutes, y is 365 days).

A command's options go after its name (promsnap list --retries 3); --config and --quiet go \
anywhere. `promsnap <command> --help` shows each command's options and examples.

Examples:
  promsnap init --repo s3://backups/prometheus
  promsnap backup --prometheus-url http://localhost:9090 --repo s3://backups/prometheus
  promsnap list --repo s3://backups/prometheus
  promsnap restore latest --repo s3://backups/prometheus --data-dir /var/lib/prometheus/restored
  promsnap --config /etc/promsnap/promsnap.toml backup --quiet";

/// `--version`: the package version, the commit it was built from and the
/// build date (`build.rs`), e.g. `0.1.0 (abc1234 2026-11-29)`.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("PROMSNAP_COMMIT"),
    " ",
    env!("PROMSNAP_BUILD_DATE"),
    ")"
);

/// Back up and restore Prometheus TSDB data.
///
/// promsnap asks Prometheus for a snapshot through its admin API, stores its
/// blocks compressed in S3-compatible object storage or a local directory
/// (what the repository already holds is not uploaded again, including the
/// chunk data that compaction only moved into a new block), and restores any
/// snapshot into a data directory with every byte checked.
#[derive(Debug, Parser)]
#[command(name = "promsnap", version = VERSION, after_help = AFTER_HELP, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    #[command(flatten)]
    pub global: GlobalArgs,
}

/// The options every command takes, before or after its name.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// TOML configuration file. Flags and PROMSNAP_* variables override it.
    #[arg(long, global = true, env = "PROMSNAP_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print nothing but errors (for cron and timers); the exit code tells the result.
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

/// Retries, timeouts and bandwidth: the commands that reach S3 or Prometheus.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Network")]
pub struct NetworkArgs {
    /// Retry a failed S3 or Prometheus request up to N times (connection
    /// errors, timeouts, 5xx, throttling), with exponential backoff and
    /// jitter [default: 5].
    #[arg(long, env = "PROMSNAP_RETRIES", value_name = "N")]
    pub retries: Option<u32>,

    /// Abandon (and retry) a request that gets no answer within DURATION,
    /// e.g. 30s [default: 2m; snapshots at least 10m].
    #[arg(long, env = "PROMSNAP_TIMEOUT", value_name = "DURATION")]
    pub timeout: Option<Duration>,

    /// Limit uploads and downloads together to RATE, e.g. 50MiB/s or
    /// 12.5MB/s, so a backup does not starve the host's network.
    #[arg(long, env = "PROMSNAP_MAX_BANDWIDTH", value_name = "RATE")]
    pub max_bandwidth: Option<Rate>,
}

/// Metrics for alerting: the commands whose runs are worth an alert
/// (backup, prune, verify, restore).
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Metrics")]
pub struct MetricsArgs {
    /// Write this run's metrics (success or failure) to FILE in
    /// node_exporter's textfile-collector format (atomically; other
    /// commands' metrics in FILE are kept).
    #[arg(long, env = "PROMSNAP_METRICS_FILE", value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,

    /// Push the same metrics to a Prometheus Pushgateway, e.g.
    /// http://pushgateway:9091 (job promsnap, grouped by instance and command).
    #[arg(long, env = "PROMSNAP_PUSHGATEWAY", value_name = "URL")]
    pub pushgateway: Option<String>,
}

/// The local lock that keeps runs from overlapping: backup, prune, verify.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Run lock")]
pub struct LockArgs {
    /// Lock file that keeps two runs from overlapping; a second run exits 4
    /// at once [default: DATA_DIR/.promsnap.lock for backup, else one file
    /// per repository (and Prometheus) in $XDG_RUNTIME_DIR or the temp dir].
    #[arg(long, env = "PROMSNAP_LOCK_FILE", value_name = "FILE")]
    pub lock_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a repository: a local directory or an S3 bucket prefix.
    ///
    /// Writes the repository's config object (repository.json). Every other
    /// command refuses a location without one, so a typo in --repo or an
    /// unmounted NAS share fails loudly instead of looking like an empty
    /// repository. A repository written by an older promsnap (before init
    /// existed) is adopted as it is.
    #[command(after_help = INIT_EXAMPLES)]
    Init(InitArgs),

    /// Snapshot a running Prometheus and store its blocks in the repository.
    ///
    /// Calls POST /api/v1/admin/tsdb/snapshot (Prometheus must run with
    /// --web.enable-admin-api), reads every block of the snapshot as its chunk
    /// data per 2 h window, its index and its metadata, uploads (zstd, in
    /// packs) only what the repository does not hold yet: a block compacted
    /// from blocks already stored costs little more than its index. It writes
    /// the snapshot's manifest last, and removes the local snapshot directory.
    /// An interrupted backup leaves no snapshot behind; running it again
    /// uploads only what is missing.
    #[command(after_help = BACKUP_EXAMPLES)]
    Backup(BackupArgs),

    /// List the snapshots in a repository, grouped by instance, oldest first.
    ///
    /// One group per instance, or per HA group for snapshots stored with
    /// --ha-group (the name --instance takes), groups in alphabetical order,
    /// and within each group the oldest snapshot first: the last line of a
    /// group is its newest snapshot, the one `restore latest --instance NAME`
    /// takes. An id starts with the snapshot's creation time in UTC
    /// (20261124T030000Z-...); DATA is the time range its blocks hold, SIZE
    /// what a restore downloads, ADDED what the snapshot added to the
    /// repository (data already stored by earlier snapshots is not counted).
    #[command(after_help = LIST_EXAMPLES)]
    List(ListArgs),

    /// Restore a snapshot into a Prometheus data directory.
    ///
    /// Refuses a directory that a running Prometheus holds, and a non-empty one
    /// unless --force. Every block is written under <ULID>.tmp-for-creation,
    /// checked file by file against the manifest's SHA-256 sums, and renamed
    /// into place only then. An interrupted restore can be rerun: it keeps the
    /// blocks already complete and restores the rest.
    #[command(after_help = RESTORE_EXAMPLES)]
    Restore(RestoreArgs),

    /// Apply a retention policy: forget old snapshots, delete unused blocks.
    ///
    /// A snapshot is kept when any --keep-* rule keeps it (restic's `forget`
    /// semantics, per instance). Block objects that no remaining snapshot uses
    /// are deleted; objects no snapshot ever used (left by interrupted backups)
    /// only once older than --grace. Packs (format 2) that remaining snapshots
    /// still use in part are repacked when more than --max-unused of them is
    /// unused. Use --dry-run first: it prints every
    /// snapshot with keep/remove and the reason, and changes nothing. Rules not
    /// given as flags come from the [prune] section of the configuration file.
    #[command(after_help = PRUNE_EXAMPLES)]
    Prune(PruneArgs),

    /// Check that backups are whole and would restore (for CI and incidents).
    ///
    /// --quick: manifests parse and every object exists with its size.
    /// Default: also download every object and check its hash (SHA-256, or
    /// the repository's content id hash for packs).
    /// --deep: also decompress every block as it downloads and check each
    /// file's SHA-256 and the TSDB structure (index, chunks, tombstones,
    /// CRCs) with promsnap's own reader. --restore-test: also restore and let
    /// promtool load the blocks. Exits 0 when everything holds, 3 when
    /// problems were found, 1 when verify itself could not run (storage
    /// unreachable, a download broke off, no room in --scratch-dir).
    #[command(after_help = VERIFY_EXAMPLES)]
    Verify(VerifyArgs),

    /// Check the TSDB structure of the blocks in a local directory.
    ///
    /// The same checks as `verify --deep`, on a data directory, a snapshot,
    /// or a restored directory: before a backup, or after a restore.
    #[command(after_help = CHECK_DIR_EXAMPLES)]
    CheckDir(CheckDirArgs),

    /// Remove stale repository locks (left by crashed runs).
    ///
    /// Locks expire by themselves a few minutes after their holder stops
    /// refreshing them, and locks of dead processes on this host are ignored,
    /// so this is rarely needed.
    #[command(after_help = UNLOCK_EXAMPLES)]
    Unlock(UnlockArgs),

    /// Run as a service: back up on a schedule, serve metrics and health.
    ///
    /// Runs `backup` (with --prune and --verify, also prune and verify) at
    /// every time the --schedule cron expression names, never two at once
    /// (the same local lock as `backup`: a cron job's backup and the
    /// service's exclude each other). Serves /metrics (Prometheus format),
    /// /-/healthy and /-/ready on --listen-address, and POST /api/v1/backup
    /// to start a backup now (only with --trigger-token-file). On SIGTERM or
    /// Ctrl-C it stops scheduling, lets a running backup finish within
    /// --shutdown-grace or aborts it cleanly (no snapshot stored, uploads
    /// aborted, the local snapshot removed), and exits 0. For a sidecar next
    /// to Prometheus, or a systemd service.
    // backup's one-shot flags are refused by serve: not in its help.
    #[command(
        after_help = SERVE_EXAMPLES,
        mut_arg("json", |a| a.hide(true)),
        mut_arg("time", |a| a.hide(true)),
        mut_arg("from_dir", |a| a.hide(true))
    )]
    Serve(ServeArgs),

    /// Print a shell completion script (commands and options).
    ///
    /// The script completes commands, options and their fixed values. For
    /// completions that also offer the snapshot ids and instance names of
    /// your repository, source `COMPLETE=SHELL promsnap` instead (see the
    /// examples); it reads the repository from --repo and --config when they
    /// are already typed, else from PROMSNAP_REPO or PROMSNAP_CONFIG.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },

    /// Print a man page in roff (for packagers: `man/` holds its output).
    #[command(hide = true)]
    Man {
        /// The subcommand whose page to print (`backup` prints
        /// promsnap-backup(1)); promsnap(1) without one.
        command: Option<String>,
    },
}

const INIT_EXAMPLES: &str = "\
Examples:
  promsnap init --repo /mnt/backups/prometheus
  promsnap init --repo s3://backups/prometheus
  promsnap init --repo s3://backups/prometheus --s3-endpoint http://minio:9000 --s3-path-style";

const BACKUP_EXAMPLES: &str = "\
Examples:
  # Prometheus on this host, into S3 (create the repository on the first run):
  promsnap backup --prometheus-url http://localhost:9090 --repo s3://backups/prometheus --init
  # Nightly from cron, every setting in the configuration file:
  promsnap --config /etc/promsnap/promsnap.toml backup --quiet
  # A stopped Prometheus's data directory, or a snapshot taken earlier:
  promsnap backup --from-dir /var/lib/prometheus/metrics2 --instance prom-eu1 --repo /mnt/backups
  # Each replica of an HA pair runs the same; one backup per 12h is stored:
  promsnap backup --ha-group auto --repo s3://backups/prometheus";

const LIST_EXAMPLES: &str = "\
Examples:
  promsnap list --repo s3://backups/prometheus
  promsnap list --instance prom-eu1 --repo s3://backups/prometheus
  # The newest snapshot's id, for scripts:
  promsnap list --instance prom-eu1 --json --repo /mnt/backups | jq -r '.[-1].id'";

const RESTORE_EXAMPLES: &str = "\
Examples:
  promsnap restore latest --repo s3://backups/prometheus --data-dir /var/lib/prometheus/restored
  promsnap restore 20261124T030000Z-c92014bb --repo /mnt/backups --data-dir /srv/restored
  # Only last night, with the configuration, for a scratch Prometheus:
  promsnap restore latest --instance prom-eu1 --from -2d --to -1d --repo /mnt/backups \\
      --data-dir /srv/scratch/data --config-to /srv/scratch/config
  # Add the missing blocks to a running Prometheus:
  promsnap restore latest --merge --data-dir /var/lib/prometheus/metrics2 --repo /mnt/backups
  # Seed a new replica (an init container); a directory with blocks is left alone:
  promsnap restore latest --if-empty --instance prom-eu1 --data-dir /prometheus --repo /mnt/backups";

const PRUNE_EXAMPLES: &str = "\
Examples:
  # See what would go, then do it:
  promsnap prune --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --dry-run --repo /mnt/backups
  promsnap prune --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --repo /mnt/backups
  # The policy of the configuration file's [prune] section:
  promsnap --config /etc/promsnap/promsnap.toml prune
  # Take back every byte no remaining snapshot uses (repacks more):
  promsnap prune --keep-daily 7 --max-unused 0% --repo /mnt/backups";

const VERIFY_EXAMPLES: &str = "\
Examples:
  promsnap verify --quick --repo s3://backups/prometheus
  promsnap verify latest --deep --instance prom-eu1 --repo s3://backups/prometheus
  # A seventh of the objects (1/7 .. 7/7 on seven nights read them all):
  promsnap verify --read-data-subset 3/7 --repo s3://backups/prometheus
  promsnap verify latest --restore-test --scratch-dir /srv/scratch --repo /mnt/backups";

const CHECK_DIR_EXAMPLES: &str = "\
Examples:
  promsnap check-dir /var/lib/prometheus/metrics2
  promsnap check-dir /var/lib/prometheus/restored --json";

const SERVE_EXAMPLES: &str = "\
Examples:
  # A sidecar in the Prometheus pod: nightly at 03:15 Berlin time, pruned and verified:
  promsnap serve --schedule 'CRON_TZ=Europe/Berlin 15 3 * * *' --random-delay 10m --prune \\
      --verify quick --prometheus-url http://localhost:9090 --data-dir /prometheus --repo s3://backups/prom
  # Every setting in the configuration file ([serve] and the backup sections):
  promsnap --config /etc/promsnap/promsnap.toml serve --log-format json
  # Start a backup now (with --trigger-token-file /etc/promsnap/trigger-token):
  curl -X POST -H \"Authorization: Bearer $(cat /etc/promsnap/trigger-token)\" http://localhost:8431/api/v1/backup";

const UNLOCK_EXAMPLES: &str = "\
Examples:
  promsnap unlock --repo s3://backups/prometheus
  # Only when no promsnap can be running against the repository:
  promsnap unlock --all --repo s3://backups/prometheus";

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  promsnap completions bash > /etc/bash_completion.d/promsnap
  promsnap completions zsh > \"${fpath[1]}/_promsnap\"
  # With snapshot ids and instance names from the repository:
  echo 'source <(COMPLETE=bash promsnap)' >> ~/.bashrc
  echo 'source <(COMPLETE=zsh promsnap)' >> ~/.zshrc
  echo 'COMPLETE=fish promsnap | source' > ~/.config/fish/completions/promsnap.fish";

/// Where the repository is; the S3 options only matter for `s3://` ones.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Repository")]
pub struct RepoArgs {
    /// Where backups live: s3://BUCKET[/PREFIX], file:///PATH or a directory path.
    #[arg(long, env = "PROMSNAP_REPO", value_name = "REPO")]
    pub repo: Option<String>,

    /// S3 endpoint URL, for S3-compatible stores (MinIO, Garage, Ceph, R2, ...).
    #[arg(
        long,
        env = "PROMSNAP_S3_ENDPOINT",
        value_name = "URL",
        help_heading = "S3"
    )]
    pub s3_endpoint: Option<String>,

    /// S3 region [default: $AWS_REGION or the AWS profile's, else us-east-1].
    #[arg(
        long,
        env = "PROMSNAP_S3_REGION",
        value_name = "REGION",
        help_heading = "S3"
    )]
    pub s3_region: Option<String>,

    /// Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT; most
    /// self-hosted stores (MinIO, Garage, Ceph) need this.
    #[arg(
        long,
        env = "PROMSNAP_S3_PATH_STYLE",
        help_heading = "S3",
        value_name = "BOOL",
        value_parser = BoolishValueParser::new(),
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub s3_path_style: Option<bool>,

    /// When to add CRC checksums to S3 requests. `when-required` works with
    /// every S3-compatible store; `when-supported` suits AWS S3.
    #[arg(
        long,
        env = "PROMSNAP_S3_CHECKSUMS",
        value_enum,
        value_name = "MODE",
        help_heading = "S3"
    )]
    pub s3_checksums: Option<ChecksumMode>,
}

/// How to reach Prometheus's HTTP API (the heading is the command's: what
/// it needs Prometheus for).
#[derive(Debug, Args, Clone, Default)]
pub struct PrometheusArgs {
    /// Prometheus base URL [default: http://localhost:9090]. Repeat it (or
    /// separate with commas) for replicas that share one data directory: the
    /// first that is ready (/-/ready) is used.
    #[arg(
        long,
        env = "PROMSNAP_PROMETHEUS_URL",
        value_name = "URL",
        value_delimiter = ','
    )]
    pub prometheus_url: Vec<String>,

    /// User name for basic authentication (Prometheus behind a web config).
    #[arg(long, env = "PROMSNAP_PROMETHEUS_USERNAME", value_name = "USER")]
    pub prometheus_username: Option<String>,

    /// File holding the basic-authentication password.
    #[arg(long, env = "PROMSNAP_PROMETHEUS_PASSWORD_FILE", value_name = "FILE")]
    pub prometheus_password_file: Option<PathBuf>,

    /// File holding a bearer token.
    #[arg(
        long,
        env = "PROMSNAP_PROMETHEUS_BEARER_TOKEN_FILE",
        value_name = "FILE"
    )]
    pub prometheus_bearer_token_file: Option<PathBuf>,

    /// PEM file with the CA that signed Prometheus's TLS certificate.
    #[arg(long, env = "PROMSNAP_PROMETHEUS_CA_CERT", value_name = "FILE")]
    pub prometheus_ca_cert: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct BackupArgs {
    /// While Prometheus answers /-/ready with 503 (starting up, replaying
    /// its WAL), wait up to DURATION for it; 0 fails at once [default: 5m].
    #[arg(long, env = "PROMSNAP_WAIT_READY", value_name = "DURATION")]
    pub wait_ready: Option<Duration>,

    /// Prometheus's data directory (its --storage.tsdb.path), on this machine.
    /// [default: asked from Prometheus's /api/v1/status/flags]
    #[arg(long, env = "PROMSNAP_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Back up this directory instead of asking Prometheus for a snapshot: an
    /// existing snapshot, or the data directory of a stopped Prometheus. Only
    /// blocks are stored; wal/ and chunks_head/ are skipped.
    #[arg(long, value_name = "DIR")]
    pub from_dir: Option<PathBuf>,

    /// Name this Prometheus in the repository [default: the host name].
    #[arg(long, env = "PROMSNAP_INSTANCE", value_name = "NAME")]
    pub instance: Option<String>,

    /// Leave the in-memory head block out of the snapshot (faster; loses up
    /// to the last 2-3 hours of data).
    #[arg(long)]
    pub skip_head: bool,

    /// Keep the local snapshot directory after the backup instead of removing it.
    #[arg(long)]
    pub keep_local_snapshot: bool,

    /// Blocks packed and uploaded at the same time, largest first [default: 2].
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,

    /// zstd compression level, 1 (fastest) to 19 [default: 1]. promsnap
    /// tunes zstd for TSDB chunks, so level 1 already stores about as little
    /// as restic; higher levels trade CPU time for a few percent.
    #[arg(long, value_name = "LEVEL", value_parser = clap::value_parser!(i32).range(1..=19))]
    pub zstd_level: Option<i32>,

    /// zstd worker threads per block [default: number of CPUs]; 1 compresses
    /// on the thread that reads the block. With `--concurrency 1
    /// --zstd-threads 1` a backup uses one core, to spare a busy host.
    #[arg(long, value_name = "N")]
    pub zstd_threads: Option<u32>,

    /// Prometheus's configuration file, stored with the snapshot together
    /// with every rule file its rule_files reference [default: the
    /// config.file Prometheus reports, when it is readable here; if not, a
    /// warning]. Given explicitly, a file that cannot be read is an error.
    #[arg(long, env = "PROMSNAP_PROMETHEUS_CONFIG", value_name = "PATH")]
    pub prometheus_config: Option<PathBuf>,

    /// Also store this file with the snapshot, e.g. file_sd target files or
    /// alertmanager.yml (repeatable). A file that cannot be read is an error.
    #[arg(long, value_name = "PATH")]
    pub include: Vec<PathBuf>,

    /// Prometheus high availability: replicas of one group that all run this
    /// backup store one snapshot per --min-interval between them. NAME names
    /// the group; `auto` derives it from the external labels minus the
    /// replica label(s). A replica that finds a recent snapshot of its group
    /// (or another replica storing one) skips, exits 0 and says why.
    #[arg(long, env = "PROMSNAP_HA_GROUP", value_name = "NAME|auto")]
    pub ha_group: Option<String>,

    /// External label(s) that tell HA replicas apart, for `--ha-group auto`
    /// [default: replica and prometheus_replica].
    #[arg(long, value_name = "LABEL")]
    pub replica_label: Vec<String>,

    /// With --ha-group: skip when the group has a snapshot younger than this
    /// [default: 12h].
    #[arg(long, value_name = "DURATION")]
    pub min_interval: Option<Duration>,

    /// Record this as the snapshot's time (RFC 3339) instead of now, e.g. when
    /// importing an old data directory with --from-dir.
    #[arg(long, value_name = "TIME")]
    pub time: Option<chrono::DateTime<chrono::FixedOffset>>,

    /// After a successful backup, prune with the policy in the configuration
    /// file's [prune] section. A failed prune exits 3: the backup is stored,
    /// only the housekeeping failed.
    #[arg(long)]
    pub prune: bool,

    /// How long to wait for a prune that holds the repository [default: 10m].
    #[arg(long, value_name = "DURATION")]
    pub lock_wait: Option<Duration>,

    /// Create the repository if --repo holds none yet (as `promsnap init`
    /// does). Without it, a backup into a location that is not a
    /// repository fails, so a typo or an unmounted share is noticed.
    #[arg(
        long,
        env = "PROMSNAP_INIT",
        value_name = "BOOL",
        value_parser = BoolishValueParser::new(),
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub init: Option<bool>,

    /// The repository format to store new blocks in: 2 (the default; data
    /// that compaction only moved is stored once) or 1 (one archive per
    /// block, readable by promsnap 0.1). For tests and migrations.
    #[arg(long, value_name = "1|2", hide = true, value_parser = clap::value_parser!(u32).range(1..=2))]
    pub repository_format: Option<u32>,

    /// Print the result as one JSON object on stdout (the error, if it fails).
    #[arg(long)]
    pub json: bool,

    #[command(flatten, next_help_heading = "Prometheus")]
    pub prometheus: PrometheusArgs,

    #[command(flatten)]
    pub repo: RepoArgs,

    #[command(flatten)]
    pub network: NetworkArgs,

    #[command(flatten)]
    pub metrics: MetricsArgs,

    #[command(flatten)]
    pub lock: LockArgs,
}

/// `promsnap serve`: the schedule and the service around the backups.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// When to back up: a cron expression of five fields (minute hour
    /// day-of-month month day-of-week), or six with seconds first, in UTC
    /// unless prefixed with CRON_TZ=ZONE, e.g. 'CRON_TZ=Europe/Berlin 15 3 *
    /// * *' [config: serve.schedule].
    #[arg(long, env = "PROMSNAP_SCHEDULE", value_name = "CRON")]
    pub schedule: Option<String>,

    /// Wait a random time up to DURATION after each scheduled time, so many
    /// servers on one schedule do not all hit the repository at once
    /// [default: 0s].
    #[arg(long, env = "PROMSNAP_RANDOM_DELAY", value_name = "DURATION")]
    pub random_delay: Option<Duration>,

    /// Where the HTTP endpoints listen [default: 0.0.0.0:8431].
    #[arg(long, env = "PROMSNAP_LISTEN_ADDRESS", value_name = "HOST:PORT")]
    pub listen_address: Option<String>,

    /// After each successful backup, verify the new snapshot: quick
    /// (objects exist with their sizes), read (download every object and
    /// check its hash) or deep (also the TSDB structure).
    #[arg(long, env = "PROMSNAP_VERIFY", value_enum, value_name = "LEVEL")]
    pub verify: Option<VerifyLevel>,

    /// On SIGTERM, how long a running backup may take to finish before it
    /// is aborted cleanly [default: 30s].
    #[arg(long, env = "PROMSNAP_SHUTDOWN_GRACE", value_name = "DURATION")]
    pub shutdown_grace: Option<Duration>,

    /// Log lines as text, or as one JSON object per line for log pipelines
    /// [default: text].
    #[arg(long, env = "PROMSNAP_LOG_FORMAT", value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// File holding the bearer token that POST /api/v1/backup requires.
    /// Without it the endpoint is off (404).
    #[arg(long, env = "PROMSNAP_TRIGGER_TOKEN_FILE", value_name = "FILE")]
    pub trigger_token_file: Option<PathBuf>,

    #[command(flatten)]
    pub backup: BackupArgs,
}

/// `serve --verify`: how thoroughly each new snapshot is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyLevel {
    Quick,
    Read,
    Deep,
}

/// `serve --log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub policy: Policy,

    /// Only apply the policy to this instance's snapshots (by default every
    /// instance keeps its own N).
    #[arg(long, value_name = "NAME")]
    pub instance: Option<String>,

    /// Show what would be removed and why; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Delete manifests that cannot be read (damaged, truncated, tampered
    /// with). Without it, a damaged manifest keeps every object, since it
    /// might reference any, and prune exits 3. `promsnap verify` names them;
    /// restore an older copy instead if you have one.
    #[arg(long)]
    pub forget_damaged: bool,

    /// How long to wait for running backups to finish [default: 10m].
    #[arg(long, value_name = "DURATION")]
    pub lock_wait: Option<Duration>,

    /// Print the decisions and the result as one JSON object on stdout (the
    /// error, if it fails).
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub repo: RepoArgs,

    #[command(flatten)]
    pub network: NetworkArgs,

    #[command(flatten)]
    pub metrics: MetricsArgs,

    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The snapshot to verify: an id (or unique prefix) or `latest`
    /// [default: every snapshot].
    #[arg(value_name = "SNAPSHOT_ID|latest", conflicts_with = "all")]
    pub snapshot: Option<String>,

    /// Verify every snapshot (the default when no snapshot is named).
    #[arg(long)]
    pub all: bool,

    /// Only check that manifests parse and objects exist with the right size.
    #[arg(long, conflicts_with = "deep")]
    pub quick: bool,

    /// Also decompress every block as it downloads and check each file's
    /// SHA-256 and the TSDB structure (index, every chunk record's CRC,
    /// tombstones, meta.json).
    #[arg(long)]
    pub deep: bool,

    /// Download only part of the objects: N% (random), or n/m (the n-th of m
    /// fixed groups, e.g. 1/7 .. 7/7 on seven nights covers everything).
    #[arg(long, value_name = "N%|n/m")]
    pub read_data_subset: Option<crate::repo::verify::Subset>,

    /// Also restore the snapshot(s) into a scratch directory and require
    /// `promtool tsdb list` to load every block. Without promtool (on PATH
    /// or --promtool) this is an error, unless --no-promtool.
    #[arg(long)]
    pub restore_test: bool,

    /// promtool to use for --restore-test [default: promtool on PATH].
    #[arg(long, value_name = "PATH", requires = "restore_test")]
    pub promtool: Option<PathBuf>,

    /// Run --restore-test without promtool: restore and check every hash,
    /// but do not ask Prometheus code to load the blocks.
    #[arg(long, requires = "restore_test", conflicts_with = "promtool")]
    pub no_promtool: bool,

    /// Only snapshots of this instance (or HA group): with `latest` its
    /// newest, with no snapshot named all of its snapshots. An instance with
    /// no snapshot is an error that lists the instances there are.
    #[arg(long, value_name = "NAME")]
    pub instance: Option<String>,

    /// Objects checked at the same time, largest first [default: 4; with
    /// --deep one per CPU, 4 to 16].
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,

    /// Scratch space [default: the system temp dir]. --deep keeps a block's
    /// small files there (index, meta.json, tombstones; chunks are checked
    /// in the stream); --restore-test restores whole snapshots into it.
    #[arg(long, value_name = "DIR")]
    pub scratch_dir: Option<PathBuf>,

    /// Print the report as one JSON object on stdout (the error, if it fails).
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub repo: RepoArgs,

    #[command(flatten)]
    pub network: NetworkArgs,

    #[command(flatten)]
    pub metrics: MetricsArgs,

    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args)]
pub struct CheckDirArgs {
    /// A Prometheus data directory, snapshot directory or single block.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Print the report as one JSON object on stdout (the error, if it fails).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Print the result as one JSON object on stdout (the error, if it fails).
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub repo: RepoArgs,

    #[command(flatten)]
    pub network: NetworkArgs,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Remove every lock, also live ones. Only when you are sure no promsnap
    /// is running against this repository.
    #[arg(long)]
    pub all: bool,

    #[command(flatten)]
    pub repo: RepoArgs,

    #[command(flatten)]
    pub network: NetworkArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only snapshots of this instance or HA group.
    #[arg(long, value_name = "NAME")]
    pub instance: Option<String>,

    /// Print the snapshots as one JSON object on stdout (the error, if it fails).
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub repo: RepoArgs,

    #[command(flatten)]
    pub network: NetworkArgs,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The snapshot to restore: its id (or a unique prefix of it), or `latest`.
    #[arg(value_name = "SNAPSHOT_ID|latest")]
    pub snapshot: String,

    /// The data directory to restore into. It must not be in use by a running
    /// Prometheus, and must be empty unless --force (or --merge).
    #[arg(long, value_name = "DIR", required_unless_present = "no_data")]
    pub data_dir: Option<PathBuf>,

    /// Restore into a non-empty directory by first moving its content aside
    /// into DIR.before-restore-<time>; with --config-to, move existing files
    /// that differ aside too (nothing is deleted).
    #[arg(long)]
    pub force: bool,

    /// Only restore the blocks with data at or after TIME: as promsnap
    /// prints it (2026-01-01 03:00, UTC), RFC 3339 (2026-01-01T03:00:00Z),
    /// a date, Unix seconds, `now`, or relative to now (-7d, -12h, -90m).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub from: Option<crate::time::TimeSpec>,

    /// Only restore the blocks with data at or before TIME (same forms as --from).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub to: Option<crate::time::TimeSpec>,

    /// Add the snapshot's missing blocks to the data directory of a RUNNING
    /// Prometheus (2.39 or newer), which loads them at its next block reload,
    /// within about a minute. Blocks it already has are skipped; nothing in
    /// the directory is changed or deleted. With --prometheus-url promsnap
    /// reads the server's retention and warns about blocks it would delete.
    #[arg(long, conflicts_with = "force")]
    pub merge: bool,

    /// Also write the snapshot's configuration and rule files below DIR, each
    /// at its original absolute path (/etc/prometheus/prometheus.yml goes to
    /// DIR/etc/prometheus/prometheus.yml).
    #[arg(long, value_name = "DIR")]
    pub config_to: Option<PathBuf>,

    /// Do nothing (exit 0, and say so) when the data directory already
    /// holds blocks; restore otherwise. For an init container that gives a
    /// new or replaced replica the history of its peer: a restarted pod
    /// keeps its data, without even reaching the repository. With `latest`,
    /// a repository that holds no snapshot of the instance yet (a new
    /// group's first start) is nothing to seed from: exit 0, with a warning
    /// that names the instances it holds.
    #[arg(long, requires = "data_dir", conflicts_with_all = ["force", "merge"])]
    pub if_empty: bool,

    /// Restore only the configuration files (with --config-to), no blocks.
    #[arg(
        long,
        requires = "config_to",
        conflicts_with_all = ["data_dir", "merge", "from", "to"]
    )]
    pub no_data: bool,

    /// Whose snapshot: an instance or HA group. `latest` needs it when the
    /// repository holds several; an id of another instance is refused.
    #[arg(long, value_name = "NAME")]
    pub instance: Option<String>,

    /// Blocks downloaded and unpacked at the same time, largest first
    /// [default: one per CPU, 4 to 16].
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,

    /// Print the result as one JSON object on stdout (the error, if it fails).
    #[arg(long)]
    pub json: bool,

    /// For --merge: the Prometheus whose retention to check.
    #[command(flatten, next_help_heading = "Prometheus (for --merge)")]
    pub prometheus: PrometheusArgs,

    #[command(flatten)]
    pub repo: RepoArgs,

    #[command(flatten)]
    pub network: NetworkArgs,

    #[command(flatten)]
    pub metrics: MetricsArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn path_style_takes_an_optional_value_without_eating_positionals() {
        let cli = Cli::try_parse_from([
            "promsnap",
            "restore",
            "--s3-path-style",
            "latest",
            "--data-dir",
            "/d",
            "--repo",
            "r",
        ])
        .unwrap();
        let Command::Restore(args) = cli.command else {
            panic!()
        };
        assert_eq!(args.snapshot, "latest");
        assert_eq!(args.repo.s3_path_style, Some(true));
    }

    #[test]
    fn restore_takes_relative_times_and_needs_a_data_dir_unless_no_data() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["promsnap", "restore", "latest", "--repo", "r"];
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv)
        };
        let cli = parse(&["--data-dir", "/d", "--from", "-7d", "--to", "now"]).unwrap();
        let Command::Restore(args) = cli.command else {
            panic!()
        };
        assert!(args.from.is_some() && args.to.is_some());
        assert!(parse(&[]).is_err(), "--data-dir is required");
        assert!(
            parse(&["--no-data"]).is_err(),
            "--no-data needs --config-to"
        );
        assert!(parse(&["--no-data", "--config-to", "/c"]).is_ok());
        assert!(parse(&["--no-data", "--config-to", "/c", "--data-dir", "/d"]).is_err());
        assert!(parse(&["--data-dir", "/d", "--merge", "--force"]).is_err());
        assert!(parse(&["--data-dir", "/d", "--from", "yesterday"]).is_err());
    }
}
