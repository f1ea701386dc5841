//! The endpoint's scrape cost over TLS against plain HTTP (criterion), on
//! one registry of 10 000 labelled counter series: each bench scrapes
//! `GET /metrics` over one kept-alive connection, so the TLS handshake is
//! done once, before timing, and what is timed is a whole scrape as a
//! client sees it: request written, response (about 660 KB) read to its
//! last byte.
//!
//! ```text
//! cargo bench --features tls --bench http
//! ```
//!
//! Peers in the same group and run: `plain` (HTTP/1.1 over TCP), `tls13`
//! (TLS 1.3, the default), `tls12` (a server that speaks TLS 1.2 only). The
//! client offers AES-128-GCM first, as a Prometheus server (Go's
//! `crypto/tls`) does, and the bench checks that it was negotiated.
//! `tls13-basic-auth` adds basic auth with a bcrypt hash (cost 10): after
//! the first request the credentials come from the endpoint's cache, so
//! it shows the cost of a cached check. Before timing, each path's answer
//! is checked to be the registry's exposition, byte for byte.

#[path = "../tests/support/tls.rs"]
#[allow(dead_code)]
mod tls;

use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use metricz::export::http::{Server, ServerHandle, TlsConfig, TlsVersion, WebConfig};
use metricz::Registry;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

/// Series in the scraped registry.
const SERIES: usize = 10_000;

fn registry() -> Registry {
    let reg = Registry::new();
    let family = reg
        .counter_vec("bench_requests_total", "Requests.", &["method", "status"])
        .expect("valid family");
    for i in 0..SERIES {
        let (m, s) = (format!("m{}", i / 100), format!("s{}", i % 100));
        family
            .with(&[&m, &s])
            .expect("two labels")
            .add(i as u64 + 1);
    }
    reg
}

/// A kept-alive HTTP/1.1 client over any stream.
struct Client<S: Read + Write> {
    stream: BufReader<S>,
    request: Vec<u8>,
    body: Vec<u8>,
}

/// What the bench needs of a client, whatever its stream.
trait Scrape {
    /// One scrape: the status and the body's length.
    fn scrape(&mut self) -> (u16, usize);
    /// The last scrape's body.
    fn body(&self) -> &[u8];
}

impl<S: Read + Write> Scrape for Client<S> {
    fn scrape(&mut self) -> (u16, usize) {
        Client::scrape(self)
    }

    fn body(&self) -> &[u8] {
        &self.body
    }
}

impl<S: Read + Write> Client<S> {
    fn new(stream: S, authorization: Option<&str>) -> Self {
        let auth = authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        Client {
            stream: BufReader::with_capacity(64 * 1024, stream),
            request: format!("GET /metrics HTTP/1.1\r\nHost: localhost\r\n{auth}\r\n").into_bytes(),
            body: Vec::new(),
        }
    }

    /// One scrape: the status and the body's length (the body is kept).
    fn scrape(&mut self) -> (u16, usize) {
        self.stream
            .get_mut()
            .write_all(&self.request)
            .expect("write");
        self.stream.get_mut().flush().expect("flush");
        let mut line = String::new();
        self.stream.read_line(&mut line).expect("status line");
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        let mut length = None;
        loop {
            line.clear();
            self.stream.read_line(&mut line).expect("header");
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                }
            }
        }
        let length = length.expect("content-length");
        self.body.resize(length, 0);
        self.stream.read_exact(&mut self.body).expect("body");
        (status, length)
    }
}

fn server(reg: &Registry, config: WebConfig) -> ServerHandle {
    Server::builder(reg.clone())
        .bind("127.0.0.1:0".parse().expect("address"))
        .web_config(config)
        .spawn()
        .expect("server")
}

fn tls_config(min: TlsVersion, max: TlsVersion) -> TlsConfig {
    let pki = tls::pki();
    TlsConfig::from_pem_files(&pki.server_cert, &pki.server_key)
        .and_then(|tls| tls.versions(min, max))
        .expect("TLS config")
}

fn tls_client(
    addr: SocketAddr,
    authorization: Option<&str>,
) -> Client<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    let stream = tls::connect(addr, tls::scraper_config()).expect("handshake");
    let suite = stream
        .conn
        .negotiated_cipher_suite()
        .expect("handshake done");
    assert!(
        format!("{:?}", suite.suite()).contains("AES_128_GCM"),
        "negotiated {suite:?}"
    );
    Client::new(stream, authorization)
}

fn scrape(c: &mut Criterion) {
    let reg = registry();
    let mut expected = String::new();
    reg.encode_prometheus(&mut expected).expect("encode");
    let mut group = c.benchmark_group("scrape-10k");
    group.throughput(Throughput::Elements(SERIES as u64));

    let mut bench = |name: &str, client: &mut dyn Scrape| {
        let (status, _) = client.scrape();
        assert_eq!(status, 200, "{name}");
        assert!(
            client.body() == expected.as_bytes(),
            "{name}: not the registry's exposition"
        );
        group.bench_function(name, |b| b.iter(|| client.scrape().1));
    };

    let plain = server(&reg, WebConfig::new());
    let stream = TcpStream::connect(plain.local_addr()).expect("connect");
    bench("plain", &mut Client::new(stream, None));

    for (name, min, max) in [
        ("tls13", TlsVersion::Tls12, TlsVersion::Tls13),
        ("tls12", TlsVersion::Tls12, TlsVersion::Tls12),
    ] {
        let server = server(&reg, WebConfig::new().tls(tls_config(min, max)));
        bench(name, &mut tls_client(server.local_addr(), None));
    }

    let hash = bcrypt::hash("bench-password", 10).expect("hash");
    let config = WebConfig::new()
        .tls(tls_config(TlsVersion::Tls12, TlsVersion::Tls13))
        .basic_auth_user("bench", &hash)
        .expect("user");
    let server = server(&reg, config);
    let credentials = base64::engine::general_purpose::STANDARD.encode("bench:bench-password");
    let authorization = format!("Basic {credentials}");
    bench(
        "tls13-basic-auth",
        &mut tls_client(server.local_addr(), Some(&authorization)),
    );
    group.finish();
}

criterion_group!(benches, scrape);
criterion_main!(benches);
