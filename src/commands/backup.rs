//! `promsnap backup`: snapshot Prometheus (or take a directory), store it.
//!
//! The story of a backup: connect to the Prometheus (the first ready one of
//! its replicas), decide whether this replica's turn has come (HA groups),
//! collect the configuration files, take the repository's shared lock, take
//! the snapshot and store its blocks, release the locks, report, and prune
//! if asked. Everything that knows about the server lives in
//! `crate::prometheus`; everything that knows about the repository format in
//! `crate::repo`.

use std::path::Path;

use anyhow::{Context, Result};
use indicatif::{HumanBytes, HumanDuration};
use serde::Serialize;

use super::Outcome;
use crate::error::{ExitStatus, Hinted};
use crate::json::DataRange;
use crate::metrics::RunSummary;
use crate::output::{format_ms, Printer};
use crate::prometheus::config_files::{self, LocalFile};
use crate::prometheus::{self, snapshots, Connected};
use crate::repo::backup::{self, BackupOptions, BackupReport};
use crate::repo::lock::{LockInfo, LockKind, RepoLock};
use crate::repo::manifest::Source;
use crate::repo::prune::{self, PruneOptions, PruneReport};
use crate::repo::retention::Policy;
use crate::repo::{ha, Opened, Repository};
use crate::settings::{ApiSource, BackupSettings, BackupSource, HaGroup, HaSettings};
use crate::tsdb::{self, Block};

pub async fn run(args: BackupSettings, printer: &Printer) -> Result<Outcome> {
    let repo = open_repo(&args, printer).await?;
    let server = match &args.source {
        BackupSource::Api(api) => Some(connect(api, printer).await?),
        BackupSource::Dir(_) => None,
    };
    let ha_group = ha_group(args.ha.as_ref(), server.as_ref())?;
    let ha_lock = match (&ha_group, &args.ha) {
        (Some(group), Some(ha)) => {
            let waiting = waiting(printer);
            let turn = ha::claim(&repo, group, ha.min_interval, args.lock_wait, &waiting);
            match turn.await? {
                ha::Claim::Held(lock) => Some(lock),
                ha::Claim::Skip(reason) => return skipped(&args, group, &reason, printer),
            }
        }
        _ => None,
    };
    let config_files = config_files(&args, server.as_ref(), printer).await?;
    let lock = repo
        .lock(
            LockKind::Shared,
            "backup",
            args.lock_wait,
            &waiting(printer),
        )
        .await?;
    let opts = BackupOptions {
        concurrency: args.concurrency,
        pack: args.pack,
        format: args.format,
        instance: args.instance.clone(),
        ha_group: ha_group.clone(),
        source: Source::default(),
        now: args.time,
        config_files,
    };
    let report = match (&args.source, server) {
        (BackupSource::Dir(dir), _) => back_up_dir(&repo, dir, opts, &lock, printer).await?,
        (BackupSource::Api(api), Some(server)) => {
            back_up_snapshot(&repo, api, server, opts, &lock, printer).await?
        }
        (BackupSource::Api(_), None) => unreachable!("a server is connected unless --from-dir"),
    };
    lock.release().await?;
    if let Some(l) = ha_lock {
        l.release().await?;
    }
    if !args.json {
        print_report(&report, printer)?;
    }
    let pruned = match args.prune {
        Some(policy) => Some(prune_after(&repo, policy, &report, args.lock_wait, printer).await),
        None => None,
    };
    let status = match pruned {
        Some(Err(_)) => ExitStatus::Problems,
        _ => ExitStatus::Success,
    };
    let json = Json::stored(&report, ha_group.as_deref(), pruned.as_ref());
    outcome(status, &repo, &report, ha_group.as_deref())
        .await
        .with_document(args.json, &json)
}

/// `backup --json` (docs/json/backup.schema.json): a stored snapshot, or
/// (HA groups) a backup skipped because another replica's turn it was.
#[derive(Serialize)]
struct Json<'a> {
    skipped: bool,
    /// Why it was skipped.
    reason: Option<&'a str>,
    instance: &'a str,
    ha_group: Option<&'a str>,
    /// Absent when skipped.
    #[serde(flatten)]
    stored: Option<Stored<'a>>,
}

#[derive(Serialize)]
struct Stored<'a> {
    snapshot_id: &'a str,
    repository: &'a str,
    blocks: usize,
    blocks_new: usize,
    blocks_reused: usize,
    bytes_read: u64,
    bytes_uploaded: u64,
    bytes_deduplicated: u64,
    bytes_total: u64,
    compression_ratio: Option<f64>,
    #[serde(flatten)]
    data: DataRange,
    config_files: usize,
    config_files_new: usize,
    duration_seconds: f64,
    /// With --prune: what the prune afterwards removed.
    prune: Option<Pruned>,
    prune_error: Option<String>,
}

#[derive(Serialize)]
struct Pruned {
    snapshots_removed: usize,
    objects_deleted: usize,
    bytes_freed: u64,
}

impl<'a> Json<'a> {
    fn stored(
        r: &'a BackupReport,
        ha_group: Option<&'a str>,
        pruned: Option<&Result<PruneReport, String>>,
    ) -> Json<'a> {
        let (prune, prune_error) = match pruned {
            Some(Ok(p)) => (
                Some(Pruned {
                    snapshots_removed: p.snapshots_removed,
                    objects_deleted: p.objects_deleted,
                    bytes_freed: p.bytes_freed,
                }),
                None,
            ),
            Some(Err(e)) => (None, Some(e.clone())),
            None => (None, None),
        };
        Json {
            skipped: false,
            reason: None,
            stored: Some(Stored {
                snapshot_id: &r.snapshot_id,
                repository: &r.repository,
                blocks: r.blocks,
                blocks_new: r.blocks_new,
                blocks_reused: r.blocks_reused,
                bytes_read: r.bytes_read,
                bytes_uploaded: r.bytes_uploaded,
                bytes_deduplicated: r.bytes_deduplicated,
                bytes_total: r.bytes_total,
                compression_ratio: r.compression_ratio,
                data: DataRange::new(r.min_time, r.max_time),
                config_files: r.config_files,
                config_files_new: r.config_files_new,
                duration_seconds: r.duration_seconds,
                prune,
                prune_error,
            }),
            instance: &r.instance,
            ha_group,
        }
    }
}

/// The repository, created first with `--init` when the location holds
/// none; a format 1 repository gets its config object now.
async fn open_repo(args: &BackupSettings, printer: &Printer) -> Result<Repository> {
    let storage = super::open_storage(&args.repo).await?;
    let (mut repo, opened) = Repository::open(storage, &args.repo.url, args.init, true).await?;
    if let Opened::Created(config) = opened {
        printer.info(&format!(
            "created a promsnap repository at {} (id {})",
            repo.describe(),
            config.id
        ));
    }
    repo.adopt().await?;
    Ok(repo)
}

/// Says who holds the repository while we wait for it.
fn waiting(printer: &Printer) -> impl Fn(&LockInfo) + Sync + '_ {
    move |h: &LockInfo| printer.info(&format!("waiting for {} to finish", h.describe()))
}

/// The first ready `--prometheus-url`, with what it says about itself.
async fn connect(api: &ApiSource, printer: &Printer) -> Result<Connected> {
    let notify = |line: &str| printer.info(line);
    let server = prometheus::connect(
        &api.prometheus.urls,
        &api.prometheus.client,
        api.wait_ready,
        &notify,
    )
    .await?;
    for warning in &server.warnings {
        printer.warn(warning);
    }
    Ok(server)
}

/// Takes a snapshot through the admin API and stores its blocks. The
/// snapshot is removed when this returns, however it returns (and by the
/// next backup if this process is killed).
async fn back_up_snapshot(
    repo: &Repository,
    api: &ApiSource,
    server: Connected,
    opts: BackupOptions,
    lock: &RepoLock,
    printer: &Printer,
) -> Result<BackupReport> {
    let prom = &server.client;
    let data_dir = match &api.data_dir {
        Some(dir) => dir.clone(),
        None => prom
            .flags()
            .await
            .context("could not ask Prometheus for its data directory")?
            .data_dir()?,
    };
    let orphans = snapshots::remove_orphans(&data_dir);
    for name in &orphans.removed {
        printer.info(&format!(
            "removed snapshot {name}, left behind by a promsnap run that was killed"
        ));
    }
    for warning in &orphans.warnings {
        printer.warn(warning);
    }
    let name = prom.snapshot(api.skip_head).await?;
    let taken =
        snapshots::Taken::record(&data_dir, &name, api.keep_local_snapshot, printer.warner())?;
    printer.info(&format!(
        "Prometheus made its local snapshot {name} at {} ({}, not a promsnap id)",
        taken.dir().display(),
        match api.keep_local_snapshot {
            true => "kept afterwards",
            false => "removed after the backup",
        }
    ));
    let blocks = snapshot_blocks(taken.dir())?;
    let info = server.info;
    let source = Source {
        kind: "api".into(),
        prometheus_url: Some(info.url),
        prometheus_version: info.version,
        external_labels: info.external_labels,
        snapshot_name: Some(name),
        directory: None,
    };
    let opts = BackupOptions { source, ..opts };
    backup::run(repo, blocks, opts, printer.progress("backup"), lock).await
}

/// Stores the blocks of `--from-dir`.
async fn back_up_dir(
    repo: &Repository,
    dir: &Path,
    opts: BackupOptions,
    lock: &RepoLock,
    printer: &Printer,
) -> Result<BackupReport> {
    let (blocks, source) = from_dir(dir, printer)?;
    let opts = BackupOptions { source, ..opts };
    backup::run(repo, blocks, opts, printer.progress("backup"), lock).await
}

/// The HA group this backup belongs to, if any: the name given, or for
/// `auto` the external labels minus the replica labels.
fn ha_group(ha: Option<&HaSettings>, server: Option<&Connected>) -> Result<Option<String>> {
    let Some(ha) = ha else {
        return Ok(None);
    };
    let server = match (&ha.group, server) {
        (HaGroup::Named(name), _) => return Ok(Some(name.clone())),
        (HaGroup::Auto, Some(server)) => server,
        (HaGroup::Auto, None) => unreachable!("settings refuse auto without a server"),
    };
    let group: Vec<String> = server
        .info
        .external_labels
        .iter()
        .filter(|(k, _)| !ha.replica_labels.contains(k))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if group.is_empty() {
        return Err(Hinted::usage(
            "--ha-group auto: Prometheus has no external labels besides the replica label",
            "name the group with --ha-group NAME, or set external_labels (e.g. cluster) in prometheus.yml",
        )
        .into());
    }
    Ok(Some(group.join(",")))
}

/// Another replica of the group has (or is storing) a recent snapshot:
/// this one says why it skips and succeeds.
fn skipped(args: &BackupSettings, group: &str, reason: &str, printer: &Printer) -> Result<Outcome> {
    if !args.json {
        printer.info(&format!("skipped: {reason}"));
    }
    let json = Json {
        skipped: true,
        reason: Some(reason),
        stored: None,
        instance: &args.instance,
        ha_group: Some(group),
    };
    Outcome {
        status: ExitStatus::Success,
        summary: RunSummary {
            instance: Some(args.instance.clone()),
            group: Some(group.to_string()),
            skipped: true,
            ..RunSummary::default()
        },
        document: None,
    }
    .with_document(args.json, &json)
}

/// `backup --prune`: the configuration file's policy for this instance. A
/// failed prune is exit 3 (the backup is stored, housekeeping failed): it
/// returns the error as printed.
async fn prune_after(
    repo: &Repository,
    policy: Policy,
    report: &BackupReport,
    lock_wait: std::time::Duration,
    printer: &Printer,
) -> Result<PruneReport, String> {
    let opts = PruneOptions {
        policy,
        instance: Some(report.instance.clone()),
        dry_run: false,
        now: chrono::Utc::now(),
        forget_damaged: false,
        max_unused: policy.max_unused.unwrap_or_default(),
    };
    match prune::run_locked(repo, &opts, lock_wait, &waiting(printer)).await {
        Ok(r) => {
            printer.info(&format!(
                "pruned {} snapshots and {} objects",
                r.snapshots_removed, r.objects_deleted
            ));
            Ok(r)
        }
        Err(e) => {
            let e = e.context("the backup is stored, but pruning afterwards failed");
            printer.error(&e);
            Err(format!("{e:#}"))
        }
    }
}

/// The run's summary for the metrics: the report, and how many snapshots
/// the repository holds now (one listing; left out if that fails).
async fn outcome(
    status: ExitStatus,
    repo: &Repository,
    r: &BackupReport,
    ha_group: Option<&str>,
) -> Outcome {
    let snapshots = repo.snapshot_ids().await.ok().map(|ids| ids.len() as u64);
    Outcome {
        status,
        summary: RunSummary {
            instance: Some(r.instance.clone()),
            group: Some(ha_group.unwrap_or(&r.instance).to_string()),
            bytes_uploaded: Some(r.bytes_uploaded),
            bytes_reused: Some(r.bytes_total.saturating_sub(r.bytes_read)),
            blocks_new: Some(r.blocks_new as u64),
            blocks_reused: Some(r.blocks_reused as u64),
            snapshots,
            skipped: false,
        },
        document: None,
    }
}

/// Prometheus's configuration file (`--prometheus-config`, else the
/// `config.file` it reports), its rule files and the `--include` files, read
/// before the snapshot so that a missing explicit file fails early. Files
/// Prometheus named but this host cannot read only warn: the blocks matter
/// most.
async fn config_files(
    args: &BackupSettings,
    server: Option<&Connected>,
    printer: &Printer,
) -> Result<Vec<LocalFile>> {
    let config = match (&args.prometheus_config, server) {
        (Some(path), _) => Some(path.clone()),
        (None, Some(server)) => match server.client.flags().await {
            Ok(flags) => flags
                .config_file()
                .map_err(|why| format!("{why}; pass --prometheus-config")),
            Err(e) => Err(format!(
                "could not ask Prometheus for its configuration file: {e:#}"
            )),
        }
        .map_err(|why| printer.warn(&format!("configuration files not backed up: {why}")))
        .ok(),
        (None, None) => None,
    };
    let collected = config_files::collect(&config_files::Sources {
        config: config.as_deref(),
        config_explicit: args.prometheus_config.is_some(),
        includes: &args.include,
    })?;
    for warning in &collected.warnings {
        printer.warn(warning);
    }
    Ok(collected.files)
}

fn snapshot_blocks(dir: &Path) -> Result<Vec<Block>> {
    if !dir.is_dir() {
        return Err(Hinted::usage(
            format!(
                "Prometheus reported a snapshot, but {} does not exist",
                dir.display()
            ),
            "--data-dir must be the directory this Prometheus writes to (its \
             --storage.tsdb.path), as seen from the machine promsnap runs on",
        )
        .into());
    }
    Ok(tsdb::find_blocks(dir)?.0)
}

fn from_dir(dir: &Path, printer: &Printer) -> Result<(Vec<Block>, Source)> {
    if tsdb::ensure_not_in_use(dir).is_err() {
        return Err(Hinted::usage(
            format!("{} belongs to a running Prometheus", dir.display()),
            "its blocks can be compacted away while they are read: omit --from-dir to back up \
             through the snapshot API, or stop Prometheus first",
        )
        .into());
    }
    let (blocks, skipped) = tsdb::find_blocks(dir).map_err(|e| {
        e.context(Hinted::usage(
            format!("could not read blocks from {}", dir.display()),
            "--from-dir takes a snapshot directory or a stopped Prometheus's data directory",
        ))
    })?;
    let skipped: Vec<String> = skipped.into_iter().filter(|s| s != "lock").collect();
    if !skipped.is_empty() {
        printer.info(&format!(
            "note: only blocks are backed up; skipping {}",
            skipped.join(", ")
        ));
    }
    let source = Source {
        kind: "dir".into(),
        prometheus_url: None,
        prometheus_version: None,
        external_labels: Default::default(),
        snapshot_name: None,
        directory: Some(dir.display().to_string()),
    };
    Ok((blocks, source))
}

fn print_report(r: &BackupReport, printer: &Printer) -> Result<()> {
    if !printer.summaries() {
        return Ok(());
    }
    let range = match (r.min_time, r.max_time) {
        (Some(a), Some(b)) => format!("{} .. {} UTC", format_ms(a), format_ms(b)),
        _ => "no blocks".into(),
    };
    let ratio = r
        .compression_ratio
        .map(|c| format!(", compression {c:.2}x"))
        .unwrap_or_default();
    let configs = match r.config_files {
        0 => String::new(),
        n => format!("  configs   {n} files ({} new)\n", r.config_files_new),
    };
    printer.stdout(&format!(
        "promsnap snapshot {id} stored in {repo}\n  instance  {inst}\n  blocks    {n} ({new} new, {reused} reused)\n  \
         data      {range}\n{configs}  read      {read} of {total}\n  uploaded  {up}{ratio}\n  \
         deduplicated {dedup} already in the repository\n  took      {took}\n",
        id = r.snapshot_id,
        repo = r.repository,
        inst = r.instance,
        n = r.blocks,
        new = r.blocks_new,
        reused = r.blocks_reused,
        read = HumanBytes(r.bytes_read),
        total = HumanBytes(r.bytes_total),
        up = HumanBytes(r.bytes_uploaded),
        dedup = HumanBytes(r.bytes_deduplicated),
        took = HumanDuration(std::time::Duration::from_secs_f64(r.duration_seconds)),
    ))
}
