//! Hashing packs from the pieces of them that were read, in any order: how
//! `verify --deep` checks every pack's name without reading it again.
//!
//! Deep verify rebuilds every block from ranged reads of its packs (the
//! read-ahead's runs), and checks every stored byte against its pack's
//! name, as the read level does. Both from one read: a pack's name is the
//! BLAKE3 of its bytes, and BLAKE3 is a tree. Its input is cut into 1 KiB
//! chunks; a subtree of 2^k chunks that starts at a multiple of 2^k chunks
//! has a *chaining value* that depends on its bytes and its position only
//! (`blake3::hazmat`), and two sibling subtrees merge into their parent's.
//! So [`PackHashes::seen`] hashes the whole chunks of every piece read
//! where they lie (as the few aligned subtrees that tile them, each hashed
//! on SIMD lanes like any long input), merges siblings as they meet, and
//! keeps the bytes of a chunk a piece covers only in part until the rest
//! of it arrives (at most [`PARTIAL_LIMIT`] of them in all; beyond it
//! such a chunk is left uncovered). Once every chunk of a pack is covered,
//! the subtrees left fold into the root along the tree's right edge: the
//! pack's name, or not. A piece read twice, or pieces that overlap, are
//! hashed where they first cover chunks and ignored after.
//!
//! What no rebuild read (blobs no verified block references, the gaps
//! runs skip, a pack's header beyond the tail read first) is then read on
//! its own ([`PackHashes::missing`]): every byte of a pack is read once,
//! most of them by the rebuild. Only BLAKE3 repositories: a `sha256`
//! repository's packs are hashed whole, as the read level does.
//!
//! Memory: per pack being tracked, the subtrees not merged yet (a few
//! dozen of 40 bytes for a pack read in a few runs, then one result), and
//! the partial chunks (at most [`PARTIAL_LIMIT`] in the whole process).

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};

use blake3::hazmat::{
    merge_subtrees_non_root, merge_subtrees_root, ChainingValue, HasherExt, Mode,
};

use crate::progress::Progress;
use crate::repo::content_id::ContentId;
use crate::repo::datadir::PackId;

/// BLAKE3's chunk: the leaves of its tree.
const CHUNK: u64 = blake3::CHUNK_LEN as u64;

/// The bytes of chunks read only in part that are kept for the rest, in
/// all: 4 MiB. Runs of blobs end mid-chunk, so a pack read in runs keeps
/// one such chunk per run boundary (1 KiB) until its neighbour is read.
pub const PARTIAL_LIMIT: usize = 4 << 20;

/// Packs hashed from the pieces read of them; see the module documentation.
pub struct PackHashes {
    state: Mutex<State>,
    /// Advanced by every byte that a piece covers for the first time.
    progress: Option<Arc<dyn Progress>>,
    /// The bytes of partial chunks kept, in all ([`PARTIAL_LIMIT`]).
    limit: usize,
}

struct State {
    packs: HashMap<PackId, Pack>,
    /// Bytes held in partial chunks, of all packs.
    partial_bytes: usize,
}

/// A pack being hashed.
struct Pack {
    size: u64,
    /// Its chunks (the last may be short).
    chunks: u64,
    /// Subtrees hashed, by first chunk: (log2 of its chunks, chaining value).
    nodes: BTreeMap<u64, (u32, ChainingValue)>,
    /// Chunks covered by `nodes`.
    covered: u64,
    /// Chunks read in part: their bytes so far, and which (sorted, disjoint).
    partial: BTreeMap<u64, (Vec<u8>, Vec<Range<usize>>)>,
    /// The bytes `partial` holds.
    partial_bytes: usize,
    /// Once every chunk is covered: the hash of the whole pack.
    done: Option<ContentId>,
}

/// A subtree of a pack to hash: its first chunk and log2 of its chunks.
type Piece = (u64, u32);

impl Pack {
    fn new(size: u64) -> Pack {
        Pack {
            size,
            chunks: size.div_ceil(CHUNK).max(1),
            nodes: BTreeMap::new(),
            covered: 0,
            partial: BTreeMap::new(),
            partial_bytes: 0,
            done: None,
        }
    }

    /// Bytes of chunks `range`.
    fn bytes_of(&self, range: Range<u64>) -> Range<u64> {
        range.start * CHUNK..(range.end * CHUNK).min(self.size)
    }

    fn len_of(&self, range: Range<u64>) -> u64 {
        let bytes = self.bytes_of(range);
        bytes.end - bytes.start
    }

    /// The chunks of `range` that no subtree covers, as ranges.
    fn gaps(&self, range: Range<u64>) -> Vec<Range<u64>> {
        let mut gaps = Vec::new();
        let mut at = range.start;
        // The subtree that may cover `range.start`, then those inside.
        let before = self.nodes.range(..range.start).next_back();
        for (&first, &(k, _)) in before.into_iter().chain(self.nodes.range(range.clone())) {
            let end = first + (1u64 << k);
            if first > at {
                gaps.push(at..first.min(range.end));
            }
            at = at.max(end);
            if at >= range.end {
                break;
            }
        }
        if at < range.end {
            gaps.push(at..range.end);
        }
        gaps
    }

    /// The aligned subtrees that tile chunks `range`: at each chunk the
    /// largest that starts there and fits, never the whole pack (its root
    /// is finished differently). For a pack of two chunks or more.
    fn pieces(&self, range: Range<u64>) -> Vec<Piece> {
        let mut out = Vec::new();
        let mut c = range.start;
        while c < range.end {
            let mut k = c.trailing_zeros().min((range.end - c).ilog2());
            if c == 0 && 1u64 << k >= self.chunks {
                k -= 1;
            }
            out.push((c, k));
            c += 1 << k;
        }
        out
    }

    /// Adds a hashed subtree, merging it with its sibling (and so on up)
    /// unless the parent would be the root. Returns the bytes it covers
    /// that nothing covered before: none if a subtree covers it already
    /// (the same bytes read twice); subtrees it covers give way to it
    /// (aligned subtrees nest or are apart).
    fn insert(&mut self, (mut c, mut k): Piece, mut cv: ChainingValue) -> u64 {
        let span = c..c + (1u64 << k);
        if self.done.is_some() {
            return 0;
        }
        if let Some((&first, &(kb, _))) = self.nodes.range(..=c).next_back() {
            if first + (1u64 << kb) >= span.end {
                return 0;
            }
        }
        let inside: Vec<(u64, u32)> = (self.nodes.range(span.clone()))
            .map(|(&first, &(k, _))| (first, k))
            .collect();
        let mut new = self.len_of(span.clone());
        for (first, k) in inside {
            self.nodes.remove(&first);
            let chunks = first..first + (1u64 << k);
            self.covered -= chunks.end - chunks.start;
            new -= self.len_of(chunks);
        }
        let held: Vec<u64> = self.partial.range(span.clone()).map(|(&c, _)| c).collect();
        for chunk in held {
            let (buf, _) = self.partial.remove(&chunk).expect("listed");
            self.partial_bytes -= buf.len();
        }
        self.covered += span.end - span.start;
        loop {
            let size = 1u64 << k;
            let left = c % (2 * size) == 0;
            let (sibling, parent) = match left {
                true => (c + size, c),
                false => (c - size, c - size),
            };
            if parent == 0 && 2 * size >= self.chunks {
                break;
            }
            match self.nodes.get(&sibling) {
                Some(&(ks, other)) if ks == k => {
                    self.nodes.remove(&sibling);
                    cv = match left {
                        true => merge_subtrees_non_root(&cv, &other, Mode::Hash),
                        false => merge_subtrees_non_root(&other, &cv, Mode::Hash),
                    };
                    (c, k) = (parent, k + 1);
                }
                _ => break,
            }
        }
        self.nodes.insert(c, (k, cv));
        if self.covered == self.chunks {
            self.finish();
        }
        new
    }

    /// The root, from the subtrees left: along the right edge, each merged
    /// with everything right of it.
    fn finish(&mut self) {
        let mut nodes = std::mem::take(&mut self.nodes).into_values().rev();
        let (_, mut acc) = nodes.next().expect("a pack of two chunks or more");
        let mut rest = nodes.peekable();
        while let Some((_, cv)) = rest.next() {
            if rest.peek().is_none() {
                let root = merge_subtrees_root(&cv, &acc, Mode::Hash);
                self.done = Some(ContentId(*root.as_bytes()));
                return;
            }
            acc = merge_subtrees_non_root(&cv, &acc, Mode::Hash);
        }
        unreachable!("the whole pack is never one subtree");
    }

    /// Adds bytes `from..` of chunk `c` to what is kept of it, if `room`
    /// allows; hashes the chunk once it is whole. Returns the bytes newly
    /// covered (the chunk's, once whole).
    fn add_partial(&mut self, c: u64, from: u64, data: &[u8], room: usize) -> u64 {
        let chunk = self.bytes_of(c..c + 1);
        let len = (chunk.end - chunk.start) as usize;
        if !self.partial.contains_key(&c) {
            if len > room {
                return 0; // read again at the end, with the pack's other gaps
            }
            self.partial_bytes += len;
            self.partial.insert(c, (vec![0; len], Vec::new()));
        }
        let (buf, have) = self.partial.get_mut(&c).expect("just inserted");
        let at = (from - chunk.start) as usize;
        buf[at..at + data.len()].copy_from_slice(data);
        have.push(at..at + data.len());
        have.sort_by_key(|r| r.start);
        let mut merged: Vec<Range<usize>> = Vec::new();
        for r in have.drain(..) {
            match merged.last_mut() {
                Some(m) if r.start <= m.end => m.end = m.end.max(r.end),
                _ => merged.push(r),
            }
        }
        let whole = matches!(merged.as_slice(), [r] if *r == (0..len));
        *have = merged;
        if !whole {
            return 0;
        }
        let (buf, _) = self.partial.remove(&c).expect("kept above");
        self.partial_bytes -= len;
        if self.chunks == 1 {
            return self.whole(&buf);
        }
        let cv = blake3::Hasher::new()
            .set_input_offset(chunk.start)
            .update(&buf)
            .finalize_non_root();
        self.insert((c, 0), cv)
    }

    /// A pack of one chunk, whole: its hash is that chunk's, as the root.
    fn whole(&mut self, data: &[u8]) -> u64 {
        self.done = Some(ContentId(*blake3::hash(data).as_bytes()));
        self.covered = 1;
        self.size
    }
}

impl std::fmt::Debug for PackHashes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.lock();
        f.debug_struct("PackHashes")
            .field("packs", &st.packs.len())
            .field("partial_bytes", &st.partial_bytes)
            .finish()
    }
}

impl PackHashes {
    /// Tracks the packs `sizes` names, each of the size given (from its
    /// header: the bytes a piece of it may cover). Pieces of other packs
    /// are ignored.
    pub fn new(
        sizes: impl IntoIterator<Item = (PackId, u64)>,
        progress: Option<Arc<dyn Progress>>,
    ) -> PackHashes {
        let packs = sizes
            .into_iter()
            .map(|(pack, size)| (pack, Pack::new(size)))
            .collect();
        PackHashes {
            state: Mutex::new(State {
                packs,
                partial_bytes: 0,
            }),
            progress,
            limit: PARTIAL_LIMIT,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes `offset..` of `pack`, as read (by anyone: a run, a blob, the
    /// header's tail, a missing range).
    pub fn seen(&self, pack: &PackId, offset: u64, bytes: &[u8]) {
        let (pieces, size, mut advanced) = {
            let mut st = self.lock();
            let room = self.limit.saturating_sub(st.partial_bytes);
            let Some(p) = st.packs.get_mut(pack) else {
                return;
            };
            if p.done.is_some() || offset >= p.size {
                return;
            }
            let held = p.partial_bytes;
            let (pieces, advanced) = p.plan(offset, bytes, room);
            let (size, now) = (p.size, p.partial_bytes);
            st.partial_bytes = st.partial_bytes + now - held;
            (pieces, size, advanced)
        };
        // The whole chunks, hashed outside the lock.
        let hashed: Vec<(Piece, ChainingValue)> = pieces
            .into_iter()
            .map(|(c, k)| {
                let from = c * CHUNK;
                let to = ((c + (1 << k)) * CHUNK).min(size);
                let data = &bytes[(from - offset) as usize..(to - offset) as usize];
                let cv = blake3::Hasher::new()
                    .set_input_offset(from)
                    .update(data)
                    .finalize_non_root();
                ((c, k), cv)
            })
            .collect();
        if !hashed.is_empty() {
            let mut st = self.lock();
            if let Some(p) = st.packs.get_mut(pack) {
                let held = p.partial_bytes;
                for (piece, cv) in hashed {
                    advanced += p.insert(piece, cv);
                }
                let now = p.partial_bytes;
                st.partial_bytes = st.partial_bytes + now - held;
            }
        }
        if let (Some(progress), true) = (&self.progress, advanced > 0) {
            progress.advance(advanced);
        }
    }

    /// The byte ranges of `pack` no piece has covered yet (empty once its
    /// hash is known); `None` for a pack not tracked.
    pub fn missing(&self, pack: &PackId) -> Option<Vec<Range<u64>>> {
        let st = self.lock();
        let p = st.packs.get(pack)?;
        if p.done.is_some() {
            return Some(Vec::new());
        }
        Some(
            p.gaps(0..p.chunks)
                .into_iter()
                .map(|gap| p.bytes_of(gap))
                .collect(),
        )
    }

    /// The hash of the whole of `pack`, once every byte of it was seen;
    /// the pack is no longer tracked after.
    pub fn take(&self, pack: &PackId) -> Option<ContentId> {
        let mut st = self.lock();
        let done = st.packs.get(pack)?.done?;
        if let Some(p) = st.packs.remove(pack) {
            st.partial_bytes -= p.partial_bytes;
        }
        Some(done)
    }
}

impl Pack {
    /// For a piece of bytes `offset..` (`offset` inside the pack): adds
    /// the chunks it covers in part (`room` bytes may be kept) and returns
    /// the subtrees that tile the whole chunks it covers and nothing does
    /// yet, to hash; and the bytes newly covered so far.
    fn plan(&mut self, offset: u64, bytes: &[u8], room: usize) -> (Vec<Piece>, u64) {
        let end = offset.saturating_add(bytes.len() as u64).min(self.size);
        let bytes = &bytes[..(end - offset) as usize];
        if self.chunks == 1 {
            let advanced = match (offset, end) == (0, self.size) {
                true => self.whole(bytes),
                false => self.add_partial(0, offset, bytes, room),
            };
            return (Vec::new(), advanced);
        }
        // Whole chunks: from the first that starts in the piece to the
        // last that ends in it (the pack's short last chunk included).
        let first = offset.div_ceil(CHUNK);
        let last = match end == self.size {
            true => self.chunks,
            false => end / CHUNK,
        };
        let mut advanced = 0;
        let held = self.partial_bytes;
        // The chunks at either end that it covers in part.
        let (head, tail) = (offset / CHUNK, end.saturating_sub(1) / CHUNK);
        for c in [Some(head), (tail != head).then_some(tail)]
            .into_iter()
            .flatten()
        {
            if (first..last).contains(&c) || self.gaps(c..c + 1).is_empty() {
                continue;
            }
            let chunk = self.bytes_of(c..c + 1);
            let (from, to) = (offset.max(chunk.start), end.min(chunk.end));
            if from < to {
                let data = &bytes[(from - offset) as usize..(to - offset) as usize];
                let room = room.saturating_sub(self.partial_bytes.saturating_sub(held));
                advanced += self.add_partial(c, from, data, room);
            }
        }
        if first >= last || self.done.is_some() {
            return (Vec::new(), advanced);
        }
        let pieces = (self.gaps(first..last).into_iter())
            .flat_map(|gap| self.pieces(gap))
            .collect();
        (pieces, advanced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::datadir::DataDir;
    use rand::rngs::StdRng;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};

    fn id(n: u8) -> PackId {
        (DataDir::Legacy, ContentId([n; 32]))
    }

    /// `data` cut at random points into pieces, each maybe read twice or
    /// overlapping its neighbour, in a random order.
    fn pieces(rng: &mut StdRng, len: usize) -> Vec<Range<usize>> {
        let mut cuts: Vec<usize> = (0..rng.random_range(0..12))
            .map(|_| rng.random_range(0..=len))
            .collect();
        cuts.extend([0, len]);
        cuts.sort_unstable();
        cuts.dedup();
        let mut out: Vec<Range<usize>> = cuts.windows(2).map(|w| w[0]..w[1]).collect();
        for _ in 0..rng.random_range(0..3) {
            let a = rng.random_range(0..=len);
            let b = rng.random_range(a..=len);
            out.push(a..b); // read again, overlapping others
        }
        out.shuffle(rng);
        out
    }

    const SIZES: [usize; 14] = [
        1,
        12,
        1023,
        1024,
        1025,
        2048,
        2049,
        3 * 1024 + 5,
        8 * 1024,
        13 * 1024 - 1,
        64 * 1024 + 7,
        (1 << 20) + 1,
        3 << 20,
        5 * (1 << 20) - 3,
    ];

    #[test]
    fn pieces_in_any_order_give_blake3_of_the_whole_pack() {
        let mut rng = StdRng::seed_from_u64(7);
        for (n, &len) in SIZES.iter().enumerate() {
            for round in 0..6 {
                let mut data = vec![0u8; len];
                rng.fill(&mut data[..]);
                let hashes = PackHashes::new([(id(n as u8), len as u64)], None);
                for r in pieces(&mut rng, len) {
                    hashes.seen(&id(n as u8), r.start as u64, &data[r]);
                }
                assert_eq!(hashes.missing(&id(n as u8)), Some(vec![]), "{len} {round}");
                let got = hashes.take(&id(n as u8)).expect("every byte seen");
                assert_eq!(
                    got.0,
                    *blake3::hash(&data).as_bytes(),
                    "{len} bytes, {round}"
                );
                assert_eq!(hashes.lock().partial_bytes, 0);
            }
        }
    }

    #[test]
    fn what_was_not_seen_is_missing_and_completes_the_hash_once_read() {
        let mut rng = StdRng::seed_from_u64(11);
        for (n, &len) in SIZES.iter().enumerate() {
            let mut data = vec![0u8; len];
            rng.fill(&mut data[..]);
            let pack = id(n as u8);
            let hashes = PackHashes::new([(pack.clone(), len as u64)], None);
            // Some of the pieces: a pack read in part.
            let mut seen = vec![false; len];
            for r in pieces(&mut rng, len)
                .into_iter()
                .filter(|_| rng.random_bool(0.5))
            {
                seen[r.clone()].iter_mut().for_each(|s| *s = true);
                hashes.seen(&pack, r.start as u64, &data[r]);
            }
            let missing = hashes.missing(&pack).unwrap();
            // Every byte not seen is missing; a missing range is whole chunks
            // (or the pack's end) and holds a byte not seen.
            for (i, _) in seen.iter().enumerate().filter(|(_, s)| !**s) {
                assert!(
                    missing.iter().any(|m| m.contains(&(i as u64))),
                    "{len}: {i}"
                );
            }
            for m in &missing {
                assert_eq!(m.start % CHUNK, 0);
                assert!(m.end % CHUNK == 0 || m.end == len as u64);
                assert!(m.clone().any(|i| !seen[i as usize]), "{len}: {m:?}");
            }
            match missing.is_empty() {
                true => assert!(seen.iter().all(|s| *s)),
                false => assert_eq!(hashes.take(&pack), None),
            }
            for m in missing {
                let r = m.start as usize..m.end as usize;
                hashes.seen(&pack, m.start, &data[r]);
            }
            let got = hashes.take(&pack).expect("complete");
            assert_eq!(got.0, *blake3::hash(&data).as_bytes(), "{len} bytes");
        }
    }

    #[test]
    fn a_changed_byte_changes_the_hash() {
        let mut rng = StdRng::seed_from_u64(3);
        let len = 100_000;
        let data: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        let hashes = PackHashes::new([(id(1), len as u64)], None);
        let mut damaged = data.clone();
        damaged[54_321] ^= 1;
        hashes.seen(&id(1), 0, &data[..50_000]);
        hashes.seen(&id(1), 50_000, &damaged[50_000..]);
        let got = hashes.take(&id(1)).unwrap();
        assert_ne!(got.0, *blake3::hash(&data).as_bytes());
        assert_eq!(got.0, *blake3::hash(&damaged).as_bytes());
    }

    #[test]
    fn partial_chunks_beyond_the_limit_are_left_to_read_again() {
        let len = 10 * 1024;
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let mut hashes = PackHashes::new([(id(1), len as u64)], None);
        hashes.limit = 1024;
        // Pieces that each end mid-chunk: only the first partial chunk
        // fits in the limit.
        for start in (0..len).step_by(2500) {
            let end = (start + 2500).min(len);
            hashes.seen(&id(1), start as u64, &data[start..end]);
        }
        assert!(hashes.lock().partial_bytes <= 1024);
        let missing = hashes.missing(&id(1)).unwrap();
        assert!(!missing.is_empty());
        for m in missing {
            hashes.seen(&id(1), m.start, &data[m.start as usize..m.end as usize]);
        }
        let got = hashes.take(&id(1)).unwrap();
        assert_eq!(got.0, *blake3::hash(&data).as_bytes());
        assert_eq!(hashes.lock().partial_bytes, 0);
    }

    #[test]
    fn progress_counts_each_byte_once_and_other_packs_are_ignored() {
        #[derive(Default)]
        struct Count(std::sync::atomic::AtomicU64);
        impl Progress for Count {
            fn set_total(&self, _: u64) {}
            fn advance(&self, bytes: u64) {
                self.0
                    .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
            }
            fn note(&self, _: &str) {}
        }
        let count = Arc::new(Count::default());
        let len = 70_000usize;
        let data = vec![9u8; len];
        let hashes = PackHashes::new([(id(1), len as u64)], Some(count.clone()));
        hashes.seen(&id(1), 0, &data[..40_000]);
        hashes.seen(&id(1), 30_000, &data[30_000..]);
        hashes.seen(&id(1), 0, &data);
        hashes.seen(&id(2), 0, &data);
        assert_eq!(
            count.0.load(std::sync::atomic::Ordering::Relaxed),
            len as u64
        );
        assert!(hashes.take(&id(1)).is_some());
        assert_eq!(hashes.missing(&id(2)), None);
    }
}
