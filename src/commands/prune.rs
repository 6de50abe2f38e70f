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
use crate::repo::DamagedManifest;
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
        forget_damaged: args.forget_damaged,
        max_unused: args.max_unused,
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
    // Damaged manifests kept their data: done, but with a problem (exit 3).
    let status = match report.damaged.is_empty() || report.damaged_forgotten {
        true => ExitStatus::Success,
        false => ExitStatus::Problems,
    };
    Outcome {
        status,
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
    packs_repacked: usize,
    bytes_repacked: u64,
    uploads_aborted: u64,
    /// With `--instance`: objects other groups may share that only removed
    /// snapshots referenced, left for a prune of every instance (absent
    /// when none).
    #[serde(skip_serializing_if = "is_zero")]
    shared_left: usize,
    decisions: Vec<JsonDecision<'a>>,
    /// Manifests that could not be read; while one is kept, no object is
    /// deleted.
    damaged: &'a [DamagedManifest],
    damaged_forgotten: bool,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
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
            packs_repacked: r.packs_repacked,
            bytes_repacked: r.bytes_repacked,
            uploads_aborted: r.uploads_aborted,
            shared_left: r.shared_left,
            damaged: &r.damaged,
            damaged_forgotten: r.damaged_forgotten,
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
    if r.shared_left > 0 {
        out.push_str(&format!(
            "{} objects only removed snapshots used are outside this instance's directories \
             (data stored before groups, format 1 archives, configuration files, which other \
             instances may share): left for a prune without --instance\n",
            r.shared_left
        ));
    }
    if r.packs_repacked > 0 {
        let verb = if r.dry_run {
            "would repack"
        } else {
            "repacked"
        };
        out.push_str(&format!(
            "{verb} {} packs into {} of new packs\n",
            r.packs_repacked,
            HumanBytes(r.bytes_repacked)
        ));
    }
    for d in &r.damaged {
        let fate = match (r.damaged_forgotten, r.dry_run) {
            (true, false) => "removed",
            (true, true) => "would be removed",
            (false, _) => "kept",
        };
        out.push_str(&format!(
            "damaged manifest {} ({fate}): {}\n",
            d.key, d.reason
        ));
    }
    if !r.damaged.is_empty() && !r.damaged_forgotten {
        out.push_str(&format!(
            "{} damaged manifest(s): no object was deleted, since they might reference any; \
             repair them, or remove them with --forget-damaged\n",
            r.damaged.len()
        ));
    }
    if r.dry_run {
        out.push_str("dry run: nothing was changed\n");
    }
    out
}
