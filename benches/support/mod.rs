//! Shared by the benches and `examples/contention/`: the counter peers
//! and baselines wrapped in [`CounterStrategy`], the histogram peers
//! wrapped in [`HistogramStrategy`] with the table of values they all
//! record, the labelled-counter families wrapped in [`FamilyStrategy`],
//! the timed thread runner, and (in [`facade`]) the `metrics` facade's
//! recorders wrapped in [`facade::FacadeStrategy`].
//!
//! Baselines that do not belong in the library live here: a `Mutex<u64>` and
//! the channel design from the metricz docs (every increment a message to one
//! aggregator thread).

#![allow(dead_code, unreachable_pub)]

use metricz::strategy::CounterStrategy;
use rayon::ThreadPool;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub mod facade;

/// Calls `$m!` with every counter the study and the benches sweep: the
/// metricz strategies, then the peers, then the baselines.
#[allow(unused_macros)] // each target uses one of the two lists
macro_rules! for_each_counter {
    ($m:ident) => {
        $m!(
            metricz::strategy::AtomicCounter,
            metricz::Counter,
            metricz::strategy::LockedPerCpuCounter,
            metricz::strategy::RseqCounter,
            metricz::strategy::ThreadShardedCounter,
            metricz::strategy::AdaptiveCounter,
            metricz::strategy::SingleWriterCounter,
            $crate::support::PromIntCounter,
            $crate::support::PromClientCounter,
            $crate::support::MutexCounter,
            $crate::support::ChannelCounter
        )
    };
}
#[allow(unused_imports)]
pub(crate) use for_each_counter;

/// `prometheus::IntCounter`: one shared `AtomicU64` behind an `Arc`.
#[derive(Debug)]
pub struct PromIntCounter(prometheus::IntCounter);

impl Default for PromIntCounter {
    fn default() -> Self {
        PromIntCounter(prometheus::IntCounter::new("bench_total", "Bench.").expect("valid name"))
    }
}

impl CounterStrategy for PromIntCounter {
    const NAME: &'static str = "prometheus";

    #[inline]
    fn inc(&self) {
        self.0.inc();
    }

    #[inline]
    fn add(&self, n: u64) {
        self.0.inc_by(n);
    }

    fn get(&self) -> u64 {
        self.0.get()
    }

    fn take(&self) -> u64 {
        // prometheus has no atomic read-and-reset: increments between the
        // read and the reset are lost. Peers' `take` is never timed or used
        // by the study; it exists only to satisfy the trait.
        let value = self.0.get();
        self.0.reset();
        value
    }
}

/// `prometheus_client::metrics::counter::Counter<u64>`: one shared
/// `AtomicU64` behind an `Arc`.
#[derive(Debug, Default)]
pub struct PromClientCounter(prometheus_client::metrics::counter::Counter<u64>);

impl CounterStrategy for PromClientCounter {
    const NAME: &'static str = "prometheus-client";

    #[inline]
    fn inc(&self) {
        self.0.inc();
    }

    #[inline]
    fn add(&self, n: u64) {
        self.0.inc_by(n);
    }

    fn get(&self) -> u64 {
        self.0.get()
    }

    fn take(&self) -> u64 {
        // prometheus-client counters cannot be reset; never called by the
        // study or the benches.
        unimplemented!("prometheus-client counters cannot be reset")
    }
}

/// A `Mutex<u64>`: the lock every increment would take without atomics.
#[derive(Debug, Default)]
pub struct MutexCounter(Mutex<u64>);

impl MutexCounter {
    fn lock(&self) -> std::sync::MutexGuard<'_, u64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl CounterStrategy for MutexCounter {
    const NAME: &'static str = "mutex";

    #[inline]
    fn add(&self, n: u64) {
        let mut value = self.lock();
        *value = value.wrapping_add(n);
    }

    fn get(&self) -> u64 {
        *self.lock()
    }

    fn take(&self) -> u64 {
        std::mem::take(&mut *self.lock())
    }
}

enum Message {
    Add(u64),
    Get(mpsc::SyncSender<u64>),
    Take(mpsc::SyncSender<u64>),
}

/// The channel design: every increment is a message on a bounded channel to
/// one aggregator thread that owns the total. Bounded (1024 messages), so
/// writers that outrun the aggregator wait for it and the measured rate is the
/// rate increments are actually counted.
#[derive(Debug)]
pub struct ChannelCounter {
    tx: Option<mpsc::SyncSender<Message>>,
    aggregator: Option<JoinHandle<()>>,
}

impl Default for ChannelCounter {
    fn default() -> Self {
        let (tx, rx) = mpsc::sync_channel(1024);
        let aggregator = std::thread::spawn(move || {
            let mut total = 0u64;
            for message in rx {
                match message {
                    Message::Add(n) => total = total.wrapping_add(n),
                    Message::Get(reply) => {
                        let _ = reply.send(total);
                    }
                    Message::Take(reply) => {
                        let _ = reply.send(std::mem::take(&mut total));
                    }
                }
            }
        });
        ChannelCounter {
            tx: Some(tx),
            aggregator: Some(aggregator),
        }
    }
}

impl ChannelCounter {
    fn send(&self, message: Message) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(message);
        }
    }

    /// Asks the aggregator; it answers after every message sent before.
    fn ask(&self, make: fn(mpsc::SyncSender<u64>) -> Message) -> u64 {
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(make(reply));
        answer.recv().unwrap_or(0)
    }
}

impl CounterStrategy for ChannelCounter {
    const NAME: &'static str = "channel";

    #[inline]
    fn add(&self, n: u64) {
        self.send(Message::Add(n));
    }

    fn get(&self) -> u64 {
        self.ask(Message::Get)
    }

    fn take(&self) -> u64 {
        self.ask(Message::Take)
    }
}

impl Drop for ChannelCounter {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(aggregator) = self.aggregator.take() {
            let _ = aggregator.join();
        }
    }
}

/// A start barrier that releases every thread at once: the last to arrive
/// flips a flag the others are spinning on (yielding between checks, so
/// oversubscribed runs still make progress). `std::sync::Barrier` instead
/// wakes sleepers one by one through a condvar, and that wake-up skew would
/// land inside the timed window.
struct StartGate {
    arrived: AtomicUsize,
    open: AtomicBool,
    threads: usize,
}

impl StartGate {
    fn new(threads: usize) -> Self {
        StartGate {
            arrived: AtomicUsize::new(0),
            open: AtomicBool::new(false),
            threads,
        }
    }

    fn wait(&self) {
        // AcqRel/Release–Acquire: the last arrival's store of `open` pairs
        // with the spinners' loads (no data is published through it; the
        // orderings only keep the gate from opening early).
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
            self.open.store(true, Ordering::Release);
            return;
        }
        let mut spins = 0u32;
        while !self.open.load(Ordering::Acquire) {
            if spins < 1_000 {
                std::hint::spin_loop();
                spins += 1;
            } else {
                std::thread::yield_now();
            }
        }
    }
}

/// Runs `setup` on every thread of `pool`, then `warm` untimed and `ops`
/// timed calls of `op` on that thread's state, and returns the wall time from
/// the first timed start to the last timed end, with every thread's state in
/// thread-index order.
///
/// The pool is built by the caller, outside any timed region. `setup` (which
/// gets the thread's index) and the warm-up run before a barrier, so per-thread
/// state is built and warm before any timing, the timed loops start together,
/// and the result is steady-state throughput.
pub fn timed_run_with<T, S, O>(
    pool: &ThreadPool,
    warm: u64,
    ops: u64,
    setup: S,
    op: O,
) -> (Duration, Vec<T>)
where
    T: Send,
    S: Fn(usize) -> T + Sync,
    O: Fn(&mut T) + Sync,
{
    timed_run_in(pool, warm, ops, setup, op, |body| body())
}

/// [`timed_run_with`], each thread's warm-up and timed loop running inside
/// `around` (which must call the body it is given once): e.g. with a
/// thread-local recorder set for the whole loop.
pub fn timed_run_in<T, S, O, A>(
    pool: &ThreadPool,
    warm: u64,
    ops: u64,
    setup: S,
    op: O,
    around: A,
) -> (Duration, Vec<T>)
where
    T: Send,
    S: Fn(usize) -> T + Sync,
    O: Fn(&mut T) + Sync,
    A: Fn(&mut dyn FnMut()) + Sync,
{
    let gate = StartGate::new(pool.current_num_threads());
    let runs = pool.broadcast(|ctx| {
        let mut state = setup(ctx.index());
        let mut times = None;
        around(&mut || {
            for _ in 0..warm {
                op(&mut state);
            }
            gate.wait();
            let start = Instant::now();
            for _ in 0..ops {
                op(&mut state);
            }
            times = Some((start, Instant::now()));
        });
        let (start, end) = times.expect("`around` runs the body");
        (start, end, state)
    });
    let start = runs.iter().map(|r| r.0).min().expect("at least one thread");
    let end = runs.iter().map(|r| r.1).max().expect("at least one thread");
    (end - start, runs.into_iter().map(|r| r.2).collect())
}

/// Runs `warm` untimed then `ops` timed increments of `counter` on every
/// thread of `pool` at once, and returns the wall time from the first timed
/// start to the last timed end: [`timed_run_with`] with no per-thread state.
pub fn timed_run<S: CounterStrategy>(
    pool: &ThreadPool,
    counter: &S,
    warm: u64,
    ops: u64,
) -> Duration {
    // The per-thread state is the reference itself: held in a register, so
    // the loop compiles as a direct loop over `counter.inc()` would.
    timed_run_with(pool, warm, ops, |_| counter, |counter| counter.inc()).0
}

/// The criterion settings every bench file uses: short warm-up and
/// measurement, 20 samples (each sample is a whole barrier-started run).
pub fn criterion_config() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

/// The CPUs this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The thread counts a sweep covers: 1, 2, 4, … up to twice the cores
/// (points beyond the core count are oversubscribed).
pub fn thread_counts() -> Vec<usize> {
    let max = 2 * cores();
    let mut threads = vec![1];
    while threads[threads.len() - 1] < max {
        threads.push((threads[threads.len() - 1] * 2).min(max));
    }
    threads
}

/// A rayon pool of exactly `threads` threads.
pub fn pool(threads: usize) -> ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("metricz-bench-{i}"))
        .build()
        .expect("thread pool")
}

/// Calls `$m!` with every histogram the study and the benches sweep: metricz,
/// then `hdrhistogram` one per thread, behind a mutex and through its own
/// concurrent path (`SyncHistogram` + a `Recorder` per thread), then the
/// peers.
#[allow(unused_macros)] // each target uses one of the two lists
macro_rules! for_each_histogram {
    ($m:ident) => {
        $m!(
            metricz::Histogram,
            $crate::support::HdrPerThread,
            $crate::support::HdrMutex,
            $crate::support::HdrSync,
            $crate::support::PromHistogram,
            $crate::support::PromClientHistogram,
            $crate::support::MetricsHistogram
        )
    };
}
#[allow(unused_imports)]
pub(crate) use for_each_histogram;

/// Length of the table of recorded values (a power of two).
pub const VALUES_LEN: usize = 4096;
/// Smallest value in the table: 1 µs in ns.
pub const VALUE_MIN: u64 = 1_000;
/// Largest value in the table: 100 ms in ns.
pub const VALUE_MAX: u64 = 100_000_000;

/// The values every histogram records: [`VALUES_LEN`] values log-uniform in
/// [`VALUE_MIN`]`..=`[`VALUE_MAX`] (1 µs–100 ms in ns), drawn once from
/// splitmix64 with a fixed seed, so every implementation and every run
/// records the same sequence.
pub fn values() -> &'static [u64; VALUES_LEN] {
    static TABLE: OnceLock<[u64; VALUES_LEN]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut state = 0x6d65_7472_6963_7a21_u64; // "metricz!"
        let (lo, hi) = ((VALUE_MIN as f64).ln(), (VALUE_MAX as f64).ln());
        let mut table = [0; VALUES_LEN];
        for v in &mut table {
            // splitmix64
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            let unit = (z >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
            *v = ((lo + unit * (hi - lo)).exp().round() as u64).clamp(VALUE_MIN, VALUE_MAX);
        }
        table
    })
}

/// A thread's walk through [`values`]: a per-thread counter indexes the
/// table; threads start at different offsets so they do not record the same
/// value at the same moment.
#[derive(Debug)]
pub struct ValueCursor {
    table: &'static [u64; VALUES_LEN],
    next: usize,
}

impl ValueCursor {
    /// The cursor of thread `index`.
    pub fn new(index: usize) -> Self {
        ValueCursor {
            table: values(),
            next: index.wrapping_mul(997),
        }
    }

    /// The next value.
    #[inline]
    pub fn next_value(&mut self) -> u64 {
        let value = self.table[self.next & (VALUES_LEN - 1)];
        self.next = self.next.wrapping_add(1);
        value
    }
}

/// A histogram implementation as the study and the benches drive it.
pub trait HistogramStrategy: Sync + Sized {
    /// Its name in tables, CSV and plots.
    const NAME: &'static str;
    /// What each thread owns, built on that thread before the warm-up.
    type Local: Send;

    /// A fresh, empty series.
    fn build() -> Self;

    /// A thread's own part (nothing for shared implementations).
    fn local(&self) -> Self::Local;

    /// Records `value` (in ns).
    fn record(&self, local: &mut Self::Local, value: u64);

    /// Values recorded, counting every thread's part, where the
    /// implementation can say.
    fn count(&self, locals: &[Self::Local]) -> Option<u64>;

    /// Bytes the series holds after `records` records, measured where the
    /// implementation reports it and estimated otherwise (see each impl).
    fn bytes(&self, locals: &[Self::Local], records: u64) -> usize;
}

/// Runs `warm` untimed then `ops` timed records of `histogram` on every
/// thread of `pool`, each thread walking [`values`] with its own
/// [`ValueCursor`]; returns the wall time and every thread's part.
pub fn timed_record<H: HistogramStrategy>(
    pool: &ThreadPool,
    histogram: &H,
    warm: u64,
    ops: u64,
) -> (Duration, Vec<H::Local>) {
    // The reference travels in the per-thread state, as in `timed_run`, so
    // the loop keeps it in a register.
    let (elapsed, states) = timed_run_with(
        pool,
        warm,
        ops,
        |index| (histogram, histogram.local(), ValueCursor::new(index)),
        |(histogram, local, cursor)| histogram.record(local, cursor.next_value()),
    );
    (elapsed, states.into_iter().map(|s| s.1).collect())
}

/// The configuration every HDR histogram here uses: metricz's default, 1 ns
/// to one hour at 3 significant figures.
fn hdr() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(
        metricz::histogram::DEFAULT_LOWEST,
        metricz::histogram::DEFAULT_HIGHEST,
        metricz::histogram::DEFAULT_SIGNIFICANT_FIGURES,
    )
    .expect("valid bounds")
}

/// Bytes of one `hdrhistogram::Histogram<u64>`: its counts array (allocated
/// in full up front) and the struct.
fn hdr_bytes(h: &hdrhistogram::Histogram<u64>) -> usize {
    h.distinct_values() * 8 + std::mem::size_of::<hdrhistogram::Histogram<u64>>()
}

impl HistogramStrategy for metricz::Histogram {
    const NAME: &'static str = "metricz";
    type Local = ();

    fn build() -> Self {
        metricz::Histogram::new()
    }

    fn local(&self) {}

    #[inline]
    fn record(&self, _: &mut (), value: u64) {
        metricz::Histogram::record(self, value);
    }

    fn count(&self, _: &[()]) -> Option<u64> {
        Some(self.snapshot().count())
    }

    /// Measured: [`metricz::Histogram::bytes_used`].
    fn bytes(&self, _: &[()], _: u64) -> usize {
        self.bytes_used()
    }
}

/// `hdrhistogram::Histogram<u64>`, one per thread, each created on its
/// thread before the barrier: the single-threaded ideal, whose parts must
/// be merged to read the series.
#[derive(Debug)]
pub struct HdrPerThread;

impl HistogramStrategy for HdrPerThread {
    const NAME: &'static str = "hdr-per-thread";
    type Local = hdrhistogram::Histogram<u64>;

    fn build() -> Self {
        HdrPerThread
    }

    fn local(&self) -> Self::Local {
        hdr()
    }

    /// `saturating_record`: `record` with metricz's clamping instead of an
    /// error (the same code path, `record_n_inner`).
    #[inline]
    fn record(&self, local: &mut Self::Local, value: u64) {
        local.saturating_record(value);
    }

    fn count(&self, locals: &[Self::Local]) -> Option<u64> {
        Some(locals.iter().map(hdrhistogram::Histogram::len).sum())
    }

    /// Measured: every thread's counts array and struct.
    fn bytes(&self, locals: &[Self::Local], _: u64) -> usize {
        locals.iter().map(hdr_bytes).sum()
    }
}

/// One `hdrhistogram::Histogram<u64>` behind a `std::sync::Mutex`.
#[derive(Debug)]
pub struct HdrMutex(Mutex<hdrhistogram::Histogram<u64>>);

impl HdrMutex {
    fn lock(&self) -> std::sync::MutexGuard<'_, hdrhistogram::Histogram<u64>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl HistogramStrategy for HdrMutex {
    const NAME: &'static str = "hdr-mutex";
    type Local = ();

    fn build() -> Self {
        HdrMutex(Mutex::new(hdr()))
    }

    fn local(&self) {}

    #[inline]
    fn record(&self, _: &mut (), value: u64) {
        self.lock().saturating_record(value);
    }

    fn count(&self, _: &[()]) -> Option<u64> {
        Some(self.lock().len())
    }

    /// Measured: the counts array and the struct, plus the mutex word.
    fn bytes(&self, _: &[()], _: u64) -> usize {
        hdr_bytes(&self.lock()) + std::mem::size_of::<Self>()
            - std::mem::size_of::<hdrhistogram::Histogram<u64>>()
    }
}

/// `hdrhistogram`'s own concurrent path: one `SyncHistogram` and a
/// `Recorder` per thread, made on that thread before the warm-up. A record
/// is a plain update of the recorder's own histogram plus a load of the
/// shared phase; reading the series takes a refresh, which waits until
/// every live recorder has handed over its histogram (its next record, or
/// its drop): the reader depends on the writers.
#[derive(Debug)]
pub struct HdrSync(Mutex<hdrhistogram::sync::SyncHistogram<u64>>);

impl HistogramStrategy for HdrSync {
    const NAME: &'static str = "hdr-sync";
    /// The thread's recorder, in a `Cell` so `count` can take and drop it
    /// (handing its histogram over) through the shared slice of parts.
    type Local = std::cell::Cell<Option<hdrhistogram::sync::Recorder<u64>>>;

    fn build() -> Self {
        HdrSync(Mutex::new(hdr().into_sync()))
    }

    fn local(&self) -> Self::Local {
        std::cell::Cell::new(Some(self.lock().recorder()))
    }

    #[inline]
    fn record(&self, local: &mut Self::Local, value: u64) {
        if let Some(recorder) = local.get_mut() {
            recorder.saturating_record(value);
        }
    }

    /// Drops every recorder (each hands its histogram over) and refreshes.
    fn count(&self, locals: &[Self::Local]) -> Option<u64> {
        for local in locals {
            drop(local.take());
        }
        let mut sync = self.lock();
        sync.refresh();
        Some(sync.len())
    }

    /// From the layout: the merged histogram and one local histogram per
    /// recorder, each a full counts array (what `hdr_bytes` measures).
    fn bytes(&self, locals: &[Self::Local], _: u64) -> usize {
        (locals.len() + 1) * hdr_bytes(&self.lock())
    }
}

impl HdrSync {
    fn lock(&self) -> std::sync::MutexGuard<'_, hdrhistogram::sync::SyncHistogram<u64>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `prometheus::Histogram` with its default buckets (0.005 s to 10 s,
/// eleven bounds): it observes seconds, so each value is converted from ns.
#[derive(Debug)]
pub struct PromHistogram(prometheus::Histogram);

impl HistogramStrategy for PromHistogram {
    const NAME: &'static str = "prometheus";
    type Local = ();

    fn build() -> Self {
        PromHistogram(
            prometheus::Histogram::with_opts(prometheus::HistogramOpts::new(
                "bench_seconds",
                "Bench.",
            ))
            .expect("valid histogram"),
        )
    }

    fn local(&self) {}

    #[inline]
    fn record(&self, _: &mut (), value: u64) {
        self.0.observe(value as f64 * 1e-9);
    }

    fn count(&self, _: &[()]) -> Option<u64> {
        Some(self.0.get_sample_count())
    }

    /// Estimated from its layout: the upper bounds (one `f64` each) and two
    /// hot/cold shards, each a count per bucket plus sum and count (8 bytes
    /// each), plus 128 bytes for the `Arc`, `Vec` and lock headers (the
    /// descriptor's name and help strings not counted).
    fn bytes(&self, _: &[()], _: u64) -> usize {
        let buckets = prometheus::DEFAULT_BUCKETS.len();
        (buckets + 2 * (buckets + 2)) * 8 + 128
    }
}

/// Buckets of the `prometheus_client` histogram: 1 µs doubling 20 times
/// (to 524 ms), in ns.
const PROM_CLIENT_BUCKETS: u16 = 20;

/// `prometheus_client::metrics::histogram::Histogram` with
/// `exponential_buckets(1e3, 2.0, 20)`, registered in a `Registry` so its
/// count can be read back through the text encoder.
#[derive(Debug)]
pub struct PromClientHistogram {
    histogram: prometheus_client::metrics::histogram::Histogram,
    registry: prometheus_client::registry::Registry,
}

impl HistogramStrategy for PromClientHistogram {
    const NAME: &'static str = "prometheus-client";
    type Local = ();

    fn build() -> Self {
        use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
        let histogram = Histogram::new(exponential_buckets(1e3, 2.0, PROM_CLIENT_BUCKETS));
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("bench_ns", "Bench.", histogram.clone());
        PromClientHistogram {
            histogram,
            registry,
        }
    }

    fn local(&self) {}

    #[inline]
    fn record(&self, _: &mut (), value: u64) {
        self.histogram.observe(value as f64);
    }

    fn count(&self, _: &[()]) -> Option<u64> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).ok()?;
        exposition_count(&text, "bench_ns_count")
    }

    /// Estimated from its layout: one `(f64, u64)` pair per bucket, +Inf
    /// included, plus sum and count, plus 64 bytes for the `Arc`, mutex and
    /// `Vec` headers.
    fn bytes(&self, _: &[()], _: u64) -> usize {
        (usize::from(PROM_CLIENT_BUCKETS) + 1) * 16 + 16 + 64
    }
}

/// The `metrics` crate's histogram handle from a `metrics-exporter-prometheus`
/// recorder (`PrometheusBuilder::new().build_recorder()`, not installed
/// globally): every record appends the raw sample to a lock-free bucket that
/// only a scrape (or upkeep) drains.
#[derive(Debug)]
pub struct MetricsHistogram {
    recorder: metrics_exporter_prometheus::PrometheusRecorder,
    handle: metrics::Histogram,
}

impl HistogramStrategy for MetricsHistogram {
    const NAME: &'static str = "metrics-exporter";
    type Local = ();

    fn build() -> Self {
        use metrics::Recorder;
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let metadata = metrics::Metadata::new(module_path!(), metrics::Level::INFO, None);
        let handle = recorder.register_histogram(&metrics::Key::from_name("bench_ns"), &metadata);
        MetricsHistogram { recorder, handle }
    }

    fn local(&self) {}

    #[inline]
    fn record(&self, _: &mut (), value: u64) {
        self.handle.record(value as f64);
    }

    /// Renders (scrapes) the recorder, which drains the held samples.
    fn count(&self, _: &[()]) -> Option<u64> {
        exposition_count(&self.recorder.handle().render(), "bench_ns_count")
    }

    /// Not measurable from outside: it keeps every sample, an `f64` each,
    /// until a scrape drains them, so this is `records` × 8 bytes (block
    /// headers, one per 64 samples, not counted) — the memory it held at the
    /// end of the run, and it grows with the run.
    fn bytes(&self, _: &[()], records: u64) -> usize {
        usize::try_from(records)
            .unwrap_or(usize::MAX)
            .saturating_mul(8)
    }
}

/// The value of the sample `name` (no labels) in Prometheus text exposition.
fn exposition_count(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(' ')?;
        let value: f64 = rest.split_whitespace().next()?.parse().ok()?;
        Some(value as u64)
    })
}

/// Calls `$m!` with every labelled-counter family the registry study and
/// bench sweep: metricz, then the peers.
#[allow(unused_macros)] // each target uses one of the lists
macro_rules! for_each_family {
    ($m:ident) => {
        $m!(
            metricz::CounterVec,
            $crate::support::PromFamily,
            $crate::support::PromClientFamily,
            $crate::support::MetricsFamily
        )
    };
}
#[allow(unused_imports)]
pub(crate) use for_each_family;

/// Name of the family every implementation registers.
pub const FAMILY_NAME: &str = "bench_requests_total";
/// Its two label names.
pub const LABEL_NAMES: [&str; 2] = ["method", "status"];
const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE",
];
const STATUSES: [&str; 8] = ["200", "201", "204", "301", "400", "404", "500", "503"];
/// Label pairs created (and looked up once) in every family before timing.
pub const SERIES: usize = METHODS.len() * STATUSES.len();

/// The `i`-th label pair (modulo [`SERIES`]); pair 0 is `["GET", "200"]`.
pub fn label_pair(i: usize) -> [&'static str; 2] {
    let i = i % SERIES;
    [METHODS[i % METHODS.len()], STATUSES[i / METHODS.len()]]
}

/// Which existing series the threads of a lookup sweep hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesChoice {
    /// Every thread looks up `["GET", "200"]`.
    Same,
    /// Thread `i` looks up [`label_pair`]`(i)`, its own series (threads
    /// beyond [`SERIES`] wrap around).
    PerThread,
}

impl SeriesChoice {
    /// The label pair thread `index` uses.
    pub fn pair(self, index: usize) -> [&'static str; 2] {
        match self {
            SeriesChoice::Same => label_pair(0),
            SeriesChoice::PerThread => label_pair(index),
        }
    }

    /// A short name for bench ids and curve names.
    pub fn name(self) -> &'static str {
        match self {
            SeriesChoice::Same => "same-series",
            SeriesChoice::PerThread => "own-series",
        }
    }
}

/// A family of labelled counters as the registry study and bench drive it:
/// lookup of a series by two label values, then one increment.
pub trait FamilyStrategy: Sync + Sized {
    /// Its name in tables, CSV and plots (same-series curve).
    const NAME: &'static str;
    /// Its name for the curve where every thread has its own series.
    const NAME_PER_THREAD: &'static str;
    /// The label values in the form its lookup takes, built once per thread
    /// before the warm-up (never inside the timed loop).
    type Labels: Send + Sync;

    /// A fresh family named [`FAMILY_NAME`] with labels [`LABEL_NAMES`]
    /// and every [`label_pair`] series created (none incremented).
    fn build() -> Self {
        let family = Self::empty();
        for i in 0..SERIES {
            family.create(&Self::labels(label_pair(i)));
        }
        family
    }

    /// A fresh, empty family.
    fn empty() -> Self;

    /// `values` as its lookup takes them.
    fn labels(values: [&'static str; 2]) -> Self::Labels;

    /// Creates the series (or finds it) without incrementing it.
    fn create(&self, labels: &Self::Labels);

    /// Lookup of the series, then one increment: the timed operation.
    fn lookup_inc(&self, labels: &Self::Labels);

    /// Removes the series; `None` where the implementation cannot remove
    /// one (the `metrics` recorder: series only expire by idle timeout).
    fn remove(&self, labels: &Self::Labels) -> Option<bool>;

    /// The sum of every series' count.
    fn total(&self) -> u64;
}

impl FamilyStrategy for metricz::CounterVec {
    const NAME: &'static str = "metricz";
    const NAME_PER_THREAD: &'static str = "metricz/own-series";
    type Labels = [&'static str; 2];

    fn empty() -> Self {
        metricz::Registry::new()
            .counter_vec(FAMILY_NAME, "Bench.", &LABEL_NAMES)
            .expect("valid family")
    }

    fn labels(values: [&'static str; 2]) -> Self::Labels {
        values
    }

    fn create(&self, labels: &Self::Labels) {
        drop(self.with(labels).expect("two label values"));
    }

    #[inline]
    fn lookup_inc(&self, labels: &Self::Labels) {
        self.with(labels).expect("two label values").inc();
    }

    fn remove(&self, labels: &Self::Labels) -> Option<bool> {
        Some(metricz::Family::remove(self, labels).expect("two label values"))
    }

    fn total(&self) -> u64 {
        (0..SERIES)
            .map(|i| self.with(&label_pair(i)).expect("two label values").get())
            .sum()
    }
}

/// `prometheus::IntCounterVec`: `with_label_values` hashes the values and
/// reads an `RwLock<HashMap>`, then `inc` is one shared `fetch_add`.
#[derive(Debug)]
pub struct PromFamily(prometheus::IntCounterVec);

impl FamilyStrategy for PromFamily {
    const NAME: &'static str = "prometheus";
    const NAME_PER_THREAD: &'static str = "prometheus/own-series";
    type Labels = [&'static str; 2];

    fn empty() -> Self {
        PromFamily(
            prometheus::IntCounterVec::new(
                prometheus::Opts::new(FAMILY_NAME, "Bench."),
                &LABEL_NAMES,
            )
            .expect("valid family"),
        )
    }

    fn labels(values: [&'static str; 2]) -> Self::Labels {
        values
    }

    fn create(&self, labels: &Self::Labels) {
        drop(self.0.with_label_values(labels));
    }

    #[inline]
    fn lookup_inc(&self, labels: &Self::Labels) {
        self.0.with_label_values(labels).inc();
    }

    fn remove(&self, labels: &Self::Labels) -> Option<bool> {
        Some(self.0.remove_label_values(labels).is_ok())
    }

    fn total(&self) -> u64 {
        (0..SERIES)
            .map(|i| self.0.with_label_values(&label_pair(i)).get())
            .sum()
    }
}

/// The label set type of the `prometheus_client` family.
pub type PromClientLabels = Vec<(String, String)>;

/// `prometheus_client::metrics::family::Family<Vec<(String, String)>,
/// Counter>`: `get_or_create` hashes the owned label set and reads an
/// `RwLock<HashMap>`; the labels are built once per thread, outside timing.
#[derive(Debug, Default)]
pub struct PromClientFamily(
    prometheus_client::metrics::family::Family<
        PromClientLabels,
        prometheus_client::metrics::counter::Counter,
    >,
);

impl FamilyStrategy for PromClientFamily {
    const NAME: &'static str = "prometheus-client";
    const NAME_PER_THREAD: &'static str = "prometheus-client/own-series";
    type Labels = PromClientLabels;

    fn empty() -> Self {
        PromClientFamily::default()
    }

    fn labels(values: [&'static str; 2]) -> Self::Labels {
        LABEL_NAMES
            .iter()
            .zip(values)
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    fn create(&self, labels: &Self::Labels) {
        drop(self.0.get_or_create(labels));
    }

    #[inline]
    fn lookup_inc(&self, labels: &Self::Labels) {
        self.0.get_or_create(labels).inc();
    }

    fn remove(&self, labels: &Self::Labels) -> Option<bool> {
        Some(self.0.remove(labels))
    }

    fn total(&self) -> u64 {
        (0..SERIES)
            .map(|i| self.0.get_or_create(&Self::labels(label_pair(i))).get())
            .sum()
    }
}

/// The `metrics` crate with labels on a `metrics-exporter-prometheus`
/// recorder used directly (not installed globally): each operation is
/// `register_counter(&key, &metadata)` (the lookup, which retains a copy
/// of the key, then a read of the recorder's sharded `RwLock<HashMap>`)
/// then `increment(1)`. The `Key` (name and two owned labels, its hash
/// computed once) is built once per thread, outside timing.
#[derive(Debug)]
pub struct MetricsFamily {
    recorder: metrics_exporter_prometheus::PrometheusRecorder,
    metadata: metrics::Metadata<'static>,
}

impl FamilyStrategy for MetricsFamily {
    const NAME: &'static str = "metrics-exporter";
    const NAME_PER_THREAD: &'static str = "metrics-exporter/own-series";
    type Labels = metrics::Key;

    fn empty() -> Self {
        MetricsFamily {
            recorder: metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder(),
            metadata: metrics::Metadata::new(module_path!(), metrics::Level::INFO, None),
        }
    }

    fn labels(values: [&'static str; 2]) -> Self::Labels {
        let labels: Vec<metrics::Label> = LABEL_NAMES
            .iter()
            .zip(values)
            .map(|(name, value)| metrics::Label::new(name.to_string(), value.to_string()))
            .collect();
        metrics::Key::from_parts(FAMILY_NAME, labels)
    }

    fn create(&self, labels: &Self::Labels) {
        use metrics::Recorder;
        drop(self.recorder.register_counter(labels, &self.metadata));
    }

    #[inline]
    fn lookup_inc(&self, labels: &Self::Labels) {
        use metrics::Recorder;
        self.recorder
            .register_counter(labels, &self.metadata)
            .increment(1);
    }

    fn remove(&self, _: &Self::Labels) -> Option<bool> {
        None
    }

    /// Renders (scrapes) the recorder and sums the family's samples.
    fn total(&self) -> u64 {
        let prefix = format!("{FAMILY_NAME}{{");
        self.recorder
            .handle()
            .render()
            .lines()
            .filter(|line| line.starts_with(&prefix))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|v| v as u64)
            .sum()
    }
}

/// Runs `warm` untimed then `ops` timed lookups + increments of an existing
/// series of `family` on every thread of `pool` (thread `i` on
/// `choice.pair(i)`, its labels built before the warm-up); returns the wall
/// time.
pub fn timed_lookup<F: FamilyStrategy>(
    pool: &ThreadPool,
    family: &F,
    choice: SeriesChoice,
    warm: u64,
    ops: u64,
) -> Duration {
    timed_run_with(
        pool,
        warm,
        ops,
        |index| (family, F::labels(choice.pair(index))),
        |(family, labels)| family.lookup_inc(labels),
    )
    .0
}

/// Runs `warm` untimed then `ops` timed churn cycles on every thread of
/// `pool`, thread `i` on its own series [`label_pair`]`(i)`: create the
/// series and increment it once (the lookup + increment of a series that
/// is absent), then remove it. Returns the wall time, or `None` if the
/// implementation cannot remove.
pub fn timed_churn<F: FamilyStrategy>(
    pool: &ThreadPool,
    family: &F,
    warm: u64,
    ops: u64,
) -> Option<Duration> {
    family.remove(&F::labels(label_pair(0)))?;
    family.create(&F::labels(label_pair(0)));
    let (elapsed, _) = timed_run_with(
        pool,
        warm,
        ops,
        |index| (family, F::labels(label_pair(index))),
        |(family, labels)| {
            family.lookup_inc(labels);
            family.remove(labels);
        },
    );
    Some(elapsed)
}

/// Bytes of one metricz counter shard: an `AtomicU64` padded to its own
/// cache line(s), as `metricz::Counter` stores it.
pub const SHARD_BYTES: usize =
    std::mem::size_of::<crossbeam_utils::CachePadded<std::sync::atomic::AtomicU64>>();
