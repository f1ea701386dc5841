//! A JSON snapshot of a registry: every series' value, in the shape of
//! metricz's `Values()` export — counters, gauges, and histograms (timers
//! included, in seconds) with count, sum, min, max, quantiles and
//! cumulative buckets.
//!
//! [`Snapshot`] is plain data (`serde` `Serialize` and `Deserialize`), so a
//! consumer can read the JSON back into it.
//!
//! ```
//! use metricz::export::json;
//!
//! let reg = metricz::Registry::new();
//! reg.counter_vec("jobs_total", "Jobs.", &["queue"])?.with(&["mail"])?.add(3);
//! reg.gauge("temperature", "Temp.")?.set(21.5);
//! let text = json::to_string(&reg);
//! let back: json::Snapshot = serde_json::from_str(&text).unwrap();
//! assert_eq!(back.counters[0].name, "jobs_total");
//! assert_eq!(back.counters[0].labels["queue"], "mail");
//! assert_eq!(back.counters[0].value, 3);
//! assert_eq!(back.gauges[0].value, Some(21.5));
//! # Ok::<(), metricz::RegistryError>(())
//! ```

use crate::registry::{FamilyView, MetricKind, Value};
use crate::Registry;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::convert::Infallible;

/// Quantiles reported for every histogram.
pub const QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

/// Every series of a registry at one read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Counter series, by family name then label values.
    pub counters: Vec<CounterValue>,
    /// Gauge series.
    pub gauges: Vec<GaugeValue>,
    /// Histogram and timer series.
    pub histograms: Vec<HistogramValue>,
}

/// One counter series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CounterValue {
    /// The family name.
    pub name: String,
    /// Label name → value (the overflow series: `metricz_overflow` →
    /// `"true"`).
    pub labels: BTreeMap<String, String>,
    /// The count.
    pub value: u64,
}

/// One gauge series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GaugeValue {
    /// The family name.
    pub name: String,
    /// Label name → value.
    pub labels: BTreeMap<String, String>,
    /// The value; `null` when it is not finite (JSON has no NaN or
    /// infinities).
    pub value: Option<f64>,
}

/// One histogram or timer series, in the family's base unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramValue {
    /// The family name.
    pub name: String,
    /// Label name → value.
    pub labels: BTreeMap<String, String>,
    /// The family's unit, if declared (`"seconds"` for timers).
    pub unit: Option<String>,
    /// Records.
    pub count: u64,
    /// Sum of the records.
    pub sum: f64,
    /// Smallest record (0 when empty).
    pub min: f64,
    /// Largest record (0 when empty).
    pub max: f64,
    /// Quantile (as text, e.g. `"0.99"`) → value.
    pub quantiles: BTreeMap<String, f64>,
    /// Cumulative counts at the family's export bounds, then `+Inf`
    /// (`le: null`).
    pub buckets: Vec<Bucket>,
}

/// A cumulative bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Upper bound, inclusive; `None` for `+Inf`.
    pub le: Option<f64>,
    /// Records at or below it.
    pub count: u64,
}

/// The values of every series of `registry` (see the [module docs](self));
/// walks [`Registry::collect`], including its overflow report (a counter
/// family `metricz_cardinality_overflow_total` when any family overflowed).
pub fn snapshot(registry: &Registry) -> Snapshot {
    let mut out = Snapshot::default();
    let result = registry.collect(|family| {
        add_family(&mut out, family);
        Ok::<(), Infallible>(())
    });
    match result {
        Ok(()) => out,
        Err(never) => match never {},
    }
}

/// [`snapshot`] as JSON text.
pub fn to_string(registry: &Registry) -> String {
    serde_json::to_string(&snapshot(registry)).expect("plain data always serialises")
}

/// [`snapshot`] as JSON, written to `out`.
pub fn write(registry: &Registry, out: impl std::io::Write) -> serde_json::Result<()> {
    serde_json::to_writer(out, &snapshot(registry))
}

fn add_family(out: &mut Snapshot, family: &mut FamilyView<'_>) {
    let name = family.name();
    let unit = match family.kind() {
        MetricKind::Timer => Some(family.unit().unwrap_or("seconds")),
        _ => family.unit(),
    };
    let result = family.for_each_series(|mut series| {
        let labels: BTreeMap<String, String> = series
            .labels()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        match series.value() {
            Value::Counter(value) => out.counters.push(CounterValue {
                name: name.to_string(),
                labels,
                value,
            }),
            Value::Gauge(v) => out.gauges.push(GaugeValue {
                name: name.to_string(),
                labels,
                value: v.is_finite().then_some(v),
            }),
            Value::Distribution(mut d) => {
                let s = d.snapshot();
                let buckets = d.buckets();
                let mut list: Vec<Bucket> = buckets
                    .cumulative()
                    .map(|(le, count)| Bucket {
                        le: Some(le),
                        count,
                    })
                    .collect();
                list.push(Bucket {
                    le: None,
                    count: buckets.count(),
                });
                let empty = s.count() == 0;
                out.histograms.push(HistogramValue {
                    name: name.to_string(),
                    labels,
                    unit: unit.map(str::to_string),
                    count: s.count(),
                    sum: d.scaled(s.sum()),
                    min: if empty { 0.0 } else { d.scaled(s.min()) },
                    max: if empty { 0.0 } else { d.scaled(s.max()) },
                    quantiles: QUANTILES
                        .iter()
                        .map(|&q| (q.to_string(), d.scaled(s.value_at_quantile(q))))
                        .collect(),
                    buckets: list,
                });
            }
        }
        Ok::<(), Infallible>(())
    });
    match result {
        Ok(()) => {}
        Err(never) => match never {},
    }
}
