//! `promsnap verify`: integrity checks with an exit code for CI.

use std::path::Path;

use anyhow::{Context, Result};
use indicatif::HumanBytes;
use serde::Serialize;

use super::Outcome;
use crate::error::{environment, environment_hint, ExitStatus, Hinted, Place};
use crate::metrics::RunSummary;
use crate::output::Printer;
use crate::repo::find;
use crate::repo::restore::{self, RestoreOptions};
use crate::repo::verify::{self, Level, Problem, VerifyOptions, VerifyReport};
use crate::repo::Repository;
use crate::settings::VerifySettings;

/// `verify --json` (docs/json/verify.schema.json).
#[derive(Serialize)]
struct Json<'a> {
    level: Level,
    snapshots_checked: usize,
    /// Blocks the snapshots list, counted once per snapshot.
    block_references: usize,
    /// Distinct block objects those references name.
    objects_checked: usize,
    objects_read: usize,
    bytes_read: u64,
    bytes_downloaded: u64,
    problems: &'a [Problem],
    notes: &'a [Problem],
    /// `None` without --restore-test.
    restore_test: Option<&'a [RestoreTest]>,
}

/// What `--restore-test` found for one snapshot.
#[derive(Serialize)]
struct RestoreTest {
    #[serde(rename = "snapshot_id")]
    snapshot: String,
    #[serde(rename = "blocks_restored")]
    restored_blocks: usize,
    /// `None` when promtool was not available.
    #[serde(rename = "blocks_loaded_by_promtool")]
    promtool_loaded_blocks: Option<usize>,
    problem: Option<String>,
}

pub async fn run(args: VerifySettings, printer: &Printer) -> Result<Outcome> {
    let repo = super::open_repo(&args.repo).await?;
    let ids = match (&args.snapshot, &args.instance) {
        (Some(spec), instance) => {
            let (manifest, warnings) = repo.resolve(spec, instance.as_deref()).await?;
            for warning in &warnings {
                printer.warn(warning);
            }
            vec![manifest.id]
        }
        // --instance alone: every snapshot of that instance (none is an
        // error that lists the instances there are), and every damaged
        // manifest, which might be one of them and is reported as a problem.
        (None, Some(instance)) => {
            let catalog = repo.catalog_of(Some(instance)).await?;
            let mut ids: Vec<String> = match catalog.damaged.is_empty() {
                true => find::of_instance(&catalog.manifests, Some(instance), &repo.describe())?,
                false => catalog
                    .manifests
                    .iter()
                    .filter(|m| find::belongs_to(m, instance))
                    .collect(),
            }
            .iter()
            .map(|m| m.id.clone())
            .collect();
            ids.extend(catalog.damaged.iter().map(|d| d.id.clone()));
            ids.sort();
            ids
        }
        (None, None) => repo.snapshot_ids().await?,
    };
    let scratch = args.scratch.clone();
    let opts = VerifyOptions {
        level: args.level,
        whole_repository: args.snapshot.is_none() && args.instance.is_none(),
        subset: args.subset,
        concurrency: args.concurrency,
        scratch: scratch.clone(),
    };
    let report = verify::run(&repo, &ids, &opts, printer.progress("verify")).await?;
    let mut tests = Vec::new();
    if let Some(test) = &args.restore_test {
        if test.promtool.is_none() {
            printer.info("--no-promtool: the restore test checks hashes, but no Prometheus code loads the blocks");
        }
        let promtool = test.promtool.clone();
        for id in &ids {
            tests.push(
                restore_test(
                    &repo,
                    id,
                    &scratch,
                    promtool.as_deref(),
                    test.concurrency,
                    printer,
                )
                .await?,
            );
        }
    }
    let ok = report.problems.is_empty() && tests.iter().all(|t| t.problem.is_none());
    if !args.json {
        printer.stdout(&render(&report, &tests))?;
    }
    let json = Json {
        level: report.level,
        snapshots_checked: report.snapshots,
        block_references: report.blocks,
        objects_checked: report.objects,
        objects_read: report.objects_read,
        bytes_read: report.bytes_read,
        bytes_downloaded: report.bytes_downloaded,
        problems: &report.problems,
        notes: &report.notes,
        restore_test: args.restore_test.as_ref().map(|_| &tests[..]),
    };
    Outcome {
        status: if ok {
            ExitStatus::Success
        } else {
            ExitStatus::Problems
        },
        summary: RunSummary {
            snapshots: Some(report.snapshots as u64),
            ..RunSummary::default()
        },
        document: None,
    }
    .with_document(args.json, &json)
}

fn restore_test_hint(place: Place) -> Hinted {
    Hinted::failure(
        "the restore test could not run",
        environment_hint(
            place,
            "--restore-test restores whole snapshots into --scratch-dir (default: the system \
             temp dir), which needs room for them",
        ),
    )
}

async fn restore_test(
    repo: &Repository,
    id: &str,
    scratch: &Path,
    promtool: Option<&Path>,
    concurrency: usize,
    printer: &Printer,
) -> Result<RestoreTest> {
    let dir = std::fs::create_dir_all(scratch)
        .and_then(|()| {
            tempfile::Builder::new()
                .prefix("promsnap-restore-test-")
                .tempdir_in(scratch)
        })
        .with_context(|| format!("could not create a directory in {}", scratch.display()))
        .context(restore_test_hint(Place::Disk))?;
    let target = dir.path().join("data");
    let manifest = repo.load_manifest(id).await?;
    let opts = RestoreOptions {
        concurrency,
        force: false,
        range: Default::default(),
        merge: false,
    };
    let mut test = RestoreTest {
        snapshot: id.to_string(),
        restored_blocks: 0,
        promtool_loaded_blocks: None,
        problem: None,
    };
    if let Err(e) = restore::run(
        repo,
        &manifest,
        &target,
        opts,
        printer.progress("restore test"),
    )
    .await
    {
        // A full scratch disk or a broken connection is not a finding.
        if let Some(place) = environment(&e) {
            return Err(e.context(restore_test_hint(place)));
        }
        test.problem = Some(format!("restore failed: {e:#}"));
        return Ok(test);
    }
    test.restored_blocks = manifest.blocks.len();
    let Some(promtool) = promtool else {
        return Ok(test);
    };
    let out = tokio::process::Command::new(promtool)
        .arg("tsdb")
        .arg("list")
        .arg(&target)
        .output()
        .await
        .with_context(|| format!("could not run {}", promtool.display()))?;
    let listed = String::from_utf8_lossy(&out.stdout);
    let missing: Vec<&str> = manifest
        .blocks
        .iter()
        .map(|b| b.ulid.as_str())
        .filter(|u| !listed.contains(u))
        .collect();
    test.promtool_loaded_blocks = Some(manifest.blocks.len() - missing.len());
    if !out.status.success() || !missing.is_empty() {
        test.problem = Some(format!(
            "promtool tsdb list failed to load {} of {} blocks{}: {}",
            missing.len(),
            manifest.blocks.len(),
            if missing.is_empty() {
                String::new()
            } else {
                format!(" ({})", missing.join(", "))
            },
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(test)
}

fn locate(p: &Problem) -> String {
    let mut at = format!("snapshot {}", p.snapshots.join(","));
    if let Some(b) = &p.block {
        at.push_str(&format!(" block {b}"));
    }
    match (&p.file, p.offset) {
        (Some(f), Some(o)) => at.push_str(&format!(" file {f} @{o}")),
        (Some(f), None) => at.push_str(&format!(" file {f}")),
        (None, _) => {
            if let Some(o) = &p.object {
                at.push_str(&format!(" object {o}"));
            }
        }
    }
    at
}

fn render(r: &VerifyReport, tests: &[RestoreTest]) -> String {
    let mut out = String::new();
    for p in &r.problems {
        out.push_str(&format!(
            "PROBLEM {}: {}: {}\n",
            locate(p),
            p.kind,
            p.message
        ));
    }
    for n in &r.notes {
        out.push_str(&format!("note {}: {}: {}\n", locate(n), n.kind, n.message));
    }
    for t in tests {
        match (&t.problem, t.promtool_loaded_blocks) {
            (Some(p), _) => out.push_str(&format!(
                "PROBLEM snapshot {}: restore test: {p}\n",
                t.snapshot
            )),
            (None, Some(n)) => out.push_str(&format!(
                "restore test of {}: {} blocks restored, promtool loaded {n}\n",
                t.snapshot, t.restored_blocks
            )),
            (None, None) => out.push_str(&format!(
                "restore test of {}: {} blocks restored and verified\n",
                t.snapshot, t.restored_blocks
            )),
        }
    }
    let problems = r.problems.len() + tests.iter().filter(|t| t.problem.is_some()).count();
    let level = match r.level {
        Level::Quick => "quick",
        Level::Read => "read",
        Level::Deep => "deep",
    };
    let verdict = if problems == 0 {
        "no problems".to_string()
    } else {
        format!("{problems} PROBLEMS FOUND")
    };
    out.push_str(&format!(
        "verify ({level}): {} snapshots, {} blocks, {} objects, {} read ({}; {} downloaded in \
         all): {verdict}\n",
        r.snapshots,
        r.blocks,
        r.objects,
        r.objects_read,
        HumanBytes(r.bytes_read),
        HumanBytes(r.bytes_downloaded),
    ));
    out
}
