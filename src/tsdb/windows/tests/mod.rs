//! Tests of window streams: round trips on every real fixture block
//! (`fixtures`), the dedup property on blocks a real Prometheus compacted
//! (`compaction`), blocks `split` declines (`not_in_step`), refusals of
//! hostile input by `join` (`hostile`), memory that does not grow with the
//! block (`memory`), and a writer of synthetic blocks whose references a
//! test can bend (`synth`).

mod compaction;
mod fixtures;
mod hostile;
mod memory;
mod not_in_step;
pub(crate) mod synth;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{join, split, Joined, RecordSink, Split, WindowLayout};

/// Keeps every window stream in memory (tests only: real sinks stream).
#[derive(Default)]
struct MemSink {
    streams: BTreeMap<i64, Vec<u8>>,
}

impl RecordSink for MemSink {
    fn record(&mut self, window: i64, bytes: &[u8]) -> io::Result<()> {
        self.streams
            .entry(window)
            .or_default()
            .extend_from_slice(bytes);
        Ok(())
    }
}

/// Splits the block in `dir` into 2 h streams, which must succeed.
fn split_block(dir: &Path) -> (WindowLayout, BTreeMap<i64, Vec<u8>>) {
    let mut sink = MemSink::default();
    match split(dir, super::DEFAULT_WINDOW_MS, &mut sink).unwrap() {
        Split::Windows(layout) => (layout, sink.streams),
        Split::NotInStep(why) => panic!("{} is not in step: {why}", dir.display()),
    }
}

/// Joins in-memory streams (ordered as `layout.windows`) into `out`.
fn join_streams(
    index: &Path,
    layout: &WindowLayout,
    streams: &BTreeMap<i64, Vec<u8>>,
    out: &Path,
) -> Result<Joined, super::JoinError> {
    let mut readers: Vec<&[u8]> = layout
        .windows
        .iter()
        .map(|w| streams.get(&w.start).map_or(&[][..], |s| s.as_slice()))
        .collect();
    join(index, layout, &mut readers, out)
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Every block directory (holding `meta.json` and `index`) below `dir`.
fn blocks_below(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        if d.join("meta.json").is_file() && d.join("index").is_file() {
            found.push(d);
            continue;
        }
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                todo.push(entry.path());
            }
        }
    }
    found.sort();
    found
}

/// `meta.json`'s `minTime` and `stats.numChunks`.
fn meta_facts(block: &Path) -> (i64, u64) {
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(block.join("meta.json")).unwrap()).unwrap();
    (
        meta["minTime"].as_i64().unwrap(),
        meta["stats"]["numChunks"].as_u64().unwrap(),
    )
}
