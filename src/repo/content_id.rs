//! A SHA-256 that names content: a blob's id, a pack's name.
//!
//! Format 2 names what it stores by the SHA-256 of its bytes, so the same
//! bytes are stored once and a name can always be checked against what it
//! names. In memory the sum is its 32 bytes (prune keeps a set of every
//! referenced blob id, so the size matters); in JSON and in object keys it
//! is 64 lowercase hex digits, and anything else read from a repository is
//! refused rather than normalised.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// The SHA-256 of some content.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentId(pub [u8; 32]);

impl ContentId {
    /// The id of `data`.
    pub fn of(data: &[u8]) -> ContentId {
        ContentId(Sha256::digest(data).into())
    }

    /// The id a finished hasher computed.
    pub fn from_hasher(hasher: Sha256) -> ContentId {
        ContentId(hasher.finalize().into())
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
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
#[error("{0:?} is not a SHA-256 (64 lowercase hex digits)")]
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
    fn ids_are_sha256_in_lowercase_hex_both_ways() {
        let id = ContentId::of(b"abc");
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
            assert!(err.to_string().contains("is not a SHA-256"), "{err}");
        }
    }
}
