//! Series-map invariants M1–M12 (the registry's epoch-reclaimed map; under
//! loom its tables start at 2 slots, so a second series already grows them).
#![cfg(loom)]

use loom::thread;
use metricz::{CounterVec, GaugeVec, Registry};
use metricz_loom_tests::{explore_bounded, Witness};

/// Every crossbeam-epoch pin is many modelled operations, so these models
/// use two threads and a preemption bound of 3, fixed here (not taken from
/// loom's environment) so their cost is known (M8 and M9 say why theirs
/// differ or what keeps them small).
const BOUND: Option<usize> = Some(3);

fn explore<F: Fn() + Sync + Send + 'static>(name: &str, model: F) -> usize {
    explore_bounded(name, BOUND, model)
}

/// As [`explore`], for the six models that take 30 s to 2 min each at
/// bound 3 (M1, M4-M7, M12: 430 s of the loom run on the 2-core machine):
/// `METRICZ_LOOM_REGISTRY_BOUND=2` explores them at bound 2 instead (about
/// a tenth of the time), which the test command does to fit its time
/// budget. `scripts/loom` alone keeps bound 3; papers/invariants.md records
/// the bound-3 execution counts.
fn explore_heavy<F: Fn() + Sync + Send + 'static>(name: &str, model: F) -> usize {
    let lowered = std::env::var("METRICZ_LOOM_REGISTRY_BOUND")
        .ok()
        .and_then(|v| v.parse::<usize>().ok());
    let bound = match (lowered, BOUND) {
        (Some(lowered), Some(bound)) => Some(lowered.min(bound)),
        _ => BOUND,
    };
    explore_bounded(name, bound, model)
}

fn family(limit: usize) -> CounterVec {
    Registry::with_cardinality_limit(limit)
        .counter_vec("requests_total", "Requests.", &["route"])
        .unwrap()
}

fn spawn_incs(f: &CounterVec, routes: &[&'static str]) -> Vec<thread::JoinHandle<()>> {
    routes
        .iter()
        .map(|&route| {
            let f = f.clone();
            thread::spawn(move || f.with(&[route]).unwrap().inc())
        })
        .collect()
}

fn value(f: &CounterVec, route: &str) -> u64 {
    f.with(&[route]).unwrap().get()
}

/// M1: racing get-or-create of one label set makes one series, and every
/// increment lands in it.
#[test]
fn m1_racing_get_or_create_makes_one_series() {
    explore_heavy("M1 registry get-or-create", || {
        let f = family(10);
        let threads = spawn_incs(&f, &["a"]);
        f.with(&["a"]).unwrap().inc();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(f.len(), 1);
        assert_eq!(value(&f, "a"), 2);
    });
}

/// M2: a lookup racing the removal of its series uses either the live
/// series or a fresh one, never freed memory: the series found stays valid
/// for the guard's lifetime, and the counts add up.
#[test]
fn m2_lookup_racing_removal_is_safe() {
    explore("M2 registry lookup vs remove", || {
        let f = family(10);
        let kept = (*f.with(&["a"]).unwrap()).clone();
        let user = {
            let f = f.clone();
            thread::spawn(move || {
                let series = f.with(&["a"]).unwrap();
                series.inc();
                series.inc();
                series.get()
            })
        };
        let removed = f.remove(&["a"]).unwrap();
        let seen = user.join().unwrap();
        assert!(removed);
        assert_eq!(seen, 2);
        // Either the user found the old series (now detached, still held by
        // `kept`) or created a new one after the removal.
        let live = if f.is_empty() { 0 } else { value(&f, "a") };
        assert_eq!(kept.get() + live, 2);
    });
}

/// M3: a lookup racing growth (the second insert freezes the 2-slot table
/// and copies it to a 16-slot one) finds the existing series and its
/// increment lands.
#[test]
fn m3_lookup_racing_growth_finds_every_series() {
    explore("M3 registry lookup vs growth", || {
        let f = family(10);
        f.with(&["a"]).unwrap().inc();
        let threads = spawn_incs(&f, &["b"]);
        f.with(&["a"]).unwrap().inc();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(f.len(), 2);
        assert_eq!((value(&f, "a"), value(&f, "b")), (2, 1));
    });
}

/// M4: the cardinality limit holds under racing inserts: with room for one
/// series, two new label sets make one series and one overflow lookup, and
/// no increment is lost.
#[test]
fn m4_cardinality_limit_holds_under_racing_inserts() {
    explore_heavy("M4 registry cardinality limit", || {
        let f = family(1);
        let threads = spawn_incs(&f, &["a"]);
        f.with(&["b"]).unwrap().inc();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(f.len(), 1);
        assert_eq!(f.overflowed(), 1);
        // One route resolves to its series, the other to the overflow
        // series: each holds one increment.
        let total: u64 = ["a", "b"].iter().map(|r| value(&f, r)).sum();
        assert_eq!(total, 2);
    });
}

/// M5: an insert racing growth is not lost: while one thread's insert of a
/// second series triggers growth (freezing the 2-slot table and copying it
/// to a new one), another inserts a third; afterwards all three exist once,
/// with their increments. A gauge family, so that the model's cost is the
/// map's: with counters every insert also leases an arena slot, which
/// triples the executions (racing leases are covered by M1 and M7).
#[test]
fn m5_insert_racing_growth_is_not_lost() {
    explore_heavy("M5 registry insert vs growth", || {
        let f = Registry::new()
            .gauge_vec("in_flight", "In flight.", &["route"])
            .unwrap();
        f.with(&["a"]).unwrap().inc();
        let inserter = {
            let f = f.clone();
            thread::spawn(move || f.with(&["b"]).unwrap().inc())
        };
        f.with(&["c"]).unwrap().inc();
        inserter.join().unwrap();
        assert_eq!(f.len(), 3);
        for route in ["a", "b", "c"] {
            assert_eq!(f.with(&[route]).unwrap().get(), 1.0, "{route}");
        }
    });
}

/// M6: an insert racing `clear` is either cleared or kept, never lost in
/// the retired table: the series `clear` removed plus those left add up to
/// every series inserted. (`clear` freezes empty slots too; an insert that
/// could still land in the old table after the freeze would be in neither.)
#[test]
fn m6_insert_racing_clear_is_cleared_or_kept() {
    explore_heavy("M6 registry insert vs clear", || {
        let f = family(10);
        f.with(&["a"]).unwrap().inc();
        let inserter = spawn_incs(&f, &["b"]);
        let cleared = f.clear();
        for t in inserter {
            t.join().unwrap();
        }
        // `remove` probes without inserting: which series are really left.
        let left = ["a", "b"]
            .iter()
            .filter(|route| f.remove(&[route]).unwrap())
            .count();
        assert_eq!(cleared + left, 2);
        assert_eq!(f.len(), 0);
    });
}

/// M7: an arena slot is never handed out while a reader can still reach
/// its old series. Under loom the arena has three chunks of one slot: the
/// family's overflow series, "a" and "b" fill it. A user looks "a" up
/// (`get`, which never creates) and increments it while the model's thread
/// removes "a" and creates "c", which gets a's slot once the removed node
/// has been reclaimed (under loom every fresh epoch participant's first pin
/// runs the collector) and a standalone counter before that. An increment
/// through the removed series must never show up in "c".
#[test]
fn m7_arena_slot_not_reused_while_reachable() {
    let reused = Witness::default();
    let seen = reused.clone();
    explore_heavy("M7 arena slot reuse vs reader", move || {
        let f = family(10);
        let a_slot = f.with(&["a"]).unwrap().arena_slot();
        assert!(a_slot.is_some(), "registry counters live in the arena");
        assert!(f.with(&["b"]).unwrap().arena_slot().is_some());
        let user = {
            let f = f.clone();
            thread::spawn(move || {
                if let Some(a) = f.find(&["a"]).unwrap() {
                    a.inc();
                }
            })
        };
        assert!(f.remove(&["a"]).unwrap());
        let c = (*f.with(&["c"]).unwrap()).clone();
        user.join().unwrap();
        if c.arena_slot() == a_slot {
            seen.mark();
        }
        assert_eq!(
            c.get(),
            0,
            "an increment of the removed series landed in its slot's new owner"
        );
    });
    reused.assert_seen("a removed series' slot handed out again");
}

/// M8: an eviction pass removes only the series it found idle, never a
/// newer one that took its label values: "a" has been idle for one
/// collection, and while a second pass (`evict_idle(2)`) runs, a user
/// removes "a" and creates it again, incrementing it. Exactly one of the
/// two removes the old series, and the new one survives with its increment
/// (a pass that found the new series sees it idle for at most one
/// collection). An eviction that removed by label values instead of by
/// node would remove the new series. The table is grown beforehand (a
/// second series, since removed), so the model's cost is the pass racing
/// the removal and the insert, not a growth (M3, M5); a gauge family, as
/// in M5, to keep arena leases out of the cost.
#[test]
fn m8_eviction_spares_a_recreated_series() {
    // Two preemptions (the other models here have three): the race needs
    // one, the pass deciding before the removal and removing after the
    // re-creation; with three this model alone took five minutes.
    explore_bounded("M8 registry eviction vs re-creation", Some(2), || {
        let f = Registry::new()
            .gauge_vec("in_flight", "In flight.", &["route"])
            .unwrap();
        drop(f.with(&["a"]).unwrap());
        drop(f.with(&["b"]).unwrap());
        assert!(f.remove(&["b"]).unwrap());
        assert_eq!(f.evict_idle(2), 0, "idle for one collection only");
        let evictor = {
            let f = f.clone();
            thread::spawn(move || f.evict_idle(2))
        };
        let removed = f.remove(&["a"]).unwrap();
        f.with(&["a"]).unwrap().inc();
        let evicted = evictor.join().unwrap();
        assert_eq!(
            usize::from(removed) + evicted,
            1,
            "the old series was removed {} times",
            usize::from(removed) + evicted
        );
        assert_eq!(f.len(), 1);
        assert_eq!(
            f.with(&["a"]).unwrap().get(),
            1.0,
            "the new series was evicted"
        );
    });
}

/// The lines of a text exposition that carry the series `route`.
fn lines_of(text: &str, route: &str) -> usize {
    let label = format!("route=\"{route}\"");
    text.lines().filter(|line| line.contains(&label)).count()
}

/// M9 and M10's start: a gauge family with routes `a` and `c`, scraped
/// once (so the sorted list is built and the table grown), and a thread
/// scraping it again, started.
fn scraping_two_routes() -> (Registry, GaugeVec, thread::JoinHandle<String>) {
    let reg = Registry::new();
    let f = reg
        .gauge_vec("in_flight", "In flight.", &["route"])
        .unwrap();
    f.with(&["a"]).unwrap().inc();
    f.with(&["c"]).unwrap().inc();
    let mut warm = String::new();
    reg.encode_prometheus(&mut warm).unwrap();
    assert_eq!((lines_of(&warm, "a"), lines_of(&warm, "b")), (1, 0));
    let scraper = {
        let reg = reg.clone();
        thread::spawn(move || {
            let mut text = String::new();
            reg.encode_prometheus(&mut text).unwrap();
            text
        })
    };
    (reg, f, scraper)
}

/// M9: a scrape never serves a stale series list: a scrape racing an
/// insert lists every older series once and the new one at most once, and
/// a scrape after the insert has returned lists it. Collection keeps the
/// sorted series between scrapes and rebuilds them when the map's version
/// (removals and table replacements, and the table's insert count, which an
/// insert bumps with Release after its CAS) has moved. The version is read
/// (Acquire, pairing with that Release) before the walk, so a version that
/// counts the insert comes with a walk that sees it; read Relaxed, a racing
/// scrape can read a version that counts the insert, walk a table without
/// it and cache that list under that version, and every later scrape
/// serves it. The table is grown
/// beforehand, and a warm scrape builds the list, so the race is the
/// insert against the rebuild; the model checks that some racing scrape
/// listed the new series and some did not.
#[test]
fn m9_scrape_after_insert_lists_it() {
    let listed = Witness::default();
    let missed = Witness::default();
    let (saw_listed, saw_missed) = (listed.clone(), missed.clone());
    explore("M9 registry scrape vs insert", move || {
        let (reg, f, scraper) = scraping_two_routes();
        f.with(&["b"]).unwrap().inc();
        let racing = scraper.join().unwrap();
        assert_eq!((lines_of(&racing, "a"), lines_of(&racing, "c")), (1, 1));
        match lines_of(&racing, "b") {
            0 => saw_missed.mark(),
            1 => saw_listed.mark(),
            n => panic!("a racing scrape listed the new series {n} times"),
        }
        let mut after = String::new();
        reg.encode_prometheus(&mut after).unwrap();
        assert_eq!(
            lines_of(&after, "b"),
            1,
            "a scrape after the insert returned does not list it:\n{after}"
        );
    });
    listed.assert_seen("M9: a racing scrape that listed the new series");
    missed.assert_seen("M9: a racing scrape that missed the new series");
}

/// M10: two walks of one family overlap, one of them rebuilding the sorted
/// list (an insert made it stale) while the other still reads the old one.
/// Walks share the list by `Arc` and hold no lock while they read, so the
/// rebuild goes into a new list: the reading walk lists the old series
/// once each, the rebuilding walk lists the new one too.
#[test]
fn m10_overlapping_walks_each_read_a_whole_list() {
    explore_bounded("M10 overlapping walks vs rebuild", Some(2), || {
        let (reg, f, scraper) = scraping_two_routes();
        f.with(&["b"]).unwrap().inc();
        let mut mine = String::new();
        reg.encode_prometheus(&mut mine).unwrap();
        let racing = scraper.join().unwrap();
        assert_eq!((lines_of(&racing, "a"), lines_of(&racing, "c")), (1, 1));
        assert!(lines_of(&racing, "b") <= 1, "{racing}");
        assert_eq!(
            (
                lines_of(&mine, "a"),
                lines_of(&mine, "b"),
                lines_of(&mine, "c")
            ),
            (1, 1, 1),
            "the walk after the insert, overlapping another:\n{mine}"
        );
    });
}

/// M11: the `metrics` facade's thread caches keep a series handle with the
/// family's change number read before the lookup, and look the series up
/// again when the number has moved (`src/facade/cache.rs`). A cached call
/// racing the removal of its series either reads the old number and counts
/// into the old series (detached by then or just after, as any handle
/// racing a removal), or reads the removal's bump and looks up again,
/// finding no trace of the removed series: its increment reaches the live
/// series. Acquire on the change number (pairing with the Release bump
/// after the unlink) is what makes the second case hold; the model checks
/// that both cases were explored.
#[test]
fn m11_cached_handle_follows_removal() {
    let stale = Witness::default();
    let fresh = Witness::default();
    let (saw_stale, saw_fresh) = (stale.clone(), fresh.clone());
    explore("M11 facade cache vs remove", move || {
        let f = family(10);
        // The cache entry: the number first, then the lookup.
        let seen = f.changes_for_tests();
        let cached = f.handle(&["a"]).unwrap();
        let user = {
            let (f, cached) = (f.clone(), cached.clone());
            thread::spawn(move || {
                if f.changes_for_tests() == seen {
                    cached.inc();
                    false
                } else {
                    f.handle(&["a"]).unwrap().inc();
                    true
                }
            })
        };
        assert!(f.remove(&["a"]).unwrap());
        let looked_again = user.join().unwrap();
        let live = f.find(&["a"]).unwrap().map(|c| c.get());
        if looked_again {
            saw_fresh.mark();
            assert_eq!((cached.get(), live), (0, Some(1)));
        } else {
            saw_stale.mark();
            assert_eq!((cached.get(), live), (1, None));
        }
        // A call after the removal returned always looks up again.
        assert_ne!(f.changes_for_tests(), seen);
    });
    stale.assert_seen("M11: a cached call that counted before seeing the removal");
    fresh.assert_seen("M11: a cached call that saw the removal and looked up again");
}

/// M12: the facade's resolution (a cache miss) reads the family's change
/// number before it looks the series up, so an entry whose number is
/// still current holds the live series. A resolution races the removal of
/// its series; afterwards, if the number it read is still the family's,
/// the cache would trust the entry for good, and its handle must be the
/// series the family exports. (Looking up first and reading the number
/// after fails this: the lookup finds the old series, the removal bumps
/// the number, the read sees the bump, and the entry keeps a detached
/// series under a current number.) The model checks that both a trusted
/// and a stale entry were explored; the table is grown beforehand, as in
/// M8.
#[test]
fn m12_a_resolution_racing_removal_never_trusts_a_removed_series() {
    let trusted = Witness::default();
    let stale = Witness::default();
    let (saw_trusted, saw_stale) = (trusted.clone(), stale.clone());
    explore_heavy("M12 facade resolution vs remove", move || {
        // Grown beforehand (a second series, since removed), so the
        // re-created series' insert does not grow the table, which would
        // move the number as well.
        let f = family(10);
        f.with(&["a"]).unwrap().inc();
        f.with(&["b"]).unwrap().inc();
        assert!(f.remove(&["b"]).unwrap());
        let user = {
            let f = f.clone();
            thread::spawn(move || {
                let seen = f.changes_for_tests();
                let handle = f.handle(&["a"]).unwrap();
                (seen, handle)
            })
        };
        assert!(f.remove(&["a"]).unwrap());
        let (seen, handle) = user.join().unwrap();
        if f.changes_for_tests() == seen {
            saw_trusted.mark();
            handle.inc();
            let live = f.find(&["a"]).unwrap().map(|c| c.get());
            assert_eq!(
                live,
                Some(handle.get()),
                "a trusted entry holds a removed series"
            );
        } else {
            saw_stale.mark();
        }
    });
    trusted.assert_seen("M12: an entry resolved after the removal, still current");
    stale.assert_seen("M12: an entry resolved before the removal, seen stale");
}
