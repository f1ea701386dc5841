//! The pusher: [`InfluxPusher`] and its builder, and the [`Sink`] that
//! samples the registry into timestamped batches, keeps the undelivered
//! ones (bounded) and sends them through the [transport](super::transport).

use super::encode::encode_with_tags;
use super::transport::{Failure, Transport};
use crate::export::push::{self, Outcome, Pending, PushError, PushOptions, PusherHandle, Sink};
use crate::registry::Registry;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The InfluxDB 1.x pusher; start one with [`InfluxPusher::builder`].
///
/// ```no_run
/// use metricz::export::influx::InfluxPusher;
/// use metricz::export::push::PushOptions;
/// use std::time::Duration;
///
/// let mut options = PushOptions::default();
/// options.interval = Duration::from_secs(10);
/// let reg = metricz::Registry::new();
/// let pusher = InfluxPusher::builder(reg.clone(), "127.0.0.1:8086", "metrics")
///     .options(options)
///     .tag("host", "web-1")
///     .spawn()?;
/// reg.counter("jobs_total", "Jobs.")?.inc();
/// pusher.push_now()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub enum InfluxPusher {}

impl InfluxPusher {
    /// A builder for a pusher of `registry` to the InfluxDB 1.x server at
    /// `addr` (`host:port`), database `database`.
    ///
    /// ```
    /// let reg = metricz::Registry::new();
    /// let builder = metricz::export::influx::InfluxPusher::builder(reg, "localhost:8086", "db");
    /// ```
    pub fn builder(
        registry: Registry,
        addr: impl Into<String>,
        database: impl Into<String>,
    ) -> InfluxPusherBuilder {
        InfluxPusherBuilder {
            registry,
            addr: addr.into(),
            database: database.into(),
            retention_policy: None,
            credentials: None,
            tags: Vec::new(),
            connect_timeout: push::DEFAULT_IO_TIMEOUT,
            max_pending_bytes: push::DEFAULT_MAX_PENDING_BYTES,
            push: PushOptions::default(),
        }
    }
}

/// Settings of an InfluxDB pusher; from [`InfluxPusher::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct InfluxPusherBuilder {
    registry: Registry,
    addr: String,
    database: String,
    retention_policy: Option<String>,
    credentials: Option<(String, String)>,
    tags: Vec<(String, String)>,
    connect_timeout: Duration,
    max_pending_bytes: usize,
    push: PushOptions,
}

impl InfluxPusherBuilder {
    /// The settings every pusher has: schedule, timeouts, backoff and
    /// circuit breaker (default [`PushOptions::default`]; see
    /// [`PushOptions`] for each field and its bounds). Replaces all of
    /// them.
    ///
    /// ```
    /// use metricz::export::push::PushOptions;
    /// use std::time::Duration;
    ///
    /// let mut options = PushOptions::default();
    /// options.interval = Duration::from_secs(30);
    /// options.io_timeout = Duration::from_millis(500);
    /// options.backoff_initial = Duration::from_millis(100);
    /// options.backoff_max = Duration::from_secs(10);
    /// options.breaker_threshold = 3;
    /// options.breaker_cool_down = Duration::from_secs(30);
    /// options.wait_timeout = Duration::from_secs(2);
    ///
    /// let reg = metricz::Registry::new();
    /// let b = metricz::export::influx::InfluxPusher::builder(reg, "127.0.0.1:8086", "db")
    ///     .options(options);
    /// ```
    pub fn options(mut self, options: PushOptions) -> Self {
        self.push = options;
        self
    }

    /// Bound on connecting (default 5 s; at least 1 ms).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let reg = metricz::Registry::new();
    /// let b = metricz::export::influx::InfluxPusher::builder(reg, "127.0.0.1:8086", "db")
    ///     .connect_timeout(Duration::from_millis(500));
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = push::setting(timeout).max(Duration::from_millis(1));
        self
    }

    /// Bound on undelivered data kept for later attempts, in bytes (default
    /// [`DEFAULT_MAX_PENDING_BYTES`](push::DEFAULT_MAX_PENDING_BYTES));
    /// past it the oldest batches are dropped and counted.
    ///
    /// ```
    /// # let reg = metricz::Registry::new();
    /// let b = metricz::export::influx::InfluxPusher::builder(reg, "127.0.0.1:8086", "db")
    ///     .max_pending_bytes(1 << 20);
    /// ```
    pub fn max_pending_bytes(mut self, bytes: usize) -> Self {
        self.max_pending_bytes = bytes;
        self
    }

    /// A tag added to every point (a series' own label of the same key
    /// wins).
    ///
    /// ```
    /// # let reg = metricz::Registry::new();
    /// let b = metricz::export::influx::InfluxPusher::builder(reg, "127.0.0.1:8086", "db")
    ///     .tag("host", "web-1")
    ///     .tag("region", "eu");
    /// ```
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push((key.into(), value.into()));
        self
    }

    /// The retention policy to write into (`rp=`); default the database's
    /// default policy.
    ///
    /// ```
    /// # let reg = metricz::Registry::new();
    /// let b = metricz::export::influx::InfluxPusher::builder(reg, "127.0.0.1:8086", "db")
    ///     .retention_policy("one_week");
    /// ```
    pub fn retention_policy(mut self, policy: impl Into<String>) -> Self {
        self.retention_policy = Some(policy.into());
        self
    }

    /// HTTP Basic credentials, for a server with authentication on.
    ///
    /// ```
    /// # let reg = metricz::Registry::new();
    /// let b = metricz::export::influx::InfluxPusher::builder(reg, "127.0.0.1:8086", "db")
    ///     .credentials("writer", "secret");
    /// ```
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some((user.into(), password.into()));
        self
    }

    /// Starts the pusher thread. Errors: the address is not `host:port`
    /// ([`InvalidAddress`](PushError::InvalidAddress)), the database name
    /// is empty ([`EmptyDatabase`](PushError::EmptyDatabase)), registering
    /// the self-metrics or starting the thread failed. Nothing is resolved
    /// or connected here: an unreachable server shows up as failed pushes.
    ///
    /// ```
    /// # let reg = metricz::Registry::new();
    /// use metricz::export::{influx::InfluxPusher, push::PushError};
    /// let err = InfluxPusher::builder(reg, "no-port", "db").spawn().unwrap_err();
    /// assert!(matches!(err, PushError::InvalidAddress(_)));
    /// ```
    pub fn spawn(self) -> Result<PusherHandle, PushError> {
        push::check_address(&self.addr)?;
        let options = self.push.bounded();
        if self.database.is_empty() {
            return Err(PushError::EmptyDatabase);
        }
        let sink = InfluxSink {
            transport: Transport::new(
                self.addr,
                &self.database,
                self.retention_policy.as_deref(),
                self.credentials.as_ref(),
                self.connect_timeout,
                options.io_timeout,
            )?,
            tags: self.tags,
            pending: Pending::new(self.max_pending_bytes),
            dropped: 0,
            body: Vec::new(),
        };
        push::spawn(self.registry, sink, &options)
    }
}

/// Largest body sent in one request when catching up on pending batches
/// (a single larger batch goes alone).
const MAX_BODY_BYTES: usize = 4 << 20;

struct InfluxSink {
    transport: Transport,
    tags: Vec<(String, String)>,
    /// Undelivered batches, oldest first.
    pending: Pending<String>,
    dropped: u64,
    body: Vec<u8>,
}

impl Sink for InfluxSink {
    const NAME: &'static str = "influx";

    fn sample(&mut self, registry: &Registry) {
        let mut batch = String::new();
        encode_with_tags(registry, &self.tags, now_ns(), &mut batch);
        if !batch.is_empty() {
            self.pending.push(batch);
        }
    }

    fn deliver(&mut self, _registry: &Registry) -> Outcome {
        let mut rejected = None;
        while !self.pending.is_empty() {
            let mut n = 0;
            let mut len = 0;
            for batch in self.pending.iter() {
                if n > 0 && len + batch.len() > MAX_BODY_BYTES {
                    break;
                }
                n += 1;
                len += batch.len();
            }
            self.body.clear();
            for batch in self.pending.iter().take(n) {
                self.body.extend_from_slice(batch.as_bytes());
            }
            match self.transport.post(&self.body) {
                Ok(()) => {
                    self.pending.pop(n);
                }
                Err(Failure::Refused(e)) => {
                    self.dropped += self.pending.pop(n) as u64;
                    rejected.get_or_insert(e);
                }
                Err(Failure::Sink(e)) => return Outcome::Failed(e),
            }
        }
        match rejected {
            Some(e) => Outcome::Rejected(e),
            None => Outcome::Delivered,
        }
    }

    fn trim(&mut self) -> u64 {
        self.pending.trim()
    }

    fn pending_bytes(&self) -> usize {
        self.pending.bytes()
    }

    fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }
}

/// Nanoseconds since the Unix epoch now (0 before it, `i64::MAX` after
/// 2262).
fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}
