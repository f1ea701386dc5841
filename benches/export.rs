//! Export benchmarks (criterion): encoding 10 000 labelled counter series as
//! Prometheus text, metricz's `Registry::encode_prometheus` (and
//! `encode_openmetrics`) into a reused buffer against `prometheus::TextEncoder` (after `Registry::gather`, as a
//! scrape does) and `prometheus_client::encoding::text::encode`.
//!
//! ```text
//! cargo bench --bench export                  # both groups
//! cargo bench --bench export -- encode-shards # scrape cost against shards
//! ```
//!
//! `encode-shards` encodes the same 10 000 series from registries built
//! with `Registry::builder().shards(n)`, n = 2, 16, 64, 256, with every
//! row written (`rows-all`: each series' word written on every shard, as
//! on a machine whose `n` CPUs all recorded; the rows of CPUs this machine
//! lacks are written with the `add_to_shard` test hook) and at 256 shards
//! with only rows 0 and 1 written (`256-rows2`: a 256-CPU registry on
//! which two CPUs recorded), beside `prometheus_client` in the same group.
//!
//! Steady state: every registry holds the same 10 000 series of a
//! two-label counter family (`method` = `m0`…`m99`, `status` = `s0`…`s99`,
//! series `i` at value `i + 1`), built before timing; each implementation
//! encodes into a buffer it clears and reuses, so a warm buffer's capacity
//! is not re-grown. Before timing, each output is checked to hold all
//! 10 000 samples with their values.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

/// Series in the encoded family.
const SERIES: usize = 10_000;

fn labels(i: usize) -> [String; 2] {
    [format!("m{}", i / 100), format!("s{}", i % 100)]
}

/// Checks that `text` holds every series' sample line with its value.
fn check(name: &str, text: &str) {
    let samples = text
        .lines()
        .filter(|l| l.starts_with("export_requests_total{"))
        .count();
    assert_eq!(samples, SERIES, "{name}: sample lines");
    for i in [0, 4_242, SERIES - 1] {
        let [m, s] = labels(i);
        let line = format!(
            "export_requests_total{{method=\"{m}\",status=\"{s}\"}} {}",
            i + 1
        );
        assert!(text.contains(&line), "{name}: missing {line:?}");
    }
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode-10k");
    group.throughput(Throughput::Elements(SERIES as u64));

    // metricz
    let reg = metricz::Registry::new();
    let family = reg
        .counter_vec("export_requests_total", "Requests.", &["method", "status"])
        .expect("valid family");
    for i in 0..SERIES {
        let [m, s] = labels(i);
        family
            .with(&[&m, &s])
            .expect("two labels")
            .add(i as u64 + 1);
    }
    let mut text = String::new();
    reg.encode_prometheus(&mut text).expect("encode");
    check("metricz", &text);
    group.bench_function("metricz", |b| {
        b.iter(|| {
            text.clear();
            reg.encode_prometheus(&mut text).expect("encode");
            black_box(text.len())
        })
    });
    let mut om = String::new();
    reg.encode_openmetrics(&mut om).expect("encode");
    check("metricz-openmetrics", &om);
    group.bench_function("metricz-openmetrics", |b| {
        b.iter(|| {
            om.clear();
            reg.encode_openmetrics(&mut om).expect("encode");
            black_box(om.len())
        })
    });

    // prometheus: gather, then TextEncoder.
    let prom = prometheus::Registry::new();
    let vec = prometheus::IntCounterVec::new(
        prometheus::Opts::new("export_requests_total", "Requests."),
        &["method", "status"],
    )
    .expect("valid family");
    prom.register(Box::new(vec.clone())).expect("register");
    for i in 0..SERIES {
        let [m, s] = labels(i);
        vec.with_label_values(&[&m, &s]).inc_by(i as u64 + 1);
    }
    let mut bytes: Vec<u8> = Vec::new();
    {
        use prometheus::Encoder;
        let encoder = prometheus::TextEncoder::new();
        encoder.encode(&prom.gather(), &mut bytes).expect("encode");
        check("prometheus", std::str::from_utf8(&bytes).expect("utf-8"));
        group.bench_function("prometheus", |b| {
            b.iter(|| {
                bytes.clear();
                encoder.encode(&prom.gather(), &mut bytes).expect("encode");
                black_box(bytes.len())
            })
        });
    }

    bench_prometheus_client(&mut group);
    group.finish();
}

/// `prometheus_client` holding the bench's series, encoded into a reused
/// `String`, as the bench `prometheus-client` of `group`.
fn bench_prometheus_client(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
) {
    let mut client = prometheus_client::registry::Registry::default();
    let family = prometheus_client::metrics::family::Family::<
        Vec<(String, String)>,
        prometheus_client::metrics::counter::Counter,
    >::default();
    client.register("export_requests", "Requests.", family.clone());
    for i in 0..SERIES {
        let [m, s] = labels(i);
        family
            .get_or_create(&vec![("method".to_string(), m), ("status".to_string(), s)])
            .inc_by(i as u64 + 1);
    }
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &client).expect("encode");
    check("prometheus-client", &out);
    group.bench_function("prometheus-client", |b| {
        b.iter(|| {
            out.clear();
            prometheus_client::encoding::text::encode(&mut out, &client).expect("encode");
            black_box(out.len())
        })
    });
}

/// A registry with `shards` shards holding the bench's 10 000 series,
/// with rows `0..rows` written for every series.
fn sharded(shards: usize, rows: usize) -> metricz::Registry {
    let reg = metricz::Registry::builder().shards(shards).build();
    let family = reg
        .counter_vec("export_requests_total", "Requests.", &["method", "status"])
        .expect("valid family");
    for i in 0..SERIES {
        let [m, s] = labels(i);
        let series = family.with(&[&m, &s]).expect("two labels");
        series.add_to_shard(0, i as u64 + 1);
        for row in 1..rows {
            series.add_to_shard(row, 0);
        }
    }
    reg
}

fn encode_shards(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode-shards");
    group.throughput(Throughput::Elements(SERIES as u64));
    for (name, shards, rows) in [
        ("metricz/2-rows-all", 2, 2),
        ("metricz/16-rows-all", 16, 16),
        ("metricz/64-rows-all", 64, 64),
        ("metricz/256-rows-all", 256, 256),
        ("metricz/256-rows2", 256, 2),
    ] {
        let reg = sharded(shards, rows);
        let mut text = String::new();
        reg.encode_prometheus(&mut text).expect("encode");
        check(name, &text);
        eprintln!(
            "{name}: counter arena {} KiB",
            reg.counter_arena_bytes() / 1024
        );
        group.bench_function(name, |b| {
            b.iter(|| {
                text.clear();
                reg.encode_prometheus(&mut text).expect("encode");
                black_box(text.len())
            })
        });
    }
    bench_prometheus_client(&mut group);
    group.finish();
}

criterion_group! {
    name = benches;
    config = criterion::Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(3))
        .sample_size(20);
    targets = encode, encode_shards
}
criterion_main!(benches);
