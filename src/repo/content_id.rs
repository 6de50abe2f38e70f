//! The hash that names content: a blob's id, a window stream's, a pack's name.
//!
//! Format 2 names what it stores by a hash of its bytes, so the same bytes
//! are stored once and a name can always be checked against what it names.
//! Which hash is a property of the repository, fixed when it is made and
//! written in its config object (`content_ids`): BLAKE3 for repositories
//! made by this version, SHA-256 for format 2 repositories made before it
//! (their config object has no such field). BLAKE3 because a backup hashes
//! every byte of chunk data twice with it (the window stream, the blob) and
//! every stored byte once more (the pack): on these machines SHA-256 took a
//! quarter of a full backup's CPU, BLAKE3 a tenth of it, and on processors
//! without SHA instructions the gap is several times wider. The files a
//! restore writes keep their SHA-256 (`files` in recipes and manifests): that
//! is the check a user can repeat with `sha256sum`.
//!
//! In memory an id is its 32 bytes (prune keeps a set of every referenced
//! blob id, so the size matters); in JSON and in object keys it is 64
//! lowercase hex digits, and anything else read from a repository is
//! refused rather than normalised.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// The hash of some content, under the repository's [`IdHash`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentId(pub [u8; 32]);

impl ContentId {
    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The BLAKE3 of `data`: an id for tests that need one.
    #[cfg(test)]
    pub fn of(data: &[u8]) -> ContentId {
        IdHash::Blake3.of(data)
    }
}

/// Which hash names content in a repository (its config's `content_ids`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdHash {
    /// Format 2 repositories made before `content_ids` existed.
    Sha256,
    /// Every repository made since.
    Blake3,
}

impl IdHash {
    /// What new repositories use.
    pub const NEW: IdHash = IdHash::Blake3;

    /// The name in the config object: `sha256` or `blake3`.
    pub fn as_str(self) -> &'static str {
        match self {
            IdHash::Sha256 => "sha256",
            IdHash::Blake3 => "blake3",
        }
    }

    /// The name in messages: `SHA-256` or `BLAKE3`.
    pub fn display(self) -> &'static str {
        match self {
            IdHash::Sha256 => "SHA-256",
            IdHash::Blake3 => "BLAKE3",
        }
    }

    /// The id of `data`.
    pub fn of(self, data: &[u8]) -> ContentId {
        match self {
            IdHash::Sha256 => ContentId(Sha256::digest(data).into()),
            IdHash::Blake3 => ContentId(*blake3::hash(data).as_bytes()),
        }
    }

    /// A hasher for content that arrives in pieces.
    pub fn hasher(self) -> IdHasher {
        IdHasher(match self {
            IdHash::Sha256 => Inner::Sha256(Sha256::new()),
            IdHash::Blake3 => Inner::Blake3 {
                hasher: Box::new(blake3::Hasher::new()),
                pending: Vec::new(),
            },
        })
    }
}

impl FromStr for IdHash {
    type Err = String;

    fn from_str(s: &str) -> Result<IdHash, String> {
        match s {
            "sha256" => Ok(IdHash::Sha256),
            "blake3" => Ok(IdHash::Blake3),
            other => Err(other.chars().take(40).collect()),
        }
    }
}

/// BLAKE3 is handed whole multiples of this many bytes, at offsets that are
/// multiples of it; smaller pieces are gathered first. It hashes many 1 KiB
/// chunks at once with SIMD (16 with AVX-512) only when it is handed several
/// that start at a multiple of their number: a window stream arrives one
/// chunk record (a few hundred bytes) at a time, and a pack one compressed
/// blob of any length at a time. Handed records one by one it ran at a fifth
/// of its speed; handed pieces of about 16 KiB at any offset, a quarter of
/// its time went to hashing single chunks.
const GATHER: usize = 16 << 10;

/// Hashes content that arrives in pieces; [`IdHasher::finish`] gives its id.
pub struct IdHasher(Inner);

enum Inner {
    Sha256(Sha256),
    Blake3 {
        hasher: Box<blake3::Hasher>,
        /// Bytes not yet handed to `hasher` (fewer than [`GATHER`]); what it
        /// was handed is a multiple of [`GATHER`].
        pending: Vec<u8>,
    },
}

impl IdHasher {
    pub fn update(&mut self, mut data: &[u8]) {
        match &mut self.0 {
            Inner::Sha256(h) => h.update(data),
            Inner::Blake3 { hasher, pending } => {
                if !pending.is_empty() {
                    let take = (GATHER - pending.len()).min(data.len());
                    pending.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if pending.len() < GATHER {
                        return;
                    }
                    hasher.update(pending);
                    pending.clear();
                }
                let whole = data.len() - data.len() % GATHER;
                if whole > 0 {
                    hasher.update(&data[..whole]);
                }
                if whole < data.len() {
                    if pending.capacity() == 0 {
                        pending.reserve_exact(GATHER);
                    }
                    pending.extend_from_slice(&data[whole..]);
                }
            }
        }
    }

    pub fn finish(self) -> ContentId {
        match self.0 {
            Inner::Sha256(h) => ContentId(h.finalize().into()),
            Inner::Blake3 {
                mut hasher,
                pending,
            } => {
                hasher.update(&pending);
                ContentId(*hasher.finalize().as_bytes())
            }
        }
    }
}

impl fmt::Display for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentId({})", self.to_hex())
    }
}

/// Text that is not 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a content id (64 lowercase hex digits)")]
pub struct NotAnId(String);

impl FromStr for ContentId {
    type Err = NotAnId;

    fn from_str(s: &str) -> Result<ContentId, NotAnId> {
        let lower_hex = s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let mut id = [0u8; 32];
        if !lower_hex || hex::decode_to_slice(s, &mut id).is_err() {
            // Long garbage is not worth repeating whole in a message.
            return Err(NotAnId(s.chars().take(80).collect()));
        }
        Ok(ContentId(id))
    }
}

impl serde::Serialize for ContentId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for ContentId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ContentId, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_the_repositorys_hash_in_lowercase_hex_both_ways() {
        let id = IdHash::Sha256.of(b"abc");
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(id.to_string(), hex);
        assert_eq!(hex.parse::<ContentId>().unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{hex}\""));
        assert_eq!(serde_json::from_str::<ContentId>(&json).unwrap(), id);
    }

    #[test]
    fn anything_but_64_lowercase_hex_digits_is_refused() {
        let upper = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
        for bad in ["", "ba78", upper, &"g".repeat(64), &"a".repeat(65)] {
            assert!(bad.parse::<ContentId>().is_err(), "{bad:?} accepted");
            let json = serde_json::to_string(bad).unwrap();
            let err = serde_json::from_str::<ContentId>(&json).unwrap_err();
            assert!(err.to_string().contains("is not a content id"), "{err}");
        }
    }

    #[test]
    fn both_hashes_give_their_published_digests() {
        let sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let b3 = "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85";
        assert_eq!(IdHash::Sha256.of(b"abc").to_hex(), sha);
        assert_eq!(IdHash::Blake3.of(b"abc").to_hex(), b3);
        assert_eq!("blake3".parse::<IdHash>(), Ok(IdHash::Blake3));
        assert_eq!("sha256".parse::<IdHash>(), Ok(IdHash::Sha256));
        assert!("md5".parse::<IdHash>().is_err());
    }

    #[test]
    fn hashing_in_pieces_gives_the_id_of_the_whole() {
        let data: Vec<u8> = (0..200_000u32).map(|i| ((i * 7919) >> 5) as u8).collect();
        for ids in [IdHash::Sha256, IdHash::Blake3] {
            // Records of a few hundred bytes, pieces across the gathering
            // limit, and one piece larger than it.
            for sizes in [
                &[1usize, 300, 17][..],
                &[16 << 10, 1][..],
                &[40_000][..],
                &[(16 << 10) - 1, 3, 50_000][..],
            ] {
                let mut h = ids.hasher();
                let (mut at, mut i) = (0, 0);
                while at < data.len() {
                    let n = sizes[i % sizes.len()].min(data.len() - at);
                    h.update(&data[at..at + n]);
                    (at, i) = (at + n, i + 1);
                }
                assert_eq!(h.finish(), ids.of(&data), "{ids:?} in pieces of {sizes:?}");
            }
            assert_eq!(ids.hasher().finish(), ids.of(b""));
        }
    }
}
