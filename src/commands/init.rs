//! `promsnap init`: make a location a promsnap repository.

use anyhow::Result;

use crate::error::ExitStatus;
use crate::output::Printer;
use crate::repo::Repository;
use crate::settings::InitSettings;

pub async fn run(args: InitSettings, printer: &Printer) -> Result<ExitStatus> {
    let storage = super::open_storage(&args.repo).await?;
    let location = storage.describe();
    let (config, adopted) = Repository::init(storage.as_ref()).await?;
    if args.json {
        printer.json(&serde_json::json!({
            "repository": location,
            "id": config.id,
            "format_version": config.format_version,
            "adopted_existing": adopted,
        }))?;
    } else if printer.summaries() {
        let what = match adopted {
            true => "adopted the existing promsnap repository (format 1, from before `init`) at",
            false => "created a promsnap repository at",
        };
        printer.stdout(&format!(
            "{what} {location}\n  id      {}\n  format  {}\nnext: promsnap backup --repo {}\n",
            config.id, config.format_version, args.repo.url
        ))?;
    }
    Ok(ExitStatus::Success)
}
