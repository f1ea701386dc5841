//! The text exposition, read back by real clients: `promtool check metrics`
//! (Prometheus 2.42's parser and linter) and Python's `prometheus-client`
//! parsers for Prometheus text 0.0.4 and OpenMetrics 1.0. Every metric kind,
//! hostile label values (quotes, backslashes, newlines, unicode, empty),
//! and a property test of escaping over arbitrary label values and help
//! texts. The clients are installed by `scripts/install-clients` (run by
//! `scripts/test`); a missing client fails these tests.

mod support;
use metricz::export::Format;
use metricz::Registry;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;
use support::clients::{labels, promtool_accepts, python_samples};

/// Label values that break naive encoders.
const HOSTILE: [&str; 8] = [
    "say \"hi\"",
    "back\\slash",
    "two\nlines",
    "\\n",
    "é日本🦀",
    "",
    "a,b=c d{}",
    "trailing\\",
];

/// A registry with every metric kind, hostile label values, a help text
/// with every special character, and an overflowed family.
fn hostile_registry() -> Registry {
    let reg = Registry::builder().cardinality_limit(100).build();
    let requests = reg
        .counter_vec(
            "http_requests_total",
            "Requests \"served\", by path\\route.\nSecond line.",
            &["path"],
        )
        .unwrap();
    for (i, value) in HOSTILE.iter().enumerate() {
        requests.with(&[value]).unwrap().add(i as u64 + 1);
    }
    let temp = reg
        .gauge_vec("room_temperature_celsius", "Temperature.", &["room"])
        .unwrap();
    temp.with(&["hot"]).unwrap().set(f64::INFINITY);
    temp.with(&["cold"]).unwrap().set(f64::NEG_INFINITY);
    temp.with(&["broken"]).unwrap().set(f64::NAN);
    temp.with(&["kitchen"]).unwrap().set(-3.25);
    let sizes = reg
        .describe("response_size_bytes", "Sizes.")
        .unit("bytes")
        .labels(&["route"])
        .histogram_vec()
        .unwrap();
    sizes.set_buckets(&[100.0, 1000.0, 10_000.0]).unwrap();
    for v in [50, 500, 5_000, 50_000] {
        sizes.with(&["two\nlines"]).unwrap().record(v);
    }
    let latency = reg
        .timer_vec("request_duration_seconds", "Latency.", &["route"])
        .unwrap();
    for ms in [1, 7, 30, 300] {
        latency
            .with(&["say \"hi\""])
            .unwrap()
            .record(Duration::from_millis(ms));
    }
    let queue = reg
        .timer_vec("queue_wait_seconds", "Queue wait.", &["queue"])
        .unwrap();
    queue.set_summary(true);
    queue
        .with(&["é"])
        .unwrap()
        .record(Duration::from_millis(20));
    let limited = reg.counter_vec("jobs_total", "Jobs.", &["queue"]).unwrap();
    for i in 0..105 {
        limited.with(&[&format!("q{i}")]).unwrap().inc();
    }
    reg.counter("plain_events_total", "Events.").unwrap().add(7);
    // No help text.
    reg.counter("quiet_total", "").unwrap().add(2);
    reg.gauge_vec("no_help", "  ", &["k"])
        .unwrap()
        .with(&["v"])
        .unwrap()
        .set(1.0);
    reg
}

#[test]
fn promtool_accepts_every_kind_and_hostile_labels() {
    let reg = hostile_registry();
    let mut text = String::new();
    reg.encode_prometheus(&mut text).unwrap();
    promtool_accepts(&text);
}

#[test]
fn python_parser_reads_back_prometheus_text() {
    read_back(Format::Prometheus);
}

#[test]
fn python_parser_reads_back_openmetrics() {
    read_back(Format::OpenMetrics);
}

fn read_back(format: Format) {
    let reg = hostile_registry();
    let mut text = String::new();
    reg.encode(format, &mut text).unwrap();
    let samples = python_samples(&text, format);
    let find = |name: &str, l: &[(&str, &str)]| -> f64 {
        let want = labels(l);
        samples
            .iter()
            .find(|(n, ls, _)| n == name && *ls == want)
            .unwrap_or_else(|| panic!("{format:?}: no sample {name}{want:?} in\n{text}"))
            .2
    };
    for (i, value) in HOSTILE.iter().enumerate() {
        assert_eq!(
            find("http_requests_total", &[("path", value)]),
            i as f64 + 1.0,
            "{value:?}"
        );
    }
    assert_eq!(
        find("room_temperature_celsius", &[("room", "hot")]),
        f64::INFINITY
    );
    assert_eq!(
        find("room_temperature_celsius", &[("room", "cold")]),
        f64::NEG_INFINITY
    );
    assert!(find("room_temperature_celsius", &[("room", "broken")]).is_nan());
    assert_eq!(
        find("room_temperature_celsius", &[("room", "kitchen")]),
        -3.25
    );
    // Histogram buckets, cumulative, in bytes.
    let route = ("route", "two\nlines");
    for (le, count) in [("100", 1.0), ("1000", 2.0), ("10000", 3.0), ("+Inf", 4.0)] {
        assert_eq!(
            find("response_size_bytes_bucket", &[route, ("le", le)]),
            count,
            "le={le}"
        );
    }
    assert_eq!(find("response_size_bytes_count", &[route]), 4.0);
    assert_eq!(find("response_size_bytes_sum", &[route]), 55_550.0);
    // Timers in seconds.
    let hi = ("route", "say \"hi\"");
    assert_eq!(
        find("request_duration_seconds_bucket", &[hi, ("le", "0.005")]),
        1.0
    );
    assert_eq!(
        find("request_duration_seconds_bucket", &[hi, ("le", "0.01")]),
        2.0
    );
    assert_eq!(
        find("request_duration_seconds_bucket", &[hi, ("le", "0.5")]),
        4.0
    );
    assert_eq!(find("request_duration_seconds_count", &[hi]), 4.0);
    assert!((find("request_duration_seconds_sum", &[hi]) - 0.338).abs() < 1e-12);
    // A summary.
    let q = find("queue_wait_seconds", &[("queue", "é"), ("quantile", "0.5")]);
    assert!((q - 0.02).abs() < 0.02 * 0.001, "{q}");
    // Overflow: 100 series and the overflow series with 5 lookups.
    assert_eq!(find("jobs_total", &[("metricz_overflow", "true")]), 5.0);
    assert_eq!(
        find(
            "metricz_cardinality_overflow_total",
            &[("family", "jobs_total")]
        ),
        5.0
    );
    assert_eq!(find("plain_events_total", &[]), 7.0);
    assert_eq!(find("quiet_total", &[]), 2.0);
    assert_eq!(find("no_help", &[("k", "v")]), 1.0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any label values and help text encode to an exposition that promtool
    /// accepts and both Python parsers read back to the same values.
    #[test]
    fn escaping_round_trips_through_real_parsers(
        values in proptest::collection::btree_set(any::<String>(), 1..6),
        help in any::<String>(),
    ) {
        let reg = Registry::new();
        let family = reg.counter_vec("prop_events_total", &help, &["v"]).unwrap();
        let expected: BTreeMap<String, u64> = values
            .iter()
            .enumerate()
            .map(|(i, v)| (v.clone(), i as u64 + 1))
            .collect();
        for (v, n) in &expected {
            family.with(&[v]).unwrap().add(*n);
        }
        let mut text = String::new();
        reg.encode_prometheus(&mut text).unwrap();
        promtool_accepts(&text);
        for format in [Format::Prometheus, Format::OpenMetrics] {
            let mut text = String::new();
            reg.encode(format, &mut text).unwrap();
            let got: BTreeMap<String, u64> = python_samples(&text, format)
                .into_iter()
                .filter(|(name, _, _)| name == "prop_events_total")
                .map(|(_, labels, v)| (labels["v"].clone(), v as u64))
                .collect();
            prop_assert_eq!(&got, &expected);
        }
    }
}
