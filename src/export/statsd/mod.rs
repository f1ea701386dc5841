//! StatsD and DogStatsD: the encoder ([`encode`](fn@encode)) and a UDP pusher
//! ([`StatsdPusher`]).
//!
//! # What a registry becomes
//!
//! | kind | lines |
//! |---|---|
//! | counter | `name:<delta>\|c`: the increase since the last delivered push (nothing when it did not change) |
//! | gauge | `name:<value>\|g` (NaN and ±∞, which StatsD cannot carry, are left out) |
//! | histogram | gauges `name.count`, `name.sum`, and when not empty `name.min`, `name.max`, `name.p50`, `name.p90`, `name.p99` |
//! | timer | as a histogram, in milliseconds (the StatsD convention) |
//!
//! Histograms and timers are sent pre-aggregated, as gauges of their
//! summary since the series was created (the form of Dropwizard's and
//! go-metrics' StatsD reporters), not as `|ms` samples: the registry keeps
//! buckets, not samples, and a StatsD daemon's timer percentiles would
//! weigh each line as one sample.
//!
//! A negative gauge value is sent as `name:0|g` followed by
//! `name:-3.5|g` in the same datagram, because StatsD reads a signed gauge
//! value as a change of the gauge. DogStatsD gets the pair too: the
//! Datadog agent sets the gauge twice and keeps the last value, and a
//! plain StatsD daemon reading DogStatsD lines still ends at the value.
//!
//! **Names and labels.** Names are `prefix.name`, with the characters StatsD
//! gives a meaning (`:`, `|`, `@`, `#`, `,`, whitespace) replaced by `_`.
//! Plain StatsD has no tags: label values become dotted name segments, in
//! label order, with every character other than ASCII letters, digits,
//! `_` and `-` replaced by `_` (an empty value becomes `_`), and the
//! overflow series is the segment `metricz_overflow`. DogStatsD sends
//! labels as tags instead, `name:1|c|#label:value,...`, after the
//! configured global tags, with `,`, `|` and line breaks replaced by `_`
//! (and `:` in keys); labels with empty values are left out, and the
//! overflow series is tagged `metricz_overflow:true`. Overflow counts of
//! the families go out as `metricz_cardinality_overflow_total` (segment
//! or tag `family`), as in the Prometheus exposition.
//!
//! ```
//! use metricz::export::statsd::{self, Deltas, StatsdFormat};
//! use metricz::Registry;
//!
//! let reg = Registry::new();
//! let jobs = reg.counter_vec("jobs_total", "Jobs.", &["queue"])?;
//! jobs.with(&["mail"])?.add(3);
//! reg.gauge("balance", "Balance.")?.set(-2.5);
//!
//! let format = StatsdFormat::new().prefix("app");
//! let mut deltas = Deltas::new();
//! let mut buf = String::new();
//! statsd::encode(&reg, &format, &mut deltas, &mut buf);
//! assert_eq!(buf, "app.balance:0|g\napp.balance:-2.5|g\napp.jobs_total.mail:3|c\n");
//!
//! jobs.with(&["mail"])?.add(2);
//! buf.clear();
//! let dog = StatsdFormat::new().dogstatsd(true).tag("env", "prod");
//! statsd::encode(&reg, &dog, &mut deltas, &mut buf);
//! assert_eq!(
//!     buf,
//!     "balance:0|g|#env:prod\nbalance:-2.5|g|#env:prod\njobs_total:2|c|#env:prod,queue:mail\n"
//! );
//! # Ok::<(), metricz::RegistryError>(())
//! ```
//!
//! # Counters as deltas
//!
//! [`Deltas`] keeps, per counter series, the value last sent. The pusher
//! moves it only for the series of datagrams the kernel accepted (and for
//! which no ICMP error came back, on a connected socket), so a failed push
//! loses no count: the next push carries the whole accumulated delta,
//! once. UDP cannot confirm delivery: a datagram accepted and then lost on
//! the way, or refused by a remote host after the send returned, is lost
//! with its counts. A counter that went down (a removed series created
//! again) sends its whole value.
//!
//! # The pusher and datagrams
//!
//! [`StatsdPusher::builder`] starts a background pusher (see
//! [`push`](super::push) for the thread, backoff, breaker and counts).
//! Lines are packed into datagrams of at most
//! [`max_datagram`](StatsdPusherBuilder::max_datagram) bytes (default
//! [`DEFAULT_MAX_DATAGRAM`], which fits a 1500-byte Ethernet MTU), joined
//! by `\n`, never splitting a line (nor a negative gauge's pair); a line
//! longer than the bound goes alone. A datagram too long for UDP itself
//! (over 65 507 bytes: a line with an enormous label value) is dropped and
//! counted, and its counter deltas given up (retrying cannot help); the
//! push then fails, but its other datagrams still go.

// One concept a file, bottom-up: `format` (how a line is written and
// sanitised), `lines` (encoded lines in units that travel together, and
// their packing into datagrams), `deltas` (the counter baselines), `encode`
// (a registry's lines, over its collection walk `Registry::collect`) and
// `sink` (the pusher: its builder and the UDP transport).
mod deltas;
mod encode;
mod format;
mod lines;
mod sink;

pub use deltas::Deltas;
pub use encode::encode;
pub use format::StatsdFormat;
pub use sink::{StatsdPusher, StatsdPusherBuilder, DEFAULT_MAX_DATAGRAM};
