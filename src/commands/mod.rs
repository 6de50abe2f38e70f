//! One module per subcommand, each a thin async fn: resolve settings, call
//! the repository layer, print the result. The exit status is returned, not
//! chosen here by exiting, so `main` stays the only place that ends the
//! process.
//!
//! Around every command, an [`Invocation`] does what all of them share:
//! before, it reads the configuration and takes the local lock (so a run
//! that cannot start changes nothing); after, it records the run's
//! [`Outcome`] as metrics for alerting, whether the command succeeded,
//! failed or was interrupted.

mod backup;
mod check_dir;
mod completions;
mod list;
pub(crate) mod prune;
mod restore;
mod unlock;
mod verify;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use anyhow::Result;

use crate::cli::{Cli, Command, RepoArgs};
use crate::error::{self, ExitStatus};
use crate::metrics::{self, RunRecord, RunSummary};
use crate::output::Printer;
use crate::repo::Repository;
use crate::run_lock::{self, RunLock};
use crate::settings::{self, FileConfig};
use crate::storage::{self, throttle, Location};

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

/// One run of promsnap, ready to execute: configuration read, lock held.
pub struct Invocation {
    command: Option<Command>,
    file: FileConfig,
    /// The command's name in metrics, for the commands that write them.
    metrics_name: Option<&'static str>,
    instance: String,
    started: Instant,
    _lock: Option<RunLock>,
}

impl Invocation {
    /// Everything that can stop a run before it starts: the configuration
    /// and the local lock. A run stopped here writes no metrics; in
    /// particular a run locked out by another one did nothing, and the one
    /// holding the lock reports.
    pub fn prepare(cli: Cli) -> Result<Invocation> {
        let mut file = FileConfig::load(cli.global.config.as_deref())?;
        file.apply_global_flags(&cli.global);
        settings::network(&file)?;
        let command = cli.command;
        let (metrics_name, instance_flag) = match &command {
            Command::Backup(a) => (Some("backup"), a.instance.as_deref()),
            Command::Prune(a) => (Some("prune"), a.instance.as_deref()),
            Command::Verify(a) => (Some("verify"), a.instance.as_deref()),
            Command::Restore(a) => (Some("restore"), a.instance.as_deref()),
            _ => (None, None),
        };
        let instance = settings::instance_name(instance_flag, &file);
        let lock = match lock_path(&command, &file) {
            Some(path) => Some(run_lock::acquire(
                &path,
                metrics_name.unwrap_or("promsnap"),
            )?),
            None => None,
        };
        Ok(Invocation {
            command: Some(command),
            file,
            metrics_name,
            instance,
            started: Instant::now(),
            _lock: lock,
        })
    }

    /// Runs the command (once).
    pub async fn execute(&mut self, printer: &Printer) -> Result<Outcome> {
        let command = self.command.take().expect("an invocation runs once");
        let file = &self.file;
        match command {
            Command::Backup(args) => backup::run(args, file, printer).await,
            Command::List(args) => list::run(args, file, printer).await.map(Outcome::from),
            Command::Restore(args) => restore::run(args, file, printer).await.map(Outcome::from),
            Command::Prune(args) => prune::run(args, file, printer).await,
            Command::Unlock(args) => unlock::run(args, file, printer).await.map(Outcome::from),
            Command::Verify(args) => verify::run(args, file, printer).await,
            Command::CheckDir(args) => check_dir::run(args, printer).await.map(Outcome::from),
            Command::Completions { shell } => completions::run(shell, printer).map(Outcome::from),
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
        let m = &self.file.metrics;
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
            let net = settings::network(&self.file)?;
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

/// The local lock file for the commands that take one (see `run_lock`):
/// a backup locks its Prometheus, prune and verify their repository.
fn lock_path(command: &Command, file: &FileConfig) -> Option<PathBuf> {
    let repo = match command {
        Command::Backup(a) => &a.repo,
        Command::Prune(a) => &a.repo,
        Command::Verify(a) => &a.repo,
        _ => return None,
    };
    if let Some(path) = &file.lock.file {
        return Some(path.clone());
    }
    // Without a repository the command fails on its own, lock or not.
    let url = repo.repo.clone().or_else(|| file.repository.url.clone())?;
    Location::parse(&url).ok()?;
    let endpoint = repo
        .s3_endpoint
        .clone()
        .or_else(|| file.repository.s3_endpoint.clone())
        .unwrap_or_default();
    let repo_key = format!("{url}\n{endpoint}");
    let (dir, key) = match command {
        Command::Backup(a) => match &a.from_dir {
            Some(dir) => (None, format!("backup\n{}\n{repo_key}", dir.display())),
            None => (
                a.data_dir
                    .clone()
                    .or_else(|| file.prometheus.data_dir.clone()),
                format!(
                    "backup\n{}\n{repo_key}",
                    settings::prometheus_urls(&a.prometheus, file).join(",")
                ),
            ),
        },
        // Never inside the repository: a dry run must not change it, and
        // a repository may be shared by hosts whose flocks do not meet.
        _ => (None, repo_key),
    };
    Some(run_lock::default_path(dir.as_deref(), &key))
}

/// Opens the repository named by `--repo` (or env, or the config file),
/// paced by `--max-bandwidth` when given.
async fn open_repo(args: &RepoArgs, file: &FileConfig) -> Result<Repository> {
    let s = settings::repo_settings(args, file)?;
    let mut storage = storage::open(&s.location, &s.s3).await?;
    if let Some(rate) = s.max_bandwidth {
        storage = Arc::new(throttle::Throttled::new(storage, throttle::shared(rate)));
    }
    Ok(Repository::new(storage))
}
