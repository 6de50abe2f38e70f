//! What `serve`'s /metrics shows: the samples the textfile and the
//! Pushgateway get (`crate::metrics`, the same names, labels and values, so
//! one set of alert rules serves both), plus what only a long-running
//! process can count: runs by result, bytes uploaded, run durations, the
//! next scheduled run and what its group stores. Encoded by
//! `prometheus-client` in the OpenMetrics text format.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::metrics::{self, RunRecord};

type Labels = Vec<(String, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

/// How a run ended, as `promsnap_serve_runs_total` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunResult {
    Success,
    /// Another replica of the HA group stored the backup.
    Skipped,
    Failure,
    /// Another promsnap held the lock: nothing was done.
    Busy,
    /// Stopped by SIGTERM after the shutdown grace.
    Aborted,
}

impl RunResult {
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Success => "success",
            RunResult::Skipped => "skipped",
            RunResult::Failure => "failure",
            RunResult::Busy => "busy",
            RunResult::Aborted => "aborted",
        }
    }
}

pub struct Metrics {
    registry: Registry,
    /// The textfile's families, by name.
    last_run: HashMap<&'static str, Family<Labels, FloatGauge>>,
    runs: Family<Labels, Counter>,
    uploaded: Counter,
    durations: Family<Labels, Histogram>,
    next_run: FloatGauge,
    /// By group: one, unless the service's HA group changed.
    group_stored: Family<Labels, FloatGauge>,
    running: Gauge,
    /// Encoding takes the registry by reference; serialise scrapes.
    encode_lock: Mutex<()>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let mut last_run = HashMap::new();
        for (name, help) in metrics::FAMILIES {
            let family = Family::<Labels, FloatGauge>::default();
            registry.register(*name, *help, family.clone());
            last_run.insert(*name, family);
        }
        let runs = Family::<Labels, Counter>::default();
        registry.register(
            "promsnap_serve_runs",
            "Runs of promsnap serve since it started, by command and result (success, skipped, failure, busy, aborted).",
            runs.clone(),
        );
        let uploaded = Counter::default();
        registry.register(
            "promsnap_serve_uploaded_bytes",
            "Bytes the backups of promsnap serve uploaded since it started.",
            uploaded.clone(),
        );
        let durations = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(1.0, 2.0, 16))
        });
        registry.register(
            "promsnap_serve_run_duration_seconds",
            "How long the runs of promsnap serve took, by command.",
            durations.clone(),
        );
        let next_run = FloatGauge::default();
        registry.register(
            "promsnap_serve_next_run_timestamp_seconds",
            "Unix time of the next scheduled backup.",
            next_run.clone(),
        );
        let group_stored = Family::<Labels, FloatGauge>::default();
        registry.register(
            "promsnap_group_stored_bytes",
            "Bytes the manifests, recipes and packs of this service's group (its HA group, else its instance) take in the repository, measured after the last backup.",
            group_stored.clone(),
        );
        let running = Gauge::default();
        registry.register(
            "promsnap_serve_running",
            "1 while a run of promsnap serve is in progress.",
            running.clone(),
        );
        Metrics {
            registry,
            last_run,
            runs,
            uploaded,
            durations,
            next_run,
            group_stored,
            running,
            encode_lock: Mutex::new(()),
        }
    }

    /// A finished run: the textfile's samples and the counters.
    pub fn record(&self, run: &RunRecord, result: RunResult) {
        for (name, labels, value) in metrics::run_samples(run) {
            if let Some(family) = self.last_run.get(name.as_str()) {
                family.get_or_create(&labels).set(value);
            }
        }
        self.count(run.command, result);
        self.durations
            .get_or_create(&vec![("command".into(), run.command.into())])
            .observe(run.duration.as_secs_f64());
        if let Some(bytes) = run.summary.bytes_uploaded.filter(|_| run.success) {
            self.uploaded.inc_by(bytes);
        }
    }

    /// A run counted without samples (busy: it did nothing).
    pub fn count(&self, command: &str, result: RunResult) {
        let labels = vec![
            ("command".to_string(), command.to_string()),
            ("result".to_string(), result.as_str().to_string()),
        ];
        self.runs.get_or_create(&labels).inc();
    }

    pub fn set_next_run(&self, unix_seconds: f64) {
        self.next_run.set(unix_seconds);
    }

    pub fn set_group_stored_bytes(&self, group: &str, bytes: u64) {
        self.group_stored
            .get_or_create(&vec![("group".into(), group.into())])
            .set(bytes as f64);
    }

    pub fn set_running(&self, running: bool) {
        self.running.set(i64::from(running));
    }

    /// The exposition text.
    pub fn encode(&self) -> String {
        let _guard = self.encode_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::RunSummary;
    use std::time::{Duration, SystemTime};

    #[test]
    fn a_run_shows_the_textfile_samples_and_the_counters() {
        let m = Metrics::new();
        let summary = RunSummary {
            bytes_uploaded: Some(1000),
            snapshots: Some(3),
            ..RunSummary::default()
        };
        let run = RunRecord {
            command: "backup",
            instance: "prom-a",
            success: true,
            ended: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            duration: Duration::from_secs(3),
            summary: &summary,
        };
        m.record(&run, RunResult::Success);
        m.record(&run, RunResult::Success);
        m.count("backup", RunResult::Busy);
        m.set_group_stored_bytes("pair-1", 12345);
        let text = m.encode();
        for line in [
            "promsnap_last_success_timestamp_seconds{command=\"backup\",instance=\"prom-a\"} 1800000000.0",
            "promsnap_run_success{command=\"backup\",instance=\"prom-a\"} 1.0",
            "promsnap_snapshots{command=\"backup\",instance=\"prom-a\"} 3.0",
            "promsnap_serve_runs_total{command=\"backup\",result=\"success\"} 2",
            "promsnap_serve_runs_total{command=\"backup\",result=\"busy\"} 1",
            "promsnap_serve_uploaded_bytes_total 2000",
            "promsnap_serve_run_duration_seconds_count{command=\"backup\"} 2",
            "promsnap_group_stored_bytes{group=\"pair-1\"} 12345.0",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
