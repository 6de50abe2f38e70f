//! The property format 2 rests on, on blocks a real Prometheus compacted
//! (`fixtures/compaction/prometheus-<line>/`, see fixtures/README.md): a
//! window's stream is the same bytes in its 2 h block and in the block that
//! 2 h block was compacted into, and where compaction re-encoded chunks
//! (tombstones, vertical compaction) the streams' SHA-256 tells.

use std::collections::BTreeMap;
use std::path::Path;

use super::*;

const LINES: [&str; 2] = ["2.42", "3.5"];
const START: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const H2: i64 = 7_200_000;

/// SHA-256 of every window stream of a block.
fn window_hashes(block: &Path) -> BTreeMap<i64, String> {
    let (_, streams) = split_block(block);
    streams.iter().map(|(w, s)| (*w, sha256(s))).collect()
}

/// The only block below `dir`.
fn only_block(dir: &Path) -> std::path::PathBuf {
    let mut blocks = blocks_below(dir);
    assert_eq!(blocks.len(), 1, "{}", dir.display());
    blocks.remove(0)
}

/// The window hashes of the three 2h source blocks (one window each), and
/// their ULIDs.
fn source_hashes(line_dir: &Path) -> (BTreeMap<i64, String>, Vec<String>) {
    let blocks = blocks_below(&line_dir.join("source"));
    assert_eq!(blocks.len(), 3, "{}", line_dir.display());
    let mut hashes = BTreeMap::new();
    let mut ulids = Vec::new();
    for block in &blocks {
        let (min_time, _) = meta_facts(block);
        let own = window_hashes(block);
        assert_eq!(
            own.keys().collect::<Vec<_>>(),
            [&min_time],
            "{}",
            block.display()
        );
        hashes.extend(own);
        ulids.push(block.file_name().unwrap().to_string_lossy().into_owned());
    }
    assert_eq!(
        hashes.keys().copied().collect::<Vec<_>>(),
        [START, START + H2, START + 2 * H2]
    );
    (hashes, ulids)
}

fn parents(block: &Path) -> Vec<String> {
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(block.join("meta.json")).unwrap()).unwrap();
    let mut ulids: Vec<String> = meta["compaction"]["parents"]
        .as_array()
        .expect("a compacted block names its parents")
        .iter()
        .map(|p| p["ulid"].as_str().unwrap().to_string())
        .collect();
    ulids.sort();
    ulids
}

#[test]
fn windows_of_a_compacted_block_equal_those_of_its_2h_sources() {
    for line in LINES {
        let dir = fixtures_dir()
            .join("compaction")
            .join(format!("prometheus-{line}"));
        let (sources, ulids) = source_hashes(&dir);
        let compacted = only_block(&dir.join("compacted"));
        assert_eq!(parents(&compacted), ulids, "Prometheus {line}");
        let hashes = window_hashes(&compacted);
        assert_eq!(
            hashes, sources,
            "Prometheus {line}: every window stream stored once"
        );
        // And not because the streams are trivially equal: the compacted
        // block's chunk files are not the sources' files put together.
        let whole = std::fs::read(compacted.join("chunks/000001")).unwrap();
        let mut concat = Vec::new();
        for block in blocks_below(&dir.join("source")) {
            concat.extend_from_slice(&std::fs::read(block.join("chunks/000001")).unwrap()[8..]);
        }
        assert_eq!(whole.len() - 8, concat.len());
        assert_ne!(
            whole[8..],
            concat[..],
            "Prometheus {line}: series interleave"
        );
    }
}

#[test]
fn a_tombstone_changes_only_the_window_it_covers() {
    for line in LINES {
        let dir = fixtures_dir()
            .join("compaction")
            .join(format!("prometheus-{line}"));
        let (sources, _) = source_hashes(&dir);
        let deleted = window_hashes(&only_block(&dir.join("deleted")));
        assert_eq!(deleted.len(), 3, "Prometheus {line}");
        // delete_series covered 02:30-03:00 of one series: its chunks of the
        // 02:00 window were re-encoded, the other windows were copied.
        assert_eq!(deleted[&START], sources[&START], "Prometheus {line}");
        assert_ne!(
            deleted[&(START + H2)],
            sources[&(START + H2)],
            "Prometheus {line}"
        );
        assert_eq!(deleted[&(START + 2 * H2)], sources[&(START + 2 * H2)]);
    }
}

#[test]
fn vertical_compaction_changes_only_the_overlapping_window() {
    for line in LINES {
        let dir = fixtures_dir()
            .join("compaction")
            .join(format!("prometheus-{line}"));
        let (sources, _) = source_hashes(&dir);
        let overlap = window_hashes(&only_block(&dir.join("overlap")));
        let vertical = window_hashes(&only_block(&dir.join("vertical")));
        assert_eq!(vertical.len(), 3, "Prometheus {line}");
        // The 00:00 window now holds both blocks' series, interleaved in
        // label order: neither parent's stream, so it is stored anew.
        assert_ne!(vertical[&START], sources[&START], "Prometheus {line}");
        assert_ne!(vertical[&START], overlap[&START], "Prometheus {line}");
        assert_eq!(vertical[&(START + H2)], sources[&(START + H2)]);
        assert_eq!(vertical[&(START + 2 * H2)], sources[&(START + 2 * H2)]);
    }
}
