//! The pusher's HTTP client: `POST /write` to an InfluxDB 1.x server with
//! [`ureq`] (plain HTTP/1.1, no TLS, on the pusher's own thread), and the
//! answer classified for the pusher.
//!
//! - **URL**: `http://HOST:PORT/write?db=NAME[&rp=POLICY]&precision=ns`,
//!   the database and policy percent-encoded (everything but RFC 3986's
//!   unreserved characters).
//! - **Headers**: `Host`, `User-Agent: metricz/VERSION`, `Content-Type:
//!   text/plain; charset=utf-8`, `Content-Length`, `Connection: close`
//!   (one connection per request, none pooled), and with credentials
//!   `Authorization: Basic …`. They are written in this casing.
//! - **Timeouts**: connecting is bounded by the connect timeout (over all
//!   the resolved addresses together); sending the request head, sending
//!   the body, receiving the response head and reading an error body are
//!   each bounded by the I/O timeout. Name resolution is not bounded.
//! - **Answers**: 2xx is success; 400 and 413 refuse the data itself
//!   ([`PushError::Rejected`]: the pusher drops it); any other status is
//!   a failure to retry ([`PushError::Http`]). Redirects are not followed,
//!   proxies from the environment are not used. At most
//!   [`MAX_ERROR_BODY`] bytes of an error body are read, for the message.
//! - **Errors**: a timeout is [`PushError::TimedOut`] with its phase
//!   (`"connect"`, `"send"`, `"receive"`); a refused or unreachable
//!   connection is [`PushError::Io`] with op `"connect"`; a connection
//!   closed before a whole response head, or an answer that is not
//!   HTTP/1.x, is [`PushError::MalformedResponse`]; a host that resolves
//!   to nothing is [`PushError::Unresolved`]; other I/O errors are
//!   [`PushError::Io`] with op `"send"` (a broken pipe) or `"request"`
//!   (ureq does not say in which phase they happened).

use crate::export::push::PushError;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::io::{self, Read};
use std::time::Duration;
use ureq::http::Uri;
use ureq::{Agent, Timeout};

/// Response head bytes read at most.
const MAX_HEAD_BYTES: usize = 16 << 10;
/// Response body bytes kept for an error message.
const MAX_ERROR_BODY: usize = 512;

/// Bytes kept as they are in a query parameter value: RFC 3986's
/// unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

const USER_AGENT: &str = concat!("metricz/", env!("CARGO_PKG_VERSION"));

/// Why a POST failed.
pub(super) enum Failure {
    /// The server is unreachable, slow, or answered an error: retry later.
    Sink(PushError),
    /// The server refused the data: drop it.
    Refused(PushError),
}

/// An HTTP client for one server's `POST /write`.
pub(super) struct Transport {
    agent: Agent,
    /// The write endpoint: `http://HOST:PORT/write?db=…`.
    url: Uri,
    /// `HOST:PORT` as given, for the `Host` header and messages.
    addr: String,
    /// `Basic …`, with credentials.
    authorization: Option<String>,
}

impl Transport {
    /// A client for `addr` (`host:port`, checked by the caller), writing
    /// into `database` (non-empty, checked by the caller). Errors: `addr`
    /// does not make a valid URL ([`PushError::InvalidAddress`]).
    pub(super) fn new(
        addr: String,
        database: &str,
        retention_policy: Option<&str>,
        credentials: Option<&(String, String)>,
        connect_timeout: Duration,
        io_timeout: Duration,
    ) -> Result<Transport, PushError> {
        let url = format!("http://{addr}{}", write_path(database, retention_policy))
            .parse::<Uri>()
            .map_err(|_| PushError::InvalidAddress(addr.clone()))?;
        let io = Some(io_timeout);
        let agent: Agent = Agent::config_builder()
            // A non-2xx answer is a response to classify, not an error.
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .proxy(None)
            // The headers are ours (see `post`), in their usual casing.
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
            authorization: credentials.map(|(user, password)| basic_auth(user, password)),
        })
    }

    /// POSTs `body`; success on 2xx.
    pub(super) fn post(&self, body: &[u8]) -> Result<(), Failure> {
        let mut request = self
            .agent
            .post(&self.url)
            .header_raw("Host", self.addr.as_bytes())
            .header_raw("User-Agent", USER_AGENT.as_bytes())
            .header_raw("Content-Type", b"text/plain; charset=utf-8")
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
        Err(match status {
            400 | 413 => Failure::Refused(PushError::Rejected { status, body }),
            _ => Failure::Sink(PushError::Http { status, body }),
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

/// `/write?db=…[&rp=…]&precision=ns`, values percent-encoded.
fn write_path(database: &str, retention_policy: Option<&str>) -> String {
    let mut path = format!("/write?db={}", utf8_percent_encode(database, QUERY_VALUE));
    if let Some(rp) = retention_policy {
        path.push_str("&rp=");
        path.extend(utf8_percent_encode(rp, QUERY_VALUE));
    }
    path.push_str("&precision=ns");
    path
}

/// The `Authorization` value for HTTP Basic credentials.
fn basic_auth(user: &str, password: &str) -> String {
    format!("Basic {}", BASE64.encode(format!("{user}:{password}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            write_path("my db&x=é", Some("a~b.c-d_e/f")),
            "/write?db=my%20db%26x%3D%C3%A9&rp=a~b.c-d_e%2Ff&precision=ns"
        );
        assert_eq!(write_path("db", None), "/write?db=db&precision=ns");
    }

    #[test]
    fn basic_credentials_are_base64() {
        assert_eq!(basic_auth("user", "pass"), "Basic dXNlcjpwYXNz");
        assert_eq!(basic_auth("", ""), "Basic Og==");
        assert_eq!(basic_auth("f", "o:o"), "Basic ZjpvOm8=");
    }

    #[test]
    fn addresses_that_make_no_url_are_refused() {
        let new = |addr: &str| {
            Transport::new(
                addr.to_string(),
                "db",
                None,
                None,
                Duration::from_secs(1),
                Duration::from_secs(1),
            )
        };
        assert!(new("127.0.0.1:8086").is_ok());
        assert!(new("[::1]:8086").is_ok());
        assert!(matches!(new("a b:1"), Err(PushError::InvalidAddress(_))));
    }
}
