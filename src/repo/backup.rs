//! Backing up a set of blocks into the repository.
//!
//! Two phases. First every block is classified, cheaply: its fingerprint was
//! computed from two small files and a directory listing, and a block whose
//! version is already stored (listed in the newest manifest, or with a
//! completed entry from an interrupted run) is reused without reading a byte
//! of its chunks or index. Then the new blocks are packed and uploaded, a few
//! at a time, each as one streamed tar.zst object followed by its entry.
//! Configuration files (`configfiles/`) follow the blocks, and the
//! manifest is written last, only if every block and file was stored.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::configfiles;
use super::content_id::ContentId;
use super::datadir::DataDir;
use super::leaves::{self, LeafTable};
use super::lock::RepoLock;
use super::manifest::{self, BlockEntry, Manifest, ObjectRef, Source, FORMAT_VERSION};
use super::recipe::{self, Recipe};
use super::store::{self, StoreOptions};
use super::Repository;
use crate::archive::{self, PackOptions};
use crate::progress::Progress;
use crate::prometheus::config_files::LocalFile;
use crate::storage::body::{self, UploadAbandoned};
use crate::storage::Key;
use crate::tsdb::{windows, Block};

pub struct BackupOptions {
    /// Blocks packed and uploaded at the same time.
    pub concurrency: usize,
    pub pack: PackOptions,
    /// The repository format new blocks are stored in: 2 (recipes, window
    /// streams shared across compactions), or 1 (one archive per block).
    pub format: u32,
    pub instance: String,
    pub ha_group: Option<String>,
    pub source: Source,
    pub now: DateTime<Utc>,
    /// Configuration and rule files stored with the snapshot.
    pub config_files: Vec<LocalFile>,
}

/// What a backup did; printed as the summary and as `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    pub snapshot_id: String,
    pub instance: String,
    pub repository: String,
    pub blocks: usize,
    pub blocks_new: usize,
    pub blocks_reused: usize,
    /// Block bytes read and packed (reused blocks are not read).
    pub bytes_read: u64,
    /// Bytes uploaded: archives, or packs and recipes.
    pub bytes_uploaded: u64,
    /// Block bytes the repository held already, so not uploaded: whole
    /// blocks reused, and (format 2) window streams of new blocks that
    /// earlier snapshots stored.
    pub bytes_deduplicated: u64,
    /// Size of all the snapshot's blocks on disk.
    pub bytes_total: u64,
    /// bytes_read / bytes_uploaded for the new blocks.
    pub compression_ratio: Option<f64>,
    pub min_time: Option<i64>,
    pub max_time: Option<i64>,
    /// Configuration and rule files recorded with the snapshot.
    pub config_files: usize,
    /// Of those, files whose content the repository did not hold yet.
    pub config_files_new: usize,
    pub duration_seconds: f64,
}

enum Plan {
    Reuse(Box<BlockEntry>),
    Upload(Block),
}

/// A block this backup stored.
struct Uploaded {
    entry: BlockEntry,
    bytes_read: u64,
    bytes_uploaded: u64,
    bytes_deduplicated: u64,
}

/// Backs up `blocks`. The caller holds the repository's shared `lock` from
/// before this call until after it (see `lock.rs` for why).
pub async fn run(
    repo: &Repository,
    blocks: Vec<Block>,
    opts: BackupOptions,
    progress: Arc<dyn Progress>,
    lock: &RepoLock,
) -> Result<BackupReport> {
    let started = Instant::now();
    let bytes_total = blocks.iter().map(Block::total_size).sum();
    let group = opts.ha_group.as_deref().unwrap_or(&opts.instance);
    let plans = plan(repo, blocks, group).await?;
    let mut to_upload: Vec<Block> = plans
        .iter()
        .filter_map(|p| match p {
            Plan::Upload(b) => Some(b.clone()),
            Plan::Reuse(_) => None,
        })
        .collect();
    super::largest_first(&mut to_upload, Block::total_size);
    progress.set_total(to_upload.iter().map(Block::total_size).sum());
    // Format 2 looks up the windows the group's newest snapshot stored.
    let known = match (opts.format, to_upload.is_empty()) {
        (2, false) => Arc::new(leaves::of_newest(repo, group).await?),
        _ => Arc::new(LeafTable::new(windows::DEFAULT_WINDOW_MS)),
    };
    let uploaded: Vec<Uploaded> = futures::stream::iter(to_upload)
        .map(|block| {
            let (known, progress) = (known.clone(), progress.clone());
            async move {
                match opts.format {
                    1 => upload_block(repo, block, opts.pack, progress).await,
                    _ => store_block(repo, group, block, known, opts.pack, progress).await,
                }
            }
        })
        .buffer_unordered(opts.concurrency.max(1))
        .try_collect()
        .await?;
    let new_keys: HashSet<&str> = uploaded
        .iter()
        .map(|u| u.entry.object.key.as_str())
        .collect();
    let reused: Vec<BlockEntry> = plans
        .iter()
        .filter_map(|p| match p {
            Plan::Reuse(e) => Some((**e).clone()),
            Plan::Upload(_) => None,
        })
        .collect();
    let mut entries: Vec<BlockEntry> = reused
        .iter()
        .cloned()
        .chain(uploaded.iter().map(|u| u.entry.clone()))
        .collect();
    entries.sort_by(|a, b| (a.min_time, &a.ulid).cmp(&(b.min_time, &b.ulid)));
    let (config_files, config_files_new) = configfiles::store(repo, &opts.config_files).await?;

    // Format 1 while every block is an archive, so that older promsnap
    // versions still read it; format 2 once a recipe is referenced.
    let format_version = match entries.iter().any(BlockEntry::is_recipe) {
        true => FORMAT_VERSION,
        false => manifest::FORMAT_ARCHIVES,
    };
    let manifest = Manifest {
        format_version,
        id: manifest::new_id(opts.now),
        created: opts.now,
        instance: opts.instance,
        ha_group: opts.ha_group,
        promsnap_version: env!("CARGO_PKG_VERSION").to_string(),
        source: opts.source,
        blocks: entries,
        config_files,
    };
    // Only while our lock is valid may we reference the blocks we reused.
    lock.check()?;
    repo.write_manifest(&manifest).await?;

    let bytes_read: u64 = uploaded.iter().map(|u| u.bytes_read).sum();
    let bytes_uploaded: u64 = uploaded.iter().map(|u| u.bytes_uploaded).sum();
    let bytes_deduplicated: u64 = reused.iter().map(BlockEntry::data_size).sum::<u64>()
        + uploaded.iter().map(|u| u.bytes_deduplicated).sum::<u64>();
    Ok(BackupReport {
        snapshot_id: manifest.id.clone(),
        instance: manifest.instance.clone(),
        repository: repo.describe(),
        blocks: manifest.blocks.len(),
        blocks_new: new_keys.len(),
        blocks_reused: manifest.blocks.len() - new_keys.len(),
        bytes_read,
        bytes_uploaded,
        bytes_deduplicated,
        bytes_total,
        compression_ratio: (bytes_uploaded > 0).then(|| bytes_read as f64 / bytes_uploaded as f64),
        min_time: manifest.min_time(),
        max_time: manifest.max_time(),
        config_files: manifest.config_files.len(),
        config_files_new,
        duration_seconds: started.elapsed().as_secs_f64(),
    })
}

/// Decides, for every block, whether a stored copy can be reused: listed
/// in the newest manifest, or left complete by an interrupted run (an
/// archive with its entry, or a recipe in the group's data directory or,
/// from before groups, the legacy one).
async fn plan(repo: &Repository, blocks: Vec<Block>, group: &str) -> Result<Vec<Plan>> {
    let dir = DataDir::of_group(group);
    let listed = Listing::of(repo, &dir).await?;
    let known = newest_entries(repo, group).await?;
    let (dir, listed, known) = (&dir, &listed, &known);
    futures::stream::iter(blocks)
        .map(|block| async move {
            let ulid = block.ulid.to_string();
            let fp = block.fingerprint.clone();
            if let Some(entry) = known.get(&(ulid.clone(), fp.clone())) {
                // Never another group's data: its prune would not see this
                // snapshot (docs/FORMAT.md, "Layout").
                let foreign = DataDir::parse_recipe_key(&entry.object.key)
                    .is_some_and(|k| k.dir != DataDir::Legacy && k.dir != *dir);
                if !foreign && listed.exists(repo, &entry.object.key).await {
                    return Ok(Plan::Reuse(Box::new(entry.clone())));
                }
            }
            let object = manifest::block_object_key(&ulid, &fp)?;
            let entry_key = manifest::block_entry_key(&ulid, &fp)?;
            if listed.stored.contains(object.as_str()) && listed.stored.contains(entry_key.as_str())
            {
                if let Some(entry) = repo.load_block_entry(&ulid, &fp).await? {
                    return Ok(Plan::Reuse(Box::new(entry)));
                }
            }
            for d in [dir, &DataDir::Legacy] {
                let recipe = d.recipe_key(&ulid, &fp)?;
                if listed.exists(repo, recipe.as_str()).await {
                    if let Some(entry) = recipe_entry(repo, &block, &recipe).await {
                        return Ok(Plan::Reuse(Box::new(entry)));
                    }
                }
            }
            Ok(Plan::Upload(block))
        })
        .buffered(16)
        .try_collect()
        .await
}

/// The keys below `blocks/` and the group's `recipes/<g>/`, listed once;
/// a key elsewhere (a legacy recipe, which only the group's newest
/// manifest or an interrupted run of an earlier version can name) is
/// looked up alone, so that a backup never lists other groups' data.
struct Listing {
    prefixes: [String; 2],
    stored: HashSet<String>,
}

impl Listing {
    async fn of(repo: &Repository, dir: &DataDir) -> Result<Listing> {
        let prefixes = ["blocks/".to_string(), dir.recipe_prefix()];
        let mut stored = HashSet::new();
        for prefix in &prefixes {
            let listed = repo
                .storage()
                .list(prefix)
                .await
                .with_context(|| format!("could not list {prefix} in {}", repo.describe()))?;
            stored.extend(listed.into_iter().map(|o| o.key.as_str().to_string()));
        }
        Ok(Listing { prefixes, stored })
    }

    /// Whether `key` is stored. A look that fails only costs storing the
    /// block again.
    async fn exists(&self, repo: &Repository, key: &str) -> bool {
        if self.prefixes.iter().any(|p| key.starts_with(p.as_str())) {
            return self.stored.contains(key);
        }
        let Ok(key) = Key::new(key) else {
            return false;
        };
        matches!(repo.storage().head(&key).await, Ok(Some(_)))
    }
}

/// The entry of a recipe an interrupted run left, if it reads, is this
/// block version, and every pack it references is there, holding its
/// blobs' bytes. A recipe is written after every pack it references, so
/// it stands for a block stored whole, unless a prune has since deleted
/// packs only it used (prune keeps them while the recipe is within the
/// grace period, but a recipe can outlive that): then it is not reused,
/// and the block is stored again.
async fn recipe_entry(repo: &Repository, block: &Block, key: &Key) -> Option<BlockEntry> {
    let bytes = repo
        .storage()
        .get_bytes(key, recipe::MAX_RECIPE_BYTES)
        .await
        .ok()?;
    let recipe = Recipe::parse(&bytes).ok()?;
    if recipe.ulid != block.ulid.to_string() || recipe.fingerprint != block.fingerprint {
        return None;
    }
    let dir = DataDir::parse_recipe_key(key.as_str())?.dir;
    if !packs_hold(repo, &dir, &recipe).await {
        return None;
    }
    let object = ObjectRef {
        key: key.to_string(),
        size: bytes.len() as u64,
        sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
    };
    let stored = recipe.stored_bytes() + object.size;
    Some(recipe_block_entry(block, &recipe, object, stored, 0))
}

/// Whether every pack `recipe` (stored in `dir`) references exists and reaches past the end
/// of each of its blobs there. (Holding the shared lock, no prune deletes
/// one between this look and the manifest.)
async fn packs_hold(repo: &Repository, dir: &DataDir, recipe: &Recipe) -> bool {
    let mut ends: HashMap<ContentId, u64> = HashMap::new();
    for b in recipe.blobs() {
        let end = b.offset.saturating_add(u64::from(b.length));
        let e = ends.entry(b.pack).or_default();
        *e = (*e).max(end);
    }
    futures::stream::iter(ends)
        .map(|(pack, end)| async move {
            let found = repo.storage().head(&dir.pack_key(&pack)).await;
            matches!(found, Ok(Some(meta)) if meta.size >= end)
        })
        .buffer_unordered(16)
        .all(|ok| async move { ok })
        .await
}

/// A manifest's entry for a block stored as `recipe`: `stored` is what the
/// block takes in the repository, `new` what this backup uploaded for it.
fn recipe_block_entry(
    block: &Block,
    recipe: &Recipe,
    object: ObjectRef,
    stored: u64,
    new: u64,
) -> BlockEntry {
    BlockEntry {
        ulid: block.ulid.to_string(),
        min_time: block.meta.min_time,
        max_time: block.meta.max_time,
        compaction_level: block.meta.compaction.level,
        stats: block.meta.stats.clone(),
        fingerprint: block.fingerprint.clone(),
        object,
        files: recipe.files.clone(),
        bytes_stored: Some(stored),
        bytes_new: Some(new),
    }
}

/// Block entries of the group's newest snapshot, which is where nightly
/// backups find nearly all of their unchanged blocks with a single read.
async fn newest_entries(
    repo: &Repository,
    group: &str,
) -> Result<HashMap<(String, String), BlockEntry>> {
    let listed = repo.listed().await?;
    let Some(newest) = super::catalog::of_group(&listed, group).last().copied() else {
        return Ok(HashMap::new());
    };
    // A damaged newest manifest only costs a look at each block's entry.
    let Ok(manifest) = repo.read_manifest(newest).await? else {
        return Ok(HashMap::new());
    };
    // The newest of an earlier version's manifests may be another group's.
    if super::find::group_of(&manifest) != group {
        return Ok(HashMap::new());
    }
    Ok(manifest
        .blocks
        .into_iter()
        .map(|e| ((e.ulid.clone(), e.fingerprint.clone()), e))
        .collect())
}

/// Stores one block in format 2 (`store.rs`), then makes its entry.
async fn store_block(
    repo: &Repository,
    group: &str,
    block: Block,
    known: Arc<LeafTable>,
    pack: PackOptions,
    progress: Arc<dyn Progress>,
) -> Result<Uploaded> {
    let opts = StoreOptions {
        level: pack.level,
        threads: pack.threads as usize,
        ..StoreOptions::default()
    };
    let dir = DataDir::of_group(group);
    let stored = store::store_block(repo, &dir, &block, known, opts, progress).await?;
    Ok(Uploaded {
        entry: recipe_block_entry(
            &block,
            &stored.recipe,
            stored.object.clone(),
            stored.bytes_stored,
            stored.bytes_uploaded,
        ),
        bytes_read: stored.bytes_read,
        bytes_uploaded: stored.bytes_uploaded,
        bytes_deduplicated: stored.bytes_reused,
    })
}

/// Packs one block straight into an upload, then records its entry.
async fn upload_block(
    repo: &Repository,
    block: Block,
    pack: PackOptions,
    progress: Arc<dyn Progress>,
) -> Result<Uploaded> {
    let ulid = block.ulid.to_string();
    let key: Key = manifest::block_object_key(&ulid, &block.fingerprint)?;
    // Progress counts the block's bytes as the storage takes the archive
    // made of them (see `Body::reporting`): with --max-bandwidth the packer
    // runs ahead by the channel, and the bar must not.
    let (writer, body) = body::channel(2);
    let body = body.reporting(progress.clone());
    let packer = {
        let block = block.clone();
        tokio::task::spawn_blocking(move || archive::pack(&block, writer, pack))
    };
    let (stored, packed) = tokio::join!(repo.storage().put(&key, body), packer);
    let packed = packed.context("the packing thread failed")?;
    // When one side fails, the other only sees the channel close: report the
    // side that failed first.
    let (stored, packed) = match (stored, packed) {
        (Ok(s), Ok(p)) => (s, p),
        (_, Err(e)) if !UploadAbandoned::is_cause_of(&e) => {
            return Err(e.context(format!("could not back up block {ulid}")))
        }
        (Err(e), _) => return Err(e),
        (Ok(_), Err(e)) => return Err(e),
    };
    anyhow::ensure!(
        stored == packed.archive_size,
        "block {ulid}: stored {stored} bytes but packed {}",
        packed.archive_size
    );
    let entry = BlockEntry {
        ulid: ulid.clone(),
        min_time: block.meta.min_time,
        max_time: block.meta.max_time,
        compaction_level: block.meta.compaction.level,
        stats: block.meta.stats.clone(),
        fingerprint: block.fingerprint.clone(),
        object: ObjectRef {
            key: key.to_string(),
            size: packed.archive_size,
            sha256: packed.archive_sha256,
        },
        files: packed.files,
        bytes_stored: None,
        bytes_new: None,
    };
    repo.write_block_entry(&entry).await?;
    progress.note(&format!(
        "block {ulid} stored ({} bytes)",
        entry.object.size
    ));
    Ok(Uploaded {
        bytes_read: entry.data_size(),
        bytes_uploaded: entry.object.size,
        bytes_deduplicated: 0,
        entry,
    })
}
