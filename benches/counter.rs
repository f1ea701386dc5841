//! Counter benchmarks (criterion): the CPU-lookup paths, uncontended
//! increments against a bare `AtomicU64::fetch_add`, and thread sweeps of
//! every strategy, baseline and peer.
//!
//! ```text
//! cargo bench --bench counter              # everything
//! cargo bench --bench counter -- cpu/      # one group
//! ```
//!
//! Sweeps follow the protocol in `papers/contention.md`: one rayon pool per
//! thread count built outside the timed region, `iter_custom` timing from a
//! barrier, `BenchmarkId::new(strategy, threads)`, throughput in increments.

#[path = "support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use metricz::strategy::{
    AdaptiveCounter, AtomicCounter, CounterStrategy, LockedPerCpuCounter, RseqCounter,
    SingleWriterCounter, ThreadShardedCounter,
};
use metricz::{cpu, Counter};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use support::{PromClientCounter, PromIntCounter};

fn cpu_lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("cpu");
    group.throughput(Throughput::Elements(1));
    if cpu::rseq_cpu().is_some() {
        group.bench_function("rseq", |b| b.iter(cpu::rseq_cpu));
    }
    if cpu::sched_getcpu().is_some() {
        group.bench_function("sched_getcpu", |b| b.iter(cpu::sched_getcpu));
    }
    group.bench_function("thread_index", |b| b.iter(cpu::thread_index));
    group.bench_function("current", |b| b.iter(cpu::current));
    group.finish();
}

fn uncontended(c: &mut Criterion) {
    let mut group = c.benchmark_group("uncontended");
    group.throughput(Throughput::Elements(1));
    let bare = AtomicU64::new(0);
    group.bench_function("bare fetch_add", |b| {
        b.iter(|| black_box(&bare).fetch_add(1, Relaxed))
    });
    // The unlocked add an rseq commit is: a plain load and store.
    let plain = AtomicU64::new(0);
    group.bench_function("bare load+store", |b| {
        b.iter(|| {
            let word = black_box(&plain);
            word.store(word.load(Relaxed) + 1, Relaxed)
        })
    });
    fn one<S: CounterStrategy + Default>(
        group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    ) {
        let counter = S::default();
        counter.inc();
        group.bench_function(S::NAME, |b| b.iter(|| black_box(&counter).inc()));
    }
    one::<Counter>(&mut group);
    // A registry counter: a slot of the per-CPU arena (its rows are found
    // per CPU, then an rseq sequence commits on that CPU).
    let reg = metricz::Registry::new();
    let arena = reg.counter("bench_total", "Bench.").expect("valid name");
    arena.inc();
    group.bench_function("metricz registry counter (arena)", |b| {
        b.iter(|| black_box(&arena).inc())
    });
    one::<LockedPerCpuCounter>(&mut group);
    one::<RseqCounter>(&mut group);
    one::<AtomicCounter>(&mut group);
    one::<ThreadShardedCounter>(&mut group);
    one::<AdaptiveCounter>(&mut group);
    one::<SingleWriterCounter>(&mut group);
    one::<PromIntCounter>(&mut group);
    one::<PromClientCounter>(&mut group);
    group.finish();
}

fn contention(c: &mut Criterion) {
    for t in support::thread_counts() {
        let pool = support::pool(t);
        let mut group = c.benchmark_group(format!("contention/{t}threads"));
        group.throughput(Throughput::Elements(t as u64));
        macro_rules! sweep {
            ($($ty:ty),*) => {$(
                let counter = <$ty>::default();
                group.bench_with_input(BenchmarkId::new(<$ty>::NAME, t), &t, |b, _| {
                    b.iter_custom(|iters| support::timed_run(&pool, &counter, 0, iters));
                });
            )*};
        }
        support::for_each_counter!(sweep);
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = support::criterion_config();
    targets = cpu_lookup, uncontended, contention
}
criterion_main!(benches);
