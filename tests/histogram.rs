//! Behaviour tests for [`Histogram`] and [`Timer`]: quantiles equal the
//! `hdrhistogram` crate's for the same values and configuration (a property
//! test), exact count/sum/min/max, clamping, builder errors, exactness under
//! concurrent records and interval takes, lazily allocated memory, counts
//! past 2^32, and the timer's recording paths.

use metricz::{Histogram, HistogramError, Snapshot, Timer};
use proptest::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::Duration;

/// The quantiles every comparison checks, besides random ones.
const QUANTILES: [f64; 10] = [0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.0];

fn reference(lowest: u64, highest: u64, figures: u8) -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(lowest, highest, figures).unwrap()
}

/// Sets its flag when dropped, so a panicking writer still stops the reader.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

// ------------------------------------------------- equality with hdrhistogram --

#[derive(Debug, Clone)]
struct Case {
    lowest: u64,
    highest: u64,
    figures: u8,
    shards: usize,
    records: Vec<(u64, u64)>,
    quantiles: Vec<f64>,
}

/// A value spread roughly log-uniformly over `0..=bound`.
fn spread(bound: u64) -> impl Strategy<Value = u64> {
    (0u32..40, any::<u64>()).prop_map(move |(shift, r)| (r >> (24 + shift)) % (bound + 1))
}

fn case() -> impl Strategy<Value = Case> {
    const MAX_HIGHEST: u64 = 1_000_000_000_000;
    (1u64..=1000, 1u8..=5)
        .prop_flat_map(|(lowest, figures)| {
            let low_high = 2 * lowest;
            (
                Just(lowest),
                spread(MAX_HIGHEST - low_high).prop_map(move |extra| low_high + extra),
                Just(figures),
            )
        })
        .prop_flat_map(|(lowest, highest, figures)| {
            let count = prop_oneof![3 => Just(1u64), 1 => 1u64..=1000];
            (
                Just(lowest),
                Just(highest),
                Just(figures),
                1usize..=8,
                prop::collection::vec((spread(highest), count), 0..200),
                prop::collection::vec(0.0f64..=1.0, 0..8),
            )
        })
        .prop_map(
            |(lowest, highest, figures, shards, records, quantiles)| Case {
                lowest,
                highest,
                figures,
                shards,
                records,
                quantiles,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn quantiles_equal_hdrhistogram(case in case()) {
        let h = Histogram::builder()
            .lowest(case.lowest)
            .highest(case.highest)
            .significant_figures(case.figures)
            .shards(case.shards)
            .build()
            .unwrap();
        let mut expected = reference(case.lowest, case.highest, case.figures);
        let (mut count, mut sum, mut min, mut max) = (0u64, 0u128, u64::MAX, 0u64);
        for &(value, n) in &case.records {
            if n == 1 {
                h.record(value);
            } else {
                h.record_n(value, n);
            }
            expected.record_n(value, n).unwrap();
            count += n;
            sum += u128::from(value) * u128::from(n);
            min = min.min(value);
            max = max.max(value);
        }
        if count == 0 {
            min = 0;
        }
        let s = h.snapshot();
        prop_assert_eq!(s.count(), count);
        prop_assert_eq!(s.count(), expected.len());
        prop_assert_eq!(u128::from(s.sum()), sum);
        prop_assert_eq!(s.min(), min);
        prop_assert_eq!(s.max(), max);
        prop_assert_eq!(s.clamped(), 0);
        prop_assert_eq!(
            (s.lowest(), s.highest(), s.significant_figures()),
            (case.lowest, case.highest, case.figures)
        );

        let qs: Vec<f64> = QUANTILES.iter().chain(&case.quantiles).copied().collect();
        let want: Vec<u64> = qs.iter().map(|&q| expected.value_at_quantile(q)).collect();
        for (&q, &w) in qs.iter().zip(&want) {
            prop_assert_eq!(s.value_at_quantile(q), w, "quantile {}", q);
        }
        prop_assert_eq!(s.quantiles(&qs), want.clone());

        let exported = s.to_hdrhistogram();
        prop_assert_eq!(exported.len(), expected.len());
        let got: Vec<u64> = qs.iter().map(|&q| exported.value_at_quantile(q)).collect();
        prop_assert_eq!(got, want);

        // The buckets are the reference's recorded values, in order.
        let buckets: Vec<(u64, u64)> = s.buckets().map(|b| (b.high, b.count)).collect();
        let recorded: Vec<(u64, u64)> = expected
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        prop_assert_eq!(buckets, recorded);
    }
}

#[test]
fn out_of_range_quantiles_match_hdrhistogram() {
    let h = Histogram::new();
    let mut expected = reference(1, metricz::histogram::DEFAULT_HIGHEST, 3);
    for v in [7u64, 300, 5_000, 123_456_789] {
        h.record(v);
        expected.record(v).unwrap();
    }
    let s = h.snapshot();
    for q in [-1.0, -0.0, 1.5, f64::INFINITY, f64::NEG_INFINITY, f64::NAN] {
        assert_eq!(
            s.value_at_quantile(q),
            expected.value_at_quantile(q),
            "q {q}"
        );
    }
    assert_eq!(
        s.value_at_quantile(2.0),
        expected.highest_equivalent(123_456_789)
    );
}

// ---------------------------------------------------------------- clamping --

#[test]
fn values_above_highest_are_clamped_and_counted() {
    let h = Histogram::builder().highest(1_000_000).build().unwrap();
    h.record(500);
    h.record(1_000_000); // the highest itself is not clamped
    h.record(1_000_001);
    h.record_n(u64::MAX, 3);
    h.record_n(u64::MAX, 0); // nothing
    let s = h.snapshot();
    assert_eq!(s.count(), 6);
    assert_eq!(s.clamped(), 4);
    assert_eq!(s.max(), 1_000_000);
    assert_eq!(s.min(), 500);
    assert_eq!(s.sum(), 500 + 5 * 1_000_000);
    let mut expected = reference(1, 1_000_000, 3);
    expected.record(500).unwrap();
    expected.record_n(1_000_000, 5).unwrap();
    for q in QUANTILES {
        assert_eq!(
            s.value_at_quantile(q),
            expected.value_at_quantile(q),
            "q {q}"
        );
    }

    // u64::MAX into the default histogram: no panic, recorded as the highest.
    let h = Histogram::new();
    h.record(u64::MAX);
    let s = h.snapshot();
    assert_eq!((s.count(), s.clamped()), (1, 1));
    assert_eq!(s.max(), metricz::histogram::DEFAULT_HIGHEST);
    assert_eq!(s.sum(), metricz::histogram::DEFAULT_HIGHEST);
}

#[test]
fn values_below_lowest_are_recorded() {
    let h = Histogram::builder()
        .lowest(1000)
        .highest(10_000_000)
        .build()
        .unwrap();
    let mut expected = reference(1000, 10_000_000, 3);
    for v in [0u64, 5, 999, 1000, 2_000_000] {
        h.record(v);
        expected.record(v).unwrap();
    }
    let s = h.snapshot();
    assert_eq!(s.count(), 5);
    assert_eq!(s.clamped(), 0);
    assert_eq!(s.min(), 0);
    assert_eq!(s.sum(), 5 + 999 + 1000 + 2_000_000);
    for q in QUANTILES.iter().chain(&[0.2, 0.4, 0.6]) {
        assert_eq!(
            s.value_at_quantile(*q),
            expected.value_at_quantile(*q),
            "q {q}"
        );
    }
}

// ----------------------------------------------------------- builder errors --

#[test]
fn builder_rejects_each_rule() {
    let err = |b: metricz::HistogramBuilder| b.build().unwrap_err();
    assert_eq!(
        err(Histogram::builder().lowest(0)),
        HistogramError::LowestIsZero
    );
    assert_eq!(
        err(Histogram::builder().lowest(10).highest(19)),
        HistogramError::HighestBelowTwiceLowest {
            lowest: 10,
            highest: 19
        }
    );
    assert_eq!(
        err(Histogram::builder()
            .lowest(u64::MAX / 2 + 1)
            .highest(u64::MAX)),
        HistogramError::HighestBelowTwiceLowest {
            lowest: u64::MAX / 2 + 1,
            highest: u64::MAX
        }
    );
    assert_eq!(
        err(Histogram::builder().significant_figures(0)),
        HistogramError::SignificantFiguresOutOfRange(0)
    );
    assert_eq!(
        err(Histogram::builder().significant_figures(6)),
        HistogramError::SignificantFiguresOutOfRange(6)
    );
    assert_eq!(
        err(Histogram::builder()
            .lowest(1 << 60)
            .highest(u64::MAX)
            .significant_figures(3)),
        HistogramError::LowestTooLargeForPrecision {
            lowest: 1 << 60,
            significant_figures: 3
        }
    );
    // The boundaries of each rule are accepted.
    for b in [
        Histogram::builder().lowest(10).highest(20),
        Histogram::builder().significant_figures(1),
        Histogram::builder().significant_figures(5),
        Histogram::builder().lowest(1 << 40).highest(u64::MAX),
        Histogram::builder().highest(u64::MAX),
    ] {
        let h = b.build().unwrap();
        h.record(u64::MAX);
        assert_eq!(h.snapshot().count(), 1);
    }
    // Errors explain themselves.
    let message = HistogramError::SignificantFiguresOutOfRange(9).to_string();
    assert!(message.contains('9'), "{message}");
}

// ------------------------------------------------------------- concurrency --

const THREADS: u64 = 4;
const PER_THREAD: u64 = if cfg!(miri) { 50 } else { 20_000 };

/// `builder` built, at one significant figure under Miri: a snapshot walks
/// every count, 33 792 of them at the default three (minutes there).
fn miri_sized(builder: metricz::HistogramBuilder) -> Histogram {
    let figures = if cfg!(miri) { 1 } else { 3 };
    builder.significant_figures(figures).build().unwrap()
}

/// The `i`-th value thread `t` records: distinct ranges per thread.
fn value(t: u64, i: u64) -> u64 {
    t * 1_000_000 + i * 7 + 3
}

#[test]
fn concurrent_records_are_exact() {
    let h = miri_sized(Histogram::builder());
    let barrier = Barrier::new(THREADS as usize);
    thread::scope(|s| {
        for t in 0..THREADS {
            let (h, barrier) = (h.clone(), &barrier);
            s.spawn(move || {
                barrier.wait();
                for i in 0..PER_THREAD {
                    h.record(value(t, i));
                }
            });
        }
    });
    let s = h.snapshot();
    let expected_sum: u64 = (0..THREADS)
        .flat_map(|t| (0..PER_THREAD).map(move |i| value(t, i)))
        .sum();
    assert_eq!(s.count(), THREADS * PER_THREAD);
    assert_eq!(s.sum(), expected_sum);
    assert_eq!(s.min(), value(0, 0));
    assert_eq!(s.max(), value(THREADS - 1, PER_THREAD - 1));
    assert_eq!(s.clamped(), 0);
}

#[test]
fn intervals_partition_concurrent_records() {
    let h = miri_sized(Histogram::builder());
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(THREADS as usize + 1);
    let (intervals, interval_count, interval_sum) = thread::scope(|s| {
        let reader = s.spawn(|| {
            barrier.wait();
            let (mut n, mut count, mut sum) = (0u64, 0u64, 0u64);
            loop {
                let done = stop.load(Ordering::Acquire);
                let i = h.take_interval();
                n += 1;
                count += i.count();
                sum += i.sum();
                if done {
                    break;
                }
            }
            (n, count, sum)
        });
        let writers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (h, barrier) = (h.clone(), &barrier);
                s.spawn(move || {
                    barrier.wait();
                    for i in 0..PER_THREAD {
                        h.record_n(value(t, i), 1 + i % 3);
                    }
                })
            })
            .collect();
        {
            let _stop = StopOnDrop(&stop);
            for w in writers {
                w.join().unwrap();
            }
        }
        reader.join().unwrap()
    });
    let s = h.snapshot();
    let total_count: u64 = THREADS * (0..PER_THREAD).map(|i| 1 + i % 3).sum::<u64>();
    let total_sum: u64 = (0..THREADS)
        .flat_map(|t| (0..PER_THREAD).map(move |i| value(t, i) * (1 + i % 3)))
        .sum();
    assert!(intervals >= 1);
    assert_eq!(interval_count + s.count(), total_count);
    assert_eq!(interval_sum + s.sum(), total_sum);
    // The reader's last take came after every writer finished.
    assert_eq!(s.count(), 0, "after {intervals} intervals");
    assert_eq!(s.sum(), 0);
}

#[test]
fn take_interval_resets() {
    let h = Histogram::new();
    h.record(10);
    h.record(20_000);
    let i = h.take_interval();
    assert_eq!(
        (i.count(), i.sum(), i.min(), i.max()),
        (2, 20_010, 10, 20_000)
    );
    let empty = h.take_interval();
    assert_eq!(empty.count(), 0);
    h.record(500);
    let s = h.snapshot();
    // min and max start afresh in the new interval.
    assert_eq!((s.count(), s.sum(), s.min(), s.max()), (1, 500, 500, 500));
    // A snapshot does not reset.
    assert_eq!(h.snapshot().count(), 1);
}

/// One bucket hammered from every thread: each count's 16-bit word passes
/// its transfer threshold and fills up again and again (transfers into the
/// carry word, full words sent to it, racing each other and the readers),
/// and a reader's counts never go backwards while an interval taker
/// splits the records exactly.
#[test]
fn a_hot_bucket_stays_exact_and_never_reads_backwards() {
    const HOT: u64 = if cfg!(miri) { 200 } else { 150_000 };
    let h = miri_sized(Histogram::builder());
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(THREADS as usize + 2);
    let (taken, taken_sum) = thread::scope(|s| {
        s.spawn(|| {
            barrier.wait();
            while !stop.load(Ordering::Acquire) {
                // Since the last take, so not monotone; but each is whole.
                let s = h.snapshot();
                assert_eq!(s.buckets().map(|b| b.count).sum::<u64>(), s.count());
                assert!(s.count() <= THREADS * (HOT + HOT.div_ceil(1_000) * 39_999));
            }
        });
        let taker = s.spawn(|| {
            barrier.wait();
            let (mut count, mut sum) = (0u64, 0u64);
            let mut interval = h.take_interval();
            loop {
                let done = stop.load(Ordering::Acquire);
                count += interval.count();
                sum += interval.sum();
                if done {
                    break;
                }
                h.take_interval_into(&mut interval);
            }
            (count, sum)
        });
        let writers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (h, barrier) = (h.clone(), &barrier);
                s.spawn(move || {
                    barrier.wait();
                    for i in 0..HOT {
                        // Mostly single records; now and then a batch that
                        // may not fit the word.
                        h.record_n(1_000 + t % 2, if i % 1_000 == 0 { 40_000 } else { 1 });
                    }
                })
            })
            .collect();
        {
            let _stop = StopOnDrop(&stop);
            for w in writers {
                w.join().unwrap();
            }
        }
        taker.join().unwrap()
    });
    let per_thread = HOT + HOT.div_ceil(1_000) * 39_999;
    let s = h.snapshot();
    assert_eq!(taken + s.count(), THREADS * per_thread);
    let expected_sum = (0..THREADS)
        .map(|t| (1_000 + t % 2) * per_thread)
        .sum::<u64>();
    assert_eq!(taken_sum + s.sum(), expected_sum);
}

/// `count()` of a histogram recorded into from every thread, read while
/// they record, never decreases (no take runs), including across the
/// transfers of one hot bucket's words.
#[test]
fn count_never_reads_backwards_under_hot_records() {
    const HOT: u64 = if cfg!(miri) { 200 } else { 100_000 };
    let h = miri_sized(Histogram::builder());
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        let reader = s.spawn(|| {
            let (mut last, mut reads) = (0, 0u64);
            while !stop.load(Ordering::Acquire) {
                let now = h.count();
                assert!(now >= last, "count went from {last} to {now}");
                last = now;
                reads += 1;
            }
            reads
        });
        let writers: Vec<_> = (0..THREADS)
            .map(|_| {
                let h = h.clone();
                s.spawn(move || {
                    for _ in 0..HOT {
                        h.record(77);
                    }
                })
            })
            .collect();
        {
            let _stop = StopOnDrop(&stop);
            for w in writers {
                w.join().unwrap();
            }
        }
        assert!(reader.join().unwrap() > 0);
    });
    assert_eq!(h.count(), THREADS * HOT);
    assert_eq!(
        h.snapshot().buckets().map(|b| b.count).collect::<Vec<_>>(),
        vec![THREADS * HOT]
    );
}

/// Unregisters glibc's rseq area of the calling thread, so the kernel sets
/// its `cpu_id` to −1: a thread that cannot use restartable sequences.
#[cfg(all(
    target_os = "linux",
    target_env = "gnu",
    target_arch = "x86_64",
    not(miri)
))]
fn unregister_rseq() {
    // SAFETY: dlsym with NUL-terminated names; the symbols, where present,
    // are glibc's `const ptrdiff_t __rseq_offset` and `const unsigned int
    // __rseq_size`.
    let (offset, size) = unsafe {
        let offset = libc::dlsym(libc::RTLD_DEFAULT, c"__rseq_offset".as_ptr());
        let size = libc::dlsym(libc::RTLD_DEFAULT, c"__rseq_size".as_ptr());
        assert!(
            !offset.is_null() && !size.is_null(),
            "no glibc rseq symbols"
        );
        (offset.cast::<isize>().read(), size.cast::<u32>().read())
    };
    // On x86_64 glibc, `pthread_self()` is the thread pointer.
    // SAFETY: no preconditions.
    let area = (unsafe { libc::pthread_self() } as isize + offset) as *mut libc::c_void;
    // The registered length: 32 (the original `struct rseq`), or
    // `__rseq_size` on glibcs that register more.
    let unregistered = [32u32, size].into_iter().any(|len| {
        // SAFETY: unregistering the calling thread's own area, with the
        // signature glibc registered; the area stays allocated (the thread
        // control block), only the kernel stops updating it.
        unsafe { libc::syscall(libc::SYS_rseq, area, len, 1, 0x5305_3053) == 0 }
    });
    assert!(unregistered, "rseq unregistration failed");
}

/// A thread without an rseq registration records into the fallback shard
/// (locked updates), never into a CPU's shard, whose words only sequences
/// on that CPU write; its records count like any other. In a process
/// without rseq (scripts/tsan runs one, `glibc.pthread.rseq=0`) every
/// record takes locked updates on a CPU's shard and the fallback shard is
/// never used (and the thread's records go to the shard of each CPU it
/// runs on): that is checked instead.
#[cfg(all(
    target_os = "linux",
    target_env = "gnu",
    target_arch = "x86_64",
    not(miri)
))]
#[test]
fn a_thread_without_rseq_records_into_the_fallback_shard() {
    let rseq = metricz::counter::rseq::available();
    let h = Histogram::new();
    thread::scope(|s| {
        s.spawn(|| {
            if rseq {
                unregister_rseq();
            }
            assert_eq!(metricz::cpu::rseq_cpu(), None);
            for i in 0..100_000u64 {
                h.record(1_000 + i % 3);
            }
        });
    });
    assert_eq!(h.fallback_shard_in_use(), rseq, "fallback shard use");
    if rseq {
        // The fallback shard only, wherever the thread ran.
        assert_eq!(h.shards_in_use(), 1, "more than one shard written");
    } else {
        // Locked updates on the shard of the CPU the thread is on at each
        // record: one or more, as it migrates.
        assert!(h.shards_in_use() >= 1);
    }
    h.record(5);
    if rseq {
        // A registered thread: its CPU's shard, not the fallback.
        assert_eq!(h.shards_in_use(), 2);
    }
    let s = h.snapshot();
    assert_eq!((s.count(), s.min(), s.max()), (100_001, 5, 1_002));
    assert_eq!(
        s.sum(),
        (0..100_000u64).map(|i| 1_000 + i % 3).sum::<u64>() + 5
    );
}

/// The first `take_interval` allocates the baseline (a slot per block of
/// the layout, and the counts of each block holding records); later takes
/// add only blocks that gained records; `bytes_used` counts it exactly.
#[test]
fn the_interval_baseline_is_counted_in_bytes_used() {
    let h = Histogram::builder().shards(1).build().unwrap();
    h.record(1_000);
    let before = h.bytes_used();
    h.take_interval();
    let slots = 33_792 / BLOCK_LEN * std::mem::size_of::<usize>();
    assert_eq!(h.bytes_used() - before, slots + BLOCK_LEN * 8);
    h.take_interval();
    h.record(1_001);
    h.take_interval();
    assert_eq!(h.bytes_used() - before, slots + BLOCK_LEN * 8, "same block");
    h.record(50_000_000);
    h.take_interval();
    // A new count block (its 16-bit counts) and its baseline.
    let block = BLOCK_COUNT_BYTES;
    assert_eq!(h.bytes_used() - before, slots + 2 * BLOCK_LEN * 8 + block);
    assert_eq!(h.snapshot().count(), 0);
}

// ------------------------------------------------------- memory follows data --

/// HdrHistogram's count index of `value` for lowest 1 and 3 figures (2048
/// sub-buckets: unit magnitude 0, half-count magnitude 10).
fn default_index(value: u64) -> usize {
    let bucket = 53 - (value | 2047).leading_zeros();
    let sub_bucket = value >> bucket;
    (((u64::from(bucket) + 1) << 10) + sub_bucket - 1024) as usize
}

/// Counts per block and bytes per block's counts (16-bit), per the docs.
const BLOCK_LEN: usize = 256;
const BLOCK_COUNT_BYTES: usize = BLOCK_LEN * 2;

#[test]
fn default_index_is_hdrhistogram_layout() {
    let r = reference(1, metricz::histogram::DEFAULT_HIGHEST, 3);
    assert!(default_index(metricz::histogram::DEFAULT_HIGHEST) < 33_792);
    assert_eq!(default_index((1 << 42) - 1), 33_791);
    assert_eq!(r.distinct_values(), 33_792);
    for v in [0u64, 1, 2047, 2048, 4095, 4096, 1_000_000, 99_999_999] {
        // Neighbouring indices start at the reference's next bucket.
        let next = r.next_non_equivalent(v);
        assert_eq!(default_index(next), default_index(v) + 1, "{v}");
    }
}

#[test]
fn fresh_histogram_holds_no_shards() {
    let h = Histogram::new();
    assert_eq!(h.shards_in_use(), 0);
    assert!(h.bytes_used() < 4096, "{}", h.bytes_used());
    let s = h.snapshot();
    assert_eq!(s.count(), 0);
    // Reading does not allocate shards either.
    assert_eq!(h.shards_in_use(), 0);

    let h = Histogram::builder().shards(8).build().unwrap();
    let fresh = h.bytes_used();
    assert!((8 * 8..512).contains(&fresh), "{fresh}");
    assert!(!h.block_allocated_for(1000));
}

#[test]
fn one_record_allocates_one_shard_and_one_block() {
    let h = Histogram::builder().shards(8).build().unwrap();
    let fresh = h.bytes_used();
    h.record(1_000);
    assert_eq!(h.shards_in_use(), 1);
    assert!(h.block_allocated_for(1_000));
    assert!(h.block_allocated_for(1_001), "same block");
    assert!(!h.block_allocated_for(1_000_000_000), "far-away block");
    assert!(!h.block_allocated_for(0), "block 0 holds 0..256");
    let one = h.bytes_used();
    let blocks_in_layout = 33_792 / BLOCK_LEN;
    // A shard header (128-byte aligned) with a pointer per block, and one
    // block of counts.
    let growth = one - fresh;
    assert!(
        (BLOCK_COUNT_BYTES..=BLOCK_COUNT_BYTES + 128 + 8 * blocks_in_layout + 64).contains(&growth),
        "one record grew bytes_used by {growth}"
    );
    // Same block: no growth. A new block: one block's worth.
    h.record(1_020); // index 1_020: block 3, as 1_000
    assert_eq!(h.bytes_used(), one);
    h.record(1_000_000_000);
    assert!(h.block_allocated_for(1_000_000_000));
    let block = h.bytes_used() - one;
    assert!(
        (BLOCK_COUNT_BYTES..=BLOCK_COUNT_BYTES + 64).contains(&block),
        "a second block took {block} bytes"
    );
    assert_eq!(h.snapshot().count(), 3);
}

/// Pins the calling thread to the CPU it runs on, so per-CPU shard picks stay
/// put.
#[cfg(target_os = "linux")]
fn pin_to_current_cpu() {
    // SAFETY: `sched_getcpu` has no preconditions.
    let cpu = unsafe { libc::sched_getcpu() };
    assert!(cpu >= 0, "sched_getcpu failed");
    // SAFETY: `cpu_set_t` is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid set and `cpu` is below CPU_SETSIZE (the kernel
    // returned it).
    unsafe { libc::CPU_SET(cpu as usize, &mut set) };
    // SAFETY: `set` is a valid, initialised `cpu_set_t` of the size passed.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    assert_eq!(rc, 0, "sched_setaffinity failed");
}

#[cfg(not(target_os = "linux"))]
fn pin_to_current_cpu() {
    // Elsewhere the shard is picked by thread index, fixed per thread.
}

#[test]
fn one_thread_uses_one_shard() {
    let h = Histogram::builder().shards(4).build().unwrap();
    thread::scope(|s| {
        s.spawn(|| {
            pin_to_current_cpu();
            for v in 0..10_000u64 {
                h.record(v * 1_000);
            }
        });
    });
    assert_eq!(h.shards_in_use(), 1);
    assert_eq!(h.snapshot().count(), 10_000);
}

#[test]
fn latency_spread_memory() {
    const N: u64 = 200_000;
    let h = Histogram::builder().shards(1).build().unwrap();
    let fresh = h.bytes_used();
    let mut blocks = std::collections::BTreeSet::new();
    // 1 µs ..= 100 ms in ns, log-uniform: 1_000 × 10^(5 i / (N - 1)).
    for v in spread_values(N) {
        h.record(v);
        blocks.insert(default_index(v) / BLOCK_LEN);
    }
    let s = h.snapshot();
    assert_eq!(s.count(), N);
    assert_eq!((s.min(), s.max()), (1_000, 100_000_000));
    // 1_000 is in block 3 and 100_000_000 (index 17_909) in block 69.
    assert_eq!(blocks.len(), 67);
    assert!(!h.block_allocated_for(700), "block 2 holds no record");
    assert!(
        !h.block_allocated_for(1_000_000_000),
        "block 80 holds no record"
    );
    let used = h.bytes_used();
    assert!(
        used - fresh <= 64 * 1024,
        "{} bytes for one CPU",
        used - fresh
    );
    let blocks_in_layout = 33_792 / BLOCK_LEN;
    // Header, shard table, shard header with a pointer per block, and each
    // touched block's counts (+ at most 64 bytes of block header each).
    let upper = fresh + 64 + 8 * blocks_in_layout + blocks.len() * (BLOCK_COUNT_BYTES + 64);
    let lower = fresh + blocks.len() * BLOCK_COUNT_BYTES;
    eprintln!(
        "latency_spread_memory: {} blocks touched, bytes_used {used} ({:.1} KiB; bound {lower}..={upper}; issue target 65536)",
        blocks.len(),
        used as f64 / 1024.0,
    );
    assert!(
        (lower..=upper).contains(&used),
        "{used} not in {lower}..={upper}"
    );
}

/// Spread 1 µs–100 ms as in `latency_spread_memory`: `n` values.
fn spread_values(n: u64) -> impl Iterator<Item = u64> {
    (0..n).map(move |i| (1_000.0 * 10f64.powf(5.0 * i as f64 / (n - 1) as f64)).round() as u64)
}

/// Carry words are the histogram's, shared by every CPU: a second CPU
/// recording the same heavy traffic adds only its shard (16-bit words),
/// and more records add nothing.
#[cfg(target_os = "linux")]
#[test]
fn carries_are_shared_so_a_cpu_costs_its_16_bit_words() {
    // SAFETY: the kernel fills a zeroed set of the size passed.
    let cpus: Vec<usize> = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
            0
        );
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    };
    assert!(cpus.len() >= 2, "needs two CPUs");
    let h = Histogram::new();
    let on_cpu = |cpu: usize, n: u64| {
        thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: a set built with the libc macros, of the size passed.
                unsafe {
                    let mut set: libc::cpu_set_t = std::mem::zeroed();
                    libc::CPU_SET(cpu, &mut set);
                    assert_eq!(
                        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set),
                        0
                    );
                }
                // 40 000 of each value: every touched count transfers
                // into its carry word.
                for v in spread_values(2_000) {
                    h.record_n(v, n);
                }
            });
        });
    };
    let fresh = h.bytes_used();
    on_cpu(cpus[0], 40_000);
    let one = h.bytes_used();
    on_cpu(cpus[1], 40_000);
    let two = h.bytes_used();
    on_cpu(cpus[0], 40_000);
    on_cpu(cpus[1], 40_000);
    assert_eq!(h.bytes_used(), two, "more records, more memory");
    assert_eq!(h.shards_in_use(), 2);
    let blocks = spread_values(2_000)
        .map(|v| default_index(v) / BLOCK_LEN)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    // A shard: its 128-byte header, a pointer per block of the layout and
    // the 16-bit words of each touched block.
    let shard = 128 + 33_792 / BLOCK_LEN * 8 + blocks * BLOCK_COUNT_BYTES;
    assert_eq!(two - one, shard, "the second CPU's share");
    // The carry table and a carry block per touched block, once.
    let carries = 16 + 33_792 / BLOCK_LEN * 8 + blocks * (8 + BLOCK_LEN * 8);
    assert_eq!(one - fresh, shard + carries);
    assert!(shard <= 64 * 1024, "{shard} bytes per CPU");
    assert_eq!(h.count(), 4 * 2_000 * 40_000);
}

// ---------------------------------------------------------- counts past 2^32 --

#[test]
fn counts_past_u32_are_exact() {
    let v = 12_345u64;
    let w = 9_999_999u64;
    let h = Histogram::builder().shards(1).build().unwrap();
    let n = 2 * u64::from(u32::MAX) + 1;
    // Below 2^15 a count needs no carry storage (a 16-bit word).
    h.record_n(v, (1 << 15) - 1);
    let before_carry = h.bytes_used();
    h.record_n(v, n - (1 << 15));
    h.record(v);
    // The histogram's carry table (a boxed slice of a pointer per block)
    // and one carry block: a sequence word and 256 64-bit words.
    assert_eq!(
        h.bytes_used() - before_carry,
        16 + 33_792 / BLOCK_LEN * 8 + 8 + BLOCK_LEN * 8,
        "one carry block of 64-bit words"
    );
    let s = h.snapshot();
    assert_eq!(s.count(), n);
    assert_eq!(s.sum(), v * n);
    let mut expected = reference(1, metricz::histogram::DEFAULT_HIGHEST, 3);
    expected.record_n(v, n).unwrap();
    assert_eq!(s.value_at_quantile(0.5), expected.value_at_quantile(0.5));
    assert_eq!(s.value_at_quantile(1.0), expected.highest_equivalent(v));
    assert_eq!(s.buckets().map(|b| b.count).collect::<Vec<_>>(), vec![n]);

    // One more record above: the top quantile moves, the median stays.
    h.record(w);
    let s = h.snapshot();
    assert_eq!(s.count(), n + 1);
    assert_eq!(s.value_at_quantile(0.5), expected.highest_equivalent(v));
    assert_eq!(s.value_at_quantile(1.0), expected.highest_equivalent(w));
    assert_eq!(s.to_hdrhistogram().len(), n + 1);

    let h = Histogram::new();
    h.record_n(v, 1 << 40);
    let s = h.snapshot();
    assert_eq!(s.count(), 1 << 40);
    assert_eq!(s.sum(), v << 40);
    assert_eq!(s.value_at_quantile(0.999), expected.highest_equivalent(v));
    let i = h.take_interval();
    assert_eq!(i.count(), 1 << 40);
    assert_eq!(i.sum(), v << 40);
    let s = h.snapshot();
    assert_eq!((s.count(), s.sum()), (0, 0));
    // The carry word was reset too.
    h.record_n(v, 5);
    assert_eq!(h.snapshot().count(), 5);
    assert_eq!(h.take_interval().count(), 5);
}

#[test]
fn counts_wrap_across_many_adds() {
    // 2^32 + 2^31 in steps that each wrap the low word differently.
    let h = Histogram::builder().shards(1).build().unwrap();
    let mut total = 0u64;
    for n in [
        u64::from(u32::MAX),
        3,
        u64::from(u32::MAX) / 2 - 2,
        1 << 33,
        7,
    ] {
        h.record_n(77, n);
        total += n;
        assert_eq!(h.snapshot().count(), total);
    }
}

// ------------------------------------------------------------------- Timer --

#[test]
fn timer_records_nanoseconds() {
    let t = Timer::new();
    t.record(Duration::from_micros(3));
    t.record(Duration::from_micros(250));
    t.record(Duration::from_millis(40));
    let s = t.snapshot();
    assert_eq!(s.count(), 3);
    assert_eq!(s.sum(), 3_000 + 250_000 + 40_000_000);
    assert_eq!(s.min(), 3_000);
    assert_eq!(s.max(), 40_000_000);
    assert_eq!(s.clamped(), 0);
    assert_eq!(t.histogram().snapshot().count(), 3);
}

#[test]
fn timer_guard_records_on_drop() {
    let t = Timer::new();
    let guard = t.start();
    thread::sleep(Duration::from_millis(2));
    let seen = guard.elapsed();
    assert_eq!(t.snapshot().count(), 0, "recorded before drop");
    drop(guard);
    let s = t.snapshot();
    assert_eq!(s.count(), 1);
    // Elapsed time only grows: at least the sleep and what the guard saw.
    assert!(s.min() >= 2_000_000, "{}", s.min());
    assert!(s.min() as u128 >= seen.as_nanos());
}

#[test]
fn timer_time_runs_once_and_records() {
    let t = Timer::new();
    let mut calls = 0;
    let answer = t.time(|| {
        calls += 1;
        thread::sleep(Duration::from_millis(1));
        6 * 7
    });
    assert_eq!((answer, calls), (42, 1));
    let s = t.snapshot();
    assert_eq!(s.count(), 1);
    assert!(s.min() >= 1_000_000, "{}", s.min());
    t.time(|| ());
    assert_eq!(t.snapshot().count(), 2);
}

#[test]
fn timer_saturates_huge_durations() {
    let t = Timer::new();
    t.record(Duration::MAX);
    t.record(Duration::from_secs(3_601));
    t.record(Duration::from_micros(1));
    let s = t.snapshot();
    assert_eq!(s.count(), 3);
    assert_eq!(s.clamped(), 2);
    assert_eq!(s.max(), metricz::histogram::DEFAULT_HIGHEST);
    assert_eq!(s.sum(), 2 * metricz::histogram::DEFAULT_HIGHEST + 1_000);

    let t = Timer::with_max(Duration::from_secs(1), 2).unwrap();
    assert_eq!(t.histogram().highest(), 1_000_000_000);
    assert_eq!(t.histogram().significant_figures(), 2);
    t.record(Duration::from_secs(2));
    t.record(Duration::from_millis(999));
    let s = t.snapshot();
    assert_eq!((s.count(), s.clamped(), s.max()), (2, 1, 1_000_000_000));
    assert!(Timer::with_max(Duration::from_secs(1), 6).is_err());
}

// ---------------------------------------------------------------- snapshots --

#[test]
fn buckets_are_ordered_and_sum_to_count() {
    let h = Histogram::new();
    let values = [
        5u64,
        5,
        900,
        2_047,
        2_048,
        2_049,
        70_000,
        70_001,
        3_000_000_000,
    ];
    // Recorded out of order.
    for &v in values.iter().rev() {
        h.record(v);
    }
    let s = h.snapshot();
    let buckets: Vec<_> = s.buckets().collect();
    assert!(
        buckets.windows(2).all(|w| w[0].high < w[1].low),
        "{buckets:?}"
    );
    assert!(buckets.iter().all(|b| b.low <= b.high && b.count > 0));
    assert_eq!(buckets.iter().map(|b| b.count).sum::<u64>(), s.count());
    let r = reference(1, metricz::histogram::DEFAULT_HIGHEST, 3);
    for b in &buckets {
        assert_eq!(b.low, r.lowest_equivalent(b.low));
        assert_eq!(b.high, r.highest_equivalent(b.low));
        let inside = values.iter().filter(|&&v| (b.low..=b.high).contains(&v));
        assert_eq!(inside.count() as u64, b.count, "{b:?}");
    }
    // 5 twice; 2_048 and 2_049 share a 2-wide bucket; 70_000 and 70_001
    // share a 64-wide one.
    assert_eq!(buckets.len(), 6, "{buckets:?}");
    assert_eq!((buckets[0].low, buckets[0].count), (5, 2));
    assert_eq!(
        (buckets[3].low, buckets[3].high, buckets[3].count),
        (2_048, 2_049, 2)
    );
}

#[test]
fn mean_is_sum_over_count() {
    let h = Histogram::new();
    h.record_n(10, 3);
    h.record(1_000_001);
    let s = h.snapshot();
    assert_eq!(s.mean(), 1_000_031.0 / 4.0);
}

fn assert_empty(s: &Snapshot) {
    assert_eq!(s.count(), 0);
    assert_eq!(s.sum(), 0);
    assert_eq!(s.min(), 0);
    assert_eq!(s.max(), 0);
    assert_eq!(s.clamped(), 0);
    assert_eq!(s.mean(), 0.0);
    assert_eq!(s.quantiles(&QUANTILES), vec![0; QUANTILES.len()]);
    assert_eq!(s.buckets().count(), 0);
    assert_eq!(s.to_hdrhistogram().len(), 0);
}

#[test]
fn empty_snapshots_read_zero() {
    let h = Histogram::new();
    assert_empty(&h.snapshot());
    h.record(123);
    h.record(456);
    h.take_interval();
    assert_empty(&h.snapshot());
    assert_empty(&h.take_interval());
}

/// A `record_n` of more than a 16-bit word holds goes straight to the
/// shared carry word: no block of 16-bit words is installed for it.
#[test]
fn a_record_larger_than_a_word_installs_no_word_block() {
    let h = Histogram::new();
    h.record_n(12_345, 100_000);
    assert!(!h.block_allocated_for(12_345));
    assert_eq!(h.count(), 100_000);
    h.record(12_345);
    assert!(h.block_allocated_for(12_345));
    let s = h.snapshot();
    assert_eq!((s.count(), s.sum()), (100_001, 100_001 * 12_345));
}

/// Counts past 2^31 and 2^32 in one bucket (a 16-bit word and the carry
/// word, `record_n`s of more than the word holds going straight to the
/// carry) are exact, by `record`, `record_n` and every read.
#[test]
fn counts_past_32_bits_are_exact() {
    let h = miri_sized(Histogram::builder().shards(1));
    let mut expected = 0u64;
    for n in [
        (1u64 << 31) - 1,
        1,
        1,
        (1 << 32) - 1,
        1 << 31,
        5,
        u64::from(u32::MAX),
        1 << 40,
    ] {
        h.record_n(42, n);
        expected += n;
        assert_eq!(h.count(), expected);
        let s = h.snapshot();
        assert_eq!(s.count(), expected);
        assert_eq!(
            s.buckets().map(|b| b.count).collect::<Vec<_>>(),
            vec![expected]
        );
    }
    let interval = h.take_interval();
    assert_eq!(interval.count(), expected);
    assert_eq!(h.count(), 0);
    h.record(42);
    assert_eq!(h.snapshot().count(), 1);
}

/// A read racing a record that moves a bucket's 16-bit word into its carry
/// word never sees the count go backwards (a scrape would report a counter
/// reset): every record of the writer crosses the transfer mark (2^15)
/// while readers check that counts only grow.
#[test]
fn counts_never_go_backwards_across_transfers() {
    let h = miri_sized(Histogram::builder().shards(1));
    let done = AtomicBool::new(false);
    const ROUNDS: u64 = if cfg!(miri) { 20 } else { 200_000 };
    thread::scope(|s| {
        s.spawn(|| {
            // Each record of 40 000 leaves the 16-bit word past the
            // transfer mark, so each moves the word into the carry.
            for _ in 0..ROUNDS {
                h.record_n(7, 40_000);
            }
            done.store(true, Ordering::Release);
        });
        for read in [0, 1] {
            let (h, done) = (&h, &done);
            s.spawn(move || {
                let mut last = 0u64;
                let mut reads = 0u64;
                while !done.load(Ordering::Acquire) {
                    let now = if read == 0 {
                        h.snapshot().count()
                    } else {
                        h.count()
                    };
                    assert!(
                        now >= last,
                        "count went from {last} to {now} after {reads} reads"
                    );
                    last = now;
                    reads += 1;
                }
            });
        }
    });
    assert_eq!(h.count(), ROUNDS * 40_000);
}

#[test]
fn record_f64_converts_base_units_at_the_histograms_scale() {
    // Seconds at nanosecond resolution: 1/scale is an integer, so values
    // convert as exactly as the export divides (9 ms is 9 000 000 ns).
    let h = Histogram::builder().scale(1e-9).build().unwrap();
    assert_eq!(h.scale(), 1e-9);
    h.record_f64(0.009);
    h.record_f64(2.5e-9); // rounds to the nearest nanosecond: 3 (2.5 → 3)
    let s = h.snapshot();
    assert_eq!((s.count(), s.min(), s.sum()), (2, 3, 9_000_003));
    // A scale whose inverse is not an integer divides.
    let q = Histogram::builder().scale(0.3).build().unwrap();
    q.record_f64(0.9);
    assert_eq!(q.snapshot().sum(), 3);
    // The default scale is 1: record_f64 rounds to an integer.
    let one = Histogram::new();
    one.record_f64(41.6);
    assert_eq!(one.snapshot().max(), 42);
}

#[test]
fn record_f64_counts_and_clamps_what_it_cannot_record() {
    let h = Histogram::builder()
        .highest(1_000)
        .scale(1e-3)
        .build()
        .unwrap();
    h.record_f64(f64::NAN); // not recorded, invalid
    h.record_f64(-0.5); // recorded as 0, invalid
    h.record_f64(f64::NEG_INFINITY); // recorded as 0, invalid
    h.record_f64(-0.0); // zero: valid
    h.record_f64(f64::INFINITY); // clamped to the highest value
    h.record_f64(1e300); // clamped
    h.record_f64(0.5); // 500
    let s = h.snapshot();
    assert_eq!(h.invalid(), 3);
    assert_eq!(s.count(), 6);
    assert_eq!(s.clamped(), 2);
    assert_eq!(s.min(), 0);
    assert!(
        s.max() >= 1_000 && s.max() < 1_001 + 1_000 / 100,
        "{}",
        s.max()
    );
}

#[test]
fn a_scale_must_be_positive_and_finite() {
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert_eq!(
            Histogram::builder().scale(bad).build().unwrap_err(),
            metricz::HistogramError::InvalidScale,
            "{bad}"
        );
    }
}
