//! Where format 2 data lives: the one place recipe and pack keys are made
//! and read back.
//!
//! Recipes and packs are stored below the directory of the group whose
//! snapshots wrote them (docs/FORMAT.md, "Layout"), so that a prune of one
//! group lists and deletes only below its own directories:
//!
//! ```text
//! recipes/<g>/<ULID>/<fp>.json        recipes/<g>/<ULID>/<fp>-<16 hex>.json (repacked)
//! packs/<g>/<2 hex>/<64 hex>
//! recipes/<ULID>/<fp>.json            the same, as written before groups (legacy)
//! packs/<2 hex>/<64 hex>
//! ```
//!
//! `<g>` is the manifest group directory ([`catalog::group_dir`]). A
//! recipe's packs are those of the directory its own key names: a blob
//! reference holds only the pack's hash, and the recipe's key says where
//! that pack is. A key is read back only if making it again gives the same
//! string, so a key this version does not write (`..`, another depth,
//! upper-case hex, a directory name [`catalog::group_dir`] would not make)
//! is never taken for one it does.

use std::fmt;

use anyhow::Result;

use super::catalog;
use super::content_id::ContentId;
use crate::storage::Key;

/// The directory of a recipe and of the packs it references.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataDir {
    /// `recipes/<ULID>/…` and `packs/<2 hex>/…`: written before groups;
    /// manifests of any group may reference it.
    Legacy,
    /// `recipes/<g>/…` and `packs/<g>/…`, `<g>` a group directory name.
    Group(String),
}

/// A pack: the data directory it is in, and its name. (The same bytes in
/// two directories are two packs.)
pub type PackId = (DataDir, ContentId);

/// A recipe key, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipeKey {
    pub dir: DataDir,
    pub ulid: String,
    pub fingerprint: String,
    /// The 16 hex digits of a recipe prune rewrote, if it is one.
    pub repacked: Option<String>,
}

impl DataDir {
    /// The data directory of the group (an HA group, else an instance)
    /// called `name`.
    pub fn of_group(name: &str) -> DataDir {
        DataDir::Group(catalog::group_dir(name))
    }

    /// The directory a key's component names, if this version would make
    /// that component for some group.
    fn group(dir: &str) -> Option<DataDir> {
        (catalog::group_dir(dir) == dir).then(|| DataDir::Group(dir.to_string()))
    }

    /// `recipes/` or `recipes/<g>/`.
    pub fn recipe_prefix(&self) -> String {
        match self {
            DataDir::Legacy => "recipes/".into(),
            DataDir::Group(g) => format!("recipes/{g}/"),
        }
    }

    /// `packs/` or `packs/<g>/`. The legacy prefix lists every group's
    /// packs too: [`DataDir::parse_pack_key`] tells them apart.
    pub fn pack_prefix(&self) -> String {
        match self {
            DataDir::Legacy => "packs/".into(),
            DataDir::Group(g) => format!("packs/{g}/"),
        }
    }

    /// The key of the recipe of a block version.
    pub fn recipe_key(&self, ulid: &str, fingerprint: &str) -> Result<Key> {
        Key::new(format!("{}{ulid}/{fingerprint}.json", self.recipe_prefix()))
    }

    /// The key of a recipe that prune rewrote to point at repacked blobs:
    /// `…/<ULID>/<fp>-<first 16 hex digits of its SHA-256>.json`, so that
    /// it never replaces the recipe it succeeds (which manifests may still
    /// name until prune has rewritten them) and rewriting it again after a
    /// crash gives the same key.
    pub fn repacked_recipe_key(&self, ulid: &str, fingerprint: &str, json: &[u8]) -> Result<Key> {
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(json));
        Key::new(format!(
            "{}{ulid}/{fingerprint}-{}.json",
            self.recipe_prefix(),
            &sha[..16]
        ))
    }

    /// The key a pack of this directory is stored under.
    pub fn pack_key(&self, pack: &ContentId) -> Key {
        let hex = pack.to_hex();
        Key::new(format!("{}{}/{hex}", self.pack_prefix(), &hex[..2]))
            .expect("a group directory and hex make a valid key")
    }

    /// The directory, block version and kind of a recipe key, if it is one
    /// this version writes (a ULID, 32 hex digits of fingerprint, and for a
    /// repacked one 16 more).
    pub fn parse_recipe_key(key: &str) -> Option<RecipeKey> {
        let parts: Vec<&str> = key.strip_prefix("recipes/")?.split('/').collect();
        let (dir, ulid, file) = match parts.as_slice() {
            [ulid, file] => (DataDir::Legacy, *ulid, *file),
            [g, ulid, file] => (DataDir::group(g)?, *ulid, *file),
            _ => return None,
        };
        crate::tsdb::parse_ulid(ulid)?;
        let stem = file.strip_suffix(".json")?;
        let (fingerprint, repacked) = match stem.split_once('-') {
            Some((fp, h)) => (fp, Some(h)),
            None => (stem, None),
        };
        let lower_hex = |s: &str, n: usize| {
            s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        if !lower_hex(fingerprint, 32) || repacked.is_some_and(|h| !lower_hex(h, 16)) {
            return None;
        }
        let parsed = RecipeKey {
            dir,
            ulid: ulid.to_string(),
            fingerprint: fingerprint.to_string(),
            repacked: repacked.map(str::to_string),
        };
        (parsed.key().ok()?.as_str() == key).then_some(parsed)
    }

    /// The directory of the recipe `key` (and of its packs); a key this
    /// version does not write is an error (a manifest naming one does not
    /// validate, so this is damage met past that check).
    pub fn of_recipe(key: &str) -> Result<DataDir> {
        match DataDir::parse_recipe_key(key) {
            Some(k) => Ok(k.dir),
            None => anyhow::bail!("{key:?} is not a recipe key this promsnap writes"),
        }
    }

    /// The directory and name of a pack key this version writes.
    pub fn parse_pack_key(key: &str) -> Option<(DataDir, ContentId)> {
        let parts: Vec<&str> = key.strip_prefix("packs/")?.split('/').collect();
        let (dir, name) = match parts.as_slice() {
            [_, name] => (DataDir::Legacy, *name),
            [g, _, name] => (DataDir::group(g)?, *name),
            _ => return None,
        };
        let id: ContentId = name.parse().ok()?;
        (dir.pack_key(&id).as_str() == key).then_some((dir, id))
    }
}

impl RecipeKey {
    /// The key again.
    pub fn key(&self) -> Result<Key> {
        let name = match &self.repacked {
            None => format!("{}.json", self.fingerprint),
            Some(h) => format!("{}-{h}.json", self.fingerprint),
        };
        Key::new(format!("{}{}/{name}", self.dir.recipe_prefix(), self.ulid))
    }
}

impl fmt::Display for DataDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataDir::Legacy => f.write_str("the data written before groups"),
            DataDir::Group(g) => write!(f, "group directory {g}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ULID: &str = "01M8MW2KRH61SWDYDTM3B9VJXT";

    fn fp() -> String {
        "d0b05b87b941355260ee3525d3036a65".into()
    }

    #[test]
    fn recipe_keys_round_trip_in_both_layouts() {
        for dir in [
            DataDir::Legacy,
            DataDir::of_group("prom-a"),
            DataDir::of_group("monitoring/k8s"),
        ] {
            let plain = dir.recipe_key(ULID, &fp()).unwrap();
            let parsed = DataDir::parse_recipe_key(plain.as_str()).unwrap();
            assert_eq!(
                (
                    &parsed.dir,
                    parsed.ulid.as_str(),
                    &parsed.fingerprint,
                    &parsed.repacked
                ),
                (&dir, ULID, &fp(), &None),
                "{plain}"
            );
            let repacked = dir.repacked_recipe_key(ULID, &fp(), b"{}").unwrap();
            let parsed = DataDir::parse_recipe_key(repacked.as_str()).unwrap();
            assert_eq!(parsed.dir, dir);
            assert_eq!(parsed.repacked.as_ref().map(String::len), Some(16));
            assert_eq!(parsed.key().unwrap(), repacked);
            assert!(repacked.as_str().starts_with(&dir.recipe_prefix()));
        }
        assert_eq!(
            DataDir::of_group("prom-a")
                .recipe_key(ULID, &fp())
                .unwrap()
                .as_str(),
            format!("recipes/prom-a/{ULID}/{}.json", fp())
        );
        assert_eq!(
            DataDir::Legacy.recipe_key(ULID, &fp()).unwrap().as_str(),
            format!("recipes/{ULID}/{}.json", fp())
        );
    }

    #[test]
    fn pack_keys_round_trip_in_both_layouts() {
        let pack = ContentId::of(b"a pack");
        let hex = pack.to_hex();
        for (dir, expected) in [
            (DataDir::Legacy, format!("packs/{}/{hex}", &hex[..2])),
            (
                DataDir::of_group("prom-a"),
                format!("packs/prom-a/{}/{hex}", &hex[..2]),
            ),
            // A group called like a hex prefix is still a group: the depth tells.
            (
                DataDir::of_group("ab"),
                format!("packs/ab/{}/{hex}", &hex[..2]),
            ),
        ] {
            let key = dir.pack_key(&pack);
            assert_eq!(key.as_str(), expected);
            assert!(key.as_str().starts_with(&dir.pack_prefix()));
            assert_eq!(DataDir::parse_pack_key(key.as_str()), Some((dir, pack)));
        }
    }

    #[test]
    fn keys_this_version_does_not_write_are_refused() {
        let f = fp();
        let hex = ContentId::of(b"x").to_hex();
        for bad in [
            format!("recipes/../{ULID}/{f}.json"),
            format!("recipes/./{ULID}/{f}.json"),
            format!("recipes//{ULID}/{f}.json"),
            format!("recipes/a/b/{ULID}/{f}.json"),
            format!("recipes/monitoring/k8s/{ULID}/{f}.json"),
            format!("recipes/prom-a/{ULID}/{f}.json/x"),
            format!("recipes/prom-a/not-a-ulid/{f}.json"),
            format!("recipes/prom-a/{ULID}/{}.json", f.to_uppercase()),
            format!("recipes/prom-a/{ULID}/{f}.tar.zst"),
            format!("recipes/prom-a/{ULID}/{f}-.json"),
            format!("recipes/prom-a/{ULID}/{f}-0123456789ABCDEF.json"),
            format!("recipes/prom-a/{ULID}/{f}-0123456789abcdef0.json"),
            format!("recipes/x.json/{ULID}/{f}.json"),
            format!("recipes/{ULID}/{}.json", &f[..31]),
            format!("blocks/{ULID}/{f}.json"),
        ] {
            assert_eq!(DataDir::parse_recipe_key(&bad), None, "{bad}");
        }
        for bad in [
            format!("packs/00/{hex}"),
            format!("packs/{}/{}", &hex[..2], hex.to_uppercase()),
            format!("packs/../{}/{hex}", &hex[..2]),
            format!("packs/a/b/{}/{hex}", &hex[..2]),
            format!("packs/{hex}"),
            format!("packs/g/{}/{}", &hex[..2], &hex[..63]),
            format!("packs/g/{}/{hex}0", &hex[..2]),
            "packs/ab/cd".into(),
        ] {
            assert_eq!(DataDir::parse_pack_key(&bad), None, "{bad}");
        }
    }
}
