//! What differs between the Prometheus lines promsnap is tested against
//! (2.42 and the 3.5 LTS, chosen by `PROMSNAP_TEST_PROMETHEUS`), each test
//! run on whichever is under test: that it really is the chosen one, the
//! lock file, the flags and buildinfo promsnap reads, UTF-8 metric and label
//! names (3.x), and blocks with chunk encodings newer than any packaged
//! server.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{self, Prometheus};
use crate::support::{bare, Target};

/// The only block directory in `dir`.
fn only_block(dir: &Path) -> PathBuf {
    let blocks: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| support::is_ulid(p.file_name().unwrap().to_str().unwrap()))
        .collect();
    assert_eq!(blocks.len(), 1, "one block in {}", dir.display());
    blocks.into_iter().next().unwrap()
}

/// The promtool a `promsnap` run finds first on its PATH.
fn promtool_seen_by_promsnap() -> PathBuf {
    let cmd = support::promsnap();
    let path = cmd
        .get_envs()
        .find(|(k, _)| *k == "PATH")
        .and_then(|(_, v)| v)
        .expect("promsnap() sets PATH")
        .to_os_string();
    std::env::split_paths(&path)
        .map(|d| d.join("promtool"))
        .find(|p| p.is_file())
        .expect("a promtool on promsnap's PATH")
}

fn version_line(bin: &Path) -> String {
    let out = Command::new(bin).arg("--version").output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    text.lines().next().unwrap_or_default().to_string()
}

/// Backs up the server on `data`, restores the snapshot into `restored` and
/// requires every file to come back byte for byte; returns the target.
fn back_up_and_restore(work: &Path, prom: &Prometheus, data: &Path, restored: &Path) -> Target {
    let target = Target::local(&work.join("repo"));
    target.ok(&[
        "backup",
        "--prometheus-url",
        &prom.url,
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    target.ok(&[
        "restore",
        "latest",
        "--data-dir",
        restored.to_str().unwrap(),
    ]);
    let block = only_block(data);
    let name = block.file_name().unwrap();
    for rel in ["meta.json", "index", "tombstones", "chunks/000001"] {
        assert!(
            fs::read(block.join(rel)).unwrap() == fs::read(restored.join(name).join(rel)).unwrap(),
            "{rel} differs after restore"
        );
    }
    target
}

/// The server the harness starts, the promtool the tests use and the one
/// the promsnap under test finds (for `verify --restore-test`) are all of
/// the chosen line, and backups record the version buildinfo reports.
#[test]
fn the_chosen_server_and_its_promtool_are_used() {
    let server = support::server();
    let want = format!("version {}.", server.name());
    assert!(
        version_line(&promtool_seen_by_promsnap()).contains(&want),
        "promsnap would run {}",
        promtool_seen_by_promsnap().display()
    );
    assert_eq!(promtool_seen_by_promsnap(), support::promtool());

    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    let prom = Prometheus::start(&data);
    let build = prom.api("status/buildinfo", &[]);
    let version = build["version"].as_str().unwrap().to_string();
    assert!(
        version.starts_with(&format!("{}.", server.name())),
        "buildinfo says {version}, the harness chose {}",
        server.name()
    );
    // The flags promsnap reads: the data directory (backup without
    // --data-dir), the config file (backup's config files), the retention
    // (restore --merge). Same names and formats on both lines.
    let flags = prom.api("status/flags", &[]);
    assert_eq!(flags["storage.tsdb.path"], data.to_str().unwrap());
    assert!(flags["config.file"]
        .as_str()
        .unwrap()
        .ends_with("prometheus.yml"));
    assert_eq!(flags["storage.tsdb.retention.time"], "100y");

    let target = Target::local(&work.path().join("repo"));
    target.ok(&["backup", "--prometheus-url", &prom.url]);
    let (_, manifest) = support::only_manifest(&work.path().join("repo"));
    assert_eq!(manifest["source"]["prometheus_version"], version.as_str());
}

/// 3.x takes `flock` on `<data-dir>/lock` by default; Debian's 2.42 takes no
/// lock unless started with `--storage.tsdb.use-lockfile`. Restore refuses a
/// running server's directory either way and names the process.
#[test]
fn lock_file_differs_by_line_and_restore_refuses_both() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    let target = Target::local(&work.path().join("repo"));
    let prom = Prometheus::start(&data);
    target.ok(&[
        "backup",
        "--prometheus-url",
        &prom.url,
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    let locked = fs::File::open(data.join("lock"))
        .map(|f| matches!(f.try_lock(), Err(fs::TryLockError::WouldBlock)))
        .unwrap_or(false);
    assert_eq!(
        locked,
        support::server().is_v3(),
        "a running {} holds {}/lock: {locked}",
        support::server().name(),
        data.display()
    );
    target
        .run(&[
            "restore",
            "latest",
            "--data-dir",
            data.to_str().unwrap(),
            "--force",
        ])
        .expect_failure(2, &["is in use by a running process", "prometheus (pid"]);
}

/// Metric and label names beyond `[a-zA-Z_:][a-zA-Z0-9_:]*` (dots, accents),
/// which 3.x accepts (fixtures/utf8, written by promtool 3.5), round-trip and
/// show in query answers. 3.x selects them with quoted names; 2.42 still
/// loads such a block and finds the series by `__name__`.
#[test]
fn utf8_metric_and_label_names_round_trip() {
    let work = tempfile::tempdir().unwrap();
    let block = only_block(&support::fixtures_dir().join("utf8/data"));
    let data = work.path().join("data");
    support::copy_dir(&block, &data.join(block.file_name().unwrap()));
    let source = Prometheus::start(&data);
    let restored = work.path().join("restored");
    back_up_and_restore(work.path(), &source, &data, &restored);
    let copy = Prometheus::start(&restored);

    let at = 1_767_229_185; // the last sample, 00:59:45
    let mut queries = vec![r#"{__name__="demo.utf8.requests_total"}"#];
    if support::server().is_v3() {
        queries.push(r#"{"demo.utf8.requests_total", "http.status"="500"}"#);
        queries.push(r#"sum by ("région") (rate({"demo.utf8.requests_total"}[5m]))"#);
    }
    for q in queries {
        let (a, b) = (source.query(q, at), copy.query(q, at));
        assert_eq!(a, b, "`{q}` answers differently after the restore");
        let result = a["result"].as_array().unwrap();
        assert!(!result.is_empty(), "`{q}` found nothing: {a}");
        for series in result {
            assert_eq!(series["metric"]["région"], "Zürich", "`{q}`: {series}");
        }
    }
    let all = copy.query(r#"{__name__="demo.utf8.requests_total"}"#, at);
    let mut by_status: Vec<(String, String)> = all["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["metric"]["http.status"].as_str().unwrap().to_string(),
                s["value"][1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    by_status.sort();
    // fixtures/utf8/generate.sh: 3 per step for 200, one per ten for 500.
    assert_eq!(
        by_status,
        [("200".into(), "717".into()), ("500".into(), "23".into())]
    );
}

/// A block with XOR2, HistogramST and FloatHistogramST chunks (encodings 4,
/// 5, 6: Prometheus 3.11+ and 3.14+, fixtures/newer-encodings) is served by
/// this older server (it reads chunks only when queried), backs up, deep
/// verifies with a note per encoding and exit 0, restores byte for byte, and
/// passes check-dir.
#[test]
fn blocks_with_newer_chunk_encodings_back_up_and_restore() {
    let work = tempfile::tempdir().unwrap();
    let block = only_block(&support::fixtures_dir().join("newer-encodings/data"));
    let data = work.path().join("data");
    support::copy_dir(&block, &data.join(block.file_name().unwrap()));
    let prom = Prometheus::start(&data);
    let restored = work.path().join("restored");
    let target = back_up_and_restore(work.path(), &prom, &data, &restored);

    let run = target.run(&["verify", "--json", "--deep", "--restore-test"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report: Value = run.json();
    assert_eq!(report["problems"], Value::Array(vec![]), "{report}");
    let notes: Vec<String> = report["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            assert_eq!(n["kind"], "newer_encoding", "{n}");
            n["message"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(notes.len(), 3, "{notes:#?}");
    for name in ["4 (XOR2)", "5 (HistogramST)", "6 (FloatHistogramST)"] {
        let with = notes.iter().filter(|n| n.contains(name)).count();
        assert_eq!(with, 1, "one note on encoding {name}: {notes:#?}");
    }
    assert_eq!(report["restore_test"][0]["blocks_loaded_by_promtool"], 1);
    let human = target.run(&["verify", "--deep"]);
    assert_eq!(human.code, 0, "{}", human.stdout);
    assert!(human.stdout.contains("note "), "{}", human.stdout);
    assert!(human.stdout.contains("no problems"), "{}", human.stdout);

    let check = bare(&["check-dir", restored.to_str().unwrap()]);
    assert_eq!(check.code, 0, "{}\n{}", check.stdout, check.stderr);
    assert_eq!(
        check.stdout.matches("note block").count(),
        3,
        "{}",
        check.stdout
    );
    assert!(check.stdout.contains("no problems"), "{}", check.stdout);
}
