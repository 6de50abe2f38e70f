//! promsnap where Prometheus runs: `restore --if-empty` seeding a new
//! replica, and `promsnap serve`, the scheduled sidecar with its HTTP
//! endpoints, scraped by the Prometheus it backs up.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::support::{
    self, Prometheus, StartOptions, Target, FIXTURE_BLOCKS, FIXTURE_END, FIXTURE_MID, FIXTURE_START,
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

/// A new group's first start: the repository holds no snapshot of it yet
/// (a repository just made, or other groups' only), so the init container
/// has nothing to seed from. It must not keep Prometheus from starting: it
/// exits 0, leaves the directory empty and warns, naming what the
/// repository holds (so a misspelt --instance shows). An explicit id that
/// does not exist is still an error.
#[test]
fn restore_if_empty_with_nothing_to_seed_starts_empty() {
    let work = tempfile::tempdir().unwrap();
    let target = Target::local(&work.path().join("repo"));
    let seeded = work.path().join("replica");
    fs::create_dir_all(&seeded).unwrap();
    let seeded_s = seeded.to_str().unwrap();
    let args = |instance: &'static str| {
        [
            "restore",
            "latest",
            "--if-empty",
            "--instance",
            instance,
            "--data-dir",
            seeded_s,
        ]
    };
    let fresh = target.ok(&args("monitoring-k8s"));
    assert!(
        fresh
            .stderr
            .contains("holds no snapshot of instance \"monitoring-k8s\"")
            && fresh.stderr.contains("it holds none yet")
            && fresh.stderr.contains("starts empty"),
        "{}",
        fresh.stderr
    );
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    target.ok(&[
        "backup",
        "--from-dir",
        data.to_str().unwrap(),
        "--instance",
        "prom-a",
    ]);
    let other = target.ok(&args("monitoring-k8s"));
    assert!(
        other.stderr.contains("prom-a (1 snapshot)"),
        "{}",
        other.stderr
    );
    assert_eq!(
        fs::read_dir(&seeded).unwrap().count(),
        0,
        "nothing is written"
    );
    target
        .run(&[
            "restore",
            "20200101T000000Z-00000000",
            "--if-empty",
            "--data-dir",
            seeded_s,
        ])
        .expect_failure(2, &["20200101T000000Z-00000000"]);
}

/// A running `promsnap serve`, its stderr in a log file, stopped with
/// SIGTERM (and waited for) when dropped.
struct Serve {
    child: Option<std::process::Child>,
    url: String,
    log: std::path::PathBuf,
}

impl Serve {
    /// `promsnap serve ARGS --listen-address 127.0.0.1:PORT` against
    /// `target`, once /-/healthy answers.
    fn start(target: &Target, port: u16, args: &[&str], log: std::path::PathBuf) -> Serve {
        let address = format!("127.0.0.1:{port}");
        let mut cmd = target.cmd(&["serve", "--listen-address", &address]);
        cmd.args(args)
            .stdout(std::process::Stdio::null())
            .stderr(fs::File::create(&log).unwrap());
        let mut serve = Serve {
            child: Some(cmd.spawn().expect("start promsnap serve")),
            url: format!("http://{address}"),
            log,
        };
        let healthy = format!("{}/-/healthy", serve.url);
        let up = support::poll_until(Duration::from_secs(30), || {
            if let Ok(Some(status)) = serve.child.as_mut().unwrap().try_wait() {
                panic!("serve exited ({status}):\n{}", serve.log());
            }
            support::http_get(&healthy).is_ok_and(|(code, _)| code == 200)
        });
        assert!(up, "serve did not answer /-/healthy:\n{}", serve.log());
        serve
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let ok = std::process::Command::new("sh")
            .args(["-c", &format!("kill -{sig} {pid}")])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {pid}");
    }

    /// Sends SIGTERM and returns the exit code, waiting at most `limit`.
    fn stop(&mut self, limit: Duration) -> i32 {
        self.signal("TERM");
        let mut child = self.child.take().expect("running");
        let mut code = None;
        let done = support::poll_until(limit, || {
            code = child.try_wait().unwrap().map(|s| s.code().unwrap_or(-1));
            code.is_some()
        });
        if !done {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve did not stop within {limit:?}:\n{}", self.log());
        }
        code.unwrap()
    }

    /// POST /api/v1/backup with `token` as the bearer token, if any.
    fn trigger(&self, token: Option<&str>) -> (u16, String) {
        let url = format!("{}/api/v1/backup", self.url);
        support::block_on(async {
            let client = reqwest::Client::new();
            let mut req = client.post(&url);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let resp = req.send().await.expect("POST /api/v1/backup");
            let code = resp.status().as_u16();
            (code, resp.text().await.unwrap_or_default())
        })
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A Prometheus on the fixture data that scrapes serve on `port` every
/// second and evaluates the shipped alert rules every second.
fn prometheus_scraping(data: &Path, port: u16) -> Prometheus {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join(ALERTS);
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n\
         scrape_configs:\n  - job_name: promsnap\n    honor_labels: true\n    static_configs:\n\
         \x20     - targets: ['127.0.0.1:{port}']\n",
        rules.display()
    );
    Prometheus::start_with(
        data,
        StartOptions {
            config_yaml: Some(config),
            ..StartOptions::default()
        },
    )
}

const ALERTS: &str = "examples/promsnap-alerts.yml";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The sidecar as a Prometheus pod runs it: serve backs up the Prometheus
/// that scrapes it, on a schedule of every few seconds; Prometheus sees
/// every run in /metrics (the textfile's metrics and serve's counters),
/// the shipped alerts stay quiet, and SIGTERM while idle stops it with
/// exit 0.
#[test]
fn serve_backs_up_on_schedule_and_its_prometheus_scrapes_it() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    let target = Target::local(&repo);
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    let port = support::free_port();
    let prom = prometheus_scraping(&data, port);
    // Another group's 1 MiB, larger than any manifest: what serve measures
    // is its own group's data, not the repository's.
    fs::create_dir_all(repo.join("snapshots/other")).unwrap();
    fs::write(repo.join("snapshots/other/notes.txt"), vec![0u8; 1 << 20]).unwrap();
    let metrics_file = work.path().join("promsnap.prom");
    let mut serve = Serve::start(
        &target,
        port,
        &[
            "--schedule",
            "*/4 * * * * *",
            "--prometheus-url",
            &prom.url,
            "--data-dir",
            data.to_str().unwrap(),
            "--instance",
            "prom-s",
            "--verify",
            "quick",
            "--metrics-file",
            metrics_file.to_str().unwrap(),
            "--log-format",
            "json",
        ],
        work.path().join("serve.log"),
    );
    support::wait_until(Duration::from_secs(90), "two scheduled backups", || {
        target.snapshots().len() >= 2
    });
    let snapshots = target.snapshots();
    assert!(snapshots.iter().all(|s| s["instance"] == "prom-s"));

    // Prometheus scraped the runs: the textfile's series and the counters.
    let scraped = |expr: &str| {
        let data = prom.query(expr, now());
        data["result"].as_array().is_some_and(|r| !r.is_empty())
    };
    support::wait_until(
        Duration::from_secs(60),
        "Prometheus to scrape two runs",
        || {
            scraped("promsnap_serve_runs_total{command=\"backup\",result=\"success\"} >= 2")
                && scraped("promsnap_serve_runs_total{command=\"verify\",result=\"success\"} >= 1")
        },
    );
    for expr in [
        "promsnap_run_success{command=\"backup\",instance=\"prom-s\"} == 1",
        "time() - promsnap_last_success_timestamp_seconds{command=\"backup\",instance=\"prom-s\"} < 120",
        "promsnap_snapshots{command=\"backup\",instance=\"prom-s\"} >= 1",
        "promsnap_serve_uploaded_bytes_total > 0",
        "promsnap_group_stored_bytes{group=\"prom-s\"} > 0",
        "promsnap_serve_run_duration_seconds_count{command=\"backup\"} >= 2",
        "promsnap_serve_next_run_timestamp_seconds > time() - 10",
    ] {
        assert!(scraped(expr), "no answer to {expr}");
    }
    // The group's bytes as serve measured them after its last backup: at
    // most what its three directories hold now (so not the other group's
    // 1 MiB), and most of it (every backup after the first adds only a
    // manifest and the head's new block, a few KiB).
    let (_, text) = support::http_get(&format!("{}/metrics", serve.url)).unwrap();
    let measured: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("promsnap_group_stored_bytes{group=\"prom-s\"} "))
        .unwrap_or_else(|| panic!("no promsnap_group_stored_bytes for prom-s:\n{text}"))
        .parse()
        .unwrap();
    let stored: u64 = ["snapshots", "recipes", "packs"]
        .iter()
        .map(|d| support::dir_size(&repo.join(d).join("prom-s")))
        .sum();
    assert!(
        measured <= stored as f64 && measured > stored as f64 / 2.0,
        "serve measured {measured} bytes; the group's directories hold {stored}"
    );
    // The shipped rules were loaded and evaluated against these series
    // without error, and none fires while backups succeed.
    let rules = prom.api("rules", &[]);
    let group = rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "promsnap")
        .unwrap_or_else(|| panic!("the promsnap rule group is not loaded: {rules}"));
    for rule in group["rules"].as_array().unwrap() {
        assert_eq!(rule["health"], "ok", "{rule}");
        assert!(
            rule["lastEvaluation"]
                .as_str()
                .is_some_and(|t| !t.starts_with("0001")),
            "{rule}"
        );
    }
    assert!(
        !scraped("ALERTS{alertname=~\"Promsnap.*\"}"),
        "{}",
        prom.query("ALERTS", now())
    );
    // The same runs in the textfile a node_exporter would read.
    let text = fs::read_to_string(&metrics_file).unwrap();
    assert!(
        text.contains("promsnap_run_success{command=\"backup\",instance=\"prom-s\"} 1"),
        "{text}"
    );
    // No trigger token: the endpoint is off.
    assert_eq!(serve.trigger(Some("anything")).0, 404);
    assert_eq!(
        support::http_get(&format!("{}/-/ready", serve.url))
            .unwrap()
            .0,
        200
    );

    assert_eq!(serve.stop(Duration::from_secs(60)), 0, "{}", serve.log());
    // JSON logs: every line is one object with time, level and message.
    let log = serve.log();
    for line in log.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(v["time"].is_string() && v["level"].is_string() && v["message"].is_string());
    }
    assert!(log.contains("\"result\":\"success\""), "{log}");
    // Nothing half-done: no local snapshot left in the data directory.
    let left = fs::read_dir(data.join("snapshots")).map_or(0, |d| d.count());
    assert_eq!(left, 0, "local snapshots left behind");
}

/// POST /api/v1/backup starts a backup with the token, and is refused
/// without it or with another; a run the schedule would not start for a
/// year appears at once.
#[test]
fn the_trigger_endpoint_needs_the_token() {
    let work = tempfile::tempdir().unwrap();
    let target = Target::local(&work.path().join("repo"));
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    let prom = Prometheus::start(&data);
    let token_file = work.path().join("token");
    fs::write(&token_file, "s3cret-trigger\n").unwrap();
    let port = support::free_port();
    let mut serve = Serve::start(
        &target,
        port,
        &[
            "--schedule",
            "0 0 1 1 *",
            "--prometheus-url",
            &prom.url,
            "--data-dir",
            data.to_str().unwrap(),
            "--instance",
            "prom-t",
            "--trigger-token-file",
            token_file.to_str().unwrap(),
        ],
        work.path().join("serve.log"),
    );
    assert_eq!(serve.trigger(None).0, 401);
    assert_eq!(serve.trigger(Some("wrong")).0, 401);
    assert!(target.snapshots().is_empty(), "a refused trigger backed up");
    let (code, body) = serve.trigger(Some("s3cret-trigger"));
    assert_eq!(code, 202, "{body}");
    support::wait_until(Duration::from_secs(60), "the triggered backup", || {
        target.snapshots().len() == 1
    });
    assert_eq!(serve.stop(Duration::from_secs(60)), 0, "{}", serve.log());
    let log = serve.log();
    assert!(log.contains("backup started (triggered)"), "{log}");
    assert!(!log.contains("s3cret-trigger"), "the token was logged");
}

/// SIGTERM while a backup uploads, with a shutdown grace shorter than the
/// upload: serve aborts it cleanly (no snapshot stored, the multipart
/// upload aborted, Prometheus's snapshot removed) and exits 0.
#[test]
fn sigterm_mid_upload_leaves_nothing_half_done() {
    let garage = support::garage();
    let target = Target::garage(garage, "serve-sigterm");
    let bucket = target.bucket().to_string();
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    let prom = Prometheus::start(&data);
    // Loaded already, so Prometheus never reads them; its snapshot links
    // them, and zstd cannot shrink them: 3 x 16 MiB at 4 MiB/s.
    support::add_random_chunks(&data, 16, 11);
    let port = support::free_port();
    let mut serve = Serve::start(
        &target,
        port,
        &[
            "--schedule",
            "*/2 * * * * *",
            "--prometheus-url",
            &prom.url,
            "--data-dir",
            data.to_str().unwrap(),
            "--instance",
            "prom-u",
            "--max-bandwidth",
            "4MiB/s",
            "--shutdown-grace",
            "1s",
        ],
        work.path().join("serve.log"),
    );
    support::wait_until(Duration::from_secs(60), "a multipart upload", || {
        garage.open_uploads(&bucket) >= 1
    });
    // Never two runs at once: a cron job's backup of the same Prometheus
    // finds the lock serve's run holds and does nothing (exit 4).
    target
        .run(&[
            "backup",
            "--prometheus-url",
            &prom.url,
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .expect_failure(4, &["lock"]);
    let code = serve.stop(Duration::from_secs(40));
    let log = serve.log();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("aborting it"), "{log}");
    assert_eq!(
        garage.open_uploads(&bucket),
        0,
        "multipart upload left open"
    );
    assert!(target.snapshots().is_empty(), "a snapshot was stored");
    let left = fs::read_dir(data.join("snapshots")).map_or(0, |d| d.count());
    assert_eq!(left, 0, "the local snapshot was left behind:\n{log}");
}

/// The shipped rule for serve: a scheduled backup that has not started an
/// hour after its time fires, one that is due does not (`promtool test
/// rules`; the live evaluation is in the scrape test above).
#[test]
fn the_overdue_alert_fires_an_hour_after_a_missed_schedule() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join(ALERTS);
    let work = tempfile::tempdir().unwrap();
    // The next run was due at 1h and never started (the value stays).
    let test = format!(
        r#"rule_files:
  - {rules}
evaluation_interval: 1m
tests:
  - interval: 30m
    input_series:
      - series: 'promsnap_serve_next_run_timestamp_seconds{{instance="prom-0:8431",job="promsnap"}}'
        values: '3600x10'
    alert_rule_test:
      - eval_time: 1h50m
        alertname: PromsnapServeBackupOverdue
        exp_alerts: []
      - eval_time: 2h30m
        alertname: PromsnapServeBackupOverdue
        exp_alerts:
          - exp_labels:
              severity: warning
              instance: prom-0:8431
              job: promsnap
            exp_annotations:
              summary: 'promsnap serve on prom-0:8431 is more than an hour behind its schedule'
              description: 'The backup scheduled for 1h 30m 0s ago has not started: a running backup hangs or the service is stuck. Check its logs and promsnap_serve_running; restarting it aborts the run cleanly.'
"#,
        rules = rules.display()
    );
    let test_file = work.path().join("serve-alerts.test.yml");
    fs::write(&test_file, test).unwrap();
    let out = std::process::Command::new(support::promtool())
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

/// SIGTERM while a backup runs, with a grace long enough: the backup
/// finishes and is stored, then serve exits 0.
#[test]
fn sigterm_lets_a_backup_finish_within_the_grace() {
    let work = tempfile::tempdir().unwrap();
    let target = Target::local(&work.path().join("repo"));
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    let prom = Prometheus::start(&data);
    // 3 x 4 MiB zstd cannot shrink, at 4 MiB/s: about three seconds.
    support::add_random_chunks(&data, 4, 5);
    let port = support::free_port();
    let mut serve = Serve::start(
        &target,
        port,
        &[
            "--schedule",
            "*/2 * * * * *",
            "--prometheus-url",
            &prom.url,
            "--data-dir",
            data.to_str().unwrap(),
            "--instance",
            "prom-g",
            "--max-bandwidth",
            "4MiB/s",
            "--shutdown-grace",
            "2m",
        ],
        work.path().join("serve.log"),
    );
    support::wait_until(Duration::from_secs(60), "a backup to start", || {
        serve.log().contains("backup started")
    });
    let code = serve.stop(Duration::from_secs(120));
    let log = serve.log();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("letting the running backup finish"), "{log}");
    assert!(!log.contains("aborting it"), "{log}");
    assert!(log.contains("backup succeeded"), "{log}");
    let snapshots = target.snapshots();
    assert_eq!(snapshots.len(), 1, "{log}");
    assert_eq!(snapshots[0]["blocks"], FIXTURE_BLOCKS);
    target.ok(&["verify", "--quick"]);
}

/// With `--log-format json`, a serve that cannot start (a schedule that
/// does not parse) still logs one JSON object: the error with its hint, on
/// the one line a log pipeline reads, and exit 2.
#[test]
fn a_serve_that_cannot_start_logs_its_error_as_json() {
    let work = tempfile::tempdir().unwrap();
    let target = Target::local(&work.path().join("repo"));
    let run = target.run(&["serve", "--log-format", "json", "--schedule", "every night"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    let line: serde_json::Value =
        serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("not JSON ({e}): {}", lines[0]));
    assert_eq!(line["level"], "error", "{line}");
    assert!(
        line["message"].as_str().unwrap().contains("every night"),
        "{line}"
    );
    assert!(
        line["hint"].as_str().unwrap().contains("15 3 * * *"),
        "{line}"
    );
}
