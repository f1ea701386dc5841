//! [`Registry`]: named metric families with label sets, kept in
//! epoch-reclaimed series maps that are read without locks.
//!
//! A registry maps metric names to families. A family is a name, a kind
//! (counter, gauge, histogram, timer), help text, an optional unit, label
//! names, and a series map from label values to metrics. Registering the
//! same name with the same kind and label names again returns the same
//! family (the first help text and unit stay); another kind or other label
//! names is an error. Names and label names follow the Prometheus rules
//! (label names starting with `__` are reserved); label values may be any
//! UTF-8.
//!
//! # Series maps
//!
//! [`Family::with`] on an existing series pins a `crossbeam_epoch` guard,
//! hashes the borrowed label values, probes an open-addressing table and
//! compares the values in full: no lock, no shared read-modify-write, no
//! allocation. A new series is inserted by CAS; growth publishes a new table
//! and retires the old one to the epoch collector; [`Family::remove`] and
//! [`Family::clear`] unlink series and defer their destruction, so a
//! [`Series`] in use stays valid. [`Family::find`] looks up without ever
//! creating. The map's design and its loom-checked invariants (M1–M7) are
//! in `src/registry/map.rs` and `papers/invariants.md`.
//!
//! # Counter storage: the per-CPU arena
//!
//! Every counter series of a registry (labelled or not, and each family's
//! overflow series) is a [`Counter`](crate::Counter) whose words live in the registry's
//! per-CPU arena: chunks of `[cpu][slot]` rows, one page-aligned 4 KiB row
//! of 512 slots per CPU, so a series costs 8 bytes per CPU instead of a
//! 128-byte padded shard, and two CPUs never write one cache line. A
//! chunk's row for a CPU is installed on that CPU's first write to the
//! chunk, so memory and scrape work follow the CPUs that record, not the
//! shard count: 10 000 series at 256 shards written from 2 CPUs take
//! 20 chunks × (2 rows, a 2 KiB row directory and a bitmap) ≈ 220 KiB
//! ([`Registry::counter_arena_bytes`]). A collection walk sums each
//! chunk's installed rows page by page and reads series values from those
//! sums (A1, A2). A slot goes back to the arena when the last handle to
//! its counter is dropped; for a removed series that is after the epoch
//! collector has reclaimed its node, so a slot is never handed out while a
//! reader can still reach its old series (M7). The shard count is set with
//! [`RegistryBuilder::shards`].
//!
//! # Bounds
//!
//! Each family holds at most its cardinality limit of series
//! ([`DEFAULT_CARDINALITY_LIMIT`] unless set with
//! [`Registry::with_cardinality_limit`]); past it, new label values share
//! one overflow series, exported with the single label
//! `metricz_overflow="true"`, and [`Family::overflowed`] counts those
//! lookups (exported as `metricz_cardinality_overflow_total{family=…}`).
//! The limit is never exceeded, even by racing inserts: each insert
//! reserves its place before installing. The flip side, at the limit's
//! edge: while two threads race to create the *same* new series, both hold
//! a reservation for a moment, so a third thread creating another new
//! series just then may be routed to the overflow series although one
//! place would have remained.
//!
//! # Handles and `take`
//!
//! [`Family::with`] returns a [`Series`] that holds an epoch guard (not
//! `Send`: use it and drop it); [`Family::handle`] returns an owned clone
//! of the metric to keep or hold across an `.await`, and
//! [`Family::with_fn`] runs a closure on the series. A registry's counters
//! are plain [`Counter`](crate::Counter)s, so [`Counter::take`](crate::Counter::take) is reachable on them. Do
//! not call it on a counter a registry exports: the exported value goes
//! backwards, which Prometheus reads as a counter reset (as after a
//! restart), losing from `rate()` whatever was counted since the last
//! scrape. It stays reachable because one `Counter` type serves standalone
//! and registered use (what [`Registry::register`] adopts, what handles
//! share); a second counter type without `take` would split every API that
//! takes a counter. Exporters that need deltas keep baselines instead
//! (StatsD's `Deltas`).
//!
//! # Collection
//!
//! [`Registry::collect`] walks the families by name and each family's
//! series by label values, reading metrics as recording goes on; it never
//! blocks recording and allocates nothing once warm. Every encoder in
//! `metricz::export` is a function over this walk
//! ([`Registry::encode_prometheus`] is the text encoder's).
//!
//! ```
//! use metricz::Registry;
//!
//! let reg = Registry::new();
//! let hits = reg.counter("http_requests_total", "Requests served.")?;
//! let by_route = reg.counter_vec("route_requests_total", "Requests by route.", &["method", "status"])?;
//! hits.inc();
//! by_route.with(&["GET", "200"])?.inc();
//! by_route.with(&["GET", "200"])?.add(2);
//! by_route.with(&["POST", "500"])?.inc();
//!
//! let mut buf = String::new();
//! reg.encode_prometheus(&mut buf)?;
//! assert!(buf.contains("route_requests_total{method=\"GET\",status=\"200\"} 3\n"));
//! assert!(buf.contains("# TYPE http_requests_total counter\nhttp_requests_total 1\n"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod buckets;
mod cache;
pub mod collect;
mod describe;
pub(crate) mod error;
mod families;
mod family;
mod family_export;
mod hash;
mod labels;
mod map;
mod recorder;
mod series;
mod stored;
#[cfg_attr(not(feature = "metrics"), allow(unused_imports))]
pub(crate) use stored::Stored;

pub use buckets::{
    NativeSettings, DEFAULT_HISTOGRAM_BUCKETS, DEFAULT_NATIVE_SCHEMA,
    DEFAULT_NATIVE_ZERO_THRESHOLD, DEFAULT_TIMER_BUCKETS,
};
pub use collect::{
    BucketCounts, Distribution, FamilyView, LabelSet, SeriesId, SeriesView, Value, OVERFLOW_FAMILY,
};
pub use describe::Describe;
pub use error::{MetricKind, RegistryError, OVERFLOW_LABEL};
pub(crate) use families::counter_base;
pub use families::{Registry, RegistryBuilder, DEFAULT_CARDINALITY_LIMIT};
pub use family::{CounterVec, Family, GaugeVec, HistogramVec, Metric, TimerVec};
pub use labels::{display, Display, LabelValue, LabelValues, Text};
pub use recorder::OperationRecorder;
pub use series::Series;
