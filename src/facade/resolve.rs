//! From a `metrics` key to a series: sanitised names, sorted labels, the
//! family (created, found, or the overflow series of a conflicting one),
//! and the descriptions.

use super::handles::Local;
use super::{Rejection, Shared};
use crate::registry::{
    Family, Metric, RegistryError, Stored, DEFAULT_HISTOGRAM_BUCKETS, DEFAULT_TIMER_BUCKETS,
};
use crate::{Counter, Gauge, Histogram, Registry};
use metrics::{Key, KeyName, SharedString, Unit};
use std::sync::Arc;

/// A key resolved to a series, as a thread's cache keeps it.
pub(super) struct Resolved<M> {
    /// The thread's own wrapper of the series' metric; `None` for a
    /// rejected key (the handles record nothing).
    pub(super) local: Option<Arc<Local<M>>>,
    /// The family and its change number read before the lookup, to tell
    /// whether the series may have been removed since; `None` where there
    /// is nothing to look up again (the overflow series, a rejection).
    pub(super) watch: Option<(Family<M>, u64)>,
}

impl<M: Metric> Resolved<M> {
    /// Whether the series may have left its family since it was resolved.
    #[inline]
    pub(super) fn is_fresh(&self) -> bool {
        match &self.watch {
            Some((family, seen)) => family.changes() == *seen,
            None => true,
        }
    }
}

/// A kind of metric the facade records, and its `metrics` handle.
pub(super) trait Kind: Metric + Stored + Clone + Sized {
    /// `metrics::Counter`, `Gauge` or `Histogram`.
    type Handle;

    /// The handle over a thread's wrapper (an `Arc` clone).
    fn handle(local: &Arc<Local<Self>>) -> Self::Handle;

    /// The handle that records nothing.
    fn noop() -> Self::Handle;

    /// The family name for a sanitised `metrics` name.
    fn family_name(_: &Registry, sanitised: String) -> String {
        sanitised
    }

    /// The family `name` with these (sorted) label names, created if
    /// absent.
    fn family(
        registry: &Registry,
        name: &str,
        labels: &[&str],
        help: &str,
        unit: Option<Unit>,
    ) -> Result<Family<Self>, RegistryError>;
}

/// `Kind`'s handle items for the `metrics` handle type `$handle`: its
/// `from_arc` over a thread's wrapper, and its no-op.
macro_rules! handle_fns {
    ($handle:ty) => {
        type Handle = $handle;

        #[inline]
        fn handle(local: &Arc<Local<Self>>) -> $handle {
            <$handle>::from_arc(Arc::clone(local))
        }

        fn noop() -> $handle {
            <$handle>::noop()
        }
    };
}

impl Kind for Counter {
    handle_fns!(metrics::Counter);

    /// Counters end in `_total`, as Prometheus names them and as
    /// OpenMetrics writes their samples anyway, unless a counter family of
    /// the name as given was registered beforehand.
    fn family_name(registry: &Registry, mut sanitised: String) -> String {
        if !sanitised.ends_with("_total") && registry.existing::<Counter>(&sanitised).is_none() {
            sanitised.push_str("_total");
        }
        sanitised
    }

    fn family(
        registry: &Registry,
        name: &str,
        labels: &[&str],
        help: &str,
        unit: Option<Unit>,
    ) -> Result<Family<Self>, RegistryError> {
        described(registry, name, labels, help, unit).counter_vec()
    }
}

impl Kind for Gauge {
    handle_fns!(metrics::Gauge);

    fn family(
        registry: &Registry,
        name: &str,
        labels: &[&str],
        help: &str,
        unit: Option<Unit>,
    ) -> Result<Family<Self>, RegistryError> {
        described(registry, name, labels, help, unit).gauge_vec()
    }
}

/// The most a facade histogram records, in recorded integers: 10¹⁵ (11.6
/// days in nanoseconds, 10⁹ at the unitless scale of 10⁻⁶). The HDR blocks
/// are allocated as values reach them, so the range costs nothing until
/// used.
const HISTOGRAM_HIGHEST: u64 = 1_000_000_000_000_000;

impl Kind for Histogram {
    handle_fns!(metrics::Histogram);

    fn family(
        registry: &Registry,
        name: &str,
        labels: &[&str],
        help: &str,
        unit: Option<Unit>,
    ) -> Result<Family<Self>, RegistryError> {
        let unit = unit.or_else(|| unit_of_name(name));
        let (scale, buckets) = histogram_scale(unit);
        described(registry, name, labels, help, unit)
            .range(1, HISTOGRAM_HIGHEST)
            .scale(scale)
            .buckets(&buckets)
            .histogram_vec()
    }
}

/// A description of `name` for registration.
fn described<'a>(
    registry: &'a Registry,
    name: &'a str,
    labels: &'a [&'a str],
    help: &'a str,
    unit: Option<Unit>,
) -> crate::registry::Describe<'a> {
    let describe = registry.describe(name, help).labels(labels);
    match unit.filter(|u| exported_unit(*u)) {
        Some(unit) => describe.unit(unit.as_str()),
        None => describe,
    }
}

/// Whether `unit` is written as an OpenMetrics UNIT (`count` is no unit).
fn exported_unit(unit: Unit) -> bool {
    unit != Unit::Count
}

/// A histogram's scale (the base-unit value of one recorded integer) and
/// its default export buckets (in the base unit).
pub(super) fn histogram_scale(unit: Option<Unit>) -> (f64, Vec<f64>) {
    let timer = |per_second: f64| {
        DEFAULT_TIMER_BUCKETS
            .iter()
            .map(|b| b * per_second)
            .collect()
    };
    match unit {
        Some(Unit::Seconds) => (1e-9, timer(1.0)),
        Some(Unit::Milliseconds) => (1e-6, timer(1e3)),
        Some(Unit::Microseconds) => (1e-3, timer(1e6)),
        Some(Unit::Nanoseconds) => (1.0, timer(1e9)),
        // Whole things: bytes (of any size unit) and counts.
        Some(
            Unit::Bytes
            | Unit::Kibibytes
            | Unit::Mebibytes
            | Unit::Gibibytes
            | Unit::Tebibytes
            | Unit::Count,
        ) => (1.0, DEFAULT_HISTOGRAM_BUCKETS.to_vec()),
        _ => (1e-6, DEFAULT_HISTOGRAM_BUCKETS.to_vec()),
    }
}

/// The time unit a name ends in (`…_seconds`), if any.
fn unit_of_name(name: &str) -> Option<Unit> {
    [
        ("_seconds", Unit::Seconds),
        ("_milliseconds", Unit::Milliseconds),
        ("_microseconds", Unit::Microseconds),
        ("_nanoseconds", Unit::Nanoseconds),
    ]
    .into_iter()
    .find(|(suffix, _)| name.ends_with(suffix))
    .map(|(_, unit)| unit)
}

/// A `metrics` name as a Prometheus metric name (`colons`) or label name:
/// characters outside `[a-zA-Z0-9_]` (and `:` for metric names) become
/// `_`, and a leading digit gains a `_`. Empty stays empty (and is
/// rejected by the registry).
pub(super) fn sanitize(name: &str, colons: bool) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' || (colons && c == ':') {
            c
        } else {
            '_'
        }
    }));
    out
}

impl Shared {
    /// Resolves `key` to a series of kind `M` (the cache's miss path: it
    /// may lock and allocate).
    #[cold]
    pub(super) fn resolve<M: Kind>(&self, key: &Key) -> Resolved<M> {
        match self.try_resolve::<M>(key) {
            Ok(resolved) => resolved,
            Err(rejection) => {
                self.reject(rejection);
                Resolved {
                    local: None,
                    watch: None,
                }
            }
        }
    }

    fn try_resolve<M: Kind>(&self, key: &Key) -> Result<Resolved<M>, Rejection> {
        let name = M::family_name(&self.registry, sanitize(key.name(), true));
        let mut labels: Vec<(String, &str)> = key
            .labels()
            .map(|l| (sanitize(l.key(), false), l.value()))
            .collect();
        labels.sort_by(|a, b| a.0.cmp(&b.0));
        let names: Vec<&str> = labels.iter().map(|(n, _)| n.as_str()).collect();
        let (help, unit) = self.description::<M>(&name);
        let (family, values) = match M::family(&self.registry, &name, &names, &help, unit) {
            Ok(family) => (family, labels.iter().map(|(_, v)| *v).collect()),
            Err(RegistryError::LabelNamesConflict { .. }) => {
                let Some(family) = self.registry.existing::<M>(&name) else {
                    return Err(Rejection::Kind);
                };
                match in_order(family.label_names(), &labels) {
                    // A family registered beforehand with these label
                    // names in another order.
                    Some(values) => (family, values),
                    // Other label names: counted where the family's sums
                    // stay whole, unless the family is one adopted metric.
                    None => {
                        return match family.overflow_handle() {
                            Some(metric) => Ok(Resolved {
                                local: Some(Arc::new(Local(metric))),
                                watch: None,
                            }),
                            None => Err(Rejection::Labels),
                        }
                    }
                }
            }
            Err(e) => return Err(Rejection::of(&e)),
        };
        if family.help().is_empty() {
            // A description that raced this first use: `describe` records
            // it before looking for the family, and this reads the record
            // after creating the family (both under the map's lock), so
            // one of the two sees the other.
            let (help, unit) = self.description::<M>(&name);
            if !help.is_empty() {
                family.describe_late(
                    &help,
                    unit.filter(|u| exported_unit(*u)).map(|u| u.as_str()),
                );
            }
        }
        // Before the lookup: a removal after this read changes the number
        // the cache compares, so the entry is resolved again.
        let seen = family.changes();
        let metric = family.handle(&values[..]).map_err(|e| Rejection::of(&e))?;
        Ok(Resolved {
            local: Some(Arc::new(Local(metric))),
            watch: Some((family, seen)),
        })
    }

    /// The help and unit described for `name` as kind `M` (empty help if
    /// none).
    fn description<M: Kind>(&self, name: &str) -> (String, Option<Unit>) {
        let descriptions = self.descriptions.lock().unwrap_or_else(|e| e.into_inner());
        descriptions
            .get(&(M::KIND, name.to_string()))
            .cloned()
            .unwrap_or((String::new(), None))
    }

    /// Records a description of `name` as kind `M` (the first one wins; a
    /// description of another kind is not this one's) and gives it
    /// to the family if it already exists without help.
    pub(super) fn describe<M: Kind>(&self, key: KeyName, unit: Option<Unit>, help: SharedString) {
        let name = M::family_name(&self.registry, sanitize(key.as_str(), true));
        {
            let mut descriptions = self.descriptions.lock().unwrap_or_else(|e| e.into_inner());
            descriptions
                .entry((M::KIND, name.clone()))
                .or_insert_with(|| (help.to_string(), unit));
        }
        if let Some(family) = self.registry.existing::<M>(&name) {
            let unit = unit.filter(|u| exported_unit(*u)).map(|u| u.as_str());
            family.describe_late(&help, unit);
        }
    }
}

/// The values of `labels` (sorted by name) in the order of `names`, if
/// the two hold the same names.
fn in_order<'a>(names: &[String], labels: &[(String, &'a str)]) -> Option<Vec<&'a str>> {
    if names.len() != labels.len() {
        return None;
    }
    names
        .iter()
        .map(|name| {
            labels
                .binary_search_by(|(n, _)| n.as_str().cmp(name))
                .ok()
                .map(|i| labels[i].1)
        })
        .collect()
}
