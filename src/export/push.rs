//! Resilient background pushing, shared by the [StatsD](super::statsd) and
//! [InfluxDB](super::influx) pushers: the pusher thread, its interval, the
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
//! Every duration setting is capped at [`MAX_SETTING`] (a year).
//!
//! # Bounded memory, no lost counts
//!
//! - StatsD counters are sent as deltas against a baseline per series that
//!   moves only when the datagram carrying the delta was accepted, so a
//!   failed push loses no count: the next successful push carries the
//!   accumulated delta, once. Gauges and summaries are resent from the
//!   registry's current values, so nothing else needs keeping; StatsD
//!   pushers keep no pending data.
//! - InfluxDB points carry their sampling time, so the pusher samples the
//!   registry at every attempt, skipped or not, and keeps what it could
//!   not deliver, oldest first, up to a byte bound (default
//!   [`DEFAULT_MAX_PENDING_BYTES`]); past it the oldest batches are
//!   dropped and their bytes counted ([`PushStats::dropped_bytes`]).
//!
//! # Self-metrics
//!
//! Each pusher counts, in the registry it pushes, with the label
//! `sink="statsd"` or `sink="influx"`:
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
//! eviction on ([`Registry::set_idle_eviction`]), a self-metric series
//! left unchanged is evicted like any other and comes back from zero (a
//! counter reset) at its next change; the handle's counts never reset.
//!
//! # Shutdown
//!
//! Dropping the [`PusherHandle`] stops the thread and joins it, waiting at
//! most the handle's wait bound (see
//! [`wait_timeout`](super::statsd::StatsdPusherBuilder::wait_timeout)); a
//! thread still inside a network operation then is detached and exits when
//! the operation's own timeout ends it. Dropping pushes nothing: call
//! [`flush`](PusherHandle::flush) (or [`shutdown`](PusherHandle::shutdown))
//! first to deliver the last interval.
//!
//! The thread, its channel and its counters are std's in every build
//! (`primitive::std_only`, not the loom-switched primitives): no loom model
//! runs a pusher, and loom's atomics work only inside a model.

use crate::primitive::std_only::mpsc::{self, RecvTimeoutError, SyncSender};
use crate::primitive::std_only::{Arc, AtomicU32, AtomicU64, AtomicU8, Condvar, Mutex};
use crate::primitive::Ordering::Relaxed;
use crate::registry::{CounterVec, Registry, RegistryError};
use std::fmt;
use std::io;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Default time between pushes: 10 seconds.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// Default bound on each network operation (connecting, each write, reading
/// a whole response): 5 seconds.
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Default first backoff after a failure: 1 second.
pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_secs(1);
/// Default cap of the backoff: 2 minutes.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(120);
/// Default consecutive failures that open the circuit breaker: 5.
pub const DEFAULT_BREAKER_THRESHOLD: u32 = 5;
/// Default time the breaker stays open before a trial: 1 minute.
pub const DEFAULT_BREAKER_COOL_DOWN: Duration = Duration::from_secs(60);
/// Default bound on waiting for the pusher thread (a reply to
/// [`PusherHandle::push_now`] or [`PusherHandle::flush`], or its exit when
/// the handle drops): 10 seconds.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default bound on the InfluxDB pusher's undelivered data: 4 MiB.
pub const DEFAULT_MAX_PENDING_BYTES: usize = 4 << 20;

/// The longest duration a pusher setting takes (a year); longer ones are
/// cut to it, so deadlines never overflow.
pub const MAX_SETTING: Duration = Duration::from_secs(365 * 24 * 3600);

/// A duration setting, capped at [`MAX_SETTING`].
pub(crate) fn setting(d: Duration) -> Duration {
    d.min(MAX_SETTING)
}

/// Why a push, or a pusher's start, failed.
///
/// ```
/// use metricz::export::push::PushError;
///
/// let e = PushError::Http { status: 500, body: "boom".into() };
/// assert_eq!(e.to_string(), "the sink answered HTTP 500: boom");
/// assert!(PushError::BreakerOpen.is_skip());
/// assert!(!e.is_skip());
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum PushError {
    /// A network operation failed (connect, send, receive).
    Io {
        /// What was being done: `"connect"`, `"send"`, `"receive"`, …
        op: &'static str,
        /// The error.
        source: io::Error,
    },
    /// A network operation ran past the pusher's timeout.
    TimedOut {
        /// What was being done.
        op: &'static str,
    },
    /// The sink address resolved to no socket address.
    Unresolved(String),
    /// The sink address is not `host:port`.
    InvalidAddress(String),
    /// The InfluxDB database name is empty.
    EmptyDatabase,
    /// The sink answered with a non-2xx HTTP status; the data is kept for a
    /// retry.
    Http {
        /// The status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// The sink refused the data itself (HTTP 400 or 413: bad or too large
    /// a batch); retrying cannot help, so it was dropped and counted.
    Rejected {
        /// The status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// The sink's answer was not an HTTP/1.x response.
    MalformedResponse(String),
    /// Skipped: the circuit breaker is open.
    BreakerOpen,
    /// Skipped: backing off after a failure.
    BackingOff,
    /// The pusher thread did not answer within the handle's wait bound
    /// (it is probably inside a slow network operation).
    NoReply,
    /// The pusher thread is gone.
    Stopped,
    /// Registering the pusher's self-metrics failed.
    Registry(RegistryError),
    /// The pusher thread could not be started.
    Spawn(io::Error),
}

impl PushError {
    /// Whether this is a skipped attempt ([`BreakerOpen`](Self::BreakerOpen)
    /// or [`BackingOff`](Self::BackingOff)) rather than a failed one.
    ///
    /// ```
    /// use metricz::export::push::PushError;
    /// assert!(PushError::BackingOff.is_skip());
    /// assert!(!PushError::Stopped.is_skip());
    /// ```
    pub fn is_skip(&self) -> bool {
        matches!(self, PushError::BreakerOpen | PushError::BackingOff)
    }

    /// An I/O error as a push error: timeouts become
    /// [`TimedOut`](Self::TimedOut).
    pub(crate) fn io(op: &'static str, source: io::Error) -> Self {
        match source.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => PushError::TimedOut { op },
            _ => PushError::Io { op, source },
        }
    }
}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Io { op, source } => write!(f, "{op} failed: {source}"),
            PushError::TimedOut { op } => write!(f, "{op} timed out"),
            PushError::Unresolved(a) => write!(f, "{a:?} resolved to no address"),
            PushError::InvalidAddress(a) => write!(f, "{a:?} is not host:port"),
            PushError::EmptyDatabase => f.write_str("the database name is empty"),
            PushError::Http { status, body } => {
                write!(f, "the sink answered HTTP {status}: {body}")
            }
            PushError::Rejected { status, body } => {
                write!(f, "the sink refused the data (HTTP {status}): {body}")
            }
            PushError::MalformedResponse(what) => write!(f, "malformed HTTP response: {what}"),
            PushError::BreakerOpen => f.write_str("skipped: the circuit breaker is open"),
            PushError::BackingOff => f.write_str("skipped: backing off after a failure"),
            PushError::NoReply => f.write_str("the pusher thread did not answer in time"),
            PushError::Stopped => f.write_str("the pusher thread has stopped"),
            PushError::Registry(e) => write!(f, "registering self-metrics failed: {e}"),
            PushError::Spawn(e) => write!(f, "starting the pusher thread failed: {e}"),
        }
    }
}

impl std::error::Error for PushError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PushError::Io { source, .. } => Some(source),
            PushError::Registry(e) => Some(e),
            PushError::Spawn(e) => Some(e),
            _ => None,
        }
    }
}

impl From<RegistryError> for PushError {
    fn from(e: RegistryError) -> Self {
        PushError::Registry(e)
    }
}

/// The state of a pusher's circuit breaker.
///
/// ```
/// use metricz::export::push::BreakerState;
/// assert_eq!(BreakerState::Closed.to_string(), "closed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Attempts go ahead (subject to backoff after a failure).
    Closed,
    /// Too many consecutive failures: attempts are skipped until the
    /// cool-down ends.
    Open,
    /// The cool-down ended: the next attempt is a trial.
    HalfOpen,
}

impl BreakerState {
    fn to_u8(self) -> u8 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        })
    }
}

/// A snapshot of one pusher's counts, from [`PusherHandle::stats`].
///
/// ```
/// use metricz::export::push::{BreakerState, PushStats};
/// let s = PushStats::default();
/// assert_eq!((s.pushes, s.failures, s.breaker), (0, 0, BreakerState::Closed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushStats {
    /// Successful pushes.
    pub pushes: u64,
    /// Failed attempts.
    pub failures: u64,
    /// Attempts skipped while backing off or while the breaker was open.
    pub skipped: u64,
    /// Encoded bytes given up on (see the [module docs](self)).
    pub dropped_bytes: u64,
    /// Bytes of undelivered data kept for the next attempt now.
    pub pending_bytes: u64,
    /// The most bytes of undelivered data ever kept between attempts.
    pub peak_pending_bytes: u64,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// The circuit breaker's state.
    pub breaker: BreakerState,
}

impl Default for PushStats {
    fn default() -> Self {
        PushStats {
            pushes: 0,
            failures: 0,
            skipped: 0,
            dropped_bytes: 0,
            pending_bytes: 0,
            peak_pending_bytes: 0,
            consecutive_failures: 0,
            breaker: BreakerState::Closed,
        }
    }
}

/// The settings every pusher has; filled by the pusher builders.
#[derive(Debug, Clone)]
pub(crate) struct PushConfig {
    pub(crate) interval: Duration,
    pub(crate) io_timeout: Duration,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) breaker_threshold: u32,
    pub(crate) breaker_cool_down: Duration,
    pub(crate) wait_timeout: Duration,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            interval: DEFAULT_INTERVAL,
            io_timeout: DEFAULT_IO_TIMEOUT,
            backoff_initial: DEFAULT_BACKOFF_INITIAL,
            backoff_max: DEFAULT_BACKOFF_MAX,
            breaker_threshold: DEFAULT_BREAKER_THRESHOLD,
            breaker_cool_down: DEFAULT_BREAKER_COOL_DOWN,
            wait_timeout: DEFAULT_WAIT_TIMEOUT,
        }
    }
}

/// The builder setters every pusher has, with docs; `$make` is the
/// doctest expression that makes the builder (bound to `b`).
macro_rules! push_setters {
    ($make:literal) => {
        #[doc = concat!(
            "Time between pushes (default 10 s; at least 1 ms).\n\n```\n",
            "use std::time::Duration;\nlet reg = metricz::Registry::new();\n",
            "let b = ", $make, ".interval(Duration::from_secs(30));\n```"
        )]
        pub fn interval(mut self, interval: std::time::Duration) -> Self {
            self.push.interval = $crate::export::push::setting(interval).max(std::time::Duration::from_millis(1));
            self
        }

        #[doc = concat!(
            "Bound on each network operation: connecting, each write, and ",
            "reading a whole response (default 5 s; at least 1 ms).\n\n```\n",
            "use std::time::Duration;\nlet reg = metricz::Registry::new();\n",
            "let b = ", $make, ".io_timeout(Duration::from_millis(500));\n```"
        )]
        pub fn io_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.push.io_timeout = $crate::export::push::setting(timeout).max(std::time::Duration::from_millis(1));
            self
        }

        #[doc = concat!(
            "Backoff after failures: `initial × 2^(n-1)` after the n-th ",
            "consecutive failure, capped at `max` (defaults 1 s and 2 min). ",
            "Attempts before it has passed are skipped. Zero turns it off.\n\n```\n",
            "use std::time::Duration;\nlet reg = metricz::Registry::new();\n",
            "let b = ", $make, ".backoff(Duration::from_millis(100), Duration::from_secs(10));\n```"
        )]
        pub fn backoff(mut self, initial: std::time::Duration, max: std::time::Duration) -> Self {
            let initial = $crate::export::push::setting(initial);
            self.push.backoff_initial = initial;
            self.push.backoff_max = $crate::export::push::setting(max).max(initial);
            self
        }

        #[doc = concat!(
            "Circuit breaker: after `threshold` consecutive failures (at least ",
            "1; default 5) no attempt is made for `cool_down` (default 1 min), ",
            "then one trial attempt decides.\n\n```\n",
            "use std::time::Duration;\nlet reg = metricz::Registry::new();\n",
            "let b = ", $make, ".breaker(3, Duration::from_secs(30));\n```"
        )]
        pub fn breaker(mut self, threshold: u32, cool_down: std::time::Duration) -> Self {
            self.push.breaker_threshold = threshold.max(1);
            self.push.breaker_cool_down = $crate::export::push::setting(cool_down);
            self
        }

        #[doc = concat!(
            "Bound on waiting for the pusher thread: for the reply to ",
            "`push_now` or `flush`, and for the thread's exit when the ",
            "handle drops (default 10 s).\n\n```\n",
            "use std::time::Duration;\nlet reg = metricz::Registry::new();\n",
            "let b = ", $make, ".wait_timeout(Duration::from_secs(2));\n```"
        )]
        pub fn wait_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.push.wait_timeout = $crate::export::push::setting(timeout);
            self
        }
    };
}
pub(crate) use push_setters;

/// What one delivery attempt came to.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Everything was delivered.
    Delivered,
    /// The sink failed (unreachable, timed out, answered an error): counts
    /// towards the breaker; the data is kept (InfluxDB) or re-derived
    /// (StatsD).
    Failed(PushError),
    /// The sink answered but refused the data, which was dropped: a failed
    /// push, but the sink is healthy.
    Rejected(PushError),
}

/// A destination: an encoding and a transport.
pub(crate) trait Sink: Send + 'static {
    /// The value of the self-metrics' `sink` label.
    const NAME: &'static str;

    /// Samples the registry for this attempt, whether or not delivery goes
    /// ahead (InfluxDB keeps timestamped batches; StatsD need not).
    fn sample(&mut self, _registry: &Registry) {}

    /// One delivery attempt.
    fn deliver(&mut self, registry: &Registry) -> Outcome;

    /// Drops the oldest undelivered data past the bound; returns the bytes
    /// dropped.
    fn trim(&mut self) -> u64 {
        0
    }

    /// Bytes of undelivered data kept.
    fn pending_bytes(&self) -> usize {
        0
    }

    /// Bytes given up on during the last [`deliver`](Self::deliver)
    /// (refused, or in failed datagrams); reset by the call.
    fn take_dropped(&mut self) -> u64 {
        0
    }
}

/// A pusher's counts, shared by its thread and its handle.
struct Shared {
    pushes: AtomicU64,
    failures: AtomicU64,
    skipped: AtomicU64,
    dropped_bytes: AtomicU64,
    pending_bytes: AtomicU64,
    peak_pending_bytes: AtomicU64,
    consecutive_failures: AtomicU32,
    breaker: AtomicU8,
    /// Set when the thread exits (also by unwinding).
    exited: Mutex<bool>,
    exited_cv: Condvar,
}

/// The self-metric families of one sink. Series are looked up at each
/// increment rather than held, so idle-series eviction (which detaches a
/// series it removes) never leaves the pusher counting into a detached one.
struct SelfMetrics {
    sink: &'static str,
    pushes: CounterVec,
    failures: CounterVec,
    skipped: CounterVec,
    dropped_bytes: CounterVec,
}

impl SelfMetrics {
    fn register(registry: &Registry, sink: &'static str) -> Result<Self, RegistryError> {
        let family = |name: &str, help: &str| -> Result<CounterVec, RegistryError> {
            let family = registry.self_counter_vec(name, help, &["sink"])?;
            family.with(&[sink])?; // exported from the start, at 0
            Ok(family)
        };
        Ok(SelfMetrics {
            sink,
            pushes: family(
                "metricz_push_total",
                "Successful pushes by a metricz pusher.",
            )?,
            failures: family(
                "metricz_push_failures_total",
                "Failed push attempts by a metricz pusher.",
            )?,
            skipped: family(
                "metricz_push_skipped_total",
                "Push attempts skipped while backing off or with the circuit breaker open.",
            )?,
            dropped_bytes: family(
                "metricz_push_dropped_bytes_total",
                "Encoded bytes a metricz pusher gave up on.",
            )?,
        })
    }

    fn add(&self, family: &CounterVec, n: u64) {
        if let Ok(series) = family.with(&[self.sink]) {
            series.add(n);
        }
    }
}

enum Command {
    Push {
        force: bool,
        reply: SyncSender<Result<(), PushError>>,
    },
    Stop,
}

/// Handle of a running pusher: triggers pushes, reads counts, and stops
/// the thread when dropped (waiting at most its wait bound).
///
/// `Send + Sync`: [`push_now`](Self::push_now) may be called from any
/// thread.
///
/// ```no_run
/// use metricz::export::statsd::StatsdPusher;
/// use metricz::Registry;
///
/// let reg = Registry::new();
/// reg.counter("jobs_total", "Jobs.")?.inc();
/// let pusher = StatsdPusher::builder(reg.clone(), "127.0.0.1:8125").spawn()?;
/// pusher.push_now()?;
/// assert_eq!(pusher.stats().pushes, 1);
/// pusher.shutdown()?; // flush, then stop
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PusherHandle {
    sink: &'static str,
    tx: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    wait: Duration,
}

impl fmt::Debug for PusherHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PusherHandle")
            .field("sink", &self.sink)
            .field("stats", &self.stats())
            .finish()
    }
}

impl PusherHandle {
    /// Makes an attempt now, as an interval tick would (backoff and breaker
    /// apply: a skipped attempt is `Err` with
    /// [`BreakerOpen`](PushError::BreakerOpen) or
    /// [`BackingOff`](PushError::BackingOff)), and waits for its result at
    /// most the handle's wait bound ([`NoReply`](PushError::NoReply) past
    /// it).
    ///
    /// ```no_run
    /// # let reg = metricz::Registry::new();
    /// # let pusher = metricz::export::statsd::StatsdPusher::builder(reg, "127.0.0.1:8125").spawn()?;
    /// match pusher.push_now() {
    ///     Ok(()) => {}
    ///     Err(e) if e.is_skip() => eprintln!("not tried: {e}"),
    ///     Err(e) => eprintln!("failed: {e}"),
    /// }
    /// # Ok::<(), metricz::export::push::PushError>(())
    /// ```
    pub fn push_now(&self) -> Result<(), PushError> {
        self.request(false)
    }

    /// Delivers now, bypassing backoff and breaker (for shutdown and
    /// tests); waits for the result at most the handle's wait bound.
    ///
    /// ```no_run
    /// # let reg = metricz::Registry::new();
    /// # let pusher = metricz::export::statsd::StatsdPusher::builder(reg, "127.0.0.1:8125").spawn()?;
    /// pusher.flush()?;
    /// # Ok::<(), metricz::export::push::PushError>(())
    /// ```
    pub fn flush(&self) -> Result<(), PushError> {
        self.request(true)
    }

    /// [`flush`](Self::flush)es, then stops the thread (as dropping does);
    /// returns the flush's result.
    ///
    /// ```no_run
    /// # let reg = metricz::Registry::new();
    /// let pusher = metricz::export::statsd::StatsdPusher::builder(reg, "127.0.0.1:8125").spawn()?;
    /// pusher.shutdown()?;
    /// # Ok::<(), metricz::export::push::PushError>(())
    /// ```
    pub fn shutdown(self) -> Result<(), PushError> {
        self.flush()
    }

    /// The pusher's counts now.
    ///
    /// ```no_run
    /// # let reg = metricz::Registry::new();
    /// # let pusher = metricz::export::statsd::StatsdPusher::builder(reg, "127.0.0.1:8125").spawn()?;
    /// let s = pusher.stats();
    /// println!("{} pushed, {} failed, breaker {}", s.pushes, s.failures, s.breaker);
    /// # Ok::<(), metricz::export::push::PushError>(())
    /// ```
    pub fn stats(&self) -> PushStats {
        let s = &*self.shared;
        PushStats {
            pushes: s.pushes.load(Relaxed),
            failures: s.failures.load(Relaxed),
            skipped: s.skipped.load(Relaxed),
            dropped_bytes: s.dropped_bytes.load(Relaxed),
            pending_bytes: s.pending_bytes.load(Relaxed),
            peak_pending_bytes: s.peak_pending_bytes.load(Relaxed),
            consecutive_failures: s.consecutive_failures.load(Relaxed),
            breaker: BreakerState::from_u8(s.breaker.load(Relaxed)),
        }
    }

    /// The sink's name, the value of the self-metrics' `sink` label:
    /// `"statsd"` or `"influx"`.
    ///
    /// ```no_run
    /// # let reg = metricz::Registry::new();
    /// # let pusher = metricz::export::statsd::StatsdPusher::builder(reg, "127.0.0.1:8125").spawn()?;
    /// assert_eq!(pusher.sink(), "statsd");
    /// # Ok::<(), metricz::export::push::PushError>(())
    /// ```
    pub fn sink(&self) -> &'static str {
        self.sink
    }

    fn request(&self, force: bool) -> Result<(), PushError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.tx
            .send(Command::Push { force, reply })
            .map_err(|_| PushError::Stopped)?;
        match answer.recv_timeout(self.wait) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => Err(PushError::NoReply),
            Err(RecvTimeoutError::Disconnected) => Err(PushError::Stopped),
        }
    }
}

impl Drop for PusherHandle {
    fn drop(&mut self) {
        let _ = self.tx.send(Command::Stop);
        let deadline = Instant::now() + self.wait;
        let mut exited = self.shared.exited.lock().unwrap_or_else(|e| e.into_inner());
        while !*exited {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            exited = self
                .shared
                .exited_cv
                .wait_timeout(exited, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let done = *exited;
        drop(exited);
        if let Some(thread) = self.thread.take() {
            if done {
                let _ = thread.join();
            }
            // Otherwise the thread is detached: it is inside a network
            // operation bounded by its own timeout, and exits after it.
        }
    }
}

/// Sets `exited` when the pusher thread ends, also by unwinding.
struct ExitSignal(Arc<Shared>);

impl Drop for ExitSignal {
    fn drop(&mut self) {
        *self.0.exited.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.0.exited_cv.notify_all();
    }
}

/// Backoff and circuit breaker state (pusher thread only).
#[derive(Debug)]
struct Breaker {
    threshold: u32,
    cool_down: Duration,
    backoff_initial: Duration,
    backoff_max: Duration,
    failures: u32,
    state: BreakerState,
    /// Open: when the cool-down ends. Closed after a failure: when the
    /// backoff ends.
    until: Option<Instant>,
}

impl Breaker {
    fn new(config: &PushConfig) -> Self {
        Breaker {
            threshold: config.breaker_threshold.max(1),
            cool_down: config.breaker_cool_down,
            backoff_initial: config.backoff_initial,
            backoff_max: config.backoff_max,
            failures: 0,
            state: BreakerState::Closed,
            until: None,
        }
    }

    /// Whether an attempt may go ahead now (moving an open breaker whose
    /// cool-down has passed to half-open).
    fn gate(&mut self, now: Instant) -> Result<(), PushError> {
        match self.state {
            BreakerState::Open => match self.until {
                Some(until) if now < until => Err(PushError::BreakerOpen),
                _ => {
                    self.state = BreakerState::HalfOpen;
                    self.until = None;
                    Ok(())
                }
            },
            BreakerState::HalfOpen => Ok(()),
            BreakerState::Closed => match self.until {
                Some(until) if now < until => Err(PushError::BackingOff),
                _ => Ok(()),
            },
        }
    }

    fn success(&mut self) {
        self.failures = 0;
        self.state = BreakerState::Closed;
        self.until = None;
    }

    fn failure(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        if self.state == BreakerState::HalfOpen || self.failures >= self.threshold {
            self.state = BreakerState::Open;
            self.until = now.checked_add(self.cool_down);
        } else {
            let doublings = 1u32.checked_shl(self.failures - 1).unwrap_or(u32::MAX);
            let backoff = self
                .backoff_initial
                .saturating_mul(doublings)
                .min(self.backoff_max);
            self.until = now.checked_add(backoff);
        }
    }
}

/// The pusher thread's state.
struct Worker<S> {
    registry: Registry,
    sink: S,
    breaker: Breaker,
    shared: Arc<Shared>,
    metrics: SelfMetrics,
}

impl<S: Sink> Worker<S> {
    fn run(mut self, rx: mpsc::Receiver<Command>, interval: Duration) {
        let _exit = ExitSignal(Arc::clone(&self.shared));
        let mut next = Instant::now() + interval;
        loop {
            let wait = next.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(Command::Push { force, reply }) => {
                    let result = self.attempt(force);
                    let _ = reply.send(result);
                }
                Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.attempt(false);
                    next += interval;
                    let now = Instant::now();
                    if next <= now {
                        // Fell behind (a slow attempt): skip the missed ticks.
                        next = now + interval;
                    }
                }
            }
        }
    }

    /// One attempt: sample, pass the gate (unless forced), deliver, count.
    fn attempt(&mut self, force: bool) -> Result<(), PushError> {
        self.sink.sample(&self.registry);
        let now = Instant::now();
        let gate = if force {
            Ok(())
        } else {
            self.breaker.gate(now)
        };
        let result = match gate {
            Err(skip) => {
                self.shared.skipped.fetch_add(1, Relaxed);
                self.metrics.add(&self.metrics.skipped, 1);
                Err(skip)
            }
            Ok(()) => match self.sink.deliver(&self.registry) {
                Outcome::Delivered => {
                    self.breaker.success();
                    self.shared.pushes.fetch_add(1, Relaxed);
                    self.metrics.add(&self.metrics.pushes, 1);
                    Ok(())
                }
                Outcome::Rejected(e) => {
                    self.breaker.success();
                    self.shared.failures.fetch_add(1, Relaxed);
                    self.metrics.add(&self.metrics.failures, 1);
                    Err(e)
                }
                Outcome::Failed(e) => {
                    self.breaker.failure(Instant::now());
                    self.shared.failures.fetch_add(1, Relaxed);
                    self.metrics.add(&self.metrics.failures, 1);
                    Err(e)
                }
            },
        };
        let dropped = self.sink.take_dropped() + self.sink.trim();
        if dropped > 0 {
            self.shared.dropped_bytes.fetch_add(dropped, Relaxed);
            self.metrics.add(&self.metrics.dropped_bytes, dropped);
        }
        let pending = self.sink.pending_bytes() as u64;
        self.shared.pending_bytes.store(pending, Relaxed);
        self.shared.peak_pending_bytes.fetch_max(pending, Relaxed);
        self.shared
            .consecutive_failures
            .store(self.breaker.failures, Relaxed);
        self.shared
            .breaker
            .store(self.breaker.state.to_u8(), Relaxed);
        result
    }
}

/// Starts a pusher thread for `sink`.
pub(crate) fn spawn<S: Sink>(
    registry: Registry,
    sink: S,
    config: PushConfig,
) -> Result<PusherHandle, PushError> {
    let metrics = SelfMetrics::register(&registry, S::NAME)?;
    let shared = Arc::new(Shared {
        pushes: AtomicU64::new(0),
        failures: AtomicU64::new(0),
        skipped: AtomicU64::new(0),
        dropped_bytes: AtomicU64::new(0),
        pending_bytes: AtomicU64::new(0),
        peak_pending_bytes: AtomicU64::new(0),
        consecutive_failures: AtomicU32::new(0),
        breaker: AtomicU8::new(BreakerState::Closed.to_u8()),
        exited: Mutex::new(false),
        exited_cv: Condvar::new(),
    });
    let worker = Worker {
        registry,
        sink,
        breaker: Breaker::new(&config),
        shared: Arc::clone(&shared),
        metrics,
    };
    let (tx, rx) = mpsc::channel();
    let interval = config.interval.max(Duration::from_millis(1));
    let thread = std::thread::Builder::new()
        .name(format!("metricz-push-{}", S::NAME))
        .spawn(move || worker.run(rx, interval))
        .map_err(PushError::Spawn)?;
    Ok(PusherHandle {
        sink: S::NAME,
        tx,
        shared,
        thread: Some(thread),
        wait: config.wait_timeout,
    })
}

/// Checks that `addr` looks like `host:port` (a bracketed IPv6 host
/// allowed), without resolving it.
pub(crate) fn check_address(addr: &str) -> Result<(), PushError> {
    let bad = || PushError::InvalidAddress(addr.to_string());
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(threshold: u32, initial_ms: u64, max_ms: u64) -> PushConfig {
        PushConfig {
            breaker_threshold: threshold,
            breaker_cool_down: Duration::from_secs(60),
            backoff_initial: Duration::from_millis(initial_ms),
            backoff_max: Duration::from_millis(max_ms),
            ..PushConfig::default()
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let mut b = Breaker::new(&config(100, 100, 1_000));
        let t0 = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..6 {
            b.failure(t0);
            waits.push(b.until.map(|u| u - t0).unwrap_or_default());
        }
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, vec![100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(
            b.gate(t0 + Duration::from_millis(999))
                .unwrap_err()
                .to_string(),
            PushError::BackingOff.to_string()
        );
        assert!(b.gate(t0 + Duration::from_millis(1_000)).is_ok());
    }

    #[test]
    fn breaker_opens_half_opens_and_closes() {
        let mut b = Breaker::new(&config(3, 0, 0));
        let t0 = Instant::now();
        for _ in 0..2 {
            assert!(b.gate(t0).is_ok());
            b.failure(t0);
            assert_eq!(b.state, BreakerState::Closed);
        }
        b.failure(t0);
        assert_eq!(b.state, BreakerState::Open);
        assert!(matches!(
            b.gate(t0 + Duration::from_secs(59)),
            Err(PushError::BreakerOpen)
        ));
        assert!(b.gate(t0 + Duration::from_secs(60)).is_ok());
        assert_eq!(b.state, BreakerState::HalfOpen);
        // A failed trial opens it again at once.
        b.failure(t0 + Duration::from_secs(60));
        assert_eq!(b.state, BreakerState::Open);
        assert!(matches!(
            b.gate(t0 + Duration::from_secs(61)),
            Err(PushError::BreakerOpen)
        ));
        assert!(b.gate(t0 + Duration::from_secs(120)).is_ok());
        b.success();
        assert_eq!((b.state, b.failures), (BreakerState::Closed, 0));
        assert!(b.gate(t0 + Duration::from_secs(120)).is_ok());
    }

    #[test]
    fn huge_failure_counts_saturate() {
        let mut b = Breaker::new(&config(u32::MAX, 1, 10));
        b.failures = u32::MAX - 2;
        let t0 = Instant::now();
        b.failure(t0);
        assert_eq!(b.until, Some(t0 + Duration::from_millis(10)));
    }

    #[test]
    fn addresses() {
        assert!(check_address("127.0.0.1:8125").is_ok());
        assert!(check_address("localhost:8086").is_ok());
        assert!(check_address("[::1]:8086").is_ok());
        for bad in ["", "localhost", ":80", "host:port", "host:99999", "::1:80"] {
            assert!(
                matches!(check_address(bad), Err(PushError::InvalidAddress(_))),
                "{bad}"
            );
        }
    }
}
