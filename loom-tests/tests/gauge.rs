//! Gauge invariants G1 (f64 set/add races end in a serial outcome), G2
//! (sharded up-down gauge loses no change), G3 (reads racing set/add follow
//! one serial order) and G4 (an in-flight up-down gauge never reads
//! negative).
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use metricz::{Gauge, UpDownGauge};
use metricz_loom_tests::{SawPartial, Witness};

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

/// G3: a reader's `get()`s racing a `set` and an `add` follow one serial
/// order of them, the one the final value comes from: from 1.0, `add(2.0)`
/// then `set(5.0)` passes through 3.0 and ends in 5.0; `set(5.0)` then
/// `add(2.0)` passes through 5.0 and ends in 7.0. A read of a value no
/// order holds (a torn or lost update), or two reads out of their order's
/// sequence (5.0 then 3.0), fail. The model checks that some read saw an
/// intermediate value.
#[test]
fn g3_reads_follow_one_serial_order() {
    let between = Witness::default();
    let seen = between.clone();
    metricz_loom_tests::explore("G3 gauge reads vs set/add", move || {
        let gauge = Arc::new(Gauge::new());
        gauge.set(1.0);
        let reader = {
            let gauge = gauge.clone();
            thread::spawn(move || (gauge.get(), gauge.get()))
        };
        let adder = {
            let gauge = gauge.clone();
            thread::spawn(move || gauge.add(2.0))
        };
        gauge.set(5.0);
        adder.join().unwrap();
        let (first, second) = reader.join().unwrap();
        let end = gauge.get();
        let order: &[f64] = match end {
            5.0 => &[1.0, 3.0, 5.0],
            7.0 => &[1.0, 5.0, 7.0],
            _ => panic!("{end} is no serial outcome"),
        };
        let position = |v: f64| order.iter().position(|&o| o == v);
        match (position(first), position(second)) {
            (Some(a), Some(b)) => assert!(a <= b, "read {first} then {second}, ending in {end}"),
            _ => panic!("read {first} then {second}: not both states of the order ending in {end}"),
        }
        if [first, second].iter().any(|&v| v != 1.0 && v != end) {
            seen.mark();
        }
    });
    between.assert_seen("G3: a read between the set and the add");
}

/// G4: an in-flight gauge never reads negative: each writer's decrements
/// follow its increments (the model's thread `inc` then `dec`, another
/// thread `add(3)` then `sub(3)`), so every read a reader makes racing them
/// lies in 0..=4, whatever shards the writers share. (Separate up and down
/// tallies read one after the other would read −1: the down tally's
/// decrement without the up tally's increment.) The model checks that some
/// read saw a change in flight.
#[test]
fn g4_in_flight_gauge_never_reads_negative() {
    let partial = SawPartial::default();
    let seen = partial.clone();
    metricz_loom_tests::explore("G4 up-down gauge reads", move || {
        let gauge = Arc::new(UpDownGauge::new());
        let reader = {
            let gauge = gauge.clone();
            thread::spawn(move || (gauge.get(), gauge.get()))
        };
        let other = {
            let gauge = gauge.clone();
            thread::spawn(move || {
                gauge.add(3);
                gauge.sub(3);
            })
        };
        gauge.inc();
        gauge.dec();
        other.join().unwrap();
        let (first, second) = reader.join().unwrap();
        for read in [first, second] {
            assert!(
                (0..=4).contains(&read),
                "read {read} with at most 4 in flight"
            );
            seen.note(read as u64, 5);
        }
        assert_eq!(gauge.get(), 0);
    });
    partial.assert_seen("G4 up-down gauge reads");
}
