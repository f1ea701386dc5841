//! Prometheus remote write: the request as encoded (decoded back with
//! snappy and prost), real receivers (Prometheus 2.42 with native
//! histograms, VictoriaMetrics) read back through their query APIs, and
//! the pusher against a fake receiver that is down, slow, failing or
//! refusing.
//!
//! Real servers run on loopback, started and stopped here; a missing
//! binary fails the test. No assertion depends on timing: waits are
//! bounded polls.

mod support;

use metricz::export::native::NativeBuckets;
use metricz::export::proto::remote::{TimeSeries, WriteRequest};
use metricz::export::push::{PushError, PushOptions, PusherHandle};
use metricz::export::remote_write::{encode, Encoder, RemoteWritePusher, RemoteWritePusherBuilder};
use metricz::registry::Value;
use metricz::{Counter, Registry, RegistryError};
use prost::Message;
use std::net::TcpListener;
use std::thread;
use std::time::Duration;
use support::fake_http::{dead_tcp_port, FakeHttp, Received};
use support::push::{self, assert_dropped_reported, expose, fail_within_bound, HOUR};
use support::remote_prometheus::RemotePrometheus;
use support::victoria::Victoria;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Push options for tests that push by hand: no interval ticks, no
/// backoff, a breaker that never opens; then `tweak` applied.
fn options(tweak: impl FnOnce(&mut PushOptions)) -> PushOptions {
    push::options(|o| {
        o.breaker_threshold = u32::MAX;
        o.breaker_cool_down = HOUR;
        tweak(o);
    })
}

fn pusher(
    reg: &Registry,
    addr: impl std::fmt::Display,
    tweak: impl FnOnce(&mut PushOptions),
) -> RemoteWritePusherBuilder {
    RemoteWritePusher::builder(reg.clone(), format!("http://{addr}/api/v1/write"))
        .options(options(tweak))
}

/// A snappy-compressed protobuf body, decoded.
fn decode(body: &[u8]) -> WriteRequest {
    let proto = snap::raw::Decoder::new()
        .decompress_vec(body)
        .expect("a snappy block");
    WriteRequest::decode(&proto[..]).expect("a WriteRequest")
}

/// The series whose labels are exactly `labels` (`__name__` included, in
/// any order).
fn find<'r>(request: &'r WriteRequest, labels: &[(&str, &str)]) -> Option<&'r TimeSeries> {
    request.timeseries.iter().find(|s| {
        s.labels.len() == labels.len()
            && labels
                .iter()
                .all(|(n, v)| s.labels.iter().any(|l| l.name == *n && l.value == *v))
    })
}

/// Every series' labels are sorted by name, unique, non-empty, and
/// include `__name__`.
fn assert_well_formed(request: &WriteRequest) {
    for s in &request.timeseries {
        assert!(
            s.labels.windows(2).all(|w| w[0].name < w[1].name),
            "labels not sorted or repeated: {s:?}"
        );
        assert!(s.labels.iter().any(|l| l.name == "__name__"), "{s:?}");
        assert!(
            s.labels
                .iter()
                .all(|l| !l.name.is_empty() && !l.value.is_empty()),
            "{s:?}"
        );
        assert_eq!(s.samples.len() + s.histograms.len(), 1, "{s:?}");
    }
}

#[test]
fn requests_decode_with_sorted_labels_values_and_native_counts() -> TestResult {
    let reg = Registry::builder().cardinality_limit(2).build();
    let requests = reg.counter_vec("requests_total", "Requests.", &["route", "method"])?;
    requests.with(&["/a", "GET"])?.add(123_456_789);
    requests.with(&["/b", "PUT"])?.add(2);
    requests.with(&["/c", "GET"])?.add(5); // past the limit: the overflow series
    reg.gauge("temperature", "Temperature.")?.set(-3.25);
    let sizes = reg.histogram("size_bytes", "Sizes.")?;
    for v in [1, 2, 3, 4, 100] {
        sizes.record(v);
    }
    reg.timer("latency_seconds", "Latency.")?
        .record(Duration::from_micros(1500));

    let mut request = WriteRequest::default();
    Encoder::new()
        .label("instance", "test")
        .label("route", "external")
        .encode(&reg, 1_700_000_000_123, &mut request);
    // What the pusher sends: protobuf, then snappy's block format.
    let body = snap::raw::Encoder::new().compress_vec(&request.encode_to_vec())?;
    let decoded = decode(&body);
    assert_eq!(decoded, request);
    assert_well_formed(&decoded);
    assert!(decoded.timeseries.iter().all(|s| s
        .samples
        .iter()
        .map(|x| x.timestamp)
        .chain(s.histograms.iter().map(|h| h.timestamp))
        .all(|t| t == 1_700_000_000_123)));

    // Counters and gauges; the series' own `route` wins over the external.
    let a = find(
        &decoded,
        &[
            ("__name__", "requests_total"),
            ("instance", "test"),
            ("method", "GET"),
            ("route", "/a"),
        ],
    )
    .expect("requests_total{route=/a}");
    assert_eq!(a.samples[0].value, 123_456_789.0);
    let names: Vec<&str> = a.labels.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["__name__", "instance", "method", "route"]);
    let overflow = find(
        &decoded,
        &[
            ("__name__", "requests_total"),
            ("instance", "test"),
            ("metricz_overflow", "true"),
            ("route", "external"),
        ],
    )
    .expect("the overflow series, with the external labels");
    assert_eq!(overflow.samples[0].value, 5.0);
    let report = find(
        &decoded,
        &[
            ("__name__", "metricz_cardinality_overflow_total"),
            ("family", "requests_total"),
            ("instance", "test"),
            ("route", "external"),
        ],
    )
    .expect("the overflow report");
    assert_eq!(report.samples[0].value, 1.0);
    let t = find(
        &decoded,
        &[
            ("__name__", "temperature"),
            ("instance", "test"),
            ("route", "external"),
        ],
    )
    .unwrap();
    assert_eq!(t.samples[0].value, -3.25);

    // The native histogram: count = zero count + the buckets' counts.
    let base = [("instance", "test"), ("route", "external")];
    let with = |name: &'static str, extra: &[(&'static str, &'static str)]| {
        let mut labels = vec![("__name__", name)];
        labels.extend_from_slice(&base);
        labels.extend_from_slice(extra);
        labels
    };
    let native = find(&decoded, &with("size_bytes", &[])).unwrap();
    assert!(native.samples.is_empty());
    let h = &native.histograms[0];
    let mut running = 0i64;
    let mut buckets = Vec::new();
    for d in &h.positive_deltas {
        running += d;
        buckets.push(running);
    }
    assert!(buckets.iter().all(|&c| c >= 0), "{buckets:?}");
    assert_eq!(
        buckets.iter().sum::<i64>() as u64 + h.zero_count_int,
        h.count_int
    );
    assert_eq!(
        (h.count_int, h.sum, h.schema, h.reset_hint),
        (5, 110.0, 3, 0)
    );
    let spans: Vec<(i32, u32)> = h
        .positive_spans
        .iter()
        .map(|s| (s.offset, s.length))
        .collect();
    assert_eq!(spans, [(0, 1), (7, 1), (4, 4), (37, 1)]);
    assert_eq!(
        spans.iter().map(|s| s.1 as usize).sum::<usize>(),
        h.positive_deltas.len()
    );
    // Classic series beside it (the family keeps them by default).
    let count = find(&decoded, &with("size_bytes_count", &[])).unwrap();
    assert_eq!(count.samples[0].value, 5.0);
    let inf = find(&decoded, &with("size_bytes_bucket", &[("le", "+Inf")])).unwrap();
    assert_eq!(inf.samples[0].value, 5.0);
    // A timer's in seconds.
    let lat = find(&decoded, &with("latency_seconds", &[])).unwrap();
    assert_eq!(
        (lat.histograms[0].count_int, lat.histograms[0].sum),
        (1, 0.0015)
    );
    let lat_sum = find(&decoded, &with("latency_seconds_sum", &[])).unwrap();
    assert_eq!(lat_sum.samples[0].value, 0.0015);

    // Metadata: one per family, with type, help and unit.
    let meta: Vec<(&str, i32, &str, &str)> = decoded
        .metadata
        .iter()
        .map(|m| {
            (
                m.metric_family_name.as_str(),
                m.r#type,
                m.help.as_str(),
                m.unit.as_str(),
            )
        })
        .collect();
    assert_eq!(
        meta,
        [
            ("latency_seconds", 3, "Latency.", "seconds"),
            ("requests_total", 1, "Requests.", ""),
            ("size_bytes", 3, "Sizes.", ""),
            ("temperature", 2, "Temperature.", ""),
            (
                "metricz_cardinality_overflow_total",
                1,
                "Lookups of new label values routed to a family's overflow series.",
                ""
            ),
        ]
    );

    // The plain function: no external labels.
    let mut plain = WriteRequest::default();
    encode(&reg, 5, &mut plain);
    assert!(find(&plain, &[("__name__", "temperature")]).is_some());
    Ok(())
}

/// What the registry's timer `name` holds: (count, sum in seconds, the
/// HDR quantile in seconds at each of `qs`, the native quantile computed
/// from the derived buckets, the schema).
#[allow(clippy::type_complexity)]
fn timer_truth(reg: &Registry, name: &str, qs: &[f64]) -> (u64, f64, Vec<(f64, f64)>, i8) {
    let mut truth = None;
    reg.collect(|family| {
        if family.name() != name {
            return Ok(());
        }
        let settings = family.native().unwrap();
        family.for_each_series(|mut series| {
            if let Value::Distribution(d) = series.value() {
                let mut native = NativeBuckets::new();
                native.derive(&d, settings.schema, settings.zero_threshold);
                let s = d.snapshot();
                let quantiles = qs
                    .iter()
                    .map(|&q| (d.scaled(s.value_at_quantile(q)), native.quantile(q)))
                    .collect();
                truth = Some((native.count(), native.sum(), quantiles, settings.schema));
            }
            Ok::<(), std::convert::Infallible>(())
        })
    })
    .unwrap();
    truth.expect("the timer")
}

#[test]
fn prometheus_reads_back_counters_gauges_and_native_histograms() -> TestResult {
    let prometheus = RemotePrometheus::start();
    let reg = Registry::new();
    let jobs = reg.counter_vec("jobs_total", "Jobs.", &["queue"])?;
    jobs.with(&["mail"])?.add(123_456_789);
    jobs.with(&["sms"])?.add(7);
    reg.gauge("temperature_celsius", "Temperature.")?.set(-3.25);
    reg.gauge("ratio", "Ratio.")?.set(0.1);
    let latency = reg.timer("latency_seconds", "Latency.")?;
    // Log-uniform from 1 µs to 100 ms.
    let n = 20_000u32;
    for i in 0..n {
        let exp = -6.0 + 5.0 * f64::from(i) / f64::from(n - 1);
        latency.record(Duration::from_nanos((10f64.powf(exp) * 1e9).round() as u64));
    }
    let sizes = reg.histogram("size_bytes", "Sizes.")?;
    for v in [1, 2, 3, 4, 100] {
        sizes.record(v);
    }

    let handle = RemoteWritePusher::builder(reg.clone(), prometheus.write_url())
        .options(options(|_| {}))
        .label("instance", "test")
        .native_histograms(true)
        .spawn()?;
    handle.push_now()?;
    let stats = handle.stats();
    assert_eq!(
        (stats.pushes, stats.failures, stats.pending_bytes),
        (1, 0, 0)
    );

    assert_eq!(
        prometheus.value(r#"jobs_total{queue="mail",instance="test"}"#),
        123_456_789.0
    );
    assert_eq!(prometheus.value(r#"jobs_total{queue="sms"}"#), 7.0);
    assert_eq!(prometheus.value("temperature_celsius"), -3.25);
    assert_eq!(prometheus.value("ratio"), 0.1);

    let qs = [0.5, 0.9, 0.99];
    let (count, sum, quantiles, schema) = timer_truth(&reg, "latency_seconds", &qs);
    assert_eq!(count, u64::from(n));
    assert_eq!(
        prometheus.value("histogram_count(latency_seconds)"),
        n as f64
    );
    assert_eq!(prometheus.value("histogram_sum(latency_seconds)"), sum);
    let snapshot = latency.histogram().snapshot();
    assert_eq!(sum, snapshot.sum() as f64 / 1e9);
    // The classic series agree.
    assert_eq!(prometheus.value("latency_seconds_count"), n as f64);
    assert_eq!(
        prometheus.value(r#"latency_seconds_bucket{le="+Inf"}"#),
        n as f64
    );
    let base = 2f64.powf(2f64.powi(-i32::from(schema)));
    for (q, (hdr, native)) in qs.iter().zip(&quantiles) {
        let got = prometheus.value(&format!("histogram_quantile({q}, latency_seconds)"));
        eprintln!("q{q}: HDR {hdr}, NativeBuckets::quantile {native}, base {base}");
        assert!(
            hdr / base < got && got <= hdr * base,
            "q{q}: Prometheus {got}, HDR {hdr}, base {base}"
        );
        assert!(
            (got - native).abs() <= 1e-9 * native.abs(),
            "q{q}: Prometheus {got}, NativeBuckets::quantile {native}"
        );
    }
    assert_eq!(prometheus.value("histogram_count(size_bytes)"), 5.0);
    assert_eq!(prometheus.value("histogram_sum(size_bytes)"), 110.0);
    Ok(())
}

#[test]
fn victoria_metrics_reads_back_counters_and_gauges() -> TestResult {
    let victoria = Victoria::start();
    let reg = Registry::new();
    let jobs = reg.counter_vec("jobs_total", "Jobs.", &["queue"])?;
    jobs.with(&["mail"])?.add(123_456_789);
    jobs.with(&["sms"])?.add(7);
    reg.gauge("temperature_celsius", "Temperature.")?.set(-3.25);
    let latency = reg.timer("latency_seconds", "Latency.")?;
    for us in [10, 200, 3_000] {
        latency.record(Duration::from_micros(us));
    }

    // Native histograms on: VictoriaMetrics 1.79 does not know them, and
    // must not refuse the request that carries them.
    let handle = RemoteWritePusher::builder(reg.clone(), victoria.write_url())
        .options(options(|_| {}))
        .label("instance", "test")
        .native_histograms(true)
        .spawn()?;
    handle.push_now()?;
    assert_eq!(handle.stats().dropped_bytes, 0);

    assert_eq!(
        victoria.value(r#"jobs_total{queue="mail",instance="test"}"#),
        123_456_789.0
    );
    assert_eq!(victoria.value(r#"jobs_total{queue="sms"}"#), 7.0);
    assert_eq!(victoria.value("temperature_celsius"), -3.25);
    assert_eq!(victoria.value("latency_seconds_count"), 3.0);
    assert_eq!(victoria.value("latency_seconds_sum"), 0.00321);
    assert_eq!(latency.histogram().snapshot().sum(), 3_210_000);

    // And with native histograms left out, the classic series still come.
    let reg2 = Registry::new();
    reg2.counter("other_total", "Other.")?.add(42);
    reg2.histogram("other_bytes", "Other.")?.record(9);
    let handle = RemoteWritePusher::builder(reg2, victoria.write_url())
        .options(options(|_| {}))
        .native_histograms(false)
        .spawn()?;
    handle.push_now()?;
    assert_eq!(victoria.value("other_total"), 42.0);
    assert_eq!(victoria.value("other_bytes_count"), 1.0);
    Ok(())
}

/// Pushes once through `handle` and asserts that the push fails with an
/// error matching `pattern`.
macro_rules! assert_push_fails {
    ($handle:expr, $pattern:pat) => {{
        let result = $handle.push_now();
        assert!(matches!(result, Err($pattern)), "{result:?}");
    }};
}

/// A registry with the unlabelled counter `jobs_total`, and a pusher of it
/// (with [`options`]) to the receiver at `addr`.
fn jobs_pusher(
    addr: impl std::fmt::Display,
) -> Result<(Registry, Counter, PusherHandle), PushError> {
    let reg = Registry::new();
    let jobs = reg.counter("jobs_total", "Jobs.")?;
    let handle = pusher(&reg, addr, |_| {}).spawn()?;
    Ok((reg, jobs, handle))
}

/// The `(timestamp, value)` of the unlabelled counter `name` in each
/// request, in the order received.
fn counter_samples(requests: &[Received], name: &str) -> Vec<(i64, f64)> {
    requests
        .iter()
        .map(|r| {
            let request = decode(&r.body);
            assert_well_formed(&request);
            let s = find(&request, &[("__name__", name)])
                .unwrap_or_else(|| panic!("{name} in every request"));
            (s.samples[0].timestamp, s.samples[0].value)
        })
        .collect()
}

#[test]
fn requests_carry_the_remote_write_headers() -> TestResult {
    let server = FakeHttp::start(204);
    let reg = Registry::new();
    reg.counter("jobs_total", "Jobs.")?.add(3);
    let handle = pusher(&reg, server.addr(), |_| {})
        .bearer_token("s3cr3t")
        .spawn()?;
    handle.push_now()?;
    let accepted = server.accepted();
    assert_eq!(accepted.len(), 1);
    let head = &accepted[0].head;
    assert!(
        head.starts_with("POST /api/v1/write HTTP/1.1\r\n"),
        "{head}"
    );
    for header in [
        "Content-Encoding: snappy",
        "Content-Type: application/x-protobuf",
        "X-Prometheus-Remote-Write-Version: 0.1.0",
        concat!("User-Agent: metricz/", env!("CARGO_PKG_VERSION")),
        "Authorization: Bearer s3cr3t",
    ] {
        assert!(head.contains(&format!("{header}\r\n")), "{header}: {head}");
    }
    assert_eq!(counter_samples(&accepted, "jobs_total")[0].1, 3.0);

    // Basic credentials replace the token.
    let handle = pusher(&reg, server.addr(), |_| {})
        .bearer_token("x")
        .basic_auth("user", "pass")
        .spawn()?;
    handle.push_now()?;
    assert!(server.accepted()[1]
        .head
        .contains("Authorization: Basic dXNlcjpwYXNz\r\n"));
    Ok(())
}

#[test]
fn bad_settings_are_typed_errors() {
    let reg = Registry::new();
    for url in ["127.0.0.1:9090", "https://h:1/x", "http://h:99999/x", ""] {
        let err = RemoteWritePusher::builder(reg.clone(), url)
            .spawn()
            .unwrap_err();
        assert!(
            matches!(&err, PushError::InvalidAddress(u) if u == url),
            "{url}: {err:?}"
        );
    }
    let err = RemoteWritePusher::builder(reg.clone(), "http://127.0.0.1:1/w")
        .label("a-b", "x")
        .spawn()
        .unwrap_err();
    assert!(
        matches!(&err, PushError::InvalidLabel(RegistryError::InvalidLabelName(n)) if n == "a-b"),
        "{err:?}"
    );
    let err = RemoteWritePusher::builder(reg, "http://127.0.0.1:1/w")
        .label("__name__", "x")
        .spawn()
        .unwrap_err();
    assert!(
        matches!(
            &err,
            PushError::InvalidLabel(RegistryError::ReservedLabelName(_))
        ),
        "{err:?}"
    );
}

#[test]
fn an_outage_delivers_every_batch_once_in_order() -> TestResult {
    let port = dead_tcp_port();
    let (_reg, jobs, handle) = jobs_pusher(format!("127.0.0.1:{port}"))?;

    // Down: each attempt samples a batch and keeps it.
    let mut total = 0;
    let mut expected = Vec::new();
    for i in 1..=5u64 {
        jobs.add(i);
        total += i;
        expected.push(total as f64);
        assert_push_fails!(handle, PushError::Io { op: "connect", .. });
    }
    let stats = handle.stats();
    assert_eq!((stats.failures, stats.dropped_bytes), (5, 0), "{stats:?}");
    assert!(stats.pending_bytes > 0);

    // Back up on the same port: one attempt sends the five kept batches
    // and the new one, oldest first, one request each.
    let server = FakeHttp::on(TcpListener::bind(("127.0.0.1", port))?, 200);
    jobs.add(100);
    total += 100;
    expected.push(total as f64);
    handle.push_now()?;
    let accepted = server.accepted();
    assert_eq!(accepted.len(), 6);
    let samples = counter_samples(&accepted, "jobs_total");
    let values: Vec<f64> = samples.iter().map(|s| s.1).collect();
    assert_eq!(values, expected);
    assert!(
        samples.windows(2).all(|w| w[0].0 < w[1].0),
        "timestamps strictly increasing: {samples:?}"
    );
    assert_eq!(samples.last().unwrap().1, jobs.get() as f64);
    let stats = handle.stats();
    assert_eq!((stats.pushes, stats.pending_bytes), (1, 0), "{stats:?}");

    // Delivered once: the next attempt sends only a new batch.
    handle.push_now()?;
    let accepted = server.accepted();
    assert_eq!(accepted.len(), 7);
    let newest = counter_samples(&accepted[6..], "jobs_total")[0];
    assert!(newest.0 > samples.last().unwrap().0);
    assert_eq!(newest.1, total as f64);
    Ok(())
}

#[test]
fn server_errors_and_429_are_retried_and_kept() -> TestResult {
    let server = FakeHttp::start(503);
    let (_reg, jobs, handle) = jobs_pusher(server.addr())?;

    jobs.add(1);
    assert_push_fails!(handle, PushError::Http { status: 503, .. });
    server.set_status(429);
    jobs.add(1);
    assert_push_fails!(handle, PushError::Http { status: 429, .. });
    let stats = handle.stats();
    assert_eq!((stats.failures, stats.dropped_bytes), (2, 0), "{stats:?}");
    assert!(stats.pending_bytes > 0);
    // Each failed attempt stopped at the oldest batch: it was sent twice,
    // the second batch never.
    let refused = counter_samples(&server.refused(), "jobs_total");
    assert_eq!(refused.len(), 2);
    assert_eq!(refused[0], refused[1]);

    server.set_status(200);
    jobs.add(1);
    handle.push_now()?;
    let accepted = counter_samples(&server.accepted(), "jobs_total");
    let values: Vec<f64> = accepted.iter().map(|s| s.1).collect();
    assert_eq!(values, [1.0, 2.0, 3.0]);
    assert_eq!(accepted[0], refused[0], "the retried batch is the kept one");
    assert_eq!(handle.stats().pending_bytes, 0);
    Ok(())
}

#[test]
fn client_errors_drop_the_batch_and_count_it() -> TestResult {
    let server = FakeHttp::start(400);
    let (reg, jobs, handle) = jobs_pusher(server.addr())?;

    jobs.add(1);
    assert_push_fails!(handle, PushError::Rejected { status: 400, .. });
    let refused = server.refused();
    assert_eq!(refused.len(), 1);
    let stats = handle.stats();
    assert_eq!(stats.pending_bytes, 0, "{stats:?}");
    assert_eq!(stats.dropped_bytes, refused[0].body.len() as u64);
    assert_eq!(stats.failures, 1);
    assert_dropped_reported(&reg, "remote_write", stats.dropped_bytes);

    // The receiver accepts again: only the new batch goes, and it reports
    // the drop.
    server.set_status(204);
    jobs.add(1);
    handle.push_now()?;
    let accepted = server.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(counter_samples(&accepted, "jobs_total")[0].1, 2.0);
    let request = decode(&accepted[0].body);
    let dropped = find(
        &request,
        &[
            ("__name__", "metricz_push_dropped_bytes_total"),
            ("sink", "remote_write"),
        ],
    )
    .expect("the self-metric");
    assert_eq!(dropped.samples[0].value, stats.dropped_bytes as f64);
    Ok(())
}

#[test]
fn a_slow_receiver_times_out_and_never_blocks_recording() -> TestResult {
    let server = FakeHttp::start(0);
    let reg = Registry::new();
    let hits = reg.counter("hits_total", "Hits.")?;

    // Past the I/O timeout: a failure, the batch kept.
    let handle = pusher(&reg, server.addr(), |o| {
        o.io_timeout = Duration::from_millis(200)
    })
    .spawn()?;
    hits.inc();
    assert_push_fails!(handle, PushError::TimedOut { op: "receive" });
    let stats = handle.stats();
    assert_eq!(stats.failures, 1);
    assert!(stats.pending_bytes > 0);
    server.wait_held("the request was held");
    drop(handle);

    // A push held for as long as the test wants: recording threads run to
    // completion while it waits.
    let handle = pusher(&reg, server.addr(), |o| {
        o.io_timeout = Duration::from_secs(60);
        o.wait_timeout = Duration::from_secs(120);
    })
    .spawn()?;
    thread::scope(|s| -> TestResult {
        let push = s.spawn(|| handle.push_now());
        server.wait_held("the pusher's request reached the receiver");
        thread::scope(|r| {
            for _ in 0..2 {
                r.spawn(|| {
                    for _ in 0..50_000 {
                        hits.inc();
                    }
                });
            }
        });
        assert_eq!(hits.get(), 100_001);
        assert!(expose(&reg).contains("hits_total 100001\n"));
        assert!(
            !push.is_finished(),
            "recording finished while the push was still held"
        );
        server.release();
        let result = push.join().unwrap();
        assert!(result.is_err(), "{result:?}");
        Ok(())
    })?;
    assert_eq!(handle.stats().failures, 1);
    Ok(())
}

#[test]
fn pending_requests_stay_within_the_bound() -> TestResult {
    let port = dead_tcp_port();
    let reg = Registry::new();
    let jobs = reg.counter("jobs_total", "Jobs.")?;
    let family = reg.counter_vec("some_longish_counter_name_total", "C.", &["label"])?;
    for i in 0..8 {
        family.with(&[&format!("value-{i}")])?.add(i);
    }
    // Measure one batch (later ones also carry the self-metrics), to bound
    // the queue at a few.
    let mut request = WriteRequest::default();
    encode(&reg, 1_700_000_000_000, &mut request);
    let one = snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())?
        .len();
    let bound = one * 6;
    let handle = pusher(&reg, format!("127.0.0.1:{port}"), |_| {})
        .max_pending_bytes(bound)
        .spawn()?;
    let before = fail_within_bound(&reg, &handle, "remote_write", bound, 10, || jobs.inc());

    // Back up: the kept batches are the newest, delivered oldest first,
    // then the new one; none twice.
    let server = FakeHttp::on(TcpListener::bind(("127.0.0.1", port))?, 200);
    jobs.inc();
    handle.flush()?;
    let accepted = server.accepted();
    let kept: usize = accepted[..accepted.len() - 1]
        .iter()
        .map(|r| r.body.len())
        .sum();
    assert_eq!(kept as u64, before.pending_bytes);
    let samples = counter_samples(&accepted, "jobs_total");
    let values: Vec<f64> = samples.iter().map(|s| s.1).collect();
    let first = 11 - values.len() + 1;
    let expected: Vec<f64> = (first..=11).map(|v| v as f64).collect();
    assert_eq!(values, expected, "the newest batches, in order");
    assert!(samples.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(*values.last().unwrap(), jobs.get() as f64);
    let after = handle.stats();
    assert_eq!((after.pending_bytes, after.pushes), (0, 1));
    assert_eq!(after.dropped_bytes, before.dropped_bytes);
    Ok(())
}
