//! Restoring a snapshot into a Prometheus data directory.
//!
//! Safety comes first, in this order:
//!
//! 1. A directory that a running Prometheus holds (its `lock` file is
//!    flocked) is never touched. While we restore, *we* hold that lock, so a
//!    Prometheus started by mistake refuses the directory instead of loading
//!    half of it.
//! 2. A non-empty directory is refused unless `--force`, which moves the old
//!    content aside into a dated folder; nothing is ever deleted.
//! 3. Each block is downloaded, its archive hashed while streaming, unpacked
//!    into `<ULID>.tmp-for-creation` (a name Prometheus ignores and cleans up)
//!    with every file checked against the manifest and fsynced, its
//!    `meta.json` compared with the manifest (its ULID must be the directory
//!    name, its time range and stats the manifest's: what Prometheus reads is
//!    what the manifest promised), and only then renamed to `<ULID>`. A block
//!    directory therefore appears whole or not at all.
//! 4. A marker file records which snapshot is being restored. If the restore
//!    stops half-way, rerunning it for the same snapshot keeps the blocks that
//!    are complete and restores the rest.
//!
//! A targeted restore (`--from`/`--to`) restores only the blocks that
//! overlap a time window (see [`selection`](super::selection)); everything
//! above holds for the blocks it takes.
//!
//! # Merging into a running Prometheus
//!
//! `--merge` adds the snapshot's missing blocks to the data directory of a
//! Prometheus that is running (or stopped). Since 2.39 Prometheus accepts
//! overlapping blocks and merges them at query time and in compaction, and
//! it rescans its directory for new block directories at every block reload
//! (once a minute in 2.42, and after each compaction). So merging is exactly
//! step 3 above, with rules 1, 2 and 4 turned off, deliberately:
//!
//! - We neither check for nor take the `lock` file: the server owns it, and
//!   taking it would either fail or (with the lock file disabled) leave a
//!   `lock` that is ours inside its directory.
//! - The directory must exist and is of course not empty; nothing in it is
//!   moved, changed or deleted.
//! - No marker file is written: a merge is naturally resumable, because a
//!   block whose directory already exists is skipped. Skipped too is a block
//!   that the server already compacted into a bigger one (its ULID is among
//!   an existing block's `compaction.sources` or `parents`): Prometheus
//!   deletes a block that is the parent of another at its next reload, and
//!   its samples are there already.
//! - Each new block is unpacked and checked under `<ULID>.tmp-for-creation`,
//!   a name the server's reload ignores (and removes at startup), and appears
//!   under its ULID by one atomic rename, so a reload sees it whole or not
//!   at all. Its files get the data directory's owner, so a server running
//!   as another user than promsnap can compact and delete them later.
//!
//! What the server does next is its business: blocks older than its
//! retention (counted from the newest block) are deleted at the next reload,
//! which is why the command warns about them before merging.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::download::{self, TmpDir};
use super::manifest::{BlockEntry, Manifest};
use super::pack::readahead::Budgets;
use super::rebuild;
use super::selection::{self, TimeRange};
use super::Repository;
use crate::error::local_io;
use crate::error::Hinted;
use crate::progress::Progress;
use crate::storage::BadObject;
use crate::tsdb;

/// Records an unfinished restore inside the target directory.
const MARKER: &str = ".promsnap-restore.json";

/// The hint for a block the repository holds damaged.
const DAMAGED: &str = "the backup may be damaged or tampered with; `promsnap verify --deep` \
                       checks every block, and an older snapshot may hold a good copy";

pub struct RestoreOptions {
    /// Blocks downloaded and unpacked at the same time.
    pub concurrency: usize,
    /// Move existing content aside instead of refusing a non-empty directory.
    pub force: bool,
    /// Only the blocks that overlap this window (all when unbounded).
    pub range: TimeRange,
    /// Add missing blocks to a (running) Prometheus's directory; see the
    /// module documentation.
    pub merge: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub snapshot_id: String,
    /// The Prometheus the snapshot is of.
    pub instance: String,
    /// Its HA group, if it belongs to one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ha_group: Option<String>,
    pub data_dir: String,
    /// Blocks in the snapshot.
    pub blocks: usize,
    /// Of those, the blocks inside --from/--to (all without them).
    pub blocks_selected: usize,
    pub blocks_restored: usize,
    /// Selected blocks that were there already: left complete by an earlier,
    /// interrupted run of this restore, or (with --merge) already in the
    /// server's directory.
    pub blocks_already_present: usize,
    pub merge: bool,
    /// The --from/--to window in milliseconds, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_range: Option<TimeRange>,
    /// Time range of the selected blocks.
    pub min_time: Option<i64>,
    pub max_time: Option<i64>,
    pub bytes_downloaded: u64,
    pub bytes_written: u64,
    pub moved_aside_to: Option<String>,
    pub duration_seconds: f64,
}

#[derive(Serialize, Deserialize)]
struct Marker {
    snapshot_id: String,
}

pub async fn run(
    repo: &Repository,
    manifest: &Manifest,
    dir: &Path,
    opts: RestoreOptions,
    progress: Arc<dyn Progress>,
) -> Result<RestoreReport> {
    let started = Instant::now();
    // What the restore reads, counted as it arrives (its report's
    // `bytes_downloaded`: what an object store bills as egress).
    let (repo, downloaded) = repo.counting_downloads();
    let repo = &repo;
    let selected = selection::in_range(&manifest.blocks, opts.range);
    let prepared = if opts.merge {
        prepare_merge(dir)?
    } else {
        prepare_target(dir, manifest, opts.force)?
    };
    let mut todo: Vec<&BlockEntry> = selected
        .iter()
        .copied()
        .filter(|b| !prepared.complete.contains(&b.ulid))
        .collect();
    super::largest_first(&mut todo, |b| b.stored());
    progress.set_total(todo.iter().map(|b| progress_size(b)).sum());
    let owner = prepared.owner;
    let budgets = Budgets::new(
        todo.iter().map(|b| b.stored()),
        opts.concurrency,
        repo.storage().prefers_long_reads(),
    );
    futures::stream::iter(todo.iter().copied())
        .map(|entry| {
            let budget = budgets.of(entry.stored());
            restore_block(repo, entry, dir, owner, budget, progress.clone())
        })
        .buffer_unordered(opts.concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    if !opts.merge {
        fs::remove_file(dir.join(MARKER))?;
    }
    if !prepared.lock_existed {
        // Ours, not Prometheus's: leave the directory as the snapshot had it.
        fs::remove_file(dir.join("lock"))?;
    }
    sync_dir(dir)?;
    drop(prepared.lock);
    Ok(RestoreReport {
        snapshot_id: manifest.id.clone(),
        instance: manifest.instance.clone(),
        ha_group: manifest.ha_group.clone(),
        data_dir: dir.display().to_string(),
        blocks: manifest.blocks.len(),
        blocks_selected: selected.len(),
        blocks_restored: todo.len(),
        blocks_already_present: selected.len() - todo.len(),
        merge: opts.merge,
        time_range: opts.range.is_bounded().then_some(opts.range),
        min_time: selected.iter().map(|b| b.min_time).min(),
        max_time: selected.iter().map(|b| b.max_time).max(),
        bytes_downloaded: downloaded.load(std::sync::atomic::Ordering::Relaxed),
        bytes_written: todo.iter().map(|b| b.data_size()).sum(),
        moved_aside_to: prepared.moved_aside.map(|p| p.display().to_string()),
        duration_seconds: started.elapsed().as_secs_f64(),
    })
}

/// What restoring a block reports as progress: an archive's bytes as they
/// download, a rebuilt block's as they are written.
fn progress_size(b: &BlockEntry) -> u64 {
    match b.is_recipe() {
        true => b.data_size(),
        false => b.object.size,
    }
}

struct Prepared {
    lock: Option<fs::File>,
    lock_existed: bool,
    /// Blocks that an earlier run of this same restore completed (with
    /// --merge: blocks whose data the directory already has).
    complete: HashSet<String>,
    moved_aside: Option<PathBuf>,
    /// Owner and group to give new blocks (--merge only).
    owner: Option<(u32, u32)>,
}

fn prepare_target(dir: &Path, manifest: &Manifest, force: bool) -> Result<Prepared> {
    if dir.exists() {
        tsdb::ensure_not_in_use(dir)?;
    }
    let mut moved_aside = None;
    let mut complete = HashSet::new();
    if dir.exists() {
        match resumable(dir, manifest)? {
            Some(done) => complete = done,
            None if is_empty(dir)? => {}
            None if force => moved_aside = Some(move_aside(dir)?),
            None => {
                return Err(Hinted::usage(
                    format!("{} is not empty", dir.display()),
                    "restore into an empty or new directory, or pass --force to move the \
                     current content aside into a dated folder next to it (nothing is deleted)",
                )
                .into())
            }
        }
    }
    fs::create_dir_all(dir).map_err(|e| local(e, "create", dir))?;
    let lock_existed = dir.join("lock").exists();
    let lock = tsdb::lock_data_dir(dir)?;
    let marker = serde_json::to_vec(&Marker {
        snapshot_id: manifest.id.clone(),
    })?;
    write_synced(&dir.join(MARKER), &marker)?;
    sync_dir(dir)?;
    Ok(Prepared {
        lock,
        lock_existed,
        complete,
        moved_aside,
        owner: None,
    })
}

/// For --merge: the directory must exist; nothing in it is touched, no lock
/// is taken and no marker written (see the module documentation).
fn prepare_merge(dir: &Path) -> Result<Prepared> {
    let meta = match fs::metadata(dir) {
        Ok(m) if m.is_dir() => m,
        _ => {
            return Err(Hinted::usage(
                format!("{} is not an existing data directory", dir.display()),
                "--merge adds blocks to the data directory of a Prometheus (its \
                 --storage.tsdb.path); leave out --merge to restore into a new directory",
            )
            .into())
        }
    };
    use std::os::unix::fs::MetadataExt;
    Ok(Prepared {
        lock: None,
        lock_existed: true,
        complete: existing_blocks(dir)?.covered,
        moved_aside: None,
        owner: Some((meta.uid(), meta.gid())),
    })
}

/// The blocks already in a data directory, as far as a merge cares.
#[derive(Debug, Default)]
pub struct ExistingBlocks {
    /// ULIDs of the block directories, and of every block they were
    /// compacted from (`compaction.sources` and `parents`).
    pub covered: HashSet<String>,
    /// The newest `maxTime` among them: where Prometheus counts retention from.
    pub newest_max_time: Option<i64>,
}

/// Reads the block directories in `dir`. A running server may compact and
/// delete blocks meanwhile, so a block that vanishes or whose `meta.json`
/// cannot be read is counted by its name only.
/// How many blocks `dir` holds: subdirectories named as a ULID with a
/// `meta.json` (what Prometheus loads). A directory that does not exist
/// holds none.
pub fn blocks_in(dir: &Path) -> Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("could not read {}", dir.display())))
        }
    };
    let mut n = 0;
    for entry in entries {
        let entry = entry.with_context(|| format!("could not read {}", dir.display()))?;
        let name = entry.file_name();
        let is_block = name.to_str().and_then(tsdb::parse_ulid).is_some()
            && entry.path().join("meta.json").is_file();
        n += usize::from(is_block);
    }
    Ok(n)
}

pub fn existing_blocks(dir: &Path) -> Result<ExistingBlocks> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Meta {
        max_time: i64,
        #[serde(default)]
        compaction: Compaction,
    }
    #[derive(Deserialize, Default)]
    struct Compaction {
        #[serde(default)]
        sources: Vec<String>,
        #[serde(default)]
        parents: Vec<Parent>,
    }
    #[derive(Deserialize)]
    struct Parent {
        ulid: String,
    }
    let mut found = ExistingBlocks::default();
    let entries = fs::read_dir(dir).with_context(|| format!("could not read {}", dir.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if tsdb::parse_ulid(&name).is_none() || !entry.path().is_dir() {
            continue;
        }
        let meta = fs::read(entry.path().join("meta.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Meta>(&b).ok());
        if let Some(meta) = meta {
            found.newest_max_time = found.newest_max_time.max(Some(meta.max_time));
            found.covered.extend(meta.compaction.sources);
            found
                .covered
                .extend(meta.compaction.parents.into_iter().map(|p| p.ulid));
        }
        found.covered.insert(name);
    }
    Ok(found)
}

/// When `dir` holds an unfinished restore of this snapshot, the blocks it
/// already completed.
fn resumable(dir: &Path, manifest: &Manifest) -> Result<Option<HashSet<String>>> {
    let Ok(bytes) = fs::read(dir.join(MARKER)) else {
        return Ok(None);
    };
    match serde_json::from_slice::<Marker>(&bytes) {
        Ok(m) if m.snapshot_id == manifest.id => {}
        _ => return Ok(None),
    }
    let mut done = HashSet::new();
    for entry in &manifest.blocks {
        let block = dir.join(&entry.ulid);
        if block.is_dir() && sizes_match(&block, entry) {
            done.insert(entry.ulid.clone());
        }
    }
    Ok(Some(done))
}

fn sizes_match(block: &Path, entry: &BlockEntry) -> bool {
    entry
        .files
        .iter()
        .all(|f| fs::metadata(block.join(&f.path)).is_ok_and(|m| m.is_file() && m.len() == f.size))
}

/// Empty, or only what a stopped Prometheus or a fresh filesystem leaves.
fn is_empty(dir: &Path) -> Result<bool> {
    for entry in fs::read_dir(dir).with_context(|| format!("could not read {}", dir.display()))? {
        let name = entry?.file_name();
        if name != "lock" && name != "lost+found" {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Moves the content of `dir` into `<dir>.before-restore-<time>` next to it,
/// or into a dated folder inside it when the parent is another filesystem
/// (a mount point cannot be renamed). Prometheus ignores that inner folder.
fn move_aside(dir: &Path) -> Result<PathBuf> {
    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ");
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sibling = dir.with_file_name(format!("{name}.before-restore-{stamp}"));
    if fs::rename(dir, &sibling).is_ok() {
        return Ok(sibling);
    }
    let inner = dir.join(format!("before-restore-{stamp}"));
    fs::create_dir(&inner).with_context(|| format!("could not create {}", inner.display()))?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.path() != inner && entry.file_name() != "lost+found" {
            fs::rename(entry.path(), inner.join(entry.file_name()))
                .with_context(|| format!("could not move {} aside", entry.path().display()))?;
        }
    }
    Ok(inner)
}

async fn restore_block(
    repo: &Repository,
    entry: &BlockEntry,
    dir: &Path,
    owner: Option<(u32, u32)>,
    budget: u64,
    progress: Arc<dyn Progress>,
) -> Result<()> {
    let target = dir.join(&entry.ulid);
    if target.exists() {
        bail!(
            "{} exists but does not match the snapshot; move it away and rerun",
            target.display()
        );
    }
    let tmp = dir.join(format!("{}.tmp-for-creation", entry.ulid));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| local(e, "remove", &tmp))?;
    }
    fs::create_dir(&tmp).map_err(|e| local(e, "create", &tmp))?;
    let mut guard = TmpDir(Some(tmp.clone()));
    let unpacked = match entry.is_recipe() {
        true => rebuild::rebuild(repo, entry, &tmp, progress.clone(), true, budget)
            .await
            .map(|_| ()),
        false => download::unpack_object(repo, entry, &tmp, progress.clone(), true).await,
    };
    if let Err(e) = unpacked {
        let what = format!("could not restore block {}", entry.ulid);
        return Err(match e.downcast_ref::<BadObject>() {
            Some(_) => e.context(Hinted::failure(what, DAMAGED)),
            None => e.context(what),
        });
    }
    meta_is_the_manifests(&tmp, entry)?;
    if let Some((uid, gid)) = owner {
        give_to(&tmp, uid, gid);
    }
    for d in [tmp.join("chunks"), tmp.clone()] {
        if d.is_dir() {
            sync_dir(&d)?;
        }
    }
    fs::rename(&tmp, &target).map_err(|e| local(e, "rename into place", &tmp))?;
    guard.0 = None;
    progress.note(&format!("block {} restored", entry.ulid));
    Ok(())
}

/// The unpacked block's `meta.json` must be the block the manifest lists:
/// every file's hash matching only proves the bytes are the ones listed, and
/// a manifest can list a meta.json that names another block or time range.
/// Prometheus trusts meta.json alone, so a mismatch would load as a
/// different block than the one restored (`verify --deep` reports the same).
fn meta_is_the_manifests(block: &Path, entry: &BlockEntry) -> Result<()> {
    let summary = tsdb::check::read_summary(block).map_err(|p| {
        Hinted::failure(
            format!("could not restore block {}: {}", entry.ulid, p.message),
            DAMAGED,
        )
    })?;
    let differences: Vec<String> = entry
        .meta_differences(&summary)
        .into_iter()
        .map(|(_, message)| message)
        .collect();
    if !differences.is_empty() {
        return Err(Hinted::failure(
            format!(
                "could not restore block {}: its meta.json does not match the manifest: {}",
                entry.ulid,
                differences.join("; ")
            ),
            DAMAGED,
        )
        .into());
    }
    Ok(())
}

fn write_synced(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    fs::File::create(path)
        .and_then(|mut f| f.write_all(data).and_then(|()| f.sync_all()))
        .map_err(|e| local(e, "write", path))
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| local(e, "sync", dir))
}

/// A failure of the local disk (full, read-only, gone): this machine's
/// problem, not the backup's.
fn local(e: std::io::Error, what: &str, path: &Path) -> anyhow::Error {
    local_io(e, format!("could not {what} {}", path.display()))
}

/// Gives a new block directory and its files to `uid:gid` when they are not
/// theirs yet. Best effort: only root may give files away, and a promsnap
/// that is not root wrote them as a user that can already write the
/// directory.
fn give_to(block: &Path, uid: u32, gid: u32) {
    use std::os::unix::fs::MetadataExt;
    if fs::metadata(block).is_ok_and(|m| m.uid() == uid && m.gid() == gid) {
        return;
    }
    let chunks = fs::read_dir(block.join("chunks")).into_iter().flatten();
    let files = fs::read_dir(block).into_iter().flatten();
    for entry in chunks.chain(files).flatten() {
        let _ = std::os::unix::fs::chown(entry.path(), Some(uid), Some(gid));
    }
    let _ = std::os::unix::fs::chown(block, Some(uid), Some(gid));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merge_skips_blocks_the_directory_has_or_compacted_away() {
        let dir = tempfile::tempdir().unwrap();
        let compacted = dir.path().join("01HQ3K6W2Z0000000000000002");
        fs::create_dir(&compacted).unwrap();
        fs::write(
            compacted.join("meta.json"),
            r#"{"ulid":"01HQ3K6W2Z0000000000000002","minTime":0,"maxTime":14400000,
                "compaction":{"level":2,"sources":["01HQ3K6W2Z0000000000000000",
                "01HQ3K6W2Z0000000000000001"],"parents":[{"ulid":"01HQ3K6W2Z0000000000000001"}]},
                "version":1}"#,
        )
        .unwrap();
        // Being written by the server, or no block at all: not counted.
        fs::create_dir(
            dir.path()
                .join("01HQ3K6W2Z0000000000000009.tmp-for-creation"),
        )
        .unwrap();
        fs::create_dir(dir.path().join("wal")).unwrap();
        let found = existing_blocks(dir.path()).unwrap();
        let mut covered: Vec<&str> = found.covered.iter().map(String::as_str).collect();
        covered.sort();
        assert_eq!(
            covered,
            [
                "01HQ3K6W2Z0000000000000000",
                "01HQ3K6W2Z0000000000000001",
                "01HQ3K6W2Z0000000000000002"
            ]
        );
        assert_eq!(found.newest_max_time, Some(14_400_000));

        let prepared = prepare_merge(dir.path()).unwrap();
        assert!(prepared.lock.is_none());
        assert!(
            !dir.path().join("lock").exists(),
            "a merge must not create a lock"
        );
        assert!(
            !dir.path().join(MARKER).exists(),
            "a merge must not write a marker"
        );
        let err = prepare_merge(&dir.path().join("missing")).err().unwrap();
        assert_eq!(
            crate::error::status_of(&err),
            crate::error::ExitStatus::Usage
        );
    }
}
