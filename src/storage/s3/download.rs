//! Downloads: ranges of a large object in parallel, a part of an object
//! (a blob in a pack), and resuming a body that broke off.
//!
//! Transient request failures are retried by the SDK's standard strategy. A
//! download whose body breaks off half-way is past the SDK's retries:
//! [`Download`] resumes it with a Range request, and a range of a large
//! object is asked for again as a whole. Both count and wait through
//! [`Retries`]: each range has `--retries` of its own, and a resumed stream
//! `--retries` resumes in all.

use anyhow::{Context, Result};
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::ByteStream as AwsStream;
use bytes::Bytes;
use futures::StreamExt;

use super::S3Storage;
use crate::retry::{Decision, Retries};
use crate::storage::{exact, tail_by_head, BadKind, BadObject, ByteStream, Key, NotFound, Storage};

/// Downloads of objects larger than this are split into ranges of this size.
const RANGE: u64 = 4 * 1024 * 1024;

/// How many ranges of one object are downloaded at the same time.
const PARALLEL_RANGES: usize = 4;

impl S3Storage {
    /// The object's bytes: the first range at once, the rest a few ranges
    /// at a time, delivered in order.
    pub(super) async fn download(&self, key: &Key) -> Result<ByteStream> {
        let first = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .range(format!("bytes=0-{}", RANGE - 1))
            .send()
            .await;
        let out = match first {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Err(NotFound(key.clone()).into())
            }
            // An empty object has no byte 0 to ask for.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 416) => {
                return self.get_whole(key).await
            }
            Err(e) => return Err(self.error(e, "download", key)),
        };
        let total = out
            .content_range()
            .and_then(|r| r.rsplit('/').next()?.parse::<u64>().ok());
        let etag = out.e_tag().map(str::to_string);
        let head = Download::new(self, key, etag.clone(), out.body, 0, Some(RANGE - 1));
        let head = futures::stream::try_unfold(head, Download::next);
        let Some(total) = total.filter(|t| *t > RANGE) else {
            return Ok(Box::pin(head));
        };
        // The rest in ranges, a few in flight, delivered in order: a single
        // HTTP stream is often slower than the disk and the decompressor.
        let this = self.clone();
        let (key, etag) = (key.clone(), etag.clone());
        let rest = futures::stream::iter((RANGE..total).step_by(RANGE as usize))
            .map(move |start| {
                let (this, key, etag) = (this.clone(), key.clone(), etag.clone());
                let end = (start + RANGE).min(total) - 1;
                async move { this.range_bytes(&key, start, end, etag).await }
            })
            .buffered(PARALLEL_RANGES);
        Ok(Box::pin(head.chain(rest)))
    }

    /// The whole object in one request (for objects a range cannot address).
    async fn get_whole(&self, key: &Key) -> Result<ByteStream> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|e| self.error(e, "download", key))?;
        let etag = out.e_tag().map(str::to_string);
        let download = Download::new(self, key, etag, out.body, 0, None);
        Ok(Box::pin(futures::stream::try_unfold(
            download,
            Download::next,
        )))
    }

    /// Bytes `offset..offset + length` of the object, streamed as they
    /// arrive (one request, resumed if its body breaks off), exactly those
    /// or an error.
    pub(super) async fn download_range(
        &self,
        key: &Key,
        offset: u64,
        length: u64,
    ) -> Result<ByteStream> {
        let too_short = || -> anyhow::Error {
            BadObject {
                key: key.clone(),
                kind: BadKind::TooShort {
                    end: offset.saturating_add(length),
                },
            }
            .into()
        };
        let Some(end) = offset.checked_add(length) else {
            return Err(too_short());
        };
        if length == 0 {
            // A Range header cannot ask for no bytes: look the object up.
            return match self.head(key).await? {
                None => Err(NotFound(key.clone()).into()),
                Some(meta) if meta.size < offset => Err(too_short()),
                Some(_) => Ok(Box::pin(futures::stream::empty())),
            };
        }
        let last = end - 1;
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .range(format!("bytes={offset}-{last}"))
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Err(NotFound(key.clone()).into())
            }
            // The object ends before `offset`.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 416) => {
                return Err(too_short())
            }
            Err(e) => return Err(self.error(e, "download", key)),
        };
        // A range that runs past the end comes back with what there is.
        if out
            .content_length()
            .is_some_and(|n| n >= 0 && (n as u64) < length)
        {
            return Err(too_short());
        }
        let etag = out.e_tag().map(str::to_string);
        let download = Download::new(self, key, etag, out.body, offset, Some(last));
        let stream = futures::stream::try_unfold(download, Download::next);
        Ok(exact(Box::pin(stream), key.clone(), offset, length))
    }

    /// The object's size and its last `length` bytes, with one request
    /// for a suffix range (`bytes=-N`), retried as a whole. Its answer is
    /// checked before it is believed: the `Content-Range` must name the
    /// last bytes of an object of its size, as many as came. An empty
    /// object, which has no last bytes to name, and a server that ignores
    /// the range (a whole object larger than asked for) fall back to the
    /// stat and ranged read any backend makes.
    pub(super) async fn download_tail(&self, key: &Key, length: u64) -> Result<(u64, Bytes)> {
        if length == 0 {
            return tail_by_head(self, key, length).await;
        }
        let once = || async {
            let out = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(self.full_key(key))
                .range(format!("bytes=-{length}"))
                .send()
                .await;
            let out = match out {
                Ok(out) => out,
                Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                    return Ok(Err(anyhow::Error::from(NotFound(key.clone()))))
                }
                // Nothing to name: an empty object.
                Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 416) => {
                    return Ok(Ok(None))
                }
                Err(e) => return Err(self.error(e, "download", key)),
            };
            let Some(range) = out.content_range().and_then(parse_content_range) else {
                // The whole object (a server that ignores suffix ranges).
                return Ok(Ok(None));
            };
            let (first, last, size) = range;
            let n = size.min(length);
            let bad = |kind| {
                Ok(Err(BadObject {
                    key: key.clone(),
                    kind,
                }
                .into()))
            };
            if last + 1 != size || first != size - n {
                return bad(BadKind::TooShort { end: size });
            }
            // Never more than asked for: a body that goes on is refused.
            let mut body = out.body;
            let mut bytes = Vec::with_capacity(n as usize);
            while let Some(chunk) = body.next().await {
                let chunk = chunk.with_context(|| format!("download of {key} broke off"))?;
                if (bytes.len() + chunk.len()) as u64 > n {
                    return bad(BadKind::TooLarge { limit: size });
                }
                bytes.extend_from_slice(&chunk);
            }
            if (bytes.len() as u64) < n {
                return Err(anyhow::anyhow!(
                    "the last {n} bytes of {key} came back with {}",
                    bytes.len()
                ));
            }
            Ok(Ok(Some((size, Bytes::from(bytes)))))
        };
        let answer = Retries::new(self.retries)
            .run(|| async { once().await.map_err(|e| (e, Decision::Retry)) })
            .await
            .map_err(|gave_up| gave_up.error)?;
        match answer? {
            Some(tail) => Ok(tail),
            None => tail_by_head(self, key, length).await,
        }
    }

    /// Bytes `start..=end` of the object whose ETag is `etag`, in memory,
    /// retried as a whole when the request or its body fails.
    async fn range_bytes(
        &self,
        key: &Key,
        start: u64,
        end: u64,
        etag: Option<String>,
    ) -> Result<Bytes> {
        let once = || async {
            let range = format!("bytes={start}-{end}");
            let out = self
                .get_matching(key, range, etag.clone(), "download")
                .await?;
            let body = out
                .body
                .collect()
                .await
                .with_context(|| format!("download of {key} broke off"))?;
            let bytes = body.into_bytes();
            anyhow::ensure!(
                bytes.len() as u64 == end - start + 1,
                "range {start}-{end} of {key} came back with {} bytes",
                bytes.len()
            );
            Ok(bytes)
        };
        Retries::new(self.retries)
            .run(|| async { once().await.map_err(|e| (e, Decision::Retry)) })
            .await
            .map_err(|gave_up| gave_up.error)
    }

    /// `range` (an HTTP Range value) of the object, if it is still the one
    /// whose ETag is `etag`; `action` names the request in an error.
    async fn get_matching(
        &self,
        key: &Key,
        range: String,
        etag: Option<String>,
        action: &str,
    ) -> Result<GetObjectOutput> {
        self.client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .range(range)
            .set_if_match(etag)
            .send()
            .await
            .map_err(|e| self.error(e, action, key))
    }
}

/// A download that resumes where it broke off. The SDK retries requests,
/// but a body that breaks half-way (a reset connection, a restarted server)
/// is past its reach: this asks for the rest with a Range request, and with
/// If-Match so that the rest comes from the same object. The rest ends
/// where the first request's range ended: resuming a range never reads
/// into the bytes that follow it.
struct Download {
    storage: S3Storage,
    key: Key,
    etag: Option<String>,
    body: AwsStream,
    /// The position of the next byte in the object.
    offset: u64,
    /// The last byte the request asked for, if it asked for a range.
    last: Option<u64>,
    /// Shared by every resume of this download.
    retries: Retries,
}

impl Download {
    /// A download of bytes `offset..=last` (or to the end of the object),
    /// whose first response `body` is.
    fn new(
        storage: &S3Storage,
        key: &Key,
        etag: Option<String>,
        body: AwsStream,
        offset: u64,
        last: Option<u64>,
    ) -> Self {
        Download {
            storage: storage.clone(),
            key: key.clone(),
            etag,
            body,
            offset,
            last,
            retries: Retries::new(storage.retries),
        }
    }

    async fn next(mut self) -> Result<Option<(Bytes, Download)>> {
        loop {
            let broke_off = match self.body.try_next().await {
                Ok(Some(bytes)) => {
                    self.offset += bytes.len() as u64;
                    return Ok(Some((bytes, self)));
                }
                Ok(None) => return Ok(None),
                Err(e) => e,
            };
            let rest = match self.last {
                // Every byte asked for arrived before the body broke.
                Some(last) if self.offset > last => return Ok(None),
                Some(last) => format!("bytes={}-{last}", self.offset),
                None => format!("bytes={}-", self.offset),
            };
            let what = format!("download of {} broke off", self.key);
            if !self.retries.again().await {
                return Err(anyhow::Error::new(broke_off).context(what));
            }
            let resumed = self
                .storage
                .get_matching(&self.key, rest, self.etag.clone(), "resume the download of")
                .await
                .with_context(|| format!("{what} ({broke_off}) and could not resume"))?;
            self.body = resumed.body;
        }
    }
}

/// `bytes FIRST-LAST/SIZE` (a `Content-Range` of a known size), with
/// `FIRST <= LAST < SIZE`.
fn parse_content_range(value: &str) -> Option<(u64, u64, u64)> {
    let (range, size) = value.strip_prefix("bytes ")?.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let (first, last, size) = (
        first.trim().parse::<u64>().ok()?,
        last.trim().parse::<u64>().ok()?,
        size.trim().parse::<u64>().ok()?,
    );
    (first <= last && last < size).then_some((first, last, size))
}

#[cfg(test)]
mod tests {
    use super::parse_content_range;

    #[test]
    fn content_ranges_are_believed_only_when_they_make_sense() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, 199, 200))
        );
        assert_eq!(parse_content_range("bytes 0-0/1"), Some((0, 0, 1)));
        for bad in [
            "bytes 100-199/*",
            "bytes */200",
            "bytes 150-100/200",
            "bytes 100-200/200",
            "bytes 0-18446744073709551615/18446744073709551615",
            "items 0-1/2",
            "bytes -1-2/3",
            "",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad:?}");
        }
    }
}
