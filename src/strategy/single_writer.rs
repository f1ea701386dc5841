use super::interface::CounterStrategy;
use crate::counter::shards;
use crate::primitive::{AtomicPtr, AtomicU64, Ordering::*};
use crossbeam_utils::CachePadded;
use std::ptr;

type Slot = CachePadded<AtomicU64>;

/// Bucket `b` holds the slots of thread indices `2^b - 1 .. 2^(b+1) - 1`.
const BUCKETS: usize = if cfg!(loom) { 4 } else { usize::BITS as usize };

/// Per-thread single-writer slots: an increment is a plain load and store on
/// the calling thread's own slot, with no locked instruction.
///
/// The fastest possible increment, and the limit the other strategies are
/// measured against. It relies on each slot having exactly one writer: slots
/// are indexed by the dense thread index ([`cpu::thread_index`](crate::cpu::thread_index)),
/// which no two live threads share. When a thread exits its index (and with
/// it the slot, count included) passes to the next thread that asks, under a
/// lock that orders the old owner's last store before the new owner's first
/// load — so a thread's count survives its exit and nothing is lost. Slots
/// are padded and allocated in buckets of doubling size on first use: 128
/// bytes a slot, up to twice the highest thread index that has used this
/// counter (indices are reused, so that is bounded by the peak number of live
/// threads, not by how many ever ran).
///
/// A signal handler that increments the same counter on the same thread,
/// between the owner's load and store, would be lost: don't.
///
/// Readers sum the slots. Since only the owner may write its slot, [`take`]
/// cannot zero slots; it advances a baseline instead, and [`get`] reports the
/// sum minus the baseline.
///
/// Increments made while the thread's thread-locals are being destroyed (it
/// has no index then) go to a shared atomic word instead.
///
/// [`take`]: CounterStrategy::take
/// [`get`]: CounterStrategy::get
///
/// ```
/// use metricz::strategy::{CounterStrategy, SingleWriterCounter};
/// let c = SingleWriterCounter::new();
/// std::thread::scope(|s| {
///     for _ in 0..3 {
///         s.spawn(|| (0..100).for_each(|_| c.inc()));
///     }
/// });
/// assert_eq!(c.take(), 300);
/// c.add(7);
/// assert_eq!(c.get(), 7);
/// ```
#[derive(Debug)]
pub struct SingleWriterCounter {
    buckets: [AtomicPtr<Slot>; BUCKETS],
    /// Increments from threads without an index (thread-local teardown).
    orphans: CachePadded<AtomicU64>,
    /// The total already returned by `take`.
    taken: AtomicU64,
}

/// Which bucket, and which slot in it, thread index `index` uses.
fn locate(index: usize) -> Option<(usize, usize)> {
    let position = index.checked_add(1)?;
    let bucket = (usize::BITS - 1 - position.leading_zeros()) as usize;
    (bucket < BUCKETS).then(|| (bucket, position - (1 << bucket)))
}

impl SingleWriterCounter {
    /// A counter at zero; no slots are allocated until a thread adds.
    pub fn new() -> Self {
        SingleWriterCounter {
            buckets: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            orphans: CachePadded::new(AtomicU64::new(0)),
            taken: AtomicU64::new(0),
        }
    }

    /// The calling thread's slot, allocating its bucket on first use.
    #[inline]
    fn slot(&self, bucket: usize, offset: usize) -> &AtomicU64 {
        // Acquire pairs with the Release of the installing CAS in
        // `install_bucket`, so the slots' initialisation is visible.
        let mut first = self.buckets[bucket].load(Acquire);
        if first.is_null() {
            first = self.install_bucket(bucket);
        }
        // SAFETY: `first` points to a live bucket of `1 << bucket` slots
        // (installed by `install_bucket`, freed only in `drop`), and
        // `offset < 1 << bucket` by construction in `locate`.
        unsafe { &*first.add(offset) }
    }

    #[cold]
    fn install_bucket(&self, bucket: usize) -> *mut Slot {
        let slots: Box<[Slot]> = (0..1usize << bucket)
            .map(|_| CachePadded::new(AtomicU64::new(0)))
            .collect();
        let fresh = Box::into_raw(slots).cast::<Slot>();
        // Release publishes the zeroed slots (pairs with the Acquire loads in
        // `slot`, `each_bucket` and on this CAS's failure path).
        match self.buckets[bucket].compare_exchange(ptr::null_mut(), fresh, AcqRel, Acquire) {
            Ok(_) => fresh,
            Err(winner) => {
                // SAFETY: `fresh` is the unshared allocation made above, of
                // `1 << bucket` slots; the CAS that would have published it
                // failed.
                drop(unsafe { free_bucket(fresh, bucket) });
                winner
            }
        }
    }

    fn each_slot(&self) -> impl Iterator<Item = &AtomicU64> {
        self.buckets.iter().enumerate().flat_map(|(bucket, head)| {
            // Acquire pairs with the Release of the installing CAS.
            let first = head.load(Acquire);
            let len = if first.is_null() { 0 } else { 1usize << bucket };
            (0..len).map(move |offset| {
                // SAFETY: as in `slot`: a live bucket of `len` slots.
                unsafe { &**first.add(offset) }
            })
        })
    }

    fn total(&self) -> u64 {
        self.each_slot().fold(self.orphans.load(Relaxed), |acc, s| {
            acc.wrapping_add(s.load(Relaxed))
        })
    }
}

/// Turns a bucket pointer back into its box.
///
/// # Safety
///
/// `first` must come from `install_bucket` for the same `bucket`, and no
/// reference into the bucket may outlive the returned box.
unsafe fn free_bucket(first: *mut Slot, bucket: usize) -> Box<[Slot]> {
    // SAFETY: per the contract, `first` is the start of a boxed slice of
    // `1 << bucket` slots leaked by `Box::into_raw`.
    unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(first, 1 << bucket)) }
}

impl Default for SingleWriterCounter {
    fn default() -> Self {
        Self::new()
    }
}

impl CounterStrategy for SingleWriterCounter {
    const NAME: &'static str = "single-writer";

    #[inline]
    fn add(&self, n: u64) {
        match crate::thread_index::current().and_then(locate) {
            Some((bucket, offset)) => {
                let slot = self.slot(bucket, offset);
                // Only this thread writes this slot (it owns the index), so a
                // plain load and store lose nothing. Relaxed: readers need
                // each slot's own value only, and the index hand-off orders
                // owners (see the type docs).
                slot.store(slot.load(Relaxed).wrapping_add(n), Relaxed);
            }
            None => {
                self.orphans.fetch_add(n, Relaxed);
            }
        }
    }

    fn get(&self) -> u64 {
        shards::get_by_baseline(&self.taken, || self.total())
    }

    fn take(&self) -> u64 {
        shards::take_by_baseline(&self.taken, || self.total())
    }
}

impl Drop for SingleWriterCounter {
    fn drop(&mut self) {
        for (bucket, head) in self.buckets.iter().enumerate() {
            // Acquire pairs with the installing CAS; `&mut self` already
            // orders this after every other use.
            let first = head.load(Acquire);
            if !first.is_null() {
                // SAFETY: installed by `install_bucket` for this bucket, freed
                // only here, and `&mut self` rules out outstanding references.
                drop(unsafe { free_bucket(first, bucket) });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn locate_maps_indices_to_doubling_buckets() {
        assert_eq!(locate(0), Some((0, 0)));
        assert_eq!(locate(1), Some((1, 0)));
        assert_eq!(locate(2), Some((1, 1)));
        assert_eq!(locate(3), Some((2, 0)));
        assert_eq!(locate(6), Some((2, 3)));
        assert_eq!(locate(7), Some((3, 0)));
        assert_eq!(locate(usize::MAX), None);
        assert_eq!(locate(usize::MAX - 1), Some((63, (1 << 63) - 1)));
    }
}
