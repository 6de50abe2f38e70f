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
//! jitter, `--retries` times.
//!
//! The rest is split as object_store splits its `aws/` module: this file
//! sets up the client and implements [`Storage`]; `upload.rs` sends bodies
//! (multipart, aborted unless completed), `download.rs` reads them (ranges
//! in parallel, resuming a body that broke off), and `errors.rs` turns SDK
//! errors into messages with hints.
//!
//! Request checksums default to "when required" because many S3-compatible
//! stores reject the CRC32 trailers that aws-sdk-s3 adds by default since
//! 1.69 (see the README for which setting each provider needs).

mod download;
mod errors;
mod upload;

use std::fmt;
use std::time::Duration;

use anyhow::Result;
use async_trait::async_trait;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::Client;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::{Body, ByteStream, Key, ObjectMeta, Storage};

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
}

fn to_chrono(t: &aws_sdk_s3::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

#[async_trait]
impl Storage for S3Storage {
    /// A part: sent as the slice of the caller's buffer it is.
    fn upload_piece(&self) -> usize {
        self.part_size
    }

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

    async fn put(&self, key: &Key, body: Body) -> Result<u64> {
        self.upload(key, body).await
    }

    async fn get(&self, key: &Key) -> Result<ByteStream> {
        self.download(key).await
    }

    async fn get_range(&self, key: &Key, offset: u64, length: u64) -> Result<ByteStream> {
        self.download_range(key, offset, length).await
    }

    async fn get_tail(&self, key: &Key, length: u64) -> Result<(u64, Bytes)> {
        self.download_tail(key, length).await
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
        self.abort_incomplete_uploads(before, dry_run).await
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
