//! The `index` file: symbols, series, label indices, postings and their tables.
//!
//! Prometheus opens an index by reading its last 52 bytes, the table of
//! contents (six big-endian u64 section offsets and a CRC32C over them), then
//! the symbol table and the postings offset table. Everything else is read
//! lazily, one entry at a time, when a query needs it; each entry carries its
//! own CRC. We check all of it in one sequential pass per region:
//!
//! - header: magic `0xBAAAD700` and a known version. Prometheus 2.x and 3.x
//!   write 2; 1 is the pre-2.2 format (series IDs are byte offsets, symbol
//!   references are offsets); 3 is accepted since 2.55 and read exactly like 2;
//! - label indices and the label offset table are no longer read by anyone,
//!   and Prometheus 3.7+ no longer writes them (still as version 2): its TOC
//!   gives the label indices an empty range and points the label offset table
//!   at the postings offset table, which is then not checked twice;
//! - TOC: CRC, and offsets that lie inside the file and in the documented order;
//! - symbol table: CRC, symbol count, strictly ascending symbols;
//! - series (16-byte aligned in v2+, the series ID is offset / 16): each
//!   entry's CRC, symbol references in range, label names in ascending order,
//!   and that the entry decodes exactly to its declared length; the chunk
//!   references it holds can be handed to the segment walker;
//! - label indices and postings (4-byte aligned): CRC, a length that matches
//!   the entry count, postings strictly increasing and naming real series;
//! - label offset table and postings offset table: CRC, and every offset
//!   landing exactly on a section of the region it indexes, with as many
//!   table entries as sections.
//!
//! Padding between entries must be zero: the Go writer only ever writes
//! zeros there, so anything else is damage even though Prometheus would not
//! notice it. Problems inside an entry whose CRC fails are not reported on
//! their own: the CRC mismatch already says the entry cannot be trusted.

use std::path::Path;

use super::chunks::{RefVerdict, Segments};
use super::{open_or_report, ProblemKind, Problems};
use crate::tsdb::index::{
    plan_layout, ChunkMeta, ChunkMetas, Layout, Toc, HEADER_LEN, INDEX_MAGIC, MAX_SERIES_ENTRY,
    TOC_LEN,
};
use crate::tsdb::reader::{
    FileReader, Lookup, ReadError, ScanState, SliceDecoder, SliceError, StartCursor, Step,
};

pub(crate) const INDEX_FILE: &str = "index";
/// Longest symbol whose sort order is checked (longer ones are just hashed).
const MAX_COMPARED_SYMBOL: u64 = 1 << 20;

/// What the index holds, for cross-checks and the tombstones check.
pub(crate) struct IndexFacts {
    pub num_series: u64,
    pub num_chunks: u64,
    /// Highest segment index any (CRC-valid) chunk reference names.
    pub max_segment: Option<u64>,
    /// Chunks lying entirely outside the block's `[minTime, maxTime)`.
    pub outside_block: Option<OutsideChunks>,
    pub series: SeriesIds,
    /// No problem at all was found in the index.
    pub clean: bool,
}

/// How many chunks lie entirely outside the block's time range, and the first.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutsideChunks {
    pub count: u64,
    /// Offset of the series entry holding the first such chunk.
    pub entry: u64,
    pub min_time: i64,
    pub max_time: i64,
}

/// The set of valid series references (v1: byte offsets; v2+: offset / 16).
pub(crate) struct SeriesIds {
    align: u64,
    region_start: u64,
    bits: Vec<u64>,
    /// False when the series scan stopped early or hit damage, in which case
    /// membership tests would produce noise rather than findings.
    complete: bool,
}

impl SeriesIds {
    fn new(align: u64, region: (u64, u64)) -> SeriesIds {
        let slots = (region.1 - region.0) / align + 1;
        SeriesIds {
            align,
            region_start: region.0,
            bits: vec![0; (slots / 64 + 1) as usize],
            complete: true,
        }
    }

    fn slot(&self, offset: u64) -> Option<(usize, u64)> {
        let rel = offset.checked_sub(self.region_start)?;
        let slot = rel / self.align;
        let word = usize::try_from(slot / 64).ok()?;
        (word < self.bits.len()).then_some((word, 1 << (slot % 64)))
    }

    fn insert(&mut self, offset: u64) {
        if let Some((word, bit)) = self.slot(offset) {
            self.bits[word] |= bit;
        }
    }

    /// `Some(true)` if a series entry has reference `id`; `None` if unknown.
    pub(crate) fn contains(&self, id: u64) -> Option<bool> {
        if !self.complete {
            return None;
        }
        let found = id
            .checked_mul(self.align)
            .and_then(|off| self.slot(off))
            .is_some_and(|(word, bit)| self.bits[word] & bit != 0);
        Some(found)
    }
}

/// What later checks need to know about the symbol table.
#[derive(Clone, Copy)]
struct Symbols {
    count: u64,
    /// Range of the symbol entries (v1 references are offsets into it).
    entries: (u64, u64),
}

struct Ctx {
    version: u8,
    symbols: Option<Symbols>,
    /// The block's `[minTime, maxTime)` from `meta.json`, if readable.
    block_range: Option<(i64, i64)>,
}

impl Ctx {
    fn symbol_ok(&self, sym_ref: u64) -> bool {
        match self.symbols {
            None => true,
            Some(s) if self.version == 1 => sym_ref >= s.entries.0 && sym_ref < s.entries.1,
            Some(s) => sym_ref < s.count,
        }
    }
}

/// A problem inside a section, reported only if the section's CRC is valid.
struct Finding {
    offset: u64,
    kind: ProblemKind,
    message: String,
}

impl Finding {
    fn new(offset: u64, kind: ProblemKind, message: String) -> Finding {
        Finding {
            offset,
            kind,
            message,
        }
    }

    fn out_of_range(offset: u64, message: String) -> Finding {
        Finding::new(offset, ProblemKind::OutOfRange, message)
    }
}

impl From<ReadError> for Finding {
    fn from(e: ReadError) -> Finding {
        match e {
            ReadError::Overrun { at, limit } => {
                let msg = format!("entry runs past the end of its section at {limit}");
                Finding::out_of_range(at, msg)
            }
            ReadError::BadVarint { at } => Finding::out_of_range(at, "malformed varint".into()),
            ReadError::Io(e) => Finding::new(0, ProblemKind::Io, format!("read failed: {e}")),
        }
    }
}

/// Checks the index of the block in `dir`. Returns `None` when the file is
/// missing or its header or TOC is too damaged to go further.
pub(crate) fn check_index(
    dir: &Path,
    block_range: Option<(i64, i64)>,
    refs: Option<&mut dyn Segments>,
    problems: &mut Problems,
) -> Option<IndexFacts> {
    let path = dir.join(INDEX_FILE);
    let mut r = open_or_report(&path, INDEX_FILE, problems)?;
    let before = problems.count(INDEX_FILE);
    let version = check_header(&mut r, problems)?;
    let toc = read_toc(&mut r, problems)?;
    let layout = match plan_layout(&toc, r.len() - TOC_LEN) {
        Ok(layout) => layout,
        Err(msg) => {
            problems.push(
                INDEX_FILE,
                Some(r.len() - TOC_LEN),
                ProblemKind::OutOfRange,
                msg,
            );
            return None;
        }
    };
    let symbols = check_symbols(&mut r, layout.symbols, problems);
    let ctx = Ctx {
        version,
        symbols,
        block_range,
    };
    let series_region = layout.series.unwrap_or((0, 0));
    let series = check_series(&mut r, series_region, &ctx, refs, problems);
    check_label_indices(&path, &layout, &ctx, problems);
    check_postings(&path, &layout, &series, problems);
    Some(IndexFacts {
        num_series: series.count,
        num_chunks: series.chunks,
        max_segment: series.max_segment,
        outside_block: series.outside_block,
        series: series.ids,
        clean: problems.count(INDEX_FILE) == before,
    })
}

fn check_header(r: &mut FileReader, problems: &mut Problems) -> Option<u8> {
    let len = r.len();
    r.seek(0);
    if len >= 4 {
        let magic = read_or_report(r.be32(), 0, "the header", problems)?;
        if magic != INDEX_MAGIC {
            let msg = format!("index magic is {magic:#010x}, expected {INDEX_MAGIC:#010x}");
            problems.push(INDEX_FILE, Some(0), ProblemKind::BadMagic, msg);
            return None;
        }
    }
    if len < HEADER_LEN + TOC_LEN {
        let msg = format!(
            "index is {len} bytes, shorter than its {HEADER_LEN}-byte header plus {TOC_LEN}-byte TOC"
        );
        problems.push(INDEX_FILE, Some(0), ProblemKind::Truncated, msg);
        return None;
    }
    let version = read_or_report(r.u8(), 4, "the header", problems)?;
    if !(1..=3).contains(&version) {
        let msg = format!("index format version is {version}, expected 1, 2 or 3");
        problems.push(INDEX_FILE, Some(4), ProblemKind::BadVersion, msg);
        return None;
    }
    Some(version)
}

/// Turns a failed read of a fixed-position field into an `Io` problem.
fn read_or_report<T>(
    res: Result<T, ReadError>,
    at: u64,
    what: &str,
    problems: &mut Problems,
) -> Option<T> {
    match res {
        Ok(v) => Some(v),
        Err(e) => {
            let msg = format!("reading {what} failed: {e}");
            problems.push(INDEX_FILE, Some(at), ProblemKind::Io, msg);
            None
        }
    }
}

fn read_toc(r: &mut FileReader, problems: &mut Problems) -> Option<Toc> {
    let at = r.len() - TOC_LEN;
    r.seek(at);
    r.start_crc();
    let mut v = [0u64; 6];
    for slot in &mut v {
        *slot = read_or_report(r.be64(), at, "the TOC", problems)?;
    }
    let computed = r.finish_crc();
    let stored = read_or_report(r.be32(), at, "the TOC", problems)?;
    if computed != stored {
        let msg = format!(
            "TOC (last {TOC_LEN} bytes): stored CRC32C {stored:#010x}, computed {computed:#010x}; \
             no section offset can be trusted"
        );
        problems.push(INDEX_FILE, Some(at), ProblemKind::CrcMismatch, msg);
        return None;
    }
    Some(Toc::from_offsets(v))
}

/// Checks one `len <4b> | content | CRC32C <4b>` section starting at `start`
/// and ending no later than `bound`. Returns the parse result (`None` if the
/// CRC or the parse failed) and the offset just past the CRC, or `Err` when
/// the section's own length cannot be trusted, so nothing after it can be
/// found either.
fn check_section<T>(
    r: &mut FileReader,
    what: &str,
    start: u64,
    bound: u64,
    problems: &mut Problems,
    parse: impl FnOnce(&mut FileReader, &mut Problems) -> Result<T, Finding>,
) -> Result<(Option<T>, u64), ()> {
    r.seek(start);
    r.set_limit(bound);
    let Ok(len) = r.be32() else {
        let msg =
            format!("{what}: its 4-byte length field runs past the end of its region at {bound}");
        problems.push(INDEX_FILE, Some(start), ProblemKind::OutOfRange, msg);
        return Err(());
    };
    let content_end = start + 4 + u64::from(len);
    let crc_end = content_end + 4;
    if crc_end > bound {
        let msg = format!(
            "{what}: declares {len} bytes, so it would end at {crc_end}, past the end of its region at {bound}"
        );
        problems.push(INDEX_FILE, Some(start), ProblemKind::OutOfRange, msg);
        return Err(());
    }
    r.set_limit(content_end);
    r.start_crc();
    let mut parsed = parse(r, problems);
    if parsed.is_ok() && r.pos() < content_end {
        let left = content_end - r.pos();
        let at = r.pos();
        parsed = Err(Finding::out_of_range(
            at,
            format!("{left} unexpected bytes after the last entry"),
        ));
    }
    if let Err(Finding {
        kind: ProblemKind::Io,
        message,
        ..
    }) = &parsed
    {
        problems.push(
            INDEX_FILE,
            Some(start),
            ProblemKind::Io,
            format!("{what}: {message}"),
        );
        return Err(());
    }
    let rest = content_end.saturating_sub(r.pos());
    let computed = r.skip(rest).map(|_| r.finish_crc());
    r.set_limit(bound);
    let (Ok(computed), Ok(stored)) = (computed, r.be32()) else {
        problems.push(
            INDEX_FILE,
            Some(start),
            ProblemKind::Io,
            format!("{what}: read failed"),
        );
        return Err(());
    };
    if computed != stored {
        let msg = format!(
            "{what}: stored CRC32C {stored:#010x}, computed {computed:#010x} over its {len} bytes"
        );
        problems.push(INDEX_FILE, Some(start), ProblemKind::CrcMismatch, msg);
        return Ok((None, crc_end));
    }
    match parsed {
        Ok(t) => Ok((Some(t), crc_end)),
        Err(f) => {
            problems.push(
                INDEX_FILE,
                Some(f.offset),
                f.kind,
                format!("{what}: {}", f.message),
            );
            Ok((None, crc_end))
        }
    }
}

/// Reports the first non-zero byte in `[from, to)`, where only padding belongs.
fn check_zero_gap(r: &mut FileReader, from: u64, to: u64, what: &str, problems: &mut Problems) {
    if from >= to {
        return;
    }
    r.seek(from);
    r.set_limit(to);
    match r.find_nonzero(to) {
        Ok(None) => {}
        Ok(Some(at)) => {
            let msg = format!("non-zero byte in the padding {what} (padding must be zero)");
            problems.push(INDEX_FILE, Some(at), ProblemKind::TrailingGarbage, msg);
        }
        Err(e) => {
            let msg = format!("reading the padding {what} failed: {e}");
            problems.push(INDEX_FILE, Some(from), ProblemKind::Io, msg);
        }
    }
}

fn check_symbols(
    r: &mut FileReader,
    (start, end): (u64, u64),
    problems: &mut Problems,
) -> Option<Symbols> {
    let what = format!("symbol table at {start}");
    let (symbols, crc_end) = check_section(r, &what, start, end, problems, parse_symbols).ok()?;
    check_zero_gap(r, crc_end, end, "after the symbol table", problems);
    symbols
}

fn parse_symbols(r: &mut FileReader, _: &mut Problems) -> Result<Symbols, Finding> {
    let entries_start = r.pos() + 4;
    let count = u64::from(r.be32()?);
    let mut prev: Vec<u8> = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    let mut comparable = false;
    for i in 0..count {
        let at = r.pos();
        let len = r.uvarint()?;
        if len > MAX_COMPARED_SYMBOL {
            r.skip(len)?;
            comparable = false;
            continue;
        }
        r.read_vec(len as usize, &mut cur)?;
        if comparable && cur <= prev {
            let msg = format!("symbol #{i} is not greater than the one before it (symbols must be sorted and unique)");
            return Err(Finding::out_of_range(at, msg));
        }
        std::mem::swap(&mut prev, &mut cur);
        comparable = true;
    }
    Ok(Symbols {
        count,
        entries: (entries_start, r.pos()),
    })
}

/// What the series scan found.
struct SeriesFacts {
    count: u64,
    chunks: u64,
    max_segment: Option<u64>,
    outside_block: Option<OutsideChunks>,
    ids: SeriesIds,
}

/// Walks the series region entry by entry.
fn check_series(
    r: &mut FileReader,
    region: (u64, u64),
    ctx: &Ctx,
    mut refs: Option<&mut dyn Segments>,
    problems: &mut Problems,
) -> SeriesFacts {
    let align = if ctx.version == 1 { 1 } else { 16 };
    let mut facts = SeriesFacts {
        count: 0,
        chunks: 0,
        max_segment: None,
        outside_block: None,
        ids: SeriesIds::new(align, region),
    };
    let before = problems.count(INDEX_FILE);
    let (mut pos, end) = region;
    let mut buf = Vec::new();
    let mut metas = Vec::new();
    while pos < end {
        let start = pos.next_multiple_of(align).min(end);
        check_zero_gap(r, pos, start, "before a series entry", problems);
        if start >= end {
            break;
        }
        let Some(next) = check_series_entry(r, start, end, ctx, &mut buf, &mut metas, problems)
        else {
            facts.ids.complete = false;
            break;
        };
        facts.ids.insert(start);
        facts.count += 1;
        facts.chunks += metas.len() as u64;
        let max_segment = metas.iter().map(|m| m.chunk_ref >> 32).max();
        facts.max_segment = facts.max_segment.max(max_segment);
        if let Some(range) = ctx.block_range {
            note_chunks_outside(&mut facts.outside_block, start, &metas, range);
        }
        if let Some(walker) = refs.as_deref_mut() {
            check_chunk_refs(walker, start, &metas, problems);
        }
        pos = next;
    }
    if problems.count(INDEX_FILE) > before {
        facts.ids.complete = false;
    }
    facts
}

/// Counts chunks no query of this block could ever return: the compactor
/// trims chunks to the block's range, so one lying entirely outside it means
/// `minTime`/`maxTime` in `meta.json` are wrong. (Chunks merely straddling a
/// boundary are left alone: old versions wrote those.)
fn note_chunks_outside(
    outside: &mut Option<OutsideChunks>,
    entry: u64,
    metas: &[ChunkMeta],
    (min_time, max_time): (i64, i64),
) {
    for m in metas
        .iter()
        .filter(|m| m.max_time < min_time || m.min_time >= max_time)
    {
        let first = OutsideChunks {
            count: 0,
            entry,
            min_time: m.min_time,
            max_time: m.max_time,
        };
        outside.get_or_insert(first).count += 1;
    }
}

/// Checks the series entry at `start`; returns where the next one may begin,
/// or `None` if its length cannot be trusted. `metas` receives the entry's
/// chunks (left empty if the entry is damaged).
fn check_series_entry(
    r: &mut FileReader,
    start: u64,
    end: u64,
    ctx: &Ctx,
    buf: &mut Vec<u8>,
    metas: &mut Vec<ChunkMeta>,
    problems: &mut Problems,
) -> Option<u64> {
    metas.clear();
    let frame = read_series_frame(r, start, end, buf, problems)?;
    if !frame.crc_ok {
        return Some(frame.next);
    }
    let what = format!("series entry at {start}");
    if frame.len > MAX_SERIES_ENTRY {
        let msg = format!(
            "{what}: {} bytes long, larger than any real series entry ({MAX_SERIES_ENTRY})",
            frame.len
        );
        problems.push(INDEX_FILE, Some(start), ProblemKind::OutOfRange, msg);
    } else if let Err((at, msg)) = decode_series(buf, ctx, metas) {
        metas.clear();
        let at = frame.data_start + at as u64;
        let msg = format!("{what}: {msg}");
        problems.push(INDEX_FILE, Some(at), ProblemKind::OutOfRange, msg);
    }
    Some(frame.next)
}

/// Where a series entry's data lies, and whether its CRC matched.
struct EntryFrame {
    data_start: u64,
    len: u64,
    /// Offset just past the entry's CRC.
    next: u64,
    crc_ok: bool,
}

/// Reads `len <uvarint> | data | CRC32C` at `start` (data into `buf` unless it
/// is implausibly large) and checks the CRC. `None`: the length is unusable.
fn read_series_frame(
    r: &mut FileReader,
    start: u64,
    end: u64,
    buf: &mut Vec<u8>,
    problems: &mut Problems,
) -> Option<EntryFrame> {
    let what = format!("series entry at {start}");
    r.seek(start);
    r.set_limit(end);
    let Some(len) = r.uvarint().ok().filter(|&l| l > 0) else {
        let msg =
            format!("{what}: no valid length (a uvarint above 0) before the region ends at {end}");
        problems.push(INDEX_FILE, Some(start), ProblemKind::OutOfRange, msg);
        return None;
    };
    let data_start = r.pos();
    let next = data_start.checked_add(len).and_then(|e| e.checked_add(4));
    let Some(next) = next.filter(|&e| e <= end) else {
        let msg =
            format!("{what}: declares {len} bytes, past the end of the series region at {end}");
        problems.push(INDEX_FILE, Some(start), ProblemKind::OutOfRange, msg);
        return None;
    };
    r.start_crc();
    let read = if len <= MAX_SERIES_ENTRY {
        r.read_vec(len as usize, buf)
    } else {
        buf.clear();
        r.skip(len)
    };
    let computed = r.finish_crc();
    let stored = match read.and_then(|()| r.be32()) {
        Ok(stored) => stored,
        Err(e) => {
            let msg = format!("{what}: read failed: {e}");
            problems.push(INDEX_FILE, Some(start), ProblemKind::Io, msg);
            return None;
        }
    };
    let crc_ok = computed == stored;
    if !crc_ok {
        let msg = format!(
            "{what}: stored CRC32C {stored:#010x}, computed {computed:#010x} over its {len} bytes"
        );
        problems.push(INDEX_FILE, Some(start), ProblemKind::CrcMismatch, msg);
    }
    Some(EntryFrame {
        data_start,
        len,
        next,
        crc_ok,
    })
}

/// Decodes a series entry's labels and chunk metas (see index.md, "Series").
fn decode_series(b: &[u8], ctx: &Ctx, metas: &mut Vec<ChunkMeta>) -> Result<(), (usize, String)> {
    let mut d = SliceDecoder::new(b);
    let short = |e: SliceError| match e {
        SliceError::Short { at } => (at, "entry ends in the middle of a field".to_string()),
        SliceError::BadVarint { at } => (at, "malformed varint".to_string()),
    };
    let labels = d.uvarint().map_err(short)?;
    let mut prev_name: Option<u64> = None;
    for i in 0..labels {
        let at = d.pos();
        let name = d.uvarint().map_err(short)?;
        let value = d.uvarint().map_err(short)?;
        if !ctx.symbol_ok(name) || !ctx.symbol_ok(value) {
            return Err((
                at,
                format!("label #{i} refers to symbol {name}/{value}, outside the symbol table"),
            ));
        }
        if ctx.version > 1 && prev_name.is_some_and(|p| name <= p) {
            return Err((at, format!("label #{i} is not in ascending name order")));
        }
        prev_name = Some(name);
    }
    let mut chunks = ChunkMetas::new(d).map_err(short)?;
    for meta in chunks.by_ref() {
        metas.push(meta.map_err(short)?);
    }
    let d = chunks.decoder();
    if d.remaining() > 0 {
        return Err((
            d.pos(),
            format!("{} unexpected bytes after the last chunk", d.remaining()),
        ));
    }
    Ok(())
}

fn check_chunk_refs(
    walker: &mut dyn Segments,
    entry: u64,
    metas: &[ChunkMeta],
    problems: &mut Problems,
) {
    for (i, chunk_ref) in metas.iter().map(|m| m.chunk_ref).enumerate() {
        let off = chunk_ref & 0xffff_ffff;
        let msg = match walker.check_ref(chunk_ref, problems) {
            // A missing segment file is reported once, as `Missing`, by the caller.
            RefVerdict::Ok | RefVerdict::NoSegment => continue,
            RefVerdict::PastEnd { segment, len } => {
                format!("points at offset {off} of {segment}, which is only {len} bytes long")
            }
            RefVerdict::NotRecordStart { segment, next } => {
                let next = next.map_or("none".to_string(), |n| n.to_string());
                format!("points at offset {off} of {segment}, which is not the start of a chunk record (next record starts at {next})")
            }
        };
        let msg = format!("series entry at {entry}: chunk #{i} (ref {chunk_ref:#x}) {msg}");
        problems.push(INDEX_FILE, Some(entry), ProblemKind::OutOfRange, msg);
    }
}

/// What is inside the sections of a region, to check their contents.
#[derive(Clone, Copy)]
enum Body<'a> {
    LabelIndex(&'a Ctx),
    Postings(&'a SeriesIds),
}

/// A forward scan over a region of aligned, CRC-framed sections (label
/// indices or postings lists), resolving table offsets as it goes.
struct Region<'a> {
    r: FileReader,
    what: &'static str,
    body: Body<'a>,
    end: u64,
    next: u64,
    state: ScanState,
    cursor: StartCursor,
    sections: u64,
}

impl<'a> Region<'a> {
    fn open(
        path: &Path,
        what: &'static str,
        body: Body<'a>,
        range: (u64, u64),
        problems: &mut Problems,
    ) -> Option<Region<'a>> {
        let r = open_or_report(path, INDEX_FILE, problems)?;
        Some(Region {
            r,
            what,
            body,
            end: range.1,
            next: range.0,
            state: ScanState::Records,
            cursor: StartCursor::default(),
            sections: 0,
        })
    }

    fn step(&mut self, problems: &mut Problems) -> Step {
        match self.state {
            ScanState::End => return Step::End,
            ScanState::Broken => return Step::Broken,
            ScanState::Records => {}
        }
        let start = self.next.next_multiple_of(4).min(self.end);
        check_zero_gap(&mut self.r, self.next, start, "between sections", problems);
        if start >= self.end {
            self.state = ScanState::End;
            return Step::End;
        }
        let what = format!("{} at {start}", self.what);
        let body = self.body;
        match check_section(&mut self.r, &what, start, self.end, problems, |r, _| {
            parse_body(r, body)
        }) {
            Ok((entries, next)) => {
                self.next = next;
                self.sections += 1;
                Step::Item { start, entries }
            }
            Err(()) => {
                self.state = ScanState::Broken;
                Step::Broken
            }
        }
    }

    fn locate(&mut self, target: u64, problems: &mut Problems) -> Lookup {
        let mut cursor = std::mem::take(&mut self.cursor);
        let found = cursor.locate(target, || self.step(problems));
        self.cursor = cursor;
        found
    }

    /// Scans the rest of the region; returns the number of sections, or
    /// `None` if the scan broke off.
    fn drain(&mut self, problems: &mut Problems) -> Option<u64> {
        loop {
            match self.step(problems) {
                Step::Item { .. } => {}
                Step::End => return Some(self.sections),
                Step::Broken => return None,
            }
        }
    }
}

fn parse_body(r: &mut FileReader, body: Body) -> Result<u64, Finding> {
    match body {
        Body::LabelIndex(ctx) => parse_label_index(r, ctx),
        Body::Postings(ids) => parse_postings(r, ids),
    }
}

/// `#names <4b> | #entries <4b> | ref <4b> ...` with `#entries` refs in all.
fn parse_label_index(r: &mut FileReader, ctx: &Ctx) -> Result<u64, Finding> {
    let at = r.pos();
    let content = r.limit().saturating_sub(r.pos());
    let names = u64::from(r.be32()?);
    let entries = u64::from(r.be32()?);
    if names == 0 || entries % names != 0 || content != 8 + 4 * entries {
        let msg = format!(
            "{names} names and {entries} entries do not fit its {content} bytes (expected 8 + 4 x entries, entries a multiple of names)"
        );
        return Err(Finding::out_of_range(at, msg));
    }
    for i in 0..entries {
        let at = r.pos();
        let sym = u64::from(r.be32()?);
        if !ctx.symbol_ok(sym) {
            return Err(Finding::out_of_range(
                at,
                format!("entry #{i} refers to symbol {sym}, outside the symbol table"),
            ));
        }
    }
    Ok(entries)
}

/// `#entries <4b> | series ref <4b> ...`, strictly increasing.
fn parse_postings(r: &mut FileReader, ids: &SeriesIds) -> Result<u64, Finding> {
    let at = r.pos();
    let content = r.limit().saturating_sub(r.pos());
    let entries = u64::from(r.be32()?);
    if content != 4 + 4 * entries {
        let msg =
            format!("{entries} entries do not fit its {content} bytes (expected 4 + 4 x entries)");
        return Err(Finding::out_of_range(at, msg));
    }
    let mut prev: Option<u32> = None;
    for i in 0..entries {
        let at = r.pos();
        let id = r.be32()?;
        if prev.is_some_and(|p| id <= p) {
            return Err(Finding::out_of_range(
                at,
                format!("entry #{i} (series {id}) is not greater than the one before it"),
            ));
        }
        if ids.contains(u64::from(id)) == Some(false) {
            return Err(Finding::out_of_range(
                at,
                format!("entry #{i} refers to series {id}, but no series entry has that ID"),
            ));
        }
        prev = Some(id);
    }
    Ok(entries)
}

fn check_label_indices(path: &Path, layout: &Layout, ctx: &Ctx, problems: &mut Problems) {
    let range = layout.label_indices.unwrap_or((0, 0));
    let Some(mut region) =
        Region::open(path, "label index", Body::LabelIndex(ctx), range, problems)
    else {
        return;
    };
    // Prometheus 3 writes no label indices and points the label offset table
    // at the postings offset table; there is then no table of its own.
    let table = layout
        .label_offset_table
        .filter(|t| Some(t.0) != layout.postings_offset_table.map(|p| p.0));
    let listed = table.and_then(|t| {
        check_table(
            path,
            "label offset table",
            1,
            t,
            &mut region,
            None,
            problems,
        )
    });
    let sections = region.drain(problems);
    compare_counts(
        "label offset table",
        "label index sections",
        listed,
        sections,
        table,
        problems,
    );
}

fn check_postings(path: &Path, layout: &Layout, series: &SeriesFacts, problems: &mut Problems) {
    let range = layout.postings.unwrap_or((0, 0));
    let Some(mut region) = Region::open(
        path,
        "postings list",
        Body::Postings(&series.ids),
        range,
        problems,
    ) else {
        return;
    };
    let table = layout.postings_offset_table;
    let all = series.ids.complete.then_some(series.count);
    let listed = table.and_then(|t| {
        check_table(
            path,
            "postings offset table",
            2,
            t,
            &mut region,
            all,
            problems,
        )
    });
    let sections = region.drain(problems);
    compare_counts(
        "postings offset table",
        "postings lists",
        listed,
        sections,
        table,
        problems,
    );
}

fn compare_counts(
    table: &str,
    sections_name: &str,
    listed: Option<u64>,
    sections: Option<u64>,
    range: Option<(u64, u64)>,
    problems: &mut Problems,
) {
    if let (Some(listed), Some(sections)) = (listed, sections) {
        if listed != sections {
            let msg = format!(
                "{table} lists {listed} entries, but the region holds {sections} {sections_name}"
            );
            problems.push(INDEX_FILE, range.map(|r| r.0), ProblemKind::OutOfRange, msg);
        }
    }
}

/// Checks an offset table whose entries are `n <uvarint> | n strings |
/// offset <uvarint64>` and whose offsets must land on sections of `region`.
/// `all_series`, for the postings table, is the expected length of the
/// all-postings list (key `""=""`). Returns the entry count if valid.
fn check_table(
    path: &Path,
    what: &'static str,
    keys: u64,
    (start, end): (u64, u64),
    region: &mut Region,
    all_series: Option<u64>,
    problems: &mut Problems,
) -> Option<u64> {
    let mut r = open_or_report(path, INDEX_FILE, problems)?;
    let what_at = format!("{what} at {start}");
    let parse = |r: &mut FileReader, problems: &mut Problems| -> Result<u64, Finding> {
        let count = u64::from(r.be32()?);
        for i in 0..count {
            let at = r.pos();
            let n = r.uvarint()?;
            if n != keys {
                return Err(Finding::out_of_range(
                    at,
                    format!("entry #{i} has {n} keys, expected {keys}"),
                ));
            }
            let mut empty_key = true;
            for _ in 0..n {
                let len = r.uvarint()?;
                r.skip(len)?;
                empty_key &= len == 0;
            }
            let target = r.uvarint()?;
            check_table_target(
                region,
                target,
                i,
                at,
                all_series.filter(|_| empty_key),
                problems,
            )?;
        }
        Ok(count)
    };
    let (count, crc_end) = check_section(&mut r, &what_at, start, end, problems, parse).ok()?;
    check_zero_gap(&mut r, crc_end, end, &format!("after the {what}"), problems);
    count
}

fn check_table_target(
    region: &mut Region,
    target: u64,
    i: u64,
    at: u64,
    expect_entries: Option<u64>,
    problems: &mut Problems,
) -> Result<(), Finding> {
    let what = region.what;
    match region.locate(target, problems) {
        Lookup::Start { entries } => match (expect_entries, entries) {
            (Some(want), Some(got)) if want != got => Err(Finding::out_of_range(
                at,
                format!("the all-series postings list (entry #{i}) has {got} entries, but the index has {want} series"),
            )),
            _ => Ok(()),
        },
        Lookup::NotStart { .. } => Err(Finding::out_of_range(
            at,
            format!("entry #{i} points at {target}, which is not the start of a {what}"),
        )),
        Lookup::Unknown => Ok(()),
    }
}
