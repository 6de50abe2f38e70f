//! Prometheus's configuration files, stored next to the blocks.
//!
//! The data is of little use during an incident without the scrape and rule
//! configuration that produced it, so a backup also stores Prometheus's
//! configuration file, every rule file its `rule_files` globs match (resolved
//! relative to the configuration file's directory, with Go's `filepath.Glob`
//! syntax, as Prometheus does), and any file given with `--include`.
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
//! restored configuration still point at the restored rule files. Paths are
//! made absolute and cleaned lexically (`.` and `..` removed) but symlinks
//! are not resolved, so Kubernetes ConfigMap mounts keep their visible names.
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
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Repository;
use crate::error::Hinted;
use crate::storage::Key;

/// Configuration files are read into memory; anything larger is not one.
pub const MAX_FILE_SIZE: u64 = 32 * 1024 * 1024;

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

/// A file read from disk for a backup.
#[derive(Debug, Clone)]
pub struct LocalFile {
    /// Absolute and lexically clean.
    pub path: PathBuf,
    pub kind: &'static str,
    pub data: Bytes,
}

/// Where the files to store come from.
pub struct Sources<'a> {
    /// Prometheus's configuration file, given or discovered.
    pub config: Option<&'a Path>,
    /// The user named `config` (`--prometheus-config`): failing to read it,
    /// or a rule file it references, is an error rather than a warning.
    pub config_explicit: bool,
    /// `--include` files; always explicit.
    pub includes: &'a [PathBuf],
}

/// The files to store, and what could not be read when that is only a warning.
#[derive(Debug, Default)]
pub struct Collected {
    pub files: Vec<LocalFile>,
    pub warnings: Vec<String>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved_aside_to: Option<String>,
}

pub fn object_key(sha256: &str) -> Result<Key> {
    Key::new(format!("configs/{sha256}"))
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

// ---------------------------------------------------------------- collect

/// Reads the configuration file, its rule files and the `--include` files.
pub fn collect(src: &Sources) -> Result<Collected> {
    let mut out = Collected::default();
    if let Some(config) = src.config {
        collect_config(config, src.config_explicit, &mut out)?;
    }
    for path in src.includes {
        let path = absolute(path)?;
        let data = read_file(&path).map_err(|e| {
            e.context(Hinted::usage(
                format!("could not read --include {}", path.display()),
                "check the path (promsnap must run where the file is), or leave that --include out",
            ))
        })?;
        out.push(path, "include", data);
    }
    Ok(out)
}

fn collect_config(config: &Path, explicit: bool, out: &mut Collected) -> Result<()> {
    let config = absolute(config)?;
    let data = match read_file(&config) {
        Ok(d) => d,
        Err(e) if explicit => {
            return Err(e.context(Hinted::usage(
                format!("could not read --prometheus-config {}", config.display()),
                "check the path; promsnap must run on the host that has the file",
            )))
        }
        Err(e) => {
            out.warnings.push(format!(
                "configuration files not backed up: could not read Prometheus's configuration \
                 file {} ({e:#}); when promsnap runs on another host or container than \
                 Prometheus, pass --prometheus-config with a path readable here",
                config.display()
            ));
            return Ok(());
        }
    };
    let globs = match rule_files(&data) {
        Ok(g) => g,
        Err(e) if explicit => {
            return Err(e.context(Hinted::usage(
                format!(
                    "could not parse {} as a Prometheus configuration",
                    config.display()
                ),
                "check the file with `promtool check config`",
            )))
        }
        Err(e) => {
            out.warnings.push(format!(
                "could not parse {} for its rule_files ({e:#}); storing it without rule files",
                config.display()
            ));
            Vec::new()
        }
    };
    out.push(config.clone(), "config", data);
    let base = config.parent().unwrap_or(Path::new("/"));
    for pattern in globs {
        collect_rules(base, &pattern, explicit, out)?;
    }
    Ok(())
}

fn collect_rules(base: &Path, pattern: &str, explicit: bool, out: &mut Collected) -> Result<()> {
    let full = clean(&base.join(pattern));
    let matched = glob(&full).and_then(|paths| {
        paths
            .into_iter()
            .map(|p| read_file(&p).map(|d| (p, d)))
            .collect::<Result<Vec<_>>>()
    });
    match matched {
        Ok(files) => {
            for (path, data) in files {
                out.push(path, "rules", data);
            }
            Ok(())
        }
        Err(e) if explicit => Err(e.context(Hinted::usage(
            format!("could not read the rule files {pattern:?} the configuration references"),
            "promsnap must run on the host that has them; check rule_files",
        ))),
        Err(e) => {
            out.warnings
                .push(format!("rule files {pattern:?} not backed up: {e:#}"));
            Ok(())
        }
    }
}

impl Collected {
    /// Adds a file once; the first reason it was found wins.
    fn push(&mut self, path: PathBuf, kind: &'static str, data: Bytes) {
        if !self.files.iter().any(|f| f.path == path) {
            self.files.push(LocalFile { path, kind, data });
        }
    }
}

/// The `rule_files` patterns of a Prometheus configuration.
fn rule_files(yaml: &[u8]) -> Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Config {
        #[serde(default)]
        rule_files: Option<Vec<String>>,
    }
    let text = std::str::from_utf8(yaml).context("not UTF-8")?;
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let config: Config = serde_norway::from_str(text)?;
    Ok(config.rule_files.unwrap_or_default())
}

fn read_file(path: &Path) -> Result<Bytes> {
    let meta = fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    ensure!(meta.is_file(), "{} is not a regular file", path.display());
    ensure!(
        meta.len() <= MAX_FILE_SIZE,
        "{} is larger than {} MiB; only configuration files belong here",
        path.display(),
        MAX_FILE_SIZE >> 20
    );
    let data = fs::read(path).with_context(|| format!("{}", path.display()))?;
    Ok(Bytes::from(data))
}

/// `path` made absolute (against the working directory) and cleaned.
fn absolute(path: &Path) -> Result<PathBuf> {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .context("could not read the working directory")?
            .join(path)
    };
    Ok(clean(&joined))
}

/// Lexical cleaning as Go's `filepath.Clean`: no `.`, `..` resolved against
/// the preceding segment (never above the root). Symlinks are kept.
fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
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

// ------------------------------------------------------------------- glob

/// Go's `filepath.Glob` on an absolute, clean pattern: `*`, `?` and `[...]`
/// in any segment, no `**`; matches sorted per directory; a pattern without
/// metacharacters matches the path when it exists.
fn glob(pattern: &Path) -> Result<Vec<PathBuf>> {
    let text = pattern
        .to_str()
        .with_context(|| format!("{} is not a UTF-8 path", pattern.display()))?;
    if !has_meta(text) {
        return fs::symlink_metadata(pattern)
            .map(|_| vec![pattern.to_path_buf()])
            .map_err(|e| anyhow::Error::new(e).context(text.to_string()));
    }
    let dir = pattern.parent().unwrap_or(Path::new("/"));
    let file = pattern
        .file_name()
        .and_then(|f| f.to_str())
        .context("pattern has no file part")?;
    let dirs = if has_meta(&dir.to_string_lossy()) {
        glob(dir)?
    } else {
        vec![dir.to_path_buf()]
    };
    let mut found = Vec::new();
    for d in dirs {
        // As Go: an unreadable directory just has no matches.
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect();
        names.sort();
        for name in names {
            if wildcard(file, &name)? {
                found.push(d.join(name));
            }
        }
    }
    Ok(found)
}

fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', '\\'])
}

/// Go's `filepath.Match` for one path segment.
fn wildcard(pattern: &str, name: &str) -> Result<bool> {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_from(&p, &n)
}

fn match_from(p: &[char], n: &[char]) -> Result<bool> {
    let Some(&first) = p.first() else {
        return Ok(n.is_empty());
    };
    match first {
        '*' => {
            for skip in 0..=n.len() {
                if match_from(&p[1..], &n[skip..])? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        '?' => Ok(!n.is_empty() && match_from(&p[1..], &n[1..])?),
        '[' => {
            let (matched, len) = class(&p[1..], n.first().copied())?;
            Ok(matched && match_from(&p[1 + len..], &n[1..])?)
        }
        '\\' => {
            let &lit = p.get(1).context("bad pattern: trailing backslash")?;
            Ok(n.first() == Some(&lit) && match_from(&p[2..], &n[1..])?)
        }
        c => Ok(n.first() == Some(&c) && match_from(&p[1..], &n[1..])?),
    }
}

/// Matches `c` against a character class whose body starts at `p` (after
/// `[`); returns whether it matched and how many chars the body took,
/// including the closing `]`.
fn class(p: &[char], c: Option<char>) -> Result<(bool, usize)> {
    let mut i = 0;
    let negated = p.first() == Some(&'^');
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut items = 0;
    loop {
        let mut lo = *p.get(i).context("bad pattern: unclosed [")?;
        if lo == ']' && items > 0 {
            i += 1;
            break;
        }
        if lo == ']' || lo == '-' {
            bail!("bad pattern: {lo:?} in a character class");
        }
        if lo == '\\' {
            i += 1;
            lo = *p.get(i).context("bad pattern")?;
        }
        i += 1;
        let mut hi = lo;
        if p.get(i) == Some(&'-') {
            hi = *p.get(i + 1).context("bad pattern: unclosed range")?;
            if hi == '\\' {
                i += 1;
                hi = *p.get(i + 1).context("bad pattern")?;
            }
            i += 2;
        }
        if c.is_some_and(|c| lo <= c && c <= hi) {
            matched = true;
        }
        items += 1;
    }
    Ok((c.is_some() && matched != negated, i))
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
            let parent = safe_parent(&root, &target)?;
            if state == Existing::Differs {
                moved = Some(move_aside(&target)?);
            }
            write_staged(&parent, &target, data)?;
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

/// Creates the parent directory of `target` and makes sure it really lies
/// below `root` (no symlinked directory leads elsewhere).
fn safe_parent(root: &Path, target: &Path) -> Result<PathBuf> {
    let parent = target.parent().context("a file without a directory")?;
    fs::create_dir_all(parent).with_context(|| format!("could not create {}", parent.display()))?;
    let real = parent.canonicalize()?;
    if !real.starts_with(root) {
        bail!(
            "{} leads outside {} (through a symlink); refusing to write there",
            parent.display(),
            root.display()
        );
    }
    Ok(real)
}

fn move_aside(target: &Path) -> Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let aside = target.with_file_name(format!("{name}.before-restore-{stamp}"));
    fs::rename(target, &aside)
        .with_context(|| format!("could not move {} aside", target.display()))?;
    Ok(aside)
}

/// Writes `data` to a dot-named staging file in `parent`, fsyncs it and
/// renames it to `target`.
fn write_staged(parent: &Path, target: &Path, data: &[u8]) -> Result<()> {
    let name = target
        .file_name()
        .context("a file without a name")?
        .to_string_lossy();
    let staged = parent.join(format!(".{name}.promsnap-tmp"));
    let result = (|| -> std::io::Result<()> {
        let mut f = fs::File::create(&staged)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&staged, parent.join(target.file_name().unwrap_or_default()))?;
        fs::File::open(parent)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&staged);
    }
    result.with_context(|| format!("could not write {}", target.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalStorage;
    use std::sync::Arc;

    #[test]
    fn wildcards_follow_go_filepath_match() {
        let yes = [
            ("*.yml", "a.yml"),
            ("*.yml", ".hidden.yml"),
            ("rule?.yml", "rule1.yml"),
            ("[ab].yml", "b.yml"),
            ("[a-c]x", "bx"),
            ("[^a-c]x", "dx"),
            ("\\*", "*"),
            ("*", ""),
        ];
        for (p, n) in yes {
            assert!(wildcard(p, n).unwrap(), "{p} should match {n}");
        }
        let no = [
            ("*.yml", "a.yaml"),
            ("rule?.yml", "rule.yml"),
            ("[ab].yml", "c.yml"),
            ("[^a-c]x", "bx"),
            ("a", "ab"),
        ];
        for (p, n) in no {
            assert!(!wildcard(p, n).unwrap(), "{p} must not match {n}");
        }
        for bad in ["[", "[a", "[]a", "a\\"] {
            assert!(wildcard(bad, "a").is_err(), "{bad:?} is a bad pattern");
        }
    }

    #[test]
    fn globs_expand_in_any_segment_and_literals_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        for f in ["rules/a.yml", "rules/b.yml", "rules/c.txt", "more/x/d.yml"] {
            fs::create_dir_all(root.join(f).parent().unwrap()).unwrap();
            fs::write(root.join(f), "groups: []\n").unwrap();
        }
        let names = |p: &str| -> Vec<String> {
            glob(&root.join(p))
                .unwrap()
                .iter()
                .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
                .collect()
        };
        assert_eq!(names("rules/*.yml"), ["rules/a.yml", "rules/b.yml"]);
        assert_eq!(names("*/*/*.yml"), ["more/x/d.yml"]);
        assert!(names("nothing/*.yml").is_empty());
        assert_eq!(names("rules/c.txt"), ["rules/c.txt"]);
        assert!(glob(&root.join("rules/missing.yml")).is_err());
    }

    #[test]
    fn paths_are_cleaned_without_resolving_links() {
        assert_eq!(
            clean(Path::new("/etc/prometheus/../prometheus/./rules/a.yml")),
            Path::new("/etc/prometheus/rules/a.yml")
        );
        assert_eq!(clean(Path::new("/../../x")), Path::new("/x"));
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

    #[test]
    fn the_configuration_and_its_rule_files_are_collected() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        fs::create_dir_all(root.join("rules")).unwrap();
        fs::write(
            root.join("prometheus.yml"),
            "global: {}\nrule_files:\n  - rules/*.yml\n  - nothing/*.yml\n",
        )
        .unwrap();
        fs::write(root.join("rules/a.yml"), "groups: []\n").unwrap();
        fs::write(root.join("extra.json"), "[]").unwrap();
        let includes = [root.join("extra.json"), root.join("rules/a.yml")];
        let config = root.join("prometheus.yml");
        let got = collect(&Sources {
            config: Some(&config),
            config_explicit: true,
            includes: &includes,
        })
        .unwrap();
        let kinds: Vec<(&str, &str)> = got
            .files
            .iter()
            .map(|f| {
                (
                    f.path.strip_prefix(&root).unwrap().to_str().unwrap(),
                    f.kind,
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("prometheus.yml", "config"),
                ("rules/a.yml", "rules"),
                ("extra.json", "include")
            ]
        );
        assert!(got.warnings.is_empty());

        // Missing: an error when explicit, a warning when discovered.
        let missing = root.join("gone.yml");
        let sources = |explicit| Sources {
            config: Some(&missing),
            config_explicit: explicit,
            includes: &[],
        };
        let err = collect(&sources(true)).unwrap_err();
        assert_eq!(
            crate::error::status_of(&err),
            crate::error::ExitStatus::Usage
        );
        let got = collect(&sources(false)).unwrap();
        assert!(got.files.is_empty());
        assert!(
            got.warnings[0].contains("--prometheus-config"),
            "{:?}",
            got.warnings
        );
        let gone = [missing.clone()];
        assert!(collect(&Sources {
            config: None,
            config_explicit: false,
            includes: &gone
        })
        .is_err());
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
    }
}
