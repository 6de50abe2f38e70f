//! Counting what a command downloads: every byte any read of a
//! [`Storage`] returns, whatever the backend.
//!
//! `verify` reports it (`bytes_downloaded`), which is what an object store
//! bills as egress; [`Metered`] wraps a storage, as `throttle.rs` does,
//! and passes every call through, adding the bytes each read returns to a
//! shared counter as they arrive.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Result;
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;

use super::{Body, ByteStream, Key, ObjectMeta, Storage};

/// A storage whose reads are counted in [`Metered::downloaded`].
#[derive(Debug)]
pub struct Metered {
    inner: Arc<dyn Storage>,
    read: Arc<AtomicU64>,
}

impl Metered {
    pub fn new(inner: Arc<dyn Storage>) -> Metered {
        Metered {
            inner,
            read: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The counter: bytes downloaded so far, through this storage.
    pub fn downloaded(&self) -> Arc<AtomicU64> {
        self.read.clone()
    }

    fn count(&self, stream: ByteStream) -> ByteStream {
        let read = self.read.clone();
        Box::pin(stream.inspect(move |chunk| {
            if let Ok(b) = chunk {
                read.fetch_add(b.len() as u64, Ordering::Relaxed);
            }
        }))
    }

    fn add(&self, bytes: &Bytes) {
        self.read.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    }
}

#[async_trait]
impl Storage for Metered {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn upload_piece(&self) -> usize {
        self.inner.upload_piece()
    }

    fn prefers_long_reads(&self) -> bool {
        self.inner.prefers_long_reads()
    }

    async fn put(&self, key: &Key, body: Body) -> Result<u64> {
        self.inner.put(key, body).await
    }

    async fn get(&self, key: &Key) -> Result<ByteStream> {
        Ok(self.count(self.inner.get(key).await?))
    }

    async fn get_limited(&self, key: &Key, max: u64) -> Result<ByteStream> {
        Ok(self.count(self.inner.get_limited(key, max).await?))
    }

    async fn get_range(&self, key: &Key, offset: u64, length: u64) -> Result<ByteStream> {
        Ok(self.count(self.inner.get_range(key, offset, length).await?))
    }

    async fn get_range_bytes(&self, key: &Key, offset: u64, length: u64) -> Result<Bytes> {
        let bytes = self.inner.get_range_bytes(key, offset, length).await?;
        self.add(&bytes);
        Ok(bytes)
    }

    async fn get_tail(&self, key: &Key, length: u64) -> Result<(u64, Bytes)> {
        let (size, tail) = self.inner.get_tail(key, length).await?;
        self.add(&tail);
        Ok((size, tail))
    }

    async fn head(&self, key: &Key) -> Result<Option<ObjectMeta>> {
        self.inner.head(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        self.inner.list(prefix).await
    }

    async fn delete(&self, key: &Key) -> Result<()> {
        self.inner.delete(key).await
    }

    async fn abort_incomplete(&self, before: DateTime<Utc>, dry_run: bool) -> Result<u64> {
        self.inner.abort_incomplete(before, dry_run).await
    }

    async fn put_bytes(&self, key: &Key, data: Bytes) -> Result<u64> {
        self.inner.put_bytes(key, data).await
    }

    async fn get_bytes(&self, key: &Key, max: u64) -> Result<Bytes> {
        let bytes = self.inner.get_bytes(key, max).await?;
        self.add(&bytes);
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalStorage;

    #[tokio::test]
    async fn every_kind_of_read_is_counted_once() {
        let dir = tempfile::tempdir().unwrap();
        let local: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir.path().to_path_buf()));
        let metered = Metered::new(local);
        let key = Key::new("packs/a").unwrap();
        metered
            .put_bytes(&key, Bytes::from(vec![1u8; 10_000]))
            .await
            .unwrap();
        let count = metered.downloaded();
        assert_eq!(count.load(Ordering::Relaxed), 0, "writes are not reads");
        metered.get_bytes(&key, 10_000).await.unwrap();
        metered.get_range_bytes(&key, 100, 1_000).await.unwrap();
        metered.get_tail(&key, 300).await.unwrap();
        let mut s = metered.get_range(&key, 0, 50).await.unwrap();
        while s.next().await.is_some() {}
        let mut s = metered.get_limited(&key, 10_000).await.unwrap();
        while s.next().await.is_some() {}
        metered.head(&key).await.unwrap();
        let want = 10_000 + 1_000 + 300 + 50 + 10_000;
        assert_eq!(count.load(Ordering::Relaxed), want);
    }
}
