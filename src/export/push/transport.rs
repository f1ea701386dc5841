//! The HTTP pushers' client: one request to a server with [`ureq`] (plain
//! HTTP/1.1, no TLS, on the pusher's own thread, or the caller's for a
//! synchronous client), and the answer classified for the pusher. Shared
//! by the InfluxDB, Pushgateway and remote-write sinks; each adds its URL,
//! its `Content-Type` (and any other header) and its rule for which
//! statuses refuse the data.
//!
//! # API
//!
//! ```text
//! Transport::new(addr, url, connect_timeout, io_timeout) -> Result<Transport, PushError>
//!     .with_authorization(Some("Basic …".into()))      // optional
//!     .send(Method::Put, None, &[("Content-Type", b"…")], body, refused) -> Result<(), Failure>
//! basic_auth(user, password) -> "Basic …"
//! ```
//!
//! `url` is a whole `http://HOST:PORT/PATH?QUERY` URL (made by the sink,
//! its parts already percent-encoded), `addr` the `HOST:PORT` inside it,
//! as given (for `Host` and for messages). [`Transport::send`] sends to
//! that URL, or to another one given for that request (same server).
//! `refused(status)` says which non-2xx statuses refuse the data itself
//! ([`Failure::Refused`]: the caller drops it); every other non-2xx status
//! is [`Failure::Sink`] (retry later).
//!
//! # Contract
//!
//! - **Headers**: `Host`, `User-Agent: metricz/VERSION`, the sink's own
//!   headers (in the order given), `Content-Length` (also for an empty
//!   body), `Connection: close` (one connection per request, none pooled),
//!   and with credentials `Authorization`. They are written in this
//!   casing.
//! - **Timeouts**: connecting is bounded by the connect timeout (over all
//!   the resolved addresses together); sending the request head, sending
//!   the body, receiving the response head and reading an error body are
//!   each bounded by the I/O timeout. Name resolution is not bounded.
//! - **Answers**: 2xx is success; a status that `refused` accepts is
//!   [`PushError::Rejected`] (as [`Failure::Refused`]); any other status
//!   is [`PushError::Http`] (as [`Failure::Sink`]). Redirects are not
//!   followed, proxies from the environment are not used. At most
//!   [`MAX_ERROR_BODY`] bytes of an error body are read, for the message.
//! - **Errors** (all [`Failure::Sink`]): a timeout is
//!   [`PushError::TimedOut`] with its phase (`"connect"`, `"send"`,
//!   `"receive"`); a refused or unreachable connection is
//!   [`PushError::Io`] with op `"connect"`; a connection closed before a
//!   whole response head, or an answer that is not HTTP/1.x, is
//!   [`PushError::MalformedResponse`]; a host that resolves to nothing is
//!   [`PushError::Unresolved`]; other I/O errors are [`PushError::Io`]
//!   with op `"send"` (a broken pipe) or `"request"` (ureq does not say in
//!   which phase they happened).

use super::error::PushError;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use std::io::{self, Read};
use std::time::Duration;
pub(crate) use ureq::http::Uri;
use ureq::{Agent, Timeout};

/// Response head bytes read at most.
const MAX_HEAD_BYTES: usize = 16 << 10;
/// Response body bytes kept for an error message.
const MAX_ERROR_BODY: usize = 512;

const USER_AGENT: &str = concat!("metricz/", env!("CARGO_PKG_VERSION"));

/// The request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `DELETE` (the body is sent as given; usually empty).
    Delete,
}

/// Why a request failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The server is unreachable, slow, or answered an error: retry later.
    Sink(PushError),
    /// The server refused the data: drop it.
    Refused(PushError),
}

impl Failure {
    /// The error, whichever kind of failure it is.
    pub(crate) fn into_error(self) -> PushError {
        match self {
            Failure::Sink(e) | Failure::Refused(e) => e,
        }
    }
}

/// An HTTP client for one server (see the module docs).
pub(crate) struct Transport {
    agent: Agent,
    /// The default URL: `http://HOST:PORT/…`.
    url: Uri,
    /// `HOST:PORT` as given, for the `Host` header and messages.
    addr: String,
    /// The whole `Authorization` value (`Basic …`), with credentials.
    authorization: Option<String>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No credentials in debug output.
        f.debug_struct("Transport")
            .field("url", &self.url)
            .field("authorization", &self.authorization.as_ref().map(|_| ".."))
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// A client for `url` (a whole `http://` URL) on the server at `addr`
    /// (`host:port`, checked by the caller). Errors: `url` is not a valid
    /// URL ([`PushError::InvalidAddress`] naming `addr`). Nothing is
    /// resolved or connected here.
    pub(crate) fn new(
        addr: String,
        url: &str,
        connect_timeout: Duration,
        io_timeout: Duration,
    ) -> Result<Transport, PushError> {
        let url = parse_url(&addr, url)?;
        let io = Some(io_timeout);
        let agent: Agent = Agent::config_builder()
            // A non-2xx answer is a response to classify, not an error.
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .proxy(None)
            // The headers are ours (see `send`), in their usual casing.
            .user_agent("")
            .accept("")
            .max_response_header_size(MAX_HEAD_BYTES)
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .timeout_connect(Some(connect_timeout))
            .timeout_send_request(io)
            .timeout_send_body(io)
            .timeout_recv_response(io)
            .timeout_recv_body(io)
            .build()
            .into();
        Ok(Transport {
            agent,
            url,
            addr,
            authorization: None,
        })
    }

    /// Sends `Authorization: VALUE` with every request (e.g. from
    /// [`basic_auth`]); `None` sends none.
    pub(crate) fn with_authorization(mut self, value: Option<String>) -> Self {
        self.authorization = value;
        self
    }

    /// `HOST:PORT` as given to [`new`](Self::new).
    #[allow(dead_code)] // for sinks' messages
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// The URL given to [`new`](Self::new).
    #[allow(dead_code)] // for sinks' messages
    pub(crate) fn url(&self) -> &Uri {
        &self.url
    }

    /// Sends one request: `method` to `url` (default: the one given to
    /// [`new`](Self::new)) with `body` and `headers` (name, value) besides
    /// the fixed ones (see the module docs). Success on 2xx; a status for
    /// which `refused` is true is [`Failure::Refused`], any other failure
    /// [`Failure::Sink`].
    pub(crate) fn send(
        &self,
        method: Method,
        url: Option<&Uri>,
        headers: &[(&str, &[u8])],
        body: &[u8],
        refused: fn(u16) -> bool,
    ) -> Result<(), Failure> {
        let url = url.unwrap_or(&self.url);
        let mut request = match method {
            Method::Post => self.agent.post(url),
            Method::Put => self.agent.put(url),
            Method::Delete => self.agent.delete(url).force_send_body(),
        }
        .header_raw("Host", self.addr.as_bytes())
        .header_raw("User-Agent", USER_AGENT.as_bytes());
        for (name, value) in headers {
            request = request.header_raw(name, value);
        }
        request = request
            .header_raw(
                "Content-Length",
                itoa::Buffer::new().format(body.len()).as_bytes(),
            )
            .header_raw("Connection", b"close");
        if let Some(auth) = &self.authorization {
            request = request.header_raw("Authorization", auth.as_bytes());
        }
        let mut response = request
            .send(body)
            .map_err(|e| Failure::Sink(self.classify(e)))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        // The start of the body, for the message: read errors (a timeout,
        // a connection closed early) end it where it is.
        let mut start = Vec::new();
        let _ = response
            .body_mut()
            .as_reader()
            .take(MAX_ERROR_BODY as u64)
            .read_to_end(&mut start);
        let body = String::from_utf8_lossy(&start).trim().to_string();
        Err(if refused(status) {
            Failure::Refused(PushError::Rejected { status, body })
        } else {
            Failure::Sink(PushError::Http { status, body })
        })
    }

    /// A failed exchange as a push error (see the module docs).
    fn classify(&self, error: ureq::Error) -> PushError {
        match error {
            ureq::Error::Timeout(phase) => PushError::TimedOut {
                op: timeout_op(phase),
            },
            ureq::Error::HostNotFound => PushError::Unresolved(self.addr.clone()),
            ureq::Error::Io(e) => match e.kind() {
                io::ErrorKind::ConnectionRefused
                | io::ErrorKind::HostUnreachable
                | io::ErrorKind::NetworkUnreachable
                | io::ErrorKind::NetworkDown
                | io::ErrorKind::AddrNotAvailable => PushError::io("connect", e),
                // ureq's word for a peer that closed before the response
                // head was complete.
                io::ErrorKind::UnexpectedEof => PushError::MalformedResponse(
                    "connection closed without a complete response".to_string(),
                ),
                io::ErrorKind::BrokenPipe | io::ErrorKind::WriteZero => PushError::io("send", e),
                _ => PushError::io("request", e),
            },
            ureq::Error::Protocol(e) => PushError::MalformedResponse(e.to_string()),
            ureq::Error::LargeResponseHeader(..) => {
                PushError::MalformedResponse("headers too long".to_string())
            }
            other => PushError::io("request", other.into_io()),
        }
    }
}

/// `url` parsed; an invalid one is [`PushError::InvalidAddress`] naming
/// `addr`.
pub(crate) fn parse_url(addr: &str, url: &str) -> Result<Uri, PushError> {
    url.parse::<Uri>()
        .map_err(|_| PushError::InvalidAddress(addr.to_string()))
}

/// The operation a ureq timeout phase stands for.
fn timeout_op(phase: Timeout) -> &'static str {
    match phase {
        Timeout::Resolve => "resolve",
        Timeout::Connect => "connect",
        Timeout::SendRequest | Timeout::SendBody | Timeout::PerWrite => "send",
        Timeout::RecvResponse | Timeout::RecvBody | Timeout::PerRead => "receive",
        _ => "request",
    }
}

/// The `Authorization` value for HTTP Basic credentials.
pub(crate) fn basic_auth(user: &str, password: &str) -> String {
    format!("Basic {}", BASE64.encode(format!("{user}:{password}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_base64() {
        assert_eq!(basic_auth("user", "pass"), "Basic dXNlcjpwYXNz");
        assert_eq!(basic_auth("", ""), "Basic Og==");
        assert_eq!(basic_auth("f", "o:o"), "Basic ZjpvOm8=");
    }

    #[test]
    fn urls_that_do_not_parse_are_refused() {
        let new = |addr: &str| {
            Transport::new(
                addr.to_string(),
                &format!("http://{addr}/x"),
                Duration::from_secs(1),
                Duration::from_secs(1),
            )
        };
        assert!(new("127.0.0.1:8086").is_ok());
        assert!(new("[::1]:8086").is_ok());
        assert!(matches!(new("a b:1"), Err(PushError::InvalidAddress(a)) if a == "a b:1"));
    }

    #[test]
    fn debug_output_hides_credentials() {
        let t = Transport::new(
            "127.0.0.1:1".to_string(),
            "http://127.0.0.1:1/",
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
        .unwrap()
        .with_authorization(Some(basic_auth("user", "secret")));
        let debug = format!("{t:?}");
        assert!(
            !debug.contains(&basic_auth("user", "secret")[6..]),
            "{debug}"
        );
        assert!(debug.contains("127.0.0.1:1"), "{debug}");
    }

    /// A one-shot server on loopback: answers `response` to the first
    /// connection and returns what it read.
    fn serve_once(response: &'static str) -> (String, std::thread::JoinHandle<Vec<u8>>) {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let handle = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            // Read the head, then Content-Length bytes of body.
            loop {
                let n = conn.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                    if got.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            conn.write_all(response.as_bytes()).unwrap();
            got
        });
        (addr, handle)
    }

    #[test]
    #[cfg_attr(miri, ignore = "sockets")]
    fn requests_carry_the_method_headers_and_body() {
        for (method, word) in [
            (Method::Put, "PUT"),
            (Method::Post, "POST"),
            (Method::Delete, "DELETE"),
        ] {
            let (addr, server) = serve_once("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
            let t = Transport::new(
                addr.clone(),
                &format!("http://{addr}/a/b%2Fc"),
                Duration::from_secs(2),
                Duration::from_secs(2),
            )
            .unwrap()
            .with_authorization(Some("Basic eDp5".to_string()));
            let body: &[u8] = if method == Method::Delete {
                b""
            } else {
                b"x 1\n"
            };
            t.send(
                method,
                None,
                &[("Content-Type", b"text/plain")],
                body,
                |_| false,
            )
            .unwrap();
            let got = String::from_utf8(server.join().unwrap()).unwrap();
            let expected = format!(
                "{word} /a/b%2Fc HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: {USER_AGENT}\r\n\
                 Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\
                 Authorization: Basic eDp5\r\n\r\n{}",
                body.len(),
                String::from_utf8_lossy(body)
            );
            assert_eq!(got, expected);
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "sockets")]
    fn statuses_are_classified_by_the_callers_rule() {
        let send = |response: &'static str| {
            let (addr, server) = serve_once(response);
            let t = Transport::new(
                addr.clone(),
                &format!("http://{addr}/"),
                Duration::from_secs(2),
                Duration::from_secs(2),
            )
            .unwrap();
            let result = t.send(Method::Post, None, &[], b"x", |s| s == 400);
            server.join().unwrap();
            result
        };
        let refused = send("HTTP/1.1 400 Bad Request\r\nContent-Length: 4\r\n\r\nbad\n");
        assert!(
            matches!(&refused, Err(Failure::Refused(PushError::Rejected { status: 400, body })) if body == "bad"),
            "{refused:?}"
        );
        let failed = send("HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n");
        assert!(
            matches!(
                &failed,
                Err(Failure::Sink(PushError::Http { status: 413, .. }))
            ),
            "{failed:?}"
        );
        assert!(matches!(
            failed.unwrap_err().into_error(),
            PushError::Http { status: 413, .. }
        ));
    }
}
