//! Every real block in `fixtures/` splits into window streams and joins back
//! into byte-identical chunk files.

use std::fs;

use super::*;
use crate::tsdb::windows::DEFAULT_WINDOW_MS;

#[test]
fn every_fixture_block_round_trips_byte_for_byte() {
    let blocks = blocks_below(&fixtures_dir());
    // fixtures/data (3), histograms (2), utf8 (1), newer-encodings (1),
    // compaction (2 lines x 7): a walk that found fewer proves less.
    assert!(
        blocks.len() >= 21,
        "only {} fixture blocks found",
        blocks.len()
    );
    for block in &blocks {
        let (layout, streams) = split_block(block);
        let (min_time, num_chunks) = meta_facts(block);
        assert_eq!(layout.records, num_chunks, "{}", block.display());
        assert_eq!(layout.window_ms, DEFAULT_WINDOW_MS);
        let first = layout
            .windows
            .first()
            .expect("a block with chunks has windows");
        assert_eq!(
            first.start,
            min_time - min_time.rem_euclid(DEFAULT_WINDOW_MS)
        );
        for w in &layout.windows {
            assert_eq!(w.bytes, streams[&w.start].len() as u64);
        }
        let record_bytes: u64 = layout.segments.iter().map(|s| s.size - 8).sum();
        assert_eq!(
            record_bytes,
            streams.values().map(|s| s.len() as u64).sum::<u64>()
        );

        let out = tempfile::tempdir().unwrap();
        let joined = join_streams(&block.join("index"), &layout, &streams, out.path())
            .unwrap_or_else(|e| panic!("{}: {e}", block.display()));
        assert_eq!(joined.records, num_chunks);
        let mut names: Vec<String> = fs::read_dir(block.join("chunks"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut rebuilt: Vec<String> = fs::read_dir(out.path().join("chunks"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        rebuilt.sort();
        assert_eq!(names, rebuilt, "{}", block.display());
        for name in &names {
            let original = fs::read(block.join("chunks").join(name)).unwrap();
            let copy = fs::read(out.path().join("chunks").join(name)).unwrap();
            assert!(
                original == copy,
                "{}/chunks/{name} differs",
                block.display()
            );
        }
    }
}

#[test]
fn the_2h_fixture_blocks_are_one_window_each() {
    for block in blocks_below(&fixtures_dir().join("data")) {
        let (layout, streams) = split_block(&block);
        let (min_time, num_chunks) = meta_facts(&block);
        assert_eq!(layout.windows.len(), 1, "{}", block.display());
        assert_eq!(layout.windows[0].start, min_time);
        assert_eq!(layout.windows[0].records, num_chunks);
        // One segment file, so the stream is that file without its header.
        let file = fs::read(block.join("chunks/000001")).unwrap();
        assert_eq!(streams[&min_time], file[8..]);
    }
}
