//! Registry benchmarks (criterion): lookup + increment of an existing
//! two-label series across threads, for metricz's `CounterVec::with` against
//! `prometheus` `IntCounterVec::with_label_values`, `prometheus_client`
//! `Family::get_or_create` and the `metrics` crate on a
//! `metrics-exporter-prometheus` recorder; then series churn (create and
//! increment, then remove).
//!
//! ```text
//! cargo bench --bench registry                    # everything
//! cargo bench --bench registry -- lookup-same/    # one sweep
//! ```
//!
//! Steady state, as the protocol in `papers/contention.md` asks: every
//! family is built with all its series created (and each thread's labels in
//! the form its lookup takes) before the barrier-started timed loop; one
//! rayon pool per thread count built outside timing; `iter_custom` timing;
//! `BenchmarkId::new(implementation, threads)`; throughput in operations.
//!
//! - `lookup-same/{t}threads`: every thread looks up `["GET", "200"]`;
//! - `lookup-own/{t}threads`: thread `i` looks up its own existing series;
//! - `churn/{t}threads`: thread `i` creates its own series, increments it
//!   once and removes it (`with(..).inc()` then `remove`;
//!   `with_label_values(..).inc()` then `remove_label_values`;
//!   `get_or_create(..).inc()` then `Family::remove`). The `metrics`
//!   recorder cannot remove a series and is left out.

#[path = "support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use support::{FamilyStrategy, SeriesChoice};

fn lookup(c: &mut Criterion) {
    for choice in [SeriesChoice::Same, SeriesChoice::PerThread] {
        let prefix = match choice {
            SeriesChoice::Same => "lookup-same",
            SeriesChoice::PerThread => "lookup-own",
        };
        for t in support::thread_counts() {
            let pool = support::pool(t);
            let mut group = c.benchmark_group(format!("{prefix}/{t}threads"));
            group.throughput(Throughput::Elements(t as u64));
            macro_rules! sweep {
                ($($ty:ty),*) => {$(
                    let family = <$ty>::build();
                    group.bench_with_input(BenchmarkId::new(<$ty>::NAME, t), &t, |b, _| {
                        b.iter_custom(|iters| {
                            support::timed_lookup(&pool, &family, choice, 0, iters)
                        });
                    });
                )*};
            }
            support::for_each_family!(sweep);
            group.finish();
        }
    }
}

fn churn(c: &mut Criterion) {
    for t in support::thread_counts() {
        let pool = support::pool(t);
        let mut group = c.benchmark_group(format!("churn/{t}threads"));
        group.throughput(Throughput::Elements(t as u64));
        macro_rules! sweep {
            ($($ty:ty),*) => {$(
                let family = <$ty>::build();
                if support::timed_churn(&pool, &family, 0, 1).is_some() {
                    group.bench_with_input(BenchmarkId::new(<$ty>::NAME, t), &t, |b, _| {
                        b.iter_custom(|iters| {
                            support::timed_churn(&pool, &family, 0, iters).expect("removes")
                        });
                    });
                }
            )*};
        }
        support::for_each_family!(sweep);
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = support::criterion_config();
    targets = lookup, churn
}
criterion_main!(benches);
