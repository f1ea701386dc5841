//! Tests that pin what the [`Deadline`](super::deadline::Deadline) assumes
//! of hyper (see the `deadline` module docs).
//!
//! - [`hyper_flushes_once_after_the_whole_response`] runs the server's
//!   connection setup and service over an in-memory stream that records
//!   hyper's calls: it fails should a hyper upgrade flush the stream
//!   between a response's production and its last byte (the deadline
//!   would end early) or not flush after it (the deadline would stay armed
//!   into the idle time).
//! - The others check the same end to end over loopback with a response
//!   larger than the socket buffers, so that hyper's writes wait for the
//!   client: a client that never reads is closed; a slow client that reads
//!   in time gets the whole response, and its kept-alive connection then
//!   outlives the deadline while idle.
//!
//! Waits are bounded polls; the only time a test depends on is that a
//! client reading as fast as it can gets 16 MiB over loopback within
//! [`GENEROUS`].

use super::auth::Authenticator;
use super::builder::Server;
use super::connection::http1_builder;
use super::deadline::ConnState;
use super::handle::ServerHandle;
use super::service::MetricsService;
use super::state::{Counts, Shared};
use crate::primitive::std_only::Arc;
use crate::Registry;
use hyper_util::rt::TokioIo;
use std::cell::RefCell;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Guards against a hung server.
const HANG: Duration = Duration::from_secs(60);

/// A whole-request deadline that a client reading at once meets with a
/// wide margin, even on a loaded machine and in a debug build.
const GENEROUS: Duration = Duration::from_secs(8);

/// About 16 MiB of Prometheus text: more than loopback's socket buffers
/// (a few MiB each way) hold.
fn big_registry() -> Registry {
    let reg = Registry::new();
    let big = reg.gauge_vec("big", "Big.", &["id"]).unwrap();
    let pad = "x".repeat(1600);
    for i in 0..10_000 {
        big.with(&[&format!("{i}{pad}")]).unwrap().set(1.0);
    }
    reg
}

fn spawn(reg: &Registry, request_timeout: Duration) -> ServerHandle {
    Server::builder(reg.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .header_read_timeout(Duration::from_secs(3600))
        .request_timeout(request_timeout)
        .spawn()
        .unwrap()
}

fn connect(server: &ServerHandle) -> TcpStream {
    let stream = TcpStream::connect(server.local_addr()).unwrap();
    stream.set_read_timeout(Some(HANG)).unwrap();
    stream.set_write_timeout(Some(HANG)).unwrap();
    stream
}

const REQUEST: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n";

/// Reads one response's head; returns its status and `Content-Length`.
fn read_head(reader: &mut impl BufRead) -> (u16, usize) {
    let mut line = String::new();
    let read = reader.read_line(&mut line);
    assert!(
        matches!(read, Ok(n) if n > 0),
        "the connection closed before a response ({read:?})"
    );
    let status = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut length = None;
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.trim().parse().unwrap());
            }
        }
    }
    (status, length.expect("a Content-Length"))
}

/// Reads `len` body bytes in 64 KiB reads, pausing now and then so the
/// server's writes find the socket buffers full and wait.
fn read_body_slowly(reader: &mut impl Read, len: usize) -> Vec<u8> {
    let mut body = vec![0; len];
    let mut at = 0;
    for i in 0.. {
        if at == len {
            break;
        }
        let end = (at + (64 << 10)).min(len);
        let n = reader.read(&mut body[at..end]).unwrap();
        assert_ne!(n, 0, "connection closed after {at} of {len} bytes");
        at += n;
        if i % 32 == 31 {
            thread::sleep(Duration::from_millis(2));
        }
    }
    body
}

/// Polls `done` every 10 ms for at most `within`.
fn eventually(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < within, "gave up waiting for: {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_client_that_never_reads_is_closed_by_the_deadline() {
    let reg = big_registry();
    let mut expected = String::new();
    reg.encode_prometheus(&mut expected).unwrap();
    let timeout = Duration::from_millis(300);
    let server = spawn(&reg, timeout);
    let mut stream = connect(&server);
    stream.write_all(REQUEST).unwrap();

    // The deadline fires while hyper's write of the response waits: it
    // was not disarmed by a flush before the whole response was written.
    eventually("the deadline closed the connection", timeout + HANG, || {
        server.stats().timeouts == 1
    });
    // Closed indeed: what the client now reads ends before the body does.
    let mut received = Vec::new();
    match stream.read_to_end(&mut received) {
        Ok(_) => {}
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e:?}"),
    }
    assert!(
        received.len() < expected.len(),
        "{} bytes of a {}-byte body",
        received.len(),
        expected.len()
    );
    let stats = server.stats();
    assert_eq!((stats.scrapes, stats.timeouts), (1, 1), "{stats:?}");
}

#[test]
fn a_large_response_read_in_time_arrives_whole_and_ends_the_deadline() {
    let reg = big_registry();
    let mut expected = String::new();
    reg.encode_prometheus(&mut expected).unwrap();
    let server = spawn(&reg, GENEROUS);
    let stream = connect(&server);
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::with_capacity(64 << 10, stream);

    // A request, read slowly but completely within the deadline.
    let started = Instant::now();
    writer.write_all(REQUEST).unwrap();
    let (status, len) = read_head(&mut reader);
    assert_eq!((status, len), (200, expected.len()));
    let body = read_body_slowly(&mut reader, len);
    assert!(body == expected.as_bytes(), "the body differs");
    assert!(
        started.elapsed() < GENEROUS,
        "the transfer itself took {:?}: the test cannot tell a deadline \
         left armed from one that ended",
        started.elapsed()
    );

    // Idle until well past the first request's deadline: had hyper not
    // flushed after the response, the deadline would still be armed and
    // close the connection now.
    thread::sleep(GENEROUS.saturating_sub(started.elapsed()) + Duration::from_millis(500));
    assert_eq!(server.stats().timeouts, 0, "{:?}", server.stats());

    // The same connection serves the next request, whole.
    writer.write_all(REQUEST).unwrap();
    let (status, len) = read_head(&mut reader);
    assert_eq!((status, len), (200, expected.len()));
    let body = read_body_slowly(&mut reader, len);
    assert!(body == expected.as_bytes(), "the second body differs");
    let stats = server.stats();
    assert_eq!(
        (stats.connections_accepted, stats.scrapes, stats.timeouts),
        (1, 2, 0),
        "{stats:?}"
    );
}

/// What hyper did to a [`Recording`] stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    /// A write that took this many bytes.
    Write(usize),
    /// A flush; `responded`: after the service produced a response.
    Flush { responded: bool },
}

/// An in-memory stream: reads give one request, then wait until the whole
/// response has been written and flushed, then end; writes take at most
/// 8 KiB (of the first non-empty slice of a vectored write) and every
/// other one waits (and wakes at once), as a socket with little room
/// would. Records every write and flush.
struct Recording {
    request: &'static [u8],
    state: Arc<ConnState>,
    calls: Rc<RefCell<Vec<Call>>>,
    written: Vec<u8>,
    stall: bool,
    reader: Option<Waker>,
    done: bool,
}

impl Recording {
    /// The length of the whole response, once its head has been written.
    fn response_len(&self) -> Option<usize> {
        let text = std::str::from_utf8(&self.written).ok()?;
        let head = text.find("\r\n\r\n")? + 4;
        let length = text[..head].lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })?;
        Some(head + length)
    }
}

impl AsyncRead for Recording {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.request.is_empty() {
            let n = this.request.len().min(buf.remaining());
            buf.put_slice(&this.request[..n]);
            this.request = &this.request[n..];
            return Poll::Ready(Ok(()));
        }
        if this.done {
            return Poll::Ready(Ok(())); // the client goes away
        }
        this.reader = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl AsyncWrite for Recording {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.stall = !this.stall;
        if this.stall {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let n = buf.len().min(8 << 10);
        this.written.extend_from_slice(&buf[..n]);
        this.calls.borrow_mut().push(Call::Write(n));
        Poll::Ready(Ok(n))
    }

    /// Vectored, as a `TcpStream` is: hyper then queues a body chunk
    /// behind the head instead of copying it.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &b[..]);
        self.poll_write(cx, first)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let responded = this.state.responded();
        this.calls.borrow_mut().push(Call::Flush { responded });
        if responded && this.response_len() == Some(this.written.len()) {
            this.done = true;
            if let Some(reader) = this.reader.take() {
                reader.wake();
            }
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[test]
fn hyper_flushes_once_after_the_whole_response() {
    // About 1 MiB of exposition: many writes of 8 KiB.
    let reg = Registry::new();
    let big = reg.gauge_vec("big", "Big.", &["id"]).unwrap();
    let pad = "x".repeat(1000);
    for i in 0..1000 {
        big.with(&[&format!("{i}{pad}")]).unwrap().set(1.0);
    }
    let mut expected = String::new();
    reg.encode_prometheus(&mut expected).unwrap();

    let shared = Arc::new(Shared {
        registry: reg,
        path: "/metrics".to_string(),
        max_header_bytes: 8192,
        header_read_timeout: Duration::from_secs(3600),
        request_timeout: Duration::from_secs(3600),
        stats: Arc::new(Counts::default()),
        auth: Authenticator::new(Default::default(), Vec::new()),
        #[cfg(feature = "tls")]
        tls: None,
    });
    let state = Arc::new(ConnState::default());
    let calls = Rc::new(RefCell::new(Vec::new()));
    let io = Recording {
        request: REQUEST,
        state: Arc::clone(&state),
        calls: Rc::clone(&calls),
        written: Vec::new(),
        stall: false,
        reader: None,
        done: false,
    };
    let service = MetricsService::new(Arc::clone(&shared), state);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let connection = http1_builder(&shared).serve_connection(TokioIo::new(io), service);
    let served = runtime.block_on(async { tokio::time::timeout(HANG, connection).await });
    let calls = calls.borrow();
    let writes: usize = calls
        .iter()
        .map(|c| match c {
            Call::Write(n) => *n,
            Call::Flush { .. } => 0,
        })
        .sum();
    assert!(
        matches!(served, Ok(Ok(()))),
        "hyper did not flush after writing the whole response \
         ({writes} bytes written; {served:?}): {calls:?}"
    );
    assert!(writes > expected.len(), "{writes} bytes written");
    let last_write = calls
        .iter()
        .rposition(|c| matches!(c, Call::Write(_)))
        .unwrap();
    let early = calls[..last_write]
        .iter()
        .position(|c| *c == Call::Flush { responded: true });
    assert_eq!(
        early, None,
        "hyper flushed after the response was produced and before its last \
         byte was written: {calls:?}"
    );
    assert!(
        calls[last_write..].contains(&Call::Flush { responded: true }),
        "{calls:?}"
    );
    assert!(calls.len() > 100, "too few writes to tell: {}", calls.len());
}
