//! A small client for the Prometheus HTTP API, as far as backups need it.
//!
//! Prometheus answers API errors with a JSON envelope
//! (`{"status":"error","errorType":...,"error":...}`) whose HTTP status
//! differs between versions (the admin API being disabled is a 500 on some,
//! a 503 on others), so we always read the body and decide from it; the
//! status code only matters when the body is not JSON at all.
//!
//! Requests are retried (`--retries`, exponential backoff with jitter) when
//! the failure is transient: no connection, a timeout, a broken connection,
//! or a 429 / 5xx answer that did not come from the Prometheus API itself
//! (a proxy, or a server still starting). An API error in Prometheus's JSON
//! envelope is an answer, not a glitch, and is never retried; nor is another
//! 4xx. The snapshot POST is not idempotent (a repeated one would leave an
//! orphaned snapshot on the Prometheus disk), so it is repeated only when
//! Prometheus surely did not act on it: no connection, or 429 / 503.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::Flags;
use crate::error::Hinted;
use crate::retry::{Backoff, Decision, Retries};

/// `/-/ready` answered 503: Prometheus runs but is still starting up
/// (replaying its WAL), and will be ready by itself. Holds the answer's body.
#[derive(Debug)]
pub struct NotReady(pub String);

impl fmt::Display for NotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP 503: {}", self.0)
    }
}

impl std::error::Error for NotReady {}

/// Per-request timeout unless the options say otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// A snapshot of a large head block can take minutes.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(600);

/// How to reach and authenticate to Prometheus. Secrets are never printed.
#[derive(Clone, Default)]
pub struct PrometheusOptions {
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub bearer_token: Option<String>,
    pub ca_cert: Option<PathBuf>,
    /// Per request [default: 2 minutes; snapshots at least 10 minutes].
    pub timeout: Option<Duration>,
    /// Retries of a request that failed transiently.
    pub retries: u32,
}

impl fmt::Debug for PrometheusOptions {
    /// Never shows the password or the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("PrometheusOptions")
            .field("url", &crate::redact::url(&self.url))
            .field("username", &self.username)
            .field("password", &redacted(&self.password))
            .field("bearer_token", &redacted(&self.bearer_token))
            .field("ca_cert", &self.ca_cert)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .finish()
    }
}

pub struct Prometheus {
    /// The URL requests go to (credentials in it become basic auth).
    base: String,
    /// The same URL with its password hidden: what messages show.
    shown: String,
    http: reqwest::Client,
    opts: PrometheusOptions,
    timeout: Duration,
    backoff: Backoff,
}

/// Whether a failed attempt may be repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Prometheus answered: repeating would get the same answer.
    Never,
    /// Prometheus did not act on the request (no connection, 429, 503).
    NotActedOn,
    /// Transient, but Prometheus may have acted on it (timeout, broken
    /// connection, other 5xx): repeat only idempotent requests.
    Transient,
}

#[derive(Deserialize)]
struct Envelope<T> {
    status: String,
    data: Option<T>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct SnapshotData {
    name: String,
}

#[derive(Deserialize)]
struct BuildInfo {
    version: String,
}

#[derive(Deserialize)]
struct ConfigData {
    yaml: String,
}

impl Prometheus {
    pub fn new(opts: PrometheusOptions) -> Result<Self> {
        let timeout = opts.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let mut builder =
            reqwest::Client::builder().connect_timeout(timeout.min(Duration::from_secs(10)));
        if let Some(ca) = &opts.ca_cert {
            let pem = std::fs::read(ca)
                .with_context(|| format!("could not read CA certificate {}", ca.display()))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .with_context(|| format!("{} is not a PEM certificate", ca.display()))?;
            builder = builder.add_root_certificate(cert);
        }
        // Credentials written into the URL become basic authentication
        // (unless given otherwise), so the URL itself carries none: it is
        // shown and stored without them.
        let (base, user, password) = split_credentials(opts.url.trim_end_matches('/'));
        let mut opts = opts;
        opts.url = base.clone();
        if opts.username.is_none() && opts.bearer_token.is_none() {
            if let Some(user) = user {
                opts.username = Some(user);
                opts.password = password;
            }
        }
        Ok(Prometheus {
            shown: crate::redact::url(&base),
            base,
            http: builder.build()?,
            opts,
            timeout,
            backoff: Backoff::default(),
        })
    }

    /// The server's URL as it may be shown and stored (no password).
    pub fn url(&self) -> &str {
        &self.shown
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .timeout(self.timeout);
        if let Some(user) = &self.opts.username {
            req = req.basic_auth(user, self.opts.password.as_deref());
        } else if let Some(token) = &self.opts.bearer_token {
            req = req.bearer_auth(token);
        }
        req
    }

    /// One API call, retried while the failure is transient (module docs).
    async fn call<T: DeserializeOwned>(&self, method: reqwest::Method, path: &str) -> Result<T> {
        let idempotent = method == reqwest::Method::GET;
        let mut retries = Retries::with_backoff(self.opts.retries, self.backoff.clone());
        let answer = retries
            .run(|| async {
                self.attempt(method.clone(), path)
                    .await
                    .map_err(|(err, retry)| {
                        let decision = match retry {
                            Retry::NotActedOn => Decision::Retry,
                            Retry::Transient if idempotent => Decision::Retry,
                            Retry::Transient | Retry::Never => Decision::Stop,
                        };
                        (err, decision)
                    })
            })
            .await;
        answer.map_err(|gave_up| match gave_up.attempts {
            1 => gave_up.error,
            n => gave_up.error.context(format!("gave up after {n} attempts")),
        })
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> Result<T, (anyhow::Error, Retry)> {
        let url = format!("{}{path}", self.shown);
        let mut req = self.request(method.clone(), path);
        if method == reqwest::Method::POST {
            req = req.timeout(self.timeout.max(SNAPSHOT_TIMEOUT));
        }
        let resp = req.send().await.map_err(|e| {
            let retry = if e.is_connect() {
                Retry::NotActedOn
            } else {
                Retry::Transient
            };
            let err = anyhow::Error::new(e.without_url()).context(Hinted::failure(
                format!("could not reach Prometheus at {url}"),
                "check --prometheus-url and that Prometheus is running and reachable from here",
            ));
            (err, retry)
        })?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| {
            let err =
                anyhow::Error::new(e.without_url()).context(format!("reading the answer of {url}"));
            (err, Retry::Transient)
        })?;
        let envelope: Envelope<T> = match serde_json::from_slice(&body) {
            Ok(e) => e,
            Err(_) => {
                let retry = match status.as_u16() {
                    429 | 503 => Retry::NotActedOn,
                    500..=599 => Retry::Transient,
                    _ => Retry::Never,
                };
                return Err((non_json_error(&url, status, &body), retry));
            }
        };
        if envelope.status != "success" {
            let err = api_error(&url, envelope.error_type, envelope.error);
            return Err((err, Retry::Never));
        }
        envelope.data.ok_or_else(|| {
            let err = anyhow::anyhow!("{url} answered success without data");
            (err, Retry::Never)
        })
    }

    /// Succeeds when `/-/ready` says the server is up and its TSDB loaded.
    pub async fn ready(&self) -> Result<()> {
        let url = format!("{}/-/ready", self.shown);
        let resp = self
            .request(reqwest::Method::GET, "/-/ready")
            .send()
            .await
            .map_err(|e| {
                anyhow::Error::new(e.without_url()).context(Hinted::failure(
                    format!("could not reach Prometheus at {url}"),
                    "check --prometheus-url and that Prometheus is running and reachable from here",
                ))
            })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let body = resp.bytes().await.unwrap_or_default();
        if status.as_u16() == 503 {
            let body = String::from_utf8_lossy(&body).trim().to_string();
            return Err(anyhow::Error::new(NotReady(body)).context(Hinted::failure(
                format!("Prometheus at {} is not ready yet", self.shown),
                "it is probably still replaying its WAL; wait longer with --wait-ready, or try \
                 again in a few minutes",
            )));
        }
        Err(non_json_error(&url, status, &body))
    }

    /// Asks Prometheus for a snapshot; returns its directory name below
    /// `<data-dir>/snapshots/`.
    pub async fn snapshot(&self, skip_head: bool) -> Result<String> {
        let path = format!("/api/v1/admin/tsdb/snapshot?skip_head={skip_head}");
        let data: SnapshotData = self
            .call(reqwest::Method::POST, &path)
            .await
            .context("could not create a TSDB snapshot")?;
        // The name becomes a path component: it must be exactly one.
        let valid = !data.name.is_empty()
            && data
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        anyhow::ensure!(
            valid,
            "Prometheus returned an unexpected snapshot name {:?}",
            data.name
        );
        Ok(data.name)
    }

    pub async fn version(&self) -> Result<String> {
        let info: BuildInfo = self
            .call(reqwest::Method::GET, "/api/v1/status/buildinfo")
            .await?;
        Ok(info.version)
    }

    /// The server's command-line flags (e.g. `storage.tsdb.path`).
    pub async fn flags(&self) -> Result<Flags> {
        self.call(reqwest::Method::GET, "/api/v1/status/flags")
            .await
    }

    /// `global.external_labels` from the loaded configuration.
    pub async fn external_labels(&self) -> Result<BTreeMap<String, String>> {
        let config: ConfigData = self
            .call(reqwest::Method::GET, "/api/v1/status/config")
            .await?;
        parse_external_labels(&config.yaml)
    }
}

/// `url` without its userinfo, and the user and password that were in it
/// (percent-decoded).
fn split_credentials(url: &str) -> (String, Option<String>, Option<String>) {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return (url.to_string(), None, None);
    };
    if parsed.username().is_empty() && parsed.password().is_none() {
        return (url.to_string(), None, None);
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let user = decode(parsed.username());
    let password = parsed.password().map(decode);
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    let base = parsed.as_str().trim_end_matches('/').to_string();
    (base, Some(user), password)
}

fn parse_external_labels(yaml: &str) -> Result<BTreeMap<String, String>> {
    #[derive(Deserialize, Default)]
    struct Config {
        #[serde(default)]
        global: Global,
    }
    #[derive(Deserialize, Default)]
    struct Global {
        #[serde(default)]
        external_labels: BTreeMap<String, String>,
    }
    let config: Config =
        serde_norway::from_str(yaml).context("could not parse the configuration")?;
    Ok(config.global.external_labels)
}

fn api_error(url: &str, error_type: Option<String>, error: Option<String>) -> anyhow::Error {
    let error = error.unwrap_or_else(|| "no error message".into());
    let error_type = error_type.unwrap_or_default();
    let cause = anyhow::anyhow!("{error} ({error_type})");
    let hinted = if error.contains("admin APIs disabled") {
        Hinted::failure(
            format!("Prometheus at {url} refused: the admin API is disabled"),
            "start Prometheus with --web.enable-admin-api (snapshots need it), or back up a \
             snapshot or stopped data directory with --from-dir",
        )
    } else {
        Hinted::failure(
            format!("Prometheus at {url} answered with an error"),
            "see the cause; check the Prometheus log too",
        )
    };
    cause.context(hinted)
}

fn non_json_error(url: &str, status: reqwest::StatusCode, body: &[u8]) -> anyhow::Error {
    let snippet: String = String::from_utf8_lossy(body).chars().take(200).collect();
    let cause = anyhow::anyhow!("HTTP {status}: {}", snippet.trim());
    let hint = match status.as_u16() {
        401 | 403 => {
            "Prometheus wants credentials: use --prometheus-username/--prometheus-password-file \
                      or --prometheus-bearer-token-file"
        }
        404 => {
            "is --prometheus-url the Prometheus server itself (including any --web.route-prefix)?"
        }
        _ => "is --prometheus-url pointing at Prometheus?",
    };
    cause.context(Hinted::failure(
        format!("{url} did not answer like the Prometheus API"),
        hint,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::hint_of;

    #[test]
    fn external_labels_come_from_the_global_section() {
        let yaml = "global:\n  scrape_interval: 15s\n  external_labels:\n    replica: a\n    cluster: eu1\nscrape_configs: []\n";
        let labels = parse_external_labels(yaml).unwrap();
        assert_eq!(labels.get("replica").map(String::as_str), Some("a"));
        assert_eq!(labels.len(), 2);
        assert!(parse_external_labels("global:\n  scrape_interval: 15s\n")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn credentials_in_the_url_become_basic_auth_and_leave_the_url() {
        let (base, user, password) = split_credentials("http://admin:S3cr%40t@prom:9090/x");
        assert_eq!(base, "http://prom:9090/x");
        assert_eq!(user.as_deref(), Some("admin"));
        assert_eq!(password.as_deref(), Some("S3cr@t"));
        let prom = Prometheus::new(PrometheusOptions {
            url: "http://admin:S3cr3t@prom:9090/".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(prom.url(), "http://prom:9090");
        assert_eq!(prom.opts.username.as_deref(), Some("admin"));
        assert_eq!(prom.opts.password.as_deref(), Some("S3cr3t"));
        assert!(!format!("{:?}", prom.opts).contains("S3cr3t"));
        let (base, user, _) = split_credentials("http://prom:9090");
        assert_eq!((base.as_str(), user), ("http://prom:9090", None));
    }

    #[test]
    fn disabled_admin_api_hints_at_the_flag() {
        let err = api_error(
            "http://p/x",
            Some("unavailable".into()),
            Some("admin APIs disabled".into()),
        );
        assert!(hint_of(&err).unwrap().contains("--web.enable-admin-api"));
        let err = non_json_error(
            "http://p/x",
            reqwest::StatusCode::UNAUTHORIZED,
            b"Unauthorized",
        );
        assert!(hint_of(&err).unwrap().contains("bearer-token"));
    }

    /// A one-shot HTTP server on loopback answering each connection with the
    /// next of `answers` (status, body); returns its URL and a request count.
    async fn fake_server(
        answers: Vec<(u16, &'static str)>,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            for (status, body) in answers {
                let (mut conn, _) = listener.accept().await.unwrap();
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.ends_with(b"\r\n\r\n") {
                    let n = conn.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    head.extend_from_slice(&buf[..n]);
                }
                seen.fetch_add(1, Ordering::SeqCst);
                let answer = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                conn.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        (url, count)
    }

    async fn prometheus(url: &str, retries: u32) -> Prometheus {
        let mut prom = Prometheus::new(PrometheusOptions {
            url: url.into(),
            retries,
            ..Default::default()
        })
        .unwrap();
        prom.backoff = Backoff::new(Duration::from_millis(1), Duration::from_millis(5));
        prom
    }

    const VERSION: &str = r#"{"status":"success","data":{"version":"2.42.0"}}"#;
    const SNAPSHOT: &str = r#"{"status":"success","data":{"name":"20260101T000000Z-abc"}}"#;
    const DISABLED: &str =
        r#"{"status":"error","errorType":"unavailable","error":"admin APIs disabled"}"#;

    fn requests(count: &std::sync::atomic::AtomicUsize) -> usize {
        count.load(std::sync::atomic::Ordering::SeqCst)
    }

    #[tokio::test]
    async fn transient_failures_are_retried_until_an_answer() {
        let answers = vec![
            (503, "starting"),
            (502, "bad gateway"),
            (429, "slow down"),
            (200, VERSION),
        ];
        let (url, count) = fake_server(answers).await;
        let version = prometheus(&url, 3).await.version().await.unwrap();
        assert_eq!(version, "2.42.0");
        assert_eq!(requests(&count), 4);
    }

    #[tokio::test]
    async fn retries_are_bounded() {
        let (url, count) = fake_server(vec![(503, "down"); 3]).await;
        let err = prometheus(&url, 2).await.version().await.unwrap_err();
        assert!(
            format!("{err:#}").contains("gave up after 3 attempts"),
            "{err:#}"
        );
        assert_eq!(requests(&count), 3);
    }

    #[tokio::test]
    async fn answers_from_prometheus_and_4xx_are_not_retried() {
        let (url, count) = fake_server(vec![(404, "not found"), (200, VERSION)]).await;
        assert!(prometheus(&url, 5).await.version().await.is_err());
        assert_eq!(requests(&count), 1);
        // The admin API being off is a JSON answer with a 5xx status.
        let (url, count) = fake_server(vec![(503, DISABLED), (200, SNAPSHOT)]).await;
        let err = prometheus(&url, 5).await.snapshot(false).await.unwrap_err();
        assert!(hint_of(&err).unwrap().contains("--web.enable-admin-api"));
        assert_eq!(requests(&count), 1);
    }

    #[tokio::test]
    async fn a_snapshot_is_repeated_only_when_prometheus_did_not_act_on_it() {
        let (url, count) = fake_server(vec![(503, "starting"), (200, SNAPSHOT)]).await;
        let name = prometheus(&url, 5).await.snapshot(false).await.unwrap();
        assert_eq!(name, "20260101T000000Z-abc");
        assert_eq!(requests(&count), 2);
        // A 502 may come after Prometheus took the snapshot: not repeated.
        let (url, count) = fake_server(vec![(502, "bad gateway"), (200, SNAPSHOT)]).await;
        assert!(prometheus(&url, 5).await.snapshot(false).await.is_err());
        assert_eq!(requests(&count), 1);
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried() {
        // Nothing listens on a port that was just free.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let started = std::time::Instant::now();
        let err = prometheus(&format!("http://127.0.0.1:{port}"), 2)
            .await
            .version()
            .await
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("gave up after 3 attempts"),
            "{err:#}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
