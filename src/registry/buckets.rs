//! How histogram and timer families are exported: bucket bounds, scale,
//! summary, and the conversions between recorded integers and the base
//! unit that the collection walk derives bucket counts with.

use super::error::{MetricKind, RegistryError};
use crate::histogram::per_unit;
use crate::primitive::Arc;

/// How a histogram or timer family is exported; see
/// [`Family::set_buckets`](super::Family::set_buckets).
#[derive(Debug, Clone)]
pub(crate) struct ExportOptions {
    /// Upper bounds of the exported buckets, in the family's base unit,
    /// strictly increasing and finite (`+Inf` is implicit).
    pub(crate) buckets: Arc<[f64]>,
    /// Export as a summary (quantiles) instead of a histogram.
    pub(crate) summary: bool,
    /// Exported value = recorded integer × `scale`.
    pub(crate) scale: f64,
    /// Native histograms (protobuf exposition, remote write).
    pub(crate) native: NativeSettings,
}

/// The schema of native histograms unless a family sets one
/// ([`Family::set_native_schema`](super::Family::set_native_schema)): 3,
/// eight buckets per power of two, each bound 2<sup>1/8</sup> ≈ 1.0905
/// times the one before (the growth factor 1.1 that Prometheus's Go
/// client rounds to this schema).
pub const DEFAULT_NATIVE_SCHEMA: i8 = 3;

/// The zero threshold of native histograms unless a family sets one
/// ([`Family::set_native_zero_threshold`](super::Family::set_native_zero_threshold)):
/// 2<sup>−128</sup>, Prometheus's Go client's default. Records of 0 fall
/// in the zero bucket when the histogram's lowest discernible value is 1
/// (the default); with a coarser one, 0 shares an HDR bucket with small
/// positive values and is counted in a positive native bucket.
pub const DEFAULT_NATIVE_ZERO_THRESHOLD: f64 = 2.938_735_877_055_719e-39;

/// How a histogram or timer family is exported as a native histogram; see
/// [`FamilyView::native`](super::FamilyView::native).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NativeSettings {
    /// The schema, −4…8: bucket `i` spans `(base^(i-1), base^i]` with
    /// `base = 2^(2^-schema)`.
    pub schema: i8,
    /// Records at or below this (in the base unit) count in the zero
    /// bucket.
    pub zero_threshold: f64,
    /// Whether the protobuf exposition carries the classic buckets
    /// ([`Family::set_buckets`](super::Family::set_buckets)) beside the
    /// native ones.
    pub classic: bool,
}

impl Default for NativeSettings {
    fn default() -> Self {
        NativeSettings {
            schema: DEFAULT_NATIVE_SCHEMA,
            zero_threshold: DEFAULT_NATIVE_ZERO_THRESHOLD,
            classic: true,
        }
    }
}

/// Prometheus's default buckets, in seconds: the default for timers.
pub const DEFAULT_TIMER_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Powers of ten from 1 to 10<sup>12</sup>, in the recorded unit (times the
/// family's scale): the default for histograms.
pub const DEFAULT_HISTOGRAM_BUCKETS: [f64; 13] = [
    1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
];

impl ExportOptions {
    pub(super) fn for_kind(kind: MetricKind) -> Self {
        match kind {
            MetricKind::Timer => ExportOptions {
                buckets: Arc::from(&DEFAULT_TIMER_BUCKETS[..]),
                summary: false,
                scale: 1e-9,
                native: NativeSettings::default(),
            },
            _ => ExportOptions {
                buckets: Arc::from(&DEFAULT_HISTOGRAM_BUCKETS[..]),
                summary: false,
                scale: 1.0,
                native: NativeSettings::default(),
            },
        }
    }
}

/// Export bucket bounds: non-empty, finite, not negative, strictly
/// increasing.
pub(super) fn check_buckets(bounds: &[f64]) -> Result<(), RegistryError> {
    let valid = !bounds.is_empty()
        && bounds.iter().all(|b| b.is_finite() && *b >= 0.0)
        && bounds.windows(2).all(|w| w[0] < w[1]);
    if valid {
        Ok(())
    } else {
        Err(RegistryError::InvalidBuckets(format!("{bounds:?}")))
    }
}

/// A native histogram schema: −4…8.
pub(super) fn check_schema(schema: i8) -> Result<(), RegistryError> {
    if (-4..=8).contains(&schema) {
        Ok(())
    } else {
        Err(RegistryError::InvalidNativeSchema(i32::from(schema)))
    }
}

/// A native histogram zero threshold: finite and not negative.
pub(super) fn check_zero_threshold(threshold: f64) -> Result<(), RegistryError> {
    if threshold.is_finite() && threshold >= 0.0 {
        Ok(())
    } else {
        Err(RegistryError::InvalidZeroThreshold(threshold.to_string()))
    }
}

/// An export scale: positive and finite.
pub(super) fn check_scale(scale: f64) -> Result<(), RegistryError> {
    if scale.is_finite() && scale > 0.0 {
        Ok(())
    } else {
        Err(RegistryError::InvalidScale(scale.to_string()))
    }
}

#[derive(Debug, Default)]
pub(super) struct Buckets {
    /// Per export bound, the largest recorded integer at or below it.
    pub(super) thresholds: Vec<u64>,
    /// Per export bound, records in `(previous threshold, threshold]`.
    pub(super) counts: Vec<u64>,
}

impl Buckets {
    /// Thresholds in recorded units for the family's bounds, and zeroed
    /// counts.
    pub(super) fn prepare(&mut self, export: &ExportOptions) {
        self.thresholds.clear();
        self.thresholds.extend(
            export
                .buckets
                .iter()
                .map(|&bound| threshold(bound, export.scale)),
        );
        self.counts.clear();
        self.counts.resize(self.thresholds.len(), 0);
    }
}

/// The largest recorded integer `v` with `v × scale ≤ bound` (saturating;
/// bounds are never negative, see `Family::set_buckets`).
pub(super) fn threshold(bound: f64, scale: f64) -> u64 {
    let x = match per_unit(scale) {
        Some(inv) => bound * inv,
        None => bound / scale,
    };
    let rounded = x.round();
    let t = if (x - rounded).abs() <= 1e-9 * rounded.abs().max(1.0) {
        rounded
    } else {
        x.floor()
    };
    if t <= 0.0 {
        0
    } else if t >= u64::MAX as f64 {
        u64::MAX
    } else {
        t as u64
    }
}

/// A recorded integer in the family's base unit.
pub(super) fn scaled(v: u64, scale: f64) -> f64 {
    match per_unit(scale) {
        Some(inv) if inv != 1.0 => v as f64 / inv,
        _ => v as f64 * scale,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_convert_bounds_to_recorded_units() {
        assert_eq!(threshold(0.005, 1e-9), 5_000_000);
        assert_eq!(threshold(10.0, 1e-9), 10_000_000_000);
        assert_eq!(threshold(2.5, 1.0), 2);
        assert_eq!(threshold(3.0, 1.0), 3);
        assert_eq!(threshold(1e300, 1.0), u64::MAX);
        assert_eq!(threshold(1.0, 0.25), 4);
    }

    #[test]
    fn scaled_values_divide_when_exact() {
        assert_eq!(scaled(9_000_000, 1e-9), 0.009);
        assert_eq!(scaled(3, 2.0), 6.0);
        assert_eq!(scaled(7, 1.0), 7.0);
    }
}
