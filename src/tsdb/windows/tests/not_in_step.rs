//! `split` says why a block's chunk files cannot be window streams, rather
//! than failing: each test bends one thing of a synthetic block.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::synth::{write_block, Chunk};
use super::*;
use crate::tsdb::windows::{join_into, Crcs, NotInStep, SegmentFiles, DEFAULT_WINDOW_MS};

/// Four series of two chunks, in 200-byte segment files (several).
fn series() -> Vec<Vec<Chunk>> {
    (0..4)
        .map(|s| {
            (0..2)
                .map(|c| Chunk {
                    min_time: c * DEFAULT_WINDOW_MS + s,
                    max_time: c * DEFAULT_WINDOW_MS + 1000,
                    data_len: 30 + s as usize,
                })
                .collect()
        })
        .collect()
}

fn block(dir: &Path, bend: impl FnMut(usize, usize, u64) -> u64) -> PathBuf {
    let block = dir.join("block");
    write_block(&block, series(), 200, bend);
    block
}

fn not_in_step(block: &Path) -> NotInStep {
    let mut sink = MemSink::default();
    match split(block, DEFAULT_WINDOW_MS, &mut sink).unwrap() {
        Split::NotInStep(why) => why,
        Split::Windows(layout) => panic!("in step: {layout:?}"),
    }
}

#[test]
fn the_unbent_block_is_in_step() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, _) = split_block(&block(dir.path(), |_, _, r| r));
    assert!(layout.segments.len() >= 2);
    assert_eq!(layout.records, 8);
}

#[test]
fn a_block_without_chunks_is_in_step() {
    let dir = tempfile::tempdir().unwrap();
    let block = dir.path().join("empty");
    write_block(&block, Vec::<Vec<Chunk>>::new(), 200, |_, _, r| r);
    let (layout, streams) = split_block(&block);
    assert_eq!((layout.segments.len(), layout.records), (0, 0));
    assert!(streams.is_empty());
    let out = tempfile::tempdir().unwrap();
    join_streams(&block.join("index"), &layout, &streams, out.path()).unwrap();
    assert_eq!(fs::read_dir(out.path().join("chunks")).unwrap().count(), 0);
}

#[test]
fn records_after_the_last_reference_are_not_in_step() {
    let dir = tempfile::tempdir().unwrap();
    let block = block(dir.path(), |_, _, r| r);
    let last = fs::read_dir(block.join("chunks")).unwrap().count();
    let path = block.join(format!("chunks/{last:06}"));
    let size = fs::metadata(&path).unwrap().len();
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&[0, 1, 0, 0, 0, 0])
        .unwrap();
    let why = not_in_step(&block);
    let want = NotInStep::Unreferenced {
        segment: format!("chunks/{last:06}"),
        offset: size,
    };
    assert_eq!(why, want, "{why}");
}

#[test]
fn a_reference_skipping_a_record_is_not_in_step() {
    let dir = tempfile::tempdir().unwrap();
    // Chunk 0 of series 1 is 1 + 1 + 31 + 4 bytes long.
    let block = block(
        dir.path(),
        |s, c, r| if (s, c) == (1, 0) { r + 37 } else { r },
    );
    let why = not_in_step(&block);
    assert!(matches!(why, NotInStep::Ref { .. }), "{why}");
    assert!(why.to_string().contains("skips 37 bytes"), "{why}");
}

#[test]
fn a_reference_going_back_is_not_in_step() {
    let dir = tempfile::tempdir().unwrap();
    let mut prev = 0;
    let block = block(dir.path(), |s, c, r| {
        let bent = if (s, c) == (0, 1) { prev } else { r };
        prev = r;
        bent
    });
    let why = not_in_step(&block);
    assert!(why.to_string().contains("goes back"), "{why}");
}

#[test]
fn a_truncated_record_is_not_in_step() {
    let dir = tempfile::tempdir().unwrap();
    let block = block(dir.path(), |_, _, r| r);
    let path = block.join("chunks/000001");
    let size = fs::metadata(&path).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(size - 2)
        .unwrap();
    let why = not_in_step(&block);
    assert!(matches!(why, NotInStep::Record { .. }), "{why}");
    assert!(why.to_string().contains("file ends"), "{why}");
}

#[test]
fn a_record_with_a_bad_crc_is_in_step_and_rebuilt_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let block = block(dir.path(), |_, _, r| r);
    let path = block.join("chunks/000001");
    let mut bytes = fs::read(&path).unwrap();
    bytes[12] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let (layout, streams) = split_block(&block);
    assert_eq!(layout.records, 8);
    // The damage is kept, byte for byte (verify --deep reports it).
    let out = tempfile::tempdir().unwrap();
    let mut files = SegmentFiles::new(out.path(), |_, _| Ok(())).unwrap();
    let mut readers: Vec<&[u8]> = layout
        .windows
        .iter()
        .map(|w| &streams[&w.start][..])
        .collect();
    let index = block.join("index");
    join_into(&index, &layout, &mut readers, &mut files, Crcs::Skip).unwrap();
    assert_eq!(fs::read(out.path().join("chunks/000001")).unwrap(), bytes);
    // A join that checks CRCs names it.
    let err = join_streams(
        &index,
        &layout,
        &streams,
        tempfile::tempdir().unwrap().path(),
    );
    assert!(err.unwrap_err().to_string().contains("CRC32C"));
}

#[test]
fn a_segment_header_of_another_version_is_not_in_step() {
    let dir = tempfile::tempdir().unwrap();
    let block = block(dir.path(), |_, _, r| r);
    let path = block.join("chunks/000002");
    let mut bytes = fs::read(&path).unwrap();
    bytes[4] = 2;
    fs::write(&path, bytes).unwrap();
    let why = not_in_step(&block);
    assert!(matches!(why, NotInStep::SegmentHeader { .. }), "{why}");
    assert!(why.to_string().contains("version is 2"), "{why}");
}

#[test]
fn unexpected_files_in_chunks_are_not_in_step() {
    for (name, want) in [("000009", "named 000009"), ("notes", "named notes")] {
        let dir = tempfile::tempdir().unwrap();
        let block = block(dir.path(), |_, _, r| r);
        fs::write(block.join("chunks").join(name), b"x").unwrap();
        let why = not_in_step(&block);
        assert!(why.to_string().contains(want), "{why}");
    }
}

#[test]
fn a_missing_segment_file_is_not_in_step() {
    let dir = tempfile::tempdir().unwrap();
    let block = block(dir.path(), |_, _, r| r);
    assert!(!block.join("chunks/000003").exists(), "two segment files");
    fs::remove_file(block.join("chunks/000002")).unwrap();
    let why = not_in_step(&block);
    assert!(matches!(why, NotInStep::SegmentFiles(_)), "{why}");
    assert!(
        why.to_string().contains("references chunks/000002"),
        "{why}"
    );
}

#[test]
fn a_damaged_index_is_not_in_step() {
    let dir = tempfile::tempdir().unwrap();
    let block = block(dir.path(), |_, _, r| r);
    let path = block.join("index");
    let mut bytes = fs::read(&path).unwrap();
    bytes[40] ^= 0xff; // inside the first series entry
    fs::write(&path, bytes).unwrap();
    let why = not_in_step(&block);
    assert!(matches!(why, NotInStep::Index(_)), "{why}");
    assert!(why.to_string().contains("CRC32C"), "{why}");
}
