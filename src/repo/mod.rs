//! The repository: what promsnap stores, where, and how it is read back.
//!
//! Layout below the repository root (a directory or `s3://bucket/prefix`;
//! docs/FORMAT.md is the full description):
//!
//! ```text
//! repository.json                        what makes it a repository (config.rs)
//! snapshots/<group>/<id>.json            one manifest per snapshot, written last (catalog.rs)
//! snapshots/<id>.json                    manifests of earlier versions
//! recipes/<group>/<ULID>/<fp>.json       format 2: how to rebuild a block version (recipe.rs)
//! packs/<group>/<2 hex>/<64 hex>         format 2: blobs packed together (pack/, blob.rs)
//! recipes/<ULID>/<fp>.json, packs/<2 hex>/<64 hex>   the same, before groups (datadir.rs)
//! blocks/<ULID>/<fingerprint>.tar.zst    format 1: one archive per block version
//! blocks/<ULID>/<fingerprint>.json       its block entry, written after the archive
//! configs/<sha256>                       a configuration or rule file, by content
//! instances/<instance>.json              which HA groups a replica's snapshots are in
//! locks/<id>.json                        who is using the repository (lock.rs)
//! ```
//!
//! A block is stored once per *version* (its [fingerprint](crate::tsdb::fingerprint)),
//! so nightly snapshots share every block that did not change, and a block
//! whose tombstones changed gets a new object without touching the old one,
//! which older snapshots still reference.
//!
//! The order of writes is what makes a crash harmless: archive, then its
//! entry, then (after every block) the manifest. A crash before the manifest
//! leaves objects that no snapshot references; the next backup finds their
//! entries and reuses them instead of uploading again.

pub mod backup;
pub mod blob;
pub mod catalog;
pub mod config;
pub mod configfiles;
pub mod content_id;
pub mod cutter;
pub mod datadir;
pub mod download;
pub mod find;
pub mod ha;
pub mod leaves;
pub mod lock;
pub mod manifest;
pub mod pack;
pub mod prune;
pub mod rebuild;
pub mod recipe;
pub mod repack;
pub mod restore;
pub mod retention;
pub mod selection;
pub mod store;
pub mod verify;

use std::sync::Arc;

use anyhow::Result;
use bytes::Bytes;

use crate::error::Hinted;
use crate::storage::{BadObject, NotFound, Storage};
use manifest::{BlockEntry, Manifest, MAX_MANIFEST_BYTES};

/// How many small objects (manifests, entries) are fetched at once.
pub(crate) const METADATA_CONCURRENCY: usize = 16;

/// Orders block work largest first.
///
/// Backup, restore and verify run N blocks at a time, and one block is one
/// zstd stream on one core. A TSDB's bytes sit mostly in a few large
/// compacted blocks, which sort first by time but not by ULID (compaction
/// gives them new ones): started last, the largest block runs alone while
/// the other cores idle, and the whole job takes as long as the small blocks
/// plus the large one. Started first, the small blocks fill the other slots
/// around it (longest processing time first, the classic schedule).
pub fn largest_first<T>(items: &mut [T], size: impl Fn(&T) -> u64) {
    items.sort_by_key(|item| std::cmp::Reverse(size(item)));
}

/// Blocks handled at the same time when the work is CPU-bound (decompressing
/// in restore and `verify --deep`): one per core, at least 4 (downloads also
/// wait on the network) and at most 16 (each holds a few MiB of buffers).
pub fn cpu_concurrency() -> usize {
    std::thread::available_parallelism().map_or(4, |n| n.get().clamp(4, 16))
}

/// A manifest that could not be read as one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DamagedManifest {
    /// The snapshot id its key names.
    pub id: String,
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

/// What [`Repository::catalog`] found.
#[derive(Debug, Default)]
pub struct Catalog {
    /// The manifests that read, oldest first.
    pub manifests: Vec<Manifest>,
    /// The ones that did not, by id.
    pub damaged: Vec<DamagedManifest>,
    /// Where each readable manifest is, by id (for prune, which deletes them).
    pub keys: catalog::Keys,
}

#[derive(Debug, Clone)]
pub struct Repository {
    storage: Arc<dyn Storage>,
    /// A format 1 repository without its config object: the first write
    /// adds one ([`Repository::adopt`]).
    legacy: bool,
    /// The hash that names content here (the config's `content_ids`).
    ids: content_id::IdHash,
}

/// What opening a location found (see `config.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// A repository with its config object.
    Existing(config::RepoConfig),
    /// A format 1 repository from before config objects.
    Legacy,
    /// A new repository, just initialised (`backup --init`).
    Created(config::RepoConfig),
}

impl Repository {
    /// A repository on `storage`, taken as it is (tests, and code that has
    /// already opened it).
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Repository {
            storage,
            legacy: false,
            ids: content_id::IdHash::NEW,
        }
    }

    /// This repository naming content with `ids` (tests of repositories
    /// made before BLAKE3).
    #[cfg(test)]
    pub fn with_ids(mut self, ids: content_id::IdHash) -> Self {
        self.ids = ids;
        self
    }

    /// Opens the repository at `storage` (`url` is how the user named it).
    /// A location without one is a usage error (a typo must not look like
    /// an empty repository) unless `create`, which initialises it;
    /// `for_backup` picks the hint.
    pub async fn open(
        storage: Arc<dyn Storage>,
        url: &str,
        create: bool,
        for_backup: bool,
    ) -> Result<(Repository, Opened)> {
        let opened = match config::find(storage.as_ref()).await? {
            config::Found::Repository(c) => Opened::Existing(c),
            config::Found::Legacy => Opened::Legacy,
            config::Found::Nothing if create => {
                let c = config::RepoConfig::new(chrono::Utc::now());
                config::write(storage.as_ref(), &c).await?;
                Opened::Created(c)
            }
            config::Found::Nothing => {
                return Err(config::no_repository(&storage.describe(), url, for_backup))
            }
        };
        let ids = match &opened {
            Opened::Existing(c) | Opened::Created(c) => c.ids(),
            // What the config object written by the first write will say.
            Opened::Legacy => content_id::IdHash::NEW,
        };
        let repo = Repository {
            storage,
            legacy: opened == Opened::Legacy,
            ids,
        };
        Ok((repo, opened))
    }

    /// Creates a new repository (`promsnap init`) and returns its config,
    /// and whether it adopted a format 1 repository that had no config
    /// object yet. A location that already holds a repository is refused.
    pub async fn init(storage: &dyn Storage) -> Result<(config::RepoConfig, bool)> {
        let location = storage.describe();
        let found = config::find(storage).await?;
        if let config::Found::Repository(c) = found {
            return Err(Hinted::usage(
                format!(
                    "{location} is already a promsnap repository (id {}, format {})",
                    c.id, c.format_version
                ),
                "use it as it is; `promsnap list` shows what it holds",
            )
            .into());
        }
        let c = config::RepoConfig::new(chrono::Utc::now());
        config::write(storage, &c).await?;
        Ok((c, found == config::Found::Legacy))
    }

    /// Writes the config object of a format 1 repository that has none, so
    /// that it is recognised as a repository from now on. Called by the
    /// commands that write (backup, prune) before their first write.
    pub async fn adopt(&mut self) -> Result<()> {
        if self.legacy {
            config::write(
                self.storage.as_ref(),
                &config::RepoConfig::new(chrono::Utc::now()),
            )
            .await?;
            self.legacy = false;
        }
        Ok(())
    }

    /// The hash that names blobs, window streams and packs here.
    pub fn ids(&self) -> content_id::IdHash {
        self.ids
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The same repository, with every byte read from it counted
    /// (`storage::metered`): what a command downloads, for its report.
    pub fn counting_downloads(&self) -> (Repository, Arc<std::sync::atomic::AtomicU64>) {
        let metered = crate::storage::metered::Metered::new(self.storage.clone());
        let downloaded = metered.downloaded();
        let repo = Repository {
            storage: Arc::new(metered),
            ..self.clone()
        };
        (repo, downloaded)
    }

    pub fn describe(&self) -> String {
        self.storage.describe()
    }

    /// The recipe a format 2 block entry names, read (at most
    /// [`recipe::MAX_RECIPE_BYTES`]) and checked: its size and SHA-256 are
    /// the entry's, it is the same block version, and it lists the same
    /// files.
    pub async fn load_recipe(&self, entry: &BlockEntry) -> Result<recipe::Recipe> {
        let key = crate::storage::Key::new(entry.object.key.clone())?;
        let damaged = |why: String| -> anyhow::Error {
            Hinted::failure(
                format!("recipe {key} in {} is invalid: {why}", self.describe()),
                "it is damaged or was tampered with; `promsnap verify` checks the repository",
            )
            .into()
        };
        let limit = entry.object.size.min(recipe::MAX_RECIPE_BYTES);
        let bytes = match self.storage.get_bytes(&key, limit).await {
            Ok(b) => b,
            Err(e) if e.downcast_ref::<BadObject>().is_some() => {
                return Err(damaged(format!("{e:#}")))
            }
            Err(e) => return Err(e),
        };
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        if bytes.len() as u64 != entry.object.size || sha != entry.object.sha256 {
            return Err(damaged(format!(
                "expected {} bytes with SHA-256 {}, found {} bytes with SHA-256 {sha}",
                entry.object.size,
                entry.object.sha256,
                bytes.len()
            )));
        }
        let recipe = recipe::Recipe::parse(&bytes).map_err(|e| damaged(format!("{e:#}")))?;
        if recipe.ulid != entry.ulid
            || recipe.fingerprint != entry.fingerprint
            || recipe.files != entry.files
        {
            return Err(damaged(
                "it describes another block version than the manifest".into(),
            ));
        }
        Ok(recipe)
    }

    /// The stored entry for a block version, if its archive was completed.
    pub async fn load_block_entry(
        &self,
        ulid: &str,
        fingerprint: &str,
    ) -> Result<Option<BlockEntry>> {
        let key = manifest::block_entry_key(ulid, fingerprint)?;
        // A damaged entry only costs a re-upload, never a wrong reuse; one
        // too large to be an entry (or not a file) is damaged.
        let bytes = match self.storage.get_bytes(&key, MAX_MANIFEST_BYTES).await {
            Ok(b) => b,
            Err(e) if e.downcast_ref::<NotFound>().is_some() => return Ok(None),
            Err(e) if e.downcast_ref::<BadObject>().is_some() => return Ok(None),
            Err(e) => return Err(e),
        };
        match serde_json::from_slice::<BlockEntry>(&bytes) {
            Ok(entry) if entry.validate().is_ok() && entry.fingerprint == fingerprint => {
                Ok(Some(entry))
            }
            _ => Ok(None),
        }
    }

    pub async fn write_block_entry(&self, entry: &BlockEntry) -> Result<()> {
        let key = manifest::block_entry_key(&entry.ulid, &entry.fingerprint)?;
        let json = serde_json::to_vec_pretty(entry).expect("entries serialize");
        self.storage.put_bytes(&key, Bytes::from(json)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod schedule_tests {
    use super::*;

    #[test]
    fn the_largest_block_starts_first() {
        // ULID order puts the big compacted block last; work order must not.
        let mut sizes = vec![5, 17, 50, 49, 347, 446, 6];
        largest_first(&mut sizes, |s| *s);
        assert_eq!(sizes, [446, 347, 50, 49, 17, 6, 5]);
    }
}
