//! The leaf table: which window streams the repository already holds, so
//! that a backup references them instead of uploading them again.
//!
//! Prometheus compacts the blocks of the last days into larger ones every
//! few hours; the windows of a compacted block are the windows its sources
//! had, byte for byte (docs/FORMAT.md, "Why"). The snapshot before this one
//! of the same Prometheus held those sources, so its recipes' leaves are
//! what a backup looks up, by window start: a window with no leaf there is
//! new data (uploaded while it is read), one with a leaf is only hashed,
//! and referenced when its SHA-256, length and record count match.
//!
//! Memory: one entry per leaf of that snapshot (a few hundred for a month
//! of 2 h windows), each with its blob references (about 80 bytes per MiB
//! of stored chunk data).

use std::collections::HashMap;

use anyhow::Result;
use futures::StreamExt;

use super::content_id::ContentId;
use super::datadir::DataDir;
use super::manifest::BlockEntry;
use super::recipe::{ChunkLayout, Leaf, Recipe};
use super::Repository;
use super::{catalog, find};
use crate::tsdb::windows::DEFAULT_WINDOW_MS;

/// Stored leaves by window start.
#[derive(Debug, Default)]
pub struct LeafTable {
    window_ms: i64,
    by_start: HashMap<i64, Vec<Leaf>>,
}

impl LeafTable {
    /// An empty table for windows of `window_ms`.
    pub fn new(window_ms: i64) -> LeafTable {
        LeafTable {
            window_ms,
            by_start: HashMap::new(),
        }
    }

    /// Adds the leaves of a recipe cut with the same windows.
    pub fn add(&mut self, recipe: &Recipe) {
        let c = &recipe.chunks;
        if c.layout != ChunkLayout::Windows || c.window_ms != self.window_ms {
            return;
        }
        for leaf in &c.leaves {
            let known = self.by_start.entry(leaf.start).or_default();
            if !known.iter().any(|k| k.hash == leaf.hash) {
                known.push(leaf.clone());
            }
        }
    }

    /// Whether some stored leaf starts at `start`.
    pub fn has_window(&self, start: i64) -> bool {
        self.by_start.contains_key(&start)
    }

    /// The stored leaf with exactly this stream, if any.
    pub fn find(&self, start: i64, sha: &ContentId, bytes: u64, records: u64) -> Option<&Leaf> {
        self.by_start
            .get(&start)?
            .iter()
            .find(|l| l.hash == *sha && l.bytes == bytes && l.records == records)
    }

    /// How many leaves it holds.
    pub fn len(&self) -> usize {
        self.by_start.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_start.is_empty()
    }
}

/// The leaves of the newest snapshot of `group` (an HA group, else the
/// instance) that was stored in format 2.
pub async fn of_newest(repo: &Repository, group: &str) -> Result<LeafTable> {
    let mut table = LeafTable::new(DEFAULT_WINDOW_MS);
    // Only the recipes of the group's own data directory count: a new
    // recipe references only packs of its directory (so a group's first
    // backup after groups came stores its windows anew).
    let dir = DataDir::of_group(group);
    let ours =
        |b: &&BlockEntry| DataDir::parse_recipe_key(&b.object.key).is_some_and(|k| k.dir == dir);
    // Newest first, read one at a time: nearly always the first one.
    let listed = repo.listed().await?;
    let mut newest = None;
    // Manifests of earlier versions (`snapshots/<id>.json`) name only
    // legacy recipes: not read.
    let grouped = catalog::of_group(&listed, group)
        .into_iter()
        .filter(|l| l.dir.is_some());
    for l in grouped.rev() {
        let Ok(m) = repo.read_manifest(l).await? else {
            continue;
        };
        if find::group_of(&m) == group && m.blocks.iter().any(|b| ours(&b)) {
            newest = Some(m);
            break;
        }
    }
    let Some(newest) = newest else {
        return Ok(table);
    };
    // A recipe that cannot be read only costs its leaves' reuse.
    let recipes: Vec<Recipe> = futures::stream::iter(newest.blocks.iter().filter(ours))
        .map(|b| async move { repo.load_recipe(b).await.ok() })
        .buffer_unordered(8)
        .filter_map(|r| async move { r })
        .collect()
        .await;
    for r in &recipes {
        table.add(r);
    }
    Ok(table)
}
