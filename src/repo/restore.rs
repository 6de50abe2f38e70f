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
//!    with every file checked against the manifest and fsynced, and only then
//!    renamed to `<ULID>`. A block directory therefore appears whole or not
//!    at all.
//! 4. A marker file records which snapshot is being restored. If the restore
//!    stops half-way, rerunning it for the same snapshot keeps the blocks that
//!    are complete and restores the rest.

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
use super::Repository;
use crate::error::Hinted;
use crate::progress::Progress;
use crate::tsdb;

/// Records an unfinished restore inside the target directory.
const MARKER: &str = ".promsnap-restore.json";

pub struct RestoreOptions {
    /// Blocks downloaded and unpacked at the same time.
    pub concurrency: usize,
    /// Move existing content aside instead of refusing a non-empty directory.
    pub force: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub snapshot_id: String,
    pub data_dir: String,
    pub blocks: usize,
    pub blocks_restored: usize,
    /// Blocks left complete by an earlier, interrupted run of this restore.
    pub blocks_already_present: usize,
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
    let prepared = prepare_target(dir, manifest, opts.force)?;
    let todo: Vec<&BlockEntry> = manifest
        .blocks
        .iter()
        .filter(|b| !prepared.complete.contains(&b.ulid))
        .collect();
    progress.set_total(todo.iter().map(|b| b.object.size).sum());
    futures::stream::iter(todo.iter().copied())
        .map(|entry| restore_block(repo, entry, dir, progress.clone()))
        .buffer_unordered(opts.concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    fs::remove_file(dir.join(MARKER))?;
    if !prepared.lock_existed {
        // Ours, not Prometheus's: leave the directory as the snapshot had it.
        fs::remove_file(dir.join("lock"))?;
    }
    sync_dir(dir)?;
    drop(prepared.lock);
    Ok(RestoreReport {
        snapshot_id: manifest.id.clone(),
        data_dir: dir.display().to_string(),
        blocks: manifest.blocks.len(),
        blocks_restored: todo.len(),
        blocks_already_present: manifest.blocks.len() - todo.len(),
        bytes_downloaded: todo.iter().map(|b| b.object.size).sum(),
        bytes_written: todo.iter().map(|b| b.data_size()).sum(),
        moved_aside_to: prepared.moved_aside.map(|p| p.display().to_string()),
        duration_seconds: started.elapsed().as_secs_f64(),
    })
}

struct Prepared {
    lock: Option<fs::File>,
    lock_existed: bool,
    /// Blocks that an earlier run of this same restore completed.
    complete: HashSet<String>,
    moved_aside: Option<PathBuf>,
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
    fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
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
    })
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
        fs::remove_dir_all(&tmp)?;
    }
    fs::create_dir(&tmp)?;
    let mut guard = TmpDir(Some(tmp.clone()));
    download::unpack_object(repo, entry, &tmp, progress.clone())
        .await
        .with_context(|| format!("could not restore block {}", entry.ulid))?;
    for d in [tmp.join("chunks"), tmp.clone()] {
        if d.is_dir() {
            sync_dir(&d)?;
        }
    }
    fs::rename(&tmp, &target)
        .with_context(|| format!("could not rename {} into place", tmp.display()))?;
    guard.0 = None;
    progress.note(&format!("block {} restored", entry.ulid));
    Ok(())
}

fn write_synced(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f =
        fs::File::create(path).with_context(|| format!("could not write {}", path.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("could not sync {}", dir.display()))
}
