//! `promsnap list`: the snapshots in a repository, grouped by instance (or
//! HA group), oldest first within each group, as `promsnap list --help`
//! says.

use std::collections::HashSet;

use anyhow::Result;
use serde::Serialize;

use super::Outcome;
use crate::error::ExitStatus;
use crate::json::DataRange;
use crate::output::{format_ms, short_bytes, table, Printer};
use crate::repo::find;
use crate::repo::manifest::Manifest;
use crate::repo::DamagedManifest;
use crate::settings::ListSettings;

/// One snapshot in the table.
struct Row<'a> {
    id: &'a str,
    created: String,
    instance: &'a str,
    /// The HA group this snapshot was stored for, if any.
    ha_group: Option<&'a str>,
    blocks: usize,
    /// Configuration and rule files stored with the snapshot.
    config_files: usize,
    min_time: Option<i64>,
    max_time: Option<i64>,
    /// Bytes of all archives this snapshot needs.
    stored_bytes: u64,
    /// Bytes of archives no older snapshot referenced.
    new_bytes: u64,
    prometheus_version: Option<&'a str>,
    source: &'a str,
}

/// `list --json` (docs/json/list.schema.json).
#[derive(Serialize)]
struct Json<'a> {
    repository: String,
    /// The `--instance` asked for.
    instance: Option<&'a str>,
    snapshots: Vec<JsonRow<'a>>,
    /// Manifests that could not be read (`list` exits 3 when there are any).
    damaged: &'a [DamagedManifest],
}

/// A snapshot in `list --json`.
#[derive(Serialize)]
struct JsonRow<'a> {
    id: &'a str,
    created: String,
    instance: &'a str,
    ha_group: Option<&'a str>,
    blocks: usize,
    config_files: usize,
    #[serde(flatten)]
    data: DataRange,
    bytes_stored: u64,
    bytes_new: u64,
    prometheus_version: Option<&'a str>,
    source: &'a str,
}

impl<'a> From<&Row<'a>> for JsonRow<'a> {
    fn from(r: &Row<'a>) -> Self {
        JsonRow {
            id: r.id,
            created: r.created.clone(),
            instance: r.instance,
            ha_group: r.ha_group,
            blocks: r.blocks,
            config_files: r.config_files,
            data: DataRange::new(r.min_time, r.max_time),
            bytes_stored: r.stored_bytes,
            bytes_new: r.new_bytes,
            prometheus_version: r.prometheus_version,
            source: r.source,
        }
    }
}

pub async fn run(args: ListSettings, printer: &Printer) -> Result<Outcome> {
    let repo = super::open_repo(&args.repo).await?;
    // One instance's snapshots are read without the other instances'.
    let catalog = repo.catalog_of(args.instance.as_deref()).await?;
    let manifests = &catalog.manifests;
    // An instance that matches nothing is an error that lists the others
    // (which takes reading them all).
    if catalog.damaged.is_empty()
        && find::of_instance(manifests, args.instance.as_deref(), &repo.describe()).is_err()
    {
        let all = repo.catalog().await?;
        find::of_instance(&all.manifests, args.instance.as_deref(), &repo.describe())?;
    }
    let rows = rows(manifests, args.instance.as_deref());
    // Damaged manifests are shown, and are a problem: exit 3, like verify.
    let status = match catalog.damaged.is_empty() {
        true => ExitStatus::Success,
        false => ExitStatus::Problems,
    };
    if !catalog.damaged.is_empty() {
        printer.warn(&format!(
            "{} manifest(s) are damaged ({}); the other snapshots are unaffected. `promsnap \
             verify` reports them; prune keeps every object while they exist",
            catalog.damaged.len(),
            catalog
                .damaged
                .iter()
                .map(|d| d.key.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if args.json {
        let json = Json {
            repository: repo.describe(),
            instance: args.instance.as_deref(),
            snapshots: rows.iter().map(JsonRow::from).collect(),
            damaged: &catalog.damaged,
        };
        return Outcome::from(status).with_document(true, &json);
    }
    if rows.is_empty() && catalog.damaged.is_empty() {
        printer.info(&format!("no snapshots in {}", repo.describe()));
    } else {
        let mut text = render(&rows);
        for d in &catalog.damaged {
            text.push_str(&format!("{}  DAMAGED: {}\n", d.id, d.reason));
        }
        printer.stdout(&text)?;
    }
    Ok(status.into())
}

fn rows<'a>(manifests: &'a [Manifest], instance: Option<&str>) -> Vec<Row<'a>> {
    // "New" is judged across all instances: a block object stored by an
    // older snapshot costs nothing again, whoever stored it.
    let mut seen: HashSet<&str> = HashSet::new();
    let mut rows = Vec::new();
    for m in manifests {
        let new_bytes = m
            .blocks
            .iter()
            .filter(|b| seen.insert(b.object.key.as_str()))
            .map(|b| b.bytes_new.unwrap_or(b.object.size))
            .sum();
        if instance.is_some_and(|i| !find::belongs_to(m, i)) {
            continue;
        }
        rows.push(Row {
            id: &m.id,
            created: m.created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            instance: &m.instance,
            ha_group: m.ha_group.as_deref(),
            blocks: m.blocks.len(),
            config_files: m.config_files.len(),
            min_time: m.min_time(),
            max_time: m.max_time(),
            stored_bytes: m.stored_bytes(),
            new_bytes,
            prometheus_version: m.source.prometheus_version.as_deref(),
            source: &m.source.kind,
        });
    }
    // Grouped by HA group (or instance when there is none), oldest first
    // within each: `manifests` come oldest first, and a stable sort keeps
    // that order within a group.
    rows.sort_by(|a, b| {
        a.ha_group
            .unwrap_or(a.instance)
            .cmp(b.ha_group.unwrap_or(b.instance))
    });
    rows
}

/// The table a person reads: it fits 100 columns with 20-character instance
/// names and data ranges under 300 days. The creation time is the id's first part, so it has no column of
/// its own; INSTANCE is the name `--instance` takes (the HA group for a
/// group's snapshots, as in `prune`); DATA is the range the blocks hold (the
/// end without its year when that is clear), SIZE what a restore
/// downloads and ADDED what the snapshot added to the repository. `--json`
/// has every field.
fn render(rows: &[Row]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let range = match (r.min_time, r.max_time) {
                (Some(a), Some(b)) => data_range(a, b),
                _ => "no blocks".into(),
            };
            vec![
                r.id.to_string(),
                r.ha_group.unwrap_or(r.instance).to_string(),
                range,
                short_bytes(r.stored_bytes),
                short_bytes(r.new_bytes),
            ]
        })
        .collect();
    table(&["ID", "INSTANCE", "DATA (UTC)", "SIZE", "ADDED"], &cells)
}

/// `2026-01-01 00:00 .. 01-15 05:59`: the end without its year (it is the
/// first such date after the start) unless the range is 300 days or more.
fn data_range(min_ms: i64, max_ms: i64) -> String {
    const SHORT: i64 = 300 * 86_400_000;
    let (start, end) = (format_ms(min_ms), format_ms(max_ms));
    match end.split_once('-') {
        Some((_, rest)) if max_ms.saturating_sub(min_ms) < SHORT => format!("{start} .. {rest}"),
        _ => format!("{start} .. {end}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::manifest::tests::{sample_entry, sample_manifest};

    #[test]
    fn new_bytes_count_only_first_references() {
        let first = sample_manifest();
        let mut second = sample_manifest();
        second.id = "20261126T063726Z-0000abcd".into();
        second
            .blocks
            .push(sample_entry("01HQ3K6W2Z0000000000000001"));
        second.blocks[1].object.size = 7;
        let all = [first, second];
        let r = rows(&all, None);
        assert_eq!((r[0].new_bytes, r[0].stored_bytes), (100, 100));
        assert_eq!((r[1].new_bytes, r[1].stored_bytes), (7, 107));
        assert!(rows(&all, Some("other")).is_empty());
        let text = render(&r);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("ID") && lines[0].ends_with("SIZE   ADDED"));
        assert!(lines[2].ends_with("107 B  7 B"), "{text}");
    }

    #[test]
    fn data_ranges_drop_the_end_year_under_300_days() {
        let jan1 = 1_767_225_600_000;
        assert_eq!(
            data_range(jan1, jan1 + 14 * 86_400_000 + 3_600_000),
            "2026-01-01 00:00 .. 01-15 01:00"
        );
        assert_eq!(
            data_range(jan1 - 86_400_000, jan1),
            "2025-12-31 00:00 .. 01-01 00:00"
        );
        assert_eq!(
            data_range(jan1 - 300 * 86_400_000, jan1),
            "2025-03-07 00:00 .. 2026-01-01 00:00"
        );
    }
}
