//! [`Family`]: a named metric with label names and a series per label
//! values.

use super::buckets::ExportOptions;
use super::cache;
use super::error::{MetricKind, RegistryError};
use super::labels::LabelValues;
use super::map::{Insert, Node, SeriesMap};
use super::series::{Hold, Series};
use crate::primitive::{Arc, AtomicU64, Mutex, OnceLock, Ordering::Relaxed};
use crate::{Counter, Gauge, Histogram, Timer};
use crossbeam_epoch::Guard;
use std::fmt;
use std::marker::PhantomData;

/// The metric types a [`Family`] can hold.
pub trait Metric: Send + Sync + 'static + sealed::Sealed {
    /// The kind this type registers as.
    const KIND: MetricKind;

    /// A fingerprint that changes whenever the metric is written (for idle
    /// eviction): a counter's value, a gauge's bits, a histogram's sum and
    /// count of zeros.
    #[doc(hidden)]
    fn activity(&self) -> u64;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::Counter {}
    impl Sealed for crate::Gauge {}
    impl Sealed for crate::Histogram {}
    impl Sealed for crate::Timer {}
}

impl Metric for Counter {
    const KIND: MetricKind = MetricKind::Counter;
    fn activity(&self) -> u64 {
        self.get()
    }
}
impl Metric for Gauge {
    const KIND: MetricKind = MetricKind::Gauge;
    fn activity(&self) -> u64 {
        self.get().to_bits()
    }
}
impl Metric for Histogram {
    const KIND: MetricKind = MetricKind::Histogram;
    fn activity(&self) -> u64 {
        // Not a snapshot, not a walk of the counts: a few loads per shard.
        Histogram::activity(self)
    }
}
impl Metric for Timer {
    const KIND: MetricKind = MetricKind::Timer;
    fn activity(&self) -> u64 {
        self.histogram().activity()
    }
}

/// A family of counters, one per label values.
pub type CounterVec = Family<Counter>;
/// A family of gauges, one per label values.
pub type GaugeVec = Family<Gauge>;
/// A family of histograms, one per label values.
pub type HistogramVec = Family<Histogram>;
/// A family of timers, one per label values.
pub type TimerVec = Family<Timer>;

/// A metric name, its help, unit and label names, and one series per label
/// values. Cloning is cheap and shares the family.
///
/// [`with`](Self::with) finds a series without a lock, a shared
/// read-modify-write or an allocation when it exists (see the
/// [registry docs](super) for the map), and creates it otherwise. Past the
/// family's cardinality limit, new label values all go to one overflow
/// series, exported with the label `metricz_overflow="true"`.
pub struct Family<M> {
    inner: Arc<Inner<M>>,
}

pub(crate) struct Inner<M> {
    /// Never reused (not the address): thread cache entries are keyed by
    /// it, so a new family never hits a dropped one's entries.
    id: u64,
    pub(crate) name: String,
    pub(crate) help: String,
    pub(crate) unit: Option<String>,
    pub(crate) label_names: Vec<String>,
    pub(crate) map: SeriesMap<M>,
    make: Box<dyn Fn() -> M + Send + Sync>,
    pub(crate) overflow: M,
    /// The family's metric was built outside the registry and adopted
    /// ([`Registry::register`](super::Registry::register)): `make` hands
    /// out that one metric, so `overflow` is it too (unreachable, since
    /// an unlabelled family never overflows, and never handed out).
    adopted: bool,
    /// Lookups routed to the overflow series.
    overflowed: AtomicU64,
    /// How collection exports the family (histograms and timers).
    pub(crate) export: Mutex<ExportOptions>,
    /// Help and unit given after registration to a family registered
    /// without help (the `metrics` facade's `describe_*` after first use).
    described: OnceLock<(String, Option<String>)>,
    /// The series sorted by label values as of the map version it was
    /// built at; collection rebuilds it only when series came or went, so
    /// a steady-state scrape neither sorts nor allocates. Holds handles, so
    /// a series removed since stays readable until the next rebuild.
    sorted: Mutex<Sorted<M>>,
}

/// The borrowed parts every kind of family has.
pub(super) struct Common<'a> {
    pub(super) name: &'a str,
    pub(super) help: &'a str,
    pub(super) unit: Option<&'a str>,
    pub(super) label_names: &'a [String],
    pub(super) overflowed: u64,
}

/// Series by label values: each one's shared label values and metric.
pub(super) type SortedList<M> = Vec<(Arc<[Box<str>]>, M)>;

struct Sorted<M> {
    version: Option<(u64, usize)>,
    /// Shared with the walks reading it, so none holds the lock while it
    /// calls its closures; rebuilt in place when no walk holds it.
    series: Arc<SortedList<M>>,
}

impl<M> Clone for Family<M> {
    fn clone(&self) -> Self {
        Family {
            inner: self.inner.clone(),
        }
    }
}

impl<M: Metric> Family<M> {
    // One call site (registration), each argument a field it sets.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        name: String,
        help: String,
        unit: Option<String>,
        label_names: Vec<String>,
        limit: usize,
        seed: super::hash::Seed,
        make: Box<dyn Fn() -> M + Send + Sync>,
        adopted: bool,
    ) -> Self {
        let overflow = make();
        Family {
            inner: Arc::new(Inner {
                id: cache::family_id(),
                name,
                help,
                unit,
                label_names,
                map: SeriesMap::new(limit, seed),
                make,
                overflow,
                adopted,
                overflowed: AtomicU64::new(0),
                export: Mutex::new(ExportOptions::for_kind(M::KIND)),
                described: OnceLock::new(),
                sorted: Mutex::new(Sorted {
                    version: None,
                    series: Arc::new(Vec::new()),
                }),
            }),
        }
    }

    /// The series for `values` (one per label name, in order), created if
    /// absent; the overflow series if the family is at its cardinality limit
    /// and these values are new. `values` may be an array or slice of
    /// `&str`, of integers, `bool`s or [`display`](super::display)ed values,
    /// or a tuple of them (see [`LabelValues`]); looking up an existing
    /// series allocates nothing with any of them.
    ///
    /// A series this thread looked up before is found in the thread's
    /// cache of recently used series without pinning an epoch (see
    /// [`Series`]); others take the pinned path, which then caches them.
    ///
    /// The returned [`Series`] holds an epoch guard or a borrow of this
    /// thread's cache, so it is not `Send`: keep it for the duration of a
    /// use, not across an `.await` or forever (a long-held guard delays
    /// the reclamation of removed series). For a handle to keep, take
    /// [`handle`](Self::handle) (an owned clone of the metric), or use
    /// [`with_fn`](Self::with_fn).
    #[inline]
    pub fn with<L: LabelValues + ?Sized>(
        &self,
        values: &L,
    ) -> Result<Series<'_, M>, RegistryError> {
        match self.lookup(values, |values, guard| Some(self.insert(values, guard)))? {
            Some(series) => Ok(series),
            None => unreachable!("the miss above always gives a series"),
        }
    }

    /// Calls `f` with the series for `values` (as [`with`](Self::with)
    /// finds or creates it) and returns what it returns: the guard is held
    /// for the call only, so a future that awaits around it stays `Send`.
    ///
    /// ```
    /// let reg = metricz::Registry::new();
    /// let jobs = reg.counter_vec("jobs_total", "Jobs.", &["queue"])?;
    /// let after = jobs.with_fn(&["mail"], |c| { c.inc(); c.get() })?;
    /// assert_eq!(after, 1);
    /// # Ok::<(), metricz::RegistryError>(())
    /// ```
    #[inline]
    pub fn with_fn<L: LabelValues + ?Sized, R>(
        &self,
        values: &L,
        f: impl FnOnce(&M) -> R,
    ) -> Result<R, RegistryError> {
        Ok(f(&*self.with(values)?))
    }

    /// An owned handle to the series for `values` (found or created as by
    /// [`with`](Self::with)): a clone of the metric that shares its counts,
    /// `Send + Sync + 'static`, to keep in a struct or hold across an
    /// `.await`. A handle outlives the series' membership: if the series is
    /// removed (or evicted as idle), the handle keeps counting into the
    /// detached metric, which is no longer exported.
    ///
    /// ```
    /// let reg = metricz::Registry::new();
    /// let jobs = reg.counter_vec("jobs_total", "Jobs.", &["queue"])?;
    /// let mail: metricz::Counter = jobs.handle(&["mail"])?;
    /// std::thread::spawn(move || mail.inc()).join().unwrap();
    /// assert_eq!(jobs.find(&["mail"])?.map(|c| c.get()), Some(1));
    /// # Ok::<(), metricz::RegistryError>(())
    /// ```
    pub fn handle<L: LabelValues + ?Sized>(&self, values: &L) -> Result<M, RegistryError>
    where
        M: Clone,
    {
        Ok((*self.with(values)?).clone())
    }

    /// The series for `values` if it exists; unlike [`with`](Self::with),
    /// never creates one (and never returns the overflow series). The same
    /// lock-free, allocation-free lookup.
    ///
    /// ```
    /// let reg = metricz::Registry::new();
    /// let jobs = reg.counter_vec("jobs_total", "Jobs.", &["queue"])?;
    /// assert!(jobs.find(&["mail"])?.is_none());
    /// jobs.with(&["mail"])?.inc();
    /// assert_eq!(jobs.find(&["mail"])?.map(|c| c.get()), Some(1));
    /// # Ok::<(), metricz::RegistryError>(())
    /// ```
    pub fn find<L: LabelValues + ?Sized>(
        &self,
        values: &L,
    ) -> Result<Option<Series<'_, M>>, RegistryError> {
        self.lookup(values, |_, _| None)
    }

    /// The series for `values`: found in this thread's cache, else in the
    /// map (and then cached), else what `miss` gives (a created series or
    /// the overflow series for `with`, nothing for `find`).
    #[inline]
    fn lookup<L: LabelValues + ?Sized>(
        &self,
        values: &L,
        miss: impl FnOnce(&[&str], &Guard) -> Option<*const M>,
    ) -> Result<Option<Series<'_, M>>, RegistryError> {
        self.check_label_count(values.count())?;
        Ok(values.with_text(|values| {
            // The label traits are sealed and pass as many values as they
            // count; a debug build checks it.
            debug_assert_eq!(values.len(), self.inner.label_names.len());
            let inner = &*self.inner;
            let hash = inner.map.hash(values);
            let hit = cache::find(inner.id, hash, |node| {
                // SAFETY: this family's entries hold its own `Node<M>`s
                // (ids are never reused), kept allocated by the entry's
                // reference while `find` runs.
                let node = unsafe { &*node.cast::<Node<M>>() };
                node.matches(hash, values) && !node.is_removed()
            });
            match hit {
                Some((node, borrow)) => {
                    let node = node.cast::<Node<M>>();
                    // SAFETY: as above; the borrow keeps the entry, and its
                    // reference, for as long as the series lives.
                    let node = unsafe { &*node };
                    Some(Series {
                        value: &node.value,
                        hold: Hold::Cache(borrow),
                        #[cfg(loom)]
                        reclaimed: node.reclaimed_flag(),
                        _family: PhantomData,
                    })
                }
                None => self.lookup_pinned(hash, values, miss),
            }
        }))
    }

    /// [`lookup`](Self::lookup)'s path past a cache miss: pins, probes
    /// the map and caches what it finds there.
    fn lookup_pinned(
        &self,
        hash: u64,
        values: &[&str],
        miss: impl FnOnce(&[&str], &Guard) -> Option<*const M>,
    ) -> Option<Series<'_, M>> {
        let inner = &*self.inner;
        let guard = inner.map.pin();
        let value: *const M = match inner.map.get(hash, values, &guard) {
            Some(node) => {
                let raw: *const Node<M> = node;
                // SAFETY: `node` was found in the map under `guard`, so the
                // map's reference is not released yet and `retain` may take
                // another; `release_node::<M>` gives that one up, and the
                // entry is keyed by this family, whose nodes are `Node<M>`.
                unsafe {
                    cache::fill(
                        inner.id,
                        hash,
                        raw.cast(),
                        || node.retain(),
                        release_node::<M>,
                    );
                }
                &node.value
            }
            None => miss(values, &guard)?,
        };
        Some(Series {
            value,
            hold: Hold::Guard(guard),
            #[cfg(loom)]
            reclaimed: std::ptr::null(),
            _family: PhantomData,
        })
    }

    #[cold]
    fn insert(&self, values: &[&str], guard: &Guard) -> *const M {
        let inner = &*self.inner;
        match inner.map.get_or_insert(values, &inner.make, guard) {
            Insert::Series(node) => &node.value,
            Insert::Full => {
                inner.overflowed.fetch_add(1, Relaxed);
                &inner.overflow
            }
        }
    }

    /// Removes the series for `values`; `Ok(true)` if it existed. Handles
    /// cloned from it stay valid and keep counting into the detached
    /// metric, which is no longer exported (a detached counter keeps its
    /// arena slot until its last handle drops). A later
    /// [`with`](Self::with) of the same values creates a fresh series that
    /// starts at zero.
    pub fn remove<L: LabelValues + ?Sized>(&self, values: &L) -> Result<bool, RegistryError> {
        let inner = &*self.inner;
        self.check_label_count(values.count())?;
        Ok(values.with_text(|values| {
            let removed = inner.map.remove(values, &inner.map.pin());
            if removed {
                // This thread's entry can let the node go now (other
                // threads' entries see its removed flag on their next hit).
                cache::forget(inner.id, inner.map.hash(values));
            }
            removed
        }))
    }

    /// Removes every series (not the overflow series); returns how many.
    pub fn clear(&self) -> usize {
        let cleared = self.inner.map.clear(&self.inner.map.pin());
        cache::forget_family(self.inner.id);
        cleared
    }

    #[inline]
    fn check_label_count(&self, got: usize) -> Result<(), RegistryError> {
        let expected = self.inner.label_names.len();
        if got == expected {
            Ok(())
        } else {
            Err(RegistryError::LabelCountMismatch { expected, got })
        }
    }

    /// Pushes the epoch collector along once (for tests and models that
    /// wait for removed series to be reclaimed): pins, flushes this
    /// thread's deferred destructions and lets the collector advance.
    #[doc(hidden)]
    pub fn collect_garbage(&self) {
        self.inner.map.pin().flush();
    }

    /// The number of series (not counting the overflow series).
    pub fn len(&self) -> usize {
        self.inner.map.len()
    }

    /// Whether the family has no series.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most series the family holds before routing new label values to
    /// the overflow series.
    pub fn cardinality_limit(&self) -> usize {
        self.inner.map.limit()
    }

    /// How many lookups went to the overflow series.
    pub fn overflowed(&self) -> u64 {
        self.inner.overflowed.load(Relaxed)
    }

    /// The metric name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The help text.
    pub fn help(&self) -> &str {
        match self.inner.described.get() {
            Some((help, _)) => help,
            None => &self.inner.help,
        }
    }

    /// The unit, if one was given.
    pub fn unit(&self) -> Option<&str> {
        match self.inner.described.get() {
            Some((_, unit)) => unit.as_deref(),
            None => self.inner.unit.as_deref(),
        }
    }

    /// Gives a family registered without help its help and unit, once
    /// (later calls, and calls on a family with help, change nothing);
    /// `true` if this call set them. For descriptions that arrive after
    /// first use, as the `metrics` facade's may.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn describe_late(&self, help: &str, unit: Option<&str>) -> bool {
        if !self.inner.help.is_empty() {
            return false;
        }
        let unit = unit.or(self.inner.unit.as_deref());
        self.inner
            .described
            .set((help.to_string(), unit.map(str::to_string)))
            .is_ok()
    }

    /// A number that changes whenever a series may have left the map
    /// (removal, eviction, `clear`, and table growth): a holder of a
    /// series handle that reads the same number as when it looked the
    /// series up knows the series was not removed in between.
    ///
    /// Acquire pairs with the Release bump that follows each unlink, so a
    /// lookup after a load that sees a removal's bump does not find the
    /// removed series (loom M11, M12).
    #[inline]
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn changes(&self) -> u64 {
        self.inner.map.changes()
    }

    /// [`changes`](Self::changes), for the loom models.
    #[doc(hidden)]
    #[cfg(feature = "test-hooks")]
    pub fn changes_for_tests(&self) -> u64 {
        self.changes()
    }

    /// A handle to the family's overflow series, counted as an overflowed
    /// lookup: for series the family cannot hold under their own labels
    /// (the facade's keys whose label names differ from the family's).
    /// `None` for an adopted metric's family, whose overflow series would
    /// be the metric itself.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn overflow_handle(&self) -> Option<M>
    where
        M: Clone,
    {
        if self.inner.adopted {
            return None;
        }
        self.inner.overflowed.fetch_add(1, Relaxed);
        Some(self.inner.overflow.clone())
    }

    /// The label names, in order.
    pub fn label_names(&self) -> &[String] {
        &self.inner.label_names
    }

    /// Removes the series whose metric has not changed over the last
    /// `collections` calls (counting this one); returns how many. Runs at
    /// collection time only: the recording path pays nothing for it.
    ///
    /// "Changed" means its activity fingerprint moved: a counter's value, a
    /// histogram's records (its sum, and its count of zeros), a gauge's value — so a gauge set to the same
    /// value every interval looks idle. An evicted series is detached like
    /// a removed one: handles cloned from it keep counting into the
    /// detached metric, which is no longer exported (look the series up
    /// again instead of keeping handles when eviction is on); an increment
    /// racing the eviction may land there too. The next lookup of those
    /// label values creates a fresh series. Overlapping collections of one
    /// family each count towards `collections`.
    pub fn evict_idle(&self, collections: u32) -> usize {
        let inner = &*self.inner;
        let guard = inner.map.pin();
        let mut idle: Vec<&Node<M>> = Vec::new();
        inner.map.for_each(&guard, |node| {
            let now = node.value.activity();
            // Relaxed: only collection reads and writes these two words.
            if node.seen.swap(now, Relaxed) == now {
                if node.idle.fetch_add(1, Relaxed) + 1 >= u64::from(collections) {
                    idle.push(node);
                }
            } else {
                node.idle.store(0, Relaxed);
            }
        });
        // Remove exactly the nodes found idle (still protected by `guard`),
        // not newer series that took their label values meanwhile.
        let evicted = idle
            .into_iter()
            .filter(|node| inner.map.remove_node(node, &guard))
            .count();
        if evicted > 0 {
            cache::forget_family(inner.id);
        }
        evicted
    }

    /// Calls `f` with every series' shared label values and metric, sorted
    /// by label values, then the overflow series (with `None`) if it was
    /// used; stops at the first error `f` returns. The shared label values
    /// are the same `Arc` for as long as the series lives, a new one for a
    /// series removed and created again (the walk's series identity).
    ///
    /// The sorted list is kept between calls and rebuilt only when series
    /// were inserted or removed since (a version of the map), so a call on
    /// an unchanged family sorts nothing and allocates nothing. The lock is
    /// held only to rebuild the list and share it, never while `f` runs;
    /// recording never takes it.
    #[inline]
    pub(super) fn try_visit_sorted<E>(
        &self,
        f: impl FnMut(Option<&Arc<[Box<str>]>>, &M) -> Result<(), E>,
    ) -> Result<(), E>
    where
        M: Clone,
    {
        self.visit(&self.sorted(), f)
    }

    /// The family's series sorted by label values, shared: the list kept
    /// between calls, rebuilt first if series were inserted or removed
    /// since (see [`try_visit_sorted`](Self::try_visit_sorted)). Holding it
    /// holds every listed metric (and a counter's arena slot).
    pub(super) fn sorted(&self) -> Arc<SortedList<M>>
    where
        M: Clone,
    {
        let inner = &*self.inner;
        // The lock covers the rebuild and a clone of the list's `Arc`, never
        // the closures: a closure may start another walk, write to a slow
        // sink or take its own locks without holding up (or deadlocking
        // with) other walks of this family.
        let mut sorted = inner.sorted.lock().unwrap_or_else(|e| e.into_inner());
        let guard = inner.map.pin();
        let version = inner.map.version(&guard);
        if sorted.version != Some(version) {
            // In place when no walk still reads the old list (no
            // allocation once warm), else into a new one.
            if Arc::get_mut(&mut sorted.series).is_none() {
                sorted.series = Arc::new(Vec::with_capacity(sorted.series.len()));
            }
            if let Some(list) = Arc::get_mut(&mut sorted.series) {
                list.clear();
                inner.map.for_each(&guard, |node| {
                    list.push((Arc::clone(node.labels_arc()), node.value.clone()));
                });
                list.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                sorted.version = Some(version);
            }
        }
        Arc::clone(&sorted.series)
    }

    /// Calls `f` with each series of `series` (from [`sorted`](Self::sorted)),
    /// then with the overflow series (`None` labels) if it was used.
    pub(super) fn visit<E>(
        &self,
        series: &SortedList<M>,
        mut f: impl FnMut(Option<&Arc<[Box<str>]>>, &M) -> Result<(), E>,
    ) -> Result<(), E> {
        for (labels, metric) in series.iter() {
            f(Some(labels), metric)?;
        }
        if self.overflowed() > 0 {
            f(None, &self.inner.overflow)?;
        }
        Ok(())
    }

    pub(super) fn common(&self) -> Common<'_> {
        Common {
            name: &self.inner.name,
            help: self.help(),
            unit: self.unit(),
            label_names: &self.inner.label_names,
            overflowed: self.overflowed(),
        }
    }

    /// The export options (a copy).
    pub(crate) fn export_options(&self) -> ExportOptions {
        self.inner
            .export
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(super) fn set_export(&self, f: impl FnOnce(&mut ExportOptions)) {
        f(&mut self.inner.export.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

impl<M> fmt::Debug for Family<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Family")
            .field("name", &self.inner.name)
            .field("label_names", &self.inner.label_names)
            .field("series", &self.inner.map.len())
            .finish()
    }
}

/// Gives up a thread cache entry's reference to a `Node<M>`.
///
/// # Safety
///
/// As `Node::release`: `node` is a `Node<M>` of a series map and the caller
/// gives up a reference it owns.
unsafe fn release_node<M>(node: *const ()) {
    // SAFETY: the caller's contract.
    unsafe { Node::<M>::release(node.cast()) }
}

impl<M> Drop for Inner<M> {
    fn drop(&mut self) {
        // This thread's entries of the family can go with it (its map
        // flags every node removed as it drops, for other threads').
        cache::forget_family(self.id);
    }
}
