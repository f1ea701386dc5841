//! The `/metrics` HTTP endpoint (feature `http`): a small HTTP/1.1 server
//! on [hyper](https://docs.rs/hyper) 1 that runs on its own thread with its
//! own single-threaded tokio runtime, so programs without tokio can use it,
//! and [`render`] for programs that already run a web framework.
//!
//! ```
//! use metricz::export::http::Server;
//! use metricz::Registry;
//! use std::io::{Read, Write};
//!
//! let registry = Registry::new();
//! registry.counter("jobs_total", "Jobs run.")?.add(3);
//!
//! // Port 0: any free port (the default is 127.0.0.1:9184).
//! let server = Server::builder(registry.clone())
//!     .bind("127.0.0.1:0".parse()?)
//!     .spawn()?;
//!
//! let mut stream = std::net::TcpStream::connect(server.local_addr())?;
//! stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
//! let mut response = String::new();
//! stream.read_to_string(&mut response)?;
//! assert!(response.starts_with("HTTP/1.1 200 OK\r\n"));
//! assert!(response.contains("\njobs_total 3\n"));
//!
//! server.shutdown(); // also on drop
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Requests
//!
//! `GET` (and `HEAD`) of the configured path (default `/metrics`, any
//! query string) answers `200` with the registry's exposition: OpenMetrics
//! 1.0 when the `Accept` header prefers `application/openmetrics-text` (as a
//! Prometheus server's does), Prometheus text 0.0.4 otherwise
//! ([`Format::negotiate`]). Other paths answer `404`, other methods `405`
//! (with `Allow: GET, HEAD`), and a request with a body `413`, after
//! which the connection is closed. Malformed requests get hyper's `400`
//! (or `431` for oversized headers) and a closed connection.
//!
//! Each connection encodes into its own `String` that it keeps between
//! requests, so a kept-alive scraper costs no buffer growth after its first
//! scrape (the response body is one copy of it). Connections are served
//! concurrently but encoded one at a time, on the server thread: scrapes
//! never take more than one core from the program.
//!
//! # Limits
//!
//! Every resource a client can hold is bounded (defaults in parentheses, set
//! on [`ServerBuilder`]):
//!
//! - **Connections** ([`DEFAULT_MAX_CONNECTIONS`]): a connection beyond the
//!   limit is answered at once with `503 Service Unavailable` (best effort,
//!   without reading its request) and closed; nothing queues.
//! - **Header size** ([`DEFAULT_MAX_HEADER_BYTES`]): the request line and
//!   headers together; more is answered `431` and the connection closed.
//!   Request bodies are refused (`413`).
//! - **Header read time** ([`DEFAULT_HEADER_READ_TIMEOUT`]): from the
//!   moment the server waits for a request until its headers are complete.
//!   It also closes a kept-alive connection that stays idle this long.
//! - **Whole-request time** ([`DEFAULT_REQUEST_TIMEOUT`]): from a
//!   request's first byte until its response has been handed to the
//!   kernel, so a client that sends slowly (slowloris) or reads the
//!   response slowly is cut off.
//!
//! A timed-out connection is closed without a response. [`ServerHandle::stats`]
//! counts accepted, refused and timed-out connections.
//!
//! # Shutdown
//!
//! [`ServerHandle::shutdown`] (or dropping the handle) stops accepting,
//! lets requests in flight finish for up to
//! [`ServerBuilder::shutdown_timeout`], closes idle kept-alive
//! connections, and joins the server thread.
//!
//! [`Format::negotiate`]: crate::export::Format::negotiate

use crate::export::Format;
use crate::primitive::std_only::{Arc, AtomicBool, AtomicU64};
use crate::primitive::Ordering::Relaxed;
use crate::Registry;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body as _, Incoming};
use hyper::header::{HeaderValue, ACCEPT, ALLOW, CONNECTION, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::cell::RefCell;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::thread;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};

/// The default address: loopback, port 9184.
///
/// ```
/// assert_eq!(metricz::export::http::DEFAULT_ADDR.to_string(), "127.0.0.1:9184");
/// ```
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9184));

/// The default path of the endpoint.
///
/// ```
/// assert_eq!(metricz::export::http::DEFAULT_PATH, "/metrics");
/// ```
pub const DEFAULT_PATH: &str = "/metrics";

/// The default limit of connections served at once.
///
/// ```
/// assert_eq!(metricz::export::http::DEFAULT_MAX_CONNECTIONS, 64);
/// ```
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;

/// The default limit of a request's line and headers, in bytes.
///
/// ```
/// assert_eq!(metricz::export::http::DEFAULT_MAX_HEADER_BYTES, 8192);
/// ```
pub const DEFAULT_MAX_HEADER_BYTES: usize = 8 * 1024;

/// The default time a client has to send a request's headers.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(metricz::export::http::DEFAULT_HEADER_READ_TIMEOUT, Duration::from_secs(5));
/// ```
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The default time from a request's first byte until its response is
/// written.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(metricz::export::http::DEFAULT_REQUEST_TIMEOUT, Duration::from_secs(10));
/// ```
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The default time requests in flight get to finish at shutdown.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(metricz::export::http::DEFAULT_SHUTDOWN_TIMEOUT, Duration::from_secs(1));
/// ```
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);

/// The longest timeout taken; longer ones are cut to it.
const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// What a connection beyond the limit is told before it is closed.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-length: 0\r\nconnection: close\r\nretry-after: 1\r\n\r\n";

/// Renders `registry` for a request with the `Accept` header `accept`
/// (`None` when it has none) into `buf`, replacing its contents, and
/// returns the `Content-Type` of the response: OpenMetrics when the header
/// prefers it, Prometheus text otherwise (see
/// [`Format::negotiate`](crate::export::Format::negotiate)).
///
/// For programs that already run an HTTP server (axum, hyper, …): keep
/// `buf` between requests to encode without growing it.
///
/// ```
/// use metricz::export::http::render;
/// use metricz::Registry;
///
/// let registry = Registry::new();
/// registry.gauge("temperature_celsius", "Temperature.")?.set(21.5);
///
/// let mut buf = String::new();
/// let content_type = render(&registry, None, &mut buf);
/// assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
/// assert!(buf.contains("temperature_celsius 21.5\n"));
///
/// let content_type = render(&registry, Some("application/openmetrics-text"), &mut buf);
/// assert!(content_type.starts_with("application/openmetrics-text"));
/// assert!(buf.ends_with("# EOF\n"));
/// # Ok::<(), metricz::RegistryError>(())
/// ```
///
/// Encoding into a `String` cannot fail; should an encoder report an
/// error anyway, the body is what was written before it.
pub fn render(registry: &Registry, accept: Option<&str>, buf: &mut String) -> &'static str {
    buf.clear();
    let format = Format::negotiate(accept);
    let _ = registry.encode(format, buf);
    format.content_type()
}

/// The HTTP endpoint; start one with [`Server::builder`].
///
/// ```
/// let server = metricz::export::http::Server::builder(metricz::Registry::new())
///     .bind("127.0.0.1:0".parse()?)
///     .spawn()?;
/// assert!(server.local_addr().ip().is_loopback());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Server {
    _private: (),
}

impl Server {
    /// Settings for a server that exposes `registry` (the server keeps this
    /// handle; clones share the metrics). Defaults: `127.0.0.1:9184`,
    /// `/metrics`, and the limits in the [module docs](self).
    ///
    /// ```
    /// use metricz::export::http::Server;
    /// use std::time::Duration;
    ///
    /// let server = Server::builder(metricz::Registry::new())
    ///     .bind("127.0.0.1:0".parse()?)
    ///     .path("/internal/metrics")
    ///     .max_connections(8)
    ///     .header_read_timeout(Duration::from_secs(2))
    ///     .request_timeout(Duration::from_secs(5))
    ///     .spawn()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(registry: Registry) -> ServerBuilder {
        ServerBuilder {
            registry,
            addr: DEFAULT_ADDR,
            path: DEFAULT_PATH.to_string(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }
}

/// Settings for the HTTP endpoint; from [`Server::builder`], started with
/// [`spawn`](Self::spawn).
///
/// ```
/// let server = metricz::export::http::Server::builder(metricz::Registry::new())
///     .bind("127.0.0.1:0".parse()?)
///     .max_connections(4)
///     .spawn()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ServerBuilder {
    registry: Registry,
    addr: SocketAddr,
    path: String,
    max_connections: usize,
    max_header_bytes: usize,
    header_read_timeout: Duration,
    request_timeout: Duration,
    shutdown_timeout: Duration,
}

impl ServerBuilder {
    /// The address to listen on (default [`DEFAULT_ADDR`], loopback only).
    /// Port 0 picks a free port; [`ServerHandle::local_addr`] tells which.
    /// Listening beyond loopback (`0.0.0.0:9184`) exposes the metrics to
    /// the network: there is no authentication.
    ///
    /// ```
    /// let builder = metricz::export::http::Server::builder(metricz::Registry::new())
    ///     .bind("127.0.0.1:0".parse()?);
    /// # Ok::<(), std::net::AddrParseError>(())
    /// ```
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// The path that serves the metrics (default [`DEFAULT_PATH`]); a
    /// missing leading `/` is added.
    ///
    /// ```
    /// let builder = metricz::export::http::Server::builder(metricz::Registry::new())
    ///     .path("/stats");
    /// ```
    pub fn path(mut self, path: &str) -> Self {
        self.path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        self
    }

    /// Connections served at once (default [`DEFAULT_MAX_CONNECTIONS`], at
    /// least 1); one more is answered `503` and closed at once.
    ///
    /// ```
    /// let builder = metricz::export::http::Server::builder(metricz::Registry::new())
    ///     .max_connections(16);
    /// ```
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Bytes of a request's line and headers (default
    /// [`DEFAULT_MAX_HEADER_BYTES`], at least 256); more is answered `431`.
    ///
    /// ```
    /// let builder = metricz::export::http::Server::builder(metricz::Registry::new())
    ///     .max_header_bytes(4096);
    /// ```
    pub fn max_header_bytes(mut self, max: usize) -> Self {
        self.max_header_bytes = max.max(256);
        self
    }

    /// Time to receive a request's headers, counted from when the server
    /// starts waiting for them (default [`DEFAULT_HEADER_READ_TIMEOUT`]);
    /// it is also how long a kept-alive connection may stay idle.
    /// Zero is raised to 1 ms, more than a year cut to a year.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = metricz::export::http::Server::builder(metricz::Registry::new())
    ///     .header_read_timeout(Duration::from_secs(2));
    /// ```
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout.clamp(Duration::from_millis(1), MAX_TIMEOUT);
        self
    }

    /// Time from a request's first byte until its response has been
    /// written (default [`DEFAULT_REQUEST_TIMEOUT`]). Zero is raised to
    /// 1 ms, more than a year cut to a year.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = metricz::export::http::Server::builder(metricz::Registry::new())
    ///     .request_timeout(Duration::from_secs(5));
    /// ```
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout.clamp(Duration::from_millis(1), MAX_TIMEOUT);
        self
    }

    /// Time that requests in flight get to finish at shutdown before their
    /// connections are closed (default [`DEFAULT_SHUTDOWN_TIMEOUT`]; more
    /// than a year is cut to a year).
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = metricz::export::http::Server::builder(metricz::Registry::new())
    ///     .shutdown_timeout(Duration::from_millis(200));
    /// ```
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout.min(MAX_TIMEOUT);
        self
    }

    /// Binds the address and starts serving on a new thread
    /// (`metricz-http`) with its own single-threaded tokio runtime. The
    /// address is bound before this returns, so a scraper can connect at
    /// once.
    ///
    /// # Errors
    ///
    /// [`ServerError::Bind`] when the address cannot be bound (in use, not
    /// permitted, not local), [`ServerError::Runtime`] and
    /// [`ServerError::Thread`] when the runtime or the thread cannot be
    /// created.
    ///
    /// ```
    /// use metricz::export::http::{Server, ServerError};
    ///
    /// let first = Server::builder(metricz::Registry::new())
    ///     .bind("127.0.0.1:0".parse()?)
    ///     .spawn()?;
    /// let taken = Server::builder(metricz::Registry::new())
    ///     .bind(first.local_addr())
    ///     .spawn();
    /// assert!(matches!(taken, Err(ServerError::Bind { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn(self) -> Result<ServerHandle, ServerError> {
        let bind_error = |source| ServerError::Bind {
            addr: self.addr,
            source,
        };
        let std_listener = std::net::TcpListener::bind(self.addr).map_err(bind_error)?;
        std_listener.set_nonblocking(true).map_err(bind_error)?;
        let local_addr = std_listener.local_addr().map_err(bind_error)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(ServerError::Runtime)?;
        let listener = {
            let _entered = runtime.enter();
            TcpListener::from_std(std_listener).map_err(ServerError::Runtime)?
        };
        let stats = Arc::new(Counts::default());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            registry: self.registry,
            path: self.path,
            max_header_bytes: self.max_header_bytes,
            header_read_timeout: self.header_read_timeout,
            request_timeout: self.request_timeout,
            stats: Arc::clone(&stats),
        });
        let (max_connections, grace) = (self.max_connections, self.shutdown_timeout);
        let thread = thread::Builder::new()
            .name("metricz-http".to_string())
            .spawn(move || {
                runtime.block_on(accept_loop(
                    listener,
                    shared,
                    max_connections,
                    grace,
                    shutdown_rx,
                ));
                // Dropping the runtime closes what is left.
            })
            .map_err(ServerError::Thread)?;
        Ok(ServerHandle {
            local_addr,
            shutdown,
            thread: Some(thread),
            stats,
        })
    }
}

/// A running HTTP endpoint; from [`ServerBuilder::spawn`]. Dropping it shuts
/// the server down like [`shutdown`](Self::shutdown).
///
/// ```
/// let server = metricz::export::http::Server::builder(metricz::Registry::new())
///     .bind("127.0.0.1:0".parse()?)
///     .spawn()?;
/// println!("serving on http://{}/metrics", server.local_addr());
/// drop(server); // stops it
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ServerHandle {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    thread: Option<thread::JoinHandle<()>>,
    stats: Arc<Counts>,
}

impl ServerHandle {
    /// The address the server listens on (with the port chosen when bound
    /// to port 0).
    ///
    /// ```
    /// let server = metricz::export::http::Server::builder(metricz::Registry::new())
    ///     .bind("127.0.0.1:0".parse()?)
    ///     .spawn()?;
    /// assert_ne!(server.local_addr().port(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// What the server has done so far.
    ///
    /// ```
    /// let server = metricz::export::http::Server::builder(metricz::Registry::new())
    ///     .bind("127.0.0.1:0".parse()?)
    ///     .spawn()?;
    /// assert_eq!(server.stats().connections_refused, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> ServerStats {
        let s = &self.stats;
        ServerStats {
            connections_accepted: s.accepted.load(Relaxed),
            connections_refused: s.refused.load(Relaxed),
            scrapes: s.scrapes.load(Relaxed),
            rejected_requests: s.rejected.load(Relaxed),
            timeouts: s.timeouts.load(Relaxed),
            connection_errors: s.errors.load(Relaxed),
        }
    }

    /// Stops the server: no new connections, requests in flight finish
    /// (for up to the [shutdown timeout](ServerBuilder::shutdown_timeout)),
    /// idle connections close; returns when the server thread has ended.
    ///
    /// ```
    /// let server = metricz::export::http::Server::builder(metricz::Registry::new())
    ///     .bind("127.0.0.1:0".parse()?)
    ///     .spawn()?;
    /// let addr = server.local_addr();
    /// server.shutdown();
    /// assert!(std::net::TcpStream::connect(addr).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shutdown.send_replace(true);
        if let Some(thread) = self.thread.take() {
            // A panic of the server thread has nothing left to clean up.
            let _ = thread.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.local_addr)
            .field("running", &self.thread.is_some())
            .field("stats", &self.stats())
            .finish()
    }
}

/// Counts of what a server has done, from [`ServerHandle::stats`].
///
/// ```
/// let server = metricz::export::http::Server::builder(metricz::Registry::new())
///     .bind("127.0.0.1:0".parse()?)
///     .spawn()?;
/// let stats = server.stats();
/// assert_eq!(stats.scrapes, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Connections accepted and served.
    pub connections_accepted: u64,
    /// Connections answered `503` and closed because the server was at its
    /// connection limit.
    pub connections_refused: u64,
    /// Requests answered `200` with the metrics.
    pub scrapes: u64,
    /// Requests answered `404`, `405` or `413`.
    pub rejected_requests: u64,
    /// Connections closed by the header read or the whole-request timeout.
    pub timeouts: u64,
    /// Connections that ended in another error: malformed or oversized
    /// requests, resets, I/O errors.
    pub connection_errors: u64,
}

/// Why the HTTP endpoint could not start.
///
/// ```
/// use metricz::export::http::{Server, ServerError};
///
/// // 192.0.2.1 (TEST-NET-1) is no address of this machine.
/// let err = Server::builder(metricz::Registry::new())
///     .bind("192.0.2.1:9184".parse()?)
///     .spawn()
///     .unwrap_err();
/// assert!(matches!(err, ServerError::Bind { .. }));
/// assert!(err.to_string().starts_with("cannot bind 192.0.2.1:9184"));
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerError {
    /// The address could not be bound.
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's error.
        source: io::Error,
    },
    /// The tokio runtime could not be created.
    Runtime(io::Error),
    /// The server thread could not be started.
    Thread(io::Error),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Bind { addr, source } => write!(f, "cannot bind {addr}: {source}"),
            ServerError::Runtime(e) => write!(f, "cannot start the HTTP server's runtime: {e}"),
            ServerError::Thread(e) => write!(f, "cannot start the HTTP server's thread: {e}"),
        }
    }
}

impl std::error::Error for ServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServerError::Bind { source, .. } => Some(source),
            ServerError::Runtime(e) | ServerError::Thread(e) => Some(e),
        }
    }
}

/// Settings and counters every connection shares.
struct Shared {
    registry: Registry,
    path: String,
    max_header_bytes: usize,
    header_read_timeout: Duration,
    request_timeout: Duration,
    stats: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    accepted: AtomicU64,
    refused: AtomicU64,
    scrapes: AtomicU64,
    rejected: AtomicU64,
    timeouts: AtomicU64,
    errors: AtomicU64,
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    max_connections: usize,
    grace: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let for_connections = shutdown.clone();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            // An error means the handle is gone: stop as well.
            _ = stopped(&mut shutdown) => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        // Out of file descriptors or the like: back off
                        // instead of spinning on the error.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                while connections.try_join_next().is_some() {}
                if connections.len() >= max_connections {
                    shared.stats.refused.fetch_add(1, Relaxed);
                    // Best effort, never waits: the socket buffer of a new
                    // connection has room for these few bytes.
                    let _ = stream.try_write(REFUSAL);
                    continue;
                }
                shared.stats.accepted.fetch_add(1, Relaxed);
                let _ = stream.set_nodelay(true);
                connections.spawn(serve_connection(
                    stream,
                    Arc::clone(&shared),
                    for_connections.clone(),
                ));
            }
        }
    }
    drop(listener);
    let drained = async { while connections.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(grace, drained).await;
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

/// Resolves once shutdown is asked for (or the handle is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn serve_connection(
    stream: TcpStream,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let state = Arc::new(ConnState::default());
    let io = TokioIo::new(Deadline {
        io: stream,
        timeout: shared.request_timeout,
        sleep: Box::pin(tokio::time::sleep(shared.request_timeout)),
        armed: false,
        state: Arc::clone(&state),
    });
    let service = MetricsService {
        shared: Arc::clone(&shared),
        buf: RefCell::new(String::new()),
        state: Arc::clone(&state),
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(shared.header_read_timeout)
        .max_header_size(shared.max_header_bytes)
        .keep_alive(true);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = stopped(&mut shutdown) => {
            // Idle: closes now; mid-request: after the response (the
            // accept loop bounds the wait).
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        let counter = if state.timed_out.load(Relaxed) || e.is_timeout() {
            &shared.stats.timeouts
        } else {
            &shared.stats.errors
        };
        counter.fetch_add(1, Relaxed);
    }
}

/// Shared by a connection's service and its [`Deadline`].
#[derive(Default)]
struct ConnState {
    /// A response has been produced and not yet flushed.
    responded: AtomicBool,
    /// The whole-request deadline closed the connection.
    timed_out: AtomicBool,
}

/// Answers one connection's requests.
struct MetricsService {
    shared: Arc<Shared>,
    /// Encoded into by every scrape of this connection.
    buf: RefCell<String>,
    state: Arc<ConnState>,
}

type Reply = Response<Full<Bytes>>;

impl hyper::service::Service<Request<Incoming>> for MetricsService {
    type Response = Reply;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Reply, Infallible>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let response = self.respond(&request);
        let stats = &self.shared.stats;
        if response.status() == StatusCode::OK {
            stats.scrapes.fetch_add(1, Relaxed);
        } else {
            stats.rejected.fetch_add(1, Relaxed);
        }
        self.state.responded.store(true, Relaxed);
        std::future::ready(Ok(response))
    }
}

impl MetricsService {
    fn respond(&self, request: &Request<Incoming>) -> Reply {
        if request.uri().path() != self.shared.path {
            return plain(StatusCode::NOT_FOUND, "not found\n");
        }
        if request.method() != Method::GET && request.method() != Method::HEAD {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        if !request.body().is_end_stream() {
            // The body is never read: close instead of draining it.
            let mut response = plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request bodies are not accepted\n",
            );
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            return response;
        }
        let mut accept_joined = String::new();
        let mut values = request.headers().get_all(ACCEPT).iter();
        let accept = match (values.next(), values.next()) {
            (None, _) => None,
            (Some(one), None) => one.to_str().ok(),
            (Some(first), Some(second)) => {
                // Several `Accept` lines mean one comma-separated list.
                for value in [first, second].into_iter().chain(values) {
                    if let Ok(value) = value.to_str() {
                        if !accept_joined.is_empty() {
                            accept_joined.push(',');
                        }
                        accept_joined.push_str(value);
                    }
                }
                Some(accept_joined.as_str())
            }
        };
        let mut buf = self.buf.borrow_mut();
        let content_type = render(&self.shared.registry, accept, &mut buf);
        let mut response = Response::new(Full::new(Bytes::copy_from_slice(buf.as_bytes())));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    }
}

fn plain(status: StatusCode, body: &'static str) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A TCP stream with the whole-request deadline: armed by a request's
/// first byte read (or by a write, for pipelined requests), disarmed once
/// the response has been flushed to the kernel; while armed, any read,
/// write or flush that waits past it fails with `TimedOut`, which makes
/// hyper close the connection.
struct Deadline {
    io: TcpStream,
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
    armed: bool,
    state: Arc<ConnState>,
}

impl Deadline {
    fn arm(&mut self) {
        if !self.armed {
            self.armed = true;
            self.sleep.as_mut().reset(Instant::now() + self.timeout);
        }
    }

    /// Called when the stream would wait: `Some(error)` once the deadline
    /// has passed (and registers the deadline's wake-up otherwise).
    fn expired(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        if self.armed && self.sleep.as_mut().poll(cx).is_ready() {
            self.state.timed_out.store(true, Relaxed);
            return Some(io::Error::new(
                io::ErrorKind::TimedOut,
                "request timeout exceeded",
            ));
        }
        None
    }

    fn pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match self.expired(cx) {
            Some(e) => Poll::Ready(Err(e)),
            None => Poll::Pending,
        }
    }
}

impl AsyncRead for Deadline {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.arm();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.pending(cx),
        }
    }
}

impl AsyncWrite for Deadline {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.arm();
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Pending => this.pending(cx),
            ready => ready,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.arm();
        match Pin::new(&mut this.io).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.pending(cx),
            ready => ready,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                // hyper flushes after writing a response it has fully
                // buffered: the request is done.
                if this.state.responded.swap(false, Relaxed) {
                    this.armed = false;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.pending(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_shutdown(cx) {
            Poll::Pending => this.pending(cx),
            ready => ready,
        }
    }
}
