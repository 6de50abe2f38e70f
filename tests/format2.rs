//! Repository format 2 end to end, on blocks a real Prometheus compacted
//! (`fixtures/compaction`, made by 2.42 and by 3.5): a compacted block
//! uploads only what is new, every block restores byte for byte, prune
//! keeps what later blocks share, verify finds damage at each level, and
//! hostile recipes are refused before anything is written.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{self, Target};

const LINES: [&str; 2] = ["prometheus-2.42", "prometheus-3.5"];

/// The block directories of a fixture set, by name.
fn set(line: &str, name: &str) -> Vec<PathBuf> {
    let dir = support::fixtures_dir()
        .join("compaction")
        .join(line)
        .join(name);
    let mut blocks: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    blocks.sort();
    blocks
}

/// A data directory holding copies of `blocks`.
fn data_dir(work: &Path, name: &str, blocks: &[PathBuf]) -> PathBuf {
    let dir = work.join(name);
    for b in blocks {
        support::copy_dir(b, &dir.join(b.file_name().unwrap()));
    }
    dir
}

fn backup(target: &Target, dir: &Path) -> Value {
    target
        .ok(&[
            "backup",
            "--from-dir",
            dir.to_str().unwrap(),
            "--instance",
            "p",
            "--json",
        ])
        .json()
}

fn size(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

/// Every file of every block in `blocks` is in `restored`, identical.
fn restored_identically(blocks: &[PathBuf], restored: &Path) {
    for b in blocks {
        let name = b.file_name().unwrap();
        for rel in ["meta.json", "index", "tombstones", "chunks/000001"] {
            let original = b.join(rel);
            if original.exists() {
                assert_eq!(
                    fs::read(&original).unwrap(),
                    fs::read(restored.join(name).join(rel)).unwrap(),
                    "{}/{rel} differs",
                    name.to_string_lossy()
                );
            }
        }
    }
}

/// The point of format 2: after the sources are stored, the block a real
/// Prometheus compacted them into uploads its index and metadata only;
/// `list` shows what each snapshot added; both restore byte for byte and
/// deep-verify.
#[test]
fn a_compacted_block_uploads_only_its_index() {
    for line in LINES {
        let work = tempfile::tempdir().unwrap();
        let target = Target::local(&work.path().join("repo"));
        let sources = set(line, "source");
        let first = backup(&target, &data_dir(work.path(), "d1", &sources));
        assert_eq!(first["blocks_new"], 3, "{line}");
        let compacted = set(line, "compacted");
        let second = backup(&target, &data_dir(work.path(), "d2", &compacted));
        let index = size(&compacted[0].join("index"));
        let uploaded = second["bytes_uploaded"].as_u64().unwrap();
        // The index, meta.json, the recipe and pack headers: a few KiB over
        // the index at most, whatever the chunk data's size.
        assert!(
            uploaded <= index + 8192,
            "{line}: uploaded {uploaded} bytes for an index of {index}"
        );
        let chunks = size(&compacted[0].join("chunks/000001"));
        assert_eq!(second["bytes_deduplicated"], chunks - 8, "{line}");
        let rows = target.snapshots();
        assert_eq!(rows[1]["bytes_new"], second["bytes_uploaded"], "{line}");
        assert!(
            rows[0]["bytes_new"].as_u64().unwrap() > 4 * uploaded,
            "{line}: {rows:?}"
        );

        target.ok(&["verify", "--deep"]);
        for (id, blocks) in [(&first, &sources), (&second, &compacted)] {
            let dest = work
                .path()
                .join(format!("r-{}", id["snapshot_id"].as_str().unwrap()));
            target.ok(&[
                "restore",
                id["snapshot_id"].as_str().unwrap(),
                "--data-dir",
                dest.to_str().unwrap(),
            ]);
            restored_identically(blocks, &dest);
        }
    }
}

/// Series deleted through the admin API, then compacted away (chunks
/// re-encoded), and overlapping blocks merged by vertical compaction: the
/// changed windows are uploaded again, the rest reused, and both round-trip.
#[test]
fn re_encoded_windows_are_stored_again_and_round_trip() {
    for line in LINES {
        let work = tempfile::tempdir().unwrap();
        let target = Target::local(&work.path().join("repo"));
        backup(&target, &data_dir(work.path(), "d1", &set(line, "source")));
        for name in ["deleted", "vertical"] {
            let blocks = set(line, name);
            let out = backup(&target, &data_dir(work.path(), name, &blocks));
            let chunks = size(&blocks[0].join("chunks/000001")) - 8;
            let dedup = out["bytes_deduplicated"].as_u64().unwrap();
            assert!(
                dedup > 0 && dedup < chunks,
                "{line} {name}: {dedup} of {chunks} chunk bytes reused"
            );
            let dest = work.path().join(format!("r-{name}"));
            target.ok(&[
                "restore",
                out["snapshot_id"].as_str().unwrap(),
                "--data-dir",
                dest.to_str().unwrap(),
            ]);
            restored_identically(&blocks, &dest);
        }
        target.ok(&["verify", "--deep"]);
    }
}

/// Pruning the snapshot of the sources frees what only they used (their
/// indexes and recipes) and keeps the window streams the compacted block
/// shares: it still restores byte for byte, and verify is clean.
#[test]
fn prune_frees_unique_data_and_keeps_what_is_shared() {
    let work = tempfile::tempdir().unwrap();
    let target = Target::local(&work.path().join("repo"));
    let line = LINES[0];
    backup(&target, &data_dir(work.path(), "d1", &set(line, "source")));
    let compacted = set(line, "compacted");
    backup(&target, &data_dir(work.path(), "d2", &compacted));
    let report = target
        .ok(&["prune", "--keep-last", "1", "--grace", "0s", "--json"])
        .json();
    // Three recipes and three packs of indexes and meta.json.
    assert_eq!(report["objects_deleted"], 6, "{report:#}");
    let verify = target.ok(&["verify", "--json"]).json();
    assert!(verify["notes"].as_array().unwrap().is_empty(), "{verify:#}");
    let dest = work.path().join("restored");
    target.ok(&["restore", "latest", "--data-dir", dest.to_str().unwrap()]);
    restored_identically(&compacted, &dest);
}

/// Every file below `dir`, in no particular order.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        match path.is_dir() {
            true => found.extend(files_below(&path)),
            false => found.push(path),
        }
    }
    found
}

/// All packs (below their group's directory, `packs/<group>/<2 hex>/`),
/// largest first.
fn packs(repo: &Path) -> Vec<PathBuf> {
    let mut found = files_below(&repo.join("packs"));
    found.sort_by_key(|p| std::cmp::Reverse(size(p)));
    found
}

/// Where the pack `pack` of the recipe at `recipe` is: in the data
/// directory the recipe's key names.
fn pack_path(repo: &Path, recipe: &Path, pack: &str) -> PathBuf {
    let rel = recipe.strip_prefix(repo.join("recipes")).unwrap();
    let parts: Vec<_> = rel.components().collect();
    let dir = match parts.len() {
        3 => repo.join("packs").join(parts[0]),
        2 => repo.join("packs"),
        _ => panic!("{} is no recipe key", recipe.display()),
    };
    dir.join(&pack[..2]).join(pack)
}

/// verify finds damage to format 2 data at the level that can: a changed
/// byte in a pack at the default level (not quick), a missing pack at
/// quick; a pack nothing references is a note.
#[test]
fn verify_finds_damaged_and_missing_packs() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    let target = Target::local(&repo);
    backup(
        &target,
        &data_dir(work.path(), "d1", &set(LINES[0], "source")),
    );
    let largest = packs(&repo)[0].clone();
    let original = fs::read(&largest).unwrap();
    let mut bytes = original.clone();
    bytes[10] ^= 0x55;
    fs::write(&largest, &bytes).unwrap();
    target.ok(&["verify", "--quick"]);
    let run = target.run(&["verify", "--json"]);
    assert_eq!(run.code, 3, "{}", run.stdout);
    let report = run.json();
    assert_eq!(
        report["problems"][0]["kind"], "checksum_mismatch",
        "{report:#}"
    );
    // Deep verify hashes the packs from what its rebuilds read, and reads
    // the rest after: the rebuild of the damaged block stops early, and
    // the pack's name is still checked, from every byte of it.
    let deep = target.run(&["verify", "--deep", "--json"]);
    assert_eq!(deep.code, 3, "{}", deep.stdout);
    let report = deep.json();
    let name = largest.file_name().unwrap().to_str().unwrap();
    assert!(
        report["problems"].as_array().unwrap().iter().any(|p| {
            p["kind"] == "checksum_mismatch" && p["object"].as_str().unwrap().ends_with(name)
        }),
        "{report:#}"
    );

    fs::remove_file(&largest).unwrap();
    let run = target.run(&["verify", "--quick", "--json"]);
    assert_eq!(run.code, 3);
    assert_eq!(run.json()["problems"][0]["kind"], "missing_object");

    // A pack no snapshot references: reported as a note, not a problem.
    fs::write(&largest, &original).unwrap();
    // In the same group's data directory as the backup's packs.
    let group = largest.parent().unwrap().parent().unwrap();
    let stray = group.join("00").join("00".repeat(32));
    fs::create_dir_all(stray.parent().unwrap()).unwrap();
    fs::copy(&largest, &stray).unwrap();
    let run = target.run(&["verify", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let report = run.json();
    assert!(
        report["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "unreferenced_pack"),
        "{report:#}"
    );
}

/// The recipe of the only block of a one-block snapshot, and its path.
fn only_recipe(repo: &Path) -> (PathBuf, Value) {
    let recipes = files_below(&repo.join("recipes"));
    assert_eq!(recipes.len(), 1, "{recipes:?}");
    let path = recipes[0].clone();
    let json = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    (path, json)
}

/// Writes `recipe` back and makes the manifest name it (size and SHA-256),
/// as an attacker with write access to the bucket would.
fn plant(repo: &Path, path: &Path, recipe: &Value) {
    use sha2::Digest;
    let bytes = serde_json::to_vec(recipe).unwrap();
    fs::write(path, &bytes).unwrap();
    let (manifest_path, mut manifest) = support::only_manifest(repo);
    manifest["blocks"][0]["object"]["size"] = bytes.len().into();
    manifest["blocks"][0]["object"]["sha256"] = hex::encode(sha2::Sha256::digest(&bytes)).into();
    fs::write(manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
}

/// A recipe that points outside its pack, at a missing pack, with lengths
/// that overflow, or that would make a file larger than its manifest says,
/// is refused with a clear error, and the restore writes nothing of it.
#[test]
fn hostile_recipes_are_refused_before_anything_is_written() {
    type Edit = fn(&mut Value);
    let edits: [(&str, Edit, &str); 8] = [
        (
            "a blob outside its pack",
            |r| {
                r["chunks"]["leaves"][0]["blobs"][0]["offset"] = (1u64 << 40).into();
            },
            "outside",
        ),
        (
            "a missing pack",
            |r| {
                r["chunks"]["leaves"][0]["blobs"][0]["pack"] = "ab".repeat(32).into();
            },
            "missing",
        ),
        (
            "lengths that overflow",
            |r| {
                r["chunks"]["leaves"][0]["blobs"][0]["offset"] = u64::MAX.into();
            },
            "outside",
        ),
        (
            "a blob its pack does not hold",
            |r| {
                r["chunks"]["leaves"][0]["blobs"][0]["id"] = "cd".repeat(32).into();
            },
            "expects blob",
        ),
        (
            "a blob where none starts in its pack",
            |r| {
                let blob = &mut r["chunks"]["leaves"][0]["blobs"][0];
                blob["offset"] = (blob["offset"].as_u64().unwrap() + 1).into();
                blob["length"] = (blob["length"].as_u64().unwrap() - 1).into();
            },
            "lists no blob at offset",
        ),
        (
            "a blob length that overflows",
            |r| {
                r["index"][0]["length"] = u64::MAX.into();
            },
            "expected u32",
        ),
        (
            "a file larger than the manifest says",
            |r| {
                let blobs = r["index"].clone();
                let mut doubled = blobs.as_array().unwrap().clone();
                doubled.extend(blobs.as_array().unwrap().iter().cloned());
                r["index"] = doubled.into();
            },
            "do not add up",
        ),
        (
            "a window longer than the chunk files",
            |r| {
                r["chunks"]["leaves"][0]["bytes"] = (1u64 << 50).into();
            },
            "invalid",
        ),
    ];
    for (what, edit, message) in edits {
        let work = tempfile::tempdir().unwrap();
        let repo = work.path().join("repo");
        let target = Target::local(&repo);
        let one = set(LINES[0], "source")[..1].to_vec();
        backup(&target, &data_dir(work.path(), "d", &one));
        let (path, mut recipe) = only_recipe(&repo);
        edit(&mut recipe);
        plant(&repo, &path, &recipe);
        let dest = work.path().join("dest");
        let run = target.run(&["restore", "latest", "--data-dir", dest.to_str().unwrap()]);
        assert_eq!(run.code, 1, "{what}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{what}: {}", run.stderr);
        // Nothing of the block went into place.
        let placed = fs::read_dir(&dest)
            .map(|d| {
                d.flatten()
                    .filter(|e| support::is_ulid(&e.file_name().to_string_lossy()))
                    .count()
            })
            .unwrap_or(0);
        assert_eq!(placed, 0, "{what}");
        // Nor a partial copy of it: only the restore's lock and its
        // resume record (which name no block as done) are left.
        let left: Vec<String> = fs::read_dir(&dest)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n != "lock" && n != ".promsnap-restore.json")
                    .collect()
            })
            .unwrap_or_default();
        assert!(left.is_empty(), "{what}: the refused restore left {left:?}");
        let verify = target.run(&["verify", "--quick"]);
        assert_eq!(verify.code, 3, "{what}: {}", verify.stdout);
    }
}

/// `target`'s `verify --deep --json` in a process that may write no file
/// larger than `limit` bytes (RLIMIT_FSIZE, as `ulimit -f`): a larger write
/// kills it with SIGXFSZ.
fn deep_verify_within(target: &Target, scratch: &Path, limit: u64) -> support::Run {
    use std::os::unix::process::CommandExt;
    let mut cmd = target.cmd(&[
        "verify",
        "--deep",
        "--json",
        "--scratch-dir",
        scratch.to_str().unwrap(),
    ]);
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            match libc::setrlimit(libc::RLIMIT_FSIZE, &lim) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    support::finish(cmd.output().expect("run promsnap"))
}

/// `verify --deep` rebuilds a format 2 block as a stream: its chunk
/// segments are checked as they pass and never written, so it runs where
/// no file as large as half the block's chunk file may be written, and
/// leaves its scratch directory empty. A byte changed inside a window's
/// blob is found, and the problem names the block, the pack and the blob.
#[test]
fn deep_verify_writes_no_chunk_file_and_names_a_damaged_pack() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    let target = Target::local(&repo);
    let compacted = set(LINES[0], "compacted");
    backup(&target, &data_dir(work.path(), "d", &compacted));
    let chunks = size(&compacted[0].join("chunks/000001"));
    let index = size(&compacted[0].join("index"));
    assert!(chunks > 8 * index, "chunks {chunks}, index {index}");
    let scratch = work.path().join("scratch");
    let limit = chunks / 2;

    let run = deep_verify_within(&target, &scratch, limit);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["level"], "deep", "{report:#}");
    assert_eq!(
        fs::read_dir(&scratch).unwrap().count(),
        0,
        "verify left files in its scratch directory"
    );

    // Damage the middle of the first window's first blob.
    let (recipe_path, recipe) = only_recipe(&repo);
    let blob = &recipe["chunks"]["leaves"][0]["blobs"][0];
    let pack = blob["pack"].as_str().unwrap();
    let path = pack_path(&repo, &recipe_path, pack);
    let at = blob["offset"].as_u64().unwrap() + blob["length"].as_u64().unwrap() / 2;
    let mut bytes = fs::read(&path).unwrap();
    bytes[at as usize] ^= 0x40;
    fs::write(&path, bytes).unwrap();

    let run = deep_verify_within(&target, &scratch, limit);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    let ulid = compacted[0].file_name().unwrap().to_str().unwrap();
    let problems = report["problems"].as_array().unwrap();
    let rebuild = problems
        .iter()
        .find(|p| p["kind"] == "rebuild")
        .unwrap_or_else(|| panic!("no rebuild problem: {report:#}"));
    assert_eq!(rebuild["block"], ulid, "{rebuild:#}");
    let message = rebuild["message"].as_str().unwrap();
    for needle in [
        ulid,
        pack,
        blob["id"].as_str().unwrap(),
        "does not rebuild it",
    ] {
        assert!(message.contains(needle), "{needle} not in {message}");
    }
}

/// A block whose chunk data is several blobs (3 MiB that zstd cannot
/// shrink, stored as a file) restores byte for byte with `--concurrency 1`,
/// its blobs decoded ahead of the writer; deep verify walks that file.
#[test]
fn a_block_of_many_blobs_restores_byte_for_byte_with_concurrency_1() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    let target = Target::local(&repo);
    let source = set(LINES[0], "compacted");
    let data = data_dir(work.path(), "d", &source);
    support::add_random_chunks(&data, 3, 16);
    backup(&target, &data);
    let (_, recipe) = only_recipe(&repo);
    let blobs: usize = recipe["chunks"]["leaves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["blobs"].as_array().unwrap().len())
        .sum();
    assert!(blobs >= 3, "{blobs} blobs: {recipe:#}");

    let dest = work.path().join("restored");
    target.ok(&[
        "restore",
        "latest",
        "--concurrency",
        "1",
        "--data-dir",
        dest.to_str().unwrap(),
    ]);
    let name = source[0].file_name().unwrap();
    for rel in [
        "meta.json",
        "index",
        "tombstones",
        "chunks/000001",
        "chunks/000002",
    ] {
        assert!(
            fs::read(data.join(name).join(rel)).unwrap()
                == fs::read(dest.join(name).join(rel)).unwrap(),
            "{rel} differs"
        );
    }
    // Deep verify walks that file too, in the stream: random bytes are no
    // chunk segment, and that is the only problem.
    let run = target.run(&["verify", "--deep", "--concurrency", "1", "--json"]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    let problems = report["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{report:#}");
    assert_eq!(problems[0]["file"], "chunks/000002", "{report:#}");
    assert_eq!(problems[0]["kind"], "bad_magic", "{report:#}");
}

/// Deep verify reads every stored byte once: it checks the packs' names
/// from the bytes its rebuilds read (and reads only what they did not), so
/// what it downloads is the repository's size plus what it reads twice
/// (pack headers, for the quick level's check and the rebuild's; the small
/// objects), not twice the packs, as when it hashed them on their own.
/// A restore reports what it downloaded too.
#[test]
fn deep_verify_downloads_each_pack_once() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    let target = Target::local(&repo);
    let data = data_dir(work.path(), "d", &set(LINES[1], "compacted"));
    support::add_random_chunks(&data, 3, 16);
    backup(&target, &data);
    let packs = packs(&repo);
    let pack_bytes: u64 = packs.iter().map(|p| size(p)).sum();
    let stored: u64 = files_below(&repo).iter().map(|p| size(p)).sum();
    // Read twice: a pack's tail (up to 16 KiB, its header), and the small
    // objects (manifests, recipes: listed, then read to check).
    let headers = packs.len() as u64 * (16 << 10);
    let twice = headers + (stored - pack_bytes);
    assert!(pack_bytes > 4 * headers, "{pack_bytes} bytes in {packs:?}");

    let run = target.run(&["verify", "--deep", "--concurrency", "1", "--json"]);
    // Random bytes are no chunk segment: the only problem (as above).
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(
        report["problems"].as_array().unwrap().len(),
        1,
        "{report:#}"
    );
    let downloaded = report["bytes_downloaded"].as_u64().unwrap();
    assert!(
        (pack_bytes..=stored + twice).contains(&downloaded),
        "downloaded {downloaded} bytes of a repository of {stored} ({pack_bytes} in {} packs)",
        packs.len()
    );
    // The summary says it too.
    let quick = target.ok(&["verify", "--quick"]);
    assert!(
        quick.stdout.contains(" downloaded in all)"),
        "{}",
        quick.stdout
    );

    // A restore counts what it reads the same way: every blob once, the
    // recipe and each pack's tail.
    let dest = work.path().join("restored");
    let dest = dest.to_str().unwrap();
    let restored = target
        .ok(&["restore", "latest", "--data-dir", dest, "--json"])
        .json();
    let downloaded = restored["bytes_downloaded"].as_u64().unwrap();
    // At least every blob the recipe references (once), the recipe and
    // each pack's trailer; at most the repository and the tails again.
    let (recipe, _) = only_recipe(&repo);
    let key = recipe.strip_prefix(&repo).unwrap().to_str().unwrap();
    let blobs: std::collections::BTreeMap<(String, u64), u64> =
        support::blob_refs_of_recipe(&repo, key)
            .iter()
            .map(|b| {
                let at = (
                    b["pack"].as_str().unwrap().to_string(),
                    b["offset"].as_u64().unwrap(),
                );
                (at, b["length"].as_u64().unwrap())
            })
            .collect();
    let blobs: u64 = blobs.values().sum();
    let least = blobs + size(&recipe) + packs.len() as u64 * 12;
    assert!(
        (least..=stored + headers).contains(&downloaded),
        "restore downloaded {downloaded} bytes of a repository of {stored} ({blobs} in the \
         block's blobs)"
    );
}

/// A restore decodes blobs without hashing each (every file's SHA-256 is
/// checked instead): a changed byte inside a blob that zstd stored as is
/// (random data) decodes to the right length and the wrong bytes. The
/// restore still fails before the block is in place (exit 1) and names
/// the file, the pack and the blob, found by reading the block again with
/// every blob checked.
#[test]
fn a_blob_that_decodes_wrong_fails_the_restore_and_is_named() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    let target = Target::local(&repo);
    let source = set(LINES[0], "compacted");
    let data = data_dir(work.path(), "d", &source);
    support::add_random_chunks(&data, 3, 16);
    backup(&target, &data);
    let (recipe_path, recipe) = only_recipe(&repo);
    // The largest blob is 256 KiB of the random data, stored as is.
    let blob = recipe["chunks"]["leaves"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["blobs"].as_array().unwrap())
        .max_by_key(|b| b["raw_length"].as_u64().unwrap())
        .unwrap()
        .clone();
    let (length, raw) = (
        blob["length"].as_u64().unwrap(),
        blob["raw_length"].as_u64().unwrap(),
    );
    assert!(
        raw >= 128 << 10 && length > raw,
        "not stored as is: {blob:#}"
    );
    let pack = blob["pack"].as_str().unwrap();
    let path = pack_path(&repo, &recipe_path, pack);
    let at = blob["offset"].as_u64().unwrap() + length / 2;
    let mut bytes = fs::read(&path).unwrap();
    bytes[at as usize] ^= 0x40;
    fs::write(&path, bytes).unwrap();

    let dest = work.path().join("restored");
    let run = target.run(&[
        "restore",
        "latest",
        "--concurrency",
        "1",
        "--data-dir",
        dest.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let ulid = source[0].file_name().unwrap().to_str().unwrap();
    for needle in [ulid, pack, blob["id"].as_str().unwrap(), "not to its id"] {
        assert!(
            run.stderr.contains(needle),
            "{needle} not in {}",
            run.stderr
        );
    }
    assert!(
        !dest.join(ulid).exists(),
        "the damaged block was renamed into place"
    );
}

/// What `content_ids` names: the hash of `bytes` under it.
fn content_id(ids: &str, bytes: &[u8]) -> String {
    use sha2::Digest;
    match ids {
        "blake3" => blake3::hash(bytes).to_hex().to_string(),
        "sha256" => hex::encode(sha2::Sha256::digest(bytes)),
        other => panic!("no such content id hash {other:?}"),
    }
}

/// Every stored name checks out under `ids`: each pack is named by the hash
/// of its bytes, and each blob a recipe references decodes to bytes with
/// its id; each leaf of a window stream has the hash of its blobs' bytes.
fn names_check_out(repo: &Path, ids: &str) {
    let packs = packs(repo);
    assert!(!packs.is_empty());
    for p in &packs {
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, content_id(ids, &fs::read(p).unwrap()), "{ids}");
    }
    let recipes = files_below(&repo.join("recipes"));
    assert!(!recipes.is_empty());
    for recipe in recipes {
        let json: Value = serde_json::from_slice(&fs::read(&recipe).unwrap()).unwrap();
        let key = recipe.strip_prefix(repo).unwrap().to_str().unwrap();
        let decode = |b: &Value| -> Vec<u8> {
            let pack = fs::read(pack_path(repo, &recipe, b["pack"].as_str().unwrap())).unwrap();
            let at = b["offset"].as_u64().unwrap() as usize;
            let frame = &pack[at..at + b["length"].as_u64().unwrap() as usize];
            let raw = zstd::decode_all(frame).unwrap();
            assert_eq!(b["id"].as_str().unwrap(), content_id(ids, &raw), "{key}");
            raw
        };
        support::blob_refs_of_recipe(repo, key)
            .iter()
            .for_each(|b| {
                decode(b);
            });
        for leaf in json["chunks"]["leaves"].as_array().unwrap() {
            let stream: Vec<u8> = leaf["blobs"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(decode)
                .collect();
            assert_eq!(
                leaf["hash"].as_str().unwrap(),
                content_id(ids, &stream),
                "{key}"
            );
        }
    }
}

/// Content is named by BLAKE3 in a repository made now (its config object
/// says `"content_ids": "blake3"`), and by SHA-256 in a format 2 repository
/// made before that field existed, which keeps SHA-256 for good: in both,
/// every pack and blob name checks out, the compacted block reuses its
/// sources' windows, everything restores byte for byte and deep-verifies,
/// and prune keeps what the kept snapshot needs.
#[test]
fn content_ids_are_blake3_in_new_repositories_and_sha256_in_older_ones() {
    for ids in ["blake3", "sha256"] {
        let work = tempfile::tempdir().unwrap();
        let repo = work.path().join("repo");
        let target = Target::local(&repo);
        let config_path = repo.join("repository.json");
        let mut config: Value = serde_json::from_slice(&fs::read(&config_path).unwrap()).unwrap();
        assert_eq!(
            config["content_ids"], "blake3",
            "a new repository: {config}"
        );
        if ids == "sha256" {
            // As promsnap wrote it before content ids could be chosen.
            config.as_object_mut().unwrap().remove("content_ids");
            fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        }
        let line = LINES[1];
        let sources = set(line, "source");
        backup(&target, &data_dir(work.path(), "d1", &sources));
        let compacted = set(line, "compacted");
        let second = backup(&target, &data_dir(work.path(), "d2", &compacted));
        let chunks = size(&compacted[0].join("chunks/000001"));
        assert_eq!(second["bytes_deduplicated"], chunks - 8, "{ids}");
        names_check_out(&repo, ids);
        target.ok(&["verify", "--deep"]);
        let dest = work.path().join("restored");
        target.ok(&["restore", "latest", "--data-dir", dest.to_str().unwrap()]);
        restored_identically(&compacted, &dest);

        target.ok(&["prune", "--keep-last", "1", "--grace", "0s"]);
        names_check_out(&repo, ids);
        let verify = target.ok(&["verify", "--json"]).json();
        assert_eq!(verify["ok"], true, "{ids}: {verify:#}");
        let after: Value = serde_json::from_slice(&fs::read(&config_path).unwrap()).unwrap();
        assert_eq!(after, config, "{ids}: the config object is never rewritten");
    }
}
