//! What makes a location a promsnap repository: its config object.
//!
//! A repository path with a typo, or an NAS mount point that is not mounted,
//! must not look like a healthy empty repository: `list` would say "no
//! snapshots" and exit 0, `verify` would pass, and `backup` would fill the
//! local disk. So a repository is recognisable by one small object at its
//! root, `repository.json`, written once by `promsnap init` (or by `backup
//! --init`), and every command refuses a location without one (exit 2, with
//! the hint to run `promsnap init`).
//!
//! Repositories written before the config object existed (format 1) are
//! recognised by their layout instead (`snapshots/` or `blocks/` objects)
//! and keep working; the first command that writes to one (a backup or a
//! prune) also writes its config object, so the layout check is needed at
//! most once per repository.
//!
//! The config object says which repository format new backups write
//! (`format_version`) and which hash names stored content (`content_ids`,
//! see `content_id.rs`), and gives the repository a random id, so that
//! copies between repositories and caches can tell them apart. A promsnap that
//! finds a newer format than it knows refuses the repository and says to
//! upgrade, instead of misreading it.

use anyhow::{Context, Result};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::content_id::IdHash;
use super::manifest::FORMAT_VERSION;
use crate::error::Hinted;
use crate::storage::{Key, Storage};

/// The config object's key, at the repository root.
pub const CONFIG_KEY: &str = "repository.json";

/// The largest config object promsnap reads; a larger one is damage.
pub const MAX_CONFIG_BYTES: u64 = 64 * 1024;

/// The repository's config object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoConfig {
    /// The repository format new backups write. A promsnap that knows only
    /// older formats refuses the repository.
    pub format_version: u32,
    /// 32 random hex digits, chosen once by `init`.
    pub id: String,
    /// When the repository was initialised (or adopted, for format 1).
    pub created: DateTime<Utc>,
    /// The promsnap version that wrote this object.
    pub created_by: String,
    /// The hash that names blobs, window streams and packs: `blake3`, or
    /// absent in repositories made before it could be chosen (SHA-256).
    /// Checked by [`RepoConfig::parse`]; read with [`RepoConfig::ids`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_ids: Option<String>,
}

impl RepoConfig {
    /// A new config for a repository in the current format.
    pub fn new(now: DateTime<Utc>) -> RepoConfig {
        RepoConfig {
            format_version: FORMAT_VERSION,
            id: format!("{:032x}", rand::random::<u128>()),
            created: now,
            created_by: format!("promsnap {}", env!("CARGO_PKG_VERSION")),
            content_ids: Some(IdHash::NEW.as_str().to_string()),
        }
    }

    /// The hash that names content in this repository.
    pub fn ids(&self) -> IdHash {
        match &self.content_ids {
            None => IdHash::Sha256,
            Some(name) => name.parse().unwrap_or(IdHash::NEW),
        }
    }

    /// This config naming its content with `ids` (tests of repositories
    /// made before BLAKE3: `None` writes no `content_ids`, as they did).
    #[cfg(test)]
    pub fn with_ids(mut self, ids: Option<IdHash>) -> RepoConfig {
        self.content_ids = ids.map(|i| i.as_str().to_string());
        self
    }

    /// Parses and checks a config object read from storage.
    pub fn parse(bytes: &[u8]) -> Result<RepoConfig> {
        let config: RepoConfig = serde_json::from_slice(bytes)
            .with_context(|| format!("{CONFIG_KEY} is not a promsnap repository config"))?;
        anyhow::ensure!(
            config.id.len() == 32 && config.id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{CONFIG_KEY} has a malformed id {:?}",
            config.id
        );
        if config.format_version > FORMAT_VERSION {
            return Err(Hinted::usage(
                format!(
                    "this repository uses format {} and this promsnap ({}) reads formats up to \
                     {FORMAT_VERSION}",
                    config.format_version,
                    env!("CARGO_PKG_VERSION")
                ),
                "upgrade promsnap to read it",
            )
            .into());
        }
        if let Some(Err(name)) = config.content_ids.as_deref().map(str::parse::<IdHash>) {
            return Err(Hinted::usage(
                format!(
                    "this repository names its content with {name:?}, a hash this promsnap ({}) \
                     does not know (it knows sha256 and blake3)",
                    env!("CARGO_PKG_VERSION")
                ),
                "upgrade promsnap to read it",
            )
            .into());
        }
        Ok(config)
    }

    pub fn to_json(&self) -> Bytes {
        Bytes::from(serde_json::to_vec_pretty(self).expect("configs serialize"))
    }
}

/// What a location holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A repository with its config object.
    Repository(RepoConfig),
    /// A repository of format 1 written before config objects existed.
    Legacy,
    /// No promsnap repository at all.
    Nothing,
}

/// Looks at a location: its config object, else the format 1 layout.
pub async fn find(storage: &dyn Storage) -> Result<Found> {
    let key = Key::new(CONFIG_KEY)?;
    let location = storage.describe();
    if let Some(meta) = storage
        .head(&key)
        .await
        .with_context(|| format!("could not look for a promsnap repository at {location}"))?
    {
        if meta.size > MAX_CONFIG_BYTES {
            anyhow::bail!(
                "{CONFIG_KEY} in {location} is {} bytes, more than a config object can be \
                 ({MAX_CONFIG_BYTES}); it is damaged or not promsnap's",
                meta.size
            );
        }
        let bytes = storage.get_bytes(&key, MAX_CONFIG_BYTES).await?;
        return RepoConfig::parse(&bytes)
            .with_context(|| format!("the repository at {location} is damaged"))
            .map(Found::Repository);
    }
    for prefix in ["snapshots/", "blocks/"] {
        if !storage.list(prefix).await?.is_empty() {
            return Ok(Found::Legacy);
        }
    }
    Ok(Found::Nothing)
}

/// The error for a location that holds no repository; `url` is how the
/// user named it (`--repo`).
pub fn no_repository(location: &str, url: &str, backup: bool) -> anyhow::Error {
    let hint = if backup {
        format!(
            "check the path; to start a new repository there, run `promsnap init --repo {url}` \
             first, or pass --init (PROMSNAP_INIT=true, repository.init = true)"
        )
    } else {
        format!(
            "check the path (a typo, or a mount that is not mounted?); `promsnap init --repo \
             {url}` creates a new repository"
        )
    };
    Hinted::usage(format!("no promsnap repository at {location}"), hint).into()
}

/// Writes a config object.
pub async fn write(storage: &dyn Storage, config: &RepoConfig) -> Result<()> {
    storage
        .put_bytes(&Key::new(CONFIG_KEY)?, config.to_json())
        .await
        .with_context(|| format!("could not write {CONFIG_KEY} in {}", storage.describe()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalStorage;

    #[test]
    fn new_repositories_name_content_with_blake3_older_ones_with_sha256() {
        let config = RepoConfig::new(Utc::now());
        assert_eq!(config.ids(), IdHash::Blake3);
        let json = String::from_utf8(config.to_json().to_vec()).unwrap();
        assert!(json.contains("\"content_ids\": \"blake3\""), "{json}");
        // As a repository made before the field existed has it: absent.
        let older = config.with_ids(None);
        let json = older.to_json();
        assert!(!String::from_utf8_lossy(&json).contains("content_ids"));
        assert_eq!(RepoConfig::parse(&json).unwrap().ids(), IdHash::Sha256);
    }

    #[tokio::test]
    async fn a_location_is_a_repository_only_with_a_config_or_the_old_layout() {
        let dir = tempfile::tempdir().unwrap();
        let missing = LocalStorage::new(dir.path().join("typo"));
        assert_eq!(find(&missing).await.unwrap(), Found::Nothing);
        assert!(!dir.path().join("typo").exists(), "looking creates nothing");

        let storage = LocalStorage::new(dir.path().to_path_buf());
        assert_eq!(find(&storage).await.unwrap(), Found::Nothing);
        let key = Key::new("snapshots/20260101T000000Z-00000000.json").unwrap();
        storage
            .put_bytes(&key, Bytes::from_static(b"{}"))
            .await
            .unwrap();
        assert_eq!(find(&storage).await.unwrap(), Found::Legacy);

        let config = RepoConfig::new(Utc::now());
        write(&storage, &config).await.unwrap();
        assert_eq!(find(&storage).await.unwrap(), Found::Repository(config));
    }

    #[test]
    fn a_newer_format_asks_for_an_upgrade_and_garbage_is_refused() {
        let mut config = RepoConfig::new(Utc::now());
        assert_eq!(RepoConfig::parse(&config.to_json()).unwrap(), config);
        config.format_version = FORMAT_VERSION + 1;
        let err = RepoConfig::parse(&config.to_json()).unwrap_err();
        assert!(crate::error::hint_of(&err).unwrap().contains("upgrade"));
        assert_eq!(
            crate::error::status_of(&err),
            crate::error::ExitStatus::Usage
        );
        config.format_version = FORMAT_VERSION;
        let unknown = config.clone().with_ids(None).to_json();
        let unknown = String::from_utf8(unknown.to_vec()).unwrap().replacen(
            "\n}",
            ",\n  \"content_ids\": \"sha3\"\n}",
            1,
        );
        let err = RepoConfig::parse(unknown.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("\"sha3\""), "{err}");
        assert!(crate::error::hint_of(&err).unwrap().contains("upgrade"));
        config.id = "../x".into();
        assert!(RepoConfig::parse(&config.to_json()).is_err());
        assert!(RepoConfig::parse(b"[]").is_err());
    }

    #[tokio::test]
    async fn an_oversized_config_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(dir.path().to_path_buf());
        let big = vec![b' '; MAX_CONFIG_BYTES as usize + 1];
        storage
            .put_bytes(&Key::new(CONFIG_KEY).unwrap(), Bytes::from(big))
            .await
            .unwrap();
        let err = find(&storage).await.unwrap_err();
        assert!(format!("{err:#}").contains("damaged"), "{err:#}");
    }
}
