//! Export settings of histogram and timer families: bucket bounds,
//! summary, native histograms and scale (the family side of
//! [`ExportOptions`]).

use super::buckets::{
    check_buckets, check_scale, check_schema, check_zero_threshold, NativeSettings,
};
use super::error::RegistryError;
use super::family::Family;
use crate::primitive::Arc;
use crate::{Histogram, Timer};

/// Export settings of histogram and timer families.
macro_rules! export_settings {
    ($ty:ty) => {
        impl Family<$ty> {
            /// Sets the upper bounds of the exported buckets, in the
            /// family's base unit (seconds for timers): finite, not
            /// negative (no record is) and strictly increasing; `+Inf` is
            /// added. Bucket counts are derived from
            /// the HDR counts at every scrape, so bounds can change at any
            /// time without touching recording; a record counts towards the
            /// first bound at or above the lower edge of its HDR bucket
            /// (exact to the histogram's precision). Defaults:
            /// [`DEFAULT_TIMER_BUCKETS`](super::DEFAULT_TIMER_BUCKETS) for timers,
            /// [`DEFAULT_HISTOGRAM_BUCKETS`](super::DEFAULT_HISTOGRAM_BUCKETS) for histograms.
            pub fn set_buckets(&self, bounds: &[f64]) -> Result<(), RegistryError> {
                check_buckets(bounds)?;
                self.set_export(|e| e.buckets = Arc::from(bounds));
                Ok(())
            }

            /// Exports the family as a summary (quantiles 0.5, 0.9, 0.99,
            /// `_sum`, `_count`) instead of a histogram when `summary`.
            pub fn set_summary(&self, summary: bool) {
                self.set_export(|e| e.summary = summary);
            }

            /// The exported bucket bounds.
            pub fn buckets(&self) -> Vec<f64> {
                self.export_options().buckets.to_vec()
            }

            /// Sets the schema of the family's native histograms (the
            /// protobuf exposition and remote write): −4…8, default
            /// [`DEFAULT_NATIVE_SCHEMA`](super::DEFAULT_NATIVE_SCHEMA).
            /// Bucket `i` spans `(base^(i-1), base^i]` with
            /// `base = 2^(2^-schema)`; a quantile computed from the native
            /// buckets is within a factor `base` of the HDR quantile (see
            /// `metricz::export::native`, which derives them). Derived from the HDR
            /// counts at every export, so it can change at any time.
            ///
            /// ```
            /// let reg = metricz::Registry::new();
            /// let latency = reg.timer_vec("latency_seconds", "Latency.", &["route"])?;
            /// latency.set_native_schema(5)?; // 32 buckets per power of two
            /// assert!(latency.set_native_schema(9).is_err());
            /// # Ok::<(), metricz::RegistryError>(())
            /// ```
            pub fn set_native_schema(&self, schema: i8) -> Result<(), RegistryError> {
                check_schema(schema)?;
                self.set_export(|e| e.native.schema = schema);
                Ok(())
            }

            /// Sets the zero bucket's threshold of the family's native
            /// histograms, in the base unit: records at or below it count
            /// in the zero bucket. Finite and not negative; default
            /// [`DEFAULT_NATIVE_ZERO_THRESHOLD`](super::DEFAULT_NATIVE_ZERO_THRESHOLD).
            ///
            /// ```
            /// let reg = metricz::Registry::new();
            /// let latency = reg.timer_vec("latency_seconds", "Latency.", &["route"])?;
            /// latency.set_native_zero_threshold(1e-6)?; // below 1 µs counts as zero
            /// assert!(latency.set_native_zero_threshold(f64::NAN).is_err());
            /// # Ok::<(), metricz::RegistryError>(())
            /// ```
            pub fn set_native_zero_threshold(&self, threshold: f64) -> Result<(), RegistryError> {
                check_zero_threshold(threshold)?;
                self.set_export(|e| e.native.zero_threshold = threshold);
                Ok(())
            }

            /// Whether the protobuf exposition carries the classic buckets
            /// ([`set_buckets`](Self::set_buckets)) beside the native ones
            /// (default `true`, so a scraper without native histograms
            /// still gets buckets). Text formats always carry the classic
            /// buckets, and only them.
            pub fn set_classic_in_protobuf(&self, classic: bool) {
                self.set_export(|e| e.native.classic = classic);
            }

            /// The family's native histogram settings.
            pub fn native(&self) -> NativeSettings {
                self.export_options().native
            }
        }
    };
}
export_settings!(Histogram);
export_settings!(Timer);

impl Family<Histogram> {
    /// Declares the unit of the recorded integers: the exported value is
    /// the recorded integer × `scale` (e.g. `1e-9` for a histogram that
    /// records nanoseconds in a family named `…_seconds`). Positive and
    /// finite; default 1. Timers always record nanoseconds and export
    /// seconds. This changes the export only: [`Histogram::record_f64`]
    /// converts with each histogram's own scale, which
    /// [`Registry::describe`](super::Registry::describe)`.scale(…)` sets for
    /// a family's series at registration.
    ///
    /// ```
    /// let reg = metricz::Registry::new();
    /// let latency = reg
    ///     .describe("rpc_duration_seconds", "RPC latency.")
    ///     .unit("seconds")
    ///     .labels(&["method"])
    ///     .histogram_vec()?;
    /// latency.set_scale(1e-9)?;                 // records nanoseconds
    /// latency.set_buckets(&[0.001, 0.01, 0.1])?; // seconds
    /// latency.with(&["get"])?.record(2_000_000); // 2 ms
    /// let mut text = String::new();
    /// reg.encode_prometheus(&mut text).unwrap();
    /// assert!(text.contains("rpc_duration_seconds_bucket{method=\"get\",le=\"0.01\"} 1\n"));
    /// assert!(text.contains("rpc_duration_seconds_sum{method=\"get\"} 0.002\n"));
    /// # Ok::<(), metricz::RegistryError>(())
    /// ```
    pub fn set_scale(&self, scale: f64) -> Result<(), RegistryError> {
        check_scale(scale)?;
        self.set_export(|e| e.scale = scale);
        Ok(())
    }
}
