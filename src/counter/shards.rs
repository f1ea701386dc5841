//! Cache-line-padded shard arrays, shared by the sharded counters and gauges.

use crate::primitive::{AtomicU64, Ordering::Relaxed};
use crossbeam_utils::CachePadded;

/// One shard: a counter word alone on its cache line(s), so that shards
/// written by different CPUs never falsely share.
pub(crate) type Shard = CachePadded<AtomicU64>;

/// Most shards a structure may have; requests above it are clamped.
pub(crate) const MAX_SHARDS: usize = 1 << 16;

/// The default shard count: the next power of two of the available
/// parallelism (2 under loom).
pub(crate) fn default_count() -> usize {
    normalize(crate::primitive::available_parallelism())
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
