//! `promsnap completions <shell>`: the scripts committed under `completions/`
//! are this command's output, and a test fails when they are stale.

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::ExitStatus;
use crate::output::Printer;

pub fn run(shell: clap_complete::Shell, printer: &Printer) -> Result<ExitStatus> {
    printer.stdout(&script(shell))?;
    Ok(ExitStatus::Success)
}

/// The completion script for `shell`.
pub fn script(shell: clap_complete::Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "promsnap", &mut out);
    String::from_utf8(out).expect("completion scripts are UTF-8")
}
