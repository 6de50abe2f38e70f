//! The framing of a block's `index` file, shared by the checker
//! ([`super::check`]) and the window engine ([`super::windows`]).
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
//! [`SeriesReader`] walks that section front to back through one 256 KiB
//! buffer and one reused entry buffer, handing out each series' chunk metas
//! as a lazy [`ChunkMetas`] iterator over the entry's bytes, so a walk costs
//! the same memory for ten series as for ten million, and a series with many
//! chunks costs no more than its entry's bytes (at most
//! [`MAX_SERIES_ENTRY`]). Nothing read is trusted: every length is checked
//! against its section, and every entry's CRC before it is decoded.

use std::fmt;
use std::io;
use std::path::Path;

use super::reader::{FileReader, ReadError, SliceDecoder, SliceError};

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

/// Skips a series entry's labels (`count <uvarint>`, then a name and a value
/// symbol reference per label), leaving `d` at its chunk count.
pub(crate) fn skip_labels(d: &mut SliceDecoder) -> Result<(), SliceError> {
    let labels = d.uvarint()?;
    for _ in 0..labels {
        d.uvarint()?;
        d.uvarint()?;
    }
    Ok(())
}

/// Why the series section could not be read.
#[derive(Debug)]
pub enum IndexError {
    /// The operating system failed a read.
    Io(io::Error),
    /// The bytes at `offset` are not what an index holds there.
    Format { offset: u64, message: String },
}

impl IndexError {
    fn format(offset: u64, message: impl Into<String>) -> IndexError {
        IndexError::Format {
            offset,
            message: message.into(),
        }
    }
}

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IndexError::Io(e) => write!(f, "reading the index failed: {e}"),
            IndexError::Format { offset, message } => {
                write!(f, "index at offset {offset}: {message}")
            }
        }
    }
}

impl std::error::Error for IndexError {}

impl From<ReadError> for IndexError {
    fn from(e: ReadError) -> IndexError {
        match e {
            ReadError::Io(e) => IndexError::Io(e),
            ReadError::Overrun { at, limit } => {
                IndexError::format(at, format!("a read would run past offset {limit}"))
            }
            ReadError::BadVarint { at } => IndexError::format(at, "malformed varint"),
        }
    }
}

/// A forward walk over the series section of an index file.
pub(crate) struct SeriesReader {
    r: FileReader,
    /// Entries start at multiples of this (16 from version 2, 1 before).
    align: u64,
    pos: u64,
    end: u64,
    entry: Vec<u8>,
}

/// One series entry: where it starts, and its chunks.
pub(crate) struct Series<'a> {
    /// Offset of the entry in the index file.
    pub offset: u64,
    pub chunks: ChunkMetas<'a>,
}

impl SeriesReader {
    /// Opens `path`, checks its header and TOC and finds the series section.
    pub(crate) fn open(path: &Path) -> Result<SeriesReader, IndexError> {
        let mut r = FileReader::open(path).map_err(IndexError::Io)?;
        let len = r.len();
        if len < HEADER_LEN + TOC_LEN {
            let msg = format!("the file is {len} bytes, too short for a header and a TOC");
            return Err(IndexError::format(0, msg));
        }
        let magic = r.be32()?;
        if magic != INDEX_MAGIC {
            let msg = format!("magic is {magic:#010x}, expected {INDEX_MAGIC:#010x}");
            return Err(IndexError::format(0, msg));
        }
        let version = r.u8()?;
        if !(1..=3).contains(&version) {
            let msg = format!("format version is {version}, expected 1, 2 or 3");
            return Err(IndexError::format(4, msg));
        }
        let toc_start = len - TOC_LEN;
        r.seek(toc_start);
        r.start_crc();
        let mut offsets = [0u64; 6];
        for slot in &mut offsets {
            *slot = r.be64()?;
        }
        let computed = r.finish_crc();
        let stored = r.be32()?;
        if computed != stored {
            let msg = format!("TOC CRC32C is {stored:#010x}, computed {computed:#010x}");
            return Err(IndexError::format(toc_start, msg));
        }
        let layout = plan_layout(&Toc::from_offsets(offsets), toc_start)
            .map_err(|m| IndexError::format(toc_start, m))?;
        let (pos, end) = layout.series.unwrap_or((0, 0));
        r.seek(pos);
        Ok(SeriesReader {
            r,
            align: if version == 1 { 1 } else { 16 },
            pos,
            end,
            entry: Vec::new(),
        })
    }

    /// The next series entry, or `None` after the last one. Its CRC has been
    /// checked; its chunk metas are decoded as they are iterated.
    pub(crate) fn next_series(&mut self) -> Result<Option<Series<'_>>, IndexError> {
        let start = self.pos.next_multiple_of(self.align).min(self.end);
        if start >= self.end {
            return Ok(None);
        }
        let r = &mut self.r;
        r.seek(start);
        r.set_limit(self.end);
        let len = r.uvarint()?;
        if len == 0 || len > MAX_SERIES_ENTRY {
            let msg = format!("series entry of {len} bytes (expected 1 to {MAX_SERIES_ENTRY})");
            return Err(IndexError::format(start, msg));
        }
        r.start_crc();
        let read = r.read_vec(len as usize, &mut self.entry);
        let computed = r.finish_crc();
        read?;
        let stored = r.be32()?;
        if computed != stored {
            let msg = format!("series entry CRC32C is {stored:#010x}, computed {computed:#010x}");
            return Err(IndexError::format(start, msg));
        }
        self.pos = r.pos();
        let bad = |e: SliceError| {
            let at = match e {
                SliceError::Short { at } | SliceError::BadVarint { at } => at,
            };
            IndexError::format(start, format!("series entry malformed at byte {at}"))
        };
        let mut d = SliceDecoder::new(&self.entry);
        skip_labels(&mut d).map_err(bad)?;
        let chunks = ChunkMetas::new(d).map_err(bad)?;
        Ok(Some(Series {
            offset: start,
            chunks,
        }))
    }
}

/// Turns a chunk meta decoding error inside the entry at `entry` into an
/// [`IndexError`].
pub(crate) fn meta_error(entry: u64, e: SliceError) -> IndexError {
    let at = match e {
        SliceError::Short { at } | SliceError::BadVarint { at } => at,
    };
    IndexError::format(
        entry,
        format!("series entry: chunk meta malformed at byte {at}"),
    )
}
