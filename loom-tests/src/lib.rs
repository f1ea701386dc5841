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

/// Spawns one loom thread per entry of `amounts`, each adding its amounts
/// to `counter` in order.
pub fn spawn_adders<S: CounterStrategy + 'static>(
    counter: &Arc<S>,
    amounts: &[&'static [u64]],
) -> Vec<thread::JoinHandle<()>> {
    amounts
        .iter()
        .map(|&adds| {
            let counter = counter.clone();
            thread::spawn(move || adds.iter().for_each(|&n| counter.add(n)))
        })
        .collect()
}

/// C1: after all writers join, `get()` equals the number of increments.
///
/// Three writers (two spawned, plus the model's own thread) on a counter with
/// two shards, so at least two share a shard; each adds twice (the model's
/// own thread once with `inc`, once with `add`).
pub fn no_lost_increments<S: CounterStrategy + Default + 'static>() {
    explore(&format!("C1 {}", S::NAME), || {
        let counter = Arc::new(S::default());
        let writers = spawn_adders(&counter, &[&[1, 2], &[1, 2]]);
        counter.inc();
        counter.add(9);
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
        let writers = spawn_adders(&counter, &[&[1, 1], &[1, 1]]);
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
        let writers = spawn_adders(&counter, &[&[1, 3], &[1, 3]]);
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
        let writers = spawn_adders(&counter, &[&[1, 2]]);
        let taker = {
            let counter = counter.clone();
            thread::spawn(move || counter.take())
        };
        let mine = counter.take();
        for w in writers {
            w.join().unwrap();
        }
        let theirs = taker.join().unwrap();
        assert_eq!(mine + theirs + counter.get(), 3);
    });
}
