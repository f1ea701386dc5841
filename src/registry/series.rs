//! [`Series`]: what [`Family::with`] and [`Family::find`] return, and what
//! keeps its metric alive (an epoch guard, or a borrow of this thread's
//! cache entry).

use super::cache;
use super::family::Family;
use crossbeam_epoch::Guard;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

/// A series found by [`Family::with`] or [`Family::find`]: derefs to the
/// metric while it keeps it alive, with an epoch guard (found in the map)
/// or a borrow of this thread's cache entry, which holds a counted
/// reference to the series (found in the cache). Not `Send`.
pub struct Series<'a, M> {
    pub(super) value: *const M,
    /// Kept for its drop (the guard's unpin, the borrow's release).
    #[allow(dead_code)]
    pub(super) hold: Hold,
    /// Under loom: the node's reclaimed flag (null unless from the cache),
    /// checked on every use.
    #[cfg(loom)]
    pub(super) reclaimed: *const std::sync::atomic::AtomicBool,
    pub(super) _family: PhantomData<&'a Family<M>>,
}

/// What keeps a [`Series`]' metric alive.
pub(super) enum Hold {
    /// Found in the map: the guard of the lookup.
    Guard(#[allow(dead_code)] Guard),
    /// Found in this thread's cache: a borrow of the entry, which is
    /// neither replaced nor released while it lives.
    Cache(#[allow(dead_code)] cache::Borrow),
}

impl<M> Deref for Series<'_, M> {
    type Target = M;

    #[inline]
    fn deref(&self) -> &M {
        #[cfg(loom)]
        if !self.reclaimed.is_null() {
            // SAFETY: under loom nodes are never freed, only flagged.
            let reclaimed = unsafe { &*self.reclaimed };
            assert!(
                !reclaimed.load(std::sync::atomic::Ordering::Relaxed),
                "a cached series was used after its node was reclaimed"
            );
        }
        // SAFETY: `value` points into a node of the family's map (or at its
        // overflow metric). Found in the map: a removed node is released
        // only after every guard pinned before its removal is dropped, and
        // the guard in `hold` was pinned before the lookup that found it.
        // Found in the cache: the entry borrowed in `hold` owns a counted
        // reference to the node, and a borrowed entry is never released.
        // The overflow metric lives in the family, which outlives `'a`.
        unsafe { &*self.value }
    }
}

impl<M: fmt::Debug> fmt::Debug for Series<'_, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}
