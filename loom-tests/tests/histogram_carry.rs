//! Histogram invariants H5, H5', H5'', H9, H10 and H11: a count is the sum
//! of a 16-bit `low` word per shard and one shared carry word (`high`, in
//! the histogram's carry block for that block of the layout); moving a
//! `low` into `high` (a *transfer*, under the carry block's sequence) never
//! shows a count backwards or off; records too big for `low` go straight
//! to `high`; intervals are taken by baseline.
//!
//! Under loom `LOW_MAX` is 7 and `TRANSFER_AT` 4: a record that leaves
//! `low` at 4 or more transfers it; a record that would take it past 7, or
//! of more than 7 at once, adds to `high` instead. Every loom write is a
//! locked one (no rseq under loom): the fallback path.
//!
//! Installing the carry table races every reader's lookups of it, which
//! multiplies a three-thread model's executions: H5 and H5' race it with
//! two threads; the three-thread models install the table beforehand (H9
//! still races the install of the carry block itself), and their readers
//! use `count()`, which reads only the counts (a snapshot also loads the
//! sum, min and max, which the writers update: ten times the executions).
#![cfg(loom)]

use loom::thread;
use metricz::{Histogram, Snapshot};
use metricz_loom_tests::{explore, explore_bounded, Witness};

/// `shards` shards, values 1..=16 (a value's count index is the value;
/// blocks of 4 under loom, so 2 and 3 share block 0, and 12 is in block 3).
fn histogram(shards: usize) -> Histogram {
    Histogram::builder()
        .highest(16)
        .significant_figures(1)
        .shards(shards)
        .build()
        .unwrap()
}

/// One shard: every loom thread records into it.
fn one_shard() -> Histogram {
    histogram(1)
}

/// The count of `value`'s bucket in `s`.
fn bucket(s: &Snapshot, value: u64) -> u64 {
    s.buckets()
        .find(|b| b.low <= value && value <= b.high)
        .map_or(0, |b| b.count)
}

/// H5: a reader racing the record that triggers a transfer (and installs
/// the carry table and block) reads the count before or after that
/// record, never off (`low` seen before the transfer's subtraction with
/// `high` after its add would read 8; `low` after the subtraction without
/// the carry, 0), and its two reads never go backwards. The model asserts
/// that some execution had the record land between the two reads.
#[test]
fn h5_count_never_reads_backwards_across_a_transfer() {
    let between = Witness::default();
    let seen = between.clone();
    explore("H5 histogram transfer", move || {
        let h = one_shard();
        // `low` at 3: the next record leaves it at 4 and transfers.
        h.record_n(3, 3);
        let reader = {
            let h = h.clone();
            thread::spawn(move || (h.snapshot().count(), h.count()))
        };
        h.record(3);
        let (first, second) = reader.join().unwrap();
        assert!([3, 4].contains(&first), "read {first}");
        assert!([3, 4].contains(&second), "read {second}");
        assert!(first <= second, "{first} then {second}");
        if (first, second) == (3, 4) {
            seen.mark();
        }
        let last = h.snapshot();
        assert_eq!((last.count(), last.sum()), (4, 12));
    });
    between.assert_seen("H5: the transfer's record between a reader's two reads");
}

/// H5': an interval take (by baseline) racing the record that transfers
/// splits the records exactly: the interval plus what is left (a snapshot
/// after) equal all records, in count and in sum; and the baseline it left
/// is sound: one more record reads as what was left plus one, and the next
/// take takes exactly that, leaving nothing. The model asserts that takes
/// both before and after the record were explored.
#[test]
fn h5_transfer_racing_an_interval_loses_nothing() {
    let (before, after) = (Witness::default(), Witness::default());
    let (saw_before, saw_after) = (before.clone(), after.clone());
    explore("H5' histogram transfer vs interval", move || {
        let h = one_shard();
        h.record_n(3, 3);
        let taker = {
            let h = h.clone();
            thread::spawn(move || h.take_interval())
        };
        h.record(3);
        let taken = taker.join().unwrap();
        let left = h.snapshot();
        match taken.count() {
            3 => saw_before.mark(),
            4 => saw_after.mark(),
            n => panic!("took {n}"),
        }
        assert_eq!(taken.count() + left.count(), 4);
        assert_eq!(taken.sum() + left.sum(), 12);
        h.record(3);
        assert_eq!(h.count(), left.count() + 1);
        let next = h.take_interval();
        assert_eq!(
            (next.count(), next.sum()),
            (left.count() + 1, left.sum() + 3)
        );
        assert_eq!((h.count(), h.snapshot().count()), (0, 0));
    });
    before.assert_seen("H5': a take before the transfer's record");
    after.assert_seen("H5': a take after the transfer's record");
}

/// H5'': as H5 with two writers on one shard around the transfer. With
/// `low` at 3, one writer adds 4 (to 7, `LOW_MAX`: it transfers) while the
/// other adds 1, which lands before (and transfers 4 itself, or finds the
/// sequence held and leaves it), on a full `low` (7: the 1 goes to `high`,
/// racing the transfer's add there, and its own transfer finds the
/// sequence held or nothing left to move) or after (the 4, on a `low` at
/// 4, goes to `high` too). A reader may see a transfer through a value
/// another thread's Relaxed add wrote after it (the release sequence the
/// seqlock relies on). Every read is a state some order of the two records
/// passes through (3, 4, 7 or 8 records of 3, besides the 8 records of 2),
/// the reads never go backwards, and the final counts are exact; the model
/// asserts that some read saw one of the two records.
#[test]
fn h5_two_writers_around_a_transfer() {
    let partial = Witness::default();
    let seen = partial.clone();
    // Three threads: preemption bound 2 keeps it to seconds.
    explore_bounded("H5'' histogram transfer, two writers", Some(1), move || {
        let h = one_shard();
        // Installs the carry table and block 0's carry block (2 and 3
        // share block 0), so the race is the transfer's, not the install's.
        h.record_n(2, 8);
        h.record_n(3, 3);
        let reader = {
            let h = h.clone();
            // `count()`, not snapshots (see the module docs).
            thread::spawn(move || (h.count(), h.count()))
        };
        let four = {
            let h = h.clone();
            thread::spawn(move || h.record_n(3, 4))
        };
        h.record(3);
        four.join().unwrap();
        let (first, second) = reader.join().unwrap();
        for read in [first, second] {
            assert!([11, 12, 15, 16].contains(&read), "read {read}");
            if read == 12 || read == 15 {
                seen.mark();
            }
        }
        assert!(first <= second, "{first} then {second}");
        let last = h.snapshot();
        assert_eq!((bucket(&last, 2), bucket(&last, 3), last.sum()), (8, 8, 40));
    });
    partial.assert_seen("H5'': a read with one of the two records");
}

/// H9: a record of more than `LOW_MAX` at once (8) goes straight to
/// `high` (a locked add outside the sequence, installing block 0's carry
/// block if first), racing a record that transfers `low` (3 → 4, also
/// installing the carry block if first: one install wins, the other frees
/// its block) and a reader: every read is a state some order of the two
/// records passes through (3, 4, 11 or 12 records of 3, besides the 8
/// records of 12), the reads never go backwards, and the final counts and
/// sum are exact.
#[test]
fn h9_full_record_racing_a_transfer() {
    let partial = Witness::default();
    let seen = partial.clone();
    explore_bounded("H9 histogram full record vs transfer", Some(1), move || {
        let h = one_shard();
        // Installs the carry table (and block 3's carry block, for 12),
        // not block 0's.
        h.record_n(12, 8);
        h.record_n(3, 3);
        let reader = {
            let h = h.clone();
            // `count()`, not snapshots (see the module docs).
            thread::spawn(move || (h.count(), h.count()))
        };
        let eight = {
            let h = h.clone();
            thread::spawn(move || h.record_n(3, 8))
        };
        h.record(3);
        eight.join().unwrap();
        let (first, second) = reader.join().unwrap();
        for read in [first, second] {
            assert!([11, 12, 19, 20].contains(&read), "read {read}");
            if read == 12 || read == 19 {
                seen.mark();
            }
        }
        assert!(first <= second, "{first} then {second}");
        let last = h.snapshot();
        assert_eq!(
            (bucket(&last, 3), bucket(&last, 12), last.sum()),
            (12, 8, 132)
        );
    });
    partial.assert_seen("H9: a read with one of the two records");
}

/// H10: takes by baseline. After a first interval (2 and 7 recorded and
/// taken, so the baseline is not zero and the shard and blocks exist), two
/// takers race a recorder (2, then 7: two count blocks) and a reader, one
/// of the takers, which reads a snapshot and `count()` before its take.
/// Every record is in exactly one interval (or left for the last), bucket
/// by bucket, and so are the sums; no read or interval is ever "negative"
/// or stale: no bucket, count or sum above what this interval recorded (a
/// read subtracting a baseline newer than the counts it read wraps to near
/// 2^64; one subtracting none, or an older one, reads the first interval's
/// records too). The model asserts that some execution had the other take
/// land between the reader's two reads (the second below the first).
#[test]
fn h10_takes_by_baseline_split_records_exactly() {
    let between = Witness::default();
    let seen = between.clone();
    explore_bounded("H10 histogram takes by baseline", Some(1), move || {
        let h = one_shard();
        h.record(2);
        h.record(7);
        assert_eq!(h.take_interval().count(), 2);
        let taker = {
            let h = h.clone();
            thread::spawn(move || h.take_interval())
        };
        let reader = {
            let h = h.clone();
            thread::spawn(move || {
                let read = h.snapshot();
                let count = h.count();
                (read, count, h.take_interval())
            })
        };
        h.record(2);
        h.record(7);
        let (read, count, mine) = reader.join().unwrap();
        let theirs = taker.join().unwrap();
        let left = h.take_interval();
        for b in read.buckets() {
            assert!(b.count <= 1, "bucket {} read {}", b.low, b.count);
        }
        assert!(read.count() <= 2, "snapshot read {}", read.count());
        assert!(read.sum() <= 9, "snapshot summed {}", read.sum());
        assert!(count <= 2, "count read {count}");
        if count < read.count() {
            seen.mark();
        }
        let parts = [&mine, &theirs, &left];
        // Each on its own: wrapping sums of intervals by baseline add up
        // even when one interval is "negative" and another counts a record
        // twice.
        for s in parts {
            for b in s.buckets() {
                assert!(b.count <= 1, "an interval took {} of {}", b.count, b.low);
            }
        }
        for value in [2, 7] {
            let held: u64 = parts.iter().map(|s| bucket(s, value)).sum();
            assert_eq!(held, 1, "value {value} is in {held} intervals");
        }
        assert_eq!(parts.iter().map(|s| s.count()).sum::<u64>(), 2);
        assert_eq!(parts.iter().map(|s| s.sum()).sum::<u64>(), 9);
        assert_eq!((h.count(), h.snapshot().count()), (0, 0));
    });
    between.assert_seen("H10: a take between a reader's snapshot and its count");
}

/// H11: the carry word is shared by the shards. Two writers on different
/// shards each leave their own `low` of one bucket at 4 and transfer it
/// into the one carry word, under the one sequence: a transfer that finds
/// it held leaves its `low` for a later record. A reader reads both
/// shards' words and the carry word between two equal even sequence
/// values: every read is a state some order of the records passes through
/// (3, 4, 7 or 8 records of 3, besides the 8 records of 2), the reads
/// never go backwards, and the final counts are exact. The model asserts
/// that the writers recorded on different shards.
#[test]
fn h11_shards_transfer_into_one_carry() {
    let partial = Witness::default();
    let seen = partial.clone();
    explore_bounded(
        "H11 histogram transfers from two shards",
        Some(1),
        move || {
            let h = histogram(2);
            // On this thread's shard: the carry table and block 0's carry
            // block installed (as in H5''), and `low` of 3 at 3.
            h.record_n(2, 8);
            h.record_n(3, 3);
            let mine = metricz::cpu::thread_index() & 1;
            let reader = {
                let h = h.clone();
                // `count()`, not snapshots (see the module docs).
                thread::spawn(move || (h.count(), h.count()))
            };
            let four = {
                let h = h.clone();
                thread::spawn(move || {
                    // A `low` of its own: 0 → 4, a transfer.
                    h.record_n(3, 4);
                    metricz::cpu::thread_index() & 1
                })
            };
            // 3 → 4: a transfer.
            h.record(3);
            let theirs = four.join().unwrap();
            assert_ne!(mine, theirs, "the writers share a shard");
            let (first, second) = reader.join().unwrap();
            for read in [first, second] {
                assert!([11, 12, 15, 16].contains(&read), "read {read}");
                if read == 12 || read == 15 {
                    seen.mark();
                }
            }
            assert!(first <= second, "{first} then {second}");
            let last = h.snapshot();
            assert_eq!((bucket(&last, 2), bucket(&last, 3), last.sum()), (8, 8, 40));
        },
    );
    partial.assert_seen("H11: a read with one of the two writers' records");
}
