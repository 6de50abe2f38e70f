//! Prometheus high availability: replicas of one group run the same backup
//! job, and the group stores one backup per period between them.

use std::path::Path;
use std::thread;

use serde_json::Value;

use crate::support::{self, Prometheus, Run, StartOptions, Target};

fn replica(work: &Path, name: &str) -> Prometheus {
    let data = work.join(format!("data-{name}"));
    support::fixture_data_dir(&data);
    let config = format!("global:\n  external_labels:\n    cluster: test\n    replica: {name}\n");
    Prometheus::start_with(
        &data,
        StartOptions {
            config_yaml: Some(config),
            ..Default::default()
        },
    )
}

fn ha_backup(target: &Target, prom_url: &str, instance: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "backup",
        "--prometheus-url",
        prom_url,
        "--instance",
        instance,
        "--ha-group",
        "auto",
        "--json",
    ];
    args.extend_from_slice(extra);
    target.run(&args)
}

fn snapshots(target: &Target) -> Vec<Value> {
    target.snapshots()
}

/// Both replicas fire at the same moment, three times over: each time
/// exactly one stores the backup and the other says why it skipped.
#[test]
fn replicas_starting_together_store_one_backup() {
    let work = tempfile::tempdir().unwrap();
    let (a, b) = (replica(work.path(), "a"), replica(work.path(), "b"));
    for round in 0..3 {
        let target = Target::garage(support::garage(), &format!("ha{round}"));
        let runs: Vec<_> = [(&a.url, "prom-a"), (&b.url, "prom-b")]
            .map(|(url, name)| {
                let (target, url) = (target.clone(), url.clone());
                thread::spawn(move || ha_backup(&target, &url, name, &[]))
            })
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        for r in &runs {
            assert_eq!(r.code, 0, "{}", r.stderr);
        }
        let skipped: Vec<&Run> = runs
            .iter()
            .filter(|r| r.json()["skipped"] == true)
            .collect();
        assert_eq!(
            skipped.len(),
            1,
            "round {round}: exactly one replica must skip"
        );
        let reason = skipped[0].json()["reason"].as_str().unwrap().to_string();
        assert!(reason.contains("HA group cluster=test"), "{reason}");
        let list = snapshots(&target);
        assert_eq!(
            list.len(),
            1,
            "round {round}: the group must store one snapshot"
        );
        assert_eq!(list[0]["ha_group"], "cluster=test");
    }
}

/// A replica that is down does not stop the group: the other backs up.
#[test]
fn a_replica_that_is_down_does_not_stop_the_group() {
    let work = tempfile::tempdir().unwrap();
    let b = replica(work.path(), "b");
    let repo = tempfile::tempdir().unwrap();
    let target = Target::local(&repo.path().join("repo"));
    let dead = format!("http://127.0.0.1:{}", support::free_port());
    ha_backup(&target, &dead, "prom-a", &[]).expect_failure(1, &["could not reach Prometheus"]);
    let stored = ha_backup(&target, &b.url, "prom-b", &[]);
    assert_eq!(stored.code, 0, "{}", stored.stderr);
    assert_eq!(stored.json()["blocks_new"], support::FIXTURE_BLOCKS);
    assert_eq!(snapshots(&target)[0]["instance"], "prom-b");
}

/// After --min-interval the group backs up again, whichever replica runs;
/// retention then counts the group, not each replica.
#[test]
fn the_next_period_backs_up_again_and_retention_counts_the_group() {
    let work = tempfile::tempdir().unwrap();
    let (a, b) = (replica(work.path(), "a"), replica(work.path(), "b"));
    let repo = tempfile::tempdir().unwrap();
    let target = Target::local(&repo.path().join("repo"));
    assert_eq!(
        ha_backup(&target, &a.url, "prom-a", &[]).json()["blocks_new"],
        support::FIXTURE_BLOCKS
    );
    assert_eq!(
        ha_backup(&target, &b.url, "prom-b", &[]).json()["skipped"],
        true
    );
    let next = ha_backup(&target, &b.url, "prom-b", &["--min-interval", "0s"]);
    assert_eq!(next.code, 0, "{}", next.stderr);
    assert_eq!(
        next.json()["blocks_reused"],
        support::FIXTURE_BLOCKS,
        "the replicas hold the same blocks"
    );
    assert_eq!(snapshots(&target).len(), 2);
    let pruned = target.ok(&["prune", "--keep-last", "1", "--json"]).json();
    assert_eq!(
        pruned["snapshots_removed"], 1,
        "keep-last 1 applies to the group"
    );
    let left = snapshots(&target);
    assert_eq!(
        (left.len(), left[0]["instance"].as_str()),
        (1, Some("prom-b"))
    );
}

/// Several URLs for replicas sharing storage: the first ready one is used
/// and recorded in the manifest.
#[test]
fn the_first_ready_prometheus_is_used() {
    let work = tempfile::tempdir().unwrap();
    let b = replica(work.path(), "b");
    let repo = work.path().join("repo");
    let target = Target::local(&repo);
    let dead = format!("http://127.0.0.1:{}", support::free_port());
    let run = target.ok(&[
        "backup",
        "--prometheus-url",
        &dead,
        "--prometheus-url",
        &b.url,
        "--json",
    ]);
    assert!(
        run.stderr.contains(&format!("using {}", b.url)),
        "{}",
        run.stderr
    );
    let (_, manifest) = support::only_manifest(&repo);
    assert_eq!(manifest["source"]["prometheus_url"], b.url.as_str());
    assert_eq!(manifest["source"]["external_labels"]["replica"], "b");

    let dead2 = format!("http://127.0.0.1:{}", support::free_port());
    target
        .run(&["backup", "--prometheus-url", &format!("{dead},{dead2}")])
        .expect_failure(1, &["none of the 2 Prometheus servers is ready"]);
}
