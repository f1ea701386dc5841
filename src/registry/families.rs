//! [`Registry`]: the families by name, registration, and the settings
//! every family of a registry shares.

use super::error;
use super::error::{MetricKind, RegistryError};
use super::family::{CounterVec, Family, GaugeVec, HistogramVec, TimerVec};
use super::stored::{AnyFamily, Make, Stored};
use super::{collect, hash};
use crate::counter::arena::Arena;
use crate::primitive::{Arc, AtomicU32, Mutex, Ordering::Relaxed};
use crate::{Counter, Gauge, Histogram, Timer};
use std::collections::BTreeMap;
use std::fmt;

/// Series per family before new label values go to the overflow series.
pub const DEFAULT_CARDINALITY_LIMIT: usize = 10_000;

/// Named metric families; cheap to clone (clones share), `Send + Sync`.
///
/// See the [module docs](super).
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    families: Mutex<BTreeMap<String, AnyFamily>>,
    /// Reused by collection walks: the family list and bucket buffers, so
    /// a walk of an unchanged registry allocates nothing.
    collect_scratch: Mutex<collect::Scratch>,
    /// Reused by eviction passes: the family list, copied under the
    /// registration lock and walked after it is released.
    evict_scratch: Mutex<Vec<AnyFamily>>,
    /// Storage of every counter series of this registry.
    arena: Arc<Arena>,
    seed: hash::Seed,
    limit: usize,
    /// Evict series unchanged for this many collections (0: never).
    idle_collections: AtomicU32,
}

/// The OpenMetrics family name of a counter: its name without `_total`
/// (unless that would leave nothing).
pub(crate) fn counter_base(name: &str) -> &str {
    match name.strip_suffix("_total") {
        Some(base) if !base.is_empty() => base,
        _ => name,
    }
}

/// Every family and sample name the exposition of a family `name` of
/// `kind` writes, in Prometheus text and OpenMetrics: two families whose
/// sets meet would produce output a parser rejects or merges.
fn exposition_names(name: &str, kind: MetricKind) -> Vec<String> {
    match kind {
        MetricKind::Counter => {
            let base = counter_base(name);
            vec![
                name.to_string(),
                base.to_string(),
                format!("{base}_total"),
                format!("{base}_created"),
            ]
        }
        MetricKind::Gauge => vec![name.to_string()],
        MetricKind::Histogram | MetricKind::Timer => ["", "_bucket", "_sum", "_count", "_created"]
            .iter()
            .map(|suffix| format!("{name}{suffix}"))
            .collect(),
    }
}

impl Registry {
    /// An empty registry with the default cardinality limit.
    pub fn new() -> Self {
        Self::with_cardinality_limit(DEFAULT_CARDINALITY_LIMIT)
    }

    /// An empty registry whose families hold at most `limit` series each
    /// (at least 1).
    pub fn with_cardinality_limit(limit: usize) -> Self {
        Self::builder().cardinality_limit(limit).build()
    }

    /// A builder for a registry with other settings than the defaults.
    ///
    /// ```
    /// use metricz::Registry;
    ///
    /// let reg = Registry::builder().cardinality_limit(500).shards(64).build();
    /// let c = reg.counter_vec("jobs_total", "Jobs.", &["queue"])?;
    /// c.with(&["mail"])?.inc();
    /// assert_eq!(c.with(&["mail"])?.shards(), 64);
    /// assert_eq!(c.cardinality_limit(), 500);
    /// # Ok::<(), metricz::RegistryError>(())
    /// ```
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder {
            limit: DEFAULT_CARDINALITY_LIMIT,
            shards: None,
        }
    }

    /// Bytes of counter storage in the registry's per-CPU arena: chunks of
    /// 512 slots, each with a directory of one pointer per shard and a 4 KiB
    /// row (8 bytes per slot) for each CPU that has written to the chunk —
    /// rows follow the CPUs that record, not the shard count — plus
    /// nothing per series beyond its slot.
    pub fn counter_arena_bytes(&self) -> usize {
        self.inner.arena.bytes()
    }

    /// `(chunks, rows)`: the arena chunks installed, and the per-CPU rows
    /// installed in them (a row appears on the first write from its CPU).
    /// A test hook (feature `test-hooks`), not part of the API.
    #[doc(hidden)]
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn counter_arena_rows(&self) -> (usize, usize) {
        self.inner.arena.installed()
    }

    fn family<M: Stored>(
        &self,
        name: &str,
        help: &str,
        unit: Option<&str>,
        labels: &[&str],
    ) -> Result<Family<M>, RegistryError> {
        error::check_metric_name(name)?;
        // A counter named just `_total` has no OpenMetrics family name, and
        // parsers that strip the suffix are left with an empty name.
        if M::KIND == MetricKind::Counter && name == "_total" {
            return Err(RegistryError::InvalidMetricName(name.to_string()));
        }
        self.family_unchecked_prefix(name, help, unit, labels, None, false)
            .map(|(family, _)| family)
    }

    /// A self-metric family of metricz itself (pushers' failures and drops,
    /// …): the `metricz_` prefix, reserved to users, is allowed here.
    pub(crate) fn self_counter_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<CounterVec, RegistryError> {
        debug_assert!(name.starts_with("metricz_"));
        self.family_unchecked_prefix(name, help, None, labels, None, false)
            .map(|(family, _)| family)
    }

    /// [`family`](Self::family) without the reserved-prefix rule (the name
    /// is still checked against the Prometheus rules), making series with
    /// `make` (default: the kind's own), and saying whether the family was
    /// created (rather than found). With `adopted`, `make` hands out one
    /// metric built outside the registry (see [`Registry::register`]), so
    /// the family has no overflow series of its own to offer
    /// ([`Family::overflow_handle`]).
    pub(super) fn family_unchecked_prefix<M: Stored>(
        &self,
        name: &str,
        help: &str,
        unit: Option<&str>,
        labels: &[&str],
        make: Option<Make<M>>,
        adopted: bool,
    ) -> Result<(Family<M>, bool), RegistryError> {
        if let Err(e) = error::check_metric_name(name) {
            if !matches!(e, RegistryError::ReservedMetricName(_)) {
                return Err(e);
            }
        }
        error::check_label_names(labels)?;
        if let Some(unit) = unit {
            error::check_unit(unit)?;
        }
        let mut families = self
            .inner
            .families
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = families.get(name) {
            let Some(family) = M::unwrap(existing) else {
                return Err(RegistryError::KindConflict {
                    name: name.to_string(),
                    registered: existing.kind(),
                    requested: M::KIND,
                });
            };
            if existing.label_names() != labels {
                return Err(RegistryError::LabelNamesConflict {
                    name: name.to_string(),
                    registered: existing.label_names().to_vec(),
                    requested: labels.iter().map(|l| l.to_string()).collect(),
                });
            }
            return Ok((family.clone(), false));
        }
        let wanted = exposition_names(name, M::KIND);
        for (existing_name, existing) in families.iter() {
            let taken = exposition_names(existing_name, existing.kind());
            if wanted.iter().any(|n| taken.contains(n)) {
                return Err(RegistryError::NameCollision {
                    name: name.to_string(),
                    existing: existing_name.clone(),
                });
            }
        }
        let family = Family::new(
            name.to_string(),
            help.to_string(),
            unit.map(str::to_string),
            labels.iter().map(|l| l.to_string()).collect(),
            self.inner.limit,
            self.inner.seed.clone(),
            make.unwrap_or_else(|| M::make(&self.inner.arena)),
            adopted,
        );
        families.insert(name.to_string(), M::wrap(family.clone()));
        Ok((family, true))
    }

    /// The registered family `name` if it is of kind `M`, whatever its
    /// label names.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn existing<M: Stored>(&self, name: &str) -> Option<Family<M>> {
        let families = self
            .inner
            .families
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        families.get(name).and_then(M::unwrap).cloned()
    }

    fn single<M: Stored + Clone>(
        &self,
        name: &str,
        help: &str,
        unit: Option<&str>,
    ) -> Result<M, RegistryError> {
        let family = self.family::<M>(name, help, unit, &[])?;
        let series = family.with(&())?;
        Ok((*series).clone())
    }

    /// The counter `name` (created on first use); the handle shares it.
    pub fn counter(&self, name: &str, help: &str) -> Result<Counter, RegistryError> {
        self.single(name, help, None)
    }

    /// The counter family `name` with label names `labels`.
    pub fn counter_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<CounterVec, RegistryError> {
        self.family(name, help, None, labels)
    }

    /// The gauge `name`; the handle shares it.
    pub fn gauge(&self, name: &str, help: &str) -> Result<Gauge, RegistryError> {
        self.single(name, help, None)
    }

    /// The gauge family `name` with label names `labels`.
    pub fn gauge_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<GaugeVec, RegistryError> {
        self.family(name, help, None, labels)
    }

    /// The histogram `name` (default configuration); the handle shares it.
    pub fn histogram(&self, name: &str, help: &str) -> Result<Histogram, RegistryError> {
        self.single(name, help, None)
    }

    /// The histogram family `name` with label names `labels`.
    pub fn histogram_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<HistogramVec, RegistryError> {
        self.family(name, help, None, labels)
    }

    /// The timer `name` (nanoseconds, exported in seconds); the handle
    /// shares it.
    pub fn timer(&self, name: &str, help: &str) -> Result<Timer, RegistryError> {
        self.single(name, help, Some("seconds"))
    }

    /// The timer family `name` with label names `labels`.
    pub fn timer_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<TimerVec, RegistryError> {
        self.family(name, help, Some("seconds"), labels)
    }

    /// Turns on idle-series eviction: each collection
    /// ([`encode_prometheus`](Self::encode_prometheus) or
    /// [`evict_idle`](Self::evict_idle)) removes the labelled series whose
    /// value has not changed over the last `collections` collections
    /// (0 turns eviction off, the default). Unlabelled metrics are never
    /// evicted. Decided at collection time; recording pays nothing for it.
    pub fn set_idle_eviction(&self, collections: u32) {
        self.inner.idle_collections.store(collections, Relaxed);
    }

    /// One eviction pass (see [`set_idle_eviction`](Self::set_idle_eviction));
    /// returns how many series were removed. A no-op while eviction is off.
    pub fn evict_idle(&self) -> usize {
        let collections = self.inner.idle_collections.load(Relaxed);
        if collections == 0 {
            return 0;
        }
        // A copy of the family handles (Arc clones) into a reused list, so a
        // pass that evicts nothing allocates nothing once warm, and
        // registration waits only for the copy, not the pass. Recording
        // never takes either lock.
        let mut families = self
            .inner
            .evict_scratch
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        self.copy_families_into(&mut families);
        let evicted = families
            .iter()
            .map(|family| match family {
                AnyFamily::Counter(f) if !f.label_names().is_empty() => f.evict_idle(collections),
                AnyFamily::Gauge(f) if !f.label_names().is_empty() => f.evict_idle(collections),
                AnyFamily::Histogram(f) if !f.label_names().is_empty() => f.evict_idle(collections),
                AnyFamily::Timer(f) if !f.label_names().is_empty() => f.evict_idle(collections),
                _ => 0,
            })
            .sum();
        // Drop the handles now: a family removed meanwhile is not kept
        // alive by the scratch.
        families.clear();
        evicted
    }

    /// Replaces `into`'s contents with every family, sorted by name (handle
    /// clones into a reused list: no allocation once its capacity fits).
    /// Takes the registration lock only for the copy.
    fn copy_families_into(&self, into: &mut Vec<AnyFamily>) {
        into.clear();
        into.extend(
            self.inner
                .families
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .cloned(),
        );
    }
}

impl Registry {
    /// Walks every family in name order, then the overflow report (see the
    /// [`collect` module](super::collect)); `f` sees each family once and
    /// may walk its series with
    /// [`FamilyView::for_each_series`](super::FamilyView::for_each_series).
    /// Stops at the first error `f` returns, and returns it.
    ///
    /// Runs an idle-eviction pass first when eviction is on
    /// ([`set_idle_eviction`](Self::set_idle_eviction)). Never blocks
    /// recording; allocates nothing once warm. No lock is held while `f`
    /// or a series closure runs (each family's sorted list is shared, not
    /// locked), so a closure may register, look up, remove, or start
    /// another walk (which then uses fresh buffers).
    pub fn collect<E>(
        &self,
        f: impl FnMut(&mut collect::FamilyView<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.evict_idle();
        // One walk at a time reuses the scratch; a concurrent one gets
        // fresh buffers rather than waiting.
        let mut fresh = collect::Scratch::default();
        let mut guard = match self.inner.collect_scratch.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        };
        let scratch = guard.as_deref_mut().unwrap_or(&mut fresh);
        self.copy_families_into(scratch.families());
        collect::walk(scratch, &self.inner.arena, f)
    }
}

/// Settings for a [`Registry`]; from [`Registry::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RegistryBuilder {
    limit: usize,
    shards: Option<usize>,
}

impl RegistryBuilder {
    /// Series per family before new label values go to the overflow series
    /// (at least 1; default [`DEFAULT_CARDINALITY_LIMIT`]).
    pub fn cardinality_limit(mut self, limit: usize) -> Self {
        self.limit = limit.max(1);
        self
    }

    /// Shards of the registry's counters (rounded up to a power of two and
    /// clamped to `1..=65536`); default: the next power of two of the
    /// CPUs the machine can have, like [`Counter::new`]. Fewer shards than
    /// CPUs mask CPU ids onto the shards, with locked increments (see
    /// [`Counter::with_shards`](crate::Counter::with_shards)).
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// The registry.
    pub fn build(self) -> Registry {
        let shards = self
            .shards
            .unwrap_or_else(crate::counter::shards::default_count);
        Registry {
            inner: Arc::new(Inner {
                families: Mutex::new(BTreeMap::new()),
                collect_scratch: Mutex::new(Default::default()),
                evict_scratch: Mutex::new(Vec::new()),
                arena: Arena::new(shards),
                seed: hash::random_seed(),
                limit: self.limit.max(1),
                idle_collections: AtomicU32::new(0),
            }),
        }
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field(
                "families",
                &self
                    .inner
                    .families
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .len(),
            )
            .field("cardinality_limit", &self.inner.limit)
            .finish()
    }
}
