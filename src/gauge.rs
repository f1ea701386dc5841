//! Gauges: [`Gauge`], an `f64` that can be set, and [`UpDownGauge`], a sharded
//! integer for values moved by frequent increments and decrements.

use crate::counter::shards;
use crate::primitive::{Arc, AtomicU64, Ordering::Relaxed};
use std::fmt;

/// A value that goes up and down: an `f64` in one atomic word.
///
/// `set` is one atomic swap; `add`, `sub`, `inc` and `dec` are a CAS loop, so
/// racing calls compose as if run in some serial order (invariant G1 in
/// `papers/invariants.md`). Arithmetic is IEEE 754: adding to NaN stays NaN,
/// and infinities behave as floats do.
///
/// Cloning is cheap and the clone shares the gauge.
///
/// For values changed mostly by `inc`/`dec` from many threads (requests in
/// flight, open connections), [`UpDownGauge`] spreads the writes over shards.
///
/// ```
/// use metricz::Gauge;
/// let temperature = Gauge::new();
/// temperature.set(20.5);
/// temperature.add(1.25);
/// temperature.dec();
/// assert_eq!(temperature.get(), 20.75);
/// ```
#[derive(Clone, Default)]
pub struct Gauge {
    bits: Arc<AtomicU64>,
}

impl Gauge {
    /// A gauge at 0.0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the value.
    ///
    /// A `swap`, not a plain store: loom 0.7 can let a racing CAS read past a
    /// plain store in modification order (tokio-rs/loom#254, #282), which
    /// would make the G1 model report false lost updates; as an RMW, `set` is
    /// modelled exactly. On x86_64 it costs one `xchg`, the price of `add`.
    #[inline]
    pub fn set(&self, value: f64) {
        self.bits.swap(value.to_bits(), Relaxed);
    }

    /// Adds `delta` (which may be negative).
    #[inline]
    pub fn add(&self, delta: f64) {
        // Relaxed: the gauge's word is the only memory involved, and the CAS
        // makes each update atomic with respect to every other.
        let _ = self.bits.fetch_update(Relaxed, Relaxed, |bits| {
            Some((f64::from_bits(bits) + delta).to_bits())
        });
    }

    /// Subtracts `delta`.
    #[inline]
    pub fn sub(&self, delta: f64) {
        self.add(-delta);
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1.0);
    }

    /// Subtracts one.
    #[inline]
    pub fn dec(&self) {
        self.add(-1.0);
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> f64 {
        f64::from_bits(self.bits.load(Relaxed))
    }
}

impl fmt::Debug for Gauge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gauge").field("value", &self.get()).finish()
    }
}

/// An integer gauge sharded per CPU, for values moved by `inc`/`dec` from
/// many threads, such as requests in flight.
///
/// Each change is one relaxed `fetch_add` on the current CPU's padded shard
/// (as [`Counter`](crate::Counter)); `get` sums the shards. A read racing
/// changes is not linearizable: it may see a decrement on one shard but not
/// the increment it matched on another, so a gauge that is never below zero
/// at rest can read briefly negative. Once changes stop, `get` is exact.
/// Values wrap at the `i64` range. There is no `set`: a store cannot be
/// spread over shards atomically; use [`Gauge`] for set-style values.
///
/// ```
/// use metricz::UpDownGauge;
/// let in_flight = UpDownGauge::new();
/// in_flight.inc();
/// in_flight.inc();
/// in_flight.dec();
/// in_flight.add(-4);
/// assert_eq!(in_flight.get(), -3);
/// ```
pub struct UpDownGauge {
    shards: Box<[shards::Shard]>,
}

impl UpDownGauge {
    /// A gauge at zero with the default shard count (as [`Counter::new`](crate::Counter::new)).
    pub fn new() -> Self {
        Self::with_shards(shards::default_count())
    }

    /// A gauge at zero with `shards` shards, rounded up to a power of two and
    /// clamped to `1..=65536`.
    pub fn with_shards(shards: usize) -> Self {
        UpDownGauge {
            shards: shards::new(shards::normalize(shards)),
        }
    }

    /// The number of shards.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// Adds `delta` (which may be negative), wrapping at the `i64` range.
    #[inline]
    pub fn add(&self, delta: i64) {
        // Two's complement: adding the bit pattern of a negative delta
        // subtracts, and the wrapping sum in `get` reads it back as an i64.
        shards::add_here(&self.shards, delta as u64);
    }

    /// Subtracts `delta`.
    #[inline]
    pub fn sub(&self, delta: i64) {
        self.add(delta.wrapping_neg());
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Subtracts one.
    #[inline]
    pub fn dec(&self) {
        self.add(-1);
    }

    /// The sum of the shards.
    pub fn get(&self) -> i64 {
        shards::sum(&self.shards) as i64
    }
}

impl Default for UpDownGauge {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for UpDownGauge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpDownGauge")
            .field("value", &self.get())
            .finish()
    }
}
