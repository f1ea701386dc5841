//! [`OperationRecorder`]: go-metrics' operational recorder, with statuses and
//! error types kept as separate series.
//!
//! Three families on a [`Registry`]:
//!
//! | family | kind | labels |
//! |---|---|---|
//! | `{prefix}_operations_total` | counter | `operation`, `status` |
//! | `{prefix}_operation_duration_seconds` | timer | `operation`, `status` |
//! | `{prefix}_errors_total` | counter | `operation`, `error_type`, `category` |
//!
//! go-metrics keys its series by name and merges statuses and error types
//! into one series each; here each (operation, status) and each (operation,
//! error type, category) is its own series, as Prometheus expects. Once a
//! combination has been seen, recording it is a lock-free lookup and an
//! increment (and a histogram record): no allocation. The first use of a
//! combination creates its series (allocates); `benches/registry.rs`
//! measures that cold start apart from the steady state.

use super::error::RegistryError;
use super::families::Registry;
use super::family::{CounterVec, TimerVec};
use std::time::Duration;

/// Records operations and errors into labelled families of a registry.
///
/// ```
/// use metricz::{registry::OperationRecorder, Registry};
/// use std::time::Duration;
///
/// let reg = Registry::new();
/// let ops = OperationRecorder::new(&reg, "db")?;
/// ops.record_operation("query", "ok", Duration::from_millis(3));
/// ops.record_operation("query", "timeout", Duration::from_secs(1));
/// ops.record_error("query", "timeout", "transient");
///
/// let mut text = String::new();
/// reg.encode_prometheus(&mut text)?;
/// assert!(text.contains("db_operations_total{operation=\"query\",status=\"ok\"} 1\n"));
/// assert!(text.contains("db_operations_total{operation=\"query\",status=\"timeout\"} 1\n"));
/// assert!(text.contains(
///     "db_errors_total{operation=\"query\",error_type=\"timeout\",category=\"transient\"} 1\n"
/// ));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct OperationRecorder {
    operations: CounterVec,
    durations: TimerVec,
    errors: CounterVec,
}

impl OperationRecorder {
    /// Registers (or finds) the three families under `prefix`.
    pub fn new(registry: &Registry, prefix: &str) -> Result<Self, RegistryError> {
        Ok(OperationRecorder {
            operations: registry.counter_vec(
                &format!("{prefix}_operations_total"),
                "Operations completed, by operation and status.",
                &["operation", "status"],
            )?,
            durations: registry.timer_vec(
                &format!("{prefix}_operation_duration_seconds"),
                "Operation latency, by operation and status.",
                &["operation", "status"],
            )?,
            errors: registry.counter_vec(
                &format!("{prefix}_errors_total"),
                "Errors, by operation, error type and category.",
                &["operation", "error_type", "category"],
            )?,
        })
    }

    /// Counts one `operation` that ended with `status` and took `elapsed`.
    #[inline]
    pub fn record_operation(&self, operation: &str, status: &str, elapsed: Duration) {
        let labels = [operation, status];
        // The label counts are fixed by `new`, so these lookups cannot fail.
        if let Ok(count) = self.operations.with(&labels) {
            count.inc();
        }
        if let Ok(timer) = self.durations.with(&labels) {
            timer.record(elapsed);
        }
    }

    /// Counts one error of `error_type` (in `category`) in `operation`.
    #[inline]
    pub fn record_error(&self, operation: &str, error_type: &str, category: &str) {
        if let Ok(count) = self.errors.with(&[operation, error_type, category]) {
            count.inc();
        }
    }

    /// The operations family.
    pub fn operations(&self) -> &CounterVec {
        &self.operations
    }

    /// The durations family.
    pub fn durations(&self) -> &TimerVec {
        &self.durations
    }

    /// The errors family.
    pub fn errors(&self) -> &CounterVec {
        &self.errors
    }
}
