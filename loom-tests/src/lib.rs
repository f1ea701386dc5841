//! loom models of every concurrent path in metricz.
//!
//! Build and run them with `scripts/loom` (it sets `--cfg loom`, release mode
//! with debug assertions and the preemption bound). In a normal build this
//! crate is empty. The invariant each model checks is catalogued in
//! `papers/invariants.md`.
//!
//! The generic models below are run against every counter strategy by the
//! files in `tests/`.

#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use metricz::CounterStrategy;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `model` under `loom::model`, prints how many executions loom
/// explored (so the catalogue can say a model explores more than one
/// interleaving) and returns that number.
pub fn explore<F>(name: &str, model: F) -> usize
where
    F: Fn() + Sync + Send + 'static,
{
    let executions = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = executions.clone();
    loom::model(move || {
        counted.fetch_add(1, Ordering::Relaxed);
        model();
    });
    let n = executions.load(Ordering::Relaxed);
    eprintln!("loom: {name}: {n} executions");
    assert!(n > 1, "{name} explored a single execution");
    n
}

/// C1: after all writers join, `get()` equals the number of increments.
///
/// Three writers (two spawned, plus the model's own thread) on a counter with
/// two shards, so at least two share a shard; each adds twice, once with `inc`
/// and once with `add`.
pub fn no_lost_increments<S: CounterStrategy + Default + 'static>() {
    explore(&format!("C1 {}", S::NAME), || {
        let counter = Arc::new(S::default());
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let counter = counter.clone();
                thread::spawn(move || {
                    counter.inc();
                    counter.add(2);
                })
            })
            .collect();
        counter.add(10);
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(counter.get(), 2 * 3 + 10);
    });
}

/// C2: on an increment-only counter, a reader's successive `get()`s never
/// decrease, and the last one after the writers join is exact.
pub fn reads_never_decrease<S: CounterStrategy + Default + 'static>() {
    explore(&format!("C2 {}", S::NAME), || {
        let counter = Arc::new(S::default());
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let counter = counter.clone();
                thread::spawn(move || {
                    counter.inc();
                    counter.inc();
                })
            })
            .collect();
        let first = counter.get();
        let second = counter.get();
        assert!(second >= first, "get went from {first} to {second}");
        for w in writers {
            w.join().unwrap();
        }
        let last = counter.get();
        assert!(last >= second);
        assert_eq!(last, 4);
    });
}

/// C3: `take()` racing increments loses and duplicates nothing: the sum of
/// all takes plus the final `get()` equals the number of increments.
pub fn take_loses_nothing<S: CounterStrategy + Default + 'static>() {
    explore(&format!("C3 {}", S::NAME), || {
        let counter = Arc::new(S::default());
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let counter = counter.clone();
                thread::spawn(move || {
                    counter.inc();
                    counter.add(3);
                })
            })
            .collect();
        let taken = counter.take();
        let taken_again = counter.take();
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(taken + taken_again + counter.get(), 8);
    });
}

/// C3': two racing takers split the increments between them without loss or
/// duplication.
pub fn racing_takes_split_exactly<S: CounterStrategy + Default + 'static>() {
    explore(&format!("C3' {}", S::NAME), || {
        let counter = Arc::new(S::default());
        let writer = {
            let counter = counter.clone();
            thread::spawn(move || {
                counter.add(1);
                counter.add(2);
            })
        };
        let taker = {
            let counter = counter.clone();
            thread::spawn(move || counter.take())
        };
        let mine = counter.take();
        writer.join().unwrap();
        let theirs = taker.join().unwrap();
        assert_eq!(mine + theirs + counter.get(), 3);
    });
}
