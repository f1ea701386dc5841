//! Behaviour tests for [`Gauge`] (an `f64` set and moved atomically) and
//! [`UpDownGauge`] (a sharded `i64` moved by increments and decrements):
//! arithmetic, IEEE 754 special values, exact results under concurrent
//! updates, and wrapping at the `i64` range.

use metricz::{Gauge, UpDownGauge};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::thread;

const THREADS: usize = 4;

/// Sets its flag when dropped: the thread that stops the spinning threads
/// stops them even when it panics, so a failing test fails instead of hanging.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

// ------------------------------------------------------------------ Gauge --

#[test]
fn gauge_starts_at_zero() {
    assert_eq!(Gauge::new().get(), 0.0);
    assert_eq!(Gauge::default().get(), 0.0);
    assert!(Gauge::new().get().is_sign_positive());
}

#[test]
fn gauge_set_add_sub_inc_dec() {
    let g = Gauge::new();
    g.set(2.5);
    assert_eq!(g.get(), 2.5);
    g.add(1.25);
    assert_eq!(g.get(), 3.75);
    g.sub(0.75);
    assert_eq!(g.get(), 3.0);
    g.inc();
    assert_eq!(g.get(), 4.0);
    g.dec();
    g.dec();
    assert_eq!(g.get(), 2.0);
    g.add(-5.0);
    assert_eq!(g.get(), -3.0);
    g.sub(-1.5);
    assert_eq!(g.get(), -1.5);
    // `set` replaces the value rather than adding to it.
    g.set(10.0);
    assert_eq!(g.get(), 10.0);
    g.set(-0.125);
    assert_eq!(g.get(), -0.125);
    // Values that are not integers or small survive the round trip exactly.
    g.set(std::f64::consts::PI);
    assert_eq!(g.get(), std::f64::consts::PI);
    g.set(f64::MAX);
    assert_eq!(g.get(), f64::MAX);
    g.set(f64::MIN_POSITIVE);
    assert_eq!(g.get(), f64::MIN_POSITIVE);
    g.set(-0.0);
    assert_eq!(g.get().to_bits(), (-0.0f64).to_bits());
}

#[test]
fn gauge_nan_is_sticky_under_arithmetic() {
    let g = Gauge::new();
    g.set(f64::NAN);
    assert!(g.get().is_nan());
    g.add(1.0);
    assert!(g.get().is_nan());
    g.inc();
    g.dec();
    g.sub(2.0);
    assert!(g.get().is_nan());
    g.add(f64::INFINITY);
    assert!(g.get().is_nan());
    // Only `set` leaves NaN.
    g.set(1.0);
    assert_eq!(g.get(), 1.0);
    // Adding NaN makes NaN.
    g.add(f64::NAN);
    assert!(g.get().is_nan());
}

#[test]
fn gauge_infinities_behave_as_floats() {
    let g = Gauge::new();
    g.set(f64::INFINITY);
    g.add(1.0);
    assert_eq!(g.get(), f64::INFINITY);
    g.sub(1e300);
    assert_eq!(g.get(), f64::INFINITY);
    g.add(f64::INFINITY);
    assert_eq!(g.get(), f64::INFINITY);
    g.sub(f64::INFINITY);
    assert!(g.get().is_nan());

    g.set(f64::NEG_INFINITY);
    g.dec();
    assert_eq!(g.get(), f64::NEG_INFINITY);
    g.inc();
    assert_eq!(g.get(), f64::NEG_INFINITY);

    // Overflow to infinity.
    g.set(f64::MAX);
    g.add(f64::MAX);
    assert_eq!(g.get(), f64::INFINITY);
}

#[test]
fn gauge_concurrent_adds_are_exact() {
    let g = Gauge::new();
    let barrier = Barrier::new(THREADS);
    thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                barrier.wait();
                for _ in 0..1000 {
                    g.add(0.5);
                }
            });
        }
    });
    assert_eq!(g.get(), 2000.0);
}

#[test]
fn gauge_concurrent_inc_dec_and_sub_are_exact() {
    let g = Gauge::new();
    g.set(100.0);
    let barrier = Barrier::new(THREADS);
    thread::scope(|s| {
        for t in 0..THREADS {
            let (g, barrier) = (&g, &barrier);
            s.spawn(move || {
                barrier.wait();
                for _ in 0..5000 {
                    if t % 2 == 0 {
                        g.inc();
                        g.sub(0.25);
                    } else {
                        g.dec();
                        g.add(0.5);
                    }
                }
            });
        }
    });
    // Two threads each add 0.75 and two each subtract 0.5, 5000 times:
    // every intermediate value is a multiple of 0.25 well inside f64's exact
    // range, so the result is exact.
    assert_eq!(g.get(), 100.0 + 2.0 * 5000.0 * 0.75 - 2.0 * 5000.0 * 0.5);
}

#[test]
fn gauge_concurrent_set_and_add() {
    const ADDS: u64 = 2000;
    const SET_TO: f64 = 1_000_000.0;
    let g = Gauge::new();
    let barrier = Barrier::new(THREADS);
    thread::scope(|s| {
        for _ in 0..THREADS - 1 {
            s.spawn(|| {
                barrier.wait();
                for _ in 0..ADDS {
                    g.add(1.0);
                }
            });
        }
        s.spawn(|| {
            barrier.wait();
            for _ in 0..ADDS / 2 {
                g.add(1.0);
            }
            g.set(SET_TO);
        });
    });
    // The set replaced whatever was there, and the adds that came after it
    // are on top: an integer count of them, at most all of the other
    // threads' adds. A torn or lost `set` would leave a value below SET_TO.
    let v = g.get();
    assert!(v >= SET_TO, "{v}");
    assert!(v <= SET_TO + ((THREADS as u64 - 1) * ADDS) as f64, "{v}");
    assert_eq!(v.fract(), 0.0, "{v}");
}

#[test]
fn gauge_readers_see_only_written_values() {
    // Writers swap between two sets of values; a reader must never see a
    // value no writer produced (a torn or mixed word).
    let g = Gauge::new();
    g.set(1.5);
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        let stop = StopOnDrop(&done);
        s.spawn(|| {
            while !done.load(Ordering::Acquire) {
                let v = g.get();
                assert!(v == 1.5 || v == -2.75e100 || v == 2.5, "read {v}");
            }
        });
        let writers: Vec<_> = (0..2)
            .map(|t| {
                let g = &g;
                s.spawn(move || {
                    for _ in 0..50_000 {
                        if t == 0 {
                            g.set(1.5);
                        } else {
                            g.set(-2.75e100);
                        }
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        g.set(2.5);
        drop(stop);
    });
    assert_eq!(g.get(), 2.5);
}

#[test]
fn gauge_debug_shows_the_value() {
    let g = Gauge::new();
    g.set(42.5);
    let debug = format!("{g:?}");
    assert!(debug.contains("42.5"), "{debug}");
}

// ------------------------------------------------------------ UpDownGauge --

#[test]
fn up_down_gauge_arithmetic() {
    for g in [
        UpDownGauge::new(),
        UpDownGauge::default(),
        UpDownGauge::with_shards(0),
        UpDownGauge::with_shards(1),
        UpDownGauge::with_shards(3),
        UpDownGauge::with_shards(usize::MAX),
    ] {
        assert_eq!(g.get(), 0);
        g.inc();
        g.inc();
        g.dec();
        assert_eq!(g.get(), 1);
        g.add(-4);
        assert_eq!(g.get(), -3);
        g.sub(5);
        assert_eq!(g.get(), -8);
        g.sub(-10);
        assert_eq!(g.get(), 2);
        g.add(1_000_000_000_000);
        assert_eq!(g.get(), 1_000_000_000_002);
        g.add(0);
        assert_eq!(g.get(), 1_000_000_000_002);
    }
}

#[test]
fn up_down_gauge_balanced_concurrent_changes_return_to_zero() {
    for g in [
        UpDownGauge::new(),
        UpDownGauge::with_shards(1),
        UpDownGauge::with_shards(64),
    ] {
        let barrier = Barrier::new(THREADS);
        thread::scope(|s| {
            for t in 0..THREADS {
                let (g, barrier) = (&g, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    for i in 0..10_000 {
                        // Each thread is unbalanced mid-run, balanced at the
                        // end; pairs of threads offset each other's adds.
                        if i % 2 == 0 {
                            g.inc();
                        } else {
                            g.dec();
                        }
                        let delta = t as i64 + 3;
                        if t % 2 == 0 {
                            g.add(delta);
                            g.sub(delta);
                        } else {
                            g.sub(delta * 1000);
                            g.add(delta * 1000);
                        }
                    }
                });
            }
        });
        assert_eq!(g.get(), 0);
    }
}

#[test]
fn up_down_gauge_unbalanced_concurrent_changes_are_exact() {
    let g = UpDownGauge::new();
    thread::scope(|s| {
        for t in 0..THREADS {
            let g = &g;
            s.spawn(move || {
                for _ in 0..10_000 {
                    g.inc();
                }
                for _ in 0..(2_500 * (t + 1)) {
                    g.dec();
                }
            });
        }
    });
    // 40_000 increments, 2_500 * (1 + 2 + 3 + 4) = 25_000 decrements.
    assert_eq!(g.get(), 15_000);
    // A value moved below zero by other threads reads negative.
    thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| g.sub(10_000));
        }
    });
    assert_eq!(g.get(), -25_000);
}

#[test]
fn up_down_gauge_wraps_at_the_i64_range() {
    let g = UpDownGauge::new();
    g.add(i64::MAX);
    assert_eq!(g.get(), i64::MAX);
    g.inc();
    assert_eq!(g.get(), i64::MIN);
    g.dec();
    assert_eq!(g.get(), i64::MAX);

    let g = UpDownGauge::new();
    g.add(i64::MIN);
    assert_eq!(g.get(), i64::MIN);
    g.dec();
    assert_eq!(g.get(), i64::MAX);

    // Across threads, where the parts may sit on different shards.
    let g = UpDownGauge::with_shards(64);
    g.add(i64::MAX);
    thread::scope(|s| {
        s.spawn(|| g.inc());
    });
    assert_eq!(g.get(), i64::MIN);
    thread::scope(|s| {
        s.spawn(|| g.add(i64::MAX));
        s.spawn(|| g.add(2));
    });
    // MIN + MAX + 2 = 1.
    assert_eq!(g.get(), 1);
}

#[test]
fn up_down_gauge_sub_of_min_does_not_panic() {
    let g = UpDownGauge::new();
    g.sub(i64::MIN);
    // 0 - MIN wraps to MIN.
    assert_eq!(g.get(), i64::MIN);
    g.sub(i64::MIN);
    assert_eq!(g.get(), 0);
    g.inc();
    g.sub(i64::MIN);
    assert_eq!(g.get(), i64::MIN + 1);
    g.sub(i64::MAX);
    // MIN + 1 - MAX = MIN + 1 + MIN + 1 = 2 (mod 2^64).
    assert_eq!(g.get(), 2);
}

#[test]
fn up_down_gauge_debug_shows_the_value() {
    let g = UpDownGauge::new();
    g.add(-987);
    let debug = format!("{g:?}");
    assert!(debug.contains("-987"), "{debug}");
}
