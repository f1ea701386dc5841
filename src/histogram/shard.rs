//! One CPU's share of a histogram: lazily allocated count blocks with 32-bit
//! counts, a carry block allocated only once a count reaches 2^31, and exact
//! sum, min, max and clamp counters.
//!
//! # Counts that never go backwards
//!
//! A count is `low + (high << 31)`: `low` a 32-bit word every record adds
//! to, `high` a 64-bit word of the block's carry block. A record whose add
//! takes `low` to 2^31 or past moves 2^31 from `low` into `high` (a
//! *transfer*), long before `low` could wrap at 2^32. A transfer writes two
//! words, so a reader could see one without the other and read the count
//! 2^31 off; the block's sequence word makes it a seqlock: a transfer (and an
//! interval drain, which swaps the words to zero) holds the sequence odd,
//! and a reader retries until it read the block between two equal even
//! sequence values. Recording never waits: a record that finds the
//! sequence odd leaves its transfer to the next record of that count (the
//! word still holds the count exactly up to 2^32 − 1). Only records of
//! 2^31 or more into one count on one CPU while its block's sequence is held
//! (three `record_n(v, 2^31 − 1)` racing an interval drain, say) can wrap
//! `low`; that wrap is carried at once, but a read between the wrap and the
//! carry would see the count 2^32 short (invariant H5 in
//! `papers/invariants.md`).

use crate::primitive::{yield_now, AtomicPtr, AtomicU32, AtomicU64, Ordering::*};
use std::ptr;

/// Counts per block. Under loom, tiny, so models stay small.
pub(crate) const BLOCK_LEN: usize = if cfg!(loom) { 4 } else { 256 };

/// The `low` value at which a record moves a unit into `high`.
const UNIT: u32 = 1 << 31;
/// `high` counts units of 2^31.
const UNIT_BITS: u32 = 31;

type Words = [AtomicU32; BLOCK_LEN];
type HighWords = [AtomicU64; BLOCK_LEN];

fn new_high() -> Box<HighWords> {
    Box::new(std::array::from_fn(|_| AtomicU64::new(0)))
}

/// `BLOCK_LEN` consecutive counts. A count is `low + (high << 31)`; `high`
/// is allocated on the first transfer of any `low` in the block (or the
/// first record of 2^31 or more at once).
pub(crate) struct Block {
    low: Words,
    high: AtomicPtr<HighWords>,
    /// Even while no transfer or drain runs; odd while one does.
    seq: AtomicU32,
}

/// The memory a block takes, for `bytes_used`.
pub(crate) const BLOCK_BYTES: usize = std::mem::size_of::<Block>();
/// The memory a carry block takes, for `bytes_used`.
pub(crate) const HIGH_BYTES: usize = std::mem::size_of::<HighWords>();

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
            seq: AtomicU32::new(0),
        }
    }

    /// Adds `n` to count `offset`.
    #[inline]
    fn add(&self, offset: usize, n: u64) {
        let units = n >> UNIT_BITS;
        if units != 0 {
            // Only grows the count: no sequence needed (a reader sees the
            // record in part, as any racing record).
            self.high_words_or_install()[offset].fetch_add(units, Relaxed);
        }
        let small = n as u32 & (UNIT - 1);
        if small != 0 {
            // Relaxed: a tally; transfers order themselves by `seq`.
            let before = self.low[offset].fetch_add(small, Relaxed);
            if u64::from(before) + u64::from(small) >= u64::from(UNIT) {
                self.transfer(offset, before, small);
            }
        }
    }

    /// Moves 2^31 from `low[offset]` into `high[offset]` under the sequence,
    /// if no other transfer or drain holds it (else a later record will).
    #[cold]
    fn transfer(&self, offset: usize, before: u32, small: u32) {
        let high = self.high_words_or_install();
        if before.checked_add(small).is_none() {
            // `low` wrapped (2^31 records arrived while transfers could not
            // run): put the 2^32 it lost back at once, as two units.
            high[offset].fetch_add(2, Relaxed);
        }
        let seq = self.seq.load(Relaxed);
        // Acquire pairs with the Release store that ended the previous
        // transfer or drain, so this one sees its words.
        if seq & 1 != 0
            || self
                .seq
                .compare_exchange(seq, seq + 1, Acquire, Relaxed)
                .is_err()
        {
            return;
        }
        // Only a holder of the odd sequence takes units out of `low`; a CAS
        // (not a `fetch_sub`), so a word that meanwhile wrapped is never
        // taken below zero. Release on both writes: a reader whose Acquire
        // load sees either one also sees the odd `seq` stored before them,
        // and retries.
        let moved = self.low[offset]
            .fetch_update(Release, Relaxed, |low| low.checked_sub(UNIT))
            .is_ok();
        if moved {
            high[offset].fetch_add(1, Release);
        }
        // Release pairs with readers' and the next holder's Acquire loads
        // of `seq`.
        self.seq.store(seq + 2, Release);
    }

    fn high_words_or_install(&self) -> &HighWords {
        // Acquire pairs with `install`'s Release.
        let mut words = self.high.load(Acquire);
        if words.is_null() {
            // SAFETY: a fresh, unshared box.
            words = unsafe { install(&self.high, Box::into_raw(new_high())) };
        }
        // SAFETY: non-null carry pointers come from `install` and are freed
        // only when the block is dropped, which needs `&mut`.
        unsafe { &*words }
    }

    fn high_words(&self) -> Option<&HighWords> {
        // Acquire pairs with `install`'s Release.
        // SAFETY: as in `high_words_or_install`.
        unsafe { self.high.load(Acquire).as_ref() }
    }

    /// Reads (or, with `reset`, swaps to zero) every count, calling `f(offset,
    /// count)` for the non-zero ones. A read is consistent: it never sees a
    /// transfer half done (see the [module docs](self)), so the counts are
    /// gathered first and `f` runs once the read is known good.
    /// `found` is scratch, reused from block to block (so it is zeroed once
    /// per walk, not once per block).
    fn drain(&self, reset: bool, found: &mut Found, mut f: impl FnMut(usize, u64)) {
        if reset {
            self.swap_out(found);
        } else {
            self.read(found);
        }
        for (&offset, &count) in found.offsets.iter().zip(&found.counts).take(found.len) {
            f(usize::from(offset), count);
        }
    }

    /// Gathers the non-zero counts into `found`, read between two equal
    /// even sequence values.
    fn read(&self, found: &mut Found) {
        loop {
            // Acquire pairs with the Release store that ended a transfer or
            // drain: its words are seen.
            let seq = self.seq.load(Acquire);
            if seq & 1 == 0 {
                found.len = 0;
                // Acquire on every load: a value written by a transfer (or
                // later in its word's release sequence) carries the odd
                // `seq` stored before it, which the check below then sees.
                match self.high_words() {
                    None => {
                        for (offset, low) in self.low.iter().enumerate() {
                            found.push(offset, u64::from(low.load(Acquire)));
                        }
                    }
                    Some(high) => {
                        for (offset, (low, high)) in self.low.iter().zip(high).enumerate() {
                            let count = u64::from(low.load(Acquire))
                                .wrapping_add(high.load(Acquire) << UNIT_BITS);
                            found.push(offset, count);
                        }
                    }
                }
                // Relaxed: the Acquire loads above keep this load after
                // them.
                if self.seq.load(Relaxed) == seq {
                    return;
                }
            }
            yield_now();
        }
    }

    /// Swaps every count to zero, gathering the non-zero ones into `found`,
    /// holding the sequence so no transfer runs meanwhile (waiting for one
    /// that does).
    fn swap_out(&self, found: &mut Found) {
        let seq = loop {
            let seq = self.seq.load(Relaxed);
            // Acquire pairs with the Release store that ended the previous
            // transfer or drain.
            if seq & 1 == 0
                && self
                    .seq
                    .compare_exchange(seq, seq + 1, Acquire, Relaxed)
                    .is_ok()
            {
                break seq;
            }
            yield_now();
        };
        found.len = 0;
        let high = self.high_words();
        for (offset, low) in self.low.iter().enumerate() {
            // Release, as a transfer's writes: a racing reader that sees a
            // swapped word sees the odd `seq` and retries.
            let low = u64::from(low.swap(0, Release));
            let high = high.map_or(0, |h| h[offset].swap(0, Release));
            found.push(offset, low.wrapping_add(high << UNIT_BITS));
        }
        // Release pairs with readers' and the next holder's Acquire loads.
        self.seq.store(seq + 2, Release);
    }
}

/// A block's non-zero counts, gathered on the stack.
pub(crate) struct Found {
    offsets: [u16; BLOCK_LEN],
    counts: [u64; BLOCK_LEN],
    len: usize,
}

impl Found {
    fn new() -> Self {
        Found {
            offsets: [0; BLOCK_LEN],
            counts: [0; BLOCK_LEN],
            len: 0,
        }
    }

    #[inline]
    fn push(&mut self, offset: usize, count: u64) {
        if count != 0 {
            // Each offset is pushed at most once per read, so `len <
            // BLOCK_LEN` here (the mask only spares the bounds check;
            // `BLOCK_LEN` is a power of two), and `offset` (below
            // `BLOCK_LEN` ≤ 256) fits a `u16`.
            let at = self.len & (BLOCK_LEN - 1);
            self.offsets[at] = offset as u16;
            self.counts[at] = count;
            self.len += 1;
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
    /// returns the totals. A record racing a drain lands in this drain or the
    /// next, count by count: every word is swapped atomically (a `record_n`
    /// of 2^31 or more adds to two words, and may be split between two).
    pub(crate) fn collect(&self, reset: bool, counts: &mut [u64]) -> Totals {
        self.visit(reset, |index, count| {
            counts[index] = counts[index].wrapping_add(count);
        })
    }

    /// Reads (or, with `reset`, swaps to zero) every count, calling
    /// `f(index, count)` for the non-zero ones, and returns the totals.
    pub(crate) fn visit(&self, reset: bool, mut f: impl FnMut(usize, u64)) -> Totals {
        let mut found = Found::new();
        for (b, slot) in self.blocks.iter().enumerate() {
            // Acquire pairs with `install`'s Release.
            // SAFETY: as in `block`.
            if let Some(block) = unsafe { slot.load(Acquire).as_ref() } {
                block.drain(reset, &mut found, |offset, count| {
                    f(b * BLOCK_LEN + offset, count)
                });
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

    /// A fingerprint that grows with every record landing in this shard, in
    /// a few loads (for idle eviction): the sum grows by every record of a
    /// value above 0, and the count at `zero_index` (where 0 is counted) by
    /// every record of 0. Their wrapping sum.
    pub(crate) fn activity(&self, zero_index: usize) -> u64 {
        // Acquire pairs with `install`'s Release.
        // SAFETY: as in `block`.
        let block = unsafe { self.blocks[zero_index / BLOCK_LEN].load(Acquire).as_ref() };
        // Relaxed, and no sequence: a fingerprint, not a count; a carry
        // racing it only makes the series look active.
        let zeros = block.map_or(0, |b| {
            let offset = zero_index % BLOCK_LEN;
            let high = b.high_words().map_or(0, |h| h[offset].load(Relaxed));
            u64::from(b.low[offset].load(Relaxed)).wrapping_add(high << UNIT_BITS)
        });
        self.sum.load(Relaxed).wrapping_add(zeros)
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
    #[cfg(any(test, feature = "test-hooks"))]
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
