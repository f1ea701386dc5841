//! The `/metrics` endpoint over raw TCP: hand-written HTTP/1.1 requests,
//! content negotiation, rejections, limits, malformed and hostile clients,
//! shutdown. No assertion depends on timing; socket read timeouts only turn
//! a hung server into a failure instead of a hung test.
#![cfg(feature = "http")]

mod support;
use metricz::export::http::{render, Server, ServerBuilder, ServerError, ServerHandle};
use metricz::Registry;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;
use support::sample_registry;

/// Guards against a hung server: far above anything a passing run needs.
const HANG: Duration = Duration::from_secs(30);

/// The `Accept` header Prometheus 2.42 sends.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,\
application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("body is UTF-8")
    }
}

/// Reads one response: status line, headers, and a `Content-Length` body
/// (to EOF without one). `Ok(None)`: the server closed without answering.
fn read_reply(reader: &mut impl BufRead, head_only: bool) -> io::Result<Option<Reply>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    assert_eq!(parts.next(), Some("HTTP/1.1"), "status line {line:?}");
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let trimmed = line.trim_end_matches(['\r', '\n']);
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed
            .split_once(':')
            .unwrap_or_else(|| panic!("header line {trimmed:?}"));
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let mut reply = Reply {
        status,
        headers,
        body: Vec::new(),
    };
    if head_only {
        return Ok(Some(reply));
    }
    match reply.header("content-length") {
        Some(len) => {
            let len: usize = len.parse().expect("numeric content-length");
            reply.body.resize(len, 0);
            reader.read_exact(&mut reply.body)?;
        }
        None => {
            reader.read_to_end(&mut reply.body)?;
        }
    }
    Ok(Some(reply))
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to the server");
    stream.set_read_timeout(Some(HANG)).unwrap();
    stream.set_write_timeout(Some(HANG)).unwrap();
    stream
}

/// Sends `raw` on a new connection and reads one response.
fn exchange(addr: SocketAddr, raw: &[u8]) -> io::Result<Option<Reply>> {
    let mut stream = connect(addr);
    stream.write_all(raw)?;
    read_reply(&mut BufReader::new(stream), false)
}

fn get(addr: SocketAddr, path: &str, accept: Option<&str>) -> Reply {
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    let raw = format!("GET {path} HTTP/1.1\r\nHost: test\r\n{accept}Connection: close\r\n\r\n");
    exchange(addr, raw.as_bytes())
        .expect("request failed")
        .expect("server closed without a response")
}

fn spawn(registry: &Registry, tweak: impl FnOnce(ServerBuilder) -> ServerBuilder) -> ServerHandle {
    let builder = Server::builder(registry.clone()).bind("127.0.0.1:0".parse().unwrap());
    tweak(builder).spawn().expect("server starts")
}

/// Waits (bounded) until `done` holds, checking every 10 ms.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..3000 {
        if done() {
            return;
        }
        thread::sleep(Duration::from_millis(10));
    }
    panic!("gave up waiting for: {what}");
}

/// Runs `f` on a thread and fails if it has not returned within [`HANG`].
fn finishes<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(HANG)
        .unwrap_or_else(|_| panic!("{what} did not return (hung or panicked)"))
}

#[test]
fn get_metrics_is_the_prometheus_exposition() {
    let reg = sample_registry();
    let server = spawn(&reg, |b| b);
    let reply = get(server.local_addr(), "/metrics", None);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some(TEXT));
    let mut expected = String::new();
    reg.encode_prometheus(&mut expected).unwrap();
    assert_eq!(reply.text(), expected);
    assert_eq!(
        reply.header("content-length"),
        Some(expected.len().to_string().as_str())
    );
    assert!(reply.text().contains("jobs_total 7\n"), "{}", reply.text());

    // A query string does not change the path.
    let reply = get(server.local_addr(), "/metrics?debug=1", Some("text/plain"));
    assert_eq!(
        (reply.status, reply.header("content-type")),
        (200, Some(TEXT))
    );
    assert_eq!(reply.text(), expected);
}

#[test]
fn prometheus_accept_header_gets_openmetrics() {
    let reg = sample_registry();
    let server = spawn(&reg, |b| b);
    let reply = get(server.local_addr(), "/metrics", Some(PROMETHEUS_ACCEPT));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some(OPENMETRICS));
    assert!(reply.text().ends_with("# EOF\n"), "{}", reply.text());
    let mut expected = String::new();
    reg.encode_openmetrics(&mut expected).unwrap();
    assert_eq!(reply.text(), expected);

    // Two Accept lines are one list.
    let raw = "GET /metrics HTTP/1.1\r\nHost: t\r\nAccept: text/plain;q=0.5\r\n\
               Accept: application/openmetrics-text\r\nConnection: close\r\n\r\n";
    let reply = exchange(server.local_addr(), raw.as_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(reply.header("content-type"), Some(OPENMETRICS));
    assert!(reply.text().ends_with("# EOF\n"));
}

#[test]
fn render_replaces_the_buffer_and_names_the_format() {
    let reg = sample_registry();
    let mut expected = String::new();
    reg.encode_prometheus(&mut expected).unwrap();

    let mut buf = b"stale contents".to_vec();
    assert_eq!(render(&reg, None, &mut buf), TEXT);
    assert_eq!(buf, expected.as_bytes());
    assert_eq!(render(&reg, Some("text/plain"), &mut buf), TEXT);
    assert_eq!(buf, expected.as_bytes());
    assert_eq!(render(&reg, Some(PROMETHEUS_ACCEPT), &mut buf), OPENMETRICS);
    assert!(buf.ends_with(b"# EOF\n"));
    let mut protobuf = Vec::new();
    reg.encode_protobuf(&mut protobuf);
    let accept = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;\
                  encoding=delimited;q=0.8,text/plain;q=0.5";
    assert_eq!(
        render(&reg, Some(accept), &mut buf),
        metricz::export::protobuf::CONTENT_TYPE
    );
    assert_eq!(buf, protobuf);
}

#[test]
fn other_paths_404_other_methods_405_bodies_413() {
    let reg = sample_registry();
    let server = spawn(&reg, |b| b);
    let addr = server.local_addr();
    for path in ["/", "/metric", "/metrics/", "/metricsx", "/other"] {
        assert_eq!(get(addr, path, None).status, 404, "GET {path}");
    }
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let raw = format!("{method} /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let reply = exchange(addr, raw.as_bytes()).unwrap().unwrap();
        assert_eq!(reply.status, 405, "{method}");
        assert_eq!(reply.header("allow"), Some("GET, HEAD"));
    }
    // A POST with a body is still a 405, then the connection closes.
    let raw = "POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc";
    assert_eq!(exchange(addr, raw.as_bytes()).unwrap().unwrap().status, 405);

    // HEAD: the headers of a GET, no body.
    let mut stream = connect(addr);
    stream
        .write_all(b"HEAD /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(stream);
    let reply = read_reply(&mut reader, true).unwrap().unwrap();
    assert_eq!(
        (reply.status, reply.header("content-type")),
        (200, Some(TEXT))
    );
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "HEAD answered with a body");

    // GET with a body, by length or chunked: 413, and the connection closes
    // (the body is never read, so it cannot be mistaken for a request).
    for raw in [
        "GET /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 27\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    ] {
        let mut stream = connect(addr);
        stream.write_all(raw.as_bytes()).unwrap();
        let mut reader = BufReader::new(stream);
        let reply = read_reply(&mut reader, false).unwrap().unwrap();
        assert_eq!(reply.status, 413, "{raw:?}");
        assert_eq!(reply.header("connection"), Some("close"));
        let mut rest = Vec::new();
        let _ = reader.read_to_end(&mut rest);
        assert!(rest.is_empty(), "more after the 413: {rest:?}");
    }
    assert_eq!(get(addr, "/metrics", None).status, 200);
    let stats = server.stats();
    assert_eq!(stats.rejected_requests, 5 + 5 + 1 + 2);
    assert_eq!(stats.scrapes, 2);
}

#[test]
fn keep_alive_reuses_the_connection() {
    let reg = sample_registry();
    let server = spawn(&reg, |b| b);
    let jobs = reg.counter("jobs_total", "Jobs run.").unwrap();
    let mut stream = connect(server.local_addr());
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    for i in 0..5u64 {
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let reply = read_reply(&mut reader, false).unwrap().unwrap();
        assert_eq!(reply.status, 200);
        assert!(
            reply.text().contains(&format!("jobs_total {}\n", 7 + i)),
            "{}",
            reply.text()
        );
        jobs.inc();
    }
    // Pipelined: two requests in one write, two responses in order.
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_reply(&mut reader, false).unwrap().unwrap().status, 200);
    assert_eq!(read_reply(&mut reader, false).unwrap().unwrap().status, 404);
    assert_eq!(server.stats().connections_accepted, 1);
    assert_eq!(server.stats().scrapes, 6);
}

/// Classifies one scrape: `Some(body)` for a 200, `None` for a refusal (a
/// 503, or the connection closed or reset before any response).
fn scrape_or_refused(addr: SocketAddr) -> Option<String> {
    let raw = b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let mut stream = match TcpStream::connect(addr) {
        Ok(s) => s,
        Err(e) => panic!("connect failed (the listener must keep accepting): {e}"),
    };
    stream.set_read_timeout(Some(HANG)).unwrap();
    if let Err(e) = stream.write_all(raw) {
        assert_refusal_error(&e);
        return None;
    }
    match read_reply(&mut BufReader::new(stream), false) {
        Ok(Some(reply)) if reply.status == 200 => Some(reply.text().to_string()),
        Ok(Some(reply)) => {
            assert_eq!(reply.status, 503, "neither served nor refused: {reply:?}");
            assert_eq!(reply.header("connection"), Some("close"));
            None
        }
        Ok(None) => None,
        Err(e) => {
            assert_refusal_error(&e);
            None
        }
    }
}

fn assert_refusal_error(e: &io::Error) {
    assert!(
        matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::UnexpectedEof
        ),
        "a refused connection must be closed or reset, not {e:?}"
    );
}

fn value_of(body: &str, series: &str) -> u64 {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in:\n{body}"))
        .parse()
        .unwrap()
}

/// 32 threads × 20 scrapes while another thread records; with `limit`
/// connections. Returns (served, refused).
fn hammer(limit: usize) -> (usize, usize) {
    const THREADS: usize = 32;
    const SCRAPES: usize = 20;
    const WORK: u64 = 100_000;
    let reg = Registry::new();
    let work = reg.counter("work_total", "Work done.").unwrap();
    let by_kind = reg
        .counter_vec("work_by_kind_total", "Work by kind.", &["kind"])
        .unwrap();
    let server = spawn(&reg, |b| b.max_connections(limit));
    let addr = server.local_addr();
    let recording = Arc::new(AtomicBool::new(true));

    let (served, refused) = thread::scope(|s| {
        let recorder = s.spawn(|| {
            let odd = by_kind.with(&["odd"]).unwrap();
            let even = by_kind.with(&["even"]).unwrap();
            for i in 0..WORK {
                work.inc();
                if i.is_multiple_of(2) { &even } else { &odd }.inc();
            }
            recording.store(false, Ordering::Relaxed);
        });
        let scrapers: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(move || {
                    let (mut served, mut refused, mut last) = (0, 0, 0);
                    for _ in 0..SCRAPES {
                        match scrape_or_refused(addr) {
                            Some(body) => {
                                // Increment-only counters never go back.
                                let seen = value_of(&body, "work_total");
                                assert!(seen >= last && seen <= WORK, "{seen} after {last}");
                                last = seen;
                                served += 1;
                            }
                            None => refused += 1,
                        }
                    }
                    (served, refused)
                })
            })
            .collect();
        recorder.join().unwrap();
        scrapers
            .into_iter()
            .map(|t| t.join().expect("scraper panicked"))
            .fold((0, 0), |(a, b), (c, d)| (a + c, b + d))
    });
    assert!(!recording.load(Ordering::Relaxed));
    assert_eq!(served + refused, THREADS * SCRAPES);

    // Exact once recording has stopped, and the server still answers.
    let body = get(addr, "/metrics", None);
    let body = body.text();
    assert_eq!(value_of(body, "work_total"), WORK);
    assert_eq!(
        value_of(body, "work_by_kind_total{kind=\"even\"}"),
        WORK / 2
    );
    assert_eq!(value_of(body, "work_by_kind_total{kind=\"odd\"}"), WORK / 2);

    let stats = server.stats();
    assert_eq!(stats.scrapes as usize, served + 1, "{stats:?}");
    assert_eq!(stats.connections_refused as usize, refused, "{stats:?}");
    assert_eq!(
        (stats.connections_accepted + stats.connections_refused) as usize,
        THREADS * SCRAPES + 1,
        "{stats:?}"
    );
    (served, refused)
}

#[test]
fn concurrent_scrapes_below_the_limit_all_succeed() {
    let (served, refused) = hammer(64);
    assert_eq!((served, refused), (640, 0));
}

#[test]
fn concurrent_scrapes_beyond_the_limit_are_served_or_refused() {
    let (served, _refused) = hammer(2);
    assert!(served > 0, "nothing served");
}

#[test]
fn the_connection_beyond_the_limit_is_refused_at_once() {
    let reg = sample_registry();
    let server = spawn(&reg, |b| b.max_connections(2));
    let addr = server.local_addr();
    // Two idle connections hold both places.
    let first = connect(addr);
    let second = connect(addr);
    eventually("both idle connections accepted", || {
        server.stats().connections_accepted == 2
    });
    // The third is refused without waiting for a place.
    assert!(scrape_or_refused(addr).is_none(), "served beyond the limit");
    assert_eq!(server.stats().connections_refused, 1);
    // A place frees up when a client leaves.
    drop(first);
    eventually("a scrape succeeds once a place is free", || {
        scrape_or_refused(addr).is_some()
    });
    drop(second);
    assert_eq!(server.stats().scrapes, 1);
}

/// After a hostile client: the server answers a normal scrape.
fn still_serves(addr: SocketAddr) {
    let reply = get(addr, "/metrics", None);
    assert_eq!(reply.status, 200);
    assert!(reply.text().contains("jobs_total 7\n"));
}

#[test]
fn garbage_gets_an_error_or_a_closed_connection() {
    let reg = sample_registry();
    let server = spawn(&reg, |b| b);
    let addr = server.local_addr();
    let garbage: [&[u8]; 6] = [
        b"\x00\x01\x02\xff\xfe\r\n\r\n",
        b"HELLO\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET /metrics HTTP/9.9\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nbad header line\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
    ];
    for raw in garbage {
        let mut stream = connect(addr);
        stream.write_all(raw).unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        match read_reply(&mut BufReader::new(stream), false) {
            Ok(Some(reply)) => assert!(
                (400..500).contains(&reply.status) || reply.status == 505,
                "{raw:?} answered {reply:?}"
            ),
            Ok(None) => {}
            Err(e) => assert_refusal_error(&e),
        }
        still_serves(addr);
    }
    // Half a request, then the client goes away.
    let mut stream = connect(addr);
    stream.write_all(b"GET /metr").unwrap();
    drop(stream);
    still_serves(addr);
    assert!(
        server.stats().connection_errors >= 1,
        "{:?}",
        server.stats()
    );
}

#[test]
fn a_huge_header_gets_431_or_a_closed_connection() {
    let reg = sample_registry();
    let server = spawn(&reg, |b| b);
    let addr = server.local_addr();
    let mut raw = b"GET /metrics HTTP/1.1\r\nHost: t\r\nX-Big: ".to_vec();
    raw.resize(raw.len() + (1 << 20), b'a');
    raw.extend_from_slice(b"\r\n\r\n");
    let mut stream = connect(addr);
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let writer = thread::spawn(move || {
        // The server stops reading early: the write may fail.
        let _ = stream.write_all(&raw);
    });
    match read_reply(&mut reader, false) {
        Ok(Some(reply)) => assert_eq!(reply.status, 431, "{reply:?}"),
        Ok(None) => {}
        Err(e) => assert_refusal_error(&e),
    }
    drop(reader);
    writer.join().unwrap();
    still_serves(addr);
    assert_eq!(server.stats().scrapes, 1);
}

/// Sends a request's headers one line at a time, every 50 ms, until the
/// server closes the connection; returns how many lines went out. Fails if
/// the server is still listening after [`HANG`].
fn slowloris(addr: SocketAddr) -> usize {
    let mut stream = connect(addr);
    stream.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut byte = [0u8; 1];
    for sent in 0..(HANG.as_millis() / 50) as usize {
        match stream.read(&mut byte) {
            // Closed: cut off (any response would be an error one).
            Ok(0) => return sent,
            Ok(_) => panic!("the server answered a request that never finished"),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if stream.write_all(b"X-Slow: yes\r\n").is_err() {
                    return sent;
                }
            }
            Err(e) => {
                assert_refusal_error(&e);
                return sent;
            }
        }
    }
    panic!("a request that never finished was not cut off");
}

#[test]
fn slowloris_is_cut_off_by_the_header_read_timeout() {
    let reg = sample_registry();
    let server = spawn(&reg, |b| {
        b.header_read_timeout(Duration::from_millis(300))
            .request_timeout(Duration::from_secs(3600))
    });
    slowloris(server.local_addr());
    eventually("the timeout counted", || server.stats().timeouts == 1);
    still_serves(server.local_addr());
}

#[test]
fn slowloris_is_cut_off_by_the_request_timeout() {
    let reg = sample_registry();
    let server = spawn(&reg, |b| {
        b.header_read_timeout(Duration::from_secs(3600))
            .request_timeout(Duration::from_millis(300))
    });
    slowloris(server.local_addr());
    eventually("the timeout counted", || server.stats().timeouts == 1);
    still_serves(server.local_addr());
}

#[test]
fn a_client_that_never_reads_is_cut_off_by_the_request_timeout() {
    // About 16 MiB of exposition: more than the socket buffers hold.
    let reg = Registry::new();
    let big = reg.gauge_vec("big", "Big.", &["id"]).unwrap();
    let pad = "x".repeat(1600);
    for i in 0..10_000 {
        big.with(&[&format!("{i}{pad}")]).unwrap().set(1.0);
    }
    reg.counter("jobs_total", "Jobs run.").unwrap().add(7);
    let server = spawn(&reg, |b| {
        b.header_read_timeout(Duration::from_secs(3600))
            .request_timeout(Duration::from_millis(500))
    });
    let mut stream = connect(server.local_addr());
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    eventually("the slow reader timed out", || server.stats().timeouts == 1);
    drop(stream);
    // The server still answers (this client reads the whole body).
    let reply = get(server.local_addr(), "/metrics", Some("text/plain"));
    assert_eq!(reply.status, 200);
    assert!(reply.body.len() > 16_000_000, "{}", reply.body.len());
    assert_eq!(server.stats().scrapes, 2);
}

#[test]
fn shutdown_returns_with_connections_open() {
    let reg = sample_registry();
    let server = spawn(&reg, |b| b.header_read_timeout(Duration::from_secs(3600)));
    let addr = server.local_addr();
    // An idle kept-alive connection after one request...
    let mut idle = connect(addr);
    idle.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut idle_reader = BufReader::new(idle.try_clone().unwrap());
    assert_eq!(
        read_reply(&mut idle_reader, false).unwrap().unwrap().status,
        200
    );
    // ... and one stuck in the middle of its headers.
    let mut stuck = connect(addr);
    stuck.write_all(b"GET /metrics HTTP/1.1\r\nX-").unwrap();
    eventually("both connections accepted", || {
        server.stats().connections_accepted == 2
    });

    finishes("shutdown", move || server.shutdown());

    // Both connections were closed, and nobody listens any more.
    let mut rest = Vec::new();
    assert!(
        matches!(idle_reader.read_to_end(&mut rest), Ok(0) | Err(_)),
        "idle connection still open"
    );
    assert!(
        matches!(stuck.read(&mut [0u8; 64]), Ok(0) | Err(_)),
        "stuck connection still open"
    );
    assert!(TcpStream::connect(addr).is_err(), "still listening");
}

#[test]
fn dropping_the_handle_shuts_down() {
    let reg = sample_registry();
    let server = spawn(&reg, |b| b);
    let addr = server.local_addr();
    still_serves(addr);
    finishes("drop", move || drop(server));
    assert!(TcpStream::connect(addr).is_err(), "still listening");
}

#[test]
fn bind_errors_are_typed() {
    let reg = Registry::new();
    let first = spawn(&reg, |b| b);
    let err = Server::builder(reg.clone())
        .bind(first.local_addr())
        .spawn()
        .expect_err("the address is taken");
    match &err {
        ServerError::Bind { addr, source } => {
            assert_eq!(*addr, first.local_addr());
            assert_eq!(source.kind(), io::ErrorKind::AddrInUse);
        }
        other => panic!("not a bind error: {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("cannot bind {}: ", first.local_addr())),
        "{text}"
    );
    assert!(std::error::Error::source(&err).is_some());
    // The first server is unaffected.
    assert_eq!(get(first.local_addr(), "/metrics", None).status, 200);
}

#[test]
fn a_custom_path_moves_the_endpoint() {
    let reg = sample_registry();
    let server = spawn(&reg, |b| b.path("internal/metrics"));
    assert_eq!(
        get(server.local_addr(), "/internal/metrics", None).status,
        200
    );
    assert_eq!(get(server.local_addr(), "/metrics", None).status, 404);
}

#[test]
fn an_idle_kept_alive_connection_outlives_the_request_timeout() {
    // The whole-request deadline covers a request, not the idle time after
    // its response (the header read timeout bounds that).
    let reg = sample_registry();
    let server = spawn(&reg, |b| {
        b.header_read_timeout(Duration::from_secs(3600))
            .request_timeout(Duration::from_millis(100))
    });
    let mut stream = connect(server.local_addr());
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    for _ in 0..3 {
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        assert_eq!(read_reply(&mut reader, false).unwrap().unwrap().status, 200);
        // Idle for several request timeouts.
        thread::sleep(Duration::from_millis(500));
    }
    let stats = server.stats();
    assert_eq!(
        (stats.connections_accepted, stats.timeouts),
        (1, 0),
        "{stats:?}"
    );
}

#[test]
fn huge_and_zero_timeouts_are_taken() {
    let reg = sample_registry();
    let server = spawn(&reg, |b| {
        b.header_read_timeout(Duration::MAX)
            .request_timeout(Duration::MAX)
            .shutdown_timeout(Duration::MAX)
    });
    still_serves(server.local_addr());
    finishes("shutdown", move || server.shutdown());

    // Zero is raised to a millisecond: a request still gets through on a
    // connection that sends it at once (or is cut off, never hung).
    let server = spawn(&reg, |b| {
        b.header_read_timeout(Duration::ZERO)
            .request_timeout(Duration::ZERO)
            .shutdown_timeout(Duration::ZERO)
    });
    let raw = b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    match exchange(server.local_addr(), raw) {
        Ok(Some(reply)) => assert_eq!(reply.status, 200),
        Ok(None) => {}
        Err(e) => assert_refusal_error(&e),
    }
    finishes("shutdown", move || server.shutdown());
}

/// `GET /metrics` with basic credentials `user:password`.
fn get_with_basic(addr: SocketAddr, user: &str, password: &str) -> Reply {
    use base64::Engine as _;
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let raw = format!(
        "GET /metrics HTTP/1.1\r\nHost: test\r\nAuthorization: Basic {credentials}\r\n\
         Connection: close\r\n\r\n"
    );
    exchange(addr, raw.as_bytes())
        .expect("request failed")
        .expect("server closed without a response")
}

#[test]
fn a_flood_of_wrong_passwords_neither_stalls_a_cached_scraper_nor_queues_unbounded() {
    use metricz::export::http::WebConfig;
    // Cost 12: each wrong password costs a bcrypt verification of about a
    // quarter of a second, so the flood below takes seconds to check.
    let hash = bcrypt::hash("right", 12).unwrap();
    let reg = sample_registry();
    let config = WebConfig::new().basic_auth_user("prom", &hash).unwrap();
    let server = spawn(&reg, |b| b.web_config(config).max_connections(64));
    let addr = server.local_addr();
    // The scraper's first request pays its bcrypt; its password is then kept.
    assert_eq!(get_with_basic(addr, "prom", "right").status, 200);

    // 24 wrong passwords at once: one verifies at a time, 8 may wait, the
    // rest are answered 503 at once.
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let flood: Vec<_> = (0..24)
        .map(|i| {
            let answered = Arc::clone(&answered);
            thread::spawn(move || {
                let status = get_with_basic(addr, "prom", &format!("wrong-{i}")).status;
                answered.fetch_add(1, Ordering::Relaxed);
                status
            })
        })
        .collect();
    eventually("the flood to queue", || {
        server.stats().rejected_requests > 0
    });
    // Meanwhile the kept password is checked on the server thread, not
    // behind the queue: the scrape is served while the flood still waits.
    let reply = get_with_basic(addr, "prom", "right");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), {
        let mut text = String::new();
        reg.encode_prometheus(&mut text).unwrap();
        text
    });
    assert!(
        answered.load(Ordering::Relaxed) < 24,
        "the cached scrape waited for the whole flood"
    );
    let statuses: Vec<u16> = flood.into_iter().map(|t| t.join().unwrap()).collect();
    let (refused, busy) = (
        statuses.iter().filter(|&&s| s == 401).count(),
        statuses.iter().filter(|&&s| s == 503).count(),
    );
    assert_eq!(refused + busy, 24, "{statuses:?}");
    assert!(busy > 0 && refused >= 1, "{statuses:?}");
    let stats = server.stats();
    assert_eq!(stats.unauthorized, refused as u64);
    assert_eq!(stats.rejected_requests, busy as u64);
    assert_eq!(stats.scrapes, 2);
}
