//! Repacking: reclaiming the space that pruned snapshots held inside packs
//! that kept snapshots still use.
//!
//! A pack holds the blobs of many blocks, so after a prune some of its blobs
//! may be referenced by no kept recipe while others still are: the pack
//! cannot go, and its unused blobs cost storage for ever. Prune measures
//! each pack's unused share, without reading it: a pack whose blobs are all
//! used is exactly its used blobs, their header entries and the trailer, so
//! whatever its size exceeds that by is unused. A pack whose unused share
//! is above `--max-unused` is repacked (docs/FORMAT.md, "Prune and repack").
//!
//! The order keeps every crash harmless, and runs entirely under prune's
//! exclusive lock (checked before every manifest is rewritten):
//!
//! 1. the still-referenced blobs are copied, frame by frame (each one
//!    decoded and its SHA-256 checked on the way: a damaged blob stops the
//!    prune before anything is deleted), into new packs;
//! 2. every kept recipe that used a repacked pack is written again under a
//!    new key ([`DataDir::repacked_recipe_key`]) in its own data directory,
//!    pointing at new packs of that directory;
//! 3. every kept manifest that named such a recipe is rewritten to name the
//!    new one (a manifest is replaced whole, in one write);
//! 4. only then does prune delete the old recipes and the old packs.
//!
//! Packs and recipes are named by their content, so a repack may write one
//! that is already there (the same blobs repacked before, for a snapshot
//! this prune removes): prune never deletes what the repack wrote.
//!
//! A crash before 3 leaves new packs and recipes nothing references
//! (orphans, collected after the grace period); during 3, manifests naming
//! old recipes (whose packs are still there) and new ones (whose packs are
//! stored); before or during 4, old recipes and packs nothing references.
//! At every point each manifest's recipes and packs exist.
//!
//! A pack that a recipe still within the grace period references (one an
//! interrupted backup left, which the next backup may reuse) is never
//! repacked: that recipe would keep pointing at it.
//!
//! Memory: what kept recipes use ([`KeptUse`]: 16 bytes per blob used, and
//! per kept recipe its entry and the packs it uses), and while repacking,
//! where each copied blob went (about 150 bytes per blob), one recipe and
//! one blob at a time, plus the pack being filled and those uploading.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use anyhow::{Context, Result};
use bytes::Bytes;

use super::blob::EncodedBlob;
use super::content_id::ContentId;
use super::datadir::{DataDir, PackId};
use super::lock::RepoLock;
use super::manifest::{BlockEntry, Manifest, ObjectRef};
use super::pack::{self, BlobRef, DamagedPack, PackReader, PackWriter, PackWriterOptions};
use super::recipe::{Recipe, MAX_BLOB_RAW};
use super::Repository;
use crate::storage::ObjectMeta;

/// `--max-unused` (`max_unused` in `[prune]`): how much of a pack may be
/// unused before it is repacked.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum MaxUnused {
    /// Repack a pack whose unused bytes are more than this share (0 to 100)
    /// of its size; 0 repacks every pack with any unused byte.
    Percent(f64),
    /// Never repack.
    Unlimited,
}

// The parser takes only shares from 0 to 100: never NaN.
impl Eq for MaxUnused {}

impl TryFrom<String> for MaxUnused {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl Default for MaxUnused {
    fn default() -> Self {
        MaxUnused::Percent(5.0)
    }
}

impl MaxUnused {
    /// Whether a pack of `size` bytes with `unused` of them unused goes.
    pub fn repacks(&self, unused: u64, size: u64) -> bool {
        match *self {
            MaxUnused::Unlimited => false,
            _ if unused == 0 || size == 0 => false,
            MaxUnused::Percent(p) => unused as f64 * 100.0 > p * size as f64,
        }
    }
}

impl FromStr for MaxUnused {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "unlimited" {
            return Ok(MaxUnused::Unlimited);
        }
        let number = s.strip_suffix('%').unwrap_or(s);
        match number.parse::<f64>() {
            Ok(p) if (0.0..=100.0).contains(&p) => Ok(MaxUnused::Percent(p)),
            _ => Err(format!(
                "{s:?} is not a share of a pack: give a percentage from 0% to 100% (e.g. 5%), \
                 or `unlimited` never to repack"
            )),
        }
    }
}

impl fmt::Display for MaxUnused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaxUnused::Unlimited => f.write_str("unlimited"),
            MaxUnused::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// What the kept snapshots' recipes use, held small enough for repositories
/// of many TiB: per pack, the blobs they reference (offset and stored
/// length, each once: 16 bytes a blob, where the recipes themselves took
/// about 160), and per kept recipe where to read it again and which packs
/// it uses. A repack reads again only the recipes it rewrites.
#[derive(Default)]
pub struct KeptUse {
    /// By data directory, then pack: the blobs used.
    packs: HashMap<DataDir, HashMap<ContentId, Used>>,
    recipes: Vec<KeptRecipe>,
}

/// The blobs of one pack that kept recipes use: (offset, stored length),
/// sorted and deduplicated whenever they have doubled (and at the end), so
/// that many recipes sharing a blob hold it about once.
#[derive(Default)]
struct Used {
    blobs: Vec<(u64, u32)>,
    tidy: usize,
}

impl Used {
    fn push(&mut self, offset: u64, length: u32) {
        self.blobs.push((offset, length));
        if self.blobs.len() >= 2 * self.tidy.max(32) {
            self.tidy();
        }
    }

    fn tidy(&mut self) {
        self.blobs.sort_unstable();
        self.blobs.dedup();
        self.tidy = self.blobs.len();
    }
}

/// A kept recipe: the manifest entry it is read with, its data directory
/// (which its key names), and the packs it references.
struct KeptRecipe {
    entry: BlockEntry,
    dir: DataDir,
    packs: Vec<ContentId>,
}

impl KeptUse {
    /// Adds the recipe of a kept block (`entry`), of data directory `dir`.
    pub fn add(&mut self, entry: &BlockEntry, dir: DataDir, recipe: &Recipe) {
        let packs = self.packs.entry(dir.clone()).or_default();
        let mut used = Vec::new();
        for b in recipe.blobs() {
            packs.entry(b.pack).or_default().push(b.offset, b.length);
            used.push(b.pack);
        }
        used.sort_unstable();
        used.dedup();
        self.recipes.push(KeptRecipe {
            entry: entry.clone(),
            dir,
            packs: used,
        });
    }

    /// Tidies what was added: call once every recipe is in.
    pub fn finish(&mut self) {
        for used in self.packs.values_mut().flat_map(|p| p.values_mut()) {
            used.tidy();
            used.blobs.shrink_to_fit();
        }
    }

    /// The blobs kept recipes use in `pack`, by offset.
    fn used(&self, pack: &PackId) -> Option<&[(u64, u32)]> {
        let used = self.packs.get(&pack.0)?.get(&pack.1)?;
        Some(&used.blobs)
    }
}

/// The packs to repack, and what that will take.
#[derive(Debug, Default, Clone)]
pub struct Selection {
    pub packs: BTreeMap<PackId, u64>,
    /// Bytes of the blobs that will be copied (before deduplication).
    pub bytes_to_copy: u64,
}

/// Chooses the packs to repack: those among `listed` that kept recipes
/// use, whose unused share is above `max_unused`, and that no recipe within
/// the grace period (`pinned`) references.
pub fn select(
    kept: &KeptUse,
    listed: &[ObjectMeta],
    pinned: &HashSet<PackId>,
    max_unused: MaxUnused,
) -> Selection {
    let mut out = Selection::default();
    for object in listed {
        let Some(id) = DataDir::parse_pack_key(object.key.as_str()) else {
            continue;
        };
        let Some(blobs) = kept.used(&id) else {
            continue;
        };
        if pinned.contains(&id) {
            continue;
        }
        let blob_bytes: u64 = blobs.iter().map(|&(_, length)| u64::from(length)).sum();
        let needed = blob_bytes + blobs.len() as u64 * pack::ENTRY_LEN + pack::TRAILER_LEN;
        let unused = object.size.saturating_sub(needed);
        if max_unused.repacks(unused, object.size) {
            out.packs.insert(id, object.size);
            out.bytes_to_copy += blob_bytes;
        }
    }
    out
}

/// What a repack did.
#[derive(Debug, Default)]
pub struct Repacked {
    /// Recipe objects that no manifest names any more.
    pub retired_recipes: HashSet<String>,
    /// Packs whose every used blob now lives in a new pack.
    pub retired_packs: HashSet<PackId>,
    /// The packs and recipes written. Named by their content, one may be
    /// an object that is already there (the same blobs repacked before)
    /// and that this prune would otherwise delete: it must stay.
    pub written_packs: HashSet<PackId>,
    pub written_recipes: HashSet<String>,
    pub packs_written: usize,
    pub bytes_written: u64,
}

/// Repacks `selection` (steps 1 to 3 of the module documentation):
/// `manifests` are the kept manifests, rewritten here (and in memory) to
/// name the new recipes. Deletes nothing.
pub async fn repack(
    repo: &Repository,
    kept: &KeptUse,
    manifests: &mut [Manifest],
    keys: &super::catalog::Keys,
    selection: &Selection,
    lock: Option<&RepoLock>,
) -> Result<Repacked> {
    let mut done = Repacked::default();
    if selection.packs.is_empty() {
        return Ok(done);
    }
    let (moved, written, bytes) = copy_blobs(repo, kept, selection).await?;
    done.packs_written = written.len();
    done.written_packs = written;
    done.bytes_written = bytes;
    // Step 2: the recipes that use a repacked pack, read again, under new
    // keys.
    let mut renamed: HashMap<&str, ObjectRef> = HashMap::new();
    for k in &kept.recipes {
        let repacked = |p: &ContentId| selection.packs.contains_key(&(k.dir.clone(), *p));
        if !k.packs.iter().any(repacked) {
            continue;
        }
        let recipe = repo.load_recipe(&k.entry).await?;
        let recipe = moved_recipe(&k.dir, recipe, &moved)?;
        let json = recipe.to_json();
        let key = k
            .dir
            .repacked_recipe_key(&recipe.ulid, &recipe.fingerprint, &json)?;
        let object = ObjectRef {
            key: key.to_string(),
            size: json.len() as u64,
            sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&json)),
        };
        repo.storage()
            .put_bytes(&key, Bytes::from(json))
            .await
            .with_context(|| format!("could not write recipe {key}"))?;
        done.written_recipes.insert(key.to_string());
        renamed.insert(&k.entry.object.key, object);
    }
    // Step 3: the manifests, each replaced whole.
    for m in manifests.iter_mut() {
        let mut changed = false;
        for b in &mut m.blocks {
            if let Some(object) = renamed.get(b.object.key.as_str()) {
                b.object = object.clone();
                changed = true;
            }
        }
        if changed {
            if let Some(lock) = lock {
                lock.check()?;
            }
            // Where it is: a manifest of an earlier version stays at its
            // key rather than gain a second copy in its group's directory.
            repo.rewrite_manifest(m, &keys[&m.id]).await?;
        }
    }
    done.retired_recipes = renamed
        .keys()
        .map(|k| k.to_string())
        .filter(|k| !done.written_recipes.contains(k))
        .collect();
    done.retired_packs = selection
        .packs
        .keys()
        .filter(|p| !done.written_packs.contains(p))
        .cloned()
        .collect();
    Ok(done)
}

/// Where a blob that was moved is now, by its old pack and offset: the
/// blob as its old pack's header lists it, and its new place.
type Moved = HashMap<(PackId, u64), (BlobRef, BlobRef)>;

/// Step 1: copies every used blob of the selected packs into new packs of
/// the same data directory, each blob once per directory (by id, even if
/// several packs held it). A used blob is what the old pack's header lists
/// at its offset, with the length the recipes say (else the pack or a
/// recipe is damaged, and the prune stops). Returns where each blob is
/// now, and the packs and bytes written.
async fn copy_blobs(
    repo: &Repository,
    kept: &KeptUse,
    selection: &Selection,
) -> Result<(Moved, HashSet<PackId>, u64)> {
    let mut by_dir: BTreeMap<&DataDir, Vec<&ContentId>> = BTreeMap::new();
    for (dir, pack) in selection.packs.keys() {
        by_dir.entry(dir).or_default().push(pack);
    }
    let (mut moved, mut packs, mut bytes) = (HashMap::new(), HashSet::new(), 0);
    for (dir, selected) in by_dir {
        let reader = PackReader::new(repo.storage().clone(), dir.clone(), repo.ids());
        let mut writer: PackWriter<ContentId> = PackWriter::new(
            repo.storage().clone(),
            dir.clone(),
            PackWriterOptions {
                ids: repo.ids(),
                ..PackWriterOptions::default()
            },
        );
        let mut new_by_id: HashMap<ContentId, BlobRef> = HashMap::new();
        let mut added: HashSet<ContentId> = HashSet::new();
        let mut old_refs: Vec<BlobRef> = Vec::new();
        for old in &selected {
            let header = reader.read_header(old).await?;
            let used = kept.used(&(dir.clone(), **old)).unwrap_or_default();
            for &(offset, length) in used {
                let entry = header
                    .entries
                    .binary_search_by_key(&offset, |e| e.offset)
                    .ok()
                    .map(|i| &header.entries[i])
                    .filter(|e| e.length == length)
                    .ok_or_else(|| {
                        let what = format!(
                            "a kept recipe references a blob of {length} bytes at offset \
                             {offset}, which its header does not list"
                        );
                        DamagedPack::damaged(**old, what).in_dir(dir)
                    })?;
                let r = BlobRef {
                    pack: **old,
                    offset,
                    length,
                    raw_length: entry.raw_length,
                    id: entry.id,
                };
                old_refs.push(r);
                if !added.insert(r.id) {
                    continue;
                }
                let frame = reader.read_frame(&r, MAX_BLOB_RAW).await?;
                let blob = EncodedBlob {
                    kind: entry.kind,
                    id: r.id,
                    raw_length: r.raw_length,
                    frame,
                };
                new_by_id.extend(writer.add(r.id, blob).await?);
            }
        }
        let (rest, written) = writer.finish().await?;
        new_by_id.extend(rest);
        bytes += written;
        packs.extend(new_by_id.values().map(|r| (dir.clone(), r.pack)));
        for r in old_refs {
            let new = new_by_id
                .get(&r.id)
                .with_context(|| format!("blob {} was not repacked", r.id))?;
            moved.insert(((dir.clone(), r.pack), r.offset), (r, *new));
        }
    }
    Ok((moved, packs, bytes))
}

/// A kept recipe (of data directory `dir`) with every blob that was moved
/// pointing at its new place (in the same directory). A reference that
/// disagrees with what the old pack's header lists there is damage.
fn moved_recipe(dir: &DataDir, mut recipe: Recipe, moved: &Moved) -> Result<Recipe> {
    let relocate = |blobs: &mut Vec<BlobRef>| -> Result<()> {
        for b in blobs.iter_mut() {
            let Some((old, new)) = moved.get(&((dir.clone(), b.pack), b.offset)) else {
                continue;
            };
            if (b.length, b.raw_length, b.id) != (old.length, old.raw_length, old.id) {
                let what = format!(
                    "a recipe references blob {} ({} bytes, {} raw) at offset {}, where its \
                     header lists blob {} ({} bytes, {} raw)",
                    b.id, b.length, b.raw_length, b.offset, old.id, old.length, old.raw_length
                );
                return Err(DamagedPack::damaged(b.pack, what).in_dir(dir).into());
            }
            *b = *new;
        }
        Ok(())
    };
    for blobs in recipe.small.values_mut() {
        relocate(blobs)?;
    }
    relocate(&mut recipe.index)?;
    for leaf in &mut recipe.chunks.leaves {
        relocate(&mut leaf.blobs)?;
    }
    recipe
        .validate()
        .with_context(|| format!("the repacked recipe of block {}", recipe.ulid))?;
    Ok(recipe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_unused_reads_as_restic_writes_it() {
        assert_eq!("5%".parse(), Ok(MaxUnused::Percent(5.0)));
        assert_eq!("0%".parse(), Ok(MaxUnused::Percent(0.0)));
        assert_eq!("12.5".parse(), Ok(MaxUnused::Percent(12.5)));
        assert_eq!("unlimited".parse(), Ok(MaxUnused::Unlimited));
        for bad in ["", "-1%", "101%", "five", "5 %"] {
            assert!(bad.parse::<MaxUnused>().is_err(), "{bad:?}");
        }
    }

    /// What prune holds per blob used stays about one entry per blob,
    /// however many kept recipes reference it.
    #[test]
    fn a_blob_many_recipes_share_is_held_about_once() {
        let mut used = Used::default();
        let mut most = 0;
        for recipe in 0..100u64 {
            for blob in 0..50u64 {
                used.push(blob * 1000, 1000);
            }
            used.push(1_000_000 + recipe, 7); // one of its own
            most = most.max(used.blobs.len());
        }
        used.tidy();
        assert_eq!(used.blobs.len(), 150);
        assert!(most <= 2 * 150, "held {most} entries for 150 blobs");
        assert!(used.blobs.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_pack_is_repacked_only_above_the_share() {
        let five = MaxUnused::Percent(5.0);
        assert!(!five.repacks(5, 100));
        assert!(five.repacks(6, 100));
        assert!(MaxUnused::Percent(0.0).repacks(1, 1 << 30));
        assert!(!MaxUnused::Percent(0.0).repacks(0, 100));
        assert!(!MaxUnused::Unlimited.repacks(100, 100));
        assert!(!MaxUnused::Percent(100.0).repacks(100, 100));
    }
}
