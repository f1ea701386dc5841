//! The protobuf exposition and native histograms: every encoded message
//! decodes with the `io.prometheus.client` types to the values recorded;
//! native buckets add up to the count and agree with the classic buckets
//! of the same read; quantiles from native buckets stay within the stated
//! bound of the HDR quantile (property test over data, schema and scale);
//! the endpoint answers protobuf when the `Accept` header prefers it; and
//! a real Prometheus (`--enable-feature=native-histograms`, so it scrapes
//! protobuf) computes `histogram_count`, `histogram_sum` and
//! `histogram_quantile` over the native histograms within that bound.
//!
//! A missing `prometheus` binary fails the test (never skips).

mod support;
use metricz::export::native::NativeBuckets;
use metricz::export::proto::client::{Histogram as PbHistogram, MetricFamily, MetricType};
use metricz::registry::Value;
use metricz::Registry;
use proptest::prelude::*;
use prost::Message;
use std::time::Duration;

/// Every length-delimited `MetricFamily` in `buf`.
fn decode_all(mut buf: &[u8]) -> Vec<MetricFamily> {
    let mut families = Vec::new();
    while !buf.is_empty() {
        let family = MetricFamily::decode_length_delimited(&mut buf).expect("a delimited family");
        families.push(family);
    }
    families
}

/// The native buckets of a decoded histogram: `(index, count)`.
fn native_buckets(h: &PbHistogram) -> Vec<(i32, u64)> {
    let mut out = Vec::new();
    let mut deltas = h.positive_delta.iter();
    let (mut index, mut count) = (0i32, 0i64);
    for (k, span) in h.positive_span.iter().enumerate() {
        index = if k == 0 {
            span.offset
        } else {
            index + span.offset
        };
        for _ in 0..span.length {
            count += deltas.next().expect("a delta per bucket");
            assert!(count >= 0, "negative bucket count");
            out.push((index, count as u64));
            index += 1;
        }
    }
    assert!(deltas.next().is_none(), "more deltas than buckets");
    out
}

/// Log-uniform values from 1 µs to 100 ms in nanoseconds (xorshift, fixed
/// seed).
fn log_uniform(n: usize, mut seed: u64) -> Vec<u64> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let u = (seed >> 11) as f64 / (1u64 << 53) as f64;
            (1e3 * 1e5f64.powf(u)) as u64
        })
        .collect()
}

#[test]
fn every_kind_decodes_to_what_was_recorded() {
    let reg = Registry::new();
    let jobs = reg
        .counter_vec("jobs_total", "Jobs \"done\".", &["queue"])
        .unwrap();
    jobs.with(&["mail"]).unwrap().add(3);
    jobs.with(&["sms\n\"x\""]).unwrap().add(u64::MAX);
    reg.gauge("load", "").unwrap().set(-0.25);
    let sizes = reg.histogram("size_bytes", "Sizes.").unwrap();
    for v in [0, 0, 1, 5, 5, 1000, 1_000_000] {
        sizes.record(v);
    }
    let latency = reg
        .timer_vec("latency_seconds", "Latency.", &["route"])
        .unwrap();
    latency.set_native_schema(-2).unwrap();
    latency.set_classic_in_protobuf(false);
    for ms in [1, 2, 3, 50] {
        latency
            .with(&["/a"])
            .unwrap()
            .record(Duration::from_millis(ms));
    }
    let summaries = reg
        .histogram_vec("summary_bytes", "As a summary.", &[])
        .unwrap();
    summaries.set_summary(true);
    let summary = summaries.handle(&[] as &[&str]).unwrap();
    for v in 1..=100 {
        summary.record(v);
    }

    let mut buf = Vec::new();
    reg.encode_protobuf(&mut buf);
    let families = decode_all(&buf);
    let names: Vec<&str> = families.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "jobs_total",
            "latency_seconds",
            "load",
            "size_bytes",
            "summary_bytes"
        ]
    );

    let jobs = &families[0];
    assert_eq!(jobs.help, "Jobs \"done\".");
    assert_eq!(jobs.r#type, MetricType::Counter as i32);
    assert_eq!(jobs.metric.len(), 2);
    assert_eq!(jobs.metric[0].label[0].name, "queue");
    assert_eq!(jobs.metric[0].label[0].value, "mail");
    assert_eq!(jobs.metric[0].counter.as_ref().unwrap().value, 3.0);
    assert_eq!(jobs.metric[1].label[0].value, "sms\n\"x\"");
    assert_eq!(
        jobs.metric[1].counter.as_ref().unwrap().value,
        u64::MAX as f64
    );

    let load = &families[2];
    assert_eq!(
        (load.help.as_str(), load.r#type),
        ("", MetricType::Gauge as i32)
    );
    assert_eq!(load.metric[0].gauge.as_ref().unwrap().value, -0.25);
    assert!(load.metric[0].label.is_empty());

    // A histogram: classic and native buckets from the same read.
    let sizes = &families[3];
    assert_eq!(sizes.r#type, MetricType::Histogram as i32);
    let h = sizes.metric[0].histogram.as_ref().unwrap();
    assert_eq!(h.sample_count, 7);
    assert_eq!(h.sample_sum, 1_001_011.0);
    assert_eq!((h.schema, h.zero_count), (3, 2));
    assert_eq!(
        h.zero_threshold,
        metricz::registry::DEFAULT_NATIVE_ZERO_THRESHOLD
    );
    // 1 → bucket 0; 5 → ceil(8 log2 5) = 19; 1000 → HDR's 1000 (exact
    // below 2048) → ceil(8 log2 1000) = 80; 1e6 → HDR's top 1_000_447 →
    // ceil(8 log2 1_000_447) = 160.
    let nonzero: Vec<_> = native_buckets(h)
        .into_iter()
        .filter(|&(_, n)| n > 0)
        .collect();
    assert_eq!(nonzero, [(0, 1), (19, 2), (80, 1), (160, 1)]);
    let classic: Vec<(f64, u64)> = h
        .bucket
        .iter()
        .map(|b| (b.upper_bound, b.cumulative_count))
        .collect();
    assert_eq!(classic.len(), 13);
    assert_eq!(
        &classic[..4],
        [(1.0, 3), (10.0, 5), (100.0, 5), (1000.0, 6)]
    );

    // A timer: seconds, schema -2, no classic buckets.
    let lat = &families[1];
    let h = lat.metric[0].histogram.as_ref().unwrap();
    assert_eq!(lat.metric[0].label[0].value, "/a");
    assert!(h.bucket.is_empty());
    assert_eq!(h.schema, -2);
    assert_eq!(h.sample_count, 4);
    assert!((h.sample_sum - 0.056).abs() < 1e-6, "{}", h.sample_sum);
    // Schema -2: buckets (16^(i-1), 16^i]; 1-3 ms in (2^-12, 2^-8] =
    // index -2, 50 ms in (2^-8, 2^-4] = index -1.
    assert_eq!(native_buckets(h), [(-2, 3), (-1, 1)]);

    // A summary.
    let summary = &families[4];
    assert_eq!(summary.r#type, MetricType::Summary as i32);
    let s = summary.metric[0].summary.as_ref().unwrap();
    assert_eq!((s.sample_count, s.sample_sum), (100, 5050.0));
    let quantiles: Vec<(f64, f64)> = s.quantile.iter().map(|q| (q.quantile, q.value)).collect();
    assert_eq!(quantiles, [(0.5, 50.0), (0.9, 90.0), (0.99, 99.0)]);
}

#[test]
fn an_empty_histogram_is_still_native() {
    let reg = Registry::new();
    let h = reg.histogram_vec("empty_bytes", "Empty.", &[]).unwrap();
    h.set_native_zero_threshold(0.0).unwrap();
    h.with(&[] as &[&str]).unwrap();
    let mut buf = Vec::new();
    reg.encode_protobuf(&mut buf);
    let family = &decode_all(&buf)[0];
    let h = family.metric[0].histogram.as_ref().unwrap();
    assert_eq!((h.sample_count, h.zero_threshold), (0, 0.0));
    // client_model's rule: an empty span marks it native.
    assert_eq!(h.positive_span.len(), 1);
    assert_eq!(
        (h.positive_span[0].offset, h.positive_span[0].length),
        (0, 0)
    );
    assert!(h.positive_delta.is_empty());
}

#[test]
fn native_settings_are_checked() {
    let reg = Registry::new();
    let h = reg.histogram_vec("x_bytes", "X.", &[]).unwrap();
    for bad in [-5, 9, i8::MIN, i8::MAX] {
        assert_eq!(
            h.set_native_schema(bad),
            Err(metricz::RegistryError::InvalidNativeSchema(i32::from(bad)))
        );
    }
    for ok in -4..=8 {
        h.set_native_schema(ok).unwrap();
        assert_eq!(h.native().schema, ok);
    }
    for bad in [-1e-9, f64::NAN, f64::INFINITY] {
        assert!(h.set_native_zero_threshold(bad).is_err());
    }
}

/// The quantile bound of `metricz::export::native`: the native quantile
/// (as `histogram_quantile` computes it) is within a factor
/// `2^(2^-schema)` of the HDR quantile, or both are in the zero bucket
/// (the native one at most the threshold away from 0).
fn check_bound(q_native: f64, q_hdr: f64, schema: i8, zero_threshold: f64) -> Result<(), String> {
    if q_hdr <= zero_threshold {
        // Prometheus interpolates in [-threshold, threshold] when the zero
        // bucket is the only one with records, in [0, threshold] otherwise.
        return if (-zero_threshold..=zero_threshold).contains(&q_native) {
            Ok(())
        } else {
            Err(format!(
                "{q_native} outside the zero bucket [-{zero_threshold}, {zero_threshold}]"
            ))
        };
    }
    let base = 2f64.powf(2f64.powi(-i32::from(schema)));
    // Float slack: bounds are computed with exp2 and ldexp.
    let slack = 1e-12;
    if q_hdr / base * (1.0 - slack) < q_native && q_native <= q_hdr * base * (1.0 + slack) {
        Ok(())
    } else {
        Err(format!("{q_native} not within a factor {base} of {q_hdr}"))
    }
}

/// The native buckets of the only series of `reg`, and its HDR quantiles
/// at `qs` in the base unit.
fn native_and_hdr(reg: &Registry, qs: &[f64]) -> (NativeBuckets, Vec<f64>) {
    let mut native = NativeBuckets::new();
    let mut hdr = Vec::new();
    reg.collect(|family| {
        let settings = family.native().unwrap();
        family.for_each_series(|mut series| {
            if let Value::Distribution(d) = series.value() {
                native.derive(&d, settings.schema, settings.zero_threshold);
                let s = d.snapshot();
                hdr = qs
                    .iter()
                    .map(|&q| d.scaled(s.value_at_quantile(q)))
                    .collect();
            }
            Ok::<(), std::convert::Infallible>(())
        })
    })
    .unwrap();
    (native, hdr)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn native_quantiles_stay_within_the_schema_bound(
        values in prop::collection::vec(prop_oneof![Just(0u64), 1u64..2_000_000_000], 1..300),
        schema in -4i8..=8,
        nanoseconds in any::<bool>(),
        extra_q in 0.001f64..=1.0,
    ) {
        let reg = Registry::new();
        let family = reg.histogram_vec("v_seconds", "V.", &[]).unwrap();
        family.set_native_schema(schema).unwrap();
        if nanoseconds {
            family.set_scale(1e-9).unwrap();
        }
        let h = family.handle(&[] as &[&str]).unwrap();
        for &v in &values {
            h.record(v);
        }
        let qs = [0.5, 0.9, 0.99, 1.0, extra_q];
        let (native, hdr) = native_and_hdr(&reg, &qs);
        prop_assert_eq!(native.count(), values.len() as u64);
        let in_buckets: u64 = native.buckets().map(|(_, n)| n).sum();
        prop_assert_eq!(in_buckets + native.zero_count(), native.count());
        for (&q, &q_hdr) in qs.iter().zip(&hdr) {
            let q_native = native.quantile(q);
            if let Err(e) = check_bound(q_native, q_hdr, schema, native.zero_threshold()) {
                return Err(TestCaseError::fail(format!("q {q}: {e}")));
            }
        }
    }
}

#[test]
fn the_bound_is_tight_enough_to_fail_a_wrong_bucketing() {
    // Data whose p50 is far from a power of two: a native quantile taken
    // one bucket off (as an off-by-one index would give) breaks the bound
    // at schema 3, and the right one holds it.
    let reg = Registry::new();
    let h = reg.histogram("v", "V.").unwrap();
    for v in log_uniform(1000, 7) {
        h.record(v);
    }
    let (native, hdr) = native_and_hdr(&reg, &[0.5]);
    let q = native.quantile(0.5);
    check_bound(q, hdr[0], 3, native.zero_threshold()).unwrap();
    let base = 2f64.powf(0.125);
    assert!(check_bound(q * base * base, hdr[0], 3, 0.0).is_err());
    assert!(check_bound(q / base / base, hdr[0], 3, 0.0).is_err());
}

#[cfg(feature = "http")]
mod real_prometheus {
    use super::*;
    use metricz::export::http::Server;
    use support::prometheus::Prometheus;
    use support::{free_port, http_request_with};

    #[test]
    fn the_endpoint_answers_protobuf_when_asked() {
        let reg = Registry::new();
        reg.counter("jobs_total", "Jobs.").unwrap().add(7);
        let server = Server::builder(reg.clone())
            .bind("127.0.0.1:0".parse().unwrap())
            .spawn()
            .unwrap();
        let accept = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;\
                      encoding=delimited;q=0.9,text/plain;q=0.5";
        let (status, head, body) =
            support::http_request_bytes(server.local_addr(), "/metrics", &[("Accept", accept)])
                .unwrap();
        assert_eq!(status, 200);
        assert!(
            head.to_ascii_lowercase().contains(
                "content-type: application/vnd.google.protobuf; \
                 proto=io.prometheus.client.metricfamily; encoding=delimited"
            ),
            "{head}"
        );
        let families = decode_all(&body);
        assert_eq!(families[0].metric[0].counter.as_ref().unwrap().value, 7.0);
        // Text still when text is preferred.
        let (status, text) = http_request_with(
            server.local_addr(),
            "GET",
            "/metrics",
            &[("Accept", "application/vnd.google.protobuf;q=0.1,text/plain")],
        )
        .unwrap();
        assert_eq!(status, 200);
        assert!(text.contains("jobs_total 7\n"), "{text}");
        let _ = free_port();
        server.shutdown();
    }

    #[test]
    fn prometheus_reads_native_histograms_within_the_bound() {
        let reg = Registry::new();
        let latency = reg
            .timer_vec("native_latency_seconds", "Latency.", &["route"])
            .unwrap();
        let fine = reg
            .histogram_vec("native_size_seconds", "Sizes in ns.", &[])
            .unwrap();
        fine.set_scale(1e-9).unwrap();
        fine.set_native_schema(7).unwrap();
        let values = log_uniform(5_000, 42);
        for &v in &values {
            latency
                .with(&["/a"])
                .unwrap()
                .record(Duration::from_nanos(v));
        }
        let f = fine.handle(&[] as &[&str]).unwrap();
        for &v in &values[..3_000] {
            f.record(v);
        }
        let server = Server::builder(reg.clone())
            .bind("127.0.0.1:0".parse().unwrap())
            .spawn()
            .unwrap();
        let prometheus = Prometheus::start_with(
            &[("native", server.local_addr())],
            &["--enable-feature=native-histograms"],
        );
        prometheus.wait_up("native");

        let qs = [0.5, 0.9, 0.99];
        for (series, reg_family, n, schema) in [
            (
                "native_latency_seconds{job=\"native\",route=\"/a\"}",
                "native_latency_seconds",
                5_000u64,
                3i8,
            ),
            (
                "native_size_seconds{job=\"native\"}",
                "native_size_seconds",
                3_000,
                7,
            ),
        ] {
            // What the exporter derives, for the same records.
            let only = Registry::new();
            let copy = only.histogram_vec(reg_family, "x", &[]).unwrap();
            copy.set_scale(1e-9).unwrap();
            copy.set_native_schema(schema).unwrap();
            let h = copy.handle(&[] as &[&str]).unwrap();
            for &v in &values[..n as usize] {
                h.record(v);
            }
            let (native, hdr) = native_and_hdr(&only, &qs);
            let count = prometheus.value(&format!("histogram_count({series})"));
            assert_eq!(count, n as f64, "{series}");
            let sum = prometheus.value(&format!("histogram_sum({series})"));
            assert_eq!(sum, native.sum(), "{series}");
            for (&q, &q_hdr) in qs.iter().zip(&hdr) {
                let got = prometheus.value(&format!("histogram_quantile({q}, {series})"));
                check_bound(got, q_hdr, schema, native.zero_threshold())
                    .unwrap_or_else(|e| panic!("{series} q {q}: {e}"));
                // And exactly what the emulation of histogram_quantile says.
                let expected = native.quantile(q);
                assert!(
                    (got - expected).abs() <= 1e-9 * expected,
                    "{series} q {q}: prometheus {got}, emulation {expected}"
                );
                eprintln!(
                    "{series} q={q}: prometheus {got:.9}, hdr {q_hdr:.9}, ratio {:.5}",
                    got / q_hdr
                );
            }
        }
        drop(prometheus);
        server.shutdown();
    }
}
