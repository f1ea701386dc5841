//! A running endpoint: [`ServerHandle`] (its address, its counts as
//! [`ServerStats`], and shutdown).

use super::state::Counts;
use crate::primitive::std_only::Arc;
use crate::primitive::Ordering::Relaxed;
use std::fmt;
use std::net::SocketAddr;
use std::thread;
use tokio::sync::watch;

/// A running HTTP endpoint; from
/// [`ServerBuilder::spawn`](super::ServerBuilder::spawn). Dropping it shuts
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
    /// The handle of the server thread `thread`, listening on
    /// `local_addr`, stopped through `shutdown`, counting into `stats`.
    pub(crate) fn new(
        local_addr: SocketAddr,
        shutdown: watch::Sender<bool>,
        thread: thread::JoinHandle<()>,
        stats: Arc<Counts>,
    ) -> Self {
        ServerHandle {
            local_addr,
            shutdown,
            thread: Some(thread),
            stats,
        }
    }

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
            unauthorized: s.unauthorized.load(Relaxed),
            tls_handshake_failures: s.handshake_failures.load(Relaxed),
        }
    }

    /// Stops the server: no new connections, requests in flight finish
    /// (for up to the [shutdown timeout](super::ServerBuilder::shutdown_timeout)),
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
    /// Requests answered `404`, `405` or `413`, or `503` because too many
    /// were waiting for a password check.
    pub rejected_requests: u64,
    /// Connections closed by the header read or the whole-request timeout
    /// (or, over TLS, a handshake not done within the header read timeout).
    pub timeouts: u64,
    /// Connections that ended in another error: malformed or oversized
    /// requests, resets, I/O errors.
    pub connection_errors: u64,
    /// Requests answered `401` for missing or wrong credentials (see
    /// [`WebConfig`](super::WebConfig)); none of them reached the encoder.
    pub unauthorized: u64,
    /// TLS connections whose handshake failed: no common version or
    /// cipher, not TLS at all, or a client certificate missing where one is
    /// required or not verifying against the client CA.
    pub tls_handshake_failures: u64,
}
