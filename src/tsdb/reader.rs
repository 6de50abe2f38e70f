//! Bounded, buffered, checksumming reads over one file of a block, for the
//! checker ([`super::check`]) and the window engine ([`super::windows`]).
//!
//! Index and chunk files can be many gigabytes, so nothing here ever holds a
//! whole file: a `FileReader` owns one fixed-size buffer and streams through
//! the file, seeking only when the caller jumps. Its `Source` is a file on
//! disk, or (for `verify --deep`) a stream out of an archive that is only
//! read forward, where a jump ahead reads past the bytes in between. Every TSDB section is
//! "some bytes, then a CRC32-Castagnoli of those bytes", so the reader can
//! keep a running checksum of everything consumed between `start_crc` and
//! `finish_crc`; it hashes whole buffer slices at a time rather than byte by
//! byte, which keeps varint-heavy sections cheap. A movable `limit` (the end
//! of the current section) turns "this entry claims to be longer than its
//! section" into an ordinary error instead of a read into the next section.
//! The decoding helpers never panic on hostile input: every length is checked
//! against the limit before it is used.
//!
//! References between TSDB structures (postings offsets, chunk refs) are
//! written in increasing order, so `StartCursor` can check "does an item
//! start exactly here?" against a scan that only moves forward, without
//! remembering every item start (the checker's scans use it).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use crate::direct_io::DirectReader;

/// Size of the single read buffer each open file gets.
pub(crate) const BUF_SIZE: usize = 256 * 1024;

/// Longest encoding of a 64-bit varint (Go's `binary.MaxVarintLen64`).
const MAX_VARINT_LEN: usize = 10;

/// Why a read failed.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// A read starting at `at` would cross `limit` (a section end or EOF).
    Overrun { at: u64, limit: u64 },
    /// The varint starting at `at` is longer than 10 bytes or overflows u64.
    BadVarint { at: u64 },
    /// The operating system failed the read (or the file shrank under us).
    Io(io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Overrun { at, limit } => {
                write!(f, "a read at offset {at} would run past offset {limit}")
            }
            ReadError::BadVarint { at } => write!(f, "malformed varint at offset {at}"),
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

pub(crate) type ReadResult<T> = Result<T, ReadError>;

/// Where a [`FileReader`] gets its bytes: a file it may seek in, or a
/// stream (a file inside an archive) that it can only read forward.
pub(crate) trait Source: Read {
    /// Moves the next read from offset `from` to offset `to`.
    fn reposition(&mut self, from: u64, to: u64) -> io::Result<()>;
}

impl Source for File {
    fn reposition(&mut self, _from: u64, to: u64) -> io::Result<()> {
        self.seek(SeekFrom::Start(to)).map(|_| ())
    }
}

/// A stream that is only read forward: jumping ahead reads and discards the
/// bytes in between (so a hash over the stream still sees every byte), and
/// jumping back is an error. The chunk walk, which only moves forward, runs
/// on this straight out of an archive.
pub(crate) struct Forward<R>(pub R);

impl<R: Read> Read for Forward<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Read> Source for Forward<R> {
    fn reposition(&mut self, from: u64, to: u64) -> io::Result<()> {
        let Some(gap) = to.checked_sub(from) else {
            return Err(io::Error::other(format!(
                "cannot go back from offset {from} to {to} in a stream"
            )));
        };
        let skipped = io::copy(&mut (&mut self.0).take(gap), &mut io::sink())?;
        if skipped < gap {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("stream ended at {}, before offset {to}", from + skipped),
            ));
        }
        Ok(())
    }
}

/// A forward-streaming reader over one file with an optional running CRC.
pub(crate) struct FileReader<S = File> {
    file: S,
    len: u64,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    buf_start: u64,
    /// Number of valid bytes in `buf`.
    filled: usize,
    /// Read cursor inside `buf`.
    at: usize,
    /// Where the OS file cursor currently is, to avoid redundant seeks.
    os_pos: u64,
    /// Reads may not cross this absolute offset.
    limit: u64,
    /// Running CRC and the buffer index up to which it has been applied.
    crc: Option<(u32, usize)>,
}

impl FileReader<File> {
    pub(crate) fn open(path: &Path) -> io::Result<FileReader> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(FileReader::new(file, len))
    }
}

impl FileReader<DirectReader> {
    /// [`FileReader::open`] past the page cache (`crate::direct_io`): for
    /// files read once, front to back, by a backup.
    pub(crate) fn open_direct(path: &Path) -> io::Result<FileReader<DirectReader>> {
        let file = DirectReader::open(path)?;
        let len = file.file_len()?;
        Ok(FileReader::new(file, len))
    }
}

impl Source for DirectReader {
    fn reposition(&mut self, _from: u64, to: u64) -> io::Result<()> {
        self.seek_to(to)
    }
}

impl<R: Read> FileReader<Forward<R>> {
    /// Reads `len` bytes from a stream that can only be read forward.
    pub(crate) fn stream(data: R, len: u64) -> Self {
        FileReader::new(Forward(data), len)
    }
}

impl<S: Source> FileReader<S> {
    fn new(file: S, len: u64) -> Self {
        FileReader {
            file,
            len,
            buf: vec![0; BUF_SIZE],
            buf_start: 0,
            filled: 0,
            at: 0,
            os_pos: 0,
            limit: len,
            crc: None,
        }
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    pub(crate) fn pos(&self) -> u64 {
        self.buf_start + self.at as u64
    }

    /// Restricts reads to end before `end` (clamped to the file length).
    pub(crate) fn set_limit(&mut self, end: u64) {
        self.limit = end.min(self.len);
    }

    /// Jumps to `pos`, keeping the buffer when `pos` falls inside it.
    pub(crate) fn seek(&mut self, pos: u64) {
        debug_assert!(self.crc.is_none(), "seek while a CRC is running");
        let end = self.buf_start + self.filled as u64;
        if pos >= self.buf_start && pos <= end {
            self.at = (pos - self.buf_start) as usize;
        } else {
            self.buf_start = pos;
            self.filled = 0;
            self.at = 0;
        }
    }

    /// Starts hashing every byte consumed from now on.
    pub(crate) fn start_crc(&mut self) {
        self.crc = Some((0, self.at));
    }

    /// Stops hashing and returns the CRC32-Castagnoli of the consumed bytes.
    pub(crate) fn finish_crc(&mut self) -> u32 {
        self.flush_crc();
        self.crc.take().map_or(0, |(crc, _)| crc)
    }

    fn flush_crc(&mut self) {
        if let Some((crc, from)) = self.crc {
            let hashed = crc32c::crc32c_append(crc, &self.buf[from..self.at]);
            self.crc = Some((hashed, self.at));
        }
    }

    /// Makes sure at least one unread byte is buffered.
    fn refill(&mut self) -> ReadResult<()> {
        self.flush_crc();
        let pos = self.pos();
        if self.os_pos != pos {
            self.file.reposition(self.os_pos, pos)?;
            self.os_pos = pos;
        }
        let n = self.file.read(&mut self.buf)?;
        self.os_pos += n as u64;
        self.buf_start = pos;
        self.filled = n;
        self.at = 0;
        if let Some((crc, _)) = self.crc {
            self.crc = Some((crc, 0));
        }
        if n == 0 {
            return Err(ReadError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "file ended at {pos}, before its recorded length {}",
                    self.len
                ),
            )));
        }
        Ok(())
    }

    fn ensure(&mut self, n: u64) -> ReadResult<()> {
        let at = self.pos();
        match at.checked_add(n) {
            Some(end) if end <= self.limit => Ok(()),
            _ => Err(ReadError::Overrun {
                at,
                limit: self.limit,
            }),
        }
    }

    pub(crate) fn u8(&mut self) -> ReadResult<u8> {
        self.ensure(1)?;
        if self.at == self.filled {
            self.refill()?;
        }
        let b = self.buf[self.at];
        self.at += 1;
        Ok(b)
    }

    /// At least `min(want, limit - pos)` unread bytes, as a slice of the
    /// buffer (perhaps more): the unread bytes are moved to its front and
    /// more read after them. `want` must fit the buffer. Not while a CRC
    /// runs.
    pub(crate) fn buffered(&mut self, want: usize) -> ReadResult<&[u8]> {
        debug_assert!(self.crc.is_none(), "buffered while a CRC is running");
        assert!(want <= BUF_SIZE, "{want} bytes do not fit the buffer");
        let want = (self.limit.saturating_sub(self.pos())).min(want as u64) as usize;
        if self.filled - self.at < want {
            let pos = self.pos();
            if self.os_pos != pos + (self.filled - self.at) as u64 {
                // After a seek: the buffered bytes are not where the file is.
                self.file.reposition(self.os_pos, pos)?;
                self.os_pos = pos;
                self.filled = self.at;
            }
            self.buf.copy_within(self.at..self.filled, 0);
            self.filled -= self.at;
            self.at = 0;
            self.buf_start = pos;
            while self.filled < want {
                let n = self.file.read(&mut self.buf[self.filled..])?;
                if n == 0 {
                    return Err(ReadError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "file ended at {}, before its recorded length {}",
                            self.os_pos, self.len
                        ),
                    )));
                }
                self.os_pos += n as u64;
                self.filled += n;
            }
        }
        Ok(&self.buf[self.at..self.filled])
    }

    /// Consumes the next `n` bytes and returns them as a slice of the
    /// buffer ([`FileReader::buffered`]).
    pub(crate) fn take(&mut self, n: usize) -> ReadResult<&[u8]> {
        self.ensure(n as u64)?;
        self.buffered(n)?;
        let at = self.at;
        self.at += n;
        Ok(&self.buf[at..at + n])
    }

    pub(crate) fn read_exact(&mut self, out: &mut [u8]) -> ReadResult<()> {
        self.ensure(out.len() as u64)?;
        let mut done = 0;
        while done < out.len() {
            if self.at == self.filled {
                self.refill()?;
            }
            let take = (self.filled - self.at).min(out.len() - done);
            out[done..done + take].copy_from_slice(&self.buf[self.at..self.at + take]);
            self.at += take;
            done += take;
        }
        Ok(())
    }

    /// Reads `n` bytes into `out` (replacing its contents).
    pub(crate) fn read_vec(&mut self, n: usize, out: &mut Vec<u8>) -> ReadResult<()> {
        self.ensure(n as u64)?;
        out.clear();
        out.resize(n, 0);
        self.read_exact(out)
    }

    pub(crate) fn be32(&mut self) -> ReadResult<u32> {
        let mut b = [0; 4];
        self.read_exact(&mut b)?;
        Ok(u32::from_be_bytes(b))
    }

    pub(crate) fn be64(&mut self) -> ReadResult<u64> {
        let mut b = [0; 8];
        self.read_exact(&mut b)?;
        Ok(u64::from_be_bytes(b))
    }

    pub(crate) fn uvarint(&mut self) -> ReadResult<u64> {
        let at = self.pos();
        decode_uvarint(|| self.u8())?.ok_or(ReadError::BadVarint { at })
    }

    pub(crate) fn varint(&mut self) -> ReadResult<i64> {
        self.uvarint().map(zigzag)
    }

    /// Consumes `n` bytes (hashing them if a CRC is running).
    pub(crate) fn skip(&mut self, n: u64) -> ReadResult<()> {
        self.ensure(n)?;
        if self.crc.is_none() {
            let to = self.pos() + n;
            self.seek(to);
            return Ok(());
        }
        let mut left = n;
        while left > 0 {
            if self.at == self.filled {
                self.refill()?;
            }
            let take = ((self.filled - self.at) as u64).min(left) as usize;
            self.at += take;
            left -= take as u64;
        }
        Ok(())
    }

    /// Consumes bytes up to `end`; returns the offset of the first non-zero one.
    pub(crate) fn find_nonzero(&mut self, end: u64) -> ReadResult<Option<u64>> {
        let n = end.saturating_sub(self.pos());
        self.ensure(n)?;
        let mut left = n;
        let mut found = None;
        while left > 0 {
            if self.at == self.filled {
                self.refill()?;
            }
            let take = ((self.filled - self.at) as u64).min(left) as usize;
            let slice = &self.buf[self.at..self.at + take];
            if found.is_none() {
                if let Some(i) = slice.iter().position(|&b| b != 0) {
                    found = Some(self.pos() + i as u64);
                }
            }
            self.at += take;
            left -= take as u64;
        }
        Ok(found)
    }
}

/// Decodes a Go `binary.Uvarint`; `Ok(None)` means too long or overflowing.
pub(crate) fn decode_uvarint<E>(mut next: impl FnMut() -> Result<u8, E>) -> Result<Option<u64>, E> {
    let mut x: u64 = 0;
    for i in 0..MAX_VARINT_LEN {
        let b = next()?;
        if i == MAX_VARINT_LEN - 1 && b > 1 {
            return Ok(None);
        }
        x |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Ok(Some(x));
        }
    }
    Ok(None)
}

/// Undoes Go's ZigZag encoding of signed varints.
pub(crate) fn zigzag(ux: u64) -> i64 {
    let x = (ux >> 1) as i64;
    if ux & 1 != 0 {
        !x
    } else {
        x
    }
}

/// Why decoding an in-memory entry failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SliceError {
    /// Needed more bytes than the entry has; `at` is the entry-relative offset.
    Short { at: usize },
    /// A malformed varint at entry-relative offset `at`.
    BadVarint { at: usize },
}

/// Decodes fields from an entry that has already been read into memory.
pub(crate) struct SliceDecoder<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> SliceDecoder<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        SliceDecoder { b, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }

    pub(crate) fn u8(&mut self) -> Result<u8, SliceError> {
        let b = *self
            .b
            .get(self.pos)
            .ok_or(SliceError::Short { at: self.pos })?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn uvarint(&mut self) -> Result<u64, SliceError> {
        let at = self.pos;
        decode_uvarint(|| self.u8())?.ok_or(SliceError::BadVarint { at })
    }

    pub(crate) fn varint(&mut self) -> Result<i64, SliceError> {
        self.uvarint().map(zigzag)
    }
}

/// Where a forward scan over consecutive records or sections stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanState {
    /// More items may follow.
    Records,
    /// The region ended cleanly.
    End,
    /// Damage the scan cannot step over stopped it.
    Broken,
}

/// One step of a forward scan over consecutive records or sections.
pub(crate) enum Step {
    /// An item starts at this offset; `entries` is its entry count when known.
    Item { start: u64, entries: Option<u64> },
    /// The scan reached the end of its region cleanly.
    End,
    /// The scan had to stop early (damage it cannot step over).
    Broken,
}

/// Answer to "does an item start exactly at this offset?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    Start {
        entries: Option<u64>,
    },
    /// No item starts there; `next` is the first item start after it.
    NotStart {
        next: Option<u64>,
    },
    /// Cannot tell: the scan broke, or the target lies behind the cursor.
    Unknown,
}

/// Remembers where a forward scan is, to answer `Lookup`s in one pass.
///
/// References in TSDB files (postings offsets, chunk refs) are written in
/// increasing order, so resolving them against a scan that only moves forward
/// needs no table of all item starts, only the last two seen.
#[derive(Default)]
pub(crate) struct StartCursor {
    last: Option<(u64, Option<u64>)>,
    prev_start: Option<u64>,
}

impl StartCursor {
    pub(crate) fn locate(&mut self, target: u64, mut next: impl FnMut() -> Step) -> Lookup {
        if let Some((start, entries)) = self.last {
            if target == start {
                return Lookup::Start { entries };
            }
            if target < start {
                return match self.prev_start {
                    Some(p) if target > p => Lookup::NotStart { next: Some(start) },
                    _ => Lookup::Unknown,
                };
            }
        }
        loop {
            match next() {
                Step::Item { start, entries } => {
                    self.prev_start = self.last.map(|(s, _)| s);
                    self.last = Some((start, entries));
                    if start == target {
                        return Lookup::Start { entries };
                    }
                    if start > target {
                        return Lookup::NotStart { next: Some(start) };
                    }
                }
                Step::End => return Lookup::NotStart { next: None },
                Step::Broken => return Lookup::Unknown,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uvarint_matches_go_encoding() {
        let cases: &[(&[u8], Option<u64>)] = &[
            (&[0x00], Some(0)),
            (&[0x7f], Some(127)),
            (&[0x80, 0x01], Some(128)),
            (&[0xf0, 0x01], Some(240)),
            (
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
                Some(u64::MAX),
            ),
            (
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
                None,
            ),
            (&[0x80; 11], None),
        ];
        for (bytes, want) in cases {
            let mut d = SliceDecoder::new(bytes);
            assert_eq!(d.uvarint().ok(), *want, "{bytes:x?}");
        }
        let mut short = SliceDecoder::new(&[0x80]);
        assert_eq!(short.uvarint(), Err(SliceError::Short { at: 1 }));
    }

    #[test]
    fn zigzag_round_trips() {
        assert_eq!(zigzag(0), 0);
        assert_eq!(zigzag(1), -1);
        assert_eq!(zigzag(2), 1);
        assert_eq!(zigzag(u64::MAX), i64::MIN);
    }

    #[test]
    fn reader_crc_and_limits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).expect("write");
        let mut r = FileReader::open(&path).expect("open");
        r.seek(3);
        r.start_crc();
        r.skip(500_000).expect("skip");
        assert_eq!(r.finish_crc(), crc32c::crc32c(&data[3..500_003]));
        r.set_limit(500_012);
        assert!(r.be64().is_ok());
        assert!(matches!(
            r.be32(),
            Err(ReadError::Overrun {
                at: 500_011,
                limit: 500_012
            })
        ));
        r.set_limit(u64::MAX);
        r.seek(0);
        assert_eq!(r.find_nonzero(10).expect("scan"), Some(1));
    }
}
