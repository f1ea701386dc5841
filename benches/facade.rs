//! `metrics` facade benchmarks (criterion): the macros users write, on one
//! thread, through metricz's `facade::Recorder` and through
//! `metrics-exporter-prometheus`'s recorder
//! (`PrometheusBuilder::new().build_recorder()`), each set as the thread's
//! local recorder (`metrics::with_local_recorder`) around the whole loop.
//!
//! ```text
//! cargo bench --bench facade                     # everything
//! cargo bench --bench facade -- counter-static/  # one workload
//! ```
//!
//! - `counter-static/1threads`:
//!   `counter!("r_total", "method" => "GET", "status" => "200").increment(1)`
//!   (literal labels: a static `Key`);
//! - `counter-runtime/1threads`: the same with the status a `&'static str`
//!   chosen at run time (the macro builds a label `Vec` per call);
//! - `histogram/1threads`: `histogram!("latency_seconds").record(v)` over
//!   the study's value table in seconds.
//!
//! Steady state, as the protocol in `papers/contention.md` asks: each
//! sample builds a fresh recorder (so the exporter's held samples do not
//! pile up across samples) and warms it untimed (the whole value table for
//! the histogram), then times the loop on a one-thread rayon pool built
//! outside timing, behind the same start barrier as the study;
//! `iter_custom` timing; `BenchmarkId::new(implementation, 1)`; throughput
//! in macro calls.

#[path = "support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use support::facade::{FacadeStrategy, Workload};

/// Untimed macro calls per sample before timing.
const WARM: u64 = support::VALUES_LEN as u64;

fn facade(c: &mut Criterion) {
    let pool = support::pool(1);
    for workload in Workload::ALL {
        let mut group = c.benchmark_group(format!("{}/1threads", workload.name()));
        group.throughput(Throughput::Elements(1));
        macro_rules! sweep {
            ($($ty:ty),*) => {$(
                group.bench_with_input(BenchmarkId::new(<$ty>::NAME, 1), &1, |b, _| {
                    b.iter_custom(|iters| {
                        let facade = <$ty>::build();
                        support::facade::timed_facade(&pool, &facade, workload, WARM, iters)
                    });
                });
            )*};
        }
        support::facade::for_each_facade!(sweep);
        group.finish();
    }
}

/// The least any backend can cost through `counter!`: a recorder whose
/// `register_counter` hands out a clone of one `Arc` per thread over a
/// plain per-thread count (a load and a store, no read-modify-write). What
/// remains is the macro's path itself: the local recorder's lookup, the
/// dynamic calls, and the handle's `Arc` clone and drop (two locked
/// read-modify-writes on a line only this thread writes).
struct FloorRecorder;

/// A count only its own thread writes.
struct PlainCount(std::sync::atomic::AtomicU64);

impl metrics::CounterFn for PlainCount {
    fn increment(&self, value: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.0
            .store(self.0.load(Relaxed).wrapping_add(value), Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.store(value, std::sync::atomic::Ordering::Relaxed);
    }
}

thread_local! {
    static FLOOR: std::sync::Arc<PlainCount> =
        std::sync::Arc::new(PlainCount(std::sync::atomic::AtomicU64::new(0)));
}

impl metrics::Recorder for FloorRecorder {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        FLOOR.with(|c| metrics::Counter::from_arc(std::sync::Arc::clone(c)))
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

/// `counter-static/1threads/floor`: the macro through [`FloorRecorder`].
fn floor(c: &mut Criterion) {
    let mut group = c.benchmark_group("counter-static/1threads");
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::new("floor", 1), |b| {
        metrics::with_local_recorder(&FloorRecorder, || {
            b.iter(|| {
                metrics::counter!("r_total", "method" => "GET", "status" => "200").increment(1)
            })
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::criterion_config();
    targets = facade, floor
}
criterion_main!(benches);
