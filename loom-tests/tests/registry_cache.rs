//! Thread-cache invariants K1–K3 (`src/registry/cache.rs`): lookups of a
//! series this thread used before skip the epoch pin, holding the node by
//! a counted reference and validating it by a full label comparison and
//! its removed flag.
//!
//! loom does not track heap frees (see M2 in `papers/invariants.md`), so
//! under loom a node whose last reference goes is not freed: its metric is
//! dropped and the node is flagged reclaimed, and a series found in a
//! cache checks that flag on every use (`Series::deref`) — a use after
//! free in a real build is a panic here. A second reclamation of one node
//! panics too. Gauge families, as in M5 and M8: counter series would add
//! arena leases to every model's cost (M7 covers those).
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;
use metricz::{Gauge, GaugeVec, Registry};
use metricz_loom_tests::{explore_bounded, Witness};

/// As in `registry.rs`: every epoch pin is many modelled operations.
const BOUND: Option<usize> = Some(3);

fn family() -> GaugeVec {
    Registry::new()
        .gauge_vec("in_flight", "In flight.", &["route"])
        .unwrap()
}

/// The address of the metric a lookup found: under loom nodes are never
/// freed, so two series at one address are one series.
fn address(f: &GaugeVec, route: &str) -> usize {
    let series = f.with(&[route]).unwrap();
    let metric: &Gauge = &series;
    metric as *const Gauge as usize
}

/// K1: a cached series is never used after its node is reclaimed. The
/// model's thread caches "a" (its third lookup finds it in the map again
/// and takes the entry's reference), then, racing a thread that removes "a"
/// and pushes the epoch collector along, looks "a" up again — a cache
/// hit, no pin — and increments the series twice. The removal hands the
/// map's reference to the collector, which may release it between the hit
/// and the increments: only the entry's own reference keeps the node
/// (under loom a use of a reclaimed node panics). Afterwards the counts
/// add up: the old series holds the increments made through it.
#[test]
fn k1_cached_series_never_used_after_reclamation() {
    explore_bounded("K1 cache hit vs reclamation", BOUND, || {
        let f = family();
        let old = f.handle(&["a"]).unwrap();
        // Found in the map twice: a candidate, then an entry holding its
        // reference.
        f.with(&["a"]).unwrap().inc();
        f.with(&["a"]).unwrap().inc();
        let remover = {
            let f = f.clone();
            thread::spawn(move || {
                assert!(f.remove(&["a"]).unwrap());
                // Two fresh participants' pins advance the epoch twice:
                // enough for the removal's deferred release to run.
                f.collect_garbage();
                f.collect_garbage();
            })
        };
        let series = f.with(&["a"]).unwrap();
        series.inc();
        series.inc();
        let used_old = series.get() == 4.0;
        drop(series);
        remover.join().unwrap();
        let live = f.find(&["a"]).unwrap().map_or(0.0, |g| g.get());
        // Either the hit took the old series (4 in it) or the lookup came
        // after the removal and created a new one (2 in it, 2 in the old).
        if used_old {
            assert_eq!((old.get(), live), (4.0, 0.0));
        } else {
            assert_eq!((old.get(), live), (2.0, 2.0));
        }
    });
}

/// K2: a removed series is never returned from a cache after `remove`
/// returns. The model's thread has found "a" in the map once (a cache
/// candidate); another thread removes "a" and then sets a flag. Racing
/// that, the model's thread looks "a" up again (a pinned lookup that makes
/// the candidate an entry holding whatever it found: the old series, or a
/// fresh one if the removal came first), reads the flag, and looks "a" up
/// a third time: having seen the flag, it never gets the removed series
/// (compared by address: nodes are never freed under loom). The model
/// asserts that some execution's entry held the removed series when the
/// flag was seen (the case the removed flag exists for), and that some
/// hit took the old series before the removal.
#[test]
fn k2_removed_series_never_returned_after_remove() {
    let stale_entry = Witness::default();
    let early_hit = Witness::default();
    let (saw_stale, saw_early) = (stale_entry.clone(), early_hit.clone());
    // Two preemptions: the stale case needs one (the model's thread
    // preempted between its filling lookup and the flag); at three this
    // model took 499 324 executions.
    explore_bounded("K2 cache hit vs remove", Some(2), move || {
        let f = family();
        let old = address(&f, "a");
        assert_eq!(address(&f, "a"), old);
        let removed = Arc::new(AtomicBool::new(false));
        let remover = {
            let (f, removed) = (f.clone(), removed.clone());
            thread::spawn(move || {
                assert!(f.remove(&["a"]).unwrap());
                // Release: the model's thread, reading `true` (Acquire),
                // looks up after `remove` returned.
                removed.store(true, Ordering::Release);
            })
        };
        let first = address(&f, "a");
        let after = removed.load(Ordering::Acquire);
        let second = address(&f, "a");
        remover.join().unwrap();
        if after {
            assert_ne!(second, old, "a cache returned a series removed before");
            if first == old {
                saw_stale.mark();
            }
        } else if first == old && second == old {
            saw_early.mark();
        }
    });
    stale_entry.assert_seen("K2: an entry holding the removed series, looked up after remove");
    early_hit.assert_seen("K2: a cache hit on the series before its removal");
}

/// K3: a family dropped while another thread's cache holds one of its
/// series: the map's drop (on whichever thread drops the family last)
/// flags the node removed and gives up its reference while the user
/// thread's entry keeps its own, and the user's hit before its drop never
/// meets a reclaimed node; no node is reclaimed twice (a second
/// reclamation panics under loom). Under loom a thread's cache releases
/// nothing at thread exit (see `src/registry/cache.rs`): the release at
/// exit is covered by `tests/registry_cache.rs`, not here.
#[test]
fn k3_family_dropped_while_cached_reclaims_once() {
    explore_bounded("K3 family drop vs cache", BOUND, || {
        let f = family();
        f.with(&["a"]).unwrap().inc();
        let user = {
            let f = f.clone();
            thread::spawn(move || {
                // A candidate, an entry, then a hit.
                f.with(&["a"]).unwrap().inc();
                f.with(&["a"]).unwrap().inc();
                f.with(&["a"]).unwrap().inc();
                drop(f);
            })
        };
        // The model's thread caches "a" too (a pinned lookup, so loom sees
        // this thread's steps), then drops its family: the last of the
        // two drops runs the map's drop, on either thread.
        assert!(f.find(&["a"]).unwrap().is_some());
        drop(f);
        user.join().unwrap();
    });
}
