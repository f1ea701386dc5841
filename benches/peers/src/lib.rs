//! Benchmarks of metricz against peers whose features are too heavy to
//! build with metricz's own dev-dependencies (not published): here,
//! `prometheus-client`'s Prometheus protobuf encoder (feature
//! `prometheus_protobuf`, compiled with protox), in
//! `benches/protobuf.rs`.
//!
//! This library holds the benchmark's inputs and the checks of its
//! outputs, so that `cargo test` runs the checks without timing anything:
//! the registries (metricz's and prometheus-client's, each holding the same
//! series), the encodes as timed (into a cleared, reused buffer), and
//! decoders that assert series counts and values.

use metricz::export::proto::client as mz;
use prometheus_client::encoding::prometheus_protobuf::{self, prometheus_data_model as pc};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{
    exponential_buckets, Histogram, NativeHistogramConfig,
};
use prost::Message;
use std::time::Duration;

/// Series of the counter family.
pub const COUNTER_SERIES: usize = 10_000;
/// The counter family's name as exposed (both libraries).
pub const COUNTER_FAMILY: &str = "export_requests_total";
/// Series of the histogram family.
pub const HISTOGRAM_SERIES: usize = 100;
/// Records in each histogram series (the same values in every series).
pub const RECORDS: usize = 1_000;
/// The histogram family's name.
pub const HISTOGRAM_FAMILY: &str = "request_duration_seconds";
/// Native histogram schema of both libraries (metricz's default, 3: 8
/// buckets per power of two).
pub const SCHEMA: i8 = 3;

/// Labels of counter series `i`: `method` = `m{i / 100}`, `status` =
/// `s{i % 100}`.
pub fn counter_labels(i: usize) -> [String; 2] {
    [format!("m{}", i / 100), format!("s{}", i % 100)]
}

/// The classic bucket bounds of both libraries, in seconds: 1 µs × 2^k,
/// k = 0…16 (prometheus-client's `exponential_buckets(1e-6, 2.0, 17)`).
pub fn bounds() -> Vec<f64> {
    exponential_buckets(1e-6, 2.0, 17).collect()
}

/// The records of every histogram series, in nanoseconds: [`RECORDS`]
/// log-uniform values in [1 µs, 100 ms] from a fixed-seed generator
/// (splitmix64).
pub fn records() -> Vec<u64> {
    let mut state: u64 = 0x5eed_1234_abcd_0001;
    (0..RECORDS)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            // 53 random bits: a uniform in [0, 1).
            let u = (z >> 11) as f64 / (1u64 << 53) as f64;
            // 10^3 ns … 10^8 ns.
            10f64.powf(3.0 + 5.0 * u).round() as u64
        })
        .collect()
}

/// A record in seconds, as prometheus-client observes it.
fn seconds(nanos: u64) -> f64 {
    nanos as f64 * 1e-9
}

/// metricz: the counter family, series `i` at `i + 1`.
pub fn metricz_counters() -> metricz::Registry {
    let reg = metricz::Registry::new();
    let family = reg
        .counter_vec(COUNTER_FAMILY, "Requests.", &["method", "status"])
        .expect("valid family");
    for i in 0..COUNTER_SERIES {
        let [m, s] = counter_labels(i);
        family
            .with(&[&m, &s])
            .expect("two labels")
            .add(i as u64 + 1);
    }
    reg
}

/// prometheus-client: the counter family (registered as
/// `export_requests`; it appends `_total`), series `i` at `i + 1`.
pub fn peer_counters() -> prometheus_client::registry::Registry {
    let mut reg = prometheus_client::registry::Registry::default();
    let family = Family::<Vec<(String, String)>, Counter>::default();
    reg.register("export_requests", "Requests.", family.clone());
    for i in 0..COUNTER_SERIES {
        let [m, s] = counter_labels(i);
        family
            .get_or_create(&vec![("method".to_string(), m), ("status".to_string(), s)])
            .inc_by(i as u64 + 1);
    }
    reg
}

/// metricz: a timer family `route` = `r0`…`r99`, classic bounds
/// [`bounds`], native schema [`SCHEMA`], each series holding [`records`].
pub fn metricz_histograms() -> metricz::Registry {
    let reg = metricz::Registry::new();
    let family = reg
        .timer_vec(HISTOGRAM_FAMILY, "Latency.", &["route"])
        .expect("valid family");
    family.set_buckets(&bounds()).expect("valid bounds");
    family.set_native_schema(SCHEMA).expect("valid schema");
    let records = records();
    for r in 0..HISTOGRAM_SERIES {
        let timer = family.with(&[&format!("r{r}")]).expect("one label");
        for &ns in &records {
            timer.record(Duration::from_nanos(ns));
        }
    }
    reg
}

/// prometheus-client: a histogram family `route` = `r0`…`r99` with classic
/// bounds [`bounds`] and native buckets of schema [`SCHEMA`]
/// (`Histogram::new_classic_and_native`), each series holding [`records`]
/// in seconds.
pub fn peer_histograms() -> prometheus_client::registry::Registry {
    fn histogram() -> Histogram {
        Histogram::new_classic_and_native(bounds(), NativeHistogramConfig::with_schema(SCHEMA))
    }
    let mut reg = prometheus_client::registry::Registry::default();
    let family =
        Family::<Vec<(String, String)>, Histogram, fn() -> Histogram>::new_with_constructor(
            histogram,
        );
    reg.register(HISTOGRAM_FAMILY, "Latency.", family.clone());
    let records = records();
    for r in 0..HISTOGRAM_SERIES {
        let series = family.get_or_create(&vec![("route".to_string(), format!("r{r}"))]);
        for &ns in &records {
            series.observe(seconds(ns));
        }
    }
    reg
}

/// metricz's encode as timed: clears `buf`, then writes the delimited
/// protobuf exposition into it.
pub fn encode_metricz(reg: &metricz::Registry, buf: &mut Vec<u8>) {
    buf.clear();
    reg.encode_protobuf(buf);
}

/// prometheus-client's encode as a scrape does it: its
/// `prometheus_protobuf::encode` (the `MetricFamily` messages), then each
/// message length-delimited into `buf`, cleared first (what its
/// `encode_to_vec` does, but into a reused buffer).
pub fn encode_peer(reg: &prometheus_client::registry::Registry, buf: &mut Vec<u8>) {
    buf.clear();
    for family in prometheus_protobuf::encode(reg).expect("encode") {
        family
            .encode_length_delimited(buf)
            .expect("a Vec grows as needed");
    }
}

/// Decodes every delimited `MetricFamily` of metricz's output.
fn decode_metricz(mut buf: &[u8]) -> Vec<mz::MetricFamily> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        out.push(mz::MetricFamily::decode_length_delimited(&mut buf).expect("metricz decodes"));
    }
    out
}

/// Decodes every delimited `MetricFamily` of prometheus-client's output.
fn decode_peer(mut buf: &[u8]) -> Vec<pc::MetricFamily> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        out.push(pc::MetricFamily::decode_length_delimited(&mut buf).expect("peer decodes"));
    }
    out
}

/// The family `name` of `families` (metricz also writes its
/// cardinality-overflow family, which the checks skip).
fn find<'f, F>(families: &'f [F], name: &str, name_of: impl Fn(&F) -> &str) -> &'f F {
    families
        .iter()
        .find(|f| name_of(f) == name)
        .unwrap_or_else(|| panic!("no family {name}"))
}

/// Checks metricz's counter output: [`COUNTER_SERIES`] series, a few with
/// their labels and values.
pub fn check_metricz_counters(buf: &[u8]) {
    let families = decode_metricz(buf);
    let family = find(&families, COUNTER_FAMILY, |f| &f.name);
    assert_eq!(family.r#type, mz::MetricType::Counter as i32);
    let series: Vec<(Vec<(String, String)>, f64)> = family
        .metric
        .iter()
        .map(|m| {
            let labels = m
                .label
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect();
            (labels, m.counter.as_ref().expect("a counter").value)
        })
        .collect();
    check_counters("metricz", &series);
}

/// Checks prometheus-client's counter output as
/// [`check_metricz_counters`] does.
pub fn check_peer_counters(buf: &[u8]) {
    let families = decode_peer(buf);
    let family = find(&families, COUNTER_FAMILY, |f| &f.name);
    assert_eq!(family.r#type, pc::MetricType::Counter as i32);
    let series: Vec<(Vec<(String, String)>, f64)> = family
        .metric
        .iter()
        .map(|m| {
            let labels = m
                .label
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect();
            (labels, m.counter.as_ref().expect("a counter").value)
        })
        .collect();
    check_counters("prometheus-client", &series);
}

fn check_counters(name: &str, series: &[(Vec<(String, String)>, f64)]) {
    assert_eq!(series.len(), COUNTER_SERIES, "{name}: series");
    for i in [0, 4_242, COUNTER_SERIES - 1] {
        let [m, s] = counter_labels(i);
        let labels = vec![("method".to_string(), m), ("status".to_string(), s)];
        let value = series
            .iter()
            .find(|(l, _)| *l == labels)
            .unwrap_or_else(|| panic!("{name}: no series {labels:?}"))
            .1;
        assert_eq!(value, (i + 1) as f64, "{name}: {labels:?}");
    }
}

/// What the histogram checks read of one series, from either library's
/// `Histogram` message.
struct Series {
    route: String,
    count: u64,
    sum: f64,
    /// Classic buckets: (upper bound, cumulative count).
    classic: Vec<(f64, u64)>,
    schema: i32,
    zero_count: u64,
    /// Native positive buckets: (index, count), from spans and deltas.
    native: Vec<(i32, u64)>,
}

/// Native positive buckets from spans and deltas.
fn native_buckets(spans: &[(i32, u32)], deltas: &[i64]) -> Vec<(i32, u64)> {
    let mut out = Vec::new();
    let mut deltas = deltas.iter();
    let (mut index, mut count) = (0i32, 0i64);
    for (i, &(offset, length)) in spans.iter().enumerate() {
        index = if i == 0 { offset } else { index + offset };
        for _ in 0..length {
            count += deltas.next().expect("a delta per bucket");
            assert!(count >= 0, "negative bucket count");
            out.push((index, count as u64));
            index += 1;
        }
    }
    assert!(deltas.next().is_none(), "more deltas than buckets");
    out
}

/// The [`Series`] of a decoded histogram family: the same fields in both
/// crates' generated types, which are different types.
macro_rules! series_of {
    ($family:expr) => {
        $family
            .metric
            .iter()
            .map(|m| {
                let h = m.histogram.as_ref().expect("a histogram");
                let spans: Vec<(i32, u32)> = h
                    .positive_span
                    .iter()
                    .map(|s| (s.offset, s.length))
                    .collect();
                Series {
                    route: m.label[0].value.clone(),
                    count: h.sample_count,
                    sum: h.sample_sum,
                    classic: h
                        .bucket
                        .iter()
                        .map(|b| (b.upper_bound, b.cumulative_count))
                        .collect(),
                    schema: h.schema,
                    zero_count: h.zero_count,
                    native: native_buckets(&spans, &h.positive_delta),
                }
            })
            .collect()
    };
}

/// Checks metricz's histogram output: [`HISTOGRAM_SERIES`] series, each
/// with [`RECORDS`] records, their sum (to HDR precision), classic and
/// native buckets of schema [`SCHEMA`] that account for every record.
pub fn check_metricz_histograms(buf: &[u8]) {
    let families = decode_metricz(buf);
    let family = find(&families, HISTOGRAM_FAMILY, |f| &f.name);
    assert_eq!(family.r#type, mz::MetricType::Histogram as i32);
    let series: Vec<Series> = series_of!(family);
    // HDR's 3 significant figures: the sum of bucket values is within
    // 0.1 %, and a record within that of a bound may count below it.
    check_histograms("metricz", &series, 1e-3, 3);
}

/// Checks prometheus-client's histogram output as
/// [`check_metricz_histograms`] does (its sum and classic counts exact).
pub fn check_peer_histograms(buf: &[u8]) {
    let families = decode_peer(buf);
    let family = find(&families, HISTOGRAM_FAMILY, |f| &f.name);
    assert_eq!(family.r#type, pc::MetricType::Histogram as i32);
    let series: Vec<Series> = series_of!(family);
    check_histograms("prometheus-client", &series, 1e-9, 0);
}

fn check_histograms(name: &str, series: &[Series], sum_tolerance: f64, bucket_slack: u64) {
    assert_eq!(series.len(), HISTOGRAM_SERIES, "{name}: series");
    let records = records();
    let sum: f64 = records.iter().map(|&ns| seconds(ns)).sum();
    let bounds = bounds();
    for (r, s) in series.iter().enumerate() {
        assert!(
            series.iter().filter(|t| t.route == format!("r{r}")).count() == 1,
            "{name}: route r{r}"
        );
        assert_eq!(s.count, RECORDS as u64, "{name} {}: count", s.route);
        assert!(
            ((s.sum - sum) / sum).abs() <= sum_tolerance,
            "{name} {}: sum {} vs {sum}",
            s.route,
            s.sum
        );
        // Classic: every bound, cumulative counts within the slack of the
        // exact ones, and +Inf (if written) holding every record.
        for &bound in &bounds {
            let exact = records.iter().filter(|&&ns| seconds(ns) <= bound).count() as u64;
            let (_, got) = s
                .classic
                .iter()
                .find(|(b, _)| (b / bound - 1.0).abs() < 1e-12)
                .unwrap_or_else(|| panic!("{name} {}: no bucket {bound}", s.route));
            assert!(
                got.abs_diff(exact) <= bucket_slack,
                "{name} {}: le={bound}: {got} vs {exact}",
                s.route
            );
        }
        if let Some(&(bound, n)) = s.classic.last().filter(|(b, _)| b.is_infinite()) {
            assert_eq!(n, RECORDS as u64, "{name} {}: le={bound}", s.route);
        }
        // Native: schema 3, every record in a positive bucket, and the
        // buckets inside [1 µs, 100 ms] widened by a bucket.
        assert_eq!(s.schema, i32::from(SCHEMA), "{name} {}: schema", s.route);
        assert_eq!(s.zero_count, 0, "{name} {}: zero count", s.route);
        let total: u64 = s.native.iter().map(|&(_, n)| n).sum();
        assert_eq!(total, RECORDS as u64, "{name} {}: native total", s.route);
        // Bucket i is (2^((i-1)/8), 2^(i/8)]: 1 µs is in bucket ⌈8·log2(1e-6)⌉ = -159,
        // 100 ms in ⌈8·log2(0.1)⌉ = -26.
        let (lo, hi) = (-160, -25);
        assert!(
            s.native.iter().all(|&(i, _)| (lo..=hi).contains(&i)),
            "{name} {}: native buckets {:?}",
            s.route,
            s.native
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_encode_the_same_series() {
        let mut buf = Vec::new();
        encode_metricz(&metricz_counters(), &mut buf);
        check_metricz_counters(&buf);
        encode_peer(&peer_counters(), &mut buf);
        check_peer_counters(&buf);
    }

    #[test]
    fn histograms_encode_the_same_records() {
        let mut buf = Vec::new();
        encode_metricz(&metricz_histograms(), &mut buf);
        check_metricz_histograms(&buf);
        encode_peer(&peer_histograms(), &mut buf);
        check_peer_histograms(&buf);
    }

    #[test]
    fn records_are_log_uniform_in_range() {
        let records = records();
        assert_eq!(records.len(), RECORDS);
        assert!(records.iter().all(|ns| (1_000..=100_000_000).contains(ns)));
        // About a fifth of the records per decade.
        let below_10us = records.iter().filter(|&&ns| ns < 10_000).count();
        assert!((150..250).contains(&below_10us), "{below_10us}");
    }
}
