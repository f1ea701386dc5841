//! Histogram invariants H1–H4 and H6–H8, and the rate invariants R1, R2.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use metricz::{Histogram, Rate};
use metricz_loom_tests::{explore, explore_bounded, SawPartial, Witness};
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
/// taker is a spawned thread racing two recorders (then the main thread
/// takes the rest); the model checks that an interval taken in the middle
/// of the records was explored.
#[test]
fn h2_intervals_partition_records() {
    let partial = SawPartial::default();
    let seen = partial.clone();
    // One racing take and preemption bound 2: a take by baseline reads
    // every word with loads, each of which loom lets see any value its
    // memory model allows (the swaps of a take by reset always read the
    // latest), and holds the baseline's mutex; two racing takes at bound 3
    // ran for tens of minutes. H7 races two takes on one shard.
    explore_bounded("H2 histogram intervals", Some(2), move || {
        let h = small();
        let taker = {
            let h = h.clone();
            thread::spawn(move || h.take_interval())
        };
        let writers = spawn_recorders(&h, &[&[2, 7]]);
        h.record(7);
        for w in writers {
            w.join().unwrap();
        }
        let first = taker.join().unwrap();
        let last = h.take_interval();
        seen.note(first.count(), 3);
        let parts = [&first, &last];
        assert_eq!(parts.iter().map(|s| s.count()).sum::<u64>(), 3);
        assert_eq!(parts.iter().map(|s| s.sum()).sum::<u64>(), 16);
        assert_eq!(h.snapshot().count(), 0);
    });
    partial.assert_seen("H2 histogram intervals");
}

/// H6: snapshots racing records never go backwards: a reader's second
/// snapshot holds at least the first's count in every bucket and at least
/// its sum (cumulative exported counts must never decrease, or Prometheus
/// reads a counter reset), and no snapshot holds more than was recorded.
/// The records (two values of one block, on one shard) race the
/// installation of the shard and the block; the model checks that some
/// snapshot saw part of the records.
#[test]
fn h6_snapshots_never_go_backwards() {
    let partial = SawPartial::default();
    let seen = partial.clone();
    explore("H6 histogram snapshots vs records", move || {
        let h = small_with_shards(1);
        let reader = {
            let h = h.clone();
            thread::spawn(move || [h.snapshot(), h.snapshot()])
        };
        for w in spawn_recorders(&h, &[&[2, 3]]) {
            w.join().unwrap();
        }
        let [first, second] = reader.join().unwrap();
        for s in [&first, &second] {
            assert!(
                s.count() <= 2 && s.sum() <= 5,
                "{} records summing {}",
                s.count(),
                s.sum()
            );
            seen.note(s.count(), 2);
        }
        assert!(
            first.sum() <= second.sum(),
            "sum {} then {}",
            first.sum(),
            second.sum()
        );
        for bucket in first.buckets() {
            let later = second
                .buckets()
                .find(|b| b.low == bucket.low)
                .map_or(0, |b| b.count);
            assert!(
                bucket.count <= later,
                "bucket {} went from {} to {later}",
                bucket.low,
                bucket.count
            );
        }
        let last = h.snapshot();
        assert_eq!((last.count(), last.sum()), (2, 5));
    });
    partial.assert_seen("H6 histogram snapshots vs records");
}

/// H7: two interval takers racing each other and a recorder split the
/// records between them: every record is in exactly one interval (or left
/// for the last), bucket by bucket, and so are the sums, and no interval
/// holds a bucket twice (or "negative", wrapped). Takes are by baseline,
/// under its mutex: a take that read the counts before taking the mutex
/// could store a baseline older than the one before it, and hand a record
/// to both takers (H10 catches that mutation; this model, whose own
/// thread is one of the takers, does not: tokio-rs/loom#166).
#[test]
fn h7_racing_intervals_split_exactly() {
    explore("H7 histogram racing intervals", || {
        let h = small_with_shards(1);
        let writers = spawn_recorders(&h, &[&[2, 7]]);
        let taker = {
            let h = h.clone();
            thread::spawn(move || h.take_interval())
        };
        let mine = h.take_interval();
        for w in writers {
            w.join().unwrap();
        }
        let theirs = taker.join().unwrap();
        let left = h.take_interval();
        let parts = [&mine, &theirs, &left];
        // Each interval on its own: intervals by baseline wrap, so their
        // sums add up even when one is "negative" (a baseline that went
        // backwards) and another holds a record twice.
        for s in parts {
            for b in s.buckets() {
                assert!(b.count <= 1, "an interval took {} of {}", b.count, b.low);
            }
        }
        for value in [2, 7] {
            let held: u64 = parts
                .iter()
                .flat_map(|s| s.buckets())
                .filter(|b| b.low <= value && value <= b.high)
                .map(|b| b.count)
                .sum();
            assert_eq!(held, 1, "value {value} is in {held} intervals");
        }
        assert_eq!(parts.iter().map(|s| s.sum()).sum::<u64>(), 9);
    });
}

/// H8: bounds racing an interval reset are never absurd. Min and max are
/// kept apart from the counts, so an interval can take a record's count
/// but not yet its bounds (or the bounds without the count); each interval
/// still reports, when it holds records, a min in its first non-empty
/// bucket and a max in its last (a snapshot clamps them there), never
/// `u64::MAX` or 0 from a reset bound. A recorder moves both bounds twice
/// (3, then 2) while a spawned thread takes an interval; the intervals
/// partition the records, and the model checks that some interval held
/// part of them.
#[test]
fn h8_interval_bounds_stay_in_their_buckets() {
    let partial = SawPartial::default();
    let seen = partial.clone();
    explore("H8 histogram bounds vs interval", move || {
        let h = small_with_shards(1);
        let taker = {
            let h = h.clone();
            thread::spawn(move || h.take_interval())
        };
        for w in spawn_recorders(&h, &[&[3, 2]]) {
            w.join().unwrap();
        }
        let taken = taker.join().unwrap();
        let left = h.take_interval();
        seen.note(taken.count(), 2);
        assert_eq!(taken.count() + left.count(), 2);
        for s in [&taken, &left] {
            let (Some(first), Some(last)) = (s.buckets().next(), s.buckets().last()) else {
                continue;
            };
            let (min, max) = (s.min(), s.max());
            assert!(
                (first.low..=first.high).contains(&min),
                "min {min} outside the first bucket {}..={}",
                first.low,
                first.high
            );
            assert!(
                (last.low..=last.high).contains(&max),
                "max {max} outside the last bucket {}..={}",
                last.low,
                last.high
            );
        }
    });
    partial.assert_seen("H8 histogram bounds vs interval");
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
///
/// The race is on one slot word, so only when the tick-0 marker shares its
/// shard with a tick-2 marker (thread indices are handed out in the order
/// threads first ask, so that varies between executions). The model
/// witnesses both orders on a shared shard: the tick-0 mark counted and
/// then replaced (its thread still reads its event right after marking),
/// and the tick-0 mark arriving after the rotation (its thread read the
/// shard partner's tick-2 count before marking, so its CAS reads the moved
/// slot and must count nothing: this is the order in which a mark needs
/// the newer mark's `newest_tick`, carried by the slot word's
/// Release/Acquire).
#[test]
fn r1_rate_rotation_loses_no_event() {
    let replaced = Witness::default();
    let rejected = Witness::default();
    let (saw_replaced, saw_rejected) = (replaced.clone(), rejected.clone());
    explore("R1 rate rotation", move || {
        let rate = Rate::with_window(Duration::from_secs(2), 2).unwrap();
        let mask = rate.shards() - 1;
        let shard = move || metricz::cpu::thread_index() & mask;
        let t0 = Instant::now();
        let at = move |ms: u64| t0 + Duration::from_millis(ms);
        let old = {
            let rate = rate.clone();
            thread::spawn(move || {
                let before = rate.count_in_window_at(at(2_500));
                rate.mark_at(1, at(500));
                let after = rate.count_in_window_at(at(500));
                (shard(), before, after)
            })
        };
        let new = {
            let rate = rate.clone();
            thread::spawn(move || {
                rate.mark_at(2, at(2_500));
                shard()
            })
        };
        rate.mark_at(4, at(2_500));
        let (old_shard, before, after) = old.join().unwrap();
        let new_shard = new.join().unwrap();
        // The tick-2 count on the tick-0 marker's shard, if one is there.
        let partner = [(shard(), 4), (new_shard, 2)]
            .into_iter()
            .find(|&(s, _)| s == old_shard)
            .map(|(_, n)| n);
        if let Some(n) = partner {
            if after == 1 {
                saw_replaced.mark();
            }
            if before == n || before == 6 {
                saw_rejected.mark();
            }
        }
        assert_eq!(rate.count_in_window_at(at(2_500)), 6);
        // One slot later the tick-2 events are still in the window.
        assert_eq!(rate.count_in_window_at(at(3_500)), 6);
    });
    replaced.assert_seen("R1: a tick-0 mark counted, then replaced by a rotation on its shard");
    rejected.assert_seen("R1: a tick-0 mark arriving after a rotation on its shard");
}

/// R2: a window read racing marks never counts an expired event and never
/// goes backwards: a reader reads the window at tick 2 twice while the
/// model's thread marks 1 then 2 events at tick 2 and another thread marks
/// 8 events at tick 0, in the slot tick 2 reuses. Every read is 0, 1 or 3
/// (never one holding the tick-0 events, whether or not a tick-2 mark has
/// moved that slot on yet: a read must check each slot's lap, not trust
/// marks to have cleared it), and the second read is at least the first.
/// The model checks that some read saw part of the tick-2 events.
#[test]
fn r2_window_reads_racing_marks() {
    let partial = SawPartial::default();
    let seen = partial.clone();
    explore("R2 rate reads vs marks", move || {
        let rate = Rate::with_window(Duration::from_secs(2), 2).unwrap();
        let t0 = Instant::now();
        let at = move |ms: u64| t0 + Duration::from_millis(ms);
        let reader = {
            let rate = rate.clone();
            thread::spawn(move || {
                [
                    rate.count_in_window_at(at(2_500)),
                    rate.count_in_window_at(at(2_500)),
                ]
            })
        };
        let old = {
            let rate = rate.clone();
            thread::spawn(move || rate.mark_at(8, at(500)))
        };
        rate.mark_at(1, at(2_500));
        rate.mark_at(2, at(2_500));
        old.join().unwrap();
        let [first, second] = reader.join().unwrap();
        for read in [first, second] {
            assert!(
                [0, 1, 3].contains(&read),
                "the window at tick 2 read {read}"
            );
            seen.note(read, 3);
        }
        assert!(first <= second, "the window went from {first} to {second}");
        assert_eq!(rate.count_in_window_at(at(2_500)), 3);
    });
    partial.assert_seen("R2 rate reads vs marks");
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
