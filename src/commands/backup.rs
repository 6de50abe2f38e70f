//! `promsnap backup`: snapshot Prometheus (or take a directory), store it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use indicatif::{HumanBytes, HumanDuration};

use crate::archive::PackOptions;
use crate::cli::{BackupArgs, PolicyArgs};
use crate::error::{ExitStatus, Hinted};
use crate::output::{format_ms, Printer};
use crate::prometheus::Prometheus;
use crate::repo::backup::{self, BackupOptions, BackupReport};
use crate::repo::lock::{LockInfo, LockKind};
use crate::repo::manifest::Source;
use crate::repo::prune::PruneOptions;
use crate::settings::{self, FileConfig};
use crate::tsdb::{self, Block};

/// Size of the chunks handed from the compressor to the uploader.
const CHUNK_SIZE: usize = 8 * 1024 * 1024;

const DEFAULT_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

pub async fn run(args: BackupArgs, file: &FileConfig, printer: &Printer) -> Result<ExitStatus> {
    // Check everything that can be checked before touching Prometheus.
    let prune_policy = if args.prune {
        let policy = settings::policy(&PolicyArgs::default(), file)?;
        if policy.is_empty() {
            return Err(Hinted::usage(
                "--prune needs a retention policy in the configuration file",
                "add a [prune] section with keep_daily = 7 or similar (see the README), or run \
                 `promsnap prune` with --keep-* flags",
            )
            .into());
        }
        Some((policy, settings::grace(None, file)?))
    } else {
        None
    };
    let repo = super::open_repo(&args.repo, file).await?;
    let opts = options(&args, file)?;
    let lock_wait = args.lock_wait.unwrap_or(DEFAULT_LOCK_WAIT);
    let waiting = |h: &LockInfo| printer.info(&format!("waiting for {} to finish", h.describe()));
    let lock = repo
        .lock(LockKind::Shared, "backup", lock_wait, &waiting)
        .await?;
    let report = match &args.from_dir {
        Some(dir) => {
            let (blocks, source) = from_dir(dir, printer)?;
            let opts = BackupOptions { source, ..opts };
            backup::run(&repo, blocks, opts, printer.progress("backup"), &lock).await?
        }
        None => {
            let prom = Prometheus::new(settings::prometheus_options(&args.prometheus, file)?)?;
            let data_dir = data_dir(&prom, &args, file).await?;
            let mut source = describe_server(&prom, printer).await;
            let name = prom.snapshot(args.skip_head).await?;
            source.snapshot_name = Some(name.clone());
            let snap_dir = data_dir.join("snapshots").join(&name);
            let _cleanup = SnapshotCleanup {
                dir: snap_dir.clone(),
                keep: args.keep_local_snapshot,
            };
            printer.info(&format!(
                "Prometheus made snapshot {name} at {}",
                snap_dir.display()
            ));
            let blocks = snapshot_blocks(&snap_dir)?;
            let opts = BackupOptions { source, ..opts };
            backup::run(&repo, blocks, opts, printer.progress("backup"), &lock).await?
        }
    };
    lock.release().await?;
    print_report(&report, args.json, printer)?;
    let Some((policy, grace)) = prune_policy else {
        return Ok(ExitStatus::Success);
    };
    let opts = PruneOptions {
        policy,
        instance: Some(report.instance.clone()),
        dry_run: false,
        grace: chrono::Duration::from_std(grace)?,
        now: chrono::Utc::now(),
    };
    match super::prune::prune_locked(&repo, &opts, lock_wait, printer).await {
        Ok(r) => {
            printer.info(&format!(
                "pruned {} snapshots and {} objects",
                r.snapshots_removed, r.objects_deleted
            ));
            Ok(ExitStatus::Success)
        }
        Err(e) => {
            printer.error(&e.context("the backup is stored, but pruning afterwards failed"));
            Ok(ExitStatus::Problems)
        }
    }
}

fn options(args: &BackupArgs, file: &FileConfig) -> Result<BackupOptions> {
    let f = &file.backup;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let instance = args
        .instance
        .clone()
        .or_else(|| f.instance.clone())
        .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned());
    if instance.is_empty() || instance.len() > 128 || instance.chars().any(char::is_control) {
        return Err(Hinted::usage(
            format!("invalid instance name {instance:?}"),
            "use --instance with a short printable name, e.g. prometheus-eu1-a",
        )
        .into());
    }
    Ok(BackupOptions {
        concurrency: args.concurrency.or(f.concurrency).unwrap_or(2).max(1),
        pack: PackOptions {
            level: args.zstd_level.or(f.zstd_level).unwrap_or(3),
            threads: args.zstd_threads.or(f.zstd_threads).unwrap_or(cpus),
            chunk_size: CHUNK_SIZE,
        },
        instance,
        source: Source {
            kind: String::new(),
            prometheus_url: None,
            prometheus_version: None,
            external_labels: Default::default(),
            snapshot_name: None,
            directory: None,
        },
        now: args
            .time
            .map_or_else(chrono::Utc::now, |t| t.with_timezone(&chrono::Utc)),
    })
}

/// `--data-dir`, or Prometheus's own `storage.tsdb.path` when it is absolute
/// and exists here (promsnap must run on the Prometheus host).
async fn data_dir(prom: &Prometheus, args: &BackupArgs, file: &FileConfig) -> Result<PathBuf> {
    if let Some(dir) = args
        .data_dir
        .clone()
        .or_else(|| file.prometheus.data_dir.clone())
    {
        return Ok(dir);
    }
    let flags = prom
        .flags()
        .await
        .context("could not ask Prometheus for its data directory")?;
    match flags.get("storage.tsdb.path").map(PathBuf::from) {
        Some(p) if p.is_absolute() && p.is_dir() => Ok(p),
        other => Err(Hinted::usage(
            match other {
                Some(p) => format!(
                    "Prometheus stores its data in {:?}, which is not an absolute path that \
                     exists on this machine",
                    p
                ),
                None => "Prometheus did not say where it stores its data".into(),
            },
            "pass --data-dir with Prometheus's --storage.tsdb.path as seen from this machine",
        )
        .into()),
    }
}

/// Version and external labels, for the manifest. Missing ones only warn:
/// a backup must not fail for want of metadata.
async fn describe_server(prom: &Prometheus, printer: &Printer) -> Source {
    let version = prom.version().await;
    let labels = prom.external_labels().await;
    if let Err(e) = &version {
        printer.warn(&format!("could not read the Prometheus version: {e:#}"));
    }
    if let Err(e) = &labels {
        printer.warn(&format!("could not read the external labels: {e:#}"));
    }
    Source {
        kind: "api".into(),
        prometheus_url: Some(prom.url().to_string()),
        prometheus_version: version.ok(),
        external_labels: labels.unwrap_or_default(),
        snapshot_name: None,
        directory: None,
    }
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

/// Removes the snapshot directory when the backup ends, however it ends
/// (success, error or Ctrl-C), so snapshots never pile up on the
/// Prometheus disk.
struct SnapshotCleanup {
    dir: PathBuf,
    keep: bool,
}

impl Drop for SnapshotCleanup {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                eprintln!(
                    "warning: could not remove the local snapshot {}: {e}; remove it by hand",
                    self.dir.display()
                );
            }
        }
    }
}

fn print_report(r: &BackupReport, json: bool, printer: &Printer) -> Result<()> {
    if json {
        return printer.json(r);
    }
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
    printer.stdout(&format!(
        "snapshot {id} stored in {repo}\n  instance  {inst}\n  blocks    {n} ({new} new, {reused} reused)\n  \
         data      {range}\n  read      {read} of {total}\n  uploaded  {up}{ratio}\n  took      {took}\n",
        id = r.snapshot_id,
        repo = r.repository,
        inst = r.instance,
        n = r.blocks,
        new = r.blocks_new,
        reused = r.blocks_reused,
        read = HumanBytes(r.bytes_read),
        total = HumanBytes(r.bytes_total),
        up = HumanBytes(r.bytes_uploaded),
        took = HumanDuration(std::time::Duration::from_secs_f64(r.duration_seconds)),
    ))
}
