//! [`StatsdPusher`]: the background pusher of StatsD lines
//! ([`StatsdPusherBuilder`] for its settings), and its sink: the UDP
//! transport that packs the lines into datagrams and moves the counter
//! baselines of the datagrams delivered.

use super::deltas::Deltas;
use super::encode::encode_lines;
use super::format::StatsdFormat;
use super::lines::Lines;
use crate::export::push::{self, Outcome, PushError, PushOptions, PusherHandle, Sink};
use crate::registry::Registry;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::ops::Range;

/// Default datagram size bound: 1432 bytes, a 1500-byte MTU less IP and UDP
/// headers with room for options.
pub const DEFAULT_MAX_DATAGRAM: usize = 1432;

/// The StatsD pusher; start one with [`StatsdPusher::builder`].
///
/// ```no_run
/// use metricz::export::push::PushOptions;
/// use metricz::export::statsd::StatsdPusher;
/// use std::time::Duration;
///
/// let mut options = PushOptions::default();
/// options.interval = Duration::from_secs(10);
/// let reg = metricz::Registry::new();
/// let pusher = StatsdPusher::builder(reg.clone(), "127.0.0.1:8125")
///     .options(options)
///     .prefix("app")
///     .dogstatsd(true)
///     .max_datagram(1432)
///     .spawn()?;
/// reg.counter("jobs_total", "Jobs.")?.inc();
/// pusher.push_now()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub enum StatsdPusher {}

impl StatsdPusher {
    /// A builder for a pusher of `registry` to the StatsD daemon at `addr`
    /// (`host:port`, UDP).
    ///
    /// ```
    /// let reg = metricz::Registry::new();
    /// let builder = metricz::export::statsd::StatsdPusher::builder(reg, "127.0.0.1:8125");
    /// ```
    pub fn builder(registry: Registry, addr: impl Into<String>) -> StatsdPusherBuilder {
        StatsdPusherBuilder {
            registry,
            addr: addr.into(),
            format: StatsdFormat::new(),
            max_datagram: DEFAULT_MAX_DATAGRAM,
            push: PushOptions::default(),
        }
    }
}

/// Settings of a StatsD pusher; from [`StatsdPusher::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct StatsdPusherBuilder {
    registry: Registry,
    addr: String,
    format: StatsdFormat,
    max_datagram: usize,
    push: PushOptions,
}

impl StatsdPusherBuilder {
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
    /// let b = metricz::export::statsd::StatsdPusher::builder(reg, "127.0.0.1:8125")
    ///     .options(options);
    /// ```
    pub fn options(mut self, options: PushOptions) -> Self {
        self.push = options;
        self
    }

    /// A prefix for every name (see [`StatsdFormat::prefix`]).
    ///
    /// ```
    /// # let reg = metricz::Registry::new();
    /// let b = metricz::export::statsd::StatsdPusher::builder(reg, "127.0.0.1:8125").prefix("app");
    /// ```
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.format = self.format.prefix(prefix);
        self
    }

    /// DogStatsD tags instead of name segments for labels (default off).
    ///
    /// ```
    /// # let reg = metricz::Registry::new();
    /// let b = metricz::export::statsd::StatsdPusher::builder(reg, "127.0.0.1:8125").dogstatsd(true);
    /// ```
    pub fn dogstatsd(mut self, on: bool) -> Self {
        self.format = self.format.dogstatsd(on);
        self
    }

    /// A tag for every line (DogStatsD only; see [`StatsdFormat::tag`]).
    ///
    /// ```
    /// # let reg = metricz::Registry::new();
    /// let b = metricz::export::statsd::StatsdPusher::builder(reg, "127.0.0.1:8125")
    ///     .dogstatsd(true)
    ///     .tag("host", "web-1");
    /// ```
    pub fn tag(mut self, key: &str, value: &str) -> Self {
        self.format = self.format.tag(key, value);
        self
    }

    /// The whole line format at once (replaces prefix, DogStatsD and tags).
    ///
    /// ```
    /// # let reg = metricz::Registry::new();
    /// use metricz::export::statsd::{StatsdFormat, StatsdPusher};
    /// let b = StatsdPusher::builder(reg, "127.0.0.1:8125")
    ///     .format(StatsdFormat::new().prefix("app"));
    /// ```
    pub fn format(mut self, format: StatsdFormat) -> Self {
        self.format = format;
        self
    }

    /// Largest datagram in bytes (default [`DEFAULT_MAX_DATAGRAM`]; at
    /// least 1). Lines are never split; a longer line goes alone.
    ///
    /// ```
    /// # let reg = metricz::Registry::new();
    /// let b = metricz::export::statsd::StatsdPusher::builder(reg, "127.0.0.1:8125").max_datagram(8932);
    /// ```
    pub fn max_datagram(mut self, bytes: usize) -> Self {
        self.max_datagram = bytes.max(1);
        self
    }

    /// Starts the pusher thread. Errors: the address is not `host:port`
    /// ([`InvalidAddress`](PushError::InvalidAddress)), registering the
    /// self-metrics or starting the thread failed. Nothing is resolved
    /// here: that happens at each push until a socket is connected.
    ///
    /// ```
    /// # let reg = metricz::Registry::new();
    /// use metricz::export::{push::PushError, statsd::StatsdPusher};
    /// let err = StatsdPusher::builder(reg, "8125").spawn().unwrap_err();
    /// assert!(matches!(err, PushError::InvalidAddress(_)));
    /// ```
    pub fn spawn(self) -> Result<PusherHandle, PushError> {
        push::check_address(&self.addr)?;
        let options = self.push.bounded();
        let sink = StatsdSink {
            addr: self.addr,
            format: self.format,
            max_datagram: self.max_datagram,
            io_timeout: options.io_timeout,
            socket: None,
            deltas: Deltas::new(),
            lines: Lines::default(),
            datagram: String::new(),
            dropped: 0,
        };
        push::spawn(self.registry, sink, &options)
    }
}

/// Whether a send failed because the datagram is larger than UDP (or the
/// path) allows.
fn too_long(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(libc::EMSGSIZE)
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

struct StatsdSink {
    addr: String,
    format: StatsdFormat,
    max_datagram: usize,
    io_timeout: std::time::Duration,
    /// Connected to the daemon; `None` until the first push and after a
    /// send error (to resolve again).
    socket: Option<UdpSocket>,
    deltas: Deltas,
    lines: Lines,
    datagram: String,
    dropped: u64,
}

impl StatsdSink {
    /// Connects the socket if there is none.
    fn connect(&mut self) -> Result<(), PushError> {
        if self.socket.is_none() {
            let target = self
                .addr
                .to_socket_addrs()
                .map_err(|e| PushError::io("resolve", e))?
                .next()
                .ok_or_else(|| PushError::Unresolved(self.addr.clone()))?;
            let local: SocketAddr = if target.is_ipv4() {
                ([0u8; 4], 0).into()
            } else {
                ([0u16; 8], 0).into()
            };
            let socket = UdpSocket::bind(local).map_err(|e| PushError::io("bind", e))?;
            socket
                .connect(target)
                .map_err(|e| PushError::io("connect", e))?;
            socket
                .set_write_timeout(Some(self.io_timeout))
                .map_err(|e| PushError::io("connect", e))?;
            self.socket = Some(socket);
        }
        Ok(())
    }
}

impl Sink for StatsdSink {
    const NAME: &'static str = "statsd";

    fn deliver(&mut self, registry: &Registry) -> Outcome {
        encode_lines(registry, &self.format, &mut self.deltas, &mut self.lines);
        if self.lines.units.is_empty() {
            return Outcome::Delivered;
        }
        if let Err(e) = self.connect() {
            self.dropped += self.lines.text.len() as u64;
            return Outcome::Failed(e);
        }
        let Some(socket) = self.socket.as_ref() else {
            return Outcome::Failed(PushError::Unresolved(self.addr.clone()));
        };
        // An error left from an earlier push concerns datagrams already
        // counted as sent; start clean.
        let _ = socket.take_error();
        let mut failed: Option<PushError> = None;
        let mut refused: Option<PushError> = None;
        let mut dropped = 0u64;
        // Datagrams whose counter baselines move: delivered, or refused
        // for good (too long for UDP: retrying cannot help).
        let mut settled: Vec<Range<usize>> = Vec::new();
        self.lines
            .pack(self.max_datagram, &mut self.datagram, |datagram, units| {
                if failed.is_some() {
                    dropped += datagram.len() as u64;
                    return;
                }
                let sent = socket.send(datagram.as_bytes()).and_then(|_| {
                    match socket.take_error() {
                        // The ICMP error of this datagram (port
                        // unreachable): reported at once for a connected
                        // socket on loopback.
                        Ok(Some(e)) | Err(e) => Err(e),
                        Ok(None) => Ok(()),
                    }
                });
                match sent {
                    Ok(()) => settled.push(units),
                    Err(e) if too_long(&e) => {
                        dropped += datagram.len() as u64;
                        settled.push(units);
                        refused.get_or_insert(PushError::io("send", e));
                    }
                    Err(e) => {
                        dropped += datagram.len() as u64;
                        failed = Some(PushError::io("send", e));
                    }
                }
            });
        for units in settled {
            for unit in units {
                self.deltas.commit(&self.lines, unit);
            }
        }
        self.dropped += dropped;
        match (failed, refused) {
            (Some(e), _) => {
                self.socket = None;
                Outcome::Failed(e)
            }
            (None, Some(e)) => Outcome::Rejected(e),
            (None, None) => Outcome::Delivered,
        }
    }

    fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }
}
