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

criterion_group! {
    name = benches;
    config = support::criterion_config();
    targets = facade
}
criterion_main!(benches);
