//! The whole-request deadline: [`Deadline`], an I/O wrapper around a
//! connection's TCP stream, and [`ConnState`], which it shares with the
//! connection's service.
//!
//! # Why a wrapper, and what it assumes of hyper
//!
//! The deadline runs from a request's first byte until its response has
//! been handed to the kernel, so it cuts off a client that sends its
//! headers slowly (slowloris) and one that reads its response slowly or
//! never, while a kept-alive connection may stay idle between requests
//! (the header read timeout bounds that). Neither hyper nor tokio has such
//! a timeout:
//!
//! - hyper's `http1::Builder::header_read_timeout` starts when hyper begins
//!   waiting for a request, idle time included, and ends when the headers
//!   are in: it does not cover the response, and cannot bound a request's
//!   headers apart from the idle time before them;
//! - a `tokio::time::timeout` around `serve_connection` bounds the whole
//!   connection, kept-alive requests and idle time together;
//! - hyper's service sees a request only once its headers are in, and
//!   never learns when its response has left.
//!
//! So the wrapper watches the stream itself. It is armed by the first
//! byte a read returns (a request has begun) or by a write (for pipelined
//! requests, whose bytes were read with an earlier one); it is disarmed by
//! the first successful `poll_flush` after the service has produced a
//! response ([`ConnState::mark_responded`]). That last step relies on how
//! hyper 1 writes a response, which hyper does not document:
//!
//! 1. the response body is one [`Full`](http_body_util::Full) chunk,
//!    which hyper queues with the head in its write buffer in the same
//!    poll that took the response from the service, and
//! 2. hyper calls the stream's `poll_flush` only once that whole buffer
//!    has been written (`Buffered::poll_flush` in `hyper::proto::h1::io`:
//!    write until empty, then flush), and does call it then.
//!
//! Should a hyper upgrade flush after a response is produced and before
//! its last byte is written, the deadline would end early (a write re-arms
//! it, so a client that never reads is still cut off, but one that reads
//! slowly would get a fresh deadline per flush); should it stop flushing
//! after a response, the deadline would stay armed into the idle time and
//! cut off a kept-alive connection. The tests in `tests.rs` of this module
//! pin this: `hyper_flushes_once_after_the_whole_response` runs the
//! server's hyper settings and service over an in-memory stream that
//! records hyper's writes and flushes, and fails on either change; over
//! loopback, `a_client_that_never_reads_is_closed_by_the_deadline` and
//! `a_large_response_read_in_time_arrives_whole_and_ends_the_deadline`
//! check the behaviour end to end, as do `tests/http.rs`'s slowloris,
//! never-reading and idle keep-alive tests.
//!
//! Over TLS the wrapper sits above the TLS stream (hyper → `Deadline` →
//! TLS → TCP): it counts plaintext bytes, and tokio-rustls's `poll_flush`
//! returns ready only once the TLS records of everything written have
//! been written to the TCP socket, so "flushed" still means "handed to the
//! kernel". The TLS tests in `tests/http_tls.rs` run the slowloris and
//! never-reading clients over TLS.
//!
//! While armed, any read, write or flush that would wait past the deadline
//! fails with `TimedOut` instead, which makes hyper close the connection;
//! [`ConnState::timed_out`] then tells the connection to count a timeout.

use crate::primitive::std_only::{Arc, AtomicBool};
use crate::primitive::Ordering::Relaxed;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Shared by a connection's service and its [`Deadline`].
#[derive(Default)]
pub(crate) struct ConnState {
    /// A response has been produced and not yet flushed.
    responded: AtomicBool,
    /// The whole-request deadline closed the connection.
    timed_out: AtomicBool,
}

impl ConnState {
    /// The service has produced a response: the next successful flush
    /// ends the request.
    pub(crate) fn mark_responded(&self) {
        self.responded.store(true, Relaxed);
    }

    /// Whether a response has been produced since the last flush that
    /// ended a request (tests read it where no [`Deadline`] resets it).
    #[cfg(test)]
    pub(crate) fn responded(&self) -> bool {
        self.responded.load(Relaxed)
    }

    /// Whether the whole-request deadline closed the connection.
    pub(crate) fn timed_out(&self) -> bool {
        self.timed_out.load(Relaxed)
    }
}

/// A stream (TCP, or TLS over TCP) with the whole-request deadline (see the [module
/// docs](self)): armed by a request's first byte read (or by a write, for
/// pipelined requests), disarmed once the response has been flushed to
/// the kernel; while armed, any read, write or flush that waits past it
/// fails with `TimedOut`, which makes hyper close the connection.
pub(crate) struct Deadline<S> {
    io: S,
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
    armed: bool,
    state: Arc<ConnState>,
}

impl<S> Deadline<S> {
    /// `io` with a deadline of `timeout` a request, disarmed; `state` is
    /// shared with the connection's service.
    pub(crate) fn new(io: S, timeout: Duration, state: Arc<ConnState>) -> Self {
        Deadline {
            io,
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
            armed: false,
            state,
        }
    }

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

impl<S: AsyncRead + Unpin> AsyncRead for Deadline<S> {
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

impl<S: AsyncWrite + Unpin> AsyncWrite for Deadline<S> {
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
                // hyper flushes once it has written the whole response
                // it buffered: the request is done (see the module docs
                // for this assumption and the tests that pin it).
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
