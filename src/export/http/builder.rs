//! Starting the endpoint: [`Server::builder`], the settings of
//! [`ServerBuilder`] with their defaults and bounds, and
//! [`ServerBuilder::spawn`], which binds and starts the server thread.

use super::accept::accept_loop;
use super::auth::Authenticator;
use super::error::ServerError;
use super::handle::ServerHandle;
use super::state::{Counts, Shared};
use super::web_config::WebConfig;
use crate::primitive::std_only::Arc;
use crate::Registry;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::thread;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

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
    /// `/metrics`, and the limits in the [module docs](super).
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
            web_config: WebConfig::new(),
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
    web_config: WebConfig,
}

impl ServerBuilder {
    /// The address to listen on (default [`DEFAULT_ADDR`], loopback only).
    /// Port 0 picks a free port; [`ServerHandle::local_addr`] tells which.
    /// Listening beyond loopback (`0.0.0.0:9184`) exposes the metrics to
    /// anyone who can reach the port, unless a [`web_config`](Self::web_config)
    /// asks for credentials (and, so that they cannot be read off the wire,
    /// TLS).
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

    /// TLS and authentication (default: neither), built in code or read
    /// from a file in the exporter toolkit's format; see [`WebConfig`].
    /// Everything in it was checked when it was built, so it cannot make
    /// [`spawn`](Self::spawn) fail.
    ///
    /// ```
    /// use metricz::export::http::{Server, WebConfig};
    ///
    /// let config = WebConfig::new().bearer_token("c2VjcmV0LXRva2Vu")?;
    /// let server = Server::builder(metricz::Registry::new())
    ///     .bind("127.0.0.1:0".parse()?)
    ///     .web_config(config)
    ///     .spawn()?;
    /// // Without the token: 401.
    /// use std::io::{Read, Write};
    /// let mut stream = std::net::TcpStream::connect(server.local_addr())?;
    /// stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    /// let mut response = String::new();
    /// stream.read_to_string(&mut response)?;
    /// assert!(response.starts_with("HTTP/1.1 401 Unauthorized\r\n"));
    /// assert!(response.contains("www-authenticate: Bearer realm=\"metricz\"\r\n"));
    /// assert_eq!(server.stats().unauthorized, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn web_config(mut self, config: WebConfig) -> Self {
        self.web_config = config;
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
        let (users, tokens) = self.web_config.credentials();
        #[cfg(feature = "tls")]
        let tls = self
            .web_config
            .tls_config()
            .map(|tls| tokio_rustls::TlsAcceptor::from(tls.server_config()));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            registry: self.registry,
            path: self.path,
            max_header_bytes: self.max_header_bytes,
            header_read_timeout: self.header_read_timeout,
            request_timeout: self.request_timeout,
            stats: Arc::clone(&stats),
            auth: Authenticator::new(users, tokens),
            #[cfg(feature = "tls")]
            tls,
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
                // Closes what is left; a bcrypt verification still running
                // on the blocking pool (see `auth`) is not waited for.
                runtime.shutdown_timeout(Duration::ZERO);
            })
            .map_err(ServerError::Thread)?;
        Ok(ServerHandle::new(local_addr, shutdown, thread, stats))
    }
}
