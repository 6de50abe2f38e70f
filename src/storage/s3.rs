//! A repository in an S3 bucket (AWS, or any S3-compatible store).
//!
//! Credentials come from the configuration file when it names them (static
//! keys, the secret read from a file), else from the standard AWS chain
//! (environment, shared profile, web identity, instance metadata). They are
//! handed to the SDK and never printed: [`StaticCredentials`] redacts its
//! secret in `Debug`, and no message includes it.
//!
//! Transient failures (throttling, 5xx, broken connections, timeouts) are
//! retried by the SDK's standard strategy, with exponential backoff and
//! jitter, `--retries` times. Every body promsnap sends is an in-memory
//! `Bytes` (a part, or a small object), which the SDK can replay, so a
//! retried part is sent again whole. A download whose body breaks off is
//! past the SDK's retries; [`Download`] resumes it with a Range request.
//!
//! Uploads are streamed: a body that fits in one part becomes one PutObject;
//! anything larger becomes a multipart upload whose parts are sent while the
//! producer is still compressing, a few in parallel. The multipart upload is
//! completed only after the producer finished its body, and aborted on any
//! error or cancellation, so an object exists whole or not at all.
//!
//! Request checksums default to "when required" because many S3-compatible
//! stores reject the CRC32 trailers that aws-sdk-s3 adds by default since
//! 1.69 (see the README for which setting each provider needs).

use std::fmt;
use std::time::Duration;

use anyhow::{Context, Result};
use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream as AwsStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures::stream::FuturesUnordered;
use futures::StreamExt;

use super::{Body, ByteStream, Key, NotFound, ObjectMeta, Storage};
use crate::error::Hinted;
use crate::retry::Backoff;

/// Downloads of objects larger than this are split into ranges of this size.
const RANGE: u64 = 4 * 1024 * 1024;

/// How many ranges of one object are downloaded at the same time.
const PARALLEL_RANGES: usize = 4;

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

/// Whether aws-sdk-s3 adds and checks CRC checksums on every request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChecksumMode {
    /// Only where the API requires one: works with every S3-compatible store.
    #[default]
    WhenRequired,
    /// On every request that supports one (AWS S3 and stores that support
    /// the flexible checksum headers).
    WhenSupported,
}

/// How to reach the S3 endpoint, resolved from flags, env and config file.
#[derive(Clone, Debug)]
pub struct S3Options {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub path_style: bool,
    pub checksums: ChecksumMode,
    /// Size of a multipart part; also the largest object sent in one PUT.
    pub part_size: usize,
    /// Keys from the configuration file; `None` means the AWS chain.
    pub credentials: Option<StaticCredentials>,
    /// Retries after the first attempt of a request.
    pub retries: u32,
    /// How long one attempt may wait for a connection and for the first
    /// byte of the answer before it is abandoned (and retried).
    pub timeout: Duration,
}

/// An access key and its secret. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            endpoint: None,
            region: None,
            path_style: false,
            checksums: ChecksumMode::default(),
            part_size: 8 * 1024 * 1024,
            credentials: None,
            retries: crate::retry::DEFAULT_RETRIES,
            timeout: Duration::from_secs(120),
        }
    }
}

#[derive(Clone)]
pub struct S3Storage {
    client: Client,
    bucket: String,
    prefix: String,
    endpoint: Option<String>,
    part_size: usize,
    /// How often a download that broke off is resumed.
    retries: u32,
}

impl fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl S3Storage {
    pub async fn new(bucket: String, prefix: String, opts: &S3Options) -> Result<Self> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &opts.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(c) = &opts.credentials {
            loader = loader.credentials_provider(Credentials::new(
                &c.access_key_id,
                &c.secret_access_key,
                None,
                None,
                "promsnap configuration file",
            ));
        }
        loader = loader
            .retry_config(RetryConfig::standard().with_max_attempts(opts.retries + 1))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(opts.timeout.min(Duration::from_secs(10)))
                    .read_timeout(opts.timeout)
                    .build(),
            );
        let sdk = loader.load().await;
        let (calc, validate) = match opts.checksums {
            ChecksumMode::WhenRequired => (
                RequestChecksumCalculation::WhenRequired,
                ResponseChecksumValidation::WhenRequired,
            ),
            ChecksumMode::WhenSupported => (
                RequestChecksumCalculation::WhenSupported,
                ResponseChecksumValidation::WhenSupported,
            ),
        };
        let mut config = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(opts.path_style)
            .request_checksum_calculation(calc)
            .response_checksum_validation(validate);
        if sdk.region().is_none() {
            config = config.region(Region::new("us-east-1"));
        }
        if let Some(endpoint) = &opts.endpoint {
            config = config.endpoint_url(endpoint);
        }
        Ok(S3Storage {
            client: Client::from_conf(config.build()),
            bucket,
            prefix,
            endpoint: opts.endpoint.clone(),
            part_size: opts.part_size.max(5 * 1024 * 1024),
            retries: opts.retries,
        })
    }

    fn full_key(&self, key: &Key) -> String {
        if self.prefix.is_empty() {
            key.as_str().to_string()
        } else {
            format!("{}/{}", self.prefix, key)
        }
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
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&full)
            .send()
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

    /// Turns an SDK error into one that says what failed and what to check.
    fn error<E>(&self, err: SdkError<E, HttpResponse>, action: &str, key: &Key) -> anyhow::Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let code = err
            .as_service_error()
            .and_then(|e| e.code())
            .map(str::to_string);
        let detail = DisplayErrorContext(&err).to_string();
        let status = err.raw_response().map(|r| r.status().as_u16());
        let what = format!("could not {action} {key} in {}", self.describe());
        let hinted = classify(code.as_deref(), status, &detail, &self.bucket, what);
        anyhow::anyhow!(detail).context(hinted)
    }
}

fn classify(
    code: Option<&str>,
    status: Option<u16>,
    detail: &str,
    bucket: &str,
    what: String,
) -> Hinted {
    match (code, status) {
        (Some("NoSuchBucket"), _) => Hinted::usage(
            format!("{what}: bucket {bucket:?} does not exist"),
            "create the bucket first, or check the bucket name in --repo and the --s3-endpoint",
        ),
        (Some("InvalidAccessKeyId" | "SignatureDoesNotMatch" | "AccessDenied"), _)
        | (_, Some(401 | 403)) => Hinted::usage(
            format!("{what}: access denied"),
            "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or \
             repository.access_key_id and secret_access_key_file in the configuration file); the \
             key needs read, write, list and delete on the bucket",
        ),
        _ if detail.contains("credentials") && detail.contains("provider") => Hinted::usage(
            format!("{what}: no S3 credentials found"),
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or \
             repository.access_key_id and secret_access_key_file in the configuration file, or \
             run where an instance role is available",
        ),
        (None, None) => Hinted::failure(
            format!("{what}: the S3 endpoint did not answer"),
            "check that --s3-endpoint / PROMSNAP_S3_ENDPOINT is right and reachable",
        ),
        _ => Hinted::failure(
            what,
            "see the cause above; rerun to retry, nothing was half-written",
        ),
    }
}

/// A download that resumes where it broke off. The SDK retries requests,
/// but a body that breaks half-way (a reset connection, a restarted server)
/// is past its reach: this asks for the rest with a Range request, and with
/// If-Match so that the rest comes from the same object.
struct Download {
    storage: S3Storage,
    key: Key,
    etag: Option<String>,
    body: AwsStream,
    offset: u64,
    resumes: u32,
    backoff: Backoff,
}

impl Download {
    async fn next(mut self) -> Result<Option<(Bytes, Download)>> {
        loop {
            match self.body.try_next().await {
                Ok(Some(bytes)) => {
                    self.offset += bytes.len() as u64;
                    return Ok(Some((bytes, self)));
                }
                Ok(None) => return Ok(None),
                Err(e) if self.resumes < self.storage.retries => {
                    self.resumes += 1;
                    tokio::time::sleep(self.backoff.next_delay()).await;
                    self.resume().await.with_context(|| {
                        format!(
                            "download of {} broke off ({e}) and could not resume",
                            self.key
                        )
                    })?;
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("download of {} broke off", self.key)))
                }
            }
        }
    }

    async fn resume(&mut self) -> Result<()> {
        let s = &self.storage;
        let out = s
            .client
            .get_object()
            .bucket(&s.bucket)
            .key(s.full_key(&self.key))
            .range(format!("bytes={}-", self.offset))
            .set_if_match(self.etag.clone())
            .send()
            .await
            .map_err(|e| s.error(e, "resume the download of", &self.key))?;
        self.body = out.body;
        Ok(())
    }
}

fn is_no_such_upload<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|c| c == "NoSuchUpload")
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
        super::cleanup::spawn(async move {
            let _ = req.send().await;
        });
    }
}

fn to_chrono(t: &aws_sdk_s3::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

impl S3Storage {
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
        let download = Download {
            storage: self.clone(),
            key: key.clone(),
            etag: out.e_tag().map(str::to_string),
            body: out.body,
            offset: 0,
            resumes: 0,
            backoff: Backoff::default(),
        };
        Ok(Box::pin(futures::stream::try_unfold(
            download,
            Download::next,
        )))
    }

    /// Bytes `start..=end` of the object whose ETag is `etag`, in memory,
    /// retried as a whole when the request or its body fails.
    async fn get_range(
        &self,
        key: &Key,
        start: u64,
        end: u64,
        etag: Option<String>,
    ) -> Result<Bytes> {
        let mut backoff = Backoff::default();
        let mut attempt = 0;
        loop {
            let result = async {
                let out = self
                    .client
                    .get_object()
                    .bucket(&self.bucket)
                    .key(self.full_key(key))
                    .range(format!("bytes={start}-{end}"))
                    .set_if_match(etag.clone())
                    .send()
                    .await
                    .map_err(|e| self.error(e, "download", key))?;
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
            }
            .await;
            match result {
                Ok(bytes) => return Ok(bytes),
                Err(_) if attempt < self.retries => {
                    attempt += 1;
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[async_trait]
impl Storage for S3Storage {
    fn describe(&self) -> String {
        let mut s = format!("s3://{}", self.bucket);
        if !self.prefix.is_empty() {
            s = format!("{s}/{}", self.prefix);
        }
        match &self.endpoint {
            Some(e) => format!("{s} (endpoint {})", crate::redact::url(e)),
            None => s,
        }
    }

    async fn put(&self, key: &Key, mut body: Body) -> Result<u64> {
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

    async fn get(&self, key: &Key) -> Result<ByteStream> {
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
        let head = Download {
            storage: self.clone(),
            key: key.clone(),
            etag: etag.clone(),
            body: out.body,
            offset: 0,
            resumes: 0,
            backoff: Backoff::default(),
        };
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
                async move { this.get_range(&key, start, end, etag).await }
            })
            .buffered(PARALLEL_RANGES);
        Ok(Box::pin(head.chain(rest)))
    }

    async fn head(&self, key: &Key) -> Result<Option<ObjectMeta>> {
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await;
        match out {
            Ok(o) => Ok(Some(ObjectMeta {
                key: key.clone(),
                size: o.content_length().unwrap_or(0).max(0) as u64,
                last_modified: o.last_modified().and_then(to_chrono),
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(self.error(e, "stat", key)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let full_prefix = if self.prefix.is_empty() {
            prefix.to_string()
        } else {
            format!("{}/{prefix}", self.prefix)
        };
        let strip = full_prefix.len() - prefix.len();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full_prefix)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                let key = Key::new(prefix.trim_end_matches('/')).unwrap_or(Key("/".into()));
                self.error(e, "list", &key)
            })?;
            for obj in page.contents() {
                let Some(k) = obj.key().and_then(|k| k.get(strip..)) else {
                    continue;
                };
                // Objects that are not valid keys were not written by us.
                if let Ok(key) = Key::new(k) {
                    out.push(ObjectMeta {
                        key,
                        size: obj.size().unwrap_or(0).max(0) as u64,
                        last_modified: obj.last_modified().and_then(to_chrono),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn abort_incomplete(&self, before: DateTime<Utc>, dry_run: bool) -> Result<u64> {
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

    async fn delete(&self, key: &Key) -> Result<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|e| self.error(e, "delete", key))?;
        Ok(())
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

    #[test]
    fn errors_are_classified_with_hints() {
        let h = classify(Some("NoSuchBucket"), Some(404), "", "b", "x".into());
        assert!(h.message.contains("does not exist") && h.hint.contains("create the bucket"));
        let h = classify(Some("InvalidAccessKeyId"), Some(403), "", "b", "x".into());
        assert!(h.hint.contains("AWS_ACCESS_KEY_ID"));
        let h = classify(None, Some(403), "", "b", "x".into());
        assert!(h.message.contains("access denied"));
        let h = classify(
            None,
            None,
            "dispatch failure: connection refused",
            "b",
            "x".into(),
        );
        assert!(h.hint.contains("--s3-endpoint"));
    }
}
