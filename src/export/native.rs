//! Native histograms derived from HDR counts: the sparse exponential
//! buckets of Prometheus's native histograms, computed at export time
//! from the counts a [`Histogram`](crate::Histogram) already holds.
//!
//! # Buckets
//!
//! A schema `s` (−4…8) fixes `base = 2^(2^-s)`; positive bucket `i` spans
//! `(base^(i-1), base^i]`, so 1 is always a bound and each power of two is
//! split into `2^s` buckets. A zero bucket holds the records at or below
//! the zero threshold. [`bucket_index`] computes `i` as Prometheus does
//! (its `frexp` and bound-table search; the table computed with `exp2`),
//! so a value on a bound lands where Prometheus puts it, up to the last
//! bit of the table's entries.
//!
//! Each HDR bucket holds the integers `lo..=hi`; it is counted whole in
//! the native bucket that holds `hi × scale` (its highest equivalent value
//! in the family's base unit), or in the zero bucket when that is at most
//! the zero threshold. Native counts are therefore exact sums of HDR
//! counts, the count is the HDR count and the sum the exact HDR sum
//! (scaled). Records never go negative, so there are no negative buckets.
//!
//! # The error bound of quantiles
//!
//! Let `Q_hdr` be the HDR quantile, [`Snapshot::value_at_quantile`]
//! (the highest equivalent value of the HDR bucket holding the
//! `⌈q × count⌉`-th record) in the base unit, and `Q_native` the quantile
//! Prometheus's `histogram_quantile` computes from the native buckets
//! (the bucket where the cumulative count first reaches `q × count`,
//! linearly interpolated inside it; [`NativeBuckets::quantile`] computes
//! the same). Cumulative counts at native bounds are exact sums of HDR
//! counts, so that record lies in the native bucket `(base^(i-1), base^i]`
//! holding `Q_hdr`, and `Q_native` is inside the same bucket. Hence, for
//! `0 < q ≤ 1` and a quantile above the zero threshold:
//!
//! ```text
//! Q_hdr / base  <  Q_native  ≤  Q_hdr × base          base = 2^(2^-schema)
//! ```
//!
//! i.e. a relative error below `base − 1`: 9.05 % at the default schema 3,
//! 2.2 % at schema 5, 0.27 % at schema 8, 100 % at schema 0. When the
//! quantile falls in the zero bucket both are at most the threshold away
//! from 0 (Prometheus interpolates over `[-threshold, threshold]` when the
//! zero bucket is the only one holding records). The
//! HDR quantile is itself within the histogram's precision
//! (`10^-significant_figures`) of the recorded value.
//!
//! [`Snapshot::value_at_quantile`]: crate::Snapshot::value_at_quantile
//!
//! ```
//! use metricz::export::native::NativeBuckets;
//!
//! let reg = metricz::Registry::new();
//! let h = reg.histogram("size_bytes", "Sizes.")?;
//! for v in [1, 2, 3, 4, 100] {
//!     h.record(v);
//! }
//! let mut native = NativeBuckets::new();
//! reg.collect(|family| {
//!     let settings = family.native().unwrap();
//!     family.for_each_series(|mut series| {
//!         if let metricz::registry::Value::Distribution(d) = series.value() {
//!             native.derive(&d, settings.schema, settings.zero_threshold);
//!         }
//!         Ok::<(), std::convert::Infallible>(())
//!     })
//! }).unwrap();
//! assert_eq!(native.schema(), 3);
//! assert_eq!(native.count(), 5);
//! assert_eq!(native.sum(), 110.0);
//! // 1, 2 and 4 are bounds (indices 0, 8, 16), 3 is in (2^(12/8), 2^(13/8)],
//! // 100 in (2^(53/8), 2^(54/8)]. Gaps of up to two empty buckets stay
//! // inside a span.
//! let buckets: Vec<(i32, u64)> = native.buckets().collect();
//! assert_eq!(buckets, [(0, 1), (8, 1), (13, 1), (14, 0), (15, 0), (16, 1), (54, 1)]);
//! assert_eq!(native.spans(), [(0, 1), (7, 1), (4, 4), (37, 1)]);
//! # Ok::<(), metricz::RegistryError>(())
//! ```

use crate::registry::Distribution;
use std::sync::OnceLock;

/// Native buckets of one series, derived from its HDR counts by
/// [`derive`](Self::derive); reused across series and scrapes, so a warm
/// derivation allocates nothing.
#[derive(Debug, Clone, Default)]
pub struct NativeBuckets {
    schema: i8,
    zero_threshold: f64,
    zero_count: u64,
    count: u64,
    sum: f64,
    /// `(offset, length)` per span: the first span's offset is its first
    /// bucket's index, a later one's the gap after the span before.
    spans: Vec<(i32, u32)>,
    /// Per bucket of the spans, its count less the one before (the first
    /// against zero).
    deltas: Vec<i64>,
    /// The index of the last bucket of the last span, and its count.
    last: Option<(i32, u64)>,
    /// The upper bound of the last bucket: values up to it (and above the
    /// bucket's lower bound, which every later value is) go to it without
    /// computing their index.
    last_upper: f64,
}

/// Empty buckets between two buckets with records that are written as
/// zero counts inside one span rather than as a new span (a span costs
/// two varints, an empty bucket one byte).
const MAX_GAP_IN_SPAN: i32 = 2;

impl NativeBuckets {
    /// Empty buckets (schema 0, no records).
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces these buckets with `distribution`'s records since its last
    /// interval take, in `schema` (−4…8; outside, clamped into it) with
    /// zero threshold `zero_threshold` (in the family's base unit; a
    /// negative, NaN or infinite one is read as 0). The
    /// count, sum and buckets come from one read of the counts, so the
    /// buckets add up to the count. No allocation once the buffers have
    /// grown.
    pub fn derive(&mut self, distribution: &Distribution<'_>, schema: i8, zero_threshold: f64) {
        self.start(schema, zero_threshold);
        let (count, sum) = distribution
            .histogram()
            .for_each_bucket(|_low, high, n| self.push(distribution.scaled(high), n));
        self.finish(count, distribution.scaled(sum));
    }

    /// Starts a derivation: no buckets, `schema` (clamped into −4…8) and
    /// the zero threshold set.
    pub(crate) fn start(&mut self, schema: i8, zero_threshold: f64) {
        self.schema = schema.clamp(-4, 8);
        // A negative, NaN or infinite threshold would leave zero (or every
        // value) outside any bucket: it is read as 0.
        self.zero_threshold = if zero_threshold.is_finite() && zero_threshold > 0.0 {
            zero_threshold
        } else {
            0.0
        };
        self.zero_count = 0;
        self.count = 0;
        self.sum = 0.0;
        self.spans.clear();
        self.deltas.clear();
        self.last = None;
        self.last_upper = f64::NEG_INFINITY;
    }

    /// Counts `n` records of an HDR bucket whose highest equivalent value
    /// is `high` (in the base unit), at or above the previous one's.
    pub(crate) fn push(&mut self, high: f64, n: u64) {
        if high <= self.zero_threshold || high.is_nan() {
            self.zero_count = self.zero_count.wrapping_add(n);
        } else if let (Some((last, _)), true) = (self.last, high <= self.last_upper) {
            // Consecutive HDR buckets mostly share a native bucket (HDR's
            // are the finer): one comparison instead of an index.
            self.add(last, n);
        } else {
            let index = index_in(high, self.schema, bounds(self.schema));
            self.last_upper = bound(index, self.schema);
            self.add(index, n);
        }
    }

    /// Ends a derivation with the records' count and sum.
    pub(crate) fn finish(&mut self, count: u64, sum: f64) {
        self.count = count;
        self.sum = sum;
    }

    /// Adds `n` records to bucket `index`, at or after the last one.
    fn add(&mut self, index: i32, n: u64) {
        let previous = match self.last {
            Some((last, count)) if last == index => {
                self.last = Some((index, count.wrapping_add(n)));
                if let Some(delta) = self.deltas.last_mut() {
                    *delta = delta.wrapping_add(n as i64);
                }
                return;
            }
            Some((last, count)) => {
                let gap = index - last - 1;
                if gap <= MAX_GAP_IN_SPAN {
                    let mut previous = count;
                    for _ in 0..gap {
                        self.deltas.push(0i64.wrapping_sub(previous as i64));
                        previous = 0;
                    }
                    if let Some(span) = self.spans.last_mut() {
                        span.1 += gap as u32 + 1;
                    }
                    previous
                } else {
                    self.spans.push((gap, 1));
                    count
                }
            }
            None => {
                self.spans.push((index, 1));
                0
            }
        };
        self.deltas.push((n as i64).wrapping_sub(previous as i64));
        self.last = Some((index, n));
    }

    /// The schema.
    pub fn schema(&self) -> i8 {
        self.schema
    }

    /// The zero bucket's threshold, in the base unit.
    pub fn zero_threshold(&self) -> f64 {
        self.zero_threshold
    }

    /// Records in the zero bucket.
    pub fn zero_count(&self) -> u64 {
        self.zero_count
    }

    /// All records (the zero bucket's and every bucket's).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The sum of the records, in the base unit.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// The positive spans, `(offset, length)`, as the protobuf formats
    /// write them.
    pub fn spans(&self) -> &[(i32, u32)] {
        &self.spans
    }

    /// The positive buckets' counts as deltas, as the protobuf formats
    /// write them.
    pub fn deltas(&self) -> &[i64] {
        &self.deltas
    }

    /// `(index, count)` of every positive bucket of the spans, ascending
    /// (buckets inside a span may be empty).
    pub fn buckets(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        let mut deltas = self.deltas.iter();
        let mut count = 0i64;
        let mut index = 0i32;
        self.spans
            .iter()
            .enumerate()
            .flat_map(move |(k, &(offset, length))| {
                index = if k == 0 { offset } else { index + offset };
                let start = index;
                index += length as i32;
                (start..start + length as i32).map(|i| (i, ()))
            })
            .map(move |(i, ())| {
                count = count.wrapping_add(deltas.next().copied().unwrap_or(0));
                (i, count as u64)
            })
    }

    /// The quantile `q` as Prometheus's `histogram_quantile` computes it
    /// from these buckets (2.42's interpolation: linear inside the bucket
    /// where the cumulative count reaches `q × count`; the zero bucket,
    /// visited only when it holds records, spans `[0, threshold]`, or
    /// `[−threshold, threshold]` when no other bucket holds records). NaN when empty or `q` is outside [0, 1].
    pub fn quantile(&self, q: f64) -> f64 {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return f64::NAN;
        }
        let total = self.count as f64;
        let rank = q * total;
        let mut seen = self.zero_count as f64;
        // 2.42 gives the zero bucket the lower bound −threshold, raised to
        // 0 when there are positive buckets.
        let lower = if self.spans.is_empty() {
            -self.zero_threshold
        } else {
            0.0
        };
        let mut bucket = (lower, self.zero_threshold, self.zero_count as f64);
        // Prometheus visits the zero bucket only when it holds records.
        if self.zero_count == 0 || seen < rank {
            for (i, n) in self.buckets() {
                let (lower, upper) = bucket_bounds(i, self.schema);
                bucket = (lower, upper, n as f64);
                seen += n as f64;
                if seen >= rank {
                    break;
                }
            }
        }
        let (lower, upper, n) = bucket;
        if seen < rank {
            return upper;
        }
        let rank = rank - (seen - n);
        lower + (upper - lower) * (rank / n)
    }
}

/// The index of the native bucket holding `v` (positive and finite) in
/// `schema` (−4…8): the `i` with `base^(i-1) < v ≤ base^i`, computed as
/// Prometheus computes it (its `frexp` and bound-table search; the table
/// is computed here with `exp2`, which may differ from Prometheus's
/// literals in the last bit, so a value within one ulp of a bound may land
/// one bucket off). Zero, negative and non-finite values give
/// meaningless indices (no panic); they belong in the zero bucket.
///
/// ```
/// use metricz::export::native::bucket_index;
///
/// assert_eq!(bucket_index(1.0, 0), 0); // (0.5, 1]
/// assert_eq!(bucket_index(1.5, 0), 1); // (1, 2]
/// assert_eq!(bucket_index(2.0, 3), 8); // 2 = 2^(8/8)
/// assert_eq!(bucket_index(100.0, -2), 2); // (16, 256]
/// ```
pub fn bucket_index(v: f64, schema: i8) -> i32 {
    let schema = schema.clamp(-4, 8);
    index_in(v, schema, bounds(schema))
}

fn index_in(v: f64, schema: i8, bounds: &[f64]) -> i32 {
    let (frac, mut exp) = frexp(v);
    if schema > 0 {
        // The first bound at or above the fraction, as Go's
        // `sort.SearchFloat64s`.
        let j = bounds.partition_point(|&b| b < frac) as i32;
        j + (exp - 1) * bounds.len() as i32
    } else {
        if frac == 0.5 {
            // A power of two is the upper bound of its bucket.
            exp -= 1;
        }
        let shift = -i32::from(schema);
        let offset = (1 << shift) - 1;
        (exp + offset) >> shift
    }
}

/// The `(lower, upper]` bounds of bucket `index` in `schema`, as
/// Prometheus computes them (`getBound`).
///
/// ```
/// use metricz::export::native::bucket_bounds;
///
/// assert_eq!(bucket_bounds(0, 0), (0.5, 1.0));
/// assert_eq!(bucket_bounds(8, 3), (2f64.powf(7.0 / 8.0), 2.0));
/// ```
pub fn bucket_bounds(index: i32, schema: i8) -> (f64, f64) {
    let schema = schema.clamp(-4, 8);
    (bound(index.saturating_sub(1), schema), bound(index, schema))
}

fn bound(index: i32, schema: i8) -> f64 {
    if schema <= 0 {
        let exp = index << -i32::from(schema);
        return if exp >= 1024 {
            f64::MAX
        } else {
            ldexp(1.0, exp)
        };
    }
    let bounds = bounds(schema);
    let frac = bounds[(index & ((1 << schema) - 1)) as usize];
    let exp = (index >> schema) + 1;
    if frac == 0.5 && exp == 1025 {
        return f64::MAX;
    }
    ldexp(frac, exp)
}

/// Per schema 1…8, the `2^schema` bounds of one power of two scaled into
/// [0.5, 1): `2^(j / 2^schema − 1)`. Empty for schemas 0 and below.
fn bounds(schema: i8) -> &'static [f64] {
    static TABLES: OnceLock<Vec<Vec<f64>>> = OnceLock::new();
    let tables = TABLES.get_or_init(|| {
        (0..=8)
            .map(|s: i32| {
                if s == 0 {
                    return Vec::new();
                }
                let n = 1u32 << s;
                (0..n)
                    .map(|j| (f64::from(j) / f64::from(n) - 1.0).exp2())
                    .collect()
            })
            .collect()
    });
    if schema > 0 {
        &tables[schema as usize]
    } else {
        &[]
    }
}

/// `v = frac × 2^exp` with `frac` in [0.5, 1) (C's `frexp`); zero and
/// non-finite values come back as they are, with exponent 0.
fn frexp(v: f64) -> (f64, i32) {
    if v == 0.0 || !v.is_finite() {
        // As C's and Go's: returned as they are, exponent 0.
        return (v, 0);
    }
    let bits = v.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 {
        // Subnormal: scale into the normal range first.
        let (frac, exp) = frexp(v * 2f64.powi(64));
        return (frac, exp - 64);
    }
    let frac = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (frac, biased - 1022)
}

/// `frac × 2^exp`, exact while the result is a normal float.
fn ldexp(frac: f64, exp: i32) -> f64 {
    if exp > 1023 {
        frac * 2f64.powi(1023) * 2f64.powi(exp - 1023)
    } else if exp < -1022 {
        frac * 2f64.powi(-1022) * 2f64.powi(exp + 1022)
    } else {
        frac * 2f64.powi(exp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_bad_inputs_do_not_panic() {
        assert_eq!(frexp(0.0), (0.0, 0));
        assert_eq!(frexp(f64::INFINITY).1, 0);
        let _ = bucket_index(0.0, 3);
        let _ = bucket_index(-1.0, -4);
        let _ = bucket_index(f64::NAN, 8);
        let _ = bucket_bounds(i32::MIN, 3);
        let mut b = NativeBuckets::new();
        b.start(3, f64::NAN);
        b.push(0.0, 2);
        b.push(f64::NAN, 1);
        b.push(1.0, 1);
        b.finish(4, 1.0);
        assert_eq!((b.zero_threshold(), b.zero_count()), (0.0, 3));
        assert_eq!(b.buckets().collect::<Vec<_>>(), [(0, 1)]);
    }

    #[test]
    fn a_quantile_in_the_only_bucket_interpolates_across_zero() {
        // Prometheus 2.42: the zero bucket alone spans [-t, t].
        let mut b = NativeBuckets::new();
        b.start(3, 1.0);
        b.push(0.5, 4);
        b.finish(4, 2.0);
        assert_eq!(b.quantile(0.5), 0.0);
        assert_eq!(b.quantile(1.0), 1.0);
        b.push(3.0, 4);
        b.finish(8, 14.0);
        // With a positive bucket, the zero bucket spans [0, t].
        assert_eq!(b.quantile(0.25), 0.5);
    }

    #[test]
    fn frexp_matches_c() {
        assert_eq!(frexp(1.0), (0.5, 1));
        assert_eq!(frexp(3.0), (0.75, 2));
        assert_eq!(frexp(0.1), (0.8, -3));
        assert_eq!(frexp(f64::MIN_POSITIVE / 4.0), (0.5, -1023));
    }

    #[test]
    fn indices_follow_the_bounds() {
        for schema in -4..=8i8 {
            for &v in &[1e-9, 0.001, 0.3, 1.0, 1.5, 2.0, 3.0, 1000.0, 7.5e12] {
                let i = bucket_index(v, schema);
                let (lower, upper) = bucket_bounds(i, schema);
                assert!(
                    lower < v && v <= upper,
                    "{v} in {i} of {schema}: ({lower}, {upper}]"
                );
            }
            // Every bound is the upper bound of its own bucket.
            for i in -40..40 {
                let (_, upper) = bucket_bounds(i, schema);
                assert_eq!(bucket_index(upper, schema), i, "schema {schema} bound {i}");
            }
        }
    }

    #[test]
    fn spans_fill_small_gaps_and_split_large_ones() {
        let mut b = NativeBuckets::new();
        for (i, n) in [(-3, 2), (-3, 1), (-1, 5), (4, 1), (5, 7)] {
            b.add(i, n);
        }
        // -3 (3), -2 (0, a gap of one), -1 (5); then a gap of four: new span.
        assert_eq!(b.spans(), [(-3, 3), (4, 2)]);
        assert_eq!(b.deltas(), [3, -3, 5, -4, 6]);
        let buckets: Vec<_> = b.buckets().collect();
        assert_eq!(buckets, [(-3, 3), (-2, 0), (-1, 5), (4, 1), (5, 7)]);
    }
}
