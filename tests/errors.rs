//! Bad input gets a clear error, a hint and the documented exit code, and
//! never damages anything: unreachable or misconfigured servers, unknown
//! snapshots, locked or non-empty targets, tampered repositories.

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::support::{self, bare, Prometheus, StartOptions, Target, FIXTURE_BLOCKS};

/// A local repository holding one backup of the fixture blocks.
fn backed_up_repo(work: &Path) -> (Target, PathBuf) {
    backed_up_as(work, "2")
}

/// The same as format 1 archives, for tests that tamper with an archive.
fn backed_up_archives(work: &Path) -> (Target, PathBuf) {
    backed_up_as(work, "1")
}

fn backed_up_as(work: &Path, format: &str) -> (Target, PathBuf) {
    let data = work.join("data");
    support::fixture_data_dir(&data);
    let target = Target::local(&work.join("repo"));
    target.ok(&[
        "backup",
        "--from-dir",
        data.to_str().unwrap(),
        "--instance",
        "t",
        "--repository-format",
        format,
    ]);
    (target, data)
}

/// A stand-in for a Prometheus that is still starting: `/-/ready` answers
/// 503 the first `starting` times, then 200; every API call is refused with
/// a 400, so a backup gets exactly as far as its snapshot call. Returns the
/// URL and the number of readiness probes so far.
fn starting_prometheus(starting: usize) -> (String, Arc<AtomicUsize>) {
    use std::io::{BufRead, BufReader};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let probes = Arc::new(AtomicUsize::new(0));
    let seen = probes.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut request = String::new();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            // Read the headers so that closing the socket does not reset it.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let (status, body) = if request.starts_with("GET /-/ready") {
                if seen.fetch_add(1, Ordering::SeqCst) < starting {
                    ("503 Service Unavailable", "Service Unavailable".to_string())
                } else {
                    ("200 OK", "Prometheus Server is Ready.".to_string())
                }
            } else {
                let error = r#"{"status":"error","errorType":"bad_data","error":"stand-in"}"#;
                ("400 Bad Request", error.to_string())
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, probes)
}

/// A nightly backup that meets a Prometheus still replaying its WAL (503
/// from /-/ready) waits for it, saying so, instead of failing; with
/// `--wait-ready 0` it fails at once, with a hint.
#[test]
fn a_starting_prometheus_is_waited_for() {
    let repo = tempfile::tempdir().unwrap();
    let target = Target::local(&repo.path().join("repo"));
    let data = repo.path().to_str().unwrap();
    let (url, probes) = starting_prometheus(2);
    let backup = ["backup", "--prometheus-url", &url, "--data-dir", data];
    let run = target.run(&[&backup[..], &["--wait-ready", "30s"]].concat());
    assert_eq!(probes.load(Ordering::SeqCst), 3, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "Prometheus is not ready yet (HTTP 503: Service Unavailable); waiting up to 30s"
        ),
        "{}",
        run.stderr
    );
    // Once ready, the backup went on to ask for a snapshot.
    run.expect_failure(1, &["could not create a TSDB snapshot", "stand-in"]);

    let (url, probes) = starting_prometheus(usize::MAX);
    let backup = ["backup", "--prometheus-url", &url, "--data-dir", data];
    target
        .run(&[&backup[..], &["--wait-ready", "0s"]].concat())
        .expect_failure(1, &["is not ready yet", "HTTP 503", "--wait-ready"]);
    assert_eq!(probes.load(Ordering::SeqCst), 1);
}

#[test]
fn unreachable_prometheus() {
    let repo = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let url = format!("http://127.0.0.1:{port}");
    Target::local(repo.path())
        .run(&[
            "backup",
            "--prometheus-url",
            &url,
            "--data-dir",
            repo.path().to_str().unwrap(),
        ])
        .expect_failure(
            1,
            &[
                "could not reach Prometheus at",
                &url,
                "hint: check --prometheus-url",
            ],
        );
}

#[test]
fn admin_api_disabled() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    let prom = Prometheus::start_with(
        &data,
        StartOptions {
            admin_api: false,
            ..Default::default()
        },
    );
    Target::local(&work.path().join("repo"))
        .run(&[
            "backup",
            "--prometheus-url",
            &prom.url,
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .expect_failure(
            1,
            &[
                "the admin API is disabled",
                "hint: start Prometheus with --web.enable-admin-api",
            ],
        );
    assert!(
        !work.path().join("repo/snapshots").exists(),
        "a failed backup wrote a snapshot"
    );
}

#[test]
fn wrong_s3_credentials() {
    let garage = support::garage();
    let mut target = Target::garage(garage, "creds");
    for (k, v) in target.env.iter_mut() {
        if k == "AWS_SECRET_ACCESS_KEY" {
            *v = "0".repeat(64);
        }
    }
    target
        .run(&["list"])
        .expect_failure(2, &["access denied", "hint: check AWS_ACCESS_KEY_ID"]);
}

#[test]
fn missing_bucket() {
    let garage = support::garage();
    let target = Target {
        repo: "s3://no-such-bucket-here/x".into(),
        env: garage.env(),
    };
    target
        .run(&["list"])
        .expect_failure(2, &["does not exist", "hint: create the bucket"]);
}

#[test]
fn unreachable_s3_endpoint() {
    let mut env = support::garage().env();
    let port = support::free_port();
    for (k, v) in env.iter_mut() {
        if k == "PROMSNAP_S3_ENDPOINT" {
            *v = format!("http://127.0.0.1:{port}");
        }
    }
    // One retry instead of five keeps the test short (each waits 1-2 s).
    let run = Target {
        repo: "s3://b/x".into(),
        env,
    }
    .run(&["list", "--retries", "1"]);
    run.expect_failure(
        1,
        &[
            "did not answer",
            &format!("127.0.0.1:{port}"),
            "Connection refused",
            "hint: check that --s3-endpoint",
        ],
    );
    // The cause in words, not Rust's debug output of the SDK's error types.
    for debug in ["DispatchFailure", "ConnectorError", " { ", "Some("] {
        assert!(!run.stderr.contains(debug), "{debug:?} in:\n{}", run.stderr);
    }
}

#[test]
fn unknown_snapshot_and_empty_repository() {
    let work = tempfile::tempdir().unwrap();
    let empty = Target::local(&work.path().join("empty"));
    let dest = work.path().join("dest");
    empty
        .run(&["restore", "latest", "--data-dir", dest.to_str().unwrap()])
        .expect_failure(2, &["has no snapshots yet", "hint: `promsnap list`"]);
    let (target, _) = backed_up_repo(work.path());
    target
        .run(&[
            "restore",
            "20990101T000000Z-deadbeef",
            "--data-dir",
            dest.to_str().unwrap(),
        ])
        .expect_failure(
            2,
            &["no snapshot \"20990101T000000Z-deadbeef\"", "promsnap list"],
        );
    assert!(!dest.exists(), "a failed restore created the target");
}

#[test]
fn missing_repository_and_bad_flags_are_usage_errors() {
    bare(&["list"]).expect_failure(2, &["no repository given", "hint: pass --repo"]);
    bare(&["restore", "latest", "--repo", "x"]).expect_failure(2, &["--data-dir"]);
    bare(&["backup", "--repo", "gs://x"]).expect_failure(2, &["unsupported repository URL"]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("promsnap.toml");
    fs::write(&config, "[repository]\nurll = \"/x\"\n").unwrap();
    bare(&["list", "--config", config.to_str().unwrap()])
        .expect_failure(2, &["invalid configuration file", "urll"]);
}

#[test]
fn restore_into_the_directory_of_a_running_prometheus() {
    let work = tempfile::tempdir().unwrap();
    let (target, _) = backed_up_repo(work.path());
    let live = work.path().join("live");
    fs::create_dir(&live).unwrap();
    let prom = Prometheus::start(&live);
    target
        .run(&[
            "restore",
            "latest",
            "--data-dir",
            live.to_str().unwrap(),
            "--force",
        ])
        .expect_failure(
            2,
            &[
                "is in use by a running process",
                "prometheus (pid",
                "hint: stop that Prometheus first",
            ],
        );
    let names: Vec<String> = fs::read_dir(&live)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| support::is_ulid(n)),
        "blocks were written under a running Prometheus: {names:?}"
    );
    drop(prom);
}

#[test]
fn non_empty_target_needs_force_and_force_deletes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let (target, _) = backed_up_repo(work.path());
    let dest = work.path().join("dest");
    fs::create_dir(&dest).unwrap();
    fs::write(dest.join("precious.txt"), b"keep me").unwrap();
    target
        .run(&["restore", "latest", "--data-dir", dest.to_str().unwrap()])
        .expect_failure(2, &["is not empty", "--force"]);
    assert_eq!(fs::read(dest.join("precious.txt")).unwrap(), b"keep me");
    let report = target
        .ok(&[
            "restore",
            "latest",
            "--data-dir",
            dest.to_str().unwrap(),
            "--force",
            "--json",
        ])
        .json();
    let moved = PathBuf::from(report["moved_aside_to"].as_str().unwrap());
    assert_eq!(fs::read(moved.join("precious.txt")).unwrap(), b"keep me");
    assert!(!dest.join("precious.txt").exists());
    assert_eq!(report["blocks_restored"], FIXTURE_BLOCKS);
}

#[test]
fn tampered_manifest_cannot_steer_the_restore() {
    let work = tempfile::tempdir().unwrap();
    let (target, _) = backed_up_repo(work.path());
    let (path, mut manifest) = support::only_manifest(Path::new(&target.repo));
    manifest["blocks"][0]["ulid"] = "../../x".into();
    fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let dest = work.path().join("nested/dest");
    target
        .run(&["restore", "latest", "--data-dir", dest.to_str().unwrap()])
        .expect_failure(1, &["is invalid", "block name \"../../x\" is not a ULID"]);
    assert!(!work.path().join("x").exists() && !work.path().join("nested/x").exists());
    assert!(!dest.exists());
}

/// A stored archive whose tar entry climbs out of the block directory is
/// refused even when the manifest and every checksum agree with it.
#[test]
fn tar_entry_escaping_the_block_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let (target, _) = backed_up_archives(work.path());
    let (path, mut manifest) = support::only_manifest(Path::new(&target.repo));
    let block = &mut manifest["blocks"][0];
    let payload = b"owned";
    let sha = |b: &[u8]| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(b))
    };
    // The entry name is written raw: tar::Header::set_path would refuse it.
    let mut header = tar::Header::new_gnu();
    let name = b"../../escaped";
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_size(payload.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut tar = tar::Builder::new(Vec::new());
    tar.append(&header, &payload[..]).unwrap();
    let archive = zstd::encode_all(&tar.into_inner().unwrap()[..], 1).unwrap();
    let object = Path::new(&target.repo).join(block["object"]["key"].as_str().unwrap());
    fs::File::create(&object)
        .unwrap()
        .write_all(&archive)
        .unwrap();
    block["object"]["size"] = archive.len().into();
    block["object"]["sha256"] = sha(&archive).into();
    fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();

    let dest = work.path().join("a/b/dest");
    target
        .run(&["restore", "latest", "--data-dir", dest.to_str().unwrap()])
        .expect_failure(1, &["refusing archive entry \"../../escaped\""]);
    assert!(!work.path().join("a/escaped").exists() && !work.path().join("a/b/escaped").exists());
    let tmp_dirs: Vec<_> = fs::read_dir(&dest)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp-for-creation")
        })
        .collect();
    assert!(tmp_dirs.is_empty(), "half-written block left behind");
}

/// A restore that fails half-way keeps only complete blocks; once the cause
/// is fixed, running it again finishes the job without redoing those blocks.
#[test]
fn a_failed_restore_can_be_resumed() {
    let work = tempfile::tempdir().unwrap();
    let (target, _) = backed_up_repo(work.path());
    let (_, manifest) = support::only_manifest(Path::new(&target.repo));
    let last = support::block_restored_last(&manifest);
    let object = Path::new(&target.repo).join(last["object"]["key"].as_str().unwrap());
    let good = fs::read(&object).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    fs::write(&object, &bad).unwrap();

    let dest = work.path().join("dest");
    let dest_s = dest.to_str().unwrap();
    let failed = target.run(&[
        "restore",
        "latest",
        "--data-dir",
        dest_s,
        "--concurrency",
        "1",
    ]);
    failed.expect_failure(1, &[last["ulid"].as_str().unwrap()]);
    let blocks: Vec<String> = fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && n != "lock")
        .collect();
    assert_eq!(
        blocks.len(),
        FIXTURE_BLOCKS - 1,
        "only complete blocks may remain: {blocks:?}"
    );
    assert!(blocks.iter().all(|n| support::is_ulid(n)));

    fs::write(&object, &good).unwrap();
    let report = target
        .ok(&["restore", "latest", "--data-dir", dest_s, "--json"])
        .json();
    assert_eq!(report["blocks_already_present"], FIXTURE_BLOCKS - 1);
    assert_eq!(report["blocks_restored"], 1);
    // And the result is a directory Prometheus serves completely.
    let prom = Prometheus::start(&dest);
    assert_eq!(
        prom.query_f64("count({__name__=~\".+\"})", support::FIXTURE_MID) as usize,
        support::FIXTURE_SERIES
    );
}

/// A backup that fails part-way writes no manifest, and the rerun uploads
/// only the blocks that did not make it.
#[test]
fn a_failed_backup_leaves_no_snapshot_and_the_rerun_finishes_it() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    let repo = work.path().join("repo");
    let target = Target::local(&repo);
    // Block the directory of the block stored last with a file: its
    // recipe (format 2, below the group's directory) cannot be written.
    let last = support::fixture_block_packed_last();
    fs::create_dir_all(repo.join("recipes/prom-a")).unwrap();
    let blocker = repo.join("recipes/prom-a").join(last.file_name().unwrap());
    fs::write(&blocker, b"in the way").unwrap();
    let args = [
        "backup",
        "--from-dir",
        data.to_str().unwrap(),
        "--concurrency",
        "1",
        "--instance",
        "prom-a",
        "--json",
    ];
    target.run(&args).expect_failure(1, &["could not"]);
    assert!(
        !repo.join("snapshots").exists()
            || fs::read_dir(repo.join("snapshots"))
                .unwrap()
                .next()
                .is_none()
    );
    assert_eq!(target.snapshots().len(), 0);

    fs::remove_file(&blocker).unwrap();
    let rerun = target.ok(&args).json();
    assert_eq!(rerun["blocks_new"], 1);
    assert_eq!(rerun["blocks_reused"], FIXTURE_BLOCKS - 1);
}

/// Ctrl-C (SIGINT) while waiting on a server that never answers: exit 130,
/// and a message that says a rerun finishes the job.
#[test]
fn interrupted_backup_exits_130() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let repo = tempfile::tempdir().unwrap();
    let child = Target::local(repo.path())
        .cmd(&[
            "backup",
            "--prometheus-url",
            &url,
            "--data-dir",
            repo.path().to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (_conn, _) = listener.accept().unwrap(); // promsnap is now waiting for an answer
    let status = std::process::Command::new("sh")
        .args(["-c", &format!("kill -INT {}", child.id())])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
}
