//! `promsnap serve`: the long-running mode, for a sidecar next to
//! Prometheus or a systemd service.
//!
//! One loop owns the runs: it sleeps until the schedule's next time (plus
//! the random delay) or a trigger from the HTTP endpoint, then runs
//! `backup` (which prunes with `--prune`) and, with `--verify`, verifies the
//! new snapshot. Runs never overlap: the loop runs one at a time, and each
//! run takes the local lock `backup` takes, so a cron job's backup of the
//! same Prometheus and the service's exclude each other (the one that finds
//! the lock taken does nothing, and the service counts it as `busy`).
//!
//! Each run resolves its backup settings afresh (a new snapshot time,
//! secret files read again), records the same metrics a one-shot run
//! records (`--metrics-file`, `--pushgateway`) and shows them on /metrics
//! with the service's own counters ([`metrics`]).
//!
//! Signals are handled here, not in `main`: SIGTERM or Ctrl-C stops the
//! schedule; a running backup gets `--shutdown-grace` to finish, and is
//! then dropped, which aborts it the way an interrupted one-shot backup is
//! aborted (its drop guards remove the local snapshot and abort multipart
//! uploads, and no manifest is written). Either way serve exits 0: stopping
//! is what it was asked to do.

mod http;
mod metrics;

use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{watch, Notify};

use super::Outcome;
use crate::error::{self, ExitStatus};
use crate::metrics::{RunRecord, RunSummary};
use crate::output::Printer;
use crate::settings::{self, MetricsSettings, Network, ServeSettings};
use crate::storage;
use metrics::{Metrics, RunResult};

/// What the HTTP handlers and the loop share.
pub struct State {
    metrics: Metrics,
    /// A backup is running.
    running: AtomicBool,
    /// A trigger is waiting for the loop.
    pending: AtomicBool,
    trigger: Notify,
    /// SIGTERM arrived: not ready any more, no new triggers.
    stopping: AtomicBool,
    token: Option<String>,
}

/// Why a run started.
#[derive(Debug, Clone, Copy)]
enum Reason {
    Scheduled,
    Triggered,
}

pub async fn run(s: ServeSettings, quiet: bool) -> Result<Outcome> {
    let printer = Printer::service(quiet, s.log_format == crate::cli::LogFormat::Json);
    let state = Arc::new(State {
        metrics: Metrics::new(),
        running: AtomicBool::new(false),
        pending: AtomicBool::new(false),
        trigger: Notify::new(),
        stopping: AtomicBool::new(false),
        token: s.trigger_token.clone(),
    });
    let mut shutdown = pin!(shutdown_signal());
    let (stop_http, http_stopped) = watch::channel(false);
    let server = http::start(&s.listen_address, state.clone(), http_stopped).await?;
    let mut fields = Map::new();
    fields.insert("listen_address".into(), server.address.to_string().into());
    fields.insert("schedule".into(), s.schedule.to_string().into());
    fields.insert("trigger".into(), s.trigger_token.is_some().into());
    printer.log(
        "info",
        &format!(
            "serving /metrics, /-/healthy, /-/ready{} on http://{}; backups at {}",
            if s.trigger_token.is_some() {
                " and POST /api/v1/backup"
            } else {
                ""
            },
            server.address,
            s.schedule
        ),
        fields,
    );
    loop {
        let next = next_run(&s)?;
        state.metrics.set_next_run(unix_seconds(next));
        printer.log(
            "info",
            &format!("next backup at {}", next.format("%Y-%m-%d %H:%M:%S UTC")),
            obj(json!({ "next_run": next.to_rfc3339() })),
        );
        let reason = tokio::select! {
            () = sleep_until(next) => Reason::Scheduled,
            () = state.trigger.notified() => Reason::Triggered,
            () = &mut shutdown => break,
        };
        state.pending.store(false, Ordering::SeqCst);
        let mut work = Box::pin(run_once(&s, &state, &printer, reason));
        tokio::select! {
            () = &mut work => continue,
            () = &mut shutdown => {}
        }
        state.stopping.store(true, Ordering::SeqCst);
        printer.log(
            "info",
            &format!(
                "stopping: letting the running backup finish (up to {})",
                crate::duration::Duration(s.shutdown_grace)
            ),
            Map::new(),
        );
        let finished = tokio::time::timeout(s.shutdown_grace, &mut work).await;
        if finished.is_err() {
            printer.log(
                "warning",
                "the backup did not finish within --shutdown-grace: aborting it (no snapshot is \
                 stored; the next run uploads what is missing)",
                Map::new(),
            );
            // Dropping the run aborts it: its guards remove the local
            // snapshot and abort multipart uploads.
            drop(work);
            storage::cleanup::wait(Duration::from_secs(10)).await;
            state.metrics.count("backup", RunResult::Aborted);
        }
        break;
    }
    state.stopping.store(true, Ordering::SeqCst);
    let _ = stop_http.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), server.task).await;
    printer.log("info", "stopped", Map::new());
    Ok(Outcome::from(ExitStatus::Success))
}

/// The next scheduled time after now, with the random delay added.
fn next_run(s: &ServeSettings) -> Result<DateTime<Utc>> {
    let at = s.schedule.next_after(Utc::now())?;
    let max = s.random_delay.as_millis() as u64;
    let delay = match max {
        0 => 0,
        _ => rand::random_range(0..=max),
    };
    Ok(at + chrono::Duration::milliseconds(delay as i64))
}

async fn sleep_until(at: DateTime<Utc>) {
    let wait = (at - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait).await;
}

/// SIGTERM or SIGINT, whichever comes first. The handlers are installed
/// now, not when the future is first polled, so no signal is missed.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => std::future::pending().await,
        }
    }
}

/// One backup (and verify): lock, run, record.
async fn run_once(s: &ServeSettings, state: &State, printer: &Printer, reason: Reason) {
    let started = Instant::now();
    let why = match reason {
        Reason::Scheduled => "scheduled",
        Reason::Triggered => "triggered",
    };
    let _lock = match &s.lock_file {
        Some(path) => match crate::run_lock::acquire(path, "serve") {
            Ok(lock) => Some(lock),
            Err(e) => {
                printer.error(&e);
                printer.log(
                    "warning",
                    "backup skipped: another promsnap holds the lock",
                    obj(json!({ "reason": why, "result": "busy" })),
                );
                state.metrics.count("backup", RunResult::Busy);
                return;
            }
        },
        None => None,
    };
    state.running.store(true, Ordering::SeqCst);
    state.metrics.set_running(true);
    let _running = Running(state);
    printer.log(
        "info",
        &format!("backup started ({why})"),
        obj(json!({ "reason": why })),
    );
    // A setting that no longer resolves (a secret file gone) fails the run
    // like any other failure: logged, counted, recorded.
    let backup = match s.plan.resolve() {
        Ok(b) => b,
        Err(e) => {
            record(s, state, printer, "backup", started, &Err(e)).await;
            return;
        }
    };
    let repo = backup.repo.clone();
    let result = super::backup::run(backup, printer).await;
    let summary = record(s, state, printer, "backup", started, &result).await;
    let Some(summary) = summary else { return };
    if let Some(group) = &summary.group {
        let measured = match super::open_repo(&repo).await {
            Ok(r) => r.group_stored_bytes(group).await,
            Err(e) => Err(e),
        };
        match measured {
            Ok(bytes) => state.metrics.set_group_stored_bytes(group, bytes),
            Err(e) => printer.warn(&format!("could not measure what {group} stores: {e:#}")),
        }
    }
    let (Some(level), false) = (s.verify, summary.skipped) else {
        return;
    };
    let instance = summary.instance.unwrap_or_else(|| s.instance.clone());
    let started = Instant::now();
    let verify = settings::verify_after_backup(repo, instance, level);
    let result = super::verify::run(verify, printer).await;
    record(s, state, printer, "verify", started, &result).await;
}

/// Marks the run over however it ends (also when dropped on shutdown).
struct Running<'a>(&'a State);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::SeqCst);
        self.0.metrics.set_running(false);
    }
}

/// Logs how a run ended and records its metrics (file, Pushgateway,
/// /metrics). Returns the summary of a successful run.
async fn record(
    s: &ServeSettings,
    state: &State,
    printer: &Printer,
    command: &'static str,
    started: Instant,
    result: &Result<Outcome>,
) -> Option<RunSummary> {
    let none = RunSummary::default();
    let (status, summary) = match result {
        Ok(o) => (o.status, &o.summary),
        Err(e) => (error::status_of(e), &none),
    };
    let success = status == ExitStatus::Success;
    let run = RunRecord {
        command,
        instance: summary.instance.as_deref().unwrap_or(&s.instance),
        success,
        ended: SystemTime::now(),
        duration: started.elapsed(),
        summary,
    };
    let outcome = match (success, summary.skipped) {
        (true, true) => RunResult::Skipped,
        (true, false) => RunResult::Success,
        (false, _) => RunResult::Failure,
    };
    state.metrics.record(&run, outcome);
    if let Err(e) = result {
        printer.error(e);
    }
    let mut fields = obj(json!({
        "command": command,
        "instance": run.instance,
        "result": outcome.as_str(),
        "exit_code": status.code(),
        "duration_seconds": run.duration.as_secs_f64(),
    }));
    if let Some(bytes) = summary.bytes_uploaded {
        fields.insert("bytes_uploaded".into(), bytes.into());
    }
    let level = if success { "info" } else { "error" };
    printer.log(
        level,
        &format!(
            "{command} {} in {:.1}s",
            match outcome {
                RunResult::Success => "succeeded",
                RunResult::Skipped => "skipped (another HA replica stored the backup)",
                _ => "failed",
            },
            run.duration.as_secs_f64()
        ),
        fields,
    );
    for why in write_metrics(&s.metrics, s.network, &run).await {
        printer.warn(&why);
    }
    success.then(|| summary.clone())
}

/// `--metrics-file` and `--pushgateway`, as a one-shot run writes them.
async fn write_metrics(m: &MetricsSettings, net: Network, run: &RunRecord<'_>) -> Vec<String> {
    let mut failures = Vec::new();
    if let Some(path) = &m.file {
        if let Err(e) = crate::metrics::write_file(path, run).await {
            failures.push(format!("could not write the metrics file: {e:#}"));
        }
    }
    if let Some(url) = &m.pushgateway {
        if let Err(e) = crate::metrics::push(url, run, net.retries, net.timeout).await {
            failures.push(format!("could not push the metrics: {e:#}"));
        }
    }
    failures
}

fn unix_seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
