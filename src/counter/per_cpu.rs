use super::{shards, CounterStrategy};
use crate::primitive::Arc;
use std::fmt;

/// A monotonic counter sharded per CPU: the default counter of metricz.
///
/// Each increment is one relaxed `fetch_add` on the shard of the CPU the
/// thread runs on ([`cpu::current`](crate::cpu::current): an rseq read where
/// glibc registered one), so threads on different CPUs never contend for a
/// cache line. Shards are padded to [`CachePadded`](crossbeam_utils::CachePadded)
/// (128 bytes on x86_64) and are a power of two in number: by default the next
/// power of two of the available parallelism, or chosen with
/// [`with_shards`](Self::with_shards). CPU ids are masked to the shard count,
/// so CPUs whose ids differ by a multiple of it share a shard (still correct,
/// only contended).
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
    shards: Arc<[shards::Shard]>,
}

impl Counter {
    /// A counter at zero with the default shard count: the next power of two
    /// of [`std::thread::available_parallelism`].
    pub fn new() -> Self {
        Self::with_shards(shards::default_count())
    }

    /// A counter at zero with `shards` shards, rounded up to a power of two
    /// and clamped to `1..=65536` (0 gives one shard).
    pub fn with_shards(shards: usize) -> Self {
        Counter {
            shards: shards::new(shards::normalize(shards)),
        }
    }

    /// The number of shards.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`, wrapping at 2<sup>64</sup>.
    #[inline]
    pub fn add(&self, n: u64) {
        shards::add_here(&self.shards, n);
    }

    /// The count since creation or the last [`take`](Self::take): the
    /// wrapping sum of the shards.
    pub fn get(&self) -> u64 {
        shards::sum(&self.shards)
    }

    /// Returns the count and resets it to zero, shard by shard with an atomic
    /// swap; no racing increment is lost or counted twice.
    pub fn take(&self) -> u64 {
        shards::take(&self.shards)
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

impl CounterStrategy for Counter {
    const NAME: &'static str = "per-cpu";

    #[inline]
    fn add(&self, n: u64) {
        Counter::add(self, n);
    }

    fn get(&self) -> u64 {
        Counter::get(self)
    }

    fn take(&self) -> u64 {
        Counter::take(self)
    }
}
