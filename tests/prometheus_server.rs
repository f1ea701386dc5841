//! A real Prometheus server (`prometheus`, installed by
//! `scripts/install-clients`) scrapes the `/metrics` endpoint and the
//! `http_server` example on loopback; the values it stores are read back
//! through its HTTP query API and compared with what was recorded.
//!
//! A missing `prometheus` binary or example fails the test (never skips).
//! Waiting is bounded polling: no assertion depends on timing.
#![cfg(feature = "http")]

mod support;
use metricz::export::http::Server;
use metricz::Registry;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::free_port;
use support::process::{example_binary, poll, start_listening, Guard};
use support::prometheus::{buckets, parse_exposition, Prometheus};

/// `GET path` over HTTP/1.0 (so the answer is not chunked): status, body.
fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    support::http_request(addr, "GET", path)
}

/// Starts the `http_server` example with `args`, its `METRICZ_PORT` set to
/// `env_port` (or unset); returns its guard and the address it printed.
fn start_example(args: &[&str], env_port: Option<&str>) -> (Guard, SocketAddr) {
    let mut command = Command::new(example_binary("http_server"));
    command.args(args);
    match env_port {
        Some(port) => command.env("METRICZ_PORT", port),
        None => command.env_remove("METRICZ_PORT"),
    };
    start_listening(&mut command)
}

#[test]
fn prometheus_scrapes_the_endpoint_and_the_example() {
    // A registry this test controls.
    let reg = Registry::new();
    let jobs = reg.counter("demo_jobs_total", "Jobs run.").unwrap();
    jobs.add(42);
    let routes = reg
        .counter_vec("demo_requests_total", "Requests.", &["route"])
        .unwrap();
    routes.with(&["/x"]).unwrap().add(5);
    routes.with(&["/y"]).unwrap().add(11);
    reg.gauge("demo_temperature_celsius", "Temperature.")
        .unwrap()
        .set(21.5);
    let latency = reg
        .timer_vec("request_duration_seconds", "Latency.", &["route"])
        .unwrap();
    // Route /a: 80 requests of 2 ms and 20 of 300 ms, so the median lies
    // among the 2 ms ones and the 0.9 quantile among the 300 ms ones.
    let a = latency.with(&["/a"]).unwrap();
    for _ in 0..80 {
        a.record(Duration::from_millis(2));
    }
    for _ in 0..20 {
        a.record(Duration::from_millis(300));
    }
    latency
        .with(&["/b"])
        .unwrap()
        .record(Duration::from_millis(40));
    drop(a);

    let server = Server::builder(reg.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .spawn()
        .unwrap();
    let (example, example_addr) = start_example(&["--port", "0", "--duration", "120"], None);

    // The example's body parses, and has the metrics it promises once its
    // demo load has served a request (its load thread may not have run yet
    // on a busy machine: ask again for up to 30 s).
    let names = [
        "http_requests_total{",
        "http_requests_in_flight ",
        "http_response_size_bytes_count ",
        "request_duration_seconds_bucket{",
        "request_duration_seconds_count{",
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = http_get(example_addr, "/metrics").unwrap();
        assert_eq!(status, 200, "{body}");
        let samples = parse_exposition(&body);
        let missing = names.iter().find(|name| {
            !samples
                .iter()
                .any(|(s, _)| format!("{s} ").starts_with(**name))
        });
        match missing {
            None => break,
            Some(name) if std::time::Instant::now() > deadline => {
                panic!("the example has no {name}:\n{body}")
            }
            Some(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }

    let prometheus =
        Prometheus::start(&[("metricz", server.local_addr()), ("example", example_addr)]);
    prometheus.wait_up("metricz");
    prometheus.wait_up("example");

    // Counters and gauges as recorded.
    let value = |q: &str| prometheus.value(q);
    assert_eq!(value("demo_jobs_total{job=\"metricz\"}"), 42.0);
    assert_eq!(
        value("demo_requests_total{job=\"metricz\",route=\"/x\"}"),
        5.0
    );
    assert_eq!(
        value("demo_requests_total{job=\"metricz\",route=\"/y\"}"),
        11.0
    );
    assert_eq!(value("demo_temperature_celsius{job=\"metricz\"}"), 21.5);

    // The timer: count and sum (seconds), and quantiles from the buckets.
    let a = "job=\"metricz\",route=\"/a\"";
    assert_eq!(
        value(&format!("request_duration_seconds_count{{{a}}}")),
        100.0
    );
    let sum = value(&format!("request_duration_seconds_sum{{{a}}}"));
    let recorded_sum = 80.0 * 0.002 + 20.0 * 0.3;
    assert!(
        (sum - recorded_sum).abs() <= recorded_sum * 1e-3,
        "sum {sum}, recorded {recorded_sum}"
    );
    let mut exposition = String::new();
    reg.encode_prometheus(&mut exposition).unwrap();
    let bounds = buckets(&exposition, "request_duration_seconds", "route=\"/a\"");
    for (q, recorded) in [(0.9, 0.3), (0.5, 0.002)] {
        let vector = format!("request_duration_seconds_bucket{{{a}}}");
        prometheus.assert_quantile(q, &vector, &bounds, recorded);
    }

    // Live: a later scrape sees new increments.
    jobs.add(8);
    assert_eq!(
        prometheus.value_when("demo_jobs_total{job=\"metricz\"}", |v| v != 42.0),
        50.0
    );

    // The example, scraped by Prometheus: its load thread keeps recording.
    let first = value("demo_ticks_total{job=\"example\"}");
    assert!(first > 0.0);
    prometheus.value_when("demo_ticks_total{job=\"example\"}", |v| v > first);
    let count = prometheus.query("request_duration_seconds_count{job=\"example\"}");
    assert!(!count.is_empty(), "no timer series from the example");
    let p90 = prometheus.query(
        "histogram_quantile(0.9, sum by (le) (request_duration_seconds_bucket{job=\"example\"}))",
    );
    assert!(
        p90.len() == 1 && p90[0].1.is_finite() && p90[0].1 > 0.0,
        "example p90: {p90:?}"
    );

    drop(prometheus);
    drop(example);
    server.shutdown();
}

#[test]
fn the_example_takes_its_port_from_the_environment_and_exits_after_duration() {
    let port = free_port();
    let (mut example, addr) = start_example(&["--duration", "2"], Some(&port.to_string()));
    assert_eq!(addr, SocketAddr::from(([127, 0, 0, 1], port)));
    let (status, body) = http_get(addr, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(!parse_exposition(&body).is_empty());
    // It exits by itself, successfully.
    let status = poll("the example to exit", || example.child.try_wait().unwrap());
    assert!(status.success(), "the example exited with {status}");

    // A bad argument is a usage error.
    let status = Command::new(example_binary("http_server"))
        .arg("--port")
        .arg("not-a-port")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(2));
}
