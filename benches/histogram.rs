//! Histogram benchmarks (criterion): `record` across threads for metricz's
//! `Histogram` against `hdrhistogram` (one per thread, and behind a `Mutex`),
//! `prometheus`, `prometheus-client` and the `metrics` exporter's histogram,
//! all recording the same table of log-uniform values (1 µs–100 ms in ns).
//!
//! ```text
//! cargo bench --bench histogram                  # every thread count
//! cargo bench --bench histogram -- '/1threads'   # one group
//! ```
//!
//! Protocol as in `benches/counter.rs`: one rayon pool per thread count built
//! outside the timed region, `iter_custom` timing from a barrier,
//! `BenchmarkId::new(implementation, threads)`, throughput in records. Each
//! timed call gets a fresh series (built and warmed untimed, every value of
//! the table recorded once per thread first), so the `metrics` exporter's
//! held samples do not pile up across criterion's iterations. Bytes per
//! series are printed by the contention example, not here.

#[path = "support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use support::HistogramStrategy;

/// Untimed records per thread before the barrier: the whole value table,
/// so every bucket block the run will touch exists before timing.
const WARM: u64 = support::VALUES_LEN as u64;

fn contention(c: &mut Criterion) {
    for t in support::thread_counts() {
        let pool = support::pool(t);
        let mut group = c.benchmark_group(format!("histogram/{t}threads"));
        group.throughput(Throughput::Elements(t as u64));
        macro_rules! sweep {
            ($($ty:ty),*) => {$(
                group.bench_with_input(BenchmarkId::new(<$ty>::NAME, t), &t, |b, _| {
                    b.iter_custom(|iters| {
                        let histogram = <$ty>::build();
                        support::timed_record(&pool, &histogram, WARM, iters).0
                    });
                });
            )*};
        }
        support::for_each_histogram!(sweep);
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = support::criterion_config();
    targets = contention
}
criterion_main!(benches);
