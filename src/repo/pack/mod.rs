//! Packs: many blobs in one object, and how a blob is found in one.
//!
//! Blobs are about 1 MiB compressed and a backup makes thousands; storing
//! each as an object would cost a request apiece to write, list and delete.
//! A *pack* holds blobs back to back, followed by a header that lists them
//! (FORMAT.md, "Blobs and packs"):
//!
//! ```text
//! blob 0 | blob 1 | ... | blob n-1 | header | header length (u32 LE) | "PSNPACK2"
//! header = n × (kind u8 | raw length u32 LE | stored length u32 LE | blob id 32 bytes)
//! ```
//!
//! A pack is named by the content id (see `content_id.rs`) of all its
//! bytes and stored at
//! `packs/<group>/<first 2 hex>/<64 hex>` (or, written before groups,
//! `packs/<first 2 hex>/<64 hex>`: keys are made in `datadir.rs`, and a
//! [`PackReader`] or [`PackWriter`] works in one such directory); it is
//! written once and never changed. A
//! recipe finds a blob by a [`BlobRef`]: the pack, where the blob starts,
//! its stored and raw lengths, and its id. The header is what lets `verify`
//! and `prune` account for every blob without trusting any recipe.
//!
//! This file is the format: the header's bytes both ways, and the checks a
//! reference must pass against a header. Everything read is hostile until
//! checked: a header must fit in its pack, list whole entries (at most
//! [`MAX_BLOBS`]), and its blobs' stored lengths must add up exactly to
//! where the header starts; a reference must lie within the blobs (without
//! overflow) and match the header's entry at its offset in length, raw
//! length and id. A failure is a [`DamagedPack`] that names the pack.
//! `writer.rs` fills and uploads packs, `reader.rs` reads blobs back with
//! ranged reads, `stream.rs` decodes a sequence of blobs as one stream,
//! `readahead.rs` many streams at once, ahead of their reader, on every core.

pub mod hashes;
pub mod readahead;
pub mod reader;
pub mod stream;
pub mod writer;

use std::fmt;

use anyhow::Result;

use super::blob::BlobKind;
use super::content_id::ContentId;
use super::datadir::DataDir;

pub use readahead::ReadAhead;
pub use reader::PackReader;
pub use stream::BlobsReader;
pub use writer::{PackWriter, PackWriterOptions};

/// The last 8 bytes of every pack.
pub const MAGIC: &[u8; 8] = b"PSNPACK2";

/// The bytes after the header: its length (u32 LE) and [`MAGIC`].
pub const TRAILER_LEN: u64 = 4 + 8;

/// One header entry: kind, raw length, stored length, id.
pub const ENTRY_LEN: u64 = 1 + 4 + 4 + 32;

/// The most blobs one pack may list (a header of at most 656 KiB), so that
/// reading a header costs bounded memory whatever a pack claims. Writers
/// start a new pack before they reach it.
pub const MAX_BLOBS: usize = 16384;

/// Where a blob is: the JSON object recipes hold (`<blob ref>` in FORMAT.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct BlobRef {
    /// The pack's name: the content id of its bytes.
    pub pack: ContentId,
    /// Where the blob's frame starts in the pack.
    pub offset: u64,
    /// The frame's length in the pack.
    pub length: u32,
    /// How many bytes the frame decompresses to.
    pub raw_length: u32,
    /// The content id of those bytes.
    pub id: ContentId,
}

/// One blob as a pack's header lists it, with its offset (the sum of the
/// stored lengths before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderEntry {
    pub kind: BlobKind,
    pub raw_length: u32,
    pub length: u32,
    pub id: ContentId,
    pub offset: u64,
}

/// The bytes that end a pack: the header for `entries`, its length and the
/// magic.
pub fn trailer(entries: &[HeaderEntry]) -> Vec<u8> {
    let header_len = entries.len() * ENTRY_LEN as usize;
    let mut out = Vec::with_capacity(header_len + TRAILER_LEN as usize);
    for e in entries {
        out.push(e.kind as u8);
        out.extend_from_slice(&e.raw_length.to_le_bytes());
        out.extend_from_slice(&e.length.to_le_bytes());
        out.extend_from_slice(&e.id.0);
    }
    let header_len = u32::try_from(header_len).expect("at most MAX_BLOBS entries");
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(MAGIC);
    out
}

/// A pack's header, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackHeader {
    pub pack: ContentId,
    /// The pack's size in bytes.
    pub size: u64,
    /// In pack order (and so by offset).
    pub entries: Vec<HeaderEntry>,
}

impl PackHeader {
    /// The header's length, from the last [`TRAILER_LEN`] bytes of a pack
    /// of `size` bytes, checked against the size before anything more is
    /// read.
    pub fn header_len(pack: ContentId, size: u64, trailer: &[u8]) -> Result<u64, DamagedPack> {
        let damaged = |what: String| DamagedPack::damaged(pack, what);
        if size < TRAILER_LEN || trailer.len() as u64 != TRAILER_LEN {
            return Err(damaged(format!(
                "it is {size} bytes long, too short to be a pack (cut off?)"
            )));
        }
        if &trailer[4..] != MAGIC {
            return Err(damaged(
                "it does not end with \"PSNPACK2\" (cut off, or not a pack)".into(),
            ));
        }
        let header_len = u64::from(u32::from_le_bytes(trailer[..4].try_into().expect("4")));
        if header_len > size - TRAILER_LEN {
            return Err(damaged(format!(
                "its header claims {header_len} bytes, more than its {size} bytes hold"
            )));
        }
        if header_len % ENTRY_LEN != 0 {
            return Err(damaged(format!(
                "its header claims {header_len} bytes, not a whole number of \
                 {ENTRY_LEN}-byte entries"
            )));
        }
        if header_len / ENTRY_LEN > MAX_BLOBS as u64 {
            return Err(damaged(format!(
                "its header lists {} blobs, more than the {MAX_BLOBS} a pack may hold",
                header_len / ENTRY_LEN
            )));
        }
        Ok(header_len)
    }

    /// Parses the header from `tail`, the last bytes of the pack (at least
    /// the header and the trailer), and checks that the blobs it lists fill
    /// the pack up to the header exactly.
    pub fn parse(pack: ContentId, size: u64, tail: &[u8]) -> Result<PackHeader, DamagedPack> {
        let damaged = |what: String| DamagedPack::damaged(pack, what);
        let trailer_at = tail.len().saturating_sub(TRAILER_LEN as usize);
        let header_len = Self::header_len(pack, size, &tail[trailer_at..])?;
        let header = tail[..trailer_at]
            .get(trailer_at - header_len as usize..)
            .expect("the caller read the whole header");
        let blobs_end = size - TRAILER_LEN - header_len;
        let mut entries = Vec::with_capacity((header_len / ENTRY_LEN) as usize);
        let mut offset = 0u64;
        for (i, raw) in header.chunks_exact(ENTRY_LEN as usize).enumerate() {
            let kind = BlobKind::from_byte(raw[0]).ok_or_else(|| {
                damaged(format!(
                    "blob #{i} in its header has unknown kind {}",
                    raw[0]
                ))
            })?;
            let entry = HeaderEntry {
                kind,
                raw_length: u32::from_le_bytes(raw[1..5].try_into().expect("4")),
                length: u32::from_le_bytes(raw[5..9].try_into().expect("4")),
                id: ContentId(raw[9..41].try_into().expect("32")),
                offset,
            };
            // Every zstd frame takes bytes: offsets tell blobs apart.
            if entry.length == 0 {
                return Err(damaged(format!("blob #{i} in its header takes 0 bytes")));
            }
            // At most MAX_BLOBS times u32::MAX: no overflow in a u64.
            offset += u64::from(entry.length);
            entries.push(entry);
        }
        if offset != blobs_end {
            return Err(damaged(format!(
                "the blobs its header lists take up {offset} bytes, but its header starts at \
                 byte {blobs_end}"
            )));
        }
        Ok(PackHeader {
            pack,
            size,
            entries,
        })
    }

    /// Where the blobs end and the header starts.
    pub fn blobs_end(&self) -> u64 {
        self.entries
            .last()
            .map_or(0, |e| e.offset + u64::from(e.length))
    }

    /// The header's entry for `r`, if `r` lies inside the pack's blobs and
    /// names the blob that starts there, with its lengths and id.
    pub fn find(&self, r: &BlobRef) -> Result<&HeaderEntry, DamagedPack> {
        let damaged = |what: String| DamagedPack::damaged(self.pack, what);
        if r.pack != self.pack {
            return Err(damaged(format!(
                "a reference to pack {} was looked up in it",
                r.pack
            )));
        }
        let end = r.offset.checked_add(u64::from(r.length));
        if end.is_none_or(|end| end > self.blobs_end()) {
            return Err(damaged(format!(
                "a reference to blob {} at bytes {}+{} lies outside its {} bytes of blobs",
                r.id,
                r.offset,
                r.length,
                self.blobs_end()
            )));
        }
        let found = self
            .entries
            .binary_search_by_key(&r.offset, |e| e.offset)
            .ok()
            .map(|i| &self.entries[i]);
        let Some(entry) = found else {
            return Err(damaged(format!(
                "its header lists no blob at offset {}, where a reference to blob {} points",
                r.offset, r.id
            )));
        };
        if (entry.length, entry.raw_length, entry.id) != (r.length, r.raw_length, r.id) {
            return Err(damaged(format!(
                "its header lists blob {} ({} bytes, {} raw) at offset {}, where a reference \
                 expects blob {} ({} bytes, {} raw)",
                entry.id,
                entry.length,
                entry.raw_length,
                entry.offset,
                r.id,
                r.length,
                r.raw_length
            )));
        }
        Ok(entry)
    }

    /// A reference to every blob the header lists.
    pub fn refs(&self) -> impl Iterator<Item = BlobRef> + '_ {
        self.entries.iter().map(|e| BlobRef {
            pack: self.pack,
            offset: e.offset,
            length: e.length,
            raw_length: e.raw_length,
            id: e.id,
        })
    }
}

/// A pack that is missing, or not what its name and the references to it
/// say. Always damage in the repository, never a failure of this machine
/// or of the connection; callers look for it with [`DamagedPack::find`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedPack {
    pub pack: ContentId,
    /// Where the pack was looked for, once known (a [`PackReader`] says).
    pub dir: Option<DataDir>,
    /// "is damaged: ..." or "is missing".
    pub what: String,
    /// The pack does not exist at all.
    pub missing: bool,
}

impl DamagedPack {
    pub fn damaged(pack: ContentId, reason: impl fmt::Display) -> DamagedPack {
        DamagedPack {
            pack,
            dir: None,
            what: format!("is damaged: {reason}"),
            missing: false,
        }
    }

    pub fn missing(pack: ContentId) -> DamagedPack {
        DamagedPack {
            pack,
            dir: None,
            what: "is missing from the repository".into(),
            missing: true,
        }
    }

    /// The same damage, of the pack in `dir` (unless a directory is known).
    pub fn in_dir(mut self, dir: &DataDir) -> DamagedPack {
        self.dir.get_or_insert_with(|| dir.clone());
        self
    }

    /// The damaged pack behind `err`, if any layer of it is one, also when
    /// a reader carried it through an `io::Error`.
    pub fn find(err: &anyhow::Error) -> Option<&DamagedPack> {
        err.chain().find_map(|cause| {
            cause.downcast_ref::<DamagedPack>().or_else(|| {
                cause
                    .downcast_ref::<std::io::Error>()
                    .and_then(std::io::Error::get_ref)
                    .and_then(|inner| inner.downcast_ref::<DamagedPack>())
            })
        })
    }
}

impl fmt::Display for DamagedPack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.dir {
            Some(dir) => write!(f, "pack {} {}", dir.pack_key(&self.pack), self.what),
            None => write!(f, "pack {} {}", self.pack, self.what),
        }
    }
}

impl std::error::Error for DamagedPack {}

/// `Read::read` of a reader that is a `BufRead`: what `fill_buf` offers,
/// as much as fits, then consumed. (The pack readers hand out their
/// buffers through `BufRead`; `Read` is the same view.)
pub(crate) fn read_buffered(
    r: &mut impl std::io::BufRead,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    let available = r.fill_buf()?;
    let n = available.len().min(buf.len());
    buf[..n].copy_from_slice(&available[..n]);
    r.consume(n);
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ContentId {
        ContentId([n; 32])
    }

    fn entries(lengths: &[u32]) -> Vec<HeaderEntry> {
        let mut offset = 0;
        lengths
            .iter()
            .enumerate()
            .map(|(i, &length)| {
                let e = HeaderEntry {
                    kind: BlobKind::Chunks,
                    raw_length: length * 2,
                    length,
                    id: id(i as u8),
                    offset,
                };
                offset += u64::from(length);
                e
            })
            .collect()
    }

    /// A pack with blobs of `lengths` (filled with 0xee) and their header.
    fn pack_bytes(lengths: &[u32]) -> Vec<u8> {
        let list = entries(lengths);
        let mut out = vec![0xee; lengths.iter().sum::<u32>() as usize];
        out.extend_from_slice(&trailer(&list));
        out
    }

    fn parse(bytes: &[u8]) -> Result<PackHeader, DamagedPack> {
        PackHeader::parse(id(0xaa), bytes.len() as u64, bytes)
    }

    #[test]
    fn a_header_round_trips() {
        let bytes = pack_bytes(&[10, 9, 300]);
        assert_eq!(bytes.len(), 319 + 3 * 41 + 12);
        assert_eq!(&bytes[bytes.len() - 8..], b"PSNPACK2");
        let header = parse(&bytes).unwrap();
        assert_eq!(header.entries, entries(&[10, 9, 300]));
        assert_eq!(header.blobs_end(), 319);
        let refs: Vec<BlobRef> = header.refs().collect();
        assert_eq!(refs[2].offset, 19);
        for r in &refs {
            assert_eq!(header.find(r).unwrap().id, r.id);
        }
        // A pack of no blobs is a trailer alone.
        assert!(parse(&pack_bytes(&[])).unwrap().entries.is_empty());
    }

    fn refused(bytes: &[u8]) -> String {
        parse(bytes).unwrap_err().to_string()
    }

    #[test]
    fn a_truncated_pack_is_refused() {
        let bytes = pack_bytes(&[100, 200]);
        let msg = refused(&bytes[..bytes.len() - 1]);
        assert!(msg.contains("does not end with \"PSNPACK2\""), "{msg}");
        assert!(msg.starts_with(&format!("pack {} is damaged", id(0xaa))));
        assert!(refused(&bytes[..5]).contains("too short to be a pack"));
        // Cut at the front: the trailer is intact, the sums are not.
        let msg = refused(&bytes[50..]);
        assert!(
            msg.contains("take up 300 bytes, but its header starts at byte 250"),
            "{msg}"
        );
    }

    fn with_header_len(mut bytes: Vec<u8>, len: u32) -> Vec<u8> {
        let at = bytes.len() - 12;
        bytes[at..at + 4].copy_from_slice(&len.to_le_bytes());
        bytes
    }

    #[test]
    fn a_header_that_lies_is_refused() {
        let bytes = pack_bytes(&[100, 200]);
        let msg = refused(&with_header_len(bytes.clone(), u32::MAX));
        assert!(
            msg.contains("claims 4294967295 bytes, more than its"),
            "{msg}"
        );
        let msg = refused(&with_header_len(bytes.clone(), 81));
        assert!(
            msg.contains("not a whole number of 41-byte entries"),
            "{msg}"
        );
        // One entry's length changed: the sum no longer meets the header.
        let mut lying = bytes.clone();
        let first_length = 300 + 5;
        lying[first_length] = 99;
        let msg = refused(&lying);
        assert!(
            msg.contains("take up 299 bytes, but its header starts at byte 300"),
            "{msg}"
        );
        // An unknown kind.
        let mut odd = bytes.clone();
        odd[300 + 41] = 9;
        assert!(refused(&odd).contains("blob #1 in its header has unknown kind 9"));
        // An empty blob, which would share its offset with the next one.
        let msg = refused(&pack_bytes(&[100, 0, 200]));
        assert!(msg.contains("blob #1 in its header takes 0 bytes"), "{msg}");
    }

    #[test]
    fn a_header_listing_too_many_blobs_is_refused_unread() {
        let too_many = (MAX_BLOBS as u64 + 1) * ENTRY_LEN;
        let mut trailer = (too_many as u32).to_le_bytes().to_vec();
        trailer.extend_from_slice(MAGIC);
        let err = PackHeader::header_len(id(1), 1 << 30, &trailer).unwrap_err();
        assert!(
            err.to_string().contains("16385 blobs, more than the 16384"),
            "{err}"
        );
    }

    #[test]
    fn a_reference_outside_the_pack_or_not_in_its_header_is_refused() {
        let header = parse(&pack_bytes(&[100, 200])).unwrap();
        let good = header.refs().nth(1).unwrap();
        let check = |r: BlobRef| header.find(&r).unwrap_err().to_string();
        let msg = check(BlobRef {
            offset: 250,
            ..good
        });
        assert!(
            msg.contains("bytes 250+200 lies outside its 300 bytes of blobs"),
            "{msg}"
        );
        let msg = check(BlobRef {
            offset: u64::MAX - 10,
            ..good
        });
        assert!(msg.contains("lies outside"), "{msg}");
        let msg = check(BlobRef {
            offset: 50,
            length: 10,
            ..good
        });
        assert!(msg.contains("lists no blob at offset 50"), "{msg}");
        for lie in [
            BlobRef { id: id(7), ..good },
            BlobRef {
                raw_length: 1,
                ..good
            },
            BlobRef {
                length: 199,
                ..good
            },
        ] {
            let msg = check(lie);
            assert!(msg.contains("where a reference expects blob"), "{msg}");
        }
        let other = BlobRef {
            pack: id(3),
            ..good
        };
        assert!(check(other).contains("was looked up in it"));
    }

    #[test]
    fn blob_refs_have_the_json_names_of_the_format() {
        let r = BlobRef {
            pack: id(1),
            offset: 5,
            length: 6,
            raw_length: 7,
            id: id(2),
        };
        let json = serde_json::to_value(r).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "pack": id(1).to_hex(), "offset": 5, "length": 6, "raw_length": 7,
                "id": id(2).to_hex()
            })
        );
        assert_eq!(serde_json::from_value::<BlobRef>(json).unwrap(), r);
        let too_long = serde_json::json!({
            "pack": id(1).to_hex(), "offset": 5, "length": 1u64 << 32, "raw_length": 7,
            "id": id(2).to_hex()
        });
        assert!(serde_json::from_value::<BlobRef>(too_long).is_err());
    }

    #[test]
    fn damage_is_found_through_context_and_io_errors() {
        let d = DamagedPack::missing(id(5));
        let err = anyhow::Error::new(d.clone()).context("could not restore block 01X");
        assert_eq!(DamagedPack::find(&err), Some(&d));
        let through_io: anyhow::Error =
            std::io::Error::new(std::io::ErrorKind::InvalidData, d.clone()).into();
        assert_eq!(DamagedPack::find(&through_io.context("reading")), Some(&d));
        assert!(DamagedPack::find(&anyhow::anyhow!("pack x is missing")).is_none());
        assert_eq!(
            d.to_string(),
            format!("pack {} is missing from the repository", id(5))
        );
        let dir = DataDir::of_group("prom-a");
        assert_eq!(
            d.in_dir(&dir).to_string(),
            format!(
                "pack {} is missing from the repository",
                dir.pack_key(&id(5))
            )
        );
    }
}
