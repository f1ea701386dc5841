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
//! let text = reg.to_json();
//! let back: json::Snapshot = serde_json::from_str(&text).unwrap();
//! assert_eq!(back.counters[0].name, "jobs_total");
//! assert_eq!(back.counters[0].labels["queue"], "mail");
//! assert_eq!(back.counters[0].value, 3);
//! assert_eq!(back.gauges[0].value, Some(21.5));
//! # Ok::<(), metricz::RegistryError>(())
//! ```

use crate::registry::{AnyFamily, ExportOptions, Family, Registry, OVERFLOW_LABEL};
use crate::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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

impl Registry {
    /// The values of every series (see [`json`](crate::export::json)).
    pub fn json_snapshot(&self) -> Snapshot {
        self.evict_idle();
        let mut out = Snapshot::default();
        for family in self.families() {
            match &family {
                AnyFamily::Counter(f) => f.visit_sorted(|labels, c| {
                    out.counters.push(CounterValue {
                        name: f.name().to_string(),
                        labels: label_map(f, labels),
                        value: c.get(),
                    });
                }),
                AnyFamily::Gauge(f) => f.visit_sorted(|labels, g| {
                    let v = g.get();
                    out.gauges.push(GaugeValue {
                        name: f.name().to_string(),
                        labels: label_map(f, labels),
                        value: v.is_finite().then_some(v),
                    });
                }),
                AnyFamily::Histogram(f) => {
                    let export = f.export_options();
                    f.visit_sorted(|labels, h| {
                        out.histograms.push(histogram(
                            f.name(),
                            f.unit(),
                            label_map(f, labels),
                            h,
                            &export,
                        ));
                    });
                }
                AnyFamily::Timer(f) => {
                    let export = f.export_options();
                    f.visit_sorted(|labels, t| {
                        out.histograms.push(histogram(
                            f.name(),
                            Some(f.unit().unwrap_or("seconds")),
                            label_map(f, labels),
                            t.histogram(),
                            &export,
                        ));
                    });
                }
            }
        }
        out
    }

    /// [`json_snapshot`](Self::json_snapshot) as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.json_snapshot()).expect("plain data always serialises")
    }
}

fn label_map<M: crate::registry::Metric>(
    family: &Family<M>,
    labels: Option<&[Box<str>]>,
) -> BTreeMap<String, String> {
    match labels {
        Some(values) => family
            .label_names()
            .iter()
            .zip(values.iter())
            .map(|(n, v)| (n.clone(), v.to_string()))
            .collect(),
        None => BTreeMap::from([(OVERFLOW_LABEL.to_string(), "true".to_string())]),
    }
}

fn histogram(
    name: &str,
    unit: Option<&str>,
    labels: BTreeMap<String, String>,
    h: &Histogram,
    export: &ExportOptions,
) -> HistogramValue {
    let s = h.snapshot();
    let scale = |v: u64| super::text::scaled(v, export.scale);
    let thresholds: Vec<u64> = export
        .buckets
        .iter()
        .map(|&b| super::text::threshold(b, export.scale))
        .collect();
    let mut per_bucket = vec![0u64; thresholds.len()];
    let (count, _) = h.count_into(&thresholds, &mut per_bucket);
    let mut cumulative = 0u64;
    let mut buckets: Vec<Bucket> = export
        .buckets
        .iter()
        .zip(&per_bucket)
        .map(|(&le, &n)| {
            cumulative += n;
            Bucket {
                le: Some(le),
                count: cumulative,
            }
        })
        .collect();
    buckets.push(Bucket { le: None, count });
    let empty = s.count() == 0;
    HistogramValue {
        name: name.to_string(),
        labels,
        unit: unit.map(str::to_string),
        count: s.count(),
        sum: scale(s.sum()),
        min: if empty { 0.0 } else { scale(s.min()) },
        max: if empty { 0.0 } else { scale(s.max()) },
        quantiles: QUANTILES
            .iter()
            .map(|&q| (q.to_string(), scale(s.value_at_quantile(q))))
            .collect(),
        buckets,
    }
}
