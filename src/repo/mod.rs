//! The repository: what promsnap stores, where, and how it is read back.
//!
//! Layout below the repository root (a directory or `s3://bucket/prefix`):
//!
//! ```text
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
pub mod configfiles;
pub mod download;
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
}

impl Repository {
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Repository { storage }
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
    /// prefix; `instance` narrows `latest` and prefixes to one instance.
    pub async fn resolve(&self, spec: &str, instance: Option<&str>) -> Result<Manifest> {
        let all = self.manifests().await?;
        let candidates: Vec<&Manifest> = all
            .iter()
            .filter(|m| {
                instance.is_none_or(|i| m.instance == i || m.ha_group.as_deref() == Some(i))
            })
            .collect();
        let found: Vec<&Manifest> = if spec == "latest" {
            candidates.last().into_iter().copied().collect()
        } else if let Some(exact) = candidates.iter().find(|m| m.id == spec) {
            vec![*exact]
        } else {
            candidates
                .into_iter()
                .filter(|m| m.id.starts_with(spec))
                .collect()
        };
        match found.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Hinted::usage(
                match (spec, instance) {
                    ("latest", Some(i)) => {
                        format!("{} has no snapshot of instance {i:?}", self.describe())
                    }
                    ("latest", None) => format!("{} has no snapshots yet", self.describe()),
                    _ => format!("no snapshot {spec:?} in {}", self.describe()),
                },
                "`promsnap list` shows the snapshots in a repository",
            )
            .into()),
            many => Err(Hinted::usage(
                format!("{spec:?} matches {} snapshots", many.len()),
                "give more characters of the snapshot id",
            )
            .into()),
        }
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
