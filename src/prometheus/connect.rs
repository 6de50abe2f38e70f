//! Which Prometheus to back up, and what it says about itself.
//!
//! Replicas that share one data directory are given as several
//! `--prometheus-url`s; the first that answers `/-/ready` is used. While
//! every one of them answers "not ready" (503: started, still replaying its
//! WAL, which takes minutes on a big server), [`connect`] waits up to
//! `--wait-ready`: a nightly backup that meets a restart should run late,
//! not fail. A server that cannot be reached fails at once.
//!
//! Once connected, the server's version and external labels are read for
//! the manifest (the labels may also name the HA group). Either may be
//! missing without failing the backup: they come back as warnings.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::{NotReady, Prometheus, PrometheusOptions};
use crate::error::Hinted;

/// How often /-/ready is asked again while waiting.
const READY_POLL: Duration = Duration::from_secs(2);

/// The server in use and what it said about itself.
pub struct Connected {
    pub client: Prometheus,
    pub info: ServerInfo,
    /// Things the user should know (metadata that could not be read).
    pub warnings: Vec<String>,
}

/// What a server says about itself, for the manifest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerInfo {
    pub url: String,
    pub version: Option<String>,
    pub external_labels: BTreeMap<String, String>,
}

/// The first of `urls` that is ready (see the module docs). `client` says
/// how to reach them; `notify` hears what happens while waiting, once.
pub async fn connect(
    urls: &[String],
    client: &PrometheusOptions,
    wait: Duration,
    notify: &(dyn Fn(&str) + Sync),
) -> Result<Connected> {
    let mut servers = urls
        .iter()
        .map(|url| {
            Prometheus::new(PrometheusOptions {
                url: url.clone(),
                ..client.clone()
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let deadline = Instant::now() + wait;
    let mut told = false;
    loop {
        let mut failures = Vec::new();
        for i in 0..servers.len() {
            match servers[i].ready().await {
                Ok(()) => {
                    if !failures.is_empty() {
                        let url = servers[i].url();
                        notify(&format!("using {url}; not ready: {}", listed(&failures)));
                    }
                    let client = servers.swap_remove(i);
                    let (info, warnings) = describe(&client).await;
                    return Ok(Connected {
                        client,
                        info,
                        warnings,
                    });
                }
                Err(e) => failures.push((servers[i].url().to_string(), e)),
            }
        }
        let starting = !failures.is_empty()
            && failures
                .iter()
                .all(|(_, e)| e.downcast_ref::<NotReady>().is_some());
        let left = deadline.saturating_duration_since(Instant::now());
        if starting && !left.is_zero() {
            if !told {
                notify(&format!(
                    "Prometheus is not ready yet ({}); waiting up to {} for it (--wait-ready)",
                    last(&failures[0].1),
                    crate::duration::Duration(wait)
                ));
                told = true;
            }
            tokio::time::sleep(READY_POLL.min(left)).await;
            continue;
        }
        if failures.len() == 1 {
            return Err(failures.remove(0).1);
        }
        return Err(Hinted::failure(
            format!(
                "none of the {} Prometheus servers is ready: {}",
                urls.len(),
                listed(&failures)
            ),
            "check that at least one --prometheus-url is running and reachable",
        )
        .into());
    }
}

/// Version and external labels; what could not be read is a warning.
async fn describe(prom: &Prometheus) -> (ServerInfo, Vec<String>) {
    let mut warnings = Vec::new();
    let version = prom.version().await;
    let labels = prom.external_labels().await;
    if let Err(e) = &version {
        warnings.push(format!("could not read the Prometheus version: {e:#}"));
    }
    if let Err(e) = &labels {
        warnings.push(format!("could not read the external labels: {e:#}"));
    }
    let info = ServerInfo {
        url: prom.url().to_string(),
        version: version.ok(),
        external_labels: labels.unwrap_or_default(),
    };
    (info, warnings)
}

/// The innermost cause of an error, for one-line summaries.
fn last(e: &anyhow::Error) -> String {
    e.chain().last().map(|c| c.to_string()).unwrap_or_default()
}

/// `url: cause; url: cause` for servers that were not ready.
fn listed(failures: &[(String, anyhow::Error)]) -> String {
    let parts: Vec<String> = failures
        .iter()
        .map(|(url, e)| format!("{url}: {}", last(e)))
        .collect();
    parts.join("; ")
}
