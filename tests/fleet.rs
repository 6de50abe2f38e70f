//! Many Prometheus servers in one repository: a command about one instance
//! reads that instance's manifests and no others (docs/FORMAT.md, "Manifests
//! by group"). What a user notices: another server's damaged manifest does
//! not even come up in `list`, `restore`, `verify` or `backup` of this one,
//! while a listing of everything still reports it.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::support::{self, Target};

fn data(work: &Path) -> String {
    let data = work.join("data");
    support::fixture_data_dir(&data);
    data.display().to_string()
}

fn backup(target: &Target, data: &str, args: &[&str]) -> String {
    let mut all = vec!["backup", "--from-dir", data, "--json"];
    all.extend_from_slice(args);
    target.ok(&all).json()["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn one_instances_commands_read_only_its_own_manifests() {
    let work = tempfile::tempdir().unwrap();
    let data = data(work.path());
    let repo = work.path().join("repo");
    let target = Target::local(&repo);
    let a1 = backup(&target, &data, &["--instance", "prom-a"]);
    let a2 = backup(&target, &data, &["--instance", "prom-a"]);
    let b1 = backup(&target, &data, &["--instance", "prom-b"]);
    let odd = backup(&target, &data, &["--instance", "team/odd name"]);

    // Each group has its directory; a name that is not a plain file name
    // gets a hashed one; the sentinel stops promsnap 0.1.
    for (dir, id) in [("prom-a", &a1), ("prom-a", &a2), ("prom-b", &b1)] {
        assert!(repo.join(format!("snapshots/{dir}/{id}.json")).is_file());
    }
    let odd_path = support::manifest_path(&repo, &odd);
    let odd_dir = odd_path
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        odd_dir.starts_with("h-") && odd_dir.len() == 34,
        "{odd_dir}"
    );
    let sentinel: Value = serde_json::from_slice(
        &fs::read(repo.join("snapshots/zzzzzzzz-repository-format-2.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(sentinel["format_version"], 2);
    assert_eq!(
        target.snapshots().len(),
        4,
        "the sentinel is not a snapshot"
    );

    // prom-b's only manifest is damaged.
    fs::write(
        repo.join(format!("snapshots/prom-b/{b1}.json")),
        b"{\"id\": ",
    )
    .unwrap();

    // Nothing about prom-a reads it: no warning, exit 0.
    let list = target.ok(&["list", "--instance", "prom-a", "--json"]);
    let listed = list.json();
    let ids: Vec<&str> = listed["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [a1.as_str(), a2.as_str()]);
    assert!(
        listed["damaged"].as_array().is_none_or(Vec::is_empty),
        "{listed:#}"
    );
    let dest = work.path().join("restored");
    let restore = target.ok(&[
        "restore",
        "latest",
        "--instance",
        "prom-a",
        "--data-dir",
        dest.to_str().unwrap(),
    ]);
    assert!(restore.stderr.contains(&a2), "{}", restore.stderr);
    let verify = target.ok(&["verify", "--instance", "prom-a"]);
    assert!(!verify.stderr.contains("damaged"), "{}", verify.stderr);
    let again = backup(&target, &data, &["--instance", "prom-a"]);
    let report = target
        .ok(&["list", "--instance", "prom-a", "--json"])
        .json();
    assert_eq!(report["snapshots"].as_array().unwrap().len(), 3);
    assert!(repo
        .join(format!("snapshots/prom-a/{again}.json"))
        .is_file());

    // A listing of everything reads it, and says so (exit 3).
    target.run(&["list"]).expect_failure(3, &[&b1]);
    // And the hashed group is found by its name.
    let odd_list = target
        .ok(&["list", "--instance", "team/odd name", "--json"])
        .json();
    assert_eq!(odd_list["snapshots"][0]["id"], odd.as_str());
}

/// An HA replica's snapshots are in its group's directory; the instance
/// index finds them by the replica's own name.
#[test]
fn a_replica_is_found_by_its_own_name() {
    let work = tempfile::tempdir().unwrap();
    let data = data(work.path());
    let repo = work.path().join("repo");
    let target = Target::local(&repo);
    let id = backup(
        &target,
        &data,
        &["--instance", "replica-1", "--ha-group", "pair"],
    );
    assert!(repo.join(format!("snapshots/pair/{id}.json")).is_file());
    let index: Value =
        serde_json::from_slice(&fs::read(repo.join("instances/replica-1.json")).unwrap()).unwrap();
    assert_eq!(index["groups"], serde_json::json!(["pair"]));
    for name in ["replica-1", "pair"] {
        let list = target.ok(&["list", "--instance", name, "--json"]).json();
        assert_eq!(list["snapshots"][0]["id"], id.as_str(), "--instance {name}");
    }
}

/// A manifest moved into another group's directory is damaged: its group
/// directory is part of what is checked.
#[test]
fn a_manifest_in_another_groups_directory_is_damaged() {
    let work = tempfile::tempdir().unwrap();
    let data = data(work.path());
    let repo = work.path().join("repo");
    let target = Target::local(&repo);
    backup(&target, &data, &["--instance", "prom-a"]);
    let b = backup(&target, &data, &["--instance", "prom-b"]);
    fs::rename(
        repo.join(format!("snapshots/prom-b/{b}.json")),
        repo.join(format!("snapshots/prom-a/{b}.json")),
    )
    .unwrap();
    let list = target.run(&["list", "--instance", "prom-a", "--json"]);
    assert_eq!(list.code, 3, "{}", list.stderr);
    let damaged = &list.json()["damaged"][0];
    assert_eq!(damaged["id"], b.as_str());
    let reason = damaged["reason"].as_str().unwrap();
    assert!(reason.contains("another group's directory"), "{reason}");
}

/// A format 2 snapshot stored as the version before groups wrote it,
/// `snapshots/<id>.json`, still lists, verifies and restores byte for byte,
/// and the next backup (into its group's directory) reuses what it stored.
#[test]
fn a_manifest_of_the_layout_before_groups_still_restores() {
    let work = tempfile::tempdir().unwrap();
    let data = data(work.path());
    let repo = work.path().join("repo");
    let target = Target::local(&repo);
    let id = backup(&target, &data, &["--instance", "prom-a"]);
    fs::rename(
        repo.join(format!("snapshots/prom-a/{id}.json")),
        repo.join(format!("snapshots/{id}.json")),
    )
    .unwrap();
    fs::remove_dir(repo.join("snapshots/prom-a")).unwrap();
    let listed = target
        .ok(&["list", "--instance", "prom-a", "--json"])
        .json();
    assert_eq!(listed["snapshots"][0]["id"], id.as_str());
    target.ok(&["verify", "--deep", &id]);
    let dest = work.path().join("restored");
    target.ok(&["restore", &id, "--data-dir", dest.to_str().unwrap()]);
    for block in fs::read_dir(&data).unwrap() {
        let block = block.unwrap().path();
        let name = block.file_name().unwrap();
        assert_eq!(
            support::dir_size(&block),
            support::dir_size(&dest.join(name)),
            "{name:?}"
        );
        let meta = fs::read(block.join("meta.json")).unwrap();
        assert_eq!(meta, fs::read(dest.join(name).join("meta.json")).unwrap());
    }
    let again = target
        .ok(&[
            "backup",
            "--from-dir",
            &data,
            "--instance",
            "prom-a",
            "--json",
        ])
        .json();
    assert_eq!(again["bytes_uploaded"], 0, "{again:#}");
    let next = again["snapshot_id"].as_str().unwrap();
    assert!(repo.join(format!("snapshots/prom-a/{next}.json")).is_file());
}
