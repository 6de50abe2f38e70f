//! `promsnap restore`: one snapshot into a data directory.
//!
//! Also the targeted forms: only the blocks of a time window (`--from`,
//! `--to`), only what a running Prometheus is missing (`--merge`, with a
//! retention check against the server when `--prometheus-url` is given), and
//! the configuration files (`--config-to`, alone with `--no-data`).

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use indicatif::{HumanBytes, HumanDuration};
use serde::Serialize;

use super::Outcome;
use crate::error::{ExitStatus, Hinted};
use crate::json::{self, DataRange};
use crate::output::{format_ms, Printer};
use crate::prometheus::Prometheus;
use crate::repo::configfiles::{self, ConfigRestoreReport};
use crate::repo::find;
use crate::repo::manifest::Manifest;
use crate::repo::restore::{self, RestoreOptions, RestoreReport};
use crate::repo::selection::{self, TimeRange};
use crate::repo::Repository;
use crate::settings::RestoreSettings;

/// Prometheus's default retention; older data is deleted when it starts.
const DEFAULT_RETENTION_DAYS: i64 = 15;

/// `restore --json` (docs/json/restore.schema.json): the block restore
/// (nothing restored with --no-data), the merge's retention check, the
/// configuration files.
#[derive(Serialize)]
struct Json<'a> {
    /// `None` when --if-empty found blocks (no repository was read).
    snapshot_id: Option<&'a str>,
    instance: Option<&'a str>,
    /// With --if-empty: why nothing was restored.
    skipped: Option<String>,
    ha_group: Option<&'a str>,
    /// `None` with --no-data.
    data_dir: Option<&'a str>,
    merge: bool,
    blocks: usize,
    blocks_selected: usize,
    blocks_restored: usize,
    blocks_already_present: usize,
    /// The --from/--to window, when one was given.
    time_range: Option<JsonRange>,
    /// Of the selected blocks.
    #[serde(flatten)]
    data: DataRange,
    bytes_downloaded: u64,
    bytes_written: u64,
    moved_aside_to: Option<&'a str>,
    /// With --merge and a server to ask: blocks it will delete as too old.
    blocks_beyond_retention: Option<&'a [String]>,
    config_files: Option<&'a ConfigRestoreReport>,
    duration_seconds: f64,
}

/// `--from`/`--to` in both time forms; an open end is `null`.
#[derive(Serialize)]
struct JsonRange {
    from: Option<String>,
    to: Option<String>,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
}

impl<'a> Json<'a> {
    /// `--no-data`: only the configuration files were restored.
    fn configs_only(manifest: &'a Manifest, configs: Option<&'a ConfigRestoreReport>) -> Self {
        Json {
            snapshot_id: Some(&manifest.id),
            instance: Some(&manifest.instance),
            skipped: None,
            ha_group: manifest.ha_group.as_deref(),
            data_dir: None,
            merge: false,
            blocks: manifest.blocks.len(),
            blocks_selected: 0,
            blocks_restored: 0,
            blocks_already_present: 0,
            time_range: None,
            data: DataRange::new(None, None),
            bytes_downloaded: 0,
            bytes_written: 0,
            moved_aside_to: None,
            blocks_beyond_retention: None,
            config_files: configs,
            duration_seconds: 0.0,
        }
    }

    /// `--if-empty` on a directory that holds blocks: nothing done.
    fn skipped(data_dir: &'a str, why: String) -> Self {
        Json {
            snapshot_id: None,
            instance: None,
            skipped: Some(why),
            ha_group: None,
            data_dir: Some(data_dir),
            merge: false,
            blocks: 0,
            blocks_selected: 0,
            blocks_restored: 0,
            blocks_already_present: 0,
            time_range: None,
            data: DataRange::new(None, None),
            bytes_downloaded: 0,
            bytes_written: 0,
            moved_aside_to: None,
            blocks_beyond_retention: None,
            config_files: None,
            duration_seconds: 0.0,
        }
    }

    fn restored(
        r: &'a RestoreReport,
        beyond: Option<&'a [String]>,
        configs: Option<&'a ConfigRestoreReport>,
    ) -> Self {
        Json {
            snapshot_id: Some(&r.snapshot_id),
            instance: Some(&r.instance),
            skipped: None,
            ha_group: r.ha_group.as_deref(),
            data_dir: Some(&r.data_dir),
            merge: r.merge,
            blocks: r.blocks,
            blocks_selected: r.blocks_selected,
            blocks_restored: r.blocks_restored,
            blocks_already_present: r.blocks_already_present,
            time_range: r.time_range.map(|t| JsonRange {
                from: t.from_ms.and_then(json::time_ms),
                to: t.to_ms.and_then(json::time_ms),
                from_ms: t.from_ms,
                to_ms: t.to_ms,
            }),
            data: DataRange::new(r.min_time, r.max_time),
            bytes_downloaded: r.bytes_downloaded,
            bytes_written: r.bytes_written,
            moved_aside_to: r.moved_aside_to.as_deref(),
            blocks_beyond_retention: beyond,
            config_files: configs,
            duration_seconds: r.duration_seconds,
        }
    }
}

pub async fn run(args: RestoreSettings, printer: &Printer) -> Result<Outcome> {
    let started = Instant::now();
    if let Some(outcome) = skip_if_populated(&args, printer)? {
        return Ok(outcome);
    }
    let range = args.range;
    let repo = super::open_repo(&args.repo).await?;
    if let Some(outcome) = skip_if_nothing_to_seed(&repo, &args, printer).await? {
        return Ok(outcome);
    }
    let (manifest, warnings) = repo
        .resolve(&args.snapshot, args.instance.as_deref())
        .await?;
    for warning in &warnings {
        printer.warn(warning);
    }
    let selected = check_selection(&manifest, range)?;
    let configs = match &args.config_to {
        Some(dir) => Some(restore_configs(&repo, &manifest, dir, &args, printer).await?),
        None => None,
    };
    let Some(data_dir) = args.data_dir.as_deref() else {
        if let Some(c) = configs
            .as_ref()
            .filter(|_| !args.json && printer.summaries())
        {
            printer.stdout(&format!(
                "restored the configuration files of snapshot {}\n{}",
                manifest.id,
                config_lines(c)
            ))?;
        }
        let mut json = Json::configs_only(&manifest, configs.as_ref());
        json.duration_seconds = started.elapsed().as_secs_f64();
        return Outcome::from(ExitStatus::Success).with_document(args.json, &json);
    };
    printer.info(&format!(
        "{} snapshot {} ({selected} of {} blocks, instance {}) into {}",
        if args.merge { "merging" } else { "restoring" },
        manifest.id,
        manifest.blocks.len(),
        manifest.instance,
        data_dir.display()
    ));
    let beyond = match args.merge {
        true => merge_retention(&args, &manifest, data_dir, printer).await?,
        false => None,
    };
    let opts = RestoreOptions {
        concurrency: args.concurrency,
        force: args.force,
        range,
        merge: args.merge,
    };
    let report = restore::run(
        &repo,
        &manifest,
        data_dir,
        opts,
        printer.progress("restore"),
    )
    .await?;
    if let Some(moved) = &report.moved_aside_to {
        printer.info(&format!(
            "the previous content of the directory is now in {moved}"
        ));
    }
    if !args.json {
        print_report(&report, printer)?;
        if let Some(c) = configs.as_ref().filter(|_| printer.summaries()) {
            printer.stdout(&config_lines(c))?;
        }
    }
    if !args.merge {
        warn_about_retention(report.min_time, report.max_time, printer);
    }
    let json = Json::restored(&report, beyond.as_deref(), configs.as_ref());
    Outcome::from(ExitStatus::Success).with_document(args.json, &json)
}

/// `--if-empty`: when the data directory already holds blocks, the outcome
/// that says so (a success, the run skipped). Decided from the directory
/// alone, so a restarted pod's init container needs no repository.
fn skip_if_populated(args: &RestoreSettings, printer: &Printer) -> Result<Option<Outcome>> {
    let (true, Some(dir)) = (args.if_empty, args.data_dir.as_deref()) else {
        return Ok(None);
    };
    let blocks = restore::blocks_in(dir)?;
    if blocks == 0 {
        return Ok(None);
    }
    let why = format!(
        "{} already holds {blocks} block{}: nothing restored (--if-empty)",
        dir.display(),
        if blocks == 1 { "" } else { "s" }
    );
    if !args.json && printer.summaries() {
        printer.stdout(&format!("{why}\n"))?;
    }
    let mut outcome = Outcome::from(ExitStatus::Success);
    outcome.summary.skipped = true;
    let dir = dir.display().to_string();
    outcome
        .with_document(args.json, &Json::skipped(&dir, why))
        .map(Some)
}

/// `--if-empty latest`: when the repository holds no snapshot of the
/// instance yet (a new HA group's first start, a repository just made),
/// there is nothing to seed from, and an init container that failed here
/// would keep Prometheus from ever starting and taking its first backup. So
/// the run is skipped, and says what the repository holds instead (a
/// misspelt --instance shows there). A damaged manifest that might be the
/// instance's is not nothing: the restore goes on and reports it.
async fn skip_if_nothing_to_seed(
    repo: &Repository,
    args: &RestoreSettings,
    printer: &Printer,
) -> Result<Option<Outcome>> {
    let (true, "latest", Some(dir)) = (args.if_empty, args.snapshot.as_str(), &args.data_dir)
    else {
        return Ok(None);
    };
    let catalog = repo.catalog_of(args.instance.as_deref()).await?;
    let theirs = catalog
        .manifests
        .iter()
        .filter(|m| {
            args.instance
                .as_deref()
                .is_none_or(|i| find::belongs_to(m, i))
        })
        .count();
    if theirs > 0 || !catalog.damaged.is_empty() {
        return Ok(None);
    }
    let whose = match args.instance.as_deref() {
        Some(i) => format!("of instance {i:?}"),
        None => "at all".to_string(),
    };
    let all = repo.catalog().await?;
    let held = match all.manifests.is_empty() {
        true => "it holds none yet".to_string(),
        false => format!("it holds {}", find::describe_instances(&all.manifests)),
    };
    let why = format!(
        "{} holds no snapshot {whose} ({held}): nothing to seed {} from, it starts empty \
         (--if-empty)",
        repo.describe(),
        dir.display()
    );
    printer.warn(&why);
    let mut outcome = Outcome::from(ExitStatus::Success);
    outcome.summary.skipped = true;
    let dir = dir.display().to_string();
    outcome
        .with_document(args.json, &Json::skipped(&dir, why))
        .map(Some)
}

/// How many blocks --from/--to select; none at all is a usage error, since
/// restoring nothing is never what an incident needs.
fn check_selection(manifest: &Manifest, range: TimeRange) -> Result<usize> {
    let n = selection::in_range(&manifest.blocks, range).len();
    if n > 0 || !range.is_bounded() {
        return Ok(n);
    }
    let window = |t: Option<i64>| t.map_or_else(|| "...".to_string(), format_ms);
    let held = match (manifest.min_time(), manifest.max_time()) {
        (Some(a), Some(b)) => format!("it holds {} .. {} UTC", format_ms(a), format_ms(b)),
        _ => "it holds no blocks".into(),
    };
    Err(Hinted::usage(
        format!(
            "no block of snapshot {} overlaps {} .. {} UTC",
            manifest.id,
            window(range.from_ms),
            window(range.to_ms)
        ),
        format!("{held}; widen --from/--to or pick another snapshot (`promsnap list`)"),
    )
    .into())
}

async fn restore_configs(
    repo: &Repository,
    manifest: &Manifest,
    dir: &Path,
    args: &RestoreSettings,
    printer: &Printer,
) -> Result<ConfigRestoreReport> {
    if manifest.config_files.is_empty() {
        let message = format!(
            "snapshot {} has no configuration files (none were readable when it was taken, or \
             an older promsnap took it)",
            manifest.id
        );
        if args.data_dir.is_none() {
            return Err(Hinted::usage(
                message,
                "pick another snapshot (`promsnap list --json` counts config_files)",
            )
            .into());
        }
        printer.warn(&message);
    }
    configfiles::restore(repo, &manifest.config_files, dir, args.force).await
}

/// For --merge: the blocks the server will delete at its next reload because
/// they lie beyond its retention, counted from the newest block it will
/// have. `None` when there is no server to ask.
async fn merge_retention(
    args: &RestoreSettings,
    manifest: &Manifest,
    dir: &Path,
    printer: &Printer,
) -> Result<Option<Vec<String>>> {
    let Some(server) = &args.prometheus else {
        printer.info(
            "no --prometheus-url: not checking the server's retention (blocks older than it, \
             counted from its newest block, are deleted at its next reload)",
        );
        return Ok(None);
    };
    let range = args.range;
    let prom = Prometheus::new(server.client.clone())?;
    let flags = prom.flags().await.map_err(|e| {
        e.context(Hinted::failure(
            format!(
                "could not read the retention of the Prometheus at {}",
                prom.url()
            ),
            "fix --prometheus-url, or leave it out to merge without the retention check",
        ))
    })?;
    let Some(retention) = flags.retention_ms()? else {
        printer.info("the server has a size limit but no time retention: not checking retention");
        return Ok(Some(Vec::new()));
    };
    let existing = restore::existing_blocks(dir)?;
    let candidates: Vec<(&str, i64)> = selection::in_range(&manifest.blocks, range)
        .into_iter()
        .filter(|b| !existing.covered.contains(&b.ulid))
        .map(|b| (b.ulid.as_str(), b.max_time))
        .collect();
    let doomed = selection::beyond_retention(&candidates, existing.newest_max_time, retention);
    if !doomed.is_empty() {
        printer.warn(&format!(
            "{} of the blocks to merge end more than the server's retention ({}) before its \
             newest block, so Prometheus deletes them at its next reload: {}. Restart it with a \
             longer --storage.tsdb.retention.time first, or restore into a scratch directory",
            doomed.len(),
            format_retention(retention),
            doomed.join(", ")
        ));
    }
    Ok(Some(doomed))
}

/// A retention in the largest whole unit Prometheus would write it in.
fn format_retention(ms: i64) -> String {
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

fn config_lines(c: &ConfigRestoreReport) -> String {
    let mut text = format!("  configs     {} files below {}\n", c.files.len(), c.dir);
    for f in &c.files {
        text.push_str(&format!("    {} ({})\n", f.written_to, f.status));
    }
    text
}

/// Prometheus measures retention from the newest block, so a restored
/// snapshot that spans more than the retention loses its oldest blocks at
/// startup. Say so before it happens.
fn warn_about_retention(min: Option<i64>, max: Option<i64>, printer: &Printer) {
    let (Some(min), Some(max)) = (min, max) else {
        return;
    };
    let days = (max - min) / 86_400_000 + 1;
    if days > DEFAULT_RETENTION_DAYS {
        printer.warn(&format!(
            "the snapshot spans {days} days; start Prometheus with \
             --storage.tsdb.retention.time={days}d (or more), or it deletes the oldest blocks"
        ));
    }
}

fn print_report(r: &RestoreReport, printer: &Printer) -> Result<()> {
    if !printer.summaries() {
        return Ok(());
    }
    let mut blocks = format!("{} restored", r.blocks_restored);
    if r.blocks_selected < r.blocks {
        blocks += &format!(
            ", {} of {} selected by --from/--to",
            r.blocks_selected, r.blocks
        );
    }
    if r.blocks_already_present > 0 {
        let why = match r.merge {
            true => "in the directory",
            false => "present from an earlier run",
        };
        blocks += &format!(", {} already {why}", r.blocks_already_present);
    }
    let data = match (r.min_time, r.max_time) {
        (Some(a), Some(b)) => format!("{} .. {} UTC", format_ms(a), format_ms(b)),
        _ => "no blocks".into(),
    };
    let next = match r.merge {
        true => "Prometheus loads the new blocks at its next block reload (within about a minute)",
        false => &format!("start Prometheus with --storage.tsdb.path={}", r.data_dir),
    };
    printer.stdout(&format!(
        "{verb} snapshot {id} of instance {instance} into {dir}\n  blocks      {blocks}\n  data        {data}\n  \
         downloaded  {down}\n  written     {written}\n  took        {took}\n{next}\n",
        verb = if r.merge { "merged" } else { "restored" },
        id = r.snapshot_id,
        instance = match &r.ha_group {
            Some(g) => format!("{} (HA group {g})", r.instance),
            None => r.instance.clone(),
        },
        dir = r.data_dir,
        down = HumanBytes(r.bytes_downloaded),
        written = HumanBytes(r.bytes_written),
        took = HumanDuration(std::time::Duration::from_secs_f64(r.duration_seconds)),
    ))
}
