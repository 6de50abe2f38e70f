//! Synthetic blocks: chunk segment files and an index with just what the
//! window engine reads (header, an empty symbol table, series entries
//! without labels, TOC), written as a stream so that a block of any size
//! costs the test no memory. `bend` lets a test write an index whose
//! references differ from where the records are.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::tsdb::index::INDEX_MAGIC;
use crate::tsdb::segment::{chunk_ref, SEGMENT_MAGIC};

/// One chunk of a synthetic series.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Chunk {
    pub min_time: i64,
    pub max_time: i64,
    /// Bytes of chunk data (random, encoding 1, valid CRC).
    pub data_len: usize,
}

/// What was written.
#[derive(Debug, Default)]
pub(crate) struct Written {
    pub records: u64,
    pub segments: u64,
}

/// Writes a block into `dir`: the records of `series`, in order, into
/// segment files of at most `segment_size` bytes (a file holds at least one
/// record), and an index whose reference for chunk `c` of series `s` is
/// `bend(s, c, real_ref)`.
pub(crate) fn write_block(
    dir: &Path,
    series: impl IntoIterator<Item = Vec<Chunk>>,
    segment_size: u64,
    mut bend: impl FnMut(usize, usize, u64) -> u64,
) -> Written {
    fs::create_dir_all(dir.join("chunks")).unwrap();
    let mut index = IndexWriter::create(&dir.join("index"));
    let mut segments: Option<BufWriter<File>> = None;
    let (mut written, mut seg_len) = (Written::default(), 0u64);
    let mut record = Vec::new();
    let mut refs = Vec::new();
    for (s, chunks) in series.into_iter().enumerate() {
        refs.clear();
        for (c, chunk) in chunks.iter().enumerate() {
            encode_record(&mut record, chunk.data_len, (s as u64) << 20 | c as u64);
            let full = seg_len + record.len() as u64 > segment_size && seg_len > 8;
            if segments.is_none() || full {
                if let Some(mut f) = segments.take() {
                    f.flush().unwrap();
                }
                written.segments += 1;
                let name = format!("chunks/{:06}", written.segments);
                let mut f = BufWriter::new(File::create(dir.join(name)).unwrap());
                f.write_all(&SEGMENT_MAGIC.to_be_bytes()).unwrap();
                f.write_all(&[1, 0, 0, 0]).unwrap();
                segments = Some(f);
                seg_len = 8;
            }
            refs.push(bend(s, c, chunk_ref(written.segments - 1, seg_len)));
            segments.as_mut().unwrap().write_all(&record).unwrap();
            seg_len += record.len() as u64;
            written.records += 1;
        }
        index.series(&chunks, &refs);
    }
    if let Some(mut f) = segments {
        f.flush().unwrap();
    }
    index.finish();
    written
}

/// `uvarint len | 1 | data | CRC32C`, with data from a small LCG.
fn encode_record(out: &mut Vec<u8>, len: usize, seed: u64) {
    out.clear();
    put_uvarint(out, len as u64);
    out.push(1);
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    for _ in 0..len {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.push((x >> 56) as u8);
    }
    let crc = crc32c::crc32c(&out[out.len() - len - 1..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

pub(super) fn put_uvarint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push(x as u8 | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

fn put_varint(out: &mut Vec<u8>, x: i64) {
    put_uvarint(out, ((x << 1) ^ (x >> 63)) as u64);
}

/// Writes an index file as a stream.
struct IndexWriter {
    f: BufWriter<File>,
    pos: u64,
    series_start: Option<u64>,
    entry: Vec<u8>,
}

impl IndexWriter {
    fn create(path: &Path) -> IndexWriter {
        let mut w = IndexWriter {
            f: BufWriter::new(File::create(path).unwrap()),
            pos: 0,
            series_start: None,
            entry: Vec::new(),
        };
        w.put(&INDEX_MAGIC.to_be_bytes());
        w.put(&[2]);
        // The symbol table: length 4, no symbols, CRC of the count.
        w.put(&4u32.to_be_bytes());
        w.put(&0u32.to_be_bytes());
        w.put(&crc32c::crc32c(&0u32.to_be_bytes()).to_be_bytes());
        w
    }

    fn put(&mut self, b: &[u8]) {
        self.f.write_all(b).unwrap();
        self.pos += b.len() as u64;
    }

    fn align(&mut self) {
        let pad = self.pos.next_multiple_of(16) - self.pos;
        self.put(&vec![0; pad as usize]);
    }

    fn series(&mut self, chunks: &[Chunk], refs: &[u64]) {
        self.align();
        self.series_start.get_or_insert(self.pos);
        let e = &mut self.entry;
        e.clear();
        put_uvarint(e, 0); // no labels
        put_uvarint(e, chunks.len() as u64);
        let (mut prev_max, mut prev_ref) = (0i64, 0u64);
        for (i, (c, &r)) in chunks.iter().zip(refs).enumerate() {
            if i == 0 {
                put_varint(e, c.min_time);
                put_uvarint(e, c.max_time.wrapping_sub(c.min_time) as u64);
                put_uvarint(e, r);
            } else {
                put_uvarint(e, c.min_time.wrapping_sub(prev_max) as u64);
                put_uvarint(e, c.max_time.wrapping_sub(c.min_time) as u64);
                put_varint(e, r.wrapping_sub(prev_ref) as i64);
            }
            (prev_max, prev_ref) = (c.max_time, r);
        }
        let entry = std::mem::take(&mut self.entry);
        let mut len = Vec::new();
        put_uvarint(&mut len, entry.len() as u64);
        self.put(&len);
        self.put(&entry);
        self.put(&crc32c::crc32c(&entry).to_be_bytes());
        self.entry = entry;
    }

    fn finish(mut self) {
        self.align();
        let mut toc = Vec::new();
        for off in [5, self.series_start.unwrap_or(0), 0, 0, 0, 0] {
            toc.extend_from_slice(&u64::to_be_bytes(off));
        }
        let crc = crc32c::crc32c(&toc);
        self.put(&toc);
        self.put(&crc.to_be_bytes());
        self.f.flush().unwrap();
    }
}
