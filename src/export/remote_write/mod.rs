//! Prometheus remote write 1.0: the registry as a `prometheus.WriteRequest`
//! ([`encode`], [`Encoder`]) and a resilient pusher
//! ([`RemoteWritePusher`]) that sends it to Prometheus
//! (`--web.enable-remote-write-receiver`), Mimir, Thanos Receive,
//! VictoriaMetrics or any other receiver of the
//! [specification](https://prometheus.io/docs/concepts/remote_write_spec/).
//!
//! # Mapping
//!
//! Every series of the collection walk
//! ([`Registry::collect`](crate::Registry::collect)) becomes one or more
//! [`TimeSeries`](crate::export::proto::remote::TimeSeries) with one
//! sample, all stamped with the same time (milliseconds). Labels are the
//! series' own, then the external labels its own do not name, and
//! `__name__`, sorted by name; a label with an empty value is left out
//! (remote write reads it as absent).
//!
//! | family | series |
//! |---|---|
//! | counter | `name` = the cumulative count |
//! | gauge | `name` = the value |
//! | histogram, timer | `name` with a native histogram sample (integer counts, the family's schema and zero threshold, reset hint "unknown"), and, when the family keeps classic buckets ([`NativeSettings::classic`](crate::registry::NativeSettings::classic)) or native histograms are off, `name_bucket{le=…}` (cumulative, `+Inf` last), `name_sum`, `name_count` |
//! | histogram, timer exported as a summary | `name{quantile="0.5"\|"0.9"\|"0.99"}`, `name_sum`, `name_count` |
//!
//! Values are in the family's base unit (timers in seconds). A family's
//! overflow series carries `metricz_overflow="true"`, and the registry's
//! overflow report is the counter family
//! `metricz_cardinality_overflow_total{family=…}`, as in every format.
//! Each family also gets one
//! [`MetricMetadata`](crate::export::proto::remote::MetricMetadata) (type,
//! help, unit). Native buckets are derived from the HDR counts as the
//! protobuf exposition derives them (see [`native`](crate::export::native),
//! which also states the error bound of their quantiles).
//!
//! ```
//! use metricz::export::proto::remote::WriteRequest;
//!
//! let reg = metricz::Registry::new();
//! reg.counter("jobs_total", "Jobs.")?.add(3);
//! let latency = reg.timer("latency_seconds", "Latency.")?;
//! latency.record(std::time::Duration::from_millis(3));
//!
//! let mut request = WriteRequest::default();
//! metricz::export::remote_write::encode(&reg, 1_700_000_000_000, &mut request);
//! let names: Vec<&str> = request.timeseries.iter().map(|s| s.labels[0].value.as_str()).collect();
//! assert_eq!(names[0], "jobs_total");
//! assert_eq!(names[1], "latency_seconds"); // the native histogram
//! let native = &request.timeseries[1].histograms[0];
//! assert_eq!((native.count_int, native.sum), (1, 0.003));
//! assert!(names.contains(&"latency_seconds_bucket"));
//! # Ok::<(), metricz::RegistryError>(())
//! ```
//!
//! # The pusher
//!
//! A [`RemoteWritePusher`] runs on the shared pusher core
//! ([`push`](crate::export::push): its own thread, interval, backoff,
//! circuit breaker, self-metrics with `sink="remote_write"`); recording
//! never waits for it. Each request is the protobuf encoding of one
//! `WriteRequest`, compressed with snappy's block format, POSTed with
//! `Content-Encoding: snappy`, `Content-Type: application/x-protobuf`,
//! `X-Prometheus-Remote-Write-Version: 0.1.0` and `User-Agent:
//! metricz/VERSION` (and `Authorization` when credentials are set).
//!
//! Every attempt, skipped or not, samples the registry into one request
//! stamped with the attempt's time (strictly later than the previous one,
//! so a receiver never sees two values at one timestamp). Undelivered
//! requests are kept, oldest first, up to a byte bound
//! ([`max_pending_bytes`](RemoteWritePusherBuilder::max_pending_bytes),
//! compressed bytes), and sent one request at a time, oldest first, when
//! the receiver answers again, so each series' samples arrive in
//! timestamp order, each once. Past the bound the oldest requests are
//! dropped and their bytes counted
//! ([`PushStats::dropped_bytes`](crate::export::push::PushStats::dropped_bytes),
//! `metricz_push_dropped_bytes_total{sink="remote_write"}`).
//!
//! Counters are sent cumulative, so a dropped request loses no increment
//! at the receiver: the next delivered sample carries the whole count,
//! and only the resolution of the dropped interval is lost (a `rate()`
//! across it is still right). Gauges and histograms lose the dropped
//! points.
//!
//! Answers: 2xx is delivered. 4xx other than 429 means the receiver
//! refused the request itself (the spec forbids retrying it): it is
//! dropped and counted, and the push reports
//! [`PushError::Rejected`](crate::export::push::PushError::Rejected).
//! 429 (too many requests), 5xx, a timeout or a connection failure fails
//! the attempt ([`PushError::Http`](crate::export::push::PushError::Http),
//! [`TimedOut`](crate::export::push::PushError::TimedOut), …): the request
//! is kept for the next attempt and the failure feeds the backoff and the
//! breaker. Choosing to retry 429 follows the spec's "MAY retry"; with the
//! backoff it slows the pusher down rather than losing data.
//!
//! The pusher sends native histograms only when asked
//! ([`native_histograms(true)`](RemoteWritePusherBuilder::native_histograms)),
//! as Prometheus's own remote write: a Prometheus receiver without
//! `--enable-feature=native-histograms` answers `500` to a request that
//! carries one (counters and gauges included), which would be retried
//! forever. VictoriaMetrics 1.79 skips the field and stores the classic
//! series sent beside it (this crate's tests check both). The encoders
//! ([`encode`], [`Encoder`]) write them unless told not to.
//!
//! # Limits
//!
//! Plain HTTP/1.1 only (no TLS), one connection per request. Remote write
//! 2.0 and exemplars are not written. A receiver that has already stored
//! a later sample of a series (another writer of the same series) refuses
//! an older one with 400, which drops that request.

mod encode;
mod sink;

pub use encode::{encode, Encoder};
pub use sink::{RemoteWritePusher, RemoteWritePusherBuilder};
