//! [`Timer`]: a histogram of durations in nanoseconds.

use super::{Histogram, HistogramError, Snapshot};
use std::time::{Duration, Instant};

/// A histogram of durations, recorded in nanoseconds.
///
/// Values are nanoseconds in the [`Histogram`] (default range 1 ns to one
/// hour, 3 significant figures; longer durations are clamped and counted);
/// exporters convert to seconds.
///
/// ```
/// use metricz::Timer;
/// use std::time::Duration;
///
/// let t = Timer::new();
/// t.record(Duration::from_micros(3));
/// {
///     let _guard = t.start(); // records when dropped
/// }
/// let answer = t.time(|| 6 * 7);
/// assert_eq!(answer, 42);
/// let s = t.snapshot();
/// assert_eq!(s.count(), 3);
/// assert!(s.max() >= 3_000);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Timer {
    histogram: Histogram,
}

impl Timer {
    /// A timer with the default histogram configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// A timer over `histogram` (whose values are taken as nanoseconds).
    pub fn from_histogram(histogram: Histogram) -> Self {
        Timer { histogram }
    }

    /// A timer tracking durations up to `max`, at `significant_figures`.
    pub fn with_max(max: Duration, significant_figures: u8) -> Result<Self, HistogramError> {
        Histogram::builder()
            .highest(saturating_nanos(max).max(2))
            .significant_figures(significant_figures)
            .build()
            .map(Self::from_histogram)
    }

    /// Records `elapsed`, in nanoseconds (saturating at `u64::MAX`).
    #[inline]
    pub fn record(&self, elapsed: Duration) {
        self.histogram.record(saturating_nanos(elapsed));
    }

    /// Starts timing; the returned guard records the elapsed time when
    /// dropped.
    #[inline]
    pub fn start(&self) -> TimerGuard<'_> {
        TimerGuard {
            timer: self,
            start: Instant::now(),
        }
    }

    /// Runs `f`, records how long it took, and returns its result.
    #[inline]
    pub fn time<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.start();
        f()
    }

    /// The histogram of nanoseconds behind this timer.
    pub fn histogram(&self) -> &Histogram {
        &self.histogram
    }

    /// A snapshot of the recorded durations, in nanoseconds.
    pub fn snapshot(&self) -> Snapshot {
        self.histogram.snapshot()
    }
}

fn saturating_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Records the time since [`Timer::start`] into its timer when dropped.
#[derive(Debug)]
#[must_use = "the guard records when dropped; dropping it at once times nothing"]
pub struct TimerGuard<'a> {
    timer: &'a Timer,
    start: Instant,
}

impl TimerGuard<'_> {
    /// The time elapsed so far.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

impl Drop for TimerGuard<'_> {
    fn drop(&mut self) {
        self.timer.record(self.start.elapsed());
    }
}
