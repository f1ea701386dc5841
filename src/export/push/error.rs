//! [`PushError`]: why a push, or a pusher's start, failed.

use crate::registry::RegistryError;
use std::fmt;
use std::io;

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
    /// A label the pusher adds to every series (remote write's external
    /// labels) has an invalid or reserved name
    /// ([`InvalidLabelName`](RegistryError::InvalidLabelName) or
    /// [`ReservedLabelName`](RegistryError::ReservedLabelName)).
    InvalidLabel(RegistryError),
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
            PushError::InvalidLabel(e) => write!(f, "invalid external label: {e}"),
            PushError::Spawn(e) => write!(f, "starting the pusher thread failed: {e}"),
        }
    }
}

impl std::error::Error for PushError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PushError::Io { source, .. } => Some(source),
            PushError::Registry(e) | PushError::InvalidLabel(e) => Some(e),
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
