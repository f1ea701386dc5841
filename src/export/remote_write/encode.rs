//! A registry as a remote write request: [`encode`] and the configurable
//! [`Encoder`], one [`TimeSeries`] per exported series of the collection
//! walk ([`Registry::collect`]), its overflow report included, and one
//! [`MetricMetadata`] per family (see the [module docs](super) for the
//! mapping).

use crate::export::native::NativeBuckets;
use crate::export::proto::remote::{
    BucketSpan, Histogram, Label, MetricMetadata, Sample, TimeSeries, WriteRequest,
};
use crate::registry::{FamilyView, LabelSet, MetricKind, Registry, Value};
use std::convert::Infallible;

/// Quantiles written for histograms and timers exported as summaries (as
/// the text formats write them).
const QUANTILES: [(f64, &str); 3] = [(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99")];

/// The label that carries the metric name.
pub(super) const NAME_LABEL: &str = "__name__";

/// `MetricMetadata.type` values (`prompb.MetricMetadata.MetricType`).
const TYPE_COUNTER: i32 = 1;
const TYPE_GAUGE: i32 = 2;
const TYPE_HISTOGRAM: i32 = 3;
const TYPE_SUMMARY: i32 = 5;

/// Replaces the contents of `request` with every series of `registry`,
/// each with one sample (or native histogram sample) stamped
/// `timestamp_ms` (milliseconds since the Unix epoch), and the metadata of
/// every family. Native histograms are included; no external labels are
/// added (see [`Encoder`] for both). Walks [`Registry::collect`], so, like
/// every collection, runs an idle-eviction pass first when eviction is on.
///
/// ```
/// use metricz::export::proto::remote::WriteRequest;
///
/// let reg = metricz::Registry::new();
/// reg.counter_vec("jobs_total", "Jobs.", &["queue"])?.with(&["mail"])?.add(3);
/// let mut request = WriteRequest::default();
/// metricz::export::remote_write::encode(&reg, 1_700_000_000_000, &mut request);
/// let series = &request.timeseries[0];
/// let labels: Vec<(&str, &str)> =
///     series.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
/// assert_eq!(labels, [("__name__", "jobs_total"), ("queue", "mail")]);
/// assert_eq!(series.samples[0].value, 3.0);
/// assert_eq!(series.samples[0].timestamp, 1_700_000_000_000);
/// assert_eq!(request.metadata[0].metric_family_name, "jobs_total");
/// # Ok::<(), metricz::RegistryError>(())
/// ```
pub fn encode(registry: &Registry, timestamp_ms: i64, request: &mut WriteRequest) {
    Encoder::new().encode(registry, timestamp_ms, request);
}

/// A registry-to-[`WriteRequest`] encoder with settings: external labels
/// added to every series, and whether native histograms are written. It
/// keeps its native-bucket buffers between calls. [`encode`] is
/// `Encoder::new().encode(…)`.
///
/// ```
/// use metricz::export::proto::remote::WriteRequest;
/// use metricz::export::remote_write::Encoder;
///
/// let reg = metricz::Registry::new();
/// reg.gauge("load", "Load.")?.set(0.5);
/// let mut encoder = Encoder::new().label("instance", "web-1").native_histograms(false);
/// let mut request = WriteRequest::default();
/// encoder.encode(&reg, 5, &mut request);
/// let names: Vec<&str> = request.timeseries[0].labels.iter().map(|l| l.name.as_str()).collect();
/// assert_eq!(names, ["__name__", "instance"]);
/// # Ok::<(), metricz::RegistryError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Encoder {
    /// External labels, sorted by name, one per name.
    labels: Vec<(String, String)>,
    native_histograms: bool,
    native: NativeBuckets,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    /// An encoder with no external labels that writes native histograms.
    ///
    /// ```
    /// let encoder = metricz::export::remote_write::Encoder::new();
    /// ```
    pub fn new() -> Self {
        Encoder {
            labels: Vec::new(),
            native_histograms: true,
            native: NativeBuckets::new(),
        }
    }

    /// Adds the label `name="value"` to every series (a series' own label
    /// of the same name wins; a later call with the same name replaces an
    /// earlier one; an empty value adds nothing, since remote write treats
    /// an empty label as absent). Written as given: the
    /// [pusher](super::RemoteWritePusherBuilder::spawn) checks the names.
    ///
    /// ```
    /// let encoder = metricz::export::remote_write::Encoder::new()
    ///     .label("instance", "web-1")
    ///     .label("region", "eu");
    /// ```
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let (name, value) = (name.into(), value.into());
        match self.labels.binary_search_by(|(n, _)| n.as_str().cmp(&name)) {
            Ok(i) => self.labels[i].1 = value,
            Err(i) => self.labels.insert(i, (name, value)),
        }
        self
    }

    /// Whether histograms and timers (not exported as summaries) carry a
    /// native histogram sample in the series named after the family
    /// (default `true`). Without them the classic `_bucket`, `_sum` and
    /// `_count` series are always written; with them, as the family's
    /// [`NativeSettings::classic`](crate::registry::NativeSettings::classic)
    /// says.
    ///
    /// ```
    /// // For a receiver that does not know native histograms.
    /// let encoder = metricz::export::remote_write::Encoder::new().native_histograms(false);
    /// ```
    pub fn native_histograms(mut self, on: bool) -> Self {
        self.native_histograms = on;
        self
    }

    /// The external labels, sorted by name.
    pub(super) fn labels(&self) -> &[(String, String)] {
        &self.labels
    }

    /// Replaces the contents of `request` with every series of `registry`
    /// stamped `timestamp_ms` and every family's metadata (see [`encode`]).
    ///
    /// ```
    /// use metricz::export::proto::remote::WriteRequest;
    ///
    /// let reg = metricz::Registry::new();
    /// reg.counter("jobs_total", "Jobs.")?.add(2);
    /// let mut encoder = metricz::export::remote_write::Encoder::new().label("job", "batch");
    /// let mut request = WriteRequest::default();
    /// encoder.encode(&reg, 7, &mut request);
    /// assert_eq!(request.timeseries[0].labels[1].value, "batch");
    /// # Ok::<(), metricz::RegistryError>(())
    /// ```
    pub fn encode(&mut self, registry: &Registry, timestamp_ms: i64, request: &mut WriteRequest) {
        request.timeseries.clear();
        request.metadata.clear();
        let result = registry.collect(|family| {
            self.family(family, timestamp_ms, request);
            Ok::<(), Infallible>(())
        });
        match result {
            Ok(()) => {}
            Err(never) => match never {},
        }
    }

    fn family(&mut self, family: &mut FamilyView<'_>, ts: i64, request: &mut WriteRequest) {
        let name = family.name();
        let summary = family.exported_as_summary();
        let native = family.native().unwrap_or_default();
        let r#type = match family.kind() {
            MetricKind::Counter => TYPE_COUNTER,
            MetricKind::Gauge => TYPE_GAUGE,
            MetricKind::Histogram | MetricKind::Timer if summary => TYPE_SUMMARY,
            MetricKind::Histogram | MetricKind::Timer => TYPE_HISTOGRAM,
        };
        request.metadata.push(MetricMetadata {
            r#type,
            metric_family_name: name.to_string(),
            help: family.help().to_string(),
            unit: family.unit().unwrap_or("").to_string(),
        });
        let external = &self.labels;
        let natives = &mut self.native;
        let write_native = self.native_histograms;
        let out = &mut request.timeseries;
        let mut le = ryu::Buffer::new();
        let result = family.for_each_series(|series| {
            let labels = series.labels();
            let sample = |value: f64| Sample {
                value,
                timestamp: ts,
            };
            match series.into_value() {
                Value::Counter(n) => {
                    out.push(float_series(
                        name,
                        "",
                        labels,
                        None,
                        external,
                        sample(n as f64),
                    ));
                }
                Value::Gauge(x) => {
                    out.push(float_series(name, "", labels, None, external, sample(x)));
                }
                Value::Distribution(d) if summary => {
                    let s = d.snapshot();
                    for (q, text) in QUANTILES {
                        let v = d.scaled(s.value_at_quantile(q));
                        let extra = Some(("quantile", text));
                        out.push(float_series(name, "", labels, extra, external, sample(v)));
                    }
                    let sum = sample(d.scaled(s.sum()));
                    out.push(float_series(name, "_sum", labels, None, external, sum));
                    let count = sample(s.count() as f64);
                    out.push(float_series(name, "_count", labels, None, external, count));
                }
                Value::Distribution(mut d) => {
                    // Native and classic buckets from one read of the
                    // counts, so the two agree.
                    natives.start(native.schema, native.zero_threshold);
                    let buckets = d.buckets_with(|high, n| {
                        if write_native {
                            natives.push(high, n);
                        }
                    });
                    natives.finish(buckets.count(), buckets.sum());
                    if write_native {
                        let mut series =
                            float_series(name, "", labels, None, external, sample(0.0));
                        series.samples.clear();
                        series.histograms.push(histogram(natives, ts));
                        out.push(series);
                    }
                    if native.classic || !write_native {
                        for (bound, cumulative) in buckets.cumulative() {
                            let extra = Some(("le", finite(&mut le, bound)));
                            let s = sample(cumulative as f64);
                            out.push(float_series(name, "_bucket", labels, extra, external, s));
                        }
                        let count = sample(buckets.count() as f64);
                        let inf = Some(("le", "+Inf"));
                        out.push(float_series(name, "_bucket", labels, inf, external, count));
                        let sum = sample(buckets.sum());
                        out.push(float_series(name, "_sum", labels, None, external, sum));
                        out.push(float_series(name, "_count", labels, None, external, count));
                    }
                }
            }
            Ok::<(), Infallible>(())
        });
        match result {
            Ok(()) => {}
            Err(never) => match never {},
        }
    }
}

/// One series `name+suffix` with the series' own labels, `extra` (`le` or
/// `quantile`), the external labels its own labels do not name, and
/// `__name__`, sorted by name; empty values left out. Holds `sample`.
fn float_series(
    name: &str,
    suffix: &str,
    own: LabelSet<'_>,
    extra: Option<(&str, &str)>,
    external: &[(String, String)],
    sample: Sample,
) -> TimeSeries {
    let mut labels: Vec<Label> = Vec::with_capacity(own.len() + external.len() + 2);
    labels.push(Label {
        name: NAME_LABEL.to_string(),
        value: format!("{name}{suffix}"),
    });
    let mut push = |n: &str, v: &str| {
        if !v.is_empty() {
            labels.push(Label {
                name: n.to_string(),
                value: v.to_string(),
            });
        }
    };
    for (n, v) in own.iter() {
        push(n, v);
    }
    if let Some((n, v)) = extra {
        push(n, v);
    }
    for (n, v) in external {
        let taken = n == NAME_LABEL
            || own.iter().any(|(own, _)| own == n)
            || extra.is_some_and(|(e, _)| e == n);
        if !taken {
            push(n, v);
        }
    }
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    TimeSeries {
        labels,
        samples: vec![sample],
        histograms: Vec::new(),
    }
}

/// A native histogram sample (integer counts) from derived buckets.
fn histogram(native: &NativeBuckets, ts: i64) -> Histogram {
    Histogram {
        count_int: native.count(),
        sum: native.sum(),
        schema: i32::from(native.schema()),
        zero_threshold: native.zero_threshold(),
        zero_count_int: native.zero_count(),
        negative_spans: Vec::new(),
        negative_deltas: Vec::new(),
        positive_spans: native
            .spans()
            .iter()
            .map(|&(offset, length)| BucketSpan { offset, length })
            .collect(),
        positive_deltas: native.deltas().to_vec(),
        reset_hint: 0,
        timestamp: ts,
    }
}

/// A finite bucket bound as the text formats write it (`1`, `0.5`, `0.00001`).
fn finite(b: &mut ryu::Buffer, v: f64) -> &str {
    let text = b.format_finite(v);
    text.strip_suffix(".0").unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(series: &TimeSeries) -> Vec<(&str, &str)> {
        series
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect()
    }

    #[test]
    fn external_labels_merge_sorted_and_own_labels_win() {
        let reg = Registry::new();
        let c = reg
            .counter_vec("hits_total", "Hits.", &["zone", "code"])
            .unwrap();
        c.with(&["eu", ""]).unwrap().add(4);
        let mut enc = Encoder::new()
            .label("zone", "external")
            .label("app", "x")
            .label("app", "y")
            .label("__name__", "no")
            .label("empty", "");
        assert_eq!(
            enc.labels(),
            [
                ("__name__".to_string(), "no".to_string()),
                ("app".to_string(), "y".to_string()),
                ("empty".to_string(), String::new()),
                ("zone".to_string(), "external".to_string()),
            ]
        );
        let mut req = WriteRequest::default();
        enc.encode(&reg, 42, &mut req);
        assert_eq!(req.timeseries.len(), 1);
        // `code` is empty: left out, as remote write reads empty as absent.
        assert_eq!(
            names(&req.timeseries[0]),
            [("__name__", "hits_total"), ("app", "y"), ("zone", "eu")]
        );
        assert_eq!(
            req.timeseries[0].samples,
            [Sample {
                value: 4.0,
                timestamp: 42
            }]
        );
        assert_eq!(req.metadata[0].r#type, TYPE_COUNTER);
    }

    #[test]
    fn histograms_write_native_and_classic_series() {
        let reg = Registry::new();
        let h = reg.histogram_vec("size_bytes", "Sizes.", &["op"]).unwrap();
        h.set_buckets(&[2.0, 10.0]).unwrap();
        for v in [1, 2, 3, 4, 100] {
            h.with(&["get"]).unwrap().record(v);
        }
        let mut req = WriteRequest::default();
        encode(&reg, 9, &mut req);
        let series: Vec<String> = req
            .timeseries
            .iter()
            .map(|s| {
                let l = names(s);
                format!("{l:?}")
            })
            .collect();
        assert_eq!(req.timeseries.len(), 1 + 3 + 2, "{series:#?}");
        let native = &req.timeseries[0];
        assert!(native.samples.is_empty());
        let hist = &native.histograms[0];
        assert_eq!((hist.count_int, hist.sum, hist.schema), (5, 110.0, 3));
        let buckets: i64 = {
            let mut running = 0i64;
            hist.positive_deltas
                .iter()
                .map(|d| {
                    running += d;
                    running
                })
                .sum()
        };
        assert_eq!(buckets as u64 + hist.zero_count_int, hist.count_int);
        let le: Vec<(&str, f64)> = req.timeseries[1..4]
            .iter()
            .map(|s| (s.labels[1].value.as_str(), s.samples[0].value))
            .collect();
        assert_eq!(le, [("2", 2.0), ("10", 4.0), ("+Inf", 5.0)]);
        assert_eq!(req.metadata[0].r#type, TYPE_HISTOGRAM);

        // Without native histograms, or without classic ones.
        let mut req = WriteRequest::default();
        Encoder::new()
            .native_histograms(false)
            .encode(&reg, 9, &mut req);
        assert_eq!(req.timeseries.len(), 5);
        assert!(req.timeseries.iter().all(|s| s.histograms.is_empty()));
        h.set_classic_in_protobuf(false);
        encode(&reg, 9, &mut req);
        assert_eq!(req.timeseries.len(), 1);
        assert_eq!(req.timeseries[0].histograms.len(), 1);
    }

    #[test]
    fn summaries_write_quantiles_sum_and_count() {
        let reg = Registry::new();
        let t = reg.timer_vec("lat_seconds", "Latency.", &[]).unwrap();
        t.set_summary(true);
        t.with::<[&str; 0]>(&[])
            .unwrap()
            .record(std::time::Duration::from_millis(2));
        let mut req = WriteRequest::default();
        encode(&reg, 1, &mut req);
        let got: Vec<String> = req
            .timeseries
            .iter()
            .map(|s| format!("{:?} {}", names(s), s.samples[0].value))
            .collect();
        assert_eq!(got.len(), 5, "{got:#?}");
        assert!(got[0].contains("(\"quantile\", \"0.5\")"), "{got:#?}");
        assert_eq!(req.timeseries[3].samples[0].value, 0.002);
        assert_eq!(req.timeseries[4].samples[0].value, 1.0);
        assert_eq!(
            (req.metadata[0].r#type, req.metadata[0].unit.as_str()),
            (TYPE_SUMMARY, "seconds")
        );
    }

    #[test]
    fn bounds_are_written_like_the_text_formats() {
        let mut b = ryu::Buffer::new();
        assert_eq!(finite(&mut b, 1.0), "1");
        assert_eq!(finite(&mut b, 0.25), "0.25");
        assert_eq!(finite(&mut b, 1e-5), "0.00001");
    }
}
