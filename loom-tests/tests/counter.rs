//! Counter invariants C1–C3 and C6 for every strategy, and the strategy-specific
//! invariants C4 (adaptive inflation) and C5 (single-writer slot hand-off).
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use metricz::strategy::{
    AdaptiveCounter, AtomicCounter, CounterStrategy, LockedPerCpuCounter, RseqCounter,
    SingleWriterCounter, ThreadShardedCounter,
};
use metricz::Counter;
use metricz_loom_tests::*;
use std::sync::atomic::{AtomicBool, Ordering};

macro_rules! strategy_models {
    ($module:ident, $ty:ty) => {
        mod $module {
            use super::*;

            #[test]
            fn c1_no_lost_increments() {
                no_lost_increments::<$ty>();
            }

            #[test]
            fn c2_reads_never_decrease() {
                reads_never_decrease::<$ty>();
            }

            #[test]
            fn c3_take_loses_nothing() {
                take_loses_nothing::<$ty>();
            }

            #[test]
            fn c3_racing_takes_split_exactly() {
                racing_takes_split_exactly::<$ty>();
            }

            #[test]
            fn c6_get_racing_take() {
                get_racing_take::<$ty>();
            }
        }
    };
}

strategy_models!(atomic, AtomicCounter);
strategy_models!(per_cpu, Counter);
strategy_models!(per_cpu_locked, LockedPerCpuCounter);
// Under loom there is no rseq: every increment takes the fallback word, so
// this models the fallback and the baseline `take` (RS1–RS3 cover the
// sequence itself, by stress test).
strategy_models!(rseq, RseqCounter);
strategy_models!(thread_sharded, ThreadShardedCounter);
strategy_models!(adaptive, AdaptiveCounter);
strategy_models!(single_writer, SingleWriterCounter);

/// C4: adaptive inflation loses nothing. Two writers race on the base word;
/// in the interleavings where a CAS fails the counter inflates to cells, and
/// the total stays exact. The model also checks that inflation was explored.
#[test]
fn c4_adaptive_inflation_loses_nothing() {
    static INFLATED: AtomicBool = AtomicBool::new(false);
    explore("C4 adaptive inflation", || {
        let counter = Arc::new(AdaptiveCounter::with_max_cells(2));
        let writers = spawn_adders(&counter, &[&[1, 2], &[1, 2]]);
        let seen = counter.get();
        for w in writers {
            w.join().unwrap();
        }
        assert!(seen <= 6);
        if counter.cells_in_use() > 0 {
            INFLATED.store(true, Ordering::Relaxed);
        }
        assert_eq!(counter.get(), 6);
        assert_eq!(counter.take(), 6);
        assert_eq!(counter.get(), 0);
    });
    assert!(
        INFLATED.load(Ordering::Relaxed),
        "no explored execution inflated the counter"
    );
}

/// C5: a single-writer slot survives its thread's exit and is handed to the
/// next thread without loss. The first writer exits while the second may be
/// starting; in the interleavings where the second reuses the first's index
/// (and slot), the plain load + store must see the first's last store. A
/// third thread reads meanwhile. The model checks that index reuse and a
/// mid-run read were both explored.
#[test]
fn c5_single_writer_slot_survives_thread_exit() {
    static REUSED: AtomicBool = AtomicBool::new(false);
    let partial = SawPartial::default();
    let seen = partial.clone();
    explore("C5 single-writer hand-off", move || {
        let counter = Arc::new(SingleWriterCounter::new());
        let writer = |amounts: &'static [u64]| {
            let counter = counter.clone();
            thread::spawn(move || {
                amounts.iter().for_each(|&n| counter.add(n));
                metricz::cpu::thread_index()
            })
        };
        let first = writer(&[1, 2]);
        let second = writer(&[4]);
        let reader = {
            let counter = counter.clone();
            thread::spawn(move || counter.get())
        };
        let (a, b) = (first.join().unwrap(), second.join().unwrap());
        if a == b {
            REUSED.store(true, Ordering::Relaxed);
        }
        let read = reader.join().unwrap();
        assert!(read <= 7);
        seen.note(read, 7);
        assert_eq!(counter.get(), 7);
    });
    assert!(
        REUSED.load(Ordering::Relaxed),
        "no explored execution reused a thread index"
    );
    partial.assert_seen("C5 single-writer hand-off");
}
