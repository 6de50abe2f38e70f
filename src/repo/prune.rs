//! Pruning: forget the snapshots the retention policy no longer keeps, then
//! collect the block and configuration objects nothing references any more.
//!
//! The decision is [`retention::apply`], a pure function; this module only
//! carries it out, in an order that keeps every crash harmless: manifests
//! first (a snapshot is gone the moment its manifest is), then the objects
//! only the removed snapshots used. A crash in between leaves orphans that
//! the next prune collects.
//!
//! Objects no manifest ever referenced ("orphans": an interrupted backup's
//! blocks, which the next backup would reuse) are deleted only once older
//! than a grace period, because a backup that is still running may be about
//! to reference them. Prune holds the repository's exclusive lock, so no
//! backup runs meanwhile; the grace period is a second line of defence (and
//! covers repositories shared with older promsnap versions or clock trouble).
//! Incomplete multipart uploads are aborted after the same grace period.

use std::collections::{BTreeSet, HashMap, HashSet};

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;

use futures::StreamExt;

use super::datadir::{DataDir, PackId};
use super::lock::{LockInfo, LockKind, RepoLock};
use super::manifest::{BlockEntry, Manifest};
use super::recipe::{self, Recipe};
use super::repack::{self, KeptUse, MaxUnused, Repacked, Selection};
use super::retention::{self, Decision, Policy, SnapshotRef};
use super::{Catalog, DamagedManifest, Repository};
use crate::error::Hinted;
use crate::storage::{Key, ObjectMeta};

pub struct PruneOptions {
    pub policy: Policy,
    /// Only judge this instance's snapshots (others are kept untouched).
    pub instance: Option<String>,
    pub dry_run: bool,
    pub now: DateTime<Utc>,
    /// Delete damaged manifests (`--forget-damaged`); without it, their
    /// presence keeps every object, since they might reference any.
    pub forget_damaged: bool,
    /// Packs with more unused bytes than this are repacked.
    pub max_unused: MaxUnused,
}

impl PruneOptions {
    /// Orphans and incomplete uploads started before this are deleted; the
    /// policy's grace period keeps younger ones.
    fn cutoff(&self) -> DateTime<Utc> {
        chrono::Duration::from_std(self.policy.grace())
            .ok()
            .and_then(|grace| self.now.checked_sub_signed(grace))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PruneReport {
    pub dry_run: bool,
    pub decisions: Vec<Decision>,
    pub snapshots_kept: usize,
    pub snapshots_removed: usize,
    /// Objects (archives and their entries) deleted, or to delete in a dry run.
    pub objects_deleted: usize,
    pub bytes_freed: u64,
    /// Of those, objects no snapshot ever referenced.
    pub orphans_deleted: usize,
    /// Orphans kept because they are younger than the grace period.
    pub orphans_in_grace: usize,
    /// Packs repacked because more than `--max-unused` of them was unused
    /// (in a dry run: that would be).
    pub packs_repacked: usize,
    /// Bytes written into new packs by repacking (in a dry run: the blobs
    /// that would be copied).
    pub bytes_repacked: u64,
    pub uploads_aborted: u64,
    /// With `--instance`: objects outside the pruned groups' directories
    /// (data stored before groups, format 1 archives, configuration files,
    /// which any group's snapshots may share) that only removed snapshots
    /// referenced. Left for a prune of every instance, which reads every
    /// manifest.
    pub shared_left: usize,
    /// Manifests that could not be read. While any is kept, no object is
    /// deleted: a damaged manifest might reference any of them.
    pub damaged: Vec<DamagedManifest>,
    /// Whether the damaged manifests were removed (`--forget-damaged`).
    pub damaged_forgotten: bool,
}

/// Takes the exclusive repository lock (not for a dry run, which changes
/// nothing), waiting up to `lock_wait` for running backups (`waiting` hears
/// who holds it), and prunes.
pub async fn run_locked(
    repo: &Repository,
    opts: &PruneOptions,
    lock_wait: std::time::Duration,
    waiting: &(dyn Fn(&LockInfo) + Sync),
) -> Result<PruneReport> {
    if opts.dry_run {
        return run(repo, opts, None).await;
    }
    let lock = repo
        .lock(LockKind::Exclusive, "prune", lock_wait, waiting)
        .await?;
    let report = run(repo, opts, Some(&lock)).await;
    lock.release().await?;
    report
}

pub async fn run(
    repo: &Repository,
    opts: &PruneOptions,
    lock: Option<&RepoLock>,
) -> Result<PruneReport> {
    let (catalog, scope) = read_scope(repo, opts.instance.as_deref()).await?;
    let keys = catalog.keys;
    let manifests = catalog.manifests;
    let decisions = decide(&manifests, opts)?;
    // Data a damaged manifest references cannot be told apart: keep it all
    // unless the user says the damaged manifests are to go.
    let keep_objects = !catalog.damaged.is_empty() && !opts.forget_damaged;
    let removed: HashSet<&str> = decisions
        .iter()
        .filter(|d| !d.keep)
        .map(|d| d.id.as_str())
        .collect();
    let (objects, packs) = scope.list(repo).await?;
    let cutoff = opts.cutoff();
    let users = pack_users(repo, &scope, &manifests, &removed, &objects, cutoff).await?;
    let selection = match keep_objects || users.unknown {
        true => Selection::default(),
        false => repack::select(&users.recipes, &packs, &users.pinned, opts.max_unused),
    };

    let mut repacked = Repacked::default();
    if !opts.dry_run {
        if opts.forget_damaged {
            for d in &catalog.damaged {
                check(lock)?;
                repo.storage().delete(&Key::new(d.key.clone())?).await?;
            }
        }
        for id in &removed {
            check(lock)?;
            repo.storage().delete(&keys[*id]).await?;
        }
        // New packs, recipes and manifests first; what they replace is
        // deleted below with the rest (`repack.rs`).
        let mut kept: Vec<Manifest> = manifests
            .iter()
            .filter(|m| !removed.contains(m.id.as_str()))
            .cloned()
            .collect();
        check(lock)?;
        repacked = repack::repack(repo, &users.recipes, &mut kept, &keys, &selection, lock).await?;
    } else {
        // What a real run would delete after repacking.
        repacked.retired_packs = selection.packs.keys().cloned().collect();
    }
    let mut plan = collect(
        &manifests,
        &removed,
        &objects,
        cutoff,
        &repacked.retired_recipes,
    );
    plan.add_packs(&packs, &users, cutoff, &repacked.retired_packs);
    // What the repack wrote stays, even where an object of the same name
    // (the same content) was about to go.
    plan.delete.retain(|o| {
        let written = match DataDir::parse_pack_key(o.key.as_str()) {
            Some(id) => repacked.written_packs.contains(&id),
            None => repacked.written_recipes.contains(o.key.as_str()),
        };
        !written
    });
    if keep_objects {
        plan = Collection::default();
    }

    if !opts.dry_run {
        // Recipes and entries before packs and archives: a recipe must
        // never outlive a pack it references, nor an entry its archive.
        let mut doomed: Vec<&ObjectMeta> = plan.delete.clone();
        doomed.sort_by_key(|o| !o.key.as_str().ends_with(".json"));
        for object in doomed {
            check(lock)?;
            repo.storage().delete(&object.key).await?;
        }
    }
    let uploads_aborted = repo
        .storage()
        .abort_incomplete(cutoff, opts.dry_run)
        .await?;
    Ok(PruneReport {
        dry_run: opts.dry_run,
        snapshots_kept: decisions.iter().filter(|d| d.keep).count(),
        snapshots_removed: removed.len(),
        objects_deleted: plan.delete.len(),
        bytes_freed: plan.delete.iter().map(|o| o.size).sum(),
        orphans_deleted: plan.orphans_deleted,
        orphans_in_grace: plan.orphans_in_grace,
        packs_repacked: selection.packs.len(),
        bytes_repacked: match opts.dry_run {
            true => selection.bytes_to_copy,
            false => repacked.bytes_written,
        },
        uploads_aborted,
        shared_left: scope.shared_left(&manifests, &removed),
        decisions,
        damaged_forgotten: opts.forget_damaged && !catalog.damaged.is_empty(),
        damaged: catalog.damaged,
    })
}

fn check(lock: Option<&RepoLock>) -> Result<()> {
    lock.map_or(Ok(()), RepoLock::check)
}

/// What a prune reads and may delete.
enum Scope {
    /// Every manifest read: every object this version writes may go.
    All,
    /// `--instance`: the manifests of these groups' directories (and those
    /// of earlier versions) read, so only these data directories are
    /// listed and collected. Everything else (data stored before groups,
    /// archives, configuration files) may be another group's too.
    Groups(BTreeSet<DataDir>),
}

/// The manifests a prune reads, and what that lets it delete.
async fn read_scope(repo: &Repository, instance: Option<&str>) -> Result<(Catalog, Scope)> {
    let Some(instance) = instance else {
        return Ok((repo.catalog().await?, Scope::All));
    };
    // Before the catalog: it reads at least these directories (an
    // instance's index only grows).
    let dirs = repo.group_dirs_of(instance).await?;
    let catalog = repo.catalog_of(Some(instance)).await?;
    let dirs = dirs.into_iter().map(DataDir::Group).collect();
    Ok((catalog, Scope::Groups(dirs)))
}

impl Scope {
    /// Whether the object `key` is in the scope.
    fn covers(&self, key: &str) -> bool {
        let Scope::Groups(dirs) = self else {
            return true;
        };
        let dir = DataDir::parse_recipe_key(key)
            .map(|k| k.dir)
            .or_else(|| DataDir::parse_pack_key(key).map(|(dir, _)| dir));
        dir.is_some_and(|d| dirs.contains(&d))
    }

    /// The objects other than packs (archives and their entries, recipes,
    /// configuration files) and the packs that the prune may delete, each
    /// of a shape this version writes: anything else is a later
    /// version's (or someone else's) and never deleted here.
    async fn list(&self, repo: &Repository) -> Result<(Vec<ObjectMeta>, Vec<ObjectMeta>)> {
        let (prefixes, pack_prefixes) = match self {
            Scope::All => (
                vec!["blocks/".into(), "configs/".into(), "recipes/".into()],
                vec!["packs/".into()],
            ),
            Scope::Groups(dirs) => (
                dirs.iter().map(DataDir::recipe_prefix).collect(),
                dirs.iter().map(DataDir::pack_prefix).collect(),
            ),
        };
        let mut objects = Vec::new();
        for prefix in prefixes {
            objects.extend(repo.storage().list(&prefix).await?);
        }
        objects.retain(|o| understood(&o.key) && self.covers(o.key.as_str()));
        let mut packs = Vec::new();
        for prefix in pack_prefixes {
            packs.extend(repo.storage().list(&prefix).await?);
        }
        packs.retain(|o| DataDir::parse_pack_key(o.key.as_str()).is_some());
        packs.retain(|o| self.covers(o.key.as_str()));
        Ok((objects, packs))
    }

    /// Objects outside the scope that only removed snapshots reference: a
    /// prune of every instance may collect them.
    fn shared_left(&self, manifests: &[Manifest], removed: &HashSet<&str>) -> usize {
        if matches!(self, Scope::All) {
            return 0;
        }
        let keys = |m: &'_ Manifest| -> Vec<String> {
            let blocks = m.blocks.iter().map(|b| b.object.key.clone());
            blocks
                .chain(m.config_files.iter().map(|c| c.key.clone()))
                .collect()
        };
        let (mut kept, mut dropped) = (HashSet::new(), HashSet::new());
        for m in manifests {
            match removed.contains(m.id.as_str()) {
                true => dropped.extend(keys(m)),
                false => kept.extend(keys(m)),
            }
        }
        dropped
            .iter()
            .filter(|k| !kept.contains(*k) && !self.covers(k))
            .count()
    }
}

fn decide(manifests: &[Manifest], opts: &PruneOptions) -> Result<Vec<Decision>> {
    let refs: Vec<SnapshotRef> = manifests
        .iter()
        .filter(|m| {
            opts.instance
                .as_ref()
                .is_none_or(|i| *i == m.instance || m.ha_group.as_ref() == Some(i))
        })
        .map(|m| SnapshotRef {
            id: m.id.clone(),
            time: m.created,
            // An HA group's replicas take turns: the group keeps N, not each replica.
            group: m.ha_group.clone().unwrap_or_else(|| m.instance.clone()),
        })
        .collect();
    retention::apply(&refs, &opts.policy, opts.now)
        .map_err(|e| Hinted::usage(e.to_string(), e.hint()).into())
}

impl<'a> Collection<'a> {
    /// Packs go like the other objects: kept while a kept snapshot's recipe
    /// references them, deleted once only removed snapshots' did, and
    /// deleted as orphans (left by interrupted backups) after the grace
    /// period. A pack a recipe within the grace period references stays
    /// too: the next backup may reuse that recipe. Repacked packs
    /// (`retired`) go, and all stay when a kept recipe could not be read.
    fn add_packs(
        &mut self,
        packs: &'a [ObjectMeta],
        users: &PackUsers,
        cutoff: DateTime<Utc>,
        retired: &HashSet<PackId>,
    ) {
        if users.unknown {
            return;
        }
        for object in packs {
            let Some(id) = DataDir::parse_pack_key(object.key.as_str()) else {
                continue;
            };
            if retired.contains(&id) {
                self.delete.push(object);
            } else if users.kept.contains(&id) {
                continue;
            } else if users.pinned.contains(&id) {
                self.orphans_in_grace += 1;
            } else if users.dropped.contains(&id) {
                self.delete.push(object);
            } else if object.last_modified.is_some_and(|t| t < cutoff) {
                self.delete.push(object);
                self.orphans_deleted += 1;
            } else {
                self.orphans_in_grace += 1;
            }
        }
    }
}

#[derive(Default)]
struct Collection<'a> {
    delete: Vec<&'a ObjectMeta>,
    orphans_deleted: usize,
    orphans_in_grace: usize,
}

/// Whether `key` has a shape this version writes below `blocks/`,
/// `recipes/` or `configs/`: `blocks/<ULID>/<fp>.tar.zst` or `.json`, a
/// recipe key of either layout (`recipes/[<g>/]<ULID>/<fp>[-<h>].json`,
/// [`DataDir::parse_recipe_key`]), `configs/<name>`. (Packs are
/// [`DataDir::parse_pack_key`]'s.)
fn understood(key: &Key) -> bool {
    let parts: Vec<&str> = key.as_str().split('/').collect();
    match parts.as_slice() {
        ["blocks", ulid, file] => {
            ulid.parse::<ulid::Ulid>().is_ok()
                && (file.ends_with(".tar.zst") || file.ends_with(".json"))
        }
        ["recipes", ..] => DataDir::parse_recipe_key(key.as_str()).is_some(),
        ["configs", _] => true,
        _ => false,
    }
}

/// `blocks/<ULID>/<fingerprint>` without the extension: an archive and its
/// entry live and die together. (`configs/<sha256>` objects are their own stem.)
fn stem(key: &Key) -> &str {
    let k = key.as_str();
    k.strip_suffix(".tar.zst")
        .or_else(|| k.strip_suffix(".json"))
        .unwrap_or(k)
}

/// Which packs the recipes of kept and of removed snapshots reference.
#[derive(Default)]
struct PackUsers {
    kept: HashSet<PackId>,
    dropped: HashSet<PackId>,
    /// Packs of recipes no manifest names that are younger than the grace
    /// period: an interrupted backup's, which the next backup reuses.
    pinned: HashSet<PackId>,
    /// A kept snapshot's recipe could not be read: any pack may be its.
    unknown: bool,
    /// What the kept snapshots' recipes use (each recipe once).
    recipes: KeptUse,
}

/// Reads the recipes of every format 2 block in `scope` (once per recipe),
/// and those that no manifest names but are within the grace period, and
/// sorts the packs they reference by whether something kept needs them.
/// A recipe references only packs of its own directory, so recipes outside
/// the scope are not read.
async fn pack_users(
    repo: &Repository,
    scope: &Scope,
    manifests: &[Manifest],
    removed: &HashSet<&str>,
    objects: &[ObjectMeta],
    cutoff: DateTime<Utc>,
) -> Result<PackUsers> {
    let mut entries: HashMap<&str, (&BlockEntry, bool)> = HashMap::new();
    for m in manifests {
        let kept = !removed.contains(m.id.as_str());
        let ours = |b: &&BlockEntry| b.is_recipe() && scope.covers(&b.object.key);
        for b in m.blocks.iter().filter(ours) {
            let e = entries.entry(b.object.key.as_str()).or_insert((b, kept));
            e.1 |= kept;
        }
    }
    let young_orphans: Vec<&ObjectMeta> = objects
        .iter()
        .filter(|o| o.key.as_str().starts_with("recipes/"))
        .filter(|o| !entries.contains_key(o.key.as_str()))
        .filter(|o| o.last_modified.is_none_or(|t| t >= cutoff))
        .collect();
    // Each recipe is handled as it arrives and dropped: what prune keeps
    // of them is a set of packs and the blobs kept ones use (`KeptUse`).
    let mut read = futures::stream::iter(entries.into_values())
        .map(|(entry, kept)| async move { (kept, entry, repo.load_recipe(entry).await) })
        .buffer_unordered(16);
    let mut users = PackUsers::default();
    while let Some((kept, entry, recipe)) = read.next().await {
        let recipe = match recipe {
            Ok(r) => r,
            // A missing recipe references nothing; verify reports it.
            Err(e) if e.downcast_ref::<crate::storage::NotFound>().is_some() => continue,
            Err(e) if crate::error::is_environment(&e) => return Err(e),
            Err(_) => {
                users.unknown |= kept;
                continue;
            }
        };
        // Validated manifests name only keys that parse: one that does not
        // is damage, and might reference any pack.
        let Ok(dir) = DataDir::of_recipe(&entry.object.key) else {
            users.unknown |= kept;
            continue;
        };
        let set = match kept {
            true => &mut users.kept,
            false => &mut users.dropped,
        };
        let mut packs: Vec<_> = recipe.blobs().map(|b| b.pack).collect();
        packs.sort_unstable();
        packs.dedup();
        set.extend(packs.into_iter().map(|p| (dir.clone(), p)));
        if kept {
            users.recipes.add(entry, dir, &recipe);
        }
    }
    drop(read);
    users.recipes.finish();
    for object in young_orphans {
        let bytes = match repo
            .storage()
            .get_bytes(&object.key, recipe::MAX_RECIPE_BYTES)
            .await
        {
            Ok(b) => b,
            Err(e) if crate::error::is_environment(&e) => return Err(e),
            // Gone, or unreadable: no backup can reuse it either.
            Err(_) => continue,
        };
        let dir = DataDir::of_recipe(object.key.as_str());
        if let (Ok(r), Ok(dir)) = (Recipe::parse(&bytes), dir) {
            users
                .pinned
                .extend(r.blobs().map(|b| (dir.clone(), b.pack)));
        }
    }
    Ok(users)
}

/// Which stored objects go: those only removed snapshots referenced,
/// recipes a repack replaced (`retired`), and orphans older than
/// `orphan_cutoff`.
fn collect<'a>(
    manifests: &[Manifest],
    removed: &HashSet<&str>,
    objects: &'a [ObjectMeta],
    orphan_cutoff: DateTime<Utc>,
    retired: &HashSet<String>,
) -> Collection<'a> {
    let stems = |keep: bool| -> HashSet<String> {
        manifests
            .iter()
            .filter(|m| removed.contains(m.id.as_str()) != keep)
            .flat_map(|m| {
                let blocks = m.blocks.iter().map(|b| &b.object.key);
                blocks.chain(m.config_files.iter().map(|c| &c.key))
            })
            .filter_map(|key| Key::new(key.clone()).ok())
            .map(|k| stem(&k).to_string())
            .collect()
    };
    let (kept, dropped) = (stems(true), stems(false));
    let mut c = Collection {
        delete: Vec::new(),
        orphans_deleted: 0,
        orphans_in_grace: 0,
    };
    for object in objects {
        let s = stem(&object.key);
        if retired.contains(object.key.as_str()) {
            c.delete.push(object);
            continue;
        }
        if kept.contains(s) {
            continue;
        }
        if dropped.contains(s) {
            c.delete.push(object);
        } else if object.last_modified.is_some_and(|t| t < orphan_cutoff) {
            c.delete.push(object);
            c.orphans_deleted += 1;
        } else {
            c.orphans_in_grace += 1;
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::content_id::ContentId;
    use crate::repo::manifest::tests::{sample_entry, sample_manifest};

    fn object(key: &str, age_hours: i64, now: DateTime<Utc>) -> ObjectMeta {
        ObjectMeta {
            key: Key::new(key).unwrap(),
            size: 10,
            last_modified: Some(now - chrono::Duration::hours(age_hours)),
        }
    }

    #[test]
    fn objects_go_only_when_nothing_kept_uses_them() {
        let now: DateTime<Utc> = "2026-11-25T12:00:00Z".parse().unwrap();
        let a = "01HQ3K6W2Z0000000000000000";
        let b = "01HQ3K6W2Z0000000000000001";
        let mut old = sample_manifest();
        old.id = "old".into();
        old.blocks = vec![sample_entry(a), sample_entry(b)];
        let mut new = sample_manifest();
        new.id = "new".into();
        new.blocks = vec![sample_entry(b)];
        let fp = &old.blocks[0].fingerprint;
        let objects = vec![
            object(&format!("blocks/{a}/{fp}.tar.zst"), 100, now),
            object(&format!("blocks/{a}/{fp}.json"), 100, now),
            object(&format!("blocks/{b}/{fp}.tar.zst"), 100, now),
            object(&format!("blocks/{b}/{fp}.json"), 100, now),
            object("blocks/01HQ3K6W2Z0000000000000009/x.tar.zst", 48, now),
            object("blocks/01HQ3K6W2Z0000000000000008/y.tar.zst", 1, now),
        ];
        let removed: HashSet<&str> = ["old"].into();
        let c = collect(
            &[old, new],
            &removed,
            &objects,
            now - chrono::Duration::hours(24),
            &HashSet::new(),
        );
        let deleted: Vec<&str> = c.delete.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(deleted.len(), 3, "{deleted:?}");
        assert!(deleted.iter().all(|k| k.contains(a) || k.contains("09")));
        assert_eq!((c.orphans_deleted, c.orphans_in_grace), (1, 1));

        // Nothing removed: only the old orphan goes.
        let c = collect(
            &[],
            &HashSet::new(),
            &objects[4..],
            now - chrono::Duration::hours(24),
            &HashSet::new(),
        );
        assert_eq!(c.delete.len(), 1);
    }

    #[test]
    fn packs_go_unless_something_kept_or_young_references_them() {
        let now: DateTime<Utc> = "2026-11-25T12:00:00Z".parse().unwrap();
        let dir = DataDir::of_group("prom-a");
        let id = |n: u8| (dir.clone(), ContentId::of(&[n]));
        let pack =
            |n: u8, age_hours: i64| object(id(n).0.pack_key(&id(n).1).as_str(), age_hours, now);
        // 1 kept, 2 dropped, 3 dropped but a young orphan recipe uses it,
        // 4 an old orphan, 5 a young orphan, 6 kept but repacked; 7 the
        // same bytes as 1 in the legacy directory, which nothing keeps.
        let mut packs: Vec<ObjectMeta> = (1..=6).map(|n| pack(n, 100)).collect();
        packs[4] = pack(5, 1);
        let legacy = DataDir::Legacy.pack_key(&id(1).1);
        packs.push(object(legacy.as_str(), 100, now));
        let users = PackUsers {
            kept: [id(1), id(6)].into(),
            dropped: [id(2), id(3)].into(),
            pinned: [id(3)].into(),
            ..PackUsers::default()
        };
        let mut c = Collection::default();
        c.add_packs(
            &packs,
            &users,
            now - chrono::Duration::hours(24),
            &[id(6)].into(),
        );
        let mut deleted: Vec<&str> = c.delete.iter().map(|o| o.key.as_str()).collect();
        deleted.sort();
        let mut expected: Vec<&str> = vec![
            packs[1].key.as_str(),
            packs[3].key.as_str(),
            packs[5].key.as_str(),
            legacy.as_str(),
        ];
        expected.sort();
        assert_eq!(deleted, expected);
        assert_eq!((c.orphans_deleted, c.orphans_in_grace), (2, 2));

        // A kept recipe that could not be read keeps every pack.
        let unknown = PackUsers {
            unknown: true,
            ..PackUsers::default()
        };
        let mut c = Collection::default();
        c.add_packs(&packs, &unknown, now, &HashSet::new());
        assert!(c.delete.is_empty());
    }

    #[test]
    fn a_prune_of_some_groups_covers_only_their_data_directories() {
        let ulid = "01M8MW2KRH61SWDYDTM3B9VJXT";
        let fp = "d0b05b87b941355260ee3525d3036a65";
        let pack = ContentId::of(b"p");
        let (a, b) = (DataDir::of_group("prom-a"), DataDir::of_group("prom-b"));
        let scope = Scope::Groups([a.clone()].into());
        let key = |dir: &DataDir| dir.recipe_key(ulid, fp).unwrap().to_string();
        assert!(scope.covers(&key(&a)));
        assert!(scope.covers(a.pack_key(&pack).as_str()));
        for outside in [
            key(&b),
            b.pack_key(&pack).to_string(),
            key(&DataDir::Legacy),
            DataDir::Legacy.pack_key(&pack).to_string(),
            format!("blocks/{ulid}/{fp}.tar.zst"),
            format!("configs/{}", "a".repeat(64)),
            format!("recipes/prom-a/{ulid}/x.json"),
        ] {
            assert!(!scope.covers(&outside), "{outside}");
        }
        // A group named like a legacy directory: the depth tells them apart.
        let like = DataDir::of_group(ulid);
        let scope = Scope::Groups([like.clone()].into());
        assert!(scope.covers(&key(&like)));
        assert!(!scope.covers(&key(&DataDir::Legacy)));
        assert!(Scope::All.covers(&key(&DataDir::Legacy)));
    }

    #[test]
    fn a_prune_of_one_group_counts_the_shared_objects_it_leaves() {
        let mut old = sample_manifest();
        old.id = "old".into();
        let mut new = sample_manifest();
        new.id = "new".into();
        let ulid = "01HQ3K6W2Z0000000000000000";
        let (mut legacy, mut grouped) = (sample_entry(ulid), sample_entry(ulid));
        let fp = legacy.fingerprint.clone();
        legacy.object.key = DataDir::Legacy.recipe_key(ulid, &fp).unwrap().to_string();
        grouped.object.key = DataDir::of_group("prom-a")
            .recipe_key(ulid, &fp)
            .unwrap()
            .to_string();
        old.blocks = vec![legacy, grouped.clone()];
        new.blocks = vec![grouped];
        let removed: HashSet<&str> = ["old"].into();
        let scope = Scope::Groups([DataDir::of_group("prom-a")].into());
        let manifests = [old, new];
        assert_eq!(scope.shared_left(&manifests, &removed), 1);
        assert_eq!(Scope::All.shared_left(&manifests, &removed), 0);
        assert_eq!(scope.shared_left(&manifests, &HashSet::new()), 0);
    }

    #[test]
    fn configuration_files_go_with_the_last_snapshot_that_lists_them() {
        use crate::repo::configfiles::ConfigFileEntry;
        let now: DateTime<Utc> = "2026-11-25T12:00:00Z".parse().unwrap();
        let config = |sha: &str| ConfigFileEntry {
            path: "/etc/prometheus/prometheus.yml".into(),
            name: "etc/prometheus/prometheus.yml".into(),
            kind: "config".into(),
            size: 10,
            sha256: sha.into(),
            key: format!("configs/{sha}"),
        };
        let (shared, only_old) = ("a".repeat(64), "b".repeat(64));
        let mut old = sample_manifest();
        old.id = "old".into();
        old.config_files = vec![config(&shared), config(&only_old)];
        old.config_files[1].name = "etc/prometheus/rules.yml".into();
        let mut new = sample_manifest();
        new.id = "new".into();
        new.config_files = vec![config(&shared)];
        let objects = vec![
            object(&format!("configs/{shared}"), 100, now),
            object(&format!("configs/{only_old}"), 100, now),
        ];
        let removed: HashSet<&str> = ["old"].into();
        let c = collect(&[old, new], &removed, &objects, now, &HashSet::new());
        let deleted: Vec<&str> = c.delete.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(deleted, [format!("configs/{only_old}")]);
        assert_eq!(c.orphans_deleted, 0);
    }

    #[test]
    fn only_objects_named_as_this_version_writes_them_can_go() {
        let ulid = "01M8MW2KRH61SWDYDTM3B9VJXT";
        let fp = "d0b05b87b941355260ee3525d3036a65";
        for ok in [
            format!("blocks/{ulid}/abc.tar.zst"),
            format!("blocks/{ulid}/abc.json"),
            format!("recipes/{ulid}/{fp}.json"),
            format!("recipes/{ulid}/{fp}-0123456789abcdef.json"),
            format!("recipes/prom-a/{ulid}/{fp}.json"),
            format!("recipes/prom-a/{ulid}/{fp}-0123456789abcdef.json"),
            format!("recipes/h-{}/{ulid}/{fp}.json", "0".repeat(32)),
            "configs/0123abcd".to_string(),
        ] {
            assert!(understood(&Key::new(ok.clone()).unwrap()), "{ok}");
        }
        for other in [
            format!("recipes/{ulid}/abc.json"),
            format!("recipes/prom-a/{ulid}/abc.json"),
            format!("recipes/a/b/{ulid}/{fp}.json"),
            format!("recipes/.hidden/{ulid}/{fp}.json"),
            format!("recipes/x.json/{ulid}/{fp}.json"),
            format!("recipes/prom-a/not-a-ulid/{fp}.json"),
            format!("blocks/{ulid}/abc/def.json"),
            "blocks/not-a-ulid/abc.json".to_string(),
            "configs/a/b".to_string(),
        ] {
            // (Some are no valid key at all.)
            let understood = Key::new(other.clone()).is_ok_and(|k| understood(&k));
            assert!(!understood, "{other}");
        }
    }
}
