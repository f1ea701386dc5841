//! The export section: encoding one registry in every format, beside the peers.
//!
//! One metricz registry holds [`COUNTER_SERIES`] two-label counters
//! (`export_requests_total`, `method` = `m0`…`m99`, `status` = `s0`…`s99`,
//! series `i` at `i + 1`, as `benches/export.rs` builds them) and
//! [`HISTOGRAM_SERIES`] timer series (`request_duration_seconds`, `route` =
//! `r0`…`r99`, classic bounds 1 µs × 2^k for k = 0…16, native schema 3, each
//! holding the same [`RECORDS`] log-uniform records in 1 µs–100 ms, as
//! `benches/peers` builds them). `prometheus` and `prometheus_client`
//! registries hold the same series (their histograms with the same classic
//! bounds, observing the records in seconds).
//!
//! Each encoder writes into a buffer it clears and reuses (warm), timed
//! with [`crate::time_encodes`]: the median, min and max over
//! `config.runs` runs. The rows:
//!
//! | format | metricz | peers |
//! |---|---|---|
//! | `prometheus-text` (0.0.4) | `Registry::encode_prometheus` | `prometheus`: `gather()` + `TextEncoder` |
//! | `openmetrics` | `Registry::encode_openmetrics` | `prometheus_client::encoding::text::encode` (OpenMetrics is its only text format) |
//! | `protobuf` | `Registry::encode_protobuf` (native + classic buckets) | — (`prometheus`'s `ProtobufEncoder` needs its `protobuf` feature, off here; `prometheus_client`'s needs `prometheus_protobuf`, see `benches/peers`) |
//! | `protobuf-native-only` | the same with `set_classic_in_protobuf(false)` | — |
//! | `json` | `export::json::write` into a `Vec<u8>` | — |
//! | `influx` | `export::influx::encode` | — |
//! | `statsd`, `dogstatsd` | `export::statsd::encode` | — |
//! | `remote-write` | `remote_write::Encoder::encode` into a reused `WriteRequest`, prost into a reused `Vec`, snappy into a reused `Vec` (the pusher's body) | — |
//!
//! StatsD sends counters as deltas: with nothing changed a warm encode
//! would send no counter line. So every StatsD encode follows an untimed
//! increment of every counter, and sends all 10 000 counters (`:1|c`);
//! only the encodes are timed (same warm-up and runs as `time_encodes`).
//! StatsD rows run last, since their increments change the counters.
//!
//! Each row's ratio is its median over its baseline's: the fastest peer
//! in its format, or, for a format no peer writes here,
//! `prometheus_client`'s text (OpenMetrics).
//!
//! Every output is checked before timing: the counter sample count and a
//! few samples with their values, the histograms' counts and sums (text
//! parsed, protobuf and remote write decoded, JSON deserialised); every
//! timed encode must then give the checked byte count again, so a broken
//! encoder fails the study instead of looking fast.

use crate::meta::Meta;
use crate::Config;
use metricz::export::proto::client::{MetricFamily, MetricType};
use metricz::export::proto::remote::WriteRequest;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use prost::Message;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// Counter series in the registry.
pub(crate) const COUNTER_SERIES: usize = 10_000;
/// Histogram (timer) series in the registry.
pub(crate) const HISTOGRAM_SERIES: usize = 100;
/// Records in each histogram series (the same values in every series).
pub(crate) const RECORDS: usize = 1_000;
/// The counter family, as exposed by every implementation.
const COUNTER_FAMILY: &str = "export_requests_total";
/// The histogram family.
const HISTOGRAM_FAMILY: &str = "request_duration_seconds";
/// Native histogram schema (metricz's default).
const SCHEMA: i8 = 3;
/// Classic bucket bounds: 1 µs × 2^k, k = 0…16.
const BOUNDS: usize = 17;
/// The timestamp of the influx points (ns) and remote write samples (ms).
const TIMESTAMP_MS: i64 = 1_700_000_000_000;

/// metricz.
pub(crate) const METRICZ: &str = "metricz";
/// `prometheus` 0.14 (`gather` + `TextEncoder`).
pub(crate) const PROMETHEUS: &str = "prometheus";
/// `prometheus_client` 0.25 (`encoding::text::encode`, OpenMetrics).
pub(crate) const PROMETHEUS_CLIENT: &str = "prometheus-client";

/// Every (format, implementation) row [`measure`] returns, in order.
pub(crate) const ROWS: [(&str, &str); 11] = [
    ("prometheus-text", METRICZ),
    ("prometheus-text", PROMETHEUS),
    ("openmetrics", METRICZ),
    ("openmetrics", PROMETHEUS_CLIENT),
    ("protobuf", METRICZ),
    ("protobuf-native-only", METRICZ),
    ("json", METRICZ),
    ("influx", METRICZ),
    ("statsd", METRICZ),
    ("dogstatsd", METRICZ),
    ("remote-write", METRICZ),
];

/// One encoder's timing: one registry, one format, one implementation.
#[derive(Debug, Clone)]
pub(crate) struct ExportRow {
    /// The format (one of the [`ROWS`] formats).
    pub(crate) format: &'static str,
    /// [`METRICZ`], [`PROMETHEUS`] or [`PROMETHEUS_CLIENT`].
    pub(crate) implementation: &'static str,
    /// Series the registry holds (counters + histograms).
    pub(crate) series: usize,
    /// Bytes of one encode's output.
    pub(crate) bytes: usize,
    /// Milliseconds per encode of each run, sorted.
    pub(crate) ms: Vec<f64>,
}

impl ExportRow {
    /// The median ms per encode.
    pub(crate) fn median(&self) -> f64 {
        let n = self.ms.len();
        if n % 2 == 1 {
            self.ms[n / 2]
        } else {
            (self.ms[n / 2 - 1] + self.ms[n / 2]) / 2.0
        }
    }

    /// The fastest run's ms per encode.
    pub(crate) fn min(&self) -> f64 {
        self.ms[0]
    }

    /// The slowest run's ms per encode.
    pub(crate) fn max(&self) -> f64 {
        self.ms[self.ms.len() - 1]
    }
}

/// What a row's ratio is taken against: the fastest peer in its format,
/// or `prometheus_client`'s text when its format has no peer; `None` when
/// neither was measured.
fn baseline<'a>(rows: &'a [ExportRow], row: &ExportRow) -> Option<&'a ExportRow> {
    rows.iter()
        .filter(|r| r.format == row.format && r.implementation != METRICZ)
        .min_by(|a, b| a.median().total_cmp(&b.median()))
        .or_else(|| {
            rows.iter()
                .find(|r| r.implementation == PROMETHEUS_CLIENT && r.format == "openmetrics")
        })
}

/// Labels of counter series `i`.
fn counter_labels(i: usize) -> [String; 2] {
    [format!("m{}", i / 100), format!("s{}", i % 100)]
}

/// The classic bucket bounds, in seconds.
fn bounds() -> Vec<f64> {
    (0..BOUNDS).map(|k| 1e-6 * (1u64 << k) as f64).collect()
}

/// The records of every histogram series, in nanoseconds: the first
/// [`RECORDS`] of the study's fixed-seed log-uniform table (1 µs–100 ms,
/// `support::values`).
fn records() -> Vec<u64> {
    crate::support::values()[..RECORDS].to_vec()
}

/// The sum of one histogram series' records, in seconds.
fn records_sum(records: &[u64]) -> f64 {
    records.iter().map(|&ns| ns as f64 * 1e-9).sum()
}

/// The counter series the checks look up, with their values.
const PROBES: [usize; 3] = [0, 4_242, COUNTER_SERIES - 1];

/// The three registries, holding the same series.
struct Registries {
    metricz: metricz::Registry,
    /// Handles of every counter series (StatsD's untimed increments).
    counters: Vec<metricz::Counter>,
    timers: metricz::TimerVec,
    prometheus: prometheus::Registry,
    client: prometheus_client::registry::Registry,
    /// Expected sum of each histogram series, seconds.
    sum: f64,
}

fn build() -> Result<Registries, String> {
    let e = |e: &dyn std::fmt::Display| format!("export setup: {e}");
    let records = records();
    let classic = bounds();

    let reg = metricz::Registry::new();
    let family = reg
        .counter_vec(COUNTER_FAMILY, "Requests.", &["method", "status"])
        .map_err(|x| e(&x))?;
    let mut counters = Vec::with_capacity(COUNTER_SERIES);
    for i in 0..COUNTER_SERIES {
        let [m, s] = counter_labels(i);
        let counter = family.handle(&[&m, &s]).map_err(|x| e(&x))?;
        counter.add(i as u64 + 1);
        counters.push(counter);
    }
    let timers = reg
        .timer_vec(HISTOGRAM_FAMILY, "Latency.", &["route"])
        .map_err(|x| e(&x))?;
    timers.set_buckets(&classic).map_err(|x| e(&x))?;
    timers.set_native_schema(SCHEMA).map_err(|x| e(&x))?;
    for r in 0..HISTOGRAM_SERIES {
        let timer = timers.with(&[&format!("r{r}")]).map_err(|x| e(&x))?;
        for &ns in &records {
            timer.record(Duration::from_nanos(ns));
        }
    }

    let prom = prometheus::Registry::new();
    let vec = prometheus::IntCounterVec::new(
        prometheus::Opts::new(COUNTER_FAMILY, "Requests."),
        &["method", "status"],
    )
    .map_err(|x| e(&x))?;
    prom.register(Box::new(vec.clone())).map_err(|x| e(&x))?;
    for i in 0..COUNTER_SERIES {
        let [m, s] = counter_labels(i);
        vec.with_label_values(&[&m, &s]).inc_by(i as u64 + 1);
    }
    let histograms = prometheus::HistogramVec::new(
        prometheus::HistogramOpts::new(HISTOGRAM_FAMILY, "Latency.").buckets(classic.clone()),
        &["route"],
    )
    .map_err(|x| e(&x))?;
    prom.register(Box::new(histograms.clone()))
        .map_err(|x| e(&x))?;
    for r in 0..HISTOGRAM_SERIES {
        let h = histograms.with_label_values(&[&format!("r{r}")]);
        for &ns in &records {
            h.observe(ns as f64 * 1e-9);
        }
    }

    use prometheus_client::metrics::{counter::Counter, family::Family, histogram::Histogram};
    let mut client = prometheus_client::registry::Registry::default();
    let family = Family::<Vec<(String, String)>, Counter>::default();
    // prometheus_client appends `_total` to counters.
    client.register("export_requests", "Requests.", family.clone());
    for i in 0..COUNTER_SERIES {
        let [m, s] = counter_labels(i);
        family
            .get_or_create(&vec![("method".to_string(), m), ("status".to_string(), s)])
            .inc_by(i as u64 + 1);
    }
    fn histogram() -> Histogram {
        Histogram::new(bounds())
    }
    let family =
        Family::<Vec<(String, String)>, Histogram, fn() -> Histogram>::new_with_constructor(
            histogram,
        );
    client.register(HISTOGRAM_FAMILY, "Latency.", family.clone());
    for r in 0..HISTOGRAM_SERIES {
        let series = family.get_or_create(&vec![("route".to_string(), format!("r{r}"))]);
        for &ns in &records {
            series.observe(ns as f64 * 1e-9);
        }
    }

    Ok(Registries {
        metricz: reg,
        counters,
        timers,
        prometheus: prom,
        client,
        sum: records_sum(&records),
    })
}

/// Whether `got` is within 0.2 % of `want` (HDR sums and float formatting
/// differ in the last digits; a wrong series does not).
fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= 2e-3 * want.abs()
}

/// Checks a text exposition (Prometheus 0.0.4 or OpenMetrics): every
/// counter sample, the probes with their values, every histogram's
/// buckets and count, and series `r0`'s sum.
fn check_text(name: &str, text: &str, openmetrics: bool, sum: f64) -> Result<(), String> {
    let fail = |what: String| Err(format!("{name}: {what}"));
    let count = |prefix: &str| text.lines().filter(|l| l.starts_with(prefix)).count();
    let samples = count(&format!("{COUNTER_FAMILY}{{"));
    if samples != COUNTER_SERIES {
        return fail(format!("{samples} counter samples"));
    }
    for i in PROBES {
        let [m, s] = counter_labels(i);
        let line = format!(
            "{COUNTER_FAMILY}{{method=\"{m}\",status=\"{s}\"}} {}\n",
            i + 1
        );
        if !text.contains(&line) {
            return fail(format!("no {line:?}"));
        }
    }
    let buckets = count(&format!("{HISTOGRAM_FAMILY}_bucket{{"));
    if buckets != HISTOGRAM_SERIES * (BOUNDS + 1) {
        return fail(format!("{buckets} bucket samples"));
    }
    let counts = text
        .lines()
        .filter(|l| l.starts_with(&format!("{HISTOGRAM_FAMILY}_count{{")))
        .filter(|l| l.ends_with(&format!(" {RECORDS}")))
        .count();
    if counts != HISTOGRAM_SERIES {
        return fail(format!("{counts} histogram counts of {RECORDS}"));
    }
    let prefix = format!("{HISTOGRAM_FAMILY}_sum{{route=\"r0\"}} ");
    let got = text
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.split(' ').next()?.parse::<f64>().ok());
    match got {
        Some(got) if close(got, sum) => {}
        other => return fail(format!("r0 sum {other:?}, expected {sum}")),
    }
    if openmetrics && !text.ends_with("# EOF\n") {
        return fail("no # EOF".into());
    }
    Ok(())
}

/// Decodes the delimited `MetricFamily` messages of a protobuf exposition.
fn decode_families(mut buf: &[u8]) -> Result<Vec<MetricFamily>, String> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        out.push(
            MetricFamily::decode_length_delimited(&mut buf).map_err(|e| format!("decode: {e}"))?,
        );
    }
    Ok(out)
}

/// Checks a protobuf exposition: every counter with the probes' values,
/// every histogram's count, sum, native buckets and (when `classic`) its
/// classic buckets.
fn check_protobuf(name: &str, buf: &[u8], classic: bool, sum: f64) -> Result<(), String> {
    let fail = |what: String| Err(format!("{name}: {what}"));
    let families = decode_families(buf).map_err(|e| format!("{name}: {e}"))?;
    let family = |n: &str| families.iter().find(|f| f.name == n);
    let Some(counters) = family(COUNTER_FAMILY) else {
        return fail(format!("no family {COUNTER_FAMILY}"));
    };
    if counters.r#type != MetricType::Counter as i32 || counters.metric.len() != COUNTER_SERIES {
        return fail(format!("{} counter series", counters.metric.len()));
    }
    for i in PROBES {
        let [m, s] = counter_labels(i);
        let value = counters
            .metric
            .iter()
            .find(|x| x.label.len() == 2 && x.label[0].value == m && x.label[1].value == s)
            .and_then(|x| x.counter.as_ref())
            .map(|c| c.value);
        if value != Some(i as f64 + 1.0) {
            return fail(format!("series {m},{s} at {value:?}"));
        }
    }
    let Some(histograms) = family(HISTOGRAM_FAMILY) else {
        return fail(format!("no family {HISTOGRAM_FAMILY}"));
    };
    if histograms.r#type != MetricType::Histogram as i32
        || histograms.metric.len() != HISTOGRAM_SERIES
    {
        return fail(format!("{} histogram series", histograms.metric.len()));
    }
    for metric in &histograms.metric {
        let Some(h) = metric.histogram.as_ref() else {
            return fail("a histogram series without a histogram".into());
        };
        let native: i64 = h
            .positive_delta
            .iter()
            .scan(0i64, |c, d| {
                *c += d;
                Some(*c)
            })
            .sum();
        let classic_ok = if classic {
            // No `+Inf` bucket; about 4 % of the records lie above the
            // last bound (65.5 ms).
            h.bucket.len() == BOUNDS
                && h.bucket
                    .windows(2)
                    .all(|w| w[0].cumulative_count <= w[1].cumulative_count)
                && h.bucket.last().is_some_and(|b| {
                    (RECORDS as u64 * 9 / 10..RECORDS as u64).contains(&b.cumulative_count)
                })
        } else {
            h.bucket.is_empty()
        };
        if h.sample_count != RECORDS as u64
            || !close(h.sample_sum, sum)
            || h.schema != i32::from(SCHEMA)
            || native + h.zero_count as i64 != RECORDS as i64
            || !classic_ok
        {
            return fail(format!(
                "histogram count {}, sum {}, schema {}, {native} in native buckets, {} classic",
                h.sample_count,
                h.sample_sum,
                h.schema,
                h.bucket.len()
            ));
        }
    }
    Ok(())
}

/// Checks the JSON snapshot: every counter with the probes' values, every
/// histogram's count and sum.
fn check_json(buf: &[u8], sum: f64) -> Result<(), String> {
    let fail = |what: String| Err(format!("json: {what}"));
    let snapshot: metricz::export::json::Snapshot =
        serde_json::from_slice(buf).map_err(|e| format!("json: {e}"))?;
    let counters: Vec<_> = snapshot
        .counters
        .iter()
        .filter(|c| c.name == COUNTER_FAMILY)
        .collect();
    if counters.len() != COUNTER_SERIES {
        return fail(format!("{} counter series", counters.len()));
    }
    for i in PROBES {
        let [m, s] = counter_labels(i);
        let value = counters
            .iter()
            .find(|c| c.labels.get("method") == Some(&m) && c.labels.get("status") == Some(&s))
            .map(|c| c.value);
        if value != Some(i as u64 + 1) {
            return fail(format!("series {m},{s} at {value:?}"));
        }
    }
    let histograms: Vec<_> = snapshot
        .histograms
        .iter()
        .filter(|h| h.name == HISTOGRAM_FAMILY && h.count == RECORDS as u64 && close(h.sum, sum))
        .collect();
    if histograms.len() != HISTOGRAM_SERIES {
        return fail(format!(
            "{} histogram series of {RECORDS} records",
            histograms.len()
        ));
    }
    Ok(())
}

/// Checks InfluxDB line protocol: one point per counter with the probes'
/// values, one per histogram with its count and sum.
fn check_influx(text: &str, sum: f64) -> Result<(), String> {
    let fail = |what: String| Err(format!("influx: {what}"));
    let ts = TIMESTAMP_MS * 1_000_000;
    let points = text
        .lines()
        .filter(|l| l.starts_with(&format!("{COUNTER_FAMILY},")) && l.ends_with(&format!(" {ts}")))
        .count();
    if points != COUNTER_SERIES {
        return fail(format!("{points} counter points"));
    }
    for i in PROBES {
        let [m, s] = counter_labels(i);
        let line = format!(
            "{COUNTER_FAMILY},method={m},status={s} value={}i {ts}\n",
            i + 1
        );
        if !text.contains(&line) {
            return fail(format!("no {line:?}"));
        }
    }
    let histograms = text
        .lines()
        .filter(|l| l.starts_with(&format!("{HISTOGRAM_FAMILY},route=r")))
        .filter(|l| {
            let field = |key: &str| {
                l.split([' ', ','])
                    .find_map(|f| f.strip_prefix(key))
                    .map(|v| v.trim_end_matches('i'))
                    .and_then(|v| v.parse::<f64>().ok())
            };
            field("count=") == Some(RECORDS as f64) && field("sum=").is_some_and(|x| close(x, sum))
        })
        .count();
    if histograms != HISTOGRAM_SERIES {
        return fail(format!(
            "{histograms} histogram points of {RECORDS} records"
        ));
    }
    Ok(())
}

/// Checks StatsD lines: one counter line per series, the probes' with
/// `value(i)` (the value sent: whole, or a delta), the histograms' counts.
fn check_statsd(
    name: &str,
    text: &str,
    dogstatsd: bool,
    value: &dyn Fn(usize) -> u64,
) -> Result<(), String> {
    let fail = |what: String| Err(format!("{name}: {what}"));
    let counter_line = |i: usize| {
        let [m, s] = counter_labels(i);
        let value = value(i);
        if dogstatsd {
            format!("{COUNTER_FAMILY}:{value}|c|#method:{m},status:{s}\n")
        } else {
            format!("{COUNTER_FAMILY}.{m}.{s}:{value}|c\n")
        }
    };
    let lines = text
        .lines()
        .filter(|l| l.starts_with(COUNTER_FAMILY) && l.contains("|c"))
        .count();
    if lines != COUNTER_SERIES {
        return fail(format!("{lines} counter lines"));
    }
    for i in PROBES {
        let line = counter_line(i);
        if !text.contains(&line) {
            return fail(format!("no {line:?}"));
        }
    }
    let counts = text
        .lines()
        .filter(|l| {
            if dogstatsd {
                l.starts_with(&format!("{HISTOGRAM_FAMILY}.count:{RECORDS}|g|#route:r"))
            } else {
                l.starts_with(&format!("{HISTOGRAM_FAMILY}.r"))
                    && l.contains(&format!(".count:{RECORDS}|g"))
            }
        })
        .count();
    if counts != HISTOGRAM_SERIES {
        return fail(format!("{counts} histogram counts of {RECORDS}"));
    }
    Ok(())
}

/// Checks a remote write body: snappy, then a `WriteRequest` with every
/// counter (the probes' values), every native histogram (count, sum,
/// schema) and the classic `_count` series.
fn check_remote_write(body: &[u8], sum: f64) -> Result<(), String> {
    let fail = |what: String| Err(format!("remote-write: {what}"));
    let proto = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("remote-write: snappy: {e}"))?;
    let request = WriteRequest::decode(&proto[..]).map_err(|e| format!("remote-write: {e}"))?;
    let label = |series: &metricz::export::proto::remote::TimeSeries, name: &str| {
        series
            .labels
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.value.clone())
    };
    let named = |n: &str| -> Vec<&metricz::export::proto::remote::TimeSeries> {
        request
            .timeseries
            .iter()
            .filter(|s| label(s, "__name__").as_deref() == Some(n))
            .collect()
    };
    let counters = named(COUNTER_FAMILY);
    if counters.len() != COUNTER_SERIES {
        return fail(format!("{} counter series", counters.len()));
    }
    for i in PROBES {
        let [m, s] = counter_labels(i);
        let value = counters
            .iter()
            .find(|x| {
                label(x, "method") == Some(m.clone()) && label(x, "status") == Some(s.clone())
            })
            .and_then(|x| x.samples.first())
            .map(|x| (x.value, x.timestamp));
        if value != Some((i as f64 + 1.0, TIMESTAMP_MS)) {
            return fail(format!("series {m},{s} at {value:?}"));
        }
    }
    let native = named(HISTOGRAM_FAMILY)
        .into_iter()
        .filter_map(|s| s.histograms.first())
        .filter(|h| {
            h.count_int == RECORDS as u64 && close(h.sum, sum) && h.schema == i32::from(SCHEMA)
        })
        .count();
    if native != HISTOGRAM_SERIES {
        return fail(format!("{native} native histograms of {RECORDS} records"));
    }
    let counts = named(&format!("{HISTOGRAM_FAMILY}_count"))
        .into_iter()
        .filter(|s| s.samples.first().map(|x| x.value) == Some(RECORDS as f64))
        .count();
    if counts != HISTOGRAM_SERIES {
        return fail(format!("{counts} classic _count series of {RECORDS}"));
    }
    Ok(())
}

/// The remote write pusher's body, built as it builds it: the request
/// (reused), its protobuf (into a reused buffer), snappy (into a reused
/// buffer).
struct RemoteWrite {
    encoder: metricz::export::remote_write::Encoder,
    request: WriteRequest,
    proto: Vec<u8>,
    snappy: snap::raw::Encoder,
    body: Vec<u8>,
}

impl RemoteWrite {
    fn new() -> Self {
        RemoteWrite {
            encoder: metricz::export::remote_write::Encoder::new(),
            request: WriteRequest::default(),
            proto: Vec::new(),
            snappy: snap::raw::Encoder::new(),
            body: Vec::new(),
        }
    }

    /// Encodes `reg` into `self.body`; returns its length.
    fn encode(&mut self, reg: &metricz::Registry) -> Result<usize, String> {
        self.encoder.encode(reg, TIMESTAMP_MS, &mut self.request);
        self.proto.clear();
        self.request
            .encode(&mut self.proto)
            .map_err(|e| e.to_string())?;
        self.body
            .resize(snap::raw::max_compress_len(self.proto.len()), 0);
        let n = self
            .snappy
            .compress(&self.proto, &mut self.body)
            .map_err(|e| e.to_string())?;
        self.body.truncate(n);
        Ok(n)
    }
}

/// [`crate::time_encodes`], failing if any timed encode's output length
/// differs from the checked one's (`bytes`).
fn timed(
    config: &Config,
    name: &str,
    bytes: usize,
    mut encode: impl FnMut() -> usize,
) -> Result<Vec<f64>, String> {
    let mut wrong = None;
    let ms = crate::time_encodes(config, || {
        let n = encode();
        if n != bytes {
            wrong.get_or_insert(n);
        }
        n
    });
    match wrong {
        Some(n) => Err(format!(
            "{name}: an encode wrote {n} bytes, the checked one {bytes}"
        )),
        None => Ok(ms),
    }
}

/// [`timed`] with an untimed `setup` before every encode: a warm-up, then
/// `config.runs` runs of as many encodes as fill about the run time; the
/// ms per encode (encode time only) of each run, sorted.
fn timed_with_setup(
    config: &Config,
    name: &str,
    bytes: usize,
    mut setup: impl FnMut(),
    mut encode: impl FnMut() -> usize,
) -> Result<Vec<f64>, String> {
    let mut one = |elapsed: &mut Duration| -> Result<(), String> {
        setup();
        let start = Instant::now();
        let n = std::hint::black_box(encode());
        *elapsed += start.elapsed();
        if n != bytes {
            return Err(format!(
                "{name}: an encode wrote {n} bytes, the checked one {bytes}"
            ));
        }
        Ok(())
    };
    let mut warm = Duration::ZERO;
    one(&mut warm)?;
    let warm = warm.max(Duration::from_micros(1));
    let per_run = ((config.run_time.as_secs_f64() / warm.as_secs_f64()) as usize).max(1);
    let mut ms = Vec::with_capacity(config.runs);
    for _ in 0..config.runs {
        let mut elapsed = Duration::ZERO;
        for _ in 0..per_run {
            one(&mut elapsed)?;
        }
        ms.push(elapsed.as_secs_f64() * 1e3 / per_run as f64);
    }
    ms.sort_by(f64::total_cmp);
    Ok(ms)
}

/// Times encoding the registry in every format, metricz and the peers
/// (see the [module docs](self)): one row per [`ROWS`] entry, in order.
pub(crate) fn measure(config: &Config) -> Result<Vec<ExportRow>, String> {
    let regs = build()?;
    let sum = regs.sum;
    let series = COUNTER_SERIES + HISTOGRAM_SERIES;
    let mut rows = Vec::new();
    let mut push = |format: &'static str, implementation: &'static str, bytes, ms: Vec<f64>| {
        let row = ExportRow {
            format,
            implementation,
            series,
            bytes,
            ms,
        };
        eprintln!(
            "  {format:<22} {implementation:<18} {:>10.3} ms {bytes:>10} bytes",
            row.median()
        );
        rows.push(row);
    };
    let reg = &regs.metricz;

    // Prometheus text 0.0.4.
    let mut text = String::new();
    reg.encode_prometheus(&mut text)
        .map_err(|e| e.to_string())?;
    check_text("metricz prometheus-text", &text, false, sum)?;
    let ms = timed(config, "metricz prometheus-text", text.len(), || {
        text.clear();
        reg.encode_prometheus(&mut text).expect("encode");
        text.len()
    })?;
    push("prometheus-text", METRICZ, text.len(), ms);
    {
        use prometheus::Encoder;
        let encoder = prometheus::TextEncoder::new();
        let mut bytes = Vec::new();
        encoder
            .encode(&regs.prometheus.gather(), &mut bytes)
            .map_err(|e| e.to_string())?;
        let text = std::str::from_utf8(&bytes).map_err(|e| e.to_string())?;
        check_text("prometheus prometheus-text", text, false, sum)?;
        let ms = timed(config, "prometheus prometheus-text", bytes.len(), || {
            bytes.clear();
            encoder
                .encode(&regs.prometheus.gather(), &mut bytes)
                .expect("encode");
            bytes.len()
        })?;
        push("prometheus-text", PROMETHEUS, bytes.len(), ms);
    }

    // OpenMetrics.
    text.clear();
    reg.encode_openmetrics(&mut text)
        .map_err(|e| e.to_string())?;
    check_text("metricz openmetrics", &text, true, sum)?;
    let ms = timed(config, "metricz openmetrics", text.len(), || {
        text.clear();
        reg.encode_openmetrics(&mut text).expect("encode");
        text.len()
    })?;
    push("openmetrics", METRICZ, text.len(), ms);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &regs.client).map_err(|e| e.to_string())?;
    check_text("prometheus-client openmetrics", &out, true, sum)?;
    let ms = timed(config, "prometheus-client openmetrics", out.len(), || {
        out.clear();
        prometheus_client::encoding::text::encode(&mut out, &regs.client).expect("encode");
        out.len()
    })?;
    push("openmetrics", PROMETHEUS_CLIENT, out.len(), ms);

    // Protobuf, with classic buckets (the default), then native only.
    let mut buf = Vec::new();
    for (format, classic) in [("protobuf", true), ("protobuf-native-only", false)] {
        regs.timers.set_classic_in_protobuf(classic);
        buf.clear();
        reg.encode_protobuf(&mut buf);
        let name = format!("metricz {format}");
        check_protobuf(&name, &buf, classic, sum)?;
        let ms = timed(config, &name, buf.len(), || {
            buf.clear();
            reg.encode_protobuf(&mut buf);
            buf.len()
        })?;
        push(format, METRICZ, buf.len(), ms);
    }
    regs.timers.set_classic_in_protobuf(true);

    // JSON.
    buf.clear();
    metricz::export::json::write(reg, &mut buf).map_err(|e| e.to_string())?;
    check_json(&buf, sum)?;
    let ms = timed(config, "metricz json", buf.len(), || {
        buf.clear();
        metricz::export::json::write(reg, &mut buf).expect("encode");
        buf.len()
    })?;
    push("json", METRICZ, buf.len(), ms);

    // InfluxDB line protocol.
    let ts = TIMESTAMP_MS * 1_000_000;
    text.clear();
    metricz::export::influx::encode(reg, ts, &mut text);
    check_influx(&text, sum)?;
    let ms = timed(config, "metricz influx", text.len(), || {
        text.clear();
        metricz::export::influx::encode(reg, ts, &mut text);
        text.len()
    })?;
    push("influx", METRICZ, text.len(), ms);

    // Remote write: the request, its protobuf, the snappy body.
    let mut remote = RemoteWrite::new();
    let bytes = remote.encode(reg)?;
    check_remote_write(&remote.body, sum)?;
    let ms = timed(config, "metricz remote-write", bytes, || {
        remote.encode(reg).expect("encode")
    })?;
    push("remote-write", METRICZ, bytes, ms);

    // StatsD last: its untimed increments change the counters.
    let counters = &regs.counters;
    for (format, dogstatsd) in [("statsd", false), ("dogstatsd", true)] {
        let statsd = metricz::export::statsd::StatsdFormat::new().dogstatsd(dogstatsd);
        let mut deltas = metricz::export::statsd::Deltas::new();
        let name = format!("metricz {format}");
        // The first encode sends every counter's whole value…
        text.clear();
        metricz::export::statsd::encode(reg, &statsd, &mut deltas, &mut text);
        check_statsd(&name, &text, dogstatsd, &|i| counters[i].get())?;
        // …and after one increment of every counter, a delta of 1 each.
        for c in counters {
            c.inc();
        }
        text.clear();
        metricz::export::statsd::encode(reg, &statsd, &mut deltas, &mut text);
        check_statsd(&name, &text, dogstatsd, &|_| 1)?;
        let ms = timed_with_setup(
            config,
            &name,
            text.len(),
            || {
                for c in counters {
                    c.inc();
                }
            },
            || {
                text.clear();
                metricz::export::statsd::encode(reg, &statsd, &mut deltas, &mut text);
                text.len()
            },
        )?;
        check_statsd(&name, &text, dogstatsd, &|_| 1)?;
        push(format, METRICZ, text.len(), ms);
    }

    // The rows in [`ROWS`] order.
    let mut ordered = Vec::with_capacity(rows.len());
    for (format, implementation) in ROWS {
        let i = rows
            .iter()
            .position(|r| r.format == format && r.implementation == implementation)
            .ok_or_else(|| format!("no {format} row for {implementation}"))?;
        ordered.push(rows.swap_remove(i));
    }
    Ok(ordered)
}

/// The table printed to stdout: per row the median, min and max ms per
/// encode, the output's bytes, and the median over its baseline's (the
/// fastest peer in the same format, or `prometheus_client`'s text).
pub(crate) fn table(rows: &[ExportRow]) -> String {
    let runs = rows.first().map_or(0, |r| r.ms.len());
    let mut out = format!(
        "export: one registry of {COUNTER_SERIES} two-label counters + {HISTOGRAM_SERIES} \
         histograms, ms per encode into a warm buffer (median of {runs} runs); ratio = median / \
         the baseline's (the fastest peer in the format, else prometheus-client's text)\n"
    );
    let _ = writeln!(
        out,
        "{:<22} {:<18} {:>9} {:>9} {:>9} {:>10} {:>8}  baseline",
        "format", "implementation", "median", "min", "max", "bytes", "ratio"
    );
    for row in rows {
        let base = baseline(rows, row);
        let ratio = base.map_or(f64::NAN, |b| row.median() / b.median());
        let _ = writeln!(
            out,
            "{:<22} {:<18} {:>9.3} {:>9.3} {:>9.3} {:>10} {:>7.2}x  {}",
            row.format,
            row.implementation,
            row.median(),
            row.min(),
            row.max(),
            row.bytes,
            ratio,
            base.map_or("-".to_string(), |b| format!(
                "{} {}",
                b.implementation, b.format
            ))
        );
    }
    out
}

/// `export.csv`: the run's metadata header, then one row per (format,
/// implementation).
pub(crate) fn csv(rows: &[ExportRow], meta: &Meta) -> String {
    let mut out = meta.header();
    let _ = writeln!(
        out,
        "# one registry of {COUNTER_SERIES} two-label counters + {HISTOGRAM_SERIES} histograms \
         ({RECORDS} records each), ms per encode into a warm buffer; ratio = median over the \
         baseline's median"
    );
    out.push_str(
        "format,implementation,series,runs,bytes,median_ms,min_ms,max_ms,ratio,baseline\n",
    );
    for row in rows {
        let base = baseline(rows, row);
        let _ = writeln!(
            out,
            "{},{},{},{},{},{:.4},{:.4},{:.4},{},{}",
            row.format,
            row.implementation,
            row.series,
            row.ms.len(),
            row.bytes,
            row.median(),
            row.min(),
            row.max(),
            base.map_or(String::new(), |b| format!(
                "{:.3}",
                row.median() / b.median()
            )),
            base.map_or(String::new(), |b| format!(
                "{}/{}",
                b.implementation, b.format
            )),
        );
    }
    out
}

/// The plot's caption.
fn caption(rows: &[ExportRow]) -> String {
    let mut formats: Vec<&str> = rows.iter().map(|r| r.format).collect();
    formats.dedup();
    format!(
        "Encoding 10 000 labelled counters + {HISTOGRAM_SERIES} histograms, {} formats \
         (warm buffer)",
        formats.len(),
    )
}

/// A horizontal bar chart: one bar per row (its median, with a min–max
/// whisker), ms per encode on a log axis, one colour per implementation.
pub(crate) fn plot(rows: &[ExportRow], meta: &Meta, path: &Path) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("plot: {e}");
    if rows.is_empty() {
        return Err("plot: no rows".to_string());
    }
    let n = rows.len();
    let x_min = rows
        .iter()
        .map(ExportRow::min)
        .fold(f64::MAX, f64::min)
        .max(1e-4)
        / 3.0;
    let x_max = rows.iter().map(ExportRow::max).fold(x_min, f64::max) * 4.0;
    let caption = caption(rows);
    let width = (caption.chars().count() as u32 * 6 + 40).max(1000);
    let height = 140 + 36 * n as u32;
    let labels: Vec<String> = rows
        .iter()
        .map(|r| format!("{} / {}", r.format, r.implementation))
        .collect();
    // Row 0 at the top.
    let index = |i: usize| (n - 1 - i) as i32;

    let root = crate::stamped(path, (width, height), &meta.summary())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(&caption, ("sans-serif", 13))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(260)
        .build_cartesian_2d(
            (x_min..x_max).log_scale(),
            (0..n as i32 - 1).into_segmented(),
        )
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("ms per encode (log); bar: median, whisker: min–max")
        .y_labels(n)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => usize::try_from(*i)
                .ok()
                .filter(|&i| i < n)
                .map_or_else(String::new, |i| labels[n - 1 - i].clone()),
            SegmentValue::Last => String::new(),
        })
        .disable_y_mesh()
        .draw()
        .map_err(|e| err(&e))?;

    let mut implementations: Vec<&str> = Vec::new();
    for row in rows {
        if !implementations.contains(&row.implementation) {
            implementations.push(row.implementation);
        }
    }
    for (c, implementation) in implementations.iter().enumerate() {
        let color = crate::PALETTE[c % crate::PALETTE.len()].to_rgba();
        let mine: Vec<(usize, &ExportRow)> = rows
            .iter()
            .enumerate()
            .filter(|(_, r)| r.implementation == *implementation)
            .collect();
        chart
            .draw_series(mine.iter().map(|&(i, r)| {
                let mut bar = Rectangle::new(
                    [
                        (x_min, SegmentValue::Exact(index(i))),
                        (r.median(), SegmentValue::Exact(index(i) + 1)),
                    ],
                    color.filled(),
                );
                bar.set_margin(5, 5, 0, 0);
                bar
            }))
            .map_err(|e| err(&e))?
            .label(*implementation)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled()));
        chart
            .draw_series(mine.iter().map(|&(i, r)| {
                PathElement::new(
                    vec![
                        (r.min(), SegmentValue::CenterOf(index(i))),
                        (r.max(), SegmentValue::CenterOf(index(i))),
                    ],
                    BLACK.stroke_width(1),
                )
            }))
            .map_err(|e| err(&e))?;
    }
    let style =
        TextStyle::from(("sans-serif", 12).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    chart
        .draw_series(rows.iter().enumerate().map(|(i, r)| {
            Text::new(
                format!("{:.3} ms, {} B", r.median(), r.bytes),
                (r.max() * 1.15, SegmentValue::CenterOf(index(i))),
                style.clone(),
            )
        }))
        .map_err(|e| err(&e))?;
    crate::finish(chart, &root, SeriesLabelPosition::UpperRight)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A quick configuration: 3 runs of ~2 ms.
    fn quick() -> Config {
        Config::from_args(["--quick".to_string()]).expect("valid arguments")
    }

    /// One quick measurement shared by the tests (building the registries
    /// and timing every encoder once is the slow part).
    fn rows() -> &'static [ExportRow] {
        static ROWS_MEASURED: std::sync::OnceLock<Vec<ExportRow>> = std::sync::OnceLock::new();
        ROWS_MEASURED.get_or_init(|| measure(&quick()).expect("every encoder checks out"))
    }

    #[test]
    fn quick_measure_has_every_row_timed_and_plausible() {
        let config = quick();
        let rows = rows();
        let got: Vec<(&str, &str)> = rows.iter().map(|r| (r.format, r.implementation)).collect();
        assert_eq!(got, ROWS);
        for row in rows {
            assert_eq!(row.ms.len(), config.runs, "{row:?}");
            assert!(row.min() > 0.0 && row.min() <= row.median() && row.median() <= row.max());
            assert_eq!(row.series, COUNTER_SERIES + HISTOGRAM_SERIES);
        }
        let bytes = |format: &str, implementation: &str| {
            rows.iter()
                .find(|r| r.format == format && r.implementation == implementation)
                .map(|r| r.bytes)
                .unwrap()
        };
        // The shortest counter line, `export_requests_total{method="m0",status="s0"} 1\n`.
        let line = r#"export_requests_total{method="m0",status="s0"} 1"#.len() + 1;
        for (format, implementation) in [
            ("prometheus-text", METRICZ),
            ("prometheus-text", PROMETHEUS),
            ("openmetrics", METRICZ),
            ("openmetrics", PROMETHEUS_CLIENT),
        ] {
            let b = bytes(format, implementation);
            assert!(b > COUNTER_SERIES * line, "{format} {implementation}: {b}");
            assert!(
                b < COUNTER_SERIES * line * 2,
                "{format} {implementation}: {b}"
            );
        }
        // The same samples: the two text formats of metricz differ by their
        // headers and `# EOF` only, a few hundred bytes.
        let (prom, om) = (
            bytes("prometheus-text", METRICZ),
            bytes("openmetrics", METRICZ),
        );
        assert!(prom.abs_diff(om) < 500, "{prom} vs {om}");
        // Protobuf: at least a varint value and two label pairs per
        // counter, less than text; without classic buckets, smaller.
        let pb = bytes("protobuf", METRICZ);
        assert!(pb > COUNTER_SERIES * 20 && pb < prom, "{pb}");
        let native = bytes("protobuf-native-only", METRICZ);
        assert!(
            native < pb && native > pb - HISTOGRAM_SERIES * BOUNDS * 40,
            "{native} vs {pb}"
        );
        // JSON repeats the label names: more than text.
        assert!(bytes("json", METRICZ) > prom);
        // StatsD sends a delta of 1: shorter than text, but a line each.
        let statsd = bytes("statsd", METRICZ);
        assert!(
            statsd > COUNTER_SERIES * "export_requests_total.m0.s0:1|c\n".len(),
            "{statsd}"
        );
        assert!(statsd < prom, "{statsd}");
        assert!(bytes("dogstatsd", METRICZ) > statsd);
        assert!(bytes("influx", METRICZ) > COUNTER_SERIES * line);
        // Snappy compresses the repetitive request well below protobuf.
        let rw = bytes("remote-write", METRICZ);
        assert!(rw > 10_000 && rw < pb, "{rw} vs {pb}");
    }

    #[test]
    fn checks_catch_wrong_output() {
        let regs = build().expect("registries");
        let sum = regs.sum;
        let mut text = String::new();
        regs.metricz.encode_prometheus(&mut text).unwrap();
        check_text("t", &text, false, sum).expect("the real output passes");
        // A missing series, a wrong value, a wrong sum, no EOF.
        let dropped = text.replacen(
            "export_requests_total{method=\"m0\",status=\"s0\"} 1\n",
            "",
            1,
        );
        assert!(check_text("t", &dropped, false, sum).is_err());
        let wrong = text.replace(
            "export_requests_total{method=\"m42\",status=\"s42\"} 4243\n",
            "export_requests_total{method=\"m42\",status=\"s42\"} 4242\n",
        );
        assert!(check_text("t", &wrong, false, sum).is_err());
        assert!(check_text("t", &text, false, sum * 1.01).is_err());
        assert!(check_text("t", &text, true, sum).is_err());

        let mut buf = Vec::new();
        regs.metricz.encode_protobuf(&mut buf);
        check_protobuf("p", &buf, true, sum).expect("the real output passes");
        assert!(
            check_protobuf("p", &buf, false, sum).is_err(),
            "classic buckets present"
        );
        assert!(check_protobuf("p", &buf[..buf.len() - 1], true, sum).is_err());
        assert!(check_protobuf("p", &buf, true, sum * 1.01).is_err());

        buf.clear();
        metricz::export::json::write(&regs.metricz, &mut buf).unwrap();
        check_json(&buf, sum).expect("the real output passes");
        assert!(check_json(&buf, sum * 1.01).is_err());

        text.clear();
        metricz::export::influx::encode(&regs.metricz, TIMESTAMP_MS * 1_000_000, &mut text);
        check_influx(&text, sum).expect("the real output passes");
        assert!(check_influx(&text.replace("value=1i", "value=2i"), sum).is_err());

        let format = metricz::export::statsd::StatsdFormat::new();
        text.clear();
        let mut deltas = metricz::export::statsd::Deltas::new();
        metricz::export::statsd::encode(&regs.metricz, &format, &mut deltas, &mut text);
        let whole = |i: usize| i as u64 + 1;
        check_statsd("s", &text, false, &whole).expect("the real output passes");
        assert!(check_statsd("s", &text, true, &whole).is_err());
        assert!(check_statsd("s", &text, false, &|i| i as u64).is_err());
        // Nothing changed: a warm encode sends no counter line.
        text.clear();
        metricz::export::statsd::encode(&regs.metricz, &format, &mut deltas, &mut text);
        assert!(check_statsd("s", &text, false, &|_| 0).is_err());

        let mut request = WriteRequest::default();
        metricz::export::remote_write::encode(&regs.metricz, TIMESTAMP_MS, &mut request);
        let body = snap::raw::Encoder::new()
            .compress_vec(&request.encode_to_vec())
            .unwrap();
        check_remote_write(&body, sum).expect("the real output passes");
        assert!(
            check_remote_write(&request.encode_to_vec(), sum).is_err(),
            "not snappy"
        );
        request.timeseries.pop();
        let body = snap::raw::Encoder::new()
            .compress_vec(&request.encode_to_vec())
            .unwrap();
        assert!(check_remote_write(&body, sum).is_err(), "a series short");
    }

    #[test]
    fn ratios_against_the_fastest_peer_in_the_format() {
        let row = |format, implementation, median: f64| ExportRow {
            format,
            implementation,
            series: 1,
            bytes: 1,
            ms: vec![median / 2.0, median, median * 2.0],
        };
        let rows = vec![
            row("prometheus-text", METRICZ, 2.0),
            row("prometheus-text", PROMETHEUS, 8.0),
            row("openmetrics", METRICZ, 1.0),
            row("openmetrics", PROMETHEUS_CLIENT, 4.0),
            row("json", METRICZ, 2.0),
        ];
        let base = |i: usize| baseline(&rows, &rows[i]).map(|b| (b.implementation, b.format));
        assert_eq!(base(0), Some((PROMETHEUS, "prometheus-text")));
        assert_eq!(base(1), Some((PROMETHEUS, "prometheus-text")));
        assert_eq!(base(3), Some((PROMETHEUS_CLIENT, "openmetrics")));
        assert_eq!(
            base(4),
            Some((PROMETHEUS_CLIENT, "openmetrics")),
            "no peer: the client's text"
        );
        let table = table(&rows);
        assert!(
            table.contains("   0.25x  prometheus prometheus-text"),
            "{table}"
        );
        assert!(
            table.contains("   0.50x  prometheus-client openmetrics"),
            "{table}"
        );

        let meta = Meta::default();
        let csv = csv(&rows, &meta);
        assert!(csv.starts_with(&meta.header()));
        let data: Vec<Vec<&str>> = csv
            .lines()
            .filter(|l| !l.starts_with('#'))
            .skip(1)
            .map(|l| l.split(',').collect())
            .collect();
        assert_eq!(data.len(), rows.len());
        assert_eq!(data[0][8], "0.250");
        assert_eq!(data[4][8], "0.500");
        assert_eq!(data[4][9], "prometheus-client/openmetrics");
    }

    #[test]
    fn csv_and_plot_of_a_quick_measure() {
        let rows = rows();
        let meta = Meta::current();
        let csv = csv(rows, &meta);
        assert!(csv.starts_with(&meta.header()));
        let mut lines = csv.lines().filter(|l| !l.starts_with('#'));
        let header: Vec<&str> = lines.next().expect("header").split(',').collect();
        assert_eq!(header[0], "format");
        let data: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        assert_eq!(data.len(), ROWS.len());
        for (fields, (format, implementation)) in data.iter().zip(ROWS) {
            assert_eq!(fields.len(), header.len(), "{fields:?}");
            assert_eq!((fields[0], fields[1]), (format, implementation));
            assert_eq!(fields[2], (COUNTER_SERIES + HISTOGRAM_SERIES).to_string());
            assert_eq!(fields[3], "3");
            let median: f64 = fields[5].parse().unwrap();
            assert!(median > 0.0, "{fields:?}");
            let ratio: f64 = fields[8].parse().unwrap();
            assert!(ratio > 0.0, "{fields:?}");
        }

        let path = std::env::temp_dir().join(format!("metricz-export-{}.svg", std::process::id()));
        plot(rows, &meta, &path).expect("plot");
        let svg = std::fs::read_to_string(&path).expect("svg written");
        let _ = std::fs::remove_file(&path);
        assert!(svg.starts_with("<svg"));
        let caption = caption(rows);
        assert!(
            caption.starts_with("Encoding 10 000 labelled counters + 100 histograms, 9 formats")
        );
        assert!(svg.contains(&format!("machine: {}", meta.summary())));
        assert!(svg.contains(&caption), "caption missing");
        for implementation in [METRICZ, PROMETHEUS, PROMETHEUS_CLIENT] {
            assert!(
                svg.contains(&format!(">\n{implementation}\n<")),
                "legend lacks {implementation}"
            );
        }
        for (format, implementation) in ROWS {
            assert!(
                svg.contains(&format!("{format} / {implementation}")),
                "no bar label {format} / {implementation}"
            );
        }
    }
}
