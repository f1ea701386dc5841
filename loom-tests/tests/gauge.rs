//! Gauge invariants G1 (f64 set/add races end in a serial outcome) and G2
//! (sharded up-down gauge loses no change).
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use metricz::{Gauge, UpDownGauge};

#[derive(Clone, Copy, Debug)]
enum Op {
    Set(f64),
    Add(f64),
}

fn apply(value: f64, op: Op) -> f64 {
    match op {
        Op::Set(v) => v,
        Op::Add(d) => value + d,
    }
}

/// Every value a serial order of `ops` (one op per thread) gives from `start`.
fn serial_outcomes(start: f64, ops: &[Op]) -> Vec<f64> {
    if ops.is_empty() {
        return vec![start];
    }
    (0..ops.len())
        .flat_map(|i| {
            let mut rest = ops.to_vec();
            let op = rest.remove(i);
            serial_outcomes(apply(start, op), &rest)
        })
        .collect()
}

fn run(gauge: &Gauge, op: Op) {
    match op {
        Op::Set(v) => gauge.set(v),
        Op::Add(d) => gauge.add(d),
    }
}

/// G1: a racing `set` and `add` end in a value some serial order gives:
/// from 1.0, `set(5.0)` and `add(2.0)` give 7.0 or 5.0; an add that read
/// the value before the set and wrote after it would give 3.0.
#[test]
fn g1_set_add_race_is_serializable() {
    let ops = [Op::Set(5.0), Op::Add(2.0)];
    let outcomes = serial_outcomes(1.0, &ops);
    assert_eq!(outcomes, vec![7.0, 5.0]);
    metricz_loom_tests::explore("G1 gauge set/add", move || {
        let gauge = Arc::new(Gauge::new());
        gauge.set(1.0);
        let other = {
            let gauge = gauge.clone();
            thread::spawn(move || run(&gauge, ops[1]))
        };
        run(&gauge, ops[0]);
        other.join().unwrap();
        let end = gauge.get();
        assert!(outcomes.contains(&end), "{end} is no serial outcome");
    });
}

/// G1': racing `add`s (and `sub`) compose exactly: every order gives the
/// same sum, so any lost update shows.
#[test]
fn g1_racing_adds_lose_nothing() {
    metricz_loom_tests::explore("G1' gauge adds", || {
        let gauge = Arc::new(Gauge::new());
        gauge.set(1.0);
        let others: Vec<_> = [2.0, 0.25]
            .into_iter()
            .map(|d| {
                let gauge = gauge.clone();
                thread::spawn(move || gauge.add(d))
            })
            .collect();
        gauge.sub(0.5);
        for t in others {
            t.join().unwrap();
        }
        assert_eq!(gauge.get(), 2.75);
    });
}

/// G2: racing increments and decrements on the sharded gauge lose nothing.
#[test]
fn g2_up_down_gauge_loses_no_change() {
    metricz_loom_tests::explore("G2 up-down gauge", || {
        let gauge = Arc::new(UpDownGauge::new());
        let others: Vec<_> = [3i64, -5]
            .into_iter()
            .map(|delta| {
                let gauge = gauge.clone();
                thread::spawn(move || {
                    gauge.inc();
                    gauge.add(delta);
                })
            })
            .collect();
        gauge.dec();
        for t in others {
            t.join().unwrap();
        }
        assert_eq!(gauge.get(), 1 + 3 + 1 - 5 - 1);
    });
}
