//! The interface's promises (issue "the 3 a.m. contract"): an exit code 0
//! means what it says. A location that holds no repository is an error,
//! never an empty repository; only `init` (or `backup --init`) makes one;
//! repositories from before `init` existed keep working.

use std::fs;
use std::path::Path;

use crate::support;
use crate::support::{bare, finish, Target};

/// A data directory with the fixture blocks, to back up with --from-dir.
fn data(work: &Path) -> String {
    let data = work.join("data");
    support::fixture_data_dir(&data);
    data.display().to_string()
}

/// A path with a typo is not a healthy empty repository: every command
/// fails with exit 2, names the location and says how to make one, and
/// nothing is created there (no repository, no `locks/`).
#[test]
fn a_location_without_a_repository_is_an_error_for_every_command() {
    let work = tempfile::tempdir().unwrap();
    let typo = work.path().join("backups").join("prom");
    let target = Target::uninitialised(&typo);
    let runs: [&[&str]; 6] = [
        &["list"],
        &["verify", "--json"],
        &["prune", "--keep-last", "1"],
        &[
            "restore",
            "latest",
            "--data-dir",
            "/tmp/never-used-by-this-test",
        ],
        &["unlock"],
        &["verify", "--quick"],
    ];
    for args in runs {
        let run = target.run(args);
        run.expect_failure(2, &["no promsnap repository at", "promsnap init"]);
        assert!(
            run.stderr.contains(&typo.display().to_string()),
            "{args:?} does not name the location:\n{}",
            run.stderr
        );
    }
    assert!(!typo.exists(), "a command created {}", typo.display());
    // A backup does not create one either (an unmounted NAS share must not
    // fill the local disk) ...
    target
        .run(&["backup", "--from-dir", &data(work.path())])
        .expect_failure(2, &["no promsnap repository at", "--init"]);
    assert!(!typo.exists(), "backup created {}", typo.display());
    assert!(!Path::new("/tmp/never-used-by-this-test").exists());
}

/// `init` makes a repository (once); `backup --init`, `PROMSNAP_INIT=true`
/// and `repository.init = true` create one when there is none.
#[test]
fn init_and_backup_init_create_a_repository() {
    let work = tempfile::tempdir().unwrap();
    let data = data(work.path());

    let made = work.path().join("made");
    let target = Target::uninitialised(&made);
    let out = target.ok(&["init", "--json"]).json();
    assert_eq!(out["format_version"], 2);
    assert_eq!(out["id"].as_str().map(str::len), Some(32));
    assert!(made.join("repository.json").is_file());
    target.ok(&["list"]);
    target
        .run(&["init"])
        .expect_failure(2, &["already a promsnap repository"]);

    let flagged = Target::uninitialised(&work.path().join("flagged"));
    let run = flagged.ok(&["backup", "--from-dir", &data, "--init"]);
    assert!(
        run.stderr.contains("created a promsnap repository"),
        "{}",
        run.stderr
    );
    assert_eq!(flagged.snapshots().len(), 1);
    // Once it exists, --init changes nothing.
    flagged.ok(&["backup", "--from-dir", &data, "--init"]);
    assert_eq!(flagged.snapshots().len(), 2);

    let from_env = Target::uninitialised(&work.path().join("env"));
    let mut cmd = from_env.cmd(&["backup", "--from-dir", &data]);
    let run = finish(cmd.env("PROMSNAP_INIT", "true").output().unwrap());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(from_env.snapshots().len(), 1);

    let from_file = work.path().join("file-repo");
    let config = work.path().join("promsnap.toml");
    fs::write(
        &config,
        format!(
            "[repository]\nurl = {:?}\ninit = true\n",
            from_file.display().to_string()
        ),
    )
    .unwrap();
    let run = finish(
        support::promsnap()
            .args([
                "--config",
                config.to_str().unwrap(),
                "backup",
                "--from-dir",
                &data,
            ])
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(from_file.join("repository.json").is_file());
}

/// A repository written before config objects existed (format 1, found by
/// its layout) still lists and restores, and the next backup adds its
/// config object; `init` adopts one as it is.
#[test]
fn repositories_from_before_init_keep_working() {
    let work = tempfile::tempdir().unwrap();
    let data = data(work.path());
    let repo = work.path().join("repo");
    let target = Target::local(&repo);
    target.ok(&["backup", "--from-dir", &data]);
    fs::remove_file(repo.join("repository.json")).unwrap();

    assert_eq!(target.snapshots().len(), 1);
    target.ok(&["verify"]);
    let restored = work.path().join("restored");
    target.ok(&[
        "restore",
        "latest",
        "--data-dir",
        restored.to_str().unwrap(),
    ]);
    assert!(
        !repo.join("repository.json").exists(),
        "reading wrote to it"
    );

    target.ok(&["backup", "--from-dir", &data]);
    assert!(
        repo.join("repository.json").is_file(),
        "the backup did not adopt it"
    );
    assert_eq!(target.snapshots().len(), 2);

    fs::remove_file(repo.join("repository.json")).unwrap();
    let out = target.ok(&["init", "--json"]).json();
    assert_eq!(out["adopted_existing"], true);
    assert_eq!(target.snapshots().len(), 2);
}

/// A repository written by a newer promsnap says so instead of being
/// misread.
#[test]
fn a_newer_repository_format_asks_for_an_upgrade() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    let target = Target::local(&repo);
    let path = repo.join("repository.json");
    let mut config: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    config["format_version"] = 99.into();
    fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
    target
        .run(&["list"])
        .expect_failure(2, &["format 99", "upgrade promsnap"]);
    // And init names the flag to create one elsewhere.
    bare(&["init"]).expect_failure(2, &["no repository given"]);
}

/// Manifests deeper than group directories are a layout a later promsnap may write
/// (docs/FORMAT.md): this one refuses to list, back up into or prune such
/// a repository, since the data those manifests reference would look
/// unreferenced to it; and it deletes nothing.
#[test]
fn a_layout_from_a_newer_promsnap_stops_every_command() {
    let work = tempfile::tempdir().unwrap();
    let data = data(work.path());
    let repo = work.path().join("repo");
    let target = Target::local(&repo);
    target.ok(&["backup", "--from-dir", &data, "--instance", "prom-a"]);
    let grouped = repo.join("snapshots/prom-b/x/20270101T000000Z-00000000.json");
    fs::create_dir_all(grouped.parent().unwrap()).unwrap();
    fs::write(&grouped, b"{}").unwrap();
    let before = files(&repo);
    for args in [
        vec!["list"],
        vec!["backup", "--from-dir", &data, "--instance", "prom-a"],
        vec!["prune", "--keep-last", "1", "--instance", "prom-a"],
        vec![
            "restore",
            "latest",
            "--instance",
            "prom-a",
            "--data-dir",
            "/tmp/never-used",
        ],
    ] {
        target.run(&args).expect_failure(
            2,
            &[
                "snapshots/prom-b/x/20270101T000000Z-00000000.json",
                "a newer promsnap wrote it",
                "upgrade promsnap",
            ],
        );
    }
    assert_eq!(files(&repo), before, "nothing may change");
}

/// Every file below `dir` with its size, sorted.
fn files(dir: &Path) -> Vec<(std::path::PathBuf, u64)> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            match e.file_type().unwrap().is_dir() {
                true => todo.push(e.path()),
                false => found.push((e.path(), e.metadata().unwrap().len())),
            }
        }
    }
    found.sort();
    found
}

/// A repository holding two instances.
fn two_instances(work: &Path) -> Target {
    let data = data(work);
    let target = Target::local(&work.join("repo"));
    for instance in ["prom-a", "prom-b"] {
        target.ok(&["backup", "--from-dir", &data, "--instance", instance]);
    }
    target
}

/// `latest` never silently takes another server's snapshot; filters that
/// match nothing are errors that list what exists; a snapshot of another
/// instance is named as such; every restore names the instance.
#[test]
fn never_another_servers_data() {
    let work = tempfile::tempdir().unwrap();
    let target = two_instances(work.path());
    let dest = work.path().join("dest");
    let dest = dest.to_str().unwrap();
    target
        .run(&["restore", "latest", "--data-dir", dest])
        .expect_failure(
            2,
            &[
                "`latest` is ambiguous",
                "prom-a (1 snapshot)",
                "prom-b (1 snapshot)",
                "--instance",
            ],
        );
    assert!(!Path::new(dest).exists());
    target
        .run(&["list", "--instance", "prom-eu1"])
        .expect_failure(
            2,
            &[
                "no snapshot of instance \"prom-eu1\"",
                "prom-a (1 snapshot), prom-b (1 snapshot)",
            ],
        );
    target
        .run(&["verify", "--instance", "nonexist"])
        .expect_failure(2, &["no snapshot of instance \"nonexist\""]);
    let snapshots = target.snapshots();
    let a = snapshots
        .iter()
        .find(|s| s["instance"] == "prom-a")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    target
        .run(&["restore", &a, "--instance", "prom-b", "--data-dir", dest])
        .expect_failure(
            2,
            &[&format!(
                "snapshot {a} is of instance \"prom-a\", not of \"prom-b\""
            )],
        );
    // With --instance, latest is that instance's; the summary names it.
    let run = target.ok(&[
        "restore",
        "latest",
        "--instance",
        "prom-a",
        "--data-dir",
        dest,
    ]);
    assert!(
        run.stdout
            .contains(&format!("snapshot {a} of instance prom-a into")),
        "{}",
        run.stdout
    );
    let verified = target
        .ok(&["verify", "--instance", "prom-b", "--json"])
        .json();
    assert_eq!(
        verified["snapshots_checked"], 1,
        "verify --instance checked others too"
    );
}

/// Prometheus's local snapshot name looks like a promsnap id: backup says
/// which is which, and naming the local one finds the promsnap snapshot.
#[test]
fn a_local_snapshot_name_is_not_taken_for_a_snapshot_id() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    let prom = support::Prometheus::start(&data);
    let target = Target::local(&work.path().join("repo"));
    let run = target.ok(&[
        "backup",
        "--prometheus-url",
        &prom.url,
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(run.stderr.contains("local snapshot"), "{}", run.stderr);
    assert!(run.stdout.contains("promsnap snapshot"), "{}", run.stdout);
    let manifest = &target.snapshots()[0];
    let id = manifest["id"].as_str().unwrap();
    let (_, stored) = support::only_manifest(&work.path().join("repo"));
    let local = stored["source"]["snapshot_name"].as_str().unwrap();
    assert!(run.stderr.contains(local), "{}", run.stderr);
    let dest = work.path().join("dest");
    target
        .run(&["restore", local, "--data-dir", dest.to_str().unwrap()])
        .expect_failure(
            2,
            &[
                "name of the local snapshot Prometheus made",
                &format!("use the promsnap id: {id}"),
            ],
        );
    // A miss gets the nearest ids.
    let near = format!("{}-ffffffff", &id[..16]);
    target
        .run(&["restore", &near, "--data-dir", dest.to_str().unwrap()])
        .expect_failure(2, &["no snapshot", &format!("the nearest are {id}")]);
}

/// Times as promsnap prints them are accepted back, in UTC.
#[test]
fn times_promsnap_prints_are_accepted_back() {
    let work = tempfile::tempdir().unwrap();
    let target = Target::local(&work.path().join("repo"));
    target.ok(&["backup", "--from-dir", &data(work.path())]);
    let dest = work.path().join("dest");
    // The fixture's blocks are 2026-01-01 00:00-02:00, 02:00-04:00, 04:00-06:00.
    let run = target.ok(&[
        "restore",
        "latest",
        "--data-dir",
        dest.to_str().unwrap(),
        "--from",
        "2026-01-01 02:30",
        "--to",
        "2026-01-01T03:00:00Z",
        "--json",
    ]);
    assert_eq!(run.json()["blocks_selected"], 1);
    let dest2 = work.path().join("dest2");
    let run = target.ok(&[
        "restore",
        "latest",
        "--data-dir",
        dest2.to_str().unwrap(),
        "--from",
        "1767236400",
        "--to",
        "2026-01-02",
        "--json",
    ]);
    assert_eq!(run.json()["blocks_selected"], 2);
    target
        .run(&[
            "restore",
            "latest",
            "--data-dir",
            "/x",
            "--from",
            "yesterday",
        ])
        .expect_failure(2, &["as promsnap prints it"]);
}

/// A check meant to prove something fails when it could not check: a
/// restore test without promtool, a check-dir of a directory with no block.
#[test]
fn checks_that_check_nothing_do_not_pass() {
    let work = tempfile::tempdir().unwrap();
    let target = Target::local(&work.path().join("repo"));
    target.ok(&["backup", "--from-dir", &data(work.path())]);
    // No promtool on PATH: exit 2 before anything runs, with the way out.
    let empty_path = work.path().join("no-tools");
    fs::create_dir(&empty_path).unwrap();
    let run = finish(
        target
            .cmd(&["verify", "--restore-test"])
            .env("PATH", &empty_path)
            .output()
            .unwrap(),
    );
    run.expect_failure(2, &["needs promtool", "--promtool PATH", "--no-promtool"]);
    // --no-promtool: the user accepts checking less, and is told so.
    let run = finish(
        target
            .cmd(&["verify", "--restore-test", "--no-promtool"])
            .env("PATH", &empty_path)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("--no-promtool"), "{}", run.stderr);
    assert!(
        run.stdout.contains("blocks restored and verified"),
        "{}",
        run.stdout
    );

    // check-dir of a directory without blocks proves nothing: exit 3.
    let nothing = work.path().join("not-a-tsdb");
    fs::create_dir(&nothing).unwrap();
    fs::write(nothing.join("notes.txt"), "hello").unwrap();
    bare(&["check-dir", nothing.to_str().unwrap()])
        .expect_failure(3, &["no blocks in", "nothing was checked"]);
    // A data directory with blocks passes.
    let run = bare(&["check-dir", work.path().join("data").to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}
