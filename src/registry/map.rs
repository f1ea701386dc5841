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
//! - **Insert** builds the new node (its allocations and the metric), then
//!   takes the map's writer mutex (creating a series is the cold path;
//!   lookups never take the mutex). Under it, it probes to the first empty
//!   slot, so it knows the series is absent, and installs the new node in
//!   the first *tombstone* it passed, else in that empty slot. Reusing
//!   tombstones keeps churn (create, remove, create, ...) from lengthening
//!   probe runs and from filling the table until it is rebuilt; it is sound
//!   because inserts are serialised: no other insert can install the same
//!   values meanwhile, and a racing lookup only ever sees a tombstone become
//!   a node (never an empty slot), so its probe still reaches the series
//!   behind it. A cardinality reservation (a counter of live series) is
//!   taken before the install, so a limit holds.
//! - **Remove** CASes the node to a tombstone (lock-free) and hands it to
//!   the epoch collector, so a lookup that still holds it stays safe.
//! - **Growth** (and `clear`) runs under the same writer mutex: it freezes
//!   every slot of the old table (CAS to a `FROZEN` tag, so no remove can
//!   land there any more), copies the live nodes to a new table, publishes
//!   it with a Release store, and retires the old slot array to the epoch
//!   collector. Removes that meet a frozen slot wait for that growth to
//!   finish (lock, unlock) and retry on the new table; readers never wait.
//! - **Layout**: what every lookup reads (the table pointer, the hash seed)
//!   sits on lines that no insert or remove writes; the live count, the
//!   change count and the writer side (mutex, insert count) each have their
//!   own line.

use crate::primitive::{Arc, AtomicBool, AtomicU64, AtomicUsize, Mutex, MutexGuard, Ordering::*};
use crossbeam_epoch::{self as epoch, Atomic, Guard, Owned, Shared};
use crossbeam_utils::CachePadded;

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
    /// References to the node: one for the map (released through the
    /// epoch collector once the node is unlinked, or when the map drops)
    /// and one per thread cache entry (`src/registry/cache.rs`) that keeps
    /// it. The node is freed when the last goes.
    refs: AtomicUsize,
    /// Set (Release) once the node has left the map (removal, eviction,
    /// `clear`, the map's drop), before the call that unlinked it returns;
    /// a cache entry holding the node is then stale (Acquire in
    /// [`is_removed`](Self::is_removed)).
    removed: AtomicBool,
    /// Under loom only: set where the node would be freed (the memory is
    /// kept, so a late use is seen rather than undefined); std's atomic, so
    /// the models pay no extra interleavings for it.
    #[cfg(loom)]
    reclaimed: std::sync::atomic::AtomicBool,
}

impl<V> Node<V> {
    /// Whether the node has left the map: set before the removal (or
    /// eviction, `clear`, the map's drop) that unlinked it returns.
    #[inline]
    pub(crate) fn is_removed(&self) -> bool {
        // Acquire pairs with the Release store in `retire`: a caller that
        // reads `true` also sees the unlink that came before it.
        self.removed.load(Acquire)
    }

    /// Takes one more reference (a thread cache entry's). The caller must
    /// hold a guard under which it found the node in the map, so the map's
    /// own reference is not yet released and the count is at least 1.
    #[inline]
    pub(crate) fn retain(&self) {
        // Relaxed: as `Arc::clone`, an existing reference keeps the node
        // alive; the count only has to be exact (the RMW makes it so).
        self.refs.fetch_add(1, Relaxed);
    }

    /// Drops one reference; the last one frees the node (its label values
    /// and metric).
    ///
    /// # Safety
    ///
    /// `node` points to a node allocated by the map and the caller owns
    /// one of its references, which it gives up here: it must not use the
    /// node afterwards.
    pub(crate) unsafe fn release(node: *const Node<V>) {
        // SAFETY: the caller's reference keeps the node alive up to here.
        let refs = unsafe { &(*node).refs };
        // AcqRel, as `Arc`'s drop with its fence: Release orders this
        // holder's uses of the node before the count reaches zero; Acquire
        // (on the last) makes every other holder's uses happen before the
        // free below.
        if refs.fetch_sub(1, AcqRel) != 1 {
            return;
        }
        #[cfg(not(loom))]
        // SAFETY: the count reached zero, so no other reference exists and
        // none can be taken (`retain` needs one); the node was allocated as
        // an `Owned<Node<V>>` in `get_or_insert`.
        drop(unsafe { Owned::from_raw(node.cast_mut()) });
        #[cfg(loom)]
        {
            // Under loom the metric is dropped (so its arena slot goes
            // back, as M7 needs) but the node's memory is kept, marked, so
            // the models can see a use after reclamation.
            // SAFETY: as above, no other reference exists; the value is
            // dropped once (the count reaches zero once) and never read
            // again by correct code.
            unsafe {
                let twice = (*node)
                    .reclaimed
                    .swap(true, std::sync::atomic::Ordering::Relaxed);
                assert!(!twice, "a series map node was reclaimed twice");
                std::ptr::drop_in_place(std::ptr::addr_of!((*node).value).cast_mut());
            }
        }
    }

    /// Under loom: the flag set where the node would be freed, for a
    /// series to check before each use (a use after free in a real build).
    #[cfg(loom)]
    pub(crate) fn reclaimed_flag(&self) -> *const std::sync::atomic::AtomicBool {
        &self.reclaimed
    }

    /// The label values, shared.
    pub(crate) fn labels_arc(&self) -> &Arc<[Box<str>]> {
        &self.labels
    }

    /// Whether the node is the series of `values` (whose hash is `hash`):
    /// the hash, then every value in full.
    #[inline]
    pub(crate) fn matches(&self, hash: u64, values: &[&str]) -> bool {
        self.hash == hash
            && self.labels.len() == values.len()
            && self
                .labels
                .iter()
                .zip(values)
                .all(|(a, b)| super::hash::value_eq(a, b))
    }
}

/// A slot array. How many of its slots were ever filled is kept under the
/// writer mutex ([`Writer::lock`]), not here: only inserts (serialised)
/// raise it, so it needs no atomic and no line of its own.
struct Table<V> {
    slots: Box<[Atomic<Node<V>>]>,
}

impl<V> Table<V> {
    fn new(capacity: usize) -> Self {
        Table {
            slots: (0..capacity).map(|_| Atomic::null()).collect(),
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

/// The map's writer side: one line, written by inserts only.
struct Writer {
    /// Serialises inserts, growth and clear; never taken by lookups, taken
    /// by removes only to wait out a growth. It holds how many slots of the
    /// current table were ever filled (live or tombstone): growth starts
    /// past 3/4. An insert into a tombstone does not raise it.
    lock: Mutex<usize>,
    /// Inserts ever made (written under `lock`); with `changes` it is the
    /// map's [`version`](SeriesMap::version).
    inserts: AtomicUsize,
}

pub(crate) struct SeriesMap<V> {
    /// Under loom, each map has its own collector: loom tears down the
    /// default collector's thread-locals out of order (tokio-rs/loom#152)
    /// and the models must be deterministic per execution.
    #[cfg(loom)]
    collector: epoch::Collector,
    /// Read by every lookup; written only when a table is replaced.
    table: Atomic<Table<V>>,
    limit: usize,
    seed: super::hash::Seed,
    /// Live series (reserved before insert). Inserts and removes write it
    /// and lookups never read it: its own line, so those writes do not
    /// evict `table` and `seed` from the lookups' caches.
    len: CachePadded<AtomicUsize>,
    /// Bumped by every removal and table replacement (growth, clear); with
    /// the insert count it tells collection whether the set of series
    /// changed. Its own line: removals write it, the `metrics` facade's
    /// cached handles read it on every call.
    changes: CachePadded<AtomicU64>,
    writer: CachePadded<Writer>,
}

impl<V> SeriesMap<V> {
    pub(crate) fn new(limit: usize, seed: super::hash::Seed) -> Self {
        SeriesMap {
            #[cfg(loom)]
            collector: epoch::Collector::new(),
            table: Atomic::new(Table::new(MIN_CAPACITY)),
            limit,
            seed,
            len: CachePadded::new(AtomicUsize::new(0)),
            changes: CachePadded::new(AtomicU64::new(0)),
            writer: CachePadded::new(Writer {
                lock: Mutex::new(0),
                inserts: AtomicUsize::new(0),
            }),
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
    /// (`_guard`: callers read it inside the pinned walk it versions.)
    pub(crate) fn version(&self, _guard: &Guard) -> (u64, usize) {
        // Acquire pairs with the Release bumps of `changes` (removal,
        // replacement) and `inserts` (insert): a version that counts a
        // change is read before the walk, which then sees that change. A
        // change that happened before this call is counted by coherence; a
        // racing one may or may not be, and is then caught next time. An
        // insert into a tombstone counts as any insert does (the filled-slot
        // count would not move).
        (
            self.changes.load(Acquire),
            self.writer.inserts.load(Acquire),
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

    /// The series for `values`, whose [`hash`](Self::hash) is `hash`, if
    /// present. Lock-free; no allocation.
    pub(crate) fn get<'g>(
        &self,
        hash: u64,
        values: &[&str],
        guard: &'g Guard,
    ) -> Option<&'g Node<V>> {
        let table = self.current(guard);
        let mask = table.mask();
        let start = hash as usize & mask;
        for i in 0..=mask {
            // Acquire pairs with the Release store that installed the node.
            let slot = table.slots[(start + i) & mask].load(Acquire, guard);
            match (slot.as_raw().is_null(), slot.tag()) {
                (true, 0) | (true, FROZEN) => return None,
                (true, _) => continue,
                (false, _) => {
                    // SAFETY: non-null slots point to nodes whose map
                    // reference is released only through `retire` (the
                    // epoch collector), after this guard is gone; until
                    // then the count is at least 1 and the node allocated.
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
    /// allows. Under the writer mutex (lookups of existing series go
    /// through [`get`](Self::get), which takes no lock).
    pub(crate) fn get_or_insert<'g>(
        &self,
        values: &[&str],
        make: impl FnOnce() -> V,
        guard: &'g Guard,
    ) -> Insert<'g, V> {
        let hash = self.hash(values);
        // Built before the writer mutex, so that its allocations and `make`
        // (an arena lease, for counters) are not made under it: only the
        // probe and the install are. Dropped unused (it was never
        // published) if the series turns out to exist or the limit is
        // reached; at the limit none is built up front, so an insert that
        // is refused builds nothing.
        let mut make = Some(make);
        let mut fresh = (self.len.load(Relaxed) < self.limit)
            .then(|| Self::new_node(hash, values, make.take().expect("made once")()));
        let mut filled = self.lock_writer();
        loop {
            let table = self.current(guard);
            let mask = table.mask();
            let start = hash as usize & mask;
            // Where to install: the first tombstone of the probe, else the
            // empty slot that ends it.
            let mut free: Option<&Atomic<Node<V>>> = None;
            let mut into_empty = false;
            for i in 0..=mask {
                let slot = &table.slots[(start + i) & mask];
                // Acquire pairs with the Release store that installed a node.
                let current = slot.load(Acquire, guard);
                // Only writer-mutex holders freeze (growth, clear), so the
                // table read under the mutex is never frozen.
                debug_assert_ne!(current.tag(), FROZEN, "frozen under the writer mutex");
                if !current.as_raw().is_null() {
                    // SAFETY: as in `get`.
                    let node = unsafe { current.deref() };
                    if node.matches(hash, values) {
                        return Insert::Series(node);
                    }
                } else if current.tag() == TOMBSTONE {
                    free = free.or(Some(slot));
                } else {
                    // An empty slot: the series is absent.
                    if free.is_none() {
                        free = Some(slot);
                        into_empty = true;
                    }
                    break;
                }
            }
            let Some(slot) = free else {
                // Probed the whole table: every slot holds a live series.
                self.grow(&mut filled, guard);
                continue;
            };
            // Reserve a place under the limit. A CAS loop, so `len` never
            // reads above the limit. Relaxed: `len` is a self-contained
            // tally; the RMW alone makes the reservations exact.
            let limit = self.limit;
            if self
                .len
                .fetch_update(Relaxed, Relaxed, |n| (n < limit).then_some(n + 1))
                .is_err()
            {
                return Insert::Full;
            }
            let node = fresh
                .take()
                .unwrap_or_else(|| Self::new_node(hash, values, make.take().expect("made once")()))
                .into_shared(guard);
            // A store, not a CAS: the slot is empty or a tombstone, and only
            // writer-mutex holders write such a slot (removes CAS live nodes
            // only, freezing is done under the mutex). Release publishes the
            // node's contents (pairs with the Acquire loads in lookups).
            slot.store(node, Release);
            // Release: a collection whose `version` reads this count
            // (Acquire) also sees the installed node. Only mutex holders
            // write it, so a load and a store make the increment.
            let inserts = self.writer.inserts.load(Relaxed);
            self.writer.inserts.store(inserts + 1, Release);
            if into_empty {
                *filled += 1;
                if *filled * 4 > table.slots.len() * 3 {
                    self.grow(&mut filled, guard);
                }
            }
            // SAFETY: just installed; destroyed only through the epoch
            // collector, after this guard is gone.
            return Insert::Series(unsafe { node.deref() });
        }
    }

    /// A node for a new series, not yet published.
    fn new_node(hash: u64, values: &[&str], value: V) -> Owned<Node<V>> {
        Owned::new(Node {
            hash,
            labels: values.iter().map(|v| Box::<str>::from(*v)).collect(),
            value,
            seen: AtomicU64::new(0),
            idle: AtomicU64::new(0),
            refs: AtomicUsize::new(1),
            removed: AtomicBool::new(false),
            #[cfg(loom)]
            reclaimed: std::sync::atomic::AtomicBool::new(false),
        })
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
                // Acquire pairs with the Release store that installed a node.
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
                        // remover can win it, so the map's reference is
                        // given up once) and unreachable from any table
                        // published later.
                        unsafe { retire(current, guard) };
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
        let mut filled = self.lock_writer();
        let old = self.current(guard);
        let live = self.freeze(old, guard);
        let cleared = live.len();
        // Before publishing the empty table, so no insert into it is refused
        // for series that are already gone; writers meeting the frozen table
        // wait on the writer mutex meanwhile.
        self.len.fetch_sub(cleared, Relaxed);
        self.replace(Table::new(MIN_CAPACITY), guard);
        *filled = 0;
        for node in live {
            // SAFETY: the old table is frozen and replaced, so no table
            // published from now on reaches these nodes, and only this
            // `clear` (under the writer mutex) collected them from it.
            unsafe { retire(node, guard) };
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
            // Acquire pairs with the Release store that installed a node.
            let current = slot.load(Acquire, guard);
            if !current.as_raw().is_null() {
                // SAFETY: as in `get`.
                f(unsafe { current.deref() });
            }
        }
    }

    /// The writer mutex, and with it the current table's filled-slot count.
    /// Nothing under it can panic between an install and its count (a panic
    /// in `make` comes before the install), so a poisoned mutex is used as
    /// is.
    fn lock_writer(&self) -> MutexGuard<'_, usize> {
        self.writer.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until a growth in progress has published its table.
    #[cold]
    fn wait_for_growth(&self) {
        drop(self.lock_writer());
    }

    /// Replaces the current table (full, or past 3/4 filled) with a copy
    /// of its live series sized for them, without its tombstones. The
    /// caller holds the writer mutex (`filled`).
    #[cold]
    fn grow(&self, filled: &mut MutexGuard<'_, usize>, guard: &Guard) {
        let old = self.current(guard);
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
        **filled = live.len();
        self.replace(table, guard);
    }

    /// Freezes every slot of `table` (no remove can land there afterwards;
    /// inserts are held off by the writer mutex, which the caller holds)
    /// and returns its live nodes.
    fn freeze<'g>(&self, table: &'g Table<V>, guard: &'g Guard) -> Vec<Shared<'g, Node<V>>> {
        let mut live = Vec::new();
        for slot in table.slots.iter() {
            loop {
                // Acquire pairs with the Release store that installed a node.
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

/// Hands an unlinked node's map reference to the epoch collector, after
/// flagging it removed (so thread caches drop it).
///
/// # Safety
///
/// `node` was just unlinked from the map by the caller (no table published
/// from now on reaches it) and its map reference is given up once.
unsafe fn retire<V>(node: Shared<'_, Node<V>>, guard: &Guard) {
    // SAFETY: the node is protected by `guard` (the caller found it under it).
    let raw = unsafe { node.deref() };
    // Release, before the removal returns: pairs with the Acquire in
    // `Node::is_removed`, so a cache hit that happens after the removal
    // returned sees the flag and never hands the node out.
    raw.removed.store(true, Release);
    let raw: *const Node<V> = raw;
    // SAFETY: guards pinned now may still read the node, so the map's
    // reference (the caller's to give up) is released only after them, on
    // whichever thread collects (the metric is `Send`); cache entries hold
    // their own references.
    unsafe { guard.defer_unchecked(move || Node::release(raw)) };
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
                // SAFETY: live nodes hold the map's reference here alone
                // (removed ones gave it to the collector); no guard can
                // reach them any more (`&mut self`), only thread cache
                // entries, which hold their own references and see the
                // flag.
                unsafe {
                    // Release: pairs with the Acquire in `Node::is_removed`.
                    node.deref().removed.store(true, Release);
                    Node::release(node.as_raw());
                }
            }
        }
        // SAFETY: as above; the current table is owned by the map.
        drop(unsafe { table.into_owned() });
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
