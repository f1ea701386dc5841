//! Arena rows that follow the data (invariants A1, A2): a chunk's row for
//! CPU `k` is installed by the first write from CPU `k` (under loom a
//! thread's CPU is its dense thread index: the main thread 0, the first
//! spawned thread 1), racing other writers and the collection walk, which
//! sums the installed rows.
#![cfg(loom)]

use loom::thread;
use metricz::registry::Value;
use metricz::Registry;
use metricz_loom_tests::{explore_bounded, Witness};

/// Each collection walk pins epochs and takes the family's list lock: many
/// modelled operations, so the bound is fixed here to keep the cost known.
const BOUND: Option<usize> = Some(3);

/// The counter's value as the collection walk reads it (from the arena's
/// row sums).
fn scrape(reg: &Registry) -> u64 {
    let mut value = None;
    reg.collect(|family| {
        family.for_each_series(|mut series| {
            if let Value::Counter(n) = series.value() {
                value = Some(n);
            }
            Ok::<(), std::convert::Infallible>(())
        })
    })
    .unwrap();
    value.expect("the counter is listed")
}

/// Two writers race to install the same row (one shard: both threads'
/// CPUs map to row 0) while the main thread's walk sums it: one row is
/// installed (the loser frees its own), no increment is lost, the racing
/// walk reads 1 or 2, and a walk after both reads 2.
#[test]
fn a1_racing_installs_of_one_row_lose_nothing() {
    let (one, two) = (Witness::default(), Witness::default());
    let (saw_one, saw_two) = (one.clone(), two.clone());
    explore_bounded("A1 arena row install race", BOUND, move || {
        let reg = Registry::builder().shards(1).build();
        let c = reg.counter("hits_total", "Hits.").unwrap();
        let c2 = c.clone();
        let t = thread::spawn(move || c2.inc());
        c.inc();
        let racing = scrape(&reg);
        t.join().unwrap();
        assert!((1..=2).contains(&racing), "racing walk read {racing}");
        if racing == 1 {
            one.mark();
        } else {
            two.mark();
        }
        assert_eq!(scrape(&reg), 2);
        assert_eq!(c.get(), 2);
        // Two one-slot chunks (the family's overflow series has the other,
        // never written): one row.
        assert_eq!(reg.counter_arena_rows(), (2, 1));
    });
    saw_one.assert_seen("a walk before the other increment");
    saw_two.assert_seen("a walk after both increments");
}

/// A walk races the install of another CPU's row (two shards: the spawned
/// thread writes row 1, the main thread row 0): the walk reads the
/// directory while the entry changes from null to the new row, and reads
/// either the row or its absence — 1 or 2, never a torn or lost count —
/// and a walk after the join reads 2 from both rows.
#[test]
fn a2_a_walk_racing_a_row_install_loses_nothing() {
    let (one, two) = (Witness::default(), Witness::default());
    let (saw_one, saw_two) = (one.clone(), two.clone());
    explore_bounded("A2 arena walk vs row install", BOUND, move || {
        let reg = Registry::builder().shards(2).build();
        let c = reg.counter("hits_total", "Hits.").unwrap();
        let c2 = c.clone();
        c.inc();
        let t = thread::spawn(move || c2.inc());
        // Without this yield loom runs the walk before the spawned thread
        // in every execution it explores (3 executions, never a walk after
        // the install: its DPOR does not pair the walk's load of entry 1
        // with the install's CAS that follows the spawned thread's own
        // load). The yield lets it schedule the install before, inside and
        // after the walk.
        thread::yield_now();
        let racing = scrape(&reg);
        t.join().unwrap();
        assert!((1..=2).contains(&racing), "racing walk read {racing}");
        if racing == 1 {
            one.mark();
        } else {
            two.mark();
        }
        assert_eq!(scrape(&reg), 2);
        assert_eq!(c.get(), 2);
        assert_eq!(reg.counter_arena_rows(), (2, 2));
    });
    saw_one.assert_seen("a walk before the row install");
    saw_two.assert_seen("a walk after the row install");
}
