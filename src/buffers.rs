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
//! [`take`] hands out a buffer from a process-wide pool when one of about
//! the right size is there (else a new one), and [`give`] (or dropping the
//! [`Bytes`] made by [`into_bytes`]) puts it back, on whichever thread that
//! happens. The pool keeps at most [`KEEP`] bytes; a buffer it has no room
//! for is freed, and so is the largest idle one when none fits a request
//! (before a new one is made): the buffers in use and in the pool together
//! stay near the most that was in use at once plus [`KEEP`]. That is what
//! peak memory grows by: the pool is never empty for long. At 16 MiB a
//! `verify --deep` of the large set peaked at 196-200 MB, at 8 MiB at
//! 178-180 MB, without it at 167-186 MB.

use std::sync::Mutex;

use bytes::Bytes;

/// Buffers smaller than this are left to the allocator: they come from its
/// arenas, without page faults once warm.
pub const MIN: usize = 1 << 20;

/// The most bytes of idle buffers the pool keeps.
pub const KEEP: usize = 8 << 20;

/// Idle buffers (their contents as their last user left them: a reuse
/// clears nothing) and the most bytes of them kept.
struct Pool {
    idle: Mutex<Vec<Vec<u8>>>,
    keep: usize,
}

static POOL: Pool = Pool::new(KEEP);

/// Whether a pooled buffer of `cap` bytes may serve a request of `len`:
/// large enough, and not so much larger that the waste would show.
fn fits(cap: usize, len: usize) -> bool {
    cap >= len && cap - len <= (len / 4).max(MIN)
}

impl Pool {
    const fn new(keep: usize) -> Pool {
        Pool {
            idle: Mutex::new(Vec::new()),
            keep,
        }
    }

    fn take(&self, len: usize) -> Vec<u8> {
        if len >= MIN {
            if let Ok(mut idle) = self.idle.lock() {
                let best = idle
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| fits(b.capacity(), len))
                    .min_by_key(|(_, b)| b.capacity())
                    .map(|(i, _)| i);
                if let Some(i) = best {
                    let mut buf = idle.swap_remove(i);
                    // Zeroes only past what its last user had (rarely).
                    buf.resize(len, 0);
                    return buf;
                }
                // None fits: free the largest idle one, so that buffers of
                // sizes nobody asks for any more do not add up beside the
                // new one.
                if let Some(i) = (0..idle.len()).max_by_key(|&i| idle[i].capacity()) {
                    drop(idle.swap_remove(i));
                }
            }
        }
        vec![0u8; len]
    }

    fn give(&self, buf: Vec<u8>) {
        let cap = buf.capacity();
        if cap < MIN {
            return;
        }
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        let kept: usize = idle.iter().map(Vec::capacity).sum();
        if kept + cap > self.keep {
            return;
        }
        idle.push(buf);
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
        let idle = || {
            pool.idle
                .lock()
                .unwrap()
                .iter()
                .map(Vec::capacity)
                .sum::<usize>()
        };

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

        // Far larger than asked: not reused (it would waste memory), and
        // freed, so that it does not stay beside the new one.
        let other = pool.take(MIN);
        assert_eq!(other.len(), MIN);
        assert_eq!(
            idle(),
            0,
            "the idle 3 MiB buffer was kept beside a new 1 MiB one"
        );
        pool.give(other);
        let fitting = pool.take(MIN + 1000);
        assert_eq!(fitting.len(), MIN + 1000);
        assert_eq!(idle(), 0);

        // The pool keeps at most its limit.
        let many: Vec<_> = (0..8).map(|_| pool.take(8 << 20)).collect();
        for b in many {
            pool.give(b);
        }
        assert_eq!(idle(), 32 << 20);
    }
}
