//! [`Snapshot`]: the merged, immutable state of a histogram.

use super::layout::Layout;
use super::shard::Totals;
use std::fmt;

/// The merged state of a [`Histogram`](super::Histogram) at one read.
///
/// Quantiles follow the `hdrhistogram` crate exactly: for the same recorded
/// values (all at most the highest trackable value; larger ones are clamped
/// here, bucketed there) and configuration,
/// [`value_at_quantile`](Self::value_at_quantile)
/// returns the same value as its `Histogram::value_at_quantile` (the highest
/// value equivalent to the bucket that holds the quantile's record, or the
/// lowest for quantile 0).
///
/// ```
/// use metricz::Histogram;
/// let h = Histogram::new();
/// h.record_n(100, 9);
/// h.record(5_000);
/// let s = h.snapshot();
/// assert_eq!(s.count(), 10);
/// assert_eq!(s.mean(), 590.0);
/// assert_eq!(s.quantiles(&[0.5, 0.9, 1.0]), vec![100, 100, 5_003]);
/// let buckets: Vec<_> = s.buckets().map(|b| (b.low, b.count)).collect();
/// assert_eq!(buckets, vec![(100, 9), (5_000, 1)]);
/// ```
#[derive(Clone)]
pub struct Snapshot {
    layout: Layout,
    counts: Vec<u64>,
    count: u64,
    totals: Totals,
}

impl Snapshot {
    pub(super) fn new(layout: Layout, counts: Vec<u64>, totals: Totals) -> Self {
        let mut snapshot = Snapshot {
            layout,
            counts,
            count: 0,
            totals,
        };
        snapshot.finish();
        snapshot
    }

    /// The layout and counts buffer to refill in place (see
    /// `Histogram::take_interval_into`): the layout is set, the buffer
    /// kept (its capacity reused).
    pub(super) fn refill(&mut self, layout: Layout) -> &mut Vec<u64> {
        self.layout = layout;
        &mut self.counts
    }

    /// Sets the totals after a refill, and derives the count and bounds.
    pub(super) fn finish_with(&mut self, totals: Totals) {
        self.totals = totals;
        self.finish();
    }

    /// Derives the count from the counts, and keeps the bounds within the
    /// first and last non-empty buckets.
    fn finish(&mut self) {
        let (layout, counts, totals) = (&self.layout, &self.counts, &mut self.totals);
        self.count = counts.iter().fold(0u64, |a, &c| a.wrapping_add(c));
        // Min and max are kept apart from the counts, so a read racing a
        // record (or an interval reset) can see a count without its bound.
        // Bounds always lie in the first and last non-empty buckets when
        // they agree with the counts; clamping them there changes nothing
        // then, and otherwise keeps them to the histogram's precision.
        let first = counts.iter().position(|&c| c != 0);
        let last = counts.iter().rposition(|&c| c != 0);
        if let (Some(first), Some(last)) = (first, last) {
            let bucket = |index| {
                let low = layout.value_at(index);
                (low, layout.highest_equivalent(low))
            };
            let (low, high) = bucket(first);
            totals.min = totals.min.clamp(low, high);
            let (low, high) = bucket(last);
            totals.max = totals.max.clamp(low, high);
        }
    }

    /// The number of values recorded (wrapping at 2<sup>64</sup>, where
    /// `hdrhistogram` saturates).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The exact sum of the recorded values (each clamped value counts as the
    /// highest trackable value), wrapping at 2<sup>64</sup>.
    pub fn sum(&self) -> u64 {
        self.totals.sum
    }

    /// The smallest value recorded: exact once recording has stopped (and no
    /// interval was taken while it ran); otherwise within the bucket of the
    /// smallest count, i.e. to the histogram's precision. 0 when empty.
    pub fn min(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.totals.min
        }
    }

    /// The largest value recorded (after clamping), with the same exactness
    /// as [`min`](Self::min); 0 when empty.
    pub fn max(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.totals.max
        }
    }

    /// The arithmetic mean, `sum / count`; 0.0 when empty.
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.totals.sum as f64 / self.count as f64
        }
    }

    /// How many records were above the highest trackable value (and were
    /// recorded as it).
    pub fn clamped(&self) -> u64 {
        self.totals.clamped
    }

    /// The value at quantile `q` (0.0 to 1.0; larger is 1.0, smaller or NaN
    /// is the first record): the highest value equivalent to the bucket
    /// holding the `ceil(q × count)`-th record, or the lowest for `q == 0`.
    /// 0 when empty.
    pub fn value_at_quantile(&self, q: f64) -> u64 {
        let q = if q > 1.0 { 1.0 } else { q };
        // As the hdrhistogram crate: the record at or just past q × count.
        let target = ((q * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (index, &count) in self.counts.iter().enumerate() {
            seen = seen.saturating_add(count);
            if seen >= target {
                let value = self.layout.value_at(index);
                return if q == 0.0 {
                    self.layout.lowest_equivalent(value)
                } else {
                    self.layout.highest_equivalent(value)
                };
            }
        }
        0
    }

    /// [`value_at_quantile`](Self::value_at_quantile) for each of `qs`.
    pub fn quantiles(&self, qs: &[f64]) -> Vec<u64> {
        qs.iter().map(|&q| self.value_at_quantile(q)).collect()
    }

    /// The non-empty buckets, lowest first.
    pub fn buckets(&self) -> Buckets<'_> {
        Buckets {
            snapshot: self,
            index: 0,
        }
    }

    /// The same data as an `hdrhistogram::Histogram<u64>` with the same
    /// configuration, for its serialisation formats and iterators. Each count
    /// is recorded at its bucket's lowest value; min and max therefore become
    /// bucket bounds there (use [`min`](Self::min)/[`max`](Self::max) for the
    /// exact values).
    pub fn to_hdrhistogram(&self) -> hdrhistogram::Histogram<u64> {
        let mut h = hdrhistogram::Histogram::new_with_bounds(
            self.layout.lowest,
            self.layout.highest,
            self.layout.significant_figures,
        )
        .expect("the layout was validated with the same rules");
        for bucket in self.buckets() {
            h.record_n(bucket.low, bucket.count)
                .expect("bucket values are within the configured range");
        }
        h
    }

    /// The lowest discernible value of the histogram this came from.
    pub fn lowest(&self) -> u64 {
        self.layout.lowest
    }

    /// The highest trackable value of the histogram this came from.
    pub fn highest(&self) -> u64 {
        self.layout.highest
    }

    /// The significant figures of the histogram this came from.
    pub fn significant_figures(&self) -> u8 {
        self.layout.significant_figures
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("count", &self.count())
            .field("sum", &self.sum())
            .field("min", &self.min())
            .field("max", &self.max())
            .field("clamped", &self.clamped())
            .finish()
    }
}

/// One non-empty bucket of a [`Snapshot`]: the values `low..=high` were
/// recorded `count` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// The lowest value in the bucket.
    pub low: u64,
    /// The highest value in the bucket.
    pub high: u64,
    /// How many records fell in it.
    pub count: u64,
}

/// Iterator over a snapshot's non-empty buckets; see [`Snapshot::buckets`].
#[derive(Debug, Clone)]
pub struct Buckets<'a> {
    snapshot: &'a Snapshot,
    index: usize,
}

impl Iterator for Buckets<'_> {
    type Item = Bucket;

    fn next(&mut self) -> Option<Bucket> {
        let counts = &self.snapshot.counts;
        while self.index < counts.len() {
            let index = self.index;
            self.index += 1;
            if counts[index] != 0 {
                let layout = &self.snapshot.layout;
                let low = layout.value_at(index);
                return Some(Bucket {
                    low,
                    high: layout.highest_equivalent(low),
                    count: counts[index],
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot whose bounds were read before the record that made its
    /// count (a racing read) reports bounds within that record's bucket, not
    /// `u64::MAX` and 0.
    #[test]
    fn bounds_that_disagree_with_counts_are_clamped_to_their_buckets() {
        let layout = Layout::new(1, 3_600_000_000_000, 3).unwrap();
        let mut counts = vec![0u64; layout.len];
        counts[layout.index_of(5_000)] = 1;
        counts[layout.index_of(90_000)] = 2;
        let stale = Totals {
            sum: 185_000,
            min: u64::MAX,
            max: 0,
            clamped: 0,
        };
        let s = Snapshot::new(layout, counts.clone(), stale);
        assert_eq!((s.min(), s.max()), (5_003, 89_984));
        // Bounds that agree with the counts are kept exactly.
        let exact = Totals {
            min: 5_001,
            max: 90_010,
            ..stale
        };
        let s = Snapshot::new(layout, counts, exact);
        assert_eq!((s.min(), s.max()), (5_001, 90_010));
    }
}
