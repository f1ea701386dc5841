//! Export benchmarks (criterion): encoding 10 000 labelled counter series as
//! Prometheus text, metricz's `Registry::encode_prometheus` (and
//! `encode_openmetrics`) into a reused buffer against `prometheus::TextEncoder` (after `Registry::gather`, as a
//! scrape does) and `prometheus_client::encoding::text::encode`.
//!
//! ```text
//! cargo bench --bench export
//! ```
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

    // prometheus_client
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
    group.finish();
}

criterion_group! {
    name = benches;
    config = criterion::Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(3))
        .sample_size(20);
    targets = encode
}
criterion_main!(benches);
