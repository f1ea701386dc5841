use super::interface::CounterStrategy;
use crate::primitive::{AtomicU64, Ordering::Relaxed};

/// One shared `AtomicU64`: the baseline every sharded strategy is measured
/// against.
///
/// Cheapest to read and smallest (8 bytes), but every increment from every
/// thread is a locked read-modify-write on the same cache line, so throughput
/// falls as writers are added.
///
/// ```
/// use metricz::strategy::{AtomicCounter, CounterStrategy};
/// let c = AtomicCounter::new();
/// c.add(3);
/// c.inc();
/// assert_eq!(c.take(), 4);
/// assert_eq!(c.get(), 0);
/// ```
#[derive(Debug, Default)]
pub struct AtomicCounter {
    value: AtomicU64,
}

impl AtomicCounter {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }
}

impl CounterStrategy for AtomicCounter {
    const NAME: &'static str = "atomic";

    #[inline]
    fn add(&self, n: u64) {
        self.value.fetch_add(n, Relaxed);
    }

    fn get(&self) -> u64 {
        self.value.load(Relaxed)
    }

    fn take(&self) -> u64 {
        self.value.swap(0, Relaxed)
    }
}
