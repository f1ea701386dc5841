//! Histogram invariants H5, H5', H5'', H9 and H10: a count is `low + high`
//! (a 16-bit word and a carry word), and moving `low` into `high` (a
//! *transfer*, under the block's sequence) never shows a count backwards
//! or off; full records go straight to `high`; intervals are taken by
//! baseline.
//!
//! Under loom `LOW_MAX` is 7 and `TRANSFER_AT` 4: a record that leaves
//! `low` at 4 or more transfers it; a record that would take it past 7, or
//! of more than 7 at once, adds to `high` instead. Every loom write is a
//! locked one (no rseq under loom), the fallback path.
#![cfg(loom)]

use loom::thread;
use metricz::Histogram;
use metricz_loom_tests::{explore, explore_bounded, Witness};

/// One shard (every loom thread records into it), values 1..=16.
fn one_shard() -> Histogram {
    Histogram::builder()
        .highest(16)
        .significant_figures(1)
        .shards(1)
        .build()
        .unwrap()
}

/// H5: a reader racing the record that triggers a transfer reads the
/// count before or after that record, never off (`low` seen before the
/// transfer's subtraction with `high` after its add would read 8; the
/// other way round, 0), and its two reads never go backwards.
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
/// after) equal all records, in count and sum; and the baseline it left is
/// sound: one more record reads as what was left plus one, and the next
/// take takes exactly that, leaving nothing.
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

/// H5'': as H5 with two writers around the transfer. With `low` at 3, one
/// writer adds 4 (to 7, `LOW_MAX`: it transfers) while the other adds 1,
/// which lands before (and transfers 4 itself, or finds the sequence held
/// and leaves it), on a full `low` (7: the 1 goes to `high`, racing the
/// transfer's add there, and its own transfer finds the sequence held or
/// nothing left to move) or after. A reader may see a transfer through a
/// value another thread's Relaxed add wrote after it (the release sequence
/// the seqlock relies on). Every read is a state some order of the two
/// records passes through (3, 4, 7 or 8), the two reads never go
/// backwards, and the final count is exact.
#[test]
fn h5_two_writers_around_a_transfer() {
    let partial = Witness::default();
    let seen = partial.clone();
    // Three threads: preemption bound 2 keeps it to seconds.
    explore_bounded("H5'' histogram transfer, two writers", Some(2), move || {
        let h = one_shard();
        h.record_n(3, 3);
        let reader = {
            let h = h.clone();
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
            assert!([3, 4, 7, 8].contains(&read), "read {read}");
            if read == 4 || read == 7 {
                seen.mark();
            }
        }
        assert!(first <= second, "{first} then {second}");
        let last = h.snapshot();
        assert_eq!((last.count(), last.sum()), (8, 24));
    });
    partial.assert_seen("H5'': a read with one of the two records");
}

/// H9: a record of more than `LOW_MAX` at once (8) goes straight to
/// `high` (a locked add outside the sequence, and the carry block's first
/// install), racing a record that transfers `low` (3 → 4, also installing
/// the carry block if first) and a reader: every read is a state some
/// order of the two records passes through (3, 4, 11 or 12), the reads
/// never go backwards, and the final count and sum are exact.
#[test]
fn h9_full_record_racing_a_transfer() {
    let partial = Witness::default();
    let seen = partial.clone();
    explore_bounded("H9 histogram full record vs transfer", Some(2), move || {
        let h = one_shard();
        h.record_n(3, 3);
        let reader = {
            let h = h.clone();
            thread::spawn(move || (h.count(), h.snapshot().count()))
        };
        let eight = {
            let h = h.clone();
            thread::spawn(move || h.record_n(3, 8))
        };
        h.record(3);
        eight.join().unwrap();
        let (first, second) = reader.join().unwrap();
        for read in [first, second] {
            assert!([3, 4, 11, 12].contains(&read), "read {read}");
            if read == 4 || read == 11 {
                seen.mark();
            }
        }
        assert!(first <= second, "{first} then {second}");
        let last = h.snapshot();
        assert_eq!((last.count(), last.sum()), (12, 36));
    });
    partial.assert_seen("H9: a read with one of the two records");
}

/// H10: takes by baseline. Two takers race a recorder (2, then 7: two
/// count blocks, so a take may allocate the second's baseline after the
/// first's) and a reader, one of the takers, which reads a snapshot and
/// `count()` before its take. Every record is in exactly one interval (or
/// left for the last), bucket by bucket, and so are the sums; no read is
/// ever "negative": no bucket, count or sum above what was recorded (a
/// read subtracting a baseline newer than the counts it read would wrap to
/// near 2^64). The model asserts that some execution had the other take
/// land between the reader's two reads (the second below the first).
#[test]
fn h10_takes_by_baseline_split_records_exactly() {
    let between = Witness::default();
    let seen = between.clone();
    explore_bounded("H10 histogram takes by baseline", Some(2), move || {
        let h = one_shard();
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
        for value in [2, 7] {
            let held: u64 = parts
                .iter()
                .flat_map(|s| s.buckets())
                .filter(|b| b.low <= value && value <= b.high)
                .map(|b| b.count)
                .sum();
            assert_eq!(held, 1, "value {value} is in {held} intervals");
        }
        assert_eq!(parts.iter().map(|s| s.count()).sum::<u64>(), 2);
        assert_eq!(parts.iter().map(|s| s.sum()).sum::<u64>(), 9);
        assert_eq!((h.count(), h.snapshot().count()), (0, 0));
    });
    between.assert_seen("H10: a take between a reader's snapshot and its count");
}
