//! Histogram benchmarks (criterion): `record` across threads for metricz's
//! `Histogram` against `hdrhistogram` (one per thread, behind a `Mutex`, and
//! its own `SyncHistogram` with a `Recorder` per thread), `prometheus`,
//! `prometheus-client` and the `metrics` exporter's histogram, all
//! recording the same table of log-uniform values (1 µs–100 ms in ns); and
//! `record-parts`, what one `record` on one thread is made of (below).
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

/// `record-parts/1thread`: the pieces of one `Histogram::record` on one
/// thread, each timed alone over the same value table, so the paper can
/// say where a record's time goes: the index arithmetic (the HDR bucket of
/// the value), the CPU read (`cpu::current`, one load from the rseq area),
/// one restartable-sequence add and two (a record's count and sum are one
/// each; timed here as `Counter::inc`, the same arm, CPU check,
/// load-add-store and commit on a word only this CPU writes), the min/max
/// loads, and the whole record. For comparison, one and two locked adds
/// (what the count and sum cost before they were sequences). What is left
/// of the record after the parts is the shard and block lookups.
fn parts(c: &mut Criterion) {
    use std::hint::black_box;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    let values = support::values();
    let mut group = c.benchmark_group("record-parts/1thread");
    group.throughput(Throughput::Elements(1));
    let mut next = 0usize;
    let mut value = move || {
        next = next.wrapping_add(1);
        values[next & (support::VALUES_LEN - 1)]
    };
    let histogram = metricz::Histogram::new();
    group.bench_function("index-math", |b| {
        b.iter(|| black_box(histogram.index_of_for_bench(value())))
    });
    group.bench_function("cpu-read", |b| {
        b.iter(|| black_box(metricz::cpu::current()))
    });
    let counters = [metricz::Counter::new(), metricz::Counter::new()];
    group.bench_function("one-rseq-add", |b| b.iter(|| counters[0].inc()));
    group.bench_function("two-rseq-adds", |b| {
        b.iter(|| {
            counters[0].inc();
            counters[1].add(black_box(value()))
        })
    });
    let words = [AtomicU64::new(0), AtomicU64::new(0)];
    group.bench_function("one-locked-add", |b| {
        b.iter(|| words[0].fetch_add(black_box(1), Relaxed))
    });
    group.bench_function("two-locked-adds", |b| {
        b.iter(|| {
            words[0].fetch_add(black_box(1), Relaxed);
            words[1].fetch_add(black_box(value()), Relaxed)
        })
    });
    group.bench_function("min-max-loads", |b| {
        b.iter(|| {
            let v = value();
            black_box(v < words[0].load(Relaxed)) | black_box(v > words[1].load(Relaxed))
        })
    });
    for _ in 0..support::VALUES_LEN {
        histogram.record(value());
    }
    group.bench_function("record", |b| b.iter(|| histogram.record(value())));
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::criterion_config();
    targets = contention, parts
}
criterion_main!(benches);
