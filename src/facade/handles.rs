//! The `metrics` handle traits over metricz's metrics: [`Local`], a
//! thread's own wrapper of a series' shared metric.

use crate::{Counter, Gauge, Histogram};
use metrics::{CounterFn, GaugeFn, HistogramFn};
use std::sync::Mutex;

/// A series' metric (a clone sharing its counts) in an `Arc` of one
/// thread's: the `metrics` handles the facade returns wrap it, so their
/// reference count is written by that thread only.
#[derive(Debug)]
pub(super) struct Local<M>(pub(super) M);

/// Serialises `absolute` calls, so two racing ones cannot both add the
/// same difference. `absolute` mirrors a counter kept elsewhere, at a
/// rate of a few calls per scrape, so one lock for all is no cost.
static ABSOLUTE: Mutex<()> = Mutex::new(());

impl CounterFn for Local<Counter> {
    #[inline]
    fn increment(&self, value: u64) {
        self.0.add(value);
    }

    /// Raises the counter to `value` if it is below (a counter never goes
    /// down, so a smaller value, e.g. an older reading arriving late, is
    /// ignored). Increments racing it may land on top: the result is at
    /// least `value`.
    fn absolute(&self, value: u64) {
        let _serial = ABSOLUTE.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.0.get();
        if value > now {
            self.0.add(value - now);
        }
    }
}

impl GaugeFn for Local<Gauge> {
    #[inline]
    fn increment(&self, value: f64) {
        self.0.add(value);
    }

    #[inline]
    fn decrement(&self, value: f64) {
        self.0.sub(value);
    }

    #[inline]
    fn set(&self, value: f64) {
        self.0.set(value);
    }
}

/// The most records one `record_many` makes.
const RECORD_MANY_MAX: u64 = 1 << 32;

impl HistogramFn for Local<Histogram> {
    #[inline]
    fn record(&self, value: f64) {
        self.0.record_f64(value);
    }

    /// `count` is capped at 2³² per call: a histogram's count and sum
    /// wrap at 2⁶⁴, and one call is never meant to come near it.
    fn record_many(&self, value: f64, count: usize) {
        self.0
            .record_f64_n(value, (count as u64).min(RECORD_MANY_MAX));
    }
}
