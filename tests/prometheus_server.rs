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
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::{free_port, url_encode};

const PROMETHEUS: &str = "/usr/bin/prometheus";

/// Gives up waiting after this many polls, 100 ms apart.
const POLLS: usize = 600;

/// A child process killed (and waited for) on drop, also when a test
/// panics; `log` is printed then.
struct Guard {
    what: &'static str,
    child: Child,
    log: Option<PathBuf>,
    dir: Option<PathBuf>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            if let Some(log) = &self.log {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                eprintln!("--- last lines of the {} log ---", self.what);
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `GET path` over HTTP/1.0 (so the answer is not chunked): status, body.
fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    support::http_request(addr, "GET", path)
}

fn poll<T>(what: &str, mut attempt: impl FnMut() -> Option<T>) -> T {
    for _ in 0..POLLS {
        if let Some(v) = attempt() {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("gave up waiting for {what}");
}

struct Prometheus {
    addr: SocketAddr,
    _guard: Guard,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (job name, address) every
    /// second and waits until it is ready.
    fn start(targets: &[(&str, SocketAddr)]) -> Prometheus {
        assert!(
            Path::new(PROMETHEUS).exists(),
            "{PROMETHEUS} is missing: run scripts/install-clients (Debian package `prometheus`)"
        );
        let dir = std::env::temp_dir().join(format!(
            "metricz-prometheus-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut config =
            String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
        for (job, addr) in targets {
            config.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: ['{addr}']\n"
            ));
        }
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = dir.join("prometheus.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {PROMETHEUS}: {e}"));
        let mut guard = Guard {
            what: "prometheus",
            child,
            log: Some(log),
            dir: Some(dir),
        };
        poll("prometheus to be ready", || {
            if let Ok(Some(status)) = guard.child.try_wait() {
                panic!("prometheus exited at start: {status}");
            }
            match http_get(addr, "/-/ready") {
                Ok((200, _)) => Some(()),
                _ => None,
            }
        });
        Prometheus {
            addr,
            _guard: guard,
        }
    }

    /// The instant vector `promql` evaluates to: (labels, value) pairs.
    fn query(&self, promql: &str) -> Vec<(serde_json::Value, f64)> {
        let path = format!("/api/v1/query?query={}", url_encode(promql));
        let (status, body) = http_get(self.addr, &path).expect("query prometheus");
        assert_eq!(status, 200, "{promql}: {body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON answer");
        assert_eq!(json["status"], "success", "{promql}: {body}");
        json["data"]["result"]
            .as_array()
            .unwrap_or_else(|| panic!("{promql}: not a vector: {body}"))
            .iter()
            .map(|r| {
                let value = r["value"][1].as_str().expect("value string");
                (r["metric"].clone(), value.parse().expect("numeric value"))
            })
            .collect()
    }

    /// The single value of `promql`, waiting (bounded) until there is one
    /// for which `ready` holds.
    fn value_when(&self, promql: &str, ready: impl Fn(f64) -> bool) -> f64 {
        let mut last = None;
        for _ in 0..POLLS {
            let result = self.query(promql);
            assert!(
                result.len() <= 1,
                "{promql}: more than one series: {result:?}"
            );
            if let Some((_, v)) = result.first() {
                if ready(*v) {
                    return *v;
                }
                last = Some(*v);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{promql}: gave up waiting; last value {last:?}");
    }

    /// Waits until `job`'s target has been scraped successfully; fails
    /// with the scrape error Prometheus reports if it never is.
    fn wait_up(&self, job: &str) {
        for _ in 0..POLLS {
            match self.query(&format!("up{{job=\"{job}\"}}")).first() {
                Some((_, v)) if *v == 1.0 => return,
                // Not scraped yet, or a failed scrape (retried each second).
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        let (_, targets) = http_get(self.addr, "/api/v1/targets").unwrap();
        panic!("prometheus never scraped job {job} successfully: {targets}");
    }
}

/// The `http_server` example, built next to this test's binary
/// (`cargo test --features http` builds examples; so does
/// `cargo build --example http_server --features http`).
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<this test> -> target/<profile>/examples/
    let path = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples")
        .join(format!("http_server{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: build it first with `cargo build --example http_server --features http`",
        path.display()
    );
    path
}

/// Starts the example with `args`; returns its guard and the address it
/// printed.
fn start_example(args: &[&str], env_port: Option<&str>) -> (Guard, SocketAddr) {
    let mut command = Command::new(example_binary());
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    match env_port {
        Some(port) => command.env("METRICZ_PORT", port),
        None => command.env_remove("METRICZ_PORT"),
    };
    let mut child = command.spawn().expect("start the example");
    let stdout = child.stdout.take().unwrap();
    let guard = Guard {
        what: "example",
        child,
        log: None,
        dir: None,
    };
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("the example printed {line:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("the example printed {line:?}"));
    (guard, addr)
}

/// Parses a Prometheus text exposition into (series, value) samples,
/// failing on any malformed line.
fn parse_exposition(body: &str) -> Vec<(String, f64)> {
    let mut samples = Vec::new();
    for line in body.lines() {
        if line.is_empty() || line.starts_with('#') {
            assert!(
                line.starts_with("# HELP ") || line.starts_with("# TYPE ") || line.is_empty(),
                "bad comment line {line:?}"
            );
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value in {line:?}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "bad labels in {line:?}");
        }
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        samples.push((series.to_string(), value));
    }
    samples
}

/// The `(le, cumulative count)` buckets of `series_labels` (e.g.
/// `route="/a"`) of histogram `name` in a Prometheus exposition.
fn buckets(body: &str, name: &str, series_labels: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{{series_labels},le=\"");
    let buckets: Vec<(f64, f64)> = body
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(&prefix)?;
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            Some((le, count.parse().unwrap()))
        })
        .collect();
    assert!(
        buckets.len() >= 2 && buckets.last().unwrap().0 == f64::INFINITY,
        "no cumulative buckets for {name}{{{series_labels}}} (histograms must be \
         exported as Prometheus histograms):\n{body}"
    );
    buckets
}

/// The quantile PromQL's `histogram_quantile` computes from cumulative
/// buckets (linear interpolation within the bucket the rank falls in),
/// and that bucket's bounds.
fn implied_quantile(q: f64, buckets: &[(f64, f64)]) -> (f64, f64, f64) {
    let total = buckets.last().unwrap().1;
    let rank = q * total;
    let b = buckets.iter().position(|&(_, c)| c >= rank).unwrap();
    assert!(
        b + 1 < buckets.len(),
        "the quantile falls in the +Inf bucket: {buckets:?}"
    );
    let (lower, below) = if b == 0 { (0.0, 0.0) } else { buckets[b - 1] };
    let (upper, count) = buckets[b];
    let value = lower + (upper - lower) * (rank - below) / (count - below);
    (value, lower, upper)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
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

    // The example's body parses, and has the metrics it promises.
    let (status, body) = http_get(example_addr, "/metrics").unwrap();
    assert_eq!(status, 200, "{body}");
    let samples = parse_exposition(&body);
    for name in [
        "http_requests_total{",
        "http_requests_in_flight ",
        "http_response_size_bytes_count ",
        "request_duration_seconds_bucket{",
        "request_duration_seconds_count{",
    ] {
        assert!(
            samples
                .iter()
                .any(|(s, _)| format!("{s} ").starts_with(name)),
            "the example has no {name}:\n{body}"
        );
    }

    let prometheus =
        Prometheus::start(&[("metricz", server.local_addr()), ("example", example_addr)]);
    prometheus.wait_up("metricz");
    prometheus.wait_up("example");

    // Counters and gauges as recorded.
    let value = |q: &str| prometheus.value_when(q, |_| true);
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
        let (expected, lower, upper) = implied_quantile(q, &bounds);
        // The exporter put the recorded values into the right bucket...
        assert!(
            lower < recorded && recorded <= upper,
            "{recorded} s was exported in the bucket ({lower}, {upper}]: {bounds:?}"
        );
        // ... and Prometheus reads the buckets as the exporter meant them.
        let promql = format!("histogram_quantile({q}, request_duration_seconds_bucket{{{a}}})");
        let got = value(&promql);
        assert!(
            lower <= got && got <= upper,
            "{promql} = {got}, outside the bucket ({lower}, {upper}]"
        );
        assert!(
            close(got, expected),
            "{promql} = {got}, buckets imply {expected}"
        );
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
    let status = Command::new(example_binary())
        .arg("--port")
        .arg("not-a-port")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(2));
}
