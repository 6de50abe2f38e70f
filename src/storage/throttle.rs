//! `--max-bandwidth`: one token bucket paces every transfer of the process.
//!
//! A backup must not starve the Prometheus host's network, and several blocks
//! (and several parts of each) move at once, so the limit is shared: every
//! upload body and download stream of the process draws from one
//! [`TokenBucket`]. [`Throttled`] wraps any [`Storage`] with it, so the local
//! and S3 backends are paced the same way.
//!
//! The bucket may go into debt: a chunk larger than what is available is
//! let through at once and the *next* caller waits until the debt is paid.
//! Chunk sizes (up to the compressor's 8 MiB) then never exceed a capacity,
//! and the average rate is exact over any window longer than one chunk.
//! S3 parts are collected from the paced body and then sent at line speed,
//! so on the wire the rate is smooth only at the scale of a part (16 MiB).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Result;
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio::time::Instant;

use super::{body, Body, ByteStream, Key, ObjectMeta, Storage};

/// Shared bytes-per-second budget.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A bucket refilled at `bytes_per_second`, holding at most a quarter
    /// second's worth (so an idle pause does not allow a long burst). It
    /// starts empty.
    pub fn new(bytes_per_second: u64) -> Self {
        let rate = bytes_per_second.max(1) as f64;
        TokenBucket {
            rate,
            burst: rate / 4.0,
            state: Mutex::new(State {
                tokens: 0.0,
                last: Instant::now(),
            }),
        }
    }

    /// Takes `n` bytes' worth of tokens, waiting while the bucket is in debt.
    pub async fn take(&self, n: usize) {
        let wait = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let refill = now.saturating_duration_since(s.last).as_secs_f64() * self.rate;
            s.tokens = (s.tokens + refill).min(self.burst);
            s.last = now;
            // Wait for the debt that was there before us, then take.
            let wait = if s.tokens < 0.0 {
                -s.tokens / self.rate
            } else {
                0.0
            };
            s.tokens -= n as f64;
            wait
        };
        if wait > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        }
    }
}

/// The process's bucket, created with `bytes_per_second` on first use.
pub fn shared(bytes_per_second: u64) -> Arc<TokenBucket> {
    static BUCKET: OnceLock<Arc<TokenBucket>> = OnceLock::new();
    BUCKET
        .get_or_init(|| Arc::new(TokenBucket::new(bytes_per_second)))
        .clone()
}

/// A storage whose uploads and downloads draw from a shared bucket.
#[derive(Debug)]
pub struct Throttled {
    inner: Arc<dyn Storage>,
    bucket: Arc<TokenBucket>,
}

impl Throttled {
    pub fn new(inner: Arc<dyn Storage>, bucket: Arc<TokenBucket>) -> Self {
        Throttled { inner, bucket }
    }
}

impl Throttled {
    /// Hands on the chunks of a download as the bucket allows.
    fn paced(&self, stream: ByteStream) -> ByteStream {
        let bucket = self.bucket.clone();
        Box::pin(stream.then(move |chunk| {
            let bucket = bucket.clone();
            async move {
                if let Ok(b) = &chunk {
                    bucket.take(b.len()).await;
                }
                chunk
            }
        }))
    }
}

#[async_trait]
impl Storage for Throttled {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn upload_piece(&self) -> usize {
        self.inner.upload_piece()
    }

    fn prefers_long_reads(&self) -> bool {
        self.inner.prefers_long_reads()
    }

    async fn put(&self, key: &Key, mut source: Body) -> Result<u64> {
        // Forward the body chunk by chunk as the bucket allows. A producer
        // that fails ends `pump` without `finish`, so the backend discards
        // the object as it would without the throttle.
        let (writer, paced) = body::channel(1);
        let pump = async move {
            while let Some(chunk) = source.next().await? {
                self.bucket.take(chunk.len()).await;
                writer.send(chunk).await?;
            }
            writer.finish().await
        };
        let (stored, pumped) = tokio::join!(self.inner.put(key, paced), pump);
        let n = stored?;
        pumped?;
        Ok(n)
    }

    async fn get(&self, key: &Key) -> Result<ByteStream> {
        Ok(self.paced(self.inner.get(key).await?))
    }

    async fn get_limited(&self, key: &Key, max: u64) -> Result<ByteStream> {
        Ok(self.paced(self.inner.get_limited(key, max).await?))
    }

    async fn get_range(&self, key: &Key, offset: u64, length: u64) -> Result<ByteStream> {
        Ok(self.paced(self.inner.get_range(key, offset, length).await?))
    }

    async fn get_tail(&self, key: &Key, length: u64) -> Result<(u64, Bytes)> {
        let (size, tail) = self.inner.get_tail(key, length).await?;
        self.bucket.take(tail.len()).await;
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
}

/// A bandwidth limit in bytes per second, as `--max-bandwidth` and
/// `network.max_bandwidth` write it (`50MiB/s`, `12.5MB/s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate(pub u64);

impl std::str::FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        parse_rate(s).map(Rate)
    }
}

impl<'de> serde::Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::duration::deserialize_str(d)
    }
}

/// Parses a rate such as `50MiB/s`, `12.5MB/s`, `800KiB` or `1048576`
/// (bytes per second). K, M, G are powers of 1000; Ki, Mi, Gi of 1024.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "invalid bandwidth {text:?}: write bytes per second such as 50MiB/s, 12.5MB/s or \
             800KiB/s"
        )
    };
    let s = text.trim();
    let s = s
        .strip_suffix("/s")
        .or_else(|| s.strip_suffix("ps"))
        .unwrap_or(s)
        .trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let unit = unit.trim();
    if unit.contains("bit") || unit.ends_with('b') {
        return Err(format!(
            "{} (bits are not accepted; 100 Mbit/s is 12.5MB/s)",
            bad()
        ));
    }
    let factor: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "ki" | "kib" => 1024.0,
        "mi" | "mib" => 1024.0 * 1024.0,
        "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    let rate = number * factor;
    if !rate.is_finite() || rate < 1024.0 {
        return Err(format!("{} (at least 1KiB/s)", bad()));
    }
    Ok(rate as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("50MiB/s"), Ok(50 * 1024 * 1024));
        assert_eq!(parse_rate("12.5MB/s"), Ok(12_500_000));
        assert_eq!(parse_rate("800 KiB/s"), Ok(800 * 1024));
        assert_eq!(parse_rate("1G"), Ok(1_000_000_000));
        assert_eq!(parse_rate("1048576"), Ok(1_048_576));
        assert_eq!(parse_rate("2MBps"), Ok(2_000_000));
        for bad in [
            "",
            "fast",
            "10 parsecs/s",
            "100Mbit/s",
            "100Mb/s",
            "10",
            "-5MiB/s",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    /// Real time with a loose bound: 2 MiB at 4 MiB/s from an empty bucket
    /// take about half a second, also when two tasks share the bucket.
    #[tokio::test]
    async fn the_bucket_paces_all_takers_together() {
        let bucket = Arc::new(TokenBucket::new(4 << 20));
        let started = std::time::Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..2 {
            let bucket = bucket.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..16 {
                    bucket.take(64 << 10).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // 32 chunks of 64 KiB; the last one passes when 31 are paid for.
        let elapsed = started.elapsed().as_secs_f64();
        assert!(
            (0.42..1.5).contains(&elapsed),
            "2 MiB at 4 MiB/s took {elapsed:.3}s"
        );
    }

    #[tokio::test]
    async fn throttled_storage_paces_uploads_and_downloads() {
        let dir = tempfile::tempdir().unwrap();
        let local: Arc<dyn Storage> = Arc::new(super::super::LocalStorage::new(dir.path().into()));
        let storage = Throttled::new(local, Arc::new(TokenBucket::new(2 << 20)));
        let key = Key::new("x").unwrap();
        let started = std::time::Instant::now();
        let (w, b) = body::channel(4);
        let producer = async move {
            for _ in 0..8 {
                w.send(Bytes::from(vec![7u8; 128 << 10])).await?;
            }
            w.finish().await
        };
        let (stored, produced) = tokio::join!(storage.put(&key, b), producer);
        produced.unwrap();
        assert_eq!(stored.unwrap(), 1 << 20);
        let up = started.elapsed().as_secs_f64();
        assert!(
            (0.35..1.5).contains(&up),
            "1 MiB up at 2 MiB/s took {up:.3}s"
        );
        // The local backend reads 1 MiB chunks: the second download waits
        // for the first one's megabyte.
        let started = std::time::Instant::now();
        for _ in 0..2 {
            assert_eq!(
                storage.get_bytes(&key, 1 << 20).await.unwrap().len(),
                1 << 20
            );
        }
        let down = started.elapsed().as_secs_f64();
        assert!((0.4..1.5).contains(&down), "2 MiB down took {down:.3}s");
        // A producer that fails stores nothing, throttled or not.
        let (w, b) = body::channel(4);
        w.send(Bytes::from_static(b"partial")).await.unwrap();
        drop(w);
        let other = Key::new("y").unwrap();
        assert!(storage.put(&other, b).await.is_err());
        assert!(storage.head(&other).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn the_throttled_backend_passes_the_shared_suite() {
        let dir = tempfile::tempdir().unwrap();
        let local: Arc<dyn Storage> = Arc::new(super::super::LocalStorage::new(dir.path().into()));
        let storage = Throttled::new(local, Arc::new(TokenBucket::new(256 << 20)));
        super::super::suite::run(&storage).await.unwrap();
    }
}
