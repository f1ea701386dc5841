//! Behaviour tests for every counter strategy: exact totals under concurrent
//! writers, `take` semantics (alone and racing writers), wrapping at
//! 2<sup>64</sup> and monotonic reads; then the guarantees specific to
//! [`Counter`], [`AdaptiveCounter`] and [`SingleWriterCounter`].

mod support;
use metricz::strategy::{
    AdaptiveCounter, AtomicCounter, CounterStrategy, LockedPerCpuCounter, RseqCounter,
    SingleWriterCounter, ThreadShardedCounter,
};
use metricz::Counter;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::thread;

const THREADS: usize = 4;
/// Increments per writer (fewer under Miri, which interprets every one).
const INCS: u64 = if cfg!(miri) { 100 } else { 10_000 };

/// Sets its flag when dropped: the thread that stops the spinning threads
/// stops them even when it panics, so a failing test fails instead of hanging.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// What writer `t` adds with `add` on top of its increments: `INCS / 100`
/// adds of a per-thread amount, so a lost `add` changes the total by a
/// distinct amount.
fn extra_for(t: usize) -> u64 {
    INCS / 100 * (t as u64 + 1) * 1_000_003
}

/// Runs `THREADS` writers that each do `INCS` increments interleaved with
/// `INCS / 100` `add`s, started together; returns the total they wrote.
fn run_writers<S: CounterStrategy>(c: &S) -> u64 {
    run_writers_after(c, &Barrier::new(THREADS))
}

/// [`run_writers`], with the writers starting together through `barrier`
/// (of `THREADS` parties, or more where other threads join the start).
fn run_writers_after<S: CounterStrategy>(c: &S, barrier: &Barrier) -> u64 {
    thread::scope(|s| {
        for t in 0..THREADS {
            s.spawn(move || {
                barrier.wait();
                for i in 0..INCS {
                    c.inc();
                    if i % 100 == 0 {
                        c.add((t as u64 + 1) * 1_000_003);
                    }
                }
            });
        }
    });
    THREADS as u64 * INCS + (0..THREADS).map(extra_for).sum::<u64>()
}

fn check_starts_at_zero<S: CounterStrategy>(c: S) {
    assert_eq!(c.get(), 0, "{}", S::NAME);
    assert_eq!(c.take(), 0, "{}", S::NAME);
    c.inc();
    c.add(41);
    assert_eq!(c.get(), 42, "{}", S::NAME);
    // `get` does not consume.
    assert_eq!(c.get(), 42, "{}", S::NAME);
    c.add(0);
    assert_eq!(c.get(), 42, "{}", S::NAME);
}

fn check_exact_totals<S: CounterStrategy>(c: S) {
    let expected = run_writers(&c);
    assert_eq!(c.get(), expected, "{}", S::NAME);
    // A second round on top of the first.
    let expected = expected + run_writers(&c);
    assert_eq!(c.get(), expected, "{}", S::NAME);
}

fn check_take_resets<S: CounterStrategy>(c: S) {
    c.add(5);
    c.inc();
    assert_eq!(c.take(), 6, "{}", S::NAME);
    assert_eq!(c.get(), 0, "{}", S::NAME);
    assert_eq!(c.take(), 0, "{}", S::NAME);
    c.add(3);
    assert_eq!(c.get(), 3, "{}", S::NAME);
    // Counts from other threads are taken too.
    thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| c.add(10));
        }
    });
    assert_eq!(c.take(), 3 + 10 * THREADS as u64, "{}", S::NAME);
    assert_eq!(c.get(), 0, "{}", S::NAME);
    // Counting resumes from zero after a take.
    let expected = run_writers(&c);
    assert_eq!(c.get(), expected, "{}", S::NAME);
    assert_eq!(c.take(), expected, "{}", S::NAME);
    assert_eq!(c.get(), 0, "{}", S::NAME);
}

fn check_take_racing_writers<S: CounterStrategy>(c: S) {
    let done = AtomicBool::new(false);
    let barrier = Barrier::new(THREADS + 1);
    let (written, taken) = thread::scope(|s| {
        let stop = StopOnDrop(&done);
        let taker = s.spawn(|| {
            barrier.wait();
            let mut taken = 0u64;
            while !done.load(Ordering::Acquire) {
                taken += c.take();
            }
            // One more after the writers finished (seen through `done`), so
            // the counter is left empty.
            taken + c.take()
        });
        let writers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (c, barrier) = (&c, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    let mut written = 0u64;
                    for i in 0..if cfg!(miri) { 200 } else { 50_000u64 } {
                        let n = if i % 7 == 0 { t as u64 + 2 } else { 1 };
                        c.add(n);
                        written += n;
                    }
                    written
                })
            })
            .collect();
        let written: u64 = writers.into_iter().map(|h| h.join().unwrap()).sum();
        drop(stop);
        (written, taker.join().unwrap())
    });
    // The last take ran after every writer was joined, so nothing is left.
    assert_eq!(c.get(), 0, "{}", S::NAME);
    assert_eq!(taken + c.get(), written, "{}", S::NAME);
}

/// Like [`check_take_racing_writers`] but the final count is read with `get`
/// while part of the count was taken mid-run.
fn check_take_then_get_racing_writers<S: CounterStrategy>(c: S) {
    let done = AtomicBool::new(false);
    let (written, taken) = thread::scope(|s| {
        let stop = StopOnDrop(&done);
        let taker = s.spawn(|| {
            let mut taken = 0u64;
            while !done.load(Ordering::Acquire) {
                taken += c.take();
                thread::yield_now();
            }
            taken
        });
        let writers: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..INCS {
                        c.inc();
                    }
                    INCS
                })
            })
            .collect();
        let written: u64 = writers.into_iter().map(|h| h.join().unwrap()).sum();
        drop(stop);
        (written, taker.join().unwrap())
    });
    // Writes after the taker's last take are still in the counter.
    c.add(17);
    assert_eq!(taken + c.get(), written + 17, "{}", S::NAME);
}

fn check_wraps<S: CounterStrategy>(make: impl Fn() -> S) {
    // On one thread.
    let c = make();
    c.add(u64::MAX);
    assert_eq!(c.get(), u64::MAX, "{}", S::NAME);
    c.add(2);
    assert_eq!(c.get(), 1, "{}", S::NAME);
    assert_eq!(c.take(), 1, "{}", S::NAME);
    assert_eq!(c.get(), 0, "{}", S::NAME);

    // Across threads: the parts may sit in different shards, which must be
    // summed with wrapping addition.
    let c = make();
    c.add(u64::MAX);
    thread::scope(|s| {
        s.spawn(|| c.add(2));
    });
    assert_eq!(c.get(), 1, "{}", S::NAME);

    // Four threads each add 2^62 four times: 2^66 ≡ 0, plus one.
    let c = make();
    thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..4 {
                    c.add(1 << 62);
                }
            });
        }
    });
    assert_eq!(c.get(), 0, "{}", S::NAME);
    c.inc();
    assert_eq!(c.get(), 1, "{}", S::NAME);
    assert_eq!(c.take(), 1, "{}", S::NAME);

    // A take of a wrapped total returns the wrapped value.
    let c = make();
    c.add(u64::MAX - 1);
    thread::scope(|s| {
        s.spawn(|| c.add(5));
    });
    assert_eq!(c.take(), 3, "{}", S::NAME);
    assert_eq!(c.get(), 0, "{}", S::NAME);
}

fn check_reads_never_decrease<S: CounterStrategy>(c: S) {
    /// Rounds per writer; each round adds 3 then 1, so 4 per round.
    const ROUNDS: u64 = if cfg!(miri) { 50 } else { 25_000 };
    const PER_WRITER: u64 = 4 * ROUNDS;
    let done = AtomicBool::new(false);
    let barrier = Barrier::new(THREADS + 1);
    thread::scope(|s| {
        let stop = StopOnDrop(&done);
        let reader = s.spawn(|| {
            barrier.wait();
            let mut previous = 0u64;
            loop {
                // Read `done` first: once it is seen set, every write has
                // finished and this read must be the exact total.
                let finished = done.load(Ordering::Acquire);
                let now = c.get();
                assert!(
                    now >= previous,
                    "{}: get went from {previous} to {now}",
                    S::NAME
                );
                assert!(now <= THREADS as u64 * PER_WRITER, "{}", S::NAME);
                previous = now;
                if finished {
                    return now;
                }
            }
        });
        let writers: Vec<_> = (0..THREADS)
            .map(|_| {
                let (c, barrier) = (&c, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    for _ in 0..ROUNDS {
                        // Mix `add` and `inc` so both paths are read.
                        c.add(3);
                        c.inc();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        drop(stop);
        assert_eq!(
            reader.join().unwrap(),
            THREADS as u64 * PER_WRITER,
            "{}",
            S::NAME
        );
    });
    assert_eq!(c.get(), THREADS as u64 * PER_WRITER, "{}", S::NAME);
}

/// Generates the shared behaviour tests for each strategy constructor.
macro_rules! strategy_tests {
    ($($module:ident => $make:expr;)*) => {$(
        mod $module {
            use super::*;

            #[test]
            fn starts_at_zero() {
                check_starts_at_zero($make);
            }

            #[test]
            fn exact_totals_after_concurrent_writers() {
                check_exact_totals($make);
            }

            #[test]
            fn take_returns_count_and_resets() {
                check_take_resets($make);
            }

            #[test]
            fn takes_racing_writers_lose_nothing() {
                check_take_racing_writers($make);
            }

            #[test]
            fn takes_plus_final_get_equal_total() {
                check_take_then_get_racing_writers($make);
            }

            #[test]
            fn wraps_at_two_to_the_64() {
                check_wraps(|| $make);
            }

            #[test]
            fn reads_never_decrease_while_writers_run() {
                check_reads_never_decrease($make);
            }
        }
    )*};
}

strategy_tests! {
    per_cpu => Counter::new();
    per_cpu_one_shard => Counter::with_shards(1);
    per_cpu_many_shards => Counter::with_shards(256);
    per_cpu_locked => LockedPerCpuCounter::new();
    per_cpu_locked_one_shard => LockedPerCpuCounter::with_shards(1);
    rseq => RseqCounter::new();
    atomic => AtomicCounter::new();
    thread_sharded => ThreadShardedCounter::new();
    thread_sharded_one_shard => ThreadShardedCounter::with_shards(1);
    adaptive => AdaptiveCounter::new();
    adaptive_one_cell => AdaptiveCounter::with_max_cells(1);
    single_writer => SingleWriterCounter::new();
}

#[test]
fn strategy_names_are_distinct() {
    let mut names = [
        Counter::NAME,
        LockedPerCpuCounter::NAME,
        RseqCounter::NAME,
        AtomicCounter::NAME,
        ThreadShardedCounter::NAME,
        AdaptiveCounter::NAME,
        SingleWriterCounter::NAME,
    ];
    assert!(names.iter().all(|n| !n.is_empty()));
    names.sort_unstable();
    let len = names.len();
    let mut unique = names.to_vec();
    unique.dedup();
    assert_eq!(unique.len(), len, "{names:?}");
}

// ---------------------------------------------------------------- Counter --

#[test]
fn counter_shard_count_is_a_clamped_power_of_two() {
    assert_eq!(Counter::with_shards(0).shards(), 1);
    assert_eq!(Counter::with_shards(1).shards(), 1);
    assert_eq!(Counter::with_shards(2).shards(), 2);
    assert_eq!(Counter::with_shards(3).shards(), 4);
    assert_eq!(Counter::with_shards(4).shards(), 4);
    assert_eq!(Counter::with_shards(5).shards(), 8);
    assert_eq!(Counter::with_shards(100).shards(), 128);
    assert_eq!(Counter::with_shards(65_535).shards(), 65_536);
    assert_eq!(Counter::with_shards(65_536).shards(), 65_536);
    assert_eq!(Counter::with_shards(65_537).shards(), 65_536);
    assert_eq!(Counter::with_shards(usize::MAX).shards(), 65_536);
    for requested in 0..=130 {
        let shards = Counter::with_shards(requested).shards();
        assert!(shards.is_power_of_two(), "{requested} -> {shards}");
        assert!(shards >= requested, "{requested} -> {shards}");
        assert!(shards < 2 * requested.max(1), "{requested} -> {shards}");
    }
}

#[test]
fn counter_default_shards_follow_available_parallelism() {
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(Counter::new().shards(), cpus.next_power_of_two());
    assert_eq!(Counter::default().shards(), cpus.next_power_of_two());
    assert_eq!(Counter::default().get(), 0);
}

#[test]
fn counter_with_max_shards_counts_exactly() {
    let c = Counter::with_shards(usize::MAX);
    let expected = run_writers(&c);
    assert_eq!(c.get(), expected);
    assert_eq!(c.take(), expected);
    assert_eq!(c.get(), 0);
}

#[test]
fn counter_inherent_methods_match_the_trait() {
    let c = Counter::with_shards(4);
    Counter::inc(&c);
    Counter::add(&c, 9);
    assert_eq!(Counter::get(&c), 10);
    assert_eq!(CounterStrategy::get(&c), 10);
    CounterStrategy::add(&c, 5);
    CounterStrategy::inc(&c);
    assert_eq!(Counter::get(&c), 16);
    assert_eq!(Counter::take(&c), 16);
    assert_eq!(CounterStrategy::take(&c), 0);
}

#[test]
fn counter_clone_shares_the_count() {
    let a = Counter::with_shards(8);
    let b = a.clone();
    assert_eq!(b.shards(), 8);
    b.add(5);
    assert_eq!(a.get(), 5);
    a.inc();
    assert_eq!(b.get(), 6);
    // Clones moved into other threads still share.
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let c = a.clone();
            thread::spawn(move || {
                for _ in 0..INCS {
                    c.inc();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(b.get(), 6 + THREADS as u64 * INCS);
    assert_eq!(a.take(), 6 + THREADS as u64 * INCS);
    assert_eq!(b.get(), 0);
    // The counter outlives the original handle.
    drop(a);
    b.add(2);
    assert_eq!(b.get(), 2);
}

#[test]
fn every_metric_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Counter>();
    assert_send_sync::<AtomicCounter>();
    assert_send_sync::<ThreadShardedCounter>();
    assert_send_sync::<AdaptiveCounter>();
    assert_send_sync::<SingleWriterCounter>();
    assert_send_sync::<metricz::Gauge>();
    assert_send_sync::<metricz::UpDownGauge>();
}

#[test]
fn counter_debug_shows_the_value() {
    let c = Counter::with_shards(2);
    c.add(12_345);
    let debug = format!("{c:?}");
    assert!(debug.contains("12345"), "{debug}");
    assert!(debug.contains("Counter"), "{debug}");
    c.add(1);
    let debug = format!("{c:?}");
    assert!(debug.contains("12346"), "{debug}");
}

#[test]
fn strategies_debug_output_is_nonempty() {
    // `CounterStrategy` requires `Debug`; the output must at least name
    // something (no value format is promised for the strategies).
    assert!(!format!("{:?}", AtomicCounter::new()).is_empty());
    assert!(!format!("{:?}", ThreadShardedCounter::new()).is_empty());
    assert!(!format!("{:?}", AdaptiveCounter::new()).is_empty());
    assert!(!format!("{:?}", SingleWriterCounter::new()).is_empty());
}

// -------------------------------------------------------- AdaptiveCounter --

#[test]
fn adaptive_stays_uninflated_with_one_writer() {
    let c = AdaptiveCounter::new();
    assert_eq!(c.cells_in_use(), 0);
    for _ in 0..100_000 {
        c.inc();
    }
    c.add(7);
    assert_eq!(c.cells_in_use(), 0);
    assert_eq!(c.get(), 100_007);
    assert_eq!(c.take(), 100_007);
    assert_eq!(c.cells_in_use(), 0);

    // One writer at a time, even on different threads, never collides.
    let c = AdaptiveCounter::new();
    for _ in 0..4 {
        thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..10_000 {
                    c.inc();
                }
            });
        });
    }
    assert_eq!(c.cells_in_use(), 0);
    assert_eq!(c.get(), 40_000);
}

#[test]
fn adaptive_with_one_cell_never_uses_more() {
    // Rounds of four contending writers with a watcher polling
    // `cells_in_use`. Inflation needs a collision, so keep going until the
    // counter has been inflated for several rounds (bounded: a machine may
    // never produce one), checking the limit and the total every round.
    let c = AdaptiveCounter::with_max_cells(1);
    let mut expected = 0;
    let mut inflated_rounds = 0;
    for _ in 0..100 {
        let done = AtomicBool::new(false);
        let barrier = Barrier::new(THREADS + 1);
        let (written, max_seen) = thread::scope(|s| {
            let stop = StopOnDrop(&done);
            let watcher = s.spawn(|| {
                barrier.wait();
                let mut max_seen = 0;
                while !done.load(Ordering::Acquire) {
                    max_seen = max_seen.max(c.cells_in_use());
                }
                max_seen
            });
            let written = run_writers_after(&c, &barrier);
            drop(stop);
            (written, watcher.join().unwrap())
        });
        expected += written;
        assert!(max_seen <= 1, "saw {max_seen} cells in use");
        assert!(c.cells_in_use() <= 1, "{} cells in use", c.cells_in_use());
        assert_eq!(c.get(), expected);
        if c.cells_in_use() == 1 {
            inflated_rounds += 1;
            if inflated_rounds == 10 {
                break;
            }
        }
    }
    assert_eq!(c.take(), expected);
    assert_eq!(c.get(), 0);
}

#[test]
fn adaptive_cells_stay_a_power_of_two_within_the_limit() {
    for max in [2, 3, 4] {
        let c = AdaptiveCounter::with_max_cells(max);
        let limit = max.next_power_of_two();
        let done = AtomicBool::new(false);
        let barrier = Barrier::new(THREADS + 1);
        let expected = thread::scope(|s| {
            let stop = StopOnDrop(&done);
            let watcher = s.spawn(|| {
                barrier.wait();
                while !done.load(Ordering::Acquire) {
                    let n = c.cells_in_use();
                    assert!(n == 0 || (n.is_power_of_two() && n <= limit), "{n}");
                }
            });
            let expected = run_writers_after(&c, &barrier);
            drop(stop);
            watcher.join().unwrap();
            expected
        });
        let n = c.cells_in_use();
        assert!(n == 0 || (n.is_power_of_two() && n <= limit), "{n}");
        assert_eq!(c.get(), expected);
    }
}

#[test]
fn adaptive_totals_stay_exact_after_inflation() {
    // Keep writing until the counter inflates (or give up after a bounded
    // number of rounds: inflation needs a collision, which a machine may not
    // produce), checking the total after every round.
    let c = AdaptiveCounter::with_max_cells(4);
    let mut expected = 0;
    for _ in 0..20 {
        expected += run_writers(&c);
        assert_eq!(c.get(), expected);
        if c.cells_in_use() > 0 {
            break;
        }
    }
    // Further counting after inflation, from a single thread, lands in the
    // cells (or the base) and is still exact.
    c.add(11);
    assert_eq!(c.get(), expected + 11);
    assert_eq!(c.take(), expected + 11);
    assert_eq!(c.get(), 0);
    c.inc();
    assert_eq!(c.get(), 1);
}

// ---------------------------------------------------- SingleWriterCounter --

#[test]
fn single_writer_keeps_counts_of_exited_threads() {
    let c = SingleWriterCounter::new();
    let mut expected = 0;
    for k in 1..=8u64 {
        thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..k {
                    c.inc();
                }
                c.add(k * 1000);
            });
        });
        expected += k + k * 1000;
        // Each thread has exited (its index is free for the next one).
        assert_eq!(c.get(), expected);
    }
    assert_eq!(c.get(), 8 * 9 / 2 * 1001);
    // The main thread adds on top of the slots the exited threads left.
    c.add(5);
    assert_eq!(c.take(), expected + 5);
    assert_eq!(c.get(), 0);
    // Later threads reuse the exited threads' indices and slots; the take
    // baseline must not swallow or double their counts.
    for _ in 0..3 {
        thread::scope(|s| {
            s.spawn(|| c.add(2));
        });
    }
    assert_eq!(c.get(), 6);
}

#[test]
fn single_writer_keeps_counts_of_threads_exiting_during_writes() {
    const LONG: usize = 3;
    const SHORT: u64 = 64;
    let c = SingleWriterCounter::new();
    let done = AtomicBool::new(false);
    let (long_total, short_total) = thread::scope(|s| {
        let stop = StopOnDrop(&done);
        // Long-lived writers keep adding while short-lived ones come and go,
        // so freed indices are taken over while other slots are written.
        let long: Vec<_> = (0..LONG)
            .map(|_| {
                s.spawn(|| {
                    let mut written = 0u64;
                    while !done.load(Ordering::Acquire) {
                        c.inc();
                        written += 1;
                    }
                    // Some more after the short threads are all gone.
                    for _ in 0..1000 {
                        c.inc();
                    }
                    written + 1000
                })
            })
            .collect();
        let mut short_total = 0u64;
        for round in 0..SHORT {
            let batch: Vec<_> = (0..4u64)
                .map(|j| {
                    let c = &c;
                    let n = round * 4 + j + 1;
                    s.spawn(move || {
                        for _ in 0..n {
                            c.inc();
                        }
                        c.add(n * 10);
                    })
                })
                .collect();
            for (j, h) in batch.into_iter().enumerate() {
                h.join().unwrap();
                short_total += 11 * (round * 4 + j as u64 + 1);
            }
        }
        drop(stop);
        let long_total: u64 = long.into_iter().map(|h| h.join().unwrap()).sum();
        (long_total, short_total)
    });
    assert_eq!(c.get(), long_total + short_total);
    assert_eq!(c.take(), long_total + short_total);
    assert_eq!(c.get(), 0);
}

#[test]
fn single_writer_take_baseline_survives_thread_churn() {
    let c = SingleWriterCounter::new();
    let mut taken = 0u64;
    let mut written = 0u64;
    for round in 1..=10u64 {
        thread::scope(|s| {
            for t in 0..3u64 {
                let c = &c;
                s.spawn(move || c.add(round * 100 + t));
            }
        });
        written += 3 * round * 100 + 3;
        if round % 3 == 0 {
            taken += c.take();
            assert_eq!(c.get(), 0);
        }
    }
    assert_eq!(taken + c.get(), written);
}

/// With fewer shards than CPUs, every CPU's increments land in a shard (the
/// CPU id masked to the shard count, with locked adds), never in the
/// fallback word that threads without an rseq registration use, for a
/// standalone counter and a registry's arena counter alike.
#[cfg(target_os = "linux")]
#[cfg_attr(miri, ignore = "pins threads to CPUs")]
#[test]
fn fewer_shards_than_cpus_mask_every_cpu_onto_a_shard() {
    let cpus = support::configured_cpus();
    assert!(
        cpus >= 2,
        "this test needs two CPUs, the machine has {cpus}"
    );
    let registry = metricz::Registry::builder().shards(1).build();
    let family = registry
        .counter_vec("masked_total", "Masked.", &["k"])
        .unwrap();
    let arena = family.with(&["v"]).unwrap();
    for counter in [&Counter::with_shards(1), &*arena] {
        assert_eq!(counter.shards(), 1);
        const N: u64 = 10_000;
        for cpu in 0..cpus.min(4) {
            thread::scope(|s| {
                s.spawn(|| {
                    assert!(support::pin_to(cpu), "could not pin to CPU {cpu}");
                    (0..N).for_each(|_| counter.inc());
                });
            });
            let (shards, fallback) = counter.shard_values();
            assert_eq!(
                fallback, 0,
                "CPU {cpu}'s increments went to the fallback word"
            );
            assert_eq!(shards, vec![N * (cpu as u64 + 1)]);
        }
    }
    // Two shards on two or more CPUs: each CPU's increments land in the
    // shard its id masks to.
    let counter = Counter::with_shards(2);
    for cpu in 0..cpus.min(4) {
        thread::scope(|s| {
            s.spawn(|| {
                assert!(support::pin_to(cpu));
                (0..1000).for_each(|_| counter.inc());
            });
        });
    }
    let (shards, fallback) = counter.shard_values();
    assert_eq!(fallback, 0);
    let per_shard = |k: usize| (0..cpus.min(4)).filter(|c| c & 1 == k).count() as u64 * 1000;
    assert_eq!(shards, vec![per_shard(0), per_shard(1)]);
}
