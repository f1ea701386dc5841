//! [`MetricsService`]: what one connection answers (the metrics, `401`,
//! `404`, `405`, `413`), and the counts of scrapes, refused credentials and
//! rejections.

use super::deadline::ConnState;
use super::render::render;
use super::state::Shared;
use crate::primitive::std_only::Arc;
use crate::primitive::Ordering::Relaxed;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body as _, Incoming};
use hyper::header::{
    HeaderValue, ACCEPT, ALLOW, AUTHORIZATION, CONNECTION, CONTENT_TYPE, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode};
use std::cell::RefCell;
use std::convert::Infallible;

/// Answers one connection's requests.
pub(crate) struct MetricsService {
    shared: Arc<Shared>,
    /// Encoded into by every scrape of this connection.
    buf: RefCell<Vec<u8>>,
    state: Arc<ConnState>,
}

type Reply = Response<Full<Bytes>>;

impl hyper::service::Service<Request<Incoming>> for MetricsService {
    type Response = Reply;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Reply, Infallible>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let response = self.respond(&request);
        let stats = &self.shared.stats;
        let count = match response.status() {
            StatusCode::OK => &stats.scrapes,
            StatusCode::UNAUTHORIZED => &stats.unauthorized,
            _ => &stats.rejected,
        };
        count.fetch_add(1, Relaxed);
        self.state.mark_responded();
        std::future::ready(Ok(response))
    }
}

impl MetricsService {
    /// The service of one connection of the server `shared`; `state` is
    /// shared with the connection's [`Deadline`](super::deadline::Deadline).
    pub(crate) fn new(shared: Arc<Shared>, state: Arc<ConnState>) -> Self {
        MetricsService {
            shared,
            buf: RefCell::new(Vec::new()),
            state,
        }
    }

    /// The response to `request`. A scrape's body is one
    /// [`Full`] chunk, copied from the connection's buffer (the
    /// [`Deadline`](super::deadline::Deadline) relies on it).
    fn respond(&self, request: &Request<Incoming>) -> Reply {
        // First of all: without credentials, nothing else is told, not
        // even which paths exist.
        let auth = &self.shared.auth;
        if !auth.allows(request.headers().get(AUTHORIZATION)) {
            let mut response = plain(StatusCode::UNAUTHORIZED, "unauthorized\n");
            let headers = response.headers_mut();
            for challenge in auth.challenges() {
                headers.append(WWW_AUTHENTICATE, challenge);
            }
            if !request.body().is_end_stream() {
                // The body is never read: close instead of draining it.
                headers.insert(CONNECTION, HeaderValue::from_static("close"));
            }
            return response;
        }
        if request.uri().path() != self.shared.path {
            return plain(StatusCode::NOT_FOUND, "not found\n");
        }
        if request.method() != Method::GET && request.method() != Method::HEAD {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        if !request.body().is_end_stream() {
            // The body is never read: close instead of draining it.
            let mut response = plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request bodies are not accepted\n",
            );
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            return response;
        }
        let mut accept_joined = String::new();
        let mut values = request.headers().get_all(ACCEPT).iter();
        let accept = match (values.next(), values.next()) {
            (None, _) => None,
            (Some(one), None) => one.to_str().ok(),
            (Some(first), Some(second)) => {
                // Several `Accept` lines mean one comma-separated list.
                for value in [first, second].into_iter().chain(values) {
                    if let Ok(value) = value.to_str() {
                        if !accept_joined.is_empty() {
                            accept_joined.push(',');
                        }
                        accept_joined.push_str(value);
                    }
                }
                Some(accept_joined.as_str())
            }
        };
        let mut buf = self.buf.borrow_mut();
        let content_type = render(&self.shared.registry, accept, &mut buf);
        let mut response = Response::new(Full::new(Bytes::copy_from_slice(&buf)));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    }
}

fn plain(status: StatusCode, body: &'static str) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
