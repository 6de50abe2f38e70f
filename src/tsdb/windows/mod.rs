//! Window streams: a block's chunk records regrouped by time, so that the
//! records a block shares with the blocks it was compacted from (or into)
//! are the same byte strings, stored once (repository format 2, see
//! `docs/FORMAT.md`, "Format 2 (design)").
//!
//! Prometheus writes a block series by series in index order, each series'
//! chunk records one after the other, and its compactor copies records byte
//! for byte when the source blocks do not overlap; only their offsets
//! change. Head chunks never cross a 2 h boundary. So for an aligned window
//! W, the records of the chunks whose `minTime` lies in W, taken in index
//! order, are the same bytes in W's 2 h block and in every block compacted
//! from it: that byte string is W's *window stream*.
//!
//! Two operations, both streaming, knowing nothing of repositories:
//!
//! - [`split`] walks a block's index (series section) in step with its chunk
//!   segment files and hands every record, with its window, to a
//!   [`RecordSink`]; it returns the [`WindowLayout`] needed to rebuild the
//!   files, or says why the files are [not in step](NotInStep) with the
//!   index (they are then stored as they are).
//! - [`join`] rebuilds the segment files from the index, the layout and one
//!   reader per window, byte for byte, trusting none of them: every
//!   reference, length and count is checked before a byte is written, and
//!   no file ever grows past its recorded size.
//!
//! Memory does not grow with the number of series, chunks or records: the
//! index is read through one 256 KiB buffer and one series entry at a time
//! (at most 16 MiB, in practice a few hundred bytes), a segment through one
//! 256 KiB buffer, a record into one buffer of at most [`MAX_RECORD_DATA`]
//! plus its framing, and the only tables are one entry per window and per
//! segment file. The `memory` tests measure it.
//!
//! A window is `[k * window_ms, (k + 1) * window_ms)` for the integer `k`
//! that holds the chunk's `minTime` (floor division, so negative times fall
//! in the window below zero, as they should).

mod join;
mod split;

#[cfg(test)]
pub(crate) mod tests;

pub use join::{join, join_into, Crcs, JoinError, Joined, SegmentFiles, SegmentSink};
pub use split::{split, NotInStep, Split};

/// The default window: Prometheus's smallest block range, 2 h.
pub const DEFAULT_WINDOW_MS: i64 = 2 * 3600 * 1000;

/// The longest chunk data a record may hold here (1 MiB). Real chunks are
/// far smaller: XOR chunks stop at 1 KiB, histogram chunks at a few KiB. A
/// block with a larger one is stored as files; a stream offering one is
/// refused, which bounds the record buffer.
pub const MAX_RECORD_DATA: u64 = 1 << 20;

/// The most windows one block may span (about 833 days at 2 h; Prometheus
/// caps blocks at 31 days). Bounds the window table of a hostile layout.
pub const MAX_WINDOWS: usize = 10_000;

/// Where [`split`] sends each chunk record. Records of one window arrive in
/// the order of that window's stream; `bytes` is only valid for the call.
pub trait RecordSink {
    /// One chunk record (`uvarint len | encoding | data | CRC32C`, exactly
    /// as stored) belonging to the window starting at `window` (ms).
    fn record(&mut self, window: i64, bytes: &[u8]) -> std::io::Result<()>;
}

/// How to rebuild a block's chunk segment files from its window streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowLayout {
    /// The window length the streams were cut with (ms).
    pub window_ms: i64,
    /// Every segment file, in order (segment 0 is `chunks/000001`).
    pub segments: Vec<SegmentLayout>,
    /// The records in all segment files (= the chunks in the index).
    pub records: u64,
    /// One entry per window stream, by ascending `start`.
    pub windows: Vec<WindowTotals>,
}

/// One chunk segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentLayout {
    /// Block-relative path, `chunks/000001` for segment 0.
    pub path: String,
    /// Its size in bytes, header included.
    pub size: u64,
    /// Its 8-byte header, as stored.
    pub header: [u8; 8],
    /// SHA-256 of the whole file.
    pub sha256: [u8; 32],
}

/// What one window stream holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowTotals {
    /// The window's first millisecond (a multiple of `window_ms`).
    pub start: i64,
    /// Chunk records in the stream.
    pub records: u64,
    /// The stream's length in bytes.
    pub bytes: u64,
}

/// The start of the window of length `window_ms` holding `time`, or `None`
/// when that start is not a representable millisecond (times within one
/// window of `i64::MIN`).
pub fn window_start(time: i64, window_ms: i64) -> Option<i64> {
    if window_ms <= 0 {
        return None;
    }
    time.div_euclid(window_ms).checked_mul(window_ms)
}

#[cfg(test)]
mod window_tests {
    use super::*;

    #[test]
    fn windows_floor_towards_minus_infinity() {
        let w = DEFAULT_WINDOW_MS;
        assert_eq!(window_start(0, w), Some(0));
        assert_eq!(window_start(w - 1, w), Some(0));
        assert_eq!(window_start(w, w), Some(w));
        assert_eq!(window_start(-1, w), Some(-w));
        assert_eq!(window_start(-w, w), Some(-w));
        assert_eq!(window_start(-w - 1, w), Some(-2 * w));
        assert_eq!(
            window_start(1_767_232_785_001, w),
            Some(1_767_225_600_000),
            "the first 2h fixture block's last sample"
        );
        assert_eq!(window_start(i64::MAX, w), Some(i64::MAX / w * w));
        assert_eq!(window_start(i64::MIN, w), None);
        assert_eq!(window_start(i64::MIN, 1), Some(i64::MIN));
        assert_eq!(window_start(5, 0), None);
        assert_eq!(window_start(5, -7), None);
    }
}
