//! The core promise, end to end: back up a real Prometheus, list, restore,
//! and a second real Prometheus on the restored directory answers every
//! query exactly as the original did, from byte-identical block files.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::support::{
    self, Prometheus, Target, FIXTURE_BLOCKS, FIXTURE_END, FIXTURE_MID, FIXTURE_SERIES,
    FIXTURE_START,
};

/// Queries whose answers must survive a round trip unchanged.
const QUERIES: &[&str] = &[
    "count({__name__=~\".+\"})",
    "count by (__name__) ({__name__=~\".+\"})",
    "count_over_time(node_cpu_seconds_total[1h])",
    "rate(node_cpu_seconds_total[5m])",
    "histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[10m])))",
    "node_load1",
];

/// Every query's answer over the whole fixture range, plus instant values.
fn answers(prom: &Prometheus) -> Vec<Value> {
    let mut out = Vec::new();
    for q in QUERIES {
        out.push(prom.query_range(q, FIXTURE_START, FIXTURE_END, 60));
        out.push(prom.query(q, FIXTURE_MID));
    }
    out
}

fn assert_same_blocks(original: &Path, restored: &Path) {
    let mut count = 0;
    for block in support::fixture_blocks() {
        let name = block.file_name().unwrap();
        for rel in ["meta.json", "index", "tombstones", "chunks/000001"] {
            let a = fs::read(original.join(name).join(rel)).unwrap();
            let b = fs::read(restored.join(name).join(rel))
                .unwrap_or_else(|e| panic!("{}/{rel} not restored: {e}", name.to_string_lossy()));
            assert!(
                a == b,
                "{}/{rel} differs after restore",
                name.to_string_lossy()
            );
            count += 1;
        }
    }
    assert_eq!(count, FIXTURE_BLOCKS * 4);
}

fn round_trip(target: Target) {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    let source = Prometheus::start(&data);
    let before = answers(&source);
    let series = source.query_f64("count({__name__=~\".+\"})", FIXTURE_MID);
    assert_eq!(series as usize, FIXTURE_SERIES, "the fixture did not load");

    let backup = target
        .ok(&[
            "backup",
            "--prometheus-url",
            &source.url,
            "--data-dir",
            data.to_str().unwrap(),
            "--instance",
            "prom-a",
            "--json",
        ])
        .json();
    assert_eq!(backup["blocks_new"], FIXTURE_BLOCKS);
    assert_eq!(backup["blocks_reused"], 0);
    assert!(backup["bytes_uploaded"].as_u64().unwrap() > 0);
    assert!(backup["bytes_read"].as_u64().unwrap() > backup["bytes_uploaded"].as_u64().unwrap());
    let snapshots: Vec<_> = fs::read_dir(data.join("snapshots")).unwrap().collect();
    assert!(
        snapshots.is_empty(),
        "the local snapshot was left behind: {snapshots:?}"
    );

    let rows = target.snapshots();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], backup["snapshot_id"]);
    assert_eq!(rows[0]["instance"], "prom-a");
    assert_eq!(rows[0]["blocks"], FIXTURE_BLOCKS);
    assert_eq!(rows[0]["min_time_ms"], FIXTURE_START * 1000);
    assert_eq!(rows[0]["min_time"], "2026-01-01T00:00:00Z");
    assert!(rows[0]["max_time_ms"].as_i64().unwrap() > FIXTURE_END * 1000);
    assert_eq!(rows[0]["bytes_stored"], backup["bytes_uploaded"]);
    let human = target.ok(&["list"]);
    assert!(
        human
            .stdout
            .contains(backup["snapshot_id"].as_str().unwrap()),
        "{}",
        human.stdout
    );

    let restored = work.path().join("restored");
    let report = target
        .ok(&[
            "restore",
            "latest",
            "--data-dir",
            restored.to_str().unwrap(),
            "--json",
        ])
        .json();
    assert_eq!(report["snapshot_id"], backup["snapshot_id"]);
    assert_eq!(report["blocks_restored"], FIXTURE_BLOCKS);
    assert_same_blocks(&data, &restored);
    let leftovers: Vec<String> = fs::read_dir(&restored)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !support::is_ulid(n))
        .collect();
    assert!(
        leftovers.is_empty(),
        "restore left {leftovers:?} in the data directory"
    );

    let copy = Prometheus::start(&restored);
    let after = answers(&copy);
    assert!(
        after
            .iter()
            .all(|a| a["result"].as_array().is_some_and(|r| !r.is_empty())),
        "empty answers"
    );
    for (i, (a, b)) in before.iter().zip(&after).enumerate() {
        assert_eq!(
            a,
            b,
            "query {} answers differently after the restore",
            QUERIES[i / 2]
        );
    }
}

#[test]
fn round_trip_through_a_local_repository() {
    let repo = tempfile::tempdir().unwrap();
    round_trip(Target::local(&repo.path().join("repo")));
}

#[test]
fn round_trip_through_garage() {
    round_trip(Target::garage(support::garage(), "roundtrip"));
}

/// A block added between two backups is the only one uploaded by the second.
#[test]
fn second_backup_uploads_only_the_new_block() {
    let target = Target::garage(support::garage(), "incremental");
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    fs::create_dir(&data).unwrap();
    let blocks = support::fixture_blocks();
    for b in &blocks[..2] {
        support::copy_dir(b, &data.join(b.file_name().unwrap()));
    }
    let mut prom = Prometheus::start(&data);
    let backup = |url: &str| {
        target
            .ok(&[
                "backup",
                "--prometheus-url",
                url,
                "--data-dir",
                data.to_str().unwrap(),
                "--json",
            ])
            .json()
    };
    let first = backup(&prom.url);
    assert_eq!(first["blocks_new"], 2);
    prom.stop();
    support::copy_dir(&blocks[2], &data.join(blocks[2].file_name().unwrap()));
    let prom = Prometheus::start(&data);
    let second = backup(&prom.url);
    assert_eq!(second["blocks_new"], 1);
    assert_eq!(second["blocks_reused"], 2);
    let rows = target.snapshots();
    assert_eq!(rows.len(), 2);
    // Exactly the new block's archive went over the wire.
    assert_eq!(rows[1]["bytes_new"], second["bytes_uploaded"]);
    assert!(second["bytes_uploaded"].as_u64().unwrap() > 0);
    assert!(second["bytes_uploaded"].as_u64().unwrap() < first["bytes_uploaded"].as_u64().unwrap());
    // Unchanged blocks were not even read.
    let new_block_size: u64 = fs::read_dir(blocks[2].join("chunks"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum::<u64>()
        + ["index", "meta.json", "tombstones"]
            .iter()
            .map(|f| fs::metadata(blocks[2].join(f)).unwrap().len())
            .sum::<u64>();
    assert_eq!(second["bytes_read"], new_block_size);
}

/// Deleting series rewrites tombstones in place under the same ULIDs: the
/// next backup must store those blocks again, and restoring it must not
/// bring the deleted series back.
#[test]
fn deleted_series_give_new_block_objects() {
    let repo = tempfile::tempdir().unwrap();
    let target = Target::local(&repo.path().join("repo"));
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    let prom = Prometheus::start(&data);
    let args = [
        "backup",
        "--prometheus-url",
        &prom.url,
        "--data-dir",
        data.to_str().unwrap(),
        "--json",
    ];
    target.ok(&args);
    let url = format!(
        "{}/api/v1/admin/tsdb/delete_series?match[]=node_load1",
        prom.url
    );
    let (status, body) = support::http_post(&url).unwrap();
    assert!(status < 300, "delete_series: {status} {body}");
    let second = target.ok(&args).json();
    assert_eq!(
        second["blocks_new"], FIXTURE_BLOCKS,
        "tombstoned blocks must be stored again"
    );

    let restored = work.path().join("restored");
    target.ok(&[
        "restore",
        "latest",
        "--data-dir",
        restored.to_str().unwrap(),
    ]);
    let copy = Prometheus::start(&restored);
    let data = copy.query("node_load1", FIXTURE_MID);
    assert_eq!(
        data["result"].as_array().unwrap().len(),
        0,
        "deleted series came back: {data}"
    );
    assert_eq!(
        copy.query_f64("count(node_memory_MemAvailable_bytes)", FIXTURE_MID),
        prom.query_f64("count(node_memory_MemAvailable_bytes)", FIXTURE_MID)
    );

    // The first snapshot still restores the series as they were.
    let list = target.snapshots();
    let first_id = list[0]["id"].as_str().unwrap().to_string();
    let old = work.path().join("old");
    target.ok(&["restore", &first_id, "--data-dir", old.to_str().unwrap()]);
    let copy = Prometheus::start(&old);
    assert_eq!(
        copy.query("node_load1", FIXTURE_MID)["result"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// `--from-dir` backs up a directory without the API and says what it skips.
#[test]
fn from_dir_backs_up_blocks_and_skips_the_rest() {
    let repo = tempfile::tempdir().unwrap();
    let target = Target::local(&repo.path().join("repo"));
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    fs::create_dir_all(data.join("wal")).unwrap();
    fs::write(data.join("wal/00000000"), b"wal").unwrap();
    fs::create_dir_all(data.join("chunks_head")).unwrap();
    let run = target.ok(&["backup", "--from-dir", data.to_str().unwrap(), "--json"]);
    assert_eq!(run.json()["blocks_new"], FIXTURE_BLOCKS);
    assert!(
        run.stderr.contains("skipping chunks_head, wal"),
        "{}",
        run.stderr
    );
}
