//! The framing of a block's `index` file, for the checker
//! ([`super::check`]) and whoever else reads an index.
//!
//! An index is a 5-byte header (magic `0xBAAAD700`, version), its sections,
//! and a 52-byte table of contents at the end: six big-endian u64 section
//! offsets and a CRC32C over them. The series section holds one entry per
//! series, sorted by label set and (from version 2) 16-byte aligned: `len
//! <uvarint> | labels | chunks | CRC32C <4b>`, where each chunk is described
//! by its time range and its reference `segment << 32 | offset` into the
//! chunk segment files (see prometheus/prometheus `tsdb/docs/format/index.md`
//! and `tsdb/index/index.go`, `Decoder.Series`).
//!
//! [`ChunkMetas`] decodes a series entry's chunk metas lazily, one at a
//! time, from the entry's bytes.

use super::reader::{SliceDecoder, SliceError};

pub(crate) const INDEX_MAGIC: u32 = 0xBAAA_D700;
pub(crate) const HEADER_LEN: u64 = 5;
pub(crate) const TOC_LEN: u64 = 6 * 8 + 4;
/// No real series entry comes near this (it would need millions of chunks).
pub(crate) const MAX_SERIES_ENTRY: u64 = 16 << 20;

/// The six TOC offsets, in the order they are stored.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Toc {
    pub symbols: u64,
    pub series: u64,
    pub label_indices: u64,
    pub label_offset_table: u64,
    pub postings: u64,
    pub postings_offset_table: u64,
}

impl Toc {
    /// The TOC from its six stored offsets.
    pub(crate) fn from_offsets(v: [u64; 6]) -> Toc {
        Toc {
            symbols: v[0],
            series: v[1],
            label_indices: v[2],
            label_offset_table: v[3],
            postings: v[4],
            postings_offset_table: v[5],
        }
    }
}

/// Byte ranges `[start, end)` of each part; `None` when the TOC says absent.
pub(crate) struct Layout {
    pub symbols: (u64, u64),
    pub series: Option<(u64, u64)>,
    pub label_indices: Option<(u64, u64)>,
    pub postings: Option<(u64, u64)>,
    pub label_offset_table: Option<(u64, u64)>,
    pub postings_offset_table: Option<(u64, u64)>,
}

/// Validates the TOC offsets and turns them into section ranges.
///
/// Sections appear in the file in this order (which is not the TOC's order):
/// symbols, series, label indices, postings, label offset table, postings
/// offset table. A zero offset means "absent"; each present section ends
/// where the next present one starts, the last one where the TOC starts.
pub(crate) fn plan_layout(toc: &Toc, toc_start: u64) -> Result<Layout, String> {
    let parts = [
        ("symbol table", toc.symbols),
        ("series", toc.series),
        ("label indices", toc.label_indices),
        ("postings", toc.postings),
        ("label offset table", toc.label_offset_table),
        ("postings offset table", toc.postings_offset_table),
    ];
    if toc.symbols == 0 {
        return Err("TOC has no symbol table offset".into());
    }
    let mut prev: (&str, u64) = ("header", HEADER_LEN);
    for &(name, off) in parts.iter().filter(|p| p.1 != 0) {
        if off < prev.1 || off > toc_start {
            return Err(format!(
                "TOC offset of the {name} is {off}, but it must lie between the {} (at {}) and the TOC (at {toc_start})",
                prev.0, prev.1
            ));
        }
        prev = (name, off);
    }
    let range = |i: usize| -> Option<(u64, u64)> {
        let start = parts[i].1;
        let end = parts[i + 1..]
            .iter()
            .map(|p| p.1)
            .find(|&o| o != 0)
            .unwrap_or(toc_start);
        (start != 0).then_some((start, end))
    };
    Ok(Layout {
        symbols: (toc.symbols, range(0).map_or(toc_start, |r| r.1)),
        series: range(1),
        label_indices: range(2),
        postings: range(3),
        label_offset_table: range(4),
        postings_offset_table: range(5),
    })
}

/// One chunk as the index describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkMeta {
    /// `segment << 32 | offset` into the chunk segment files.
    pub chunk_ref: u64,
    pub min_time: i64,
    pub max_time: i64,
}

/// The chunk metas of one series entry, decoded one at a time from the
/// entry's bytes (`Decoder.Series` in Go): the first chunk's `minTime` is a
/// varint, every other time a uvarint delta (a chunk's `minTime` from the
/// previous chunk's `maxTime`, its `maxTime` from its own `minTime`), the
/// first reference a uvarint and every other one a varint delta.
pub(crate) struct ChunkMetas<'a> {
    d: SliceDecoder<'a>,
    left: u64,
    first: bool,
    max_time: i64,
    chunk_ref: u64,
}

impl<'a> ChunkMetas<'a> {
    /// Starts at the chunk count of a series entry (just after its labels).
    pub(crate) fn new(mut d: SliceDecoder<'a>) -> Result<ChunkMetas<'a>, SliceError> {
        let left = d.uvarint()?;
        Ok(ChunkMetas {
            d,
            left,
            first: true,
            max_time: 0,
            chunk_ref: 0,
        })
    }

    /// The decoder, positioned after the chunks decoded so far.
    pub(crate) fn decoder(&self) -> &SliceDecoder<'a> {
        &self.d
    }

    fn decode(&mut self) -> Result<ChunkMeta, SliceError> {
        let d = &mut self.d;
        let min_time = if self.first {
            d.varint()?
        } else {
            self.max_time.wrapping_add(d.uvarint()? as i64)
        };
        self.max_time = min_time.wrapping_add(d.uvarint()? as i64);
        self.chunk_ref = if self.first {
            d.uvarint()?
        } else {
            self.chunk_ref.wrapping_add(d.varint()? as u64)
        };
        self.first = false;
        Ok(ChunkMeta {
            chunk_ref: self.chunk_ref,
            min_time,
            max_time: self.max_time,
        })
    }
}

impl Iterator for ChunkMetas<'_> {
    type Item = Result<ChunkMeta, SliceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let item = self.decode();
        if item.is_err() {
            self.left = 0;
        }
        Some(item)
    }
}
