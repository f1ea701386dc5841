//! Protobuf message types, derived in code with `prost` (no `protoc`, no
//! build script): the exposition format's `io.prometheus.client` messages
//! (`metrics.proto` of prometheus/client_model) and remote write 1.0's
//! `prometheus` messages (`remote.proto` and `types.proto` of
//! prometheus/prometheus, `prompb`), with the fields this crate writes.
//!
//! Deriving the types keeps the build free of a pinned compiler and its
//! version drift; the field numbers below are the `.proto` files', checked
//! by this crate's tests, which decode every encoder's output with these
//! types. Fields the crate never writes (exemplars, created timestamps,
//! float counts) are left out: a decoder skips them.
//!
//! `metrics.proto` is proto2: its scalar fields have explicit presence.
//! These types declare them proto3-style (absent and zero read the same),
//! which decodes the same bytes; the [exposition
//! encoder](super::protobuf) writes every field it means, zeros included,
//! so the bytes carry proto2's presence for Prometheus.
//!
//! ```
//! use metricz::export::proto::client::{MetricFamily, MetricType};
//! use prost::Message;
//!
//! let reg = metricz::Registry::new();
//! reg.counter("jobs_total", "Jobs.")?.add(3);
//! let mut buf = Vec::new();
//! metricz::export::protobuf::encode(&reg, &mut buf);
//! let family = MetricFamily::decode_length_delimited(&buf[..])?;
//! assert_eq!(family.name, "jobs_total");
//! assert_eq!(family.r#type, MetricType::Counter as i32);
//! assert_eq!(family.metric[0].counter.as_ref().map(|c| c.value), Some(3.0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

/// `io.prometheus.client`: the protobuf exposition format.
pub mod client {
    /// A label's name and value.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct LabelPair {
        /// The label's name.
        #[prost(string, tag = "1")]
        pub name: String,
        /// The label's value.
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// A gauge's value.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Gauge {
        /// The value.
        #[prost(double, tag = "1")]
        pub value: f64,
    }

    /// A counter's value.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Counter {
        /// The value.
        #[prost(double, tag = "1")]
        pub value: f64,
    }

    /// One quantile of a summary.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Quantile {
        /// The quantile, in [0, 1].
        #[prost(double, tag = "1")]
        pub quantile: f64,
        /// Its value.
        #[prost(double, tag = "2")]
        pub value: f64,
    }

    /// A summary: count, sum and quantiles.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Summary {
        /// Observations.
        #[prost(uint64, tag = "1")]
        pub sample_count: u64,
        /// Their sum.
        #[prost(double, tag = "2")]
        pub sample_sum: f64,
        /// The quantiles.
        #[prost(message, repeated, tag = "3")]
        pub quantile: Vec<Quantile>,
    }

    /// A classic (cumulative, `le`) bucket.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Bucket {
        /// Observations at or below the bound.
        #[prost(uint64, tag = "1")]
        pub cumulative_count: u64,
        /// The bucket's upper bound.
        #[prost(double, tag = "2")]
        pub upper_bound: f64,
    }

    /// A run of consecutive native buckets: `offset` buckets after the end
    /// of the previous span (for the first, the bucket index), `length`
    /// buckets long.
    #[derive(Clone, Copy, PartialEq, Eq, ::prost::Message)]
    pub struct BucketSpan {
        /// Gap to the previous span, or the first bucket's index.
        #[prost(sint32, tag = "1")]
        pub offset: i32,
        /// Buckets in the span.
        #[prost(uint32, tag = "2")]
        pub length: u32,
    }

    /// A histogram: classic buckets, native buckets, or both.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Histogram {
        /// Observations.
        #[prost(uint64, tag = "1")]
        pub sample_count: u64,
        /// Their sum.
        #[prost(double, tag = "2")]
        pub sample_sum: f64,
        /// Classic buckets, ascending by bound.
        #[prost(message, repeated, tag = "3")]
        pub bucket: Vec<Bucket>,
        /// Native buckets' schema: bucket `i` spans
        /// `(base^(i-1), base^i]` with `base = 2^(2^-schema)`.
        #[prost(sint32, tag = "5")]
        pub schema: i32,
        /// Observations at most this far from zero go to the zero bucket.
        #[prost(double, tag = "6")]
        pub zero_threshold: f64,
        /// Observations in the zero bucket.
        #[prost(uint64, tag = "7")]
        pub zero_count: u64,
        /// Spans of the negative native buckets.
        #[prost(message, repeated, tag = "9")]
        pub negative_span: Vec<BucketSpan>,
        /// Negative buckets' counts as deltas (each against the one before).
        #[prost(sint64, repeated, tag = "10")]
        pub negative_delta: Vec<i64>,
        /// Spans of the positive native buckets.
        #[prost(message, repeated, tag = "12")]
        pub positive_span: Vec<BucketSpan>,
        /// Positive buckets' counts as deltas (each against the one before;
        /// the first against zero).
        #[prost(sint64, repeated, tag = "13")]
        pub positive_delta: Vec<i64>,
    }

    /// One series: its labels and its value.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Metric {
        /// Labels, in the order written.
        #[prost(message, repeated, tag = "1")]
        pub label: Vec<LabelPair>,
        /// A gauge's value.
        #[prost(message, optional, tag = "2")]
        pub gauge: Option<Gauge>,
        /// A counter's value.
        #[prost(message, optional, tag = "3")]
        pub counter: Option<Counter>,
        /// A summary's value.
        #[prost(message, optional, tag = "4")]
        pub summary: Option<Summary>,
        /// A histogram's value.
        #[prost(message, optional, tag = "7")]
        pub histogram: Option<Histogram>,
    }

    /// A family's type.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
    #[repr(i32)]
    pub enum MetricType {
        /// A counter.
        Counter = 0,
        /// A gauge.
        Gauge = 1,
        /// A summary.
        Summary = 2,
        /// Untyped.
        Untyped = 3,
        /// A histogram (classic or native).
        Histogram = 4,
        /// A gauge histogram.
        GaugeHistogram = 5,
    }

    /// A metric family: name, help, type and its series.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct MetricFamily {
        /// The family's name.
        #[prost(string, tag = "1")]
        pub name: String,
        /// The help text.
        #[prost(string, tag = "2")]
        pub help: String,
        /// The type ([`MetricType`]).
        #[prost(enumeration = "MetricType", tag = "3")]
        pub r#type: i32,
        /// The series.
        #[prost(message, repeated, tag = "4")]
        pub metric: Vec<Metric>,
        /// The unit.
        #[prost(string, tag = "5")]
        pub unit: String,
    }
}

/// `prometheus` (`prompb`): remote write 1.0's request.
pub mod remote {
    pub use super::client::BucketSpan;

    /// A remote write request: series with their samples.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct WriteRequest {
        /// The series.
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
        /// Metadata of metric families (type, help, unit).
        #[prost(message, repeated, tag = "3")]
        pub metadata: Vec<MetricMetadata>,
    }

    /// One series: labels (`__name__` among them, sorted by name) and its
    /// samples, oldest first.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct TimeSeries {
        /// Labels sorted by name.
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        /// Float samples.
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
        /// Native histogram samples.
        #[prost(message, repeated, tag = "4")]
        pub histograms: Vec<Histogram>,
    }

    /// A label.
    #[derive(Clone, PartialEq, Eq, ::prost::Message)]
    pub struct Label {
        /// The label's name.
        #[prost(string, tag = "1")]
        pub name: String,
        /// Its value.
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// A float sample.
    #[derive(Clone, Copy, PartialEq, ::prost::Message)]
    pub struct Sample {
        /// The value.
        #[prost(double, tag = "1")]
        pub value: f64,
        /// Milliseconds since the Unix epoch.
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }

    /// A native histogram sample (integer counts).
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Histogram {
        /// Observations (the `count_int` member of the `count` oneof).
        #[prost(uint64, tag = "1")]
        pub count_int: u64,
        /// Their sum.
        #[prost(double, tag = "3")]
        pub sum: f64,
        /// The schema (see the exposition's
        /// [`Histogram`](super::client::Histogram)).
        #[prost(sint32, tag = "4")]
        pub schema: i32,
        /// The zero bucket's threshold.
        #[prost(double, tag = "5")]
        pub zero_threshold: f64,
        /// Observations in the zero bucket (`zero_count_int`).
        #[prost(uint64, tag = "6")]
        pub zero_count_int: u64,
        /// Spans of the negative buckets.
        #[prost(message, repeated, tag = "8")]
        pub negative_spans: Vec<BucketSpan>,
        /// Negative buckets' counts as deltas.
        #[prost(sint64, repeated, tag = "9")]
        pub negative_deltas: Vec<i64>,
        /// Spans of the positive buckets.
        #[prost(message, repeated, tag = "11")]
        pub positive_spans: Vec<BucketSpan>,
        /// Positive buckets' counts as deltas.
        #[prost(sint64, repeated, tag = "12")]
        pub positive_deltas: Vec<i64>,
        /// Whether this sample follows a counter reset (0 unknown, 1 yes,
        /// 2 no, 3 a gauge histogram).
        #[prost(int32, tag = "14")]
        pub reset_hint: i32,
        /// Milliseconds since the Unix epoch.
        #[prost(int64, tag = "15")]
        pub timestamp: i64,
    }

    /// A metric family's metadata.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct MetricMetadata {
        /// 0 unknown, 1 counter, 2 gauge, 3 histogram, 4 gauge histogram,
        /// 5 summary, 6 info, 7 stateset.
        #[prost(int32, tag = "1")]
        pub r#type: i32,
        /// The family's name.
        #[prost(string, tag = "2")]
        pub metric_family_name: String,
        /// The help text.
        #[prost(string, tag = "4")]
        pub help: String,
        /// The unit.
        #[prost(string, tag = "5")]
        pub unit: String,
    }
}
