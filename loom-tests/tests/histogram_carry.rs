//! Histogram invariant H5: a bucket's count never reads backwards across the
//! carry of its 32-bit word, and a carry racing an interval drain loses
//! nothing.
#![cfg(loom)]

use loom::thread;
use metricz::Histogram;
use metricz_loom_tests::{explore, explore_bounded};

/// One shard (every loom thread records into it), values 1..=16.
fn one_shard() -> Histogram {
    Histogram::builder()
        .highest(16)
        .significant_figures(1)
        .shards(1)
        .build()
        .unwrap()
}

/// H5: a reader racing the record that carries a count past its 32-bit
/// word reads the count before or after that record, never 2^31 or 2^32
/// off, and its two reads never go backwards.
#[test]
fn h5_count_never_reads_backwards_across_a_carry() {
    explore("H5 histogram carry", || {
        let h = one_shard();
        // Just under 2^32: the next record takes the word past its limit.
        h.record_n(3, u64::from(u32::MAX));
        let writer = {
            let h = h.clone();
            thread::spawn(move || h.record(3))
        };
        let first = h.snapshot().count();
        let second = h.snapshot().count();
        let allowed = u64::from(u32::MAX)..=1 << 32;
        assert!(allowed.contains(&first), "read {first}");
        assert!(allowed.contains(&second), "read {second}");
        assert!(first <= second, "{first} then {second}");
        writer.join().unwrap();
        assert_eq!(h.snapshot().count(), 1 << 32);
    });
}

/// H5': an interval drain racing the record that carries a count splits
/// the records exactly: the interval plus what is left equal all records.
#[test]
fn h5_carry_racing_an_interval_loses_nothing() {
    explore("H5' histogram carry vs interval", || {
        let h = one_shard();
        h.record_n(3, (1 << 31) - 1);
        let writer = {
            let h = h.clone();
            thread::spawn(move || h.record(3))
        };
        let taken = h.take_interval().count();
        writer.join().unwrap();
        let left = h.snapshot().count();
        assert!(taken == (1 << 31) - 1 || taken == 1 << 31, "took {taken}");
        assert_eq!(taken + left, 1 << 31);
        // Nothing was left in an impossible state: the next record adds one.
        h.record(3);
        assert_eq!(h.snapshot().count(), left + 1);
    });
}

/// H5'': as H5 with a second writer whose plain record lands on the same
/// word around the carry (so a reader may see the carry through a value
/// another thread's Relaxed add wrote after it, the release sequence the
/// seqlock relies on): reads stay in range and never go backwards.
#[test]
fn h5_two_writers_around_a_carry() {
    // Three threads: preemption bound 2 keeps it to seconds.
    explore_bounded("H5'' histogram carry, two writers", Some(2), || {
        let h = one_shard();
        h.record_n(3, u64::from(u32::MAX));
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let h = h.clone();
                thread::spawn(move || h.record(3))
            })
            .collect();
        let first = h.count();
        let second = h.count();
        let allowed = u64::from(u32::MAX)..=(1 << 32) + 1;
        assert!(allowed.contains(&first), "read {first}");
        assert!(allowed.contains(&second), "read {second}");
        assert!(first <= second, "{first} then {second}");
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(h.count(), (1 << 32) + 1);
    });
}
