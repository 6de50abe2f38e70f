//! What a Prometheus TSDB block is, as far as backup and restore care.
//!
//! A data or snapshot directory holds one directory per block, named by its
//! ULID; only names that parse strictly as ULIDs are blocks (Prometheus itself
//! ignores everything else, including its own `*.tmp-for-creation` leftovers).
//! A block is `meta.json`, `index`, `tombstones` and `chunks/NNNNNN` segment
//! files, all immutable except `meta.json` and `tombstones`, which the
//! delete-series API rewrites in place under the same ULID. That is why a
//! block's [`fingerprint`] hashes those two files' content but only the sizes
//! of the (large, immutable) index and chunk files: telling whether a stored
//! copy is still current then costs two small reads, never a scan.

pub mod check;
pub(crate) mod index;
pub mod meta;
pub(crate) mod reader;
pub(crate) mod segment;
pub mod windows;

use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use ulid::Ulid;

pub use meta::{BlockMeta, BlockStats};

use crate::error::Hinted;

/// One block directory found on disk.
#[derive(Debug, Clone)]
pub struct Block {
    pub ulid: Ulid,
    pub path: PathBuf,
    pub meta: BlockMeta,
    /// Every regular file in the block, relative paths in archive order.
    pub files: Vec<BlockFile>,
    pub fingerprint: String,
}

/// A file inside a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockFile {
    /// `/`-separated path relative to the block directory.
    pub rel: String,
    pub size: u64,
}

impl Block {
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Parses a directory name as a block ULID (strictly, as Prometheus does).
pub fn parse_ulid(name: &str) -> Option<Ulid> {
    if name.len() != 26 {
        return None;
    }
    Ulid::from_string(name).ok()
}

/// The blocks in `dir` plus the names of the entries that are not blocks.
pub fn find_blocks(dir: &Path) -> Result<(Vec<Block>, Vec<String>)> {
    let entries = fs::read_dir(dir).with_context(|| format!("could not read {}", dir.display()))?;
    let (mut blocks, mut skipped) = (Vec::new(), Vec::new());
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        match parse_ulid(&name) {
            Some(ulid) if entry.file_type()?.is_dir() => {
                blocks.push(read_block(&entry.path(), ulid)?);
            }
            _ => skipped.push(name),
        }
    }
    blocks.sort_by_key(|b| (b.meta.min_time, b.ulid));
    skipped.sort();
    Ok((blocks, skipped))
}

/// Reads a block's metadata, file list and fingerprint (no chunk data).
pub fn read_block(path: &Path, ulid: Ulid) -> Result<Block> {
    let meta_bytes = fs::read(path.join("meta.json"))
        .with_context(|| format!("could not read {}/meta.json", path.display()))?;
    let meta = BlockMeta::parse(&meta_bytes)
        .with_context(|| format!("invalid {}/meta.json", path.display()))?;
    if meta.ulid != ulid.to_string() {
        anyhow::bail!(
            "{}/meta.json names block {} but the directory is {ulid}",
            path.display(),
            meta.ulid
        );
    }
    let files = list_files(path)?;
    let tombstones = match fs::read(path.join("tombstones")) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).context("could not read tombstones"),
    };
    let fingerprint = fingerprint(&meta_bytes, &tombstones, &files);
    Ok(Block {
        ulid,
        path: path.to_path_buf(),
        meta,
        files,
        fingerprint,
    })
}

/// Lists a block's files: `chunks/*` first, then the top-level files, with
/// `meta.json` last so an archive ends with the file that marks a block
/// complete. Links and anything that is not a plain file are refused.
fn list_files(block: &Path) -> Result<Vec<BlockFile>> {
    let mut files = Vec::new();
    let mut top = Vec::new();
    for entry in fs::read_dir(block)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let ft = entry.file_type()?;
        if ft.is_dir() && name == "chunks" {
            for c in fs::read_dir(entry.path())? {
                let c = c?;
                let cname = c.file_name().to_string_lossy().into_owned();
                files.push(plain_file(&c, format!("chunks/{cname}"))?);
            }
        } else {
            top.push(plain_file(&entry, name)?);
        }
    }
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    top.sort_by_key(|f| (f.rel == "meta.json", f.rel.clone()));
    files.extend(top);
    for f in &files {
        validate_file_path(&f.rel)?;
    }
    Ok(files)
}

fn plain_file(entry: &fs::DirEntry, rel: String) -> Result<BlockFile> {
    let ft = entry.file_type()?;
    if !ft.is_file() {
        anyhow::bail!(
            "{} is not a regular file; a TSDB block holds only files and chunks/",
            entry.path().display()
        );
    }
    Ok(BlockFile {
        rel,
        size: entry.metadata()?.len(),
    })
}

/// What makes a stored copy of a block current: the content of `meta.json`
/// and `tombstones` (the only files Prometheus rewrites) and every file's
/// name and size.
pub fn fingerprint(meta_json: &[u8], tombstones: &[u8], files: &[BlockFile]) -> String {
    let mut h = Sha256::new();
    h.update(b"promsnap-block-fingerprint-v1\0");
    for part in [meta_json, tombstones] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    for f in files {
        h.update(f.rel.as_bytes());
        h.update(b"\0");
        h.update(f.size.to_le_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

/// Checks a path inside a block, from a manifest or a tar entry: relative,
/// at most `dir/file`, each part made of `[A-Za-z0-9._-]` and not starting
/// with a dot (so no `.`, `..` or hidden files), and only `chunks/` as a
/// directory.
pub fn validate_file_path(rel: &str) -> Result<()> {
    let parts: Vec<&str> = rel.split('/').collect();
    let part_ok = |p: &str| {
        !p.is_empty()
            && !p.starts_with('.')
            && p.len() <= 255
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    let ok = match parts.as_slice() {
        [file] => part_ok(file),
        ["chunks", file] => part_ok(file),
        _ => false,
    };
    if !ok {
        anyhow::bail!("{rel:?} is not a valid path inside a TSDB block");
    }
    Ok(())
}

/// Refuses to go on when a running process uses `dir`.
///
/// Two checks, because neither is enough alone: Prometheus takes
/// `flock(LOCK_EX|LOCK_NB)` on `dir/lock` while it runs, but only when its
/// lock file is enabled (3.x and upstream 2.x by default, unless
/// `--storage.tsdb.no-lockfile`; Debian's 2.42 build only with
/// `--storage.tsdb.use-lockfile`); and a running Prometheus always keeps its
/// WAL segment, `queries.active` (and its lock file) open, which `/proc/*/fd`
/// shows. The processes are named whenever `/proc` shows them, whichever
/// check found them; a lock held by a process we may not inspect is reported
/// as the lock's holder.
pub fn ensure_not_in_use(dir: &Path) -> Result<()> {
    let mut users = processes_using(dir);
    if users.is_empty() && is_locked(dir) {
        users.push(format!("the holder of {}", dir.join("lock").display()));
    }
    if users.is_empty() {
        return Ok(());
    }
    // A refusal like a non-empty target (exit 2): fix the command or the
    // situation, nothing failed.
    Err(Hinted::usage(
        format!(
            "{} is in use by a running process: {}",
            dir.display(),
            users.join(", ")
        ),
        "stop that Prometheus first (e.g. `systemctl stop prometheus`), or choose another \
         --data-dir",
    )
    .into())
}

/// Processes (other than us) with a file below `dir` open, as `name (pid N)`.
/// Reads `/proc`; processes we may not inspect are not seen.
pub fn processes_using(dir: &Path) -> Vec<String> {
    let Ok(dir) = dir.canonicalize() else {
        return Vec::new();
    };
    let Ok(procs) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut found = Vec::new();
    for proc in procs.flatten() {
        let Some(pid) = proc
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = fs::read_dir(proc.path().join("fd")) else {
            continue;
        };
        let uses = fds
            .flatten()
            .any(|fd| fs::read_link(fd.path()).is_ok_and(|target| target.starts_with(&dir)));
        if uses {
            let comm = fs::read_to_string(proc.path().join("comm")).unwrap_or_default();
            found.push(format!("{} (pid {pid})", comm.trim()));
        }
    }
    found
}

/// Takes the Prometheus lock on `dir` (creating `dir/lock`) and returns the
/// guard that holds it, so a Prometheus started by mistake while we write
/// refuses the directory (when its lock file is enabled).
pub fn lock_data_dir(dir: &Path) -> Result<Option<File>> {
    let path = dir.join("lock");
    let file = match File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("could not open {}", path.display())),
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(fs::TryLockError::WouldBlock) => ensure_not_in_use(dir).map(|_| None),
        Err(fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("could not lock {}", path.display()))
        }
    }
}

/// True when a process holds the Prometheus lock on `dir` right now.
pub fn is_locked(dir: &Path) -> bool {
    let Ok(file) = File::open(dir.join("lock")) else {
        return false;
    };
    matches!(file.try_lock(), Err(fs::TryLockError::WouldBlock))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_paths_are_validated() {
        for good in ["meta.json", "index", "tombstones", "chunks/000001"] {
            validate_file_path(good).unwrap();
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "chunks/../../x",
            "chunks/..",
            ".",
            "a/b",
            "chunks/a/b",
            "index\0",
            "chunks/",
            "meta json",
            "..",
            ".hidden",
        ] {
            assert!(validate_file_path(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn ulids_parse_strictly() {
        assert!(parse_ulid("01HQ3K6W2Z0000000000000000").is_some());
        assert!(parse_ulid("01HQ3K6W2Z0000000000000000.tmp-for-creation").is_none());
        assert!(parse_ulid("wal").is_none());
        assert!(parse_ulid("../../x").is_none());
    }

    #[test]
    fn fingerprint_changes_with_tombstones_meta_and_sizes_only() {
        let files = vec![
            BlockFile {
                rel: "chunks/000001".into(),
                size: 100,
            },
            BlockFile {
                rel: "index".into(),
                size: 50,
            },
        ];
        let base = fingerprint(b"{}", b"t", &files);
        assert_eq!(base, fingerprint(b"{}", b"t", &files));
        assert_ne!(base, fingerprint(b"{ }", b"t", &files));
        assert_ne!(base, fingerprint(b"{}", b"t2", &files));
        let mut grown = files.clone();
        grown[0].size = 101;
        assert_ne!(base, fingerprint(b"{}", b"t", &grown));
        // Moving bytes between the two parts must not collide.
        assert_ne!(
            fingerprint(b"ab", b"c", &files),
            fingerprint(b"a", b"bc", &files)
        );
    }

    #[test]
    fn open_files_reveal_a_process_using_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .stdout(File::create(dir.path().join("out")).unwrap())
            .spawn()
            .unwrap();
        let users = processes_using(dir.path());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            users.iter().any(|u| u.starts_with("sleep (pid")),
            "{users:?}"
        );
        assert!(processes_using(dir.path()).is_empty());
        ensure_not_in_use(dir.path()).unwrap();
    }

    #[test]
    fn a_held_lock_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_locked(dir.path()));
        let held = File::create(dir.path().join("lock")).unwrap();
        held.lock().unwrap();
        assert!(is_locked(dir.path()));
        assert!(lock_data_dir(dir.path()).is_err());
        let err = ensure_not_in_use(dir.path()).unwrap_err();
        assert!(format!("{err}").contains("in use by a running process"));
        drop(held);
        // A process that another test forks at this moment shares the
        // lock's open file until it execs (seen once in CI): wait, briefly,
        // until nobody holds it.
        for _ in 0..100 {
            if !is_locked(dir.path()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let ours = lock_data_dir(dir.path()).unwrap();
        assert!(ours.is_some());
    }
}
