//! A real Prometheus server (`prometheus`, installed by
//! `scripts/install-clients`) scraping loopback targets, read back through
//! its HTTP query API; and what PromQL should compute from an exposition.
//!
//! A missing `prometheus` binary fails the test (never skips). Waiting is
//! bounded polling: no assertion depends on timing.

use super::process::{poll, Guard, POLLS};
use super::{free_port, http_request, url_encode};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const PROMETHEUS: &str = "/usr/bin/prometheus";

/// A scrape job for [`Prometheus::start_jobs`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Job<'a> {
    /// The job name (also the `job` label of its series).
    pub(crate) name: &'a str,
    /// Its one target.
    pub(crate) addr: SocketAddr,
    /// Raw YAML added to the job's scrape config, unindented (each line
    /// goes in at the job's level): e.g. `scheme: https`.
    pub(crate) extra: &'a str,
}

/// A Prometheus server, killed (and its directory removed) on drop.
pub(crate) struct Prometheus {
    addr: SocketAddr,
    _guard: Guard,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (job name, address) every
    /// second and waits until it is ready.
    pub(crate) fn start(targets: &[(&str, SocketAddr)]) -> Prometheus {
        Self::start_with(targets, &[])
    }

    /// [`start`](Self::start) with extra command-line flags (e.g.
    /// `--enable-feature=native-histograms`).
    pub(crate) fn start_with(targets: &[(&str, SocketAddr)], flags: &[&str]) -> Prometheus {
        let jobs: Vec<Job<'_>> = targets
            .iter()
            .map(|&(name, addr)| Job {
                name,
                addr,
                extra: "",
            })
            .collect();
        Self::start_jobs(&jobs, flags)
    }

    /// [`start_with`](Self::start_with) for jobs that each add raw YAML to
    /// their scrape config (`scheme: https`, `tls_config`, `basic_auth`, …).
    pub(crate) fn start_jobs(jobs: &[Job<'_>], flags: &[&str]) -> Prometheus {
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
        for Job { name, addr, extra } in jobs {
            config.push_str(&format!(
                "  - job_name: {name}\n    static_configs:\n      - targets: ['{addr}']\n"
            ));
            for line in extra.lines() {
                config.push_str(&format!("    {line}\n"));
            }
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
            .args(flags)
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
            match http_request(addr, "GET", "/-/ready") {
                Ok((200, _)) => Some(()),
                _ => None,
            }
        });
        Prometheus {
            addr,
            _guard: guard,
        }
    }

    /// The address of its HTTP API (the query API and, with
    /// `--web.enable-remote-write-receiver`, `/api/v1/write`).
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The instant vector `promql` evaluates to: (labels, value) pairs.
    pub(crate) fn query(&self, promql: &str) -> Vec<(serde_json::Value, f64)> {
        query_at(self.addr, promql)
    }

    /// The single value of `promql`, waiting (bounded) until there is one
    /// for which `ready` holds.
    pub(crate) fn value_when(&self, promql: &str, ready: impl Fn(f64) -> bool) -> f64 {
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

    /// The single value of `promql`, as soon as there is one.
    pub(crate) fn value(&self, promql: &str) -> f64 {
        self.value_when(promql, |_| true)
    }

    /// Checks `histogram_quantile(q, bucket_vector)` against `buckets`,
    /// the cumulative buckets behind it as exported, in which `recorded`
    /// is the q-quantile of what was recorded: the exporter put `recorded`
    /// in the bucket the quantile's rank falls in, and Prometheus reads the
    /// buckets as the exporter meant them (the quantile they imply).
    pub(crate) fn assert_quantile(
        &self,
        q: f64,
        bucket_vector: &str,
        buckets: &[(f64, f64)],
        recorded: f64,
    ) {
        let (expected, lower, upper) = implied_quantile(q, buckets);
        assert!(
            lower < recorded && recorded <= upper,
            "{recorded} was exported in the bucket ({lower}, {upper}]: {buckets:?}"
        );
        let promql = format!("histogram_quantile({q}, {bucket_vector})");
        let got = self.value(&promql);
        assert!(
            lower <= got && got <= upper,
            "{promql} = {got}, outside the bucket ({lower}, {upper}]"
        );
        assert!(
            close(got, expected),
            "{promql} = {got}, buckets imply {expected}"
        );
    }

    /// Waits until `job`'s target has been scraped successfully; fails
    /// with the scrape error Prometheus reports if it never is.
    pub(crate) fn wait_up(&self, job: &str) {
        for _ in 0..POLLS {
            match self.query(&format!("up{{job=\"{job}\"}}")).first() {
                Some((_, v)) if *v == 1.0 => return,
                // Not scraped yet, or a failed scrape (retried each second).
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        let (_, targets) = http_request(self.addr, "GET", "/api/v1/targets").unwrap();
        panic!("prometheus never scraped job {job} successfully: {targets}");
    }

    /// Waits until `job`'s target has been scraped at least once and is
    /// down (`up == 0`: the series exists only once a scrape was made);
    /// returns the scrape error Prometheus reports for it. Fails if the
    /// target is ever seen up, or never scraped.
    pub(crate) fn wait_down(&self, job: &str) -> String {
        for _ in 0..POLLS {
            match self.query(&format!("up{{job=\"{job}\"}}")).first() {
                Some((_, v)) if *v == 0.0 => {
                    if let Some(error) = self.last_error(job).filter(|e| !e.is_empty()) {
                        return error;
                    }
                }
                Some((_, v)) => panic!("job {job} was scraped successfully (up = {v})"),
                None => {}
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let (_, targets) = http_request(self.addr, "GET", "/api/v1/targets").unwrap();
        panic!("prometheus never recorded a failed scrape of job {job}: {targets}");
    }

    /// The last scrape error of `job`'s target (empty after a successful
    /// scrape), from `/api/v1/targets`; `None` while it has no target.
    pub(crate) fn last_error(&self, job: &str) -> Option<String> {
        let (status, body) = http_request(self.addr, "GET", "/api/v1/targets").unwrap();
        assert_eq!(status, 200, "/api/v1/targets: {body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON answer");
        json["data"]["activeTargets"]
            .as_array()?
            .iter()
            .find(|t| t["scrapePool"] == job)
            .and_then(|t| t["lastError"].as_str())
            .map(str::to_string)
    }
}

/// The instant vector `promql` evaluates to at the Prometheus query API at
/// `addr` (Prometheus or VictoriaMetrics): (labels, value) pairs.
pub(crate) fn query_at(addr: SocketAddr, promql: &str) -> Vec<(serde_json::Value, f64)> {
    let path = format!("/api/v1/query?query={}", url_encode(promql));
    let (status, body) = http_request(addr, "GET", &path).expect("query the server");
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

/// Parses a Prometheus text exposition into (series, value) samples,
/// failing on any malformed line.
pub(crate) fn parse_exposition(body: &str) -> Vec<(String, f64)> {
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
pub(crate) fn buckets(body: &str, name: &str, series_labels: &str) -> Vec<(f64, f64)> {
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
pub(crate) fn implied_quantile(q: f64, buckets: &[(f64, f64)]) -> (f64, f64, f64) {
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

/// Equal up to floating-point rounding.
pub(crate) fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}
