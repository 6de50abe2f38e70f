//! Large buffers, recycled across threads.
//!
//! Runs of blobs read at once and whole-object reads come in buffers of
//! 1 MiB and more. `main` has glibc hand such buffers to `mmap`, so that a
//! buffer freed on another thread than the one that allocated it goes back
//! to the system instead of staying resident in that thread's arena. The
//! price was a page fault (and a page cleared by the kernel) for every
//! 4 KiB each fresh buffer was filled with: on the large bench set, with
//! `verify --deep` of its largest block, 10 % of the CPU samples were
//! clearing pages, more than the SHA-256 of the files. With this pool that
//! command took 87 thousand page faults instead of 304, a `verify --deep`
//! of the whole set 200 instead of 370, a restore 177 instead of 263.
//!
//! [`take`] hands out a buffer from a process-wide pool when one of the
//! request's size class is there (else a new one), and [`give`] (or
//! dropping the [`Bytes`] made by [`into_bytes`]) puts it back, on whichever
//! thread that happens. Sizes are rounded up to a class ([`class`]: whole
//! MiBs, coarser above 4 MiB), so that runs of blobs, which are cut at a
//! few lengths give or take a blob, reuse each other's buffers. The pool
//! keeps at most [`KEEP`] bytes, the buffers given back last: one given
//! back to a full pool makes room by freeing those idle longest. A buffer
//! no request has taken for [`STALE`] requests is freed at the next
//! request it does not fit (a class nobody asks for any more, say the runs
//! of a block that is done). The buffers in use and in the pool together
//! stay below the most that was in use at once plus [`KEEP`]: that is what
//! peak memory grows by.
//!
//! Measured on the large bench set, page cache dropped, against the pool
//! before (8 MiB, any buffer at most a quarter larger than asked, the
//! largest idle one freed when none fitted): restoring it from Garage took
//! 81-95 thousand page faults instead of 210-240 thousand and 2.6-2.8
//! CPU-s instead of 2.9-3.2, a local `verify --deep` 71-90 thousand instead
//! of 132-164, for 8-15 MB more peak memory (168 MB). The old rule thrashed
//! between runs of 4 and of 9 MiB: each request freed the other size's
//! idle buffer.

use std::sync::Mutex;

use bytes::Bytes;

/// Buffers smaller than this are left to the allocator: they come from its
/// arenas, without page faults once warm.
pub const MIN: usize = 1 << 20;

/// The most bytes of idle buffers the pool keeps: about what a restore
/// from an object store frees and takes again within a moment (several
/// blocks' runs of 4 to 16 MiB, three read at a time each).
pub const KEEP: usize = 32 << 20;

/// Requests after which a buffer nobody took is freed (see the module
/// documentation). Restoring the large bench set from Garage, the pool
/// without it (and keeping the first buffers given back, not the last)
/// ended up holding 22 MiB of sizes no request wanted, and freed the 8 MiB
/// buffers that were being asked for: 106-107 thousand page faults and a
/// peak of 175-190 MB, against 90-95 thousand and 173-183 MB with it
/// (three interleaved runs each).
pub const STALE: u64 = 16;

/// Idle buffers (their contents as their last user left them: a reuse
/// clears nothing) and the most bytes of them kept.
struct Pool {
    idle: Mutex<Idle>,
    keep: usize,
}

/// The idle buffers, in the order they were given back, each with the
/// count of requests when it was.
struct Idle {
    buffers: Vec<(Vec<u8>, u64)>,
    /// Requests so far.
    takes: u64,
}

impl Idle {
    fn bytes(&self) -> usize {
        self.buffers.iter().map(|(b, _)| b.capacity()).sum()
    }
}

static POOL: Pool = Pool::new(KEEP);

/// The capacity of a pooled buffer for `len` bytes: `len` rounded up to
/// a whole MiB (to 2 MiB above 4 MiB, to 4 MiB above 16 MiB), so that
/// requests of about the same size take buffers of one capacity. At most a
/// quarter more than asked above 4 MiB; pages past what a user fills are
/// not touched, so not resident, until a later user fills them.
fn class(len: usize) -> usize {
    let step = if len <= 4 * MIN {
        MIN
    } else if len <= 16 * MIN {
        2 * MIN
    } else {
        4 * MIN
    };
    len.div_ceil(step).saturating_mul(step)
}

impl Pool {
    const fn new(keep: usize) -> Pool {
        Pool {
            idle: Mutex::new(Idle {
                buffers: Vec::new(),
                takes: 0,
            }),
            keep,
        }
    }

    fn take(&self, len: usize) -> Vec<u8> {
        if len >= MIN {
            if let Ok(mut idle) = self.idle.lock() {
                let cap = class(len);
                idle.takes += 1;
                // The one given back last: the others age out.
                if let Some(i) = idle.buffers.iter().rposition(|(b, _)| b.capacity() == cap) {
                    let (mut buf, _) = idle.buffers.remove(i);
                    // Zeroes only past what its last user had.
                    buf.resize(len, 0);
                    return buf;
                }
                let now = idle.takes;
                idle.buffers.retain(|(_, given)| now - given <= STALE);
            }
            // Zeroed pages from the system, touched only as they are filled.
            let mut buf = vec![0u8; class(len)];
            buf.truncate(len);
            return buf;
        }
        vec![0u8; len]
    }

    fn give(&self, buf: Vec<u8>) {
        let cap = buf.capacity();
        // Only buffers of a class: another would never be taken again.
        if cap < MIN || class(cap) != cap {
            return;
        }
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        if cap > self.keep {
            return;
        }
        let now = idle.takes;
        idle.buffers.push((buf, now));
        // Room for it: those idle longest go.
        while idle.bytes() > self.keep {
            idle.buffers.remove(0);
        }
    }

    fn wrap(&'static self, buf: Vec<u8>) -> Bytes {
        if buf.capacity() < MIN {
            return Bytes::from(buf);
        }
        Bytes::from_owner(Recycled(buf, self))
    }
}

/// A buffer of exactly `len` bytes, of unspecified content (zeroes, or what
/// its last user left).
pub fn take(len: usize) -> Vec<u8> {
    POOL.take(len)
}

/// Returns a buffer from [`take`] (or any other) to the pool, or frees it
/// when it is small or the pool is full.
pub fn give(buf: Vec<u8>) {
    POOL.give(buf)
}

/// The buffer as [`Bytes`] that give it back to the pool when the last
/// clone of them is dropped.
pub fn into_bytes(buf: Vec<u8>) -> Bytes {
    POOL.wrap(buf)
}

/// A buffer that goes back to its pool when dropped.
struct Recycled(Vec<u8>, &'static Pool);

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        self.1.give(std::mem::take(&mut self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_across_threads_within_the_pool_limit() {
        let pool: &'static Pool = Box::leak(Box::new(Pool::new(32 << 20)));
        let idle = || pool.idle.lock().unwrap().bytes();

        // Small buffers bypass the pool.
        let small = pool.take(1000);
        assert_eq!(small.len(), 1000);
        pool.give(small);
        assert_eq!(idle(), 0);

        // A buffer given back on another thread serves the next request of
        // about its size, with the length asked for.
        let big = pool.take(3 << 20);
        assert_eq!(big.len(), 3 << 20);
        let ptr = big.as_ptr();
        std::thread::spawn(move || pool.give(big)).join().unwrap();
        let again = pool.take((3 << 20) - 5000);
        assert_eq!(again.len(), (3 << 20) - 5000);
        assert_eq!(again.as_ptr(), ptr, "the pooled buffer was not reused");

        // As Bytes, it goes back when the last slice of it is dropped.
        let bytes = pool.wrap(again);
        assert_eq!(bytes.len(), (3 << 20) - 5000);
        let slice = bytes.slice(10..20);
        drop(bytes);
        assert_eq!(idle(), 0, "back in the pool while a slice is alive");
        drop(slice);
        assert_eq!(idle(), 3 << 20);

        // Another size class: not reused (it would waste memory), and kept
        // idle beside the new one, within the limit.
        let other = pool.take(MIN);
        assert_eq!(other.len(), MIN);
        assert_ne!(other.as_ptr(), ptr, "a 3 MiB buffer served a 1 MiB request");
        assert_eq!(idle(), 3 << 20);
        pool.give(other);
        assert_eq!(idle(), 4 << 20);

        // Classes: whole MiBs up to 4 MiB, 2 MiB steps up to 16, then 4.
        assert_eq!(class(MIN + 1), 2 << 20);
        assert_eq!(class(4 << 20), 4 << 20);
        assert_eq!(class((4 << 20) + 1), 6 << 20);
        assert_eq!(class((16 << 20) + 1), 20 << 20);
        // A request of a class's size, or just under it, takes that class.
        let nine = pool.take((9 << 20) + 123);
        assert_eq!(nine.capacity(), 10 << 20);
        let ptr = nine.as_ptr();
        pool.give(nine);
        let ten = pool.take(10 << 20);
        assert_eq!((ten.len(), ten.as_ptr()), (10 << 20, ptr));
        pool.give(ten);
        assert_eq!(idle(), 14 << 20);
        // A buffer of no class is not kept (no request would take it).
        pool.give(vec![0u8; (3 << 20) + 5]);
        assert_eq!(idle(), 14 << 20);
        pool.idle.lock().unwrap().buffers.clear();

        // The pool keeps at most its limit: the buffers given back last.
        let many: Vec<_> = (0..8).map(|_| pool.take(8 << 20)).collect();
        let last: Vec<*const u8> = many[4..].iter().map(|b| b.as_ptr()).collect();
        for b in many {
            pool.give(b);
        }
        assert_eq!(idle(), 32 << 20);
        let kept: Vec<*const u8> = (pool.idle.lock().unwrap().buffers.iter())
            .map(|(b, _)| b.as_ptr())
            .collect();
        assert_eq!(kept, last);

        // A class nobody asks for any more is freed once it has sat idle
        // through STALE requests, at the next request it does not fit.
        pool.idle.lock().unwrap().buffers.clear();
        pool.give(pool.take(2 << 20));
        for _ in 0..STALE {
            pool.give(pool.take(8 << 20));
        }
        assert_eq!(idle(), 10 << 20, "freed before it was stale");
        let one = pool.take(MIN);
        assert_eq!(idle(), 8 << 20, "the stale 2 MiB buffer is still idle");
        drop(one);
    }
}
