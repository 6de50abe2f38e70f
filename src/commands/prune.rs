//! `promsnap prune`: retention, garbage collection, cleanup of leftovers.

use anyhow::Result;
use indicatif::HumanBytes;
use serde::Serialize;

use super::Outcome;
use crate::error::ExitStatus;
use crate::json;
use crate::metrics::RunSummary;
use crate::output::{table, Printer};
use crate::repo::lock::LockInfo;
use crate::repo::prune::{self, PruneOptions, PruneReport};
use crate::settings::PruneSettings;

pub async fn run(args: PruneSettings, printer: &Printer) -> Result<Outcome> {
    let mut repo = super::open_repo(&args.repo).await?;
    if !args.dry_run {
        repo.adopt().await?;
    }
    let opts = PruneOptions {
        policy: args.policy,
        instance: args.instance.clone(),
        dry_run: args.dry_run,
        now: chrono::Utc::now(),
    };
    let waiting = |h: &LockInfo| printer.info(&format!("waiting for {} to finish", h.describe()));
    let report = prune::run_locked(&repo, &opts, args.lock_wait, &waiting).await?;
    if !args.json && printer.summaries() {
        printer.stdout(&render(&report))?;
    }
    // A dry run removes nothing: the repository keeps them all.
    let remaining = report.snapshots_kept
        + if report.dry_run {
            report.snapshots_removed
        } else {
            0
        };
    Outcome {
        status: ExitStatus::Success,
        summary: RunSummary {
            snapshots: Some(remaining as u64),
            ..RunSummary::default()
        },
        document: None,
    }
    .with_document(args.json, &Json::new(&report))
}

/// `prune --json` (docs/json/prune.schema.json).
#[derive(Serialize)]
struct Json<'a> {
    dry_run: bool,
    snapshots_kept: usize,
    snapshots_removed: usize,
    objects_deleted: usize,
    bytes_freed: u64,
    orphans_deleted: usize,
    orphans_in_grace: usize,
    uploads_aborted: u64,
    decisions: Vec<JsonDecision<'a>>,
}

#[derive(Serialize)]
struct JsonDecision<'a> {
    id: &'a str,
    created: String,
    group: &'a str,
    keep: bool,
    reasons: &'a [String],
}

impl<'a> Json<'a> {
    fn new(r: &'a PruneReport) -> Json<'a> {
        Json {
            dry_run: r.dry_run,
            snapshots_kept: r.snapshots_kept,
            snapshots_removed: r.snapshots_removed,
            objects_deleted: r.objects_deleted,
            bytes_freed: r.bytes_freed,
            orphans_deleted: r.orphans_deleted,
            orphans_in_grace: r.orphans_in_grace,
            uploads_aborted: r.uploads_aborted,
            decisions: r
                .decisions
                .iter()
                .map(|d| JsonDecision {
                    id: &d.id,
                    created: json::time(d.time),
                    group: &d.group,
                    keep: d.keep,
                    reasons: &d.reasons,
                })
                .collect(),
        }
    }
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
