//! Where a stream is cut into blobs.
//!
//! A stream (a window's chunk records, an index) is cut into blobs of about
//! a target size, and only between *records*: byte strings that must stay in
//! one blob. For chunk data a record is one chunk record, so a frame never
//! splits one and a restore can hand records on as blobs decode; a caller
//! without records passes whatever slices it has, and blobs are cut between
//! them.
//!
//! Cuts depend only on the records, in order, and the target, never on
//! timing or on how the caller buffered its input: the same stream always
//! gives the same blobs, which is what lets an unchanged window be found by
//! its blob ids again.
//!
//! The rule: a record is added to the pending blob unless that would take
//! the blob past the target, in which case the pending blob is cut first; a
//! blob that reaches the target exactly is cut at once; a record longer than
//! the target is a blob of its own. So a blob is never longer than the
//! target unless it is a single record, and pending data never exceeds the
//! target.
//!
//! `emit` gets each blob as the cutter's own buffer, and may take it (the
//! backup hands it to a compressing thread that way, without a copy): the
//! cutter then starts a new one.

use anyhow::Result;

/// The default target size of a blob: 1 MiB of uncompressed data.
pub const DEFAULT_TARGET: usize = 1 << 20;

/// Cuts a stream of records into blobs; see the module documentation.
#[derive(Debug)]
pub struct BlobCutter {
    target: usize,
    pending: Vec<u8>,
}

impl BlobCutter {
    /// A cutter that aims at `target` bytes a blob (at least 1).
    pub fn new(target: usize) -> BlobCutter {
        BlobCutter {
            target: target.max(1),
            pending: Vec::new(),
        }
    }

    /// Adds `record`, handing every blob it completes to `emit`, in stream
    /// order (at most two: the pending blob, and the record alone).
    pub fn push(
        &mut self,
        record: &[u8],
        emit: &mut impl FnMut(&mut Vec<u8>) -> Result<()>,
    ) -> Result<()> {
        if !self.pending.is_empty() && self.pending.len() + record.len() > self.target {
            self.cut(emit)?;
        }
        if record.len() > self.target {
            return emit(&mut record.to_vec());
        }
        if self.pending.capacity() == 0 {
            self.pending.reserve_exact(self.target);
        }
        self.pending.extend_from_slice(record);
        if self.pending.len() == self.target {
            self.cut(emit)?;
        }
        Ok(())
    }

    /// Hands the last, partial blob to `emit`, if there is one. A stream
    /// without records (or of empty records only) yields no blob.
    pub fn finish(mut self, emit: &mut impl FnMut(&mut Vec<u8>) -> Result<()>) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.cut(emit)
    }

    fn cut(&mut self, emit: &mut impl FnMut(&mut Vec<u8>) -> Result<()>) -> Result<()> {
        let result = emit(&mut self.pending);
        self.pending.clear();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(target: usize, records: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut blobs = Vec::new();
        let mut emit = |b: &mut Vec<u8>| {
            blobs.push(std::mem::take(b));
            Ok(())
        };
        let mut cutter = BlobCutter::new(target);
        for r in records {
            cutter.push(r, &mut emit).unwrap();
        }
        cutter.finish(&mut emit).unwrap();
        blobs
    }

    fn lengths(blobs: &[Vec<u8>]) -> Vec<usize> {
        blobs.iter().map(Vec::len).collect()
    }

    #[test]
    fn blobs_are_cut_between_records_before_they_pass_the_target() {
        let r = |n: usize, b: u8| vec![b; n];
        let (a, b, c, d) = (r(400, 1), r(400, 2), r(300, 3), r(500, 4));
        let blobs = cut(1000, &[&a, &b, &c, &d]);
        // 400+400 fit, +300 would pass 1000: cut; 300+500 fit; end.
        assert_eq!(lengths(&blobs), [800, 800]);
        assert_eq!(blobs.concat(), [a, b, c, d].concat());
    }

    #[test]
    fn a_blob_that_reaches_the_target_is_cut_at_once() {
        let blobs = cut(1000, &[&[1; 600], &[2; 400], &[3; 10]]);
        assert_eq!(lengths(&blobs), [1000, 10]);
    }

    #[test]
    fn a_record_larger_than_the_target_is_a_blob_of_its_own() {
        let big = vec![9u8; 5000];
        let blobs = cut(1000, &[&[1; 10], &big, &[2; 10]]);
        assert_eq!(lengths(&blobs), [10, 5000, 10]);
        assert_eq!(blobs[1], big);
    }

    #[test]
    fn empty_streams_give_no_blob_and_empty_records_change_nothing() {
        assert!(cut(1000, &[]).is_empty());
        assert!(cut(1000, &[b"", b""]).is_empty());
        assert_eq!(
            cut(4, &[b"ab", b"", b"cd", b"", b"e"]),
            [b"abcd".to_vec(), b"e".to_vec()]
        );
    }

    /// The same records give the same blobs, however the stream was fed:
    /// the cuts depend on the records alone.
    #[test]
    fn cuts_are_deterministic() {
        let records: Vec<Vec<u8>> = (0..2000u32)
            .map(|i| vec![(i % 251) as u8; (i as usize * 7919) % 3000 + 1])
            .collect();
        let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        let first = cut(64 << 10, &refs);
        assert_eq!(first, cut(64 << 10, &refs));
        assert_eq!(first.concat(), records.concat());
        for blob in &first[..first.len() - 1] {
            assert!(blob.len() <= 64 << 10);
            // Each cut was needed: the next record would not have fitted.
            assert!(blob.len() > (64 << 10) - 3000, "{}", blob.len());
        }
    }

    #[test]
    fn an_error_from_emit_stops_the_cutter() {
        let mut cutter = BlobCutter::new(4);
        let mut failing = |_: &mut Vec<u8>| anyhow::bail!("the encoder is gone");
        let err = cutter.push(b"abcd", &mut failing).unwrap_err();
        assert_eq!(err.to_string(), "the encoder is gone");
    }
}
