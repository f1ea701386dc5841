//! Each thread's cache of recently used series: lookups of an existing
//! series without an epoch pin.
//!
//! A direct-mapped table of [`SLOTS`] entries in a thread-local, indexed
//! by the family's id and the label values' hash. An entry holds a counted
//! reference to a series map node (`Node::retain`, taken under the pinned
//! lookup that found the node, so the node cannot be freed while the entry
//! exists) and is trusted only after a full check on every hit: the same
//! family id (ids are never reused, so a family dropped and a new one
//! built at the same address never match), the same hash, the same label
//! values compared in full, and the node's `removed` flag clear (set,
//! Release, before the removal, eviction, `clear` or map drop that
//! unlinked it returns). A hit reads only this thread's table and the
//! node, and writes only this thread's table: no pin, no shared
//! read-modify-write, no allocation.
//!
//! A [`Series`](super::Series) found here borrows its entry: the slot's
//! borrow count (a `Cell`, this thread's) is raised for as long as it
//! lives, and a borrowed entry is never replaced or released, so a series
//! held while the same thread looks up other label values (which would
//! evict it) stays valid; such a lookup takes the pinned path instead.
//! At thread exit the table's destructor releases every entry not
//! borrowed (a borrowed one, possible only for a series held in another
//! thread-local destroyed later, is leaked rather than freed under it).
//!
//! The cost of the scheme: a removed series' node (and its metric, e.g. a
//! counter's arena slot) lives on until every thread that cached it has
//! looked at that slot again or exited, at most [`SLOTS`] nodes per
//! thread. The thread that removes, clears or evicts drops its own entries
//! at once ([`forget`], [`forget_family`]).

use std::cell::Cell;
use std::marker::PhantomData;

/// log2 of [`SLOTS`].
const BITS: u32 = 6;
/// Entries per thread.
pub(crate) const SLOTS: usize = 1 << BITS;

/// One cached series.
#[derive(Clone, Copy)]
struct Entry {
    /// The family's id (0: empty entry).
    family: u64,
    /// The label values' hash, as the family's map computes it.
    hash: u64,
    /// The series map node (`Node<M>` of the family's `M`), with a
    /// reference this entry owns.
    node: *const (),
    /// Gives up that reference (`Node::<M>::release`).
    release: unsafe fn(*const ()),
    /// Whether the entry holds a reference and may be hit. An entry that
    /// does not is a *candidate*: a series this thread found in the map
    /// once, remembered without a reference (its pointer may dangle and
    /// is only compared, never read); finding the same node in the map
    /// again makes it a real entry. So a thread that looks a series up
    /// once (a one-shot thread, a create-then-remove cycle) pays no
    /// reference count and keeps no removed node alive.
    held: bool,
}

/// The release function of an empty entry.
///
/// # Safety
///
/// Always safe: it does nothing.
unsafe fn release_nothing(_: *const ()) {}

const EMPTY: Entry = Entry {
    family: 0,
    hash: 0,
    node: std::ptr::null(),
    release: release_nothing,
    held: false,
};

/// One thread's table.
struct Cache {
    entries: [Cell<Entry>; SLOTS],
    /// Live [`Borrow`]s of each slot.
    borrows: [Cell<usize>; SLOTS],
}

impl Cache {
    const fn new() -> Self {
        Cache {
            entries: [const { Cell::new(EMPTY) }; SLOTS],
            borrows: [const { Cell::new(0) }; SLOTS],
        }
    }

    /// Puts `entry` into `slot` and releases what was there.
    fn replace(&self, slot: usize, entry: Entry) {
        let old = self.entries[slot].replace(entry);
        // SAFETY: the table owned one reference to the old entry's node
        // (or the entry was empty or a candidate, with a release that does
        // nothing and never reads the pointer), and
        // it is no longer in the table; the slot is not borrowed (callers
        // check), so no series still reads through it.
        unsafe { (old.release)(old.node) };
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        for slot in 0..SLOTS {
            // A borrowed entry (a series held in a thread-local destroyed
            // after this one) is leaked: its node stays valid for it.
            if self.borrows[slot].get() == 0 {
                #[cfg(not(loom))]
                self.replace(slot, EMPTY);
            }
        }
    }
}

// Under loom the destructor releases nothing (the models' nodes are
// never freed anyway): loom runs a thread's thread-local destructors in
// the order of a `HashMap`, random per execution, and the thread index's
// destructor takes a loom mutex, so loom operations here would make the
// models nondeterministic; and the model thread's destructors run after
// loom has torn down the execution. K3's row says what this leaves out.

#[cfg(not(loom))]
crate::primitive::thread_local! {
    static CACHE: Cache = const { Cache::new() };
}
#[cfg(loom)]
crate::primitive::thread_local! {
    static CACHE: Cache = Cache::new();
}

/// A new family id, never 0 and never handed out twice.
pub(crate) fn family_id() -> u64 {
    // std's atomic in every build: uniqueness is all that matters, no
    // memory is published through it, so loom need not explore it.
    // Relaxed: the RMW alone makes every id distinct.
    static NEXT: crate::primitive::std_only::AtomicU64 =
        crate::primitive::std_only::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The slot of `hash` in `family` (the hash is the map's keyed hash,
/// whose top bits are well mixed; the family's id moves families apart).
#[inline]
fn index(family: u64, hash: u64) -> usize {
    ((hash ^ family.wrapping_mul(0x9e37_79b9_7f4a_7c15)) >> (64 - BITS)) as usize
}

/// A live borrow of a cache entry: while it exists the entry is neither
/// replaced nor released. Not `Send`: it is counted in this thread's
/// table and must be dropped on this thread.
pub(crate) struct Borrow {
    slot: usize,
    _not_send: PhantomData<*const ()>,
}

impl Drop for Borrow {
    #[inline]
    fn drop(&mut self) {
        // The table is gone only after its destructor ran (thread exit),
        // which leaked this borrowed entry: nothing to undo then.
        let _ = CACHE.try_with(|cache| {
            let borrows = &cache.borrows[self.slot];
            borrows.set(borrows.get() - 1);
        });
    }
}

/// The cached node for `hash` in `family`, borrowed, if there is one and
/// `valid` accepts it (the caller compares the label values in full and
/// checks the removed flag).
///
/// `valid` gets the node as stored by [`fill`] for this family; the
/// entry's reference keeps it allocated while `valid` runs and while the
/// returned borrow lives.
#[inline]
pub(crate) fn find(
    family: u64,
    hash: u64,
    valid: impl FnOnce(*const ()) -> bool,
) -> Option<(*const (), Borrow)> {
    CACHE
        .try_with(|cache| {
            let slot = index(family, hash);
            let entry = cache.entries[slot].get();
            if entry.family != family || entry.hash != hash || !entry.held || !valid(entry.node) {
                return None;
            }
            let borrows = &cache.borrows[slot];
            borrows.set(borrows.get() + 1);
            Some((
                entry.node,
                Borrow {
                    slot,
                    _not_send: PhantomData,
                },
            ))
        })
        .ok()
        .flatten()
}

/// Caches `node`, found in the map, for `hash` in `family`: if the slot
/// holds it as a candidate (found once before), `retain` takes the
/// reference the entry will own and it becomes a real entry; otherwise
/// it becomes the slot's candidate. Nothing happens if the slot is
/// borrowed (or the thread's table is gone); an entry replaced is
/// released.
///
/// # Safety
///
/// `retain` takes one reference to `node` (which must stay valid while
/// that reference is held), and `release(node)` gives it up; `node` is
/// the family's node for those label values.
pub(crate) unsafe fn fill(
    family: u64,
    hash: u64,
    node: *const (),
    retain: impl FnOnce(),
    release: unsafe fn(*const ()),
) {
    let _ = CACHE.try_with(|cache| {
        let slot = index(family, hash);
        if cache.borrows[slot].get() != 0 {
            return;
        }
        let entry = cache.entries[slot].get();
        if entry.family == family && entry.hash == hash && entry.node == node && !entry.held {
            // Found again: the same allocation (whatever the candidate's
            // history, `node` itself is live under the caller's guard).
            retain();
            cache.entries[slot].set(Entry {
                family,
                hash,
                node,
                release,
                held: true,
            });
        } else {
            cache.replace(
                slot,
                Entry {
                    family,
                    hash,
                    node,
                    release: release_nothing,
                    held: false,
                },
            );
        }
    });
}

/// Drops this thread's entry for `hash` in `family`, if any and not
/// borrowed (after a removal by this thread: its node can go now).
pub(crate) fn forget(family: u64, hash: u64) {
    let _ = CACHE.try_with(|cache| {
        let slot = index(family, hash);
        let entry = cache.entries[slot].get();
        if entry.family == family && entry.hash == hash && cache.borrows[slot].get() == 0 {
            cache.replace(slot, EMPTY);
        }
    });
}

/// Drops every unborrowed entry of `family` on this thread (after its
/// `clear`, or its drop).
pub(crate) fn forget_family(family: u64) {
    let _ = CACHE.try_with(|cache| {
        for slot in 0..SLOTS {
            if cache.entries[slot].get().family == family && cache.borrows[slot].get() == 0 {
                cache.replace(slot, EMPTY);
            }
        }
    });
}
