//! HdrHistogram's bucket layout and index math.
//!
//! The same arithmetic as the `hdrhistogram` crate (and HdrHistogram in Java),
//! so a value lands in the same bucket here and there and quantiles agree
//! exactly. Values are grouped into buckets of doubling width; each bucket is
//! split into `sub_bucket_count` linear sub-buckets, enough to keep
//! `significant_figures` decimal digits of every value. The counts array
//! stores bucket 0 whole and only the upper half of every later bucket (its
//! lower half is covered by the bucket before), so it has
//! `(buckets + 1) × sub_bucket_count / 2` entries.

use super::error::HistogramError;

/// A validated histogram configuration and the constants derived from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) lowest: u64,
    pub(crate) highest: u64,
    pub(crate) significant_figures: u8,
    unit_magnitude: u32,
    sub_bucket_half_count_magnitude: u32,
    sub_bucket_half_count: u32,
    sub_bucket_mask: u64,
    leading_zero_count_base: u32,
    /// Number of counts (sub-buckets) in the layout.
    pub(crate) len: usize,
}

impl Layout {
    pub(crate) fn new(
        lowest: u64,
        highest: u64,
        significant_figures: u8,
    ) -> Result<Self, HistogramError> {
        if lowest == 0 {
            return Err(HistogramError::LowestIsZero);
        }
        if !(1..=5).contains(&significant_figures) {
            return Err(HistogramError::SignificantFiguresOutOfRange(
                significant_figures,
            ));
        }
        if lowest > u64::MAX / 2 || highest < 2 * lowest {
            return Err(HistogramError::HighestBelowTwiceLowest { lowest, highest });
        }
        // Unit resolution is kept up to 2 × 10^figures, rounded up to a power
        // of two so indexing is shifts and masks.
        let largest_single_unit = 2 * 10u32.pow(u32::from(significant_figures));
        let sub_bucket_count_magnitude = u32::BITS - (largest_single_unit - 1).leading_zeros();
        // As the hdrhistogram crate computes it, through f64: for a `lowest`
        // just below a power of two above 2^53 the float rounds up, and the
        // layouts (hence quantiles) must agree exactly. The rounded float is
        // an integer (at least 1), so its log is taken exactly in integers:
        // `log2` need not be exact at powers of two on every platform.
        let unit_magnitude = ((lowest as f64) as u128).ilog2();
        if unit_magnitude + sub_bucket_count_magnitude > 63 {
            return Err(HistogramError::LowestTooLargeForPrecision {
                lowest,
                significant_figures,
            });
        }
        let sub_bucket_half_count_magnitude = sub_bucket_count_magnitude - 1;
        let sub_bucket_count = 1u32 << sub_bucket_count_magnitude;
        let mut layout = Layout {
            lowest,
            highest,
            significant_figures,
            unit_magnitude,
            sub_bucket_half_count_magnitude,
            sub_bucket_half_count: sub_bucket_count / 2,
            sub_bucket_mask: (u64::from(sub_bucket_count) - 1) << unit_magnitude,
            leading_zero_count_base: 64 - unit_magnitude - sub_bucket_half_count_magnitude - 1,
            len: 0,
        };
        let buckets = layout.buckets_to_cover(highest, sub_bucket_count);
        layout.len = (buckets as usize + 1) * layout.sub_bucket_half_count as usize;
        Ok(layout)
    }

    fn buckets_to_cover(&self, value: u64, sub_bucket_count: u32) -> u32 {
        let mut smallest_untrackable = u64::from(sub_bucket_count) << self.unit_magnitude;
        let mut buckets = 1;
        while smallest_untrackable <= value {
            if smallest_untrackable > u64::MAX / 2 {
                return buckets + 1;
            }
            smallest_untrackable <<= 1;
            buckets += 1;
        }
        buckets
    }

    #[inline]
    fn bucket_of(&self, value: u64) -> u32 {
        self.leading_zero_count_base - (value | self.sub_bucket_mask).leading_zeros()
    }

    #[inline]
    fn sub_bucket_of(&self, value: u64, bucket: u32) -> u32 {
        (value >> (bucket + self.unit_magnitude)) as u32
    }

    /// The count index of `value`; `value` must be at most `highest` (then
    /// the index is below `len`).
    #[inline]
    pub(crate) fn index_of(&self, value: u64) -> usize {
        let bucket = self.bucket_of(value);
        let sub_bucket = self.sub_bucket_of(value, bucket);
        // Bucket 0 uses all its sub-buckets, later buckets their upper half;
        // the sum is never negative (see the module docs).
        (((bucket + 1) << self.sub_bucket_half_count_magnitude) + sub_bucket
            - self.sub_bucket_half_count) as usize
    }

    /// The lowest value counted at `index`.
    pub(crate) fn value_at(&self, index: usize) -> u64 {
        let index = index as u64;
        let half = u64::from(self.sub_bucket_half_count);
        let bucket = (index >> self.sub_bucket_half_count_magnitude) as i64 - 1;
        let sub_bucket = (index & (half - 1)) + half;
        if bucket < 0 {
            (sub_bucket - half) << self.unit_magnitude
        } else {
            sub_bucket << (bucket as u32 + self.unit_magnitude)
        }
    }

    /// The lowest value that shares `value`'s bucket.
    pub(crate) fn lowest_equivalent(&self, value: u64) -> u64 {
        let bucket = self.bucket_of(value);
        u64::from(self.sub_bucket_of(value, bucket)) << (bucket + self.unit_magnitude)
    }

    /// The width of `value`'s bucket.
    pub(crate) fn equivalent_range(&self, value: u64) -> u64 {
        1u64 << (self.unit_magnitude + self.bucket_of(value))
    }

    /// The highest value that shares `value`'s bucket.
    pub(crate) fn highest_equivalent(&self, value: u64) -> u64 {
        if value == u64::MAX {
            return u64::MAX;
        }
        self.lowest_equivalent(value)
            .saturating_add(self.equivalent_range(value))
            - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(lowest: u64, highest: u64, figures: u8) -> hdrhistogram::Histogram<u64> {
        hdrhistogram::Histogram::new_with_bounds(lowest, highest, figures).unwrap()
    }

    #[test]
    fn len_matches_hdrhistogram() {
        for (lowest, highest, figures) in [
            (1, 2, 1),
            (1, 3_600_000_000_000, 3),
            (1, u64::MAX, 5),
            (1000, 100_000_000, 2),
            (1 << 20, 1 << 50, 4),
        ] {
            let layout = Layout::new(lowest, highest, figures).unwrap();
            assert_eq!(
                layout.len,
                reference(lowest, highest, figures).distinct_values()
            );
        }
    }

    #[test]
    fn index_and_value_round_trip_like_hdrhistogram() {
        let layout = Layout::new(1, 3_600_000_000_000, 3).unwrap();
        let reference = reference(1, 3_600_000_000_000, 3);
        let mut value = 0u64;
        while value <= layout.highest {
            let index = layout.index_of(value);
            assert!(index < layout.len);
            assert_eq!(
                layout.lowest_equivalent(value),
                reference.lowest_equivalent(value)
            );
            assert_eq!(
                layout.highest_equivalent(value),
                reference.highest_equivalent(value)
            );
            assert_eq!(
                layout.value_at(index),
                layout.lowest_equivalent(value),
                "value {value}"
            );
            assert_eq!(layout.index_of(layout.value_at(index)), index);
            value = value * 3 / 2 + 1;
        }
    }

    #[test]
    fn large_lowest_rounds_like_hdrhistogram() {
        let lowest = (1u64 << 54) - 1;
        let layout = Layout::new(lowest, u64::MAX, 2).unwrap();
        let reference = reference(lowest, u64::MAX, 2);
        let value = 3u64 << 56;
        assert_eq!(
            layout.highest_equivalent(value),
            reference.highest_equivalent(value)
        );
        assert_eq!(layout.len, reference.distinct_values());
    }

    #[test]
    fn rejects_bad_configurations() {
        assert_eq!(Layout::new(0, 10, 3), Err(HistogramError::LowestIsZero));
        assert_eq!(
            Layout::new(1, 10, 0),
            Err(HistogramError::SignificantFiguresOutOfRange(0))
        );
        assert_eq!(
            Layout::new(1, 10, 6),
            Err(HistogramError::SignificantFiguresOutOfRange(6))
        );
        assert_eq!(
            Layout::new(10, 19, 3),
            Err(HistogramError::HighestBelowTwiceLowest {
                lowest: 10,
                highest: 19
            })
        );
        assert_eq!(
            Layout::new(u64::MAX / 2 + 1, u64::MAX, 3),
            Err(HistogramError::HighestBelowTwiceLowest {
                lowest: u64::MAX / 2 + 1,
                highest: u64::MAX
            })
        );
        assert!(matches!(
            Layout::new(1 << 60, u64::MAX, 3),
            Err(HistogramError::LowestTooLargeForPrecision { .. })
        ));
    }
}
