//! `promsnap unlock`: remove stale (or, with --all, every) repository lock.

use anyhow::Result;

use crate::error::ExitStatus;
use crate::output::Printer;
use crate::settings::UnlockSettings;

pub async fn run(args: UnlockSettings, printer: &Printer) -> Result<ExitStatus> {
    let repo = super::open_repo(&args.repo).await?;
    let found = repo.unlock(args.all).await?;
    for lock in &found {
        match lock.removed {
            true => printer.info(&format!("removed lock of {}", lock.what)),
            false => printer.info(&format!(
                "kept live lock of {} (use --all to remove it anyway)",
                lock.what
            )),
        }
    }
    let removed = found.iter().filter(|l| l.removed).count();
    printer.info(&format!("{removed} lock(s) removed"));
    Ok(ExitStatus::Success)
}
