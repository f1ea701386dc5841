//! Protobuf exposition benchmarks (criterion): metricz's
//! `Registry::encode_protobuf` against prometheus-client 0.25's Prometheus
//! protobuf encoder (feature `prometheus_protobuf`: the
//! `io.prometheus.client.MetricFamily` exposition, the format metricz
//! writes; not its OpenMetrics protobuf) followed by prost's
//! `encode_length_delimited` of each message, as a scrape does.
//!
//! ```text
//! cargo bench -p metricz-peer-benches --bench protobuf
//! ```
//!
//! Steady state, as `benches/export.rs`: every registry is built before
//! timing (`metricz_peer_benches`), and each implementation encodes into a
//! buffer it clears and reuses. Before timing, each output is decoded (with
//! metricz's `export::proto::client` types and prometheus-client's own
//! generated types) and checked: series counts, labels and values.
//!
//! - `protobuf_counters`: one counter family `export_requests_total`,
//!   labels `method` = `m0`…`m99` × `status` = `s0`…`s99` (10 000 series,
//!   series `i` at `i + 1`). Same content from both (label pairs and a
//!   double value per series).
//! - `protobuf_histograms`: one family `request_duration_seconds`, label
//!   `route` = `r0`…`r99` (100 series), each with the same 1 000 records,
//!   log-uniform in 1 µs…100 ms (fixed seed). Both write classic buckets at
//!   1 µs × 2^k, k = 0…16 and native buckets of schema 3 (here the same
//!   134 buckets). **The outputs differ in content**: metricz (a timer
//!   family) derives native and classic buckets, count and sum from its
//!   HDR counts at encode time (bucket edges to HDR's 3 significant
//!   figures, so a classic count can differ by a record near a bound), and
//!   writes no `+Inf` classic bucket (its count is `sample_count`);
//!   prometheus-client (`Histogram::new_classic_and_native`, its native
//!   histogram support, not the classic-only `Histogram::new`) keeps its
//!   own classic and native buckets, updated at every observation, and
//!   adds a `+Inf` bucket and a created timestamp. So metricz's encode
//!   reads every HDR count of every series, and the peer's copies ready
//!   buckets; the outputs are 42.6 kB and 44.9 kB.
//!
//! Throughput is in series (elements).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use metricz_peer_benches as peers;
use std::hint::black_box;

fn counters(c: &mut Criterion) {
    let mut group = c.benchmark_group("protobuf_counters");
    group.throughput(Throughput::Elements(peers::COUNTER_SERIES as u64));

    let reg = peers::metricz_counters();
    let mut buf = Vec::new();
    peers::encode_metricz(&reg, &mut buf);
    peers::check_metricz_counters(&buf);
    group.bench_function("metricz", |b| {
        b.iter(|| {
            peers::encode_metricz(&reg, &mut buf);
            black_box(buf.len())
        })
    });

    let client = peers::peer_counters();
    let mut out = Vec::new();
    peers::encode_peer(&client, &mut out);
    peers::check_peer_counters(&out);
    group.bench_function("prometheus-client", |b| {
        b.iter(|| {
            peers::encode_peer(&client, &mut out);
            black_box(out.len())
        })
    });
    group.finish();
}

fn histograms(c: &mut Criterion) {
    let mut group = c.benchmark_group("protobuf_histograms");
    group.throughput(Throughput::Elements(peers::HISTOGRAM_SERIES as u64));

    let reg = peers::metricz_histograms();
    let mut buf = Vec::new();
    peers::encode_metricz(&reg, &mut buf);
    peers::check_metricz_histograms(&buf);
    group.bench_function("metricz", |b| {
        b.iter(|| {
            peers::encode_metricz(&reg, &mut buf);
            black_box(buf.len())
        })
    });

    let client = peers::peer_histograms();
    let mut out = Vec::new();
    peers::encode_peer(&client, &mut out);
    peers::check_peer_histograms(&out);
    group.bench_function("prometheus-client", |b| {
        b.iter(|| {
            peers::encode_peer(&client, &mut out);
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
    targets = counters, histograms
}
criterion_main!(benches);
