//! Repository format 2 against a live Prometheus (the one under test,
//! `PROMSNAP_TEST_PROMETHEUS`) and Garage: the server itself compacts,
//! deletes series and merges overlapping blocks between backups taken
//! through its snapshot API, and every snapshot must restore byte for byte
//! and answer range queries exactly as the server did.
//!
//! Data comes from `promtool tsdb create-blocks-from openmetrics`, one 2h
//! window per file (one block each). Prometheus runs with block ranges of
//! 2h, 6h and 18h and compacts about a minute after it starts (every
//! minute after that); the tests wait for the block layout the planner
//! reaches, checked on 2.42 and 3.5:
//!
//! - windows 0-7 become 0-2, 3-5 (6h blocks), 6 and 7 (the newest is left
//!   alone, and 6 alone fills no range);
//! - with 8-10 added, 0-8 become one 18h block, 9 and 10 stay;
//! - a backfilled block inside window 1 is merged with it (vertical
//!   compaction), nothing else changes.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sha2::Digest;

use crate::support::{self, Prometheus, StartOptions, Target};

/// 2026-01-01T00:00:00Z, the start of window 0, in unix seconds.
const START: i64 = 1_767_225_600;
const WINDOW: i64 = 7200;
const STEP: i64 = 15;
/// How long Prometheus may take to reach a layout: its first compaction
/// comes a minute after it starts; the rest is slack for a loaded machine.
const COMPACTION_TIMEOUT: Duration = Duration::from_secs(240);

/// Deterministic noise for sample `i` of series `s` (splitmix64).
fn noise(s: u64, i: u64) -> u64 {
    let mut z = s
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(i)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The OpenMetrics text of window `w`: counters and gauges over all
/// windows, and `e2e_late` only from window 9 on. `shift` > 0 writes
/// instead a backfill over the same window: two of the gauges again,
/// `shift` seconds after each of their samples, and a new series.
fn window_text(w: i64, shift: i64) -> String {
    let times: Vec<i64> = (START + w * WINDOW + shift..START + (w + 1) * WINDOW)
        .step_by(STEP as usize)
        .collect();
    let index = |t: i64| ((t - START) / STEP) as u64;
    let mut out = String::new();
    let gauge = |out: &mut String, name: &str, labels: &str, s: u64, base: f64| {
        for &t in &times {
            let v = base + (noise(s, index(t)) % 400) as f64 / 100.0;
            out.push_str(&format!("{name}{{{labels}}} {v:.2} {t}\n"));
        }
    };
    if shift > 0 {
        out.push_str("# TYPE e2e_backfill gauge\n");
        gauge(&mut out, "e2e_backfill", "n=\"1\"", 900, 1.0);
        out.push_str("# TYPE e2e_temperature gauge\n");
        for room in 1..=2u64 {
            gauge(
                &mut out,
                "e2e_temperature",
                &format!("room=\"{room}\""),
                800 + room,
                18.0,
            );
        }
        out.push_str("# EOF\n");
        return out;
    }
    if w >= 9 {
        out.push_str("# TYPE e2e_late gauge\n");
        for n in 1..=3u64 {
            gauge(&mut out, "e2e_late", &format!("n=\"{n}\""), 300 + n, 5.0);
        }
    }
    out.push_str("# TYPE e2e_requests counter\n");
    for (k, path) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        let s = 100 + k as u64;
        for &t in &times {
            // Strictly increasing: 3.7 per sample plus less than 1.
            let i = index(t);
            let v = i as f64 * 3.7 + (noise(s, i) % 100) as f64 / 100.0;
            out.push_str(&format!(
                "e2e_requests_total{{path=\"/{path}\"}} {v:.2} {t}\n"
            ));
        }
    }
    out.push_str("# TYPE e2e_temperature gauge\n");
    for room in 1..=8u64 {
        gauge(
            &mut out,
            "e2e_temperature",
            &format!("room=\"{room}\""),
            200 + room,
            16.0 + room as f64,
        );
    }
    out.push_str("# EOF\n");
    out
}

/// Window `w` (or its backfill) as the one block promtool writes for it,
/// under `work/staging`.
fn block_of_window(work: &Path, w: i64, shift: i64) -> PathBuf {
    let dir = work.join("staging").join(format!("w{w}-{shift}"));
    fs::create_dir_all(&dir).unwrap();
    let text = dir.with_extension("om");
    fs::write(&text, window_text(w, shift)).unwrap();
    let out = Command::new(support::promtool())
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&text)
        .arg(&dir)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool create-blocks-from openmetrics (window {w}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let blocks = ulid_dirs(&dir);
    assert_eq!(blocks.len(), 1, "promtool wrote one block for window {w}");
    blocks.into_iter().next().unwrap()
}

/// The block directories in `dir`, sorted.
fn ulid_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| support::is_ulid(&p.file_name().unwrap().to_string_lossy()))
        .collect();
    found.sort();
    found
}

fn meta(block: &Path) -> Value {
    serde_json::from_slice(&fs::read(block.join("meta.json")).unwrap()).unwrap()
}

/// The blocks of `data` as (first window, last window), in time order.
fn layout(data: &Path) -> Vec<(i64, i64)> {
    let mut spans: Vec<(i64, i64)> = ulid_dirs(data)
        .iter()
        .filter(|b| b.join("meta.json").is_file())
        .map(|b| {
            let m = meta(b);
            let window = |ms: i64| (ms / 1000 - START).div_euclid(WINDOW);
            (
                window(m["minTime"].as_i64().unwrap()),
                window(m["maxTime"].as_i64().unwrap() - 1),
            )
        })
        .collect();
    spans.sort();
    spans
}

/// Waits until Prometheus has compacted `data` into `want`.
fn wait_for_layout(prom: &Prometheus, data: &Path, want: &[(i64, i64)]) {
    if !support::poll_until(COMPACTION_TIMEOUT, || layout(data) == want) {
        panic!(
            "Prometheus did not compact {} into {want:?} within {COMPACTION_TIMEOUT:?}: \
             the blocks span {:?}; its log:\n{}",
            data.display(),
            layout(data),
            support::tail(&prom.log_path, 30)
        );
    }
}

/// Prometheus on `data` with block ranges of 2h, 6h and 18h.
fn start(data: &Path) -> Prometheus {
    Prometheus::start_with(
        data,
        StartOptions {
            extra_args: vec![
                "--storage.tsdb.min-block-duration=2h".into(),
                "--storage.tsdb.max-block-duration=18h".into(),
            ],
            ..StartOptions::default()
        },
    )
}

/// The SHA-256 of every file of every block in `data`, by path.
fn hashes(data: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                out.insert(
                    rel,
                    hex::encode(sha2::Sha256::digest(fs::read(&path).unwrap())),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    for block in ulid_dirs(data) {
        walk(data, &block, &mut out);
    }
    out
}

/// Backs up the running server through its snapshot API; returns the
/// `--json` report and the hashes of the blocks it saw.
fn backup(target: &Target, prom: &Prometheus) -> (Value, BTreeMap<String, String>) {
    let report = target
        .ok(&[
            "backup",
            "--prometheus-url",
            &prom.url,
            "--data-dir",
            prom.data_dir.to_str().unwrap(),
            "--instance",
            "live",
            "--json",
        ])
        .json();
    (report, hashes(&prom.data_dir))
}

/// Restores snapshot `id` into a new `dest` and requires every block file
/// to be byte for byte what the server had (and nothing else).
fn restore_identically(target: &Target, id: &str, dest: &Path, want: &BTreeMap<String, String>) {
    target.ok(&["restore", id, "--data-dir", dest.to_str().unwrap()]);
    let got = hashes(dest);
    assert!(
        got == *want,
        "snapshot {id} restored other files than the server had:\nserver: {want:#?}\nrestored: {got:#?}"
    );
}

/// Range queries over every window of the data (and a few instant ones).
fn answers(prom: &Prometheus) -> Vec<(String, Value)> {
    let (from, to) = (START, START + 11 * WINDOW);
    let mut out = Vec::new();
    for q in [
        "e2e_temperature",
        "rate(e2e_requests_total[5m])",
        "e2e_late",
        "e2e_backfill",
        "count_over_time({__name__=~\"e2e_.+\"}[1h])",
    ] {
        out.push((q.to_string(), prom.query_range(q, from, to, 60)));
    }
    for t in [START + WINDOW + 1800, START + 9 * WINDOW + 2700] {
        let q = "count({__name__=~\"e2e_.+\"})";
        out.push((format!("{q} at {t}"), prom.query(q, t)));
    }
    out
}

/// A Prometheus on `restored` answers every query as `live` does.
fn same_answers(live: &Prometheus, restored: &Path, what: &str) {
    let want = answers(live);
    assert!(
        want.iter()
            .filter(|(_, a)| a["result"].as_array().is_some_and(|r| !r.is_empty()))
            .count()
            >= 3,
        "{what}: the server answers nothing: {want:?}"
    );
    let copy = start(restored);
    for ((query, a), (_, b)) in want.iter().zip(answers(&copy)) {
        assert!(
            *a == b,
            "{what}: `{query}` answers differently after the restore:\nserver: {a}\nrestored: {b}"
        );
    }
}

/// How many series `expr` selects at `t`.
fn series_at(prom: &Prometheus, expr: &str, t: i64) -> usize {
    prom.query(expr, t)["result"].as_array().unwrap().len()
}

/// POST to an admin endpoint of `prom`; it must succeed.
fn admin(prom: &Prometheus, path: &str, params: &[(&str, &str)]) {
    let url =
        reqwest::Url::parse_with_params(&format!("{}/api/v1/admin/tsdb/{path}", prom.url), params)
            .unwrap();
    let (status, body) = support::http_post(url.as_str()).unwrap();
    assert!(status < 300, "{path}: HTTP {status}: {body}");
}

fn zstd_size(path: &Path) -> u64 {
    zstd::encode_all(&fs::read(path).unwrap()[..], 1)
        .unwrap()
        .len() as u64
}

/// Bytes the repository's objects take in Garage, by top-level directory
/// (`packs`, `recipes`, `snapshots`, ...).
fn bucket_bytes(target: &Target) -> BTreeMap<String, u64> {
    let client = support::garage().s3_client();
    let prefix = target.repo.split_once("://").unwrap().1;
    let prefix = format!("{}/", prefix.split_once('/').map_or("", |(_, p)| p));
    support::block_on(async {
        let mut total = BTreeMap::new();
        let mut token = None;
        loop {
            let page = client
                .list_objects_v2()
                .bucket(target.bucket())
                .set_continuation_token(token)
                .send()
                .await
                .expect("list the bucket");
            for o in page.contents() {
                let key = o.key().unwrap_or_default();
                let rel = key.strip_prefix(prefix.as_str()).unwrap_or(key);
                let top = rel.split('/').next().unwrap_or_default().to_string();
                *total.entry(top).or_insert(0) += o.size().unwrap_or(0) as u64;
            }
            token = page.next_continuation_token().map(str::to_string);
            if token.is_none() {
                return total;
            }
        }
    })
}

fn id(report: &Value) -> String {
    report["snapshot_id"].as_str().unwrap().to_string()
}

/// The whole life of a TSDB, backed up at each step: 2h blocks; the 6h
/// blocks Prometheus compacted them into (their chunk data not uploaded
/// again); one 18h block after three more windows (that backup uploads
/// about what the new windows and indexes take compressed, not the 18h
/// block); series deleted (tombstones), then cleaned (chunks re-encoded). Every snapshot restores byte for byte and answers as the
/// server did; pruning the oldest frees what only it used, and the rest
/// still restore byte for byte and deep-verify.
#[test]
fn a_compacting_server_round_trips_and_uploads_only_new_data() {
    let work = tempfile::tempdir().unwrap();
    let target = Target::garage(support::garage(), "live");
    let windows: Vec<PathBuf> = (0..11)
        .map(|w| block_of_window(work.path(), w, 0))
        .collect();
    let data = work.path().join("data");
    for b in &windows[..8] {
        support::copy_dir(b, &data.join(b.file_name().unwrap()));
    }
    let mut snapshots = Vec::new();

    // 1. The eight 2h blocks, before Prometheus compacts them: a round
    // trip with queries compared.
    let mut prom = start(&data);
    let (s0, h0) = backup(&target, &prom);
    assert_eq!(s0["blocks_new"], 8, "{s0:#}");
    assert_eq!(layout(&data).len(), 8, "compacted before the first backup");
    let dest = work.path().join("r0");
    restore_identically(&target, &id(&s0), &dest, &h0);
    same_answers(&prom, &dest, "2h blocks");
    snapshots.push((id(&s0), h0));

    // 2. Prometheus compacts windows 0-5 into two 6h blocks: their chunk
    // data is the 2h blocks' and is not uploaded again.
    wait_for_layout(&prom, &data, &[(0, 2), (3, 5), (6, 6), (7, 7)]);
    let (s1, h1) = backup(&target, &prom);
    assert_eq!(
        (&s1["blocks_new"], &s1["blocks_reused"]),
        (&2.into(), &2.into()),
        "{s1:#}"
    );
    // Found in the repository: the two reused blocks whole, and every
    // chunk record of the 6h blocks (all but their segment headers).
    let (compacted, reused): (Vec<PathBuf>, Vec<PathBuf>) = ulid_dirs(&data)
        .into_iter()
        .partition(|b| meta(b)["compaction"]["level"].as_u64() > Some(1));
    let chunks: u64 = compacted
        .iter()
        .map(|b| fs::metadata(b.join("chunks/000001")).unwrap().len() - 8)
        .sum();
    let reused: u64 = reused.iter().map(|b| support::dir_size(b)).sum();
    assert_eq!(s1["bytes_deduplicated"], chunks + reused, "{s1:#}");
    // What is uploaded is the 6h blocks' indexes and metadata, compressed,
    // and their recipes: a few KiB over the indexes at most.
    let indexes: u64 = compacted
        .iter()
        .map(|b| zstd_size(&b.join("index")) + zstd_size(&b.join("meta.json")))
        .sum();
    let uploaded = s1["bytes_uploaded"].as_u64().unwrap();
    assert!(
        uploaded <= indexes + 2 * 8192,
        "the 6h blocks uploaded {uploaded} bytes, for {indexes} bytes of indexes (compressed)"
    );
    snapshots.push((id(&s1), h1));

    // 3. Three more windows; Prometheus compacts 0-8 into one 18h block.
    prom.stop();
    for b in &windows[8..] {
        support::copy_dir(b, &data.join(b.file_name().unwrap()));
    }
    let mut prom = start(&data);
    wait_for_layout(&prom, &data, &[(0, 8), (9, 9), (10, 10)]);
    let (s2, h2) = backup(&target, &prom);
    assert_eq!(s2["blocks_new"], 3, "{s2:#}");
    // The floor: the new windows' chunks as promtool wrote them and the
    // new blocks' indexes and small files, zstd-compressed.
    let new_blocks = ulid_dirs(&data);
    let floor: u64 = windows[8..]
        .iter()
        .map(|b| zstd_size(&b.join("chunks/000001")))
        .sum::<u64>()
        + new_blocks
            .iter()
            .map(|b| zstd_size(&b.join("index")) + zstd_size(&b.join("meta.json")))
            .sum::<u64>();
    // What a block-level backup uploads: every file of the new blocks.
    let full: u64 = new_blocks
        .iter()
        .flat_map(|b| ["index", "meta.json", "tombstones", "chunks/000001"].map(|f| b.join(f)))
        .map(|f| zstd_size(&f))
        .sum();
    let uploaded = s2["bytes_uploaded"].as_u64().unwrap();
    println!(
        "after three windows and an 18h compaction: uploaded {uploaded} bytes; \
         the new data compresses to {floor}, the new blocks to {full}"
    );
    // Recipes, pack headers and blob framing: a few KiB a block.
    assert!(
        uploaded <= floor * 3 / 2 + 3 * 8192,
        "uploaded {uploaded} bytes for {floor} bytes of new data (compressed)"
    );
    assert!(
        uploaded * 3 < full,
        "uploaded {uploaded} bytes, not well below the {full} a full upload of the new blocks takes"
    );
    let dest = work.path().join("r2");
    restore_identically(&target, &id(&s2), &dest, &h2);
    same_answers(&prom, &dest, "18h block");
    snapshots.push((id(&s2), h2));

    // 4. Tombstones: one series deleted over all time, a half hour of
    // another; restored, both stay deleted.
    let at = START + 9 * WINDOW + 2700;
    assert_eq!(series_at(&prom, "e2e_late", at), 3);
    admin(&prom, "delete_series", &[("match[]", "e2e_late{n=\"1\"}")]);
    let (from, to) = (
        (START + 9 * WINDOW + 1800).to_string(),
        (START + 9 * WINDOW + 3600).to_string(),
    );
    admin(
        &prom,
        "delete_series",
        &[
            ("match[]", "e2e_temperature{room=\"1\"}"),
            ("start", &from),
            ("end", &to),
        ],
    );
    let (s3, h3) = backup(&target, &prom);
    assert_eq!(
        (&s3["blocks_new"], &s3["blocks_reused"]),
        (&2.into(), &1.into()),
        "the two blocks with tombstones are new: {s3:#}"
    );
    let dest = work.path().join("r3");
    restore_identically(&target, &id(&s3), &dest, &h3);
    same_answers(&prom, &dest, "tombstones");
    {
        let copy = start(&dest);
        assert_eq!(
            series_at(&copy, "e2e_late", at),
            2,
            "a deleted series came back"
        );
        assert_eq!(
            series_at(&copy, "e2e_temperature{room=\"1\"}", at),
            0,
            "deleted samples came back"
        );
    }
    snapshots.push((id(&s3), h3));

    // 5. clean_tombstones rewrites both blocks, re-encoding the chunks.
    let before = ulid_dirs(&data);
    admin(&prom, "clean_tombstones", &[]);
    support::wait_until(Duration::from_secs(60), "the cleaned blocks", || {
        let now = ulid_dirs(&data);
        // The 18h block stays; the two with tombstones are replaced.
        now.len() == 3 && now.iter().filter(|b| before.contains(b)).count() == 1
    });
    let (s4, h4) = backup(&target, &prom);
    assert_eq!(
        (&s4["blocks_new"], &s4["blocks_reused"]),
        (&2.into(), &1.into()),
        "{s4:#}"
    );
    let dest = work.path().join("r4");
    restore_identically(&target, &id(&s4), &dest, &h4);
    same_answers(&prom, &dest, "cleaned tombstones");
    snapshots.push((id(&s4), h4));
    prom.stop();

    // 6. Prune the oldest snapshot: what only it used goes, the rest
    // restore byte for byte.
    let bytes_before = bucket_bytes(&target);
    let report = target
        .ok(&["prune", "--keep-last", "4", "--grace", "0s", "--json"])
        .json();
    assert_eq!(report["snapshots_removed"], 1, "{report:#}");
    let bytes_after = bucket_bytes(&target);
    println!("prune of the oldest snapshot: {bytes_before:?} -> {bytes_after:?}");
    // Its recipes and the packs of its 2h blocks' indexes go; the chunk
    // data the 6h and 18h blocks share stays. `bytes_freed` counts the
    // data objects (not the manifest).
    let data = |b: &BTreeMap<String, u64>| b["packs"] + b["recipes"];
    assert!(
        data(&bytes_after) < data(&bytes_before),
        "prune freed no data: {bytes_before:?} -> {bytes_after:?}; {report:#}"
    );
    assert_eq!(
        report["bytes_freed"],
        data(&bytes_before) - data(&bytes_after),
        "prune reports other bytes freed than the bucket lost: {report:#}"
    );
    let verify = target.ok(&["verify", "--deep", "--json"]).json();
    assert!(
        verify["notes"].as_array().unwrap().is_empty(),
        "data only the pruned snapshot used is left: {verify:#}"
    );
    for (n, (id, want)) in snapshots.iter().enumerate().skip(1) {
        let dest = work.path().join(format!("after-prune-{n}"));
        restore_identically(&target, id, &dest, want);
    }
}

/// A block backfilled over existing data: backed up while it overlaps,
/// then after Prometheus merged it into the block it overlaps (vertical
/// compaction, chunks of the overlapping series re-encoded). Both
/// snapshots restore byte for byte and answer as the server does.
#[test]
fn overlapping_blocks_and_their_vertical_compaction_round_trip() {
    let work = tempfile::tempdir().unwrap();
    let target = Target::garage(support::garage(), "vertical");
    let data = work.path().join("data");
    let mut blocks: Vec<PathBuf> = (0..4).map(|w| block_of_window(work.path(), w, 0)).collect();
    blocks.push(block_of_window(work.path(), 1, 7));
    for b in &blocks {
        support::copy_dir(b, &data.join(b.file_name().unwrap()));
    }
    let prom = start(&data);
    let (overlapping, h0) = backup(&target, &prom);
    assert_eq!(overlapping["blocks_new"], 5, "{overlapping:#}");
    assert_eq!(layout(&data).len(), 5, "merged before the first backup");
    let dest = work.path().join("r0");
    restore_identically(&target, &id(&overlapping), &dest, &h0);
    same_answers(&prom, &dest, "overlapping blocks");

    wait_for_layout(&prom, &data, &[(0, 0), (1, 1), (2, 2), (3, 3)]);
    let (merged, h1) = backup(&target, &prom);
    assert_eq!(
        (&merged["blocks_new"], &merged["blocks_reused"]),
        (&1.into(), &3.into()),
        "{merged:#}"
    );
    let dest = work.path().join("r1");
    restore_identically(&target, &id(&merged), &dest, &h1);
    same_answers(&prom, &dest, "merged blocks");
    {
        let copy = start(&dest);
        assert_eq!(
            series_at(&copy, "e2e_backfill", START + WINDOW + 1800),
            1,
            "the backfilled series is missing"
        );
    }
    target.ok(&["verify", "--deep"]);
}
