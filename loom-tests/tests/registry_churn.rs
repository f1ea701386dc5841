//! Series-map invariants M13–M16: inserts that reuse a tombstone (the
//! writer mutex serialises inserts; lookups and removes stay lock-free).
//!
//! Every model starts from [`churned`]: under loom the table starts at 2
//! slots and the second series grows it to 16, and with loom's fixed hash
//! seed the routes `d`, `o` and `w` all hash to slot 12 of 16 (checked by
//! the unit test `registry::map::tests::loom_churn_routes_share_a_home`).
//! So after `d` is removed, slot 12 is a tombstone, `o` lives behind it in
//! slot 13, and an insert of `w` probes 12 (tombstone), 13 (`o`), 14
//! (empty) and installs into 12.
#![cfg(loom)]

use loom::thread;
use metricz::{GaugeVec, Registry};
use metricz_loom_tests::explore_bounded;

/// As in `registry.rs`: two threads, a fixed bound so each model's cost is
/// known. Two preemptions (the race each model is about needs one): with
/// three, M15 and M16 took 207 269 and 228 028 executions (about four
/// minutes each on the 2-core VM).
const BOUND: Option<usize> = Some(2);

fn explore<F: Fn() + Sync + Send + 'static>(name: &str, model: F) -> usize {
    explore_bounded(name, BOUND, model)
}

/// A gauge family (so arena leases stay out of the models' cost, as in M5)
/// whose 16-slot table holds `o` in slot 13 behind `d`'s tombstone in
/// slot 12, and whose `o` reads 1.
fn churned() -> GaugeVec {
    let f = Registry::new()
        .gauge_vec("in_flight", "In flight.", &["route"])
        .unwrap();
    // `d` in slot 0 of the 2-slot table; `o` (same home) in slot 1, which
    // grows the table: the copy keeps their order, `d` in 12, `o` in 13.
    drop(f.with(&["d"]).unwrap());
    f.with(&["o"]).unwrap().inc();
    assert!(f.remove(&["d"]).unwrap());
    f
}

/// M13: an insert into a tombstone racing a lookup of the series behind
/// it: the lookup always finds `o`, because the slot it passes goes from
/// tombstone to node, never through empty; the inserted series is there
/// afterwards.
#[test]
fn m13_insert_into_tombstone_racing_lookup_behind_it() {
    explore("M13 registry insert into tombstone vs lookup", || {
        let f = churned();
        let inserter = {
            let f = f.clone();
            // Created, not incremented: the model is about the slot.
            thread::spawn(move || drop(f.with(&["w"]).unwrap()))
        };
        let found = f.find(&["o"]).unwrap().map(|o| o.get());
        assert_eq!(found, Some(1.0), "a lookup missed a live series");
        inserter.join().unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f.find(&["w"]).unwrap().map(|w| w.get()), Some(0.0));
    });
}

/// M14: an insert into a tombstone racing the removal of the series
/// behind it: the removal's probe passes the slot being filled and still
/// finds `o` (and unlinks it once); the inserted series stays. (A lookup
/// and a removal both racing the insert in one model took 240 042
/// executions at two preemptions, so they are two models.)
#[test]
fn m14_insert_into_tombstone_racing_removal_behind_it() {
    explore("M14 registry insert into tombstone vs remove", || {
        let f = churned();
        let inserter = {
            let f = f.clone();
            thread::spawn(move || drop(f.with(&["w"]).unwrap()))
        };
        assert!(f.remove(&["o"]).unwrap(), "a remove missed a live series");
        inserter.join().unwrap();
        assert_eq!(f.len(), 1);
        assert!(f.find(&["o"]).unwrap().is_none());
        assert_eq!(f.find(&["w"]).unwrap().map(|w| w.get()), Some(0.0));
    });
}

/// M15: racing creates of one series whose probe passes a tombstone make
/// one series: both threads would install `w` into slot 12, and only the
/// writer mutex (held from the probe to the install) keeps the second from
/// overwriting (and losing) the first. Both increments land in the one
/// series.
#[test]
fn m15_racing_creates_into_a_tombstone_make_one_series() {
    explore("M15 registry racing creates into tombstone", || {
        let f = churned();
        let other = {
            let f = f.clone();
            thread::spawn(move || f.with(&["w"]).unwrap().inc())
        };
        f.with(&["w"]).unwrap().inc();
        other.join().unwrap();
        assert_eq!(f.len(), 2, "o and one w");
        assert_eq!(f.find(&["w"]).unwrap().map(|w| w.get()), Some(2.0));
        assert_eq!(f.find(&["o"]).unwrap().map(|o| o.get()), Some(1.0));
    });
}

/// M16: an insert into a tombstone racing `clear` is either cleared or
/// kept, never lost in the retired table: `clear` freezes live slots and
/// empty ones but not tombstones, so it must also hold off inserts (the
/// writer mutex) for an insert into a tombstone not to land in a table it
/// has already frozen.
#[test]
fn m16_insert_into_tombstone_racing_clear_is_cleared_or_kept() {
    explore("M16 registry insert into tombstone vs clear", || {
        let f = churned();
        let inserter = {
            let f = f.clone();
            thread::spawn(move || f.with(&["w"]).unwrap().inc())
        };
        let cleared = f.clear();
        inserter.join().unwrap();
        // `remove` probes without inserting: which series are really left.
        let left = ["o", "w"]
            .iter()
            .filter(|route| f.remove(&[route]).unwrap())
            .count();
        assert_eq!(cleared + left, 2, "cleared {cleared}, left {left}");
        assert_eq!(f.len(), 0);
    });
}
