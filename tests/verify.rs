//! `verify` and `check-dir` against a corruption corpus made from the real
//! fixture blocks: each kind of damage must be found at the right level and
//! reported at the right place, and clean backups must pass every level.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{self, bare, finish, Prometheus, Run, Target};

fn sha(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A local repository with one backup of the fixture blocks, after `damage`
/// was done to the data directory (as bit rot on the Prometheus host would).
fn backed_up(work: &Path, damage: impl FnOnce(&Path)) -> (Target, PathBuf) {
    backed_up_as(work, "2", damage)
}

/// The same, stored as format 1 archives: for the tests that tamper with
/// an archive itself (format 2's packs and recipes: tests/format2.rs).
fn backed_up_archives(work: &Path, damage: impl FnOnce(&Path)) -> (Target, PathBuf) {
    backed_up_as(work, "1", damage)
}

fn backed_up_as(work: &Path, format: &str, damage: impl FnOnce(&Path)) -> (Target, PathBuf) {
    let data = work.join("data");
    support::fixture_data_dir(&data);
    let first = support::fixture_blocks()[0].file_name().unwrap().to_owned();
    damage(&data.join(&first));
    let target = Target::local(&work.join("repo"));
    target.ok(&[
        "backup",
        "--from-dir",
        data.to_str().unwrap(),
        "--instance",
        "v",
        "--repository-format",
        format,
    ]);
    (target, data.join(first))
}

fn verify(target: &Target, level: &[&str]) -> (Run, Value) {
    let mut args = vec!["verify", "--json"];
    args.extend_from_slice(level);
    let run = target.run(&args);
    let json = run.json();
    (run, json)
}

/// Asserts that exactly the expected problem is reported: kind, block, file
/// and (when given) byte offset.
fn assert_problem(
    report: &Value,
    kind: &str,
    block: &str,
    file: Option<&str>,
    offset: Option<u64>,
) {
    let problems = report["problems"].as_array().unwrap();
    let found = problems.iter().any(|p| {
        p["kind"] == kind
            && p["block"] == block
            && file.is_none_or(|f| p["file"] == f)
            && offset.is_none_or(|o| p["offset"] == o)
    });
    assert!(
        found,
        "no {kind} problem in {block}/{file:?}@{offset:?}: {report:#}"
    );
}

fn flip(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x5a;
    fs::write(path, bytes).unwrap();
}

fn level_results(target: &Target) -> [i32; 3] {
    [
        verify(target, &["--quick"]).0.code,
        verify(target, &[]).0.code,
        verify(target, &["--deep"]).0.code,
    ]
}

/// Damage that happened before the backup: every hash matches, so only the
/// deep level's structural checks can find it.
fn structural(
    damage: impl FnOnce(&Path),
    file: &str,
    kind: &str,
    offset: impl FnOnce(&Path) -> Option<u64>,
) {
    let work = tempfile::tempdir().unwrap();
    let (target, block) = backed_up(work.path(), damage);
    let ulid = block.file_name().unwrap().to_str().unwrap().to_string();
    assert_eq!(
        level_results(&target),
        [0, 0, 3],
        "only --deep may see this"
    );
    let (_, report) = verify(&target, &["--deep"]);
    assert_eq!(report["ok"], false);
    assert_problem(&report, kind, &ulid, Some(file), offset(&block));
    // check-dir finds the same in the data directory.
    let run = bare(&["check-dir", block.parent().unwrap().to_str().unwrap()]);
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert!(
        run.stdout.contains(&ulid) && run.stdout.contains(file),
        "{}",
        run.stdout
    );
}

#[test]
fn flipped_byte_in_a_chunk_record() {
    // Record 1 starts after the 8-byte segment header; byte 20 is in its data.
    structural(
        |b| flip(&b.join("chunks/000001"), 20),
        "chunks/000001",
        "crc_mismatch",
        |_| Some(8),
    );
}

#[test]
fn flipped_byte_in_the_index_symbol_table() {
    // The symbol table starts right after the 5-byte header.
    structural(
        |b| flip(&b.join("index"), 5 + 8 + 3),
        "index",
        "crc_mismatch",
        |_| Some(5),
    );
}

#[test]
fn flipped_byte_in_the_index_toc() {
    let toc = |b: &Path| fs::metadata(b.join("index")).unwrap().len() - 52;
    structural(
        |b| flip(&b.join("index"), toc(b) + 3),
        "index",
        "crc_mismatch",
        |b| Some(toc(b)),
    );
}

#[test]
fn truncated_chunk_file() {
    structural(
        |b| {
            let path = b.join("chunks/000001");
            let len = fs::metadata(&path).unwrap().len();
            fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(len - 10)
                .unwrap();
        },
        "chunks/000001",
        "truncated",
        |_| None,
    );
}

fn manifest(target: &Target) -> (PathBuf, Value) {
    support::only_manifest(Path::new(&target.repo))
}

#[test]
fn missing_object_is_found_by_quick() {
    let work = tempfile::tempdir().unwrap();
    let (target, _) = backed_up(work.path(), |_| {});
    let (_, m) = manifest(&target);
    let block = &m["blocks"][1];
    fs::remove_file(Path::new(&target.repo).join(block["object"]["key"].as_str().unwrap()))
        .unwrap();
    let (run, report) = verify(&target, &["--quick"]);
    assert_eq!(run.code, 3);
    assert_problem(
        &report,
        "missing_object",
        block["ulid"].as_str().unwrap(),
        None,
        None,
    );
    assert_eq!(report["problems"][0]["snapshots"][0], m["id"]);
    assert!(target
        .run(&["verify", "--quick"])
        .stdout
        .contains("1 PROBLEMS FOUND"));
}

#[test]
fn wrong_checksum_is_found_by_the_default_level() {
    let work = tempfile::tempdir().unwrap();
    let (target, _) = backed_up_archives(work.path(), |_| {});
    let (_, m) = manifest(&target);
    let block = &m["blocks"][2];
    let object = Path::new(&target.repo).join(block["object"]["key"].as_str().unwrap());
    let len = fs::metadata(&object).unwrap().len();
    flip(&object, len / 2);
    assert_eq!(level_results(&target)[..2], [0, 3]);
    let (_, report) = verify(&target, &[]);
    assert_problem(
        &report,
        "checksum_mismatch",
        block["ulid"].as_str().unwrap(),
        None,
        None,
    );
}

#[test]
fn manifest_referencing_a_missing_block() {
    let work = tempfile::tempdir().unwrap();
    let (target, _) = backed_up(work.path(), |_| {});
    let (path, mut m) = manifest(&target);
    let mut ghost = m["blocks"][0].clone();
    let ulid = "01KAAAAAAAAAAAAAAAAAAAAAAA";
    ghost["ulid"] = ulid.into();
    ghost["object"]["key"] = format!(
        "blocks/{ulid}/{}.tar.zst",
        ghost["fingerprint"].as_str().unwrap()
    )
    .into();
    m["blocks"].as_array_mut().unwrap().push(ghost);
    fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    let (run, report) = verify(&target, &["--quick"]);
    assert_eq!(run.code, 3);
    assert_problem(&report, "missing_object", ulid, None, None);
}

#[test]
fn damaged_manifest_is_reported_not_fatal() {
    let work = tempfile::tempdir().unwrap();
    let (target, _) = backed_up(work.path(), |_| {});
    let (path, _) = manifest(&target);
    fs::write(&path, b"{ not json").unwrap();
    let (run, report) = verify(&target, &["--quick"]);
    assert_eq!(run.code, 3);
    assert_eq!(report["problems"][0]["kind"], "invalid_manifest");
}

/// An archive whose meta.json names another block, with every hash in the
/// manifest made to match: only the deep level can tell.
#[test]
fn meta_json_naming_another_block() {
    let work = tempfile::tempdir().unwrap();
    let (target, block_dir) = backed_up_archives(work.path(), |_| {});
    let (path, mut m) = manifest(&target);
    let ulid = block_dir.file_name().unwrap().to_str().unwrap().to_string();
    let entry = m["blocks"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|b| b["ulid"] == ulid.as_str())
        .unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let mut files = Vec::new();
    for f in entry["files"].as_array().unwrap() {
        let rel = f["path"].as_str().unwrap();
        let mut bytes = fs::read(block_dir.join(rel)).unwrap();
        if rel == "meta.json" {
            bytes = String::from_utf8(bytes)
                .unwrap()
                .replace(&ulid, "01KBBBBBBBBBBBBBBBBBBBBBBB")
                .into_bytes();
        }
        let mut h = tar::Header::new_gnu();
        h.set_path(rel).unwrap();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append(&h, &bytes[..]).unwrap();
        files.push(serde_json::json!({"path": rel, "size": bytes.len(), "sha256": sha(&bytes)}));
    }
    let archive = zstd::encode_all(&tar.into_inner().unwrap()[..], 3).unwrap();
    fs::write(
        Path::new(&target.repo).join(entry["object"]["key"].as_str().unwrap()),
        &archive,
    )
    .unwrap();
    entry["files"] = files.into();
    entry["object"]["size"] = archive.len().into();
    entry["object"]["sha256"] = sha(&archive).into();
    fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();

    assert_eq!(level_results(&target), [0, 0, 3]);
    let (_, report) = verify(&target, &["--deep"]);
    assert_problem(&report, "bad_meta", &ulid, Some("meta.json"), None);
}

/// Runs promsnap with `args` where no file larger than `limit` bytes can be
/// written: with RLIMIT_FSIZE, and SIGXFSZ ignored, a larger write fails
/// with EFBIG, as writes to a full disk fail with ENOSPC.
fn run_with_file_size_limit(target: &Target, args: &[&str], limit: u64) -> Run {
    use std::os::unix::process::CommandExt;
    let mut cmd = target.cmd(args);
    // SAFETY: setrlimit and signal are async-signal-safe; nothing else runs
    // in the child between fork and exec (an ignored signal stays ignored).
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0
                || libc::signal(libc::SIGXFSZ, libc::SIG_IGN) == libc::SIG_ERR
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    finish(cmd.output().expect("run promsnap"))
}

/// `verify --deep` checks chunk segments as they stream out of the archive
/// and never writes them anywhere: it passes where no file the size of a
/// segment can be written, while a restore (which must write them) cannot.
#[test]
fn deep_verify_never_writes_chunk_segments_to_scratch() {
    let work = tempfile::tempdir().unwrap();
    let (target, block) = backed_up_archives(work.path(), |_| {});
    let size = |f: &str| fs::metadata(block.join(f)).unwrap().len();
    let limit = 16 * 1024;
    assert!(size("index") < limit && size("chunks/000001") > limit);
    let scratch = work.path().join("scratch");
    let scratch = scratch.to_str().unwrap();
    let run = run_with_file_size_limit(
        &target,
        &["verify", "--deep", "--json", "--scratch-dir", scratch],
        limit,
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.json()["objects_read"], support::FIXTURE_BLOCKS);
    // The limit is real: restoring the same snapshot has to write segments.
    let restored = work.path().join("restored");
    let run = run_with_file_size_limit(
        &target,
        &[
            "restore",
            "latest",
            "--data-dir",
            restored.to_str().unwrap(),
        ],
        limit,
    );
    run.expect_failure(1, &["could not write", "000001", "File too large"]);
    // Nothing is left in the scratch directory.
    let left: Vec<_> = fs::read_dir(scratch).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A scratch directory that cannot take a block's index (a full /tmp on a
/// CI runner) is verify's own failure, exit 1 with a hint, never "problems
/// found" in a backup that is fine.
#[test]
fn a_full_scratch_disk_is_a_failure_not_damage() {
    let work = tempfile::tempdir().unwrap();
    let (target, block) = backed_up(work.path(), |_| {});
    let limit = 1024;
    assert!(fs::metadata(block.join("index")).unwrap().len() > limit);
    let scratch = work.path().join("scratch");
    let run = run_with_file_size_limit(
        &target,
        &[
            "verify",
            "--deep",
            "--scratch-dir",
            scratch.to_str().unwrap(),
        ],
        limit,
    );
    run.expect_failure(
        1,
        &[
            "could not verify",
            "File too large",
            "a failure of this machine, not damage in the backup",
            "--scratch-dir",
        ],
    );
    assert!(!run.stdout.contains("PROBLEM"), "{}", run.stdout);
    // The restore test, which restores whole blocks there, likewise.
    let run = run_with_file_size_limit(
        &target,
        &[
            "verify",
            "--restore-test",
            "--scratch-dir",
            scratch.to_str().unwrap(),
        ],
        limit,
    );
    run.expect_failure(
        1,
        &[
            "the restore test could not run",
            "File too large",
            "a failure of this machine, not damage in the backup",
        ],
    );
    assert!(!run.stdout.contains("PROBLEM"), "{}", run.stdout);
    // With room, the same backup verifies.
    let (run, _) = verify(&target, &["--deep", "--restore-test"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
}

#[test]
fn subsets_cover_everything_over_several_runs() {
    let work = tempfile::tempdir().unwrap();
    let (target, _) = backed_up(work.path(), |_| {});
    let read: u64 = (1..=3)
        .map(|n| {
            verify(&target, &["--read-data-subset", &format!("{n}/3")]).1["objects_read"]
                .as_u64()
                .unwrap()
        })
        .sum();
    let (_, all) = verify(&target, &["--read-data-subset", "100%"]);
    // Every object exactly once over the three runs (recipes and packs).
    let objects = all["objects_checked"].as_u64().unwrap();
    assert_eq!(all["objects_read"], objects);
    assert!(objects > support::FIXTURE_BLOCKS as u64);
    assert_eq!(
        read, objects,
        "the three runs read {read} of {objects} objects"
    );
}

/// Backups of a real Prometheus pass every level, on both kinds of repository.
fn clean_backup_passes_every_level(target: Target) {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    let prom = Prometheus::start(&data);
    target.ok(&[
        "backup",
        "--prometheus-url",
        &prom.url,
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    for level in [
        &["--quick"][..],
        &[],
        &["--deep"],
        &["latest", "--deep", "--restore-test"],
    ] {
        let (run, report) = verify(&target, level);
        assert_eq!(run.code, 0, "verify {level:?}: {}", run.stdout);
        assert_eq!(report["ok"], true);
    }
    let (_, report) = verify(&target, &["--restore-test"]);
    assert_eq!(
        report["restore_test"][0]["blocks_loaded_by_promtool"],
        support::FIXTURE_BLOCKS
    );
    assert_eq!(bare(&["check-dir", data.to_str().unwrap()]).code, 0);
}

#[test]
fn clean_local_backup_verifies() {
    let repo = tempfile::tempdir().unwrap();
    clean_backup_passes_every_level(Target::local(&repo.path().join("repo")));
}

#[test]
fn clean_garage_backup_verifies() {
    clean_backup_passes_every_level(Target::garage(support::garage(), "verify"));
}

#[test]
fn unreachable_storage_is_exit_1() {
    let mut env = support::garage().env();
    for (k, v) in env.iter_mut() {
        if k == "PROMSNAP_S3_ENDPOINT" {
            *v = format!("http://127.0.0.1:{}", support::free_port());
        }
    }
    Target {
        repo: "s3://b/x".into(),
        env,
    }
    .run(&["verify"])
    .expect_failure(1, &["did not answer"]);
}
