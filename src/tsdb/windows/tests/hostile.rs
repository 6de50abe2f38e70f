//! `join` refuses every inconsistency between index, layout and streams
//! before it writes past a recorded size. Each test bends one thing of an
//! honest synthetic block (several segment files, windows on both sides of
//! zero) and checks the error and the files left on disk.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::synth::{put_uvarint, write_block, Chunk};
use super::*;
use crate::tsdb::windows::{JoinError, DEFAULT_WINDOW_MS, MAX_RECORD_DATA};

const W: i64 = DEFAULT_WINDOW_MS;
/// Small segment files, so the block has several.
const SEGMENT_SIZE: u64 = 300;

/// Six series, three chunks each, in the windows before, at and after 0;
/// the fourth series has no chunk in window 0.
fn series() -> Vec<Vec<Chunk>> {
    (0..6)
        .map(|s| {
            [-W + 1000, 5000, W + 60_000]
                .iter()
                .enumerate()
                .filter(|&(c, _)| s != 3 || c != 1)
                .map(|(c, &t)| Chunk {
                    min_time: t + s as i64,
                    max_time: t + 100_000,
                    data_len: 20 + 7 * s + c,
                })
                .collect()
        })
        .collect()
}

struct Honest {
    _dir: tempfile::TempDir,
    block: PathBuf,
    layout: WindowLayout,
    streams: BTreeMap<i64, Vec<u8>>,
}

fn honest() -> Honest {
    let dir = tempfile::tempdir().unwrap();
    let block = dir.path().join("block");
    write_block(&block, series(), SEGMENT_SIZE, |_, _, r| r);
    let (layout, streams) = split_block(&block);
    Honest {
        _dir: dir,
        block,
        layout,
        streams,
    }
}

/// An index for the same records, with the references `bend` makes.
fn bent_index(dir: &Path, bend: impl FnMut(usize, usize, u64) -> u64) -> PathBuf {
    let block = dir.join("bent");
    write_block(&block, series(), SEGMENT_SIZE, bend);
    block.join("index")
}

/// Runs `join`, which must fail, and checks that no file grew past its
/// recorded size nor was created outside the layout.
fn refused(
    index: &Path,
    layout: &WindowLayout,
    streams: &BTreeMap<i64, Vec<u8>>,
) -> (JoinError, tempfile::TempDir) {
    let out = tempfile::tempdir().unwrap();
    let err = join_streams(index, layout, streams, out.path()).expect_err("join must refuse");
    assert_within_recorded_sizes(out.path(), layout);
    (err, out)
}

fn assert_within_recorded_sizes(out: &Path, layout: &WindowLayout) {
    let Ok(entries) = fs::read_dir(out.join("chunks")) else {
        return;
    };
    for entry in entries {
        let entry = entry.unwrap();
        let path = format!("chunks/{}", entry.file_name().to_string_lossy());
        let size = entry.metadata().unwrap().len();
        let seg = layout.segments.iter().find(|s| s.path == path);
        let seg = seg.unwrap_or_else(|| panic!("{path} is not in the layout"));
        assert!(
            size <= seg.size,
            "{path} is {size} bytes, recorded {}",
            seg.size
        );
    }
}

fn file_size(out: &Path, name: &str) -> Option<u64> {
    fs::metadata(out.join("chunks").join(name))
        .ok()
        .map(|m| m.len())
}

#[test]
fn the_honest_block_round_trips() {
    let h = honest();
    assert!(h.layout.segments.len() >= 3, "{:?}", h.layout.segments);
    let starts: Vec<i64> = h.layout.windows.iter().map(|w| w.start).collect();
    assert_eq!(starts, [-W, 0, W]);
    assert_eq!(h.layout.records, 17);
    let out = tempfile::tempdir().unwrap();
    join_streams(&h.block.join("index"), &h.layout, &h.streams, out.path()).unwrap();
    for seg in &h.layout.segments {
        let original = fs::read(h.block.join(&seg.path)).unwrap();
        assert_eq!(fs::read(out.path().join(&seg.path)).unwrap(), original);
    }
}

#[test]
fn records_split_across_the_readers_buffers_round_trip() {
    // A restore's readers hand out one blob at a time, so records straddle
    // buffers: with 3-byte buffers every record is gathered piece by piece.
    let h = honest();
    let mut readers: Vec<std::io::BufReader<&[u8]>> = h
        .layout
        .windows
        .iter()
        .map(|w| std::io::BufReader::with_capacity(3, h.streams[&w.start].as_slice()))
        .collect();
    let out = tempfile::tempdir().unwrap();
    let joined = join(&h.block.join("index"), &h.layout, &mut readers, out.path()).unwrap();
    assert_eq!(joined.records, 17);
    for seg in &h.layout.segments {
        let original = fs::read(h.block.join(&seg.path)).unwrap();
        assert_eq!(fs::read(out.path().join(&seg.path)).unwrap(), original);
    }
}

#[test]
fn a_reference_with_a_gap_is_refused() {
    let h = honest();
    let index = bent_index(
        h._dir.path(),
        |s, c, r| if (s, c) == (1, 1) { r + 6 } else { r },
    );
    let (err, _) = refused(&index, &h.layout, &h.streams);
    assert!(matches!(err, JoinError::Ref { .. }), "{err}");
    assert!(err.to_string().contains("skips 6 bytes"), "{err}");
}

#[test]
fn a_reference_going_back_is_refused() {
    let h = honest();
    let mut first = 0;
    let index = bent_index(h._dir.path(), |s, c, r| {
        if (s, c) == (0, 0) {
            first = r;
        }
        // The third series' second chunk points at the block's first record.
        if (s, c) == (2, 1) {
            first
        } else {
            r
        }
    });
    let (err, _) = refused(&index, &h.layout, &h.streams);
    assert!(matches!(err, JoinError::Ref { .. }), "{err}");
    assert!(err.to_string().contains("goes back"), "{err}");
}

#[test]
fn an_overlapping_reference_is_refused() {
    let h = honest();
    let index = bent_index(
        h._dir.path(),
        |s, c, r| if (s, c) == (0, 2) { r - 1 } else { r },
    );
    let (err, _) = refused(&index, &h.layout, &h.streams);
    assert!(err.to_string().contains("goes back 1 bytes"), "{err}");
}

#[test]
fn a_jump_to_the_next_segment_before_this_one_is_full_is_refused() {
    let h = honest();
    let index = bent_index(h._dir.path(), |s, c, r| {
        if (s, c) == (0, 1) {
            crate::tsdb::segment::chunk_ref(1, 8)
        } else {
            r
        }
    });
    let (err, out) = refused(&index, &h.layout, &h.streams);
    assert!(err.to_string().contains("later segment file"), "{err}");
    assert_eq!(file_size(out.path(), "000002"), None);
}

#[test]
fn a_stream_shorter_than_declared_is_refused() {
    let h = honest();
    let mut streams = h.streams.clone();
    let last = streams.get_mut(&W).unwrap();
    last.truncate(last.len() - 3);
    let (err, _) = refused(&h.block.join("index"), &h.layout, &streams);
    assert!(matches!(err, JoinError::Stream { window: W, .. }), "{err}");
    assert!(err.to_string().contains("ends before byte"), "{err}");
}

#[test]
fn a_stream_longer_than_declared_is_refused() {
    let h = honest();
    let mut streams = h.streams.clone();
    streams.get_mut(&0).unwrap().extend_from_slice(b"more");
    let (err, out) = refused(&h.block.join("index"), &h.layout, &streams);
    assert!(matches!(err, JoinError::Stream { window: 0, .. }), "{err}");
    assert!(err.to_string().contains("goes on after"), "{err}");
    // It was found at the end: every file had reached its recorded size.
    for seg in &h.layout.segments {
        let name = seg.path.strip_prefix("chunks/").unwrap();
        assert_eq!(file_size(out.path(), name), Some(seg.size));
    }
}

#[test]
fn a_declared_stream_length_too_short_for_its_records_is_refused() {
    let h = honest();
    // The layout lies consistently: window -W and the first segment both
    // one byte shorter. The window's last record then no longer fits.
    let mut layout = h.layout.clone();
    layout.windows[0].bytes -= 1;
    layout.segments.last_mut().unwrap().size -= 1;
    let (err, _) = refused(&h.block.join("index"), &layout, &h.streams);
    assert!(
        matches!(err, JoinError::Stream { window, .. } if window == -W),
        "{err}"
    );
    assert!(
        err.to_string().contains("of the stream's declared"),
        "{err}"
    );
}

#[test]
fn a_record_longer_than_its_stream_is_refused() {
    let h = honest();
    let mut streams = h.streams.clone();
    let first = streams.get_mut(&-W).unwrap();
    // The first record's length field (one byte) now claims 60000 bytes.
    let mut claim = Vec::new();
    put_uvarint(&mut claim, 60_000);
    first.splice(0..1, claim);
    first.truncate(first.len() - 2);
    let (err, out) = refused(&h.block.join("index"), &h.layout, &streams);
    assert!(err.to_string().contains("only"), "{err}");
    // No record was written: at most the header (the hashing thread writes
    // the file, in batches, so even the header may not have reached it).
    let size = file_size(out.path(), "000001");
    assert!(matches!(size, Some(0..=8)), "only the header: {size:?}");
}

#[test]
fn an_implausible_record_length_is_refused() {
    let h = honest();
    let mut streams = h.streams.clone();
    let mut claim = Vec::new();
    put_uvarint(&mut claim, MAX_RECORD_DATA + 1);
    let n = claim.len();
    let first = streams.get_mut(&-W).unwrap();
    first.splice(0..1, claim);
    first.truncate(first.len() - (n - 1));
    let (err, _) = refused(&h.block.join("index"), &h.layout, &streams);
    assert!(err.to_string().contains("more than any chunk"), "{err}");
}

#[test]
fn a_record_with_a_bad_crc_is_refused() {
    let h = honest();
    let mut streams = h.streams.clone();
    streams.get_mut(&0).unwrap()[5] ^= 0x40;
    let (err, _) = refused(&h.block.join("index"), &h.layout, &streams);
    assert!(err.to_string().contains("CRC32C"), "{err}");
}

#[test]
fn records_overshooting_a_segment_size_are_refused() {
    let h = honest();
    // Bytes moved from the first segment's recorded size to the second:
    // the totals agree, but the first file's last record overshoots.
    let mut layout = h.layout.clone();
    layout.segments[0].size -= 10;
    layout.segments[1].size += 10;
    let (err, out) = refused(&h.block.join("index"), &layout, &h.streams);
    assert!(matches!(err, JoinError::Segment { .. }), "{err}");
    assert!(err.to_string().contains("overshoot"), "{err}");
    assert!(file_size(out.path(), "000001").unwrap() <= layout.segments[0].size);
}

#[test]
fn a_segment_ending_short_of_its_size_is_refused() {
    let h = honest();
    let mut layout = h.layout.clone();
    layout.segments[0].size += 10;
    layout.segments[1].size -= 10;
    let (err, out) = refused(&h.block.join("index"), &layout, &h.streams);
    assert!(err.to_string().contains("later segment file"), "{err}");
    assert_eq!(file_size(out.path(), "000002"), None);
}

#[test]
fn a_segment_that_hashes_differently_is_refused() {
    let h = honest();
    let mut layout = h.layout.clone();
    layout.segments[0].header[7] = 1; // padding: a valid header, other bytes
    let (err, _) = refused(&h.block.join("index"), &layout, &h.streams);
    assert!(err.to_string().contains("SHA-256"), "{err}");
}

#[test]
fn an_inconsistent_layout_is_refused_before_anything_is_written() {
    let h = honest();
    let index = h.block.join("index");
    let mut cases: Vec<(&str, WindowLayout)> = Vec::new();
    let mut l = h.layout.clone();
    l.segments[1].size += 1;
    cases.push(("hold", l));
    let mut l = h.layout.clone();
    l.records += 1;
    cases.push(("records", l));
    let mut l = h.layout.clone();
    l.windows[0].records = u64::MAX;
    cases.push(("overflow", l));
    let mut l = h.layout.clone();
    l.windows[1].bytes = u64::MAX;
    cases.push(("overflow", l));
    let mut l = h.layout.clone();
    l.windows[1].start += 1;
    cases.push(("multiple", l));
    let mut l = h.layout.clone();
    l.windows.swap(0, 1);
    cases.push(("out of order", l));
    let mut l = h.layout.clone();
    l.segments[1].path = "chunks/000009".into();
    cases.push(("not chunks/000002", l));
    let mut l = h.layout.clone();
    l.segments[0].header[4] = 2;
    cases.push(("version", l));
    let mut l = h.layout.clone();
    l.window_ms = 0;
    cases.push(("window length", l));
    for (want, layout) in cases {
        let (err, out) = refused(&index, &layout, &h.streams);
        assert!(matches!(err, JoinError::Layout(_)), "{want}: {err}");
        assert!(err.to_string().contains(want), "{want}: {err}");
        assert!(
            !out.path().join("chunks").exists(),
            "{want}: nothing written"
        );
    }
}

#[test]
fn a_chunk_in_no_window_of_the_layout_is_refused() {
    let h = honest();
    let moved: Vec<Vec<Chunk>> = series()
        .into_iter()
        .map(|chunks| {
            let shift = |c: Chunk| Chunk {
                min_time: c.min_time + 5 * W,
                max_time: c.max_time + 5 * W,
                ..c
            };
            chunks.into_iter().map(shift).collect()
        })
        .collect();
    let block = h._dir.path().join("moved");
    write_block(&block, moved, SEGMENT_SIZE, |_, _, r| r);
    let (err, _) = refused(&block.join("index"), &h.layout, &h.streams);
    assert!(matches!(err, JoinError::NoStream { .. }), "{err}");
}

#[test]
fn more_references_than_records_are_refused() {
    let h = honest();
    let mut layout = h.layout.clone();
    // One record fewer everywhere: the last window's stream ends early.
    let last = layout.windows.last_mut().unwrap();
    last.records -= 1;
    layout.records -= 1;
    let (err, _) = refused(&h.block.join("index"), &layout, &h.streams);
    assert!(err.to_string().contains("more"), "{err}");
}

#[test]
fn a_reference_past_the_last_segment_file_is_refused() {
    let h = honest();
    let index = bent_index(h._dir.path(), |s, c, r| {
        if (s, c) == (5, 2) {
            crate::tsdb::segment::chunk_ref(99, 8)
        } else {
            r
        }
    });
    let (err, _) = refused(&index, &h.layout, &h.streams);
    assert!(matches!(err, JoinError::Layout(_)), "{err}");
    assert!(
        err.to_string().contains("references chunks/000100"),
        "{err}"
    );
}

#[test]
fn an_index_that_is_not_one_is_refused() {
    let h = honest();
    let garbage = h._dir.path().join("garbage");
    fs::write(&garbage, vec![0x5a; 4096]).unwrap();
    let (err, out) = refused(&garbage, &h.layout, &h.streams);
    assert!(matches!(err, JoinError::Index(_)), "{err}");
    assert!(err.to_string().contains("magic"), "{err}");
    assert_eq!(fs::read_dir(out.path().join("chunks")).unwrap().count(), 0);
}
