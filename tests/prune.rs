//! Retention and garbage collection end to end: what prune removes, what it
//! must never remove, and backups and prunes racing on a real S3 server.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::support::{self, sets, Target};

fn backup_at(target: &Target, dir: &Path, time: &str) -> Value {
    target
        .ok(&[
            "backup",
            "--from-dir",
            dir.to_str().unwrap(),
            "--instance",
            "p",
            "--time",
            time,
            "--json",
        ])
        .json()
}

fn ids(target: &Target) -> Vec<String> {
    target
        .snapshots()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// The objects below `repo` and their sizes (without its config object).
fn listing(repo: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![repo.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else if e.file_name() != "repository.json" {
                out.insert(
                    e.path().strip_prefix(repo).unwrap().display().to_string(),
                    e.metadata().unwrap().len(),
                );
            }
        }
    }
    out
}

/// Three nightly snapshots whose blocks were compacted away one by one.
fn three_nights(target: &Target, work: &Path) -> Vec<Value> {
    let days = [
        "2026-11-22T03:00:00Z",
        "2026-11-23T03:00:00Z",
        "2026-11-24T03:00:00Z",
    ];
    (0..3)
        .map(|i| {
            backup_at(
                target,
                &support::data_with(work, &format!("night{i}"), &[i]),
                days[i],
            )
        })
        .collect()
}

fn prune_removes_old_snapshots_and_their_blocks(target: Target) {
    let work = tempfile::tempdir().unwrap();
    let nights = three_nights(&target, work.path());
    let dry = target
        .ok(&["prune", "--keep-daily", "2", "--dry-run", "--json"])
        .json();
    assert_eq!(dry["snapshots_removed"], 1);
    assert_eq!(ids(&target).len(), 3, "a dry run removed something");

    let report = target.ok(&["prune", "--keep-daily", "2", "--json"]).json();
    let removed: Vec<&Value> = report["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["keep"] == false)
        .collect();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0]["id"], nights[0]["snapshot_id"]);
    assert_eq!(removed[0]["reasons"][0], "no rule keeps it");
    // The block only night 0 used is gone: its recipe, and its two packs
    // (chunk data, and its index and meta.json).
    assert_eq!(report["objects_deleted"], 3);
    // All that night 0 uploaded for it.
    let freed = report["bytes_freed"].as_u64().unwrap();
    assert_eq!(freed, nights[0]["bytes_uploaded"].as_u64().unwrap());
    assert_eq!(
        ids(&target),
        [
            nights[1]["snapshot_id"].as_str().unwrap(),
            nights[2]["snapshot_id"].as_str().unwrap()
        ]
    );

    let report = target.ok(&["prune", "--keep-last", "1", "--json"]).json();
    assert_eq!(
        (
            report["snapshots_removed"].as_u64(),
            report["objects_deleted"].as_u64()
        ),
        (Some(1), Some(3))
    );
    // What is left still restores completely.
    let restored = work.path().join("restored");
    let r = target
        .ok(&[
            "restore",
            "latest",
            "--data-dir",
            restored.to_str().unwrap(),
            "--json",
        ])
        .json();
    assert_eq!(r["blocks_restored"], 1);
    // Pruning again has nothing to do.
    let again = target.ok(&["prune", "--keep-last", "1", "--json"]).json();
    assert_eq!(
        (
            again["snapshots_removed"].as_u64(),
            again["objects_deleted"].as_u64()
        ),
        (Some(0), Some(0))
    );
}

#[test]
fn prune_on_a_local_repository() {
    let repo = tempfile::tempdir().unwrap();
    prune_removes_old_snapshots_and_their_blocks(Target::local(&repo.path().join("repo")));
}

#[test]
fn prune_on_garage() {
    prune_removes_old_snapshots_and_their_blocks(Target::garage(support::garage(), "prune"));
}

#[test]
fn dry_run_changes_nothing_and_explains_every_decision() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    let target = Target::local(&repo);
    three_nights(&target, work.path());
    let before = listing(&repo);
    let run = target.ok(&["prune", "--keep-last", "1", "--dry-run"]);
    assert_eq!(listing(&repo), before, "--dry-run changed the repository");
    let removals = run
        .stdout
        .lines()
        .filter(|l| l.contains("  remove  "))
        .count();
    assert_eq!(removals, 2, "{}", run.stdout);
    assert!(
        run.stdout.contains("would remove 2 of 3 snapshots"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("last 1"), "{}", run.stdout);
    assert!(run.stdout.contains("no rule keeps it"));
    assert!(run.stdout.contains("dry run: nothing was changed"));
}

#[test]
fn an_empty_policy_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let target = Target::local(&work.path().join("repo"));
    three_nights(&target, work.path());
    target
        .run(&["prune"])
        .expect_failure(2, &["no retention rule", "--keep-last"]);
    assert_eq!(ids(&target).len(), 3);
}

/// Objects of an interrupted backup are kept through the grace period (the
/// backup may still be running), and collected after it.
#[test]
fn orphans_are_collected_only_after_the_grace_period() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    let target = Target::local(&repo);
    let data = support::data_with(work.path(), "data", &[0, 1, 2]);
    // Interrupt a backup: the block stored last cannot be stored (its
    // recipe cannot be written; its packs are).
    // (Below the group's data directory, where the backup writes it.)
    let last = support::fixture_block_packed_last();
    let recipes = repo.join("recipes/prom-a");
    fs::create_dir_all(&recipes).unwrap();
    fs::write(recipes.join(last.file_name().unwrap()), b"in the way").unwrap();
    target
        .run(&[
            "backup",
            "--from-dir",
            data.to_str().unwrap(),
            "--concurrency",
            "1",
            "--instance",
            "prom-a",
        ])
        .expect_failure(1, &["could not write recipe recipes/prom-a/"]);
    fs::remove_file(recipes.join(last.file_name().unwrap())).unwrap();
    assert!(ids(&target).is_empty());
    // Two blocks stored whole (a recipe, a data pack and a metadata pack
    // each), and the packs of the third.
    let stored_before = listing(&repo).len() as u64;
    assert_eq!(stored_before, 2 * 3 + 2, "{:?}", listing(&repo));

    let kept = target.ok(&["prune", "--keep-last", "1", "--json"]).json();
    assert_eq!(
        (
            kept["orphans_in_grace"].as_u64(),
            kept["objects_deleted"].as_u64()
        ),
        (Some(stored_before), Some(0))
    );
    assert_eq!(listing(&repo).len() as u64, stored_before);

    let collected = target
        .ok(&["prune", "--keep-last", "1", "--grace", "0s", "--json"])
        .json();
    assert_eq!(collected["orphans_deleted"], stored_before);
    assert!(listing(&repo).is_empty(), "{:?}", listing(&repo));
}

/// A lock object as another host would write it.
fn foreign_lock(repo: &Path, kind: &str, command: &str, expires_in_secs: i64) {
    let now = chrono::Utc::now();
    let id = format!("{}-foreign{kind}", now.format("%Y%m%dT%H%M%SZ"));
    let lock = serde_json::json!({
        "id": id, "kind": kind, "command": command, "host": "other-host", "pid": 4242,
        "created": now, "expires": now + chrono::Duration::seconds(expires_in_secs),
    });
    fs::create_dir_all(repo.join("locks")).unwrap();
    fs::write(
        repo.join("locks").join(format!("{id}.json")),
        serde_json::to_vec(&lock).unwrap(),
    )
    .unwrap();
}

#[test]
fn locks_block_what_they_must_and_stale_ones_do_not() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    let target = Target::local(&repo);
    let data = support::data_with(work.path(), "data", &[0]);
    let backup = [
        "backup",
        "--from-dir",
        data.to_str().unwrap(),
        "--lock-wait",
        "1s",
    ];

    foreign_lock(&repo, "exclusive", "prune", -60); // crashed an hour ago: stale
    target.ok(&backup);

    foreign_lock(&repo, "exclusive", "prune", 600);
    target.run(&backup).expect_failure(
        4,
        &[
            "is locked by prune (pid 4242) on other-host",
            "promsnap unlock",
        ],
    );
    let unlock = target.ok(&["unlock"]);
    assert!(
        unlock.stderr.contains("kept live lock"),
        "{}",
        unlock.stderr
    );
    target.run(&backup).expect_failure(4, &["locked by prune"]);
    target.ok(&["unlock", "--all"]);
    target.ok(&backup);
    assert_eq!(ids(&target).len(), 2);

    // A prune that a running backup (on another host) holds off exits 4,
    // like one the local run lock holds off: it did nothing.
    foreign_lock(&repo, "shared", "backup", 600);
    target
        .run(&["prune", "--keep-last", "1", "--lock-wait", "1s"])
        .expect_failure(4, &["is locked by backup (pid 4242) on other-host"]);
    assert_eq!(ids(&target).len(), 2, "a blocked prune removed something");
}

/// `backup --prune` prunes with the configuration file's policy; when only
/// the pruning fails, the exit code is 3 and the backup is kept.
#[test]
fn backup_then_prune_from_the_configuration_file() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    let config = work.path().join("promsnap.toml");
    fs::write(
        &config,
        format!(
            "[repository]\nurl = \"{}\"\ninit = true\n\n[prune]\nkeep_last = 1\n",
            repo.display()
        ),
    )
    .unwrap();
    let data = support::data_with(work.path(), "data", &[0, 1]);
    let run = |extra: &[&str]| {
        let mut cmd = support::promsnap();
        cmd.args([
            "--config",
            config.to_str().unwrap(),
            "backup",
            "--from-dir",
            data.to_str().unwrap(),
        ])
        .args(extra);
        cmd.output().unwrap()
    };
    assert!(run(&[]).status.success());
    assert!(run(&["--prune"]).status.success());
    let target = Target::uninitialised(&repo);
    assert_eq!(ids(&target).len(), 1, "--prune did not apply keep_last = 1");

    foreign_lock(&repo, "shared", "backup", 600); // a backup elsewhere holds on
    let out = run(&["--prune", "--lock-wait", "1s"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("the backup is stored, but pruning afterwards failed"),
        "{stderr}"
    );
    assert_eq!(
        ids(&target).len(),
        2,
        "the backup must be stored even though pruning failed"
    );

    fs::write(
        &config,
        format!("[repository]\nurl = \"{}\"\n", repo.display()),
    )
    .unwrap();
    let out = run(&["--prune"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--prune without a policy is a usage error"
    );
}

/// How many rounds the race runs: 20 in CI, `PROMSNAP_RACE_ROUNDS` for a
/// longer run by hand (README, "Development").
const RACE_ROUNDS: usize = 20;

/// Many rounds of backups and prunes racing against Garage. The data sets
/// are the blocks real Prometheus compacted, backed up as two instances: a
/// compacted block's recipe references the window streams its sources'
/// snapshot stored, so a prune that removes that snapshot races with
/// backups that reference its packs, and one that repacks (any unused byte
/// with `--max-unused 0%`) moves them while backups wait to use them.
/// However they interleave, after every round the repository verifies
/// (every reference resolves), and in the end every snapshot `list` shows
/// restores byte for byte.
#[test]
fn racing_backups_and_prunes_never_lose_a_referenced_block() {
    use rand::seq::IndexedRandom;
    use rand::Rng;
    let target = Target::garage(support::garage(), "race");
    let work = tempfile::tempdir().unwrap();
    let rounds = sets::count_from_env("PROMSNAP_RACE_ROUNDS", RACE_ROUNDS);
    let (mut rng, seed) = sets::seeded_rng("PROMSNAP_RACE_SEED");
    // (instance, data directory): each line of fixtures is one Prometheus.
    let mut data: Vec<(&str, PathBuf)> = Vec::new();
    for (instance, line) in ["p", "q"].into_iter().zip(sets::COMPACTION_LINES) {
        for name in sets::COMPACTION_SETS {
            let blocks = sets::compaction_set(line, name);
            let dir = sets::data_dir(work.path(), &format!("{instance}-{name}"), &blocks);
            data.push((instance, dir));
        }
    }
    for round in 0..rounds {
        let context = format!("round {round} of seed {seed}");
        // Two backups of different data directories (a backup holds its
        // directory's run lock) and a prune.
        let mut commands: Vec<Vec<String>> = data
            .choose_multiple(&mut rng, 2)
            .map(|(instance, dir)| {
                let dir = dir.to_str().unwrap();
                let args = ["backup", "--from-dir", dir, "--instance", instance];
                args.iter()
                    .chain(&["--concurrency", "2"])
                    .map(|a| a.to_string())
                    .collect()
            })
            .collect();
        commands.push(
            [
                "prune",
                "--keep-last",
                "1",
                "--grace",
                "0s",
                "--max-unused",
                "0%",
            ]
            .map(String::from)
            .to_vec(),
        );
        let handles: Vec<_> = commands
            .into_iter()
            .map(|args| {
                let target = target.clone();
                // Staggered a little, so that each run meets the others at
                // another point of its work.
                let delay = Duration::from_millis(rng.random_range(0..300));
                thread::spawn(move || {
                    thread::sleep(delay);
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    (args.join(" "), target.run(&args))
                })
            })
            .collect();
        for h in handles {
            let (args, run) = h.join().unwrap();
            assert_eq!(run.code, 0, "{context}: {args} failed:\n{}", run.stderr);
        }
        let verify = target.run(&["verify", "--quick"]);
        assert_eq!(
            verify.code, 0,
            "{context}: {}{}",
            verify.stdout, verify.stderr
        );
    }
    let restored = sets::every_snapshot_restores(&target, work.path(), &format!("seed {seed}"));
    assert!(restored >= 2, "seed {seed}: only {restored} snapshots");
    target.ok(&["verify"]);
}

/// Multipart uploads left by a crashed backup are aborted after the grace period.
#[test]
fn abandoned_multipart_uploads_are_aborted() {
    let garage = support::garage();
    let target = Target::garage(garage, "multipart");
    let bucket = target.bucket();
    let client = garage.s3_client();
    support::block_on(async {
        client
            .create_multipart_upload()
            .bucket(bucket)
            .key("prom/blocks/x/crashed.tar.zst")
            .send()
            .await
            .unwrap();
    });
    assert_eq!(garage.open_uploads(bucket), 1);
    let work = tempfile::tempdir().unwrap();
    three_nights(&target, work.path());
    let young = target.ok(&["prune", "--keep-last", "5", "--json"]).json();
    assert_eq!(
        young["uploads_aborted"], 0,
        "an upload within the grace period was aborted"
    );
    let old = target
        .ok(&["prune", "--keep-last", "5", "--grace", "0s", "--json"])
        .json();
    assert_eq!(old["uploads_aborted"], 1);
    assert_eq!(garage.open_uploads(bucket), 0);
}

/// The blobs the recipes of snapshot `id` (a local repository) reference,
/// as (pack, offset) with their stored length.
fn blobs_of(repo: &Path, id: &str) -> BTreeMap<(String, u64), u64> {
    let manifest: Value =
        serde_json::from_slice(&fs::read(support::manifest_path(repo, id)).unwrap()).unwrap();
    let mut out = BTreeMap::new();
    for block in manifest["blocks"].as_array().unwrap() {
        let key = block["object"]["key"].as_str().unwrap();
        for b in support::blob_refs_of_recipe(repo, key) {
            let at = (
                b["pack"].as_str().unwrap().to_string(),
                b["offset"].as_u64().unwrap(),
            );
            out.insert(at, b["length"].as_u64().unwrap());
        }
    }
    out
}

/// The packs below `repo`: how many, and their bytes.
fn packs(repo: &Path) -> (u64, u64) {
    let listed = listing(repo);
    let packs = listed.iter().filter(|(k, _)| k.starts_with("packs/"));
    packs.fold((0, 0), |(n, bytes), (_, size)| (n + 1, bytes + size))
}

/// Format 2's prune of shared data: three nightly snapshots of one
/// Prometheus (a 6 h block, the same after a series was deleted and
/// compacted away, then after a vertical compaction), each reusing windows
/// the one before stored in its packs. Pruning the oldest with
/// `--max-unused 0%` repacks the packs it shared: the repository shrinks by
/// exactly the blobs only it used (with their header entries, and the
/// trailers of the packs merged away), no pack keeps an unused byte,
/// nothing is left unreferenced, and the other two snapshots restore byte
/// for byte.
#[test]
fn pruning_the_oldest_snapshot_repacks_what_it_shared() {
    for line in sets::COMPACTION_LINES {
        let work = tempfile::tempdir().unwrap();
        let repo = work.path().join("repo");
        let target = Target::local(&repo);
        let nights: Vec<String> = ["compacted", "deleted", "vertical"]
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let blocks = sets::compaction_set(line, name);
                let dir = sets::data_dir(work.path(), name, &blocks);
                let report = backup_at(&target, &dir, &format!("2026-11-2{i}T03:00:00Z"));
                report["snapshot_id"].as_str().unwrap().to_string()
            })
            .collect();
        let oldest = blobs_of(&repo, &nights[0]);
        let mut kept = blobs_of(&repo, &nights[1]);
        kept.extend(blobs_of(&repo, &nights[2]));
        let unique: Vec<u64> = oldest
            .iter()
            .filter(|(at, _)| !kept.contains_key(at))
            .map(|(_, len)| *len)
            .collect();
        assert!(
            oldest.keys().any(|at| kept.contains_key(at)),
            "{line}: the later snapshots share nothing with the oldest"
        );
        let (packs_before, bytes_before) = packs(&repo);

        let report = target
            .ok(&[
                "prune",
                "--keep-last",
                "2",
                "--grace",
                "0s",
                "--max-unused",
                "0%",
                "--json",
            ])
            .json();
        assert_eq!(report["snapshots_removed"], 1, "{line}: {report:#}");
        assert!(
            report["packs_repacked"].as_u64().unwrap() >= 1,
            "{line}: a pack the oldest shared was not repacked: {report:#}"
        );
        let (packs_after, bytes_after) = packs(&repo);
        let unique_bytes: u64 = unique.iter().sum();
        let expected = unique_bytes + 41 * unique.len() as u64 + 12 * (packs_before - packs_after);
        assert_eq!(
            bytes_before - bytes_after,
            expected,
            "{line}: {unique_bytes} bytes in {} blobs only the oldest used, {packs_before} \
             packs before and {packs_after} after",
            unique.len()
        );
        // Every pack is now exactly the blobs kept snapshots use, their
        // header entries and its trailer.
        let mut used = blobs_of(&repo, &nights[1]);
        used.extend(blobs_of(&repo, &nights[2]));
        let used_bytes: u64 = used.values().sum();
        assert_eq!(
            bytes_after,
            used_bytes + 41 * used.len() as u64 + 12 * packs_after,
            "{line}: unused bytes left in packs"
        );
        let recipes = listing(&repo)
            .into_keys()
            .filter(|k| k.starts_with("recipes/"))
            .count();
        let blocks: usize = target
            .snapshots()
            .iter()
            .map(|s| s["blocks"].as_u64().unwrap() as usize)
            .sum();
        assert!(
            recipes <= blocks,
            "{line}: {recipes} recipes for {blocks} blocks"
        );

        let verify = target.ok(&["verify", "--deep", "--json"]).json();
        assert_eq!(verify["notes"], serde_json::json!([]), "{line}: {verify:#}");
        for (i, id) in nights[1..].iter().enumerate() {
            let dest = work.path().join(format!("restore-{i}"));
            sets::restores_identically(&target, id, &dest, line);
        }
        // A second prune finds nothing to repack.
        let again = target
            .ok(&["prune", "--keep-last", "2", "--max-unused", "0%", "--json"])
            .json();
        assert_eq!(
            (
                again["packs_repacked"].as_u64(),
                again["objects_deleted"].as_u64()
            ),
            (Some(0), Some(0)),
            "{line}: {again:#}"
        );
    }
}

/// A backup interrupted after it stored a block's recipe, before its
/// manifest, leaves a recipe that the next backup of that block reuses.
/// Prune must keep every pack such a recipe references while it is within
/// the grace period, even packs only a removed snapshot used; and a backup
/// must not reuse one whose packs are gone, but store the block again.
#[test]
fn an_interrupted_backups_recipe_keeps_its_packs_and_is_reused_only_whole() {
    let line = sets::COMPACTION_LINES[0];
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    let target = Target::local(&repo);
    let data = |name: &str| sets::data_dir(work.path(), name, &sets::compaction_set(line, name));
    let (compacted, deleted) = (data("compacted"), data("deleted"));
    let first = backup_at(&target, &compacted, "2026-11-20T03:00:00Z");
    // The interrupted backup: the block after a series was deleted, whose
    // recipe reuses windows the first snapshot stored. Killed after its
    // recipe, before its manifest (as if: the manifest is removed).
    let interrupted = backup_at(&target, &deleted, "2026-11-21T03:00:00Z");
    let id = interrupted["snapshot_id"].as_str().unwrap();
    let manifest_path = support::manifest_path(&repo, id);
    let manifest: Value = serde_json::from_slice(&fs::read(&manifest_path).unwrap()).unwrap();
    fs::remove_file(&manifest_path).unwrap();
    let orphan = manifest["blocks"][0]["object"]["key"]
        .as_str()
        .unwrap()
        .to_string();
    let orphan_packs = support::packs_of_recipe(&repo, &orphan);
    let first_id = first["snapshot_id"].as_str().unwrap();
    let first_key = target.snapshots()[0]["id"].clone();
    assert_eq!(first_key, first_id);
    let first_manifest: Value =
        serde_json::from_slice(&fs::read(support::manifest_path(&repo, first_id)).unwrap())
            .unwrap();
    let first_packs = support::packs_of_recipe(
        &repo,
        first_manifest["blocks"][0]["object"]["key"]
            .as_str()
            .unwrap(),
    );
    let shared: Vec<&String> = orphan_packs
        .iter()
        .filter(|p| first_packs.contains(p))
        .collect();
    assert!(!shared.is_empty(), "the orphan recipe reuses nothing");

    // A newer snapshot of other data, then a prune that removes the first
    // snapshot: the packs it shares with the orphan recipe stay.
    let other = support::data_with(work.path(), "other", &[0]);
    let other = backup_at(&target, &other, "2026-11-22T03:00:00Z");
    let report = target
        .ok(&["prune", "--keep-last", "1", "--max-unused", "0%", "--json"])
        .json();
    assert_eq!(report["snapshots_removed"], 1, "{report:#}");
    for p in &orphan_packs {
        assert!(
            repo.join(p).exists(),
            "prune deleted {p}, which {orphan} uses"
        );
    }
    assert!(repo.join(&orphan).exists());
    assert!(
        report["orphans_in_grace"].as_u64().unwrap() >= shared.len() as u64,
        "{report:#}"
    );

    // The next backup of that block reuses the orphan recipe; it verifies
    // and restores.
    let again = backup_at(&target, &deleted, "2026-11-23T03:00:00Z");
    assert_eq!(again["blocks_reused"], 1, "{again:#}");
    assert_eq!(again["bytes_uploaded"], 0, "{again:#}");
    target.ok(&["verify", "--deep"]);
    let id = again["snapshot_id"].as_str().unwrap();
    sets::restores_identically(&target, id, &work.path().join("r1"), "reused");

    // An orphan recipe whose pack is gone is not reused: the block is
    // stored again, and the snapshot verifies. (The pack removed is one no
    // kept snapshot uses, as after a prune by an older promsnap.)
    let id = again["snapshot_id"].as_str().unwrap();
    let other_manifest = support::manifest_path(&repo, other["snapshot_id"].as_str().unwrap());
    let other_manifest: Value = serde_json::from_slice(&fs::read(other_manifest).unwrap()).unwrap();
    let other_packs: Vec<String> = other_manifest["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| support::packs_of_recipe(&repo, b["object"]["key"].as_str().unwrap()))
        .collect();
    let only_orphan = shared
        .iter()
        .find(|p| !other_packs.contains(p))
        .expect("a pack only the orphan recipe uses");
    fs::remove_file(support::manifest_path(&repo, id)).unwrap();
    fs::remove_file(repo.join(only_orphan)).unwrap();
    let stored = backup_at(&target, &deleted, "2026-11-24T03:00:00Z");
    assert_eq!(stored["blocks_new"], 1, "{stored:#}");
    target.ok(&["verify", "--deep"]);
    let id = stored["snapshot_id"].as_str().unwrap();
    sets::restores_identically(&target, id, &work.path().join("r2"), "stored again");
}

/// Packs and recipes are named by their content, so a repack can write
/// again a pack (and recipe) that an earlier repack wrote, while this prune
/// is about to delete that one as used only by a removed snapshot. Here:
/// instance p repacks the 6 h block's pack (its windows minus the one a
/// deleted series re-encoded) for the block after the deletion; instance q
/// then stores the same blocks, and the prune that removes p's snapshot
/// repacks q's copy into the very same pack and recipe. They must stay.
#[test]
fn a_repack_that_writes_an_object_again_keeps_it() {
    let line = sets::COMPACTION_LINES[0];
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    let target = Target::local(&repo);
    let data = |name: &str| sets::data_dir(work.path(), name, &sets::compaction_set(line, name));
    let (compacted, deleted) = (data("compacted"), data("deleted"));
    let backup = |dir: &Path, instance: &str, time: &str| -> String {
        let dir = dir.to_str().unwrap();
        let args = [
            "backup",
            "--from-dir",
            dir,
            "--instance",
            instance,
            "--time",
            time,
        ];
        let report = target.ok(&[&args[..], &["--json"]].concat()).json();
        report["snapshot_id"].as_str().unwrap().to_string()
    };
    let prune = || -> Value {
        let args = [
            "prune",
            "--keep-last",
            "1",
            "--grace",
            "0s",
            "--max-unused",
            "0%",
        ];
        target.ok(&[&args[..], &["--json"]].concat()).json()
    };
    backup(&compacted, "p", "2026-11-20T03:00:00Z");
    backup(&deleted, "p", "2026-11-21T03:00:00Z");
    let first = prune();
    assert!(first["packs_repacked"].as_u64().unwrap() >= 1, "{first:#}");
    backup(&compacted, "q", "2026-11-22T03:00:00Z");
    let kept = backup(&deleted, "q", "2026-11-23T03:00:00Z");
    // p's snapshot goes: a newer one of other data.
    backup(
        &support::data_with(work.path(), "other", &[0]),
        "p",
        "2026-11-24T03:00:00Z",
    );
    let second = prune();
    assert_eq!(second["snapshots_removed"], 2, "{second:#}");
    assert!(
        second["packs_repacked"].as_u64().unwrap() >= 1,
        "{second:#}"
    );

    let verify = target.run(&["verify", "--deep"]);
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    sets::restores_identically(&target, &kept, &work.path().join("r"), "kept");
}
