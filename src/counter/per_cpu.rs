use super::arena::{Arena, Lease};
use super::shards::{self, Extra};
use crate::primitive::{Arc, AtomicU64, Ordering::Relaxed};
use std::fmt;
use std::ptr::NonNull;

/// A monotonic counter sharded per CPU: the default counter of metricz.
///
/// Each increment is one relaxed `fetch_add` on the shard of the CPU the
/// thread runs on ([`cpu::current`](crate::cpu::current): an rseq read where
/// glibc registered one), so threads on different CPUs never contend for a
/// cache line. Shards are padded to [`CachePadded`](crossbeam_utils::CachePadded)
/// (128 bytes on x86_64) and are a power of two in number: by default the next
/// power of two of the CPUs the machine can have (its *possible* CPUs, so
/// every CPU id has its own shard whatever thread created the counter), or
/// chosen with [`with_shards`](Self::with_shards). With fewer shards than
/// possible CPUs, CPU ids are masked to the shard count, so CPUs whose ids
/// differ by a multiple of it share a shard, and increments are locked
/// `fetch_add`s on it (still correct, only contended): a restartable
/// sequence needs a shard no other CPU writes.
///
/// Cloning is cheap and the clone shares the same counter.
///
/// Reads sum the shards and are not linearizable; overflow wraps at
/// 2<sup>64</sup>. See the [counter module docs](crate::counter) for both.
///
/// ```
/// use metricz::Counter;
///
/// let requests = Counter::new();
/// let handle = requests.clone(); // shares the same counter
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| {
///             for _ in 0..1000 {
///                 handle.inc();
///             }
///         });
///     }
/// });
/// requests.add(5);
/// assert_eq!(requests.get(), 4005);
/// assert_eq!(requests.take(), 4005);
/// assert_eq!(requests.get(), 0);
/// ```
#[derive(Clone)]
pub struct Counter {
    /// Shard 0's word.
    base: NonNull<AtomicU64>,
    /// Bytes from one shard's word to the next: a padded shard for a
    /// standalone counter, an arena row for a registry counter.
    stride: usize,
    /// Shards − 1 (the count is a power of two).
    mask: usize,
    /// Whether there is a shard for every possible CPU, so increments may
    /// use restartable sequences (decided at creation; never changes, so a
    /// shard is written either only by rseq sequences or only by locked
    /// adds).
    per_cpu: bool,
    /// The fallback word and the take baseline, inside `storage`.
    extra: NonNull<Extra>,
    /// Keeps the words behind `base` and `extra` alive.
    storage: Storage,
}

/// A standalone counter's storage.
struct Padded {
    shards: Box<[shards::Shard]>,
    extra: Extra,
}

/// What a [`Counter`]'s words live in.
#[derive(Clone)]
enum Storage {
    /// Its own array of cache-line-padded shards.
    Padded(Arc<Padded>),
    /// A slot of a per-CPU arena (8 bytes per shard), given back when the
    /// last handle drops. Held for that: only the test hook `arena_slot`
    /// reads it.
    Arena(#[cfg_attr(not(any(test, feature = "test-hooks")), allow(dead_code))] Arc<Lease>),
}

// SAFETY: a `Counter` only reaches `AtomicU64`s (which are `Sync`) through
// `base` and `extra`, and `storage` (itself `Send + Sync`) keeps them alive
// for as long as the counter exists.
unsafe impl Send for Counter {}
// SAFETY: as for `Send`; every access is atomic (or an rseq commit, see
// `add`).
unsafe impl Sync for Counter {}

impl Counter {
    /// A counter at zero with the default shard count: the next power of two
    /// of the CPUs the machine can have (see the [type docs](Self)).
    pub fn new() -> Self {
        Self::with_shards(shards::default_count())
    }

    /// A counter at zero with `shards` shards, rounded up to a power of two
    /// and clamped to `1..=65536` (0 gives one shard). Fewer shards than
    /// the machine's possible CPUs mask CPU ids onto the shards and
    /// increment them with locked adds (see the [type docs](Self)).
    pub fn with_shards(shards: usize) -> Self {
        let padded = Arc::new(Padded {
            shards: shards::new(shards::normalize(shards)),
            extra: Extra::default(),
        });
        // `base` carries the provenance of the whole shard array, not of
        // shard 0's word: `shard(i)` reaches shard `i` through it.
        let base = shards::base(&padded.shards);
        Counter {
            base,
            stride: std::mem::size_of::<shards::Shard>(),
            mask: padded.shards.len() - 1,
            per_cpu: shards::covers_every_cpu(padded.shards.len()),
            extra: NonNull::from(&padded.extra),
            storage: Storage::Padded(padded),
        }
    }

    /// A zeroed counter in a slot of `arena` (shard `i` is the slot's word
    /// in row `i`), or a standalone counter with as many shards once the
    /// arena is full.
    pub(crate) fn in_arena(arena: &Arc<Arena>) -> Self {
        let Some(lease) = arena.lease() else {
            return Counter::with_shards(arena.shards());
        };
        let shards = arena.shards();
        debug_assert!(shards.is_power_of_two());
        Counter {
            // Carries the provenance of every row's word, not only row 0's.
            base: lease.first(),
            stride: Lease::STRIDE,
            mask: shards - 1,
            per_cpu: shards::covers_every_cpu(shards),
            extra: NonNull::from(&lease.extra),
            storage: Storage::Arena(lease),
        }
    }

    /// The number of shards.
    pub fn shards(&self) -> usize {
        self.mask + 1
    }

    /// Where the counter's words live: `Some((chunk, slot))` for a slot of a
    /// registry's per-CPU arena, `None` for its own padded shards. A test
    /// hook (feature `test-hooks`), not part of the API.
    #[doc(hidden)]
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn arena_slot(&self) -> Option<(usize, usize)> {
        match &self.storage {
            Storage::Padded(_) => None,
            Storage::Arena(lease) => Some(lease.position()),
        }
    }

    /// What each shard holds, then the fallback word (for tests of where
    /// increments land; reads are Relaxed, like [`get`](Self::get)). A test
    /// hook (feature `test-hooks`), not part of the API.
    #[doc(hidden)]
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn shard_values(&self) -> (Vec<u64>, u64) {
        let shards = (0..=self.mask)
            .map(|i| self.shard(i).load(Relaxed))
            .collect();
        (shards, self.extra().fallback.load(Relaxed))
    }

    /// Bytes of counter storage this handle reaches: shards × stride for a
    /// standalone counter, shards × 8 bytes for an arena slot (the fallback
    /// word and baseline, 16 bytes, not counted).
    pub fn storage_bytes(&self) -> usize {
        match self.storage {
            Storage::Padded(ref padded) => padded.shards.len() * self.stride,
            Storage::Arena(_) => self.shards() * std::mem::size_of::<u64>(),
        }
    }

    #[inline]
    fn shard(&self, i: usize) -> &AtomicU64 {
        debug_assert!(i <= self.mask);
        // SAFETY: `i <= mask`, and `mask + 1` is the number of shards of
        // the layout `base` was taken from: the padded array's length, or
        // the arena's rows (`in_arena` takes `mask` from the same arena
        // whose chunk `lease.first()` points into, and a chunk has one row
        // per shard, at least one). Shard `i` of both layouts is the word
        // `i × stride` bytes after `base`, inside the allocation `storage`
        // keeps alive (the padded array, or the arena chunk, which lives as
        // long as the arena the lease holds).
        unsafe {
            &*self
                .base
                .as_ptr()
                .cast::<u8>()
                .add(i * self.stride)
                .cast::<AtomicU64>()
        }
    }

    #[inline]
    fn extra(&self) -> &Extra {
        // SAFETY: `extra` points into the `Padded` or `Lease` that
        // `storage` keeps alive.
        unsafe { self.extra.as_ref() }
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`, wrapping at 2<sup>64</sup>.
    ///
    /// Where the process increments with restartable sequences
    /// ([`rseq::available`](crate::counter::rseq::available)) and the
    /// counter has a shard for every possible CPU, this is an unlocked
    /// load-add-store on the current CPU's shard that the kernel restarts if
    /// the thread is preempted, migrated or signalled inside it; a thread
    /// that cannot (no registration of its own) adds to a separate locked
    /// fallback word, never to a shard. Elsewhere (no rseq, or fewer shards
    /// than CPUs) it is a relaxed `fetch_add` on the shard of the current
    /// CPU, masked to the shard count.
    #[inline]
    pub fn add(&self, n: u64) {
        if self.per_cpu {
            // SAFETY: shards `0..shards()` are `AtomicU64`s at `base + i ×
            // stride`, kept alive by `storage`. Whether the process uses rseq
            // is decided once and `per_cpu` at creation, so while this
            // counter uses rseq, its shards are written only by rseq
            // sequences (fallbacks go to `extra`), as `rseq::add` requires.
            match unsafe { super::rseq::add(self.base.as_ptr(), self.stride, self.shards(), n) } {
                super::rseq::Added::Yes => return,
                super::rseq::Added::Fallback => {
                    // Relaxed: a tally, like the shards.
                    self.extra().fallback.fetch_add(n, Relaxed);
                    return;
                }
                super::rseq::Added::Unavailable => {}
            }
        }
        // Relaxed: a shard is a plain tally; nothing else is published
        // through it.
        self.shard(crate::cpu::current() & self.mask)
            .fetch_add(n, Relaxed);
    }

    /// Everything ever added: the wrapping sum of the shards and the
    /// fallback word.
    fn total(&self) -> u64 {
        // Relaxed: the sum is not a snapshot (see the counter module docs).
        (0..=self.mask).fold(self.extra().fallback.load(Relaxed), |acc, i| {
            acc.wrapping_add(self.shard(i).load(Relaxed))
        })
    }

    /// The count since creation or the last [`take`](Self::take): the
    /// wrapping sum of the shards, less what was taken.
    pub fn get(&self) -> u64 {
        shards::get_by_baseline(&self.extra().baseline, || self.total())
    }

    /// Returns the count and resets it to zero; no racing increment is lost
    /// or counted twice. It works by baseline: the total is read and the
    /// part not yet taken is claimed with one CAS on the baseline (shards
    /// are never swapped: an rseq shard must only be written by its CPU).
    pub fn take(&self) -> u64 {
        shards::take_by_baseline(&self.extra().baseline, || self.total())
    }
}

impl Default for Counter {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Counter")
            .field("value", &self.get())
            .field("shards", &self.shards())
            .finish()
    }
}

impl Arena {
    /// A zeroed counter in a slot of this arena, or a standalone counter
    /// once it is full: [`Counter::in_arena`], under the name the registry
    /// calls. (Here rather than in `arena.rs`, which does not know
    /// `Counter`.)
    pub(crate) fn counter(self: &Arc<Self>) -> Counter {
        Counter::in_arena(self)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Arena;

    /// An arena counter reaches every row through its base pointer. Under
    /// Miri's Stacked Borrows (scripts/miri) this failed while the base was
    /// taken from a reference to row 0's word: reading row 1 through it was
    /// outside that reference's provenance. The registry's tests cannot show
    /// it there, since crossbeam-epoch 0.9 itself fails Stacked Borrows.
    #[test]
    fn arena_counter_reaches_every_row() {
        let arena = Arena::new(4);
        let c = arena.counter();
        assert!(c.arena_slot().is_some());
        std::thread::scope(|s| {
            for t in 1..=4u64 {
                let c = &c;
                s.spawn(move || c.add(t));
            }
        });
        c.add(100);
        assert_eq!(c.get(), 110);
        assert_eq!(c.take(), 110);
        assert_eq!(c.get(), 0);
        let slot = c.arena_slot();
        drop(c);
        // The slot comes back zeroed on every row.
        let d = arena.counter();
        assert_eq!(d.arena_slot(), slot);
        assert_eq!(d.get(), 0);
    }
}
