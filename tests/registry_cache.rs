//! The per-thread cache of recently used series (`src/registry/cache.rs`):
//! a lookup of a series this thread used before skips the epoch pin, and
//! the cache never hands out a series that left its family — after
//! `remove`, `clear`, `evict_idle`, or the family's drop — on the thread
//! that removed it or on any other, holds what a held `Series` borrows
//! while the same thread looks up other series, and lets its series go at
//! thread exit.
//!
//! Every series is looked up at least twice before the checks: the first
//! lookup creates it, the second finds it in the map and caches it, later
//! ones hit the cache.

use metricz::{Counter, CounterVec, Registry};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::thread;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The slot-reuse tests count on epoch reclamation, which a pinned thread
/// of another test holds back: they run one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn family() -> CounterVec {
    Registry::new()
        .counter_vec("cached_total", "Cached.", &["method", "status"])
        .expect("valid family")
}

/// Looks `values` up until it is cached (create, then find), incrementing
/// once per lookup; returns the count.
fn warm(f: &CounterVec, values: &[&str; 2]) -> u64 {
    for _ in 0..3 {
        f.with(values).expect("two values").inc();
    }
    f.with(values).expect("two values").get()
}

/// After `remove` returns, a lookup on the removing thread and on another
/// thread that had the series cached gives a fresh series at zero, and
/// increments after the removal never reach the removed series.
#[test]
fn removed_series_is_never_served_from_a_cache() -> TestResult {
    let f = family();
    let old: Counter = f.handle(&["GET", "200"])?;
    assert_eq!(warm(&f, &["GET", "200"]), 3);
    let (to_other, other_rx) = mpsc::channel::<()>();
    let (to_main, main_rx) = mpsc::channel::<u64>();
    let other = {
        let f = f.clone();
        thread::spawn(move || {
            // Cached on this thread too.
            to_main.send(warm(&f, &["GET", "200"])).unwrap();
            other_rx.recv().unwrap();
            let fresh = f.with(&["GET", "200"]).unwrap().get();
            f.with(&["GET", "200"]).unwrap().inc();
            to_main.send(fresh).unwrap();
        })
    };
    assert_eq!(main_rx.recv()?, 6);
    assert!(f.remove(&["GET", "200"])?);
    // This thread: fresh, at zero (its entry was dropped by the removal).
    assert_eq!(f.with(&["GET", "200"])?.get(), 0);
    assert_eq!(f.find(&["GET", "200"])?.map(|c| c.get()), Some(0));
    // The other thread: its entry is stale, it finds the new series.
    to_other.send(())?;
    assert_eq!(main_rx.recv()?, 0);
    other.join().expect("other thread");
    assert_eq!(f.with(&["GET", "200"])?.get(), 1);
    assert_eq!(old.get(), 6, "an increment after the removal reached it");
    Ok(())
}

/// A series removed by another thread is not found by `find` from a
/// thread's cache either.
#[test]
fn find_after_a_removal_elsewhere_finds_nothing() -> TestResult {
    let f = family();
    warm(&f, &["PUT", "204"]);
    assert!(f.find(&["PUT", "204"])?.is_some());
    let remover = {
        let f = f.clone();
        thread::spawn(move || f.remove(&["PUT", "204"]).unwrap())
    };
    assert!(remover.join().expect("remover"));
    assert!(f.find(&["PUT", "204"])?.is_none());
    Ok(())
}

/// `clear` reaches every thread's cache: afterwards each thread's lookups
/// give fresh series at zero.
#[test]
fn clear_reaches_every_cache() -> TestResult {
    let f = family();
    let pairs = [["GET", "200"], ["POST", "201"], ["GET", "500"]];
    for pair in &pairs {
        warm(&f, pair);
    }
    let (to_other, other_rx) = mpsc::channel::<()>();
    let other = {
        let f = f.clone();
        thread::spawn(move || {
            for pair in &pairs {
                warm(&f, pair);
            }
            other_rx.recv().unwrap();
            pairs
                .iter()
                .map(|pair| f.with(pair).unwrap().get())
                .collect::<Vec<_>>()
        })
    };
    // Wait for the other thread's warm-up (its counts join ours).
    while f.with(&["GET", "500"])?.get() < 6 {
        thread::yield_now();
    }
    assert_eq!(f.clear(), 3);
    for pair in &pairs {
        assert_eq!(f.with(pair)?.get(), 0, "{pair:?} on the clearing thread");
    }
    to_other.send(())?;
    assert_eq!(other.join().expect("other"), vec![0, 0, 0]);
    assert_eq!(f.len(), 3);
    Ok(())
}

/// An evicted series is not served from any thread's cache: the next
/// lookup, on the evicting thread or on another that had it cached,
/// creates a fresh one.
#[test]
fn evict_idle_reaches_every_cache() -> TestResult {
    let f = family();
    warm(&f, &["GET", "200"]);
    let (to_other, other_rx) = mpsc::channel::<()>();
    let (ready, ready_rx) = mpsc::channel::<()>();
    let other = {
        let f = f.clone();
        thread::spawn(move || {
            warm(&f, &["GET", "200"]);
            ready.send(()).unwrap();
            other_rx.recv().unwrap();
            f.with(&["GET", "200"]).unwrap().get()
        })
    };
    ready_rx.recv()?;
    // One pass records the activity, the second finds it idle.
    assert_eq!(f.evict_idle(1), 0);
    assert_eq!(f.evict_idle(1), 1);
    assert!(f.is_empty());
    assert_eq!(f.with(&["GET", "200"])?.get(), 0);
    to_other.send(())?;
    assert_eq!(other.join().expect("other"), 0);
    Ok(())
}

/// A family dropped while threads still cache its series, and a new family
/// with the same name and labels (often at the same address): the new
/// family's lookups never hit the old entries, here or on another thread.
#[test]
fn a_new_family_never_hits_a_dropped_ones_entries() -> TestResult {
    let (to_other, other_rx) = mpsc::channel::<CounterVec>();
    let (to_main, main_rx) = mpsc::channel::<u64>();
    let other = thread::spawn(move || {
        for f in other_rx {
            let before = f.with(&["GET", "200"]).unwrap().get();
            warm(&f, &["GET", "200"]);
            to_main.send(before).unwrap();
        }
    });
    for round in 0..if cfg!(miri) { 5 } else { 50 } {
        let f = family();
        assert_eq!(f.with(&["GET", "200"])?.get(), 0, "round {round}");
        assert_eq!(warm(&f, &["GET", "200"]), 3);
        to_other.send(f.clone())?;
        assert_eq!(main_rx.recv()?, 3, "round {round}, other thread");
        assert_eq!(f.with(&["GET", "200"])?.get(), 6);
        drop(f);
    }
    drop(to_other);
    other.join().expect("other");
    Ok(())
}

/// A `Series` held while the same thread looks up many other series (more
/// than the cache holds, so its entry would be evicted) stays valid and
/// counts into its series; so does one held across its own removal and
/// the re-creation of its label values.
#[test]
fn a_held_series_survives_reentrant_lookups() -> TestResult {
    let f = family();
    warm(&f, &["GET", "200"]);
    let held = f.with(&["GET", "200"])?;
    let held_again = f.with(&["GET", "200"])?;
    // More than the cache's 64 entries (fewer under Miri, still past it).
    let n = if cfg!(miri) { 80 } else { 300 };
    let statuses: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    for status in &statuses {
        warm(&f, &["POST", status]);
    }
    held.inc();
    held_again.inc();
    assert_eq!(held.get(), 5);
    for status in &statuses {
        assert_eq!(f.with(&["POST", status])?.get(), 3, "{status}");
    }
    // Removed while held: the held series stays usable (detached), and
    // the label values now name a fresh series.
    assert!(f.remove(&["GET", "200"])?);
    held.inc();
    assert_eq!(held.get(), 6);
    assert_eq!(f.with(&["GET", "200"])?.get(), 0);
    f.with(&["GET", "200"])?.inc();
    drop(held);
    drop(held_again);
    assert_eq!(warm(&f, &["GET", "200"]), 4);
    Ok(())
}

/// A thread's cache lets its series go when the thread exits: a series
/// cached by an exited thread, then removed, gives its arena slot back
/// once the epoch collector runs (a leaked reference would keep it
/// forever); while a live thread still caches it, the slot is not handed
/// out, and that thread's next lookup finds a fresh series.
#[test]
fn thread_exit_releases_cached_series() -> TestResult {
    let _serial = serial();
    let reg = Registry::new();
    let f = reg.counter_vec("exit_total", "Exit.", &["id"])?;
    let slot_of = |f: &CounterVec, id: &str| f.with(&[id]).unwrap().arena_slot();

    // A live thread caches "a" and waits; "a" is removed meanwhile.
    let a_slot = slot_of(&f, "a").expect("arena-backed");
    let (to_user, user_rx) = mpsc::channel::<()>();
    let (ready, ready_rx) = mpsc::channel::<()>();
    let user = {
        let f = f.clone();
        thread::spawn(move || {
            for _ in 0..3 {
                f.with(&["a"]).unwrap().inc();
            }
            ready.send(()).unwrap();
            user_rx.recv().unwrap();
            let fresh = f.with(&["a"]).unwrap();
            (fresh.get(), fresh.arena_slot())
        })
    };
    ready_rx.recv()?;
    assert!(f.remove(&["a"])?);
    for i in 0..if cfg!(miri) { 20 } else { 200 } {
        for _ in 0..4 {
            f.collect_garbage();
        }
        let id = format!("n{i}");
        assert_ne!(
            slot_of(&f, &id),
            Some(a_slot),
            "a's slot reused while cached"
        );
    }
    to_user.send(())?;
    let (fresh, fresh_slot) = user.join().expect("user");
    assert_eq!(fresh, 0);
    assert_ne!(fresh_slot, Some(a_slot));

    // The user thread has exited: its entry for the removed "a" went with
    // it, so a's slot comes back.
    let mut found = false;
    for i in 0..1000 {
        for _ in 0..4 {
            f.collect_garbage();
        }
        let id = format!("r{i}");
        if slot_of(&f, &id) == Some(a_slot) {
            assert_eq!(f.with(&[&id])?.get(), 0);
            found = true;
            break;
        }
    }
    assert!(
        found,
        "a's slot never came back after the caching thread exited"
    );
    Ok(())
}

/// Concurrent lookups of cached series racing removals and re-creations
/// count exactly: every increment lands in a series that was live at some
/// point, and the totals add up (kept handles of every generation).
#[test]
fn cached_lookups_racing_removals_lose_nothing() -> TestResult {
    const ROUNDS: usize = if cfg!(miri) { 20 } else { 2000 };
    let f = family();
    let kept = Mutex::new(vec![f.handle(&["GET", "200"])?]);
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..ROUNDS {
                    f.with(&["GET", "200"]).unwrap().inc();
                }
            });
        }
        s.spawn(|| {
            for _ in 0..ROUNDS / 10 {
                f.remove(&["GET", "200"]).unwrap();
                let handle = f.handle(&["GET", "200"]).unwrap();
                kept.lock().unwrap().push(handle);
            }
        });
    });
    let kept = kept.into_inner()?;
    // Handles of one series may repeat (a re-creation raced by no
    // removal): count each series once, by arena slot and value identity.
    let mut seen: Vec<Option<(usize, usize)>> = Vec::new();
    let mut total = 0;
    for handle in kept.iter().chain(f.handle(&["GET", "200"]).iter()) {
        let slot = handle.arena_slot();
        if !seen.contains(&slot) {
            seen.push(slot);
            total += handle.get();
        }
    }
    assert_eq!(total, 2 * ROUNDS as u64);
    Ok(())
}
