//! Recipes: how to rebuild one block version of repository format 2.
//!
//! A recipe is a JSON object `recipes/<g>/<ULID>/<fingerprint>.json` (keys:
//! `datadir.rs`), written
//! after every pack it references and before the manifest that references
//! it (docs/FORMAT.md, "Recipes"). It lists the block's files with their
//! sizes and SHA-256 sums (the restore's final check), the blobs of
//! `meta.json`, `tombstones` and the index, and how the chunk segment files
//! come back: from one stream per time window (`windows`, the layout that
//! lets compacted blocks share their parents' data) or, for a block whose
//! chunk files do not follow its index, from one stream per file (`files`).
//!
//! A recipe comes from storage and is trusted for nothing: [`Recipe::parse`]
//! checks every name, count and length against every other before anything
//! is used, with sums that cannot overflow, so that a rebuild driven by a
//! validated recipe can only fail on what it reads, never be steered into
//! writing more or elsewhere than the recipe's files promise.

use std::collections::{BTreeMap, HashSet};

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};

use super::content_id::ContentId;
use super::datadir::DataDir;
use super::manifest::FileEntry;
use super::pack::BlobRef;
use crate::tsdb::windows::{SegmentLayout, WindowLayout, WindowTotals, MAX_WINDOWS};
use crate::tsdb::{self, BlockStats};

/// The recipe format this version writes.
pub const RECIPE_VERSION: u32 = 2;

/// The largest recipe read or written: a recipe lists about 160 bytes per
/// blob, so this is room for a block of some 400 GiB of chunk data in
/// 256 KiB window blobs (64 MiB before window blobs were cut at 256 KiB).
pub const MAX_RECIPE_BYTES: u64 = 256 * 1024 * 1024;

/// The largest blob a recipe may reference, uncompressed. Writers cut at
/// 1 MiB; the slack allows a single record larger than that.
pub const MAX_BLOB_RAW: u32 = 4 << 20;

/// Whether `key` is a recipe key of this block version, in any data
/// directory: the key a backup writes, or one prune wrote
/// ([`DataDir::repacked_recipe_key`](super::datadir::DataDir::repacked_recipe_key)).
pub fn is_key_of(key: &str, ulid: &str, fingerprint: &str) -> bool {
    DataDir::parse_recipe_key(key).is_some_and(|k| k.ulid == ulid && k.fingerprint == fingerprint)
}

/// How one block version is rebuilt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipe {
    pub format_version: u32,
    pub ulid: String,
    pub fingerprint: String,
    pub min_time: i64,
    pub max_time: i64,
    pub compaction_level: u32,
    pub stats: BlockStats,
    /// Every file of the block, with its size and SHA-256.
    pub files: Vec<FileEntry>,
    /// The files stored whole: `meta.json`, `tombstones` and any other
    /// file at the block's top level except the index, each the
    /// concatenation of its blobs.
    pub small: BTreeMap<String, Vec<BlobRef>>,
    /// The index, the concatenation of these blobs.
    pub index: Vec<BlobRef>,
    pub chunks: Chunks,
}

/// How the chunk segment files come back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunks {
    pub layout: ChunkLayout,
    /// The window length (ms) of the `windows` layout; 0 with `files`.
    pub window_ms: i64,
    /// Chunk records in all segment files (`windows`; 0 with `files`).
    pub records: u64,
    /// Every segment file, in order (`chunks/000001` first).
    pub segments: Vec<Segment>,
    /// `windows`: one leaf per window holding chunks, by ascending start.
    /// `files`: one leaf per segment file, in the same order.
    pub leaves: Vec<Leaf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChunkLayout {
    Windows,
    Files,
}

/// One chunk segment file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub path: String,
    pub size: u64,
    /// Its 8-byte header, as 16 hex digits.
    pub header: String,
}

/// One stored stream of chunk data: a window stream, or a whole segment file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leaf {
    /// The window's first millisecond (`windows`); 0 with `files`.
    pub start: i64,
    /// Chunk records in the stream (`windows`); 0 with `files`.
    pub records: u64,
    /// The stream's length.
    pub bytes: u64,
    /// The stream's content id (the repository's hash; `sha256` in recipes
    /// written before `hash`): what a later block's window must hash to, to
    /// reuse this leaf. With `files`, the file's SHA-256, as in `files`.
    #[serde(rename = "hash", alias = "sha256")]
    pub hash: ContentId,
    pub blobs: Vec<BlobRef>,
}

impl Recipe {
    /// Parses and checks a recipe read from a repository (at most
    /// [`MAX_RECIPE_BYTES`], which the caller enforces while reading).
    pub fn parse(bytes: &[u8]) -> Result<Recipe> {
        let recipe: Recipe = serde_json::from_slice(bytes).context("not a promsnap recipe")?;
        recipe.validate()?;
        Ok(recipe)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("recipes serialize")
    }

    /// Every check that makes a rebuild from this recipe safe (module docs).
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.format_version == RECIPE_VERSION,
            "recipe format {} is not {RECIPE_VERSION}",
            self.format_version
        );
        ensure!(
            tsdb::parse_ulid(&self.ulid).is_some(),
            "block name {:?} is not a ULID",
            self.ulid
        );
        ensure!(
            self.fingerprint.len() == 32 && self.fingerprint.bytes().all(|b| b.is_ascii_hexdigit()),
            "block {} has a malformed fingerprint",
            self.ulid
        );
        let mut sizes: BTreeMap<&str, u64> = BTreeMap::new();
        for f in &self.files {
            tsdb::validate_file_path(&f.path).with_context(|| format!("in block {}", self.ulid))?;
            ensure!(
                f.sha256.len() == 64 && f.sha256.bytes().all(|b| b.is_ascii_hexdigit()),
                "{}/{} has a malformed SHA-256",
                self.ulid,
                f.path
            );
            ensure!(
                sizes.insert(&f.path, f.size).is_none(),
                "block {} lists {} twice",
                self.ulid,
                f.path
            );
        }
        ensure!(
            sizes.contains_key("meta.json"),
            "block {} has no meta.json",
            self.ulid
        );
        ensure!(
            sizes.contains_key("index"),
            "block {} has no index",
            self.ulid
        );
        // Every file comes from exactly one place: a small file, the index,
        // or a segment.
        let mut covered: HashSet<&str> = HashSet::new();
        for (name, blobs) in &self.small {
            ensure!(
                name != "index" && !name.contains('/'),
                "block {}: {name:?} is not a file stored whole",
                self.ulid
            );
            let size = *sizes
                .get(name.as_str())
                .with_context(|| format!("block {}: {name} is not among its files", self.ulid))?;
            ensure!(
                stream_length(blobs)? == size,
                "block {}: the blobs of {name} do not add up to its {size} bytes",
                self.ulid
            );
            covered.insert(name);
        }
        ensure!(
            stream_length(&self.index)? == sizes["index"],
            "block {}: the index blobs do not add up to its {} bytes",
            self.ulid,
            sizes["index"]
        );
        covered.insert("index");
        self.validate_chunks(&sizes, &mut covered)?;
        for path in sizes.keys() {
            ensure!(
                covered.contains(path),
                "block {}: nothing in the recipe rebuilds {path}",
                self.ulid
            );
        }
        Ok(())
    }

    fn validate_chunks<'a>(
        &'a self,
        sizes: &BTreeMap<&str, u64>,
        covered: &mut HashSet<&'a str>,
    ) -> Result<()> {
        let c = &self.chunks;
        for (i, s) in c.segments.iter().enumerate() {
            match c.layout {
                // Rebuilt by the index's references: exactly 000001, ...
                ChunkLayout::Windows => {
                    let expected = tsdb::segment::segment_path(i as u64);
                    ensure!(
                        s.path == expected,
                        "block {}: segment {i} is {:?}, expected {expected}",
                        self.ulid,
                        s.path
                    );
                }
                // Stored as they are: any file below chunks/.
                ChunkLayout::Files => ensure!(
                    s.path.starts_with("chunks/") && !covered.contains(s.path.as_str()),
                    "block {}: {:?} is not a new file below chunks/",
                    self.ulid,
                    s.path
                ),
            }
            ensure!(
                sizes.get(s.path.as_str()) == Some(&s.size),
                "block {}: {} is not among its files with {} bytes",
                self.ulid,
                s.path,
                s.size
            );
            if c.layout == ChunkLayout::Windows {
                ensure!(
                    s.size >= tsdb::segment::SEGMENT_HEADER_LEN,
                    "block {}: {} is shorter than a segment header",
                    self.ulid,
                    s.path
                );
                header_bytes(&s.header)
                    .with_context(|| format!("block {}: {}", self.ulid, s.path))?;
            }
            covered.insert(&s.path);
        }
        match c.layout {
            ChunkLayout::Files => {
                ensure!(
                    c.leaves.len() == c.segments.len(),
                    "block {}: {} leaves for {} segment files",
                    self.ulid,
                    c.leaves.len(),
                    c.segments.len()
                );
                for (leaf, s) in c.leaves.iter().zip(&c.segments) {
                    ensure!(
                        leaf.bytes == s.size && stream_length(&leaf.blobs)? == s.size,
                        "block {}: the leaf of {} does not hold its {} bytes",
                        self.ulid,
                        s.path,
                        s.size
                    );
                }
            }
            ChunkLayout::Windows => {
                self.layout()?;
                for leaf in &c.leaves {
                    ensure!(
                        stream_length(&leaf.blobs)? == leaf.bytes,
                        "block {}: the blobs of window {} do not add up to its {} bytes",
                        self.ulid,
                        leaf.start,
                        leaf.bytes
                    );
                }
            }
        }
        Ok(())
    }

    /// The layout `tsdb::windows::join` rebuilds the segment files from
    /// (`windows` recipes), checked for consistency: windows ascending and
    /// aligned, at most [`MAX_WINDOWS`], the streams' lengths adding up to
    /// the segment files' without their headers, the records to the total.
    pub fn layout(&self) -> Result<WindowLayout> {
        let c = &self.chunks;
        ensure!(
            c.layout == ChunkLayout::Windows,
            "block {} is stored as files, not windows",
            self.ulid
        );
        ensure!(
            c.window_ms > 0,
            "block {}: window length {}",
            self.ulid,
            c.window_ms
        );
        ensure!(
            c.leaves.len() <= MAX_WINDOWS,
            "block {}: {} windows, more than {MAX_WINDOWS}",
            self.ulid,
            c.leaves.len()
        );
        let sha: BTreeMap<&str, &str> = self
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.sha256.as_str()))
            .collect();
        let mut segments = Vec::with_capacity(c.segments.len());
        let mut content: u64 = 0;
        for s in &c.segments {
            let mut sum = [0u8; 32];
            hex::decode_to_slice(sha[s.path.as_str()], &mut sum).context("a malformed SHA-256")?;
            segments.push(SegmentLayout {
                path: s.path.clone(),
                size: s.size,
                header: header_bytes(&s.header)?,
                sha256: sum,
            });
            content = checked(content, s.size - tsdb::segment::SEGMENT_HEADER_LEN)?;
        }
        let mut windows = Vec::with_capacity(c.leaves.len());
        let (mut bytes, mut records) = (0u64, 0u64);
        let mut previous: Option<i64> = None;
        for leaf in &c.leaves {
            ensure!(
                leaf.start.rem_euclid(c.window_ms) == 0,
                "block {}: window {} is not aligned to {} ms",
                self.ulid,
                leaf.start,
                c.window_ms
            );
            ensure!(
                previous.is_none_or(|p| leaf.start > p),
                "block {}: windows are not in ascending order",
                self.ulid
            );
            previous = Some(leaf.start);
            bytes = checked(bytes, leaf.bytes)?;
            records = checked(records, leaf.records)?;
            windows.push(WindowTotals {
                start: leaf.start,
                records: leaf.records,
                bytes: leaf.bytes,
            });
        }
        ensure!(
            bytes == content,
            "block {}: the window streams hold {bytes} bytes, the segment files {content}",
            self.ulid
        );
        ensure!(
            records == c.records,
            "block {}: the windows hold {records} records, the recipe says {}",
            self.ulid,
            c.records
        );
        Ok(WindowLayout {
            window_ms: c.window_ms,
            segments,
            records,
            windows,
        })
    }

    /// Bytes of every blob this recipe references (what it costs to store).
    pub fn stored_bytes(&self) -> u64 {
        self.blobs().map(|b| u64::from(b.length)).sum()
    }

    /// Every blob this recipe references.
    pub fn blobs(&self) -> impl Iterator<Item = &BlobRef> {
        self.small
            .values()
            .flatten()
            .chain(&self.index)
            .chain(self.chunks.leaves.iter().flat_map(|l| &l.blobs))
    }

    /// The file entry of `path`.
    pub fn file(&self, path: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.path == path)
    }
}

/// The length of the stream made of `blobs`, refusing blobs that are empty,
/// larger than [`MAX_BLOB_RAW`], or add up past `u64`.
fn stream_length(blobs: &[BlobRef]) -> Result<u64> {
    let mut total: u64 = 0;
    for b in blobs {
        if b.length == 0 || b.raw_length == 0 || b.raw_length > MAX_BLOB_RAW {
            bail!(
                "blob {} has {} stored and {} raw bytes (at most {MAX_BLOB_RAW}, never 0)",
                b.id,
                b.length,
                b.raw_length
            );
        }
        total = checked(total, u64::from(b.raw_length))?;
    }
    Ok(total)
}

fn checked(a: u64, b: u64) -> Result<u64> {
    a.checked_add(b).context("lengths that overflow")
}

fn header_bytes(hex_text: &str) -> Result<[u8; 8]> {
    let mut header = [0u8; 8];
    hex::decode_to_slice(hex_text, &mut header)
        .with_context(|| format!("segment header {hex_text:?} is not 16 hex digits"))?;
    Ok(header)
}

#[cfg(test)]
mod key_tests {
    use super::*;

    #[test]
    fn a_leaf_writes_its_hash_as_hash_and_reads_the_older_sha256() {
        let id = "ab".repeat(32);
        let older =
            format!(r#"{{"start": 0, "records": 1, "bytes": 9, "sha256": "{id}", "blobs": []}}"#);
        let leaf: Leaf = serde_json::from_str(&older).unwrap();
        assert_eq!(leaf.hash.to_hex(), id);
        let json = serde_json::to_value(&leaf).unwrap();
        assert_eq!(json["hash"], id.as_str());
        assert!(json.get("sha256").is_none(), "{json}");
        assert_eq!(serde_json::from_value::<Leaf>(json).unwrap(), leaf);
    }

    #[test]
    fn a_repacked_recipe_key_belongs_to_its_block_version_only() {
        let (ulid, fp) = ("01KATC6D8W3Y8R2Q9GZP7E5V4M", "0f".repeat(16));
        let dir = DataDir::of_group("prom-a");
        let plain = dir.recipe_key(ulid, &fp).unwrap();
        let repacked = dir.repacked_recipe_key(ulid, &fp, b"{}").unwrap();
        let legacy = DataDir::Legacy.recipe_key(ulid, &fp).unwrap();
        assert_ne!(plain, repacked);
        assert_eq!(repacked, dir.repacked_recipe_key(ulid, &fp, b"{}").unwrap());
        for k in [&plain, &repacked, &legacy] {
            assert!(is_key_of(k.as_str(), ulid, &fp), "{k}");
            assert!(!is_key_of(k.as_str(), ulid, &"1f".repeat(16)), "{k}");
            assert!(!is_key_of(k.as_str(), "01KATC6D8W3Y8R2Q9GZP7E5V4N", &fp));
        }
        for bad in [
            format!("recipes/{ulid}/{fp}-.json"),
            format!("recipes/{ulid}/{fp}-0123456789ABCDEF.json"),
            format!("recipes/{ulid}/{fp}-0123456789abcdef0.json"),
            format!("recipes/{ulid}/{fp}.tar.zst"),
            format!("blocks/{ulid}/{fp}.json"),
        ] {
            assert!(!is_key_of(&bad, ulid, &fp), "{bad}");
        }
    }
}
