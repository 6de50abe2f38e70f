//! Chunk segment files (`chunks/000001`, ...): their names, header and
//! record framing, shared by the checker ([`super::check`]) and the window
//! engine ([`super::windows`]).
//!
//! A segment is an 8-byte header (magic `0x85BD40DD` big-endian, format
//! version 1, three zero bytes) followed by records `uvarint len | encoding
//! (1 byte) | data (len bytes) | CRC32C of encoding and data (4 bytes,
//! big-endian)`. A chunk reference in the index is `segment << 32 | offset`,
//! where `segment` counts the block's segment files from 0 in name order:
//! segment 0 is `chunks/000001` (`tsdb/chunks/chunks.go`: the writer names
//! files by sequence and numbers references by position).

pub(crate) const SEGMENT_MAGIC: u32 = 0x85BD_40DD;
pub(crate) const SEGMENT_VERSION: u8 = 1;
pub(crate) const SEGMENT_HEADER_LEN: u64 = 8;
/// The writer encodes a record's length in at most 5 bytes
/// (`binary.MaxVarintLen32`).
pub(crate) const MAX_LEN_FIELD: u64 = 5;
/// The encoding byte and the CRC32C around a record's data.
pub(crate) const RECORD_OVERHEAD: u64 = 1 + 4;

/// The block-relative path of segment `index` (0 is `chunks/000001`).
pub(crate) fn segment_path(index: u64) -> String {
    format!("chunks/{:06}", index + 1)
}

/// Checks a segment header's magic and version (its padding is not read by
/// Prometheus and is kept as it is). `Err` says what is wrong.
pub(crate) fn check_header(header: &[u8; SEGMENT_HEADER_LEN as usize]) -> Result<(), String> {
    let magic = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    if magic != SEGMENT_MAGIC {
        return Err(format!(
            "segment magic is {magic:#010x}, expected {SEGMENT_MAGIC:#010x}"
        ));
    }
    if header[4] != SEGMENT_VERSION {
        return Err(format!(
            "segment format version is {}, expected {SEGMENT_VERSION}",
            header[4]
        ));
    }
    Ok(())
}

/// The chunk reference of `offset` in segment `segment`.
#[cfg(test)]
pub(crate) fn chunk_ref(segment: u64, offset: u64) -> u64 {
    segment << 32 | offset
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_zero_is_the_first_file() {
        assert_eq!(segment_path(0), "chunks/000001");
        assert_eq!(segment_path(41), "chunks/000042");
        assert_eq!(segment_path(999_999), "chunks/1000000");
        assert_eq!(chunk_ref(2, 8), 0x2_0000_0008);
    }

    #[test]
    fn headers_need_the_magic_and_version_1() {
        let good = [0x85, 0xbd, 0x40, 0xdd, 1, 0, 0, 0];
        check_header(&good).unwrap();
        let mut padded = good;
        padded[7] = 9;
        check_header(&padded).unwrap();
        let mut v2 = good;
        v2[4] = 2;
        assert!(check_header(&v2).unwrap_err().contains("version is 2"));
        let mut magic = good;
        magic[0] = 0;
        assert!(check_header(&magic).unwrap_err().contains("magic"));
    }
}
