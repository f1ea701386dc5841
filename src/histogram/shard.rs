//! One CPU's share of a histogram: lazily allocated count blocks with 32-bit
//! counts, a 32-bit carry block allocated only if a count wraps, and exact
//! sum, min, max and clamp counters.

use crate::primitive::{AtomicPtr, AtomicU32, AtomicU64, Ordering::*};
use std::ptr;

/// Counts per block. Under loom, tiny, so models stay small.
pub(crate) const BLOCK_LEN: usize = if cfg!(loom) { 4 } else { 256 };

type Words = [AtomicU32; BLOCK_LEN];

fn new_words() -> Box<Words> {
    Box::new(std::array::from_fn(|_| AtomicU32::new(0)))
}

/// `BLOCK_LEN` consecutive counts. A count is `low + (high << 32)`; `high`
/// is allocated on the first wrap of any `low` in the block.
pub(crate) struct Block {
    low: Words,
    high: AtomicPtr<Words>,
}

/// The memory a block takes, for `bytes_used`.
pub(crate) const BLOCK_BYTES: usize = std::mem::size_of::<Block>();
/// The memory a carry block takes, for `bytes_used`.
pub(crate) const HIGH_BYTES: usize = std::mem::size_of::<Words>();

/// Installs `fresh` into an empty `slot`, or frees it and returns the
/// winner's. Release on success publishes the initialised allocation (pairs
/// with the Acquire loads of the slot); Acquire on failure pairs with the
/// winner's Release.
///
/// # Safety
///
/// `fresh` must come from `Box::into_raw` and be unshared.
unsafe fn install<T>(slot: &AtomicPtr<T>, fresh: *mut T) -> *mut T {
    match slot.compare_exchange(ptr::null_mut(), fresh, AcqRel, Acquire) {
        Ok(_) => fresh,
        Err(winner) => {
            // SAFETY: per the contract `fresh` is an unshared `Box`; the
            // CAS that would have shared it failed.
            drop(unsafe { Box::from_raw(fresh) });
            winner
        }
    }
}

impl Block {
    fn new() -> Self {
        Block {
            low: std::array::from_fn(|_| AtomicU32::new(0)),
            high: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Adds `n` to count `offset`.
    #[inline]
    fn add(&self, offset: usize, n: u64) {
        let (low, high) = (n as u32, (n >> 32) as u32);
        let before = self.low[offset].fetch_add(low, Relaxed);
        let carry = u32::from(before.checked_add(low).is_none());
        if high | carry != 0 {
            self.add_high(offset, high.wrapping_add(carry));
        }
    }

    #[cold]
    fn add_high(&self, offset: usize, n: u32) {
        // Acquire pairs with `install`'s Release.
        let mut words = self.high.load(Acquire);
        if words.is_null() {
            // SAFETY: a fresh, unshared box.
            words = unsafe { install(&self.high, Box::into_raw(new_words())) };
        }
        // SAFETY: non-null carry pointers come from `install` and are freed
        // only when the block is dropped, which needs `&mut`.
        let words = unsafe { &*words };
        words[offset].fetch_add(n, Relaxed);
    }

    fn high_words(&self) -> Option<&Words> {
        // Acquire pairs with `install`'s Release.
        // SAFETY: as in `add_high`.
        unsafe { self.high.load(Acquire).as_ref() }
    }

    /// Reads (or, with `reset`, swaps to zero) every count, calling `f(offset,
    /// count)` for the non-zero ones.
    fn drain(&self, reset: bool, mut f: impl FnMut(usize, u64)) {
        let read = |w: &AtomicU32| {
            if reset {
                w.swap(0, Relaxed)
            } else {
                w.load(Relaxed)
            }
        };
        let high = self.high_words();
        for (offset, low) in self.low.iter().enumerate() {
            let mut count = u64::from(read(low));
            if let Some(high) = high {
                count += u64::from(read(&high[offset])) << 32;
            }
            if count != 0 {
                f(offset, count);
            }
        }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // Acquire pairs with `install`'s Release; `&mut self` orders this
        // after every other use.
        let high = self.high.load(Acquire);
        if !high.is_null() {
            // SAFETY: installed by `install` from `Box::into_raw`, freed
            // only here.
            drop(unsafe { Box::from_raw(high) });
        }
    }
}

/// One CPU's counts and totals. Aligned to 128 bytes so that shards
/// allocated next to each other (by one thread, say) never share the cache
/// line of `sum`, which every record updates.
#[repr(align(128))]
pub(crate) struct Shard {
    /// `sum` of recorded values, wrapping at 2^64.
    sum: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
    /// Records whose value was above the highest trackable value.
    clamped: AtomicU64,
    blocks: Box<[AtomicPtr<Block>]>,
}

/// What a shard held (or gave up, for an interval).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Totals {
    pub(crate) sum: u64,
    pub(crate) min: u64,
    pub(crate) max: u64,
    pub(crate) clamped: u64,
}

impl Shard {
    pub(crate) fn new(len: usize) -> Self {
        Shard {
            sum: AtomicU64::new(0),
            min: AtomicU64::new(u64::MAX),
            max: AtomicU64::new(0),
            clamped: AtomicU64::new(0),
            blocks: (0..len.div_ceil(BLOCK_LEN))
                .map(|_| AtomicPtr::new(ptr::null_mut()))
                .collect(),
        }
    }

    /// Bytes of this shard's header and block table (not its blocks).
    pub(crate) fn header_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.blocks.len() * std::mem::size_of::<AtomicPtr<Block>>()
    }

    /// Records `n` values equal to `value` (already clamped) at `index`.
    #[inline]
    pub(crate) fn record(&self, index: usize, value: u64, n: u64, clamped: bool) {
        let block = self.block(index / BLOCK_LEN);
        block.add(index % BLOCK_LEN, n);
        // Relaxed throughout: each word is a self-contained tally; nothing
        // else is published through them.
        self.sum.fetch_add(value.wrapping_mul(n), Relaxed);
        // A load first, so the locked RMW runs only when the bound moves.
        if value < self.min.load(Relaxed) {
            self.min.fetch_min(value, Relaxed);
        }
        if value > self.max.load(Relaxed) {
            self.max.fetch_max(value, Relaxed);
        }
        if clamped {
            self.clamped.fetch_add(n, Relaxed);
        }
    }

    #[inline]
    fn block(&self, block: usize) -> &Block {
        // Acquire pairs with `install`'s Release, so the block's zeroed
        // counts are visible before use.
        let mut ptr = self.blocks[block].load(Acquire);
        if ptr.is_null() {
            ptr = self.install_block(block);
        }
        // SAFETY: non-null block pointers come from `install` and are freed
        // only in `drop` (`&mut self`).
        unsafe { &*ptr }
    }

    #[cold]
    fn install_block(&self, block: usize) -> *mut Block {
        // SAFETY: a fresh, unshared box.
        unsafe { install(&self.blocks[block], Box::into_raw(Box::new(Block::new()))) }
    }

    /// Reads (or, with `reset`, drains) the counts into `counts`, adding, and
    /// returns the totals. A record racing a drain lands wholly in this
    /// drain or the next, count by count: every word is swapped atomically.
    pub(crate) fn collect(&self, reset: bool, counts: &mut [u64]) -> Totals {
        self.visit(reset, |index, count| {
            counts[index] = counts[index].wrapping_add(count);
        })
    }

    /// Reads (or, with `reset`, swaps to zero) every count, calling
    /// `f(index, count)` for the non-zero ones, and returns the totals.
    pub(crate) fn visit(&self, reset: bool, mut f: impl FnMut(usize, u64)) -> Totals {
        for (b, slot) in self.blocks.iter().enumerate() {
            // Acquire pairs with `install`'s Release.
            // SAFETY: as in `block`.
            if let Some(block) = unsafe { slot.load(Acquire).as_ref() } {
                block.drain(reset, |offset, count| f(b * BLOCK_LEN + offset, count));
            }
        }
        if reset {
            Totals {
                sum: self.sum.swap(0, Relaxed),
                min: self.min.swap(u64::MAX, Relaxed),
                max: self.max.swap(0, Relaxed),
                clamped: self.clamped.swap(0, Relaxed),
            }
        } else {
            Totals {
                sum: self.sum.load(Relaxed),
                min: self.min.load(Relaxed),
                max: self.max.load(Relaxed),
                clamped: self.clamped.load(Relaxed),
            }
        }
    }

    /// Bytes of allocated blocks and carry blocks.
    pub(crate) fn block_bytes(&self) -> usize {
        self.blocks
            .iter()
            .filter_map(|slot| {
                // Acquire pairs with `install`'s Release.
                // SAFETY: as in `block`.
                unsafe { slot.load(Acquire).as_ref() }
            })
            .map(|block| BLOCK_BYTES + block.high_words().map_or(0, |_| HIGH_BYTES))
            .sum()
    }

    /// Whether block `block` is allocated (for tests and models).
    pub(crate) fn has_block(&self, block: usize) -> bool {
        // Acquire pairs with `install`'s Release.
        !self.blocks[block].load(Acquire).is_null()
    }
}

impl Drop for Shard {
    fn drop(&mut self) {
        for slot in self.blocks.iter() {
            // Acquire pairs with `install`'s Release; `&mut self` orders this
            // after every other use.
            let block = slot.load(Acquire);
            if !block.is_null() {
                // SAFETY: installed by `install` from `Box::into_raw`, freed
                // only here.
                drop(unsafe { Box::from_raw(block) });
            }
        }
    }
}

/// Installs a fresh shard into `slot` if empty; returns the installed one.
pub(crate) fn shard_in(slot: &AtomicPtr<Shard>, len: usize) -> &Shard {
    // Acquire pairs with `install`'s Release.
    let mut ptr = slot.load(Acquire);
    if ptr.is_null() {
        ptr = install_shard(slot, len);
    }
    // SAFETY: non-null shard pointers come from `install` and are freed only
    // by `free_shard` with exclusive access to the histogram.
    unsafe { &*ptr }
}

#[cold]
fn install_shard(slot: &AtomicPtr<Shard>, len: usize) -> *mut Shard {
    // SAFETY: a fresh, unshared box.
    unsafe { install(slot, Box::into_raw(Box::new(Shard::new(len)))) }
}

/// The shard in `slot`, if one was installed.
pub(crate) fn shard_if_any(slot: &AtomicPtr<Shard>) -> Option<&Shard> {
    // Acquire pairs with `install`'s Release.
    // SAFETY: as in `shard_in`.
    unsafe { slot.load(Acquire).as_ref() }
}

/// Frees the shard in `slot`, if any.
pub(crate) fn free_shard(slot: &mut AtomicPtr<Shard>) {
    // Acquire pairs with `install`'s Release; `&mut` orders this after every
    // other use.
    let ptr = slot.load(Acquire);
    if !ptr.is_null() {
        // SAFETY: installed from `Box::into_raw`, and the caller's `&mut`
        // means no reference into the shard remains.
        drop(unsafe { Box::from_raw(ptr) });
    }
}
