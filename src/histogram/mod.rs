//! [`Histogram`]: an HDR histogram recorded lock-free into per-CPU shards,
//! and [`Timer`], a histogram of durations.
//!
//! # Layout
//!
//! Values are bucketed exactly as [HdrHistogram](http://hdrhistogram.org/)
//! buckets them (the arithmetic of the `hdrhistogram` crate): every value up
//! to the highest trackable value is kept to `significant_figures` decimal
//! digits, so a quantile is within `10^-figures` of the true value, relative.
//! For the same values (up to the highest trackable value) and
//! configuration, every quantile of a [`Snapshot`] equals the
//! `hdrhistogram` crate's.
//!
//! # Recording
//!
//! [`record`](Histogram::record) finds the value's count (the `hdrhistogram`
//! index arithmetic) in the shard of the CPU it runs on, and adds to the
//! count and to the exact sum; min and max are a plain load each and a
//! locked update only when they move. No lock, no panic, and no allocation
//! once the value's block exists (and, for a count past 2<sup>15</sup> on a
//! CPU, or a `record_n` of more than 65 535 at once, its carry block: the
//! first carry of a block allocates it, and the histogram's first carry the
//! carry table). Values above the highest trackable value are recorded as
//! that value and counted in [`Snapshot::clamped`].
//!
//! Where glibc registered restartable sequences (rseq) for the process and
//! the histogram has a shard for every possible CPU (the default), the two
//! adds are **unlocked restartable sequences**: each checks, inside the
//! sequence, that the thread still runs on the shard's CPU, loads, adds and
//! commits with one store, and the kernel restarts it if the thread is
//! preempted, migrated or signalled before the commit (as
//! [`Counter`](crate::Counter)'s increments, see
//! [`counter::rseq`](crate::counter::rseq)). A reader may see the count
//! without the sum for an instant, as with any two adds. Elsewhere (no
//! rseq, fewer shards than CPUs, loom, Miri) both are locked atomic adds;
//! a thread without its own rseq registration in an rseq process records
//! into a separate fallback shard with locked adds, so a CPU's rseq words
//! are only ever written by sequences on that CPU. Where the words are,
//! and how a count outgrows 16 bits, is in `shard.rs`: in short, a
//! count is a 16-bit word per CPU plus a 64-bit carry word per histogram,
//! and the per-CPU word moves into the carry every 2<sup>15</sup> records
//! of one bucket on one CPU.
//!
//! # Memory follows the data
//!
//! A shard is allocated the first time its CPU records, and a shard's counts
//! live in blocks of 256 16-bit counts (512 bytes) allocated the first time
//! a value lands in them (each block is one `AtomicPtr`, installed by CAS;
//! the loser frees its block). Carry words are the histogram's, shared by
//! all CPUs: a table with a pointer per block of the layout, allocated on
//! the first carry, and a carry block (256 64-bit words and a sequence
//! word, 2 056 bytes) per block any of whose counts carried; counts are
//! exact to 2<sup>64</sup>. [`Histogram::bytes_used`] reports the total.
//!
//! Per recording CPU: a 128-byte shard header, 8 bytes per block of the
//! layout, and 512 bytes per touched block, whatever the number of records.
//! With the default configuration (1 ns to one hour at 3 figures: 33 792
//! counts in 132 blocks) that is at most 68 768 bytes (67.2 KiB). Values
//! spread over 1 µs–100 ms at 3 figures touch 67 blocks: 35 488 bytes
//! (34.7 KiB) per CPU (`tests/histogram.rs` measures it), plus, once per
//! histogram, at most 138 824 bytes of carries for those blocks. A
//! [`Snapshot`] holds a dense copy of the counts (8 bytes per count of the
//! layout: 270 KB with the defaults), whatever the data;
//! [`take_interval_into`](Histogram::take_interval_into) reuses one.
//!
//! # Reads
//!
//! [`snapshot`](Histogram::snapshot) sums the shards into a [`Snapshot`]:
//! the records since the last interval was taken.
//! [`take_interval`](Histogram::take_interval) does the same and starts a
//! new interval, so consecutive intervals partition the records: a record
//! racing the take lands in this interval or the next, never both, never
//! neither. Counts and sums are taken **by baseline**: the histogram keeps
//! the totals it read at the last take (allocated at the first take, per
//! block that holds counts) and reports the difference, since an rseq-owned
//! word must never be swapped to zero from another CPU (a sequence racing
//! the swap would write the old value back). Min, max and the clamp count
//! are locked words and are reset at each take. Like every sharded read, a
//! snapshot taken while records continue is not an instant's state: count,
//! sum, min and max are exact once recording stops. A record racing a take
//! may leave its count in one interval and its sum (or min/max) in the
//! next; totals over intervals stay exact.
//!
//! A bucket's count never reads lower than an earlier read of it while only
//! records happen: moving a per-CPU word into the carry word is guarded by
//! the carry block's sequence, which readers validate (see `shard.rs`; loom
//! models H5, and the stress test for the rseq path). Reads wait (yielding)
//! while such a move is in progress, and reads and takes of one histogram
//! take its baseline's mutex, so do not read a histogram from a signal
//! handler that may have interrupted a record or read of the same
//! histogram.

mod carry;
mod error;
mod layout;
mod read;
mod shard;
mod snapshot;
mod timer;

pub use error::HistogramError;
pub use snapshot::{Bucket, Buckets, Snapshot};
pub use timer::{Timer, TimerGuard};

use crate::counter::rseq::Area;
use crate::counter::shards;
use crate::primitive::{Arc, AtomicPtr, AtomicU64, Mutex, Ordering::Relaxed};
use layout::Layout;
use shard::{Carries, Locked, Rseq, Shard, BLOCK_LEN};
use std::sync::PoisonError;
use std::{fmt, ptr};

/// The default lowest discernible value: 1 (one nanosecond).
pub const DEFAULT_LOWEST: u64 = 1;
/// The default highest trackable value: one hour in nanoseconds.
pub const DEFAULT_HIGHEST: u64 = 3_600 * 1_000_000_000;
/// The default precision: 3 significant figures (0.1 %).
pub const DEFAULT_SIGNIFICANT_FIGURES: u8 = 3;

/// A concurrent HDR histogram of `u64` values, sharded per CPU.
///
/// The default configuration suits latencies in nanoseconds: 1 ns to one hour
/// at 3 significant figures. See the [module docs](self) for the layout,
/// recording, memory and read semantics. Cloning is cheap and the clone
/// records into the same histogram.
///
/// ```
/// use metricz::Histogram;
///
/// let latency = Histogram::new();
/// for micros in 1..=1000u64 {
///     latency.record(micros * 1_000); // 1 µs ..= 1 ms, in ns
/// }
/// let s = latency.snapshot();
/// assert_eq!(s.count(), 1000);
/// assert_eq!(s.min(), 1_000);
/// assert_eq!(s.max(), 1_000_000);
/// assert_eq!(s.sum(), 500_500_000);
/// // 3 significant figures: within 0.1 %.
/// let p99 = s.value_at_quantile(0.99);
/// assert!(p99.abs_diff(990_000) <= 990);
/// ```
#[derive(Clone)]
pub struct Histogram {
    inner: Arc<Inner>,
}

struct Inner {
    layout: Layout,
    /// One slot per shard (a power of two of them), and with `per_cpu` one
    /// more: the fallback shard, for threads without an rseq registration.
    shards: Box<[AtomicPtr<Shard>]>,
    /// Shards − 1.
    mask: usize,
    /// Whether every possible CPU has its own shard, so that where the
    /// process uses rseq, records are restartable sequences on their CPU's
    /// shard (decided at creation; see `shard.rs` for why the two ways of
    /// writing are never mixed).
    per_cpu: bool,
    /// The carry words every shard's 16-bit counts overflow into.
    carries: Carries,
    /// What the last `take_interval` took; reads report what came after.
    baseline: Mutex<Baseline>,
    /// Base units per recorded integer (see [`HistogramBuilder::scale`]).
    scale: f64,
    /// `1 / scale` when that is an integer (1e-9 → 1e9): `record_f64`
    /// multiplies by it, which rounds as exactly as the export's division.
    per_unit: Option<f64>,
    /// `record_f64` values that were NaN or negative.
    invalid: AtomicU64,
}

/// The totals at the last [`Histogram::take_interval`]: intervals are taken
/// by baseline, since rseq-owned counts must never be swapped to zero from
/// another CPU. Allocated at the first take, then only for blocks that
/// gain counts; never on the record path.
#[derive(Default)]
struct Baseline {
    /// Per block of the layout, the counts of all shards at the last take
    /// (`None`: all zero then). Empty before the first take.
    blocks: Vec<Option<Box<[u64; BLOCK_LEN]>>>,
    /// The sum of all counts at the last take.
    count: u64,
    /// The exact sum of the values at the last take.
    sum: u64,
}

impl Baseline {
    fn bytes(&self) -> usize {
        self.blocks.capacity() * std::mem::size_of::<Option<Box<[u64; BLOCK_LEN]>>>()
            + self.blocks.iter().flatten().count() * std::mem::size_of::<[u64; BLOCK_LEN]>()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for slot in self.shards.iter_mut() {
            shard::free_shard(slot);
        }
    }
}

/// Configures a [`Histogram`]: `Histogram::builder().highest(…).build()`.
#[derive(Debug, Clone, Copy)]
pub struct HistogramBuilder {
    lowest: u64,
    highest: u64,
    significant_figures: u8,
    shards: Option<usize>,
    scale: f64,
}

impl HistogramBuilder {
    /// The lowest discernible value (≥ 1; default 1). Values below it are
    /// still recorded, into the first buckets.
    pub fn lowest(mut self, lowest: u64) -> Self {
        self.lowest = lowest;
        self
    }

    /// The highest trackable value (≥ 2 × lowest; default one hour in ns).
    /// Larger values are recorded as this value and counted as clamped.
    pub fn highest(mut self, highest: u64) -> Self {
        self.highest = highest;
        self
    }

    /// Decimal digits of precision kept for every value, 1 to 5 (default 3).
    pub fn significant_figures(mut self, figures: u8) -> Self {
        self.significant_figures = figures;
        self
    }

    /// The number of shards, rounded up to a power of two (default: the
    /// next power of two of the CPUs the machine can have, as for
    /// `Counter`); fewer than the CPUs masks CPU ids onto them.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// The base-unit value of one recorded integer, for
    /// [`Histogram::record_f64`]: `1e-9` for a histogram of seconds kept at
    /// nanosecond resolution (`record_f64(0.25)` records 250 000 000).
    /// Positive and finite; default 1. A registry exports the histogram's
    /// values in the base unit (recorded integer × scale).
    pub fn scale(mut self, scale: f64) -> Self {
        self.scale = scale;
        self
    }

    /// Builds the histogram, or says which rule the configuration breaks.
    pub fn build(self) -> Result<Histogram, HistogramError> {
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(HistogramError::InvalidScale);
        }
        let layout = Layout::new(self.lowest, self.highest, self.significant_figures)?;
        let count = self
            .shards
            .map_or_else(shards::default_count, shards::normalize);
        let per_cpu = shards::covers_every_cpu(count);
        Ok(Histogram {
            inner: Arc::new(Inner {
                layout,
                shards: (0..count + usize::from(per_cpu))
                    .map(|_| AtomicPtr::new(ptr::null_mut()))
                    .collect(),
                mask: count - 1,
                per_cpu,
                carries: Carries::new(layout.len.div_ceil(BLOCK_LEN)),
                baseline: Mutex::new(Baseline::default()),
                scale: self.scale,
                per_unit: per_unit(self.scale),
                invalid: AtomicU64::new(0),
            }),
        })
    }
}

/// `1 / scale` when it is an integer (1e-9 → 1e9), else `None`: dividing
/// by it converts recorded integers to base units with correct rounding
/// (9 ms is 0.009, not 0.009000000000000001), and multiplying by it the
/// other way. Shared with the registry's export.
pub(crate) fn per_unit(scale: f64) -> Option<f64> {
    let inv = (1.0 / scale).round();
    (inv >= 1.0 && ((inv * scale) - 1.0).abs() < 1e-12).then_some(inv)
}

impl Default for HistogramBuilder {
    fn default() -> Self {
        HistogramBuilder {
            lowest: DEFAULT_LOWEST,
            highest: DEFAULT_HIGHEST,
            significant_figures: DEFAULT_SIGNIFICANT_FIGURES,
            shards: None,
            scale: 1.0,
        }
    }
}

impl Histogram {
    /// A histogram with the default configuration: 1 ns to one hour, 3
    /// significant figures.
    pub fn new() -> Self {
        Self::builder()
            .build()
            .expect("the default configuration is valid")
    }

    /// A builder for other configurations.
    pub fn builder() -> HistogramBuilder {
        HistogramBuilder::default()
    }

    /// Records one value.
    #[inline]
    pub fn record(&self, value: u64) {
        self.record_n(value, 1);
    }

    /// Records `n` occurrences of `value` (nothing if `n` is 0).
    #[inline]
    pub fn record_n(&self, value: u64, n: u64) {
        if n == 0 {
            return;
        }
        let inner = &*self.inner;
        let clamped = value > inner.layout.highest;
        let value = value.min(inner.layout.highest);
        let index = inner.layout.index_of(value);
        if inner.per_cpu {
            if let Some(area) = Area::current() {
                inner.record_rseq(area, index, value, n, clamped);
                return;
            }
        }
        let slot = &inner.shards[crate::cpu::current() & inner.mask];
        shard::shard_in(slot, inner.layout.len).record_locked(
            index,
            value,
            n,
            clamped,
            &inner.carries,
        );
    }

    /// Records a value in the base unit (see [`HistogramBuilder::scale`]):
    /// `value / scale`, rounded to the nearest integer (halves up; a unit
    /// more at the edges of `f64` rounding: the largest double below one
    /// half, and past 2⁵²). Never panics:
    /// values above the range are clamped to its highest value and counted
    /// as clamped ([`Snapshot::clamped`]), `+∞` among them; negative values
    /// (`-∞` among them) are recorded as 0 and NaN is not recorded, both
    /// counted by [`invalid`](Self::invalid).
    ///
    /// ```
    /// let latency = metricz::Histogram::builder().scale(1e-9).build()?; // seconds, at ns
    /// latency.record_f64(0.25);
    /// latency.record_f64(f64::NAN);
    /// latency.record_f64(-1.0);
    /// let s = latency.snapshot();
    /// assert_eq!((s.count(), s.max(), s.min()), (2, 250_000_000, 0));
    /// assert_eq!(latency.invalid(), 2);
    /// # Ok::<(), metricz::HistogramError>(())
    /// ```
    #[inline]
    pub fn record_f64(&self, value: f64) {
        self.record_f64_n(value, 1);
    }

    /// Records `n` occurrences of a base-unit value, as
    /// [`record_f64`](Self::record_f64) records one (an invalid value
    /// counts `n` times in [`invalid`](Self::invalid)); nothing if `n` is 0.
    ///
    /// ```
    /// let h = metricz::Histogram::builder().scale(0.5).build()?;
    /// h.record_f64_n(2.0, 3); // three records of 4 (× 0.5)
    /// assert_eq!((h.snapshot().count(), h.snapshot().sum()), (3, 12));
    /// # Ok::<(), metricz::HistogramError>(())
    /// ```
    #[inline]
    pub fn record_f64_n(&self, value: f64, n: u64) {
        if n == 0 {
            return;
        }
        let inner = &*self.inner;
        let x = match inner.per_unit {
            Some(per_unit) => value * per_unit,
            None => value / inner.scale,
        };
        if x >= 0.0 {
            // Rounded half up by adding 0.5 and truncating: `f64::round`
            // is a libm call on x86-64's baseline (no SSE4.1), a fifth of
            // a facade record. Where `x + 0.5` itself rounds (the largest
            // double below one half, and past 2^52) the result may be one
            // more than `round`'s: a unit, far below any histogram's
            // precision. `as` saturates: +∞ and values past 2^64 become
            // u64::MAX, which `record` clamps and counts.
            self.record_n((x + 0.5) as u64, n);
        } else {
            // Negative or NaN. Relaxed: a tally, read by `invalid`.
            inner.invalid.fetch_add(n, Relaxed);
            if !x.is_nan() {
                self.record_n(0, n);
            }
        }
    }

    /// How many [`record_f64`](Self::record_f64) values were NaN or
    /// negative (since creation).
    pub fn invalid(&self) -> u64 {
        self.inner.invalid.load(Relaxed)
    }

    /// The base-unit value of one recorded integer (see
    /// [`HistogramBuilder::scale`]).
    pub fn scale(&self) -> f64 {
        self.inner.scale
    }

    /// The merged state of all shards: the records since the last
    /// [`take_interval`](Self::take_interval) (or creation). Records
    /// continue meanwhile; see the [module docs](self) for what that means.
    pub fn snapshot(&self) -> Snapshot {
        let mut counts = Vec::new();
        let totals = self.collect(false, &mut counts);
        Snapshot::new(self.inner.layout, counts, totals)
    }

    /// The records since the previous `take_interval` (or creation), and
    /// starts the next interval: every record lands in exactly one
    /// interval. Counts and sum are taken by baseline (the histogram keeps
    /// their totals at this take, allocated at the first take and for
    /// blocks that gain counts later; never on the record path); min, max
    /// and the clamp count are reset.
    pub fn take_interval(&self) -> Snapshot {
        let mut counts = Vec::new();
        let totals = self.collect(true, &mut counts);
        Snapshot::new(self.inner.layout, counts, totals)
    }

    /// [`take_interval`](Self::take_interval) into an existing snapshot,
    /// reusing its buffer: no allocation once the buffer has the layout's
    /// size (a snapshot of this histogram has) and the baseline covers the
    /// blocks in use.
    ///
    /// ```
    /// let h = metricz::Histogram::new();
    /// h.record(5);
    /// let mut interval = h.take_interval();
    /// assert_eq!(interval.count(), 1);
    /// h.record_n(7, 2);
    /// h.take_interval_into(&mut interval);
    /// assert_eq!((interval.count(), interval.sum()), (2, 14));
    /// h.take_interval_into(&mut interval);
    /// assert_eq!(interval.count(), 0);
    /// ```
    pub fn take_interval_into(&self, into: &mut Snapshot) {
        let totals = self.collect(true, into.refill(self.inner.layout));
        into.finish_with(totals);
    }

    /// [`snapshot`](Self::snapshot) into an existing snapshot, reusing its
    /// buffer (no allocation once it has the layout's size).
    pub fn snapshot_into(&self, into: &mut Snapshot) {
        let totals = self.collect(false, into.refill(self.inner.layout));
        into.finish_with(totals);
    }

    /// The number of records (wrapping at 2<sup>64</sup>), read without
    /// building a snapshot: no allocation, only the installed blocks read.
    /// Like a snapshot's count, never less than an earlier `count` while
    /// only records happen.
    ///
    /// ```
    /// let h = metricz::Histogram::new();
    /// h.record_n(7, 3);
    /// h.record(1_000_000);
    /// assert_eq!(h.count(), 4);
    /// ```
    pub fn count(&self) -> u64 {
        let baseline = self.inner.lock_baseline();
        let mut count = 0u64;
        self.inner.visit(|_, n| count = count.wrapping_add(n));
        count.wrapping_sub(baseline.count)
    }

    /// A fingerprint that changes whenever a value is recorded (a few loads
    /// per shard, no walk of the counts): for the registry's idle eviction.
    pub(crate) fn activity(&self) -> u64 {
        let inner = &*self.inner;
        let zero = inner.layout.index_of(0);
        // A plain wrapping sum: every record adds to it (its value to the
        // sum, or one to the zeros), so changes never cancel short of the
        // sum of all of them wrapping exactly at 2^64.
        let shards = inner
            .installed()
            .fold(0u64, |acc, shard| acc.wrapping_add(shard.activity(zero)));
        shards.wrapping_add(inner.carries.high(zero))
    }

    /// Bytes of memory this histogram holds: its header, shard table, and
    /// every allocated shard and block.
    pub fn bytes_used(&self) -> usize {
        let inner = &*self.inner;
        let fixed = std::mem::size_of::<Inner>()
            + inner.shards.len() * std::mem::size_of::<AtomicPtr<Shard>>();
        fixed
            + inner.lock_baseline().bytes()
            + inner.carries.bytes()
            + inner
                .installed()
                .map(|s| s.header_bytes() + s.block_bytes())
                .sum::<usize>()
    }

    /// The number of per-CPU shards (allocated or not; not counting the
    /// fallback shard of threads without an rseq registration).
    pub fn shards(&self) -> usize {
        self.inner.mask + 1
    }

    /// How many shards have recorded (been allocated), the fallback shard
    /// among them.
    pub fn shards_in_use(&self) -> usize {
        self.inner.installed().count()
    }

    /// The lowest discernible value.
    pub fn lowest(&self) -> u64 {
        self.inner.layout.lowest
    }

    /// The highest trackable value.
    pub fn highest(&self) -> u64 {
        self.inner.layout.highest
    }

    /// The significant figures kept.
    pub fn significant_figures(&self) -> u8 {
        self.inner.layout.significant_figures
    }

    /// Whether the count block holding `value` is allocated in any shard
    /// (for tests of lazy allocation). A test hook (feature `test-hooks`),
    /// not part of the API.
    #[doc(hidden)]
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn block_allocated_for(&self, value: u64) -> bool {
        let inner = &*self.inner;
        let block = inner.layout.index_of(value.min(inner.layout.highest)) / shard::BLOCK_LEN;
        inner.installed().any(|s| s.has_block(block))
    }

    /// The index of `value`'s count in the layout (the record path's
    /// arithmetic, for the benchmark of a record's parts). A test hook
    /// (feature `test-hooks`), not part of the API.
    #[doc(hidden)]
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn index_of_for_bench(&self, value: u64) -> usize {
        let layout = &self.inner.layout;
        layout.index_of(value.min(layout.highest))
    }

    /// Whether the fallback shard (of threads without an rseq registration,
    /// in a histogram with a shard per CPU) is allocated. A test hook
    /// (feature `test-hooks`), not part of the API.
    #[doc(hidden)]
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn fallback_shard_in_use(&self) -> bool {
        let inner = &*self.inner;
        inner.per_cpu && shard::shard_if_any(&inner.shards[inner.mask + 1]).is_some()
    }
}

impl Inner {
    /// The installed shards.
    fn installed(&self) -> impl Iterator<Item = &Shard> + Clone {
        self.shards.iter().filter_map(shard::shard_if_any)
    }

    /// The baseline; a panic elsewhere while it was held left it whole
    /// (it is only assigned complete values), so poisoning is ignored.
    fn lock_baseline(&self) -> crate::primitive::MutexGuard<'_, Baseline> {
        self.baseline.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The shard of CPU `cpu` for restartable sequences, or `None` where
    /// the thread has no registration (a `cpu` of −1 or −2, as `u32`).
    #[inline]
    fn rseq_shard(&self, cpu: u32) -> Option<&Shard> {
        let cpu = cpu as usize;
        (cpu <= self.mask).then(|| shard::shard_in(&self.shards[cpu], self.layout.len))
    }

    /// The fallback shard (written with locked updates only): the last
    /// slot of a per-CPU histogram.
    #[cold]
    fn fallback(&self) -> &Shard {
        shard::shard_in(&self.shards[self.mask + 1], self.layout.len)
    }

    /// Records into the current CPU's shard with restartable sequences:
    /// the count, then the sum (two sequences, each resolving the shard
    /// again if the thread moved), then min, max and the clamp count
    /// (locked words) on the count's shard.
    #[inline]
    fn record_rseq(&self, area: Area, index: usize, value: u64, n: u64, clamped: bool) {
        let mut cpu = area.cpu();
        let shard = loop {
            let Some(shard) = self.rseq_shard(cpu) else {
                self.fallback()
                    .record_locked(index, value, n, clamped, &self.carries);
                return;
            };
            if shard
                .add_count(index, n, Rseq { area, cpu }, &self.carries)
                .is_ok()
            {
                break shard;
            }
            cpu = area.cpu();
        };
        shard.add_bounds(value, n, clamped);
        let amount = value.wrapping_mul(n);
        let mut shard = shard;
        while shard.add_sum(amount, Rseq { area, cpu }).is_err() {
            cpu = area.cpu();
            match self.rseq_shard(cpu) {
                Some(moved_to) => shard = moved_to,
                None => {
                    let _ = self.fallback().add_sum(amount, Locked);
                    return;
                }
            }
        }
    }
}

/// How many carry transfers in this process found their thread moved off
/// the block's CPU and were undone (a later record transfers). A test hook
/// (feature `test-hooks`), not part of the API.
#[doc(hidden)]
#[cfg(feature = "test-hooks")]
pub fn transfers_undone() -> u64 {
    shard::UNDONE.load(Relaxed)
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram")
            .field("lowest", &self.lowest())
            .field("highest", &self.highest())
            .field("significant_figures", &self.significant_figures())
            .field("shards_in_use", &self.shards_in_use())
            .field("bytes_used", &self.bytes_used())
            .finish()
    }
}
