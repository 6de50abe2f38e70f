//! Format 2 data below the group's directory (docs/FORMAT.md, "Layout"):
//! a backup writes its recipes and packs under `recipes/<group>/` and
//! `packs/<group>/`, a prune of one instance deletes only there, never
//! another group's data nor data stored before groups (which any group's
//! snapshots may share), and a prune of everything collects all of it.
//! Repositories holding data of the layout before groups keep working.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{self, Target};

fn backup(target: &Target, data: &Path, instance: &str) -> String {
    let run = target.ok(&[
        "backup",
        "--from-dir",
        data.to_str().unwrap(),
        "--instance",
        instance,
        "--json",
    ]);
    run.json()["snapshot_id"].as_str().unwrap().to_string()
}

/// The data objects (below `recipes/` and `packs/`) and their sizes.
fn data_objects(repo: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![repo.join("recipes"), repo.join("packs")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let key = e.path().strip_prefix(repo).unwrap().display().to_string();
                out.insert(key, e.metadata().unwrap().len());
            }
        }
    }
    out
}

/// Of `objects`, those below the group directory `g` (`None`: the legacy
/// layout, `recipes/<ULID>/…` and `packs/<2 hex>/…`).
fn in_dir(objects: &BTreeMap<String, u64>, g: Option<&str>) -> BTreeSet<String> {
    objects
        .keys()
        .filter(|k| {
            let parts: Vec<&str> = k.split('/').collect();
            match g {
                Some(g) => parts.len() == 4 && parts[1] == g,
                None => parts.len() == 3,
            }
        })
        .cloned()
        .collect()
}

/// The recipes and packs the manifest at `path` references.
fn referenced(repo: &Path, path: &Path) -> BTreeSet<String> {
    let manifest: Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    let mut out = BTreeSet::new();
    for block in manifest["blocks"].as_array().unwrap() {
        let key = block["object"]["key"].as_str().unwrap();
        out.insert(key.to_string());
        out.extend(support::packs_of_recipe(repo, key));
    }
    out
}

/// Moves snapshot `id` of a local repository, and its data, into the
/// layout before groups: its manifest to `snapshots/<id>.json`, its
/// recipes to `recipes/<ULID>/<fp>.json`, their packs to `packs/<2 hex>/`
/// (what an existing repository holds). A recipe does not name its own
/// key, so only the manifest changes.
fn into_layout_before_groups(repo: &Path, id: &str) {
    let path = support::manifest_path(repo, id);
    let mut manifest: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let moved = |from: &str, to: &str| {
        let to = repo.join(to);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        if repo.join(from).exists() {
            fs::rename(repo.join(from), &to).unwrap();
        }
    };
    let packs = referenced(repo, &path);
    for p in packs.iter().filter(|k| k.starts_with("packs/")) {
        let parts: Vec<&str> = p.split('/').collect();
        moved(p, &format!("packs/{}/{}", parts[2], parts[3]));
    }
    for block in manifest["blocks"].as_array_mut().unwrap() {
        let key = block["object"]["key"].as_str().unwrap().to_string();
        let parts: Vec<&str> = key.split('/').collect();
        assert_eq!(parts.len(), 4, "{key} is not below a group");
        let legacy = format!("recipes/{}/{}", parts[2], parts[3]);
        moved(&key, &legacy);
        block["object"]["key"] = legacy.into();
    }
    fs::write(
        repo.join(format!("snapshots/{id}.json")),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    fs::remove_file(path).unwrap();
}

/// Restores snapshot `id` and checks that every file is the source's, byte
/// for byte.
fn restores_identically(target: &Target, id: &str, source: &Path, dest: &Path) {
    target.ok(&["restore", id, "--data-dir", dest.to_str().unwrap()]);
    let mut count = 0;
    let mut stack = vec![source.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(source).unwrap();
            let restored = fs::read(dest.join(rel))
                .unwrap_or_else(|e| panic!("{id}: {} not restored: {e}", rel.display()));
            assert!(
                fs::read(&path).unwrap() == restored,
                "{id}: {} differs",
                rel.display()
            );
            count += 1;
        }
    }
    assert!(count > 0, "{}: no files", source.display());
}

/// A backup's recipes and packs are below its group's directory (an HA
/// group's, else the instance's, hashed when not a plain name), and its
/// manifest names them there.
#[test]
fn a_grouped_backup_writes_its_data_under_its_group() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    let target = Target::local(&repo);
    let data = support::data_with(work.path(), "data", &[0, 1, 2]);
    let a = backup(&target, &data, "prom-a");
    let odd = backup(&target, &data, "team/odd name");
    let objects = data_objects(&repo);
    assert!(in_dir(&objects, None).is_empty(), "{objects:#?}");
    let a_path = support::manifest_path(&repo, &a);
    let a_data = referenced(&repo, &a_path);
    assert!(
        a_data.iter().any(|k| k.starts_with("packs/prom-a/")),
        "{a_data:?}"
    );
    assert_eq!(in_dir(&objects, Some("prom-a")), a_data);
    let odd_path = support::manifest_path(&repo, &odd);
    let odd_dir = odd_path.parent().unwrap().file_name().unwrap();
    let odd_dir = odd_dir.to_str().unwrap();
    assert!(odd_dir.starts_with("h-"), "{odd_dir}");
    // The same blocks, stored again for the other group: groups share no data.
    assert_eq!(
        in_dir(&objects, Some(odd_dir)),
        referenced(&repo, &odd_path)
    );
    assert_eq!(
        objects.len(),
        a_data.len() + referenced(&repo, &odd_path).len()
    );
    let dest = work.path().join("restored");
    restores_identically(&target, &odd, &data, &dest);
}

/// A repository with a snapshot of the layout before groups (its manifest
/// at `snapshots/<id>.json`, its data at `recipes/<ULID>/` and `packs/<2
/// hex>/`) next to grouped ones lists, verifies and restores all. `prune
/// --instance prom-a` deletes prom-a's unreferenced data, and nothing of
/// prom-b's nor of the layout before groups (which it says it left); a
/// prune of every instance then collects the old data too; what is kept
/// verifies and restores byte for byte.
#[test]
fn a_prune_of_one_instance_deletes_only_below_its_group() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    let target = Target::local(&repo);
    let data: Vec<PathBuf> = (0..3)
        .map(|i| support::data_with(work.path(), &format!("d{i}"), &[i]))
        .collect();
    let all = support::data_with(work.path(), "all", &[0, 1, 2]);
    let a1 = backup(&target, &data[0], "prom-a");
    into_layout_before_groups(&repo, &a1);
    let a2 = backup(&target, &data[1], "prom-a");
    let a3 = backup(&target, &data[2], "prom-a");
    let b1 = backup(&target, &all, "prom-b");
    // Orphans, old enough with --grace 0s: one in prom-b's directory, one
    // of the layout before groups.
    let zeros = "00".repeat(32);
    for orphan in [
        format!("packs/prom-b/00/{zeros}"),
        format!("packs/00/{zeros}"),
    ] {
        let path = repo.join(orphan);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, b"an orphan").unwrap();
    }

    let listed = target.ok(&["list", "--json"]).json();
    assert_eq!(listed["snapshots"].as_array().unwrap().len(), 4);
    target.ok(&["verify", "--deep"]);
    restores_identically(&target, &a1, &data[0], &work.path().join("r-a1"));

    let before = data_objects(&repo);
    let legacy = in_dir(&before, None);
    let b_data = in_dir(&before, Some("prom-b"));
    assert!(legacy.len() >= 3, "{legacy:?}");
    let a3_data = referenced(&repo, &support::manifest_path(&repo, &a3));
    let a2_data = referenced(&repo, &support::manifest_path(&repo, &a2));
    assert!(!a2_data.is_subset(&a3_data), "a2 stored nothing of its own");

    let dry = target.ok(&[
        "prune",
        "--instance",
        "prom-a",
        "--keep-last",
        "1",
        "--dry-run",
    ]);
    assert!(
        dry.stdout.contains("left for a prune without --instance"),
        "{}",
        dry.stdout
    );
    assert_eq!(data_objects(&repo), before, "a dry run changed data");
    let pruned = target
        .ok(&[
            "prune",
            "--instance",
            "prom-a",
            "--keep-last",
            "1",
            "--grace",
            "0s",
            "--json",
        ])
        .json();
    assert_eq!(pruned["snapshots_removed"], 2, "{pruned:#}");
    assert!(pruned["shared_left"].as_u64() >= Some(1), "{pruned:#}");
    let after = data_objects(&repo);
    assert_eq!(in_dir(&after, Some("prom-a")), a3_data);
    assert_eq!(
        in_dir(&after, Some("prom-b")),
        b_data,
        "prom-b's data changed"
    );
    assert_eq!(in_dir(&after, None), legacy, "data before groups changed");
    assert_eq!(
        pruned["objects_deleted"].as_u64(),
        Some((before.len() - after.len()) as u64)
    );
    let summary = target.ok(&["prune", "--instance", "prom-a", "--keep-last", "1"]);
    assert!(
        !summary
            .stdout
            .contains("left for a prune without --instance"),
        "nothing removed, nothing left: {}",
        summary.stdout
    );
    target.ok(&["verify", "--deep"]);
    restores_identically(&target, &a3, &data[2], &work.path().join("r-a3"));

    // A prune of every instance reads every manifest: the old layout's data
    // only a1 used, and both orphans, go.
    let full = target
        .ok(&["prune", "--keep-last", "1", "--grace", "0s", "--json"])
        .json();
    assert_eq!(full["snapshots_removed"], 0, "{full:#}");
    assert!(full.get("shared_left").is_none(), "{full:#}");
    let end = data_objects(&repo);
    let mut kept = a3_data.clone();
    kept.extend(referenced(&repo, &support::manifest_path(&repo, &b1)));
    assert_eq!(end.keys().cloned().collect::<BTreeSet<_>>(), kept);
    let verify = target.ok(&["verify", "--json"]).json();
    assert_eq!(verify["notes"], serde_json::json!([]), "{verify:#}");
    restores_identically(&target, &a3, &data[2], &work.path().join("r2-a3"));
    restores_identically(&target, &b1, &all, &work.path().join("r-b1"));
}

/// A manifest naming another group's recipe is damaged (that group's
/// prune would not see the reference): `list` reports it, and a prune of
/// its instance deletes nothing while it is there.
#[test]
fn a_manifest_naming_another_groups_data_is_damaged() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    let target = Target::local(&repo);
    let data = support::data_with(work.path(), "data", &[0]);
    backup(&target, &data, "prom-a");
    let b1 = backup(&target, &data, "prom-b");
    backup(&target, &data, "prom-b");
    let path = support::manifest_path(&repo, &b1);
    let mut manifest: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let key = manifest["blocks"][0]["object"]["key"].as_str().unwrap();
    let foreign = key.replacen("recipes/prom-b/", "recipes/prom-a/", 1);
    assert_ne!(key, foreign);
    manifest["blocks"][0]["object"]["key"] = foreign.into();
    fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();

    let list = target.run(&["list", "--instance", "prom-b", "--json"]);
    assert_eq!(list.code, 3, "{}", list.stderr);
    let reason = list.json()["damaged"][0]["reason"].to_string();
    assert!(
        reason.contains("another group's data directory"),
        "{reason}"
    );
    let before = data_objects(&repo);
    let run = target.run(&[
        "prune",
        "--instance",
        "prom-b",
        "--keep-last",
        "1",
        "--grace",
        "0s",
        "--json",
    ]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(run.json()["objects_deleted"], 0);
    assert_eq!(data_objects(&repo), before);
}
