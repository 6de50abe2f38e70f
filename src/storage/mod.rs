//! Where repository objects live: a small async trait and its backends.
//!
//! The repository layer (`repo/`) decides *what* is stored under which key;
//! a [`Storage`] only knows how to put, get, stat, list and delete opaque
//! objects below a root. That split (borrowed from `object_store`) keeps the
//! on-disk format in one place and lets every backend be proven by one shared
//! test suite (`suite`), run on the local directory and on a real S3 server.
//! The suite is compiled only for tests (the `test-suite` feature, which the
//! package's dev-dependency on itself turns on), never into the binary.
//!
//! Keys are [`Key`]s, not paths: validated, relative, `/`-separated strings
//! with no empty, `.` or `..` segment and no leading dot in any segment, so a
//! key read from a manifest can never escape the repository root, and the
//! local backend can use dot-names for its staging files.
//!
//! Uploads are streams: the producer sends [`Bytes`] chunks through a bounded
//! channel and the backend writes them as they come (S3 multipart parts, or a
//! staged local file renamed into place when complete). An object therefore
//! either exists whole or not at all, and memory stays bounded by the channel.
//!
//! Downloads are bounded: a repository is untrusted input, and an object may
//! be far longer than the manifest says (or, in a local directory, a link to
//! `/dev/zero`). The repository layer reads through [`Storage::get_limited`]
//! and [`Storage::get_bytes`], which stop at the size the caller expects and
//! fail with [`BadObject`] on the first chunk past it, whatever the backend.
//! [`Storage::get_range`] reads a part of an object (a blob in a pack):
//! exactly the bytes asked for, or an error, never fewer or more.

pub mod body;
pub mod cleanup;
mod local;
pub mod metered;
mod s3;
#[cfg(any(test, feature = "test-suite"))]
pub mod suite;
pub mod throttle;

use std::fmt;
use std::sync::Arc;

use anyhow::Result;
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;

pub use body::{Body, BodyWriter};
pub use local::LocalStorage;
pub use s3::{ChecksumMode, S3Options, S3Storage, StaticCredentials};

use crate::error::Hinted;

/// A stream of object bytes, as returned by [`Storage::get`].
pub type ByteStream = BoxStream<'static, Result<Bytes>>;

/// A validated object key, relative to the repository root.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(String);

impl Key {
    /// Validates `s` as a key: `a/b/c`, each segment non-empty, printable,
    /// not starting with `.` and without `\`.
    pub fn new(s: impl Into<String>) -> Result<Key> {
        let s = s.into();
        let valid = !s.is_empty()
            && s.len() <= 1024
            && s.split('/').all(|seg| {
                !seg.is_empty()
                    && !seg.starts_with('.')
                    && seg
                        .chars()
                        .all(|c| !c.is_control() && c != '\\' && c != ':')
            });
        if !valid {
            anyhow::bail!("invalid object key {s:?}");
        }
        Ok(Key(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a listing or a stat returns about one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: Key,
    pub size: u64,
    pub last_modified: Option<DateTime<Utc>>,
}

/// The error a backend returns from [`Storage::get`] when the object does not
/// exist; callers test for it with `err.downcast_ref::<NotFound>()`.
#[derive(Debug)]
pub struct NotFound(pub Key);

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "object {} does not exist", self.0)
    }
}

impl std::error::Error for NotFound {}

/// The error for an object that exists but is not what the caller can use:
/// longer than the caller's limit, or (in a local directory) not a regular
/// file. It is damage in the repository, never a failure of this machine or
/// of the connection; callers test for it with `err.downcast_ref::<BadObject>()`.
#[derive(Debug)]
pub struct BadObject {
    pub key: Key,
    pub kind: BadKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadKind {
    /// The object holds more than `limit` bytes; reading stopped there.
    TooLarge { limit: u64 },
    /// The object ends before byte `end`, which the caller asked for.
    TooShort { end: u64 },
    /// A local object that is a link, FIFO, device, socket or directory
    /// (named here): promsnap only ever writes regular files.
    NotAFile(&'static str),
}

impl fmt::Display for BadObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            BadKind::TooLarge { limit } => write!(
                f,
                "object {} is damaged: it holds more than the {limit} bytes expected of it \
                 (reading stopped there)",
                self.key
            ),
            BadKind::TooShort { end } => write!(
                f,
                "object {} is damaged: it ends before byte {end}, which was expected of it",
                self.key
            ),
            BadKind::NotAFile(what) => write!(
                f,
                "object {} is damaged: it is {what}, not a regular file (promsnap writes only \
                 regular files and follows no links in a local repository)",
                self.key
            ),
        }
    }
}

impl std::error::Error for BadObject {}

/// Cuts `stream` off after `max` bytes: the chunk that goes past it becomes
/// a [`BadObject`] error and nothing more is read. A backend reads at most
/// one chunk beyond `max`, however long the object is.
pub fn limit(stream: ByteStream, key: Key, max: u64) -> ByteStream {
    use futures::StreamExt;
    let state = (stream, key, 0u64, false);
    let limited = futures::stream::unfold(state, move |(mut inner, key, seen, done)| async move {
        if done {
            return None;
        }
        match inner.next().await? {
            Ok(chunk) => {
                let seen = seen + chunk.len() as u64;
                if seen > max {
                    let err = BadObject {
                        key: key.clone(),
                        kind: BadKind::TooLarge { limit: max },
                    };
                    Some((Err(err.into()), (inner, key, seen, true)))
                } else {
                    Some((Ok(chunk), (inner, key, seen, false)))
                }
            }
            Err(e) => Some((Err(e), (inner, key, seen, true))),
        }
    });
    Box::pin(limited)
}

/// Checks that `stream` (bytes `offset..offset + length` of the object at
/// `key`) yields exactly `length` bytes: one that ends early is a
/// [`BadObject`] ([`BadKind::TooShort`]), one that goes on is cut off with
/// [`BadKind::TooLarge`] at the chunk that goes past.
pub fn exact(stream: ByteStream, key: Key, offset: u64, length: u64) -> ByteStream {
    use futures::StreamExt;
    let end = offset.saturating_add(length);
    let state = (stream, key, 0u64, false);
    let checked = futures::stream::unfold(state, move |(mut inner, key, seen, done)| async move {
        if done {
            return None;
        }
        let bad = |kind| {
            Err(BadObject {
                key: key.clone(),
                kind,
            }
            .into())
        };
        let item = match inner.next().await {
            None if seen == length => return None,
            None => bad(BadKind::TooShort { end }),
            Some(Ok(chunk)) if seen + chunk.len() as u64 > length => {
                bad(BadKind::TooLarge { limit: end })
            }
            Some(Ok(chunk)) => {
                let seen = seen + chunk.len() as u64;
                return Some((Ok(chunk), (inner, key, seen, false)));
            }
            Some(Err(e)) => Err(e),
        };
        Some((item, (inner, key, seen, true)))
    });
    Box::pin(checked)
}

/// [`Storage::get_tail`] in two requests: a stat, then a ranged read.
pub async fn tail_by_head<S: Storage + ?Sized>(
    storage: &S,
    key: &Key,
    length: u64,
) -> Result<(u64, Bytes)> {
    let size = match storage.head(key).await? {
        Some(meta) => meta.size,
        None => return Err(NotFound(key.clone()).into()),
    };
    let n = size.min(length);
    Ok((size, storage.get_range_bytes(key, size - n, n).await?))
}

/// An object store below one root (a directory, or a bucket and prefix).
#[async_trait]
pub trait Storage: Send + Sync + fmt::Debug {
    /// Where this storage points, for messages (never includes credentials).
    fn describe(&self) -> String;

    /// The size of the pieces an in-memory object is best handed to
    /// [`Storage::put`] in: S3 sends a piece of its part size as it is,
    /// and gathers smaller ones into a copy of each part. Smaller pieces
    /// let progress follow the upload more closely.
    fn upload_piece(&self) -> usize {
        1 << 20
    }

    /// Whether a few long ranged reads cost much less than many short ones
    /// of the same bytes: true of object stores, which pay per request and
    /// read their own units (Garage's blocks of 1 MiB) whole for a range
    /// that cuts one; not of a local directory, where a `pread` costs its
    /// bytes whatever its length.
    fn prefers_long_reads(&self) -> bool {
        true
    }

    /// Stores the bytes received from `body` under `key`, replacing any
    /// object there. The object becomes visible only once the writer has
    /// finished and every byte is stored; if the writer goes away without
    /// finishing, or this future is dropped, nothing becomes visible.
    /// Returns the number of bytes stored.
    async fn put(&self, key: &Key, body: Body) -> Result<u64>;

    /// Streams the object's bytes. A missing object is a [`NotFound`] error.
    /// Reads of repository data go through [`Storage::get_limited`].
    async fn get(&self, key: &Key) -> Result<ByteStream>;

    /// Streams at most `max` bytes of the object: a longer object yields a
    /// [`BadObject`] error at the first chunk past `max`. Backends that know
    /// the size up front (a local file) fail before reading anything.
    async fn get_limited(&self, key: &Key, max: u64) -> Result<ByteStream> {
        Ok(limit(self.get(key).await?, key.clone(), max))
    }

    /// Streams bytes `offset..offset + length` of the object: exactly those
    /// (a part of a pack: one blob, or its header). A missing object is a
    /// [`NotFound`] error; an object that ends before `offset + length` is a
    /// [`BadObject`] error ([`BadKind::TooShort`]), before or while the
    /// bytes are read; in a local directory, an object that is not a
    /// regular file is refused as by [`Storage::get`].
    async fn get_range(&self, key: &Key, offset: u64, length: u64) -> Result<ByteStream>;

    /// Reads bytes `offset..offset + length` of the object into memory,
    /// with the errors of [`Storage::get_range`]. A local directory reads
    /// them with one `pread` into one buffer (the stream goes through the
    /// async runtime in 64 KiB pieces, each copied twice); other backends
    /// collect the stream.
    async fn get_range_bytes(&self, key: &Key, offset: u64, length: u64) -> Result<Bytes> {
        use futures::StreamExt;
        let mut stream = self.get_range(key, offset, length).await?;
        // A recycled buffer (crate::buffers): a run of blobs is often
        // megabytes, and fresh pages cost a fault each as they fill.
        let mut data = crate::buffers::take(usize::try_from(length).unwrap_or(0));
        let mut filled = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            match data.get_mut(filled..filled + chunk.len()) {
                Some(room) => room.copy_from_slice(&chunk),
                // More than asked for: kept, for the caller to refuse.
                None => {
                    data.truncate(filled);
                    data.extend_from_slice(&chunk);
                }
            }
            filled += chunk.len();
        }
        data.truncate(filled);
        Ok(crate::buffers::into_bytes(data))
    }

    /// The object's size and its last `length` bytes (all of it when it
    /// is shorter), in memory: a pack's header, at its end. A missing
    /// object is a [`NotFound`] error. Here a stat and a ranged read; S3
    /// asks for a suffix range, one request that answers both.
    async fn get_tail(&self, key: &Key, length: u64) -> Result<(u64, Bytes)> {
        tail_by_head(self, key, length).await
    }

    /// Size and time of the object, or `None` when it does not exist.
    async fn head(&self, key: &Key) -> Result<Option<ObjectMeta>>;

    /// Every object whose key starts with `prefix`, in key order.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>>;

    /// Removes the object; removing a missing object is not an error.
    async fn delete(&self, key: &Key) -> Result<()>;

    /// Cleans up uploads that never completed (S3 multipart uploads, local
    /// staging files) started before `before`; with `dry_run` only counts
    /// them. Returns how many there were.
    async fn abort_incomplete(&self, before: DateTime<Utc>, dry_run: bool) -> Result<u64>;

    /// Stores a small object held in memory.
    async fn put_bytes(&self, key: &Key, data: Bytes) -> Result<u64> {
        self.put(key, Body::from_bytes(data)).await
    }

    /// Reads a whole (small) object of at most `max` bytes into memory; a
    /// longer one is a [`BadObject`] error, after at most one chunk past `max`.
    async fn get_bytes(&self, key: &Key, max: u64) -> Result<Bytes> {
        use futures::StreamExt;
        let mut stream = self.get_limited(key, max).await?;
        // One buffer, grown as chunks arrive: no list of chunks plus a
        // concatenated copy of them at the end.
        let mut data = bytes::BytesMut::new();
        while let Some(chunk) = stream.next().await {
            data.extend_from_slice(&chunk?);
        }
        Ok(data.freeze())
    }
}

/// Where a repository lives, parsed from `--repo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Local(std::path::PathBuf),
    S3 { bucket: String, prefix: String },
}

impl Location {
    /// Parses `s3://bucket[/prefix]`, `file:///path` or a plain path.
    pub fn parse(s: &str) -> Result<Location> {
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let prefix = prefix.trim_matches('/');
            if bucket.is_empty() || (!prefix.is_empty() && Key::new(prefix).is_err()) {
                return Err(Hinted::usage(
                    format!("invalid S3 repository {s:?}"),
                    "write it as s3://BUCKET or s3://BUCKET/PREFIX",
                )
                .into());
            }
            return Ok(Location::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
            });
        }
        if let Some(path) = s.strip_prefix("file://") {
            return Ok(Location::Local(path.into()));
        }
        if s.contains("://") {
            return Err(Hinted::usage(
                format!("unsupported repository URL {s:?}"),
                "use s3://BUCKET/PREFIX, file:///PATH or a plain directory path",
            )
            .into());
        }
        if s.is_empty() {
            return Err(Hinted::usage("the repository is empty", "pass --repo").into());
        }
        Ok(Location::Local(s.into()))
    }
}

/// Opens the storage a repository location points at.
pub async fn open(location: &Location, s3: &S3Options) -> Result<Arc<dyn Storage>> {
    Ok(match location {
        Location::Local(path) => Arc::new(LocalStorage::new(path.clone())),
        Location::S3 { bucket, prefix } => {
            Arc::new(S3Storage::new(bucket.clone(), prefix.clone(), s3).await?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_reject_escapes() {
        for bad in [
            "", "/a", "a/", "a//b", "..", "a/../b", "./a", ".hidden", "a\\b", "a\nb", "c:/x",
        ] {
            assert!(Key::new(bad).is_err(), "{bad:?} must be rejected");
        }
        for good in ["a", "blocks/01H/abc.tar.zst", "snapshots/2026-x.json"] {
            assert_eq!(Key::new(good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn locations_parse() {
        assert_eq!(
            Location::parse("s3://b/some/prefix/").unwrap(),
            Location::S3 {
                bucket: "b".into(),
                prefix: "some/prefix".into()
            }
        );
        assert_eq!(
            Location::parse("s3://b").unwrap(),
            Location::S3 {
                bucket: "b".into(),
                prefix: "".into()
            }
        );
        assert_eq!(
            Location::parse("file:///var/backups").unwrap(),
            Location::Local("/var/backups".into())
        );
        assert_eq!(
            Location::parse("./repo").unwrap(),
            Location::Local("./repo".into())
        );
        assert!(Location::parse("gs://b").is_err());
        assert!(Location::parse("s3:///x").is_err());
        assert!(Location::parse("s3://b/../x").is_err());
    }
}
