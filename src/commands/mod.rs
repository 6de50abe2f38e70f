//! One module per subcommand, each a thin async fn: take its resolved
//! settings, call the repository layer, print the result. The exit status
//! is returned, not chosen here by exiting, so `main` stays the only place
//! that ends the process.
//!
//! Around every command, an [`Invocation`] does what all of them share:
//! before, it resolves the settings (`settings.rs`, once for the whole run)
//! and takes the local lock (so a run that cannot start changes nothing);
//! after, it records the run's [`Outcome`] as metrics for alerting, whether
//! the command succeeded, failed or was interrupted.

mod backup;
mod check_dir;
mod completions;
mod init;
mod list;
mod prune;
mod restore;
mod unlock;
mod verify;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use anyhow::Result;

use crate::cli::Cli;
use crate::error::{self, ExitStatus};
use crate::metrics::{self, RunRecord, RunSummary};
use crate::output::Printer;
use crate::repo::Repository;
use crate::run_lock::{self, RunLock};
use crate::settings::{CommandSettings, MetricsSettings, Network, RepoSettings, Settings};
use crate::storage::{self, throttle, Storage};

pub use completions::complete_from_env;

/// How a command ended and what it did: the exit status for `main`, the
/// summary for the metrics.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: ExitStatus,
    pub summary: RunSummary,
}

impl From<ExitStatus> for Outcome {
    fn from(status: ExitStatus) -> Self {
        Outcome {
            status,
            summary: RunSummary::default(),
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
            started: Instant::now(),
            _lock: lock,
        })
    }

    /// Runs the command (once).
    pub async fn execute(&mut self, printer: &Printer) -> Result<Outcome> {
        let command = self.command.take().expect("an invocation runs once");
        match command {
            CommandSettings::Backup(s) => backup::run(*s, printer).await,
            CommandSettings::List(s) => list::run(s, printer).await.map(Outcome::from),
            CommandSettings::Restore(s) => restore::run(*s, printer).await.map(Outcome::from),
            CommandSettings::Prune(s) => prune::run(s, printer).await,
            CommandSettings::Unlock(s) => unlock::run(s, printer).await.map(Outcome::from),
            CommandSettings::Verify(s) => verify::run(s, printer).await,
            CommandSettings::CheckDir(s) => check_dir::run(s, printer).await.map(Outcome::from),
            CommandSettings::Init(s) => init::run(s, printer).await.map(Outcome::from),
            CommandSettings::Completions(shell) => {
                completions::run(shell, printer).map(Outcome::from)
            }
        }
    }

    /// Writes the run's metrics (`--metrics-file`, `--pushgateway`) and
    /// passes the result on. Metrics that could not be written turn a
    /// success into exit 3: the backup alert depends on them, and a broken
    /// metrics path should be noticed tonight, not when the alert misfires.
    pub async fn record(&self, result: Result<Outcome>, printer: &Printer) -> Result<ExitStatus> {
        let Some(command) = self.metrics_name else {
            return result.map(|o| o.status);
        };
        let m = &self.metrics;
        if m.file.is_none() && m.pushgateway.is_none() {
            return result.map(|o| o.status);
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
        let mut recorded = true;
        if let Some(path) = &m.file {
            if let Err(e) = metrics::write_file(path, &run).await {
                printer.warn(&format!("could not write the metrics file: {e:#}"));
                recorded = false;
            }
        }
        if let Some(url) = &m.pushgateway {
            let net = self.network;
            if let Err(e) = metrics::push(url, &run, net.retries, net.timeout).await {
                printer.warn(&format!("could not push the metrics: {e:#}"));
                recorded = false;
            }
        }
        match result {
            Ok(o) if o.status == ExitStatus::Success && !recorded => Ok(ExitStatus::Problems),
            other => other.map(|o| o.status),
        }
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
