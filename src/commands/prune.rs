//! `promsnap prune`: retention, garbage collection, cleanup of leftovers.

use anyhow::Result;
use indicatif::HumanBytes;

use super::Outcome;
use crate::cli::PruneArgs;
use crate::error::{ExitStatus, Hinted};
use crate::metrics::RunSummary;
use crate::output::{table, Printer};
use crate::repo::lock::{LockInfo, LockKind};
use crate::repo::prune::{self, PruneOptions, PruneReport};
use crate::repo::Repository;
use crate::settings::{self, FileConfig};

const DEFAULT_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

pub async fn run(args: PruneArgs, file: &FileConfig, printer: &Printer) -> Result<Outcome> {
    let policy = settings::policy(&args.policy, file)?;
    let grace = settings::grace(args.grace, file)?;
    let repo = super::open_repo(&args.repo, file).await?;
    let opts = PruneOptions {
        policy,
        instance: args.instance.clone(),
        dry_run: args.dry_run,
        grace: chrono::Duration::from_std(grace)?,
        now: chrono::Utc::now(),
    };
    let report = prune_locked(
        &repo,
        &opts,
        args.lock_wait.unwrap_or(DEFAULT_LOCK_WAIT),
        printer,
    )
    .await?;
    if args.json {
        printer.json(&report)?;
    } else if printer.summaries() {
        printer.stdout(&render(&report))?;
    }
    // A dry run removes nothing: the repository keeps them all.
    let remaining = report.snapshots_kept
        + if report.dry_run {
            report.snapshots_removed
        } else {
            0
        };
    Ok(Outcome {
        status: ExitStatus::Success,
        summary: RunSummary {
            snapshots: Some(remaining as u64),
            ..RunSummary::default()
        },
    })
}

/// Takes the exclusive lock (not for a dry run, which changes nothing) and
/// prunes. Shared with `backup --prune`.
pub async fn prune_locked(
    repo: &Repository,
    opts: &PruneOptions,
    lock_wait: std::time::Duration,
    printer: &Printer,
) -> Result<PruneReport> {
    if opts.policy.is_empty() {
        return Err(Hinted::usage(
            "no retention rule given: refusing to prune (it would remove every snapshot)",
            "pass --keep-last, --keep-daily, ... or set them in the [prune] section of the \
             configuration file",
        )
        .into());
    }
    if opts.dry_run {
        return prune::run(repo, opts, None).await;
    }
    let waiting = |h: &LockInfo| printer.info(&format!("waiting for {} to finish", h.describe()));
    let lock = repo
        .lock(LockKind::Exclusive, "prune", lock_wait, &waiting)
        .await?;
    let report = prune::run(repo, opts, Some(&lock)).await;
    lock.release().await?;
    report
}

fn render(r: &PruneReport) -> String {
    let rows: Vec<Vec<String>> = r
        .decisions
        .iter()
        .map(|d| {
            vec![
                d.id.clone(),
                d.time.format("%Y-%m-%d %H:%M:%S").to_string(),
                d.group.clone(),
                if d.keep { "keep" } else { "remove" }.to_string(),
                d.reasons.join(", "),
            ]
        })
        .collect();
    let mut out = table(
        &["ID", "CREATED (UTC)", "INSTANCE", "ACTION", "REASON"],
        &rows,
    );
    let verb = if r.dry_run { "would remove" } else { "removed" };
    out.push_str(&format!(
        "{verb} {} of {} snapshots and {} objects ({}), of which {} orphans; {} orphans within the grace period kept; {} incomplete uploads {}\n",
        r.snapshots_removed,
        r.snapshots_removed + r.snapshots_kept,
        r.objects_deleted,
        HumanBytes(r.bytes_freed),
        r.orphans_deleted,
        r.orphans_in_grace,
        r.uploads_aborted,
        if r.dry_run { "to abort" } else { "aborted" },
    ));
    if r.dry_run {
        out.push_str("dry run: nothing was changed\n");
    }
    out
}
