//! Dense per-thread indices, reused after a thread exits.
//!
//! Each thread that asks gets the smallest index no live thread holds; at thread
//! exit the index goes back to the pool. Indices therefore stay close to the
//! number of live threads, which keeps per-thread slot arrays small, and an
//! index has at most one owner at a time, which is what lets the
//! single-writer counter update its slot with a plain load and store.
//!
//! Ownership hand-off: a thread returns its index under [`IDS`]'s lock at exit
//! and the next owner takes it under the same lock, so everything the old
//! owner wrote happens-before everything the new owner does.

use crate::primitive::{global, thread_local, Arc, Mutex, OnceLock};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Debug)]
struct Ids {
    /// The next never-used index.
    next: usize,
    /// Indices returned by exited threads; the smallest is reused first.
    free: BinaryHeap<Reverse<usize>>,
}

impl Ids {
    const fn new() -> Self {
        Ids {
            next: 0,
            free: BinaryHeap::new(),
        }
    }
}

/// The pool. Each registration holds a reference to it, so returning an
/// index never touches the global: under loom the main thread's
/// thread-locals are destroyed after loom's globals (tokio-rs/loom#152).
type Pool = Arc<Mutex<Ids>>;

global! {
    /// The pool of thread indices; under loom, one per explored execution.
    static IDS: OnceLock<Pool> = OnceLock::new();
}

fn lock(pool: &Mutex<Ids>) -> impl std::ops::DerefMut<Target = Ids> + '_ {
    // A panic while holding this lock cannot leave `Ids` inconsistent (each
    // critical section is one push or pop), so a poisoned lock is used as is.
    pool.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A thread's claim on its index; returns it to the pool when the thread exits.
#[derive(Debug)]
struct Registration {
    index: usize,
    pool: Pool,
}

impl Registration {
    fn new() -> Self {
        let pool = IDS.get_or_init(|| Arc::new(Mutex::new(Ids::new()))).clone();
        let mut ids = lock(&pool);
        let index = match ids.free.pop() {
            Some(Reverse(index)) => index,
            None => {
                let index = ids.next;
                ids.next += 1;
                index
            }
        };
        drop(ids);
        Registration { index, pool }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.pool).free.push(Reverse(self.index));
    }
}

thread_local! {
    static REGISTRATION: Registration = Registration::new();
}

/// The calling thread's index, or `None` while its thread-locals are being
/// destroyed (after its index went back to the pool).
#[inline]
pub(crate) fn current() -> Option<usize> {
    REGISTRATION.try_with(|r| r.index).ok()
}
