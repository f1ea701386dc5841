//! The series map: label values → series, read without locks, reclaimed
//! with epochs.
//!
//! An open-addressing table (linear probing) of `crossbeam_epoch::Atomic`
//! slots, each empty, a node (hash, owned label values, the series), or a
//! tombstone. Pointer tags mark the states:
//!
//! | slot | tag 0 | tag `FROZEN` | tag `TOMBSTONE` |
//! |---|---|---|---|
//! | null | empty | sealed empty (table being replaced) | removed |
//! | node | live | live, table being replaced | — |
//!
//! - **Lookup** pins an epoch, hashes the borrowed values, probes, and
//!   compares the values in full (never identity by hash alone): no lock, no
//!   shared read-modify-write, no allocation.
//! - **Insert** CASes a new node into the first empty slot of the probe. A
//!   cardinality reservation (a counter of live series) is taken first, so a
//!   limit holds under racing inserts.
//! - **Remove** CASes the node to a tombstone and defers its destruction to
//!   the epoch collector, so a lookup that still holds it stays safe.
//! - **Growth** (and `clear`) runs under a mutex that only writers meeting a
//!   full or sealed table ever take: it freezes every slot of the old table
//!   (CAS to a `FROZEN` tag, so no insert or remove can land there any
//!   more), copies the live nodes to a new table, publishes it with a
//!   Release store, and retires the old slot array to the epoch collector.
//!   Writers that meet a frozen slot wait for that one growth to finish
//!   (lock, unlock) and retry on the new table; readers never wait.

use crate::primitive::{Arc, AtomicU64, AtomicUsize, Mutex, Ordering::*};
use crossbeam_epoch::{self as epoch, Atomic, Guard, Owned, Shared};

/// Tag of a frozen slot (sealed empty, or live node in a table being
/// replaced).
const FROZEN: usize = 1;
/// Tag of a removed slot (on null).
const TOMBSTONE: usize = 2;

/// The smallest table.
const MIN_CAPACITY: usize = if cfg!(loom) { 2 } else { 16 };

/// One series: its hash, its label values, and the metric.
pub(crate) struct Node<V> {
    hash: u64,
    /// Shared with collection's sorted copy, so keeping it allocates
    /// nothing.
    labels: Arc<[Box<str>]>,
    pub(crate) value: V,
    /// The metric's activity fingerprint at the last collection, and how
    /// many collections in a row found it unchanged. Written only at
    /// collection time (idle eviction), never when recording.
    pub(crate) seen: AtomicU64,
    pub(crate) idle: AtomicU64,
}

impl<V> Node<V> {
    /// The label values, shared.
    pub(crate) fn labels_arc(&self) -> &Arc<[Box<str>]> {
        &self.labels
    }

    fn matches(&self, hash: u64, values: &[&str]) -> bool {
        self.hash == hash
            && self.labels.len() == values.len()
            && self
                .labels
                .iter()
                .zip(values)
                .all(|(a, b)| super::hash::value_eq(a, b))
    }
}

struct Table<V> {
    slots: Box<[Atomic<Node<V>>]>,
    /// Slots ever filled (live or tombstone); growth starts at 3/4.
    used: AtomicUsize,
}

impl<V> Table<V> {
    fn new(capacity: usize) -> Self {
        Table {
            slots: (0..capacity).map(|_| Atomic::null()).collect(),
            used: AtomicUsize::new(0),
        }
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }
}

/// Why an insert did not insert.
pub(crate) enum Insert<'g, V> {
    /// The series (new or found).
    Series(&'g Node<V>),
    /// The cardinality limit is reached and the series does not exist.
    Full,
}

pub(crate) struct SeriesMap<V> {
    /// Under loom, each map has its own collector: loom tears down the
    /// default collector's thread-locals out of order (tokio-rs/loom#152)
    /// and the models must be deterministic per execution.
    #[cfg(loom)]
    collector: epoch::Collector,
    table: Atomic<Table<V>>,
    /// Live series (reserved before insert).
    len: AtomicUsize,
    limit: usize,
    seed: super::hash::Seed,
    /// Serialises growth and clear; never taken by lookups.
    grow: Mutex<()>,
    /// Bumped by every removal and table replacement (growth, clear);
    /// with the current table's `used` (which every insert raises) it
    /// tells collection whether the set of series changed.
    changes: AtomicU64,
}

impl<V> SeriesMap<V> {
    pub(crate) fn new(limit: usize, seed: super::hash::Seed) -> Self {
        SeriesMap {
            #[cfg(loom)]
            collector: epoch::Collector::new(),
            table: Atomic::new(Table::new(MIN_CAPACITY)),
            len: AtomicUsize::new(0),
            limit,
            seed,
            grow: Mutex::new(()),
            changes: AtomicU64::new(0),
        }
    }

    /// Pins the epoch for a use of this map: the default collector, except
    /// under loom.
    #[inline]
    pub(crate) fn pin(&self) -> Guard {
        #[cfg(not(loom))]
        {
            epoch::pin()
        }
        #[cfg(loom)]
        {
            self.collector.register().pin()
        }
    }

    /// A version of the set of series: it differs from an earlier one read
    /// by this thread whenever a series was inserted or removed (or the
    /// table replaced) in between, and is the same when nothing was.
    pub(crate) fn version(&self, guard: &Guard) -> (u64, usize) {
        // Acquire pairs with the Release bumps of `changes` (removal,
        // replacement) and `used` (insert): a version that counts a change
        // is read before the walk, which then sees that change. A change
        // that happened before this call is counted by coherence; a racing
        // one may or may not be, and is then caught next time.
        (
            self.changes.load(Acquire),
            self.current(guard).used.load(Acquire),
        )
    }

    /// The count of removals and table replacements (see `changes`).
    #[inline]
    pub(crate) fn changes(&self) -> u64 {
        // Acquire pairs with the Release bumps after each unlink and table
        // swap: a lookup after a load that reads a bump sees that change.
        self.changes.load(Acquire)
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Relaxed)
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    pub(crate) fn hash(&self, values: &[&str]) -> u64 {
        super::hash::hash_values(&self.seed, values)
    }

    fn current<'g>(&self, guard: &'g Guard) -> &'g Table<V> {
        // Acquire pairs with the Release store publishing a table in
        // `replace`, so its slots (and the nodes they point to) are visible.
        let table = self.table.load(Acquire, guard);
        // SAFETY: the table pointer is never null (set in `new`, replaced
        // only by non-null tables) and a replaced table is destroyed only
        // through `defer_destroy` after every guard that could see it.
        unsafe { table.deref() }
    }

    /// The series for `values`, if present. Lock-free; no allocation.
    pub(crate) fn get<'g>(&self, values: &[&str], guard: &'g Guard) -> Option<&'g Node<V>> {
        let hash = self.hash(values);
        let table = self.current(guard);
        let mask = table.mask();
        let start = hash as usize & mask;
        for i in 0..=mask {
            // Acquire pairs with the Release CAS that installed the node.
            let slot = table.slots[(start + i) & mask].load(Acquire, guard);
            match (slot.as_raw().is_null(), slot.tag()) {
                (true, 0) | (true, FROZEN) => return None,
                (true, _) => continue,
                (false, _) => {
                    // SAFETY: non-null slots point to nodes destroyed only
                    // through `defer_destroy`, after this guard is gone.
                    let node = unsafe { slot.deref() };
                    if node.matches(hash, values) {
                        return Some(node);
                    }
                }
            }
        }
        None
    }

    /// The series for `values`, inserting `make()` if absent and the limit
    /// allows. Lock-free unless a growth is under way.
    pub(crate) fn get_or_insert<'g>(
        &self,
        values: &[&str],
        make: impl FnOnce() -> V,
        guard: &'g Guard,
    ) -> Insert<'g, V> {
        let hash = self.hash(values);
        let mut make = Some(make);
        let mut fresh: Option<Owned<Node<V>>> = None;
        let mut reserved = false;
        let result = 'retry: loop {
            let table = self.current(guard);
            let mask = table.mask();
            let start = hash as usize & mask;
            let mut i = 0;
            while i <= mask {
                let slot = &table.slots[(start + i) & mask];
                // Acquire pairs with the Release CAS that installed a node.
                let current = slot.load(Acquire, guard);
                if current.tag() == FROZEN {
                    self.wait_for_growth();
                    continue 'retry;
                }
                if !current.as_raw().is_null() {
                    // SAFETY: as in `get`.
                    let node = unsafe { current.deref() };
                    if node.matches(hash, values) {
                        break 'retry Insert::Series(node);
                    }
                    i += 1;
                    continue;
                }
                if current.tag() == TOMBSTONE {
                    i += 1;
                    continue;
                }
                // An empty slot: the series is absent. Reserve a place
                // under the limit, then try to install.
                if !reserved {
                    // A CAS loop, so `len` never reads above the limit.
                    // Relaxed: `len` is a self-contained tally; the RMW
                    // alone makes the reservations exact.
                    let limit = self.limit;
                    if self
                        .len
                        .fetch_update(Relaxed, Relaxed, |n| (n < limit).then_some(n + 1))
                        .is_err()
                    {
                        break 'retry Insert::Full;
                    }
                    reserved = true;
                }
                let node = fresh.take().unwrap_or_else(|| {
                    let make = make.take().expect("made once");
                    Owned::new(Node {
                        hash,
                        labels: values.iter().map(|v| Box::<str>::from(*v)).collect(),
                        value: make(),
                        seen: AtomicU64::new(0),
                        idle: AtomicU64::new(0),
                    })
                });
                // Release publishes the node's contents (pairs with the
                // Acquire loads in lookups); Acquire on failure pairs with
                // the winner's Release.
                match slot.compare_exchange(Shared::null(), node, AcqRel, Acquire, guard) {
                    Ok(installed) => {
                        reserved = false;
                        // Release: a collection whose `version` reads this
                        // count (Acquire) also sees the installed node.
                        let used = table.used.fetch_add(1, Release) + 1;
                        // SAFETY: just installed; destroyed only through
                        // `defer_destroy`, after this guard is gone.
                        let node = unsafe { installed.deref() };
                        if used * 4 > table.slots.len() * 3 {
                            self.grow(table, false, guard);
                        }
                        break 'retry Insert::Series(node);
                    }
                    Err(e) => {
                        // Someone filled or froze this slot: look at it again.
                        fresh = Some(e.new);
                    }
                }
            }
            // Probed the whole table without a free slot: grow it, even if
            // `used` lags (an installer between its CAS and its count).
            self.grow(table, true, guard);
        };
        if reserved {
            self.len.fetch_sub(1, Relaxed);
        }
        result
    }

    /// Removes the series for `values`; true if it was present. The node is
    /// destroyed once no guard can still reach it.
    pub(crate) fn remove(&self, values: &[&str], guard: &Guard) -> bool {
        self.remove_where(self.hash(values), values, |_| true, guard)
    }

    /// Removes `node` itself, if it is still in the map: not a newer series
    /// with the same label values (idle eviction must not remove a series
    /// created after it decided).
    pub(crate) fn remove_node(&self, node: &Node<V>, guard: &Guard) -> bool {
        let values: Vec<&str> = node.labels.iter().map(|l| &**l).collect();
        self.remove_where(node.hash, &values, |n| std::ptr::eq(n, node), guard)
    }

    fn remove_where(
        &self,
        hash: u64,
        values: &[&str],
        which: impl Fn(&Node<V>) -> bool,
        guard: &Guard,
    ) -> bool {
        'retry: loop {
            let table = self.current(guard);
            let mask = table.mask();
            let start = hash as usize & mask;
            for i in 0..=mask {
                let slot = &table.slots[(start + i) & mask];
                // Acquire pairs with the Release CAS that installed a node.
                let current = slot.load(Acquire, guard);
                if current.tag() == FROZEN {
                    self.wait_for_growth();
                    continue 'retry;
                }
                if current.as_raw().is_null() {
                    if current.tag() == TOMBSTONE {
                        continue;
                    }
                    return false;
                }
                // SAFETY: as in `get`.
                let node = unsafe { current.deref() };
                if !node.matches(hash, values) {
                    continue;
                }
                if !which(node) {
                    // The same label values, but another series.
                    return false;
                }
                // AcqRel: Acquire so this thread owns the node it retires
                // (pairs with the install); Release keeps the tombstone
                // after everything before it.
                match slot.compare_exchange(
                    current,
                    Shared::null().with_tag(TOMBSTONE),
                    AcqRel,
                    Acquire,
                    guard,
                ) {
                    Ok(_) => {
                        self.len.fetch_sub(1, Relaxed);
                        // Release: a collection whose `version` reads this
                        // bump (Acquire) also sees the unlinked slot.
                        self.changes.fetch_add(1, Release);
                        // SAFETY: unlinked by the CAS above (only one
                        // remover can win it) and unreachable from any table
                        // published later; guards pinned now may still read
                        // it, so destruction is deferred past them.
                        unsafe { guard.defer_destroy(current) };
                        return true;
                    }
                    // Frozen or removed meanwhile: look again.
                    Err(_) => continue 'retry,
                }
            }
            return false;
        }
    }

    /// Removes every series; returns how many.
    pub(crate) fn clear(&self, guard: &Guard) -> usize {
        let _lock = self.lock_growth();
        let old = self.current(guard);
        let live = self.freeze(old, guard);
        let cleared = live.len();
        // Before publishing the empty table, so no insert into it is refused
        // for series that are already gone; writers meeting the frozen table
        // wait on the growth lock meanwhile.
        self.len.fetch_sub(cleared, Relaxed);
        self.replace(Table::new(MIN_CAPACITY), guard);
        for node in live {
            // SAFETY: the old table is frozen and replaced, so no table
            // published from now on reaches these nodes; guards pinned now
            // may, so destruction is deferred past them.
            unsafe { guard.defer_destroy(node) };
        }
        cleared
    }

    /// Every live series of the current table (a read-only walk).
    pub(crate) fn for_each<'g>(&self, guard: &'g Guard, mut f: impl FnMut(&'g Node<V>))
    where
        V: 'g,
    {
        let table = self.current(guard);
        for slot in table.slots.iter() {
            // Acquire pairs with the Release CAS that installed a node.
            let current = slot.load(Acquire, guard);
            if !current.as_raw().is_null() {
                // SAFETY: as in `get`.
                f(unsafe { current.deref() });
            }
        }
    }

    fn lock_growth(&self) -> impl Drop + '_ {
        self.grow.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until a growth in progress has published its table.
    #[cold]
    fn wait_for_growth(&self) {
        drop(self.lock_growth());
    }

    /// Replaces `seen` — full (`full`), or past 3/4 used — with a larger
    /// copy, unless another writer already replaced it.
    #[cold]
    fn grow(&self, seen: &Table<V>, full: bool, guard: &Guard) {
        let _lock = self.lock_growth();
        let old = self.current(guard);
        if !std::ptr::eq(old, seen) {
            // Another writer grew it while we waited for the lock.
            return;
        }
        if !full && old.used.load(Relaxed) * 4 <= old.slots.len() * 3 {
            return;
        }
        let live = self.freeze(old, guard);
        let capacity = ((live.len() + 1) * 4).next_power_of_two().max(MIN_CAPACITY);
        let table = Table::new(capacity);
        for node in &live {
            // SAFETY: frozen live nodes of the old table; still protected.
            let hash = unsafe { node.deref() }.hash;
            let mask = table.mask();
            let mut i = hash as usize & mask;
            // The new table is private until published: plain probing.
            while !table.slots[i].load(Relaxed, guard).as_raw().is_null() {
                i = (i + 1) & mask;
            }
            table.slots[i].store(node.with_tag(0), Relaxed);
        }
        table.used.store(live.len(), Relaxed);
        self.replace(table, guard);
    }

    /// Freezes every slot of `table` (no insert or remove can land there
    /// afterwards) and returns its live nodes. Caller holds the growth lock.
    fn freeze<'g>(&self, table: &'g Table<V>, guard: &'g Guard) -> Vec<Shared<'g, Node<V>>> {
        let mut live = Vec::new();
        for slot in table.slots.iter() {
            loop {
                // Acquire pairs with the Release CAS that installed a node.
                let current = slot.load(Acquire, guard);
                if current.tag() == TOMBSTONE || current.tag() == FROZEN {
                    break;
                }
                // AcqRel: see the node's contents (Acquire) and order the
                // freeze before the copy that follows (Release).
                if slot
                    .compare_exchange(current, current.with_tag(FROZEN), AcqRel, Acquire, guard)
                    .is_ok()
                {
                    if !current.as_raw().is_null() {
                        live.push(current);
                    }
                    break;
                }
            }
        }
        live
    }

    /// Publishes `table` and retires the old slot array (not its nodes).
    fn replace(&self, table: Table<V>, guard: &Guard) {
        // Release publishes the new table's slots (pairs with `current`'s
        // Acquire).
        let old = self.table.swap(Owned::new(table), AcqRel, guard);
        // After the swap: a collection that read the old count may have
        // collected either table, and reads this bump next time; one that
        // reads the bump reads the new table. Release pairs with the
        // Acquire in `version`.
        self.changes.fetch_add(1, Release);
        // SAFETY: the old table is unreachable from `self.table` now; guards
        // pinned earlier may still probe it, so destruction is deferred.
        // Dropping a `Table` frees its slot array only, not the nodes.
        unsafe { guard.defer_destroy(old) };
    }
}

impl<V> Drop for SeriesMap<V> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no other thread can use the map, so nothing
        // is protected by a guard and the unprotected guard is sound.
        let guard = unsafe { epoch::unprotected() };
        let table = self.table.load(Acquire, guard);
        // SAFETY: the table is never null; see `current`.
        for slot in unsafe { table.deref() }.slots.iter() {
            let node = slot.load(Acquire, guard);
            if !node.as_raw().is_null() {
                // SAFETY: live nodes are owned by the current table alone
                // (removed ones were handed to the collector), and the map
                // is being dropped with no other user.
                drop(unsafe { node.into_owned() });
            }
        }
        // SAFETY: as above; the current table is owned by the map.
        drop(unsafe { table.into_owned() });
    }
}
