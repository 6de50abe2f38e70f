//! One module per subcommand, each a thin async fn: take its resolved
//! settings, call the repository layer, print the result. The exit status
//! is returned, not chosen here by exiting, so `main` stays the only place
//! that ends the process.
//!
//! Around every command, an [`Invocation`] does what all of them share:
//! before, it resolves the settings (`settings.rs`, once for the whole run)
//! and takes the local lock (so a run that cannot start changes nothing);
//! after, it records the run's [`Outcome`] as metrics for alerting, whether
//! the command succeeded, failed or was interrupted. Last, [`conclude`] says
//! how the run ended: the error on stderr, and with `--json` the one
//! document on stdout (`crate::json`), printed only now because whether the
//! metrics were recorded is part of it.

mod backup;
mod check_dir;
mod completions;
mod init;
mod list;
mod man;
mod prune;
mod restore;
mod serve;
mod unlock;
mod verify;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::error::{self, ExitStatus, Interrupted};
use crate::json::{self, Document};
use crate::metrics::{self, RunRecord, RunSummary};
use crate::output::Printer;
use crate::repo::Repository;
use crate::run_lock::{self, RunLock};
use crate::settings::{CommandSettings, MetricsSettings, Network, RepoSettings, Settings};
use crate::storage::{self, throttle, Storage};

pub use completions::complete_from_env;

/// How a command ended and what it did: the exit status for `main`, the
/// summary for the metrics, and with `--json` the command's document.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: ExitStatus,
    pub summary: RunSummary,
    /// The fields of the `--json` document (printed by [`conclude`]).
    pub document: Option<Document>,
}

impl From<ExitStatus> for Outcome {
    fn from(status: ExitStatus) -> Self {
        Outcome {
            status,
            summary: RunSummary::default(),
            document: None,
        }
    }
}

impl Outcome {
    /// With `--json`, the document `fields` make; without it, none.
    pub fn with_document(mut self, json: bool, fields: &impl serde::Serialize) -> Result<Self> {
        if json {
            self.document = Some(Document::new(fields)?);
        }
        Ok(self)
    }
}

/// What the command line asked for, known before any setting is resolved:
/// even a run that cannot start answers `--json` with a JSON document.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    /// The subcommand's name, as typed.
    pub command: &'static str,
    pub json: bool,
}

impl Request {
    pub fn of(cli: &Cli) -> Request {
        let (command, json) = match &cli.command {
            Command::Init(a) => ("init", a.json),
            Command::Backup(a) => ("backup", a.json),
            Command::List(a) => ("list", a.json),
            Command::Restore(a) => ("restore", a.json),
            Command::Prune(a) => ("prune", a.json),
            Command::Verify(a) => ("verify", a.json),
            Command::CheckDir(a) => ("check-dir", a.json),
            Command::Unlock(_) => ("unlock", false),
            Command::Serve(_) => ("serve", false),
            Command::Completions { .. } => ("completions", false),
            Command::Man { .. } => ("man", false),
        };
        Request { command, json }
    }
}

/// A run that has ended, with its metrics recorded (or not).
pub struct Finished {
    pub result: Result<Outcome>,
    /// Why the metrics asked for (`--metrics-file`, `--pushgateway`) could
    /// not be recorded.
    pub metrics_error: Option<String>,
    /// Whether this command records metrics at all (backup, prune, verify,
    /// restore): its document then has a `metrics_error` field.
    pub records_metrics: bool,
}

impl Finished {
    /// A run that failed before it could record anything.
    pub fn failed(err: anyhow::Error) -> Finished {
        Finished {
            result: Err(err),
            metrics_error: None,
            records_metrics: false,
        }
    }
}

/// One run of promsnap, ready to execute: settings resolved, lock held.
pub struct Invocation {
    command: Option<CommandSettings>,
    /// The command's name in metrics, for the commands that write them.
    metrics_name: Option<&'static str>,
    metrics: MetricsSettings,
    network: Network,
    instance: String,
    quiet: bool,
    started: Instant,
    _lock: Option<RunLock>,
}

impl Invocation {
    /// Everything that can stop a run before it starts: the settings and
    /// the local lock. A run stopped here writes no metrics; in particular
    /// a run locked out by another one did nothing, and the one holding the
    /// lock reports.
    pub fn prepare(cli: Cli) -> Result<Invocation> {
        let settings = Settings::resolve(cli)?;
        let metrics_name = settings.command.metrics_name();
        let lock = match &settings.lock_file {
            Some(path) => Some(run_lock::acquire(path, metrics_name.unwrap_or("promsnap"))?),
            None => None,
        };
        Ok(Invocation {
            command: Some(settings.command),
            metrics_name,
            metrics: settings.metrics,
            network: settings.network,
            instance: settings.instance,
            quiet: settings.quiet,
            started: Instant::now(),
            _lock: lock,
        })
    }

    /// Whether the command handles SIGTERM and Ctrl-C itself (`serve`
    /// stops on them and exits 0) instead of being cancelled by `main`.
    pub fn handles_signals(&self) -> bool {
        matches!(self.command, Some(CommandSettings::Serve(_)))
    }

    /// Runs the command (once).
    pub async fn execute(&mut self, printer: &Printer) -> Result<Outcome> {
        let command = self.command.take().expect("an invocation runs once");
        match command {
            CommandSettings::Backup(s) => backup::run(*s, printer).await,
            CommandSettings::List(s) => list::run(s, printer).await,
            CommandSettings::Restore(s) => restore::run(*s, printer).await,
            CommandSettings::Prune(s) => prune::run(s, printer).await,
            CommandSettings::Unlock(s) => unlock::run(s, printer).await.map(Outcome::from),
            CommandSettings::Verify(s) => verify::run(s, printer).await,
            CommandSettings::CheckDir(s) => check_dir::run(s, printer).await,
            CommandSettings::Init(s) => init::run(s, printer).await,
            CommandSettings::Serve(s) => serve::run(*s, self.quiet).await,
            CommandSettings::Completions(shell) => {
                completions::run(shell, printer).map(Outcome::from)
            }
            CommandSettings::Man(command) => {
                man::run(command.as_deref(), printer).map(Outcome::from)
            }
        }
    }

    /// Writes the run's metrics (`--metrics-file`, `--pushgateway`) and
    /// passes the result on, with why they could not be recorded if so.
    pub async fn record(&self, result: Result<Outcome>) -> Finished {
        let m = &self.metrics;
        let Some(command) = self.metrics_name else {
            return Finished::unrecorded(result, false);
        };
        if m.file.is_none() && m.pushgateway.is_none() {
            return Finished::unrecorded(result, true);
        }
        let none = RunSummary::default();
        let (status, summary) = match &result {
            Ok(o) => (o.status, &o.summary),
            Err(e) => (error::status_of(e), &none),
        };
        let run = RunRecord {
            command,
            instance: summary.instance.as_deref().unwrap_or(&self.instance),
            success: status == ExitStatus::Success,
            ended: SystemTime::now(),
            duration: self.started.elapsed(),
            summary,
        };
        let mut failures = Vec::new();
        if let Some(path) = &m.file {
            if let Err(e) = metrics::write_file(path, &run).await {
                failures.push(format!("could not write the metrics file: {e:#}"));
            }
        }
        if let Some(url) = &m.pushgateway {
            let net = self.network;
            if let Err(e) = metrics::push(url, &run, net.retries, net.timeout).await {
                failures.push(format!("could not push the metrics: {e:#}"));
            }
        }
        Finished {
            result,
            metrics_error: (!failures.is_empty()).then(|| failures.join("; ")),
            records_metrics: true,
        }
    }
}

impl Finished {
    /// A run whose metrics were not asked for.
    fn unrecorded(result: Result<Outcome>, records_metrics: bool) -> Finished {
        Finished {
            result,
            metrics_error: None,
            records_metrics,
        }
    }
}

/// Ends a run: says how it went and returns the exit status. Errors go to
/// stderr as "error, causes, hint"; with `--json`, stdout gets the one
/// document, the error document when the run failed. Metrics that could not
/// be recorded turn a success into exit 3 (the alerts depend on them, and a
/// broken metrics path should be noticed tonight, not when the alert
/// misfires), said on one line.
pub fn conclude(request: &Request, finished: Finished, printer: &Printer) -> ExitStatus {
    let Finished {
        result,
        metrics_error,
        records_metrics,
    } = finished;
    let (status, document) = match result {
        Ok(outcome) => {
            let mut status = outcome.status;
            match (&metrics_error, status) {
                (Some(why), ExitStatus::Success) => {
                    status = ExitStatus::Problems;
                    printer.error(&anyhow::anyhow!(
                        "{}, but its metrics were not recorded, so it exits 3: {why}",
                        succeeded(request.command)
                    ));
                }
                (Some(why), _) => printer.warn(why),
                (None, _) => {}
            }
            let fields = outcome.document.unwrap_or_default();
            let metrics = records_metrics.then_some(metrics_error.as_deref());
            (
                status,
                json::finished(request.command, status, fields, metrics),
            )
        }
        Err(err) => {
            if err.downcast_ref::<Interrupted>().is_some() {
                eprintln!("interrupted: {}", json::INTERRUPTED_HINT);
            } else {
                printer.error(&err);
            }
            if let Some(why) = &metrics_error {
                printer.warn(why);
            }
            let status = error::status_of(&err);
            (
                status,
                json::failed(request.command, &err, metrics_error.as_deref()),
            )
        }
    };
    if !request.json {
        return status;
    }
    // A document already streaming (`list --json`) gets its end instead.
    let printed = json::close_stdout_stream(&document).unwrap_or_else(|| printer.json(&document));
    match printed {
        Ok(()) => status,
        Err(e) => {
            printer.error(&e.context("could not print the JSON document"));
            ExitStatus::Failure
        }
    }
}

/// What a command that succeeded did, for the line that says why it still
/// exits 3.
fn succeeded(command: &str) -> String {
    match command {
        "verify" => "verify found no problems".into(),
        "backup" => "the backup succeeded".into(),
        "restore" => "the restore succeeded".into(),
        other => format!("{other} succeeded"),
    }
}

/// The storage the settings name, paced by `--max-bandwidth` when given.
async fn open_storage(s: &RepoSettings) -> Result<Arc<dyn Storage>> {
    let mut storage = storage::open(&s.location, &s.s3).await?;
    if let Some(rate) = s.max_bandwidth {
        storage = Arc::new(throttle::Throttled::new(storage, throttle::shared(rate)));
    }
    Ok(storage)
}

/// Opens the repository the settings name; a location without one is a
/// usage error (exit 2) that says how to create one.
async fn open_repo(s: &RepoSettings) -> Result<Repository> {
    let storage = open_storage(s).await?;
    Ok(Repository::open(storage, &s.url, false, false).await?.0)
}
