//! The accept loop: the connection limit (a connection beyond it is
//! refused at once with a `503`, nothing queues), the counts of accepted
//! and refused connections, and the drain at shutdown.

use super::connection::serve_connection;
use super::state::{stopped, Shared};
use crate::primitive::std_only::Arc;
use crate::primitive::Ordering::Relaxed;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// What a connection beyond the limit is told before it is closed.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-length: 0\r\nconnection: close\r\nretry-after: 1\r\n\r\n";

/// Accepts connections until shutdown: serves each on its own task up to
/// `max_connections` at once, refuses the ones beyond with a `503`; at
/// shutdown, gives the connections still open `grace` to finish, then
/// closes them.
pub(crate) async fn accept_loop(
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
                    // connection has room for these few bytes. Not over
                    // TLS, where they would be no answer: closed at once.
                    if !shared.is_tls() {
                        let _ = stream.try_write(REFUSAL);
                    }
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
