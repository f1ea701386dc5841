//! One CPU's share of a histogram: lazily allocated count blocks with 16-bit
//! counts, a carry block allocated only once a count needs more, and the
//! exact sum, min, max and clamp counters.
//!
//! # Two ways to write, never mixed on one word
//!
//! Where the process uses restartable sequences and the histogram has a
//! shard for every possible CPU, a shard's *rseq-owned* words (its 16-bit
//! counts and its sum) are written only by sequences that run on the
//! shard's CPU ([`Rseq`]): an unlocked load-add-store the kernel
//! restarts on preemption, migration or signal delivery, committing with
//! one store. Every other write, anywhere, is a locked atomic
//! read-modify-write: the carry words, min, max, the clamp count, the
//! block sequence, and all the words of a histogram without rseq or of its
//! fallback shard (for threads that have no rseq registration)
//! ([`Locked`]). An rseq-owned word is never swapped, subtracted
//! from or added to from another CPU: such a write could be lost under a
//! racing sequence's store. So intervals are taken by baseline (see
//! `Histogram::take_interval`), not by swapping counts to zero.
//!
//! # Narrow per-CPU counts, one shared carry
//!
//! A bucket's count is the sum over shards of a 16-bit `low` word (per
//! CPU: 512 bytes a block of 256 counts) plus one 64-bit `high` word in
//! the histogram's **shared** carry block for that block of the layout
//! ([`Carries`]: one per histogram, not per CPU, allocated when a count
//! first needs it). A record that would take `low` past [`LOW_MAX`] adds to
//! `high` instead (a locked add: a count that only grows); a record that
//! leaves `low` at [`TRANSFER_AT`] or above moves `low` into `high` (a
//! *transfer*), so `low` keeps its headroom. Transfers are rare (one per
//! 2<sup>15</sup> records of a bucket on a CPU), so the shared carry words
//! cost no contention, and a CPU's memory stays its 16-bit words however
//! many records it makes.
//!
//! # Counts that never go backwards
//!
//! A transfer writes two words, so a reader could see one without the
//! other and read the count too high, then lower. The carry block's
//! sequence word makes it a seqlock: a transfer holds the sequence odd,
//! adds `low`'s value `L` to `high`, subtracts `L` from `low` (under rseq, a
//! sequence on the shard's CPU; if the thread has moved, the add to `high`
//! is undone instead), and a reader retries until it read the block (every
//! shard's words and the carry words) between two equal even sequence
//! values. Only the holder of the odd sequence subtracts from a `low` of
//! that block, so `low ≥ L` holds for its subtraction. Recording never
//! waits: a record that finds the sequence held leaves its transfer to a
//! later record of that count. A reader that found no carry block rechecks
//! after reading the words: a transfer installs the block before it
//! writes, so a reader that saw its subtraction sees the block, and retries.
//!
//! The seqlock argument needs a reader that sees any of a transfer's writes
//! to see the odd sequence stored before them (and the carry block
//! installed before that). The locked writes are Release (and later locked
//! adds to the same word continue their release sequence). An rseq commit
//! is a plain store, not a read-modify-write, so it continues no release
//! sequence; on x86_64 every `mov` load is an acquire load and every `mov`
//! store a release store, and the aarch64 sequences load with `ldarh`/`ldar`
//! and commit with `stlrh`/`stlr`, so a later record's sequence, which
//! loaded the transfer's value, synchronises with the transfer, and a reader
//! whose Acquire load sees that record's commit also sees the odd sequence.

use crate::counter::rseq::{self, Area, OnCpu};
use crate::primitive::{yield_now, AtomicPtr, AtomicU16, AtomicU64, Ordering::*};
use std::ptr;

pub(crate) use super::carry::{Carries, Carry};

/// Counts per block. Under loom, tiny, so models stay small.
pub(crate) const BLOCK_LEN: usize = if cfg!(loom) { 4 } else { 256 };

/// The most a `low` word holds: an add that would pass it goes to `high`.
/// Small under loom and in stress builds, so models and the stress test
/// reach transfers and full words at once.
pub(crate) const LOW_MAX: u32 = if cfg!(any(loom, metricz_stress)) {
    7
} else {
    u16::MAX as u32
};
/// A record that leaves `low` at this or above moves it into `high`.
pub(crate) const TRANSFER_AT: u32 = if cfg!(any(loom, metricz_stress)) {
    4
} else {
    1 << 15
};

/// Transfers undone because the thread had moved (a test hook's tally).
#[cfg(feature = "test-hooks")]
pub(crate) static UNDONE: crate::primitive::std_only::AtomicU64 =
    crate::primitive::std_only::AtomicU64::new(0);

type Words = [AtomicU16; BLOCK_LEN];
pub(super) type HighWords = [AtomicU64; BLOCK_LEN];

/// How the calling thread writes a shard's rseq-owned words: [`Locked`]
/// or [`Rseq`] (a trait, so each record path is compiled for its own).
pub(crate) trait Writer: Copy {
    /// Adds `delta` (wrapping in 32 bits: `x.wrapping_neg()` subtracts) to
    /// a `low` word, if the result stays in `0..=LOW_MAX`. A commit is a
    /// release store.
    fn add_low(self, word: &AtomicU16, delta: u32) -> OnCpu;
    /// Adds `n` (wrapping) to a shard's sum; false if the thread moved.
    fn add_sum(self, word: &AtomicU64, n: u64) -> bool;
}

/// Locked read-modify-writes: no rseq in the process, a histogram without
/// a shard per CPU, or its fallback shard.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Locked;

/// Restartable sequences on `cpu`, the shard's CPU.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rseq {
    pub(crate) area: Area,
    pub(crate) cpu: u32,
}

impl Writer for Locked {
    #[inline]
    fn add_low(self, word: &AtomicU16, delta: u32) -> OnCpu {
        // Relaxed for a record: a tally; transfers order themselves by
        // `seq`. Release for a transfer's subtraction (see `transfer`); on
        // x86_64 the locked RMW is the same instruction either way.
        let order = if delta > LOW_MAX { Release } else { Relaxed };
        match word.fetch_update(order, Relaxed, |low| {
            let new = u32::from(low).wrapping_add(delta);
            (new <= LOW_MAX).then_some(new as u16)
        }) {
            Ok(before) => OnCpu::Done(u32::from(before).wrapping_add(delta)),
            Err(_) => OnCpu::Full,
        }
    }

    #[inline]
    fn add_sum(self, word: &AtomicU64, n: u64) -> bool {
        // Relaxed: a self-contained tally.
        word.fetch_add(n, Relaxed);
        true
    }
}

impl Writer for Rseq {
    #[inline]
    fn add_low(self, word: &AtomicU16, delta: u32) -> OnCpu {
        // SAFETY: `area` is the calling thread's; `word` is a live count of
        // a shard written as `Rseq` only by sequences on its CPU, `cpu`
        // (the `Shard` docs).
        unsafe { rseq::add_u16_on(self.area, self.cpu, ptr::from_ref(word), delta, LOW_MAX) }
    }

    #[inline]
    fn add_sum(self, word: &AtomicU64, n: u64) -> bool {
        // SAFETY: as in `add_low`, for the shard's sum.
        unsafe { rseq::add_on(self.area, self.cpu, word, n) }
    }
}

/// The thread no longer runs on the shard's CPU: nothing was written;
/// resolve the shard again.
#[derive(Debug)]
pub(crate) struct Moved;

/// `BLOCK_LEN` consecutive 16-bit counts of one shard (see the module
/// docs for the rest of a count).
pub(crate) struct Block {
    low: Words,
}

/// The memory a block takes, for `bytes_used`.
pub(crate) const BLOCK_BYTES: usize = std::mem::size_of::<Block>();

/// Installs `fresh` into an empty `slot`, or frees it and returns the
/// winner's. Release on success publishes the initialised allocation (pairs
/// with the Acquire loads of the slot); Acquire on failure pairs with the
/// winner's Release.
///
/// # Safety
///
/// `fresh` must come from `Box::into_raw` and be unshared.
pub(super) unsafe fn install<T>(slot: &AtomicPtr<T>, fresh: *mut T) -> *mut T {
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
            low: std::array::from_fn(|_| AtomicU16::new(0)),
        }
    }

    /// Adds `n` (at most `LOW_MAX`) to count `offset` of block `b`, as
    /// `writer` writes.
    #[inline]
    fn add(
        &self,
        b: usize,
        offset: usize,
        n: u32,
        writer: impl Writer,
        carries: &Carries,
    ) -> Result<(), Moved> {
        let now = match writer.add_low(&self.low[offset], n) {
            OnCpu::Done(now) => now,
            OnCpu::Moved => return Err(Moved),
            OnCpu::Full => {
                add_high(carries, b, offset, u64::from(n));
                LOW_MAX
            }
        };
        if now >= TRANSFER_AT {
            self.transfer(offset, writer, carries.get_or_install(b));
        }
        Ok(())
    }

    /// Moves `low[offset]` into the carry word under the carry block's
    /// sequence, if no other transfer holds it (else a later record will).
    #[cold]
    fn transfer(&self, offset: usize, writer: impl Writer, carry: &Carry) {
        let seq = carry.seq.load(Relaxed);
        // Acquire pairs with the Release store that ended the previous
        // transfer, so this one sees its words.
        if seq & 1 != 0
            || carry
                .seq
                .compare_exchange(seq, seq + 1, Acquire, Relaxed)
                .is_err()
        {
            return;
        }
        // Only the holder of the odd sequence subtracts from `low`, so it
        // holds at least `moving` until the subtraction below.
        let moving = u32::from(self.low[offset].load(Relaxed));
        if moving != 0 {
            let high = &carry.high[offset];
            // Release on both writes (and the undo): a reader whose
            // Acquire load sees one also sees the odd `seq` stored before
            // it, and retries.
            high.fetch_add(u64::from(moving), Release);
            // A release commit (locked: Release; rseq: a plain store, see
            // the module docs). Locked, it cannot fail: `low ≥ moving`.
            let taken = writer.add_low(&self.low[offset], moving.wrapping_neg());
            if !matches!(taken, OnCpu::Done(_)) {
                #[cfg(feature = "test-hooks")]
                UNDONE.fetch_add(1, Relaxed);
                // The thread moved off the shard's CPU: put the carry back;
                // a later record transfers.
                high.fetch_sub(u64::from(moving), Release);
            }
        }
        // Release pairs with readers' and the next holder's Acquire loads
        // of `seq`.
        // Wrapping: the CAS made it odd, so `seq + 1` did not overflow, but
        // 2^31 transfers of one block take `seq + 2` past `u32::MAX`.
        carry.seq.store(seq.wrapping_add(2), Release);
    }
}

/// Adds `n` to the carry word of count `offset` of block `b`: the count
/// only grows, so no sequence (a reader sees the record or not, as any
/// racing record).
#[cold]
fn add_high(carries: &Carries, b: usize, offset: usize, n: u64) {
    // Relaxed: a tally. A locked add, so it continues the release sequence
    // of a transfer's Release add to the same word.
    carries.get_or_install(b).high[offset].fetch_add(n, Relaxed);
}

/// Reads block `b` of the layout: adds every shard's counts and the carry
/// words into `counts` (zeroed here), read consistently between two equal
/// even values of the carry's sequence (see the [module docs](self)).
/// `no_carries`: the caller saw no carry table before this call (one load
/// per read instead of one per block). Returns whether any count is
/// non-zero.
pub(crate) fn read_block<'a, I>(
    b: usize,
    shards: I,
    carries: &Carries,
    mut no_carries: bool,
    counts: &mut [u64; BLOCK_LEN],
) -> bool
where
    I: Iterator<Item = &'a Shard> + Clone,
{
    loop {
        let carry = if no_carries { None } else { carries.get(b) };
        no_carries = false;
        // Acquire pairs with the Release store that ended a transfer: its
        // words are seen.
        let seq = carry.map(|c| c.seq.load(Acquire));
        if seq.is_some_and(|seq| seq & 1 != 0) {
            yield_now();
            continue;
        }
        counts.fill(0);
        let mut any = false;
        // Acquire on every load: a value a transfer wrote (or a later write
        // to its word, see the module docs) carries the odd `seq` (and the
        // installed carry) stored before it, which the checks below see.
        for shard in shards.clone() {
            if let Some(block) = shard.block_if_any(b) {
                any = true;
                for (count, low) in counts.iter_mut().zip(&block.low) {
                    *count += u64::from(low.load(Acquire));
                }
            }
        }
        match carry {
            Some(carry) => {
                for (count, high) in counts.iter_mut().zip(&carry.high) {
                    *count = count.wrapping_add(high.load(Acquire));
                }
                // Relaxed: the Acquire loads above keep this load after
                // them.
                if Some(carry.seq.load(Relaxed)) == seq {
                    return true;
                }
            }
            None => {
                // No transfer had started when the carry was looked up; one
                // whose writes the loads above saw installed it before.
                if carries.get(b).is_none() {
                    return any;
                }
            }
        }
        yield_now();
    }
}

/// One CPU's counts and totals. Aligned to 128 bytes so that shards
/// allocated next to each other (by one thread, say) never share the cache
/// line of `sum`, which every record updates.
///
/// A shard is written either only as [`Rseq`] on its own CPU (its
/// counts and sum; min, max and the clamp count always take locked
/// updates) or only as [`Locked`]: the histogram decides which per
/// shard, once, and never mixes them.
#[repr(align(128))]
pub(crate) struct Shard {
    /// `sum` of recorded values, wrapping at 2^64. rseq-owned under
    /// `Rseq`.
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

impl Totals {
    /// Nothing recorded: the identity of [`merge`](Self::merge).
    pub(crate) const EMPTY: Totals = Totals {
        sum: 0,
        min: u64::MAX,
        max: 0,
        clamped: 0,
    };

    /// Adds `other`'s records to these.
    pub(crate) fn merge(&mut self, other: Totals) {
        self.sum = self.sum.wrapping_add(other.sum);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.clamped = self.clamped.wrapping_add(other.clamped);
    }
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

    /// Adds `n` to the count at `index`, as `writer` writes (which must be
    /// this shard's way, see the [type docs](Self)).
    #[inline]
    pub(crate) fn add_count(
        &self,
        index: usize,
        n: u64,
        writer: impl Writer,
        carries: &Carries,
    ) -> Result<(), Moved> {
        let b = index / BLOCK_LEN;
        if n > u64::from(LOW_MAX) {
            // More than a word holds: straight into the carry word, with
            // no block of 16-bit words installed for it.
            add_high(carries, b, index % BLOCK_LEN, n);
            return Ok(());
        }
        self.block(b)
            .add(b, index % BLOCK_LEN, n as u32, writer, carries)
    }

    /// Adds `amount` to the sum, as `writer` writes.
    #[inline]
    pub(crate) fn add_sum(&self, amount: u64, writer: impl Writer) -> Result<(), Moved> {
        if writer.add_sum(&self.sum, amount) {
            Ok(())
        } else {
            Err(Moved)
        }
    }

    /// Updates min, max and the clamp count for `n` records of `value`:
    /// locked words, so any thread may update any shard's.
    #[inline]
    pub(crate) fn add_bounds(&self, value: u64, n: u64, clamped: bool) {
        // Relaxed throughout: each word is a self-contained tally; nothing
        // else is published through them. A load first, so the locked RMW
        // runs only when the bound moves.
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

    /// Records `n` values equal to `value` (already clamped) at `index` with
    /// locked updates (a shard written as `Locked`).
    #[inline]
    pub(crate) fn record_locked(
        &self,
        index: usize,
        value: u64,
        n: u64,
        clamped: bool,
        carries: &Carries,
    ) {
        // Locked writes never move.
        let _ = self.add_count(index, n, Locked, carries);
        let _ = self.add_sum(value.wrapping_mul(n), Locked);
        self.add_bounds(value, n, clamped);
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

    /// Block `b`, if installed.
    #[inline]
    fn block_if_any(&self, b: usize) -> Option<&Block> {
        // Acquire pairs with `install`'s Release.
        // SAFETY: as in `block`.
        unsafe { self.blocks[b].load(Acquire).as_ref() }
    }

    /// The totals since creation (the counts are read by [`read_block`]).
    pub(crate) fn totals(&self) -> Totals {
        // Relaxed: self-contained words.
        Totals {
            sum: self.sum.load(Relaxed),
            min: self.min.load(Relaxed),
            max: self.max.load(Relaxed),
            clamped: self.clamped.load(Relaxed),
        }
    }

    /// Resets min, max and the clamp count (locked words, so swapped: a
    /// racing update lands before or after its swap), returning what they
    /// held. Counts and sum are never reset: intervals take them by
    /// baseline.
    pub(crate) fn take_bounds(&self) -> (u64, u64, u64) {
        // Relaxed: self-contained words.
        (
            self.min.swap(u64::MAX, Relaxed),
            self.max.swap(0, Relaxed),
            self.clamped.swap(0, Relaxed),
        )
    }

    /// A fingerprint of this shard's records, in a few loads (for idle
    /// eviction): the sum, which grows by every record of a value above 0,
    /// plus the 16-bit count at `zero_index` (where 0 is counted), which
    /// every record of 0 changes (the histogram adds the carry word after
    /// these, so that together they only grow). Their wrapping sum.
    pub(crate) fn activity(&self, zero_index: usize) -> u64 {
        // No sequence: a fingerprint, not a count. Acquire on the word
        // pairs with a transfer's Release subtraction, so the carry word
        // the histogram reads next includes what moved: a transfer racing
        // this can only make the fingerprint larger, never smaller.
        let zeros = self.block_if_any(zero_index / BLOCK_LEN).map_or(0, |b| {
            u64::from(b.low[zero_index % BLOCK_LEN].load(Acquire))
        });
        // Relaxed: a self-contained tally.
        self.sum.load(Relaxed).wrapping_add(zeros)
    }

    /// Bytes of allocated blocks.
    pub(crate) fn block_bytes(&self) -> usize {
        (0..self.blocks.len())
            .filter(|&b| self.block_if_any(b).is_some())
            .count()
            * BLOCK_BYTES
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
#[inline]
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
