use super::interface::CounterStrategy;
use crate::counter::{rseq, shards};
use crate::primitive::{AtomicU64, Ordering::Relaxed};
use crossbeam_utils::CachePadded;
use std::fmt;

/// A counter that always increments with restartable sequences: one padded
/// slot per CPU the process may run on (no masking, so two CPUs never share
/// a slot), plus a separate locked fallback word for threads that cannot
/// (see [`counter::rseq`](crate::counter::rseq)); `take` works by baseline.
/// Where the process has no rseq at all, every increment goes to the
/// fallback word.
/// [`Counter`](crate::Counter) uses the same sequence by default; this type
/// is the study's pure form of it.
///
/// ```
/// use metricz::strategy::{CounterStrategy, RseqCounter};
/// let c = RseqCounter::new();
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| (0..1000).for_each(|_| c.inc()));
///     }
/// });
/// assert_eq!(c.take(), 4000);
/// assert_eq!(c.get(), 0);
/// ```
pub struct RseqCounter {
    slots: Box<[shards::Shard]>,
    fallback: CachePadded<AtomicU64>,
    baseline: AtomicU64,
}

impl RseqCounter {
    /// A counter at zero with one slot per CPU id the process may run on.
    pub fn new() -> Self {
        RseqCounter {
            slots: shards::new(shards::normalize(crate::primitive::possible_cpus())),
            fallback: CachePadded::new(AtomicU64::new(0)),
            baseline: AtomicU64::new(0),
        }
    }

    fn total(&self) -> u64 {
        // Relaxed: a tally; the sum is not a snapshot.
        self.slots
            .iter()
            .fold(self.fallback.load(Relaxed), |acc, s| {
                acc.wrapping_add(s.load(Relaxed))
            })
    }
}

impl Default for RseqCounter {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for RseqCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RseqCounter")
            .field("value", &self.get())
            .field("slots", &self.slots.len())
            .finish()
    }
}

impl CounterStrategy for RseqCounter {
    const NAME: &'static str = "rseq";

    #[inline]
    fn add(&self, n: u64) {
        // SAFETY: the slots are padded `AtomicU64`s, `size_of::<Shard>()`
        // apart, owned by `self`, and written only here (fallbacks go to the
        // separate word); the pointer is slot 0's word with the provenance
        // of the whole slot array (`shards::base`), so the sequence may
        // reach every slot through it.
        let added = unsafe {
            rseq::add(
                shards::base(&self.slots).as_ptr(),
                std::mem::size_of::<shards::Shard>(),
                self.slots.len(),
                n,
            )
        };
        if added != rseq::Added::Yes {
            // Relaxed: a tally.
            self.fallback.fetch_add(n, Relaxed);
        }
    }

    fn get(&self) -> u64 {
        shards::get_by_baseline(&self.baseline, || self.total())
    }

    fn take(&self) -> u64 {
        shards::take_by_baseline(&self.baseline, || self.total())
    }
}
