//! `promsnap check-dir`: the deep structural checks on a local directory.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::Outcome;
use crate::error::{ExitStatus, Hinted};
use crate::output::Printer;
use crate::settings::CheckDirSettings;
use crate::tsdb::check::{self, CheckOptions, Problem};
use crate::tsdb::parse_ulid;

struct BlockResult {
    block: String,
    problems: Vec<Problem>,
}

/// `check-dir --json` (docs/json/check-dir.schema.json).
#[derive(Serialize)]
struct Json<'a> {
    dir: String,
    blocks_checked: usize,
    blocks_damaged: usize,
    results: Vec<JsonResult<'a>>,
}

/// One block in `check-dir --json`: its damage and its notes.
#[derive(Serialize)]
struct JsonResult<'a> {
    block: &'a str,
    problems: Vec<&'a Problem>,
    notes: Vec<&'a Problem>,
}

impl<'a> Json<'a> {
    fn new(dir: &Path, results: &'a [BlockResult]) -> Json<'a> {
        let results: Vec<JsonResult> = results
            .iter()
            .map(|b| {
                let (problems, notes) = b.problems.iter().partition(|p| p.kind.is_corruption());
                JsonResult {
                    block: &b.block,
                    problems,
                    notes,
                }
            })
            .collect();
        Json {
            dir: dir.display().to_string(),
            blocks_checked: results.len(),
            blocks_damaged: results.iter().filter(|r| !r.problems.is_empty()).count(),
            results,
        }
    }
}

pub async fn run(args: CheckDirSettings, printer: &Printer) -> Result<Outcome> {
    let blocks = block_dirs(&args.dir)?;
    if blocks.is_empty() {
        // A check meant to prove a directory's blocks proves nothing here.
        return Err(Hinted {
            message: format!("no blocks in {}: nothing was checked", args.dir.display()),
            hint: "check-dir takes a Prometheus data directory, a snapshot directory or one \
                   block directory (named by its ULID); is this the right path?"
                .into(),
            status: ExitStatus::Problems,
        }
        .into());
    }
    let dirs = blocks;
    // Blocks are independent: check them on all cores, one worker per core.
    let results = tokio::task::spawn_blocking(move || check_all(&dirs)).await?;
    let ok = results
        .iter()
        .all(|b| b.problems.iter().all(|p| !p.kind.is_corruption()));
    let status = if ok {
        ExitStatus::Success
    } else {
        ExitStatus::Problems
    };
    if args.json {
        return Outcome::from(status).with_document(true, &Json::new(&args.dir, &results));
    } else {
        let mut out = String::new();
        for b in &results {
            for p in &b.problems {
                let tag = if p.kind.is_corruption() {
                    "PROBLEM"
                } else {
                    "note"
                };
                out.push_str(&format!("{tag} block {} {p}\n", b.block));
            }
        }
        let bad = results
            .iter()
            .filter(|b| b.problems.iter().any(|p| p.kind.is_corruption()))
            .count();
        out.push_str(&format!(
            "checked {} blocks in {}: {}\n",
            results.len(),
            args.dir.display(),
            if bad == 0 {
                "no problems".into()
            } else {
                format!("{bad} damaged")
            }
        ));
        printer.stdout(&out)?;
    }
    Ok(status.into())
}

fn check_all(dirs: &[(String, std::path::PathBuf)]) -> Vec<BlockResult> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(dirs.len().max(1));
    let mut results: Vec<(usize, BlockResult)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((name, path)) = dirs.get(i) else {
                            return done;
                        };
                        let problems = check::check_block(
                            path,
                            Some(name),
                            &CheckOptions { chunk_refs: true },
                        );
                        done.push((
                            i,
                            BlockResult {
                                block: name.clone(),
                                problems,
                            },
                        ));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("checker thread"))
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// The block directories in `dir`, or `dir` itself when it is one block.
fn block_dirs(dir: &Path) -> Result<Vec<(String, std::path::PathBuf)>> {
    let own = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if parse_ulid(own).is_some() && dir.join("meta.json").exists() {
        return Ok(vec![(own.to_string(), dir.to_path_buf())]);
    }
    let entries = std::fs::read_dir(dir).map_err(|e| {
        anyhow::Error::new(e).context(Hinted::usage(
            format!("could not read {}", dir.display()),
            "pass a data, snapshot or block directory",
        ))
    })?;
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if parse_ulid(&name).is_some() && e.path().is_dir() {
            out.push((name, e.path()));
        }
    }
    out.sort();
    Ok(out)
}
