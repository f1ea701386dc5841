use super::interface::CounterStrategy;
use crate::counter::shards;
use std::fmt;

/// Per-CPU padded shards incremented with a locked `fetch_add`: what
/// [`Counter`](crate::Counter) does where restartable sequences are
/// unavailable, kept as its own strategy so the study can compare the
/// locked and the rseq increment on one machine.
///
/// ```
/// use metricz::strategy::{CounterStrategy, LockedPerCpuCounter};
/// let c = LockedPerCpuCounter::new();
/// c.add(3);
/// assert_eq!(c.take(), 3);
/// assert_eq!(c.get(), 0);
/// ```
pub struct LockedPerCpuCounter {
    shards: Box<[shards::Shard]>,
}

impl LockedPerCpuCounter {
    /// A counter at zero with the default shard count.
    pub fn new() -> Self {
        Self::with_shards(shards::default_count())
    }

    /// A counter at zero with `shards` shards (rounded up to a power of two,
    /// clamped to `1..=65536`).
    pub fn with_shards(shards: usize) -> Self {
        LockedPerCpuCounter {
            shards: shards::new(shards::normalize(shards)),
        }
    }
}

impl Default for LockedPerCpuCounter {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for LockedPerCpuCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockedPerCpuCounter")
            .field("value", &self.get())
            .field("shards", &self.shards.len())
            .finish()
    }
}

impl CounterStrategy for LockedPerCpuCounter {
    const NAME: &'static str = "per-cpu-locked";

    #[inline]
    fn add(&self, n: u64) {
        shards::add_here(&self.shards, n);
    }

    fn get(&self) -> u64 {
        shards::sum(&self.shards)
    }

    fn take(&self) -> u64 {
        shards::take(&self.shards)
    }
}
