//! promsnap where Prometheus runs: `restore --if-empty` seeding a new
//! replica, and `promsnap serve`, the scheduled sidecar with its HTTP
//! endpoints, scraped by the Prometheus it backs up.

use std::fs;

use crate::support::{
    self, Prometheus, Target, FIXTURE_BLOCKS, FIXTURE_END, FIXTURE_MID, FIXTURE_START,
};

/// The history's queries a seeded replica must answer as its peer does.
const QUERIES: &[&str] = &[
    "count({__name__=~\".+\"})",
    "sum(rate(node_cpu_seconds_total[5m]))",
    "node_load1",
];

/// An init container's `restore latest --if-empty`: an empty directory is
/// seeded and a new Prometheus on it answers the history's queries as its
/// peer does; run again on that directory (a restarted pod), it does
/// nothing, exits 0 and says so, without reading the repository.
#[test]
fn restore_if_empty_seeds_a_new_replica_once() {
    let work = tempfile::tempdir().unwrap();
    let target = Target::local(&work.path().join("repo"));
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    let peer = Prometheus::start(&data);
    target.ok(&[
        "backup",
        "--prometheus-url",
        &peer.url,
        "--data-dir",
        data.to_str().unwrap(),
        "--instance",
        "prom-0",
    ]);

    // A fresh volume: only lost+found, as on a new ext4 PersistentVolume.
    let seeded = work.path().join("replica");
    fs::create_dir_all(seeded.join("lost+found")).unwrap();
    let seeded_s = seeded.to_str().unwrap();
    let args = [
        "restore",
        "latest",
        "--if-empty",
        "--instance",
        "prom-0",
        "--data-dir",
        seeded_s,
    ];
    let first = target.ok(&args);
    assert!(
        first.stdout.contains("restored snapshot"),
        "{}",
        first.stdout
    );
    let blocks = fs::read_dir(&seeded)
        .unwrap()
        .filter(|e| support::is_ulid(&e.as_ref().unwrap().file_name().to_string_lossy()))
        .count();
    assert_eq!(blocks, FIXTURE_BLOCKS);

    let replica = Prometheus::start(&seeded);
    for q in QUERIES {
        let want = peer.query_range(q, FIXTURE_START, FIXTURE_END, 60);
        assert!(
            want["result"].as_array().is_some_and(|r| !r.is_empty()),
            "{q}: the peer has no answer"
        );
        assert_eq!(
            replica.query_range(q, FIXTURE_START, FIXTURE_END, 60),
            want,
            "{q}: the seeded replica answers differently"
        );
        assert_eq!(replica.query(q, FIXTURE_MID), peer.query(q, FIXTURE_MID));
    }

    // The pod restarts: the init container runs again, while the repository
    // is unreachable (a location that is no repository), and changes nothing.
    let before: Vec<_> = fs::read_dir(&seeded)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let unreachable = Target::uninitialised(&work.path().join("nowhere"));
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let again = unreachable.ok(&json_args);
    let doc = again.json();
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["blocks_restored"], 0);
    assert_eq!(doc["snapshot_id"], serde_json::Value::Null);
    let why = doc["skipped"].as_str().expect("skipped says why");
    assert!(why.contains("already holds 3 blocks"), "{why}");
    let human = unreachable.ok(&args);
    assert!(
        human.stdout.contains("nothing restored (--if-empty)"),
        "{}",
        human.stdout
    );
    let after: Vec<_> = fs::read_dir(&seeded)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before.len(), after.len(), "the directory changed");
    assert_eq!(
        replica.query_f64(QUERIES[0], FIXTURE_MID) as usize,
        support::FIXTURE_SERIES
    );

    // --if-empty is not --force: it never moves or merges.
    support::bare(&[
        "restore",
        "latest",
        "--if-empty",
        "--force",
        "--data-dir",
        seeded_s,
        "--repo",
        "r",
    ])
    .expect_failure(2, &["--force"]);
}
