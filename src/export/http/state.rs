//! What every connection of a server shares: its settings, its counts,
//! and the shutdown signal.

use super::auth::Authenticator;
use crate::primitive::std_only::{Arc, AtomicU64};
use crate::Registry;
use std::time::Duration;
use tokio::sync::watch;

/// Settings and counters every connection shares.
pub(crate) struct Shared {
    pub(crate) registry: Registry,
    pub(crate) path: String,
    pub(crate) max_header_bytes: usize,
    pub(crate) header_read_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) stats: Arc<Counts>,
    /// Checks every request's credentials before it is routed.
    pub(crate) auth: Authenticator,
    /// Set when the endpoint serves over TLS.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Shared {
    /// Whether connections speak TLS.
    pub(crate) fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }
}

/// What the server has done; read by [`ServerStats`](super::ServerStats).
#[derive(Default)]
pub(crate) struct Counts {
    pub(crate) accepted: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) scrapes: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) unauthorized: AtomicU64,
    pub(crate) handshake_failures: AtomicU64,
}

/// Resolves once shutdown is asked for (or the handle is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
