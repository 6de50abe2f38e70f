//! Reading many streams of blobs at once, ahead of their reader, on every
//! core: how a restore and `verify --deep` of one format 2 block use the
//! whole machine.
//!
//! Rebuilding a block reads its files' streams (`meta.json`, the index, one
//! window stream per 2 h of the block) and joins the chunk files from them
//! on one thread, which must walk the index in order. Decoding one blob
//! after the other on that thread leaves every other core idle, however
//! large the block. [`ReadAhead`] takes the decoding off it:
//!
//! - **Reads.** Before anything is read, every pack's header is read and
//!   every reference checked against it (as [`PackReader::open_blob`]
//!   does, but once per pack). The blobs are then grouped into *runs*:
//!   adjacent blobs of one pack (gaps of at most [`MAX_GAP`]) up to
//!   [`MAX_RUN`] bytes (from an object store, up to two fifths of the
//!   budget: [`MAX_LONG_RUN`]), each one ranged read. A block's own window
//!   streams were cut in one pass over the index, so their blobs lie in
//!   its packs in about the order the join needs them, and runs are long;
//!   streams reused from other blocks lie in other packs, and a run then
//!   stops where its blobs would be needed later than the budget reaches
//!   (give or take a blob: where a blob is needed is estimated from where
//!   it starts in its stream). From an object store, runs of one pack cut
//!   apart for length meet at a multiple of [`ALIGN`], the blob across
//!   that point read in two parts and put together.
//!   [`FETCHERS`] threads read runs in the order they will be needed.
//! - **Decoding.** Fetched blobs are decoded on one thread per core, each
//!   whole and checked (frame header, one frame and nothing after it,
//!   length, id: [`BlobDecoder`]) before a byte of it is handed on;
//!   a reader that hashes every byte itself (a rebuild: each file's
//!   SHA-256) skips the blob's id ([`ReadAhead::without_id_checks`]),
//!   which would be a second pass as costly as the decoding.
//!   A stream's reader takes its blobs in order; when the one it needs is
//!   not decoded yet it decodes it itself, and when its run has not been
//!   read yet, that run is read next, whatever the budget.
//! - **Order.** Which blob is needed when is estimated from where it lies
//!   in its stream: streams read [one after another](Order::OneAfterAnother)
//!   by their position in the group, streams read [side by
//!   side](Order::SideBySide) (the window streams, which the join advances
//!   together as it walks the index series by series) by the share of
//!   their stream before them. A wrong guess costs time, never
//!   correctness: the reader always gets what it asks for.
//! - **Memory.** Every blob read and not yet taken by its reader holds
//!   its decoded length (reserved when its run is read, so decoding never
//!   adds to it), and every run being read its length: together at most
//!   [`BUDGET`] (40 MiB; from a local directory, whose runs are short,
//!   [`LOCAL_BUDGET`], 32 MiB); a fetcher waits for room before it starts a run.
//!   A reader that waits for a blob whose run has not been read has that
//!   run read out of turn if it fits in the budget, else that blob alone:
//!   so at most one blob over the budget. Each reader also holds the blob
//!   it is reading (one per stream: at most the cutter's target, 1 MiB,
//!   less for blocks of many windows), and each decoding thread one zstd
//!   context (no window buffer: a frame decodes straight into its blob's
//!   buffer).
//!
//! Every failure reaches the reader of the stream it belongs to, as an
//! `io::Error`: damage as a [`DamagedPack`] naming the pack (and the blob),
//! a failure of the connection as what it is.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, BufRead, Read};
use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use anyhow::Result;
use bytes::Bytes;
use futures::StreamExt;
use tokio::runtime::Handle;

use super::{BlobRef, DamagedPack, PackReader};
use crate::progress::Progress;
use crate::repo::blob::{BlobDecoder, BlobError};
use crate::repo::content_id::ContentId;
use crate::repo::datadir::DataDir;

/// Bytes held for readers that have not taken them yet (runs being read,
/// blobs read or decoded, each counted at its decoded length), per
/// [`ReadAhead`] from an object store, where a larger budget makes longer
/// reads ([`max_run`]). 40 MiB: with 48, and the 8 MiB of idle run buffers
/// that `crate::buffers` then kept, a `verify --deep` of the large bench
/// set peaked at 197 MB.
pub const BUDGET: u64 = 40 << 20;

/// The same from a local directory, whose runs are at most [`MAX_RUN`]
/// whatever the budget: a larger one only holds more blobs read ahead.
/// 32 MiB: with [`BUDGET`], a local `verify --deep` of the large bench set
/// peaked at 172 to 199 MB from run to run, with this at 160 to 167 MB,
/// as fast (interleaved runs, page cache dropped).
pub const LOCAL_BUDGET: u64 = 32 << 20;
const _: () = assert!(LOCAL_BUDGET < BUDGET);

/// The least budget [`Budgets`] gives: two of the longest runs.
pub const MIN_BUDGET: u64 = 2 * MAX_RUN;

/// How [`BUDGET`] is shared between the read-aheads of blocks rebuilt at
/// the same time: in proportion to the bytes each block stores, among the
/// largest blocks that run at once, at least [`MIN_BUDGET`] and at most
/// `BUDGET` each.
///
/// Blocks are started largest first, so whatever blocks run together,
/// their sizes add up to at most those of the first `concurrency`, and
/// their budgets to at most `BUDGET` (plus `MIN_BUDGET` for each raised to
/// it). A block that holds most of the bytes gets most of the budget: it
/// runs longest, mostly alone once the smaller ones are done, and a larger
/// budget lets its reads be longer (fewer requests, whole packs).
#[derive(Debug, Clone, Copy)]
pub struct Budgets {
    /// The bytes of the `concurrency` largest blocks.
    at_once: u64,
    /// [`BUDGET`] or [`LOCAL_BUDGET`].
    total: u64,
}

impl Budgets {
    /// For blocks of `sizes` rebuilt `concurrency` at a time, from a store
    /// that prefers `long_reads` (an object store) or not.
    pub fn new(
        sizes: impl IntoIterator<Item = u64>,
        concurrency: usize,
        long_reads: bool,
    ) -> Budgets {
        let mut sizes: Vec<u64> = sizes.into_iter().collect();
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        let at_once = sizes.iter().take(concurrency.max(1)).sum::<u64>();
        Budgets {
            at_once: at_once.max(1),
            total: match long_reads {
                true => BUDGET,
                false => LOCAL_BUDGET,
            },
        }
    }

    /// The budget of a block of `size` bytes.
    pub fn of(&self, size: u64) -> u64 {
        let share = u128::from(self.total) * u128::from(size) / u128::from(self.at_once);
        u64::try_from(share)
            .unwrap_or(self.total)
            .clamp(MIN_BUDGET, self.total)
    }
}

/// The longest run of blobs read with one request (a longer blob is a run
/// of its own), from a local directory, or from a store that prefers long
/// reads within a budget of at most 10 MiB.
pub const MAX_RUN: u64 = 4 << 20;

/// The longest run from a store that prefers long reads
/// ([`Storage::prefers_long_reads`](crate::storage::Storage::prefers_long_reads)):
/// a pack's blobs (16 MiB).
pub const MAX_LONG_RUN: u64 = 16 << 20;

/// The longest run of a read-ahead with `budget`: from an object store,
/// two fifths of the budget (between [`MAX_RUN`] and [`MAX_LONG_RUN`]),
/// so that two runs in flight leave room for the blobs decoded from
/// them. Measured on the large bench set restored from Garage: the
/// largest block (22 MiB of budget) took 139 requests with runs of at
/// most 4 MiB, 57 with 8.8 MiB; at seven tenths of its budget, the runs
/// no longer fit beside each other and readers waited (41 runs read out
/// of turn).
fn max_run(budget: u64, long_reads: bool) -> u64 {
    match long_reads {
        true => (budget / 5 * 2).clamp(MAX_RUN, MAX_LONG_RUN),
        false => MAX_RUN,
    }
}

/// Bytes between two blobs that a run reads and throws away rather than
/// start another request.
pub const MAX_GAP: u64 = 256 << 10;

/// Where runs read from an object store that were cut for length alone
/// end and start: on a multiple of this (1 MiB), the blob across it read
/// in two parts, one by each run ([`Slot::Assembling`]). Garage keeps an
/// object in blocks of 1 MiB (its default `block_size`), reads and hashes
/// every block a range touches, and a run that ends inside a block makes
/// the next run read that block again. Restoring the large bench set from
/// Garage, runs cut between blobs read 1070 blocks for 927 distinct ones
/// (15 % more). To a store without such blocks the cut costs nothing.
pub const ALIGN: u64 = 1 << 20;

/// Runs read at the same time.
pub const FETCHERS: usize = 3;

/// Pack headers read at the same time while references are checked.
const HEADERS_AT_ONCE: usize = 8;

/// How a reader goes through the streams of a [`Group`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Each stream to its end, then the next (whole files).
    OneAfterAnother,
    /// All streams at once, each at about the same share of its length
    /// (window streams, joined by walking the index).
    SideBySide,
}

/// Streams read the same way; groups are read one after the other.
#[derive(Debug, Clone)]
pub struct Group {
    pub order: Order,
    /// Each stream is the concatenation of its blobs.
    pub streams: Vec<Vec<BlobRef>>,
}

/// What a read-ahead did, for tests and measurements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Ranged reads of blobs (pack headers not counted).
    pub requests: u64,
    /// Bytes those reads asked for.
    pub bytes_read: u64,
    /// Runs read out of turn because a reader was waiting for them.
    pub out_of_turn: u64,
    /// Blobs a reader decoded itself because no decoding thread had yet.
    pub decoded_by_reader: u64,
    /// Blobs put together from two runs' reads (see [`ALIGN`]).
    pub assembled: u64,
    /// The most bytes held at once (see [`BUDGET`]).
    pub peak_held: u64,
}

/// One blob in the plan.
struct Planned {
    r: BlobRef,
    /// When it will be needed: the group's number plus a share of it.
    need: f64,
    /// The share of its group it spans, `need` onwards: how far off `need`
    /// may be for a blob of side-by-side streams (estimated from where it
    /// starts in its stream, it says nothing of where in that span the
    /// reader actually is).
    width: f64,
    /// The run that reads it (its first part, if it is read in two).
    run: usize,
    /// The run that reads its second part, if it is read in two.
    more: Option<usize>,
}

/// Adjacent blobs of one pack, read with one request: the bytes
/// `offset..offset + length`, which hold its blobs, but for the first or
/// the last of them, which may lie partly in the run before or after it
/// (see [`ALIGN`]).
struct Run {
    pack: ContentId,
    offset: u64,
    length: u64,
    /// It continues the run before it in its pack, with no gap, and was
    /// cut from it only for length.
    follows: bool,
    /// What it holds once read: its length, or its blobs' [`cost`] if more.
    cost: u64,
    /// Its blobs, by offset.
    blobs: Vec<usize>,
}

/// The streams of a block, planned and checked, ready to [`run`](ReadAhead::run).
pub struct ReadAhead {
    packs: Arc<PackReader>,
    handle: Handle,
    blobs: Vec<Planned>,
    /// Runs, in the order they will be needed.
    runs: Vec<Run>,
    /// Each stream's blobs, as a range of `blobs`; by group, then stream.
    streams: Vec<Range<usize>>,
    budget: u64,
    /// Whether each blob's id is checked as it is decoded.
    ids_checked: bool,
    reads: Reads,
}

/// How the blobs are grouped into runs.
#[derive(Debug, Clone, Copy)]
struct Reads {
    /// The longest run ([`max_run`]).
    max_run: u64,
    /// Where runs cut for length end (see [`ALIGN`]), if anywhere.
    align: Option<u64>,
}

impl ReadAhead {
    /// Plans the reads of `groups` and checks every reference against its
    /// pack's header (every pack once, several at a time), so that a
    /// reference that lies is refused before anything is read or written.
    /// Call in the runtime, whose handle the threads keep.
    pub async fn open(packs: Arc<PackReader>, groups: Vec<Group>) -> Result<ReadAhead> {
        Self::with_budget(packs, groups, BUDGET).await
    }

    /// As [`open`](Self::open), with another budget (tests).
    pub async fn with_budget(
        packs: Arc<PackReader>,
        groups: Vec<Group>,
        budget: u64,
    ) -> Result<ReadAhead> {
        let long_reads = packs.storage().prefers_long_reads();
        let reads = Reads {
            max_run: max_run(budget, long_reads),
            align: long_reads.then_some(ALIGN),
        };
        Self::with_reads(packs, groups, budget, reads).await
    }

    /// As [`with_budget`](Self::with_budget), with runs grouped as `reads`
    /// says (tests).
    async fn with_reads(
        packs: Arc<PackReader>,
        groups: Vec<Group>,
        budget: u64,
        reads: Reads,
    ) -> Result<ReadAhead> {
        let (blobs, streams) = plan_needs(&groups);
        check_refs(&packs, &blobs).await?;
        let mut ahead = ReadAhead {
            packs,
            handle: Handle::current(),
            blobs,
            runs: Vec::new(),
            streams,
            budget,
            ids_checked: true,
            reads,
        };
        ahead.plan_runs(&groups);
        Ok(ahead)
    }

    /// Decodes blobs without checking their ids, every other check
    /// kept ([`BlobDecoder::decode_unhashed`]): for a reader that checks
    /// the SHA-256 of everything it reads anyway, as a rebuild does of
    /// every file. The blob hash would be a second pass over every byte,
    /// as much work as the zstd decoding itself. Such a reader finds
    /// damaged bytes as a file that does not hash to its manifest's
    /// SHA-256; to name the blob, read the streams again with the checks.
    pub fn without_id_checks(mut self) -> Self {
        self.ids_checked = false;
        self
    }

    /// Groups the blobs into runs and sorts the runs by need.
    fn plan_runs(&mut self, groups: &[Group]) {
        // How far apart in need two blobs of one run may be: half the
        // budget's share of their group.
        let reach: Vec<f64> = groups
            .iter()
            .map(|g| {
                let total: u64 = g.streams.iter().flatten().map(raw).sum();
                (self.budget / 2) as f64 / total.max(1) as f64
            })
            .collect();
        let max_run = self.reads.max_run;
        let mut order: Vec<usize> = (0..self.blobs.len()).collect();
        order.sort_by_key(|&i| (self.blobs[i].r.pack, self.blobs[i].r.offset));
        let mut runs: Vec<(f64, Run)> = Vec::new();
        // The run's first and last need, and its blobs' widest width.
        let mut span = (0.0f64, 0.0f64);
        let mut width = 0.0f64;
        for i in order {
            let b = &self.blobs[i];
            let (start, end) = (b.r.offset, b.r.offset + u64::from(b.r.length));
            let group = b.need.floor();
            // Whether it may join the last run but for the run's length,
            // and whether it fits.
            let (near, fits) = runs.last().map_or((false, false), |(_, run)| {
                let run_end = run.offset + run.length;
                // Needs are estimates good to a blob's width: blobs that
                // close are needed together as far as the plan can tell.
                let slack = width.max(b.width);
                let near = run.pack == b.r.pack
                    && start <= run_end + MAX_GAP
                    && span.0.floor() == group
                    && b.need.max(span.1) - b.need.min(span.0) <= reach[group as usize] + slack;
                (near, end.max(run_end) - run.offset <= max_run)
            });
            let joins = near && fits;
            if joins {
                let (first, run) = runs.last_mut().expect("joins a run");
                run.length = end.max(run.offset + run.length) - run.offset;
                run.blobs.push(i);
                *first = first.min(b.need);
                span = (span.0.min(b.need), span.1.max(b.need));
                width = width.max(b.width);
            } else {
                let follows = near
                    && runs
                        .last()
                        .is_some_and(|(_, run)| run.offset + run.length == start);
                span = (b.need, b.need);
                width = b.width;
                runs.push((
                    b.need,
                    Run {
                        pack: b.r.pack,
                        offset: start,
                        length: end - start,
                        follows,
                        cost: 0,
                        blobs: vec![i],
                    },
                ));
            }
        }
        if let Some(align) = self.reads.align {
            for n in 1..runs.len() {
                if runs[n].1.follows {
                    let (before, after) = runs.split_at_mut(n);
                    self.cut_at_alignment(&mut before[n - 1], &mut after[0], align);
                }
            }
        }
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (_, run) in &mut runs {
            let blobs: u64 = run.blobs.iter().map(|&i| cost(&self.blobs[i].r)).sum();
            run.cost = run.length.max(blobs);
        }
        for (n, (_, run)) in runs.iter().enumerate() {
            for &i in &run.blobs {
                let first = run.blobs[0] == i && self.blobs[i].r.offset < run.offset;
                match first {
                    // Its second part: the first is read by the run before.
                    true => self.blobs[i].more = Some(n),
                    false => self.blobs[i].run = n,
                }
            }
        }
        self.runs = runs.into_iter().map(|(_, run)| run).collect();
    }

    /// Moves the cut between run `a` and run `b`, which follows it in its
    /// pack with no gap, back to the multiple of `align` before it: the
    /// blobs after that point go to `b`, and the blob across it (if any) is
    /// read in two parts, its first by `a`, the rest by `b`. Left as it is
    /// when the cut is aligned already, when `a` would be left with nothing,
    /// or when that blob starts before `a` (its first part is read by the
    /// run before `a`: a blob is read in at most two parts).
    fn cut_at_alignment(&self, a: &mut (f64, Run), b: &mut (f64, Run), align: u64) {
        let end = b.1.offset;
        let cut = end / align * align;
        if cut == end || cut <= a.1.offset {
            return;
        }
        let start = |i: usize| self.blobs[i].r.offset;
        // The blobs of `a` that start at or after the cut, and the one across it.
        let keep = a.1.blobs.partition_point(|&i| start(i) < cut);
        let moved: Vec<usize> = a.1.blobs.split_off(keep);
        let across = a.1.blobs.last().copied().filter(|&i| {
            let r = &self.blobs[i].r;
            r.offset + u64::from(r.length) > cut
        });
        if across.is_some_and(|i| start(i) < a.1.offset) {
            a.1.blobs.extend(moved);
            return;
        }
        let mut head: Vec<usize> = across.into_iter().chain(moved).collect();
        for &i in &head {
            b.0 = b.0.min(self.blobs[i].need);
        }
        head.append(&mut b.1.blobs);
        b.1.blobs = head;
        a.1.length = cut - a.1.offset;
        b.1.length += end - cut;
        b.1.offset = cut;
        a.0 =
            a.1.blobs
                .iter()
                .map(|&i| self.blobs[i].need)
                .fold(f64::INFINITY, f64::min);
    }

    /// Reads the streams: `consume` runs on this thread with one reader per
    /// stream (by group, then stream, as given to [`open`](Self::open)),
    /// while the fetching and decoding threads work ahead of it. They stop
    /// when `consume` returns. Call on a blocking thread.
    /// `progress` is advanced by each blob's bytes as a reader takes it.
    pub fn run<T>(
        self,
        progress: Option<&dyn Progress>,
        consume: impl FnOnce(Vec<StreamReader<'_>>) -> T,
    ) -> (T, Stats) {
        let shared = Shared {
            state: Mutex::new(State {
                slots: (0..self.blobs.len()).map(|_| Slot::Waiting).collect(),
                started: vec![false; self.runs.len()],
                next_run: 0,
                urgent: VecDeque::new(),
                urgent_blobs: VecDeque::new(),
                decode: VecDeque::new(),
                held: 0,
                closed: false,
                spare: Vec::new(),
                stats: Stats::default(),
            }),
            room: Condvar::new(),
            work: Condvar::new(),
            ready: Condvar::new(),
            plan: &self,
            reader_decoder: Mutex::new(BlobDecoder::new(self.packs.ids())),
        };
        let decoders = std::thread::available_parallelism().map_or(2, |n| n.get());
        let out = std::thread::scope(|scope| {
            for _ in 0..FETCHERS.min(self.runs.len()) {
                scope.spawn(|| shared.fetch_runs());
            }
            for _ in 0..decoders {
                scope.spawn(|| shared.decode_blobs());
            }
            // Whatever `consume` does (a panic too), the threads stop.
            let _stop = Stop(&shared);
            let readers = self
                .streams
                .iter()
                .map(|range| StreamReader {
                    shared: &shared,
                    blobs: range.clone(),
                    blob: Vec::new(),
                    at: 0,
                    progress,
                })
                .collect();
            consume(readers)
        });
        let stats = shared.lock().stats;
        (out, stats)
    }
}

/// The uncompressed length of a blob.
fn raw(r: &BlobRef) -> u64 {
    u64::from(r.raw_length)
}

/// What a blob holds from when it is read until its reader takes it: its
/// frame, then its decoded bytes (reserved at once, so that decoding never
/// takes the held bytes past the budget).
fn cost(r: &BlobRef) -> u64 {
    raw(r).max(u64::from(r.length))
}

/// Every blob with the share of its group read before it is needed; and
/// each stream's range of blobs.
fn plan_needs(groups: &[Group]) -> (Vec<Planned>, Vec<Range<usize>>) {
    let mut blobs = Vec::new();
    let mut streams = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        let total: u64 = group.streams.iter().flatten().map(raw).sum();
        let mut before_stream = 0u64;
        for stream in &group.streams {
            let length: u64 = stream.iter().map(raw).sum();
            let first = blobs.len();
            let mut at = 0u64;
            for r in stream {
                let (share, width) = match group.order {
                    Order::OneAfterAnother => (
                        (before_stream + at) as f64 / total.max(1) as f64,
                        raw(r) as f64 / total.max(1) as f64,
                    ),
                    Order::SideBySide => (
                        at as f64 / length.max(1) as f64,
                        raw(r) as f64 / length.max(1) as f64,
                    ),
                };
                // Within [0, 1): the group's number is the integer part.
                let need = g as f64 + share.min(0.999_999);
                blobs.push(Planned {
                    r: *r,
                    need,
                    width,
                    run: 0,
                    more: None,
                });
                at += raw(r);
            }
            before_stream += length;
            streams.push(first..blobs.len());
        }
    }
    (blobs, streams)
}

/// Reads each pack's header once and checks every reference to it.
async fn check_refs(packs: &Arc<PackReader>, blobs: &[Planned]) -> Result<()> {
    let mut by_pack: BTreeMap<ContentId, Vec<&BlobRef>> = BTreeMap::new();
    for b in blobs {
        by_pack.entry(b.r.pack).or_default().push(&b.r);
    }
    let mut checks = futures::stream::iter(by_pack)
        .map(|(pack, refs)| async move {
            let header = packs.read_header(&pack).await?;
            for r in refs {
                header.find(r).map_err(|d| d.in_dir(packs.dir()))?;
                // No frame of `raw_length` bytes needs more than this.
                let bound = zstd::zstd_safe::compress_bound(r.raw_length as usize) as u64;
                if u64::from(r.length) > bound {
                    return Err(DamagedPack::damaged(
                        pack,
                        format!(
                            "blob {} at offset {} takes {} bytes, more than any {}-byte blob \
                             needs",
                            r.id, r.offset, r.length, r.raw_length
                        ),
                    )
                    .in_dir(packs.dir())
                    .into());
                }
            }
            anyhow::Ok(())
        })
        .buffer_unordered(HEADERS_AT_ONCE);
    while let Some(checked) = checks.next().await {
        checked?;
    }
    Ok(())
}

/// What a fetching thread reads.
enum Job {
    Run(usize),
    Blob(usize),
}

/// Where a blob is.
enum Slot {
    /// Its run has not been read.
    Waiting,
    /// Being read alone, for a waiting reader.
    Reading,
    /// Read in two parts (see [`ALIGN`]), one of which has arrived: its
    /// frame so far (held at its whole length), and the bytes missing.
    Assembling(Vec<u8>, u64),
    /// Read (its frame), waiting to be decoded.
    Fetched(Bytes),
    /// Being decoded.
    Decoding,
    /// Decoded and checked.
    Ready(Vec<u8>),
    Failed(io::Error),
    /// Handed to its reader.
    Taken,
}

struct State {
    slots: Vec<Slot>,
    /// Runs a fetcher has taken.
    started: Vec<bool>,
    /// The first run, in need order, that may not have started.
    next_run: usize,
    /// Runs a reader waits for.
    urgent: VecDeque<usize>,
    /// Blobs a reader waits for, to be read alone: their run would take
    /// the held bytes past the budget.
    urgent_blobs: VecDeque<usize>,
    /// Fetched blobs, in the order they were read.
    decode: VecDeque<usize>,
    /// Bytes of runs being read, frames and decoded blobs not yet taken.
    held: u64,
    closed: bool,
    /// Emptied blob buffers, for the decoders to reuse.
    spare: Vec<Vec<u8>>,
    stats: Stats,
}

impl State {
    fn hold(&mut self, bytes: u64) {
        self.held += bytes;
        self.stats.peak_held = self.stats.peak_held.max(self.held);
    }
}

/// The state, and one condition variable for each kind of thread, each
/// woken only for what it waits for: with one for all, every blob taken
/// woke every fetching and decoding thread to find nothing to do (restoring
/// the large bench set's largest block: 20 thousand context switches, half
/// of them fetchers waking to go back to sleep).
struct Shared<'a> {
    state: Mutex<State>,
    /// Fetching threads: a run fits in the budget, a reader asked for
    /// something, or the readers are done.
    room: Condvar,
    /// Decoding threads: a blob was fetched, or the readers are done.
    work: Condvar,
    /// Readers: a blob was fetched, decoded or failed.
    ready: Condvar,
    plan: &'a ReadAhead,
    /// For the blobs a reader decodes itself (only the reading thread).
    reader_decoder: Mutex<BlobDecoder>,
}

/// Stops the threads when dropped.
struct Stop<'a, 'b>(&'a Shared<'b>);

impl Drop for Stop<'_, '_> {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.room.notify_all();
        self.0.work.notify_all();
    }
}

impl Shared<'_> {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'g>(&self, on: &Condvar, guard: MutexGuard<'g, State>) -> MutexGuard<'g, State> {
        on.wait(guard).unwrap_or_else(|e| e.into_inner())
    }

    /// What a fetching thread would do now, if anything: wakes one when
    /// there is something (after the budget shrank, a reader asked, or a
    /// fetcher took a job and there may be another).
    fn wake_fetcher(&self, st: &State) {
        let next = (st.next_run..self.plan.runs.len()).find(|&n| !st.started[n]);
        let fits = next.is_some_and(|n| self.fits(st, n));
        if st.closed || fits || !st.urgent.is_empty() || !st.urgent_blobs.is_empty() {
            self.room.notify_one();
        }
    }

    /// Whether run `n` may start in turn: it fits in the budget, or
    /// nothing is held (a run longer than the budget is read alone).
    fn fits(&self, st: &State, n: usize) -> bool {
        st.held == 0 || st.held + self.plan.runs[n].cost <= self.plan.budget
    }

    /// Blobs were queued for decoding, and their readers may decode them.
    fn fetched(&self) {
        self.work.notify_all();
        self.ready.notify_all();
    }

    /// A fetching thread: reads runs in need order while the budget has
    /// room, and what a reader waits for at once.
    fn fetch_runs(&self) {
        while let Some(job) = self.next_job() {
            match job {
                Job::Run(n) => self.fetch_run(&self.plan.runs[n]),
                Job::Blob(i) => self.fetch_blob(i),
            }
            self.fetched();
        }
    }

    /// Reads a run; its blobs not read alone meanwhile go to the decoders
    /// (a blob read in two parts once both have arrived).
    fn fetch_run(&self, run: &Run) {
        let read = self.plan.handle.block_on(
            self.plan
                .packs
                .read_range(&run.pack, run.offset, run.length),
        );
        let mut st = self.lock();
        st.stats.requests += 1;
        st.stats.bytes_read += run.length;
        st.held -= run.cost;
        let waiting: Vec<usize> = (run.blobs.iter().copied())
            .filter(|&i| matches!(st.slots[i], Slot::Waiting | Slot::Assembling(..)))
            .collect();
        match read {
            Ok(bytes) => {
                let (start, end) = (run.offset, run.offset + run.length);
                for i in waiting {
                    let r = &self.plan.blobs[i].r;
                    let (first, last) = (r.offset, r.offset + u64::from(r.length));
                    let (from, to) = (first.max(start), last.min(end));
                    let part = bytes.slice((from - start) as usize..(to - start) as usize);
                    if (from, to) == (first, last) {
                        st.slots[i] = Slot::Fetched(part);
                        st.decode.push_back(i);
                        st.hold(cost(r));
                        continue;
                    }
                    let at = (from - first) as usize;
                    let slot = std::mem::replace(&mut st.slots[i], Slot::Taken);
                    st.slots[i] = match slot {
                        Slot::Assembling(mut frame, missing) => {
                            frame[at..at + part.len()].copy_from_slice(&part);
                            match missing - part.len() as u64 {
                                0 => {
                                    st.held -= u64::from(r.length);
                                    st.hold(cost(r));
                                    st.stats.assembled += 1;
                                    st.decode.push_back(i);
                                    Slot::Fetched(frame.into())
                                }
                                missing => Slot::Assembling(frame, missing),
                            }
                        }
                        _ => {
                            let mut frame = vec![0u8; r.length as usize];
                            frame[at..at + part.len()].copy_from_slice(&part);
                            st.hold(u64::from(r.length));
                            Slot::Assembling(frame, u64::from(r.length) - part.len() as u64)
                        }
                    };
                }
            }
            Err(e) => {
                for (k, i) in waiting.into_iter().enumerate() {
                    if let Slot::Assembling(..) = st.slots[i] {
                        st.held -= u64::from(self.plan.blobs[i].r.length);
                    }
                    st.slots[i] = Slot::Failed(fetch_error(&e, k == 0));
                }
            }
        }
        self.wake_fetcher(&st);
    }

    /// Reads one blob alone, for a reader that waits for it.
    fn fetch_blob(&self, i: usize) {
        let r = &self.plan.blobs[i].r;
        let length = u64::from(r.length);
        let read = self
            .plan
            .handle
            .block_on(self.plan.packs.read_range(&r.pack, r.offset, length));
        let mut st = self.lock();
        st.stats.requests += 1;
        st.stats.bytes_read += length;
        st.slots[i] = match read {
            Ok(frame) => {
                st.decode.push_back(i);
                Slot::Fetched(frame)
            }
            Err(e) => {
                st.held -= cost(r);
                Slot::Failed(fetch_error(&e, true))
            }
        };
        self.wake_fetcher(&st);
    }

    /// What to read next: what a reader waits for, else the next run once
    /// there is room for it; `None` when every run has been started or the
    /// reader is done.
    fn next_job(&self) -> Option<Job> {
        let mut st = self.lock();
        loop {
            if st.closed {
                return None;
            }
            if let Some(i) = st.urgent_blobs.pop_front() {
                st.stats.out_of_turn += 1;
                st.hold(cost(&self.plan.blobs[i].r));
                self.wake_fetcher(&st);
                return Some(Job::Blob(i));
            }
            while let Some(n) = st.urgent.pop_front() {
                if !st.started[n] {
                    st.stats.out_of_turn += 1;
                    let job = Job::Run(self.start(&mut st, n));
                    self.wake_fetcher(&st);
                    return Some(job);
                }
            }
            while st.next_run < self.plan.runs.len() && st.started[st.next_run] {
                st.next_run += 1;
            }
            let n = st.next_run;
            if n == self.plan.runs.len() {
                return None;
            }
            if self.fits(&st, n) {
                let job = Job::Run(self.start(&mut st, n));
                self.wake_fetcher(&st);
                return Some(job);
            }
            st = self.wait(&self.room, st);
        }
    }

    fn start(&self, st: &mut State, n: usize) -> usize {
        st.started[n] = true;
        st.hold(self.plan.runs[n].cost);
        n
    }

    /// A decoding thread: decodes fetched blobs until the reader is done.
    fn decode_blobs(&self) {
        let mut decoder = BlobDecoder::new(self.plan.packs.ids());
        loop {
            let (i, frame, out) = {
                let mut st = self.lock();
                loop {
                    if st.closed {
                        return;
                    }
                    if let Some(i) = st.decode.pop_front() {
                        let frame = self.take_frame(&mut st, i);
                        let out = st.spare.pop().unwrap_or_default();
                        break (i, frame, out);
                    }
                    st = self.wait(&self.work, st);
                }
            };
            let decoded = self.decode(&mut decoder, i, &frame, out);
            drop(frame);
            let mut st = self.lock();
            if decoded.is_err() {
                st.held -= cost(&self.plan.blobs[i].r);
                self.wake_fetcher(&st);
            }
            st.slots[i] = match decoded {
                Ok(blob) => Slot::Ready(blob),
                Err(e) => Slot::Failed(e),
            };
            drop(st);
            self.ready.notify_all();
        }
    }

    /// Takes the frame of fetched blob `i` for decoding.
    fn take_frame(&self, st: &mut State, i: usize) -> Bytes {
        match std::mem::replace(&mut st.slots[i], Slot::Decoding) {
            Slot::Fetched(frame) => frame,
            _ => unreachable!("only fetched blobs are queued for decoding"),
        }
    }

    fn decode(
        &self,
        decoder: &mut BlobDecoder,
        i: usize,
        frame: &[u8],
        mut out: Vec<u8>,
    ) -> io::Result<Vec<u8>> {
        let r = &self.plan.blobs[i].r;
        match self.plan.ids_checked {
            true => decoder.decode_into(frame, r.raw_length, r.id, &mut out),
            false => decoder.decode_unhashed(frame, r.raw_length, &mut out),
        }
        .map(|()| out)
        .map_err(|e| blob_damage(self.plan.packs.dir(), r, e))
    }

    /// Blob `i` for its reader, decoded and checked: waits for it, decodes
    /// it here if no decoding thread has started it, and has its run read
    /// next if it has not been read. `done` is the reader's emptied buffer.
    fn take(&self, i: usize, done: Vec<u8>) -> io::Result<Vec<u8>> {
        let mut st = self.lock();
        if done.capacity() > 0 && st.spare.len() < 8 {
            st.spare.push(done);
        }
        loop {
            match std::mem::replace(&mut st.slots[i], Slot::Taken) {
                Slot::Ready(blob) => {
                    st.held -= cost(&self.plan.blobs[i].r);
                    self.wake_fetcher(&st);
                    return Ok(blob);
                }
                Slot::Failed(e) => return Err(e),
                Slot::Fetched(frame) => {
                    st.decode.retain(|&j| j != i);
                    st.stats.decoded_by_reader += 1;
                    let out = st.spare.pop().unwrap_or_default();
                    drop(st);
                    let mut decoder = self
                        .reader_decoder
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    let decoded = self.decode(&mut decoder, i, &frame, out);
                    drop(decoder);
                    drop(frame);
                    let mut st = self.lock();
                    st.held -= cost(&self.plan.blobs[i].r);
                    self.wake_fetcher(&st);
                    return decoded;
                }
                slot @ (Slot::Waiting | Slot::Assembling(..)) => {
                    st.slots[i] = slot;
                    let planned = &self.plan.blobs[i];
                    let unread = [Some(planned.run), planned.more]
                        .into_iter()
                        .flatten()
                        .find(|&n| !st.started[n]);
                    // Asked for at most once: it stays asked until a
                    // fetcher takes it. A blob read in two parts may need
                    // its second run asked for once the first is read.
                    if let Some(run) = unread.filter(|n| !st.urgent.contains(n)) {
                        // The whole run if it fits in the budget, else the
                        // blob alone: what is read out of turn never piles up.
                        if st.held + self.plan.runs[run].cost <= self.plan.budget {
                            st.urgent.push_back(run);
                        } else {
                            if let Slot::Assembling(..) = st.slots[i] {
                                st.held -= u64::from(planned.r.length);
                            }
                            st.slots[i] = Slot::Reading;
                            st.urgent_blobs.push_back(i);
                        }
                        self.wake_fetcher(&st);
                    }
                }
                other => st.slots[i] = other,
            }
            st = self.wait(&self.ready, st);
        }
    }
}

/// A failed read of a run, for blob `k` of it: damage stays findable for
/// every blob; the first also keeps the whole cause.
fn fetch_error(e: &anyhow::Error, first: bool) -> io::Error {
    match DamagedPack::find(e) {
        Some(d) => io::Error::new(io::ErrorKind::InvalidData, d.clone()),
        None if first => io::Error::other(format!("{e:#}")),
        None => io::Error::other(format!("an earlier read failed: {e:#}")),
    }
}

/// A blob's damage as damage of its pack, naming both.
fn blob_damage(dir: &DataDir, r: &BlobRef, e: BlobError) -> io::Error {
    let what = format!("blob {} at offset {}: {e}", r.id, r.offset);
    io::Error::new(
        io::ErrorKind::InvalidData,
        DamagedPack::damaged(r.pack, what).in_dir(dir),
    )
}

/// One stream, read from its decoded blobs: a `BufRead` that hands on a
/// blob's bytes only once the whole blob has been checked.
pub struct StreamReader<'a> {
    shared: &'a Shared<'a>,
    /// The stream's blobs not taken yet.
    blobs: Range<usize>,
    blob: Vec<u8>,
    at: usize,
    progress: Option<&'a dyn Progress>,
}

impl BufRead for StreamReader<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.at == self.blob.len() {
            let Some(i) = self.blobs.next() else {
                return Ok(&[]);
            };
            let done = std::mem::take(&mut self.blob);
            self.blob = self.shared.take(i, done)?;
            self.at = 0;
            if let Some(p) = self.progress {
                p.advance(self.blob.len() as u64);
            }
        }
        Ok(&self.blob[self.at..])
    }

    fn consume(&mut self, amt: usize) {
        self.at = (self.at + amt).min(self.blob.len());
    }
}

impl Read for StreamReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        super::read_buffered(self, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::blob::{sample, BlobEncoder, BlobKind};
    use crate::repo::content_id::IdHash;
    use crate::repo::cutter::BlobCutter;
    use crate::repo::datadir::DataDir;
    use crate::repo::pack::{PackWriter, PackWriterOptions};
    use crate::storage::{LocalStorage, Storage};

    /// Streams of records cut into blobs (about 16 KiB each) and stored in
    /// packs of about 128 KiB as a backup stores a block: the first
    /// `whole` streams (small files, index) one after the other, then the
    /// rest (window streams) interleaved.
    async fn store(
        storage: &Arc<dyn Storage>,
        streams: &[Vec<u8>],
        whole: usize,
    ) -> Vec<Vec<BlobRef>> {
        let mut encoder = BlobEncoder::with_default_level().unwrap();
        let mut per_stream = Vec::new();
        for (s, data) in streams.iter().enumerate() {
            let mut cutter = BlobCutter::new(16 << 10);
            let mut blobs = Vec::new();
            let mut emit = |raw: &mut Vec<u8>| {
                blobs.push(encoder.encode(BlobKind::Chunks, raw)?);
                Ok(())
            };
            for record in data.chunks(700 + s) {
                cutter.push(record, &mut emit).unwrap();
            }
            cutter.finish(&mut emit).unwrap();
            per_stream.push(blobs);
        }
        let opts = PackWriterOptions {
            target: 128 << 10,
            in_flight: 2,
            ..Default::default()
        };
        let mut writer = PackWriter::new(storage.clone(), DataDir::Legacy, opts);
        let mut refs = Vec::new();
        let longest = per_stream.iter().map(Vec::len).max().unwrap_or(0);
        let mut iters: Vec<_> = per_stream.into_iter().map(Vec::into_iter).collect();
        for (s, blobs) in iters.iter_mut().enumerate().take(whole) {
            for (k, b) in blobs.enumerate() {
                refs.extend(writer.add((s, k), b).await.unwrap());
            }
        }
        for k in 0..longest {
            for (s, blobs) in iters.iter_mut().enumerate() {
                if let Some(b) = blobs.next() {
                    refs.extend(writer.add((s, k), b).await.unwrap());
                }
            }
        }
        refs.extend(writer.finish().await.unwrap().0);
        refs.sort_by_key(|(tag, _)| *tag);
        let mut out = vec![Vec::new(); streams.len()];
        for ((s, _), r) in refs {
            out[s].push(r);
        }
        out
    }

    fn storage(dir: &Path) -> Arc<dyn Storage> {
        Arc::new(LocalStorage::new(dir.to_path_buf()))
    }

    use std::path::Path;

    /// Reads every stream the way the join does: the first group's
    /// streams one after the other, then the second group's a little of
    /// each in turn.
    fn read_all(readers: Vec<StreamReader<'_>>, first: usize) -> io::Result<Vec<Vec<u8>>> {
        let mut out = vec![Vec::new(); readers.len()];
        let mut readers = readers;
        for (r, o) in readers.iter_mut().zip(&mut out).take(first) {
            r.read_to_end(o)?;
        }
        let mut open: Vec<usize> = (first..readers.len()).collect();
        while !open.is_empty() {
            let mut still = Vec::new();
            for i in open {
                let mut buf = vec![0u8; 3000 + i * 500];
                let n = readers[i].read(&mut buf)?;
                out[i].extend_from_slice(&buf[..n]);
                if n > 0 {
                    still.push(i);
                }
            }
            open = still;
        }
        Ok(out)
    }

    #[test]
    fn the_budget_goes_to_the_largest_blocks_and_runs_grow_with_it_from_object_stores() {
        const MIB: u64 = 1 << 20;
        // The large bench set: one block holds over half of what four
        // blocks at once store.
        let budgets = Budgets::new([68, 462, 154, 5, 154, 51], 4, true);
        assert_eq!(budgets.of(462) / MIB, 22);
        assert_eq!(budgets.of(154), MIN_BUDGET);
        assert_eq!(budgets.of(5), MIN_BUDGET);
        // Whichever blocks run together, their budgets add up to at most
        // BUDGET, plus MIN_BUDGET for each raised to it.
        let at_once: u64 = [462, 154, 154, 68].iter().map(|&s| budgets.of(s)).sum();
        assert!(at_once <= BUDGET + 3 * MIN_BUDGET, "{at_once}");
        // Alone, a block has the whole budget; blocks of equal size share it.
        assert_eq!(Budgets::new([462], 4, true).of(462), BUDGET);
        assert_eq!(Budgets::new([10, 10], 2, true).of(10), BUDGET / 2);
        assert_eq!(Budgets::new([0], 1, true).of(0), MIN_BUDGET);
        // From a local directory, whose runs stay short, less.
        assert_eq!(Budgets::new([462], 4, false).of(462), LOCAL_BUDGET);
        // Runs from a local directory stay short; from an object store
        // they grow with the budget, up to a pack.
        assert_eq!(max_run(BUDGET, false), MAX_RUN);
        assert_eq!(max_run(MIN_BUDGET, true), MAX_RUN);
        assert_eq!(max_run(budgets.of(462), true) / MIB, 8);
        assert_eq!(max_run(BUDGET, true), MAX_LONG_RUN);
    }

    /// Six streams stored in `dir` as a block's are: two read one after
    /// the other (small files, index), four side by side (windows).
    async fn six_streams(
        dir: &Path,
    ) -> (Vec<Vec<u8>>, Vec<Vec<BlobRef>>, Vec<Group>, Arc<PackReader>) {
        let storage = storage(dir);
        let data: Vec<Vec<u8>> = (0..6u64)
            .map(|s| sample(150_000 + s as usize * 40_000, s))
            .collect();
        let refs = store(&storage, &data, 2).await;
        let groups = vec![
            Group {
                order: Order::OneAfterAnother,
                streams: refs[..2].to_vec(),
            },
            Group {
                order: Order::SideBySide,
                streams: refs[2..].to_vec(),
            },
        ];
        let reader = Arc::new(PackReader::new(storage, DataDir::Legacy, IdHash::NEW));
        (data, refs, groups, reader)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn streams_come_back_whole_in_few_reads_within_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let (data, refs, groups, reader) = six_streams(dir.path()).await;
        let blobs: usize = refs.iter().map(Vec::len).sum();
        let packs: std::collections::HashSet<_> = refs.iter().flatten().map(|r| r.pack).collect();
        assert!(packs.len() >= 3, "{} packs", packs.len());
        let budget = 1 << 20;
        let ahead = ReadAhead::with_budget(reader, groups, budget)
            .await
            .unwrap();
        let (out, stats) =
            tokio::task::spawn_blocking(move || ahead.run(None, |readers| read_all(readers, 2)))
                .await
                .unwrap();
        assert_eq!(out.unwrap(), data);
        // Adjacent blobs are read together: far fewer reads than blobs,
        // about one per pack.
        assert!(
            stats.requests * 4 <= blobs as u64 && stats.requests <= 2 * packs.len() as u64,
            "{} reads for {blobs} blobs in {} packs",
            stats.requests,
            packs.len()
        );
        // Held: within the budget, but for one blob read alone, out of
        // turn, for the waiting reader (blobs here are about 16 KiB).
        assert!(stats.peak_held <= budget + (64 << 10), "{stats:?}");
        assert!(stats.peak_held > budget / 2, "{stats:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_cut_for_length_end_at_aligned_offsets_and_blobs_across_them_come_back_whole() {
        const KIB: u64 = 1 << 10;
        let dir = tempfile::tempdir().unwrap();
        let (data, _, groups, reader) = six_streams(dir.path()).await;
        let mut read = Vec::new();
        // Runs of at most 48 KiB (blobs of about 16 KiB, packs of 128 KiB),
        // cut at multiples of 8 KiB or between blobs; with room for many
        // runs, and with so little that blobs are read alone, out of turn.
        for (align, budget) in [
            (None, 1 << 20),
            (Some(8 * KIB), 1 << 20),
            (Some(8 * KIB), 48 * KIB),
        ] {
            let reads = Reads {
                max_run: 48 * KIB,
                align,
            };
            let ahead = ReadAhead::with_reads(reader.clone(), groups.clone(), budget, reads)
                .await
                .unwrap();
            // Where runs that continue another end and start.
            let cuts: Vec<u64> = ahead
                .runs
                .iter()
                .filter(|r| r.follows)
                .map(|r| r.offset)
                .collect();
            let aligned = cuts.iter().filter(|&&c| c % (8 * KIB) == 0).count();
            let (out, stats) = tokio::task::spawn_blocking(move || {
                ahead.run(None, |readers| read_all(readers, 2))
            })
            .await
            .unwrap();
            assert_eq!(out.unwrap(), data, "{align:?} {budget}");
            read.push((cuts.len(), aligned, stats));
        }
        let [(cuts, by_chance, plain), (cuts2, aligned, cut), (_, _, tight)] = read[..] else {
            unreachable!()
        };
        // Between blobs, hardly a cut is aligned; with alignment, nearly all
        // are (one is left when a blob would be read in three parts).
        assert!(cuts >= 8, "{cuts} cuts for length");
        assert!(by_chance * 4 < cuts, "{by_chance} of {cuts}");
        assert_eq!(cuts2, cuts);
        assert!(aligned * 4 >= cuts * 3, "{aligned} of {cuts} cuts aligned");
        // The blobs across the cuts were put together from two reads,
        // reading no byte twice and no more requests.
        assert_eq!(plain.assembled, 0);
        assert!(cut.assembled * 2 >= aligned as u64, "{cut:?}");
        assert_eq!(
            (cut.bytes_read, cut.requests),
            (plain.bytes_read, plain.requests)
        );
        // With a budget too small for the runs, blobs were read alone too,
        // and each stream still came back whole (above).
        assert!(tight.out_of_turn > 0, "{tight:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_damaged_blob_fails_its_stream_naming_the_pack_and_the_blob() {
        let dir = tempfile::tempdir().unwrap();
        let storage = storage(dir.path());
        let data = vec![sample(200_000, 1), sample(200_000, 2)];
        let refs = store(&storage, &data, 2).await;
        let victim = refs[1][3];
        let path = dir
            .path()
            .join(DataDir::Legacy.pack_key(&victim.pack).as_str());
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[victim.offset as usize + victim.length as usize / 2] ^= 0x20;
        std::fs::write(&path, bytes).unwrap();
        let groups = vec![Group {
            order: Order::OneAfterAnother,
            streams: refs,
        }];
        let ahead = ReadAhead::open(
            Arc::new(PackReader::new(storage, DataDir::Legacy, IdHash::NEW)),
            groups,
        )
        .await
        .unwrap();
        let (out, _) =
            tokio::task::spawn_blocking(move || ahead.run(None, |readers| read_all(readers, 2)))
                .await
                .unwrap();
        let err = anyhow::Error::from(out.unwrap_err());
        assert_eq!(DamagedPack::find(&err).map(|d| d.pack), Some(victim.pack));
        let msg = format!("{err:#}");
        assert!(msg.contains(&victim.id.to_string()), "{msg}");
    }

    /// A reader that stops early (an error elsewhere) stops the threads.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_that_stops_early_stops_the_read_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let storage = storage(dir.path());
        let data = vec![sample(300_000, 1), sample(300_000, 2)];
        let refs = store(&storage, &data, 0).await;
        let groups = vec![Group {
            order: Order::SideBySide,
            streams: refs,
        }];
        let ahead = ReadAhead::with_budget(
            Arc::new(PackReader::new(storage, DataDir::Legacy, IdHash::NEW)),
            groups,
            64 << 10,
        )
        .await
        .unwrap();
        let (first, _) = tokio::task::spawn_blocking(move || {
            ahead.run(None, |mut readers| {
                let mut buf = vec![0u8; 1000];
                readers[1].read_exact(&mut buf).map(|()| buf)
            })
        })
        .await
        .unwrap();
        assert_eq!(first.unwrap(), data[1][..1000]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reference_its_pack_does_not_list_is_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let storage = storage(dir.path());
        let mut refs = store(&storage, &[sample(50_000, 1)], 1).await;
        refs[0][0].raw_length += 1;
        let groups = vec![Group {
            order: Order::OneAfterAnother,
            streams: refs.clone(),
        }];
        let err = ReadAhead::open(
            Arc::new(PackReader::new(storage, DataDir::Legacy, IdHash::NEW)),
            groups,
        )
        .await
        .err()
        .expect("refused");
        assert_eq!(
            DamagedPack::find(&err).map(|d| d.pack),
            Some(refs[0][0].pack)
        );
    }
}
