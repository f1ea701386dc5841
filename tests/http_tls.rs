//! The `/metrics` endpoint over TLS (feature `tls`) and with
//! authentication: what a TLS scrape returns, what the server refuses
//! (plain HTTP on the TLS port, versions out of range, missing or foreign
//! client certificates, wrong credentials), how stalled and slow TLS
//! clients are cut off, and web config files, good and bad.
//!
//! No assertion depends on timing beyond lower bounds the server cannot
//! beat (a timeout does not fire early); socket read timeouts only turn a
//! hung server into a failure instead of a hung test.
#![cfg(feature = "tls")]

mod support;
use support::sample_registry;

use base64::Engine as _;
use metricz::export::http::{
    ClientAuth, Server, ServerBuilder, ServerHandle, TlsConfig, TlsVersion, WebConfig,
    WebConfigError,
};
use metricz::Registry;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ProtocolVersion, SupportedProtocolVersion};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use support::tls::{client_config, connect, https_get, https_get_on, pki};

/// Guards against a hung server: far above anything a passing run needs.
const HANG: Duration = Duration::from_secs(30);

/// The timeouts of the timeout tests: short, so the file runs quickly.
const SHORT: Duration = Duration::from_millis(300);

/// Longer than any test: a timeout that must not be the one that fires.
const NEVER: Duration = Duration::from_secs(3600);

const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
const ANY_VERSION: &[&SupportedProtocolVersion] = &[];

const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const BASIC_CHALLENGE: &str = "Basic realm=\"metricz\", charset=\"UTF-8\"";
const BEARER_CHALLENGE: &str = "Bearer realm=\"metricz\"";

/// The Prometheus text exposition of `reg`, as a scrape must return it.
fn exposition(reg: &Registry) -> String {
    let mut text = String::new();
    reg.encode_prometheus(&mut text).unwrap();
    text
}

/// The server's certificate and key from the test PKI (TLS 1.2 and 1.3,
/// no client certificates).
fn server_tls() -> TlsConfig {
    TlsConfig::from_pem_files(&pki().server_cert, &pki().server_key).expect("the test PKI loads")
}

fn spawn(
    registry: &Registry,
    config: WebConfig,
    tweak: impl FnOnce(ServerBuilder) -> ServerBuilder,
) -> ServerHandle {
    let builder = Server::builder(registry.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .web_config(config);
    tweak(builder).spawn().expect("server starts")
}

/// A client trusting the test CA, without a certificate.
fn anonymous(versions: &[&'static SupportedProtocolVersion]) -> Arc<ClientConfig> {
    client_config(None, versions)
}

/// A client presenting the test CA's client certificate.
fn with_client_cert(versions: &[&'static SupportedProtocolVersion]) -> Arc<ClientConfig> {
    let pki = pki();
    client_config(Some((&pki.client_cert, &pki.client_key)), versions)
}

/// A client presenting a certificate of the other, unrelated CA.
fn with_foreign_cert(versions: &[&'static SupportedProtocolVersion]) -> Arc<ClientConfig> {
    let pki = pki();
    client_config(
        Some((&pki.other_client_cert, &pki.other_client_key)),
        versions,
    )
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

/// The values of the header `name` in a response head, in order.
fn header_values<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

/// `Basic` credentials for `user` and `password`.
fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// A TLS scrape that must succeed: its body.
fn scrape(addr: SocketAddr, config: Arc<ClientConfig>, authorization: Option<&str>) -> String {
    let (status, head, body) =
        https_get(addr, config, "/metrics", authorization).expect("TLS scrape");
    assert_eq!(status, 200, "{head}\n{body}");
    assert_eq!(header_values(&head, "content-type"), [TEXT], "{head}");
    body
}

/// Asserts that a TLS request failed: no answer at all (the handshake or
/// the first read after it failed), above all no metrics.
fn assert_refused(result: io::Result<(u16, String, String)>, what: &str) {
    if let Ok((status, head, body)) = result {
        panic!("{what}: answered {status}:\n{head}\n{body}");
    }
}

/// The protocol version a handshake with `config` settles on (and that
/// a scrape over it then succeeds).
fn negotiated(addr: SocketAddr, config: Arc<ClientConfig>) -> ProtocolVersion {
    let mut stream = connect(addr, config).expect("handshake");
    let version = stream.conn.protocol_version().expect("handshake done");
    let (status, _, body) = https_get_on(&mut stream, "/metrics", None).expect("scrape");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\njobs_total 7\n"), "{body}");
    version
}

#[test]
fn a_tls_scrape_is_the_registry_exposition() {
    let reg = sample_registry();
    let server = spawn(&reg, WebConfig::new().tls(server_tls()), |b| b);
    let addr = server.local_addr();

    // The client checked the server's certificate against the test CA for
    // the name `localhost`; both versions offered, TLS 1.3 is chosen.
    let mut stream = connect(addr, anonymous(ANY_VERSION)).expect("handshake");
    assert_eq!(
        stream.conn.protocol_version(),
        Some(ProtocolVersion::TLSv1_3)
    );
    let (status, head, body) = https_get_on(&mut stream, "/metrics", None).unwrap();
    assert_eq!(status, 200, "{head}");
    assert_eq!(header_values(&head, "content-type"), [TEXT], "{head}");
    assert_eq!(body, exposition(&reg));
    assert!(body.contains("\njobs_total 7\n"), "{body}");
    assert_eq!(server.stats().scrapes, 1, "{:?}", server.stats());

    // ALPN: the server speaks HTTP/1.1 and says so.
    let mut alpn = (*anonymous(ANY_VERSION)).clone();
    alpn.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut stream = connect(addr, Arc::new(alpn)).expect("handshake with ALPN");
    assert_eq!(stream.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (status, _, body) = https_get_on(&mut stream, "/metrics", None).unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, exposition(&reg));

    let stats = server.stats();
    assert_eq!(stats.scrapes, 2, "{stats:?}");
    assert_eq!(stats.connections_accepted, 2, "{stats:?}");
    assert_eq!(
        (
            stats.tls_handshake_failures,
            stats.timeouts,
            stats.unauthorized
        ),
        (0, 0, 0),
        "{stats:?}"
    );
}

#[test]
fn plain_http_on_the_tls_port_gets_no_metrics_and_counts_a_handshake_failure() {
    let reg = sample_registry();
    let server = spawn(&reg, WebConfig::new().tls(server_tls()), |b| b);
    let addr = server.local_addr();
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(HANG)).unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    // At most an alert, then a close (or a reset): never an HTTP answer.
    match tcp.read_to_end(&mut raw) {
        Ok(_) => {}
        Err(e) => assert!(
            matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
            ),
            "the server neither answered nor closed: {e:?}"
        ),
    }
    let text = String::from_utf8_lossy(&raw);
    assert!(!text.contains("HTTP/1.1 200"), "{text:?}");
    assert!(!text.contains("jobs_total"), "{text:?}");
    eventually("the handshake failure counted", || {
        server.stats().tls_handshake_failures == 1
    });
    let stats = server.stats();
    assert_eq!((stats.scrapes, stats.timeouts), (0, 0), "{stats:?}");

    // TLS clients are still served.
    assert_eq!(scrape(addr, anonymous(ANY_VERSION), None), exposition(&reg));
    assert_eq!(server.stats().tls_handshake_failures, 1);
}

#[test]
fn tls_versions_limit_what_the_server_speaks() {
    let reg = sample_registry();

    // TLS 1.3 only.
    let tls = server_tls()
        .versions(TlsVersion::Tls13, TlsVersion::Tls13)
        .unwrap();
    let server = spawn(&reg, WebConfig::new().tls(tls), |b| b);
    let addr = server.local_addr();
    assert_refused(
        https_get(addr, anonymous(TLS12), "/metrics", None),
        "a TLS 1.2 client of a TLS 1.3 server",
    );
    eventually("the version mismatch counted", || {
        server.stats().tls_handshake_failures == 1
    });
    assert_eq!(negotiated(addr, anonymous(TLS13)), ProtocolVersion::TLSv1_3);
    assert_eq!(
        negotiated(addr, anonymous(ANY_VERSION)),
        ProtocolVersion::TLSv1_3
    );
    let stats = server.stats();
    assert_eq!(
        (stats.scrapes, stats.tls_handshake_failures),
        (2, 1),
        "{stats:?}"
    );

    // TLS 1.2 only: a client that could speak 1.3 gets 1.2.
    let tls = server_tls()
        .versions(TlsVersion::Tls12, TlsVersion::Tls12)
        .unwrap();
    let server = spawn(&reg, WebConfig::new().tls(tls), |b| b);
    let addr = server.local_addr();
    assert_eq!(negotiated(addr, anonymous(TLS12)), ProtocolVersion::TLSv1_2);
    assert_eq!(
        negotiated(addr, anonymous(ANY_VERSION)),
        ProtocolVersion::TLSv1_2
    );
    assert_refused(
        https_get(addr, anonymous(TLS13), "/metrics", None),
        "a TLS 1.3 client of a TLS 1.2 server",
    );
    eventually("the version mismatch counted", || {
        server.stats().tls_handshake_failures == 1
    });
    assert_eq!(server.stats().scrapes, 2);

    // The default range (TLS 1.2 to 1.3) takes a TLS 1.2 client.
    let server = spawn(&reg, WebConfig::new().tls(server_tls()), |b| b);
    assert_eq!(
        negotiated(server.local_addr(), anonymous(TLS12)),
        ProtocolVersion::TLSv1_2
    );
    assert_eq!(server.stats().tls_handshake_failures, 0);
}

#[test]
fn mutual_tls_requires_a_certificate_of_the_client_ca() {
    let reg = sample_registry();
    let tls = server_tls()
        .client_ca_file(&pki().ca_cert, ClientAuth::RequireAndVerifyClientCert)
        .unwrap();
    assert_eq!(tls.client_auth(), ClientAuth::RequireAndVerifyClientCert);
    let server = spawn(&reg, WebConfig::new().tls(tls), |b| b);
    let addr = server.local_addr();

    // With TLS 1.3 the client considers its handshake done before the
    // server has checked its certificate: the refusal arrives as an
    // alert on its first read, and the server counts a failed handshake
    // all the same.
    for versions in [TLS12, TLS13] {
        assert_refused(
            https_get(addr, anonymous(versions), "/metrics", None),
            &format!("no client certificate, {versions:?}"),
        );
        assert_refused(
            https_get(addr, with_foreign_cert(versions), "/metrics", None),
            &format!("the other CA's client certificate, {versions:?}"),
        );
    }
    eventually("four failed handshakes counted", || {
        server.stats().tls_handshake_failures == 4
    });
    assert_eq!(server.stats().scrapes, 0);

    for versions in [TLS12, TLS13] {
        assert_eq!(
            scrape(addr, with_client_cert(versions), None),
            exposition(&reg)
        );
    }
    let stats = server.stats();
    assert_eq!(
        (stats.scrapes, stats.tls_handshake_failures, stats.timeouts),
        (2, 4, 0),
        "{stats:?}"
    );
}

#[test]
fn verify_client_cert_if_given_takes_none_but_refuses_a_foreign_one() {
    let reg = sample_registry();
    let tls = server_tls()
        .client_ca_file(&pki().ca_cert, ClientAuth::VerifyClientCertIfGiven)
        .unwrap();
    let server = spawn(&reg, WebConfig::new().tls(tls), |b| b);
    let addr = server.local_addr();
    for versions in [TLS12, TLS13] {
        assert_eq!(scrape(addr, anonymous(versions), None), exposition(&reg));
        assert_eq!(
            scrape(addr, with_client_cert(versions), None),
            exposition(&reg)
        );
        assert_refused(
            https_get(addr, with_foreign_cert(versions), "/metrics", None),
            &format!("the other CA's client certificate, {versions:?}"),
        );
    }
    eventually("two failed handshakes counted", || {
        server.stats().tls_handshake_failures == 2
    });
    assert_eq!(server.stats().scrapes, 4);
}

#[test]
fn basic_auth_over_tls_refuses_wrong_credentials_before_encoding() {
    // The registry has no callback metrics or custom collectors; what runs
    // at encode time is idle-series eviction. With eviction after two
    // collections, a labelled series that never changes is exported by the
    // first two collections and evicted by the third: the second good
    // scrape below still shows it only if none of the refused requests in
    // between was encoded.
    let reg = sample_registry();
    reg.set_idle_eviction(2);
    let probe = reg
        .counter_vec("encode_probe_total", "Counts nothing.", &["k"])
        .unwrap();
    probe.with(&["idle"]).unwrap().inc();
    const PROBE: &str = "\nencode_probe_total{k=\"idle\"} 1\n";

    let config = WebConfig::new()
        .tls(server_tls())
        .basic_auth_user("prometheus", &bcrypt::hash("s3cret", 4).unwrap())
        .unwrap()
        .basic_auth_user("alice", &bcrypt::hash("hunter2", 4).unwrap())
        .unwrap();
    assert!(config.requires_auth());
    let server = spawn(&reg, config, |b| b);
    let addr = server.local_addr();
    let client = anonymous(ANY_VERSION);
    let good = basic("prometheus", "s3cret");

    let body = scrape(addr, client.clone(), Some(&good));
    assert!(body.contains("\njobs_total 7\n"), "{body}");
    assert!(body.contains(PROBE), "{body}");

    let refused: [(&str, Option<String>); 6] = [
        ("/metrics", Some(basic("prometheus", "wrong"))),
        ("/metrics", Some(basic("mallory", "s3cret"))),
        // Another user's password is no key.
        ("/metrics", Some(basic("alice", "s3cret"))),
        ("/metrics", None),
        // Basic-only: a bearer token is refused, even the password.
        ("/metrics", Some("Bearer s3cret".to_string())),
        // Without credentials not even a 404 is told.
        ("/nope", None),
    ];
    for (path, authorization) in &refused {
        let (status, head, body) =
            https_get(addr, client.clone(), path, authorization.as_deref()).unwrap();
        let what = format!("{path} with {authorization:?}");
        assert_eq!(status, 401, "{what}: {head}");
        assert_eq!(
            header_values(&head, "www-authenticate"),
            [BASIC_CHALLENGE],
            "{what}: {head}"
        );
        assert!(!body.contains("jobs_total"), "{what}: {body}");
        assert!(!body.contains("encode_probe"), "{what}: {body}");
    }

    // Twice the right password (the second time from the server's cache).
    let body = scrape(addr, client.clone(), Some(&good));
    assert!(
        body.contains(PROBE),
        "a refused request was encoded (the idle probe was evicted early):\n{body}"
    );
    let stats = server.stats();
    assert_eq!(stats.unauthorized, refused.len() as u64, "{stats:?}");
    assert_eq!(stats.scrapes, 2, "{stats:?}");
    assert_eq!(stats.rejected_requests, 0, "{stats:?}");

    // The probe works: one more collection evicts it.
    assert!(!exposition(&reg).contains("encode_probe_total{"));
}

#[test]
fn bearer_token_auth_takes_the_right_token_only() {
    let reg = sample_registry();
    let token = "c2VjcmV0LXRva2Vu";
    let config = WebConfig::new().bearer_token(token).unwrap();
    let server = spawn(&reg, config, |b| b);
    let addr = server.local_addr();

    let (status, head, body) = support::http_request_bytes(
        addr,
        "/metrics",
        &[("Authorization", &format!("Bearer {token}"))],
    )
    .unwrap();
    assert_eq!(status, 200, "{head}");
    assert_eq!(String::from_utf8(body).unwrap(), exposition(&reg));

    let wrong = [
        Some("Bearer wrong-token".to_string()),
        Some(format!("Bearer {}", &token[..token.len() - 1])),
        Some(format!("Bearer {token}x")),
        // No basic-auth users: basic credentials are refused.
        Some(basic(token, token)),
        None,
    ];
    for authorization in &wrong {
        let headers: Vec<(&str, &str)> = authorization
            .iter()
            .map(|a| ("Authorization", a.as_str()))
            .collect();
        let (status, head, body) = support::http_request_bytes(addr, "/metrics", &headers).unwrap();
        assert_eq!(status, 401, "{authorization:?}: {head}");
        assert_eq!(
            header_values(&head, "www-authenticate"),
            [BEARER_CHALLENGE],
            "{authorization:?}: {head}"
        );
        let body = String::from_utf8_lossy(&body);
        assert!(!body.contains("jobs_total"), "{authorization:?}: {body}");
    }
    let stats = server.stats();
    assert_eq!(
        (stats.scrapes, stats.unauthorized),
        (1, wrong.len() as u64),
        "{stats:?}"
    );
}

/// The first bytes of a real ClientHello (its record header and a part of
/// the message): a handshake begun and never finished.
fn client_hello_prefix() -> Vec<u8> {
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(anonymous(ANY_VERSION), name).unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    assert_eq!(hello[0], 0x16, "a handshake record");
    assert!(hello.len() > 40, "{hello:?}");
    hello.truncate(hello.len() / 2);
    hello
}

/// Connects, sends `sent` and nothing more, and waits for the server to
/// close the connection; returns how long that took. Retries (after a
/// pause) while the server refuses the connection at its connection
/// limit: an earlier connection's slot may not be free yet.
fn stall(addr: SocketAddr, sent: &[u8]) -> Duration {
    for _ in 0..300 {
        let mut tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(HANG)).unwrap();
        let start = Instant::now();
        tcp.write_all(sent).unwrap();
        let mut raw = Vec::new();
        match tcp.read_to_end(&mut raw) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("a stalled handshake was not cut off: {e:?}"),
        }
        let elapsed = start.elapsed();
        if raw.starts_with(b"HTTP/1.1 503 ") {
            thread::sleep(Duration::from_millis(10));
            continue;
        }
        // A handshake that has not begun or is half a ClientHello gets no
        // answer.
        assert!(raw.is_empty(), "answered {raw:?}");
        return elapsed;
    }
    panic!("the stalled connection was refused every time");
}

#[test]
fn a_stalled_handshake_is_closed_by_the_header_read_timeout_and_frees_its_slot() {
    let reg = sample_registry();
    let server = spawn(&reg, WebConfig::new().tls(server_tls()), |b| {
        b.header_read_timeout(SHORT)
            .request_timeout(NEVER)
            .max_connections(1)
    });
    let addr = server.local_addr();
    let hello = client_hello_prefix();
    for (n, sent) in [&[][..], &hello[..]].into_iter().enumerate() {
        let n = n as u64 + 1;
        let waited = stall(addr, sent);
        // Closed by the timeout, not at once (a timer never fires early;
        // a little slack for its millisecond rounding).
        assert!(
            waited >= SHORT - Duration::from_millis(20),
            "closed after {waited:?}"
        );
        eventually("the handshake timeout counted", || {
            server.stats().timeouts == n
        });
        assert_eq!(server.stats().tls_handshake_failures, 0);
        // The only connection slot is free again: a TLS scrape gets it
        // (retried while the server may still be releasing it, when it
        // answers 503, which the TLS client fails on).
        eventually("a TLS scrape after the stalled one", || {
            matches!(
                https_get(addr, anonymous(ANY_VERSION), "/metrics", None),
                Ok((200, ..))
            )
        });
        let stats = server.stats();
        assert_eq!(
            (stats.scrapes, stats.timeouts, stats.tls_handshake_failures),
            (n, n, 0),
            "{stats:?}"
        );
    }
}

/// Over TLS: the handshake, then a request's headers one byte at a time,
/// every 50 ms, until the server closes the connection; returns how many
/// bytes went out. Fails if the server is still listening after [`HANG`].
fn tls_slowloris(addr: SocketAddr) -> usize {
    let mut stream = connect(addr, anonymous(ANY_VERSION)).expect("handshake");
    stream
        .sock
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut headers = b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n"
        .iter()
        .chain(b"X-Slow: yes\r\n".iter().cycle());
    let mut byte = [0u8; 1];
    for sent in 0..(HANG.as_millis() / 50) as usize {
        let next = *headers.next().unwrap();
        if stream.write_all(&[next]).is_err() || stream.flush().is_err() {
            return sent;
        }
        match stream.read(&mut byte) {
            // Closed (with or without close_notify): cut off.
            Ok(0) => return sent,
            Ok(_) => panic!("the server answered a request that never finished"),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => {
                assert!(
                    matches!(
                        e.kind(),
                        io::ErrorKind::UnexpectedEof
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::BrokenPipe
                            | io::ErrorKind::ConnectionAborted
                    ),
                    "a cut-off connection must be closed or reset, not {e:?}"
                );
                return sent;
            }
        }
    }
    panic!("a request that never finished was not cut off");
}

fn slowloris_over_tls_is_cut_off(header_read_timeout: Duration, request_timeout: Duration) {
    let reg = sample_registry();
    let server = spawn(&reg, WebConfig::new().tls(server_tls()), |b| {
        b.header_read_timeout(header_read_timeout)
            .request_timeout(request_timeout)
    });
    let sent = tls_slowloris(server.local_addr());
    // A byte every 50 ms: the cut came after the timeout, not at once.
    assert!(sent >= 4, "cut off after {sent} bytes");
    eventually("the timeout counted", || server.stats().timeouts == 1);
    let stats = server.stats();
    assert_eq!(
        (stats.tls_handshake_failures, stats.scrapes),
        (0, 0),
        "{stats:?}"
    );
    assert_eq!(
        scrape(server.local_addr(), anonymous(ANY_VERSION), None),
        exposition(&reg)
    );
}

#[test]
fn slowloris_over_tls_is_cut_off_by_the_header_read_timeout() {
    slowloris_over_tls_is_cut_off(SHORT, NEVER);
}

#[test]
fn slowloris_over_tls_is_cut_off_by_the_request_timeout() {
    slowloris_over_tls_is_cut_off(NEVER, SHORT);
}

#[test]
fn a_never_reading_tls_client_is_cut_off_by_the_request_timeout() {
    // 20 000 series (above the default cardinality limit), about 16 MiB
    // of exposition: more than the socket buffers and rustls's own hold.
    let reg = Registry::with_cardinality_limit(25_000);
    let big = reg.gauge_vec("big", "Big.", &["id"]).unwrap();
    let pad = "x".repeat(800);
    for i in 0..20_000 {
        big.with(&[&format!("{i}{pad}")]).unwrap().set(1.0);
    }
    reg.counter("jobs_total", "Jobs run.").unwrap().add(7);
    let server = spawn(&reg, WebConfig::new().tls(server_tls()), |b| {
        b.header_read_timeout(NEVER)
            .request_timeout(Duration::from_millis(500))
    });
    let addr = server.local_addr();
    let mut stream = connect(addr, anonymous(ANY_VERSION)).expect("handshake");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    stream.flush().unwrap();
    eventually("the never-reading client timed out", || {
        server.stats().timeouts == 1
    });
    drop(stream);
    // Others are still served. The big series go first: a debug-built
    // client reading 16 MiB over TLS on a busy machine could itself take
    // longer than the request timeout.
    assert_eq!(big.clear(), 20_000);
    let body = scrape(addr, anonymous(ANY_VERSION), None);
    assert_eq!(body, exposition(&reg));
    assert!(body.contains("\njobs_total 7\n"));
    let stats = server.stats();
    assert_eq!(
        (stats.scrapes, stats.timeouts, stats.tls_handshake_failures),
        (2, 1, 0),
        "{stats:?}"
    );
}

// ---------------------------------------------------------------------------
// Web config files.

/// A fresh directory for one test's config files, with copies of the test
/// PKI's files in its `certs/` subdirectory (config files name them
/// relatively: `certs/server.crt`).
fn config_dir(test: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("metricz-web-config-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let pki = pki();
    for file in [
        &pki.ca_cert,
        &pki.server_cert,
        &pki.server_key,
        &pki.client_cert,
        &pki.client_key,
        &pki.stray_key,
    ] {
        std::fs::copy(file, certs.join(file.file_name().unwrap())).unwrap();
    }
    std::fs::copy(pki.dir.join("ca.key"), certs.join("ca.key")).unwrap();
    std::fs::write(certs.join("garbage.crt"), "this is not a certificate\n").unwrap();
    // Well-formed PEM whose contents are no certificate (base64 of "not a
    // certificate").
    std::fs::write(
        certs.join("armoured-garbage.crt"),
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(
        certs.join("armoured-garbage.key"),
        "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    // Nothing in the working directory has these names: relative paths
    // can only resolve against the config file's directory.
    assert!(!Path::new("certs/server.crt").exists());
    dir
}

/// Writes `yaml` as `dir/name` and reads it back as a web config.
fn load(dir: &Path, name: &str, yaml: &str) -> Result<WebConfig, WebConfigError> {
    let path = dir.join(name);
    std::fs::write(&path, yaml).unwrap();
    WebConfig::from_file(&path)
}

const SERVER_PAIR: &str = "  cert_file: certs/server.crt\n  key_file: certs/server.key\n";

#[test]
fn a_web_config_file_with_tls_and_basic_auth_serves_both() {
    let dir = config_dir("tls-basic");
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let yaml = format!(
        "# TLS and basic auth, paths relative to this file\n\
         tls_server_config:\n{SERVER_PAIR}\
         basic_auth_users:\n  prometheus: {hash}\n"
    );
    let config = load(&dir, "web.yml", &yaml).expect("a good web config");
    assert!(config.requires_auth());
    assert_eq!(
        config.basic_auth_users().collect::<Vec<_>>(),
        ["prometheus"]
    );
    let tls = config.tls_config().expect("TLS configured");
    assert_eq!(tls.client_auth(), ClientAuth::NoClientCert);

    let reg = sample_registry();
    let server = spawn(&reg, config, |b| b);
    let addr = server.local_addr();
    let client = anonymous(ANY_VERSION);
    let good = basic("prometheus", "s3cret");
    assert_eq!(scrape(addr, client.clone(), Some(&good)), exposition(&reg));
    let (status, head, _) = https_get(addr, client.clone(), "/metrics", None).unwrap();
    assert_eq!(status, 401, "{head}");
    assert_eq!(header_values(&head, "www-authenticate"), [BASIC_CHALLENGE]);
    let (status, _, _) =
        https_get(addr, client, "/metrics", Some(&basic("prometheus", "nope"))).unwrap();
    assert_eq!(status, 401);
    // Over TLS only: plain HTTP gets nothing.
    assert!(!matches!(
        support::http_request(addr, "GET", "/metrics"),
        Ok((200 | 401, _))
    ));
    eventually("the plain HTTP request counted", || {
        server.stats().tls_handshake_failures == 1
    });
    let stats = server.stats();
    assert_eq!((stats.scrapes, stats.unauthorized), (1, 2), "{stats:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_web_config_file_with_mutual_tls_and_tls13_only_applies_them() {
    let dir = config_dir("mtls");
    let yaml = format!(
        "tls_server_config:\n{SERVER_PAIR}\
         \x20 client_auth_type: RequireAndVerifyClientCert\n\
         \x20 client_ca_file: certs/ca.crt\n\
         \x20 min_version: TLS13\n\
         \x20 max_version: TLS13\n"
    );
    let config = load(&dir, "web.yml", &yaml).expect("a good web config");
    assert!(!config.requires_auth());
    assert_eq!(
        config.tls_config().expect("TLS configured").client_auth(),
        ClientAuth::RequireAndVerifyClientCert
    );
    let reg = sample_registry();
    let server = spawn(&reg, config, |b| b);
    let addr = server.local_addr();
    assert_eq!(
        scrape(addr, with_client_cert(TLS13), None),
        exposition(&reg)
    );
    // The client CA, the client auth type and the versions all apply.
    assert_refused(
        https_get(addr, anonymous(TLS13), "/metrics", None),
        "no client certificate",
    );
    assert_refused(
        https_get(addr, with_foreign_cert(TLS13), "/metrics", None),
        "the other CA's client certificate",
    );
    assert_refused(
        https_get(addr, with_client_cert(TLS12), "/metrics", None),
        "TLS 1.2",
    );
    eventually("three failed handshakes counted", || {
        server.stats().tls_handshake_failures == 3
    });
    assert_eq!(server.stats().scrapes, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_web_config_files_fail_with_typed_errors() {
    let dir = config_dir("bad");
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let tls = |extra: &str| format!("tls_server_config:\n{SERVER_PAIR}{extra}");
    // A string that is no bcrypt hash, and must not be echoed in errors.
    let bad_hash = "not-a-bcrypt-hash-but-the-s3cret-itself";
    type Check = fn(&WebConfigError, &Path) -> bool;
    let cases: Vec<(&str, String, Check)> = vec![
        (
            "missing cert file",
            "tls_server_config:\n  cert_file: certs/missing.crt\n  key_file: certs/server.key\n"
                .to_string(),
            |e, dir| matches!(e, WebConfigError::Read { path, .. } if path == &dir.join("certs/missing.crt")),
        ),
        (
            "missing key file",
            "tls_server_config:\n  cert_file: certs/server.crt\n  key_file: certs/missing.key\n"
                .to_string(),
            |e, dir| matches!(e, WebConfigError::Read { path, .. } if path == &dir.join("certs/missing.key")),
        ),
        (
            "a key that is not the certificate's",
            "tls_server_config:\n  cert_file: certs/server.crt\n  key_file: certs/stray.key\n"
                .to_string(),
            |e, _| matches!(e, WebConfigError::KeyMismatch),
        ),
        (
            "a certificate file of garbage",
            "tls_server_config:\n  cert_file: certs/garbage.crt\n  key_file: certs/server.key\n"
                .to_string(),
            |e, dir| matches!(e, WebConfigError::Certificate { path: Some(path), .. } if path == &dir.join("certs/garbage.crt")),
        ),
        (
            "a certificate file of PEM-armoured garbage",
            "tls_server_config:\n  cert_file: certs/armoured-garbage.crt\n  key_file: certs/server.key\n"
                .to_string(),
            |e, dir| matches!(e, WebConfigError::Certificate { path: Some(path), .. } if path == &dir.join("certs/armoured-garbage.crt")),
        ),
        (
            "a certificate file that is a key",
            "tls_server_config:\n  cert_file: certs/server.key\n  key_file: certs/server.key\n"
                .to_string(),
            |e, _| matches!(e, WebConfigError::Certificate { .. }),
        ),
        (
            "a key file that is a certificate",
            "tls_server_config:\n  cert_file: certs/server.crt\n  key_file: certs/server.crt\n"
                .to_string(),
            |e, dir| matches!(e, WebConfigError::PrivateKey { path: Some(path), .. } if path == &dir.join("certs/server.crt")),
        ),
        (
            "a key file of PEM-armoured garbage",
            "tls_server_config:\n  cert_file: certs/server.crt\n  key_file: certs/armoured-garbage.key\n"
                .to_string(),
            |e, dir| matches!(e, WebConfigError::PrivateKey { path: Some(path), .. } if path == &dir.join("certs/armoured-garbage.key")),
        ),
        (
            "no key_file",
            "tls_server_config:\n  cert_file: certs/server.crt\n".to_string(),
            |e, _| matches!(e, WebConfigError::Missing { key: "key_file" }),
        ),
        (
            "an unparsable hash",
            format!("basic_auth_users:\n  alice: {bad_hash}\n"),
            |e, _| matches!(e, WebConfigError::BcryptHash { user } if user == "alice"),
        ),
        (
            "an unknown top-level key",
            format!("basic_auth_users:\n  alice: {hash}\nweb_colour: blue\n"),
            |e, dir| matches!(e, WebConfigError::Parse { path: Some(path), .. } if path == &dir.join("config.yml")),
        ),
        (
            "an unknown TLS key",
            tls("  colour: blue\n"),
            |e, _| matches!(e, WebConfigError::Parse { .. }),
        ),
        (
            "not YAML of the web config's shape",
            "basic_auth_users: [alice, bob]\n".to_string(),
            |e, _| matches!(e, WebConfigError::Parse { .. }),
        ),
        (
            "cipher_suites",
            tls("  cipher_suites: [TLS_AES_128_GCM_SHA256]\n"),
            |e, _| matches!(e, WebConfigError::Unsupported { key, .. } if key == "cipher_suites"),
        ),
        (
            "a client CA with NoClientCert",
            tls("  client_auth_type: NoClientCert\n  client_ca_file: certs/ca.crt\n"),
            |e, _| matches!(e, WebConfigError::ClientCaWithoutClientAuth),
        ),
        (
            "a client CA without a client auth type",
            tls("  client_ca_file: certs/ca.crt\n"),
            |e, _| matches!(e, WebConfigError::ClientCaWithoutClientAuth),
        ),
        (
            "RequireAndVerifyClientCert without a client CA",
            tls("  client_auth_type: RequireAndVerifyClientCert\n"),
            |e, _| matches!(e, WebConfigError::Missing { key: "client_ca_file" }),
        ),
        (
            "VerifyClientCertIfGiven without a client CA",
            tls("  client_auth_type: VerifyClientCertIfGiven\n"),
            |e, _| matches!(e, WebConfigError::Missing { key: "client_ca_file" }),
        ),
        (
            "min_version TLS11",
            tls("  min_version: TLS11\n"),
            |e, _| matches!(e, WebConfigError::TlsVersion { value } if value == "TLS11"),
        ),
        (
            "min_version above max_version",
            tls("  min_version: TLS13\n  max_version: TLS12\n"),
            |e, _| matches!(e, WebConfigError::TlsVersionRange),
        ),
        (
            "RequireAnyClientCert",
            tls("  client_auth_type: RequireAnyClientCert\n  client_ca_file: certs/ca.crt\n"),
            |e, _| matches!(e, WebConfigError::Unsupported { .. }),
        ),
        (
            "a client CA file that is no certificate",
            tls("  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: certs/ca.key\n"),
            |e, dir| matches!(e, WebConfigError::ClientCa { path: Some(path), .. } if path == &dir.join("certs/ca.key")),
        ),
    ];
    // Every case is checked; the failures are reported together.
    let mut wrong = Vec::new();
    for (what, yaml, check) in &cases {
        let err = match load(&dir, "config.yml", yaml) {
            Ok(config) => {
                wrong.push(format!("{what}: accepted as {config:?}"));
                continue;
            }
            Err(e) => e,
        };
        if !check(&err, &dir) {
            wrong.push(format!("{what}: wrong error {err:?} ({err})"));
        }
        let text = err.to_string();
        assert!(!text.is_empty(), "{what}");
        // No secret in any error.
        assert!(!text.contains(bad_hash), "{what}: {text}");
        assert!(!format!("{err:?}").contains(bad_hash), "{what}: {err:?}");
        assert!(!text.contains(&hash), "{what}: {text}");
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // A missing config file is a read error naming it.
    let missing = dir.join("nonexistent.yml");
    match WebConfig::from_file(&missing) {
        Err(WebConfigError::Read { path, .. }) => assert_eq!(path, missing),
        other => panic!("{other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn empty_web_config_files_mean_plain_http_without_auth() {
    let dir = config_dir("empty");
    let reg = sample_registry();
    for (what, yaml) in [
        ("an empty file", ""),
        ("blank lines", "\n\n  \n"),
        ("comments only", "# no TLS, no auth yet\n"),
        ("an empty TLS section", "tls_server_config: {}\n"),
        ("a null TLS section", "tls_server_config:\n"),
        (
            "an empty TLS section and no users",
            "tls_server_config: {}\nbasic_auth_users: {}\n",
        ),
    ] {
        let config = load(&dir, "web.yml", yaml).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(config.tls_config().is_none(), "{what}");
        assert!(!config.requires_auth(), "{what}");
        let server = spawn(&reg, config, |b| b);
        let (status, body) = support::http_request(server.local_addr(), "GET", "/metrics").unwrap();
        assert_eq!(status, 200, "{what}");
        assert_eq!(body, exposition(&reg), "{what}");
        assert_eq!(server.stats().scrapes, 1, "{what}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
