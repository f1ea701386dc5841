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
use metricz::strategy::CounterStrategy;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `model` under `loom::model`, prints how many executions loom
/// explored (so the catalogue can say a model explores more than one
/// interleaving) and returns that number.
pub fn explore<F>(name: &str, model: F) -> usize
where
    F: Fn() + Sync + Send + 'static,
{
    explore_bounded(name, None, model)
}

/// [`explore`] with its own preemption bound (`None`: `LOOM_MAX_PREEMPTIONS`
/// or loom's default), for models whose state space is large (every
/// crossbeam-epoch pin is several modelled atomics and fences).
pub fn explore_bounded<F>(name: &str, preemptions: Option<usize>, model: F) -> usize
where
    F: Fn() + Sync + Send + 'static,
{
    let executions = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = executions.clone();
    let mut builder = loom::model::Builder::new();
    // Growth paths (freeze, copy, publish, writers waiting on the growth
    // lock) take more scheduling decisions than loom's default 1 000.
    builder.max_branches = 200_000;
    if preemptions.is_some() {
        builder.preemption_bound = preemptions;
    }
    builder.check(move || {
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

/// Records, across all executions of one model, whether some execution
/// observed a value strictly between "nothing yet" and "everything": proof
/// that loom explored a read racing the writes, not only reads before or
/// after them (loom's search can miss such races when the model's own thread
/// is the reader; tokio-rs/loom#166).
#[derive(Clone, Debug, Default)]
pub struct SawPartial(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl SawPartial {
    /// Notes `value` as seen; partial when `0 < value < total`.
    pub fn note(&self, value: u64, total: u64) {
        if value > 0 && value < total {
            self.0.store(true, Ordering::Relaxed);
        }
    }

    /// Fails the test unless some execution saw a partial value.
    pub fn assert_seen(&self, model: &str) {
        assert!(
            self.0.load(Ordering::Relaxed),
            "{model}: no explored execution read a partial value"
        );
    }
}

/// Records, across all executions of one model, that some execution reached
/// a state the model is about (e.g. an arena slot handed out again), so a
/// model whose assertion only bites in that state is known to reach it.
#[derive(Clone, Debug, Default)]
pub struct Witness(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Witness {
    /// Notes that the state was reached.
    pub fn mark(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Fails the test unless some execution reached the state.
    pub fn assert_seen(&self, what: &str) {
        assert!(
            self.0.load(Ordering::Relaxed),
            "no explored execution reached: {what}"
        );
    }
}

/// C2: on an increment-only counter, a reader's successive `get()`s never
/// decrease, and the value after the writers join is exact. The reader is a
/// spawned thread racing two writers (one spawned, one the model's own
/// thread); the model checks that a read in the middle of the writes was
/// explored.
pub fn reads_never_decrease<S: CounterStrategy + Default + 'static>() {
    let name = format!("C2 {}", S::NAME);
    let partial = SawPartial::default();
    let seen = partial.clone();
    explore(&name, move || {
        let counter = Arc::new(S::default());
        let reader = {
            let counter = counter.clone();
            thread::spawn(move || (counter.get(), counter.get()))
        };
        let writers = spawn_adders(&counter, &[&[1, 1]]);
        counter.inc();
        counter.inc();
        for w in writers {
            w.join().unwrap();
        }
        let (first, second) = reader.join().unwrap();
        assert!(second >= first, "get went from {first} to {second}");
        seen.note(first, 4);
        seen.note(second, 4);
        let last = counter.get();
        assert!(last >= second);
        assert_eq!(last, 4);
    });
    partial.assert_seen(&name);
}

/// C3: `take()` racing increments loses and duplicates nothing: the sum of
/// all takes plus the final `get()` equals the number of increments. The
/// taker is a spawned thread racing two writers; the model checks that a
/// take in the middle of the writes was explored.
pub fn take_loses_nothing<S: CounterStrategy + Default + 'static>() {
    let name = format!("C3 {}", S::NAME);
    let partial = SawPartial::default();
    let seen = partial.clone();
    explore(&name, move || {
        let counter = Arc::new(S::default());
        let taker = {
            let counter = counter.clone();
            thread::spawn(move || (counter.take(), counter.take()))
        };
        let writers = spawn_adders(&counter, &[&[1, 3]]);
        counter.inc();
        counter.add(3);
        for w in writers {
            w.join().unwrap();
        }
        let (taken, taken_again) = taker.join().unwrap();
        seen.note(taken + taken_again, 8);
        assert_eq!(taken + taken_again + counter.get(), 8);
    });
    partial.assert_seen(&name);
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

/// C6: `get()` racing `take()` never reports more than was ever added: a
/// reader's two `get()`s race a taker while the model's own thread adds.
/// A `get` by baseline (`total − baseline`) must read the baseline first and
/// with Acquire, so that the total it reads next is at least what the take
/// behind that baseline claimed: read the other way round, or Relaxed, a
/// `get` can subtract a baseline larger than the total it read, and the
/// wrapping difference is near 2<sup>64</sup>. The model also checks that
/// some execution had a take land between the reader's two reads (the
/// second read below the first).
pub fn get_racing_take<S: CounterStrategy + Default + 'static>() {
    let name = format!("C6 {}", S::NAME);
    let between = Witness::default();
    let seen = between.clone();
    explore(&name, move || {
        let counter = Arc::new(S::default());
        let reader = {
            let counter = counter.clone();
            thread::spawn(move || (counter.get(), counter.get()))
        };
        let taker = {
            let counter = counter.clone();
            thread::spawn(move || counter.take())
        };
        counter.add(1);
        counter.add(2);
        let (first, second) = reader.join().unwrap();
        let taken = taker.join().unwrap();
        for read in [first, second] {
            assert!(read <= 3, "get read {read}, more than the 3 ever added");
        }
        if second < first {
            seen.mark();
        }
        assert!(taken <= 3);
        assert_eq!(taken + counter.get(), 3);
    });
    between.assert_seen(&format!("{name}: a take between a reader's two gets"));
}
