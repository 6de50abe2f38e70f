//! Which snapshots a repository holds, where their manifests are, and
//! reading only the ones a command needs.
//!
//! Hundreds of Prometheus servers can share one repository, each with its
//! snapshots, so a command about one of them (`list --instance`, `restore
//! latest --instance`, a backup looking for the blocks it stored last night)
//! must not read every manifest there is. Manifests are therefore grouped by
//! the name a snapshot is grouped under (its HA group, else its instance):
//!
//! ```text
//! snapshots/<group>/<id>.json          manifests written by this version
//! snapshots/<id>.json                  manifests of earlier versions (read by every command)
//! snapshots/zzzzzzzz-repository-format-2.json   the sentinel that stops promsnap 0.1
//! instances/<instance>.json            the groups an HA replica's snapshots are in
//! ```
//!
//! One listing of `snapshots/` (keys only: about 1,000 per S3 request) says
//! which snapshots exist and in which group; the manifests of the groups a
//! command names are then read, and nothing else. `<group>` is
//! [`group_dir`] of the name. A manifest in a directory is checked to belong
//! there, and one whose key names another id is damaged, as before.
//!
//! Snapshot ids start with their UTC time, so sorting keys by id sorts the
//! snapshots of a group by time without reading them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{Context, Result};
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::datadir::DataDir;
use super::manifest::{self, Manifest, MAX_MANIFEST_BYTES};
use super::{find, Catalog, DamagedManifest, Repository, METADATA_CONCURRENCY};
use crate::error::Hinted;
use crate::storage::{BadObject, Key, NotFound};

/// The id of the sentinel manifest: promsnap 0.1 reads only
/// `snapshots/<id>.json`, finds this one, says that it is too old and
/// stops, instead of pruning data that grouped manifests reference.
pub const SENTINEL_ID: &str = "zzzzzzzz-repository-format-2";

/// The largest `instances/` object read.
const MAX_INSTANCE_BYTES: u64 = 64 * 1024;

/// The directory a group's manifests live in: the name itself when it is
/// a plain name (letters, digits, `.`, `_`, `-`, at most 64, not starting
/// with a dot, not ending in `.json`), else `h-` and 32 hex digits of its
/// SHA-256. Two names can share a directory only by intent; readers check
/// every manifest's group anyway.
pub fn group_dir(name: &str) -> String {
    let plain = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && !name.ends_with(".json")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    match plain {
        true => name.to_string(),
        false => format!("h-{}", hex::encode(&Sha256::digest(name.as_bytes())[..16])),
    }
}

/// Where this version writes the manifest `m`.
pub fn manifest_key(m: &Manifest) -> Result<Key> {
    manifest::validate_id(&m.id)?;
    Key::new(format!(
        "snapshots/{}/{}.json",
        group_dir(find::group_of(m)),
        m.id
    ))
}

fn sentinel_key() -> Key {
    Key::new(format!("snapshots/{SENTINEL_ID}.json")).expect("a valid key")
}

fn instance_key(instance: &str) -> Result<Key> {
    Key::new(format!("instances/{}.json", group_dir(instance)))
}

/// `instances/<instance>.json`: the groups whose directories hold the
/// snapshots of an HA replica (its own name is not one of them).
#[derive(Debug, Default, Serialize, Deserialize)]
struct InstanceIndex {
    instance: String,
    groups: BTreeSet<String>,
}

/// A snapshot as the listing shows it: its id and where its manifest is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    pub key: Key,
    /// The group directory, or none for a manifest of an earlier version
    /// (`snapshots/<id>.json`), whose group is known only once it is read.
    pub dir: Option<String>,
}

impl Repository {
    /// Every complete snapshot, by id (oldest first within a group), from
    /// one listing: no manifest is read.
    pub async fn listed(&self) -> Result<Vec<Listed>> {
        let objects = self
            .storage
            .list("snapshots/")
            .await
            .with_context(|| format!("could not list snapshots in {}", self.describe()))?;
        let mut listed = Vec::new();
        for o in objects {
            let Some(rest) = o.key.as_str().strip_prefix("snapshots/") else {
                continue;
            };
            let (dir, file) = match rest.split('/').collect::<Vec<_>>().as_slice() {
                [file] => (None, *file),
                [dir, file] => (Some(dir.to_string()), *file),
                _ => return Err(self.unknown_layout(&o.key)),
            };
            let Some(id) = file.strip_suffix(".json") else {
                continue;
            };
            if manifest::validate_id(id).is_err() || (dir.is_none() && id == SENTINEL_ID) {
                continue;
            }
            listed.push(Listed {
                id: id.to_string(),
                key: o.key.clone(),
                dir,
            });
        }
        listed.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(listed)
    }

    /// A layout deeper than this version writes: a later promsnap's. Its
    /// data would look unreferenced here, so every command stops.
    fn unknown_layout(&self, key: &Key) -> anyhow::Error {
        Hinted::usage(
            format!(
                "{} holds snapshots in a layout this promsnap ({}) does not know ({key}): a \
                 newer promsnap wrote it",
                self.describe(),
                env!("CARGO_PKG_VERSION"),
            ),
            "upgrade promsnap to read it; nothing was changed",
        )
        .into()
    }

    /// Ids of every complete snapshot, sorted.
    pub async fn snapshot_ids(&self) -> Result<Vec<String>> {
        Ok(self.listed().await?.into_iter().map(|l| l.id).collect())
    }

    /// Reads one manifest. The outer error is a failure to read at all
    /// (the storage is unreachable); the inner one says the manifest is
    /// damaged: too large, not a manifest, claiming another id, or in
    /// another group's directory.
    pub async fn read_manifest(&self, l: &Listed) -> Result<Result<Manifest, DamagedManifest>> {
        let damaged = |reason: String| {
            Ok(Err(DamagedManifest {
                id: l.id.clone(),
                key: l.key.to_string(),
                reason,
            }))
        };
        // Capped while it is read: a manifest of gigabytes costs no more
        // than the cap, and is damage like any other invalid manifest.
        let bytes = match self.storage.get_bytes(&l.key, MAX_MANIFEST_BYTES).await {
            Ok(bytes) => bytes,
            Err(e) if e.downcast_ref::<BadObject>().is_some() => return damaged(format!("{e:#}")),
            Err(e) => return Err(e),
        };
        match Manifest::parse(&bytes) {
            Ok(m) if m.id != l.id => damaged(format!(
                "it claims to be snapshot {} (renamed or tampered with)",
                m.id
            )),
            Ok(m)
                if l.dir
                    .as_ref()
                    .is_some_and(|d| *d != group_dir(find::group_of(&m))) =>
            {
                damaged(format!(
                    "it is a snapshot of {}, stored in another group's directory (moved or \
                     tampered with)",
                    find::group_of(&m)
                ))
            }
            Ok(m) if l.dir.as_ref().is_some_and(|d| names_foreign_data(&m, d)) => damaged(
                "it names a recipe in another group's data directory, which a prune of that \
                 group would not see (moved or tampered with)"
                    .into(),
            ),
            Ok(m) => Ok(Ok(m)),
            Err(e) => damaged(format!("{e:#}")),
        }
    }

    /// The manifest of the snapshot with this exact id; a damaged one is an
    /// error that says so.
    pub async fn load_manifest(&self, id: &str) -> Result<Manifest> {
        let listed = self.listed().await?;
        let Some(l) = listed.iter().find(|l| l.id == id) else {
            return Err(Hinted::failure(
                format!("snapshot {id} is no longer in {}", self.describe()),
                "a prune may have removed it meanwhile; `promsnap list` shows what there is",
            )
            .into());
        };
        self.read_manifest(l).await?.map_err(|d| self.invalid(&d))
    }

    /// The error for a damaged manifest that a command needed.
    pub(super) fn invalid(&self, d: &DamagedManifest) -> anyhow::Error {
        Hinted::failure(
            format!(
                "manifest {} in {} is invalid: {}",
                d.key,
                self.describe(),
                d.reason
            ),
            "it is damaged or was tampered with; `promsnap verify` checks the repository, and \
             other snapshots are not affected (`promsnap list`)",
        )
        .into()
    }

    /// Every snapshot the repository lists: the manifests that read, oldest
    /// first (by creation time, then id), and the damaged ones apart. One
    /// bad file must not take the repository down: `list`, `restore` and
    /// `verify` of every other snapshot go on, and prune keeps whatever a
    /// damaged manifest might reference.
    pub async fn catalog(&self) -> Result<Catalog> {
        let listed = self.listed().await?;
        self.read_catalog(listed).await
    }

    /// The snapshots that may belong to `instance` (an instance or an HA
    /// group): its group's directory, the directories of the HA groups the
    /// instance index names, and the manifests of earlier versions. The
    /// caller still picks by [`find::belongs_to`]; the other groups'
    /// manifests are not read. Without an instance, all.
    pub async fn catalog_of(&self, instance: Option<&str>) -> Result<Catalog> {
        let Some(instance) = instance else {
            return self.catalog().await;
        };
        let dirs = self.group_dirs_of(instance).await?;
        let listed = self
            .listed()
            .await?
            .into_iter()
            .filter(|l| l.dir.as_ref().is_none_or(|d| dirs.contains(d)))
            .collect();
        self.read_catalog(listed).await
    }

    /// The group directories [`Repository::catalog_of`] reads for
    /// `instance`: its own and those of the HA groups its index names.
    pub async fn group_dirs_of(&self, instance: &str) -> Result<BTreeSet<String>> {
        let mut dirs: BTreeSet<String> = BTreeSet::from([group_dir(instance)]);
        dirs.extend(
            self.instance_groups(instance)
                .await?
                .iter()
                .map(|g| group_dir(g)),
        );
        Ok(dirs)
    }

    /// How many snapshots each group directory holds, from the listing
    /// alone (the manifests of earlier versions under `None`).
    pub async fn group_counts(&self) -> Result<BTreeMap<Option<String>, usize>> {
        let mut counts = BTreeMap::new();
        for l in self.listed().await? {
            *counts.entry(l.dir).or_default() += 1;
        }
        Ok(counts)
    }

    /// The bytes the objects of `group` (an HA group, else an instance)
    /// take: its manifests, recipes and packs, from listings of
    /// `snapshots/<g>/`, `recipes/<g>/` and `packs/<g>/` only, so that each
    /// of a fleet's hundreds of sidecars lists what is its own and not the
    /// whole repository. Data written before groups (format 1 archives,
    /// earlier recipes and packs) is shared by every group and not counted.
    pub async fn group_stored_bytes(&self, group: &str) -> Result<u64> {
        let g = group_dir(group);
        let dir = DataDir::Group(g.clone());
        let prefixes = [
            format!("snapshots/{g}/"),
            dir.recipe_prefix(),
            dir.pack_prefix(),
        ];
        let listed = futures::future::try_join_all(prefixes.iter().map(|p| async move {
            self.storage
                .list(p)
                .await
                .with_context(|| format!("could not list {p} in {}", self.describe()))
        }))
        .await?;
        Ok(listed.iter().flatten().map(|o| o.size).sum())
    }

    async fn read_catalog(&self, listed: Vec<Listed>) -> Result<Catalog> {
        let read: Vec<(Listed, Result<Result<Manifest, DamagedManifest>>)> =
            futures::stream::iter(listed)
                .map(|l| async move {
                    let r = self.read_manifest(&l).await;
                    (l, r)
                })
                .buffer_unordered(METADATA_CONCURRENCY)
                .collect()
                .await;
        let mut catalog = Catalog::default();
        for (l, result) in read {
            add_read(&mut catalog, l, result)?;
        }
        sort(&mut catalog);
        Ok(catalog)
    }

    /// The HA groups `instance`'s snapshots are in, from its index object.
    /// A missing or unreadable index names none (the snapshots of earlier
    /// versions are read anyway).
    async fn instance_groups(&self, instance: &str) -> Result<BTreeSet<String>> {
        let key = instance_key(instance)?;
        let bytes = match self.storage.get_bytes(&key, MAX_INSTANCE_BYTES).await {
            Ok(b) => b,
            Err(e) if e.downcast_ref::<NotFound>().is_some() => return Ok(BTreeSet::new()),
            Err(e) if e.downcast_ref::<BadObject>().is_some() => return Ok(BTreeSet::new()),
            Err(e) => return Err(e),
        };
        Ok(serde_json::from_slice::<InstanceIndex>(&bytes)
            .ok()
            .filter(|i| i.instance == instance)
            .map(|i| i.groups)
            .unwrap_or_default())
    }

    /// Finds the snapshot named by `spec`: `latest`, an id, or a unique id
    /// prefix; `instance` narrows the choice to one instance or HA group
    /// (see `find.rs` for the rules that keep it from taking another
    /// server's snapshot). Only the manifests that can match are read; when
    /// nothing matches, all are, so that the error can say what there is.
    /// Warnings come back with it: a damaged manifest newer than the
    /// `latest` found might have been the one meant.
    pub async fn resolve(
        &self,
        spec: &str,
        instance: Option<&str>,
    ) -> Result<(Manifest, Vec<String>)> {
        let catalog = match (spec, instance) {
            (_, Some(i)) => self.catalog_of(Some(i)).await?,
            ("latest", None) => self.catalog().await?,
            (prefix, None) => {
                let listed = self
                    .listed()
                    .await?
                    .into_iter()
                    .filter(|l| l.id.starts_with(prefix))
                    .collect();
                self.read_catalog(listed).await?
            }
        };
        match self.resolve_in(&catalog, spec, instance) {
            Ok(found) => Ok(found),
            // Let the error see the whole repository.
            Err(_) => {
                let all = self.catalog().await?;
                self.resolve_in(&all, spec, instance)
            }
        }
    }

    fn resolve_in(
        &self,
        catalog: &Catalog,
        spec: &str,
        instance: Option<&str>,
    ) -> Result<(Manifest, Vec<String>)> {
        if let Some(d) = catalog.damaged.iter().find(|d| d.id == spec) {
            return Err(self.invalid(d));
        }
        let found = match find::find(&catalog.manifests, spec, instance, &self.describe()) {
            Ok(found) => found.clone(),
            // Nothing readable matches, but a damaged manifest might have:
            // say that, not "no such snapshot".
            Err(e) => {
                let newest_damaged = catalog
                    .damaged
                    .iter()
                    .rev()
                    .find(|d| spec == "latest" || d.id.starts_with(spec));
                return Err(match newest_damaged {
                    Some(d) => self.invalid(d),
                    None => e,
                });
            }
        };
        let warnings = catalog
            .damaged
            .iter()
            .filter(|d| spec == "latest" && d.id > found.id)
            .map(|d| {
                format!(
                    "snapshot {} is newer than {} but its manifest is damaged ({}); it may have \
                     been the latest",
                    d.id, found.id, d.reason
                )
            })
            .collect();
        Ok((found, warnings))
    }

    /// Writes a manifest: from this moment the snapshot exists. Before it,
    /// the sentinel for promsnap 0.1 and, for an HA replica, the index that
    /// finds its group.
    pub async fn write_manifest(&self, m: &Manifest) -> Result<()> {
        m.validate()?;
        let key = manifest_key(m)?;
        let sentinel = serde_json::json!({"format_version": 2, "id": SENTINEL_ID});
        self.storage
            .put_bytes(&sentinel_key(), Bytes::from(sentinel.to_string()))
            .await
            .context("could not write the sentinel manifest for promsnap 0.1")?;
        if let Some(group) = m.ha_group.as_deref().filter(|g| *g != m.instance) {
            let mut groups = self.instance_groups(&m.instance).await?;
            if groups.insert(group.to_string()) {
                let index = InstanceIndex {
                    instance: m.instance.clone(),
                    groups,
                };
                let json = serde_json::to_vec(&index).expect("an index serializes");
                self.storage
                    .put_bytes(&instance_key(&m.instance)?, Bytes::from(json))
                    .await
                    .with_context(|| format!("could not write the index of {}", m.instance))?;
            }
        }
        self.storage
            .put_bytes(&key, Bytes::from(m.to_json()))
            .await
            .with_context(|| format!("could not write manifest {key}"))?;
        Ok(())
    }
}

impl Repository {
    /// Writes a changed manifest back where it was read from (prune's
    /// repack points it at new recipes).
    pub async fn rewrite_manifest(&self, m: &Manifest, key: &Key) -> Result<()> {
        m.validate()?;
        self.storage
            .put_bytes(key, Bytes::from(m.to_json()))
            .await
            .with_context(|| format!("could not write manifest {key}"))?;
        Ok(())
    }
}

/// One group's snapshots, as [`Groups::next`] yields them.
#[derive(Debug)]
pub struct Group {
    /// The group's name (its HA group, else its instance); the directory's
    /// name for a directory none of whose manifests could be read.
    pub name: String,
    /// Its manifests, oldest first (those of earlier versions among them),
    /// and the damaged ones of its directory.
    pub catalog: Catalog,
}

/// Every group of a repository, one at a time, in the order of their names
/// (the order `list` prints them in), for a command about all of them that
/// should not hold all of them at once. The listing (keys only) is read
/// first; then the manifests are read in group order, at most
/// [`METADATA_CONCURRENCY`] at a time and in order, so that reads run on
/// across a group's end and memory holds one group's manifests and the
/// reads in flight, not the repository.
///
/// Two things are read before the first group: the manifests of earlier
/// versions (`snapshots/<id>.json`, whose group is known only once read),
/// and one manifest of each hashed directory (`h-...`), whose group's name
/// is known only from a manifest, to put it in its place in the order.
pub struct Groups<'r> {
    /// Group names in order, each with how many of `reads` are its own.
    order: std::collections::VecDeque<(String, usize)>,
    /// The manifests of earlier versions not yet handed on, by group.
    earlier: HashMap<String, Vec<Manifest>>,
    earlier_keys: Keys,
    /// The damaged manifests of earlier versions.
    pub earlier_damaged: Vec<DamagedManifest>,
    reads: futures::stream::BoxStream<'r, (Listed, Result<Result<Manifest, DamagedManifest>>)>,
}

impl Repository {
    /// Every group's snapshots, one group at a time: see [`Groups`].
    pub async fn groups(&self) -> Result<Groups<'_>> {
        let (earlier, grouped): (Vec<Listed>, Vec<Listed>) = self
            .listed()
            .await?
            .into_iter()
            .partition(|l| l.dir.is_none());
        let earlier = self.read_catalog(earlier).await?;
        let mut dirs: BTreeMap<String, Vec<Listed>> = BTreeMap::new();
        for l in grouped {
            let dir = l.dir.clone().expect("a grouped snapshot");
            dirs.entry(dir).or_default().push(l);
        }
        let names = self.dir_names(&dirs).await?;
        let mut by_name: BTreeMap<String, Vec<Listed>> = BTreeMap::new();
        for (dir, listed) in dirs {
            let name = names.get(&dir).cloned().unwrap_or(dir);
            by_name.entry(name).or_default().extend(listed);
        }
        let mut groups: HashMap<String, Vec<Manifest>> = HashMap::new();
        for m in earlier.manifests {
            let name = find::group_of(&m).to_string();
            by_name.entry(name.clone()).or_default();
            groups.entry(name).or_default().push(m);
        }
        let order = by_name.iter().map(|(n, l)| (n.clone(), l.len())).collect();
        let reads = futures::stream::iter(by_name.into_values().flatten())
            .map(move |l| async move {
                let r = self.read_manifest(&l).await;
                (l, r)
            })
            .buffered(METADATA_CONCURRENCY)
            .boxed();
        Ok(Groups {
            order,
            earlier: groups,
            earlier_keys: earlier.keys,
            earlier_damaged: earlier.damaged,
            reads,
        })
    }

    /// The group name of each hashed directory (`h-` and 32 hex digits),
    /// from the first of its manifests that reads and belongs there; a
    /// plain directory is its group's name. A directory with no such
    /// manifest keeps its own name.
    async fn dir_names(
        &self,
        dirs: &BTreeMap<String, Vec<Listed>>,
    ) -> Result<HashMap<String, String>> {
        let hashed = dirs.iter().filter(|(d, _)| {
            d.len() == 34 && d.starts_with("h-") && d[2..].bytes().all(|b| b.is_ascii_hexdigit())
        });
        futures::stream::iter(hashed)
            .map(|(dir, listed)| async move {
                // The newest first: the one most likely intact.
                for l in listed.iter().rev() {
                    match self.read_manifest(l).await {
                        Ok(Ok(m)) => {
                            return Ok(Some((dir.clone(), find::group_of(&m).to_string())))
                        }
                        Ok(Err(_)) => {}
                        Err(e) if e.downcast_ref::<NotFound>().is_some() => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(None)
            })
            .buffer_unordered(METADATA_CONCURRENCY)
            .filter_map(|r| async move { r.transpose() })
            .collect::<Vec<Result<(String, String)>>>()
            .await
            .into_iter()
            .collect()
    }
}

impl Groups<'_> {
    /// The names of the groups still to come, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(|(name, _)| name.as_str())
    }

    /// The manifests of earlier versions not yet handed on by
    /// [`Groups::next`] (all of them before the first call).
    pub fn earlier(&self) -> impl Iterator<Item = &Manifest> {
        self.earlier.values().flatten()
    }

    /// The next group, or none after the last. A storage failure is an
    /// error; a manifest removed since the listing (a prune) is gone, and
    /// a damaged one is in the group's `catalog.damaged`.
    pub async fn next(&mut self) -> Result<Option<Group>> {
        let Some((name, count)) = self.order.pop_front() else {
            return Ok(None);
        };
        let mut catalog = Catalog::default();
        for m in self.earlier.remove(&name).unwrap_or_default() {
            if let Some(key) = self.earlier_keys.remove(&m.id) {
                catalog.keys.insert(m.id.clone(), key);
            }
            catalog.manifests.push(m);
        }
        for _ in 0..count {
            let Some((l, result)) = self.reads.next().await else {
                break;
            };
            add_read(&mut catalog, l, result)?;
        }
        sort(&mut catalog);
        Ok(Some(Group { name, catalog }))
    }
}

/// Adds what reading the listed manifest `l` gave to `catalog`.
fn add_read(
    catalog: &mut Catalog,
    l: Listed,
    result: Result<Result<Manifest, DamagedManifest>>,
) -> Result<()> {
    match result {
        Ok(Ok(m)) => {
            catalog.keys.insert(m.id.clone(), l.key);
            catalog.manifests.push(m);
        }
        Ok(Err(d)) => catalog.damaged.push(d),
        // Removed since it was listed (a prune): it is gone.
        Err(e) if e.downcast_ref::<NotFound>().is_some() => {}
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Manifests oldest first, damaged ones by id.
fn sort(catalog: &mut Catalog) {
    catalog
        .manifests
        .sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    catalog.damaged.sort_by(|a, b| a.id.cmp(&b.id));
}

/// Whether a manifest of the group directory `dir` names a recipe of
/// another group's data directory: a group's manifests name its own data
/// or data written before groups, so that a prune of one group, reading
/// only its manifests, sees every reference to its data.
fn names_foreign_data(m: &Manifest, dir: &str) -> bool {
    m.blocks.iter().any(|b| {
        DataDir::parse_recipe_key(&b.object.key)
            .is_some_and(|k| matches!(&k.dir, DataDir::Group(g) if g != dir))
    })
}

/// The listed snapshots that may be `group`'s (its directory, and the
/// manifests of earlier versions, whose group is not known unread), in id
/// order: oldest first.
pub fn of_group<'l>(listed: &'l [Listed], group: &str) -> Vec<&'l Listed> {
    let dir = group_dir(group);
    listed
        .iter()
        .filter(|l| l.dir.as_ref().is_none_or(|d| *d == dir))
        .collect()
}

/// Manifests by id, for the callers that delete them.
pub type Keys = HashMap<String, Key>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_their_own_directory_and_others_are_hashed() {
        assert_eq!(group_dir("prom-eu1_a.2"), "prom-eu1_a.2");
        for odd in [
            "",
            ".hidden",
            "a/b",
            "monitoring/k8s",
            "x.json",
            "ünïcode",
            &"a".repeat(65),
        ] {
            let dir = group_dir(odd);
            assert!(dir.starts_with("h-") && dir.len() == 34, "{odd:?} -> {dir}");
            assert!(Key::new(format!("snapshots/{dir}/x.json")).is_ok());
        }
        assert_ne!(group_dir("a/b"), group_dir("a/c"));
    }

    /// What `serve` reports for its group: the bytes below that group's
    /// three directories, and nothing of another group, of the data
    /// written before groups or of the repository's own objects.
    #[tokio::test]
    async fn a_group_stores_what_its_directories_hold_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let put = |key: &str, len: usize| {
            let path = dir.path().join(key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, vec![7u8; len]).unwrap();
        };
        let hashed = group_dir("cluster=eu1");
        for (key, len) in [
            ("snapshots/prom-a/20261201T000000Z-00000000.json", 100),
            ("recipes/prom-a/01JAAAAAAAAAAAAAAAAAAAAAAA/f.json", 20),
            (&format!("packs/prom-a/ab/{}", "ab".repeat(32)), 3000),
            ("snapshots/prom-b/20261201T000000Z-00000001.json", 1 << 20),
            (&format!("packs/prom-b/ab/{}", "ab".repeat(32)), 1 << 20),
            (&format!("packs/ab/{}", "ab".repeat(32)), 1 << 20),
            ("snapshots/20261101T000000Z-00000002.json", 1 << 20),
            ("repository.json", 1 << 20),
            (
                &format!("snapshots/{hashed}/20261201T000000Z-00000003.json"),
                5,
            ),
        ] {
            put(key, len);
        }
        let storage = crate::storage::LocalStorage::new(dir.path().to_path_buf());
        let repo = Repository::new(std::sync::Arc::new(storage));
        assert_eq!(repo.group_stored_bytes("prom-a").await.unwrap(), 3120);
        assert_eq!(repo.group_stored_bytes("cluster=eu1").await.unwrap(), 5);
        assert_eq!(repo.group_stored_bytes("nobody").await.unwrap(), 0);
    }
}
