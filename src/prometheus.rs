//! A small client for the Prometheus HTTP API, as far as backups need it.
//!
//! Prometheus answers API errors with a JSON envelope
//! (`{"status":"error","errorType":...,"error":...}`) whose HTTP status
//! differs between versions (the admin API being disabled is a 500 on some,
//! a 503 on others), so we always read the body and decide from it; the
//! status code only matters when the body is not JSON at all.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::Hinted;

/// How to reach and authenticate to Prometheus. Secrets are never printed.
#[derive(Clone, Default)]
pub struct PrometheusOptions {
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub bearer_token: Option<String>,
    pub ca_cert: Option<PathBuf>,
    pub timeout: Option<Duration>,
}

pub struct Prometheus {
    base: String,
    http: reqwest::Client,
    opts: PrometheusOptions,
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
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // A snapshot of a large head block can take minutes.
            .timeout(opts.timeout.unwrap_or(Duration::from_secs(600)));
        if let Some(ca) = &opts.ca_cert {
            let pem = std::fs::read(ca)
                .with_context(|| format!("could not read CA certificate {}", ca.display()))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .with_context(|| format!("{} is not a PEM certificate", ca.display()))?;
            builder = builder.add_root_certificate(cert);
        }
        Ok(Prometheus {
            base: opts.url.trim_end_matches('/').to_string(),
            http: builder.build()?,
            opts,
        })
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(user) = &self.opts.username {
            req = req.basic_auth(user, self.opts.password.as_deref());
        } else if let Some(token) = &self.opts.bearer_token {
            req = req.bearer_auth(token);
        }
        req
    }

    async fn call<T: DeserializeOwned>(&self, method: reqwest::Method, path: &str) -> Result<T> {
        let url = format!("{}{path}", self.base);
        let resp = self.request(method, path).send().await.map_err(|e| {
            anyhow::Error::new(e).context(Hinted::failure(
                format!("could not reach Prometheus at {url}"),
                "check --prometheus-url and that Prometheus is running and reachable from here",
            ))
        })?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .with_context(|| format!("reading the answer of {url}"))?;
        let envelope: Envelope<T> = match serde_json::from_slice(&body) {
            Ok(e) => e,
            Err(_) => return Err(non_json_error(&url, status, &body)),
        };
        if envelope.status != "success" {
            return Err(api_error(&url, envelope.error_type, envelope.error));
        }
        envelope
            .data
            .with_context(|| format!("{url} answered success without data"))
    }

    /// Succeeds when `/-/ready` says the server is up and its TSDB loaded.
    pub async fn ready(&self) -> Result<()> {
        let url = format!("{}/-/ready", self.base);
        let resp = self
            .request(reqwest::Method::GET, "/-/ready")
            .send()
            .await
            .map_err(|e| {
                anyhow::Error::new(e).context(Hinted::failure(
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
            return Err(
                anyhow::anyhow!("HTTP 503: {}", String::from_utf8_lossy(&body).trim()).context(
                    Hinted::failure(
                        format!("Prometheus at {} is not ready yet", self.base),
                        "it is probably still replaying its WAL; try again in a few minutes",
                    ),
                ),
            );
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
    pub async fn flags(&self) -> Result<BTreeMap<String, String>> {
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
}
