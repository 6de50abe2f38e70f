//! Prometheus's configuration files, stored next to the blocks.
//!
//! A backup stores the configuration file and its rule files with the data
//! they produced; `host.rs` reads them on the host (with `glob.rs`, Go's
//! `filepath.Glob` as Prometheus uses it for `rule_files`), and this file
//! stores them in the repository and restores them.
//!
//! Storage: each file is one object `configs/<sha256 of its content>`, stored
//! as is (configuration files are small text). Content addressing makes the
//! nightly case free: an unchanged file already has its object and is not
//! uploaded again, and two instances with the same rule files share them.
//! The objects are written before the manifest, like block archives, and the
//! manifest lists every file with its original absolute path, the relative
//! `name` it is restored under, size, SHA-256 and object key. Prune deletes a
//! `configs/` object once no remaining snapshot lists it.
//!
//! Layout on restore: `restore --config-to DIR` writes each file to
//! `DIR/<original absolute path without its leading />`, e.g.
//! `/etc/prometheus/prometheus.yml` becomes `DIR/etc/prometheus/prometheus.yml`
//! and its `rules/*.yml` land next to it, so relative `rule_files` in the
//! restored configuration still point at the restored rule files. The paths
//! are the ones `prometheus::config_files` saw: absolute and lexically clean, symlinks not
//! resolved.
//!
//! Nothing read from a manifest is trusted as a path: a `name` must be
//! relative, without `.`, `..` or empty segments, and the object key must be
//! exactly `configs/<sha256>`. Files are written through a staging name and
//! renamed into place only after their size and SHA-256 matched, never
//! through a symlink, and never outside DIR. A file that exists with other
//! content is refused unless `--force`, which moves it aside first.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Repository;
use crate::error::Hinted;
use crate::prometheus::config_files::{LocalFile, MAX_FILE_SIZE};
use crate::storage::Key;

/// One stored file, as listed in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigFileEntry {
    /// Where the file was on the backed-up host (absolute).
    pub path: String,
    /// Where it is restored below `--config-to`: `path` without the leading `/`.
    pub name: String,
    /// Why it was stored: `config`, `rules` or `include`.
    pub kind: String,
    pub size: u64,
    pub sha256: String,
    /// `configs/<sha256>`.
    pub key: String,
}

/// What a restore of the configuration files did (part of `restore --json`).
#[derive(Debug, Clone, Serialize)]
pub struct ConfigRestoreReport {
    pub dir: String,
    pub files: Vec<RestoredFile>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoredFile {
    /// The original path on the backed-up host.
    pub path: String,
    /// Where it is now.
    pub written_to: String,
    /// `written`, `unchanged` (already there with this content) or `replaced`.
    pub status: String,
    /// With `replaced`: where the previous file was moved.
    pub moved_aside_to: Option<String>,
}

pub fn object_key(sha256: &str) -> Result<Key> {
    Key::new(format!("configs/{sha256}"))
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The restore name of an absolute path: itself without the leading `/`.
fn name_of(path: &Path) -> Result<String> {
    let text = path
        .to_str()
        .with_context(|| format!("{} is not a UTF-8 path", path.display()))?;
    let name = text.trim_start_matches('/').to_string();
    validate_name(&name)?;
    Ok(name)
}

// ------------------------------------------------------------------ store

/// Stores the files that the repository does not hold yet; returns their
/// manifest entries and how many objects were uploaded.
pub async fn store(
    repo: &Repository,
    files: &[LocalFile],
) -> Result<(Vec<ConfigFileEntry>, usize)> {
    if files.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let mut stored: HashSet<String> = repo
        .storage()
        .list("configs/")
        .await
        .with_context(|| format!("could not list configuration files in {}", repo.describe()))?
        .into_iter()
        .map(|o| o.key.as_str().to_string())
        .collect();
    let mut entries = Vec::new();
    let mut uploaded = 0;
    for f in files {
        let sha256 = sha256_hex(&f.data);
        let key = object_key(&sha256)?;
        if stored.insert(key.as_str().to_string()) {
            repo.storage()
                .put_bytes(&key, f.data.clone())
                .await
                .with_context(|| format!("could not store {}", f.path.display()))?;
            uploaded += 1;
        }
        entries.push(ConfigFileEntry {
            path: f.path.display().to_string(),
            name: name_of(&f.path)?,
            kind: f.kind.to_string(),
            size: f.data.len() as u64,
            sha256,
            key: key.to_string(),
        });
    }
    Ok((entries, uploaded))
}

// --------------------------------------------------------------- validate

/// A restore name: relative, `/`-separated, no empty, `.` or `..` segment,
/// no control characters or backslashes.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 4096
        && name.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg.len() <= 255
                && seg.chars().all(|c| !c.is_control() && c != '\\')
        });
    ensure!(
        ok,
        "{name:?} is not a safe relative path for a configuration file"
    );
    Ok(())
}

impl ConfigFileEntry {
    pub fn validate(&self) -> Result<()> {
        validate_name(&self.name)?;
        ensure!(
            self.sha256.len() == 64 && self.sha256.bytes().all(|b| b.is_ascii_hexdigit()),
            "configuration file {} has a malformed SHA-256",
            self.name
        );
        let expected = object_key(&self.sha256)?;
        ensure!(
            self.key == expected.as_str(),
            "configuration file {} points at object {:?}, expected {expected}",
            self.name,
            self.key
        );
        Ok(())
    }
}

/// Checks a manifest's list: every entry valid, no name twice, and no name
/// that is a directory of another (both could not be written).
pub fn validate_all(entries: &[ConfigFileEntry]) -> Result<()> {
    let mut names = HashSet::new();
    for e in entries {
        e.validate()?;
        ensure!(
            names.insert(e.name.as_str()),
            "configuration file {} appears twice",
            e.name
        );
    }
    for e in entries {
        let mut prefix = e.name.as_str();
        while let Some((parent, _)) = prefix.rsplit_once('/') {
            ensure!(
                !names.contains(parent),
                "configuration file {parent} is also listed as a directory"
            );
            prefix = parent;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- restore

/// Writes the snapshot's configuration files below `dir`, each checked
/// against its SHA-256. Conflicts are found before anything is written.
pub async fn restore(
    repo: &Repository,
    entries: &[ConfigFileEntry],
    dir: &Path,
    force: bool,
) -> Result<ConfigRestoreReport> {
    validate_all(entries)?;
    fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    let root = dir
        .canonicalize()
        .with_context(|| format!("could not resolve {}", dir.display()))?;
    // Every path is checked before anything is created below DIR.
    for e in entries {
        check_inside(&root, Path::new(&e.name))?;
    }
    let base = Dir::open_ambient_dir(&root, ambient_authority())
        .with_context(|| format!("could not open {}", root.display()))?;
    let mut states = HashMap::new();
    for e in entries {
        let state = existing(&root.join(&e.name), &e.sha256)?;
        if state == Existing::Differs && !force {
            return Err(Hinted::usage(
                format!("{} exists with other content", root.join(&e.name).display()),
                "choose an empty --config-to directory, or pass --force to move the existing \
                 files aside (nothing is deleted)",
            )
            .into());
        }
        states.insert(e.name.as_str(), state);
    }
    // Everything downloaded and checked first: a damaged object stops the
    // restore before any file is written.
    let mut contents = HashMap::new();
    for e in entries {
        if states[e.name.as_str()] != Existing::Same {
            contents.insert(e.name.as_str(), download(repo, e).await?);
        }
    }
    let mut files = Vec::new();
    for e in entries {
        let target = root.join(&e.name);
        let state = states[e.name.as_str()];
        let mut moved = None;
        if let Some(data) = contents.get(e.name.as_str()) {
            let rel = Path::new(&e.name);
            create_parents(&base, &root, rel)?;
            if state == Existing::Differs {
                moved = Some(root.join(move_aside(&base, rel)?));
            }
            write_staged(&base, rel, data)
                .with_context(|| format!("could not write {}", target.display()))?;
        }
        files.push(RestoredFile {
            path: e.path.clone(),
            written_to: target.display().to_string(),
            status: match state {
                Existing::Missing => "written",
                Existing::Same => "unchanged",
                Existing::Differs => "replaced",
            }
            .into(),
            moved_aside_to: moved.map(|p| p.display().to_string()),
        });
    }
    Ok(ConfigRestoreReport {
        dir: root.display().to_string(),
        files,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Existing {
    Missing,
    Same,
    Differs,
}

/// What is at `target` now. Symlinks and directories always differ: we
/// never write through a link.
fn existing(target: &Path, sha256: &str) -> Result<Existing> {
    match fs::symlink_metadata(target) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Existing::Missing),
        Err(e) => Err(e).with_context(|| format!("could not inspect {}", target.display())),
        Ok(m) if !m.is_file() => Ok(Existing::Differs),
        Ok(_) => {
            let data =
                fs::read(target).with_context(|| format!("could not read {}", target.display()))?;
            Ok(if sha256_hex(&data) == sha256 {
                Existing::Same
            } else {
                Existing::Differs
            })
        }
    }
}

async fn download(repo: &Repository, e: &ConfigFileEntry) -> Result<Bytes> {
    let key = Key::new(e.key.clone())?;
    let data = repo
        .storage()
        .get_bytes(&key, e.size.min(MAX_FILE_SIZE))
        .await
        .with_context(|| format!("could not download {} ({key})", e.path))?;
    let sha = sha256_hex(&data);
    if data.len() as u64 != e.size || sha != e.sha256 {
        return Err(Hinted::failure(
            format!(
                "object {key} is damaged: expected {} bytes with SHA-256 {}, got {} bytes with \
                 SHA-256 {sha}",
                e.size,
                e.sha256,
                data.len()
            ),
            "`promsnap verify` checks the repository; an older snapshot may hold a good copy",
        )
        .into());
    }
    Ok(data)
}

/// Refuses a path below `root` that would be written through a symlink
/// leading outside `root`, or through something that is not a directory;
/// creates nothing.
fn check_inside(root: &Path, rel: &Path) -> Result<()> {
    let mut at = root.to_path_buf();
    for part in rel.parent().into_iter().flat_map(Path::components) {
        at.push(part);
        let meta = match fs::symlink_metadata(&at) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("could not inspect {}", at.display())),
            Ok(m) => m,
        };
        if meta.file_type().is_symlink() {
            // As cap-std resolves them: relative links that stay inside.
            let relative = fs::read_link(&at).is_ok_and(|to| to.is_relative());
            let inside = at.canonicalize().is_ok_and(|real| real.starts_with(root));
            if !(relative && inside) {
                bail!(
                    "{} leads outside {} (through a symlink); refusing to write there",
                    at.display(),
                    root.display()
                );
            }
        } else if !meta.is_dir() {
            bail!(
                "{} is not a directory; refusing to write below it",
                at.display()
            );
        }
    }
    Ok(())
}

/// Creates the directories of `rel` below `base`, one at a time and
/// relative to the opened directory (cap-std resolves every component
/// inside it, so a symlink swapped in meanwhile cannot lead outside).
fn create_parents(base: &Dir, root: &Path, rel: &Path) -> Result<()> {
    let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    base.create_dir_all(parent).with_context(|| {
        format!(
            "could not create {} inside {} (a symlink leading outside it is refused)",
            root.join(parent).display(),
            root.display()
        )
    })
}

fn move_aside(base: &Dir, rel: &Path) -> Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let aside = rel.with_file_name(format!("{name}.before-restore-{stamp}"));
    base.rename(rel, base, &aside)
        .with_context(|| format!("could not move {} aside", rel.display()))?;
    Ok(aside)
}

/// Writes `data` to a dot-named staging file next to `rel`, fsyncs it and
/// renames it into place, all relative to `base`.
fn write_staged(base: &Dir, rel: &Path, data: &[u8]) -> std::io::Result<()> {
    let name = rel.file_name().unwrap_or_default().to_string_lossy();
    let staged = rel.with_file_name(format!(".{name}.promsnap-tmp"));
    let result = (|| {
        let mut f = base.create(&staged)?;
        f.write_all(data)?;
        f.sync_all()?;
        base.rename(&staged, base, rel)?;
        let parent = rel.parent().filter(|p| !p.as_os_str().is_empty());
        base.open(parent.unwrap_or(Path::new(".")))?.sync_all()
    })();
    if result.is_err() {
        let _ = base.remove_file(&staged);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalStorage;
    use std::sync::Arc;

    #[test]
    fn restore_names_keep_the_path_as_seen() {
        assert_eq!(
            name_of(Path::new("/etc/config/..data/prometheus.yml")).unwrap(),
            "etc/config/..data/prometheus.yml"
        );
    }

    #[test]
    fn unsafe_names_are_rejected() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a/.",
            "a\\b",
            "a\nb",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in [
            "etc/prometheus/prometheus.yml",
            "etc/config/..data/x.yml",
            "x",
        ] {
            validate_name(good).unwrap();
        }
        let entry = |name: &str| ConfigFileEntry {
            path: format!("/{name}"),
            name: name.into(),
            kind: "config".into(),
            size: 1,
            sha256: "a".repeat(64),
            key: format!("configs/{}", "a".repeat(64)),
        };
        validate_all(&[entry("etc/p.yml"), entry("etc/r.yml")]).unwrap();
        assert!(validate_all(&[entry("etc/p.yml"), entry("etc/p.yml")]).is_err());
        assert!(validate_all(&[entry("etc"), entry("etc/p.yml")]).is_err());
        let mut wrong_key = entry("etc/p.yml");
        wrong_key.key = "blocks/x".into();
        assert!(wrong_key.validate().is_err());
    }

    #[tokio::test]
    async fn files_are_stored_once_and_restored_below_the_target() {
        let repo_dir = tempfile::tempdir().unwrap();
        let repo = Repository::new(Arc::new(LocalStorage::new(repo_dir.path().to_path_buf())));
        let file = |path: &str, text: &'static str| LocalFile {
            path: path.into(),
            kind: "config",
            data: Bytes::from_static(text.as_bytes()),
        };
        let files = [
            file("/etc/p/prometheus.yml", "a"),
            file("/etc/p/rules/r.yml", "b"),
        ];
        let (entries, uploaded) = store(&repo, &files).await.unwrap();
        assert_eq!(uploaded, 2);
        assert_eq!(
            store(&repo, &files).await.unwrap().1,
            0,
            "unchanged files are not stored again"
        );
        assert_eq!(entries[1].name, "etc/p/rules/r.yml");

        let out = tempfile::tempdir().unwrap();
        let report = restore(&repo, &entries, out.path(), false).await.unwrap();
        assert_eq!(
            fs::read_to_string(out.path().join("etc/p/rules/r.yml")).unwrap(),
            "b"
        );
        assert!(report.files.iter().all(|f| f.status == "written"));
        // Rerunning changes nothing; a changed file is refused, then moved aside.
        let again = restore(&repo, &entries, out.path(), false).await.unwrap();
        assert!(again.files.iter().all(|f| f.status == "unchanged"));
        fs::write(out.path().join("etc/p/prometheus.yml"), "local edit").unwrap();
        let err = restore(&repo, &entries, out.path(), false)
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("exists with other content"));
        let forced = restore(&repo, &entries, out.path(), true).await.unwrap();
        assert_eq!(forced.files[0].status, "replaced");
        let aside = forced.files[0].moved_aside_to.clone().unwrap();
        assert_eq!(fs::read_to_string(aside).unwrap(), "local edit");
        assert_eq!(
            fs::read_to_string(out.path().join("etc/p/prometheus.yml")).unwrap(),
            "a"
        );

        // A damaged object is refused before anything is written.
        let other = tempfile::tempdir().unwrap();
        fs::write(repo_dir.path().join(&entries[0].key), "tampered").unwrap();
        let err = restore(&repo, &entries, other.path(), false)
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("damaged"), "{err:#}");
        assert!(!other.path().join("etc/p/prometheus.yml").exists());
    }

    #[tokio::test]
    async fn a_symlink_inside_the_target_cannot_lead_outside() {
        let repo_dir = tempfile::tempdir().unwrap();
        let repo = Repository::new(Arc::new(LocalStorage::new(repo_dir.path().to_path_buf())));
        let files = [LocalFile {
            path: "/etc/x.yml".into(),
            kind: "config",
            data: Bytes::from_static(b"x"),
        }];
        let (entries, _) = store(&repo, &files).await.unwrap();
        let out = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), out.path().join("etc")).unwrap();
        let err = restore(&repo, &entries, out.path(), false)
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("outside"), "{err:#}");
        assert!(!elsewhere.path().join("x.yml").exists());
        // Deeper paths: nothing is created through the link either, not
        // even directories (the check comes before anything is created).
        let files = [LocalFile {
            path: "/etc/prometheus/rules/node.yml".into(),
            kind: "rules",
            data: Bytes::from_static(b"groups: []"),
        }];
        let (entries, _) = store(&repo, &files).await.unwrap();
        let err = restore(&repo, &entries, out.path(), false)
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("leads outside"), "{err:#}");
        assert_eq!(
            fs::read_dir(elsewhere.path()).unwrap().count(),
            0,
            "created through the link"
        );
        // A symlink that stays inside the target is followed.
        let inside = tempfile::tempdir().unwrap();
        fs::create_dir(inside.path().join("real")).unwrap();
        std::os::unix::fs::symlink("real", inside.path().join("etc")).unwrap();
        restore(&repo, &entries, inside.path(), false)
            .await
            .unwrap();
        assert!(inside
            .path()
            .join("real/prometheus/rules/node.yml")
            .is_file());
    }
}
