//! Many Prometheus servers in one repository: a command about one instance
//! reads that instance's manifests and no others (docs/FORMAT.md, "Manifests
//! by group"). What a user notices: another server's damaged manifest does
//! not even come up in `list`, `restore`, `verify` or `backup` of this one,
//! while a listing of everything still reports it.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::support::{self, Run, Target};

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
    let (restore, verify) = restores_latest_of_prom_a(&target, &work.path().join("restored"));
    assert!(restore.stderr.contains(&a2), "{}", restore.stderr);
    assert!(!verify.stderr.contains("damaged"), "{}", verify.stderr);
    let again = backup(&target, &data, &["--instance", "prom-a"]);
    let report = target
        .ok(&["list", "--instance", "prom-a", "--json"])
        .json();
    assert_eq!(report["snapshots"].as_array().unwrap().len(), 3);
    assert!(repo
        .join(format!("snapshots/prom-a/{again}.json"))
        .is_file());
    // A prune of prom-a reads prom-a's group only: the damage elsewhere
    // does not stop it (a prune that read it would keep everything, exit 3).
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
    assert!(
        pruned["damaged"].as_array().is_none_or(Vec::is_empty),
        "{pruned:#}"
    );
    restores_latest_of_prom_a(&target, &work.path().join("after-prune"));

    // A listing of everything reads it, and says so (exit 3).
    target.run(&["list"]).expect_failure(3, &[&b1]);
    // And the hashed group is found by its name.
    let odd_list = target
        .ok(&["list", "--instance", "team/odd name", "--json"])
        .json();
    assert_eq!(odd_list["snapshots"][0]["id"], odd.as_str());
}

/// prom-a's newest snapshot restores, and verify of prom-a finds nothing
/// (both exit 0); their runs.
fn restores_latest_of_prom_a(target: &Target, dest: &Path) -> (Run, Run) {
    let restore = target.ok(&[
        "restore",
        "latest",
        "--instance",
        "prom-a",
        "--data-dir",
        dest.to_str().unwrap(),
    ]);
    let verify = target.ok(&["verify", "--instance", "prom-a"]);
    (restore, verify)
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

/// `list` of everything, which prints group by group as it reads them:
/// every snapshot once, each group's together and the groups in name order
/// (a hashed directory's group in its name's place, a manifest of the
/// layout before groups in its group), the damaged one at the end, and the
/// streamed `--json` a valid list document with the same snapshots in the
/// same order.
#[test]
fn a_list_of_everything_shows_each_snapshot_once_group_by_group() {
    let work = tempfile::tempdir().unwrap();
    let data = data(work.path());
    let repo = work.path().join("repo");
    let target = Target::local(&repo);
    let mut ids: Vec<(&str, String)> = Vec::new();
    for (group, args) in [
        ("prom-b", &["--instance", "prom-b"][..]),
        ("team/odd name", &["--instance", "team/odd name"]),
        ("prom-a", &["--instance", "prom-a"]),
        ("pair", &["--instance", "replica-1", "--ha-group", "pair"]),
        ("prom-b", &["--instance", "prom-b"]),
        ("prom-c", &["--instance", "prom-c"]),
        ("prom-a", &["--instance", "prom-a"]),
    ] {
        ids.push((group, backup(&target, &data, args)));
    }
    // prom-c's snapshot as the version before groups stored it.
    let c = &ids[5].1;
    fs::rename(
        repo.join(format!("snapshots/prom-c/{c}.json")),
        repo.join(format!("snapshots/{c}.json")),
    )
    .unwrap();
    // The second of prom-a's is damaged.
    let damaged = ids.pop().unwrap().1;
    fs::write(
        repo.join(format!("snapshots/prom-a/{damaged}.json")),
        b"{\"id\": ",
    )
    .unwrap();
    // Groups in name order, each oldest first: in the order of the backups
    // (two ids of one second do not sort by time).
    ids.sort_by(|a, b| a.0.cmp(b.0));
    let expected: Vec<&str> = ids.iter().map(|(_, id)| id.as_str()).collect();

    let table = target.run(&["list"]);
    assert_eq!(
        table.code, 3,
        "a damaged manifest: exit 3\n{}",
        table.stderr
    );
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(
        lines[0].starts_with("ID ") && lines[0].contains("INSTANCE"),
        "{}",
        table.stdout
    );
    let rows: Vec<&str> = lines[1..lines.len() - 1]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(rows, expected, "{}", table.stdout);
    for ((group, id), line) in ids.iter().zip(&lines[1..]) {
        assert!(line.contains(group), "{id} is {group}'s: {line}");
    }
    let last = lines.last().unwrap();
    assert!(last.starts_with(&format!("{damaged}  DAMAGED:")), "{last}");
    // The columns line up across groups: every row's INSTANCE starts
    // where the header's does.
    let col = lines[0].find("INSTANCE").unwrap();
    for line in &lines[1..lines.len() - 1] {
        assert!(
            line[..col].ends_with("  ") && !line[col..].starts_with(' '),
            "{line}"
        );
    }

    let run = target.run(&["list", "--json"]);
    let doc = crate::json::valid("list", &run, 3);
    let listed: Vec<(&str, &str)> = doc["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let group = s["ha_group"].as_str().or(s["instance"].as_str());
            (group.unwrap(), s["id"].as_str().unwrap())
        })
        .collect();
    let expected: Vec<(&str, &str)> = ids.iter().map(|(g, id)| (*g, id.as_str())).collect();
    assert_eq!(listed, expected);
    assert_eq!(doc["damaged"][0]["id"], damaged.as_str());
    assert_eq!(doc["damaged"].as_array().unwrap().len(), 1);
}

/// `promsnap list | head` in a fleet's repository: once the reader has gone,
/// list stops at the group it printed, exits 0 and says nothing more. The
/// groups after it are not reported, so here the damaged manifest of the
/// last group, which a whole listing reports (exit 3), goes unmentioned.
#[test]
fn a_list_whose_reader_has_gone_stops_at_the_first_group() {
    let work = tempfile::tempdir().unwrap();
    let data = data(work.path());
    let repo = work.path().join("repo");
    let target = Target::local(&repo);
    backup(&target, &data, &["--instance", "prom-a"]);
    let z = backup(&target, &data, &["--instance", "prom-z"]);
    fs::write(
        repo.join(format!("snapshots/prom-z/{z}.json")),
        b"{\"id\": ",
    )
    .unwrap();
    let whole = target.run(&["list"]);
    assert_eq!(whole.code, 3, "{}", whole.stderr);
    assert!(whole.stderr.contains("damaged"), "{}", whole.stderr);

    let (reader, writer) = std::io::pipe().expect("create a pipe");
    drop(reader);
    let out = target
        .cmd(&["list"])
        .stdout(writer)
        .output()
        .expect("run promsnap");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
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
