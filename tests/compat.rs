//! Format 1 stays readable: a repository written by promsnap 0.1 (before
//! `init` and before format 2; `fixtures/format1-repo`) lists, verifies,
//! restores byte for byte, prunes, and takes new backups with today's
//! promsnap.

use std::fs;
use std::path::Path;

use crate::support::{self, Target};

/// A private copy of the fixture repository.
fn legacy_repo(work: &Path) -> Target {
    let repo = work.join("repo");
    support::copy_dir(&support::fixtures_dir().join("format1-repo"), &repo);
    assert!(
        !repo.join("repository.json").exists(),
        "the fixture has no config object"
    );
    Target::uninitialised(&repo)
}

/// Every file of `a` (a block directory) equals the same file in `b`.
fn same_block(a: &Path, b: &Path) {
    let mut files = Vec::new();
    for entry in walk(a) {
        let rel = entry.strip_prefix(a).unwrap().to_path_buf();
        assert_eq!(
            fs::read(&entry).unwrap(),
            fs::read(b.join(&rel)).unwrap_or_default(),
            "{} differs",
            rel.display()
        );
        files.push(rel);
    }
    assert!(files.len() >= 4, "{files:?}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_repository_written_by_promsnap_0_1_is_read_and_extended() {
    let work = tempfile::tempdir().unwrap();
    let target = legacy_repo(work.path());
    let snapshots = target.snapshots();
    let ids: Vec<&str> = snapshots
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["20260101T060000Z-2837e81d", "20260102T060000Z-71e8b168"]
    );
    assert!(snapshots.iter().all(|s| s["instance"] == "legacy-a"));
    target.ok(&["verify", "--deep"]);

    // The first snapshot restores all three fixture blocks byte for byte,
    // with its configuration files.
    let dest = work.path().join("restored");
    let configs = work.path().join("configs");
    target.ok(&[
        "restore",
        ids[0],
        "--data-dir",
        dest.to_str().unwrap(),
        "--config-to",
        configs.to_str().unwrap(),
    ]);
    for block in support::fixture_blocks() {
        same_block(&block, &dest.join(block.file_name().unwrap()));
    }
    let restored_configs: Vec<_> = walk(&configs);
    assert_eq!(restored_configs.len(), 2, "{restored_configs:?}");
    assert!(restored_configs
        .iter()
        .any(|p| p.ends_with("etc/prometheus/rules/node.yml")));

    // Reading did not write; the first backup adopts the repository.
    let repo = work.path().join("repo");
    assert!(!repo.join("repository.json").exists());
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    target.ok(&[
        "backup",
        "--from-dir",
        data.to_str().unwrap(),
        "--instance",
        "legacy-a",
    ]);
    assert!(repo.join("repository.json").is_file());
    assert_eq!(target.snapshots().len(), 3);

    // Prune applies to old and new snapshots alike and keeps what is used.
    target.ok(&["prune", "--keep-last", "1", "--grace", "0s"]);
    assert_eq!(target.snapshots().len(), 1);
    target.ok(&["verify"]);
    let again = work.path().join("again");
    target.ok(&["restore", "latest", "--data-dir", again.to_str().unwrap()]);
    for block in support::fixture_blocks() {
        same_block(&block, &again.join(block.file_name().unwrap()));
    }
}
