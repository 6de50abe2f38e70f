//! Verifying a repository: would these backups restore into a working
//! Prometheus?
//!
//! Three levels, each including the one before:
//!
//! - quick: every manifest parses and validates; every object it references
//!   exists with the recorded size (a stat, no download).
//! - read (the default): every referenced object is downloaded and its
//!   SHA-256 compared with the manifest, streaming, several at once.
//! - deep: every archive is also decompressed and walked as it streams in,
//!   each file's size and SHA-256 checked, and the block's TSDB structure
//!   read with our own parser (`tsdb::check`): meta.json, index sections and
//!   TOC, chunk records, tombstones, all CRCs. This finds blocks that were
//!   already damaged on Prometheus's disk when they were backed up, which no
//!   hash of the backup can. Chunk segments are checked in the stream and
//!   never written; only the small files (index, meta.json, tombstones) go
//!   to the scratch directory, so scratch space is about the largest index
//!   times the concurrency, not the largest block.
//!
//! Configuration files stored with the snapshots are checked at every level
//! as well: a stat at quick, and above it (being small) read whole and
//! hashed, whatever the subset.
//!
//! An object shared by many snapshots is checked once and its problems are
//! reported against every snapshot that needs it. `subset` spreads the
//! download levels of a large repository over several runs, as restic's
//! `--read-data-subset` does. Problems are collected, not thrown: verify
//! reports everything it finds and the caller turns "found problems" into
//! exit code 3. Errors (the storage cannot be listed) still propagate.

mod format2;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use std::io::Read;

use anyhow::Result;
use futures::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::catalog::Listed;
use super::configfiles::ConfigFileEntry;
use super::content_id::IdHash;
use super::download;
use super::manifest::{BlockEntry, FileEntry, Manifest};
use super::pack::hashes::PackHashes;
use super::pack::readahead::Budgets;
use super::Repository;
use crate::archive::{self, EntrySink, Unpacker};
use crate::error::{environment, environment_hint, is_environment, local_io, Hinted, Place};
use crate::progress::Progress;
use crate::prometheus::config_files::MAX_FILE_SIZE;
use crate::storage::{BadKind, BadObject, Key, NotFound};
use crate::tsdb::check::{self, CheckOptions, StreamedBlock};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Quick,
    Read,
    Deep,
}

/// Which part of the objects the download levels look at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Subset {
    /// Group `n` (1-based) of `m`, chosen by a hash of the object key, so
    /// running 1/7 .. 7/7 on seven nights covers everything once.
    Part { n: u64, m: u64 },
    /// A random share, in percent.
    Percent(f64),
}

impl std::str::FromStr for Subset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p
                .trim()
                .parse()
                .map_err(|_| format!("{s:?} is not a percentage"))?;
            if !(v > 0.0 && v <= 100.0) {
                return Err(format!(
                    "{s:?}: the percentage must be above 0 and at most 100"
                ));
            }
            return Ok(Subset::Percent(v));
        }
        let (n, m) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: use N% or n/m, e.g. 10% or 2/7"))?;
        let (n, m): (u64, u64) = (
            n.trim()
                .parse()
                .map_err(|_| format!("{s:?}: n is not a number"))?,
            m.trim()
                .parse()
                .map_err(|_| format!("{s:?}: m is not a number"))?,
        );
        if n == 0 || n > m {
            return Err(format!("{s:?}: n must be between 1 and m"));
        }
        Ok(Subset::Part { n, m })
    }
}

impl Subset {
    fn includes(&self, key: &str) -> bool {
        match *self {
            Subset::Part { n, m } => {
                let h = Sha256::digest(key.as_bytes());
                let v = u64::from_be_bytes(h[..8].try_into().expect("8 bytes"));
                v % m == n - 1
            }
            Subset::Percent(p) => rand::random::<f64>() * 100.0 < p,
        }
    }
}

pub struct VerifyOptions {
    pub level: Level,
    /// Every snapshot is verified: data none references is reported too.
    pub whole_repository: bool,
    pub subset: Option<Subset>,
    /// Objects checked at the same time.
    pub concurrency: usize,
    /// Where deep checks put a block's small files (one per concurrent check).
    pub scratch: std::path::PathBuf,
}

/// One thing found wrong, located as precisely as we can.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// Snapshots that need the damaged object (or the damaged manifest's id).
    pub snapshots: Vec<String>,
    pub block: Option<String>,
    pub object: Option<String>,
    /// A file inside the block.
    pub file: Option<String>,
    /// Byte offset in `file`.
    pub offset: Option<u64>,
    pub kind: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub level: Level,
    pub snapshots: usize,
    pub blocks: usize,
    pub objects: usize,
    /// Objects downloaded (read and deep levels; fewer with a subset).
    pub objects_read: usize,
    /// The bytes of those objects (archives, packs).
    pub bytes_read: u64,
    /// Everything read from the storage (objects, recipes, pack headers,
    /// the ranges rebuilds read): what an object store bills as egress.
    pub bytes_downloaded: u64,
    pub problems: Vec<Problem>,
    /// Findings that are not damage (e.g. chunk encodings newer than promsnap).
    pub notes: Vec<Problem>,
}

/// A referenced object and who references it.
struct Target<'a> {
    entry: &'a BlockEntry,
    snapshots: Vec<String>,
}

pub async fn run(
    repo: &Repository,
    ids: &[String],
    opts: &VerifyOptions,
    progress: Arc<dyn Progress>,
) -> Result<VerifyReport> {
    let (repo, downloaded) = repo.counting_downloads();
    let repo = &repo;
    let mut problems = Vec::new();
    let mut manifests = Vec::new();
    let listed: HashMap<String, Listed> = repo
        .listed()
        .await?
        .into_iter()
        .map(|l| (l.id.clone(), l))
        .collect();
    for id in ids {
        let Some(l) = listed.get(id) else {
            return Err(Hinted::failure(
                format!("snapshot {id} is no longer in {}", repo.describe()),
                "a prune may have removed it while verify started; `promsnap list` shows what \
                 there is",
            )
            .into());
        };
        match load(repo, l).await? {
            Ok(m) => manifests.push(m),
            Err(p) => problems.push(p),
        }
    }
    let mut targets: BTreeMap<&str, Target> = BTreeMap::new();
    for m in &manifests {
        for b in &m.blocks {
            targets
                .entry(b.object.key.as_str())
                .or_insert(Target {
                    entry: b,
                    snapshots: Vec::new(),
                })
                .snapshots
                .push(m.id.clone());
        }
    }
    let blocks = manifests.iter().map(|m| m.blocks.len()).sum();
    problems.extend(stat_all(repo, &targets, opts.concurrency).await?);
    let (format2, packs) = format2::quick(repo, &targets, opts.concurrency).await?;
    problems.extend(format2);
    problems.extend(check_config_files(repo, &manifests, opts.level).await?);
    let mut chosen: Vec<&Target> = targets
        .values()
        .filter(|_| opts.level >= Level::Read)
        .filter(|t| opts.subset.is_none_or(|s| s.includes(&t.entry.object.key)))
        .collect();
    super::largest_first(&mut chosen, |t| t.entry.stored());
    // What the progress advances by: an object's bytes as it is read; a
    // recipe's block's bytes as it is rebuilt (deep); every pack's bytes
    // as it is hashed (read and deep).
    let objects: u64 = chosen
        .iter()
        .map(|t| match t.entry.is_recipe() && opts.level == Level::Deep {
            true => t.entry.data_size(),
            false => t.entry.object.size,
        })
        .sum();
    let packs_read = match format2::reads(opts.level) {
        true => packs.bytes(opts.subset),
        false => 0,
    };
    progress.set_total(objects + packs_read);
    let budgets = Budgets::new(
        chosen.iter().map(|t| t.entry.stored()),
        opts.concurrency,
        repo.storage().prefers_long_reads(),
    );
    // Deep verify of a BLAKE3 repository hashes the packs from what its
    // rebuilds read of them, and reads only the rest after (each byte
    // once); otherwise the packs are read on their own (below).
    let hashes = (opts.level == Level::Deep && repo.ids() == IdHash::Blake3)
        .then(|| packs.hashes(opts.subset, &progress));
    let objects = futures::stream::iter(chosen.iter())
        .map(|t| {
            read_one(
                repo,
                t,
                opts,
                budgets.of(t.entry.stored()),
                progress.clone(),
                hashes.clone(),
            )
        })
        .buffer_unordered(opts.concurrency.max(1))
        .collect::<Vec<Result<Vec<Problem>>>>();
    // Without `hashes`, the packs are hashed while the blocks are read (or
    // rebuilt, at the deep level of a `sha256` repository): a rebuild
    // leaves cores idle while it waits on its slowest stage, and hashing
    // the packs after it was a pass of its own. Beside rebuilds, one pack
    // at a time fills those gaps, and adds one download's buffers to what
    // the rebuilds hold.
    let pack_concurrency = match opts.level {
        Level::Deep => 1,
        _ => opts.concurrency,
    };
    let pack_hashes = async {
        match format2::reads(opts.level) && hashes.is_none() {
            true => Some(
                format2::read(repo, &packs, opts.subset, pack_concurrency, &progress, None).await,
            ),
            false => None,
        }
    };
    let (results, mut hashed) = tokio::join!(objects, pack_hashes);
    if let Some(hashes) = &hashes {
        let (subset, concurrency) = (opts.subset, opts.concurrency);
        let rest = format2::read(repo, &packs, subset, concurrency, &progress, Some(hashes));
        hashed = Some(rest.await);
    }
    let (mut packs_read, mut pack_bytes) = (0, 0);
    let mut notes = Vec::new();
    if let Some(hashed) = hashed {
        let (found, n, bytes) = hashed?;
        problems.extend(found);
        (packs_read, pack_bytes) = (n, bytes);
        if opts.whole_repository {
            notes.extend(format2::unreferenced(repo, &packs).await?);
        }
    }
    for r in results {
        for p in r? {
            if check::ProblemKind::is_note_name(&p.kind) {
                notes.push(p);
            } else {
                problems.push(p);
            }
        }
    }
    problems.sort_by(|a, b| (&a.block, &a.file, a.offset).cmp(&(&b.block, &b.file, b.offset)));
    Ok(VerifyReport {
        level: opts.level,
        snapshots: ids.len(),
        blocks,
        objects: targets.len() + packs.len(),
        objects_read: chosen.len() + packs_read,
        bytes_read: chosen.iter().map(|t| t.entry.object.size).sum::<u64>() + pack_bytes,
        bytes_downloaded: downloaded.load(std::sync::atomic::Ordering::Relaxed),
        problems,
        notes,
    })
}

/// A manifest, or the problem that makes it unusable (`read_manifest`
/// says which: too large, not a manifest, another id or another group's).
/// Other storage errors are errors: they say nothing about the backup.
async fn load(repo: &Repository, listed: &Listed) -> Result<Result<Manifest, Problem>> {
    Ok(repo.read_manifest(listed).await?.map_err(|d| Problem {
        snapshots: vec![d.id],
        block: None,
        object: Some(d.key),
        file: None,
        offset: None,
        kind: "invalid_manifest".into(),
        message: d.reason,
    }))
}

/// The quick level: every object exists with the recorded size.
async fn stat_all(
    repo: &Repository,
    targets: &BTreeMap<&str, Target<'_>>,
    concurrency: usize,
) -> Result<Vec<Problem>> {
    let results: Vec<Result<Option<Problem>>> = futures::stream::iter(targets.values())
        .map(|t| async move {
            let key = Key::new(t.entry.object.key.clone())?;
            let found = match repo.storage().head(&key).await {
                Ok(found) => found,
                Err(e) => match bad_object(&e) {
                    Some(kind) => return Ok(Some(problem(t, kind, format!("{e:#}")))),
                    None => return Err(e),
                },
            };
            Ok(match found {
                None => Some(problem(
                    t,
                    "missing_object",
                    "the object does not exist".into(),
                )),
                Some(m) if m.size != t.entry.object.size => Some(problem(
                    t,
                    "size_mismatch",
                    format!("expected {} bytes, found {}", t.entry.object.size, m.size),
                )),
                Some(_) => None,
            })
        })
        .buffer_unordered(concurrency.max(1) * 4)
        .collect()
        .await;
    results.into_iter().filter_map(Result::transpose).collect()
}

/// The configuration files the snapshots list. They are small, so above the
/// quick level each is read whole and hashed, whatever the subset.
async fn check_config_files(
    repo: &Repository,
    manifests: &[Manifest],
    level: Level,
) -> Result<Vec<Problem>> {
    let mut users: BTreeMap<&str, (&ConfigFileEntry, Vec<String>)> = BTreeMap::new();
    for m in manifests {
        for c in &m.config_files {
            let user = users.entry(c.key.as_str()).or_insert((c, Vec::new()));
            user.1.push(m.id.clone());
        }
    }
    let mut problems = Vec::new();
    for (key, (entry, snapshots)) in users {
        let key = Key::new(key)?;
        // Read no more than the manifest records (and never more than a
        // configuration file may be), whatever the object holds.
        let max = entry.size.min(MAX_FILE_SIZE);
        let found = match level {
            Level::Quick => repo
                .storage()
                .head(&key)
                .await
                .map(|m| m.map(|m| (m.size, None))),
            _ => match repo.storage().get_bytes(&key, max).await {
                Ok(data) => Ok(Some((
                    data.len() as u64,
                    Some(hex::encode(Sha256::digest(&data))),
                ))),
                Err(e) if e.downcast_ref::<NotFound>().is_some() => Ok(None),
                Err(e) => Err(e),
            },
        };
        let (kind, message) = match found {
            Err(e) => match bad_object(&e) {
                Some(kind) => (kind, format!("{e:#}")),
                None => return Err(e),
            },
            Ok(None) => ("missing_object", "the object does not exist".to_string()),
            Ok(Some((size, _))) if size != entry.size => (
                "size_mismatch",
                format!("expected {} bytes, found {size}", entry.size),
            ),
            Ok(Some((_, Some(sha)))) if sha != entry.sha256 => (
                "checksum_mismatch",
                format!("expected SHA-256 {}, got {sha}", entry.sha256),
            ),
            _ => continue,
        };
        problems.push(Problem {
            snapshots,
            block: None,
            object: Some(key.to_string()),
            file: Some(entry.path.clone()),
            offset: None,
            kind: kind.into(),
            message: format!("configuration file {}: {message}", entry.path),
        });
    }
    Ok(problems)
}

/// The problem kind for an object the storage refused to read
/// ([`BadObject`]): damage in the repository, not an error of this run.
fn bad_object(err: &anyhow::Error) -> Option<&'static str> {
    err.downcast_ref::<BadObject>().map(|b| match b.kind {
        BadKind::TooLarge { .. } | BadKind::TooShort { .. } => "size_mismatch",
        BadKind::NotAFile(_) => "not_a_file",
    })
}

/// A missing object, or one that is not a file: the quick level, which
/// every level runs, has reported it already.
fn reported_by_quick(err: &anyhow::Error) -> bool {
    err.downcast_ref::<NotFound>().is_some() || bad_object(err) == Some("not_a_file")
}

fn problem(t: &Target, kind: &str, message: String) -> Problem {
    Problem {
        snapshots: t.snapshots.clone(),
        block: Some(t.entry.ulid.clone()),
        object: Some(t.entry.object.key.clone()),
        file: None,
        offset: None,
        kind: kind.into(),
        message,
    }
}

/// The read and deep levels for one object.
async fn read_one(
    repo: &Repository,
    t: &Target<'_>,
    opts: &VerifyOptions,
    budget: u64,
    progress: Arc<dyn Progress>,
    hashes: Option<Arc<PackHashes>>,
) -> Result<Vec<Problem>> {
    let key = Key::new(t.entry.object.key.clone())?;
    if opts.level == Level::Read {
        let max = t.entry.object.size;
        return Ok(
            match download::hash_object(repo, &key, max, &progress).await {
                Ok((size, sha)) if size == t.entry.object.size && sha == t.entry.object.sha256 => {
                    vec![]
                }
                Ok((size, sha)) => vec![problem(
                    t,
                    "checksum_mismatch",
                    format!(
                        "expected {} bytes with SHA-256 {}, found {size} bytes with SHA-256 {sha}",
                        t.entry.object.size, t.entry.object.sha256
                    ),
                )],
                Err(e) if reported_by_quick(&e) => vec![],
                Err(e) => match bad_object(&e) {
                    Some(kind) => vec![problem(t, kind, format!("{e:#}"))],
                    None => return Err(e),
                },
            },
        );
    }
    match t.entry.is_recipe() {
        true => format2::deep(repo, t, &opts.scratch, budget, progress, hashes).await,
        false => deep_one(repo, t, &opts.scratch, progress).await,
    }
}

/// A temporary directory in `scratch` for deep-verifying block `t`
/// (removed when dropped); an error says how to pick another place.
fn scratch_dir(scratch: &Path, t: &Target<'_>) -> Result<tempfile::TempDir> {
    std::fs::create_dir_all(scratch)
        .and_then(|_| {
            tempfile::Builder::new()
                .prefix("promsnap-verify-")
                .tempdir_in(scratch)
        })
        .map_err(|e| {
            local_io(
                e,
                format!("could not create a directory in {}", scratch.display()),
            )
            .context(scratch_hint(t, Place::Disk))
        })
}

/// The deep level for one object: the archive streams through the checks
/// once. Chunk segments are walked as they pass (`StreamedBlock`); only the
/// block's small files land in a scratch directory, for the index check.
async fn deep_one(
    repo: &Repository,
    t: &Target<'_>,
    scratch: &Path,
    progress: Arc<dyn Progress>,
) -> Result<Vec<Problem>> {
    let dir = scratch_dir(scratch, t)?;
    let (work, entry) = (dir.path().to_path_buf(), t.entry.clone());
    let checked = download::read_object(repo, t.entry, progress, move |input| {
        let block_dir = work.join(&entry.ulid);
        std::fs::create_dir(&block_dir)
            .map_err(|e| local_io(e, format!("could not create {}", block_dir.display())))?;
        let mut sink = DeepCheck {
            files: Unpacker {
                dest: &block_dir,
                durable: false,
            },
            block: StreamedBlock::new(&work),
        };
        let unpacked = archive::read_entries(input, &entry.files, &mut sink)?;
        let opts = CheckOptions { chunk_refs: true };
        let mut found = sink.block.finish(&block_dir, &entry.ulid, &opts)?;
        found.extend(meta_matches_manifest(&block_dir, &entry));
        Ok((unpacked, found))
    })
    .await;
    let found = match checked {
        Ok(found) => found,
        Err(e) if reported_by_quick(&e) => return Ok(vec![]),
        // A full scratch disk or a broken connection says nothing about the
        // backup: verify fails (exit 1) instead of reporting damage.
        Err(e) => match environment(&e) {
            Some(place) => return Err(e.context(scratch_hint(t, place))),
            None => return Ok(vec![problem(t, "archive", format!("{e:#}"))]),
        },
    };
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

/// What to say when verify itself fails on an object, not the object.
fn scratch_hint(t: &Target<'_>, place: Place) -> Hinted {
    Hinted::failure(
        format!("could not verify {}", t.entry.object.key),
        environment_hint(
            place,
            "--deep keeps each block's index in --scratch-dir (default: the system temp dir), \
             which must have room for the largest index times --concurrency",
        ),
    )
}

/// Where the entries of an archive go at the deep level: segments through
/// the streaming check, every other file to the scratch block directory.
struct DeepCheck<'a> {
    files: Unpacker<'a>,
    block: StreamedBlock,
}

impl EntrySink for DeepCheck<'_> {
    fn chunks_dir(&mut self) -> Result<()> {
        Ok(()) // Segments are never written, so the directory is not needed.
    }

    fn file(&mut self, want: &FileEntry, data: &mut dyn Read) -> Result<()> {
        if !StreamedBlock::is_segment(&want.path) {
            return self.files.file(want, data);
        }
        self.block
            .segment(&want.path, want.size, data)
            .map_err(|e| match is_environment(&e) {
                true => e,
                false => e.context(format!("could not read {} from the archive", want.path)),
            })
    }
}

/// meta.json must describe the block the manifest says it holds (the same
/// comparison a restore makes before a block goes into place). Its ULID is
/// left to `check_block`, which compares it with the block's name already.
fn meta_matches_manifest(dir: &Path, entry: &BlockEntry) -> Vec<check::Problem> {
    let Ok(summary) = check::read_summary(dir) else {
        return vec![]; // check_block reports an unreadable meta.json
    };
    entry
        .meta_differences(&summary)
        .into_iter()
        .filter(|(field, _)| *field != "ulid")
        .map(|(_, message)| check::Problem {
            file: "meta.json".into(),
            offset: None,
            kind: check::ProblemKind::BadMeta,
            message,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn damaged_and_missing_configuration_files_are_problems() {
        use crate::prometheus::config_files::LocalFile;
        use crate::repo::configfiles;
        let dir = tempfile::tempdir().unwrap();
        let storage = crate::storage::LocalStorage::new(dir.path().to_path_buf());
        let repo = Repository::new(Arc::new(storage));
        let file = |path: &str, text: &'static str| LocalFile {
            path: path.into(),
            kind: "config",
            data: bytes::Bytes::from_static(text.as_bytes()),
        };
        let files = [file("/etc/p.yml", "config"), file("/etc/r.yml", "rules")];
        let (entries, _) = configfiles::store(&repo, &files).await.unwrap();
        let mut m = crate::repo::manifest::tests::sample_manifest();
        m.config_files = entries.clone();
        let all = [m];
        assert!(check_config_files(&repo, &all, Level::Read)
            .await
            .unwrap()
            .is_empty());

        std::fs::write(dir.path().join(&entries[0].key), "CONFIG").unwrap();
        std::fs::remove_file(dir.path().join(&entries[1].key)).unwrap();
        let found = check_config_files(&repo, &all, Level::Read).await.unwrap();
        let kinds: Vec<&str> = found.iter().map(|p| p.kind.as_str()).collect();
        assert_eq!(kinds.len(), 2);
        assert!(kinds.contains(&"checksum_mismatch") && kinds.contains(&"missing_object"));
        assert!(found.iter().all(|p| p.snapshots == [all[0].id.clone()]));
        // Quick only sees what a stat shows: the missing one.
        let quick = check_config_files(&repo, &all, Level::Quick).await.unwrap();
        assert_eq!(quick.len(), 1);
        assert_eq!(quick[0].file.as_deref(), Some("/etc/r.yml"));
    }

    /// A download that breaks off during --deep fails verify (it is not a
    /// problem in the backup), and the hint is about the connection, not
    /// about scratch space.
    #[tokio::test]
    async fn a_broken_download_fails_deep_verify_with_a_connection_hint() {
        use crate::repo::download::tests::BreaksOff;
        use crate::storage::{Key, LocalStorage, Storage};
        let dir = tempfile::tempdir().unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let mut entry = crate::repo::manifest::tests::sample_entry("01HQ3K6W2Z0000000000000000");
        let data = bytes::Bytes::from(vec![7u8; 5 << 20]);
        let storage = LocalStorage::new(dir.path().to_path_buf());
        let key = Key::new(entry.object.key.clone()).unwrap();
        storage.put_bytes(&key, data.clone()).await.unwrap();
        entry.object.size = data.len() as u64;
        let repo = Repository::new(Arc::new(BreaksOff(storage, true)));
        let target = Target {
            entry: &entry,
            snapshots: vec!["s".into()],
        };
        let progress: Arc<dyn Progress> = Arc::new(crate::progress::Silent);
        let err = deep_one(&repo, &target, scratch.path(), progress)
            .await
            .unwrap_err();
        let text = format!("{err:#}");
        let hint = crate::error::hint_of(&err).unwrap_or_default();
        assert!(text.contains("broke off"), "{text}");
        assert!(hint.contains("connection to the repository"), "{hint}");
        assert!(!hint.contains("scratch"), "{hint}");
    }

    #[test]
    fn subsets_parse_and_partition() {
        assert_eq!("10%".parse::<Subset>().unwrap(), Subset::Percent(10.0));
        assert_eq!(
            "2/7".parse::<Subset>().unwrap(),
            Subset::Part { n: 2, m: 7 }
        );
        for bad in ["0%", "101%", "x%", "0/3", "4/3", "1/0", "abc"] {
            assert!(bad.parse::<Subset>().is_err(), "{bad}");
        }
        // n/m for n = 1..=m covers every key exactly once.
        let keys: Vec<String> = (0..200).map(|i| format!("blocks/{i}/x.tar.zst")).collect();
        for k in &keys {
            let hits = (1..=3)
                .filter(|n| Subset::Part { n: *n, m: 3 }.includes(k))
                .count();
            assert_eq!(hits, 1);
        }
    }
}
