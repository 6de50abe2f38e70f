//! A repository is untrusted input. Each test builds one hostile object
//! itself (a decompression bomb, an object that never ends, a manifest of
//! 100 MB, a block that names another block) and checks what a user would
//! see: the exit code, the message naming the object, and that the run cost
//! what the manifest promises, measured on the promsnap process itself:
//! bytes it wrote, bytes it read, its peak memory and its wall time.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support;
use crate::support::{Run, Target};

/// Every run here must end within this, hostile input or not: the work is a
/// few hundred KiB of fixture blocks.
const TIME_LIMIT: Duration = Duration::from_secs(20);

/// A run that has not ended after this is killed and fails the test (an
/// unbounded read or a FIFO blocking forever), rather than hanging it.
const KILL_AFTER: Duration = Duration::from_secs(90);

/// What a run of promsnap cost, from the kernel's accounting of the process.
struct Cost {
    run: Run,
    elapsed: Duration,
    /// Peak resident memory, in bytes (`VmHWM`, sampled while it runs).
    peak_rss: u64,
    /// Bytes passed to write(2) and friends: files, stdout, stderr (`wchar`).
    written: u64,
    /// Bytes returned by read(2) and friends (`rchar`).
    read: u64,
}

impl Cost {
    /// Asserts the time bound and returns the run.
    fn in_time(&self) -> &Run {
        assert!(
            self.elapsed < TIME_LIMIT,
            "took {:?}; stderr:\n{}",
            self.elapsed,
            self.run.stderr
        );
        &self.run
    }
}

fn sys(what: &str, result: libc::c_int) {
    assert!(result >= 0, "{what}: {}", std::io::Error::last_os_error());
}

/// The high-water mark of a running process's resident memory, in bytes.
fn peak_rss(pid: libc::pid_t) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

/// Runs `cmd` and measures it. The child is waited for without being
/// reaped (`WNOWAIT`), so its `/proc/PID/io` totals can still be read.
///
/// Peak memory is `VmHWM`, sampled every few milliseconds while the child
/// runs: the high-water mark of its own address space since `exec`. Not
/// `ru_maxrss`: Linux starts that at the high-water mark of the address
/// space the child `exec`ed from, which (with `posix_spawn`'s shared
/// memory) is this whole test process, with its 100 MB test objects and
/// every other test running in it.
fn measure(mut cmd: Command) -> Cost {
    let out = tempfile::tempdir().unwrap();
    let (stdout, stderr) = (out.path().join("stdout"), out.path().join("stderr"));
    let child = cmd
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout).unwrap())
        .stderr(fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("run promsnap");
    let pid = child.id() as libc::pid_t;
    let started = Instant::now();
    let mut peak = 0;
    loop {
        peak = peak.max(peak_rss(pid).unwrap_or(0));
        // SAFETY: plain syscalls on our own child, with zeroed out-structs.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | libc::WNOWAIT | libc::WNOHANG;
        sys("waitid", unsafe {
            libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags)
        });
        if unsafe { info.si_pid() } == pid {
            break;
        }
        if started.elapsed() > KILL_AFTER {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let mut status = 0;
            unsafe { libc::waitpid(pid, &mut status, 0) };
            panic!(
                "promsnap was still running after {KILL_AFTER:?} and was killed; stderr:\n{}",
                fs::read_to_string(&stderr).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = started.elapsed();
    let io = fs::read_to_string(format!("/proc/{pid}/io")).expect("read /proc/PID/io");
    let field = |name: &str| -> u64 {
        io.lines()
            .find_map(|l| {
                l.strip_prefix(name)?
                    .strip_prefix(": ")?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/io:\n{io}"))
    };
    let (written, read) = (field("wchar"), field("rchar"));
    let mut status = 0;
    sys("waitpid", unsafe { libc::waitpid(pid, &mut status, 0) });
    drop(child); // already reaped; dropping a Child does not wait
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let what = format!("{cmd:?}");
    let cost = Cost {
        run: Run {
            code,
            stdout: fs::read_to_string(&stdout).unwrap(),
            stderr: fs::read_to_string(&stderr).unwrap(),
        },
        elapsed,
        peak_rss: peak,
        written,
        read,
    };
    // Shown when a test fails: what each run cost.
    eprintln!(
        "{what}: exit {}, {:?}, peak {} KiB, wrote {} bytes, read {} bytes",
        cost.run.code,
        cost.elapsed,
        cost.peak_rss >> 10,
        cost.written,
        cost.read
    );
    cost
}

fn sha(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A local repository with one backup of the fixture blocks.
struct Repo {
    work: tempfile::TempDir,
    target: Target,
}

impl Repo {
    fn new() -> Repo {
        let work = tempfile::tempdir().unwrap();
        let data = work.path().join("data");
        support::fixture_data_dir(&data);
        let target = Target::local(&work.path().join("repo"));
        // Archives (format 1): these tests build hostile archives. Format
        // 2's recipes and packs have theirs in tests/format2.rs.
        target.ok(&[
            "backup",
            "--from-dir",
            data.to_str().unwrap(),
            "--repository-format",
            "1",
        ]);
        Repo { work, target }
    }

    fn root(&self) -> &Path {
        Path::new(&self.target.repo)
    }

    fn manifest(&self) -> (PathBuf, Value) {
        support::only_manifest(self.root())
    }

    /// The object file of block `i` of the manifest.
    fn object(&self, i: usize) -> PathBuf {
        let (_, m) = self.manifest();
        self.root()
            .join(m["blocks"][i]["object"]["key"].as_str().unwrap())
    }

    /// Bytes of block data the manifest lists: what a restore may write.
    fn data_bytes(&self) -> u64 {
        let (_, m) = self.manifest();
        let blocks = m["blocks"].as_array().unwrap();
        let files = blocks.iter().flat_map(|b| b["files"].as_array().unwrap());
        files.map(|f| f["size"].as_u64().unwrap()).sum()
    }

    /// Stores `archive` as block `i`'s object and makes the manifest agree
    /// with it (size and SHA-256), as someone who can write the bucket can.
    fn replace_object(&self, i: usize, archive: &[u8]) {
        fs::write(self.object(i), archive).unwrap();
        let (path, mut m) = self.manifest();
        m["blocks"][i]["object"]["size"] = archive.len().into();
        m["blocks"][i]["object"]["sha256"] = sha(archive).into();
        fs::write(path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    }

    fn run(&self, args: &[&str]) -> Cost {
        measure(self.target.cmd(args))
    }

    fn restore(&self) -> (Cost, PathBuf) {
        let dest = self
            .work
            .path()
            .join(format!("dest-{:08x}", rand::random::<u32>()));
        let cost = self.run(&["restore", "latest", "--data-dir", dest.to_str().unwrap()]);
        (cost, dest)
    }

    fn verify(&self, level: &[&str]) -> (Cost, Value) {
        let mut args = vec!["verify", "--json"];
        args.extend_from_slice(level);
        let cost = self.run(&args);
        let json = cost.run.json();
        (cost, json)
    }
}

/// A zstd frame of `len` zero bytes made of RLE blocks: 4 bytes per 128 KiB,
/// so 128 KiB of object expand to 4 GiB.
fn zero_frame(len: u64) -> Vec<u8> {
    const BLOCK: u64 = 128 * 1024;
    // Magic; no content size, checksum or dictionary; a 128 KiB window.
    let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38];
    let mut left = len;
    loop {
        let n = left.min(BLOCK);
        left -= n;
        let header = u32::from(left == 0) | (1 << 1) | ((n as u32) << 3);
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.push(0);
        if left == 0 {
            return frame;
        }
    }
}

/// The problems of a verify report about block `ulid`, as (kind, message).
fn problems_of(report: &Value, ulid: &str) -> Vec<(String, String)> {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["block"] == ulid)
        .map(|p| {
            let text = |k: &str| p[k].as_str().unwrap_or_default().to_string();
            (text("kind"), text("message"))
        })
        .collect()
}

fn assert_problem(report: &Value, ulid: &str, kind: &str, needle: &str) {
    let found = problems_of(report, ulid);
    assert!(
        found.iter().any(|(k, m)| k == kind && m.contains(needle)),
        "no {kind} problem with {needle:?} for {ulid}: {report:#}"
    );
}

/// Neither the block nor its temporary directory was left in `dest`.
fn assert_not_restored(dest: &Path, ulid: &str) {
    assert!(!dest.join(ulid).exists(), "block {ulid} was restored");
    let tmp = dest.join(format!("{ulid}.tmp-for-creation"));
    assert!(!tmp.exists(), "{} was left behind", tmp.display());
}

/// The bomb: an archive whose `index` entry expands to 4 GiB from
/// 128 KiB made restore write 3.99 GiB and `verify --deep` 4 GiB of scratch
/// before failing. Its header promises more than the manifest records, so
/// it is refused before a byte of it is decompressed.
#[test]
fn a_decompression_bomb_costs_no_more_than_the_manifest() {
    let repo = Repo::new();
    let (_, m) = repo.manifest();
    let block = &m["blocks"][0];
    let ulid = block["ulid"].as_str().unwrap().to_string();
    let files = block["files"].as_array().unwrap();
    let index = files.iter().find(|f| f["path"] == "index").unwrap();
    let recorded = index["size"].as_u64().unwrap();
    let bomb = 4u64 << 30;
    let mut header = tar::Header::new_gnu();
    header.set_path("index").unwrap();
    header.set_size(bomb);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut archive = zstd::encode_all(header.as_bytes().as_slice(), 1).unwrap();
    archive.extend(zero_frame(bomb));
    assert!(archive.len() < 200_000, "{} bytes", archive.len());
    repo.replace_object(0, &archive);
    // Everything a run may write: the blocks the manifest lists, and logs.
    let budget = repo.data_bytes() + (1 << 20);
    let message =
        format!("index is {bomb} bytes long in the archive but {recorded} bytes in the manifest");

    let (restore, dest) = repo.restore();
    restore
        .in_time()
        .expect_failure(1, &[&format!("could not restore block {ulid}"), &message]);
    assert!(
        restore.written < budget,
        "restore wrote {} bytes",
        restore.written
    );
    assert_not_restored(&dest, &ulid);

    let (deep, report) = repo.verify(&["--deep"]);
    assert_eq!(deep.in_time().code, 3, "{}", deep.run.stderr);
    assert_problem(&report, &ulid, "archive", &message);
    assert!(
        deep.written < budget,
        "verify --deep wrote {} bytes",
        deep.written
    );
}

/// Bytes after the end of the tar stream are covered by the object's hash,
/// so they used to be decompressed to the end and then accepted: 16 GiB of
/// zeros in 512 KiB appended to a good archive. The decompressed stream is
/// cut off at what the manifest's files can take up.
#[test]
fn data_past_the_end_of_an_archive_is_not_decompressed() {
    let repo = Repo::new();
    let (_, m) = repo.manifest();
    let ulid = m["blocks"][0]["ulid"].as_str().unwrap().to_string();
    let mut archive = fs::read(repo.object(0)).unwrap();
    archive.extend(zero_frame(16 << 30));
    repo.replace_object(0, &archive);
    let message = "the archive decompresses to more than";

    let (restore, dest) = repo.restore();
    restore.in_time().expect_failure(1, &[&ulid, message]);
    assert_not_restored(&dest, &ulid);

    let (deep, report) = repo.verify(&["--deep"]);
    assert_eq!(deep.in_time().code, 3, "{}", deep.run.stderr);
    assert_problem(&report, &ulid, "archive", message);
}

/// An object that is a link to `/dev/zero` made `verify` read 10 GiB a
/// minute until killed, and a FIFO hung `restore` and `verify` forever; a
/// sparse terabyte in place of an archive would be read and hashed whole.
/// A local object must be a regular file, and no more than its recorded
/// size is read.
#[test]
fn objects_that_never_end_are_refused() {
    type Make = fn(&Path);
    let terabyte: u64 = 1 << 40;
    let cases: [(&str, Make, &str, String); 3] = [
        (
            "a link to /dev/zero",
            |p| std::os::unix::fs::symlink("/dev/zero", p).unwrap(),
            "not_a_file",
            "is a symbolic link, not a regular file".into(),
        ),
        (
            "a FIFO",
            |p| {
                let path = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
                // SAFETY: a valid NUL-terminated path.
                sys("mkfifo", unsafe { libc::mkfifo(path.as_ptr(), 0o644) });
            },
            "not_a_file",
            "is a FIFO, not a regular file".into(),
        ),
        (
            "a sparse terabyte",
            |p| fs::File::create(p).unwrap().set_len(1 << 40).unwrap(),
            "size_mismatch",
            format!("found {terabyte}"),
        ),
    ];
    for (what, make, kind, message) in cases {
        let repo = Repo::new();
        let (_, m) = repo.manifest();
        let ulid = m["blocks"][0]["ulid"].as_str().unwrap().to_string();
        let key = m["blocks"][0]["object"]["key"]
            .as_str()
            .unwrap()
            .to_string();
        let recorded = m["blocks"][0]["object"]["size"].as_u64().unwrap();
        // What a run may read: the whole repository as it was, and a few
        // MiB of its own (/proc, /etc).
        let budget = support::dir_size(repo.root()) + (8 << 20);
        let object = repo.object(0);
        fs::remove_file(&object).unwrap();
        make(&object);
        // Read no further than the recorded size: said by the restore, and
        // by the read and deep levels, which download.
        let refused = match kind {
            "not_a_file" => message.clone(),
            _ => format!("holds more than the {recorded} bytes"),
        };

        let (restore, dest) = repo.restore();
        let hint = "hint: the backup may be damaged or tampered with";
        restore.in_time().expect_failure(1, &[&key, &refused, hint]);
        assert!(
            restore.read < budget,
            "{what}: restore read {}",
            restore.read
        );
        assert_not_restored(&dest, &ulid);

        for level in [&["--quick"][..], &[], &["--deep"]] {
            let (verify, report) = repo.verify(level);
            let code = verify.in_time().code;
            assert_eq!(code, 3, "{what} {level:?}: {}", verify.run.stderr);
            assert!(
                verify.read < budget,
                "{what} {level:?}: verify read {}",
                verify.read
            );
            assert_problem(&report, &ulid, kind, &message);
            if level != ["--quick"] {
                let said = problems_of(&report, &ulid)
                    .iter()
                    .any(|(_, m)| m.contains(&refused));
                assert!(said, "{what} {level:?}: {report:#}");
            }
        }
    }
}

/// A manifest of 100 MB (valid, padded with a field promsnap does not know)
/// was accepted, and a 100 MB JSON array made promsnap build a 1.67 GiB JSON
/// value before refusing it. Manifests are capped while they are read, and
/// parsed straight into their type; an oversized or malformed one is damage
/// in that manifest, named.
#[test]
fn oversized_and_malformed_manifests_are_damage_at_bounded_cost() {
    let padded = |m: &Value| {
        let mut m = m.clone();
        m["padding"] = "x".repeat(100_000_000).into();
        serde_json::to_vec(&m).unwrap()
    };
    let array = |size: usize| {
        let mut a = b"[".to_vec();
        a.extend(b"0,".repeat(size / 2));
        a.extend(b"0]");
        a
    };
    type Build = Box<dyn Fn(&Value) -> Vec<u8>>;
    let cases: [(&str, Build, &str); 3] = [
        (
            "padded to 100 MB",
            Box::new(padded),
            "holds more than the 16777216 bytes",
        ),
        (
            "a 100 MB array",
            Box::new(move |_| array(100_000_000)),
            "holds more than the 16777216 bytes",
        ),
        // Under the cap: parsed, and refused at its first value.
        (
            "a 15 MB array",
            Box::new(move |_| array(15_000_000)),
            "not a promsnap manifest",
        ),
    ];
    for (what, build, message) in cases {
        let repo = Repo::new();
        let (path, m) = repo.manifest();
        let _ = &m["id"];
        let key = support::manifest_key(repo.root(), &path);
        fs::write(&path, build(&m)).unwrap();

        let (restore, dest) = repo.restore();
        restore
            .in_time()
            .expect_failure(1, &[&format!("manifest {key} in"), "is invalid", message]);
        assert!(
            restore.peak_rss < 100 << 20,
            "{what}: restore peaked at {} MiB",
            restore.peak_rss >> 20
        );
        assert!(!dest.exists(), "{what}: the restore created its target");

        let (verify, report) = repo.verify(&[]);
        assert_eq!(verify.in_time().code, 3, "{what}: {}", verify.run.stderr);
        assert!(
            verify.peak_rss < 100 << 20,
            "{what}: verify peaked at {} MiB",
            verify.peak_rss >> 20
        );
        let problem = &report["problems"][0];
        assert_eq!(problem["kind"], "invalid_manifest", "{what}: {report:#}");
        assert_eq!(problem["object"], key.as_str(), "{what}: {report:#}");
        assert!(
            problem["message"].as_str().unwrap().contains(message),
            "{what}: {report:#}"
        );
    }
}

/// Rewrites the archive of block `i` with `edit` applied to its meta.json,
/// and makes the manifest agree with every byte: hashes alone can no longer
/// tell.
fn rewrite_meta(repo: &Repo, i: usize, edit: impl Fn(&mut Value)) {
    let object = fs::read(repo.object(i)).unwrap();
    let tar_bytes = zstd::decode_all(&object[..]).unwrap();
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let mut out = tar::Builder::new(Vec::new());
    let mut meta_file = None;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut header = entry.header().clone();
        let path = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if path == "meta.json" {
            let mut meta: Value = serde_json::from_slice(&data).unwrap();
            edit(&mut meta);
            data = serde_json::to_vec_pretty(&meta).unwrap();
            meta_file = Some((data.len(), sha(&data)));
        }
        header.set_size(data.len() as u64);
        header.set_cksum();
        out.append(&header, &data[..]).unwrap();
    }
    let archive = zstd::encode_all(&out.into_inner().unwrap()[..], 1).unwrap();
    let (size, hash) = meta_file.expect("a meta.json entry");
    let (path, mut m) = repo.manifest();
    for f in m["blocks"][i]["files"].as_array_mut().unwrap() {
        if f["path"] == "meta.json" {
            f["size"] = size.into();
            f["sha256"] = hash.clone().into();
        }
    }
    fs::write(path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    repo.replace_object(i, &archive);
}

/// A block stored as ULID A whose meta.json says ULID B restored with exit
/// 0 (only hashes were compared), leaving Prometheus two blocks that call
/// themselves B. A restore now checks what Prometheus will read: the ULID,
/// the time range and the stats, against the manifest.
#[test]
fn a_block_must_be_the_block_the_manifest_lists() {
    let repo = Repo::new();
    let (_, m) = repo.manifest();
    let ulid = m["blocks"][0]["ulid"].as_str().unwrap().to_string();
    let other = m["blocks"][1]["ulid"].as_str().unwrap().to_string();
    let min_time = m["blocks"][0]["min_time"].as_i64().unwrap();
    let (deep, report) = repo.verify(&["--deep"]);
    assert_eq!(deep.run.code, 0, "{report:#}");

    rewrite_meta(&repo, 0, |meta| meta["ulid"] = other.clone().into());
    let (restore, dest) = repo.restore();
    restore.in_time().expect_failure(
        1,
        &[
            &format!("could not restore block {ulid}: its meta.json does not match the manifest"),
            &format!("meta.json names block {other} but it is stored as block {ulid}"),
            "hint: the backup may be damaged or tampered with",
        ],
    );
    assert_not_restored(&dest, &ulid);
    let (deep, report) = repo.verify(&["--deep"]);
    assert_eq!(deep.run.code, 3, "{report:#}");
    assert_problem(&report, &ulid, "bad_meta", &other);

    let repo = Repo::new();
    rewrite_meta(&repo, 0, |meta| {
        meta["minTime"] = (min_time - 3_600_000).into()
    });
    let (restore, dest) = repo.restore();
    let shifted = format!(
        "minTime is {} in meta.json but {min_time} in the manifest",
        min_time - 3_600_000
    );
    restore.in_time().expect_failure(1, &[&ulid, &shifted]);
    assert_not_restored(&dest, &ulid);
}

/// `restore --config-to DIR` where a directory of the stored path is a
/// symlink leading outside DIR: refused (exit 1) before anything is
/// created, and nothing at all appears where the link points.
#[test]
fn config_files_are_never_written_through_a_link_leading_outside() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    let etc = work.path().join("etc/prometheus");
    fs::create_dir_all(etc.join("rules")).unwrap();
    fs::write(
        etc.join("prometheus.yml"),
        "global: {}\nrule_files: ['rules/*.yml']\n",
    )
    .unwrap();
    fs::write(etc.join("rules/node.yml"), "groups: []\n").unwrap();
    let target = Target::local(&work.path().join("repo"));
    target.ok(&[
        "backup",
        "--from-dir",
        data.to_str().unwrap(),
        "--prometheus-config",
        etc.join("prometheus.yml").to_str().unwrap(),
    ]);
    let config_to = work.path().join("config-to");
    let outside = work.path().join("outside");
    fs::create_dir_all(&config_to).unwrap();
    fs::create_dir_all(&outside).unwrap();
    // The first directory of every stored path (the tempdir's first
    // component, e.g. "tmp") leads outside.
    let first = etc.components().nth(1).unwrap().as_os_str().to_owned();
    std::os::unix::fs::symlink(&outside, config_to.join(&first)).unwrap();
    let run = target.run(&[
        "restore",
        "latest",
        "--no-data",
        "--config-to",
        config_to.to_str().unwrap(),
    ]);
    run.expect_failure(1, &["leads outside", "refusing to write there"]);
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "something was created through the link"
    );
}

/// The data objects of a repository (archives and entries, recipes and
/// packs), counted.
fn block_objects(repo: &Path) -> usize {
    fn count(dir: &Path) -> usize {
        let Ok(entries) = fs::read_dir(dir) else {
            return 0;
        };
        entries
            .flatten()
            .map(|e| match e.file_type().unwrap().is_dir() {
                true => count(&e.path()),
                false => 1,
            })
            .sum()
    }
    ["blocks", "recipes", "packs"]
        .iter()
        .map(|d| count(&repo.join(d)))
        .sum()
}

/// One malformed file in `snapshots/` must not take the repository down
/// during the incident in which someone needs it: list shows it as damaged
/// (exit 3), restore and verify of every other snapshot proceed, and prune
/// deletes no data the damaged manifest might reference until it is told to
/// forget it.
#[test]
fn one_damaged_manifest_does_not_take_the_repository_down() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    let target = Target::local(&repo);
    // Three snapshots of growing data: each adds one block.
    let blocks = support::fixture_blocks();
    let mut ids = Vec::new();
    for n in 1..=3 {
        let data = work.path().join(format!("data{n}"));
        for b in &blocks[..n] {
            support::copy_dir(b, &data.join(b.file_name().unwrap()));
        }
        let out = target
            .ok(&["backup", "--from-dir", data.to_str().unwrap(), "--json"])
            .json();
        ids.push(out["snapshot_id"].as_str().unwrap().to_string());
    }
    // The oldest manifest is cut short.
    let damaged = support::manifest_path(&repo, &ids[0]);
    let text = fs::read(&damaged).unwrap();
    fs::write(&damaged, &text[..text.len() / 2]).unwrap();

    let list = target.run(&["list"]);
    assert_eq!(list.code, 3, "{}", list.stderr);
    assert!(
        list.stdout.contains(&format!("{}  DAMAGED", ids[0])),
        "{}",
        list.stdout
    );
    for id in &ids[1..] {
        assert!(
            list.stdout.contains(id),
            "{} missing from:\n{}",
            id,
            list.stdout
        );
    }
    // Restore and verify of the others go on; the damaged one says so.
    let dest = work.path().join("dest");
    let run = target.ok(&["restore", &ids[1], "--data-dir", dest.to_str().unwrap()]);
    assert!(run.stdout.contains("2 restored"), "{}", run.stdout);
    target.ok(&[
        "restore",
        "latest",
        "--data-dir",
        work.path().join("dest2").to_str().unwrap(),
    ]);
    target
        .run(&[
            "restore",
            &ids[0],
            "--data-dir",
            work.path().join("dest3").to_str().unwrap(),
        ])
        .expect_failure(1, &["is invalid"]);
    target.ok(&["verify", &ids[2]]);
    let verify = target.run(&["verify", "--quick"]);
    assert_eq!(verify.code, 3, "{}", verify.stdout);
    assert!(verify.stdout.contains(&ids[0]), "{}", verify.stdout);

    // Prune keeps every object while the damaged manifest exists.
    let before = block_objects(&repo);
    let prune = target.run(&["prune", "--keep-last", "1", "--grace", "0s"]);
    assert_eq!(prune.code, 3, "{}{}", prune.stdout, prune.stderr);
    assert!(
        prune.stdout.contains("--forget-damaged"),
        "{}",
        prune.stdout
    );
    assert_eq!(
        block_objects(&repo),
        before,
        "prune deleted objects a damaged manifest may use"
    );
    assert!(damaged.exists());
    // Told to forget it, prune collects what no remaining snapshot uses.
    target.ok(&[
        "prune",
        "--keep-last",
        "1",
        "--grace",
        "0s",
        "--forget-damaged",
    ]);
    assert!(!damaged.exists());
    assert_eq!(target.ok(&["list"]).code, 0);
    target.ok(&["verify"]);
    target.ok(&[
        "restore",
        "latest",
        "--data-dir",
        work.path().join("dest4").to_str().unwrap(),
    ]);
}
