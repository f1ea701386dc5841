//! The `metrics` facade section of the study and `benches/facade.rs`: the
//! macros users write (`counter!`, `histogram!`), timed through metricz's
//! `facade::Recorder` and through `metrics-exporter-prometheus`'s
//! `PrometheusRecorder`, each worker thread running its whole loop (warm-up
//! and timed part) inside `metrics::with_local_recorder`, so the global
//! recorder plays no part and each call is exactly the macro's path: the
//! thread-local recorder read, `register_*`, the handle's operation and its
//! drop.

use super::VALUES_LEN;
use rayon::ThreadPool;
use std::sync::OnceLock;
use std::time::Duration;

/// Calls `$m!` with every recorder the facade section and bench compare:
/// metricz, then the peer.
#[allow(unused_macros)] // each target uses one of the lists
macro_rules! for_each_facade {
    ($m:ident) => {
        $m!(
            $crate::support::facade::MetriczFacade,
            $crate::support::facade::ExporterFacade
        )
    };
}
#[allow(unused_imports)]
pub(crate) use for_each_facade;

/// The counter every counter workload increments (one series, shared by
/// all threads). The macros in [`timed_facade`] spell it (and
/// [`HISTOGRAM_NAME`], [`STATUS`]) as literals: a static `Key` needs them.
pub const COUNTER_NAME: &str = "r_total";
/// The histogram the histogram workload records (seconds, no labels).
pub const HISTOGRAM_NAME: &str = "latency_seconds";
/// The `status` label value of the counter series.
pub const STATUS: &str = "200";

/// What a facade run times on every thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// `counter!("r_total", "method" => "GET", "status" => "200")
    /// .increment(1)`: literal labels, so the macro builds a static `Key`
    /// (its hash computed at compile time).
    CounterStatic,
    /// `counter!("r_total", "method" => "GET", "status" => status)
    /// .increment(1)` with `status` a `&'static str` the thread holds,
    /// chosen at run time (through `black_box`) before the warm-up: the
    /// macro allocates a `Vec` of two labels and hashes the key on every
    /// call (the label strings themselves are borrowed, not allocated).
    CounterRuntime,
    /// `histogram!("latency_seconds").record(v)`, `v` walking
    /// [`values_seconds`] (the study's value table in seconds) with a
    /// per-thread cursor.
    Histogram,
}

impl Workload {
    /// Every workload, in table order.
    pub const ALL: [Workload; 3] = [
        Workload::CounterStatic,
        Workload::CounterRuntime,
        Workload::Histogram,
    ];

    /// A short name for bench ids and curve names.
    pub fn name(self) -> &'static str {
        match self {
            Workload::CounterStatic => "counter-static",
            Workload::CounterRuntime => "counter-runtime",
            Workload::Histogram => "histogram",
        }
    }

    /// Whether it records into the histogram (else the counter).
    pub fn is_histogram(self) -> bool {
        self == Workload::Histogram
    }
}

/// A `metrics` recorder as the facade section drives it: built fresh for
/// each run, read back after it.
pub trait FacadeStrategy: Sync + Sized {
    /// The recorder type.
    type Recorder: metrics::Recorder + Sync;
    /// The implementation's part of curve names.
    const NAME: &'static str;
    /// Curve names by workload ([`Workload::ALL`] order).
    const CURVES: [&'static str; 3];

    /// A fresh recorder over fresh storage.
    fn build() -> Self;

    /// The recorder the threads set as their local one.
    fn recorder(&self) -> &Self::Recorder;

    /// The value of `r_total{method="GET",status="200"}`, `None` if the
    /// series is missing.
    fn counter_total(&self) -> Option<u64>;

    /// Records in `latency_seconds`, `None` if the series is missing. For
    /// the exporter this scrapes, which drains the samples it holds.
    fn histogram_count(&self) -> Option<u64>;

    /// Bytes the histogram series holds after `records` records (measured
    /// where the implementation reports it, estimated otherwise).
    fn histogram_bytes(&self, records: u64) -> usize;

    /// The curve name of `workload`.
    fn curve(workload: Workload) -> &'static str {
        let i = Workload::ALL
            .iter()
            .position(|&w| w == workload)
            .expect("every workload is listed");
        Self::CURVES[i]
    }
}

/// metricz's `facade::Recorder` over a fresh `Registry`. The series live in
/// the registry: the counter in its per-CPU arena, the histogram an HDR
/// histogram of nanoseconds (the `_seconds` suffix sets the scale).
#[derive(Debug)]
pub struct MetriczFacade {
    registry: metricz::Registry,
    recorder: metricz::facade::Recorder,
}

impl FacadeStrategy for MetriczFacade {
    type Recorder = metricz::facade::Recorder;
    const NAME: &'static str = "metricz";
    const CURVES: [&'static str; 3] = [
        "metricz/counter-static",
        "metricz/counter-runtime",
        "metricz/histogram",
    ];

    fn build() -> Self {
        let registry = metricz::Registry::new();
        let recorder = metricz::facade::Recorder::new(registry.clone());
        MetriczFacade { registry, recorder }
    }

    fn recorder(&self) -> &Self::Recorder {
        &self.recorder
    }

    /// Read from the registry; `None` also if the recorder rejected a key.
    fn counter_total(&self) -> Option<u64> {
        if self.recorder.rejected() != 0 {
            return None;
        }
        self.registry
            .counter_vec(COUNTER_NAME, "", &["method", "status"])
            .ok()?
            .find(&["GET", STATUS])
            .ok()?
            .map(|c| c.get())
    }

    fn histogram_count(&self) -> Option<u64> {
        if self.recorder.rejected() != 0 {
            return None;
        }
        Some(self.registry.histogram(HISTOGRAM_NAME, "").ok()?.count())
    }

    /// Measured: `Histogram::bytes_used` of the series.
    fn histogram_bytes(&self, _: u64) -> usize {
        self.registry
            .histogram(HISTOGRAM_NAME, "")
            .map_or(0, |h| h.bytes_used())
    }
}

/// `metrics-exporter-prometheus`'s recorder
/// (`PrometheusBuilder::new().build_recorder()`, default settings, not
/// installed): `register_*` reads its sharded `RwLock<HashMap>` of keys;
/// a histogram record appends the raw sample to a lock-free bucket that
/// only a scrape drains.
#[derive(Debug)]
pub struct ExporterFacade(metrics_exporter_prometheus::PrometheusRecorder);

impl FacadeStrategy for ExporterFacade {
    type Recorder = metrics_exporter_prometheus::PrometheusRecorder;
    const NAME: &'static str = "metrics-exporter";
    const CURVES: [&'static str; 3] = [
        "metrics-exporter/counter-static",
        "metrics-exporter/counter-runtime",
        "metrics-exporter/histogram",
    ];

    fn build() -> Self {
        ExporterFacade(metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder())
    }

    fn recorder(&self) -> &Self::Recorder {
        &self.0
    }

    /// Renders (scrapes) the recorder and reads the series' sample.
    fn counter_total(&self) -> Option<u64> {
        let series = format!("{COUNTER_NAME}{{method=\"GET\",status=\"{STATUS}\"}}");
        super::exposition_count(&self.0.handle().render(), &series)
    }

    /// Renders (scrapes) the recorder, which drains the held samples, and
    /// reads the summary's `_count`.
    fn histogram_count(&self) -> Option<u64> {
        super::exposition_count(
            &self.0.handle().render(),
            &format!("{HISTOGRAM_NAME}_count"),
        )
    }

    /// Estimated as in the histogram section (`MetricsHistogram`): it keeps
    /// every sample, an `f64` each, until a scrape drains them, so this is
    /// `records` × 8 bytes (block headers, one per 64 samples, not
    /// counted), and it grows with the run.
    fn histogram_bytes(&self, records: u64) -> usize {
        usize::try_from(records)
            .unwrap_or(usize::MAX)
            .saturating_mul(8)
    }
}

/// The study's value table ([`super::values`], ns) in seconds, converted
/// once.
pub fn values_seconds() -> &'static [f64; VALUES_LEN] {
    static TABLE: OnceLock<[f64; VALUES_LEN]> = OnceLock::new();
    TABLE.get_or_init(|| super::values().map(|ns| ns as f64 * 1e-9))
}

/// Runs `setup` on every thread of `pool`, then, inside
/// `metrics::with_local_recorder(recorder, …)`, `warm` untimed and `ops`
/// timed calls of `op` on that thread's state, the timed loops started
/// together at a barrier; returns the wall time from the first timed start
/// to the last timed end.
fn timed_local<R, T, S, O>(
    pool: &ThreadPool,
    recorder: &R,
    warm: u64,
    ops: u64,
    setup: S,
    op: O,
) -> Duration
where
    R: metrics::Recorder + Sync,
    T: Send,
    S: Fn(usize) -> T + Sync,
    O: Fn(&mut T) + Sync,
{
    let around = |body: &mut dyn FnMut()| metrics::with_local_recorder(recorder, body);
    super::timed_run_in(pool, warm, ops, setup, op, around).0
}

/// Runs `warm` untimed then `ops` timed macro calls of `workload` through
/// `facade`'s recorder on every thread of `pool` at once (per-thread
/// state built before the warm-up); returns the wall time.
pub fn timed_facade<F: FacadeStrategy>(
    pool: &ThreadPool,
    facade: &F,
    workload: Workload,
    warm: u64,
    ops: u64,
) -> Duration {
    let recorder = facade.recorder();
    match workload {
        Workload::CounterStatic => timed_local(
            pool,
            recorder,
            warm,
            ops,
            |_| (),
            |_| metrics::counter!("r_total", "method" => "GET", "status" => "200").increment(1),
        ),
        Workload::CounterRuntime => timed_local(
            pool,
            recorder,
            warm,
            ops,
            // A value the compiler cannot see through: the macro takes
            // its runtime path, as with a status known only at run time.
            |_| std::hint::black_box(STATUS),
            |&mut status| {
                metrics::counter!("r_total", "method" => "GET", "status" => status).increment(1)
            },
        ),
        Workload::Histogram => timed_local(
            pool,
            recorder,
            warm,
            ops,
            // The same walk as `ValueCursor`: thread `i` starts at `i × 997`.
            |index| (values_seconds(), index.wrapping_mul(997)),
            |(table, next)| {
                let v = table[*next & (VALUES_LEN - 1)];
                *next = next.wrapping_add(1);
                metrics::histogram!("latency_seconds").record(v);
            },
        ),
    }
}
