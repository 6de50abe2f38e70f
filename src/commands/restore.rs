//! `promsnap restore`: one snapshot into a data directory.

use anyhow::Result;
use indicatif::{HumanBytes, HumanDuration};

use crate::cli::RestoreArgs;
use crate::error::ExitStatus;
use crate::output::Printer;
use crate::repo::restore::{self, RestoreOptions, RestoreReport};
use crate::settings::FileConfig;

/// Prometheus's default retention; older data is deleted when it starts.
const DEFAULT_RETENTION_DAYS: i64 = 15;

pub async fn run(args: RestoreArgs, file: &FileConfig, printer: &Printer) -> Result<ExitStatus> {
    let repo = super::open_repo(&args.repo, file).await?;
    let manifest = repo
        .resolve(&args.snapshot, args.instance.as_deref())
        .await?;
    printer.info(&format!(
        "restoring snapshot {} ({} blocks, instance {}) into {}",
        manifest.id,
        manifest.blocks.len(),
        manifest.instance,
        args.data_dir.display()
    ));
    let opts = RestoreOptions {
        concurrency: args.concurrency.unwrap_or(4),
        force: args.force,
    };
    let report = restore::run(
        &repo,
        &manifest,
        &args.data_dir,
        opts,
        printer.progress("restore"),
    )
    .await?;
    if let Some(moved) = &report.moved_aside_to {
        printer.info(&format!(
            "the previous content of the directory is now in {moved}"
        ));
    }
    print_report(&report, args.json, printer)?;
    warn_about_retention(manifest.min_time(), manifest.max_time(), printer);
    Ok(ExitStatus::Success)
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

fn print_report(r: &RestoreReport, json: bool, printer: &Printer) -> Result<()> {
    if json {
        return printer.json(r);
    }
    if !printer.summaries() {
        return Ok(());
    }
    let resumed = if r.blocks_already_present > 0 {
        format!(
            ", {} already present from an earlier run",
            r.blocks_already_present
        )
    } else {
        String::new()
    };
    printer.stdout(&format!(
        "restored snapshot {id} into {dir}\n  blocks      {n} restored{resumed}\n  downloaded  {down}\n  \
         written     {written}\n  took        {took}\nstart Prometheus with --storage.tsdb.path={dir}\n",
        id = r.snapshot_id,
        dir = r.data_dir,
        n = r.blocks_restored,
        down = HumanBytes(r.bytes_downloaded),
        written = HumanBytes(r.bytes_written),
        took = HumanDuration(std::time::Duration::from_secs_f64(r.duration_seconds)),
    ))
}
