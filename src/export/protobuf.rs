//! The Prometheus protobuf exposition: length-delimited
//! `io.prometheus.client.MetricFamily` messages
//! (`application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited`),
//! the format Prometheus asks for first when native histograms are on.
//!
//! One `MetricFamily` per family of the collection walk, in the walk's
//! order; the messages are those of [`proto::client`](super::proto::client),
//! written straight from the walk (the bytes `prost` would write for them,
//! which the tests check by decoding with those types) so that a warm
//! encode allocates nothing:
//!
//! | kind | `type` | value |
//! |---|---|---|
//! | counter | `COUNTER` | `counter.value` (family named as registered, `…_total`) |
//! | gauge | `GAUGE` | `gauge.value` |
//! | histogram, timer | `HISTOGRAM` | `histogram`: count, sum, **native buckets** (schema, zero threshold and count, positive spans and deltas; see [`native`](super::native)) and, unless the family turned them off ([`Family::set_classic_in_protobuf`](crate::Family::set_classic_in_protobuf)), the classic buckets |
//! | … exported as summary | `SUMMARY` | `summary`: count, sum, quantiles 0.5, 0.9, 0.99 |
//!
//! Values are in the family's base unit, as in the text formats (timers in
//! seconds). Native and classic buckets, count and sum of a series come
//! from one read of its HDR counts, so they agree. A native histogram with
//! no positive bucket carries one empty span, which marks it native even
//! with a zero threshold of 0 (client_model's rule). The help text is
//! written as given (empty stays empty, which the format allows).
//!
//! Once the buffer is warm, an encode of a registry whose set of series
//! has not changed allocates nothing, except for families exported as
//! summaries (a snapshot per series) — as with the text encoders.
//!
//! ```
//! use metricz::export::proto::client::MetricFamily;
//! use prost::Message;
//!
//! let reg = metricz::Registry::new();
//! let latency = reg.timer("request_duration_seconds", "Latency.")?;
//! latency.record(std::time::Duration::from_millis(3));
//! let mut buf = Vec::new();
//! reg.encode_protobuf(&mut buf);
//! let family = MetricFamily::decode_length_delimited(&buf[..])?;
//! let h = family.metric[0].histogram.as_ref().unwrap();
//! assert_eq!((h.sample_count, h.schema), (1, 3));
//! // 3 ms (its HDR bucket tops out at 3.000319 ms) is in native bucket
//! // -67 of schema 3: (2^(-68/8), 2^(-67/8)] s.
//! assert_eq!(h.positive_span[0].offset, -67);
//! assert_eq!(h.positive_delta, [1]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::native::NativeBuckets;
use crate::registry::{FamilyView, LabelSet, MetricKind, Value};
use crate::Registry;
use std::cell::RefCell;

/// The `Content-Type` of the delimited protobuf exposition.
pub const CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// Quantiles of families exported as summaries.
const QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

thread_local! {
    /// The native buckets [`encode`] derives into, kept per thread so
    /// that a warm encode allocates nothing.
    static NATIVE: RefCell<NativeBuckets> = RefCell::new(NativeBuckets::new());
}

/// Appends the protobuf exposition of every family of `registry` to `out`
/// (see the [module docs](self)); walks [`Registry::collect`]. Uses a
/// per-thread buffer for native buckets (see [`encode_with`]).
pub fn encode(registry: &Registry, out: &mut Vec<u8>) {
    NATIVE.with(|native| match native.try_borrow_mut() {
        Ok(mut native) => encode_with(registry, &mut native, out),
        // Re-entered from inside an encode (a closure of the walk cannot
        // call it, but be safe): a fresh buffer.
        Err(_) => encode_with(registry, &mut NativeBuckets::new(), out),
    });
}

/// [`encode`] with the caller's buffer for native buckets.
pub fn encode_with(registry: &Registry, native: &mut NativeBuckets, out: &mut Vec<u8>) {
    let _ = registry.collect(|family| {
        encode_family(out, native, family);
        Ok::<(), std::convert::Infallible>(())
    });
}

impl Registry {
    /// Appends the protobuf exposition (length-delimited
    /// `io.prometheus.client.MetricFamily` messages, with native
    /// histograms) of every family to `buf`; see
    /// [`export::protobuf`](crate::export::protobuf). Never blocks
    /// recording; allocates nothing once `buf` is warm. Runs an
    /// idle-eviction pass first if eviction is on.
    pub fn encode_protobuf(&self, buf: &mut Vec<u8>) {
        encode(self, buf);
    }
}

// Field numbers of `metrics.proto`.
const FAMILY_NAME: u32 = 1;
const FAMILY_HELP: u32 = 2;
const FAMILY_TYPE: u32 = 3;
const FAMILY_METRIC: u32 = 4;
const METRIC_LABEL: u32 = 1;
const METRIC_GAUGE: u32 = 2;
const METRIC_COUNTER: u32 = 3;
const METRIC_SUMMARY: u32 = 4;
const METRIC_HISTOGRAM: u32 = 7;
const TYPE_COUNTER: u64 = 0;
const TYPE_GAUGE: u64 = 1;
const TYPE_SUMMARY: u64 = 2;
const TYPE_HISTOGRAM: u64 = 4;

fn encode_family(out: &mut Vec<u8>, native: &mut NativeBuckets, family: &mut FamilyView<'_>) {
    let summary = family.exported_as_summary();
    let kind = match family.kind() {
        MetricKind::Counter => TYPE_COUNTER,
        MetricKind::Gauge => TYPE_GAUGE,
        MetricKind::Histogram | MetricKind::Timer if summary => TYPE_SUMMARY,
        MetricKind::Histogram | MetricKind::Timer => TYPE_HISTOGRAM,
    };
    let settings = family.native().unwrap_or_default();
    let body = begin(out);
    string(out, FAMILY_NAME, family.name());
    if !family.help().is_empty() {
        string(out, FAMILY_HELP, family.help());
    }
    uint(out, FAMILY_TYPE, kind);
    let _ = family.for_each_series(|series| {
        key(out, FAMILY_METRIC, LEN);
        let metric = begin(out);
        labels(out, series.labels());
        match series.into_value() {
            Value::Counter(n) => {
                key(out, METRIC_COUNTER, LEN);
                let counter = begin(out);
                double(out, 1, n as f64);
                end(out, counter);
            }
            Value::Gauge(x) => {
                key(out, METRIC_GAUGE, LEN);
                let gauge = begin(out);
                double(out, 1, x);
                end(out, gauge);
            }
            Value::Distribution(d) if summary => {
                let s = d.snapshot();
                key(out, METRIC_SUMMARY, LEN);
                let msg = begin(out);
                uint(out, 1, s.count());
                double(out, 2, d.scaled(s.sum()));
                for q in QUANTILES {
                    key(out, 3, LEN);
                    let quantile = begin(out);
                    double(out, 1, q);
                    double(out, 2, d.scaled(s.value_at_quantile(q)));
                    end(out, quantile);
                }
                end(out, msg);
            }
            Value::Distribution(mut d) => {
                native.start(settings.schema, settings.zero_threshold);
                let buckets = d.buckets_with(|high, n| native.push(high, n));
                native.finish(buckets.count(), buckets.sum());
                key(out, METRIC_HISTOGRAM, LEN);
                let msg = begin(out);
                uint(out, 1, buckets.count());
                double(out, 2, buckets.sum());
                if settings.classic {
                    for (bound, cumulative) in buckets.cumulative() {
                        key(out, 3, LEN);
                        let bucket = begin(out);
                        uint(out, 1, cumulative);
                        double(out, 2, bound);
                        end(out, bucket);
                    }
                }
                native_fields(out, native);
                end(out, msg);
            }
        }
        end(out, metric);
        Ok::<(), std::convert::Infallible>(())
    });
    end(out, body);
}

/// The native fields of a `Histogram` message.
fn native_fields(out: &mut Vec<u8>, native: &NativeBuckets) {
    sint(out, 5, i64::from(native.schema()));
    double(out, 6, native.zero_threshold());
    uint(out, 7, native.zero_count());
    let spans = native.spans();
    if spans.is_empty() {
        // An empty span: native, even with a zero threshold of 0.
        key(out, 12, LEN);
        let span = begin(out);
        sint(out, 1, 0);
        uint(out, 2, 0);
        end(out, span);
        return;
    }
    for &(offset, length) in spans {
        key(out, 12, LEN);
        let span = begin(out);
        sint(out, 1, i64::from(offset));
        uint(out, 2, u64::from(length));
        end(out, span);
    }
    // Packed, as proto3 writes repeated scalars (proto2 readers accept
    // both forms).
    key(out, 13, LEN);
    let deltas = begin(out);
    for &delta in native.deltas() {
        varint(out, zigzag(delta));
    }
    end(out, deltas);
}

fn labels(out: &mut Vec<u8>, labels: LabelSet<'_>) {
    let _ = labels.try_for_each(|name, value| {
        key(out, METRIC_LABEL, LEN);
        let pair = begin(out);
        string(out, 1, name);
        string(out, 2, value);
        end(out, pair);
        Ok::<(), std::convert::Infallible>(())
    });
}

// The wire format (protobuf encoding), written in place.

const VARINT: u32 = 0;
const I64: u32 = 1;
const LEN: u32 = 2;

fn key(out: &mut Vec<u8>, field: u32, wire_type: u32) {
    varint(out, u64::from(field << 3 | wire_type));
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    // 1 byte per 7 bits, at least one.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn uint(out: &mut Vec<u8>, field: u32, v: u64) {
    key(out, field, VARINT);
    varint(out, v);
}

fn sint(out: &mut Vec<u8>, field: u32, v: i64) {
    key(out, field, VARINT);
    varint(out, zigzag(v));
}

fn double(out: &mut Vec<u8>, field: u32, v: f64) {
    key(out, field, I64);
    out.extend_from_slice(&v.to_le_bytes());
}

fn string(out: &mut Vec<u8>, field: u32, s: &str) {
    key(out, field, LEN);
    varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Starts a length-prefixed message: one byte is kept for its length
/// (most messages are shorter than 128 bytes); returns where the body
/// starts.
fn begin(out: &mut Vec<u8>) -> usize {
    out.push(0);
    out.len()
}

/// Ends the message begun at `start`: writes its length into the kept
/// byte, moving the body along when the length needs more than one.
fn end(out: &mut Vec<u8>, start: usize) {
    let len = out.len() - start;
    let width = varint_len(len as u64);
    if width > 1 {
        out.resize(out.len() + width - 1, 0);
        out.copy_within(start..start + len, start + width - 1);
    }
    let mut v = len as u64;
    for byte in &mut out[start - 1..start - 1 + width] {
        *byte = if v >= 0x80 { v as u8 | 0x80 } else { v as u8 };
        v >>= 7;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_of_every_width() {
        let large = if cfg!(miri) { 16_384 } else { 2_097_152 };
        for len in [0usize, 1, 127, 128, 300, 16_383, 16_384, large] {
            let mut out = vec![7u8];
            let start = begin(&mut out);
            out.extend(std::iter::repeat_n(0xAB, len));
            end(&mut out, start);
            let mut expected = vec![7u8];
            varint(&mut expected, len as u64);
            assert_eq!(varint_len(len as u64), expected.len() - 1);
            expected.extend(std::iter::repeat_n(0xAB, len));
            assert_eq!(out, expected, "{len}");
        }
    }

    #[test]
    fn zigzag_matches_the_spec() {
        assert_eq!(zigzag(0), 0);
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
        assert_eq!(zigzag(-2), 3);
        assert_eq!(zigzag(i64::MIN), u64::MAX);
    }
}
