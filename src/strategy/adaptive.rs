use super::interface::CounterStrategy;
use crate::counter::shards;
use crate::primitive::{thread_local, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use crossbeam_utils::CachePadded;
use std::cell::Cell;
use std::ptr;

type CellWord = CachePadded<AtomicU64>;

/// A LongAdder-style adaptive counter: one base word until writers collide,
/// then padded cells, grown on demand up to the CPU count.
///
/// After Java's `java.util.concurrent.atomic.LongAdder` (Doug Lea). An
/// uncontended counter costs one word and one CAS per increment. The first
/// failed CAS on the base word *inflates* the counter: from then on
/// increments CAS a padded cell chosen by a per-thread probe; a failed CAS on
/// a cell doubles the number of cells in use (up to the next power of two of
/// the CPU count) and moves the thread's probe. Cells are allocated on first
/// use, installed with one CAS, and live as long as the counter.
///
/// ```
/// use metricz::strategy::{AdaptiveCounter, CounterStrategy};
/// let c = AdaptiveCounter::new();
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| (0..1000).for_each(|_| c.inc()));
///     }
/// });
/// assert_eq!(c.get(), 4000);
/// ```
#[derive(Debug)]
pub struct AdaptiveCounter {
    base: CachePadded<AtomicU64>,
    /// Cells in use: 0 before inflation, then a power of two ≤ `cells.len()`.
    /// Only grows. Relaxed: it only steers which cell an add picks; every cell
    /// is reached through its own pointer, whatever `active` says.
    active: AtomicUsize,
    /// Lazily allocated cells; null until first used.
    cells: Box<[AtomicPtr<CellWord>]>,
}

thread_local! {
    /// The thread's cell probe, shared by all adaptive counters like Java's
    /// `Thread.threadLocalRandomProbe`; 0 until first used. (Not a `const`
    /// initialiser: loom's `thread_local!` does not accept one.)
    #[allow(clippy::missing_const_for_thread_local)]
    static PROBE: Cell<u32> = Cell::new(0);
}

fn probe() -> u32 {
    PROBE
        .try_with(|p| match p.get() {
            0 => {
                // Fibonacci hashing of the dense thread index, then one
                // xorshift round so the low bits (which the cell mask keeps)
                // differ between threads too; never 0, where xorshift sticks.
                let seed = (crate::cpu::thread_index() as u32)
                    .wrapping_add(1)
                    .wrapping_mul(0x9E37_79B9);
                let fresh = xorshift(seed).max(1);
                p.set(fresh);
                fresh
            }
            probe => probe,
        })
        .unwrap_or(1)
}

/// Marsaglia xorshift32, as LongAdder's `advanceProbe`.
fn xorshift(mut x: u32) -> u32 {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    x
}

fn advance_probe(probe: u32) -> u32 {
    let x = xorshift(probe);
    let _ = PROBE.try_with(|p| p.set(x));
    x
}

impl AdaptiveCounter {
    /// A counter that may grow to the default shard count of cells (the next
    /// power of two of the CPUs the machine can have).
    pub fn new() -> Self {
        Self::with_max_cells(shards::default_count())
    }

    /// A counter that may grow to `max_cells` cells, rounded up to a power of
    /// two and clamped to `1..=65536`.
    pub fn with_max_cells(max_cells: usize) -> Self {
        let count = shards::normalize(max_cells);
        AdaptiveCounter {
            base: CachePadded::new(AtomicU64::new(0)),
            active: AtomicUsize::new(0),
            cells: (0..count)
                .map(|_| AtomicPtr::new(ptr::null_mut()))
                .collect(),
        }
    }

    /// How many cells increments are spread over now: 0 until the first
    /// contended increment.
    pub fn cells_in_use(&self) -> usize {
        self.active.load(Relaxed)
    }

    /// The cell at `index`, allocating and installing it (holding `initial`)
    /// if there is none yet. Returns `None` when this call installed the
    /// cell, so `initial` is already counted.
    fn cell_or_install(&self, index: usize, initial: u64) -> Option<&AtomicU64> {
        let slot = &self.cells[index];
        // Acquire pairs with the Release of the installing CAS below, so the
        // cell's initialisation is visible before it is used.
        let existing = slot.load(Acquire);
        if !existing.is_null() {
            // SAFETY: non-null cell pointers come from `Box::into_raw` below
            // and are freed only in `drop`, which has `&mut self`.
            return Some(unsafe { &**existing });
        }
        let fresh = Box::into_raw(Box::new(CachePadded::new(AtomicU64::new(initial))));
        // Release publishes the initialised cell (pairs with the Acquire
        // loads here, in `get`, `take` and on the failure path); Acquire on
        // failure pairs with the winner's Release.
        match slot.compare_exchange(ptr::null_mut(), fresh, AcqRel, Acquire) {
            Ok(_) => None,
            Err(winner) => {
                // SAFETY: `fresh` came from `Box::into_raw` above and was
                // never shared: the CAS that would have published it failed.
                drop(unsafe { Box::from_raw(fresh) });
                // SAFETY: as for `existing` above.
                Some(unsafe { &**winner })
            }
        }
    }

    /// The add path once inflated (and the retry path of the first
    /// collision). Allocates a cell when it lands on one not yet used.
    fn add_contended(&self, n: u64) {
        let max = self.cells.len();
        let mut probe = probe();
        loop {
            let active = self.active.load(Relaxed).max(1);
            let index = probe as usize & (active - 1);
            let Some(cell) = self.cell_or_install(index, n) else {
                return;
            };
            let current = cell.load(Relaxed);
            if cell
                .compare_exchange(current, current.wrapping_add(n), Relaxed, Relaxed)
                .is_ok()
            {
                return;
            }
            // Collision on a cell: spread out, if there is room, and move on.
            if active < max {
                let _ = self
                    .active
                    .compare_exchange(active, active * 2, Relaxed, Relaxed);
            }
            probe = advance_probe(probe);
        }
    }

    fn each_cell(&self) -> impl Iterator<Item = &AtomicU64> {
        self.cells.iter().filter_map(|slot| {
            // Acquire pairs with the Release of the installing CAS.
            let cell = slot.load(Acquire);
            // SAFETY: as in `cell_or_install`; null means never installed.
            unsafe { cell.as_ref() }.map(|c| &**c)
        })
    }
}

impl Default for AdaptiveCounter {
    fn default() -> Self {
        Self::new()
    }
}

impl CounterStrategy for AdaptiveCounter {
    const NAME: &'static str = "adaptive";

    #[inline]
    fn add(&self, n: u64) {
        if self.active.load(Relaxed) == 0 {
            let current = self.base.load(Relaxed);
            if self
                .base
                .compare_exchange(current, current.wrapping_add(n), Relaxed, Relaxed)
                .is_ok()
            {
                return;
            }
            // Another writer got in between: inflate.
            let _ = self.active.compare_exchange(0, 1, Relaxed, Relaxed);
        }
        self.add_contended(n);
    }

    fn get(&self) -> u64 {
        self.each_cell().fold(self.base.load(Relaxed), |acc, c| {
            acc.wrapping_add(c.load(Relaxed))
        })
    }

    fn take(&self) -> u64 {
        self.each_cell().fold(self.base.swap(0, Relaxed), |acc, c| {
            acc.wrapping_add(c.swap(0, Relaxed))
        })
    }
}

impl Drop for AdaptiveCounter {
    fn drop(&mut self) {
        for slot in self.cells.iter() {
            // Acquire pairs with the installing CAS's Release; `&mut self`
            // already orders this after every other use.
            let cell = slot.load(Acquire);
            if !cell.is_null() {
                // SAFETY: `&mut self` means no other reference to the counter
                // or its cells exists; the pointer came from `Box::into_raw`
                // and is freed only here, once.
                drop(unsafe { Box::from_raw(cell) });
            }
        }
    }
}
