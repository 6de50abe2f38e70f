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
//! Memory: the kept recipes (prune reads them anyway) and one blob at a
//! time, plus the pack being filled and those uploading.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use anyhow::{Context, Result};
use bytes::Bytes;

use super::blob::EncodedBlob;
use super::content_id::ContentId;
use super::datadir::{DataDir, PackId};
use super::lock::RepoLock;
use super::manifest::{Manifest, ObjectRef};
use super::pack::{self, BlobRef, PackReader, PackWriter, PackWriterOptions};
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

/// A kept recipe: its object's key, its data directory (which its key
/// names), and the recipe.
pub struct KeptRecipe {
    pub key: String,
    pub dir: DataDir,
    pub recipe: Recipe,
}

impl KeptRecipe {
    /// The packs it references.
    fn packs(&self) -> impl Iterator<Item = PackId> + '_ {
        self.recipe.blobs().map(|b| (self.dir.clone(), b.pack))
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
    kept: &[KeptRecipe],
    listed: &[ObjectMeta],
    pinned: &HashSet<PackId>,
    max_unused: MaxUnused,
) -> Selection {
    let used = used_blobs(kept);
    let mut out = Selection::default();
    for object in listed {
        let Some(id) = DataDir::parse_pack_key(object.key.as_str()) else {
            continue;
        };
        let Some(blobs) = used.get(&id) else {
            continue;
        };
        if pinned.contains(&id) {
            continue;
        }
        let blob_bytes: u64 = blobs.values().map(|b| u64::from(b.length)).sum();
        let needed = blob_bytes + blobs.len() as u64 * pack::ENTRY_LEN + pack::TRAILER_LEN;
        let unused = object.size.saturating_sub(needed);
        if max_unused.repacks(unused, object.size) {
            out.packs.insert(id, object.size);
            out.bytes_to_copy += blob_bytes;
        }
    }
    out
}

/// The blobs kept recipes reference, by pack and offset.
fn used_blobs(kept: &[KeptRecipe]) -> HashMap<PackId, BTreeMap<u64, BlobRef>> {
    let mut used: HashMap<PackId, BTreeMap<u64, BlobRef>> = HashMap::new();
    for k in kept {
        for b in k.recipe.blobs() {
            let id = (k.dir.clone(), b.pack);
            used.entry(id).or_default().insert(b.offset, *b);
        }
    }
    used
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
    kept: &[KeptRecipe],
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
    // Step 2: the recipes, under new keys.
    let mut renamed: HashMap<&str, ObjectRef> = HashMap::new();
    for k in kept {
        if !k.packs().any(|p| selection.packs.contains_key(&p)) {
            continue;
        }
        let recipe = moved_recipe(k, &moved)?;
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
        renamed.insert(&k.key, object);
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

/// Where a blob that was moved is now: by its old pack and offset.
type Moved = HashMap<(PackId, u64), BlobRef>;

/// Step 1: copies every used blob of the selected packs into new packs of
/// the same data directory, each blob once per directory (by id, even if
/// several packs held it). Returns where each old reference's blob is now,
/// and the packs and bytes written.
async fn copy_blobs(
    repo: &Repository,
    kept: &[KeptRecipe],
    selection: &Selection,
) -> Result<(Moved, HashSet<PackId>, u64)> {
    let used = used_blobs(kept);
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
        let used_in = |old: &ContentId| used.get(&(dir.clone(), *old)).into_iter().flatten();
        for old in &selected {
            let header = reader.read_header(old).await?;
            for (_, r) in used_in(old) {
                if !added.insert(r.id) {
                    continue;
                }
                let kind = header.find(r).map_err(|d| d.in_dir(dir))?.kind;
                let frame = reader.read_frame(r, MAX_BLOB_RAW).await?;
                let blob = EncodedBlob {
                    kind,
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
        for old in &selected {
            for (_, r) in used_in(old) {
                let new = new_by_id
                    .get(&r.id)
                    .with_context(|| format!("blob {} was not repacked", r.id))?;
                moved.insert(((dir.clone(), r.pack), r.offset), *new);
            }
        }
    }
    Ok((moved, packs, bytes))
}

/// The kept recipe with every blob that was moved pointing at its new
/// place (in the same directory).
fn moved_recipe(kept: &KeptRecipe, moved: &Moved) -> Result<Recipe> {
    let mut out = kept.recipe.clone();
    let relocate = |blobs: &mut Vec<BlobRef>| {
        for b in blobs.iter_mut() {
            if let Some(new) = moved.get(&((kept.dir.clone(), b.pack), b.offset)) {
                *b = *new;
            }
        }
    };
    out.small.values_mut().for_each(relocate);
    relocate(&mut out.index);
    out.chunks
        .leaves
        .iter_mut()
        .for_each(|l| relocate(&mut l.blobs));
    out.validate()
        .with_context(|| format!("the repacked recipe of block {}", kept.recipe.ulid))?;
    Ok(out)
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
