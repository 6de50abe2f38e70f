//! Data sets for the tests that run many commands against one repository
//! (races, kills at random points): the blocks real Prometheus compacted
//! (`fixtures/compaction`), so that format 2 shares window streams between
//! snapshots, and the check that every snapshot restores byte for byte.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::Value;

use super::{copy_dir, fixtures_dir, is_ulid, Target};

/// The Prometheus lines `fixtures/compaction` holds blocks of.
pub const COMPACTION_LINES: [&str; 2] = ["prometheus-2.42", "prometheus-3.5"];

/// The sets of each line: 2 h sources, the 6 h block compacted from them,
/// the same after deleted series (one window re-encoded), and after a
/// vertical compaction (one window merged with other series).
pub const COMPACTION_SETS: [&str; 4] = ["source", "compacted", "deleted", "vertical"];

/// The block directories of one set of `fixtures/compaction/<line>/`, sorted.
pub fn compaction_set(line: &str, name: &str) -> Vec<PathBuf> {
    let dir = fixtures_dir().join("compaction").join(line).join(name);
    let mut blocks: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    blocks.sort();
    blocks
}

/// A data directory `work/name` holding copies of `blocks`.
pub fn data_dir(work: &Path, name: &str, blocks: &[PathBuf]) -> PathBuf {
    let dir = work.join(name);
    for b in blocks {
        copy_dir(b, &dir.join(b.file_name().unwrap()));
    }
    dir
}

/// Every fixture block (`fixtures/data` and `fixtures/compaction`) by ULID:
/// what a restored block must equal.
pub fn fixture_blocks_by_ulid() -> HashMap<String, PathBuf> {
    let mut out = HashMap::new();
    for block in super::fixture_blocks() {
        out.insert(name_of(&block), block);
    }
    for line in COMPACTION_LINES {
        for set in COMPACTION_SETS.iter().chain(&["overlap"]) {
            for block in compaction_set(line, set) {
                out.insert(name_of(&block), block);
            }
        }
    }
    out
}

fn name_of(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// The files below `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let rel = e.path().strip_prefix(dir).unwrap().to_path_buf();
                out.push(rel.display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// Restores snapshot `id` into `dest` and checks that it holds exactly the
/// blocks its manifest lists, each file identical to the fixture block of
/// that ULID. `context` goes into every failure message (a seed, a trial).
pub fn restores_identically(target: &Target, id: &str, dest: &Path, context: &str) {
    let fixtures = fixture_blocks_by_ulid();
    let run = target.run(&[
        "restore",
        id,
        "--data-dir",
        dest.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        run.code, 0,
        "{context}: snapshot {id} does not restore:\n{}",
        run.stderr
    );
    let report: Value = run.json();
    let restored: Vec<String> = fs::read_dir(dest)
        .unwrap()
        .map(|e| name_of(&e.unwrap().path()))
        .filter(|n| is_ulid(n))
        .collect();
    assert_eq!(
        report["blocks_restored"].as_u64(),
        Some(restored.len() as u64),
        "{context}: snapshot {id}: {report:#}"
    );
    assert!(!restored.is_empty(), "{context}: snapshot {id} is empty");
    for ulid in restored {
        let original = fixtures
            .get(&ulid)
            .unwrap_or_else(|| panic!("{context}: snapshot {id} holds unknown block {ulid}"));
        let block = dest.join(&ulid);
        assert_eq!(
            files(&block),
            files(original),
            "{context}: snapshot {id}, block {ulid}: other files"
        );
        for rel in files(original) {
            assert!(
                fs::read(block.join(&rel)).unwrap() == fs::read(original.join(&rel)).unwrap(),
                "{context}: snapshot {id}, block {ulid}: {rel} differs"
            );
        }
    }
}

/// Restores every snapshot `list` shows, each into its own directory below
/// `work`, and checks it as [`restores_identically`] does. Returns how many.
pub fn every_snapshot_restores(target: &Target, work: &Path, context: &str) -> usize {
    let snapshots = target.snapshots();
    for (i, s) in snapshots.iter().enumerate() {
        let id = s["id"].as_str().unwrap();
        let dest = work.join(format!("restore-{i}"));
        restores_identically(target, id, &dest, context);
        fs::remove_dir_all(&dest).unwrap();
    }
    snapshots.len()
}

/// A random generator seeded from the variable `var` when it is set (to
/// replay a failure), else from entropy; prints the seed, so that a failing
/// run can be replayed with `var=<seed>`.
pub fn seeded_rng(var: &str) -> (StdRng, u64) {
    let seed = match std::env::var(var) {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("{var}={s:?} is not a number")),
        Err(_) => rand::random(),
    };
    eprintln!("random seed: {seed} (replay with {var}={seed})");
    (StdRng::seed_from_u64(seed), seed)
}

/// A count from the variable `var` (a longer run by hand), else `default`.
pub fn count_from_env(var: &str, default: usize) -> usize {
    match std::env::var(var) {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("{var}={s:?} is not a number")),
        Err(_) => default,
    }
}
