//! The InfluxDB pusher's HTTP client: `POST /write` to an InfluxDB 1.x
//! server through the pushers' shared
//! [transport](crate::export::push) (headers, timeouts and error
//! classification are documented there). What is InfluxDB's own:
//!
//! - **URL**: `http://HOST:PORT/write?db=NAME[&rp=POLICY]&precision=ns`,
//!   the database and policy percent-encoded (everything but RFC 3986's
//!   unreserved characters).
//! - **Headers**: `Content-Type: text/plain; charset=utf-8`, and with
//!   credentials `Authorization: Basic …`.
//! - **Answers**: 400 and 413 refuse the data itself
//!   ([`PushError::Rejected`]: the pusher drops it); any other non-2xx
//!   status is a failure to retry ([`PushError::Http`]).

pub(super) use crate::export::push::Failure;
use crate::export::push::{basic_auth, Method, PushError};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::time::Duration;

/// Bytes kept as they are in a query parameter value: RFC 3986's
/// unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

const CONTENT_TYPE: &[u8] = b"text/plain; charset=utf-8";

/// An HTTP client for one server's `POST /write`.
pub(super) struct Transport(crate::export::push::Transport);

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
        let url = format!("http://{addr}{}", write_path(database, retention_policy));
        let transport =
            crate::export::push::Transport::new(addr, &url, connect_timeout, io_timeout)?
                .with_authorization(credentials.map(|(user, password)| basic_auth(user, password)));
        Ok(Transport(transport))
    }

    /// POSTs `body`; success on 2xx.
    pub(super) fn post(&self, body: &[u8]) -> Result<(), Failure> {
        self.0.send(
            Method::Post,
            None,
            &[("Content-Type", CONTENT_TYPE)],
            body,
            refused,
        )
    }
}

/// Whether a status refuses the data itself: 400 (bad points) and 413
/// (too large a batch).
fn refused(status: u16) -> bool {
    matches!(status, 400 | 413)
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
    fn bad_points_and_large_batches_are_refused() {
        assert!(refused(400));
        assert!(refused(413));
        for status in [401, 404, 429, 500, 503] {
            assert!(!refused(status), "{status}");
        }
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
