//! One connection: over TLS, the handshake first (within the header read
//! timeout); then hyper's HTTP/1 server over the [`Deadline`] stream, with
//! hyper's own header read timeout and header size limit, closed
//! gracefully at shutdown, and counted as a timeout or an error when it
//! ends in one.

use super::deadline::{ConnState, Deadline};
use super::service::MetricsService;
use super::state::{stopped, Shared};
use crate::primitive::std_only::Arc;
use crate::primitive::Ordering::Relaxed;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// hyper's HTTP/1 settings for a connection of the server `shared`: its
/// header read timeout (on tokio's timer) and header size limit, with
/// keep-alive.
pub(crate) fn http1_builder(shared: &Shared) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(shared.header_read_timeout)
        .max_header_size(shared.max_header_bytes)
        .keep_alive(true);
    builder
}

/// Serves one accepted connection until it closes, times out, fails or
/// shutdown closes it, and counts how it ended. Over TLS the handshake
/// comes first, and must be done within the header read timeout: a client
/// that stalls in it holds its connection slot that long, no longer.
pub(crate) async fn serve_connection(
    stream: TcpStream,
    shared: Arc<Shared>,
    #[cfg_attr(not(feature = "tls"), allow(unused_mut))] mut shutdown: watch::Receiver<bool>,
) {
    #[cfg(feature = "tls")]
    if let Some(acceptor) = shared.tls.clone() {
        let handshake = tokio::time::timeout(shared.header_read_timeout, acceptor.accept(stream));
        let stream = tokio::select! {
            handshake = handshake => match handshake {
                Ok(Ok(stream)) => stream,
                Ok(Err(_)) => {
                    shared.stats.handshake_failures.fetch_add(1, Relaxed);
                    return;
                }
                Err(_) => {
                    shared.stats.timeouts.fetch_add(1, Relaxed);
                    return;
                }
            },
            _ = stopped(&mut shutdown) => return,
        };
        return serve(stream, shared, shutdown).await;
    }
    serve(stream, shared, shutdown).await;
}

/// hyper over `stream` (plain TCP or TLS) until the connection ends.
async fn serve<S>(stream: S, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let state = Arc::new(ConnState::default());
    let io = TokioIo::new(Deadline::new(
        stream,
        shared.request_timeout,
        Arc::clone(&state),
    ));
    let service = MetricsService::new(Arc::clone(&shared), Arc::clone(&state));
    let connection = http1_builder(&shared).serve_connection(io, service);
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
        let counter = if state.timed_out() || e.is_timeout() {
            &shared.stats.timeouts
        } else {
            &shared.stats.errors
        };
        counter.fetch_add(1, Relaxed);
    }
}
