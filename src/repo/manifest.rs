//! The repository's on-disk format: snapshot manifests and block entries.
//!
//! A manifest is one JSON document per snapshot, written last: a backup
//! exists exactly when its manifest does. It lists every block the snapshot
//! needs with the key of the object that holds it, the archive's size and
//! SHA-256, and each file's path, size and SHA-256, so a restore can verify
//! every byte without trusting the storage.
//!
//! Manifests come from storage, which we do not trust either: [`Manifest::validate`]
//! rejects anything that could steer a restore outside its target (block
//! names that are not ULIDs, file paths with `..`, object keys outside the
//! block area) before any of it is used.

use std::collections::{BTreeMap, HashSet};

use anyhow::{bail, ensure, Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::configfiles::ConfigFileEntry;
pub use crate::archive::FileEntry;
use crate::storage::Key;
use crate::tsdb::check::BlockSummary;
use crate::tsdb::{self, BlockStats};

/// Bumped when a change would make older promsnap versions misread a repository.
pub const FORMAT_VERSION: u32 = 2;

/// The format of manifests whose blocks are all archives (format 1).
pub const FORMAT_ARCHIVES: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub id: String,
    pub created: DateTime<Utc>,
    pub instance: String,
    /// The HA group whose one backup this is, when replicas share a repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha_group: Option<String>,
    pub promsnap_version: String,
    /// What was backed up: the Prometheus server or a directory.
    pub source: Source,
    pub blocks: Vec<BlockEntry>,
    /// Prometheus's configuration and rule files stored with the snapshot
    /// (see `configfiles/`); absent in older manifests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_files: Vec<ConfigFileEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// `api` (snapshot through the admin API) or `dir` (`--from-dir`).
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub prometheus_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub prometheus_version: Option<String>,
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub snapshot_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub directory: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockEntry {
    pub ulid: String,
    pub min_time: i64,
    pub max_time: i64,
    pub compaction_level: u32,
    pub stats: BlockStats,
    pub fingerprint: String,
    /// Where the block is: its archive (`blocks/<ULID>/<fp>.tar.zst`,
    /// format 1) or its recipe (`recipes/<ULID>/<fp>.json`, format 2).
    pub object: ObjectRef,
    pub files: Vec<FileEntry>,
    /// Format 2: bytes of every blob the recipe references.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_stored: Option<u64>,
    /// Format 2: bytes the snapshot that stored this block uploaded for it
    /// (0 when it reused a stored block whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_new: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub key: String,
    pub size: u64,
    pub sha256: String,
}

/// The largest manifest or block entry promsnap reads. A manifest takes
/// about 180 bytes per file (a 512 MiB chunk segment, or a small file), so
/// this is room for some 90,000 files, over 40 TB of TSDB in one snapshot;
/// real manifests are a few KiB to a few MiB. It bounds the memory a
/// damaged or hostile repository can make promsnap spend on one object.
pub const MAX_MANIFEST_BYTES: u64 = 16 * 1024 * 1024;

/// Just the format version, read when a manifest does not parse: every
/// other field is skipped without being stored.
#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    format_version: Option<u64>,
}

fn readable_version(v: u64) -> Result<()> {
    if v > u64::from(FORMAT_VERSION) {
        bail!(
            "written by a newer promsnap (repository format {v}, this one reads up to \
             {FORMAT_VERSION}); upgrade promsnap"
        );
    }
    Ok(())
}

/// Where the object for a block with this fingerprint lives.
pub fn block_object_key(ulid: &str, fingerprint: &str) -> Result<Key> {
    Key::new(format!("blocks/{ulid}/{fingerprint}.tar.zst"))
}

/// Where the entry describing that object lives (written after the object).
pub fn block_entry_key(ulid: &str, fingerprint: &str) -> Result<Key> {
    Key::new(format!("blocks/{ulid}/{fingerprint}.json"))
}

pub fn manifest_key(id: &str) -> Result<Key> {
    validate_id(id)?;
    Key::new(format!("snapshots/{id}.json"))
}

/// A new snapshot id: UTC time to the second plus randomness, so ids sort by
/// time and two backups in the same second do not collide.
pub fn new_id(now: DateTime<Utc>) -> String {
    format!(
        "{}-{:08x}",
        now.format("%Y%m%dT%H%M%SZ"),
        rand::random::<u32>()
    )
}

pub fn validate_id(id: &str) -> Result<()> {
    ensure!(
        !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
        "{id:?} is not a valid snapshot id"
    );
    Ok(())
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl BlockEntry {
    pub fn validate(&self) -> Result<()> {
        ensure!(
            tsdb::parse_ulid(&self.ulid).is_some(),
            "block name {:?} is not a ULID",
            self.ulid
        );
        ensure!(
            is_hex(&self.fingerprint, 32),
            "block {} has a malformed fingerprint",
            self.ulid
        );
        let archive = block_object_key(&self.ulid, &self.fingerprint)?;
        ensure!(
            self.object.key == archive.as_str()
                || super::recipe::is_key_of(&self.object.key, &self.ulid, &self.fingerprint),
            "block {} points at object {:?}, expected {archive} or a recipe \
             recipes/[<group>/]{}/{}.json",
            self.ulid,
            self.object.key,
            self.ulid,
            self.fingerprint
        );
        ensure!(
            is_hex(&self.object.sha256, 64),
            "block {} has a malformed SHA-256",
            self.ulid
        );
        let mut seen = HashSet::new();
        for f in &self.files {
            tsdb::validate_file_path(&f.path).with_context(|| format!("in block {}", self.ulid))?;
            ensure!(
                seen.insert(&f.path),
                "block {} lists {} twice",
                self.ulid,
                f.path
            );
            ensure!(
                is_hex(&f.sha256, 64),
                "{}/{} has a malformed SHA-256",
                self.ulid,
                f.path
            );
        }
        ensure!(
            seen.contains(&"meta.json".to_string()),
            "block {} has no meta.json",
            self.ulid
        );
        Ok(())
    }

    /// How the block's `meta.json`, as Prometheus will read it, differs
    /// from what the manifest records: `(field, message)` for its ULID (which
    /// must be the block's directory name), time range, compaction level and
    /// stats. Hashes only prove that the bytes are the ones the manifest
    /// lists; this proves that they are the block the manifest says.
    pub fn meta_differences(&self, meta: &BlockSummary) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if !meta.ulid.eq_ignore_ascii_case(&self.ulid) {
            out.push((
                "ulid",
                format!(
                    "meta.json names block {} but it is stored as block {}",
                    meta.ulid, self.ulid
                ),
            ));
        }
        let stats = &self.stats;
        let numbers: [(&'static str, i128, i128); 7] = [
            ("minTime", self.min_time.into(), meta.min_time.into()),
            ("maxTime", self.max_time.into(), meta.max_time.into()),
            (
                "compaction.level",
                self.compaction_level.into(),
                meta.compaction_level.into(),
            ),
            ("numSeries", stats.num_series.into(), meta.num_series.into()),
            ("numChunks", stats.num_chunks.into(), meta.num_chunks.into()),
            (
                "numSamples",
                stats.num_samples.into(),
                meta.num_samples.into(),
            ),
            (
                "numTombstones",
                stats.num_tombstones.into(),
                meta.num_tombstones.into(),
            ),
        ];
        for (field, manifest, found) in numbers {
            if manifest != found {
                out.push((
                    field,
                    format!("{field} is {found} in meta.json but {manifest} in the manifest"),
                ));
            }
        }
        out
    }

    pub fn data_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Whether the block is stored as a format 2 recipe (else an archive).
    pub fn is_recipe(&self) -> bool {
        self.object.key.starts_with("recipes/")
    }

    /// Bytes the repository holds for this block: its archive, or every
    /// blob of its recipe (which other blocks may share).
    pub fn stored(&self) -> u64 {
        self.bytes_stored.unwrap_or(self.object.size)
    }
}

impl Manifest {
    /// Parses and validates a manifest read from a repository (at most
    /// [`MAX_MANIFEST_BYTES`], which the caller enforces while reading).
    ///
    /// The bytes go straight into the typed structure: no generic JSON value
    /// is built, so memory stays near the size of the document, and fields
    /// this version does not know are skipped without being kept.
    pub fn parse(bytes: &[u8]) -> Result<Manifest> {
        let m: Manifest = match serde_json::from_slice(bytes) {
            Ok(m) => m,
            Err(e) => {
                // A newer format may not parse as this one: say that, rather
                // than which field failed.
                if let Ok(Probe {
                    format_version: Some(v),
                }) = serde_json::from_slice(bytes)
                {
                    readable_version(v)?;
                }
                return Err(e).context("not a promsnap manifest");
            }
        };
        readable_version(m.format_version.into())?;
        m.validate()?;
        Ok(m)
    }

    pub fn validate(&self) -> Result<()> {
        validate_id(&self.id)?;
        let mut seen = HashSet::new();
        for b in &self.blocks {
            b.validate()?;
            ensure!(seen.insert(&b.ulid), "block {} appears twice", b.ulid);
        }
        super::configfiles::validate_all(&self.config_files)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("manifests serialize")
    }

    pub fn min_time(&self) -> Option<i64> {
        self.blocks.iter().map(|b| b.min_time).min()
    }

    pub fn max_time(&self) -> Option<i64> {
        self.blocks.iter().map(|b| b.max_time).max()
    }

    /// Bytes of all the archives this snapshot references.
    pub fn stored_bytes(&self) -> u64 {
        self.blocks.iter().map(BlockEntry::stored).sum()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample_entry(ulid: &str) -> BlockEntry {
        let fp = "0123456789abcdef0123456789abcdef".to_string();
        BlockEntry {
            ulid: ulid.into(),
            min_time: 0,
            max_time: 7_200_000,
            compaction_level: 1,
            stats: BlockStats {
                num_samples: 10,
                num_series: 2,
                num_chunks: 2,
                num_tombstones: 0,
            },
            object: ObjectRef {
                key: block_object_key(ulid, &fp).unwrap().to_string(),
                size: 100,
                sha256: "a".repeat(64),
            },
            fingerprint: fp,
            files: vec![
                FileEntry {
                    path: "chunks/000001".into(),
                    size: 60,
                    sha256: "b".repeat(64),
                },
                FileEntry {
                    path: "meta.json".into(),
                    size: 40,
                    sha256: "c".repeat(64),
                },
            ],
            bytes_stored: None,
            bytes_new: None,
        }
    }

    pub fn sample_manifest() -> Manifest {
        Manifest {
            format_version: FORMAT_ARCHIVES,
            id: "20261125T063726Z-0000abcd".into(),
            created: "2026-11-25T06:37:26Z".parse().unwrap(),
            instance: "prom-a".into(),
            ha_group: None,
            promsnap_version: "0.1.0".into(),
            source: Source {
                kind: "api".into(),
                prometheus_url: Some("http://localhost:9090".into()),
                prometheus_version: Some("2.42.0".into()),
                external_labels: [("replica".to_string(), "a".to_string())].into(),
                snapshot_name: Some("20261125T063726Z-79d77c8f84687a48".into()),
                directory: None,
            },
            blocks: vec![sample_entry("01HQ3K6W2Z0000000000000000")],
            config_files: Vec::new(),
        }
    }

    #[test]
    fn manifest_round_trips() {
        let m = sample_manifest();
        assert_eq!(Manifest::parse(&m.to_json()).unwrap(), m);
    }

    #[test]
    fn a_block_names_a_recipe_of_either_layout_and_no_other_key() {
        use crate::repo::datadir::DataDir;
        let ulid = "01HQ3K6W2Z0000000000000000";
        let mut e = sample_entry(ulid);
        let fp = e.fingerprint.clone();
        for dir in [DataDir::Legacy, DataDir::of_group("prom-a")] {
            e.object.key = dir.recipe_key(ulid, &fp).unwrap().to_string();
            e.validate().unwrap();
        }
        for bad in [
            format!("recipes/../{ulid}/{fp}.json"),
            format!("recipes/a/b/{ulid}/{fp}.json"),
            format!("recipes/prom-a/{ulid}/{}.json", "1".repeat(32)),
            format!("recipes/prom-a/01HQ3K6W2Z0000000000000001/{fp}.json"),
        ] {
            e.object.key = bad.clone();
            assert!(e.validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn tampered_manifests_are_rejected() {
        let mut m = sample_manifest();
        m.blocks[0].ulid = "../../x".into();
        let err = Manifest::parse(&m.to_json()).unwrap_err();
        assert!(format!("{err:#}").contains("not a ULID"), "{err:#}");

        let mut m = sample_manifest();
        m.blocks[0].files[0].path = "../../../etc/cron.d/x".into();
        assert!(Manifest::parse(&m.to_json()).is_err());

        let mut m = sample_manifest();
        m.blocks[0].object.key = "snapshots/other.json".into();
        assert!(Manifest::parse(&m.to_json()).is_err());

        let mut m = sample_manifest();
        m.blocks.push(m.blocks[0].clone());
        assert!(Manifest::parse(&m.to_json()).is_err());

        let mut m = sample_manifest();
        m.id = "../x".into();
        assert!(Manifest::parse(&m.to_json()).is_err());
    }

    #[test]
    fn config_files_are_optional_and_validated() {
        // A manifest written before config files existed still parses.
        let mut json: serde_json::Value =
            serde_json::from_slice(&sample_manifest().to_json()).unwrap();
        assert!(json.get("config_files").is_none());
        json.as_object_mut().unwrap().remove("config_files");
        let old = Manifest::parse(&serde_json::to_vec(&json).unwrap()).unwrap();
        assert!(old.config_files.is_empty());

        let sha = "d".repeat(64);
        let mut m = sample_manifest();
        m.config_files.push(ConfigFileEntry {
            path: "/etc/prometheus/prometheus.yml".into(),
            name: "etc/prometheus/prometheus.yml".into(),
            kind: "config".into(),
            size: 10,
            sha256: sha.clone(),
            key: format!("configs/{sha}"),
        });
        assert_eq!(Manifest::parse(&m.to_json()).unwrap(), m);
        assert_eq!(m.format_version, 1);
        m.config_files[0].name = "../../etc/cron.d/x".into();
        assert!(Manifest::parse(&m.to_json()).is_err());
        m.config_files[0].name = "/etc/cron.d/x".into();
        assert!(Manifest::parse(&m.to_json()).is_err());
    }

    #[test]
    fn newer_formats_ask_for_an_upgrade() {
        let mut m = sample_manifest();
        m.format_version = FORMAT_VERSION + 1;
        let err = Manifest::parse(&m.to_json()).unwrap_err();
        assert!(format!("{err}").contains("upgrade promsnap"));
    }

    /// Fields this version does not know are skipped (a newer promsnap may
    /// add one within the same format version); anything that is not a
    /// manifest object fails on its first value, without being built.
    #[test]
    fn unknown_fields_are_skipped_and_other_json_is_refused() {
        let mut json: serde_json::Value =
            serde_json::from_slice(&sample_manifest().to_json()).unwrap();
        json["added_later"] = serde_json::json!({"nested": [1, 2, 3], "text": "x".repeat(1000)});
        let parsed = Manifest::parse(&serde_json::to_vec(&json).unwrap()).unwrap();
        assert_eq!(parsed, sample_manifest());

        let array = format!("[{}0]", "0,".repeat(100_000));
        for bad in [
            array.as_str(),
            "\"text\"",
            "{\"format_version\": \"1\"}",
            "not json",
        ] {
            let err = Manifest::parse(bad.as_bytes()).unwrap_err();
            assert!(
                format!("{err:#}").contains("not a promsnap manifest"),
                "{err:#}"
            );
        }
        // A newer format is recognised even when nothing else parses.
        let err = Manifest::parse(br#"{"format_version": 3, "blocks": "elsewhere"}"#).unwrap_err();
        assert!(format!("{err}").contains("upgrade promsnap"), "{err}");
    }

    fn summary_of(entry: &BlockEntry) -> BlockSummary {
        BlockSummary {
            ulid: entry.ulid.clone(),
            min_time: entry.min_time,
            max_time: entry.max_time,
            num_samples: entry.stats.num_samples,
            num_series: entry.stats.num_series,
            num_chunks: entry.stats.num_chunks,
            num_tombstones: entry.stats.num_tombstones,
            compaction_level: entry.compaction_level,
        }
    }

    #[test]
    fn meta_json_must_describe_the_block_the_manifest_lists() {
        let entry = sample_entry("01HQ3K6W2Z0000000000000000");
        let same = summary_of(&entry);
        assert!(entry.meta_differences(&same).is_empty());
        let lower = BlockSummary {
            ulid: entry.ulid.to_lowercase(),
            ..summary_of(&entry)
        };
        assert!(entry.meta_differences(&lower).is_empty(), "the same ULID");

        let other = BlockSummary {
            ulid: "01HQ3K6W2Z0000000000000001".into(),
            min_time: -5,
            num_tombstones: 3,
            ..summary_of(&entry)
        };
        let found = entry.meta_differences(&other);
        let fields: Vec<&str> = found.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["ulid", "minTime", "numTombstones"]);
        assert_eq!(
            found[0].1,
            "meta.json names block 01HQ3K6W2Z0000000000000001 but it is stored as block \
             01HQ3K6W2Z0000000000000000"
        );
        assert_eq!(
            found[1].1,
            "minTime is -5 in meta.json but 0 in the manifest"
        );
    }

    #[test]
    fn ids_sort_by_time() {
        let a = new_id("2026-01-01T00:00:00Z".parse().unwrap());
        let b = new_id("2026-01-01T00:00:01Z".parse().unwrap());
        assert!(a < b);
        validate_id(&a).unwrap();
    }
}
