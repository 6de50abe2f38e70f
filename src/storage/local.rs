//! A repository in a local directory (or any mounted filesystem).
//!
//! Writes go to a dot-named staging file next to the target, are fsynced, and
//! are renamed into place only when the whole body arrived; the directory is
//! fsynced after the rename. A crash or Ctrl-C therefore leaves at most a
//! staging file, which listings skip (keys never start with a dot) and the
//! next write of the same key replaces.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::{Body, ByteStream, Key, NotFound, ObjectMeta, Storage};
use crate::direct_io::StagingWriter;
use anyhow::{Context, Result};
use async_trait::async_trait;
use bytes::BytesMut;
use chrono::{DateTime, Utc};
use tokio::io::AsyncReadExt;

const READ_CHUNK: usize = 1 << 20;

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
        let path = self.path(key);
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(NotFound(key.clone()).into()),
            Err(e) => return Err(e).with_context(|| format!("could not open {}", path.display())),
        };
        let stream = futures::stream::try_unfold(file, |mut file| async move {
            let mut buf = BytesMut::with_capacity(READ_CHUNK);
            let n = file.read_buf(&mut buf).await?;
            Ok((n > 0).then(|| (buf.freeze(), file)))
        });
        Ok(Box::pin(stream))
    }

    async fn head(&self, key: &Key) -> Result<Option<ObjectMeta>> {
        match tokio::fs::metadata(self.path(key)).await {
            Ok(m) if m.is_file() => Ok(Some(ObjectMeta {
                key: key.clone(),
                size: m.len(),
                last_modified: m.modified().ok().map(DateTime::<Utc>::from),
            })),
            Ok(_) => Ok(None),
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
