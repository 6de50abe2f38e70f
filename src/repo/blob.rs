//! One blob: a piece of a stream, compressed as one independent zstd frame.
//!
//! Format 2 stores every stream (a window's chunk records, an index, a small
//! file) as a sequence of *blobs*, each named by the hash of its
//! uncompressed bytes (its id: BLAKE3, or SHA-256 in repositories made
//! before BLAKE3, see `content_id.rs`) and compressed on its own, so any blob can be
//! read without the ones before it and the same bytes are stored once.
//!
//! Compression uses promsnap's archive parameters (level 1 by default, 4-byte
//! minimum matches: see [`crate::archive`]) with the window limited to
//! 128 KiB (`windowLog` 17). That costs little ratio on chunk data, whose
//! repeats are short and near, and is what lets a restore keep one decoder
//! per window stream open at once: hundreds of them, each with a small
//! window instead of zstd's default 8 MiB.
//!
//! Decoding trusts nothing about the frame. [`BlobReader`] reads the frame
//! header itself and refuses a dictionary or a window above 128 KiB before
//! zstd allocates anything (and tells zstd the same limit, as a second
//! guard); it asks the decoder for at most one byte more than the length the
//! blob's reference records, so a frame that expands to terabytes costs
//! `raw_length + 1` bytes; and it checks the length, that nothing follows
//! the frame, and the id, before it hands on the blob's last bytes.
//! Earlier bytes are handed on as they are decoded (a blob is up to 1 MiB
//! and a restore streams hundreds at once): a caller that streams must treat
//! an error as voiding everything it read from that blob. [`decode`] reads a
//! small blob whole and returns nothing unless every check passed.

use std::io::{self, BufRead, Cursor, Read};

use super::content_id::{ContentId, IdHash, IdHasher};
use crate::archive::MIN_MATCH;

/// The largest zstd window a blob may use, as a power of two.
pub const WINDOW_LOG: u32 = 17;

/// The largest zstd window a blob may use (128 KiB).
pub const MAX_WINDOW: u64 = 1 << WINDOW_LOG;

/// What a blob holds; recorded in its pack's header, so that `verify` and
/// `prune` can account for blobs without reading recipes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BlobKind {
    /// Chunk records: a window stream, or a chunk file in the `files` layout.
    Chunks = 0,
    /// Part of a block's index.
    Index = 1,
    /// A small file of a block (`meta.json`, `tombstones`).
    SmallFile = 2,
}

impl BlobKind {
    /// The kind a pack header's byte names, if any.
    pub fn from_byte(b: u8) -> Option<BlobKind> {
        match b {
            0 => Some(BlobKind::Chunks),
            1 => Some(BlobKind::Index),
            2 => Some(BlobKind::SmallFile),
            _ => None,
        }
    }
}

/// A compressed blob, ready to go into a pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedBlob {
    pub kind: BlobKind,
    /// The hash of the uncompressed bytes.
    pub id: ContentId,
    /// How many bytes the frame decompresses to.
    pub raw_length: u32,
    /// One zstd frame.
    pub frame: Vec<u8>,
}

/// Compresses blobs; keeps one zstd context for all of them (a context is
/// about 1 MiB to set up at level 1 with a 128 KiB window).
pub struct BlobEncoder {
    compressor: zstd::bulk::Compressor<'static>,
    ids: IdHash,
}

impl BlobEncoder {
    /// An encoder at zstd `level` ([`DEFAULT_LEVEL`] is 1), naming blobs
    /// with `ids`.
    pub fn new(level: i32, ids: IdHash) -> io::Result<BlobEncoder> {
        use zstd::zstd_safe::CParameter;
        let mut compressor = zstd::bulk::Compressor::new(level)?;
        compressor.set_parameter(CParameter::WindowLog(WINDOW_LOG))?;
        if level <= 16 {
            compressor.set_parameter(CParameter::MinMatch(MIN_MATCH))?;
        }
        // The id checks the content; zstd's own checksum would only cost 4
        // bytes a blob.
        compressor.set_parameter(CParameter::ChecksumFlag(false))?;
        compressor.set_parameter(CParameter::ContentSizeFlag(true))?;
        Ok(BlobEncoder { compressor, ids })
    }

    /// An encoder at promsnap's default level, naming blobs as new
    /// repositories do (tests).
    #[cfg(test)]
    pub fn with_default_level() -> io::Result<BlobEncoder> {
        BlobEncoder::new(crate::archive::DEFAULT_LEVEL, IdHash::NEW)
    }

    /// Compresses `raw` as one frame. The same bytes at the same level
    /// always give the same frame (with the same zstd version).
    pub fn encode(&mut self, kind: BlobKind, raw: &[u8]) -> io::Result<EncodedBlob> {
        let raw_length = u32::try_from(raw.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a blob of {} bytes is over the 4 GiB limit", raw.len()),
            )
        })?;
        let frame = self.compressor.compress(raw)?;
        Ok(EncodedBlob {
            kind,
            id: self.ids.of(raw),
            raw_length,
            frame,
        })
    }
}

/// Why a blob's bytes are not the blob its reference describes. Every
/// variant is damage in the repository (or a reference that lies), never a
/// failure of this machine or of the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    #[error("it is not a zstd frame")]
    NotAFrame,
    #[error("its zstd frame header is cut off")]
    HeaderCutOff,
    #[error("its zstd frame needs a dictionary, which blobs never use")]
    Dictionary,
    #[error("its zstd frame needs a {window}-byte window, more than the {MAX_WINDOW} bytes blobs may use")]
    WindowTooLarge { window: u64 },
    #[error("it does not decompress: {0}")]
    Corrupt(String),
    #[error("it decompresses to more than the {raw_length} bytes its reference records")]
    TooLong { raw_length: u64 },
    #[error("it decompresses to {got} bytes, not the {raw_length} its reference records")]
    TooShort { got: u64, raw_length: u64 },
    #[error("there are bytes after its zstd frame")]
    Trailing,
    #[error("its content hashes to {got}, not to its id")]
    WrongId { got: ContentId },
}

impl BlobError {
    /// The blob error inside `err`, if it is one (and not a failure to read
    /// the input).
    pub fn of_io(err: &io::Error) -> Option<&BlobError> {
        err.get_ref()?.downcast_ref::<BlobError>()
    }

    fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }
}

/// The zstd magic number, little-endian.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The longest frame header that matters for the window: magic, descriptor,
/// window byte or (single segment) an 8-byte content size.
const HEADER_PEEK: u64 = 4 + 1 + 8;

/// The window a frame header asks for (RFC 8878, 3.1.1.1), refusing what a
/// blob never is: another kind of frame, a dictionary, a cut-off header.
fn frame_window(head: &[u8]) -> Result<u64, BlobError> {
    if head.len() < 5 {
        return Err(if head.len() < 4 || head[..4] == ZSTD_MAGIC {
            BlobError::HeaderCutOff
        } else {
            BlobError::NotAFrame
        });
    }
    if head[..4] != ZSTD_MAGIC {
        return Err(BlobError::NotAFrame);
    }
    let descriptor = head[4];
    if descriptor & 0b11 != 0 {
        return Err(BlobError::Dictionary);
    }
    let single_segment = descriptor & 0x20 != 0;
    if !single_segment {
        let byte = *head.get(5).ok_or(BlobError::HeaderCutOff)?;
        let base = 1u64 << (10 + (byte >> 3));
        return Ok(base + base / 8 * u64::from(byte & 0b111));
    }
    // A single segment: the window is the content size.
    let size_bytes = [1, 2, 4, 8][usize::from(descriptor >> 6)];
    let field = head.get(5..5 + size_bytes).ok_or(BlobError::HeaderCutOff)?;
    let mut le = [0u8; 8];
    le[..size_bytes].copy_from_slice(field);
    let size = u64::from_le_bytes(le);
    Ok(if size_bytes == 2 { size + 256 } else { size })
}

/// The input of a decoder, remembering whether reading it failed: an error
/// from the input is passed on as it is (a broken connection is not damage),
/// anything else the decoder says is damage.
struct Watched<R> {
    inner: R,
    failed: bool,
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|_| self.failed = true)
    }
}

impl<R: BufRead> BufRead for Watched<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match self.inner.fill_buf() {
            Ok(buf) => Ok(buf),
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    fn consume(&mut self, amt: usize) {
        self.inner.consume(amt)
    }
}

type Input<R> = io::Chain<Cursor<Vec<u8>>, Watched<R>>;

/// Decodes one blob from `R` (exactly the blob's stored bytes), checking it
/// against what its reference says: `raw_length` and `id`.
///
/// Memory: zstd's decoder for a 128 KiB window (at most
/// [`DECODER_MEMORY`]) and a few bytes; the input buffer is `R`'s.
/// Errors are `io::Error`s: damage carries a [`BlobError`] (see
/// [`BlobError::of_io`]), a failure of the input is passed on unchanged.
pub struct BlobReader<R: BufRead> {
    decoder: Option<zstd::stream::read::Decoder<'static, Input<R>>>,
    raw_length: u64,
    id: ContentId,
    produced: u64,
    hasher: Option<IdHasher>,
}

impl<R: BufRead> BlobReader<R> {
    /// Reads the frame header from `input` and sets up the decoder; a frame
    /// that is not one blobs use is refused here.
    pub fn new(
        mut input: R,
        raw_length: u32,
        id: ContentId,
        ids: IdHash,
    ) -> io::Result<BlobReader<R>> {
        let mut head = Vec::with_capacity(HEADER_PEEK as usize);
        (&mut input).take(HEADER_PEEK).read_to_end(&mut head)?;
        let window = frame_window(&head).map_err(BlobError::into_io)?;
        if window > MAX_WINDOW {
            return Err(BlobError::WindowTooLarge { window }.into_io());
        }
        let input = Cursor::new(head).chain(Watched {
            inner: input,
            failed: false,
        });
        let mut decoder = zstd::stream::read::Decoder::with_buffer(input)?.single_frame();
        // A second guard, should the header parsing above ever disagree
        // with zstd's.
        decoder.window_log_max(WINDOW_LOG)?;
        Ok(BlobReader {
            decoder: Some(decoder),
            raw_length: u64::from(raw_length),
            id,
            produced: 0,
            hasher: Some(ids.hasher()),
        })
    }

    /// Reads from the decoder, sorting its errors into input failures and
    /// damage.
    fn decode(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let decoder = self.decoder.as_mut().expect("reading a finished blob");
        decoder.read(buf).map_err(|e| {
            if decoder.get_ref().get_ref().1.failed {
                e
            } else {
                BlobError::Corrupt(e.to_string()).into_io()
            }
        })
    }

    /// The checks at the end of the frame: nothing more decodes, nothing
    /// follows the frame, the length and the id are right.
    fn finish(&mut self) -> io::Result<()> {
        if self.decode(&mut [0u8; 1])? > 0 {
            return Err(BlobError::TooLong {
                raw_length: self.raw_length,
            }
            .into_io());
        }
        let mut rest = self.decoder.take().expect("finished once").finish();
        if !rest.fill_buf()?.is_empty() {
            return Err(BlobError::Trailing.into_io());
        }
        if self.produced != self.raw_length {
            return Err(BlobError::TooShort {
                got: self.produced,
                raw_length: self.raw_length,
            }
            .into_io());
        }
        let got = self.hasher.take().expect("finished once").finish();
        if got != self.id {
            return Err(BlobError::WrongId { got }.into_io());
        }
        Ok(())
    }
}

impl<R: BufRead> Read for BlobReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.decoder.is_none() || buf.is_empty() {
            return Ok(0);
        }
        // Never ask for more than one byte past the recorded length.
        let allowed = (self.raw_length + 1 - self.produced).min(buf.len() as u64) as usize;
        let n = self.decode(&mut buf[..allowed])?;
        if n == 0 {
            self.finish()?;
            return Ok(0);
        }
        self.produced += n as u64;
        if self.produced > self.raw_length {
            return Err(BlobError::TooLong {
                raw_length: self.raw_length,
            }
            .into_io());
        }
        self.hasher
            .as_mut()
            .expect("not finished")
            .update(&buf[..n]);
        if self.produced == self.raw_length {
            // The last bytes go out only once the whole blob checked out.
            self.finish()?;
        }
        Ok(n)
    }
}

/// Decodes a whole (small) blob held in memory: its bytes, or why they are
/// not the blob its reference describes. Memory: the decoder and
/// `raw_length` bytes, which the caller bounds.
pub fn decode(
    frame: &[u8],
    raw_length: u32,
    id: ContentId,
    ids: IdHash,
) -> Result<Vec<u8>, BlobError> {
    let mut out = Vec::new();
    BlobDecoder::new(ids).decode_into(frame, raw_length, id, &mut out)?;
    Ok(out)
}

/// Decodes whole blobs held in memory, one after the other, with one zstd
/// context (no window buffer: a frame decodes straight into its output).
/// This is what a restore's decoding threads use: a blob comes out whole
/// and checked (frame header, that it is one frame and nothing after it,
/// its length and id) before any of its bytes is handed on.
pub struct BlobDecoder {
    dctx: zstd::zstd_safe::DCtx<'static>,
    ids: IdHash,
}

impl BlobDecoder {
    /// A decoder for blobs named with `ids`.
    pub fn new(ids: IdHash) -> BlobDecoder {
        use zstd::zstd_safe::{DCtx, DParameter};
        let mut dctx = DCtx::create();
        // The header is checked below; this is a second guard.
        dctx.set_parameter(DParameter::WindowLogMax(WINDOW_LOG))
            .expect("zstd accepts its own window limit");
        BlobDecoder { dctx, ids }
    }

    /// Decodes `frame` into `out` (cleared first), checking it against what
    /// its reference says. Nothing decodes past `raw_length + 1` bytes;
    /// `out` holds the blob only if this returns `Ok`.
    pub fn decode_into(
        &mut self,
        frame: &[u8],
        raw_length: u32,
        id: ContentId,
        out: &mut Vec<u8>,
    ) -> Result<(), BlobError> {
        self.decode_unhashed(frame, raw_length, out)?;
        let got = self.ids.of(out);
        if got != id {
            out.clear();
            return Err(BlobError::WrongId { got });
        }
        Ok(())
    }

    /// As [`decode_into`](Self::decode_into), every check but the id:
    /// for a reader that hashes every byte it is handed anyway (a rebuild,
    /// which checks each file's SHA-256 before the file counts), so that
    /// the bytes are not hashed twice. What this lets through (a frame
    /// that decodes to the right length but the wrong bytes) that reader
    /// refuses, later and less precisely: it names the file, not the blob.
    pub fn decode_unhashed(
        &mut self,
        frame: &[u8],
        raw_length: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), BlobError> {
        let head = &frame[..frame.len().min(HEADER_PEEK as usize)];
        let window = frame_window(head)?;
        if window > MAX_WINDOW {
            return Err(BlobError::WindowTooLarge { window });
        }
        match zstd::zstd_safe::find_frame_compressed_size(frame) {
            Ok(n) if n < frame.len() => return Err(BlobError::Trailing),
            Ok(_) => {}
            Err(code) => return Err(corrupt(code)),
        }
        let raw = raw_length as usize;
        // Into the spare capacity, never zeroed first: zstd writes at most
        // what the buffer holds, `raw + 1` bytes or more if it is reused.
        out.clear();
        if out.capacity() < raw + 1 {
            // A new buffer: growing the old one would copy what it held.
            *out = Vec::with_capacity(raw + 1);
        }
        let n = match self.dctx.decompress(out, frame) {
            Ok(n) => n,
            Err(code) if is_dst_too_small(code) => {
                return Err(BlobError::TooLong {
                    raw_length: u64::from(raw_length),
                })
            }
            Err(code) => return Err(corrupt(code)),
        };
        out.truncate(n);
        if n > raw {
            return Err(BlobError::TooLong {
                raw_length: u64::from(raw_length),
            });
        }
        if n < raw {
            return Err(BlobError::TooShort {
                got: n as u64,
                raw_length: u64::from(raw_length),
            });
        }
        Ok(())
    }
}

fn corrupt(code: usize) -> BlobError {
    BlobError::Corrupt(zstd::zstd_safe::get_error_name(code).to_string())
}

/// Whether zstd stopped because the output was full: the frame holds more
/// than the reference records.
fn is_dst_too_small(code: usize) -> bool {
    use zstd::zstd_safe::zstd_sys::{ZSTD_ErrorCode, ZSTD_getErrorCode};
    // SAFETY: a pure function of the error code.
    unsafe { ZSTD_getErrorCode(code) == ZSTD_ErrorCode::ZSTD_error_dstSize_tooSmall }
}

/// What one open [`BlobReader`] holds in zstd's decoder, at most: the
/// context, the 128 KiB window with a block buffer, and an input block
/// buffer. Measured by a test: 606 KiB with zstd 1.5.7 (a 64 KiB window
/// would take 350 KiB, a 32 KiB one 222 KiB).
pub const DECODER_MEMORY: usize = 640 << 10;

/// Pseudo-random but compressible: chunk-like data.
#[cfg(test)]
pub(crate) fn sample(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..len)
        .map(|i| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            if i % 7 < 3 {
                (i / 7) as u8
            } else {
                (x >> 56) as u8
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(data: &[u8]) -> EncodedBlob {
        BlobEncoder::with_default_level()
            .unwrap()
            .encode(BlobKind::Chunks, data)
            .unwrap()
    }

    #[test]
    fn blobs_are_named_by_the_repositorys_hash_and_checked_with_it() {
        let data = b"one window's records".repeat(100);
        for ids in [IdHash::Sha256, IdHash::Blake3] {
            let b = BlobEncoder::new(crate::archive::DEFAULT_LEVEL, ids)
                .unwrap()
                .encode(BlobKind::Chunks, &data)
                .unwrap();
            assert_eq!(b.id, ids.of(&data));
            assert_eq!(decode(&b.frame, b.raw_length, b.id, ids).unwrap(), data);
            let other = match ids {
                IdHash::Sha256 => IdHash::Blake3,
                IdHash::Blake3 => IdHash::Sha256,
            };
            assert_eq!(
                decode(&b.frame, b.raw_length, b.id, other),
                Err(BlobError::WrongId {
                    got: other.of(&data)
                })
            );
        }
    }

    #[test]
    fn blobs_round_trip_and_are_named_by_their_content() {
        for len in [0, 1, 1000, 128 * 1024, 1 << 20, 3 << 20] {
            let data = sample(len, len as u64);
            let b = blob(&data);
            assert_eq!(b.id, ContentId::of(&data));
            assert_eq!(b.raw_length as usize, len);
            assert_eq!(
                decode(&b.frame, b.raw_length, b.id, IdHash::NEW).unwrap(),
                data
            );
            // The same bytes always give the same frame.
            assert_eq!(blob(&data).frame, b.frame, "{len} bytes");
        }
    }

    #[test]
    fn frames_use_at_most_a_128_kib_window() {
        for len in [0, 100, 200 * 1024, 5 << 20] {
            let b = blob(&sample(len, 1));
            let window = frame_window(&b.frame).unwrap();
            assert!(window <= MAX_WINDOW, "{len} bytes: window {window}");
        }
    }

    /// A caller reading in odd sizes gets every byte, and the checks.
    #[test]
    fn the_streaming_reader_hands_on_every_byte_in_any_read_size() {
        let data = sample(300_000, 9);
        let b = blob(&data);
        let mut reader = BlobReader::new(&b.frame[..], b.raw_length, b.id, IdHash::NEW).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 777];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, data);
    }

    fn refused(frame: &[u8], raw_length: u32, id: ContentId) -> BlobError {
        decode(frame, raw_length, id, IdHash::NEW).unwrap_err()
    }

    #[test]
    fn a_frame_longer_than_its_reference_is_cut_off_one_byte_past_it() {
        let data = sample(50_000, 2);
        let b = blob(&data);
        let err = refused(&b.frame, 49_999, ContentId::of(&data[..49_999]));
        assert_eq!(err, BlobError::TooLong { raw_length: 49_999 });
        // A streaming reader hands on none of the bytes past the limit.
        let mut reader = BlobReader::new(&b.frame[..], 1000, b.id, IdHash::NEW).unwrap();
        let mut out = Vec::new();
        let err = reader.read_to_end(&mut out).unwrap_err();
        assert_eq!(
            BlobError::of_io(&err),
            Some(&BlobError::TooLong { raw_length: 1000 })
        );
        assert!(out.len() < 1000, "{} bytes handed on", out.len());
        assert!(err
            .to_string()
            .contains("decompresses to more than the 1000 bytes its reference records"));
    }

    #[test]
    fn a_frame_shorter_than_its_reference_is_refused() {
        let data = sample(5000, 3);
        let b = blob(&data);
        let err = refused(&b.frame, 5001, b.id);
        assert_eq!(
            err,
            BlobError::TooShort {
                got: 5000,
                raw_length: 5001
            }
        );
    }

    #[test]
    fn content_with_another_sha256_is_refused_and_the_last_bytes_withheld() {
        let data = sample(5000, 4);
        let b = blob(&data);
        let other = ContentId::of(b"something else");
        assert_eq!(
            refused(&b.frame, b.raw_length, other),
            BlobError::WrongId { got: b.id }
        );
        // Streamed: the error comes before the blob's last bytes.
        let mut reader = BlobReader::new(&b.frame[..], b.raw_length, other, IdHash::NEW).unwrap();
        let mut out = Vec::new();
        let err = reader.read_to_end(&mut out).unwrap_err();
        assert_eq!(
            BlobError::of_io(&err),
            Some(&BlobError::WrongId { got: b.id })
        );
        assert!(out.len() < data.len(), "all {} bytes handed on", out.len());
    }

    #[test]
    fn bytes_after_the_frame_are_refused() {
        let b = blob(&sample(5000, 5));
        let mut frame = b.frame.clone();
        frame.extend_from_slice(&blob(b"x").frame);
        assert_eq!(refused(&frame, b.raw_length, b.id), BlobError::Trailing);
    }

    #[test]
    fn a_truncated_or_garbled_frame_is_refused() {
        let b = blob(&sample(100_000, 6));
        let cut = &b.frame[..b.frame.len() / 2];
        assert!(matches!(
            refused(cut, b.raw_length, b.id),
            BlobError::Corrupt(_)
        ));
        assert_eq!(
            refused(&b.frame[..3], b.raw_length, b.id),
            BlobError::HeaderCutOff
        );
        assert_eq!(
            refused(b"PK\x03\x04 not zstd", 10, b.id),
            BlobError::NotAFrame
        );
        let mut garbled = b.frame.clone();
        for byte in &mut garbled[20..40] {
            *byte ^= 0x5a;
        }
        assert!(decode(&garbled, b.raw_length, b.id, IdHash::NEW).is_err());
    }

    /// Frames made with zstd's defaults for large input ask for a window of
    /// up to 8 MiB (and a hostile one for far more): refused from the
    /// header, before zstd allocates it.
    #[test]
    fn a_frame_whose_window_is_too_large_is_refused() {
        let data = sample(1 << 20, 7);
        let mut big = zstd::bulk::Compressor::new(19).unwrap();
        big.set_parameter(zstd::zstd_safe::CParameter::WindowLog(23))
            .unwrap();
        big.set_parameter(zstd::zstd_safe::CParameter::ContentSizeFlag(false))
            .unwrap();
        let frame = big.compress(&data).unwrap();
        assert_eq!(
            refused(&frame, data.len() as u32, ContentId::of(&data)),
            // zstd shrinks the window to the input's size, still 8 times too big.
            BlobError::WindowTooLarge { window: 1 << 20 }
        );
        // A single-segment frame claiming 4 GiB of content (window = size).
        let mut lying = ZSTD_MAGIC.to_vec();
        lying.push(0b1110_0000); // 8-byte content size, single segment
        lying.extend_from_slice(&(4u64 << 30).to_le_bytes());
        lying.extend_from_slice(&[1, 0, 0]); // an empty last raw block
        let err = refused(&lying, 10, ContentId::of(b""));
        assert_eq!(err, BlobError::WindowTooLarge { window: 4 << 30 });
        assert!(err.to_string().contains("more than the 131072 bytes"));
    }

    #[test]
    fn dictionaries_are_refused() {
        let mut frame = ZSTD_MAGIC.to_vec();
        frame.extend_from_slice(&[0b0000_0001, 0x30, 7]); // dictionary id 7
        assert_eq!(
            refused(&frame, 0, ContentId::of(b"")),
            BlobError::Dictionary
        );
    }

    /// An error from the input is the input's, not damage.
    #[test]
    fn input_failures_are_passed_on_unchanged() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"))
            }
        }
        let b = blob(&sample(200_000, 8));
        let input = io::BufReader::new((&b.frame[..20]).chain(Broken));
        let mut reader = BlobReader::new(input, b.raw_length, b.id, IdHash::NEW).unwrap();
        let err = reader.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        assert!(BlobError::of_io(&err).is_none());
    }

    /// What zstd allocates for a decoder that streams a 1 MiB blob out in
    /// small pieces, as a restore does.
    #[test]
    fn a_decoder_needs_what_the_documentation_says() {
        use zstd::zstd_safe::{DCtx, DParameter, InBuffer, OutBuffer};
        let b = blob(&sample(1 << 20, 11));
        let mut dctx = DCtx::create();
        dctx.set_parameter(DParameter::WindowLogMax(WINDOW_LOG))
            .unwrap();
        let mut input = InBuffer::around(&b.frame[..]);
        let mut out = vec![0u8; 16 << 10];
        let mut total = 0;
        loop {
            let mut output = OutBuffer::around(&mut out[..]);
            let hint = dctx.decompress_stream(&mut output, &mut input).unwrap();
            total += output.pos();
            if hint == 0 {
                break;
            }
        }
        assert_eq!(total, 1 << 20);
        let memory = dctx.sizeof();
        println!("a decoder holds {memory} bytes");
        assert!(
            (MAX_WINDOW as usize..=DECODER_MEMORY).contains(&memory),
            "{memory} bytes per decoder"
        );
    }
}
