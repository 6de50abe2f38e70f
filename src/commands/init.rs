//! `promsnap init`: make a location a promsnap repository.

use anyhow::Result;
use serde::Serialize;

use super::Outcome;
use crate::error::ExitStatus;
use crate::output::Printer;
use crate::repo::Repository;
use crate::settings::InitSettings;

/// `init --json` (docs/json/init.schema.json).
#[derive(Serialize)]
struct Json<'a> {
    repository: &'a str,
    id: &'a str,
    format_version: u32,
    adopted_existing: bool,
}

pub async fn run(args: InitSettings, printer: &Printer) -> Result<Outcome> {
    let storage = super::open_storage(&args.repo).await?;
    let location = storage.describe();
    let (config, adopted) = Repository::init(storage.as_ref()).await?;
    let json = Json {
        repository: &location,
        id: &config.id,
        format_version: config.format_version,
        adopted_existing: adopted,
    };
    if !args.json && printer.summaries() {
        let what = match adopted {
            true => "adopted the existing promsnap repository (format 1, from before `init`) at",
            false => "created a promsnap repository at",
        };
        printer.stdout(&format!(
            "{what} {location}\n  id      {}\n  format  {}\nnext: promsnap backup --repo {}\n",
            config.id, config.format_version, args.repo.url
        ))?;
    }
    Outcome::from(ExitStatus::Success).with_document(args.json, &json)
}
