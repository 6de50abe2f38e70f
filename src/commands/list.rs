//! `promsnap list`: the snapshots in a repository, grouped by instance (or
//! HA group), oldest first within each group, as `promsnap list --help`
//! says.
//!
//! A list of everything in a fleet's repository (tens of thousands of
//! manifests) is printed group by group as the groups are read
//! ([`Repository::groups`]): the first rows come before the last manifest
//! is read, and memory holds one group's manifests, not the repository's.
//! The table's columns are as wide as what has been printed needs (the
//! INSTANCE column as the longest group name from the start). `--json`
//! spools the `snapshots` array to a temporary file element by element and
//! prints the document once every group is read (`crate::json`, "spooled"),
//! so that it begins with `ok` like every other, and a list that fails part
//! way prints the error document instead. A table whose reader has gone
//! (`promsnap list | head`) stops at the next group and exits 0, without
//! reading the rest.

use std::collections::{HashMap, HashSet};

use anyhow::Result;
use serde::Serialize;

use super::Outcome;
use crate::error::ExitStatus;
use crate::json::{self, DataRange, Spool};
use crate::output::{format_ms, short_bytes, Columns, Printer};
use crate::repo::manifest::Manifest;
use crate::repo::{find, DamagedManifest, Repository};
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

/// What a streamed `list --json` writes before its snapshots.
#[derive(Serialize)]
struct Head<'a> {
    repository: String,
    instance: Option<&'a str>,
}

/// What it writes after them (with `ok`, which `commands::conclude` adds).
#[derive(Serialize)]
struct Tail<'a> {
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
    match args.instance.as_deref() {
        Some(instance) => one_instance(&repo, instance, args.json, printer).await,
        None => everything(&repo, args.json, printer).await,
    }
}

/// `list --instance`: one group's manifests (and those of earlier
/// versions), read at once.
async fn one_instance(
    repo: &Repository,
    instance: &str,
    json: bool,
    printer: &Printer,
) -> Result<Outcome> {
    // One instance's snapshots are read without the other instances'.
    let catalog = repo.catalog_of(Some(instance)).await?;
    let manifests = &catalog.manifests;
    // An instance that matches nothing is an error that lists the others
    // (which takes reading them all).
    if catalog.damaged.is_empty()
        && find::of_instance(manifests, Some(instance), &repo.describe()).is_err()
    {
        let all = repo.catalog().await?;
        find::of_instance(&all.manifests, Some(instance), &repo.describe())?;
    }
    let rows = rows(manifests, Some(instance), &HashMap::new());
    warn_damaged(printer, &catalog.damaged);
    let status = status(&catalog.damaged);
    if json {
        let json = Json {
            repository: repo.describe(),
            instance: Some(instance),
            snapshots: rows.iter().map(JsonRow::from).collect(),
            damaged: &catalog.damaged,
        };
        return Outcome::from(status).with_document(true, &json);
    }
    if rows.is_empty() && catalog.damaged.is_empty() {
        printer.info(&format!("no snapshots in {}", repo.describe()));
    } else {
        let mut text = columns([]).part(&cells(&rows));
        text.push_str(&damaged_lines(&catalog.damaged));
        printer.stdout(&text)?;
    }
    Ok(status.into())
}

/// `list` of every group, printed as the groups are read (module doc).
async fn everything(repo: &Repository, json: bool, printer: &Printer) -> Result<Outcome> {
    let mut groups = repo.groups().await?;
    let claimed = first_stored(groups.earlier());
    let mut table = columns(groups.names());
    if json {
        let head = Head {
            repository: repo.describe(),
            instance: None,
        };
        json::open_stdout_stream(&head, "snapshots")?;
    }
    let mut damaged = std::mem::take(&mut groups.earlier_damaged);
    let mut printed = false;
    while let Some(group) = groups.next().await? {
        let rows = rows(&group.catalog.manifests, None, &claimed);
        damaged.extend(group.catalog.damaged.iter().cloned());
        if rows.is_empty() {
            continue;
        }
        printed = true;
        match json {
            true => json::with_stdout_stream(|s| json_rows(s, &rows))?,
            false => printer.stdout(&table.part(&cells(&rows)))?,
        }
        // `list | head`: the reader has its lines; the other groups'
        // manifests are not read for nobody.
        if printer.reader_gone() {
            return Ok(ExitStatus::Success.into());
        }
    }
    damaged.sort_by(|a, b| a.id.cmp(&b.id));
    warn_damaged(printer, &damaged);
    let status = status(&damaged);
    if json {
        return Outcome::from(status).with_document(true, &Tail { damaged: &damaged });
    }
    if !printed && damaged.is_empty() {
        printer.info(&format!("no snapshots in {}", repo.describe()));
    } else if !damaged.is_empty() {
        // The header, if no row has printed it yet.
        let mut text = table.part(&[]);
        text.push_str(&damaged_lines(&damaged));
        printer.stdout(&text)?;
    }
    Ok(status.into())
}

/// One group's rows as elements of the spooled `snapshots` array.
fn json_rows(s: &mut Spool, rows: &[Row]) -> Result<()> {
    for r in rows {
        s.element(&JsonRow::from(r))?;
    }
    Ok(())
}

/// Damaged manifests are shown, and are a problem: exit 3, like verify.
fn status(damaged: &[DamagedManifest]) -> ExitStatus {
    match damaged.is_empty() {
        true => ExitStatus::Success,
        false => ExitStatus::Problems,
    }
}

fn warn_damaged(printer: &Printer, damaged: &[DamagedManifest]) {
    if damaged.is_empty() {
        return;
    }
    printer.warn(&format!(
        "{} manifest(s) are damaged ({}); the other snapshots are unaffected. `promsnap \
         verify` reports them; prune keeps every object while they exist",
        damaged.len(),
        damaged
            .iter()
            .map(|d| d.key.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
}

fn damaged_lines(damaged: &[DamagedManifest]) -> String {
    damaged
        .iter()
        .map(|d| format!("{}  DAMAGED: {}\n", d.id, d.reason))
        .collect()
}

/// For the block objects the manifests of earlier versions reference, the
/// group of the oldest of them. Those manifests (format 1's archives) are
/// the ones whose blocks other groups' snapshots may share, and "new" is
/// judged across the whole repository: a block stored by an older snapshot
/// of another group is not new again. (A grouped manifest records what its
/// backup uploaded, `bytes_new`, so its group alone decides.)
fn first_stored<'m>(earlier: impl Iterator<Item = &'m Manifest>) -> HashMap<String, String> {
    let mut earlier: Vec<&Manifest> = earlier.collect();
    earlier.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    let mut first = HashMap::new();
    for m in earlier {
        for b in &m.blocks {
            first
                .entry(b.object.key.to_string())
                .or_insert_with(|| find::group_of(m).to_string());
        }
    }
    first
}

/// The rows of `manifests` (oldest first) that are `instance`'s (all
/// without one). `claimed` names the group whose snapshot stored a block
/// first when that is known beyond `manifests` ([`first_stored`]).
fn rows<'a>(
    manifests: &'a [Manifest],
    instance: Option<&str>,
    claimed: &HashMap<String, String>,
) -> Vec<Row<'a>> {
    // "New" is judged across all instances: a block object stored by an
    // older snapshot costs nothing again, whoever stored it.
    let mut seen: HashSet<&str> = HashSet::new();
    let mut rows = Vec::new();
    for m in manifests {
        let new_bytes = m
            .blocks
            .iter()
            .filter(|b| {
                seen.insert(b.object.key.as_str())
                    && claimed
                        .get(b.object.key.as_str())
                        .is_none_or(|g| g == find::group_of(m))
            })
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
/// has every field. The INSTANCE column is as wide as the longest of
/// `names` from the first line, so that groups printed one after the other
/// line up.
fn columns<'n>(names: impl IntoIterator<Item = &'n str>) -> Columns {
    let mut columns = Columns::new(&["ID", "INSTANCE", "DATA (UTC)", "SIZE", "ADDED"]);
    for name in names {
        columns.at_least(1, name.chars().count());
    }
    columns
}

/// The table's cells of `rows`.
fn cells(rows: &[Row]) -> Vec<Vec<String>> {
    rows.iter()
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
        .collect()
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
        let none = HashMap::new();
        let r = rows(&all, None, &none);
        assert_eq!((r[0].new_bytes, r[0].stored_bytes), (100, 100));
        assert_eq!((r[1].new_bytes, r[1].stored_bytes), (7, 107));
        assert!(rows(&all, Some("other"), &none).is_empty());
        let text = columns([]).part(&cells(&r));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("ID") && lines[0].ends_with("SIZE   ADDED"));
        assert!(lines[2].ends_with("107 B  7 B"), "{text}");
    }

    /// A manifest of `group` (`instance` in HA group `group` when they
    /// differ) taken `day` days after the sample's.
    fn snapshot(instance: &str, group: &str, day: i64) -> Manifest {
        let mut m = sample_manifest();
        m.created += chrono::Duration::days(day);
        m.id = format!("{}-{:08x}", m.created.format("%Y%m%dT%H%M%SZ"), day);
        m.instance = instance.into();
        m.ha_group = (instance != group).then(|| group.to_string());
        m
    }

    /// `list --json` of everything as it was printed before it streamed:
    /// every manifest read, then one document.
    fn whole(all: &[Manifest], damaged: &[DamagedManifest]) -> serde_json::Value {
        let rows = rows(all, None, &HashMap::new());
        let fields = Json {
            repository: "/r".into(),
            instance: None,
            snapshots: rows.iter().map(JsonRow::from).collect(),
            damaged,
        };
        let fields = json::Document::new(&fields).unwrap();
        json::finished("list", status(damaged), fields, None)
    }

    /// The same, streamed group by group as `everything` does.
    fn streamed(all: &[Manifest], damaged: &[DamagedManifest]) -> serde_json::Value {
        let claimed = first_stored(all.iter());
        let head = Head {
            repository: "/r".into(),
            instance: None,
        };
        let mut s = Spool::new(&head, "snapshots").unwrap();
        let names: std::collections::BTreeSet<&str> = all.iter().map(find::group_of).collect();
        for name in names {
            let group: Vec<Manifest> = all
                .iter()
                .filter(|m| find::group_of(m) == name)
                .cloned()
                .collect();
            json_rows(&mut s, &rows(&group, None, &claimed)).unwrap();
        }
        let tail = json::Document::new(&Tail { damaged }).unwrap();
        let end = json::finished("list", status(damaged), tail, None);
        let mut out = Vec::new();
        s.finish(&end, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    #[test]
    fn the_streamed_document_is_the_document_printed_whole() {
        // Oldest first, as a catalog gives them; every sample manifest
        // references the same archive, so "new" crosses groups.
        let mut all = vec![
            snapshot("prom-b", "prom-b", 0),
            snapshot("prom-a", "prom-a", 1),
            snapshot("prom-c1", "pair", 2),
            snapshot("prom-b", "prom-b", 3),
            snapshot("prom-c2", "pair", 4),
        ];
        all[1]
            .blocks
            .push(sample_entry("01HQ3K6W2Z0000000000000001"));
        let damaged = vec![DamagedManifest {
            id: "20261126T000000Z-00000001".into(),
            key: "snapshots/prom-a/20261126T000000Z-00000001.json".into(),
            reason: "not a promsnap manifest".into(),
        }];
        for (all, damaged) in [
            (&all[..], &damaged[..]),
            (&all[..], &[][..]),
            (&[][..], &damaged[..]),
            (&[][..], &[][..]),
        ] {
            assert_eq!(streamed(all, damaged), whole(all, damaged));
        }
        let doc = streamed(&all, &damaged);
        let ids: Vec<&str> = doc["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        let id = |i: usize| all[i].id.as_str();
        assert_eq!(
            ids,
            [id(2), id(4), id(1), id(0), id(3)],
            "pair, prom-a, prom-b"
        );
        let added: Vec<&serde_json::Value> = doc["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| &s["bytes_new"])
            .collect();
        assert_eq!(added, [0, 0, 100, 100, 0], "the oldest stored the archive");
        assert_eq!(doc["ok"], false);
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
