//! InfluxDB line protocol: the encoder ([`encode()`]), a point writer
//! ([`Point`]), and a pusher to an InfluxDB 1.x `/write` endpoint
//! ([`InfluxPusher`]).
//!
//! # What a registry becomes
//!
//! One point per series, all stamped with the same nanosecond timestamp:
//! the measurement is the family name, the tags are the series' labels
//! (sorted by key; a label whose value is empty is left out, as InfluxDB
//! treats an empty tag as no tag), and the fields are:
//!
//! | kind | fields |
//! |---|---|
//! | counter | `value=<n>i` (an integer; clamped to `i64::MAX`) |
//! | gauge | `value=<x>` (a float; NaN and ±∞, which InfluxDB cannot store, leave the point out) |
//! | histogram | `count=<n>i,sum=<x>`, and when not empty `min`, `max`, `p50`, `p90`, `p99` (floats) |
//! | timer | as a histogram, in seconds |
//!
//! Histogram and timer values are in the family's base unit (see
//! [`Family::set_scale`](crate::Family::set_scale)), as in the other
//! formats. A family's overflow series is tagged `metricz_overflow=true`,
//! and the collection walk's overflow report is points of
//! `metricz_cardinality_overflow_total` with a `family` tag, as in the
//! Prometheus exposition. A label named `time` (a key InfluxDB 1.x
//! refuses) is written as `time_` (and `time_` as `time__`, …, so two
//! labels never share a key).
//!
//! ```
//! use metricz::export::influx;
//! use metricz::Registry;
//!
//! let reg = Registry::new();
//! let requests = reg.counter_vec("requests_total", "Requests.", &["route"])?;
//! requests.with(&["/a b,c=d"])?.add(12);
//! reg.gauge("load", "Load.")?.set(0.5);
//!
//! let mut buf = String::new();
//! influx::encode(&reg, 1_700_000_000_000_000_000, &mut buf);
//! assert_eq!(
//!     buf,
//!     "load value=0.5 1700000000000000000\n\
//!      requests_total,route=/a\\ b\\,c\\=d value=12i 1700000000000000000\n"
//! );
//! # Ok::<(), metricz::RegistryError>(())
//! ```
//!
//! # Escaping
//!
//! The grammar is InfluxDB 1.x's: a special character is escaped by a
//! backslash before it, and other backslashes are literal.
//!
//! - Measurements: `,` and space are escaped.
//! - Tag keys, tag values and field keys: `,`, `=` and space are escaped.
//! - String field values: double-quoted, with `"` and `\` escaped (line
//!   breaks may appear as they are).
//! - Line breaks cannot appear in a measurement, key or tag value: `\n` and
//!   `\r` there are written as the two characters `\n` and `\r`.
//! - A measurement, key or tag value cannot end in a backslash (it would
//!   escape the separator after it): trailing backslashes are dropped.
//! - A measurement starting with `#` would be read as a comment: the `#`
//!   is escaped (InfluxDB keeps that backslash).
//! - An odd run of backslashes right before an escaped character gains
//!   one backslash. InfluxDB 1.x finds line ends reading backslashes in
//!   pairs; without it, the escape would be read out of step, and a later
//!   `"` taken for the start of a string could swallow the line break
//!   (the whole batch is then refused).
//!
//! InfluxDB 1.6 unescapes measurement names twice, so a backslash written
//! before an escaped `,` or space of a measurement name is lost there;
//! metric names, which cannot hold backslashes, are not affected.
//!
//! # The pusher
//!
//! [`InfluxPusher::builder`] starts a background pusher (see
//! [`push`](super::push) for the thread, backoff, breaker and counts) that
//! POSTs batches to `http://HOST:PORT/write?db=NAME&precision=ns` with
//! HTTP/1.1 (`Content-Length`, `Connection: close`; the `ureq` client, plain
//! HTTP, one connection a request); a 2xx answer (InfluxDB says 204) is
//! success. Every attempt samples the registry into a timestamped batch;
//! undelivered batches are kept, oldest first, up to
//! [`max_pending_bytes`](InfluxPusherBuilder::max_pending_bytes),
//! and sent together (in bodies of at most 4 MiB) once the server answers
//! again. A 400 or 413 answer refuses the data itself: those batches are
//! dropped and counted, as retrying cannot help.
//!
//! # Layout
//!
//! `line` writes points (pure formatting), `encode` maps the registry's
//! collection walk to points, `transport` is the HTTP client and its
//! error classification, `sink` the pusher and its pending batches.

mod encode;
mod line;
mod sink;
mod transport;

pub use encode::{encode, encode_with_tags};
pub use line::{LineError, Point};
pub use sink::{InfluxPusher, InfluxPusherBuilder};
