//! The pusher's self-metrics: the `metricz_push_*` counter families, in
//! the registry it pushes, labelled with the sink's name (the table is in
//! the [module docs](super)).

use crate::registry::{CounterVec, Registry, RegistryError};

/// The self-metric families of one sink. Series are looked up at each
/// increment rather than held, so idle-series eviction (which detaches a
/// series it removes) never leaves the pusher counting into a detached one.
pub(crate) struct SelfMetrics {
    sink: &'static str,
    pub(crate) pushes: CounterVec,
    pub(crate) failures: CounterVec,
    pub(crate) skipped: CounterVec,
    pub(crate) dropped_bytes: CounterVec,
}

impl SelfMetrics {
    /// Registers the four families in `registry` (with the `sink` series
    /// at zero).
    pub(crate) fn register(registry: &Registry, sink: &'static str) -> Result<Self, RegistryError> {
        let family = |name: &str, help: &str| -> Result<CounterVec, RegistryError> {
            let family = registry.self_counter_vec(name, help, &["sink"])?;
            family.with(&[sink])?; // exported from the start, at 0
            Ok(family)
        };
        Ok(SelfMetrics {
            sink,
            pushes: family(
                "metricz_push_total",
                "Successful pushes by a metricz pusher.",
            )?,
            failures: family(
                "metricz_push_failures_total",
                "Failed push attempts by a metricz pusher.",
            )?,
            skipped: family(
                "metricz_push_skipped_total",
                "Push attempts skipped while backing off or with the circuit breaker open.",
            )?,
            dropped_bytes: family(
                "metricz_push_dropped_bytes_total",
                "Encoded bytes a metricz pusher gave up on.",
            )?,
        })
    }

    /// Adds `n` to `family`'s series of this sink.
    pub(crate) fn add(&self, family: &CounterVec, n: u64) {
        if let Ok(series) = family.with(&[self.sink]) {
            series.add(n);
        }
    }
}
