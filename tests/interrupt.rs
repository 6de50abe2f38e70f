//! Ctrl-C and SIGTERM in the middle of the work: promsnap stops cleanly
//! (exit 130), leaves no snapshot, no open multipart upload and no local
//! Prometheus snapshot behind, and the next run finishes the job. And
//! kill -9 at random points of backup and prune: what is left verifies,
//! and the same command run again completes.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::support::{self, Prometheus, Target};

/// Random (incompressible) block data, so the upload takes as long as
/// --max-bandwidth says; 24 MiB makes a multipart upload.
fn big_block(dir: &Path) {
    let ulid = "01KATC00000000000000000000";
    let block = dir.join(ulid);
    fs::create_dir_all(block.join("chunks")).unwrap();
    let meta = format!(
        r#"{{"ulid":"{ulid}","minTime":0,"maxTime":7200000,"stats":{{"numSeries":1}},"compaction":{{"level":1}},"version":1}}"#
    );
    fs::write(block.join("meta.json"), meta).unwrap();
    fs::write(block.join("index"), [1u8; 64]).unwrap();
    fs::write(block.join("tombstones"), [0u8; 9]).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let data: Vec<u8> = (0..24 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    fs::write(block.join("chunks/000001"), data).unwrap();
}

fn signal(child: &Child, sig: &str) {
    let ok = std::process::Command::new("sh")
        .args(["-c", &format!("kill -{sig} {}", child.id())])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// How long a run may take to reach the point a test interrupts.
const REACH: Duration = Duration::from_secs(30);

/// Waits until the backup `child` is uploading a block into the local
/// repository `repo`, and `also` holds: the run is then past taking its
/// snapshot and in the middle of the work.
fn wait_for_block_upload(child: &mut Child, repo: &Path, what: &str, also: impl Fn() -> bool) {
    support::wait_until(REACH, what, || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the backup ended ({status}) before it was interrupted");
        }
        // A pack (or an archive) being written somewhere in the repository.
        has_staging_file(repo) && also()
    });
}

/// Whether a staging file (`.<name>.tmp-<random>`, where the local backend
/// writes an object before renaming it into place) exists below `dir`.
fn has_staging_file(dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        (name.starts_with('.') && name.contains(".tmp-")) || has_staging_file(&e.path())
    })
}

#[test]
fn sigterm_during_a_multipart_upload() {
    let garage = support::garage();
    let target = Target::garage(garage, "sigterm");
    let bucket = target.bucket();
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    big_block(&data);
    let args = [
        "backup",
        "--from-dir",
        data.to_str().unwrap(),
        "--max-bandwidth",
        "4MiB/s",
        "--json",
    ];
    let child = target
        .cmd(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    support::wait_until(REACH, "the multipart upload to start", || {
        garage.open_uploads(bucket) == 1
    });
    signal(&child, "TERM");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(
        garage.open_uploads(bucket),
        0,
        "the multipart upload was not aborted"
    );
    assert!(target.snapshots().is_empty(), "a snapshot was written");

    let rerun = target
        .ok(&["backup", "--from-dir", data.to_str().unwrap(), "--json"])
        .json();
    assert_eq!(rerun["blocks_new"], 1);
    target.ok(&["verify"]);
}

/// A real Prometheus over the fixture data, and an empty local repository.
struct Setup {
    data: PathBuf,
    prom: Prometheus,
    repo: PathBuf,
    target: Target,
    _work: tempfile::TempDir, // last: removed after Prometheus stopped
}

impl Setup {
    fn new() -> Setup {
        let work = tempfile::tempdir().unwrap();
        let data = work.path().join("data");
        support::fixture_data_dir(&data);
        let prom = Prometheus::start(&data);
        let repo = work.path().join("repo");
        let target = Target::local(&repo);
        Setup {
            data,
            prom,
            repo,
            target,
            _work: work,
        }
    }

    /// `backup` of this Prometheus, then `extra`.
    fn backup<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "backup",
            "--prometheus-url",
            &self.prom.url,
            "--data-dir",
            self.data.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        args
    }
}

#[test]
fn ctrl_c_during_a_backup_removes_the_local_snapshot() {
    let setup = Setup::new();
    let (data, target) = (&setup.data, &setup.target);
    let mut child = target
        .cmd(&setup.backup(&["--max-bandwidth", "20KiB/s"]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let snapshots = data.join("snapshots");
    wait_for_block_upload(
        &mut child,
        &setup.repo,
        "the snapshot to be taken and a block upload to start",
        || fs::read_dir(&snapshots).is_ok_and(|mut d| d.next().is_some()),
    );
    signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs::read_dir(&snapshots).unwrap().count(),
        0,
        "the local snapshot was left behind"
    );
    assert!(target.snapshots().is_empty());
    target.ok(&setup.backup(&[]));
    assert_eq!(target.snapshots().len(), 1);
}

#[test]
fn a_killed_backup_leaves_a_snapshot_that_the_next_backup_removes() {
    let setup = Setup::new();
    let (data, target) = (&setup.data, &setup.target);
    let mut child = target
        .cmd(&setup.backup(&["--max-bandwidth", "20KiB/s"]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let snapshots = data.join("snapshots");
    let names = || -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&snapshots)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    wait_for_block_upload(
        &mut child,
        &setup.repo,
        "the snapshot, promsnap's marker and a block upload",
        || names().len() == 2,
    );
    signal(&child, "KILL");
    child.wait().unwrap();
    let left = names();
    assert_eq!(left.len(), 2, "{left:?}");
    let orphan = left.iter().find(|n| !n.starts_with('.')).unwrap().clone();
    assert_eq!(left[0], format!(".promsnap-{orphan}"));

    let out = target.ok(&setup.backup(&[]));
    assert!(
        out.stderr.contains(&format!("removed snapshot {orphan}")),
        "{}",
        out.stderr
    );
    assert!(
        names().is_empty(),
        "the rerun removes the orphan and its own snapshot: {:?}",
        names()
    );
    assert_eq!(target.snapshots().len(), 1);
}

/// How many kill -9 trials run: 12 in CI, `PROMSNAP_KILL_TRIALS` for more
/// (README, "Development").
const KILL_TRIALS: usize = 12;

/// A backup or prune killed with SIGKILL at a random point of its work
/// leaves a repository that verifies (every snapshot `list` shows, at the
/// default level and deep), and running the same command again completes
/// and leaves a repository that verifies too. Each trial kills one command
/// on a format 2 repository that two instances share: real compacted
/// blocks (whose window streams later snapshots reuse, and prune repacks,
/// `--max-unused 0%`) and a block that changes version (its meta.json) on
/// every backup of it.
///
/// The point of the kill is a random share of how long the last complete
/// run of that command took (so it lands inside the run however loaded the
/// machine is); the seed is printed, and `PROMSNAP_KILL_SEED` replays the
/// same commands and shares.
#[test]
fn kill_9_at_random_points_of_backup_and_prune() {
    use rand::seq::IndexedRandom;
    use rand::Rng;
    use std::time::Instant;
    let work = tempfile::tempdir().unwrap();
    let target = Target::local(&work.path().join("repo"));
    let trials = support::sets::count_from_env("PROMSNAP_KILL_TRIALS", KILL_TRIALS);
    let (mut rng, seed) = support::sets::seeded_rng("PROMSNAP_KILL_SEED");
    let line = support::sets::COMPACTION_LINES[0];
    let mut data: Vec<PathBuf> = support::sets::COMPACTION_SETS
        .iter()
        .map(|name| {
            let blocks = support::sets::compaction_set(line, name);
            support::sets::data_dir(work.path(), name, &blocks)
        })
        .collect();
    let changing = work.path().join("changing");
    support::copy_dir(
        &support::fixture_blocks()[0],
        &changing.join(support::fixture_blocks()[0].file_name().unwrap()),
    );
    data.push(changing.clone());
    let backup_args = |dir: &Path| -> Vec<String> {
        let instance = if dir == changing { "q" } else { "p" };
        let dir = dir.to_str().unwrap();
        ["backup", "--from-dir", dir, "--instance", instance]
            .map(String::from)
            .to_vec()
    };
    let prune_args: Vec<String> = [
        "prune",
        "--keep-last",
        "1",
        "--grace",
        "0s",
        "--max-unused",
        "0%",
    ]
    .map(String::from)
    .to_vec();
    // A new version of the block: its meta.json with other trailing
    // white space (the fingerprint covers meta.json's bytes), so that the
    // backup stores it (reusing its window streams), not just names it.
    let meta = fs::read_dir(&changing)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("meta.json");
    let original = fs::read(&meta).unwrap();
    let new_version = |rng: &mut rand::rngs::StdRng| {
        let mut bytes = original.clone();
        bytes.extend(std::iter::repeat_n(b' ', rng.random_range(1..200)));
        bytes.push(b'\n');
        fs::write(&meta, bytes).unwrap();
    };
    let run = |args: &[String]| -> Duration {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let started = Instant::now();
        target.ok(&args);
        started.elapsed()
    };
    new_version(&mut rng);
    let mut took = HashMap::new();
    took.insert("backup", run(&backup_args(&data[0])));
    took.insert("prune", run(&prune_args));
    let mut killed = 0;
    for trial in 0..trials {
        let context = format!("trial {trial} of seed {seed}");
        // Something for the command to do: a new snapshot, maybe a new
        // block version.
        let dir = data.choose(&mut rng).unwrap().clone();
        if dir == changing {
            new_version(&mut rng);
        }
        let (kind, args) = match rng.random_bool(0.5) {
            true => ("backup", backup_args(&dir)),
            false => {
                run(&backup_args(&dir));
                ("prune", prune_args.clone())
            }
        };
        let share: f64 = rng.random_range(0.0..0.9);
        let delay = took[kind].mul_f64(share);
        let str_args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = target
            .cmd(&str_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let fate = match child.try_wait().unwrap() {
            None => {
                child.kill().unwrap();
                killed += 1;
                "killed"
            }
            Some(_) => "had finished",
        };
        child.wait().unwrap();
        eprintln!("{context}: {kind} {fate} after {delay:?} ({share:.2} of a run)");
        for level in [&["verify"][..], &["verify", "--deep"]] {
            let v = target.run(level);
            assert_eq!(
                v.code, 0,
                "{context}: {level:?} after {kind} was killed after {delay:?}:\n{}{}",
                v.stdout, v.stderr
            );
        }
        let rerun = target.run(&str_args);
        assert_eq!(
            rerun.code, 0,
            "{context}: {kind} run again after the kill:\n{}",
            rerun.stderr
        );
        let v = target.run(&["verify", "--deep"]);
        assert_eq!(
            v.code, 0,
            "{context}: after {kind} ran again:\n{}{}",
            v.stdout, v.stderr
        );
        took.insert(
            kind,
            run(&str_args.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        );
    }
    assert!(
        killed * 3 >= trials,
        "seed {seed}: only {killed} of {trials} commands were still running when killed"
    );
    assert!(!target.snapshots().is_empty());
}
