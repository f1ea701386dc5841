//! A backend for the [`metrics`] facade (feature `metrics`): every
//! `counter!`, `gauge!` and `histogram!` of a program and its libraries
//! recorded into a [`Registry`], on its per-CPU counters and HDR
//! histograms, exported by its encoders and endpoint.
//!
//! Switching a program instrumented with `metrics` is two lines: build a
//! registry and [`install`] it (then serve the registry, e.g. with
//! `metricz::export::http`).
//!
//! ```
//! use metricz::{facade, Registry};
//!
//! let registry = Registry::new();
//! facade::install(registry.clone())?;
//!
//! // Anywhere in the program or its dependencies:
//! metrics::describe_counter!("http_requests_total", "Requests served.");
//! metrics::counter!("http_requests_total", "method" => "GET", "status" => "200").increment(1);
//! metrics::gauge!("queue_depth").set(3.0);
//! metrics::histogram!("request_duration_seconds").record(0.0042);
//!
//! let mut text = String::new();
//! registry.encode_prometheus(&mut text)?;
//! assert!(text.contains("# HELP http_requests_total Requests served.\n"));
//! assert!(text.contains("http_requests_total{method=\"GET\",status=\"200\"} 1\n"));
//! assert!(text.contains("queue_depth 3\n"));
//! assert!(text.contains("request_duration_seconds_bucket{le=\"0.005\"} 1\n"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The mapping
//!
//! | `metrics` | metricz |
//! |---|---|
//! | counter | a [`Counter`](crate::Counter) in the registry's per-CPU arena; `increment` adds with an rseq per-CPU add; `absolute(v)` raises it to `v` if it is below (never lowers it) |
//! | gauge | a [`Gauge`](crate::Gauge) (`f64`; `increment`/`decrement` by compare-and-swap) |
//! | histogram | an HDR [`Histogram`](crate::Histogram) of `f64` values through [`Histogram::record_f64`](crate::Histogram::record_f64), 3 significant figures, exported as cumulative buckets (below) |
//! | `describe_*` | HELP and, when the name ends in `_<unit>`, OpenMetrics UNIT |
//!
//! **Names.** A metric name becomes a Prometheus name: every character
//! outside `[a-zA-Z0-9_:]` turns into `_` (`http.requests` →
//! `http_requests`) and a leading digit gains a `_`; label names the same
//! without `:`. Each family's label names are sorted, so keys whose labels
//! differ only in order are one series. Names starting with `metricz_` stay
//! the registry's own. A counter's name gains `_total` if it lacks it
//! (`counter!("requests")` is `requests_total`): Prometheus names counters
//! so, and stores that name anyway when it scrapes OpenMetrics, which the
//! endpoint serves it by preference.
//!
//! **Histogram resolution.** A histogram's recorded integers are its
//! values divided by a scale chosen from its unit: the unit of
//! `describe_histogram!`, or else the name's suffix. Seconds are recorded
//! in nanoseconds (scale 1e-9), milliseconds in nanoseconds (1e-6),
//! microseconds in nanoseconds (1e-3), nanoseconds as they are (1); bytes
//! (of any size unit) and counts as whole numbers (1); any other unit, or
//! none, in millionths (1e-6). The range is 1 to 10¹⁵ recorded integers
//! (11 days in seconds, 10⁹ at the unitless scale), at 3 significant
//! figures; larger values are clamped and counted, negative values
//! recorded as 0 and NaN skipped, both counted
//! ([`Histogram::invalid`](crate::Histogram::invalid)); one `record_many`
//! makes at most 2³² records.
//! Exported buckets: [`DEFAULT_TIMER_BUCKETS`](crate::registry::DEFAULT_TIMER_BUCKETS)
//! (5 ms to 10 s) in the histogram's time unit for time units,
//! [`DEFAULT_HISTOGRAM_BUCKETS`](crate::registry::DEFAULT_HISTOGRAM_BUCKETS)
//! otherwise. The scale is fixed when a histogram's family is created, so
//! describe it (or name it `…_seconds`) before its first record. For other
//! settings, register the family in the registry first (with
//! [`Registry::describe`]); the facade uses a family it finds when its kind
//! and label names match (in any order; a counter family registered under
//! a name without `_total` keeps that name). A timer family is not a
//! histogram: `histogram!` of its name records nothing.
//!
//! **Descriptions** given after a name's first use still set its HELP and
//! UNIT, once; the first description of a name wins.
//!
//! **Conflicts.** A key whose label names differ from those its family was
//! created with (`requests{method}` after `requests{method,status}`) is
//! counted in the family's overflow series, exported with the single label
//! `metricz_overflow="true"` and counted in
//! `metricz_cardinality_overflow_total{family=…}` (once per thread that
//! resolves the key, not once per call), so the family's sums stay whole
//! and the output stays valid. (`absolute` on that shared series raises it
//! to the largest value given, not their sum.) A name already registered
//! as another kind (`kind`), whose exposition would collide with another
//! family's (`collision`, e.g. a gauge `x` beside a counter `x_total`), or
//! that no sanitising makes valid (`name`), and keys with reserved or
//! repeated label names, or with labels for a family that is one adopted
//! metric ([`Registry::register`]) (`labels`), get a handle that records
//! nothing, counted in `metricz_facade_rejected_total{reason=…}` (once per
//! thread that resolves the key). The registry's cardinality limit and
//! idle eviction apply as to any family.
//!
//! **Kept handles.** A handle kept from a macro (`let hits =
//! counter!(…);`) is the series' metric at that moment and is not looked
//! up again. If the series is removed or evicted as idle, the kept handle
//! records into the detached metric, which is no longer exported (and a
//! new series for the key starts from zero). Idle eviction sees values,
//! not writes: a gauge set to the same value every interval looks idle.
//! So with [`Registry::set_idle_eviction`] on, call the macro at each use
//! (the cache makes that cheap) instead of keeping handles.
//!
//! # The hot path
//!
//! The macros call `register_*` on every use and drop the returned handle
//! at once. Each thread keeps a cache from keys to handles of its own: a
//! lookup by the key's precomputed hash ([`metrics::Key::get_hash`]) with
//! full key equality behind it, no lock and no allocation. The handle it
//! returns is an `Arc` made by and for this thread, so the clone and drop
//! the macro does touch a reference count no other thread writes; the
//! counter behind it is the series' shared per-CPU counter. An entry is
//! checked against its family's change number (one load) and resolved
//! again after a removal or eviction, so increments reach the live series.
//! A thread caches at most 4096 keys; past that each new key replaces one
//! (near its slot, so about at random), and a key that misses costs a slow
//! lookup (registration lock, allocation: about a microsecond). After a
//! removal, eviction, `clear` or growth of a family, every thread looks
//! each of its cached keys of that family up again once. Entries of a
//! dropped recorder stay in threads' caches (keeping their series'
//! storage) until replaced or the threads exit.

mod cache;
mod handles;
mod resolve;

use crate::registry::{CounterVec, MetricKind, RegistryError};
use crate::Registry;
use metrics::{Key, KeyName, Metadata, SharedString, Unit};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};

/// A [`metrics::Recorder`] over a [`Registry`]. Cloning is cheap and shares
/// the recorder (and its threads' caches).
///
/// ```
/// use metricz::{facade::Recorder, Registry};
///
/// let registry = Registry::new();
/// let recorder = Recorder::new(registry.clone());
/// metrics::with_local_recorder(&recorder, || {
///     metrics::counter!("jobs_total", "queue" => "mail").increment(2);
/// });
/// let jobs = registry.counter_vec("jobs_total", "", &["queue"])?;
/// assert_eq!(jobs.find(&["mail"])?.map(|c| c.get()), Some(2));
/// # Ok::<(), metricz::RegistryError>(())
/// ```
#[derive(Clone)]
pub struct Recorder {
    shared: Arc<Shared>,
}

/// Help and unit by kind and family name, as `describe_*` gave them.
type Descriptions = HashMap<(MetricKind, String), (String, Option<Unit>)>;

/// What every clone of a recorder and every thread's cache entry shares.
pub(crate) struct Shared {
    /// Tells this recorder's entries in the thread caches from others'.
    id: u64,
    registry: Registry,
    /// Descriptions by kind and family name: help and unit.
    descriptions: Mutex<Descriptions>,
    /// `metricz_facade_rejected_total{reason}`, registered at the first
    /// rejection (so a registry without one exports no such family).
    rejected: OnceLock<Option<CounterVec>>,
    /// Every rejection (all reasons), for [`Recorder::rejected`].
    rejected_total: AtomicU64,
}

impl Recorder {
    /// A recorder that records into `registry`.
    pub fn new(registry: Registry) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Recorder {
            shared: Arc::new(Shared {
                // Relaxed: only uniqueness matters.
                id: NEXT_ID.fetch_add(1, Relaxed),
                registry,
                descriptions: Mutex::new(HashMap::new()),
                rejected: OnceLock::new(),
                rejected_total: AtomicU64::new(0),
            }),
        }
    }

    /// The registry this recorder records into.
    pub fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    /// How many key resolutions were rejected (see the
    /// [module docs](self#the-mapping)): counted once per thread that
    /// resolves a rejected key.
    pub fn rejected(&self) -> u64 {
        self.shared.rejected_total.load(Relaxed)
    }
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("id", &self.shared.id)
            .field("rejected", &self.rejected())
            .finish_non_exhaustive()
    }
}

/// Installs a recorder over `registry` as the global `metrics` recorder
/// and returns a clone of it.
///
/// # Errors
///
/// [`InstallError`] if a global recorder is already set (by this function
/// or any other backend): `metrics` allows one per process.
pub fn install(registry: Registry) -> Result<Recorder, InstallError> {
    let recorder = Recorder::new(registry);
    metrics::set_global_recorder(recorder.clone()).map_err(|_| InstallError { _private: () })?;
    Ok(recorder)
}

/// The error of [`install`]: a global `metrics` recorder is already set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallError {
    _private: (),
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a global metrics recorder is already set")
    }
}

impl std::error::Error for InstallError {}

impl metrics::Recorder for Recorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.shared
            .describe::<crate::Counter>(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.shared.describe::<crate::Gauge>(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.shared
            .describe::<crate::Histogram>(key, unit, description);
    }

    #[inline]
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> metrics::Counter {
        cache::lookup::<crate::Counter>(&self.shared, key)
    }

    #[inline]
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> metrics::Gauge {
        cache::lookup::<crate::Gauge>(&self.shared, key)
    }

    #[inline]
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> metrics::Histogram {
        cache::lookup::<crate::Histogram>(&self.shared, key)
    }
}

/// Why a key records nothing (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rejection {
    Kind,
    Collision,
    Name,
    Labels,
}

impl Shared {
    /// Counts a rejection, by reason and in all.
    fn reject(&self, rejection: Rejection) {
        let family = self.rejected.get_or_init(|| {
            // The name is reserved to metricz (`metricz_`), valid, and of
            // this kind and label wherever it is registered, so this
            // succeeds; if it ever did not, the total below still counts.
            self.registry
                .self_counter_vec(
                    "metricz_facade_rejected_total",
                    "metrics facade keys that record nothing, by reason: kind (the name is another kind's), collision (the exposition would collide with another family's), name (no valid name), labels (reserved or repeated label names, or labels for an adopted metric).",
                    &["reason"],
                )
                .ok()
        });
        if let Some(family) = family {
            family.with(&[rejection.label()]).map(|c| c.inc()).ok();
        }
        // Relaxed: a tally.
        self.rejected_total.fetch_add(1, Relaxed);
    }
}

impl Rejection {
    fn of(error: &RegistryError) -> Self {
        match error {
            RegistryError::KindConflict { .. } => Rejection::Kind,
            RegistryError::NameCollision { .. } => Rejection::Collision,
            RegistryError::InvalidLabelName(_)
            | RegistryError::ReservedLabelName(_)
            | RegistryError::DuplicateLabelName(_)
            | RegistryError::LabelCountMismatch { .. }
            | RegistryError::LabelNamesConflict { .. } => Rejection::Labels,
            _ => Rejection::Name,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Rejection::Kind => "kind",
            Rejection::Collision => "collision",
            Rejection::Name => "name",
            Rejection::Labels => "labels",
        }
    }
}
