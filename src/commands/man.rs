//! Man pages, generated from the same definitions as `--help`
//! (`clap_mangen`), so the two never disagree. The pages committed under
//! `man/` are this command's output (a test fails when they are stale);
//! the Debian package installs them.

use anyhow::{bail, Result};
use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::ExitStatus;
use crate::output::Printer;

pub fn run(command: Option<&str>, printer: &Printer) -> Result<ExitStatus> {
    printer.stdout(&page(command)?)?;
    Ok(ExitStatus::Success)
}

/// promsnap(1), or the page of one subcommand (promsnap-backup(1), ...).
pub fn page(command: Option<&str>) -> Result<String> {
    // The package version only: the commit and build date of `--version`
    // would make the committed pages differ on every build.
    let root = Cli::command().version(env!("CARGO_PKG_VERSION"));
    let cmd = match command {
        None => root,
        Some(name) => {
            let Some(sub) = root.find_subcommand(name) else {
                bail!("promsnap has no subcommand {name:?}");
            };
            // The page's name and the usage line say `promsnap backup`.
            let sub = sub.clone();
            sub.display_name(format!("promsnap-{name}"))
                .version(env!("CARGO_PKG_VERSION"))
                .bin_name(format!("promsnap {name}"))
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .source(format!("promsnap {}", env!("CARGO_PKG_VERSION")))
        .manual("promsnap manual")
        .render(&mut out)?;
    Ok(String::from_utf8(out)?)
}
