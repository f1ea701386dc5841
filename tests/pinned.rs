//! Shards are sized from the CPUs the machine can have, not from the
//! affinity of the thread that created the first metric.
//!
//! Its own test binary with one test: the CPU count is read once per
//! process, by the first metric, and that metric must be created here, on a
//! thread pinned to CPU 0 (as in a thread-per-core server).
#![cfg(target_os = "linux")]

mod support;
use metricz::{Counter, Histogram, Rate, Registry, UpDownGauge};
use support::{configured_cpus, pin_to};

#[test]
fn first_metric_on_a_pinned_thread_still_gets_a_shard_per_cpu() {
    let cpus = configured_cpus();
    assert!(
        cpus >= 2,
        "this test needs two CPUs, the machine has {cpus}"
    );
    let (counter, histogram, rate, gauge, family) = std::thread::spawn(move || {
        assert!(pin_to(0), "could not pin to CPU 0");
        let registry = Registry::new();
        let counter = Counter::new();
        let histogram = Histogram::new();
        let rate = Rate::new();
        let gauge = UpDownGauge::new();
        let family = registry
            .counter_vec("pinned_total", "Pinned.", &["cpu"])
            .unwrap();
        (counter, histogram, rate, gauge, family)
    })
    .join()
    .unwrap();
    let arena_counter = family.with(&["1"]).unwrap();
    for (what, shards) in [
        ("Counter", counter.shards()),
        ("Histogram", histogram.shards()),
        ("Rate", rate.shards()),
        ("UpDownGauge", gauge.shards()),
        ("registry counter", arena_counter.shards()),
    ] {
        assert!(
            shards >= cpus,
            "{what}: {shards} shards for {cpus} CPUs (sized from the creating thread's affinity?)"
        );
    }

    const N: u64 = 100_000;
    for cpu in [0, 1] {
        let (counter, histogram, arena_counter) = (&counter, &histogram, &*arena_counter);
        std::thread::scope(|s| {
            s.spawn(move || {
                assert!(pin_to(cpu), "could not pin to CPU {cpu}");
                for _ in 0..N {
                    counter.inc();
                    arena_counter.inc();
                }
                histogram.record(5);
            });
        });
        for (what, c) in [("Counter", counter), ("registry counter", arena_counter)] {
            let (shards, fallback) = c.shard_values();
            assert_eq!(
                shards[cpu], N,
                "{what}: CPU {cpu}'s increments not in its shard: {shards:?}, fallback {fallback}"
            );
            assert_eq!(
                fallback, 0,
                "{what}: CPU {cpu}'s increments in the fallback word"
            );
        }
    }
    assert_eq!(counter.get(), 2 * N);
    assert_eq!(
        histogram.shards_in_use(),
        2,
        "CPU 0 and CPU 1 share a histogram shard"
    );
}
