//! The `/metrics` HTTP endpoint (feature `http`): a small HTTP/1.1 server
//! on [hyper](https://docs.rs/hyper) 1 that runs on its own thread with its
//! own single-threaded tokio runtime, so programs without tokio can use it,
//! and [`render`](fn@render) for programs that already run a web framework.
//!
//! ```
//! use metricz::export::http::Server;
//! use metricz::Registry;
//! use std::io::{Read, Write};
//!
//! let registry = Registry::new();
//! registry.counter("jobs_total", "Jobs run.")?.add(3);
//!
//! // Port 0: any free port (the default is 127.0.0.1:9184).
//! let server = Server::builder(registry.clone())
//!     .bind("127.0.0.1:0".parse()?)
//!     .spawn()?;
//!
//! let mut stream = std::net::TcpStream::connect(server.local_addr())?;
//! stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
//! let mut response = String::new();
//! stream.read_to_string(&mut response)?;
//! assert!(response.starts_with("HTTP/1.1 200 OK\r\n"));
//! assert!(response.contains("\njobs_total 3\n"));
//!
//! server.shutdown(); // also on drop
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Requests
//!
//! `GET` (and `HEAD`) of the configured path (default `/metrics`, any
//! query string) answers `200` with the registry's exposition: the
//! protobuf exposition with native histograms when the `Accept` header
//! prefers `application/vnd.google.protobuf` (as a Prometheus server's does
//! with native histograms on), OpenMetrics 1.0 when it prefers
//! `application/openmetrics-text` (as a Prometheus server's does
//! otherwise), Prometheus text 0.0.4 otherwise ([`Format::negotiate`]). Other paths answer `404`, other methods `405`
//! (with `Allow: GET, HEAD`), and a request with a body `413`, after
//! which the connection is closed. Malformed requests get hyper's `400`
//! (or `431` for oversized headers) and a closed connection.
//!
//! Each connection encodes into its own `String` that it keeps between
//! requests, so a kept-alive scraper costs no buffer growth after its first
//! scrape (the response body is one copy of it). Connections are served
//! concurrently but encoded one at a time, on the server thread: scrapes
//! never take more than one core from the program.
//!
//! # Limits
//!
//! Every resource a client can hold is bounded (defaults in parentheses, set
//! on [`ServerBuilder`]):
//!
//! - **Connections** ([`DEFAULT_MAX_CONNECTIONS`]): a connection beyond the
//!   limit is answered at once with `503 Service Unavailable` (best effort,
//!   without reading its request; over TLS, with nothing) and closed;
//!   nothing queues.
//! - **Header size** ([`DEFAULT_MAX_HEADER_BYTES`]): the request line and
//!   headers together; more is answered `431` and the connection closed.
//!   Request bodies are refused (`413`).
//! - **Header read time** ([`DEFAULT_HEADER_READ_TIMEOUT`]): from the
//!   moment the server waits for a request until its headers are complete.
//!   It also closes a kept-alive connection that stays idle this long.
//! - **Whole-request time** ([`DEFAULT_REQUEST_TIMEOUT`]): from a
//!   request's first byte until its response has been handed to the
//!   kernel, so a client that sends slowly (slowloris) or reads the
//!   response slowly is cut off.
//!
//! A timed-out connection is closed without a response. [`ServerHandle::stats`]
//! counts accepted, refused and timed-out connections.
//!
//! The header read time, the header size and the graceful shutdown are
//! hyper's documented settings (`http1::Builder::header_read_timeout` with
//! hyper-util's `TokioTimer`, `max_header_size`, `graceful_shutdown`).
//! The whole-request time is not: no hyper or tokio timeout runs from a
//! request's first byte to its response's last while letting a kept-alive
//! connection idle between requests (`tokio::time::timeout` around the
//! connection would bound its idle time and all its requests together).
//! It is kept by an I/O wrapper around the connection's stream, which
//! relies on when hyper flushes a response; the `deadline` file says what
//! it assumes of hyper and which tests fail should a hyper upgrade break
//! it.
//!
//! # TLS and authentication
//!
//! The endpoint binds loopback by default. To be scraped from other hosts,
//! bind a routable address and give the server a [`WebConfig`]
//! ([`ServerBuilder::web_config`]): built in code, or read with
//! [`WebConfig::from_file`] from a file in the Prometheus exporter
//! toolkit's web config format (`tls_server_config`, `basic_auth_users`),
//! which Prometheus's scrape settings (`scheme: https`, `tls_config`,
//! `basic_auth`, `authorization`) speak natively.
//!
//! - **TLS** (feature `tls`, [`TlsConfig`]): rustls with its ring provider,
//!   TLS 1.2 and 1.3 only, a certificate chain and key from PEM, and
//!   optionally client certificates verified against a CA (mutual TLS,
//!   [`ClientAuth`]). The handshake runs inside the connection limit and
//!   must be done within the header read time: a client that stalls in it
//!   holds one connection slot that long, and is counted in
//!   [`ServerStats::timeouts`] (the request's headers then get their own
//!   header read time, so a connection's first request may take twice
//!   it); a failed handshake is counted in
//!   [`ServerStats::tls_handshake_failures`]. A client that only opens
//!   connections and stalls can hold every slot: keep the header read time
//!   short where the endpoint faces untrusted networks.
//! - **Authentication**: basic auth against bcrypt-hashed passwords,
//!   and bearer tokens. A request without valid credentials is answered
//!   `401` with a `WWW-Authenticate` challenge, whatever its path, before
//!   it is routed, and its connection closed: it never reaches the
//!   encoder. It is counted in [`ServerStats::unauthorized`]. A password
//!   not seen before is checked with bcrypt on tokio's blocking pool, one
//!   at a time, never on the server thread, so other scrapes go on; a
//!   password that verified is kept (one per user) and checked in constant
//!   time after that. At most 8 requests wait for bcrypt; more are
//!   answered `503` with `Retry-After` (counted as rejected). Credentials
//!   appear in no log, error or `Debug` output.
//!
//! Every file is read and checked when the config is built, so a missing
//! certificate, a key that is not the certificate's or a hash that is not
//! bcrypt is a [`WebConfigError`] at start-up, never an error at the first
//! request.
//!
//! # Shutdown
//!
//! [`ServerHandle::shutdown`] (or dropping the handle) stops accepting,
//! lets requests in flight finish for up to
//! [`ServerBuilder::shutdown_timeout`], closes idle kept-alive
//! connections, and joins the server thread.
//!
//! # Layout
//!
//! One concept a file, none importing this one: `render`, `builder`
//! (settings, defaults, start), `handle` (a running server, its counts),
//! `error`, `state` (what connections share), `accept` (the accept loop
//! and the connection limit), `connection` (one connection over hyper),
//! `service` (the answers), `deadline` (the whole-request deadline),
//! `auth` (the credential check), `web_config` (the config and its file
//! format), `config_error` (why a config could not be built), `tls`
//! (rustls settings, feature `tls`), and `tests` (the tests that pin what
//! the deadline assumes of hyper).
//!
//! [`Format::negotiate`]: crate::export::Format::negotiate

mod accept;
mod auth;
mod builder;
mod config_error;
mod connection;
mod deadline;
mod error;
mod handle;
mod render;
mod service;
mod state;
#[cfg(test)]
mod tests;
#[cfg(feature = "tls")]
mod tls;
mod web_config;

pub use builder::{
    Server, ServerBuilder, DEFAULT_ADDR, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_HEADER_BYTES, DEFAULT_PATH, DEFAULT_REQUEST_TIMEOUT, DEFAULT_SHUTDOWN_TIMEOUT,
};
pub use error::ServerError;
pub use handle::{ServerHandle, ServerStats};
pub use render::render;
#[cfg(feature = "tls")]
pub use tls::{ClientAuth, TlsConfig, TlsVersion};
pub use web_config::{WebConfig, WebConfigError};
