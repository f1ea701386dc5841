//! Cache-line-padded shard arrays, shared by the sharded counters and gauges,
//! and the words a `Counter` keeps besides its shards (its fallback word and
//! take baseline, in a padded counter or an arena lease alike).

use crate::primitive::{
    AtomicU64,
    Ordering::{AcqRel, Acquire, Relaxed},
};
use crossbeam_utils::CachePadded;
use std::ptr::NonNull;

/// One shard: a counter word alone on its cache line(s), so that shards
/// written by different CPUs never falsely share.
pub(crate) type Shard = CachePadded<AtomicU64>;

/// Most shards a structure may have; requests above it are clamped.
pub(crate) const MAX_SHARDS: usize = 1 << 16;

/// The default shard count: the next power of two of the CPU ids the
/// machine can have ([`possible_cpus`](crate::primitive::possible_cpus); 2
/// under loom), so that an rseq increment finds a shard for every CPU a
/// thread can run on.
pub(crate) fn default_count() -> usize {
    normalize(crate::primitive::possible_cpus())
}

/// Whether `count` shards give every possible CPU id its own shard (so an
/// rseq increment may use them); fewer are masked and take locked adds, and
/// so do all where the possible CPUs are only estimated (an id at or past
/// the estimate would otherwise fall to the one fallback word).
pub(crate) fn covers_every_cpu(count: usize) -> bool {
    crate::primitive::possible_cpus_exact() && count >= crate::primitive::possible_cpus()
}

/// Rounds a requested shard count to a power of two in `1..=MAX_SHARDS`.
pub(crate) fn normalize(requested: usize) -> usize {
    requested.clamp(1, MAX_SHARDS).next_power_of_two()
}

/// Allocates `count` zeroed shards; `count` must come from [`normalize`].
pub(crate) fn new<A: FromIterator<Shard>>(count: usize) -> A {
    debug_assert!(count.is_power_of_two());
    (0..count)
        .map(|_| CachePadded::new(AtomicU64::new(0)))
        .collect()
}

/// Adds `n` to the shard of the CPU the caller runs on. Relaxed: a shard is a
/// plain tally; nothing else is published through it.
#[inline]
/// Shard 0's word, as a pointer that carries the provenance of the whole
/// shard array: `base.byte_add(i × size_of::<Shard>())` may reach shard
/// `i`'s word. A pointer taken from `&*shards[0]` may only access those 8
/// bytes (Stacked and Tree Borrows: Miri reported the access to another
/// shard through one as undefined behaviour), and `shards.as_ptr().cast()`
/// assumes where `CachePadded` puts its field; so it is the array's pointer,
/// moved to shard 0's word.
///
/// `shards` must not be empty (counts come from [`normalize`], at least 1).
pub(crate) fn base(shards: &[Shard]) -> NonNull<AtomicU64> {
    let array = NonNull::from(shards).cast::<u8>();
    let first: *const AtomicU64 = &*shards[0];
    let offset = first.addr() - array.as_ptr().addr();
    // SAFETY: `first` is shard 0's word, inside the array `array` points
    // to, so `offset` bytes from `array` stays in that allocation.
    unsafe { array.add(offset) }.cast::<AtomicU64>()
}

pub(crate) fn add_here(shards: &[Shard], n: u64) {
    let shard = crate::cpu::current() & (shards.len() - 1);
    shards[shard].fetch_add(n, Relaxed);
}

/// The wrapping sum of all shards. Each load is Relaxed: the sum is not a
/// snapshot (see the counter module docs), and no other memory is published
/// through the shards.
pub(crate) fn sum(shards: &[Shard]) -> u64 {
    shards
        .iter()
        .fold(0u64, |acc, s| acc.wrapping_add(s.load(Relaxed)))
}

/// Swaps every shard to zero and returns the wrapping sum of what was there.
/// An add to a shard lands either before its swap (returned here) or after
/// it (left for the next read); the swap is one atomic read-modify-write, so
/// nothing falls in between.
pub(crate) fn take(shards: &[Shard]) -> u64 {
    shards
        .iter()
        .fold(0u64, |acc, s| acc.wrapping_add(s.swap(0, Relaxed)))
}

/// `take` by baseline, for counters whose shards must not be swapped (rseq
/// shards are written only by their CPU's sequences): reads the total and
/// claims the part not yet taken with one CAS on `baseline`, returning it.
/// Racing takes split the increments; each returned part is counted once.
pub(crate) fn take_by_baseline(baseline: &AtomicU64, total: impl Fn() -> u64) -> u64 {
    // Acquire pairs with the Release CAS below, of an earlier take.
    let mut taken = baseline.load(Acquire);
    loop {
        let now = total();
        // Release: a later take or get that reads this baseline reads the
        // shards at least as far as `now`; Acquire on failure pairs with the
        // winner's Release.
        match baseline.compare_exchange(taken, now, AcqRel, Acquire) {
            Ok(_) => return now.wrapping_sub(taken),
            Err(current) => taken = current,
        }
    }
}

/// The count not yet taken: `total()` less the baseline.
pub(crate) fn get_by_baseline(baseline: &AtomicU64, total: impl Fn() -> u64) -> u64 {
    // Acquire pairs with the Release CAS in `take_by_baseline`: the total
    // read next is at least what that take claimed.
    let taken = baseline.load(Acquire);
    total().wrapping_sub(taken)
}

/// A `Counter`'s words besides its shards, kept with its padded shards or in
/// its arena lease.
#[derive(Debug, Default)]
pub(crate) struct Extra {
    /// Increments that could not use an rseq slot (a thread without an
    /// rseq registration, or a CPU beyond the shards) while the process
    /// increments with rseq: a separate, locked word, never a shard.
    pub(crate) fallback: AtomicU64,
    /// The total at the last `take`; reads and takes report the total
    /// minus it.
    pub(crate) baseline: AtomicU64,
}
