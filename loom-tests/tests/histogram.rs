//! Histogram invariants H1–H4 and the rate invariant R1.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use metricz::{Histogram, Rate};
use metricz_loom_tests::{explore, SawPartial};
use std::time::{Duration, Instant};

/// A histogram small enough for loom: values 1..=16 at 1 significant figure
/// (32 counts, in blocks of 4 under loom), two shards.
fn small() -> Histogram {
    small_with_shards(2)
}

/// As [`small`], with `shards` shards.
fn small_with_shards(shards: usize) -> Histogram {
    Histogram::builder()
        .highest(16)
        .significant_figures(1)
        .shards(shards)
        .build()
        .unwrap()
}

fn spawn_recorders(h: &Histogram, values: &[&'static [u64]]) -> Vec<thread::JoinHandle<()>> {
    values
        .iter()
        .map(|&vs| {
            let h = h.clone();
            thread::spawn(move || vs.iter().for_each(|&v| h.record(v)))
        })
        .collect()
}

/// H1: after the writers join, count, sum, min and max are exact (three
/// recorders over two shards, racing shard and block installation).
#[test]
fn h1_count_equals_records() {
    explore("H1 histogram count", || {
        let h = small();
        let writers = spawn_recorders(&h, &[&[1, 5], &[9, 5]]);
        h.record(3);
        for w in writers {
            w.join().unwrap();
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 5);
        assert_eq!(s.sum(), 23);
        assert_eq!((s.min(), s.max()), (1, 9));
    });
}

/// H2: interval snapshots racing records lose and duplicate none: the
/// intervals' counts and sums add up to what was recorded. The interval
/// taker is a spawned thread racing two recorders; the model checks that an
/// interval taken in the middle of the records was explored.
#[test]
fn h2_intervals_partition_records() {
    let partial = SawPartial::default();
    let seen = partial.clone();
    explore("H2 histogram intervals", move || {
        let h = small();
        let taker = {
            let h = h.clone();
            thread::spawn(move || [h.take_interval(), h.take_interval()])
        };
        let writers = spawn_recorders(&h, &[&[2, 7]]);
        h.record(7);
        for w in writers {
            w.join().unwrap();
        }
        let [first, second] = taker.join().unwrap();
        let last = h.take_interval();
        seen.note(first.count() + second.count(), 3);
        let parts = [&first, &second, &last];
        assert_eq!(parts.iter().map(|s| s.count()).sum::<u64>(), 3);
        assert_eq!(parts.iter().map(|s| s.sum()).sum::<u64>(), 16);
        assert_eq!(h.snapshot().count(), 0);
    });
    partial.assert_seen("H2 histogram intervals");
}

/// H3: two threads racing to install the same count block (and shard)
/// install exactly one and lose no count; the loser's block is freed.
#[test]
fn h3_block_install_race_installs_one() {
    explore("H3 histogram block install", || {
        let h = small_with_shards(1);
        let one = small_with_shards(1);
        one.record(5);
        let writers = spawn_recorders(&h, &[&[5], &[6]]);
        for w in writers {
            w.join().unwrap();
        }
        // 5 and 6 share a block: one shard and one block, as for one record.
        assert_eq!(h.bytes_used(), one.bytes_used());
        assert_eq!(h.snapshot().count(), 2);
        assert!(h.block_allocated_for(5) && !h.block_allocated_for(12));
    });
}

/// H4: min and max are right under racing records, each thread moving both.
#[test]
fn h4_min_max_under_racing_records() {
    explore("H4 histogram min/max", || {
        let h = small_with_shards(1);
        h.record(8);
        let writers = spawn_recorders(&h, &[&[2, 12], &[1, 14]]);
        for w in writers {
            w.join().unwrap();
        }
        let s = h.snapshot();
        assert_eq!((s.min(), s.max()), (1, 14));
    });
}

/// R1: moving a rate's slot on to a new lap loses no event of the window
/// and lets no expired event in. One marker is in tick 0; two mark tick 2,
/// which reuses tick 0's slot (window of 2 slots). Whatever the
/// interleaving, the window at tick 2 holds exactly the tick-2 events: the
/// tick-0 event is replaced by the rotation, or (arriving after it) counts
/// nothing.
#[test]
fn r1_rate_rotation_loses_no_event() {
    explore("R1 rate rotation", || {
        let rate = Rate::with_window(Duration::from_secs(2), 2).unwrap();
        let t0 = Instant::now();
        let at = move |ms: u64| t0 + Duration::from_millis(ms);
        let old = {
            let rate = rate.clone();
            thread::spawn(move || rate.mark_at(1, at(500)))
        };
        let new = {
            let rate = rate.clone();
            thread::spawn(move || rate.mark_at(2, at(2_500)))
        };
        rate.mark_at(4, at(2_500));
        old.join().unwrap();
        new.join().unwrap();
        assert_eq!(rate.count_in_window_at(at(2_500)), 6);
        // One slot later the tick-2 events are still in the window.
        assert_eq!(rate.count_in_window_at(at(3_500)), 6);
    });
}

/// R1': two markers of the same new tick racing on one shard's stale slot
/// both count.
#[test]
fn r1_racing_rotations_both_count() {
    explore("R1' rate racing rotations", || {
        let rate = Arc::new(Rate::with_window(Duration::from_secs(2), 2).unwrap());
        let t0 = Instant::now();
        let at = move |ms: u64| t0 + Duration::from_millis(ms);
        rate.mark_at(8, at(100));
        let others: Vec<_> = [1u32, 2]
            .into_iter()
            .map(|n| {
                let rate = rate.clone();
                thread::spawn(move || rate.mark_at(n, at(2_100)))
            })
            .collect();
        rate.mark_at(4, at(2_100));
        for t in others {
            t.join().unwrap();
        }
        assert_eq!(rate.count_in_window_at(at(2_100)), 7);
    });
}
