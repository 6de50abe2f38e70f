//! Running promsnap in production: metrics an alert can rely on (textfile
//! and Pushgateway), the alert rules themselves, the local lock that stops
//! cron runs from overlapping, credentials from files that never show up in
//! any output, and the bandwidth limit.

use std::fs::{self, File};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use crate::support::{self, Prometheus, Pushgateway, Run, StartOptions, Target, FIXTURE_BLOCKS};

/// The value of the sample `series` (name and labels, exactly as written)
/// in exposition text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A local repository target and a copy of the fixture blocks.
fn fixture_setup(work: &Path) -> (Target, String) {
    let data = work.join("data");
    support::fixture_data_dir(&data);
    (
        Target::local(&work.join("repo")),
        data.to_str().unwrap().to_string(),
    )
}

fn promtool() -> std::path::PathBuf {
    support::promtool()
}

#[test]
fn metrics_file_tells_an_alert_what_happened() {
    let work = tempfile::tempdir().unwrap();
    let (target, data) = fixture_setup(work.path());
    let textfile = work.path().join("textfile");
    fs::create_dir(&textfile).unwrap();
    let file = textfile.join("promsnap.prom");
    let metrics = file.to_str().unwrap();
    let backup = |from: &str| {
        target.run(&[
            "backup",
            "--from-dir",
            from,
            "--instance",
            "prom-a",
            "--metrics-file",
            metrics,
        ])
    };
    let b = r#"{command="backup",instance="prom-a"}"#;
    let metric = |name: &str, labels: &str| {
        sample(
            &fs::read_to_string(&file).unwrap(),
            &format!("{name}{labels}"),
        )
    };

    let started = now();
    assert_eq!(backup(&data).code, 0);
    let text = fs::read_to_string(&file).unwrap();
    assert!(text.contains("# TYPE promsnap_last_success_timestamp_seconds gauge"));
    assert!(text.contains("# HELP promsnap_run_success "));
    assert_eq!(metric("promsnap_run_success", b), Some(1.0));
    let first_success = metric("promsnap_last_success_timestamp_seconds", b).unwrap();
    assert!((started - 1.0..now() + 1.0).contains(&first_success));
    let new_blocks = r#"{command="backup",instance="prom-a",state="new"}"#;
    let reused_blocks = r#"{command="backup",instance="prom-a",state="reused"}"#;
    assert_eq!(
        metric("promsnap_blocks", new_blocks),
        Some(FIXTURE_BLOCKS as f64)
    );
    assert_eq!(metric("promsnap_blocks", reused_blocks), Some(0.0));
    assert!(metric("promsnap_bytes_uploaded", b).unwrap() > 10_000.0);
    assert_eq!(metric("promsnap_snapshots", b), Some(1.0));
    check_metrics_with_promtool(&file);

    // The next night nothing changed: everything is reused.
    assert_eq!(backup(&data).code, 0);
    assert_eq!(
        metric("promsnap_blocks", reused_blocks),
        Some(FIXTURE_BLOCKS as f64)
    );
    assert_eq!(metric("promsnap_bytes_uploaded", b), Some(0.0));
    assert_eq!(metric("promsnap_snapshots", b), Some(2.0));
    let second_success = metric("promsnap_last_success_timestamp_seconds", b).unwrap();

    // A failed run: the last success stays, the failure is visible.
    let failed = backup(work.path().join("no-such-dir").to_str().unwrap());
    assert_ne!(failed.code, 0);
    assert_eq!(metric("promsnap_run_success", b), Some(0.0));
    assert_eq!(
        metric("promsnap_last_success_timestamp_seconds", b),
        Some(second_success)
    );
    assert!(metric("promsnap_last_run_timestamp_seconds", b).unwrap() >= second_success);

    // Other commands add their own samples and keep the backup's.
    target.ok(&["verify", "--instance", "prom-a", "--metrics-file", metrics]);
    let v = r#"{command="verify",instance="prom-a"}"#;
    assert_eq!(metric("promsnap_run_success", v), Some(1.0));
    assert_eq!(metric("promsnap_snapshots", v), Some(2.0));
    assert_eq!(metric("promsnap_run_success", b), Some(0.0));
    // prune reports what is left, restore that it worked.
    let common = ["--instance", "prom-a", "--metrics-file", metrics];
    target.ok(&[&["prune", "--keep-last", "1"][..], &common].concat());
    let p = r#"{command="prune",instance="prom-a"}"#;
    assert_eq!(metric("promsnap_snapshots", p), Some(1.0));
    let dest = work.path().join("restored");
    let restore = ["restore", "latest", "--data-dir", dest.to_str().unwrap()];
    target.ok(&[&restore[..], &common].concat());
    let r = r#"{command="restore",instance="prom-a"}"#;
    assert_eq!(metric("promsnap_run_success", r), Some(1.0));
    check_metrics_with_promtool(&file);
    // Nothing but the metrics file is left in the collector's directory.
    let names: Vec<_> = fs::read_dir(&textfile)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["promsnap.prom"]);
}

/// An HA replica that skips because the group's backup is already stored
/// succeeded, and says that it skipped.
#[test]
fn a_skipping_ha_replica_reports_success_and_skipped() {
    let work = tempfile::tempdir().unwrap();
    let (target, data) = fixture_setup(work.path());
    let file = work.path().join("promsnap.prom");
    let metrics = file.to_str().unwrap();
    for replica in ["prom-a", "prom-b"] {
        target.ok(&[
            "backup",
            "--from-dir",
            &data,
            "--ha-group",
            "eu1",
            "--instance",
            replica,
            "--metrics-file",
            metrics,
        ]);
    }
    let text = fs::read_to_string(&file).unwrap();
    let a = r#"{command="backup",instance="prom-a"}"#;
    let b = r#"{command="backup",instance="prom-b"}"#;
    assert_eq!(
        sample(&text, &format!("promsnap_run_skipped{a}")),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, &format!("promsnap_run_skipped{b}")),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, &format!("promsnap_run_success{b}")),
        Some(1.0)
    );
    assert!(sample(
        &text,
        &format!("promsnap_last_success_timestamp_seconds{b}")
    )
    .is_some());
    // It uploaded nothing and does not pretend otherwise.
    let b_new = r#"promsnap_blocks{command="backup",instance="prom-b",state="new"}"#;
    assert_eq!(sample(&text, b_new), None);
}

fn check_metrics_with_promtool(file: &Path) {
    let out = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(File::open(file).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        fs::read_to_string(file).unwrap()
    );
}

#[test]
fn metrics_are_pushed_to_a_real_pushgateway() {
    let gateway = Pushgateway::start();
    let work = tempfile::tempdir().unwrap();
    let (target, data) = fixture_setup(work.path());
    // A slash in the instance needs the Pushgateway's base64 form.
    let backup = |from: &str, gateway: &str| {
        target.run(&[
            "backup",
            "--from-dir",
            from,
            "--instance",
            "eu/prom-a",
            "--pushgateway",
            gateway,
            "--retries",
            "0",
        ])
    };
    let labels = r#"{command="backup",instance="eu/prom-a",job="promsnap"}"#;
    assert_eq!(backup(&data, &gateway.url).code, 0, "{}", gateway.log());
    let pushed = gateway.metrics();
    assert_eq!(
        sample(&pushed, &format!("promsnap_run_success{labels}")),
        Some(1.0)
    );
    let new_blocks = r#"{command="backup",instance="eu/prom-a",job="promsnap",state="new"}"#;
    assert_eq!(
        sample(&pushed, &format!("promsnap_blocks{new_blocks}")),
        Some(FIXTURE_BLOCKS as f64)
    );
    let success = sample(
        &pushed,
        &format!("promsnap_last_success_timestamp_seconds{labels}"),
    )
    .unwrap();

    // A failure is pushed too, and the gateway keeps the last success.
    let failed = backup("/no/such/dir", &gateway.url);
    assert_ne!(failed.code, 0);
    let pushed = gateway.metrics();
    assert_eq!(
        sample(&pushed, &format!("promsnap_run_success{labels}")),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &pushed,
            &format!("promsnap_last_success_timestamp_seconds{labels}")
        ),
        Some(success)
    );

    // A gateway that is down turns a successful backup into exit 3, loudly.
    let down = format!("http://127.0.0.1:{}", support::free_port());
    let run = backup(&data, &down);
    run.expect_failure(3, &["could not push the metrics", &down]);
}

const ALERTS: &str = "examples/promsnap-alerts.yml";

/// The committed rule file is valid, and its backup alert fires when the
/// last successful backup is older than 26 hours, and only then.
#[test]
fn alert_rules_pass_promtool_and_fire_when_backups_stop() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join(ALERTS);
    let out = Command::new(promtool())
        .arg("check")
        .arg("rules")
        .arg(&rules)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The last success at t=0 (time() starts at 0 in rule tests); the last
    // run failed at 20h. Evaluated at 25h and 27h.
    let work = tempfile::tempdir().unwrap();
    let test = format!(
        r#"rule_files:
  - {rules}
evaluation_interval: 1m
tests:
  - interval: 1h
    input_series:
      - series: 'promsnap_last_success_timestamp_seconds{{command="backup",instance="prom-a"}}'
        values: '0x30'
      - series: 'promsnap_run_success{{command="backup",instance="prom-a"}}'
        values: '1x19 0x11'
    alert_rule_test:
      - eval_time: 25h
        alertname: PromsnapBackupTooOld
        exp_alerts: []
      - eval_time: 27h
        alertname: PromsnapBackupTooOld
        exp_alerts:
          - exp_labels:
              severity: critical
              command: backup
              instance: prom-a
            exp_annotations:
              summary: 'No successful promsnap backup of prom-a for more than 26 hours'
              description: 'The last successful backup of prom-a ended 1d 3h 0m 0s ago. Check the promsnap logs (journalctl -u promsnap, or the sidecar: kubectl logs POD -c promsnap) and promsnap_run_success.'
      - eval_time: 19h
        alertname: PromsnapRunFailed
        exp_alerts: []
      - eval_time: 27h
        alertname: PromsnapRunFailed
        exp_alerts:
          - exp_labels:
              severity: warning
              command: backup
              instance: prom-a
            exp_annotations:
              summary: 'promsnap backup of prom-a failed'
              description: 'The last promsnap backup run of prom-a failed (exit code not 0). The next run may recover; see the promsnap logs.'
"#,
        rules = rules.display()
    );
    let test_file = work.path().join("alerts.test.yml");
    fs::write(&test_file, test).unwrap();
    let out = Command::new(promtool())
        .args(["test", "rules"])
        .arg(&test_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool test rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// While another run holds the lock, a backup changes nothing, says who
/// holds it, and exits 4; once it is free, the backup runs.
#[test]
fn a_second_run_exits_4_while_the_first_holds_the_lock() {
    let work = tempfile::tempdir().unwrap();
    let (target, data) = fixture_setup(work.path());
    let metrics = work.path().join("promsnap.prom");
    // The default for a backup with a data dir: DATA_DIR/.promsnap.lock.
    let held = File::create(Path::new(&data).join(".promsnap.lock")).unwrap();
    held.lock().unwrap();
    // Prometheus is not even asked (the URL leads nowhere): the lock comes first.
    let nowhere = format!("http://127.0.0.1:{}", support::free_port());
    let run = target.run(&[
        "backup",
        "--prometheus-url",
        &nowhere,
        "--data-dir",
        &data,
        "--metrics-file",
        metrics.to_str().unwrap(),
    ]);
    run.expect_failure(4, &["holds the lock", ".promsnap.lock", "hint:"]);
    assert!(!work.path().join("repo/snapshots").exists());
    assert!(!metrics.exists(), "a locked-out run wrote metrics");
    drop(held);

    // An explicit --lock-file, for a backup from a directory.
    let lock_file = work.path().join("cron.lock");
    let held = File::create(&lock_file).unwrap();
    held.lock().unwrap();
    let args = [
        "backup",
        "--from-dir",
        &data,
        "--lock-file",
        lock_file.to_str().unwrap(),
    ];
    target.run(&args).expect_failure(4, &["cron.lock"]);
    held.unlock().unwrap();
    target.ok(&args);

    // prune and verify take the lock too (by default a file in the runtime
    // directory named after the repository, never one inside it).
    let held = File::create(&lock_file).unwrap();
    held.lock().unwrap();
    let lock = lock_file.to_str().unwrap();
    target
        .run(&["prune", "--keep-last", "1", "--lock-file", lock])
        .expect_failure(4, &["holds the lock"]);
    target
        .run(&["verify", "--lock-file", lock])
        .expect_failure(4, &["holds the lock"]);
    drop(held);
    target.ok(&["verify", "--lock-file", lock]);
    assert!(
        !work.path().join("repo/.promsnap.lock").exists(),
        "a lock file inside the repository"
    );
}

const PROM_PASSWORD: &str = "pr0m-passw0rd-never-printed";
/// bcrypt of PROM_PASSWORD (cost 4), for Prometheus's web config.
const PROM_PASSWORD_BCRYPT: &str = "$2b$04$n.DMvz.I1J1rWMyRDP94CuVz2umXKyXyt5i2yV/zKjy7TLnZTLliW";

/// S3 keys and the Prometheus password come from files named in the
/// configuration file; backup, list, verify and restore work with them, and
/// no output of any run, failed ones included, contains a secret.
#[test]
fn secrets_from_files_work_and_are_never_printed() {
    let garage = support::garage();
    let bucket = garage.new_bucket("secrets");
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    let web = format!("basic_auth_users:\n  backup: {PROM_PASSWORD_BCRYPT}\n");
    let prom = Prometheus::start_with(
        &data,
        StartOptions {
            web_config_yaml: Some(web),
            ..Default::default()
        },
    );
    let wrong_secret = "0123456789abcdef".repeat(4);
    let wrong_password = "wrong-pr0m-passw0rd";
    let secret = |name: &str, value: &str| {
        let path = work.path().join(name);
        fs::write(&path, format!("{value}\n")).unwrap();
        path.display().to_string()
    };
    let config = |name: &str, s3_secret: &str, prom_password: &str| {
        let text = format!(
            "[repository]\nurl = \"s3://{bucket}/p\"\ninit = true\ns3_endpoint = \"{endpoint}\"\n\
             s3_region = \"{region}\"\ns3_path_style = true\n\
             access_key_id_file = \"{id}\"\nsecret_access_key_file = \"{key}\"\n\
             [prometheus]\nurl = \"{url}\"\ndata_dir = \"{data}\"\nusername = \"backup\"\n\
             password_file = \"{password}\"\n",
            endpoint = garage.endpoint,
            region = garage.region,
            id = secret(&format!("{name}.id"), &garage.access_key),
            key = secret(&format!("{name}.key"), s3_secret),
            url = prom.url,
            data = data.display(),
            password = secret(&format!("{name}.password"), prom_password),
        );
        let path = work.path().join(format!("{name}.toml"));
        fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let good = config("good", &garage.secret_key, PROM_PASSWORD);
    let bad_s3 = config("bad-s3", &wrong_secret, PROM_PASSWORD);
    let bad_prom = config("bad-prom", &garage.secret_key, wrong_password);
    let restored = work.path().join("restored");
    let restored = restored.to_str().unwrap();
    // No AWS_* variables: only the configuration file can authenticate.
    // Every log switch we know of is on; nothing may print a secret anyway.
    let run = |args: &[&str]| -> Run {
        let out = support::promsnap()
            .args(args)
            .env("RUST_LOG", "trace")
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    let runs = vec![
        ("backup", run(&["--config", &good, "backup", "--json"]), 0),
        ("list", run(&["--config", &good, "list"]), 0),
        ("verify", run(&["--config", &good, "verify"]), 0),
        (
            "restore",
            run(&[
                "--config",
                &good,
                "restore",
                "latest",
                "--data-dir",
                restored,
            ]),
            0,
        ),
        (
            "list, wrong S3 secret",
            run(&["--config", &bad_s3, "list"]),
            2,
        ),
        (
            "backup, wrong S3 secret",
            run(&["--config", &bad_s3, "backup"]),
            2,
        ),
        (
            "verify, wrong S3 secret",
            run(&["--config", &bad_s3, "verify"]),
            2,
        ),
        (
            "restore, wrong S3 secret",
            run(&[
                "--config",
                &bad_s3,
                "restore",
                "latest",
                "--data-dir",
                &format!("{restored}-2"),
            ]),
            2,
        ),
        (
            "backup, wrong Prometheus password",
            run(&["--config", &bad_prom, "backup", "--json"]),
            1,
        ),
    ];
    for (what, r, code) in &runs {
        assert_eq!(r.code, *code, "{what}:\n{}{}", r.stdout, r.stderr);
        for s in [
            &garage.secret_key,
            &wrong_secret,
            PROM_PASSWORD,
            wrong_password,
        ] {
            assert!(
                !r.stdout.contains(s) && !r.stderr.contains(s),
                "{what} printed a secret:\n{}{}",
                r.stdout,
                r.stderr
            );
        }
    }
    let id = runs[0].1.json()["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(runs[1].1.stdout.contains(&id), "list shows the snapshot");
    assert!(runs[4].1.stderr.contains("access denied"));
    assert!(runs[8].1.stderr.contains("401"));
    let blocks = fs::read_dir(restored)
        .unwrap()
        .filter(|e| support::is_ulid(&e.as_ref().unwrap().file_name().to_string_lossy()))
        .count();
    assert_eq!(blocks, FIXTURE_BLOCKS);
}

/// A password written into a URL (Prometheus, Pushgateway, S3 endpoint) is
/// used, and never printed or stored: not in the output of good or failing
/// runs, not in the manifest, not in `list --json`.
#[test]
fn passwords_in_urls_are_never_printed_or_stored() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    let web = format!("basic_auth_users:\n  backup: {PROM_PASSWORD_BCRYPT}\n");
    let prom = Prometheus::start_with(
        &data,
        StartOptions {
            web_config_yaml: Some(web),
            ..Default::default()
        },
    );
    let with = |password: &str| {
        prom.url
            .replace("http://", &format!("http://backup:{password}@"))
    };
    let wrong_password = "wr0ng-url-passw0rd";
    let gateway_password = "g4teway-passw0rd";
    let s3_password = "s3-endp0int-passw0rd";
    let secrets = [PROM_PASSWORD, wrong_password, gateway_password, s3_password];
    let repo = work.path().join("repo");
    let target = Target::local(&repo);
    let data_dir = data.to_str().unwrap();
    let gateway = format!(
        "http://gw:{gateway_password}@127.0.0.1:{}",
        support::free_port()
    );
    let good = target.run(&[
        "backup",
        "--prometheus-url",
        &with(PROM_PASSWORD),
        "--data-dir",
        data_dir,
        "--pushgateway",
        &gateway,
        "--retries",
        "0",
    ]);
    // The backup is stored; only the metrics push to nowhere failed.
    assert_eq!(good.code, 3, "{}", good.stderr);
    assert!(
        good.stderr.contains("could not push the metrics"),
        "{}",
        good.stderr
    );
    let wrong = target.run(&[
        "backup",
        "--prometheus-url",
        &with(wrong_password),
        "--data-dir",
        data_dir,
        "--retries",
        "0",
    ]);
    wrong.expect_failure(1, &["401"]);
    let s3 = support::bare(&[
        "list",
        "--repo",
        "s3://b/x",
        "--s3-endpoint",
        &format!(
            "http://key:{s3_password}@127.0.0.1:{}",
            support::free_port()
        ),
        "--retries",
        "0",
    ]);
    assert_eq!(s3.code, 1, "{}", s3.stderr);
    let list = target.ok(&["list", "--json"]);
    let (_, manifest) = support::only_manifest(&repo);
    let stored =
        fs::read_to_string(support::manifest_paths(&repo).first().expect("a manifest")).unwrap();
    let shown = [
        ("backup", &good.stdout),
        ("backup", &good.stderr),
        ("wrong backup", &wrong.stderr),
        ("s3 list", &s3.stderr),
        ("list", &list.stdout),
        ("manifest", &stored),
    ];
    for (what, text) in shown {
        for secret in secrets {
            assert!(!text.contains(secret), "{what} shows a password:\n{text}");
        }
    }
    assert_eq!(
        manifest["source"]["prometheus_url"].as_str(),
        Some(prom.url.as_str()),
        "the manifest keeps the URL without its credentials"
    );
}

/// `--max-bandwidth` paces a backup and a restore: 8 MiB that zstd cannot
/// shrink take about four seconds at 2 MiB/s, each way.
#[test]
fn max_bandwidth_paces_backup_and_restore() {
    let work = tempfile::tempdir().unwrap();
    let (target, data) = fixture_setup(work.path());
    // Random chunks in the three blocks: 3 x 3 MiB = 9 MiB.
    support::add_random_chunks(Path::new(&data), 3, 1);
    let started = Instant::now();
    target.ok(&["backup", "--from-dir", &data, "--max-bandwidth", "2MiB/s"]);
    let up = started.elapsed();
    assert!(
        (Duration::from_secs(4)..Duration::from_secs(20)).contains(&up),
        "9 MiB at 2 MiB/s took {up:?}"
    );
    let dest = work.path().join("restored");
    let started = Instant::now();
    target.ok(&[
        "restore",
        "latest",
        "--data-dir",
        dest.to_str().unwrap(),
        "--max-bandwidth",
        "2MiB/s",
    ]);
    let down = started.elapsed();
    assert!(
        (Duration::from_secs(4)..Duration::from_secs(20)).contains(&down),
        "9 MiB down at 2 MiB/s took {down:?}"
    );
    // An unreadable rate is a usage error that says how to write one.
    target
        .run(&["list", "--max-bandwidth", "fast"])
        .expect_failure(2, &["50MiB/s"]);
}

/// Under `--max-bandwidth`, the progress a cron log shows is the share of
/// the backup uploaded, not the share read ahead into buffers, so its rate
/// and the time left are right: every line's percentage is within about a
/// 4 MiB chunk per block in flight of what the repository had received when
/// it was printed.
#[test]
fn progress_under_max_bandwidth_counts_bytes_uploaded() {
    use std::io::{BufRead, BufReader};
    let work = tempfile::tempdir().unwrap();
    let (target, data) = fixture_setup(work.path());
    // 3 x 16 MiB that zstd cannot shrink: the archives are the data's size.
    support::add_random_chunks(Path::new(&data), 16, 7);
    let mut child = target
        .cmd(&[
            "backup",
            "--from-dir",
            &data,
            "--max-bandwidth",
            "8MiB/s",
            // Two blocks at a time, each with zstd workers (which buffer
            // several MiB of input): the default on a multi-core host.
            "--concurrency",
            "2",
            "--zstd-threads",
            "2",
        ])
        // Test-only: a progress line every 100 ms instead of every 10 s.
        .env("PROMSNAP_TEST_PROGRESS_EVERY_MS", "100")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start promsnap");
    // What is in the repository: packs (format 2), staging files included.
    let blocks = Path::new(&target.repo).join("packs");
    // (share the line reports, bytes in the repository when it came)
    let mut seen: Vec<(f64, u64, String)> = Vec::new();
    let mut stderr = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        let uploaded = support::dir_size(&blocks);
        if let Some(share) = line
            .split_once("backup: ")
            .and_then(|(_, rest)| rest.split_once('%'))
            .and_then(|(pct, _)| pct.parse::<f64>().ok())
        {
            seen.push((share, uploaded, line.clone()));
        }
        stderr.push_str(&line);
        stderr.push('\n');
    }
    assert!(child.wait().unwrap().success(), "{stderr}");
    let total = support::dir_size(&blocks) as f64;
    assert!(
        seen.len() >= 5,
        "too few progress lines for a 6 s upload:\n{stderr}"
    );
    for (share, uploaded, line) in &seen {
        let stored = *uploaded as f64 * 100.0 / total;
        assert!(
            (share - stored).abs() <= 15.0,
            "the line says {share}% while {stored:.0}% is in the repository: {line}\n{stderr}"
        );
    }
}

/// The progress of `verify` counts what it reads against what it will
/// read: a format 2 repository's packs, and at the deep level its blocks'
/// bytes (it counted only the recipes' few KiB, and showed shares of
/// thousands of percent). Every line is at most 100 %, and the last one
/// near it.
#[test]
fn verify_progress_of_a_format_2_repository_stays_within_100_percent() {
    let work = tempfile::tempdir().unwrap();
    let (target, data) = fixture_setup(work.path());
    target.ok(&["backup", "--init", "--from-dir", &data]);
    for level in [&[][..], &["--deep"][..]] {
        let mut args = vec!["verify"];
        args.extend_from_slice(level);
        let out = target
            .cmd(&args)
            // Test-only: a line on every step of progress.
            .env("PROMSNAP_TEST_PROGRESS_EVERY_MS", "0")
            .output()
            .expect("run promsnap");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "verify {level:?}:\n{stderr}");
        let shares: Vec<f64> = stderr
            .lines()
            .filter_map(|l| l.split_once("verify: ")?.1.split_once('%'))
            .filter_map(|(pct, _)| pct.parse().ok())
            .collect();
        assert!(
            !shares.is_empty(),
            "verify {level:?}: no progress:\n{stderr}"
        );
        let last = shares[shares.len() - 1];
        assert!(
            shares.iter().all(|&s| s <= 100.0) && last >= 90.0,
            "verify {level:?}: {shares:?}\n{stderr}"
        );
    }
}
