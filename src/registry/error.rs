//! [`RegistryError`]: one variant per rule a registration or lookup breaks.

use std::fmt;

/// The kinds of metric a [`Registry`](super::Registry) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetricKind {
    /// A monotonic [`Counter`](crate::Counter).
    Counter,
    /// A [`Gauge`](crate::Gauge).
    Gauge,
    /// A [`Histogram`](crate::Histogram).
    Histogram,
    /// A [`Timer`](crate::Timer) (a histogram of nanoseconds).
    Timer,
}

impl fmt::Display for MetricKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
            MetricKind::Timer => "timer",
        })
    }
}

/// Why a registration or a series lookup was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryError {
    /// A metric name must match `[a-zA-Z_:][a-zA-Z0-9_:]*` (and a counter
    /// may not be named just `_total`).
    InvalidMetricName(String),
    /// A label name must match `[a-zA-Z_][a-zA-Z0-9_]*`.
    InvalidLabelName(String),
    /// Label names starting with `__` are reserved for Prometheus, and
    /// `quantile`, `le` and `metricz_overflow` for the exposition.
    ReservedLabelName(String),
    /// Metric names starting with `metricz_` are reserved for the
    /// registry's own metrics.
    ReservedMetricName(String),
    /// A family's label names must differ from each other.
    DuplicateLabelName(String),
    /// A unit must match `[a-zA-Z0-9_]+`.
    InvalidUnit(String),
    /// The name is registered as another kind of metric.
    KindConflict {
        /// The metric name.
        name: String,
        /// The kind it is registered as.
        registered: MetricKind,
        /// The kind asked for.
        requested: MetricKind,
    },
    /// The name is registered with other label names.
    LabelNamesConflict {
        /// The metric name.
        name: String,
        /// The label names it is registered with.
        registered: Vec<String>,
        /// The label names asked for.
        requested: Vec<String>,
    },
    /// The exposition of this family would share a sample or family name
    /// with an existing family (e.g. a histogram `foo` writes `foo_sum`,
    /// `foo_count` and `foo_bucket`; a counter `foo_total` is the
    /// OpenMetrics family `foo`).
    NameCollision {
        /// The metric name asked for.
        name: String,
        /// The registered family whose exposition it would collide with.
        existing: String,
    },
    /// Export bucket bounds must be non-empty, finite, not negative and
    /// strictly increasing (the bounds as given).
    InvalidBuckets(String),
    /// An export scale must be positive and finite (the scale as given).
    InvalidScale(String),
    /// A native histogram schema must be in −4…8 (the schema as given).
    InvalidNativeSchema(i32),
    /// A native histogram zero threshold must be finite and not negative
    /// (the threshold as given).
    InvalidZeroThreshold(String),
    /// A histogram or timer configuration broke a rule of the histogram
    /// (range or precision).
    InvalidHistogram(crate::HistogramError),
    /// Export settings (buckets, scale, summary, range, precision) were
    /// given for a kind of metric that has none (a counter or gauge).
    NotADistribution {
        /// The metric name.
        name: String,
        /// The kind asked for.
        kind: MetricKind,
    },
    /// [`Registry::register`](super::Registry::register) was given a name
    /// that is already registered.
    AlreadyRegistered(String),
    /// A series lookup gave a different number of label values than the
    /// family has label names.
    LabelCountMismatch {
        /// The family's number of label names.
        expected: usize,
        /// The number of values given.
        got: usize,
    },
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::InvalidMetricName(n) => write!(f, "invalid metric name {n:?}"),
            RegistryError::InvalidLabelName(n) => write!(f, "invalid label name {n:?}"),
            RegistryError::ReservedLabelName(n) => {
                write!(f, "label name {n:?} starts with the reserved prefix \"__\"")
            }
            RegistryError::DuplicateLabelName(n) => write!(f, "label name {n:?} given twice"),
            RegistryError::ReservedMetricName(n) => {
                write!(f, "metric name {n:?} uses the reserved prefix \"metricz_\"")
            }
            RegistryError::InvalidUnit(u) => write!(f, "invalid unit {u:?}"),
            RegistryError::KindConflict {
                name,
                registered,
                requested,
            } => write!(
                f,
                "{name} is registered as a {registered}, not a {requested}"
            ),
            RegistryError::LabelNamesConflict {
                name,
                registered,
                requested,
            } => write!(
                f,
                "{name} is registered with labels {registered:?}, not {requested:?}"
            ),
            RegistryError::NameCollision { name, existing } => write!(
                f,
                "{name} would collide with the exposition of the registered family {existing}"
            ),
            RegistryError::InvalidBuckets(b) => write!(
                f,
                "bucket bounds must be non-empty, finite, not negative and strictly increasing, got {b}"
            ),
            RegistryError::InvalidScale(s) => {
                write!(f, "the export scale must be positive and finite, got {s}")
            }
            RegistryError::InvalidNativeSchema(s) => {
                write!(f, "a native histogram schema must be in -4..=8, got {s}")
            }
            RegistryError::InvalidZeroThreshold(t) => write!(
                f,
                "a native histogram zero threshold must be finite and not negative, got {t}"
            ),
            RegistryError::InvalidHistogram(e) => write!(f, "invalid histogram: {e}"),
            RegistryError::NotADistribution { name, kind } => write!(
                f,
                "{name}: a {kind} has no buckets, scale, summary, range or precision"
            ),
            RegistryError::AlreadyRegistered(name) => write!(f, "{name} is already registered"),
            RegistryError::LabelCountMismatch { expected, got } => {
                write!(f, "expected {expected} label values, got {got}")
            }
        }
    }
}

impl std::error::Error for RegistryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RegistryError::InvalidHistogram(e) => Some(e),
            _ => None,
        }
    }
}

/// A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*` (reserved names
/// such as `__…` not excluded).
pub(crate) fn valid_label_name(name: &str) -> bool {
    valid_name(name, false)
}

fn valid_name(name: &str, colons: bool) -> bool {
    let mut chars = name.chars();
    let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (colons && c == ':');
    let ok_rest = |c: char| c.is_ascii_alphanumeric() || c == '_' || (colons && c == ':');
    matches!(chars.next(), Some(c) if ok_first(c)) && chars.all(ok_rest)
}

/// Checks a metric name against the Prometheus rules; names starting with
/// `metricz_` are reserved for the registry's own metrics.
pub(crate) fn check_metric_name(name: &str) -> Result<(), RegistryError> {
    if !valid_name(name, true) {
        Err(RegistryError::InvalidMetricName(name.to_string()))
    } else if name.starts_with("metricz_") {
        Err(RegistryError::ReservedMetricName(name.to_string()))
    } else {
        Ok(())
    }
}

/// Label names the exposition adds itself: the overflow marker, a
/// summary's `quantile` and a histogram's `le`.
/// The label that marks a family's overflow series.
pub const OVERFLOW_LABEL: &str = "metricz_overflow";

const RESERVED_LABELS: [&str; 3] = [OVERFLOW_LABEL, "quantile", "le"];

/// Checks a family's label names: each valid, none reserved, no repeats, and
/// none the overflow label.
pub(crate) fn check_label_names(names: &[&str]) -> Result<(), RegistryError> {
    for (i, name) in names.iter().enumerate() {
        if !valid_name(name, false) {
            return Err(RegistryError::InvalidLabelName(name.to_string()));
        }
        if name.starts_with("__") || RESERVED_LABELS.contains(name) {
            return Err(RegistryError::ReservedLabelName(name.to_string()));
        }
        if names[..i].contains(name) {
            return Err(RegistryError::DuplicateLabelName(name.to_string()));
        }
    }
    Ok(())
}

/// Checks a unit: non-empty, `[a-zA-Z0-9_]+`.
pub(crate) fn check_unit(unit: &str) -> Result<(), RegistryError> {
    if !unit.is_empty() && unit.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(RegistryError::InvalidUnit(unit.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_follow_prometheus() {
        for ok in ["a", "_x", "http_requests_total", "ns:rule:rate5m", "A9"] {
            assert!(check_metric_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "9a", "a-b", "a b", "é", "a.b"] {
            assert_eq!(
                check_metric_name(bad),
                Err(RegistryError::InvalidMetricName(bad.into()))
            );
        }
    }

    #[test]
    fn label_names_follow_prometheus() {
        assert!(check_label_names(&["method", "_status", "code2"]).is_ok());
        assert_eq!(
            check_label_names(&["a:b"]),
            Err(RegistryError::InvalidLabelName("a:b".into()))
        );
        assert_eq!(
            check_label_names(&["__name"]),
            Err(RegistryError::ReservedLabelName("__name".into()))
        );
        assert_eq!(
            check_label_names(&["metricz_overflow"]),
            Err(RegistryError::ReservedLabelName("metricz_overflow".into()))
        );
        assert_eq!(
            check_label_names(&["quantile"]),
            Err(RegistryError::ReservedLabelName("quantile".into()))
        );
        assert_eq!(
            check_metric_name("metricz_cardinality_overflow_total"),
            Err(RegistryError::ReservedMetricName(
                "metricz_cardinality_overflow_total".into()
            ))
        );
        assert_eq!(
            check_label_names(&["a", "b", "a"]),
            Err(RegistryError::DuplicateLabelName("a".into()))
        );
        assert!(check_unit("seconds").is_ok());
        assert!(check_unit("").is_err() && check_unit("m/s").is_err());
    }
}
