//! Uploads: one PutObject for a small body, a multipart upload for a large one.
//!
//! Uploads are streamed: a body that fits in one part becomes one PutObject;
//! anything larger becomes a multipart upload whose parts are sent while the
//! producer is still compressing, a few in parallel. The multipart upload is
//! completed only after the producer finished its body, and aborted on any
//! error or cancellation ([`AbortGuard`]), so an object exists whole or not
//! at all. Uploads that a crash left behind are aborted by
//! [`S3Storage::abort_incomplete_uploads`] (prune).
//!
//! Every body promsnap sends is an in-memory `Bytes` (a part, or a small
//! object), which the SDK can replay, so a part retried by the SDK is sent
//! again whole.

use anyhow::{Context, Result};
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream as AwsStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures::stream::FuturesUnordered;
use futures::StreamExt;

use super::errors::is_no_such_upload;
use super::{to_chrono, S3Storage};
use crate::storage::{Body, Key};

/// How many parts of one object are uploaded at the same time. With the
/// part being filled, an upload holds at most three parts in memory.
const PARALLEL_PARTS: usize = 2;

/// The size of part `number` (1-based): the configured size for the first
/// 2000 parts, then twice and four times that, so that S3's limit of 10,000
/// parts still allows objects of 26x the first 1000 parts (208 GiB with 8 MiB
/// parts) while only blocks beyond 16 GiB use more memory.
fn part_size_for(base: usize, number: i32) -> usize {
    match number {
        ..=2000 => base,
        2001..=6000 => base * 2,
        _ => base * 4,
    }
}

impl S3Storage {
    /// Stores `body` under `key`; returns its size.
    pub(super) async fn upload(&self, key: &Key, mut body: Body) -> Result<u64> {
        let (first, ended) = self.next_part(&mut body, self.part_size).await?;
        if !ended {
            return self.put_multipart(key, first, &mut body).await;
        }
        let len = first.len() as u64;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .body(AwsStream::from(first))
            .send()
            .await
            .map_err(|e| self.error(e, "upload", key))?;
        Ok(len)
    }

    /// Collects the next part: `size` bytes or what is left.
    /// Returns the part and whether the body has ended.
    async fn next_part(&self, body: &mut Body, size: usize) -> Result<(Bytes, bool)> {
        let mut pieces: Vec<Bytes> = Vec::new();
        let mut len = 0;
        while len < size {
            match body.next().await? {
                Some(b) => {
                    len += b.len();
                    pieces.push(b);
                }
                None => return Ok((concat(pieces, len), true)),
            }
        }
        Ok((concat(pieces, len), false))
    }

    async fn put_multipart(&self, key: &Key, first: Bytes, body: &mut Body) -> Result<u64> {
        let full = self.full_key(key);
        let created = self
            .create_upload(&full)
            .await
            .map_err(|e| self.error(e, "start a multipart upload of", key))?;
        let upload_id = created.upload_id().context("S3 returned no upload id")?;
        let mut guard = AbortGuard {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: full.clone(),
            upload_id: Some(upload_id.to_string()),
        };
        let mut in_flight = FuturesUnordered::new();
        let mut parts = Vec::new();
        let (mut part, mut ended, mut number, mut total) = (first, false, 1, 0u64);
        loop {
            if !part.is_empty() || number == 1 {
                total += part.len() as u64;
                in_flight.push(self.upload_part(&full, upload_id, number, part));
                number += 1;
            }
            while in_flight.len() >= PARALLEL_PARTS || (ended && !in_flight.is_empty()) {
                let done = in_flight.next().await.expect("non-empty");
                parts.push(done.map_err(|e| self.error(e, "upload a part of", key))?);
            }
            if ended {
                break;
            }
            (part, ended) = self
                .next_part(body, part_size_for(self.part_size, number))
                .await?;
        }
        parts.sort_by_key(|p: &CompletedPart| p.part_number());
        let count = parts.len();
        let completed = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&full)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await;
        match completed {
            Ok(_) => {}
            Err(e) if is_no_such_upload(&e) && self.completed_before(&full, total, count).await => {
            }
            Err(e) => return Err(self.error(e, "complete the upload of", key)),
        }
        guard.upload_id = None;
        Ok(total)
    }

    /// Whether a CompleteMultipartUpload that now answers NoSuchUpload had
    /// in fact succeeded: its answer was lost (a timeout, a broken
    /// connection) and the SDK's retry found the upload already completed.
    /// It did if the key holds an object of our size whose ETag says it was
    /// assembled from our number of parts.
    async fn completed_before(&self, full: &str, size: u64, parts: usize) -> bool {
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(full)
            .send()
            .await;
        let Ok(head) = head else {
            return false;
        };
        let etag_parts = head
            .e_tag()
            .map(|t| t.trim_matches('"'))
            .and_then(|t| t.rsplit_once('-'))
            .and_then(|(_, n)| n.parse::<usize>().ok());
        head.content_length() == Some(size as i64) && etag_parts == Some(parts)
    }

    async fn upload_part(
        &self,
        full: &str,
        upload_id: &str,
        number: i32,
        data: Bytes,
    ) -> Result<CompletedPart, SdkError<aws_sdk_s3::operation::upload_part::UploadPartError>> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(full)
            .upload_id(upload_id)
            .part_number(number)
            .body(AwsStream::from(data))
            .send()
            .await?;
        Ok(CompletedPart::builder()
            .part_number(number)
            .set_e_tag(out.e_tag().map(str::to_string))
            .build())
    }

    /// Aborts the multipart uploads started before `before` (left behind by
    /// a crash); returns how many there were.
    pub(super) async fn abort_incomplete_uploads(
        &self,
        before: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<u64> {
        let prefix = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
        let mut count = 0;
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(&prefix)
                .set_key_marker(key_marker.clone())
                .set_upload_id_marker(id_marker.clone())
                .send()
                .await
                .map_err(|e| {
                    self.error(e, "list incomplete uploads under", &Key("uploads".into()))
                })?;
            for upload in page.uploads() {
                let started = upload.initiated().and_then(to_chrono);
                let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) else {
                    continue;
                };
                if started.is_none_or(|t| t >= before) {
                    continue;
                }
                count += 1;
                if !dry_run {
                    self.client
                        .abort_multipart_upload()
                        .bucket(&self.bucket)
                        .key(key)
                        .upload_id(id)
                        .send()
                        .await
                        .map_err(|e| {
                            self.error(e, "abort an incomplete upload of", &Key("upload".into()))
                        })?;
                }
            }
            if !page.is_truncated().unwrap_or(false) {
                return Ok(count);
            }
            key_marker = page.next_key_marker().map(str::to_string);
            id_marker = page.next_upload_id_marker().map(str::to_string);
        }
    }
}

fn concat(pieces: Vec<Bytes>, len: usize) -> Bytes {
    if pieces.len() == 1 {
        return pieces.into_iter().next().expect("one piece");
    }
    let mut buf = BytesMut::with_capacity(len);
    for p in pieces {
        buf.extend_from_slice(&p);
    }
    buf.freeze()
}

type Created = aws_sdk_s3::operation::create_multipart_upload::CreateMultipartUploadOutput;
type CreateError =
    SdkError<aws_sdk_s3::operation::create_multipart_upload::CreateMultipartUploadError>;

impl S3Storage {
    /// Starts a multipart upload of `full` on a task of its own. If the
    /// caller is cancelled (Ctrl-C, SIGTERM) after the server created the
    /// upload but before its id came back, no [`AbortGuard`] holds that id
    /// yet: the task then aborts the upload itself, and holds an
    /// [`InFlight`](crate::storage::cleanup::InFlight) token until it has,
    /// which the exit waits for. (Seen in CI: a SIGTERM just after the
    /// upload appeared left it open.)
    async fn create_upload(&self, full: &str) -> Result<Created, CreateError> {
        let request = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(full);
        let abort = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(full);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let in_flight = crate::storage::cleanup::InFlight::new();
        tokio::spawn(async move {
            let _in_flight = in_flight;
            let created = request.send().await;
            if let Err(Ok(created)) = tx.send(created) {
                // Nobody is waiting for it: the caller was cancelled.
                if let Some(id) = created.upload_id() {
                    let _ = abort.upload_id(id).send().await;
                }
            }
        });
        match rx.await {
            Ok(created) => created,
            // The task panicked or the runtime is shutting down.
            Err(_) => Err(SdkError::construction_failure(
                "the task starting the upload stopped",
            )),
        }
    }
}

/// Aborts a multipart upload unless it was completed. Runs on errors and when
/// the upload future is dropped (Ctrl-C), so no invisible parts pile up.
struct AbortGuard {
    client: Client,
    bucket: String,
    key: String,
    upload_id: Option<String>,
}

impl Drop for AbortGuard {
    fn drop(&mut self) {
        let Some(upload_id) = self.upload_id.take() else {
            return;
        };
        let req = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(upload_id);
        crate::storage::cleanup::spawn(async move {
            let _ = req.send().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_grow_so_large_objects_fit_in_10000_parts() {
        let base = 8 << 20;
        let total: u64 = (1..=10_000).map(|n| part_size_for(base, n) as u64).sum();
        assert!(total > 200 << 30, "only {} GiB fit", total >> 30);
        assert_eq!(part_size_for(base, 2000), base);
        assert_eq!(part_size_for(base, 2001), 2 * base);
    }
}
