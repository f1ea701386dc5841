//! The per-CPU counter arena: storage for the registry's counters at 8 bytes
//! per CPU that recorded, per series.
//!
//! A standalone `Counter` pads every shard to its own cache line (128 bytes
//! × shards). The registry's counters instead take a *slot* in an arena of
//! chunks. A chunk is laid out as `[cpu][slot]`: one [`Row`] per shard, each
//! row a page-aligned array of [`SLOTS`] words, so the word of series `s` on
//! CPU `c` is `rows[c][s]`. Different series written by the same CPU share
//! that CPU's row (and cache lines), which only that CPU writes; rows of
//! different CPUs are on different pages, so no two CPUs ever write one
//! cache line.
//!
//! # Rows follow the data
//!
//! A chunk holds a directory of row pointers, one per shard, all null at
//! first: row `c` is allocated and CAS-installed by the first write from
//! CPU `c` to any slot of the chunk (see `Counter::add`), as the
//! histogram installs its per-CPU blocks. A registry sized for 256
//! possible CPUs whose threads run on 16 of them holds 16 rows per chunk,
//! not 256, and a scrape sums 16 rows. An installed row is never removed or
//! moved until the arena drops, so a row pointer once read stays valid for
//! as long as the counter that read it (which keeps the arena alive).
//!
//! # Slot lifetime
//!
//! A slot is taken by setting its bit in the chunk's bitmap (a CAS) and
//! zeroed, on every row installed at that time, before the counter is
//! handed out; a row installed later is all zeros. It is given back (the
//! bit cleared) when the last handle to its counter is dropped: the counter
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
//! # Streaming reads
//!
//! [`Arena::sum_rows`] adds every installed row of every chunk, row by row,
//! into per-slot totals: sequential reads of whole pages, where reading
//! each series on its own gathers one word from each of `shards` pages.
//! The collection walk reads counter values from those totals.
//!
//! This file is the storage only: it leases zeroed slots, installs rows and
//! takes slots back. The `Counter` over a lease is built by
//! `Counter::in_arena` (and the registry's `Arena::counter`) in
//! `per_cpu.rs`, which imports this file; nothing here imports `Counter`.

use super::shards::{self, Extra};
use crate::primitive::{
    Arc, AtomicPtr, AtomicU64, AtomicUsize,
    Ordering::{AcqRel, Acquire, Relaxed, Release},
};
use crossbeam_utils::CachePadded;
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
    /// A row of zeros, on the heap.
    fn new() -> Box<Self> {
        // One constant repeated, not `array::from_fn`'s 512 separate
        // stores: the same row, but Miri (Tree Borrows) took 2 s per row
        // to check the stores one by one. loom's atomics have no `const`
        // constructor.
        #[cfg(not(loom))]
        {
            Box::new(Row([const { AtomicU64::new(0) }; SLOTS]))
        }
        #[cfg(loom)]
        {
            Box::new(Row(std::array::from_fn(|_| AtomicU64::new(0))))
        }
    }

    /// The word of `slot` (below [`SLOTS`]).
    #[inline]
    pub(crate) fn word(&self, slot: usize) -> &AtomicU64 {
        &self.0[slot]
    }
}

/// The row an entry of a chunk's row directory points to, if installed.
///
/// # Safety
///
/// `entry` must be an entry of a chunk's row directory (`Chunk::rows`, or
/// reached through [`Lease::rows`]): null, or a row installed by
/// `install_row` that lives as long as the chunk the borrow comes from.
#[inline]
pub(crate) unsafe fn installed(entry: &AtomicPtr<Row>) -> Option<&Row> {
    // Acquire pairs with the AcqRel install in `install_row`: the row's
    // zeros are written before it is seen.
    let p = entry.load(Acquire);
    // SAFETY: per the contract, a non-null entry points to a row installed
    // by `install_row` from `Box::into_raw`, freed only when its chunk
    // drops (`Chunk`'s `Drop`, with `&mut`), and the caller's borrow of the
    // entry borrows the chunk.
    unsafe { p.as_ref() }
}

/// The row of a directory entry, installing a zeroed one if there is none
/// yet (the first write from that CPU to the chunk). Installing allocates
/// a row (4 KiB).
///
/// # Safety
///
/// As [`installed`].
#[inline]
pub(crate) unsafe fn row(entry: &AtomicPtr<Row>) -> &Row {
    // SAFETY: forwarded contract.
    match unsafe { installed(entry) } {
        Some(row) => row,
        // SAFETY: forwarded contract.
        None => unsafe { install_row(entry) },
    }
}

/// Installs a zeroed row at `entry`, or returns the one a racing thread
/// installed first.
///
/// # Safety
///
/// As [`installed`].
#[cold]
#[inline(never)]
unsafe fn install_row(entry: &AtomicPtr<Row>) -> &Row {
    let fresh = Box::into_raw(Row::new());
    // Release publishes the zeroed row (pairs with the Acquire in
    // `installed`); Acquire on failure pairs with the winner's Release.
    match entry.compare_exchange(ptr::null_mut(), fresh, AcqRel, Acquire) {
        // SAFETY: just installed; freed only when the chunk drops, which
        // the caller's borrow of `entry` rules out meanwhile.
        Ok(_) => unsafe { &*fresh },
        Err(winner) => {
            // SAFETY: `fresh` was never shared.
            drop(unsafe { Box::from_raw(fresh) });
            // SAFETY: the winner's row, installed as above; the contract
            // keeps it alive for the borrow.
            unsafe { &*winner }
        }
    }
}

/// The bitmap word the calling thread's slot search starts at: its CPU's.
/// (One word under loom: no CPU read, which would add modelled operations
/// to every lease.)
#[allow(clippy::modulo_one, reason = "one bitmap word under loom")]
fn home_word() -> usize {
    if WORDS > 1 {
        crate::cpu::current() % WORDS
    } else {
        0
    }
}

struct Chunk {
    /// One entry per shard: that CPU's row, null until its first write.
    rows: Box<[AtomicPtr<Row>]>,
    /// Bit `i` of word `w` is set while slot `64 w + i` is leased. Each
    /// word on its own cache line, and each thread starts its search at
    /// the word of its CPU: threads creating series at once CAS different
    /// lines, and their slots' words in every row are on different lines
    /// too (64 slots × 8 bytes = 512 bytes per word).
    used: [CachePadded<AtomicU64>; WORDS],
}

impl Chunk {
    fn new(rows: usize) -> Box<Self> {
        Box::new(Chunk {
            rows: (0..rows).map(|_| AtomicPtr::new(ptr::null_mut())).collect(),
            used: std::array::from_fn(|_| CachePadded::new(AtomicU64::new(0))),
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

    /// Takes a free slot of this chunk, if any, searching the bitmap from
    /// word `home` on (wrapping).
    fn take_slot(&self, home: usize) -> Option<usize> {
        for w in (home..WORDS).chain(0..home) {
            let word = &self.used[w];
            let mut current = word.load(Relaxed);
            loop {
                let free = !current & Self::valid(w);
                if free == 0 {
                    break;
                }
                let bit = free.trailing_zeros() as usize;
                // Acquire pairs with the Release `fetch_and` in `release`:
                // the last holder's increments (and the installs of the
                // rows it wrote) happen before the zeroing that follows,
                // so they cannot reappear in the new series.
                match word.compare_exchange(current, current | 1 << bit, Acquire, Relaxed) {
                    Ok(_) => return Some(w * 64 + bit),
                    Err(now) => current = now,
                }
            }
        }
        None
    }

    /// Installed rows.
    fn installed_rows(&self) -> impl Iterator<Item = &Row> {
        // SAFETY: entries of this chunk's own directory.
        self.rows
            .iter()
            .filter_map(|entry| unsafe { installed(entry) })
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        for entry in self.rows.iter() {
            let p = entry.load(Relaxed);
            if !p.is_null() {
                // SAFETY: installed by `install_row` from `Box::into_raw`;
                // `&mut self` means no counter reaches the chunk any more
                // (each keeps the arena, which owns the chunk, alive).
                drop(unsafe { Box::from_raw(p) });
            }
        }
    }
}

/// Per-CPU rows of counter words, in chunks; see the module docs.
pub(crate) struct Arena {
    /// Rows per chunk: the shard count, a power of two.
    rows: usize,
    /// Installed chunks, filled from the front by CAS; never removed.
    chunks: Box<[AtomicPtr<Chunk>]>,
    /// A chunk at or before the first one with a free slot (a hint only).
    /// On its own cache line: every lease and release reads it, and
    /// writes it only when it changes.
    hint: CachePadded<AtomicUsize>,
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
            hint: CachePadded::new(AtomicUsize::new(0)),
        })
    }

    /// Leases a slot, zeroed on every installed row, or `None` when every
    /// chunk is full and the directory too. The slot is given back when
    /// the last `Arc` to the lease drops.
    pub(crate) fn lease(self: &Arc<Self>) -> Option<Arc<Lease>> {
        let (chunk, slot) = self.acquire()?;
        for row in self
            .chunk(chunk)
            .expect("acquired from it")
            .installed_rows()
        {
            // Relaxed: no one else holds this slot; the counter is
            // published to other threads by whoever shares it. Every row
            // an earlier holder of the slot wrote is seen here: it wrote
            // only after loading the row's entry as installed, and before
            // its last handle's Release in `release`, which the Acquire
            // CAS in `take_slot` pairs with. A row installed later (or
            // after this loop passed its entry) is all zeros.
            row.word(slot).store(0, Relaxed);
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

    /// Installed chunks (a prefix of the directory).
    fn installed_chunks(&self) -> impl Iterator<Item = &Chunk> {
        (0..MAX_CHUNKS).map_while(|i| self.chunk(i))
    }

    /// Bytes of counter storage the arena holds: the installed rows, and
    /// each installed chunk's row directory and bitmap.
    pub(crate) fn bytes(&self) -> usize {
        self.installed_chunks()
            .map(|chunk| {
                chunk.installed_rows().count() * std::mem::size_of::<Row>()
                    + self.rows * std::mem::size_of::<AtomicPtr<Row>>()
                    + std::mem::size_of::<Chunk>()
            })
            .sum()
    }

    /// `(chunks, rows)`: installed chunks, and rows installed in them.
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn installed(&self) -> (usize, usize) {
        self.installed_chunks().fold((0, 0), |(c, r), chunk| {
            (c + 1, r + chunk.installed_rows().count())
        })
    }

    /// Sums every installed row of every installed chunk into `totals`,
    /// slot by slot: afterwards `totals[chunk × SLOTS + slot]` is the
    /// wrapping sum of that slot's words (not its fallback word) as read
    /// row by row, and `totals` covers the chunks installed when the call
    /// began. Reuses `totals`' allocation.
    ///
    /// Each word is read with a Relaxed load, like `Counter::get`'s: the
    /// totals are not a snapshot, and one counter's total is at least
    /// everything added to it before the call.
    pub(crate) fn sum_rows(&self, totals: &mut Vec<u64>) {
        totals.clear();
        let chunks = self.installed_chunks().count();
        totals.resize(chunks * SLOTS, 0);
        for (chunk, out) in self.installed_chunks().zip(totals.chunks_exact_mut(SLOTS)) {
            for row in chunk.installed_rows() {
                for (total, word) in out.iter_mut().zip(row.0.iter()) {
                    *total = total.wrapping_add(word.load(Relaxed));
                }
            }
        }
    }

    fn chunk(&self, i: usize) -> Option<&Chunk> {
        // Acquire pairs with the AcqRel install in `install`: the chunk's
        // directory and bitmap are initialised before it is seen.
        let p = self.chunks.get(i)?.load(Acquire);
        // SAFETY: a non-null entry points to a chunk installed by `install`
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
        // Threads on different CPUs search from different bitmap words.
        let home = home_word();
        let take = |i: usize| {
            let slot = self.chunk(i)?.take_slot(home)?;
            self.set_hint(hint, i);
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
            if let Some(slot) = chunk.take_slot(home) {
                self.set_hint(hint, i);
                return Some((i, slot));
            }
        }
        None
    }

    /// Moves the hint to `now` if it was read as something else: a churn
    /// of leases and releases in one chunk then writes the shared hint
    /// line not at all.
    fn set_hint(&self, read: usize, now: usize) {
        if read != now {
            self.hint.store(now, Relaxed);
        }
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
        // Lowered only when this chunk is before it (a read, not a
        // read-modify-write, when it is not).
        if chunk < self.hint.load(Relaxed) {
            self.hint.fetch_min(chunk, Relaxed);
        }
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        for entry in self.chunks.iter() {
            let p = entry.load(Relaxed);
            if !p.is_null() {
                // SAFETY: installed by `install` from `Box::into_raw`; no
                // lease (and so no counter) outlives the arena, since each
                // holds an `Arc` to it. The chunk's rows go with it.
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
    /// `(chunk, slot)`: where the counter's words are, and its index into
    /// [`Arena::sum_rows`]' totals (`chunk × SLOTS + slot`).
    pub(crate) fn position(&self) -> (usize, usize) {
        (self.chunk, self.slot)
    }

    /// Whether the slot is one of `arena`'s.
    pub(crate) fn is_in(&self, arena: &Arena) -> bool {
        ptr::eq(&*self.arena, arena)
    }

    /// The chunk's row directory (one entry per shard; at least one),
    /// as a pointer that carries the provenance of every entry: entry `i`
    /// is `i` entries after it. Valid for as long as the lease (which
    /// keeps the arena, and so the chunk, alive).
    pub(crate) fn rows(&self) -> NonNull<AtomicPtr<Row>> {
        // The chunk stays installed until the arena drops, and the lease
        // keeps the arena alive. The pointer is taken from the whole
        // directory, not from `&rows[0]` (that reference's provenance
        // covers only entry 0: Stacked Borrows forbids reaching entry 1
        // through it).
        let rows = &self.arena.chunk(self.chunk).expect("leased from it").rows;
        NonNull::from(&**rows).cast::<AtomicPtr<Row>>()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.arena.release(self.chunk, self.slot);
    }
}
