//! Reading Prometheus's configuration files on the host promsnap runs on.
//!
//! The data is of little use during an incident without the scrape and rule
//! configuration that produced it, so a backup also reads Prometheus's
//! configuration file, every rule file its `rule_files` globs match (resolved
//! relative to the configuration file's directory, with Go's `filepath.Glob`
//! syntax, as Prometheus does; see `glob.rs`), and any file given with
//! `--include`.
//!
//! Paths are made absolute and cleaned lexically (`.` and `..` removed) but
//! symlinks are not resolved, so Kubernetes ConfigMap mounts keep their
//! visible names. A file the user named is an error when it cannot be read;
//! a discovered configuration that cannot be read (promsnap runs in another
//! container than Prometheus) is a warning, and the backup goes on.
//!
//! This is what promsnap knows about the Prometheus server's files, not about
//! the repository: it hands [`LocalFile`]s to the repository layer, which
//! stores them (`repo::configfiles::store`), as a `tsdb::Block` read from a
//! snapshot is handed to the repository to be archived.

mod glob;

use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::{ensure, Context, Result};
use bytes::Bytes;
use serde::Deserialize;

use self::glob::glob;
use crate::error::Hinted;

/// Configuration files are read into memory; anything larger is not one.
pub const MAX_FILE_SIZE: u64 = 32 * 1024 * 1024;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_without_resolving_links() {
        assert_eq!(
            clean(Path::new("/etc/prometheus/../prometheus/./rules/a.yml")),
            Path::new("/etc/prometheus/rules/a.yml")
        );
        assert_eq!(clean(Path::new("/../../x")), Path::new("/x"));
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
}
