//! Native histograms end to end, on the server under test
//! (`PROMSNAP_TEST_PROMETHEUS`): a block that this Prometheus line itself
//! wrote from scraped native histograms (fixtures/histograms, made by
//! `generate.sh`) is backed up from a running server, deep-verified,
//! restore-tested with the server's promtool, restored, and a second server
//! on the restored directory gives the same answers to histogram queries.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{self, Prometheus, StartOptions};
use crate::support::{bare, Target};

const NATIVE_HISTOGRAMS: &str = "--enable-feature=native-histograms";

/// Histogram queries whose answers must survive the round trip.
const QUERIES: &[&str] = &[
    "demo_request_duration_seconds",
    "histogram_count(demo_request_duration_seconds)",
    "histogram_sum(demo_request_duration_seconds)",
    "histogram_quantile(0.9, demo_request_duration_seconds)",
    "histogram_quantile(0.5, rate(demo_request_duration_seconds[20s]))",
    "demo_payload_bytes",
    "histogram_count(demo_payload_bytes)",
    "histogram_quantile(0.99, demo_payload_bytes)",
    "demo_temperature_celsius",
];

/// The fixture block this server line wrote.
fn fixture_block() -> PathBuf {
    let dir = support::fixtures_dir()
        .join("histograms")
        .join(format!("prometheus-{}", support::server().name()));
    let blocks: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run fixtures/histograms/generate.sh",
                dir.display()
            )
        })
        .map(|e| e.unwrap().path())
        .filter(|p| support::is_ulid(p.file_name().unwrap().to_str().unwrap()))
        .collect();
    assert_eq!(blocks.len(), 1, "one block in {}", dir.display());
    blocks.into_iter().next().unwrap()
}

/// `(minTime, maxTime)` of a block, in ms.
fn time_range(block: &Path) -> (i64, i64) {
    let meta: Value = serde_json::from_slice(&fs::read(block.join("meta.json")).unwrap()).unwrap();
    (
        meta["minTime"].as_i64().unwrap(),
        meta["maxTime"].as_i64().unwrap(),
    )
}

/// How many records of each encoding the block's chunk segments hold.
fn chunk_encodings(block: &Path) -> std::collections::BTreeMap<u8, usize> {
    let mut found = std::collections::BTreeMap::new();
    for entry in fs::read_dir(block.join("chunks")).unwrap() {
        let seg = fs::read(entry.unwrap().path()).unwrap();
        assert_eq!(&seg[..4], &[0x85, 0xBD, 0x40, 0xDD], "segment magic");
        let mut at = 8;
        while at < seg.len() {
            let (mut len, mut shift) = (0usize, 0);
            loop {
                let b = seg[at];
                at += 1;
                len |= usize::from(b & 0x7f) << shift;
                shift += 7;
                if b < 0x80 {
                    break;
                }
            }
            *found.entry(seg[at]).or_insert(0) += 1;
            at += 1 + len + 4;
        }
        assert_eq!(at, seg.len(), "records end where the segment ends");
    }
    found
}

fn start(data: &Path) -> Prometheus {
    Prometheus::start_with(
        data,
        StartOptions {
            extra_args: vec![NATIVE_HISTOGRAMS.into()],
            ..StartOptions::default()
        },
    )
}

/// Every query as a range query over the block and as instant queries at
/// its middle and at its last sample.
fn answers(prom: &Prometheus, (min, max): (i64, i64)) -> Vec<Value> {
    let (start, end) = (min / 1000, (max - 1) / 1000 + 1);
    let mut out = Vec::new();
    for q in QUERIES {
        out.push(prom.query_range(q, start, end, 2));
        out.push(prom.query(q, (start + end) / 2));
        out.push(prom.query(q, end));
    }
    out
}

/// The generator's scrape number `n` shows in the gauge as 20 + n/10; the
/// integer histogram then counts 15n - 29 observations (n >= 30), the float
/// one 7n (fixtures/histograms/target.py).
fn assert_histogram_counts_follow_the_generator(prom: &Prometheus, at: i64) {
    let gauge = prom.query_f64("demo_temperature_celsius", at);
    let n = ((gauge - 20.0) * 10.0).round();
    assert!(n >= 30.0, "too few scrapes in the fixture: {n}");
    let count = prom.query_f64("histogram_count(demo_request_duration_seconds)", at);
    assert_eq!(
        count,
        15.0 * n - 29.0,
        "integer histogram count at scrape {n}"
    );
    let count = prom.query_f64("histogram_count(demo_payload_bytes)", at);
    assert_eq!(count, 7.0 * n, "float histogram count at scrape {n}");
    let p90 = prom.query_f64("histogram_quantile(0.9, demo_request_duration_seconds)", at);
    assert!(p90 > 0.25 && p90 <= 16.0, "p90 {p90} outside the buckets");
}

/// The fixture really holds native histogram chunks: encodings 2
/// (histogram) and 3 (float histogram), next to XOR (1) float chunks.
#[test]
fn histogram_fixture_holds_histogram_and_float_histogram_chunks() {
    let found = chunk_encodings(&fixture_block());
    assert_eq!(
        found.keys().copied().collect::<Vec<_>>(),
        vec![1, 2, 3],
        "encodings in the {} fixture: {found:?}",
        support::server().name()
    );
}

/// Backup, `verify --deep` (stats cross-checks count histogram samples),
/// `--restore-test` with this server's promtool, restore, and the same
/// histogram query answers from a server on the restored directory.
#[test]
fn native_histograms_round_trip() {
    let work = tempfile::tempdir().unwrap();
    let block = fixture_block();
    let range = time_range(&block);
    let data = work.path().join("data");
    support::copy_dir(&block, &data.join(block.file_name().unwrap()));
    let source = start(&data);
    let end = (range.1 - 1) / 1000 + 1;
    assert_histogram_counts_follow_the_generator(&source, end);
    let before = answers(&source, range);

    let target = Target::local(&work.path().join("repo"));
    let backup = target
        .ok(&[
            "backup",
            "--prometheus-url",
            &source.url,
            "--data-dir",
            data.to_str().unwrap(),
            "--json",
        ])
        .json();
    // The fixture block; the head is empty (nothing is scraped) and adds none.
    assert_eq!(backup["blocks_new"], 1, "{backup}");

    let run = target.run(&["verify", "--json", "latest", "--deep", "--restore-test"]);
    let report = run.json();
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(report["problems"], Value::Array(vec![]), "{report}");
    assert_eq!(report["notes"], Value::Array(vec![]), "{report}");
    assert_eq!(report["restore_test"][0]["blocks_loaded_by_promtool"], 1);

    let restored = work.path().join("restored");
    target.ok(&[
        "restore",
        "latest",
        "--data-dir",
        restored.to_str().unwrap(),
    ]);
    let name = block.file_name().unwrap();
    for rel in ["meta.json", "index", "tombstones", "chunks/000001"] {
        assert!(
            fs::read(block.join(rel)).unwrap() == fs::read(restored.join(name).join(rel)).unwrap(),
            "{rel} differs after restore"
        );
    }
    let check = bare(&["check-dir", restored.to_str().unwrap()]);
    assert_eq!(check.code, 0, "{}", check.stdout);
    assert!(check.stdout.contains("no problems"), "{}", check.stdout);

    let copy = start(&restored);
    assert_histogram_counts_follow_the_generator(&copy, end);
    let after = answers(&copy, range);
    for (q, (a, b)) in QUERIES
        .iter()
        .flat_map(|q| [q; 3])
        .zip(before.iter().zip(&after))
    {
        assert!(
            !a["result"].as_array().unwrap().is_empty(),
            "`{q}` found nothing: {a}"
        );
        assert_eq!(a, b, "`{q}` answers differently after the restore");
    }
}
