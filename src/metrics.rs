//! Metrics for alerting: what the last run of each command did.
//!
//! After every `backup`, `prune`, `verify` and `restore`, successful or not,
//! promsnap can write the node_exporter textfile-collector format to
//! `--metrics-file` and push the same samples to a Pushgateway
//! (`--pushgateway`). The alert that matters is "no successful backup for
//! more than a day" (`time() - promsnap_last_success_timestamp_seconds >
//! 26*3600`), so a failed run must not lose the time of the last success.
//!
//! One rule gives that for both outputs: a run replaces only the samples it
//! knows. A failed run knows when it ran, how long and that it failed; the
//! last success time and the sizes of the last successful run stay as they
//! were. For the file, promsnap reads the previous file back and merges; a
//! Pushgateway does the same by itself for a POST (it replaces only the
//! metric names pushed). Samples carry `command` and `instance` labels, so
//! backup, prune and verify of several instances can share one file.
//!
//! The file is written atomically (a temporary file in the same directory,
//! fsynced, renamed over the old one), so the collector never reads half a
//! file, and writers are serialised with an flock on the directory.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use base64::Engine as _;

use crate::error::Hinted;
use crate::retry::{Decision, Retries};

/// What a command did, as far as it knows; `None` for what it does not
/// measure. Filled by the commands, turned into samples here.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSummary {
    /// The instance the run was about, when the command knows it better
    /// than the flags (a backup names it in its manifest).
    pub instance: Option<String>,
    /// The HA group, else the instance, whose data a backup wrote (or, when
    /// skipped, the group another replica stored): what `serve` measures.
    pub group: Option<String>,
    /// Archive bytes uploaded.
    pub bytes_uploaded: Option<u64>,
    /// Block bytes not uploaded because the repository already held them.
    pub bytes_reused: Option<u64>,
    pub blocks_new: Option<u64>,
    pub blocks_reused: Option<u64>,
    /// Snapshots in the repository after the run (verify: the ones checked).
    pub snapshots: Option<u64>,
    /// The run had nothing to do: another replica of its HA group stored
    /// the group's backup. It counts as a success.
    pub skipped: bool,
}

/// One finished run of a command.
#[derive(Debug, Clone)]
pub struct RunRecord<'a> {
    pub command: &'a str,
    pub instance: &'a str,
    pub success: bool,
    pub ended: SystemTime,
    pub duration: Duration,
    pub summary: &'a RunSummary,
}

/// Every metric promsnap writes, in file order, with its HELP text.
pub const FAMILIES: &[(&str, &str)] = &[
    (
        "promsnap_last_run_timestamp_seconds",
        "Unix time the last run of this command ended, successful or not.",
    ),
    (
        "promsnap_last_success_timestamp_seconds",
        "Unix time the last successful run of this command ended.",
    ),
    (
        "promsnap_run_success",
        "1 if the last run of this command succeeded (exit code 0), else 0.",
    ),
    (
        "promsnap_run_skipped",
        "1 if the last run of this command skipped its work because another HA replica did it.",
    ),
    (
        "promsnap_run_duration_seconds",
        "How long the last run of this command took.",
    ),
    (
        "promsnap_bytes_uploaded",
        "Archive bytes the last successful backup uploaded.",
    ),
    (
        "promsnap_bytes_reused",
        "Block bytes the last successful backup did not upload because the repository held them.",
    ),
    (
        "promsnap_blocks",
        "Blocks of the last successful backup, by state: new (uploaded) or reused.",
    ),
    (
        "promsnap_snapshots",
        "Snapshots in the repository after the last successful run (verify: snapshots checked).",
    ),
];

#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    /// Sorted by name.
    labels: Vec<(String, String)>,
    value: f64,
}

impl Sample {
    fn same_series(&self, other: &Sample) -> bool {
        self.name == other.name && self.labels == other.labels
    }
}

fn unix_seconds(t: SystemTime) -> f64 {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    (d.as_millis() as f64) / 1000.0
}

/// The samples a run sets (see the module docs for what a failure leaves).
fn samples(run: &RunRecord) -> Vec<Sample> {
    let sample = |name: &str, extra: Option<(&str, &str)>, value: f64| {
        let mut labels = vec![
            ("command".to_string(), run.command.to_string()),
            ("instance".to_string(), run.instance.to_string()),
        ];
        if let Some((k, v)) = extra {
            labels.push((k.to_string(), v.to_string()));
        }
        labels.sort();
        Sample {
            name: name.to_string(),
            labels,
            value,
        }
    };
    let ended = unix_seconds(run.ended);
    let mut out = vec![
        sample("promsnap_last_run_timestamp_seconds", None, ended),
        sample(
            "promsnap_run_duration_seconds",
            None,
            (run.duration.as_millis() as f64) / 1000.0,
        ),
        sample(
            "promsnap_run_success",
            None,
            f64::from(u8::from(run.success)),
        ),
        sample(
            "promsnap_run_skipped",
            None,
            f64::from(u8::from(run.summary.skipped)),
        ),
    ];
    if !run.success {
        return out;
    }
    out.push(sample(
        "promsnap_last_success_timestamp_seconds",
        None,
        ended,
    ));
    let s = run.summary;
    let optional = [
        ("promsnap_bytes_uploaded", None, s.bytes_uploaded),
        ("promsnap_bytes_reused", None, s.bytes_reused),
        ("promsnap_blocks", Some(("state", "new")), s.blocks_new),
        (
            "promsnap_blocks",
            Some(("state", "reused")),
            s.blocks_reused,
        ),
        ("promsnap_snapshots", None, s.snapshots),
    ];
    for (name, extra, value) in optional {
        if let Some(v) = value {
            out.push(sample(name, extra, v as f64));
        }
    }
    out
}

/// A sample's labels, sorted by name.
pub type Labels = Vec<(String, String)>;

/// The samples a run sets, as (name, sorted labels, value): what the file
/// and the Pushgateway get, for `serve`'s /metrics to show the same.
pub fn run_samples(run: &RunRecord) -> Vec<(String, Labels, f64)> {
    samples(run)
        .into_iter()
        .map(|s| (s.name, s.labels, s.value))
        .collect()
}

/// `old` with every series that `new` sets replaced.
fn merge(old: Vec<Sample>, new: Vec<Sample>) -> Vec<Sample> {
    let mut all: Vec<Sample> = old
        .into_iter()
        .filter(|o| !new.iter().any(|n| n.same_series(o)))
        .collect();
    all.extend(new);
    all
}

fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('\n', r"\n")
        .replace('"', "\\\"")
}

/// The text exposition format: each family with HELP and TYPE, then its
/// samples. Samples of names promsnap does not write are dropped.
fn render(samples: &[Sample]) -> String {
    let mut out = String::new();
    for (name, help) in FAMILIES {
        let mut family: Vec<&Sample> = samples.iter().filter(|s| s.name == *name).collect();
        if family.is_empty() {
            continue;
        }
        family.sort_by(|a, b| a.labels.cmp(&b.labels));
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for s in family {
            let labels: Vec<String> = s
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = writeln!(out, "{name}{{{}}} {}", labels.join(","), s.value);
        }
    }
    out
}

/// Reads back what [`render`] wrote. Lines it does not understand are
/// skipped: at worst a sample is lost, never a run.
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let open = line.find(['{', ' '])?;
    let name = &line[..open];
    let mut rest = &line[open..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = after;
        loop {
            rest = rest.trim_start_matches(',');
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after) = rest.split_once("=\"")?;
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    (_, c) => value.push(c),
                }
            };
            labels.push((key.to_string(), value));
            rest = &after[end + 1..];
        }
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    labels.sort();
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Merges this run into the metrics file at `path`, atomically.
pub async fn write_file(path: &Path, run: &RunRecord<'_>) -> Result<()> {
    let path = path.to_path_buf();
    let new = samples(run);
    tokio::task::spawn_blocking(move || write_file_blocking(&path, new))
        .await
        .context("the metrics writer panicked")?
}

fn write_file_blocking(path: &Path, new: Vec<Sample>) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("--metrics-file {} names no file", path.display()))?
        .to_string_lossy()
        .into_owned();
    // Another promsnap (a verify ending while a backup ends) may merge into
    // the same file: take turns, or one of the two runs would be lost.
    let dir_handle = std::fs::File::open(&dir)
        .with_context(|| format!("could not open the metrics directory {}", dir.display()))?;
    dir_handle
        .lock()
        .with_context(|| format!("could not lock {}", dir.display()))?;
    let old = match std::fs::read_to_string(path) {
        Ok(text) => parse(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("could not read {}", path.display())),
    };
    let text = render(&merge(old, new));
    // Not `*.prom`, so the collector never reads the temporary file.
    let tmp = dir.join(format!(".{name}.tmp-{:08x}", rand::random::<u32>()));
    let written = (|| -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        dir_handle.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.with_context(|| format!("could not write {}", path.display()))
}

/// Pushes this run's samples to a Pushgateway.
///
/// The grouping key is job `promsnap`, the instance and the command, so each
/// command's metrics form their own group; the request is a POST, which
/// replaces only the metric names sent (a failed run leaves the last
/// success time alone, as in the file).
pub async fn push(
    gateway: &str,
    run: &RunRecord<'_>,
    retries: u32,
    timeout: Duration,
) -> Result<()> {
    let mut url = reqwest::Url::parse(gateway).map_err(|e| {
        anyhow::Error::new(e).context(Hinted::usage(
            "invalid --pushgateway URL",
            "write it as http://HOST:9091",
        ))
    })?;
    // Credentials in the URL go into a header, never into a message.
    let user = url.username().to_string();
    let password = url.password().map(str::to_string);
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let base = url.as_str().trim_end_matches('/').to_string();
    let target = format!(
        "{base}/metrics/job/promsnap/{}/{}",
        grouping_label("instance", run.instance),
        grouping_label("command", run.command)
    );
    let client = reqwest::Client::builder()
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .timeout(timeout)
        .build()?;
    let body = render(&samples(run));
    let pushed = Retries::new(retries)
        .run(|| async {
            let mut req = client
                .post(&target)
                .header("Content-Type", "text/plain; version=0.0.4")
                .body(body.clone());
            if !user.is_empty() {
                req = req.basic_auth(&user, password.as_deref());
            }
            let resp = match req.send().await {
                Ok(resp) if resp.status().is_success() => return Ok(()),
                Ok(resp) => resp,
                Err(e) => return Err((anyhow::Error::new(e.without_url()), Decision::Retry)),
            };
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            let error = anyhow::anyhow!("HTTP {status}: {}", text.trim());
            if status.is_server_error() || status.as_u16() == 429 {
                return Err((error, Decision::Retry));
            }
            let refused = format!("the Pushgateway at {base} refused the metrics");
            Err((error.context(refused), Decision::Stop))
        })
        .await;
    pushed.map_err(|gave_up| {
        if !gave_up.out_of_retries {
            return gave_up.error;
        }
        gave_up.error.context(format!(
            "could not push the metrics to the Pushgateway at {base} ({} attempts)",
            gave_up.attempts
        ))
    })
}

/// `name/value` for a grouping key, base64url-encoded when the value is not
/// plain (the Pushgateway's `name@base64/...` form).
fn grouping_label(name: &str, value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if plain {
        format!("{name}/{value}")
    } else if value.is_empty() {
        format!("{name}@base64/=")
    } else {
        format!("{name}@base64/{}", base64url(value.as_bytes()))
    }
}

/// URL-safe base64 with padding, as the Pushgateway decodes it.
fn base64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record<'a>(command: &'a str, success: bool, at: u64, s: &'a RunSummary) -> RunRecord<'a> {
        RunRecord {
            command,
            instance: "prom-a",
            success,
            ended: SystemTime::UNIX_EPOCH + Duration::from_secs(at),
            duration: Duration::from_millis(1500),
            summary: s,
        }
    }

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn a_failed_run_keeps_the_last_success_and_other_commands() {
        let summary = RunSummary {
            bytes_uploaded: Some(1000),
            bytes_reused: Some(5000),
            blocks_new: Some(1),
            blocks_reused: Some(4),
            snapshots: Some(7),
            ..RunSummary::default()
        };
        let ok = render(&samples(&record("backup", true, 1000, &summary)));
        let verify = render(&merge(
            parse(&ok),
            samples(&record("verify", true, 1100, &RunSummary::default())),
        ));
        let failed = render(&merge(
            parse(&verify),
            samples(&record("backup", false, 2000, &RunSummary::default())),
        ));
        let b = r#"{command="backup",instance="prom-a"}"#;
        assert_eq!(
            value(
                &failed,
                &format!("promsnap_last_success_timestamp_seconds{b}")
            ),
            Some(1000.0)
        );
        assert_eq!(
            value(&failed, &format!("promsnap_last_run_timestamp_seconds{b}")),
            Some(2000.0)
        );
        assert_eq!(
            value(&failed, &format!("promsnap_run_success{b}")),
            Some(0.0)
        );
        assert_eq!(
            value(&failed, &format!("promsnap_bytes_uploaded{b}")),
            Some(1000.0)
        );
        assert_eq!(
            value(
                &failed,
                r#"promsnap_blocks{command="backup",instance="prom-a",state="reused"}"#
            ),
            Some(4.0)
        );
        assert_eq!(
            value(
                &failed,
                r#"promsnap_run_success{command="verify",instance="prom-a"}"#
            ),
            Some(1.0)
        );
        // One HELP and TYPE per family, samples grouped under it.
        assert_eq!(
            failed.matches("# TYPE promsnap_run_success gauge").count(),
            1
        );
        assert_eq!(parse(&failed).len(), parse(&render(&parse(&failed))).len());
    }

    #[test]
    fn labels_round_trip_through_escaping() {
        let s = RunSummary::default();
        let mut r = record("backup", true, 1, &s);
        r.instance = "we\"ird\\name\nx";
        let text = render(&samples(&r));
        let by_name = |mut v: Vec<Sample>| {
            v.sort_by(|a, b| a.name.cmp(&b.name));
            v
        };
        assert_eq!(by_name(parse(&text)), by_name(samples(&r)));
    }

    #[test]
    fn grouping_keys_encode_what_is_not_plain() {
        assert_eq!(
            grouping_label("instance", "prom-a.eu"),
            "instance/prom-a.eu"
        );
        assert_eq!(grouping_label("instance", "a/b"), "instance@base64/YS9i");
        assert_eq!(grouping_label("instance", ""), "instance@base64/=");
        assert_eq!(base64url(b"\xfb\xff"), "-_8=");
        assert_eq!(base64url(b"hello"), "aGVsbG8=");
    }

    #[tokio::test]
    async fn the_file_is_replaced_atomically_and_merged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("promsnap.prom");
        let s = RunSummary::default();
        write_file(&path, &record("backup", true, 10, &s))
            .await
            .unwrap();
        write_file(&path, &record("backup", false, 20, &s))
            .await
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            value(
                &text,
                r#"promsnap_last_success_timestamp_seconds{command="backup",instance="prom-a"}"#
            ),
            Some(10.0)
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["promsnap.prom"], "temporary files left behind");
    }
}
