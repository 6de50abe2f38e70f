//! A repository in a local directory (or any mounted filesystem).
//!
//! Writes go to a dot-named staging file next to the target, are fsynced, and
//! are renamed into place only when the whole body arrived; the directory is
//! fsynced after the rename. A crash or Ctrl-C therefore leaves at most a
//! staging file, which listings skip (keys never start with a dot) and the
//! next write of the same key replaces.
//!
//! Reads trust nothing they find: an object must be a regular file. A link
//! (even to a regular file), a FIFO, a device or a socket at an object's
//! place is refused with [`BadObject`] before it is opened: a FIFO would
//! block the open forever, `/dev/zero` would never end, and opening some
//! devices has side effects. Listings skip the same things, so what `list`
//! shows and what `get` reads agree. The open itself uses `O_NOFOLLOW` and
//! `O_NONBLOCK` and the opened file is checked again, so swapping a FIFO in
//! between the check and the open cannot make a read hang either.

use std::fs::{FileType, Metadata};
use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{BadKind, BadObject, Body, ByteStream, Key, NotFound, ObjectMeta, Storage};
use crate::direct_io::StagingWriter;
use anyhow::{Context, Result};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt};

const READ_CHUNK: usize = 1 << 20;

/// The chunk size of ranged reads, which are parts of packs read by many
/// decoders at once: a chunk is what each of them holds.
const RANGE_CHUNK: usize = 64 << 10;

#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    pub fn new(root: PathBuf) -> Self {
        LocalStorage { root }
    }

    fn path(&self, key: &Key) -> PathBuf {
        self.root.join(key.as_str())
    }
}

/// Removes a staging file unless disarmed; runs on error and on cancellation.
struct StagingGuard(Option<PathBuf>);

impl Drop for StagingGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[async_trait]
impl Storage for LocalStorage {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn prefers_long_reads(&self) -> bool {
        false
    }

    async fn put(&self, key: &Key, mut body: Body) -> Result<u64> {
        let target = self.path(key);
        let dir = target
            .parent()
            .expect("keys have a file name")
            .to_path_buf();
        tokio::fs::create_dir_all(&dir)
            .await
            .with_context(|| format!("could not create directory {}", dir.display()))?;
        let staging = dir.join(format!(
            ".{}.tmp-{:08x}",
            key.file_name(),
            rand::random::<u32>()
        ));
        let mut file = StagingWriter::create(&staging)
            .with_context(|| format!("could not create {}", staging.display()))?;
        // The future owns the guard: a cancelled put (Ctrl-C, a sibling
        // failed) removes its staging file at once. The writing thread then
        // finishes into an unlinked file, which the kernel frees.
        let mut guard = StagingGuard(Some(staging.clone()));
        let task = tokio::task::spawn_blocking({
            let staging = staging.clone();
            move || -> Result<u64> {
                while let Some(chunk) = body.blocking_next()? {
                    file.write(&chunk)
                        .with_context(|| format!("could not write {}", staging.display()))?;
                }
                file.finish()
                    .with_context(|| format!("could not write {}", staging.display()))
            }
        });
        let written = task.await??;
        tokio::fs::rename(&staging, &target)
            .await
            .with_context(|| format!("could not rename into {}", target.display()))?;
        guard.0 = None;
        sync_dir(&dir).await?;
        Ok(written)
    }

    async fn get(&self, key: &Key) -> Result<ByteStream> {
        let (file, _) = self.open_regular_std(key).await?;
        Ok(read_whole(file))
    }

    async fn get_limited(&self, key: &Key, max: u64) -> Result<ByteStream> {
        let (file, size) = self.open_regular_std(key).await?;
        if size > max {
            return Err(BadObject {
                key: key.clone(),
                kind: BadKind::TooLarge { limit: max },
            }
            .into());
        }
        // The file may still grow while it is read.
        Ok(super::limit(read_whole(file), key.clone(), max))
    }

    async fn get_range(&self, key: &Key, offset: u64, length: u64) -> Result<ByteStream> {
        let (mut file, size) = self.open_regular(key).await?;
        let end = offset.checked_add(length).filter(|end| *end <= size);
        if end.is_none() {
            return Err(BadObject {
                key: key.clone(),
                kind: BadKind::TooShort {
                    end: offset.saturating_add(length),
                },
            }
            .into());
        }
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .with_context(|| format!("could not read {key}"))?;
        // The file may have shrunk or grown since it was measured.
        let chunk = RANGE_CHUNK.min(usize::try_from(length).unwrap_or(usize::MAX));
        let stream = read_stream(file.take(length), chunk);
        Ok(super::exact(stream, key.clone(), offset, length))
    }

    async fn get_range_bytes(&self, key: &Key, offset: u64, length: u64) -> Result<Bytes> {
        let path = self.path(key);
        let key = key.clone();
        tokio::task::spawn_blocking(move || {
            let (file, size) = open_regular_std(&path, &key)?;
            let too_short = |end: u64| BadObject {
                key: key.clone(),
                kind: BadKind::TooShort { end },
            };
            let end = offset.checked_add(length).filter(|end| *end <= size);
            if end.is_none() {
                return Err(too_short(offset.saturating_add(length)).into());
            }
            let len = usize::try_from(length).context("a range too large for memory")?;
            match crate::direct_io::read_range(&file, offset, len) {
                Ok(bytes) => Ok(bytes),
                // The file shrank since it was measured.
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                    Err(too_short(offset + length).into())
                }
                Err(e) => Err(e).with_context(|| format!("could not read {key}")),
            }
        })
        .await?
    }

    async fn head(&self, key: &Key) -> Result<Option<ObjectMeta>> {
        match tokio::fs::symlink_metadata(self.path(key)).await {
            Ok(m) if m.is_file() => Ok(Some(ObjectMeta {
                key: key.clone(),
                size: m.len(),
                last_modified: m.modified().ok().map(DateTime::<Utc>::from),
            })),
            // A directory is a prefix of other keys, as in S3: no object.
            Ok(m) if m.is_dir() => Ok(None),
            Ok(m) => Err(not_a_file(key, &m).into()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("could not stat {key}")),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let root = self.root.clone();
        let prefix = prefix.to_string();
        tokio::task::spawn_blocking(move || list_blocking(&root, &prefix)).await?
    }

    async fn abort_incomplete(&self, before: DateTime<Utc>, dry_run: bool) -> Result<u64> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || remove_staging(&root, before, dry_run)).await?
    }

    async fn delete(&self, key: &Key) -> Result<()> {
        match tokio::fs::remove_file(self.path(key)).await {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                Err(e).with_context(|| format!("could not delete {key}"))
            }
            _ => Ok(()),
        }
    }
}

impl LocalStorage {
    /// Opens the object for reading if it is a regular file, with its size.
    async fn open_regular(&self, key: &Key) -> Result<(tokio::fs::File, u64)> {
        let path = self.path(key);
        let key = key.clone();
        tokio::task::spawn_blocking(move || open_regular(&path, &key)).await?
    }

    /// [`LocalStorage::open_regular`], as a file for blocking reads.
    async fn open_regular_std(&self, key: &Key) -> Result<(std::fs::File, u64)> {
        let path = self.path(key);
        let key = key.clone();
        tokio::task::spawn_blocking(move || open_regular_std(&path, &key)).await?
    }
}

/// A whole object as a stream of `READ_CHUNK` pieces, each read on a
/// blocking thread straight into a recycled buffer (`crate::buffers`):
/// through `tokio::fs` each piece was copied once more, into fresh pages
/// (`verify` reads every pack this way).
fn read_whole(file: std::fs::File) -> ByteStream {
    let stream = futures::stream::try_unfold(Some(file), |file| async move {
        let Some(mut file) = file else {
            return Ok(None);
        };
        let read = tokio::task::spawn_blocking(move || {
            let mut buf = crate::buffers::take(READ_CHUNK);
            let n = read_full(&mut file, &mut buf)?;
            buf.truncate(n);
            Ok::<_, std::io::Error>((file, buf))
        });
        let (file, buf) = read.await??;
        if buf.is_empty() {
            crate::buffers::give(buf);
            return Ok(None);
        }
        // A short piece is the end of the file (or of what it held when
        // read): the next read would only find that out.
        let more = buf.len() == READ_CHUNK;
        Ok(Some((
            crate::buffers::into_bytes(buf),
            more.then_some(file),
        )))
    });
    Box::pin(stream)
}

/// Reads until `buf` is full or the file ends; the bytes read.
fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::io::Read;
    let mut done = 0;
    while done < buf.len() {
        match file.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

fn open_regular(path: &Path, key: &Key) -> Result<(tokio::fs::File, u64)> {
    let (file, size) = open_regular_std(path, key)?;
    Ok((tokio::fs::File::from_std(file), size))
}

/// Opens `path` for reading if it is a regular file: its size too.
fn open_regular_std(path: &Path, key: &Key) -> Result<(std::fs::File, u64)> {
    // Look before opening: opening a FIFO blocks until a writer appears, and
    // opening a device can do things (a tape rewinds, a watchdog arms).
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(m) if m.is_dir() => return Err(NotFound(key.clone()).into()),
        Ok(m) => return Err(not_a_file(key, &m).into()),
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(NotFound(key.clone()).into()),
        Err(e) => return Err(e).with_context(|| format!("could not stat {}", path.display())),
    }
    // What was a regular file a moment ago may have been swapped: never
    // follow a link, never wait for a FIFO's writer, and look again at what
    // was actually opened.
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path);
    let file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(NotFound(key.clone()).into()),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(BadObject {
                key: key.clone(),
                kind: BadKind::NotAFile("a symbolic link"),
            }
            .into())
        }
        Err(e) => return Err(e).with_context(|| format!("could not open {}", path.display())),
    };
    let meta = file
        .metadata()
        .with_context(|| format!("could not stat {}", path.display()))?;
    if !meta.is_file() {
        return Err(not_a_file(key, &meta).into());
    }
    Ok((file, meta.len()))
}

/// `file` in chunks of `chunk` bytes (fewer at its end).
fn read_stream<F>(file: F, chunk: usize) -> ByteStream
where
    F: AsyncRead + Unpin + Send + 'static,
{
    let stream = futures::stream::try_unfold(file, move |mut file| async move {
        let mut buf = BytesMut::with_capacity(chunk);
        let n = file.read_buf(&mut buf).await?;
        Ok((n > 0).then(|| (buf.freeze(), file)))
    });
    Box::pin(stream)
}

fn not_a_file(key: &Key, meta: &Metadata) -> BadObject {
    BadObject {
        key: key.clone(),
        kind: BadKind::NotAFile(file_type_name(meta.file_type())),
    }
}

fn file_type_name(t: FileType) -> &'static str {
    if t.is_symlink() {
        "a symbolic link"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

async fn sync_dir(dir: &Path) -> Result<()> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all()).await??;
    Ok(())
}

/// Removes staging files (`.<name>.tmp-<random>`) older than `before`.
fn remove_staging(root: &Path, before: DateTime<Utc>, dry_run: bool) -> Result<u64> {
    let mut count = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else if name.starts_with('.') && name.contains(".tmp-") {
                let modified = meta.modified().map(DateTime::<Utc>::from).unwrap_or(before);
                if modified < before {
                    count += 1;
                    if !dry_run {
                        std::fs::remove_file(entry.path())?;
                    }
                }
            }
        }
    }
    Ok(count)
}

/// Walks the directory that holds `prefix` and keeps keys that start with it.
fn list_blocking(root: &Path, prefix: &str) -> Result<Vec<ObjectMeta>> {
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    // Only descend into the deepest directory the prefix fully names.
    let base = prefix.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let mut out = Vec::new();
    let mut stack = vec![base.to_string()];
    while let Some(rel) = stack.pop() {
        let dir = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(&rel)
        };
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("could not list {}", dir.display())),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue; // staging files and anything that is not ours
            }
            let key = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let meta = entry.metadata()?;
            if meta.is_dir() {
                if key.starts_with(prefix) || prefix.starts_with(&format!("{key}/")) {
                    stack.push(key);
                }
            } else if meta.is_file() && key.starts_with(prefix) {
                if let Ok(key) = Key::new(key) {
                    out.push(ObjectMeta {
                        key,
                        size: meta.len(),
                        last_modified: meta.modified().ok().map(DateTime::<Utc>::from),
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[tokio::test]
    async fn local_backend_passes_the_shared_suite() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(dir.path().join("repo"));
        super::super::suite::run(&storage).await.unwrap();
    }

    fn bad_kind(err: &anyhow::Error) -> Option<BadKind> {
        err.downcast_ref::<BadObject>().map(|b| b.kind.clone())
    }

    /// A FIFO, a link to `/dev/zero` or to a regular file, and a directory at
    /// an object's place: refused at once, never opened or read.
    #[tokio::test]
    async fn only_regular_files_are_objects() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(dir.path().to_path_buf());
        let path = |name: &str| dir.path().join(name);
        let fifo = std::ffi::CString::new(path("fifo").into_os_string().into_encoded_bytes());
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.unwrap().as_ptr(), 0o644) }, 0);
        std::os::unix::fs::symlink("/dev/zero", path("zero")).unwrap();
        std::fs::write(path("real"), b"data").unwrap();
        std::os::unix::fs::symlink(path("real"), path("link")).unwrap();
        for (name, what) in [
            ("fifo", "a FIFO"),
            ("zero", "a symbolic link"),
            ("link", "a symbolic link"),
        ] {
            let key = Key::new(name).unwrap();
            let want = Some(BadKind::NotAFile(what));
            let get = tokio::time::timeout(std::time::Duration::from_secs(10), storage.get(&key));
            let err = get.await.expect("get blocked").err().unwrap();
            assert_eq!(bad_kind(&err), want, "{name}: {err:#}");
            let err = storage.get_bytes(&key, 10).await.unwrap_err();
            assert_eq!(bad_kind(&err), want, "{name}: {err:#}");
            let err = storage.get_range(&key, 0, 1).await.err().unwrap();
            assert_eq!(bad_kind(&err), want, "{name}: {err:#}");
            let err = storage.get_range_bytes(&key, 0, 1).await.unwrap_err();
            assert_eq!(bad_kind(&err), want, "{name}: {err:#}");
            let err = storage.head(&key).await.unwrap_err();
            assert_eq!(bad_kind(&err), want, "{name}: {err:#}");
        }
        std::fs::create_dir(path("dir")).unwrap();
        let key = Key::new("dir").unwrap();
        assert!(storage.head(&key).await.unwrap().is_none());
        let err = storage.get(&key).await.err().unwrap();
        assert!(err.downcast_ref::<NotFound>().is_some(), "{err:#}");
        // Listings skip them all, as they always did.
        let keys: Vec<String> = storage
            .list("")
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.key.to_string())
            .collect();
        assert_eq!(keys, ["real"]);
    }

    /// A (sparse) terabyte where a few bytes are expected is refused by its
    /// size, before anything is read.
    #[tokio::test]
    async fn an_object_larger_than_the_limit_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(dir.path().to_path_buf());
        let huge = std::fs::File::create(dir.path().join("huge")).unwrap();
        huge.set_len(1 << 40).unwrap();
        let key = Key::new("huge").unwrap();
        let err = storage.get_limited(&key, 1000).await.err().unwrap();
        assert_eq!(bad_kind(&err), Some(BadKind::TooLarge { limit: 1000 }));
        assert!(
            format!("{err}").contains("is damaged: it holds more than the 1000 bytes"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_abandoned_upload_leaves_no_object_and_no_staging_file() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(dir.path().to_path_buf());
        let key = Key::new("blocks/x.tar.zst").unwrap();
        // Cancelled half-way, as Ctrl-C does.
        let (tx, rx) = crate::storage::body::channel(1);
        let put = storage.put(&key, rx);
        tx.send(Bytes::from_static(b"partial")).await.unwrap();
        let _ = tokio::time::timeout(std::time::Duration::from_millis(50), put).await;
        assert!(storage.head(&key).await.unwrap().is_none());
        // The producer failed and went away without finishing.
        let (tx, rx) = crate::storage::body::channel(4);
        tx.send(Bytes::from_static(b"partial")).await.unwrap();
        drop(tx);
        assert!(storage.put(&key, rx).await.is_err());
        assert!(storage.head(&key).await.unwrap().is_none());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("blocks"))
            .unwrap()
            .collect();
        assert!(leftovers.is_empty(), "staging file left: {leftovers:?}");
    }
}
