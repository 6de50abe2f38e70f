//! Verifying format 2 blocks: recipes, the packs they reference, and the
//! blocks they rebuild.
//!
//! - quick: every recipe reads and checks out (its size and SHA-256 are the
//!   manifest's); every pack it references exists, its header reads, and
//!   every blob reference resolves in it (inside the pack, listed by the
//!   header with that length and id): no dangling piece.
//! - read: every referenced pack is downloaded whole and hashed; a pack is
//!   named by its content id, so this checks every stored byte. A pack many
//!   blocks share is read once. `--read-data-subset` picks packs.
//! - deep: every block is rebuilt from its recipe as a stream, each file's
//!   SHA-256 checked on the way and its chunk records walked as they pass
//!   (`rebuild::check`); only its index and small files go to the scratch
//!   directory, for the index checks, as for a format 1 archive. The packs'
//!   names are checked from the bytes the rebuilds read of them
//!   (`pack::hashes`), and only what they did not read is read after: a
//!   deep verify reads each pack once. (Not in a `sha256` repository: its
//!   packs are read on their own, as at the read level.)
//!
//! Packs no checked recipe references are reported as notes (unreferenced
//! data that `prune` reclaims), when every snapshot is verified.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use futures::StreamExt;

use super::{environment, local_io, problem, Level, Problem, Subset, Target};
use crate::repo::datadir::{DataDir, PackId};
use crate::repo::pack::hashes::PackHashes;
use crate::repo::pack::{BlobRef, DamagedPack, PackReader};
use crate::repo::rebuild;
use crate::repo::Repository;
use crate::tsdb::check::{self, CheckOptions, StreamedBlock};

/// The packs the checked recipes reference, with who needs them.
#[derive(Default)]
pub(super) struct Packs {
    /// Each pack's references and the (snapshots, block) of a user.
    /// A pack is its directory's (the recipe's key says which) and its name.
    by_pack: BTreeMap<PackId, (Vec<BlobRef>, Vec<String>, String)>,
    /// Each pack's size, from its header (the quick level): the read level
    /// needs no stat of its own, and the progress knows its total.
    sizes: BTreeMap<PackId, u64>,
}

impl Packs {
    pub(super) fn len(&self) -> usize {
        self.by_pack.len()
    }

    /// The packs the read level reads: all, or those `subset` picks.
    fn chosen(&self, subset: Option<Subset>) -> Vec<&PackId> {
        self.by_pack
            .keys()
            .filter(|(dir, p)| subset.is_none_or(|s| s.includes(dir.pack_key(p).as_str())))
            .collect()
    }

    /// A [`PackHashes`] for the packs the read level reads whose size is
    /// known, for the deep level's rebuilds to hash as they read them.
    pub(super) fn hashes(
        &self,
        subset: Option<Subset>,
        progress: &Arc<dyn crate::progress::Progress>,
    ) -> Arc<PackHashes> {
        let sizes = (self.chosen(subset).into_iter())
            .filter_map(|p| Some((p.clone(), *self.sizes.get(p)?)));
        Arc::new(PackHashes::new(sizes, Some(progress.clone())))
    }

    /// The bytes the read level reads (of the packs whose header read).
    pub(super) fn bytes(&self, subset: Option<Subset>) -> u64 {
        self.chosen(subset)
            .into_iter()
            .filter_map(|p| self.sizes.get(p))
            .sum()
    }

    fn problem(&self, pack: &PackId, kind: &str, message: String) -> Problem {
        let (_, snapshots, block) = &self.by_pack[pack];
        Problem {
            snapshots: snapshots.clone(),
            block: Some(block.clone()),
            object: Some(pack.0.pack_key(&pack.1).to_string()),
            file: None,
            offset: None,
            kind: kind.into(),
            message,
        }
    }
}

/// The quick level for the recipes among `targets`: their packs exist and
/// every reference resolves. Returns the problems and the packs to read.
pub(super) async fn quick(
    repo: &Repository,
    targets: &BTreeMap<&str, Target<'_>>,
    concurrency: usize,
) -> Result<(Vec<Problem>, Packs)> {
    let mut problems = Vec::new();
    let mut packs = Packs::default();
    for t in targets.values().filter(|t| t.entry.is_recipe()) {
        let recipe = match repo.load_recipe(t.entry).await {
            Ok(r) => r,
            Err(e) if super::reported_by_quick(&e) => continue,
            Err(e)
                if environment(&e).is_some()
                    || crate::error::status_of(&e) != crate::error::ExitStatus::Failure =>
            {
                return Err(e)
            }
            Err(e) => {
                problems.push(problem(t, "invalid_recipe", format!("{e:#}")));
                continue;
            }
        };
        let dir = match DataDir::of_recipe(&t.entry.object.key) {
            Ok(d) => d,
            Err(e) => {
                problems.push(problem(t, "invalid_recipe", format!("{e:#}")));
                continue;
            }
        };
        for r in recipe.blobs() {
            let user = packs
                .by_pack
                .entry((dir.clone(), r.pack))
                .or_insert_with(|| (Vec::new(), t.snapshots.clone(), t.entry.ulid.clone()));
            user.0.push(*r);
        }
    }
    type Checked = (Vec<Problem>, Option<(PackId, u64)>);
    let checked: Vec<Result<Checked>> = futures::stream::iter(packs.by_pack.iter())
        .map(|(pack, (refs, _, _))| {
            // Headers are read once per pack here: no cache to share.
            let reader = PackReader::new(repo.storage().clone(), pack.0.clone(), repo.ids());
            let packs = &packs;
            async move {
                let header = match reader.read_header(&pack.1).await {
                    Ok(h) => h,
                    Err(e) => {
                        return match DamagedPack::find(&e) {
                            Some(d) if d.missing => Ok((
                                vec![packs.problem(
                                    pack,
                                    "missing_object",
                                    "the pack does not exist".into(),
                                )],
                                None,
                            )),
                            Some(_) => Ok((
                                vec![packs.problem(pack, "damaged_pack", format!("{e:#}"))],
                                None,
                            )),
                            None => Err(e),
                        }
                    }
                };
                let mut found = Vec::new();
                for r in refs {
                    if let Err(d) = header.find(r) {
                        let d = d.in_dir(&pack.0);
                        found.push(packs.problem(pack, "dangling_reference", d.to_string()));
                    }
                }
                Ok((found, Some((pack.clone(), header.size))))
            }
        })
        .buffer_unordered(concurrency.max(1) * 4)
        .collect()
        .await;
    let mut sizes = BTreeMap::new();
    for r in checked {
        let (found, size) = r?;
        problems.extend(found);
        sizes.extend(size);
    }
    packs.sizes = sizes;
    Ok((problems, packs))
}

/// The read level: every referenced pack (or the subset's) downloaded and
/// hashed against its name. With `hashes` (the deep level, once every
/// block was rebuilt through it), only what the rebuilds did not read of
/// a pack is read now, and its hash is the one `hashes` made.
pub(super) async fn read(
    repo: &Repository,
    packs: &Packs,
    subset: Option<Subset>,
    concurrency: usize,
    progress: &Arc<dyn crate::progress::Progress>,
    hashes: Option<&Arc<PackHashes>>,
) -> Result<(Vec<Problem>, usize, u64)> {
    let chosen = packs.chosen(subset);
    let results: Vec<Result<(Option<Problem>, u64)>> = futures::stream::iter(chosen.iter())
        .map(|pack| async move {
            let key = pack.0.pack_key(&pack.1);
            if let Some(missing) = hashes.and_then(|h| h.missing(pack)) {
                let hashes = hashes.expect("tracked by it");
                return read_rest(repo, packs, pack, missing, hashes).await;
            }
            // Known from its header; a pack whose header did not read
            // (reported by the quick level) is still hashed if it exists.
            let size = match packs.sizes.get(*pack) {
                Some(&size) => size,
                None => match repo.storage().head(&key).await? {
                    Some(m) => m.size,
                    None => return Ok((None, 0)), // reported by the quick level
                },
            };
            let (read, got) = super::download::hash_pack(repo, &key, size, progress).await?;
            let found = (got != pack.1).then(|| {
                packs.problem(
                    pack,
                    "checksum_mismatch",
                    format!(
                        "the pack's {read} bytes hash to {got} ({}), not to its name",
                        repo.ids().display()
                    ),
                )
            });
            Ok((found, read))
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut problems = Vec::new();
    let mut bytes = 0;
    for r in results {
        let (p, n) = r?;
        problems.extend(p);
        bytes += n;
    }
    Ok((problems, chosen.len(), bytes))
}

/// The longest range read at once of what the rebuilds left unread of a
/// pack, and the longest stretch already read that two such ranges may
/// take in between to be one read.
const REST_READ: u64 = 4 << 20;
const REST_GAP: u64 = 256 << 10;

/// The bytes of `pack` the rebuilds did not read (`missing`), read now
/// through `hashes`, and the pack's name checked against what it made.
async fn read_rest(
    repo: &Repository,
    packs: &Packs,
    pack: &PackId,
    missing: Vec<Range<u64>>,
    hashes: &Arc<PackHashes>,
) -> Result<(Option<Problem>, u64)> {
    let reader = PackReader::new(repo.storage().clone(), pack.0.clone(), repo.ids())
        .hashing_into(hashes.clone());
    let mut reads: Vec<Range<u64>> = Vec::new();
    for m in missing {
        match reads.last_mut() {
            Some(r) if m.start - r.end <= REST_GAP && m.end - r.start <= REST_READ => r.end = m.end,
            _ => reads.push(m),
        }
    }
    for r in reads {
        let mut at = r.start;
        while at < r.end {
            let length = (r.end - at).min(REST_READ);
            if let Err(e) = reader.read_range(&pack.1, at, length).await {
                return match DamagedPack::find(&e) {
                    Some(_) => Ok((
                        Some(packs.problem(pack, "damaged_pack", format!("{e:#}"))),
                        0,
                    )),
                    None => Err(e),
                };
            }
            at += length;
        }
    }
    let size = packs.sizes.get(pack).copied().unwrap_or_default();
    let found = match hashes.take(pack) {
        Some(got) if got == pack.1 => None,
        Some(got) => Some(packs.problem(
            pack,
            "checksum_mismatch",
            format!(
                "the pack's {size} bytes hash to {got} ({}), not to its name",
                repo.ids().display()
            ),
        )),
        None => anyhow::bail!(
            "pack {} was read whole, but not every byte of it was hashed (a bug)",
            pack.0.pack_key(&pack.1)
        ),
    };
    Ok((found, size))
}

/// The deep level for one format 2 block: rebuilt as a stream and checked
/// on the way (`rebuild::check`), with the read-ahead `budget`; only its
/// index and small files go to the scratch directory, never its chunk
/// segments.
pub(super) async fn deep(
    repo: &Repository,
    t: &Target<'_>,
    scratch: &Path,
    budget: u64,
    progress: Arc<dyn crate::progress::Progress>,
    hashes: Option<Arc<PackHashes>>,
) -> Result<Vec<Problem>> {
    let dir = super::scratch_dir(scratch, t)?;
    let block_dir = dir.path().join(&t.entry.ulid);
    std::fs::create_dir(&block_dir)
        .map_err(|e| local_io(e, format!("could not create {}", block_dir.display())))?;
    let streamed = StreamedBlock::new(dir.path());
    let checked = rebuild::check(
        repo, t.entry, &block_dir, streamed, progress, budget, hashes,
    );
    let block = match checked.await {
        Ok((_, block)) => block,
        Err(e) if super::reported_by_quick(&e) => return Ok(vec![]),
        Err(e) => {
            return match environment(&e) {
                Some(place) => Err(e.context(super::scratch_hint(t, place))),
                None if crate::error::status_of(&e) == crate::error::ExitStatus::Failure
                    && crate::error::hint_of(&e).is_some() =>
                {
                    Ok(vec![problem(t, "rebuild", format!("{e:#}"))])
                }
                None => Err(e),
            }
        }
    };
    let (work, entry) = (block_dir.clone(), t.entry.clone());
    let found = tokio::task::spawn_blocking(move || -> Result<Vec<check::Problem>> {
        let opts = CheckOptions { chunk_refs: true };
        let mut found = block.finish(&work, &entry.ulid, &opts)?;
        found.extend(super::meta_matches_manifest(&work, &entry));
        Ok(found)
    })
    .await?
    .map_err(|e| match environment(&e) {
        Some(place) => e.context(super::scratch_hint(t, place)),
        None => e,
    })?;
    Ok(found
        .into_iter()
        .map(|p| Problem {
            file: Some(p.file),
            offset: p.offset,
            kind: p.kind.as_str().to_string(),
            ..problem(t, "", p.message)
        })
        .collect())
}

/// Packs in the repository that none of `packs` is: unreferenced data, a
/// note (prune reclaims it).
pub(super) async fn unreferenced(repo: &Repository, packs: &Packs) -> Result<Vec<Problem>> {
    let listed = repo.storage().list("packs/").await?;
    let referenced: HashSet<&PackId> = packs.by_pack.keys().collect();
    let mut unused = BTreeSet::new();
    for o in listed {
        if let Some(pack) = DataDir::parse_pack_key(o.key.as_str()) {
            if !referenced.contains(&pack) {
                unused.insert((o.key.to_string(), o.size));
            }
        }
    }
    Ok(unused
        .into_iter()
        .map(|(key, size)| Problem {
            snapshots: Vec::new(),
            block: None,
            object: Some(key),
            file: None,
            offset: None,
            kind: "unreferenced_pack".into(),
            message: format!(
                "no verified snapshot references this pack ({size} bytes); `promsnap prune` \
                 reclaims it once no snapshot does"
            ),
        })
        .collect())
}

/// Whether `level` reads data.
pub(super) fn reads(level: Level) -> bool {
    level >= Level::Read
}
