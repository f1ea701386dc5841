use super::arena::{self, Arena, Lease, Row};
use super::rseq;
use super::shards::{self, Extra};
use crate::primitive::{
    Arc, AtomicPtr, AtomicU64,
    Ordering::{Acquire, Relaxed},
};
use std::fmt;
use std::ptr::NonNull;

/// A monotonic counter sharded per CPU: the default counter of metricz.
///
/// Each increment adds to the shard of the CPU the thread runs on: an
/// unlocked add inside a restartable sequence where glibc registered rseq and
/// every CPU has its own shard, otherwise one relaxed `fetch_add` on the
/// shard [`cpu::current`](crate::cpu::current) names. Threads on different
/// CPUs never contend for a cache line. Shards are padded to [`CachePadded`](crossbeam_utils::CachePadded)
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
    /// Where shard `i`'s word is.
    words: Words,
    /// Shards − 1 (the count is a power of two).
    mask: usize,
    /// Whether there is a shard for every possible CPU, so increments may
    /// use restartable sequences (decided at creation; never changes, so a
    /// shard is written either only by rseq sequences or only by locked
    /// adds).
    per_cpu: bool,
    /// The fallback word and the take baseline, inside `storage`.
    extra: NonNull<Extra>,
    /// Keeps the words behind `words` and `extra` alive.
    storage: Storage,
}

/// How a [`Counter`] reaches shard `i`'s word.
#[derive(Clone, Copy)]
enum Words {
    /// A standalone counter: the word `i × stride` bytes after `base`
    /// (shard 0's word, with the provenance of the whole shard array).
    Strided {
        base: NonNull<AtomicU64>,
        stride: usize,
    },
    /// An arena slot: word `slot` of the row that entry `i` of the chunk's
    /// row directory (`rows`, with the provenance of every entry) points
    /// to, once that CPU's row is installed; an absent row holds zero.
    Rows {
        rows: NonNull<AtomicPtr<Row>>,
        slot: usize,
    },
}

/// A standalone counter's storage.
struct Padded {
    shards: Box<[shards::Shard]>,
    extra: Extra,
}

/// What a [`Counter`]'s words live in.
#[derive(Clone)]
enum Storage {
    /// Its own array of cache-line-padded shards (held to keep them alive;
    /// `words` and `extra` point into it).
    Padded(#[allow(dead_code)] Arc<Padded>),
    /// A slot of a per-CPU arena (8 bytes per shard that recorded), given
    /// back when the last handle drops.
    Arena(Arc<Lease>),
}

// SAFETY: a `Counter` only reaches `AtomicU64`s (which are `Sync`) through
// `words` (a padded shard array, or an arena chunk's row directory, whose
// entries are `AtomicPtr`s, and the rows they point to) and `extra`, and
// `storage` (itself `Send + Sync`) keeps all of them alive for as long as
// the counter exists.
unsafe impl Send for Counter {}
// SAFETY: as for `Send`; every access is atomic (or an rseq commit, see
// `add`; a row is installed by CAS).
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
            words: Words::Strided {
                base,
                stride: std::mem::size_of::<shards::Shard>(),
            },
            mask: padded.shards.len() - 1,
            per_cpu: shards::covers_every_cpu(padded.shards.len()),
            extra: NonNull::from(&padded.extra),
            storage: Storage::Padded(padded),
        }
    }

    /// A zeroed counter in a slot of `arena` (shard `i` is the slot's word
    /// in row `i`, installed on the first write from CPU `i`), or a
    /// standalone counter with as many shards once the arena is full.
    pub(crate) fn in_arena(arena: &Arc<Arena>) -> Self {
        let Some(lease) = arena.lease() else {
            return Counter::with_shards(arena.shards());
        };
        let shards = arena.shards();
        debug_assert!(shards.is_power_of_two());
        Counter {
            words: Words::Rows {
                // Carries the provenance of every directory entry.
                rows: lease.rows(),
                slot: lease.position().1,
            },
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
            .map(|i| self.shard(i).map_or(0, |w| w.load(Relaxed)))
            .collect();
        (shards, self.extra().fallback.load(Relaxed))
    }

    /// Adds `n` to shard `shard` (masked to the shard count) with a locked
    /// add, installing its arena row if it has none: as if a thread on that
    /// CPU had written. For benches and tests that need the rows of CPUs
    /// the machine does not have (a scrape of 256 written rows on a 2-CPU
    /// machine); it must not race increments of the same counter. A test
    /// hook (feature `test-hooks`), not part of the API.
    #[doc(hidden)]
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn add_to_shard(&self, shard: usize, n: u64) {
        self.shard_or_install(shard & self.mask)
            .fetch_add(n, Relaxed);
    }

    /// Bytes of counter storage this handle can reach: shards × stride for
    /// a standalone counter, shards × 8 bytes for an arena slot, of which
    /// only the words of CPUs that wrote to its chunk exist (the fallback
    /// word and baseline, 16 bytes, not counted).
    pub fn storage_bytes(&self) -> usize {
        match self.words {
            Words::Strided { stride, .. } => self.shards() * stride,
            Words::Rows { .. } => self.shards() * std::mem::size_of::<u64>(),
        }
    }

    /// Shard `i`'s word, or `None` for an arena row not installed yet
    /// (which holds zero).
    #[inline]
    fn shard(&self, i: usize) -> Option<&AtomicU64> {
        debug_assert!(i <= self.mask);
        match self.words {
            // SAFETY: `i <= mask`, and `mask + 1` is the padded array's
            // length; shard `i` is the word `i × stride` bytes after `base`,
            // inside the array `storage` keeps alive.
            Words::Strided { base, stride } => Some(unsafe {
                &*base
                    .as_ptr()
                    .cast::<u8>()
                    .add(i * stride)
                    .cast::<AtomicU64>()
            }),
            Words::Rows { rows, slot } => {
                // SAFETY: an entry of this counter's chunk's directory.
                unsafe { arena::installed(self.row_entry(rows, i)) }.map(|row| row.word(slot))
            }
        }
    }

    /// Shard `i`'s word, installing its arena row if it has none yet.
    #[inline]
    fn shard_or_install(&self, i: usize) -> &AtomicU64 {
        match self.words {
            Words::Strided { .. } => self.shard(i).expect("padded shards all exist"),
            Words::Rows { rows, slot } => {
                // SAFETY: an entry of this counter's chunk's directory.
                unsafe { arena::row(self.row_entry(rows, i)) }.word(slot)
            }
        }
    }

    /// Entry `i` of the row directory `rows` (this counter's chunk's).
    #[inline]
    fn row_entry(&self, rows: NonNull<AtomicPtr<Row>>, i: usize) -> &AtomicPtr<Row> {
        debug_assert!(i <= self.mask);
        // SAFETY: `in_arena` took `rows` from the directory of the chunk
        // the lease in `storage` is in, which has one entry per shard of
        // the arena (`mask + 1` of them, from the same arena), and
        // `i <= mask`; the lease keeps the arena, and so the chunk, alive.
        unsafe { &*rows.as_ptr().add(i) }
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
    ///
    /// A registry counter's first increment from a CPU to its arena chunk
    /// (512 series share one) allocates that CPU's 4 KiB row; every later
    /// one allocates nothing. So an increment from a signal handler, where
    /// allocating is not allowed, is safe only on a CPU that has already
    /// written to the chunk (or on a standalone counter, which never
    /// allocates).
    #[inline(always)]
    pub fn add(&self, n: u64) {
        // The common case inline: one restartable sequence. Everything
        // else (the fallback word, a row to install, locked adds where the
        // process has no rseq) is out of line, so `inc` stays small enough
        // to inline into callers.
        if self.per_cpu && self.add_rseq(n) {
            return;
        }
        self.add_slow(n);
    }

    /// One restartable-sequence add to the current CPU's word; false
    /// (nothing written) when it could not commit: the process has no
    /// rseq, the thread no registration or a CPU past the shards, or (an
    /// arena slot) the CPU has no row yet. Only for `per_cpu` counters.
    #[inline(always)]
    fn add_rseq(&self, n: u64) -> bool {
        match self.words {
            Words::Strided { base, stride } => {
                // SAFETY: shards `0..shards()` are `AtomicU64`s at `base + i
                // × stride`, kept alive by `storage`. Whether the process
                // uses rseq is decided once and `per_cpu` at creation, so
                // while this counter uses rseq, its shards are written only
                // by rseq sequences (fallbacks go to `extra`), as
                // `rseq::add` requires.
                let added = unsafe { rseq::add(base.as_ptr(), stride, self.shards(), n) };
                added == rseq::Added::Yes
            }
            Words::Rows { rows, slot } => {
                // SAFETY: `rows` is this counter's chunk's directory, with
                // `shards()` entries (see `row_entry`), each null or an
                // installed row of `SLOTS` words (> `slot`) that stays
                // installed while `storage` keeps the arena alive; an entry
                // changes only from null to a row, by the Release CAS in
                // `arena::install_row`. While this counter uses rseq
                // (decided as above) its words are written only by these
                // sequences (fallbacks go to `extra`), apart from the
                // lease's zeroing, ordered before the counter was published
                // (see `counter::arena`).
                let added = unsafe { rseq::add_row(rows.as_ptr().cast(), slot, self.shards(), n) };
                added == rseq::RowAdded::Yes
            }
        }
    }

    /// `add` when [`add_rseq`](Self::add_rseq) did not commit (or the
    /// counter does not use rseq): the fallback word, or the missing row
    /// installed and the sequence run again, or a locked add where the
    /// process has no rseq or the counter too few shards.
    #[cold]
    #[inline(never)]
    fn add_slow(&self, n: u64) {
        if self.per_cpu {
            loop {
                let missing = match self.words {
                    Words::Strided { base, stride } => {
                        // SAFETY: as in `add_rseq`.
                        let added = unsafe { rseq::add(base.as_ptr(), stride, self.shards(), n) };
                        match added {
                            rseq::Added::Yes => return,
                            rseq::Added::Fallback => None,
                            rseq::Added::Unavailable => break,
                        }
                    }
                    Words::Rows { rows, slot } => {
                        // SAFETY: as in `add_rseq`.
                        let added =
                            unsafe { rseq::add_row(rows.as_ptr().cast(), slot, self.shards(), n) };
                        match added {
                            rseq::RowAdded::Yes => return,
                            rseq::RowAdded::Fallback => None,
                            rseq::RowAdded::Missing(cpu) => Some((rows, cpu)),
                            rseq::RowAdded::Unavailable => break,
                        }
                    }
                };
                match missing {
                    // The CPU's first write to the chunk: install its row,
                    // then run the sequence again.
                    Some((rows, cpu)) => {
                        // SAFETY: an entry of this counter's chunk's
                        // directory (`cpu` < `shards()`, per `add_row`).
                        unsafe { arena::row(self.row_entry(rows, cpu as usize)) };
                    }
                    None => {
                        // No registration of its own, or a CPU past the
                        // shards: the separate locked word. Relaxed: a
                        // tally, like the shards.
                        self.extra().fallback.fetch_add(n, Relaxed);
                        return;
                    }
                }
            }
        }
        // Relaxed: a shard is a plain tally; nothing else is published
        // through it.
        self.shard_or_install(crate::cpu::current() & self.mask)
            .fetch_add(n, Relaxed);
    }

    /// Everything ever added: the wrapping sum of the shards and the
    /// fallback word.
    fn total(&self) -> u64 {
        // Relaxed: the sum is not a snapshot (see the counter module docs).
        (0..=self.mask).fold(self.extra().fallback.load(Relaxed), |acc, i| {
            acc.wrapping_add(self.shard(i).map_or(0, |w| w.load(Relaxed)))
        })
    }

    /// The count since creation or the last [`take`](Self::take): the
    /// wrapping sum of the shards, less what was taken.
    pub fn get(&self) -> u64 {
        shards::get_by_baseline(&self.extra().baseline, || self.total())
    }

    /// The count as [`get`](Self::get) reports it, with the slot's words
    /// read from `totals`, the row sums of `arena` ([`Arena::sum_rows`],
    /// taken while this counter already held its slot), when the counter is
    /// a slot of `arena` that was never taken from; otherwise `get`.
    ///
    /// The fallback word is read now. A counter with a baseline reads its
    /// words now too: a take that ran after the sums would have claimed
    /// more than they hold, and the difference would wrap. (A zero
    /// baseline is taken as "never taken": a take that lands between the
    /// sums and this read at a total ≡ 0 mod 2<sup>64</sup> — a counter
    /// that wrapped — would go unnoticed, and the sums be reported whole.)
    pub(crate) fn get_summed(&self, arena: &Arena, totals: &[u64]) -> u64 {
        let Storage::Arena(lease) = &self.storage else {
            return self.get();
        };
        let (chunk, slot) = lease.position();
        let summed = totals.get(chunk * arena::SLOTS + slot);
        match summed {
            // Acquire pairs with the Release CAS of a take, as in `get`; a
            // zero baseline means no take has claimed anything yet.
            Some(&total) if lease.is_in(arena) && self.extra().baseline.load(Acquire) == 0 => {
                total.wrapping_add(self.extra().fallback.load(Relaxed))
            }
            _ => self.get(),
        }
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
        // The slot comes back zeroed on every row. (Leases search from the
        // bitmap word of the CPU they run on, so take slots until it is
        // handed out again; the chunk has 512.)
        let held: Vec<_> = (0..super::arena::SLOTS).map(|_| arena.counter()).collect();
        let d = held
            .iter()
            .find(|d| d.arena_slot() == slot)
            .expect("the freed slot is leased again");
        assert_eq!(d.get(), 0);
        assert!(held.iter().all(|d| d.get() == 0));
    }
}
