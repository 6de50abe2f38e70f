//! Chunk segment files (`chunks/000001`, ...): their header and record
//! framing, for the checker ([`super::check`]) and whoever else reads them.
//!
//! A segment is an 8-byte header (magic `0x85BD40DD` big-endian, format
//! version 1, three zero bytes) followed by records `uvarint len | encoding
//! (1 byte) | data (len bytes) | CRC32C of encoding and data (4 bytes,
//! big-endian)`. A chunk reference in the index is `segment << 32 | offset`,
//! where `segment` counts the block's segment files from 0 in name order:
//! segment 0 is `chunks/000001` (`tsdb/chunks/chunks.go`: the writer names
//! files by sequence and numbers references by position).

pub(crate) const SEGMENT_MAGIC: u32 = 0x85BD_40DD;
pub(crate) const SEGMENT_HEADER_LEN: u64 = 8;
/// The writer encodes a record's length in at most 5 bytes
/// (`binary.MaxVarintLen32`).
pub(crate) const MAX_LEN_FIELD: u64 = 5;
