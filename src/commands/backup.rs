//! `promsnap backup`: snapshot Prometheus (or take a directory), store it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{HumanBytes, HumanDuration};

use super::Outcome;
use crate::archive::{self, PackOptions};
use crate::cli::{BackupArgs, PolicyArgs};
use crate::error::{ExitStatus, Hinted};
use crate::metrics::RunSummary;
use crate::output::{format_ms, Printer};
use crate::prometheus::{NotReady, Prometheus};
use crate::repo::backup::{self, BackupOptions, BackupReport};
use crate::repo::configfiles::host::{self as config_host, LocalFile};
use crate::repo::lock::{LockInfo, LockKind};
use crate::repo::manifest::Source;
use crate::repo::prune::PruneOptions;
use crate::repo::{ha, Repository};
use crate::settings::{self, FileConfig};
use crate::tsdb::{self, snapshots, Block};

/// Size of the chunks handed from the compressor to the uploader.
const CHUNK_SIZE: usize = 4 * 1024 * 1024;

const DEFAULT_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

/// With --ha-group: how young a group snapshot makes the other replicas skip.
const DEFAULT_MIN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(12 * 3600);

pub async fn run(args: BackupArgs, file: &FileConfig, printer: &Printer) -> Result<Outcome> {
    let args = with_file_defaults(args, file)?;
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
    // Which server, and what it says about itself: its external labels may
    // name the HA group, which decides whether this replica backs up at all.
    let server = match &args.from_dir {
        Some(_) => None,
        None => Some(connect(&args, file, printer).await?),
    };
    let ha_group = ha_group(&args, server.as_ref().map(|s| &s.1))?;
    let ha_lock = match &ha_group {
        None => None,
        Some(group) => {
            let min = args.min_interval.unwrap_or(DEFAULT_MIN_INTERVAL);
            let waiting =
                |h: &LockInfo| printer.info(&format!("waiting for {} to finish", h.describe()));
            match ha::claim(&repo, group, min, lock_wait, &waiting).await? {
                ha::Claim::Held(lock) => Some(lock),
                ha::Claim::Skip(reason) => {
                    print_skip(group, &reason, args.json, printer)?;
                    let summary = RunSummary {
                        instance: Some(opts.instance.clone()),
                        skipped: true,
                        ..RunSummary::default()
                    };
                    return Ok(Outcome {
                        status: ExitStatus::Success,
                        summary,
                    });
                }
            }
        }
    };
    let opts = BackupOptions { ha_group, ..opts };
    let config_files = config_files(&args, server.as_ref().map(|s| &s.0), printer).await?;
    let opts = BackupOptions {
        config_files,
        ..opts
    };
    let waiting = |h: &LockInfo| printer.info(&format!("waiting for {} to finish", h.describe()));
    let lock = repo
        .lock(LockKind::Shared, "backup", lock_wait, &waiting)
        .await?;
    let report = match (&args.from_dir, server) {
        (Some(dir), _) => {
            let (blocks, source) = from_dir(dir, printer)?;
            let opts = BackupOptions { source, ..opts };
            backup::run(&repo, blocks, opts, printer.progress("backup"), &lock).await?
        }
        (None, Some((prom, mut source))) => {
            let data_dir = data_dir(&prom, &args, file).await?;
            for name in snapshots::remove_orphans(&data_dir) {
                printer.info(&format!(
                    "removed snapshot {name}, left behind by a promsnap run that was killed"
                ));
            }
            let name = prom.snapshot(args.skip_head).await?;
            source.snapshot_name = Some(name.clone());
            // From here on the snapshot is removed however the run ends.
            let taken = snapshots::Taken::record(&data_dir, &name, args.keep_local_snapshot)?;
            let snap_dir = taken.dir().to_path_buf();
            printer.info(&format!(
                "Prometheus made snapshot {name} at {}",
                snap_dir.display()
            ));
            let blocks = snapshot_blocks(&snap_dir)?;
            let opts = BackupOptions { source, ..opts };
            backup::run(&repo, blocks, opts, printer.progress("backup"), &lock).await?
        }
        (None, None) => unreachable!("a server is connected unless --from-dir"),
    };
    lock.release().await?;
    if let Some(l) = ha_lock {
        l.release().await?;
    }
    print_report(&report, args.json, printer)?;
    let Some((policy, grace)) = prune_policy else {
        return Ok(outcome(ExitStatus::Success, &repo, &report).await);
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
            Ok(outcome(ExitStatus::Success, &repo, &report).await)
        }
        Err(e) => {
            printer.error(&e.context("the backup is stored, but pruning afterwards failed"));
            Ok(outcome(ExitStatus::Problems, &repo, &report).await)
        }
    }
}

/// The run's summary for the metrics: the report, and how many snapshots
/// the repository holds now (one listing; left out if that fails).
async fn outcome(status: ExitStatus, repo: &Repository, r: &BackupReport) -> Outcome {
    let snapshots = repo.snapshot_ids().await.ok().map(|ids| ids.len() as u64);
    Outcome {
        status,
        summary: RunSummary {
            instance: Some(r.instance.clone()),
            bytes_uploaded: Some(r.bytes_uploaded),
            bytes_reused: Some(r.bytes_total.saturating_sub(r.bytes_read)),
            blocks_new: Some(r.blocks_new as u64),
            blocks_reused: Some(r.blocks_reused as u64),
            snapshots,
            skipped: false,
        },
    }
}

/// Fills what the command line left unset from the file's [backup] and
/// [prometheus] sections (flags and their variables win), so the rest of
/// the command reads one set of arguments.
fn with_file_defaults(mut args: BackupArgs, file: &FileConfig) -> Result<BackupArgs> {
    let (b, p) = (&file.backup, &file.prometheus);
    let duration = |key: &str, text: &Option<String>| -> Result<Option<std::time::Duration>> {
        text.as_deref()
            .map(|t| {
                humantime::parse_duration(t).map_err(|e| {
                    Hinted::usage(
                        format!("invalid backup.{key} in the configuration file: {e}"),
                        "e.g. \"12h\" or \"10m\"",
                    )
                    .into()
                })
            })
            .transpose()
    };
    args.skip_head |= b.skip_head.unwrap_or(false);
    args.keep_local_snapshot |= b.keep_local_snapshot.unwrap_or(false);
    args.prometheus_config = args.prometheus_config.or_else(|| p.config_file.clone());
    if args.include.is_empty() {
        args.include = b.include.clone().unwrap_or_default();
    }
    args.ha_group = args.ha_group.or_else(|| b.ha_group.clone());
    if args.replica_label.is_empty() {
        args.replica_label = b.replica_labels.clone().unwrap_or_default();
    }
    if args.min_interval.is_none() {
        args.min_interval = duration("min_interval", &b.min_interval)?;
    }
    if args.lock_wait.is_none() {
        args.lock_wait = duration("lock_wait", &b.lock_wait)?;
    }
    Ok(args)
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
    let concurrency = args.concurrency.or(f.concurrency).unwrap_or(2).max(1);
    Ok(BackupOptions {
        concurrency,
        pack: PackOptions {
            level: args
                .zstd_level
                .or(f.zstd_level)
                .unwrap_or(archive::DEFAULT_LEVEL),
            threads: args.zstd_threads.or(f.zstd_threads).unwrap_or(cpus),
            chunk_size: CHUNK_SIZE,
        },
        instance,
        ha_group: None,
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
        config_files: Vec::new(),
    })
}

/// Prometheus's configuration file (`--prometheus-config`, else the
/// `config.file` it reports), its rule files and the `--include` files, read
/// before the snapshot so that a missing explicit file fails early. Files
/// Prometheus named but this host cannot read only warn: the blocks matter
/// most.
async fn config_files(
    args: &BackupArgs,
    prom: Option<&Prometheus>,
    printer: &Printer,
) -> Result<Vec<LocalFile>> {
    let config = match (&args.prometheus_config, prom) {
        (Some(path), _) => Some(path.clone()),
        (None, Some(prom)) => reported_config_file(prom, printer).await,
        (None, None) => None,
    };
    let collected = config_host::collect(&config_host::Sources {
        config: config.as_deref(),
        config_explicit: args.prometheus_config.is_some(),
        includes: &args.include,
    })?;
    for warning in &collected.warnings {
        printer.warn(warning);
    }
    Ok(collected.files)
}

/// The `config.file` flag of the server, when it is an absolute path (a
/// relative one is relative to a working directory we cannot know).
async fn reported_config_file(prom: &Prometheus, printer: &Printer) -> Option<PathBuf> {
    let reported = match prom.flags().await {
        Ok(flags) => flags.get("config.file").cloned().unwrap_or_default(),
        Err(e) => {
            printer.warn(&format!(
                "configuration files not backed up: could not ask Prometheus for its \
                 configuration file: {e:#}"
            ));
            return None;
        }
    };
    let path = PathBuf::from(&reported);
    if reported.is_empty() || path.is_relative() {
        printer.warn(&format!(
            "configuration files not backed up: Prometheus names its configuration file \
             {reported:?}, not an absolute path; pass --prometheus-config"
        ));
        return None;
    }
    Some(path)
}

/// How long to wait for a Prometheus that answers /-/ready with 503.
const DEFAULT_WAIT_READY: Duration = Duration::from_secs(300);

/// How often /-/ready is asked again while waiting.
const READY_POLL: Duration = Duration::from_secs(2);

/// The first of the `--prometheus-url`s that is ready, and what it says
/// about itself. While every one of them answers "not ready" (503: started,
/// still replaying its WAL, which takes minutes on a big server), this
/// waits up to `--wait-ready`: a nightly backup that meets a restart should
/// run late, not fail. A server that cannot be reached fails at once.
async fn connect(
    args: &BackupArgs,
    file: &FileConfig,
    printer: &Printer,
) -> Result<(Prometheus, Source)> {
    let base = settings::prometheus_options(&args.prometheus, file)?;
    let urls = settings::prometheus_urls(&args.prometheus, file);
    let mut servers = urls
        .iter()
        .map(|url| {
            Prometheus::new(crate::prometheus::PrometheusOptions {
                url: url.clone(),
                ..base.clone()
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let wait = args.wait_ready.unwrap_or(DEFAULT_WAIT_READY);
    let deadline = std::time::Instant::now() + wait;
    let mut told = false;
    loop {
        let mut failures = Vec::new();
        for i in 0..servers.len() {
            match servers[i].ready().await {
                Ok(()) => {
                    if !failures.is_empty() {
                        let url = servers[i].url();
                        printer.info(&format!("using {url}; not ready: {}", listed(&failures)));
                    }
                    let source = describe_server(&servers[i], printer).await;
                    return Ok((servers.swap_remove(i), source));
                }
                Err(e) => failures.push((servers[i].url().to_string(), e)),
            }
        }
        let starting = !failures.is_empty()
            && failures
                .iter()
                .all(|(_, e)| e.downcast_ref::<NotReady>().is_some());
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if starting && !left.is_zero() {
            if !told {
                printer.info(&format!(
                    "Prometheus is not ready yet ({}); waiting up to {} for it (--wait-ready)",
                    last(&failures[0].1),
                    humantime::format_duration(wait)
                ));
                told = true;
            }
            tokio::time::sleep(READY_POLL.min(left)).await;
            continue;
        }
        if failures.len() == 1 {
            return Err(failures.remove(0).1);
        }
        return Err(Hinted::failure(
            format!(
                "none of the {} Prometheus servers is ready: {}",
                urls.len(),
                listed(&failures)
            ),
            "check that at least one --prometheus-url is running and reachable",
        )
        .into());
    }
}

/// The innermost cause of an error, for one-line summaries.
fn last(e: &anyhow::Error) -> String {
    e.chain().last().map(|c| c.to_string()).unwrap_or_default()
}

/// `url: cause; url: cause` for servers that were not ready.
fn listed(failures: &[(String, anyhow::Error)]) -> String {
    let parts: Vec<String> = failures
        .iter()
        .map(|(url, e)| format!("{url}: {}", last(e)))
        .collect();
    parts.join("; ")
}

/// The HA group this backup belongs to, if any.
fn ha_group(args: &BackupArgs, source: Option<&Source>) -> Result<Option<String>> {
    let Some(spec) = args.ha_group.as_deref() else {
        return Ok(None);
    };
    if spec != "auto" {
        if spec.is_empty() || spec.len() > 256 || spec.chars().any(char::is_control) {
            return Err(Hinted::usage(
                format!("invalid --ha-group {spec:?}"),
                "use a short printable name, or `auto`",
            )
            .into());
        }
        return Ok(Some(spec.to_string()));
    }
    let Some(source) = source else {
        return Err(Hinted::usage(
            "--ha-group auto needs the external labels that Prometheus reports",
            "with --from-dir, name the group: --ha-group NAME",
        )
        .into());
    };
    let replica: Vec<&str> = if args.replica_label.is_empty() {
        vec!["replica", "prometheus_replica"]
    } else {
        args.replica_label.iter().map(String::as_str).collect()
    };
    let group: Vec<String> = source
        .external_labels
        .iter()
        .filter(|(k, _)| !replica.contains(&k.as_str()))
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

fn print_skip(group: &str, reason: &str, json: bool, printer: &Printer) -> Result<()> {
    if json {
        return printer
            .json(&serde_json::json!({ "skipped": true, "ha_group": group, "reason": reason }));
    }
    printer.info(&format!("skipped: {reason}"));
    Ok(())
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
    let configs = match r.config_files {
        0 => String::new(),
        n => format!("  configs   {n} files ({} new)\n", r.config_files_new),
    };
    printer.stdout(&format!(
        "snapshot {id} stored in {repo}\n  instance  {inst}\n  blocks    {n} ({new} new, {reused} reused)\n  \
         data      {range}\n{configs}  read      {read} of {total}\n  uploaded  {up}{ratio}\n  took      {took}\n",
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
