//! Tests against the real blocks in `fixtures/data/<ULID>/` (made by
//! `promtool tsdb create-blocks-from openmetrics`): each test copies a block
//! to a temporary directory, damages it in one precise way, and asserts on the
//! exact problem reported. A seeded byte-flip sweep then checks that no
//! single-byte change anywhere in the binary files goes unnoticed or panics.

use std::fs;
use std::path::{Path, PathBuf};

use super::*;
use crate::tsdb::reader::SliceDecoder;

const ALL: CheckOptions = CheckOptions { chunk_refs: true };
const BASIC: CheckOptions = CheckOptions { chunk_refs: false };

/// Block directories under `fixtures/data`, smallest first. Missing
/// fixtures fail the test: a check that ran on nothing proves nothing.
fn fixture_blocks() -> Vec<PathBuf> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/data");
    let entries = fs::read_dir(&data).unwrap_or_else(|e| {
        panic!(
            "cannot read the fixture blocks in {}: {e}; they are committed with the \
             source, or rebuild them with fixtures/regenerate.sh",
            data.display()
        )
    });
    let mut blocks: Vec<(u64, PathBuf)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| ulid::Ulid::from_string(n).is_ok())
        })
        .map(|p| (dir_size(&p), p))
        .collect();
    assert!(
        !blocks.is_empty(),
        "{} holds no block directories; rebuild them with fixtures/regenerate.sh",
        data.display()
    );
    blocks.sort();
    blocks.into_iter().map(|(_, p)| p).collect()
}

fn dir_size(dir: &Path) -> u64 {
    let chunks = fs::read_dir(dir.join("chunks")).into_iter().flatten();
    let files = fs::read_dir(dir).into_iter().flatten().chain(chunks);
    files
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// A private copy of the smallest fixture block, named by its ULID.
struct Scratch {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch::of(&fixture_blocks().remove(0))
    }

    /// A private copy of the block in `src`.
    fn of(src: &Path) -> Scratch {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join(src.file_name().expect("block name"));
        copy_dir(src, &dir);
        Scratch { _tmp: tmp, dir }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    fn read(&self, file: &str) -> Vec<u8> {
        fs::read(self.path(file)).expect("read fixture file")
    }

    fn write(&self, file: &str, bytes: &[u8]) {
        fs::write(self.path(file), bytes).expect("write fixture file");
    }

    fn flip(&self, file: &str, offset: u64, xor: u8) {
        let mut b = self.read(file);
        b[offset as usize] ^= xor;
        self.write(file, &b);
    }

    /// Checks the block on disk, and as `verify --deep` does while it
    /// streams out of an archive; both must find exactly the same.
    fn check(&self, opts: &CheckOptions) -> Vec<Problem> {
        let on_disk = check_block(&self.dir, None, opts);
        let streamed = check_streamed(&self.dir, opts, 1 << 20);
        assert_eq!(on_disk, streamed, "the streamed check differs");
        on_disk
    }
}

/// Checks the block in `dir` the way `verify --deep` does: segment files
/// streamed through `StreamedBlock`, every other file copied to a second
/// directory that the rest of the check reads. Record starts spill to a
/// scratch file after `spill_at` bytes.
fn check_streamed(dir: &Path, opts: &CheckOptions, spill_at: usize) -> Vec<Problem> {
    let scratch = tempfile::tempdir().expect("tempdir");
    let name = dir
        .file_name()
        .expect("block name")
        .to_str()
        .expect("utf-8");
    let others = scratch.path().join(name);
    fs::create_dir(&others).expect("mkdir");
    let mut block = StreamedBlock::spilling_at(scratch.path(), spill_at);
    let mut files: Vec<String> = fs::read_dir(dir)
        .expect("readdir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != "chunks")
        .collect();
    if let Ok(chunks) = fs::read_dir(dir.join("chunks")) {
        files.extend(
            chunks.map(|e| format!("chunks/{}", e.expect("entry").file_name().to_string_lossy())),
        );
    }
    files.sort();
    for rel in files {
        let path = dir.join(&rel);
        if StreamedBlock::is_segment(&rel) {
            let len = fs::metadata(&path).expect("stat").len();
            let file = fs::File::open(&path).expect("open");
            block.segment(&rel, len, file).expect("stream");
        } else {
            fs::copy(&path, others.join(&rel)).expect("copy");
        }
    }
    block.finish(&others, name, opts).expect("finish")
}

fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).expect("mkdir");
    for entry in fs::read_dir(src).expect("readdir") {
        let entry = entry.expect("entry");
        let to = dst.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            fs::copy(entry.path(), &to).expect("copy");
        }
    }
}

/// The six TOC offsets: symbols, series, label indices, label offset table,
/// postings, postings offset table.
fn toc(index: &[u8]) -> [u64; 6] {
    let base = index.len() - 52;
    std::array::from_fn(|i| {
        u64::from_be_bytes(
            index[base + 8 * i..base + 8 * i + 8]
                .try_into()
                .expect("8 bytes"),
        )
    })
}

fn first_series_entry(index: &[u8]) -> u64 {
    toc(index)[1].next_multiple_of(16)
}

/// `(offset, kind)` pairs, for compact assertions.
fn summary(problems: &[Problem]) -> Vec<(String, Option<u64>, ProblemKind)> {
    problems
        .iter()
        .map(|p| (p.file.clone(), p.offset, p.kind))
        .collect()
}

fn assert_single(
    problems: &[Problem],
    file: &str,
    offset: Option<u64>,
    kind: ProblemKind,
    needle: &str,
) {
    assert_eq!(
        summary(problems),
        vec![(file.to_string(), offset, kind)],
        "{problems:#?}"
    );
    assert!(
        problems[0].message.contains(needle),
        "{:?} lacks {needle:?}",
        problems[0].message
    );
}

/// Length of the uvarint at the start of `b`.
fn uvarint_len(b: &[u8]) -> usize {
    b.iter().position(|&x| x < 0x80).expect("varint end") + 1
}

#[test]
fn clean_fixture_blocks_have_no_problems() {
    for block in fixture_blocks() {
        for opts in [&BASIC, &ALL] {
            let problems = check_block(&block, None, opts);
            assert!(problems.is_empty(), "{}: {problems:#?}", block.display());
        }
        let ulid = block.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(check_block(&block, Some(ulid), &ALL).is_empty());
    }
}

#[test]
fn summary_reads_meta_json() {
    for block in fixture_blocks() {
        let s = read_summary(&block).expect("summary");
        assert_eq!(
            Some(s.ulid.as_str()),
            block.file_name().and_then(|n| n.to_str())
        );
        assert!(s.min_time < s.max_time && s.num_series > 0 && s.num_chunks >= s.num_series);
        assert!(s.compaction_level >= 1);
    }
}

#[test]
fn flipped_chunk_data_is_a_crc_mismatch_at_the_record() {
    let b = Scratch::new();
    let seg = b.read("chunks/000001");
    let data = 8 + uvarint_len(&seg[8..]) as u64 + 1;
    b.flip("chunks/000001", data + 3, 0x10);
    for opts in [&BASIC, &ALL] {
        assert_single(
            &b.check(opts),
            "chunks/000001",
            Some(8),
            ProblemKind::CrcMismatch,
            "stored CRC32C",
        );
    }
}

#[test]
fn flipped_index_sections_name_the_section() {
    let b = Scratch::new();
    let index = b.read("index");
    let t = toc(&index);
    let series = first_series_entry(&index);
    let postings = t[4].next_multiple_of(4);
    let toc_at = index.len() as u64 - 52;
    let cases = [
        (t[0] + 9, t[0], "symbol table"),
        (series + 2, series, "series entry"),
        (postings + 9, postings, "postings list"),
        (t[5] + 9, t[5], "postings offset table"),
        (toc_at + 7, toc_at, "TOC"),
    ];
    for (flip_at, reported_at, needle) in cases {
        b.flip("index", flip_at, 0x01);
        assert_single(
            &b.check(&ALL),
            "index",
            Some(reported_at),
            ProblemKind::CrcMismatch,
            needle,
        );
        b.flip("index", flip_at, 0x01);
    }
    if t[2] != t[4] {
        let label_index = t[2].next_multiple_of(4);
        b.flip("index", label_index + 9, 0x01);
        let want = ProblemKind::CrcMismatch;
        assert_single(
            &b.check(&ALL),
            "index",
            Some(label_index),
            want,
            "label index",
        );
        b.flip("index", label_index + 9, 0x01);
    }
    assert!(b.check(&ALL).is_empty());
}

#[test]
fn non_zero_padding_is_trailing_garbage() {
    let b = Scratch::new();
    let index = b.read("index");
    let entry = first_series_entry(&index) as usize;
    let len = uvarint_len(&index[entry..]);
    let end = entry + len + SliceDecoder::new(&index[entry..]).uvarint().expect("len") as usize + 4;
    assert!(
        !end.is_multiple_of(16),
        "fixture's first series entry happens to need no padding"
    );
    b.flip("index", end as u64, 0x20);
    let want = ProblemKind::TrailingGarbage;
    assert_single(&b.check(&BASIC), "index", Some(end as u64), want, "padding");
    b.flip("index", end as u64, 0x20);
    b.flip("chunks/000001", 6, 0x01);
    assert_single(&b.check(&BASIC), "chunks/000001", Some(6), want, "padding");
}

#[test]
fn truncated_chunk_segment() {
    let b = Scratch::new();
    let seg = b.read("chunks/000001");
    b.write("chunks/000001", &seg[..seg.len() - 3]);
    let problems = b.check(&BASIC);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(
        (problems[0].file.as_str(), problems[0].kind),
        ("chunks/000001", ProblemKind::Truncated)
    );
    // With chunk refs, the index's references into the lost tail are flagged too.
    b.write("chunks/000001", &seg[..seg.len() / 2]);
    let problems = b.check(&ALL);
    let truncated = problems
        .iter()
        .filter(|p| p.file == "chunks/000001" && p.kind == ProblemKind::Truncated);
    assert_eq!(truncated.count(), 1, "reported once: {problems:#?}");
    assert!(problems.iter().any(|p| p.file == "index"
        && p.kind == ProblemKind::OutOfRange
        && p.message.contains("bytes long")));
}

#[test]
fn trailing_bytes_after_last_record() {
    let b = Scratch::new();
    let mut seg = b.read("chunks/000001");
    let end = seg.len() as u64;
    seg.extend_from_slice(&[0; 100]);
    b.write("chunks/000001", &seg);
    let want = ProblemKind::TrailingGarbage;
    assert_single(
        &b.check(&ALL),
        "chunks/000001",
        Some(end),
        want,
        "100 zero bytes",
    );
}

/// `meta.json` with one field changed through `edit`.
fn edited_meta(original: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v: serde_json::Value = serde_json::from_str(original).expect("fixture meta.json");
    edit(&mut v);
    serde_json::to_string_pretty(&v).expect("json")
}

#[test]
fn meta_json_problems() {
    let b = Scratch::new();
    let original = String::from_utf8(b.read("meta.json")).expect("utf8");
    let other = ulid::Ulid::new().to_string();
    let min_time = read_summary(&b.dir).expect("summary").min_time;
    let edits: Vec<(String, ProblemKind, &str)> = vec![
        (
            edited_meta(&original, |v| v["ulid"] = other.clone().into()),
            ProblemKind::BadMeta,
            "expected",
        ),
        (
            original.replacen('{', "[", 1),
            ProblemKind::BadMeta,
            "does not parse",
        ),
        (
            edited_meta(&original, |v| v["version"] = 2.into()),
            ProblemKind::BadVersion,
            "version is 2",
        ),
        (
            edited_meta(&original, |v| v["maxTime"] = min_time.into()),
            ProblemKind::BadMeta,
            "not before",
        ),
        (
            edited_meta(&original, |v| v["maxTime"] = (min_time + 1).into()),
            ProblemKind::BadMeta,
            "entirely outside",
        ),
        (
            edited_meta(&original, |v| v["stats"]["numSeries"] = 99.into()),
            ProblemKind::BadMeta,
            "stats.numSeries is 99",
        ),
        (
            edited_meta(&original, |v| v["stats"]["numSamples"] = 1.into()),
            ProblemKind::BadMeta,
            "stats.numSamples is 1",
        ),
        (
            edited_meta(&original, |v| v["compaction"]["level"] = 0.into()),
            ProblemKind::BadMeta,
            "level is 0",
        ),
        (
            edited_meta(&original, |v| v["compaction"]["sources"][0] = "x".into()),
            ProblemKind::BadMeta,
            "not a valid ULID",
        ),
    ];
    for (text, kind, needle) in edits {
        b.write("meta.json", text.as_bytes());
        let problems = b.check(&BASIC);
        assert_eq!(problems.len(), 1, "{needle}: {problems:#?}");
        assert_eq!(
            (problems[0].file.as_str(), problems[0].kind),
            ("meta.json", kind)
        );
        assert!(
            problems[0].message.contains(needle),
            "{needle}: {problems:#?}"
        );
    }
    b.write("meta.json", original.as_bytes());
    let problems = check_block(&b.dir, Some(&other), &BASIC);
    assert_eq!(
        summary(&problems),
        vec![("meta.json".into(), None, ProblemKind::BadMeta)]
    );
}

#[test]
fn bad_magic_in_each_file() {
    let b = Scratch::new();
    for file in ["index", "chunks/000001", "tombstones"] {
        b.flip(file, 1, 0xff);
        let problems = b.check(&ALL);
        assert!(
            summary(&problems).contains(&(file.to_string(), Some(0), ProblemKind::BadMagic)),
            "{file}: {problems:#?}"
        );
        b.flip(file, 1, 0xff);
    }
}

#[test]
fn missing_files() {
    for file in ["index", "tombstones", "meta.json", "chunks/000001"] {
        let b = Scratch::new();
        fs::remove_file(b.path(file)).expect("remove");
        let problems = b.check(&ALL);
        let missing = problems.iter().find(|p| p.kind == ProblemKind::Missing);
        assert!(
            missing.is_some_and(|p| p.file == file),
            "{file}: {problems:#?}"
        );
    }
    let problems = check_block(Path::new("/nonexistent/block"), None, &ALL);
    assert_eq!(
        summary(&problems),
        vec![(String::new(), None, ProblemKind::Missing)]
    );
}

#[test]
fn gap_in_segment_numbering_is_reported() {
    let b = Scratch::new();
    fs::rename(b.path("chunks/000001"), b.path("chunks/000002")).expect("rename");
    // Prometheus maps reference segment 0 to the first file in the listing,
    // so the data still resolves; the gap itself is what gets reported.
    for opts in [&BASIC, &ALL] {
        let want = ProblemKind::Missing;
        assert_single(&b.check(opts), "chunks/000001", None, want, "are missing");
    }
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Rewrites a Prometheus 2.x index into the layout Prometheus 3.7+ writes:
/// no label indices and no label offset table (the TOC points both the
/// label indices and postings at the end of the series, and the label offset
/// table at the postings offset table). Postings move, so the postings
/// offset table is re-encoded with shifted offsets and a new CRC.
fn drop_label_indices(index: &[u8]) -> Vec<u8> {
    let [symbols, series, li, lot, p, pot] = toc(index);
    let toc_at = index.len() - 52;
    let (li, lot, pot, p) = (li as usize, lot as usize, pot as usize, p as usize);
    let (old_first, new_first) = (p.next_multiple_of(4), li.next_multiple_of(4));
    let delta = (old_first - new_first) as u64;
    let mut out = index[..li].to_vec();
    out.resize(new_first, 0);
    out.extend_from_slice(&index[old_first..lot]);
    let new_pot = out.len() as u64;
    let mut d = SliceDecoder::new(&index[pot + 4..toc_at]);
    let mut body = index[pot + 4..pot + 8].to_vec();
    let count = u32::from_be_bytes(body[..4].try_into().expect("count"));
    for _ in 0..4 {
        d.u8().expect("count byte");
    }
    for _ in 0..count {
        let n = d.uvarint().expect("keys");
        put_uvarint(&mut body, n);
        for _ in 0..n {
            let len = d.uvarint().expect("key len") as usize;
            put_uvarint(&mut body, len as u64);
            let at = pot + 4 + d.pos();
            body.extend_from_slice(&index[at..at + len]);
            for _ in 0..len {
                d.u8().expect("key byte");
            }
        }
        put_uvarint(&mut body, d.uvarint().expect("offset") - delta);
    }
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    let li = li as u64;
    let mut t = Vec::new();
    for v in [symbols, series, li, new_pot, li, new_pot] {
        t.extend_from_slice(&v.to_be_bytes());
    }
    let crc = crc32c::crc32c(&t);
    out.extend_from_slice(&t);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

#[test]
fn index_without_label_indices_as_prometheus_3_7_writes_it() {
    let b = Scratch::new();
    let index = drop_label_indices(&b.read("index"));
    assert!(index.len() < b.read("index").len());
    b.write("index", &index);
    assert!(b.check(&ALL).is_empty(), "{:#?}", b.check(&ALL));
    let t = toc(&index);
    let postings = t[4].next_multiple_of(4);
    b.flip("index", postings + 9, 0x01);
    let want = ProblemKind::CrcMismatch;
    assert_single(
        &b.check(&ALL),
        "index",
        Some(postings),
        want,
        "postings list",
    );
}

/// Rewrites the first chunk record with another encoding and a valid CRC.
fn set_first_chunk_encoding(b: &Scratch, encoding: u8) {
    let mut seg = b.read("chunks/000001");
    let enc_at = 8 + uvarint_len(&seg[8..]);
    let data_len = SliceDecoder::new(&seg[8..]).uvarint().expect("len") as usize;
    seg[enc_at] = encoding;
    let crc_at = enc_at + 1 + data_len;
    let crc = crc32c::crc32c(&seg[enc_at..crc_at]);
    seg[crc_at..crc_at + 4].copy_from_slice(&crc.to_be_bytes());
    b.write("chunks/000001", &seg);
}

#[test]
fn unknown_encoding_is_reported_but_not_corruption() {
    let b = Scratch::new();
    set_first_chunk_encoding(&b, 0x42);
    let problems = b.check(&ALL);
    assert_single(
        &problems,
        "chunks/000001",
        Some(8),
        ProblemKind::UnknownEncoding,
        "encoding 66",
    );
    assert!(!problems[0].kind.is_corruption());
}

/// Points the last chunk reference of the first series one byte further on,
/// and fixes the entry's CRC so only that reference is wrong. (References
/// after the first are signed deltas, so this leaves the others intact.)
fn shift_last_chunk_ref(b: &Scratch) -> u64 {
    let mut index = b.read("index");
    let entry = first_series_entry(&index) as usize;
    let mut d = SliceDecoder::new(&index[entry..]);
    let len = d.uvarint().expect("len") as usize;
    let data = entry + d.pos();
    let labels = d.uvarint().expect("labels");
    for _ in 0..labels * 2 {
        d.uvarint().expect("symbol ref");
    }
    let chunks = d.uvarint().expect("chunks");
    assert!(chunks >= 2, "first series has fewer than 2 chunks");
    let mut ref_at = 0;
    for i in 0..chunks {
        if i == 0 {
            d.varint().expect("mint");
        } else {
            d.uvarint().expect("mint delta");
        }
        d.uvarint().expect("maxt delta");
        ref_at = entry + d.pos();
        d.uvarint().expect("ref or ref delta");
    }
    // The delta is zigzag-encoded: +2 on the encoding is +1 on the value.
    assert!(
        index[ref_at] & 0x7f <= 0x7d,
        "cannot bump this varint in place"
    );
    index[ref_at] += 2;
    let crc = crc32c::crc32c(&index[data..data + len]);
    index[data + len..data + len + 4].copy_from_slice(&crc.to_be_bytes());
    b.write("index", &index);
    chunks - 1
}

#[test]
fn chunk_refs_must_land_on_record_starts() {
    let b = Scratch::new();
    let last = shift_last_chunk_ref(&b);
    assert!(
        b.check(&BASIC).is_empty(),
        "without chunk_refs the index is structurally fine"
    );
    let problems = b.check(&ALL);
    let entry = first_series_entry(&b.read("index"));
    let want = ProblemKind::OutOfRange;
    assert_single(
        &problems,
        "index",
        Some(entry),
        want,
        "not the start of a chunk record",
    );
    assert!(
        problems[0].message.contains(&format!("chunk #{last} ")),
        "{problems:#?}"
    );
    // The same when the record starts no longer fit in memory: a spill
    // threshold of one byte puts every one of them in the scratch file.
    assert_eq!(check_streamed(&b.dir, &ALL, 1), problems);
}

#[test]
fn streamed_check_of_clean_blocks_finds_nothing_with_or_without_spilling() {
    for block in fixture_blocks() {
        for spill_at in [1, 100, 1 << 20] {
            let found = check_streamed(&block, &ALL, spill_at);
            assert!(found.is_empty(), "{}: {found:#?}", block.display());
        }
    }
}

/// A read error inside a segment is the archive's fault (a damaged zstd
/// frame, a dropped download), not damage in the block: `segment` returns
/// it instead of recording a problem in the chunks.
#[test]
fn a_failing_stream_is_an_error_not_a_block_problem() {
    struct Failing(Vec<u8>, usize);
    impl std::io::Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.1 >= self.0.len() / 2 {
                return Err(std::io::Error::other("zstd: corrupted block detected"));
            }
            let n = buf.len().min(self.0.len() / 2 - self.1).min(100);
            buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
            self.1 += n;
            Ok(n)
        }
    }
    let b = Scratch::new();
    let seg = b.read("chunks/000001");
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut block = StreamedBlock::new(scratch.path());
    let err = block
        .segment("chunks/000001", seg.len() as u64, Failing(seg, 0))
        .expect_err("the stream failed");
    assert!(err.to_string().contains("corrupted block"), "{err}");
}

/// Builds a tombstones file holding one interval for series reference `id`.
fn tombstones_with(id: u8) -> Vec<u8> {
    let mut b = vec![0x01, 0x30, 0xba, 0x30, 0x01];
    let stones = [id, 0x02, 0x10]; // ref, mint 1, maxt 8 (zigzag varints)
    b.extend_from_slice(&stones);
    b.extend_from_slice(&crc32c::crc32c(&stones).to_be_bytes());
    b
}

#[test]
fn tombstones_records_and_refs() {
    let b = Scratch::new();
    assert_eq!(
        b.read("tombstones"),
        [0x01, 0x30, 0xba, 0x30, 0x01, 0, 0, 0, 0]
    );
    let id = (first_series_entry(&b.read("index")) / 16) as u8;
    b.write("tombstones", &tombstones_with(id));
    assert!(b.check(&BASIC).is_empty());
    b.write("tombstones", &tombstones_with(id + 1));
    let want = ProblemKind::OutOfRange;
    assert_single(
        &b.check(&BASIC),
        "tombstones",
        Some(5),
        want,
        "no such series",
    );
    b.flip("tombstones", 6, 0x04);
    assert_single(
        &b.check(&BASIC),
        "tombstones",
        Some(5),
        ProblemKind::CrcMismatch,
        "CRC32C",
    );
}

#[test]
fn problems_per_file_are_capped() {
    let mut p = Problems::default();
    for i in 0..(MAX_PROBLEMS_PER_FILE as u64 + 7) {
        p.push("index", Some(i), ProblemKind::CrcMismatch, "x".into());
    }
    p.push("tombstones", Some(3), ProblemKind::Truncated, "y".into());
    let list = p.into_sorted();
    assert_eq!(list.len(), MAX_PROBLEMS_PER_FILE + 2);
    let last_index = &list[MAX_PROBLEMS_PER_FILE];
    assert_eq!(
        (last_index.file.as_str(), last_index.offset),
        ("index", None)
    );
    assert!(last_index.message.starts_with("7 more problems"));
    assert_eq!(list[0].to_string(), "index @0: crc_mismatch: x");
}

/// xorshift64*: a tiny deterministic PRNG so the sweep is reproducible.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A flip is harmless only if it turns the index version byte into another
/// version Prometheus reads identically: 2 and 3 differ solely in whether
/// the (unused) label indices are written, and the reader handles both the
/// same way (`r.version != FormatV1` in index.go). Every other byte of these
/// files is covered by a CRC, a magic number, a version check, or a
/// must-be-zero padding rule, so any other flip must be reported.
fn provably_harmless(file: &str, offset: u64, original: u8, flipped: u8) -> bool {
    file == "index" && offset == 4 && [original, flipped].iter().all(|v| (2..=3).contains(v))
}

#[test]
fn every_single_byte_flip_is_detected_or_provably_harmless() {
    let b = Scratch::new();
    let files = ["index", "chunks/000001", "tombstones"];
    let originals: Vec<Vec<u8>> = files.iter().map(|f| b.read(f)).collect();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut harmless = 0;
    for round in 0..300 {
        let which = rng.below(files.len() as u64) as usize;
        let (file, bytes) = (files[which], &originals[which]);
        let offset = rng.below(bytes.len() as u64);
        let xor = (rng.below(255) + 1) as u8;
        b.flip(file, offset, xor);
        let opts = if round % 2 == 0 { &ALL } else { &BASIC };
        let problems = b.check(opts);
        let original = bytes[offset as usize];
        if problems.is_empty() {
            assert!(
                provably_harmless(file, offset, original, original ^ xor),
                "round {round}: flipping {file}@{offset} ^ {xor:#04x} went unnoticed"
            );
            harmless += 1;
        } else {
            assert!(
                problems.iter().any(|p| p.file == file && p.kind.is_corruption()),
                "round {round}: flipping {file}@{offset} ^ {xor:#04x} was blamed elsewhere: {problems:#?}"
            );
        }
        b.write(file, bytes);
    }
    assert!(
        harmless < 5,
        "{harmless} harmless flips: the sweep is not exercising the checks"
    );
    assert!(b.check(&ALL).is_empty());
}

/// The only block directory below `fixtures/<rel>` (at any depth one or two).
fn single_block(rel: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel);
    let blocks: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("meta.json").is_file())
        .collect();
    assert_eq!(blocks.len(), 1, "one block in {}", root.display());
    blocks.into_iter().next().expect("one block")
}

/// `(offset, encoding, data)` of every record in a segment file.
fn records(segment: &[u8]) -> Vec<(usize, u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 8;
    while at < segment.len() {
        let len = SliceDecoder::new(&segment[at..]).uvarint().expect("len") as usize;
        let enc_at = at + uvarint_len(&segment[at..]);
        out.push((
            at,
            segment[enc_at],
            segment[enc_at + 1..enc_at + 1 + len].to_vec(),
        ));
        at = enc_at + 1 + len + 4;
    }
    out
}

/// Rewrites the data of the record at `at` in place (same length) and fixes
/// its CRC.
fn rewrite_record(b: &Scratch, at: usize, edit: impl FnOnce(&mut [u8])) {
    let mut seg = b.read("chunks/000001");
    let len = SliceDecoder::new(&seg[at..]).uvarint().expect("len") as usize;
    let enc_at = at + uvarint_len(&seg[at..]);
    edit(&mut seg[enc_at + 1..enc_at + 1 + len]);
    let crc_at = enc_at + 1 + len;
    let crc = crc32c::crc32c(&seg[enc_at..crc_at]);
    seg[crc_at..crc_at + 4].copy_from_slice(&crc.to_be_bytes());
    b.write("chunks/000001", &seg);
}

/// Blocks that real Prometheus 2.42 and 3.5 wrote from scraped native
/// histograms (fixtures/histograms): histogram (2) and float histogram (3)
/// chunks next to XOR ones, and meta.json's numSamples counts them all.
#[test]
fn native_histogram_blocks_from_both_servers_are_clean() {
    for line in ["2.42", "3.5"] {
        let block = single_block(&format!("histograms/prometheus-{line}"));
        let encodings: std::collections::BTreeSet<u8> =
            records(&fs::read(block.join("chunks/000001")).expect("segment"))
                .iter()
                .map(|r| r.1)
                .collect();
        assert_eq!(encodings, [1, 2, 3].into(), "{line}: encodings");
        for opts in [&BASIC, &ALL] {
            let problems = Scratch::of(&block).check(opts);
            assert!(problems.is_empty(), "{line}: {problems:#?}");
        }
    }
}

/// XOR2, HistogramST and FloatHistogramST (Prometheus 3.11+, 3.14+): every
/// record's CRC and header is checked, the samples count towards the
/// cross-checks, and each encoding gets one note (not a problem) at its
/// first record saying what was not decoded and which servers read it.
#[test]
fn newer_encodings_are_checked_and_noted_once_per_encoding() {
    let block = single_block("newer-encodings/data");
    let seg = fs::read(block.join("chunks/000001")).expect("segment");
    let first = |enc: u8| {
        records(&seg)
            .iter()
            .find(|r| r.1 == enc)
            .map(|r| r.0 as u64)
    };
    let b = Scratch::of(&block);
    let problems = b.check(&ALL);
    let mut want: Vec<_> = [4, 5, 6]
        .map(|e| {
            (
                "chunks/000001".to_string(),
                first(e),
                ProblemKind::NewerEncoding,
            )
        })
        .into();
    want.sort_by_key(|w| w.1);
    assert_eq!(summary(&problems), want, "{problems:#?}");
    assert!(problems.iter().all(|p| !p.kind.is_corruption()));
    let note = |e: u8| {
        let p = problems
            .iter()
            .find(|p| p.offset == first(e))
            .expect("note");
        p.message.clone()
    };
    for (enc, needles) in [
        (
            4,
            [
                "2 chunk records",
                "encoding 4 (XOR2)",
                "before 3.11 cannot read",
            ],
        ),
        (
            5,
            [
                "1 chunk record in",
                "encoding 5 (HistogramST)",
                "before 3.14",
            ],
        ),
        (
            6,
            [
                "1 chunk record in",
                "encoding 6 (FloatHistogramST)",
                "not decoded",
            ],
        ),
    ] {
        for n in needles {
            assert!(note(enc).contains(n), "{n:?} not in {:?}", note(enc));
        }
    }
}

/// The ST encodings keep the counter-reset header in the top two bits of
/// the sample count (histogram_st.go): those bits are not samples.
#[test]
fn st_histogram_counter_reset_bits_are_not_counted_as_samples() {
    let block = single_block("newer-encodings/data");
    let b = Scratch::of(&block);
    let seg = b.read("chunks/000001");
    for (at, enc, data) in records(&seg) {
        if enc == 5 || enc == 6 {
            assert_eq!(data[0] & 0xc0, 0, "generated with 'unknown' counter resets");
            // 0b10: CounterReset.
            rewrite_record(&b, at, |d| d[0] |= 0b1000_0000);
        }
    }
    let problems = b.check(&ALL);
    assert!(
        problems
            .iter()
            .all(|p| p.kind == ProblemKind::NewerEncoding),
        "{problems:#?}"
    );
}

#[test]
fn damage_in_newer_encodings_is_found() {
    let block = single_block("newer-encodings/data");
    let seg = fs::read(block.join("chunks/000001")).expect("segment");
    for (at, enc, data) in records(&seg).into_iter().filter(|r| r.1 >= 4) {
        // A flipped bit in the samples: the CRC.
        let b = Scratch::of(&block);
        let flip_at = at as u64 + uvarint_len(&seg[at..]) as u64 + 1 + data.len() as u64 - 1;
        b.flip("chunks/000001", flip_at, 0x10);
        let problems = b.check(&ALL);
        let crc: Vec<_> = problems
            .iter()
            .filter(|p| p.kind == ProblemKind::CrcMismatch)
            .collect();
        assert_eq!(crc.len(), 1, "encoding {enc}: {problems:#?}");
        assert_eq!(crc[0].offset, Some(at as u64));
        // A sample count that disagrees with meta.json (CRC fixed).
        let b = Scratch::of(&block);
        rewrite_record(&b, at, |d| d[1] = d[1].wrapping_add(1));
        let problems = b.check(&ALL);
        assert!(
            problems
                .iter()
                .any(|p| p.kind == ProblemKind::BadMeta
                    && p.message.contains("stats.numSamples is 480")),
            "encoding {enc}: {problems:#?}"
        );
    }
}

/// meta.json's numFloatSamples and numHistogramSamples (Prometheus 3.6+)
/// are compared with the chunks; blocks from older writers have neither,
/// which is not a problem.
#[test]
fn float_and_histogram_sample_counts_are_cross_checked() {
    let block = single_block("newer-encodings/data");
    let b = Scratch::of(&block);
    let original = String::from_utf8(b.read("meta.json")).expect("utf8");
    let cases = [
        (
            edited_meta(&original, |v| {
                v["stats"]["numHistogramSamples"] = 121.into()
            }),
            Some("stats.numHistogramSamples is 121, but the histogram chunks hold 120"),
        ),
        (
            edited_meta(&original, |v| v["stats"]["numFloatSamples"] = 1.into()),
            Some("stats.numFloatSamples is 1, but the float chunks hold 360"),
        ),
        (
            // Go omits a zero count: absent means 0 once the other is there.
            edited_meta(&original, |v| {
                v["stats"]
                    .as_object_mut()
                    .unwrap()
                    .remove("numFloatSamples");
            }),
            Some("stats.numFloatSamples is 0, but the float chunks hold 360"),
        ),
        (
            edited_meta(&original, |v| {
                let stats = v["stats"].as_object_mut().unwrap();
                stats.remove("numFloatSamples");
                stats.remove("numHistogramSamples");
            }),
            None,
        ),
    ];
    for (text, want) in cases {
        b.write("meta.json", text.as_bytes());
        let problems: Vec<Problem> = b
            .check(&BASIC)
            .into_iter()
            .filter(|p| p.kind.is_corruption())
            .collect();
        match want {
            Some(needle) => {
                assert_single(&problems, "meta.json", None, ProblemKind::BadMeta, needle)
            }
            None => assert!(problems.is_empty(), "{problems:#?}"),
        }
    }
}

/// A record shorter than its encoding's header cannot hold a sample count.
#[test]
fn chunk_data_shorter_than_its_header() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir(dir.path().join("chunks")).expect("mkdir");
    let mut seg = vec![0x85, 0xBD, 0x40, 0xDD, 1, 0, 0, 0];
    // Encoding 5 with 2 data bytes (its header is 3), then XOR2 with 3.
    for (enc, data) in [(5u8, vec![0u8, 1]), (4, vec![0, 1, 0])] {
        seg.push(data.len() as u8);
        let mut crc_input = vec![enc];
        crc_input.extend(&data);
        seg.extend(&crc_input);
        seg.extend(crc32c::crc32c(&crc_input).to_be_bytes());
    }
    fs::write(dir.path().join("chunks/000001"), &seg).expect("write");
    let mut problems = Problems::default();
    let walker = chunks::SegmentWalker::open(dir.path(), &mut problems);
    let facts = walker.finish(&mut problems);
    let problems = problems.into_sorted();
    assert_single(
        &problems,
        "chunks/000001",
        Some(8),
        ProblemKind::OutOfRange,
        "shorter than the 3-byte header of a HistogramST chunk",
    );
    assert_eq!(
        (facts.records, facts.samples, facts.float_samples),
        (2, 1, 1)
    );
}

/// Prometheus 2.51+ and 3.x mark blocks written from out-of-order data
/// (`compaction.hints`); such blocks may overlap others and are as valid.
#[test]
fn compaction_hints_are_accepted() {
    let b = Scratch::new();
    let original = String::from_utf8(b.read("meta.json")).expect("utf8");
    let hinted = edited_meta(&original, |v| {
        v["compaction"]["hints"] = serde_json::json!(["from-out-of-order"]);
    });
    b.write("meta.json", hinted.as_bytes());
    let problems = b.check(&ALL);
    assert!(problems.is_empty(), "{problems:#?}");
}
