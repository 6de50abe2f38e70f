//! One module per subcommand, each a thin async fn: resolve settings, call
//! the repository layer, print the result. The exit status is returned, not
//! chosen here by exiting, so `main` stays the only place that ends the
//! process.

mod backup;
mod check_dir;
mod completions;
mod list;
pub(crate) mod prune;
mod restore;
mod unlock;
mod verify;

use anyhow::Result;

use crate::cli::{Cli, Command, RepoArgs};
use crate::error::ExitStatus;
use crate::output::Printer;
use crate::repo::Repository;
use crate::settings::{self, FileConfig};
use crate::storage;

pub async fn run(cli: Cli, printer: &Printer) -> Result<ExitStatus> {
    let file = FileConfig::load(cli.global.config.as_deref())?;
    match cli.command {
        Command::Backup(args) => backup::run(args, &file, printer).await,
        Command::List(args) => list::run(args, &file, printer).await,
        Command::Restore(args) => restore::run(args, &file, printer).await,
        Command::Prune(args) => prune::run(args, &file, printer).await,
        Command::Unlock(args) => unlock::run(args, &file, printer).await,
        Command::Verify(args) => verify::run(args, &file, printer).await,
        Command::CheckDir(args) => check_dir::run(args, printer).await,
        Command::Completions { shell } => completions::run(shell, printer),
    }
}

/// Opens the repository named by `--repo` (or env, or the config file).
async fn open_repo(args: &RepoArgs, file: &FileConfig) -> Result<Repository> {
    let s = settings::repo_settings(args, file)?;
    let storage = storage::open(&s.location, &s.s3).await?;
    Ok(Repository::new(storage))
}
