//! Restores for an incident: the configuration files that travel with the
//! data, a time window of blocks, and merging missing blocks back into a
//! Prometheus that keeps running.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::{self, Prometheus, StartOptions, Target, FIXTURE_BLOCKS, FIXTURE_MID};

/// 01:00 and 05:00 on the fixture day: inside the first and the last block.
const FIXTURE_EARLY: i64 = 1_767_229_200;
const FIXTURE_LATE: i64 = 1_767_243_600;
/// Prometheus 2.42 and 3.5 rescan their blocks once a minute; allow for a slow host.
const RELOAD_WAIT: Duration = Duration::from_secs(90);

const RULES_A: &str =
    "groups:\n  - name: a\n    rules:\n      - record: job:up:a\n        expr: vector(1)\n";
const RULES_B: &str =
    "groups:\n  - name: b\n    rules:\n      - record: job:up:b\n        expr: vector(2)\n";

/// `path` below a `--config-to` directory: its absolute path without the `/`.
fn restored_at(config_to: &Path, original: &Path) -> PathBuf {
    config_to.join(original.strip_prefix("/").unwrap())
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// The configuration file Prometheus reports (the harness's, in a temp dir).
fn reported_config(prom: &Prometheus) -> PathBuf {
    PathBuf::from(
        prom.api("status/flags", &[])["config.file"]
            .as_str()
            .unwrap(),
    )
}

/// Number of series node_load1 has at `time` (0 or 1 with the fixtures).
fn load1_series(prom: &Prometheus, time: i64) -> usize {
    prom.query("node_load1", time)["result"]
        .as_array()
        .unwrap()
        .len()
}

fn block_dirs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| support::is_ulid(n))
        .collect();
    names.sort();
    names
}

fn ulid_of(block: &Path) -> String {
    block.file_name().unwrap().to_string_lossy().into_owned()
}

/// The configuration Prometheus reports, its rule files (an absolute glob)
/// and an --include file are stored through S3, counted, not uploaded again
/// while unchanged, and restored byte for byte below --config-to without
/// touching any data directory.
#[test]
fn config_files_travel_with_the_data_through_garage() {
    let target = Target::garage(support::garage(), "configs");
    let work = tempfile::tempdir().unwrap();
    let conf = work.path().canonicalize().unwrap().join("etc/prometheus");
    write(&conf.join("rules/a.yml"), RULES_A);
    write(&conf.join("rules/b.yml"), RULES_B);
    write(&conf.join("rules/notes.txt"), "not a rule file");
    let targets = conf.join("targets.json");
    write(&targets, "[{\"targets\": [\"localhost:9100\"]}]\n");
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    let config_yaml = format!(
        "global:\n  scrape_interval: 15s\nrule_files:\n  - {}/rules/*.yml\n",
        conf.display()
    );
    let prom = Prometheus::start_with(
        &data,
        StartOptions {
            config_yaml: Some(config_yaml.clone()),
            ..Default::default()
        },
    );
    let backup = || {
        target
            .ok(&[
                "backup",
                "--prometheus-url",
                &prom.url,
                "--data-dir",
                data.to_str().unwrap(),
                "--skip-head",
                "--include",
                targets.to_str().unwrap(),
                "--json",
            ])
            .json()
    };
    let first = backup();
    assert_eq!(first["blocks_new"], FIXTURE_BLOCKS);
    assert_eq!(
        first["config_files"], 4,
        "config, two rule files, the include"
    );
    assert_eq!(first["config_files_new"], 4);
    let list = target.snapshots();
    assert_eq!(list[0]["config_files"], 4);

    let second = backup();
    assert_eq!(second["config_files"], 4);
    assert_eq!(
        second["config_files_new"], 0,
        "unchanged files were uploaded again"
    );

    // Only the configuration: no --data-dir needed, none written.
    let out = work.path().join("configs");
    let restored = target
        .ok(&[
            "restore",
            "latest",
            "--no-data",
            "--config-to",
            out.to_str().unwrap(),
            "--json",
        ])
        .json();
    assert_eq!(
        (&restored["data_dir"], &restored["blocks_restored"]),
        (&Value::Null, &0.into()),
        "{restored}"
    );
    let files = restored["config_files"]["files"].as_array().unwrap();
    assert_eq!(files.len(), 4);
    assert!(files.iter().all(|f| f["status"] == "written"), "{restored}");
    let config = reported_config(&prom);
    assert_eq!(
        fs::read_to_string(restored_at(&out, &config)).unwrap(),
        config_yaml
    );
    assert_eq!(
        fs::read_to_string(restored_at(&out, &conf.join("rules/a.yml"))).unwrap(),
        RULES_A
    );
    assert_eq!(
        fs::read_to_string(restored_at(&out, &conf.join("rules/b.yml"))).unwrap(),
        RULES_B
    );
    assert!(restored_at(&out, &targets).is_file());
    assert!(!restored_at(&out, &conf.join("rules/notes.txt")).exists());

    // A changed rule file is the only new object; restoring it over the
    // older copy needs --force, which keeps the older one aside.
    let changed = RULES_B.replace("vector(2)", "vector(3)");
    write(&conf.join("rules/b.yml"), &changed);
    let third = backup();
    assert_eq!(third["config_files_new"], 1);
    let args = [
        "restore",
        "latest",
        "--no-data",
        "--config-to",
        out.to_str().unwrap(),
    ];
    target
        .run(&args)
        .expect_failure(2, &["exists with other content", "--force"]);
    let forced = target
        .ok(&[&args[..], &["--force", "--json"]].concat())
        .json();
    let b = restored_at(&out, &conf.join("rules/b.yml"));
    assert_eq!(fs::read_to_string(&b).unwrap(), changed);
    let replaced: Vec<&Value> = forced["config_files"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] == "replaced")
        .collect();
    assert_eq!(replaced.len(), 1, "{forced}");
    let aside = replaced[0]["moved_aside_to"].as_str().unwrap();
    assert_eq!(fs::read_to_string(aside).unwrap(), RULES_B);

    // Data and configuration together.
    let both = work.path().join("both");
    let report = target
        .ok(&[
            "restore",
            "latest",
            "--data-dir",
            both.join("data").to_str().unwrap(),
            "--config-to",
            both.join("etc").to_str().unwrap(),
            "--json",
        ])
        .json();
    assert_eq!(report["blocks_restored"], FIXTURE_BLOCKS);
    assert_eq!(report["config_files"]["files"].as_array().unwrap().len(), 4);
    assert_eq!(block_dirs(&both.join("data")).len(), FIXTURE_BLOCKS);
}

/// Given with --prometheus-config, a configuration with relative rule globs
/// restores into a layout that promtool accepts as it is; a missing explicit
/// file stops the backup before anything is stored.
#[test]
fn explicit_config_restores_a_layout_promtool_accepts() {
    let work = tempfile::tempdir().unwrap();
    let target = Target::local(&work.path().join("repo"));
    let conf = work.path().canonicalize().unwrap().join("etc/prometheus");
    let config = conf.join("prometheus.yml");
    write(
        &config,
        "global:\n  scrape_interval: 15s\nrule_files:\n  - rules/*.yml\n",
    );
    write(&conf.join("rules/a.yml"), RULES_A);
    let data = work.path().join("data");
    support::fixture_data_dir(&data);

    let missing = conf.join("missing.yml");
    let data_s = data.to_str().unwrap();
    let bad_config = [
        "backup",
        "--from-dir",
        data_s,
        "--prometheus-config",
        missing.to_str().unwrap(),
    ];
    target
        .run(&bad_config)
        .expect_failure(2, &["--prometheus-config", "missing.yml"]);
    let bad_include = [
        "backup",
        "--from-dir",
        data_s,
        "--include",
        missing.to_str().unwrap(),
    ];
    target
        .run(&bad_include)
        .expect_failure(2, &["--include", "missing.yml"]);
    assert!(
        target.snapshots().is_empty(),
        "a failed backup stored a snapshot"
    );

    let backup = target
        .ok(&[
            "backup",
            "--from-dir",
            data_s,
            "--prometheus-config",
            config.to_str().unwrap(),
            "--json",
        ])
        .json();
    assert_eq!(backup["config_files"], 2);
    let out = work.path().join("restored-config");
    target.ok(&[
        "restore",
        "latest",
        "--no-data",
        "--config-to",
        out.to_str().unwrap(),
    ]);
    let restored = restored_at(&out, &config);
    let check = Command::new(support::promtool())
        .args(["check", "config"])
        .arg(&restored)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "promtool: {stdout}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(stdout.contains("1 rule files found"), "{stdout}");
    assert!(stdout.contains("1 rules found"), "{stdout}");

    // A damaged copy is caught by verify and refused by restore.
    target.ok(&["verify"]);
    let sha = backup_sha(&target, &config);
    fs::write(work.path().join("repo/configs").join(&sha), "tampered").unwrap();
    let verify = target.run(&["verify"]);
    assert_eq!(verify.code, 3, "{}{}", verify.stdout, verify.stderr);
    assert!(
        format!("{}{}", verify.stdout, verify.stderr).contains(config.to_str().unwrap()),
        "verify does not name the file:\n{}{}",
        verify.stdout,
        verify.stderr
    );
    let elsewhere = work.path().join("elsewhere");
    target
        .run(&[
            "restore",
            "latest",
            "--no-data",
            "--config-to",
            elsewhere.to_str().unwrap(),
        ])
        .expect_failure(1, &["damaged"]);
    assert!(!restored_at(&elsewhere, &config).exists());
}

/// The SHA-256 the newest manifest records for `path`.
fn backup_sha(target: &Target, path: &Path) -> String {
    let newest = support::manifest_paths(Path::new(&target.repo))
        .pop()
        .expect("a manifest");
    let manifest: Value = serde_json::from_slice(&fs::read(newest).unwrap()).unwrap();
    let entry = manifest["config_files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == path.to_str().unwrap())
        .unwrap();
    entry["sha256"].as_str().unwrap().to_string()
}

/// Configuration that Prometheus names but this host cannot read (promsnap
/// on another host, a rule file gone) only warns: the blocks are stored.
#[test]
fn unreadable_reported_config_only_warns() {
    let work = tempfile::tempdir().unwrap();
    let target = Target::local(&work.path().join("repo"));
    let rule = work.path().canonicalize().unwrap().join("rules/gone.yml");
    write(&rule, RULES_A);
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    let prom = Prometheus::start_with(
        &data,
        StartOptions {
            config_yaml: Some(format!("rule_files:\n  - {}\n", rule.display())),
            ..Default::default()
        },
    );
    let args = [
        "backup",
        "--prometheus-url",
        &prom.url,
        "--data-dir",
        data.to_str().unwrap(),
        "--skip-head",
        "--json",
    ];

    fs::remove_file(&rule).unwrap();
    let run = target.ok(&args);
    assert!(run.stderr.contains("warning: rule files"), "{}", run.stderr);
    assert!(run.stderr.contains("gone.yml"), "{}", run.stderr);
    assert_eq!(
        run.json()["config_files"],
        1,
        "the configuration itself is stored"
    );

    let config = reported_config(&prom);
    fs::rename(&config, config.with_extension("moved")).unwrap();
    let run = target.ok(&args);
    assert!(
        run.stderr
            .contains("warning: configuration files not backed up"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--prometheus-config"), "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["config_files"], 0);
    assert_eq!(report["blocks"], FIXTURE_BLOCKS);

    let out = work.path().join("out");
    target
        .run(&[
            "restore",
            "latest",
            "--no-data",
            "--config-to",
            out.to_str().unwrap(),
        ])
        .expect_failure(2, &["has no configuration files"]);
}

/// --from/--to restore only the blocks of an incident window, and a
/// Prometheus on the result answers inside the window and nothing outside.
#[test]
fn time_window_restores_only_overlapping_blocks() {
    let work = tempfile::tempdir().unwrap();
    let target = Target::local(&work.path().join("repo"));
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    target.ok(&["backup", "--from-dir", data.to_str().unwrap()]);
    let middle = ulid_of(&support::fixture_blocks()[1]);

    let window = work.path().join("window");
    let report = target
        .ok(&[
            "restore",
            "latest",
            "--data-dir",
            window.to_str().unwrap(),
            "--from",
            "2026-01-01T03:00:00Z",
            "--to",
            "2026-01-01T03:30:00Z",
            "--json",
        ])
        .json();
    assert_eq!(report["blocks"], FIXTURE_BLOCKS);
    assert_eq!(report["blocks_selected"], 1);
    assert_eq!(report["blocks_restored"], 1);
    assert_eq!(block_dirs(&window), std::slice::from_ref(&middle));
    let scratch = Prometheus::start(&window);
    assert_eq!(scratch.query_f64("node_load1", FIXTURE_MID), 0.45);
    assert_eq!(
        load1_series(&scratch, FIXTURE_EARLY),
        0,
        "data outside the window"
    );
    assert_eq!(
        load1_series(&scratch, FIXTURE_LATE),
        0,
        "data outside the window"
    );

    // The same window relative to now, as typed during an incident.
    let minutes_ago = (chrono::Utc::now().timestamp() - FIXTURE_MID) / 60;
    let relative = work.path().join("relative");
    let run = target.ok(&[
        "restore",
        "latest",
        "--data-dir",
        relative.to_str().unwrap(),
        "--from",
        &format!("-{minutes_ago}m"),
        "--to",
        &format!("-{}m", minutes_ago - 30),
    ]);
    assert!(run.stdout.contains("1 of 3 selected"), "{}", run.stdout);
    assert_eq!(block_dirs(&relative), [middle]);

    let nothing = work.path().join("nothing");
    let nothing_s = nothing.to_str().unwrap();
    target
        .run(&[
            "restore",
            "latest",
            "--data-dir",
            nothing_s,
            "--from",
            "2027-01-01T00:00:00Z",
        ])
        .expect_failure(2, &["no block of snapshot", "it holds 2026-01-01 00:00"]);
    target
        .run(&[
            "restore",
            "latest",
            "--data-dir",
            nothing_s,
            "--from",
            "-1h",
            "--to",
            "-2h",
        ])
        .expect_failure(2, &["--from is after --to"]);
    assert!(!nothing.exists(), "a refused restore created the directory");
}

/// A block lost from a running Prometheus comes back by merging the backup
/// into its live data directory: no restart, the existing blocks untouched,
/// nothing of promsnap's left behind.
#[test]
fn merge_brings_a_lost_block_back_into_a_running_prometheus() {
    let work = tempfile::tempdir().unwrap();
    let target = Target::local(&work.path().join("repo"));
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    let mut prom = Prometheus::start(&data);
    target.ok(&[
        "backup",
        "--prometheus-url",
        &prom.url,
        "--data-dir",
        data.to_str().unwrap(),
    ]);

    // Lose the middle block: Prometheus keeps blocks open, so stop it first.
    prom.stop();
    let middle = ulid_of(&support::fixture_blocks()[1]);
    fs::remove_dir_all(data.join(&middle)).unwrap();
    let prom = Prometheus::start(&data);
    assert_eq!(load1_series(&prom, FIXTURE_MID), 0, "the block is not lost");
    assert_eq!(prom.query_f64("node_load1", FIXTURE_EARLY), 3.17);

    let merge = [
        "restore",
        "latest",
        "--merge",
        "--data-dir",
        data.to_str().unwrap(),
        "--prometheus-url",
        &prom.url,
        "--json",
    ];
    let entries = || -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = entries();
    let report = target.ok(&merge).json();
    assert_eq!(report["merge"], true);
    assert_eq!(report["blocks_restored"], 1);
    assert_eq!(report["blocks_already_present"], FIXTURE_BLOCKS - 1);
    assert_eq!(report["blocks_beyond_retention"], Value::Array(vec![]));
    assert!(data.join(&middle).join("meta.json").is_file());
    // Only the block appeared: no lock, marker or staging directory.
    let mut expected = before.clone();
    expected.push(middle.clone());
    expected.sort();
    assert_eq!(
        entries(),
        expected,
        "merge left something in the live directory"
    );

    let back = support::poll_until(RELOAD_WAIT, || load1_series(&prom, FIXTURE_MID) == 1);
    assert!(
        back,
        "the merged block was not loaded within {RELOAD_WAIT:?}; log:\n{}",
        support::tail(&prom.log_path, 20)
    );
    assert_eq!(prom.query_f64("node_load1", FIXTURE_MID), 0.45);
    assert_eq!(prom.query_f64("node_load1", FIXTURE_EARLY), 3.17);
    assert_eq!(prom.query_f64("node_load1", FIXTURE_LATE), 2.95);

    // Merging again changes nothing.
    let again = target.ok(&merge).json();
    assert_eq!(again["blocks_restored"], 0);
    assert_eq!(again["blocks_already_present"], FIXTURE_BLOCKS);
}

/// With the server's retention at hand, a merge names the blocks Prometheus
/// is going to delete, and Prometheus indeed deletes them; without a server
/// it says it cannot check.
#[test]
fn merge_warns_about_blocks_beyond_the_server_retention() {
    let work = tempfile::tempdir().unwrap();
    let target = Target::local(&work.path().join("repo"));
    let source = work.path().join("source");
    support::fixture_data_dir(&source);
    target.ok(&["backup", "--from-dir", source.to_str().unwrap()]);

    // 3h retention counted from the newest block (ending 06:00): the first
    // block (ending 02:00) is deleted as soon as Prometheus opens the TSDB.
    let live = work.path().join("live");
    support::fixture_data_dir(&live);
    let prom = Prometheus::start_with(
        &live,
        StartOptions {
            extra_args: vec!["--storage.tsdb.retention.time=3h".into()],
            ..Default::default()
        },
    );
    let first = ulid_of(&support::fixture_blocks()[0]);
    assert!(!live.join(&first).exists(), "Prometheus kept the old block");

    let run = target.ok(&[
        "restore",
        "latest",
        "--merge",
        "--data-dir",
        live.to_str().unwrap(),
        "--prometheus-url",
        &prom.url,
        "--json",
    ]);
    assert!(run.stderr.contains("warning:"), "{}", run.stderr);
    assert!(run.stderr.contains("retention (3h)"), "{}", run.stderr);
    assert!(run.stderr.contains(&first), "{}", run.stderr);
    let report = run.json();
    assert_eq!(
        report["blocks_beyond_retention"],
        Value::Array(vec![first.clone().into()])
    );
    assert_eq!(report["blocks_restored"], 1);
    // The warning was right: the server removes the block again.
    support::wait_until(
        RELOAD_WAIT,
        "Prometheus to delete the block beyond its retention",
        || !live.join(&first).exists(),
    );

    let run = target.ok(&[
        "restore",
        "latest",
        "--merge",
        "--data-dir",
        live.to_str().unwrap(),
    ]);
    assert!(
        run.stderr.contains("not checking the server's retention"),
        "{}",
        run.stderr
    );
    let missing = work.path().join("missing");
    target
        .run(&[
            "restore",
            "latest",
            "--merge",
            "--data-dir",
            missing.to_str().unwrap(),
        ])
        .expect_failure(2, &["not an existing data directory"]);
}
