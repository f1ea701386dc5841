//! The `facade` example (a service instrumented only with the `metrics`
//! macros, recording into metricz through `metricz::facade`), read by real
//! clients: its `/metrics` passes `promtool check metrics` and both of
//! Python's `prometheus-client` parsers, and a real Prometheus server
//! scraping it answers PromQL queries with what the example recorded:
//! counters per label set, the in-flight gauge, and the latency
//! histogram's count, sum and quantiles.
//!
//! A missing client, `prometheus` binary or example fails the test (never
//! skips). Waiting is bounded polling: no assertion depends on timing.
#![cfg(feature = "http")]

mod support;
use metricz::export::Format;
use std::process::Command;
use support::clients::{labels, promtool_accepts, python_samples};
use support::http_request_with;
use support::process::{example_binary, start_listening};
use support::prometheus::{buckets, Prometheus};

/// The example's workload: request `i` of 100 is `/users/<i>` for even
/// `i`, `/orders/<i>` for odd; it takes 300 ms when `i % 10 == 0` (so all
/// ten slow ones are users') and 2 ms otherwise, and is a 404 (9 bytes
/// sent, else 512) when `i % 10 == 5` (all ten are orders').
const REQUESTS: &str = "100";

const USERS: (&str, &str) = ("route", "/users/:id");
const ORDERS: (&str, &str) = ("route", "/orders/:id");

/// A sample: name, labels (name, value), value.
type Sample = (&'static str, Vec<(&'static str, &'static str)>, f64);

/// Every sample the workload determines.
fn expected() -> Vec<Sample> {
    let ok = vec![("method", "GET"), ("status", "200")];
    let not_found = vec![("method", "GET"), ("status", "404")];
    vec![
        ("http_requests_total", ok, 90.0),
        ("http_requests_total", not_found, 10.0),
        ("http_response_bytes_total", vec![USERS], 50.0 * 512.0),
        (
            "http_response_bytes_total",
            vec![ORDERS],
            40.0 * 512.0 + 10.0 * 9.0,
        ),
        ("http_requests_in_flight", vec![], 0.0),
        ("http_request_duration_seconds_count", vec![USERS], 50.0),
        ("http_request_duration_seconds_count", vec![ORDERS], 50.0),
        (
            "http_request_duration_seconds_sum",
            vec![USERS],
            10.0 * 0.3 + 40.0 * 0.002,
        ),
        (
            "http_request_duration_seconds_sum",
            vec![ORDERS],
            50.0 * 0.002,
        ),
    ]
}

/// Equal within the histogram's 3 significant figures (exact for counts).
fn matches(got: f64, want: f64) -> bool {
    (got - want).abs() <= want.abs() * 1e-3
}

#[test]
fn prometheus_and_the_parsers_read_what_the_facade_recorded() {
    let mut command = Command::new(example_binary("facade"));
    command.args(["--port", "0", "--requests", REQUESTS]);
    let (example, addr) = start_listening(&mut command);

    // Both formats the endpoint negotiates, through the real parsers.
    let scrape = |accept: &str| {
        let (status, body) =
            http_request_with(addr, "GET", "/metrics", &[("Accept", accept)]).unwrap();
        assert_eq!(status, 200, "{body}");
        body
    };
    let text = scrape("text/plain");
    promtool_accepts(&text);
    for (format, body) in [
        (Format::Prometheus, text.clone()),
        (Format::OpenMetrics, scrape("application/openmetrics-text")),
    ] {
        let samples = python_samples(&body, format);
        for (name, pairs, want) in expected() {
            let want_labels = labels(&pairs);
            let got = samples
                .iter()
                .find(|(n, l, _)| n == name && *l == want_labels)
                .unwrap_or_else(|| panic!("{format:?}: no {name}{pairs:?} in\n{body}"))
                .2;
            assert!(
                matches(got, want),
                "{format:?}: {name}{pairs:?} = {got}, not {want}"
            );
        }
        // Every key the example used resolved to a series.
        assert!(
            !samples
                .iter()
                .any(|(n, _, _)| n.starts_with("metricz_facade_rejected")),
            "{format:?}: rejected keys:\n{body}"
        );
    }

    let prometheus = Prometheus::start(&[("facade", addr)]);
    prometheus.wait_up("facade");
    for (name, pairs, want) in expected() {
        let selector: Vec<String> = std::iter::once(("job", "facade"))
            .chain(pairs)
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        let promql = format!("{name}{{{}}}", selector.join(","));
        let got = prometheus.value(&promql);
        assert!(matches(got, want), "{promql} = {got}, not {want}");
    }

    // Quantiles, from the exported buckets: users' are 40 at 2 ms and 10 at
    // 300 ms, orders' 50 at 2 ms; each quantile's rank falls among one
    // latency only, whose bucket is unambiguous.
    let histogram = "http_request_duration_seconds";
    let bucket_of = |route: (&str, &str)| {
        let series = format!("{}=\"{}\"", route.0, route.1);
        let vector = format!("{histogram}_bucket{{job=\"facade\",{series}}}");
        (vector, buckets(&text, histogram, &series))
    };
    let (users, users_buckets) = bucket_of(USERS);
    let (orders, orders_buckets) = bucket_of(ORDERS);
    let all = format!("sum by (le) ({histogram}_bucket{{job=\"facade\"}})");
    let all_buckets: Vec<(f64, f64)> = users_buckets
        .iter()
        .zip(&orders_buckets)
        .map(|(&(le, a), &(other_le, b))| {
            assert_eq!(le, other_le, "the routes' buckets differ");
            (le, a + b)
        })
        .collect();
    for (vector, buckets, median, p99) in [
        (&users, &users_buckets, 0.002, 0.3),
        (&orders, &orders_buckets, 0.002, 0.002),
        (&all, &all_buckets, 0.002, 0.3),
    ] {
        prometheus.assert_quantile(0.5, vector, buckets, median);
        prometheus.assert_quantile(0.99, vector, buckets, p99);
    }

    drop(prometheus);
    drop(example);
}
