//! The repository: what promsnap stores, where, and how it is read back.
//!
//! Layout below the repository root (a directory or `s3://bucket/prefix`):
//!
//! ```text
//! repository.json                        what makes it a repository (config.rs)
//! snapshots/<id>.json                    one manifest per snapshot, written last
//! blocks/<ULID>/<fingerprint>.tar.zst    one archive per block version
//! blocks/<ULID>/<fingerprint>.json       its block entry, written after the archive
//! configs/<sha256>                       a configuration or rule file, by content
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
pub mod config;
pub mod configfiles;
pub mod download;
pub mod find;
pub mod ha;
pub mod lock;
pub mod manifest;
pub mod prune;
pub mod restore;
pub mod retention;
pub mod selection;
pub mod verify;

use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use crate::error::Hinted;
use crate::storage::{BadObject, NotFound, Storage};
use manifest::{manifest_key, BlockEntry, Manifest, MAX_MANIFEST_BYTES};

/// How many small objects (manifests, entries) are fetched at once.
const METADATA_CONCURRENCY: usize = 16;

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

#[derive(Debug, Clone)]
pub struct Repository {
    storage: Arc<dyn Storage>,
    /// A format 1 repository without its config object: the first write
    /// adds one ([`Repository::adopt`]).
    legacy: bool,
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
        }
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
        let repo = Repository {
            storage,
            legacy: opened == Opened::Legacy,
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

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    pub fn describe(&self) -> String {
        self.storage.describe()
    }

    /// Ids of every complete snapshot, oldest first.
    pub async fn snapshot_ids(&self) -> Result<Vec<String>> {
        let objects = self
            .storage
            .list("snapshots/")
            .await
            .with_context(|| format!("could not list snapshots in {}", self.describe()))?;
        let mut ids: Vec<String> = objects
            .iter()
            .filter_map(|o| {
                o.key
                    .as_str()
                    .strip_prefix("snapshots/")?
                    .strip_suffix(".json")
            })
            .filter(|id| manifest::validate_id(id).is_ok())
            .map(str::to_string)
            .collect();
        ids.sort();
        Ok(ids)
    }

    pub async fn load_manifest(&self, id: &str) -> Result<Manifest> {
        let key = manifest_key(id)?;
        let invalid = |e: anyhow::Error| {
            e.context(Hinted::failure(
                format!("manifest {key} in {} is invalid", self.describe()),
                "it may be damaged or tampered with; `promsnap verify` checks the repository",
            ))
        };
        // Capped while it is read: a manifest of gigabytes costs no more
        // than the cap, and is damage like any other invalid manifest.
        let bytes = match self.storage.get_bytes(&key, MAX_MANIFEST_BYTES).await {
            Ok(bytes) => bytes,
            Err(e) if e.downcast_ref::<BadObject>().is_some() => return Err(invalid(e)),
            Err(e) => return Err(e),
        };
        let manifest = Manifest::parse(&bytes).map_err(invalid)?;
        if manifest.id != id {
            return Err(Hinted::failure(
                format!("manifest {key} claims to be snapshot {}", manifest.id),
                "it may have been renamed or tampered with",
            )
            .into());
        }
        Ok(manifest)
    }

    /// Every manifest, oldest first (by creation time, then id).
    pub async fn manifests(&self) -> Result<Vec<Manifest>> {
        let ids = self.snapshot_ids().await?;
        let mut all: Vec<Manifest> = futures::stream::iter(ids)
            .map(|id| async move { self.load_manifest(&id).await })
            .buffer_unordered(METADATA_CONCURRENCY)
            .try_collect()
            .await?;
        all.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(all)
    }

    /// Finds the snapshot named by `spec`: `latest`, an id, or a unique id
    /// prefix; `instance` narrows the choice to one instance or HA group
    /// (see `find.rs` for the rules that keep it from taking another
    /// server's snapshot).
    pub async fn resolve(&self, spec: &str, instance: Option<&str>) -> Result<Manifest> {
        let all = self.manifests().await?;
        find::find(&all, spec, instance, &self.describe()).cloned()
    }

    /// Writes a manifest: from this moment the snapshot exists.
    pub async fn write_manifest(&self, m: &Manifest) -> Result<()> {
        m.validate()?;
        let key = manifest_key(&m.id)?;
        self.storage
            .put_bytes(&key, Bytes::from(m.to_json()))
            .await
            .with_context(|| format!("could not write manifest {key}"))?;
        Ok(())
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
