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
//! # Counts that never go backwards
//!
//! A count is `low + high`: `low` a 16-bit word every record adds to, `high`
//! a 64-bit word of the block's carry block. A record that would take `low`
//! past [`LOW_MAX`] adds to `high` instead (a locked add: a count that only
//! grows); a record that leaves `low` at [`TRANSFER_AT`] or above moves
//! `low` into `high` (a *transfer*), so `low` keeps its headroom. A
//! transfer writes two words, so a reader could see one without the other
//! and read the count too high, then lower; the block's sequence word makes
//! it a seqlock: a transfer holds the sequence odd, adds `low`'s value `L`
//! to `high`, subtracts `L` from `low` (under rseq, a sequence on the
//! block's CPU; if the thread has moved, the add to `high` is undone
//! instead), and a reader retries until it read the block between two
//! equal even sequence values. Only the holder of the odd sequence
//! subtracts from `low`, so `low ≥ L` holds for its subtraction. Recording
//! never waits: a record that finds the sequence held leaves its transfer
//! to a later record of that count.
//!
//! The seqlock argument needs a reader that sees any of a transfer's writes
//! to see the odd sequence stored before them. The locked writes are
//! Release (and later locked adds to the same word continue their release
//! sequence). An rseq commit is a plain store: on x86_64, where every store
//! is a release store and stores are seen in one total order (TSO), a
//! reader whose Acquire load sees a later record's commit (on the same CPU,
//! after it read the transfer's value) also sees the odd sequence.

use crate::counter::rseq::{self, Area, OnCpu};
use crate::primitive::{yield_now, AtomicPtr, AtomicU16, AtomicU32, AtomicU64, Ordering::*};
use std::ptr;

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
type HighWords = [AtomicU64; BLOCK_LEN];

fn new_high() -> Box<HighWords> {
    Box::new(std::array::from_fn(|_| AtomicU64::new(0)))
}

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

/// `BLOCK_LEN` consecutive counts. A count is `low + high`; `high` is
/// allocated on the first transfer or full add of any count in the block.
pub(crate) struct Block {
    low: Words,
    high: AtomicPtr<HighWords>,
    /// Even while no transfer runs; odd while one does.
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
            low: std::array::from_fn(|_| AtomicU16::new(0)),
            high: AtomicPtr::new(ptr::null_mut()),
            seq: AtomicU32::new(0),
        }
    }

    /// Adds `n` to count `offset`, as `writer` writes.
    #[inline]
    fn add(&self, offset: usize, n: u64, writer: impl Writer) -> Result<(), Moved> {
        if n > u64::from(LOW_MAX) {
            self.add_high(offset, n);
            return Ok(());
        }
        let now = match writer.add_low(&self.low[offset], n as u32) {
            OnCpu::Done(now) => now,
            OnCpu::Moved => return Err(Moved),
            OnCpu::Full => {
                self.add_high(offset, n);
                LOW_MAX
            }
        };
        if now >= TRANSFER_AT {
            self.transfer(offset, writer);
        }
        Ok(())
    }

    /// Adds `n` to the carry word: the count only grows, so no sequence
    /// (a reader sees the record or not, as any racing record).
    #[cold]
    fn add_high(&self, offset: usize, n: u64) {
        // Relaxed: a tally. A locked add, so it continues the release
        // sequence of a transfer's Release add to the same word.
        self.high_words_or_install()[offset].fetch_add(n, Relaxed);
    }

    /// Moves `low[offset]` into `high[offset]` under the sequence, if no
    /// other transfer holds it (else a later record will).
    #[cold]
    fn transfer(&self, offset: usize, writer: impl Writer) {
        let high = self.high_words_or_install();
        let seq = self.seq.load(Relaxed);
        // Acquire pairs with the Release store that ended the previous
        // transfer, so this one sees its words.
        if seq & 1 != 0
            || self
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
            // Release on both writes (and the undo): a reader whose
            // Acquire load sees one also sees the odd `seq` stored before
            // it, and retries.
            high[offset].fetch_add(u64::from(moving), Release);
            // A release commit (locked: Release; rseq: a plain store, see
            // the module docs). Locked, it cannot fail: `low ≥ moving`.
            let taken = writer.add_low(&self.low[offset], moving.wrapping_neg());
            if !matches!(taken, OnCpu::Done(_)) {
                #[cfg(feature = "test-hooks")]
                UNDONE.fetch_add(1, Relaxed);
                // The thread moved off the block's CPU: put the carry back;
                // a later record transfers.
                high[offset].fetch_sub(u64::from(moving), Release);
            }
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

    /// Gathers the non-zero counts into `found`, read between two equal
    /// even sequence values (so never a transfer half done; see the
    /// [module docs](self)).
    fn read(&self, found: &mut Found) {
        loop {
            // Acquire pairs with the Release store that ended a transfer:
            // its words are seen.
            let seq = self.seq.load(Acquire);
            if seq & 1 == 0 {
                found.len = 0;
                // Acquire on every load: a value a transfer wrote (or a
                // later write to its word, see the module docs) carries the
                // odd `seq` stored before it, which the check below sees.
                match self.high_words() {
                    None => {
                        for (offset, low) in self.low.iter().enumerate() {
                            found.push(offset, u64::from(low.load(Acquire)));
                        }
                    }
                    Some(high) => {
                        for (offset, (low, high)) in self.low.iter().zip(high).enumerate() {
                            let count =
                                u64::from(low.load(Acquire)).wrapping_add(high.load(Acquire));
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
    pub(crate) fn add_count(&self, index: usize, n: u64, writer: impl Writer) -> Result<(), Moved> {
        self.block(index / BLOCK_LEN)
            .add(index % BLOCK_LEN, n, writer)
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
    pub(crate) fn record_locked(&self, index: usize, value: u64, n: u64, clamped: bool) {
        // Locked writes never move.
        let _ = self.add_count(index, n, Locked);
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

    /// The installed blocks, with their numbers.
    fn installed(&self) -> impl Iterator<Item = (usize, &Block)> {
        self.blocks.iter().enumerate().filter_map(|(b, slot)| {
            // Acquire pairs with `install`'s Release.
            // SAFETY: as in `block`.
            unsafe { slot.load(Acquire).as_ref() }.map(|block| (b, block))
        })
    }

    /// Reads every count, calling `f(index, count)` for the non-zero ones
    /// (each block's counts read consistently, see [`Block::read`]), and
    /// returns the totals since creation.
    pub(crate) fn visit(&self, mut f: impl FnMut(usize, u64)) -> Totals {
        let mut found = Found::new();
        for (b, block) in self.installed() {
            block.read(&mut found);
            for (&offset, &count) in found.offsets.iter().zip(&found.counts).take(found.len) {
                f(b * BLOCK_LEN + usize::from(offset), count);
            }
        }
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

    /// A fingerprint that grows with every record landing in this shard, in
    /// a few loads (for idle eviction): the sum grows by every record of a
    /// value above 0, and the count at `zero_index` (where 0 is counted) by
    /// every record of 0. Their wrapping sum.
    pub(crate) fn activity(&self, zero_index: usize) -> u64 {
        // Acquire pairs with `install`'s Release.
        // SAFETY: as in `block`.
        let block = unsafe { self.blocks[zero_index / BLOCK_LEN].load(Acquire).as_ref() };
        // Relaxed, and no sequence: a fingerprint, not a count; a transfer
        // racing it only makes the series look active.
        let zeros = block.map_or(0, |b| {
            let offset = zero_index % BLOCK_LEN;
            let high = b.high_words().map_or(0, |h| h[offset].load(Relaxed));
            u64::from(b.low[offset].load(Relaxed)).wrapping_add(high)
        });
        self.sum.load(Relaxed).wrapping_add(zeros)
    }

    /// Bytes of allocated blocks and carry blocks.
    pub(crate) fn block_bytes(&self) -> usize {
        self.installed()
            .map(|(_, block)| BLOCK_BYTES + block.high_words().map_or(0, |_| HIGH_BYTES))
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
