//! [`MetricsService`]: what one connection answers (the metrics, `401`,
//! `404`, `405`, `413`), and the counts of scrapes, refused credentials and
//! rejections.

use super::auth::Check;
use super::deadline::ConnState;
use super::render::render;
use super::state::Shared;
use crate::primitive::std_only::Arc;
use crate::primitive::Ordering::Relaxed;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body as _, Incoming};
use hyper::header::{
    HeaderValue, ACCEPT, ALLOW, CONNECTION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode};
use std::cell::RefCell;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Answers one connection's requests.
pub(crate) struct MetricsService {
    shared: Arc<Shared>,
    /// Encoded into by every scrape of this connection.
    buf: RefCell<Vec<u8>>,
    state: Arc<ConnState>,
}

type Reply = Response<Full<Bytes>>;

/// The answer to a request: ready at once (the steady state), or after a
/// bcrypt verification on the blocking pool (a password not seen before).
pub(crate) enum Answer {
    Ready(Option<Reply>),
    Verifying(Pin<Box<dyn Future<Output = Reply> + Send>>),
}

impl Future for Answer {
    type Output = Result<Reply, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Answer::Ready(reply) => Poll::Ready(Ok(reply.take().expect("polled after completion"))),
            Answer::Verifying(future) => future.as_mut().poll(cx).map(Ok),
        }
    }
}

impl hyper::service::Service<Request<Incoming>> for MetricsService {
    type Response = Reply;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, request: Request<Incoming>) -> Answer {
        // First of all: without credentials, nothing else is told, not
        // even which paths exist.
        let response = match self.shared.auth.check(request.headers()) {
            Check::Allowed => respond(&self.shared, &request, &mut self.buf.borrow_mut()),
            Check::Denied => unauthorized(&self.shared),
            Check::Busy => busy(),
            Check::Verify(pending) => {
                let (shared, state) = (Arc::clone(&self.shared), Arc::clone(&self.state));
                return Answer::Verifying(Box::pin(async move {
                    let allowed = shared.auth.verify(pending).await;
                    let response = if allowed {
                        // Once a connection: its buffer stays with the
                        // service, and the next scrape's check is cached.
                        respond(&shared, &request, &mut Vec::new())
                    } else {
                        unauthorized(&shared)
                    };
                    finish(&shared, &state, response)
                }));
            }
        };
        Answer::Ready(Some(finish(&self.shared, &self.state, response)))
    }
}

/// Counts `response` and tells the connection's deadline that it has been
/// produced.
fn finish(shared: &Shared, state: &ConnState, response: Reply) -> Reply {
    let stats = &shared.stats;
    let count = match response.status() {
        StatusCode::OK => &stats.scrapes,
        StatusCode::UNAUTHORIZED => &stats.unauthorized,
        _ => &stats.rejected,
    };
    count.fetch_add(1, Relaxed);
    state.mark_responded();
    response
}

/// `401` with the challenges of the schemes accepted; the connection is
/// closed after it (no pipelined guesses, and no unread body to drain).
fn unauthorized(shared: &Shared) -> Reply {
    let mut response = plain(StatusCode::UNAUTHORIZED, "unauthorized\n");
    let headers = response.headers_mut();
    for challenge in shared.auth.challenges() {
        headers.append(WWW_AUTHENTICATE, challenge);
    }
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// `503`: too many requests are waiting for a password check.
fn busy() -> Reply {
    let mut response = plain(
        StatusCode::SERVICE_UNAVAILABLE,
        "too many authentication attempts at once\n",
    );
    let headers = response.headers_mut();
    headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    response
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
}

/// The response to an authorised `request`, encoding into `buf`. A
/// scrape's body is one [`Full`] chunk, copied from `buf` (the
/// [`Deadline`](super::deadline::Deadline) relies on it).
fn respond(shared: &Shared, request: &Request<Incoming>, buf: &mut Vec<u8>) -> Reply {
    if request.uri().path() != shared.path {
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
    let content_type = render(&shared.registry, accept, buf);
    let mut response = Response::new(Full::new(Bytes::copy_from_slice(buf)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
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
