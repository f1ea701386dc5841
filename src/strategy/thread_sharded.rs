use super::interface::CounterStrategy;
use crate::counter::shards;
use crate::primitive::Ordering::Relaxed;

/// Padded shards picked by the thread's dense index rather than its CPU.
///
/// Cheaper to index than a CPU lookup and free of migration effects, but
/// threads whose indices collide under the mask share a shard however many
/// CPUs are idle, and more threads than shards always collide.
///
/// ```
/// use metricz::strategy::{CounterStrategy, ThreadShardedCounter};
/// let c = ThreadShardedCounter::with_shards(4);
/// c.add(2);
/// assert_eq!(c.get(), 2);
/// ```
#[derive(Debug)]
pub struct ThreadShardedCounter {
    shards: Box<[shards::Shard]>,
}

impl ThreadShardedCounter {
    /// A counter with the default shard count (as [`Counter::new`](crate::Counter::new)).
    pub fn new() -> Self {
        Self::with_shards(shards::default_count())
    }

    /// A counter with `shards` shards, rounded up to a power of two and
    /// clamped to `1..=65536`.
    pub fn with_shards(shards: usize) -> Self {
        ThreadShardedCounter {
            shards: shards::new(shards::normalize(shards)),
        }
    }
}

impl Default for ThreadShardedCounter {
    fn default() -> Self {
        Self::new()
    }
}

impl CounterStrategy for ThreadShardedCounter {
    const NAME: &'static str = "thread-sharded";

    #[inline]
    fn add(&self, n: u64) {
        let shard = crate::cpu::thread_index() & (self.shards.len() - 1);
        self.shards[shard].fetch_add(n, Relaxed);
    }

    fn get(&self) -> u64 {
        shards::sum(&self.shards)
    }

    fn take(&self) -> u64 {
        shards::take(&self.shards)
    }
}
