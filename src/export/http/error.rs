//! [`ServerError`]: why the HTTP endpoint could not start.

use std::fmt;
use std::io;
use std::net::SocketAddr;

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
