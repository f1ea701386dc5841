//! The recording paths never allocate: after a warm-up call on the calling
//! thread (which may allocate its thread index, a slot bucket or a cell),
//! `inc`, `add`, `get` and `take` on every counter strategy and `set`, `add`,
//! `get` etc. on both gauges make zero heap allocations.
//!
//! Allocations are counted by a wrapping global allocator, per thread and only
//! while the thread has counting switched on, so tests running in parallel
//! (and the harness's own threads) do not disturb each other's counts.

use metricz::strategy::{
    AdaptiveCounter, AtomicCounter, CounterStrategy, SingleWriterCounter, ThreadShardedCounter,
};
use metricz::{Counter, Gauge, Histogram, Timer, UpDownGauge};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::time::Duration;

/// [`System`], counting the calling thread's allocations while enabled.
struct CountingAlloc;

thread_local! {
    // `const` initialisers and types without `Drop`: accessing these never
    // allocates and registers no destructor, so the allocator cannot recurse.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation() {
    // `try_with`: the allocator may run while this thread's locals are torn
    // down; such allocations are simply not counted.
    let counting = COUNTING.try_with(Cell::get).unwrap_or(false);
    if counting {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees carry over; the counting touches only
// `const`-initialised thread-locals and never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded unchanged; the caller upholds the contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded unchanged; the caller upholds the contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; the caller upholds the contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Runs `f` and returns how many allocations the calling thread made in it.
fn allocations_in<R>(f: impl FnOnce() -> R) -> (usize, R) {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
    let result = f();
    COUNTING.with(|c| c.set(false));
    (ALLOCATIONS.with(Cell::get), result)
}

const ROUNDS: u64 = 1000;

/// Warms `c` up on this thread, then checks that `ROUNDS` rounds of
/// `inc`/`add`/`get` (and `take`) allocate nothing and still count exactly.
fn check_strategy<S: CounterStrategy>(c: &S) {
    c.inc();
    c.add(2);
    black_box(c.get());
    black_box(c.take());
    let (allocations, total) = allocations_in(|| {
        let mut total = 0u64;
        for _ in 0..ROUNDS {
            c.inc();
            c.add(3);
            total = total.wrapping_add(black_box(c.get()));
        }
        total
    });
    assert_eq!(allocations, 0, "{}: {allocations} allocations", S::NAME);
    // The loop did run: get read 4, 8, ..., 4 * ROUNDS.
    assert_eq!(total, 4 * ROUNDS * (ROUNDS + 1) / 2, "{}", S::NAME);
    let (allocations, taken) = allocations_in(|| {
        let mut taken = 0u64;
        for _ in 0..ROUNDS {
            c.inc();
            taken += c.take();
        }
        taken
    });
    assert_eq!(allocations, 0, "{}: take made {allocations}", S::NAME);
    assert_eq!(taken, 4 * ROUNDS + ROUNDS, "{}", S::NAME);
}

#[test]
fn hot_paths_do_not_allocate() {
    // The allocator does count on this thread, so a zero below means
    // something (also `constructing_a_counter_allocates`).
    let (allocations, v) = allocations_in(|| black_box(vec![1u8; 16]));
    assert!(allocations >= 1, "the counting allocator counted nothing");
    drop(v);

    check_strategy(&Counter::new());
    check_strategy(&Counter::with_shards(1));
    check_strategy(&Counter::with_shards(usize::MAX));
    check_strategy(&AtomicCounter::new());
    check_strategy(&ThreadShardedCounter::new());
    check_strategy(&AdaptiveCounter::new());
    check_strategy(&AdaptiveCounter::with_max_cells(1));
    check_strategy(&SingleWriterCounter::new());

    // Counter's inherent methods, not only the trait's.
    let c = Counter::new();
    c.inc();
    c.add(1);
    black_box(c.get());
    let (allocations, ()) = allocations_in(|| {
        for _ in 0..ROUNDS {
            Counter::inc(&c);
            Counter::add(&c, 2);
            black_box(Counter::get(&c));
        }
    });
    assert_eq!(allocations, 0, "Counter: {allocations} allocations");
    assert_eq!(c.get(), 2 + 3 * ROUNDS);

    // Clones share without allocating per use.
    let clone = c.clone();
    let (allocations, ()) = allocations_in(|| {
        for _ in 0..ROUNDS {
            clone.inc();
        }
    });
    assert_eq!(allocations, 0, "cloned Counter: {allocations} allocations");
    assert_eq!(c.get(), 2 + 4 * ROUNDS);

    let g = Gauge::new();
    g.set(1.0);
    g.add(1.0);
    g.inc();
    black_box(g.get());
    g.set(0.0);
    let (allocations, ()) = allocations_in(|| {
        for _ in 0..ROUNDS {
            g.inc();
            g.add(0.5);
            g.sub(0.25);
            g.dec();
            black_box(g.get());
        }
        g.set(black_box(g.get()) + 1.0);
    });
    assert_eq!(allocations, 0, "Gauge: {allocations} allocations");
    assert_eq!(g.get(), 0.25 * ROUNDS as f64 + 1.0);

    let u = UpDownGauge::new();
    u.inc();
    u.add(1);
    black_box(u.get());
    let (allocations, ()) = allocations_in(|| {
        for _ in 0..ROUNDS {
            u.inc();
            u.add(3);
            u.sub(2);
            u.dec();
            black_box(u.get());
        }
    });
    assert_eq!(allocations, 0, "UpDownGauge: {allocations} allocations");
    assert_eq!(u.get(), 2 + ROUNDS as i64);
}

#[test]
fn adaptive_inflated_hot_path_does_not_allocate() {
    // Inflate the counter with contending writers (bounded tries: inflation
    // needs a collision), then warm up this thread's cell and measure.
    let c = AdaptiveCounter::with_max_cells(4);
    for _ in 0..20 {
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..10_000 {
                        c.inc();
                    }
                });
            }
        });
        if c.cells_in_use() > 0 {
            break;
        }
    }
    let before = c.get();
    check_strategy(&c);
    // `check_strategy` ends with a take; the count is exact.
    assert_eq!(c.get(), 0);
    assert!(before > 0);
}

#[test]
fn constructing_a_counter_allocates() {
    // Shows the counting allocator works: a `Counter` owns a heap shard array.
    let (allocations, c) = allocations_in(|| Counter::with_shards(4));
    assert!(allocations >= 1, "Counter::with_shards made no allocation");
    let (allocations, c2) = allocations_in(Counter::new);
    assert!(allocations >= 1, "Counter::new made no allocation");
    // And dropping or cloning is not counted as an allocation.
    let (allocations, clone) = allocations_in(|| c.clone());
    assert_eq!(allocations, 0, "Counter::clone allocated");
    drop((c, c2, clone));
}

/// Values (ns) spread over several count blocks of the default layout.
const HISTOGRAM_VALUES: [u64; 6] = [1, 1_000, 25_000, 1_000_000, 40_000_000, 2_000_000_000];

#[test]
fn histogram_record_does_not_allocate_once_blocks_exist() {
    // One shard, so a migration to another CPU cannot allocate a new shard.
    let h = Histogram::builder().shards(1).build().unwrap();
    let t = Timer::from_histogram(Histogram::builder().shards(1).build().unwrap());
    // Warm up: the shards and every block the loop below touches.
    for &v in &HISTOGRAM_VALUES {
        h.record(v);
        t.record(Duration::from_nanos(v));
    }
    h.record(u64::MAX);
    let (allocations, ()) = allocations_in(|| {
        for round in 0..ROUNDS {
            for &v in &HISTOGRAM_VALUES {
                h.record(black_box(v));
                h.record_n(black_box(v), black_box(round % 5));
                t.record(black_box(Duration::from_nanos(v)));
            }
            // Clamped values land in the (warmed) highest block.
            h.record(black_box(u64::MAX));
        }
    });
    assert_eq!(
        allocations, 0,
        "Histogram/Timer record: {allocations} allocations"
    );
    let per_value = 1 + ROUNDS + (0..ROUNDS).map(|r| r % 5).sum::<u64>();
    let s = h.snapshot();
    assert_eq!(
        s.count(),
        per_value * HISTOGRAM_VALUES.len() as u64 + 1 + ROUNDS
    );
    assert_eq!(s.clamped(), 1 + ROUNDS);
    assert_eq!(
        t.snapshot().count(),
        (1 + ROUNDS) * HISTOGRAM_VALUES.len() as u64
    );

    // `record_f64` at a scale (seconds at nanosecond resolution), invalid
    // values included.
    let f = Histogram::builder().shards(1).scale(1e-9).build().unwrap();
    for &v in &HISTOGRAM_VALUES {
        f.record(v);
    }
    f.record(0);
    f.record(u64::MAX);
    let (allocations, ()) = allocations_in(|| {
        for _ in 0..ROUNDS {
            for &v in &HISTOGRAM_VALUES {
                f.record_f64(black_box(v as f64 * 1e-9));
            }
            f.record_f64(black_box(f64::NAN));
            f.record_f64(black_box(-1.0));
            f.record_f64(black_box(f64::INFINITY));
        }
    });
    assert_eq!(
        allocations, 0,
        "Histogram::record_f64: {allocations} allocations"
    );
    assert_eq!(f.invalid(), 2 * ROUNDS);
}

/// A histogram with a shard per CPU (restartable-sequence records where
/// the process has them): once every CPU's blocks and carry blocks exist,
/// records allocate nothing, and neither does `take_interval_into` once
/// the first take allocated the baseline.
#[test]
fn histogram_per_cpu_records_and_intervals_do_not_allocate() {
    let h = Histogram::new();
    // Every CPU's shard, blocks and carry blocks (a record of 2^15 at once
    // moves the count into its carry word).
    on_every_cpu(|| {
        for &v in &HISTOGRAM_VALUES {
            h.record_n(v, 1 << 15);
        }
    });
    let mut interval = h.take_interval();
    let warm = interval.count();
    let mut taken = 0;
    let (allocations, ()) = allocations_in(|| {
        for round in 0..ROUNDS {
            for &v in &HISTOGRAM_VALUES {
                h.record(black_box(v));
                h.record_n(black_box(v), black_box(round % 5));
            }
            if round % 100 == 0 {
                h.take_interval_into(&mut interval);
                taken += interval.count();
            }
        }
    });
    assert_eq!(
        allocations, 0,
        "per-CPU Histogram record/take_interval_into: {allocations} allocations"
    );
    let per_value = ROUNDS + (0..ROUNDS).map(|r| r % 5).sum::<u64>();
    assert_eq!(
        warm,
        ((cpus_allowed().len() * HISTOGRAM_VALUES.len()) as u64) << 15
    );
    assert_eq!(
        taken + h.snapshot().count(),
        per_value * HISTOGRAM_VALUES.len() as u64
    );
}

#[test]
fn histogram_record_in_a_new_block_allocates() {
    let h = Histogram::builder().shards(1).build().unwrap();
    // The first record allocates the shard and its block.
    let (allocations, ()) = allocations_in(|| h.record(black_box(1_000)));
    assert!(
        allocations >= 2,
        "first record made {allocations} allocations"
    );
    // Same block: none. A block not yet used: exactly one.
    let (allocations, ()) = allocations_in(|| h.record(black_box(1_001)));
    assert_eq!(allocations, 0);
    assert!(!h.block_allocated_for(50_000_000));
    let (allocations, ()) = allocations_in(|| h.record_n(black_box(50_000_000), 3));
    assert_eq!(allocations, 1, "a record in a new block");
    assert!(h.block_allocated_for(50_000_000));

    let t = Timer::from_histogram(Histogram::builder().shards(1).build().unwrap());
    t.record(Duration::from_micros(1));
    let (allocations, ()) = allocations_in(|| t.record(black_box(Duration::from_secs(10))));
    assert_eq!(allocations, 1, "a timer record in a new block");
    assert_eq!(h.snapshot().count(), 5);
    assert_eq!(t.snapshot().count(), 2);
}

#[test]
fn rate_mark_does_not_allocate() {
    let rate = metricz::Rate::with_window(std::time::Duration::from_secs(60), 60).unwrap();
    rate.mark(); // warm: CPU lookup on this thread
    let (allocations, counted) = allocations_in(|| {
        for _ in 0..ROUNDS {
            rate.mark();
            rate.mark_n(2);
        }
        rate.count_in_window()
    });
    assert_eq!(allocations, 0, "Rate::mark allocated");
    assert_eq!(counted, 1 + 3 * ROUNDS);
}

#[test]
fn registry_lookup_of_an_existing_series_does_not_allocate() {
    let reg = metricz::Registry::new();
    let family = reg
        .counter_vec("requests_total", "Requests.", &["method", "status"])
        .unwrap();
    // Warm up: creates the series, this thread's epoch handle, its counter
    // shard.
    for _ in 0..3 {
        family.with(&["GET", "200"]).unwrap().inc();
    }
    // Other series, so the probe has neighbours to compare against.
    for status in ["201", "404", "500"] {
        family.with(&["GET", status]).unwrap().inc();
    }
    let (allocations, ()) = allocations_in(|| {
        for _ in 0..ROUNDS {
            family.with(black_box(&["GET", "200"])).unwrap().inc();
        }
    });
    assert_eq!(
        allocations, 0,
        "Family::with + inc of an existing series: {allocations} allocations"
    );
    // Every lookup found the same series: none created, all counted.
    assert_eq!(family.len(), 4);
    assert_eq!(family.with(&["GET", "200"]).unwrap().get(), 3 + ROUNDS);

    // The first lookup of a new series does allocate (its node, its owned
    // label values), and later ones of it do not.
    let (allocations, ()) = allocations_in(|| family.with(&["POST", "200"]).unwrap().inc());
    assert!(
        allocations >= 1,
        "creating a series made {allocations} allocations"
    );
    assert_eq!(family.len(), 5);
    let (allocations, ()) = allocations_in(|| family.with(&["POST", "200"]).unwrap().inc());
    assert_eq!(allocations, 0);
    assert_eq!(family.with(&["POST", "200"]).unwrap().get(), 2);

    // Non-string label values are formatted on the stack: a tuple with an
    // integer, a slice, an array of integers, a `display`ed value, and the
    // owned handle and `with_fn` forms.
    let codes = reg
        .counter_vec("codes_total", "Codes.", &["code", "ok"])
        .unwrap();
    codes.with(&(200u16, true)).unwrap().inc();
    let method = String::from("GET");
    let (allocations, ()) = allocations_in(|| {
        for _ in 0..ROUNDS {
            codes.with(black_box(&(200u16, true))).unwrap().inc();
            codes.with(black_box(&["200", "true"][..])).unwrap().inc();
            codes
                .find(black_box(&["200", "true"]))
                .unwrap()
                .unwrap()
                .inc();
            codes.with_fn(&(200, true), |c| c.inc()).unwrap();
            family
                .with(&(metricz::registry::display(&method), 200))
                .unwrap()
                .inc();
        }
    });
    assert_eq!(
        allocations, 0,
        "non-string label values: {allocations} allocations"
    );
    assert_eq!(
        codes.find(&["200", "true"]).unwrap().unwrap().get(),
        1 + 4 * ROUNDS
    );
    assert_eq!(
        family.find(&["GET", "200"]).unwrap().unwrap().get(),
        3 + 2 * ROUNDS
    );
}

#[test]
fn operation_recorder_steady_state_does_not_allocate() {
    let reg = metricz::Registry::new();
    let ops = metricz::registry::OperationRecorder::new(&reg, "svc").unwrap();
    let d = std::time::Duration::from_micros(250);
    // Cold start: the first use of each combination creates its series.
    let (cold, ()) = allocations_in(|| {
        ops.record_operation("get", "ok", d);
        ops.record_operation("get", "error", d);
        ops.record_error("get", "timeout", "transient");
    });
    assert!(cold > 0, "creating series should allocate");
    // A timer's per-CPU shard is allocated on its CPU's first record: warm
    // every CPU, so a migration during the measured loop cannot allocate.
    on_every_cpu(|| {
        ops.record_operation("get", "ok", d);
        ops.record_operation("get", "error", d);
    });
    let warm = cpus_allowed().len() as u64;
    let (allocations, ()) = allocations_in(|| {
        for _ in 0..ROUNDS {
            ops.record_operation("get", "ok", d);
            ops.record_operation("get", "error", d);
            ops.record_error("get", "timeout", "transient");
        }
    });
    assert_eq!(allocations, 0, "steady-state recording allocated");
    assert_eq!(
        ops.operations().with(&["get", "ok"]).unwrap().get(),
        1 + ROUNDS + warm
    );
    assert_eq!(
        ops.durations()
            .with(&["get", "error"])
            .unwrap()
            .snapshot()
            .count(),
        1 + ROUNDS + warm
    );
}

/// Encoding an unchanged registry into a warm buffer allocates nothing, in
/// both text formats: the family list, each family's sorted series and the
/// bucket buffers are reused, and numbers go through itoa/ryu on the stack.
/// A change to the set of series makes the next encode re-collect.
#[test]
fn warm_encode_does_not_allocate() {
    let reg = metricz::Registry::new();
    let requests = reg
        .counter_vec("requests_total", "Requests.", &["method", "status"])
        .unwrap();
    let temperature = reg.gauge_vec("temperature", "Temp.", &["room"]).unwrap();
    let sizes = reg.histogram_vec("size_bytes", "Sizes.", &["op"]).unwrap();
    let latency = reg
        .timer_vec("request_duration_seconds", "Latency.", &["op"])
        .unwrap();
    let plain = reg.counter("plain_total", "Plain.").unwrap();
    for i in 0..200u64 {
        let (m, s) = (format!("m{}", i % 7), format!("s\"{i}\\\n"));
        requests.with(&[&m, &s]).unwrap().add(i);
        temperature
            .with(&[&format!("r{i}")])
            .unwrap()
            .set(i as f64 / 3.0);
        sizes
            .with(&[&format!("o{}", i % 5)])
            .unwrap()
            .record(i * 1000);
        latency
            .with(&[&format!("o{}", i % 3)])
            .unwrap()
            .record(Duration::from_micros(i * 37));
    }
    plain.inc();
    for format in [
        metricz::export::Format::Prometheus,
        metricz::export::Format::OpenMetrics,
    ] {
        let mut buf = String::new();
        reg.encode(format, &mut buf).unwrap();
        reg.encode(format, &mut buf).unwrap();
        let warm_len = buf.len() / 2;
        // Values change; the set of series does not.
        requests.with(&["m0", "s\"0\\\n"]).unwrap().add(5);
        temperature.with(&["r1"]).unwrap().set(-1.5);
        let (n, ()) = allocations_in(|| {
            buf.clear();
            reg.encode(format, &mut buf).unwrap();
        });
        assert_eq!(n, 0, "{format:?}: warm encode allocated {n} times");
        assert!(buf.len() >= warm_len - 16 && buf.contains("requests_total"));
    }
    // The protobuf exposition, native histograms derived per series.
    let mut bytes = Vec::new();
    reg.encode_protobuf(&mut bytes);
    reg.encode_protobuf(&mut bytes);
    let warm_len = bytes.len() / 2;
    requests.with(&["m0", "s\"0\\\n"]).unwrap().add(5);
    let (n, ()) = allocations_in(|| {
        bytes.clear();
        reg.encode_protobuf(&mut bytes);
    });
    assert_eq!(n, 0, "protobuf: warm encode allocated {n} times");
    assert!(bytes.len() >= warm_len - 16);
    // The walk itself, reading every value and bucket count, as any
    // encoder does.
    let walk = || {
        let mut total = 0u64;
        reg.collect(|family| {
            family.for_each_series(|series| {
                total += series
                    .labels()
                    .iter()
                    .map(|(n, v)| n.len() + v.len())
                    .sum::<usize>() as u64;
                match series.into_value() {
                    metricz::registry::Value::Counter(n) => total += n,
                    metricz::registry::Value::Gauge(x) => total += x as u64,
                    metricz::registry::Value::Distribution(mut d) => {
                        total += d.buckets().cumulative().map(|(_, n)| n).sum::<u64>();
                    }
                }
                Ok::<(), ()>(())
            })
        })
        .unwrap();
        total
    };
    walk();
    let (n, total) = allocations_in(walk);
    assert_eq!(n, 0, "a warm walk allocated {n} times");
    assert!(total > 0);
    // A new series and a removed one: the next encode re-collects the
    // family (in label order), the kept order is not reused.
    requests.with(&["a", "first"]).unwrap().inc();
    assert!(requests.remove(&["m1", "s\"1\\\n"]).unwrap());
    let mut buf = String::new();
    reg.encode_prometheus(&mut buf).unwrap();
    let first = buf.find("requests_total{method=\"a\",status=\"first\"} 1\n");
    let old_first = buf.find("requests_total{method=\"m0\"");
    assert!(first.is_some() && first < old_first, "{buf}");
    assert!(
        !buf.contains("requests_total{method=\"m1\",status=\"s\\\"1\\\\\\n\"}"),
        "{buf}"
    );
    // The same form of a series still there is found.
    assert!(
        buf.contains("requests_total{method=\"m2\",status=\"s\\\"2\\\\\\n\"} 2\n"),
        "{buf}"
    );
}

/// A warm StatsD encode (the same series as the encode before, values
/// changed) allocates nothing, in plain StatsD and DogStatsD, overflow
/// series and the overflow report included: the deltas lend the encode
/// their reused line buffers, each series key is written into them, and
/// baselines are found by `&str`. Histograms and timers are left out: each
/// of their series takes a snapshot, which allocates its counts.
#[test]
fn warm_statsd_encode_does_not_allocate() {
    use metricz::export::statsd::{self, Deltas, StatsdFormat};
    let reg = metricz::Registry::with_cardinality_limit(100);
    let jobs = reg
        .counter_vec("jobs_total", "Jobs.", &["queue", "note"])
        .unwrap();
    let temperature = reg.gauge_vec("temperature", "Temp.", &["room"]).unwrap();
    let plain = reg.counter("plain_total", "Plain.").unwrap();
    let balance = reg.gauge("balance", "Balance.").unwrap();
    for i in 0..100u64 {
        let (q, note) = (format!("q{i}"), format!("n|{i}:,\n"));
        jobs.with(&[&q, &note]).unwrap().add(i + 1);
        temperature
            .with(&[&format!("r {i}")])
            .unwrap()
            .set(i as f64 / 3.0);
    }
    // Past the limit: the overflow series and the overflow report.
    jobs.with(&["over", "flow"]).unwrap().add(4);
    temperature.with(&["over"]).unwrap().set(1.0);
    plain.add(7);
    balance.set(-2.5);
    for format in [
        StatsdFormat::new().prefix("app"),
        StatsdFormat::new().dogstatsd(true).tag("env", "prod"),
    ] {
        let mut deltas = Deltas::new();
        let mut buf = String::new();
        statsd::encode(&reg, &format, &mut deltas, &mut buf);
        buf.clear();
        statsd::encode(&reg, &format, &mut deltas, &mut buf);
        // Values change; the set of series does not.
        jobs.with(&["q3", "n|3:,\n"]).unwrap().add(5);
        jobs.with(&["late", "arrival"]).unwrap().inc(); // overflow
        plain.inc();
        temperature.with(&["r 1"]).unwrap().set(-1.5);
        let (n, ()) = allocations_in(|| {
            buf.clear();
            statsd::encode(&reg, &format, &mut deltas, &mut buf);
        });
        assert_eq!(n, 0, "{format:?}: warm encode allocated {n} times");
        let overflow = if format.is_dogstatsd() {
            "metricz_cardinality_overflow_total:1|c|#env:prod,family:jobs_total\n"
        } else {
            "app.metricz_cardinality_overflow_total.jobs_total:1|c\n"
        };
        assert!(buf.contains(overflow), "{buf}");
        assert!(
            buf.contains("plain_total:1|c") && buf.contains(":5|c"),
            "{buf}"
        );
        assert_eq!(deltas.len(), 104, "{buf}");
    }
}

/// An idle-eviction pass that evicts nothing allocates nothing, histogram
/// and timer series included (their activity is read without a snapshot),
/// and so does a warm encode with eviction on.
#[test]
fn eviction_pass_does_not_allocate() {
    let reg = metricz::Registry::new();
    let sizes = reg.histogram_vec("size_bytes", "Sizes.", &["op"]).unwrap();
    let latency = reg
        .timer_vec("request_duration_seconds", "Latency.", &["op"])
        .unwrap();
    let hits = reg.counter_vec("hits_total", "Hits.", &["op"]).unwrap();
    for i in 0..50u64 {
        let op = format!("o{i}");
        sizes.with(&[&op]).unwrap().record(i * 1000 + 1);
        latency
            .with(&[&op])
            .unwrap()
            .record(Duration::from_micros(i + 1));
        hits.with(&[&op]).unwrap().inc();
    }
    // Idle only after 1000 unchanged passes: these passes evict nothing.
    reg.set_idle_eviction(1000);
    let mut buf = String::new();
    reg.encode_prometheus(&mut buf).unwrap();
    reg.encode_prometheus(&mut buf).unwrap();
    sizes.with(&["o1"]).unwrap().record(5);
    let (n, evicted) = allocations_in(|| reg.evict_idle());
    assert_eq!(evicted, 0);
    assert_eq!(n, 0, "an eviction pass allocated {n} times");
    let (n, ()) = allocations_in(|| {
        buf.clear();
        reg.encode_prometheus(&mut buf).unwrap();
    });
    assert_eq!(n, 0, "a warm encode with eviction on allocated {n} times");
    assert!(buf.contains("size_bytes_count{op=\"o1\"} 2\n"), "{buf}");
}

/// The CPUs this thread may run on.
fn cpus_allowed() -> Vec<usize> {
    // SAFETY: `set` is a plain bit set the kernel fills; size matches.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
            0
        );
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

/// Runs `f` once pinned to each allowed CPU, then restores the affinity.
fn on_every_cpu(mut f: impl FnMut()) {
    let allowed = cpus_allowed();
    let set_to = |cpus: &[usize]| {
        // SAFETY: as in `cpus_allowed`; the set is built with the libc
        // macros and passed with its size.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for &cpu in cpus {
                libc::CPU_SET(cpu, &mut set);
            }
            assert_eq!(
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set),
                0
            );
        }
    };
    for &cpu in &allowed {
        set_to(&[cpu]);
        f();
    }
    set_to(&allowed);
}

/// The `metrics` facade's hot path: `counter!`, `gauge!` and `histogram!`
/// on an existing key allocate nothing in metricz's recorder, with static
/// labels (the macro makes a static key) and with runtime labels (the
/// macro itself builds the key in a `Vec`, one allocation per call with or
/// without a recorder: the recorder adds none, compared with `metrics`'
/// no-op recorder; and `register_counter` on a built key makes none).
#[test]
fn facade_existing_keys_do_not_allocate() {
    use metrics::{counter, gauge, histogram, with_local_recorder, Key, Label, Recorder as _};

    let registry = metricz::Registry::new();
    let recorder = metricz::facade::Recorder::new(registry.clone());
    // A value the optimiser cannot see: the runtime-label form of the macro.
    let status: &'static str = black_box("200");
    let calls = || {
        counter!("r_total", "method" => "GET", "status" => "200").increment(1);
        counter!("r_total", "method" => "POST", "status" => status).increment(1);
        gauge!("depth").set(3.0);
        histogram!("latency_seconds").record(0.25);
    };
    // Creates the series and this thread's cache entries; the histogram's
    // shard on each CPU is allocated by its first record there.
    with_local_recorder(&recorder, || on_every_cpu(calls));
    let (ours, ()) = allocations_in(|| {
        with_local_recorder(&recorder, || {
            for _ in 0..ROUNDS {
                calls();
            }
        })
    });
    let noop = metrics::NoopRecorder;
    let (baseline, ()) = allocations_in(|| {
        with_local_recorder(&noop, || {
            for _ in 0..ROUNDS {
                calls();
            }
        })
    });
    // The macro's own label `Vec` for the runtime form: one per call.
    assert_eq!(baseline, ROUNDS as usize, "the macro's own allocations");
    assert_eq!(
        ours,
        baseline,
        "the recorder allocated {} times",
        ours - baseline
    );

    // The recorder's part alone, on a key built beforehand.
    let key = Key::from_parts(
        "r_total",
        vec![Label::new("status", status), Label::new("method", "POST")],
    );
    let meta = metrics::Metadata::new("alloc", metrics::Level::INFO, None);
    let (direct, ()) = allocations_in(|| {
        for _ in 0..ROUNDS {
            recorder.register_counter(&key, &meta).increment(1);
        }
    });
    assert_eq!(direct, 0, "register_counter allocated {direct} times");

    let warm = cpus_allowed().len() as u64;
    let family = registry
        .counter_vec("r_total", "", &["method", "status"])
        .unwrap();
    assert_eq!(
        family.find(&["GET", "200"]).unwrap().map(|c| c.get()),
        Some(warm + ROUNDS)
    );
    assert_eq!(
        family.find(&["POST", "200"]).unwrap().map(|c| c.get()),
        Some(warm + 2 * ROUNDS)
    );
    assert_eq!(
        registry.histogram("latency_seconds", "").unwrap().count(),
        warm + ROUNDS
    );
}
