//! Resilient background pushing, shared by the [StatsD](super::statsd),
//! [InfluxDB](super::influx), [remote write](super::remote_write) and
//! [Pushgateway](super::pushgateway) pushers: the pusher thread, its interval, the
//! exponential backoff, the circuit breaker, bounded buffers and the
//! counts of pushes, failures, skips and drops.
//!
//! # The thread
//!
//! A pusher owns one thread (named `metricz-push-<sink>`). Every network
//! operation happens there: recording threads never touch a socket, a lock
//! the pusher holds, or a buffer it fills, so a dead, slow or refusing sink
//! cannot block or slow recording. The thread reads the registry the way
//! the Prometheus encoder does (the read-only walk of
//! [`export`](super)); it wakes once per interval, and when the
//! [`PusherHandle`] asks it to ([`push_now`](PusherHandle::push_now),
//! [`flush`](PusherHandle::flush)).
//!
//! # Failures: backoff and circuit breaker
//!
//! Each wake-up is an *attempt*. After a failed attempt the next ones are
//! skipped until a backoff has passed: `initial × 2^(n-1)` after the `n`-th
//! consecutive failure, capped at a maximum (no jitter; the interval ticks
//! already spread pushers out). After `threshold` consecutive failures the
//! breaker opens: no attempt is made for the cool-down; then it is
//! half-open, and the next attempt is a trial: success closes it (and
//! resets the backoff), failure opens it for another cool-down. Skipped
//! attempts are counted ([`PushStats::skipped`]). A
//! [`flush`](PusherHandle::flush) bypasses backoff and breaker (it is meant
//! for shutdown), and its result closes or feeds the breaker like any
//! attempt.
//!
//! # Settings
//!
//! Every pusher takes the same settings, a [`PushOptions`] given to its
//! builder's `options` (defaults: the `DEFAULT_*` constants). They are
//! bounded when the pusher starts: every duration is capped at
//! [`MAX_SETTING`] (a year), and zeros mean what each field says.
//!
//! # Bounded memory, no lost counts
//!
//! - StatsD counters are sent as deltas against a baseline per series that
//!   moves only when the datagram carrying the delta was accepted, so a
//!   failed push loses no count: the next successful push carries the
//!   accumulated delta, once. Gauges and summaries are resent from the
//!   registry's current values, so nothing else needs keeping; StatsD
//!   pushers keep no pending data.
//! - InfluxDB points and remote-write samples carry their sampling time,
//!   so those pushers sample the registry at every attempt, skipped or
//!   not, and keep what they could not deliver, oldest first, up to a
//!   byte bound (default [`DEFAULT_MAX_PENDING_BYTES`]); past it the
//!   oldest batches are dropped and their bytes counted
//!   ([`PushStats::dropped_bytes`]). Counters are cumulative in both, so
//!   a dropped batch loses no increment from the receiver's latest value.
//! - The Pushgateway holds the latest state only: its pusher sends the
//!   registry's current exposition at every attempt and keeps nothing.
//!
//! # Self-metrics
//!
//! Each pusher counts, in the registry it pushes, with the label
//! `sink="statsd"`, `"influx"`, `"remote_write"` or `"pushgateway"`:
//!
//! | metric | counts |
//! |---|---|
//! | `metricz_push_total` | successful pushes |
//! | `metricz_push_failures_total` | failed attempts (the sink was unreachable, timed out, answered an error, or refused data) |
//! | `metricz_push_skipped_total` | attempts skipped while backing off or while the breaker was open |
//! | `metricz_push_dropped_bytes_total` | encoded bytes given up on (evicted from the pending buffer, refused by the sink, or in StatsD datagrams that failed) |
//!
//! The handle's [`stats`](PusherHandle::stats) gives the same counts for
//! that one pusher, with its pending bytes and breaker state. With idle
//! eviction on ([`Registry::set_idle_eviction`](crate::Registry::set_idle_eviction)), a self-metric series
//! left unchanged is evicted like any other and comes back from zero (a
//! counter reset) at its next change; the handle's counts never reset.
//!
//! # Shutdown
//!
//! Dropping the [`PusherHandle`] stops the thread and joins it, waiting at
//! most the handle's wait bound ([`PushOptions::wait_timeout`]); a
//! thread still inside a network operation then is detached and exits when
//! the operation's own timeout ends it. Dropping pushes nothing: call
//! [`flush`](PusherHandle::flush) (or [`shutdown`](PusherHandle::shutdown))
//! first to deliver the last interval.
//!
//! The thread, its channel and its counters are std's in every build
//! (`primitive::std_only`, not the loom-switched primitives): no loom model
//! runs a pusher, and loom's atomics work only inside a model.
//!
//! # Layout
//!
//! One concept a file, none importing this one: `options` (settings and
//! their bounds), `error`, `breaker` (backoff and circuit breaker),
//! `sink` (what a sink implements), `self_metrics`, `shared` (what the
//! thread and its handle share), `handle`, `worker` (the thread and
//! its start), `pending` (the bounded queue of undelivered batches),
//! and `transport` (the HTTP client of the InfluxDB,
//! Pushgateway and remote-write sinks: headers, timeouts, error
//! classification).

mod breaker;
mod error;
mod handle;
mod options;
mod pending;
mod self_metrics;
mod shared;
mod sink;
mod transport;
mod worker;

pub use breaker::BreakerState;
pub use error::PushError;
pub use handle::{PushStats, PusherHandle};
pub use options::{
    PushOptions, DEFAULT_BACKOFF_INITIAL, DEFAULT_BACKOFF_MAX, DEFAULT_BREAKER_COOL_DOWN,
    DEFAULT_BREAKER_THRESHOLD, DEFAULT_INTERVAL, DEFAULT_IO_TIMEOUT, DEFAULT_MAX_PENDING_BYTES,
    DEFAULT_WAIT_TIMEOUT, MAX_SETTING,
};

pub(crate) use options::setting;
pub(crate) use pending::Pending;
pub(crate) use sink::{check_address, Outcome, Sink};
#[allow(unused_imports)] // for sinks that send to more than one URL
pub(crate) use transport::Uri;
pub(crate) use transport::{basic_auth, parse_url, Failure, Method, Transport};
pub(crate) use worker::spawn;
