//! `promsnap unlock`: remove stale (or, with --all, every) repository lock.

use anyhow::Result;

use crate::cli::UnlockArgs;
use crate::error::ExitStatus;
use crate::output::Printer;
use crate::settings::FileConfig;

pub async fn run(args: UnlockArgs, file: &FileConfig, printer: &Printer) -> Result<ExitStatus> {
    let repo = super::open_repo(&args.repo, file).await?;
    let now = chrono::Utc::now();
    let mut removed = 0;
    for (key, info) in repo.locks().await? {
        let stale = info.as_ref().is_none_or(|i| i.is_stale(now));
        let what = info
            .as_ref()
            .map_or("an unreadable lock".to_string(), |i| i.describe());
        if stale || args.all {
            repo.storage().delete(&key).await?;
            printer.info(&format!("removed lock of {what}"));
            removed += 1;
        } else {
            printer.info(&format!(
                "kept live lock of {what} (use --all to remove it anyway)"
            ));
        }
    }
    printer.info(&format!("{removed} lock(s) removed"));
    Ok(ExitStatus::Success)
}
