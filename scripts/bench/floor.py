#!/usr/bin/env python3
"""The floor of an incremental backup: what one more day + compaction really adds.

A record-level hash scan over two snapshots of the same TSDB (issue 16):
every chunk record of every block of the earlier snapshot is hashed; then,
in the later snapshot's *new* blocks (ULIDs the earlier one does not have),
the records whose hash is not known yet (also not from another new block)
are the genuinely new chunk data. The floor is those records plus the new
blocks' index files, compressed as one stream by `zstd -1 --zstd=minMatch=4`
(promsnap's default: level 1 with 4-byte matches): what an ideal backup
that stores each chunk record once would have to upload.

Chunk segment files (prometheus tsdb/docs/format/chunks.md): an 8-byte
header (magic 0x85BD40DD, version 1, 3 padding bytes), then records
`uvarint len | encoding (1 byte) | data (len bytes) | CRC32C (4 bytes)`.
A record is hashed whole (length, encoding, data, CRC) with BLAKE2b-128.
A truncated record ends its file (counted as `truncated_bytes`, not new).

Usage: floor.py EARLIER_SNAPSHOT_DIR LATER_SNAPSHOT_DIR [--level N]
Prints one JSON object; scripts/bench/run.py imports `compute`.
"""

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time

ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
SEGMENT = re.compile(r"^[0-9]{6}$")
HEADER = 8
MAGIC = b"\x85\xbd\x40\xdd"


def blocks(snapshot):
    return sorted(e for e in os.listdir(snapshot) if ULID.match(e) and os.path.isdir(os.path.join(snapshot, e)))


def segments(block_dir):
    d = os.path.join(block_dir, "chunks")
    if not os.path.isdir(d):
        return []
    return [os.path.join(d, f) for f in sorted(os.listdir(d)) if SEGMENT.match(f)]


def records(path):
    """Yields each whole record (bytes) of a segment file; if the file ends
    in a truncated record, the last value yielded is an int: the bytes left
    over. (A segment is at most 512 MiB; it is read whole.)"""
    with open(path, "rb") as f:
        m = f.read()
    size = len(m)
    if size <= HEADER:
        return
    if m[:4] != MAGIC:
        raise ValueError(f"{path}: not a chunk segment file (magic {m[:4].hex()})")
    pos = HEADER
    while pos < size:
        n, shift, p = 0, 0, pos  # the uvarint length
        while True:
            if p >= size or shift > 63:
                yield size - pos
                return
            b = m[p]
            p += 1
            n |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
        end = p + 1 + n + 4
        if end > size:
            yield size - pos
            return
        yield m[pos:end]
        pos = end


def digest(rec):
    return hashlib.blake2b(rec, digest_size=16).digest()


def compute(earlier, later, level=1):
    """The floor as a dict (bytes, counts, seconds); see the module docs."""
    t0 = time.monotonic()
    seen = set()
    old_blocks = blocks(earlier)
    old_records = 0
    for b in old_blocks:
        for seg in segments(os.path.join(earlier, b)):
            for rec in records(seg):
                if isinstance(rec, int):
                    break
                seen.add(digest(rec))
                old_records += 1
    new_blocks = [b for b in blocks(later) if b not in set(old_blocks)]

    zstd = subprocess.Popen(["zstd", f"-{level}", "--zstd=minMatch=4", "-q", "-c"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    compressed = [0]

    def count():
        while True:
            chunk = zstd.stdout.read(1 << 20)
            if not chunk:
                return
            compressed[0] += len(chunk)

    counter = threading.Thread(target=count)
    counter.start()
    out = {"new_blocks": len(new_blocks), "new_chunk_file_bytes": 0, "new_records": 0,
           "new_unique_records": 0, "new_unique_record_bytes": 0, "truncated_bytes": 0,
           "new_index_bytes": 0}
    try:
        for b in new_blocks:
            for seg in segments(os.path.join(later, b)):
                out["new_chunk_file_bytes"] += os.path.getsize(seg)
                for rec in records(seg):
                    if isinstance(rec, int):
                        out["truncated_bytes"] += rec
                        break
                    out["new_records"] += 1
                    h = digest(rec)
                    if h in seen:
                        continue
                    seen.add(h)
                    out["new_unique_records"] += 1
                    out["new_unique_record_bytes"] += len(rec)
                    zstd.stdin.write(rec)
            index = os.path.join(later, b, "index")
            with open(index, "rb") as f:
                while chunk := f.read(1 << 20):
                    out["new_index_bytes"] += len(chunk)
                    zstd.stdin.write(chunk)
        zstd.stdin.close()
    finally:
        if zstd.wait() != 0:
            raise RuntimeError(f"zstd exited {zstd.returncode}")
        counter.join()
    out.update({
        "earlier_blocks": len(old_blocks), "earlier_records": old_records,
        "raw_bytes": out["new_unique_record_bytes"] + out["new_index_bytes"],
        "floor_bytes": compressed[0], "zstd_level": level,
        "seconds": round(time.monotonic() - t0, 1),
    })
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("earlier")
    ap.add_argument("later")
    ap.add_argument("--level", type=int, default=1, help="zstd level (with 4-byte matches) [default: 1]")
    args = ap.parse_args()
    json.dump(compute(args.earlier, args.later, args.level), sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
