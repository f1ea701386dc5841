//! The per-CPU counter arena: storage for the registry's counters at 8 bytes
//! per CPU per series.
//!
//! A standalone `Counter` pads every shard to its own cache line (128 bytes
//! × shards). The registry's counters instead take a *slot* in an arena of
//! chunks. A chunk is laid out as `[cpu][slot]`: one [`Row`] per shard, each
//! row a page-aligned array of [`SLOTS`] words, so the word of series `s` on
//! CPU `c` is `rows[c][s]`. Different series written by the same CPU share
//! that CPU's row (and cache lines), which only that CPU writes; rows of
//! different CPUs are on different pages, so no two CPUs ever write one
//! cache line. A counter in the arena is the same `Counter` type: a base
//! pointer (row 0's word) and a stride (one row) instead of one padded shard.
//!
//! # Slot lifetime
//!
//! A slot is taken by setting its bit in the chunk's bitmap (a CAS) and
//! zeroed before the counter is handed out. It is given back (the bit
//! cleared) when the last handle to its counter is dropped: the counter
//! holds an `Arc` to a [`Lease`]. The registry's series map destroys a
//! removed series only through the epoch collector, so the last handle of
//! a removed series — the node's — goes only after every reader that could
//! still reach the series has unpinned: a slot is never handed out while a
//! reader can still reach its old series (invariant M7, loom-checked).
//!
//! Chunks are installed lazily by CAS into a fixed directory and live as
//! long as the arena; when the directory is full there is no lease, and
//! the registry gets standalone counters instead.
//!
//! This file is the storage only: it leases zeroed slots and takes them
//! back. The `Counter` over a lease is built by `Counter::in_arena` (and
//! the registry's `Arena::counter`) in `per_cpu.rs`, which imports this
//! file; nothing here imports `Counter`.

use super::shards::{self, Extra};
use crate::primitive::{
    Arc, AtomicPtr, AtomicU64, AtomicUsize,
    Ordering::{AcqRel, Acquire, Relaxed, Release},
};
use std::ptr::{self, NonNull};

/// Slots per chunk: a 4 KiB page of words per row (one word under loom, so
/// the models install chunks and reach a full arena with a few series).
pub(crate) const SLOTS: usize = if cfg!(loom) { 1 } else { 512 };

/// Bitmap words per chunk.
const WORDS: usize = SLOTS.div_ceil(64);

/// Chunks per arena: 2 M series in normal builds; under loom three slots
/// (a family's overflow series and two more), so models reach a full arena.
const MAX_CHUNKS: usize = if cfg!(loom) { 3 } else { 4096 };

/// One CPU's row of a chunk: a word per slot, on its own page(s).
#[repr(C, align(4096))]
pub(crate) struct Row([AtomicU64; SLOTS]);

impl Row {
    /// A row of zeros.
    fn new() -> Self {
        // One constant repeated, not `array::from_fn`'s 512 separate
        // stores: the same row, but Miri (Tree Borrows) took 2 s per row
        // to check the stores one by one. loom's atomics have no `const`
        // constructor.
        #[cfg(not(loom))]
        {
            Row([const { AtomicU64::new(0) }; SLOTS])
        }
        #[cfg(loom)]
        {
            Row(std::array::from_fn(|_| AtomicU64::new(0)))
        }
    }
}

struct Chunk {
    /// One row per shard.
    rows: Box<[Row]>,
    /// Bit `i` of word `w` is set while slot `64 w + i` is leased.
    used: [AtomicU64; WORDS],
}

impl Chunk {
    fn new(rows: usize) -> Box<Self> {
        Box::new(Chunk {
            rows: (0..rows).map(|_| Row::new()).collect(),
            used: std::array::from_fn(|_| AtomicU64::new(0)),
        })
    }

    /// The slot bits that exist in bitmap word `w`.
    fn valid(w: usize) -> u64 {
        let bits = SLOTS - w * 64;
        if bits >= 64 {
            u64::MAX
        } else {
            (1 << bits) - 1
        }
    }

    /// Takes a free slot of this chunk, if any.
    fn take_slot(&self) -> Option<usize> {
        for (w, word) in self.used.iter().enumerate() {
            let mut current = word.load(Relaxed);
            loop {
                let free = !current & Self::valid(w);
                if free == 0 {
                    break;
                }
                let bit = free.trailing_zeros() as usize;
                // Acquire pairs with the Release `fetch_and` in `release`:
                // the last holder's increments happen before the zeroing
                // that follows, so they cannot reappear in the new series.
                match word.compare_exchange(current, current | 1 << bit, Acquire, Relaxed) {
                    Ok(_) => return Some(w * 64 + bit),
                    Err(now) => current = now,
                }
            }
        }
        None
    }
}

/// Per-CPU rows of counter words, in chunks; see the module docs.
pub(crate) struct Arena {
    /// Rows per chunk: the shard count, a power of two.
    rows: usize,
    /// Installed chunks, filled from the front by CAS; never removed.
    chunks: Box<[AtomicPtr<Chunk>]>,
    /// A chunk at or before the first one with a free slot (a hint only).
    hint: AtomicUsize,
}

impl Arena {
    /// An empty arena whose counters have `shards` shards (rounded up to a
    /// power of two).
    pub(crate) fn new(shards: usize) -> Arc<Self> {
        Arc::new(Arena {
            rows: shards::normalize(shards),
            chunks: (0..MAX_CHUNKS)
                .map(|_| AtomicPtr::new(ptr::null_mut()))
                .collect(),
            hint: AtomicUsize::new(0),
        })
    }

    /// Leases a slot, zeroed on every row, or `None` when every chunk is
    /// full and the directory too. The slot is given back when the last
    /// `Arc` to the lease drops.
    pub(crate) fn lease(self: &Arc<Self>) -> Option<Arc<Lease>> {
        let (chunk, slot) = self.acquire()?;
        for row in self.chunk(chunk).expect("acquired from it").rows.iter() {
            // Relaxed: no one else holds this slot; the counter is
            // published to other threads by whoever shares it.
            row.0[slot].store(0, Relaxed);
        }
        Some(Arc::new(Lease {
            arena: Arc::clone(self),
            chunk,
            slot,
            extra: Extra::default(),
        }))
    }

    /// Rows per chunk: the shard count of the arena's counters (a power of
    /// two).
    pub(crate) fn shards(&self) -> usize {
        self.rows
    }

    /// Bytes of counter storage the arena holds (installed chunks' rows).
    pub(crate) fn bytes(&self) -> usize {
        let installed = (0..MAX_CHUNKS)
            .take_while(|&i| self.chunk(i).is_some())
            .count();
        installed * self.rows * std::mem::size_of::<Row>()
    }

    fn chunk(&self, i: usize) -> Option<&Chunk> {
        // Acquire pairs with the AcqRel install in `acquire`: the chunk's
        // rows and bitmap are initialised before it is seen.
        let p = self.chunks[i].load(Acquire);
        // SAFETY: a non-null entry points to a chunk installed by `acquire`
        // and freed only in `Drop`, which has `&mut self`.
        unsafe { p.as_ref() }
    }

    /// Leases a slot: `(chunk, slot)`, or `None` when every chunk is full
    /// and the directory too.
    fn acquire(&self) -> Option<(usize, usize)> {
        let hint = self.hint.load(Relaxed).min(MAX_CHUNKS - 1);
        // Chunks are installed front to back, so the installed ones are a
        // prefix of the directory. Look for a free slot in every installed
        // chunk, from the hint on and then before it; only when all are
        // full, install a new chunk (a stale hint must not grow the arena
        // while earlier chunks have room).
        let take = |i: usize| {
            let slot = self.chunk(i)?.take_slot()?;
            self.hint.store(i, Relaxed);
            Some((i, slot))
        };
        let installed = |i: &usize| self.chunk(*i).is_some();
        if let Some(found) = (hint..MAX_CHUNKS)
            .take_while(installed)
            .chain((0..hint).take_while(installed))
            .find_map(take)
        {
            return Some(found);
        }
        for i in 0..MAX_CHUNKS {
            let chunk = match self.chunk(i) {
                Some(chunk) => chunk,
                None => self.install(i),
            };
            if let Some(slot) = chunk.take_slot() {
                self.hint.store(i, Relaxed);
                return Some((i, slot));
            }
        }
        None
    }

    /// Installs a new chunk at directory entry `i` (or returns the one a
    /// racing thread installed first).
    #[cold]
    fn install(&self, i: usize) -> &Chunk {
        let fresh = Box::into_raw(Chunk::new(self.rows));
        // Release publishes the chunk's initialisation (pairs with the
        // Acquire in `chunk`); Acquire on failure pairs with the winner's
        // Release.
        match self.chunks[i].compare_exchange(ptr::null_mut(), fresh, AcqRel, Acquire) {
            // SAFETY: just installed; freed only in `Drop`.
            Ok(_) => unsafe { &*fresh },
            Err(winner) => {
                // SAFETY: `fresh` was never shared.
                drop(unsafe { Box::from_raw(fresh) });
                // SAFETY: as in `chunk`.
                unsafe { &*winner }
            }
        }
    }

    /// Returns a slot to its chunk.
    fn release(&self, chunk: usize, slot: usize) {
        let chunk_ref = self.chunk(chunk).expect("leased from it");
        // Release pairs with the Acquire CAS in `take_slot`: every use of the
        // slot by its last holder happens before the next lease zeroes it.
        chunk_ref.used[slot / 64].fetch_and(!(1 << (slot % 64)), Release);
        self.hint.fetch_min(chunk, Relaxed);
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        for entry in self.chunks.iter() {
            let p = entry.load(Relaxed);
            if !p.is_null() {
                // SAFETY: installed by `acquire` from `Box::into_raw`; no
                // lease (and so no counter) outlives the arena, since each
                // holds an `Arc` to it.
                drop(unsafe { Box::from_raw(p) });
            }
        }
    }
}

/// A leased arena slot; dropping the last `Arc` to it gives the slot back.
pub(crate) struct Lease {
    arena: Arc<Arena>,
    chunk: usize,
    slot: usize,
    /// The counter's fallback word and take baseline.
    pub(crate) extra: Extra,
}

impl Lease {
    /// `(chunk, slot)`, for the test hook `Counter::arena_slot`.
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn position(&self) -> (usize, usize) {
        (self.chunk, self.slot)
    }

    /// Bytes from the slot's word in one row to its word in the next.
    pub(crate) const STRIDE: usize = std::mem::size_of::<Row>();

    /// The slot's word in row 0, carrying the provenance of every row: row
    /// `i`'s word is `i` × [`STRIDE`](Self::STRIDE) bytes after it. Valid
    /// for as long as the lease (which keeps the arena, and so the chunk,
    /// alive).
    pub(crate) fn first(&self) -> NonNull<AtomicU64> {
        // The chunk stays installed until the arena drops, and the lease
        // keeps the arena alive.
        let rows = &self.arena.chunk(self.chunk).expect("leased from it").rows;
        // The counter reaches row `i`'s word through `first`, so `first` is
        // taken from the pointer to all the rows, not from
        // `&rows[0].0[slot]` (that reference's provenance covers only row
        // 0's word: Stacked Borrows forbids the access to row 1 through it,
        // as Miri reported).
        let first = NonNull::from(&**rows).cast::<AtomicU64>();
        // SAFETY: `Row` is `repr(C)` with its words at offset 0, so the rows
        // (at least one: the arena's shard count, normalised to ≥ 1) start
        // with row 0's `SLOTS` words, and `slot < SLOTS`.
        unsafe { first.add(self.slot) }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.arena.release(self.chunk, self.slot);
    }
}
