//! A Prometheus [Pushgateway](https://github.com/prometheus/pushgateway)
//! client for batch jobs: push a registry's exposition once at the end of
//! a job ([`Pushgateway::push`]), or in the background while it runs
//! ([`Pushgateway::spawn`]).
//!
//! ```no_run
//! use metricz::export::pushgateway::Pushgateway;
//!
//! let reg = metricz::Registry::new();
//! let rows = reg.counter("backup_rows_total", "Rows backed up.")?;
//! // … the batch job's work …
//! rows.add(1_234);
//!
//! let gateway = Pushgateway::builder("127.0.0.1:9091", "backup")
//!     .grouping("instance", "db-1")
//!     .build()?;
//! gateway.push(&reg)?; // PUT: the group now holds exactly `reg`'s families
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Groups and methods
//!
//! The Pushgateway keeps metrics by *group*: the job name (the `job`
//! label) and any grouping labels, written in the URL as
//! `/metrics/job/<job>{/<label>/<value>}` (the labels in the order
//! given). On the group's metrics the Pushgateway sets these labels,
//! overriding any of the same name a series carries.
//!
//! | call | request | effect |
//! |---|---|---|
//! | [`push`](Pushgateway::push) | `PUT` | replaces every metric of the group |
//! | [`push_add`](Pushgateway::push_add) | `POST` | replaces only the families pushed (by name), keeps the group's others |
//! | [`delete`](Pushgateway::delete) | `DELETE` | deletes the group |
//!
//! The body is the registry's Prometheus text exposition (format 0.0.4,
//! [`text::encode`], `Content-Type: text/plain;
//! version=0.0.4; charset=utf-8`), histograms and timers included.
//!
//! # The path
//!
//! A job name or label value is percent-encoded (everything but RFC 3986's
//! unreserved characters) except where the Pushgateway could not read it
//! back that way, where it takes the Pushgateway's base64 form
//! (`<label>@base64/<value>`, RFC 4648's URL-safe alphabet, padded): a
//! value holding a `/` (the Pushgateway splits the path at every `/`,
//! escaped or not), an empty value (written `@base64/=`: an empty segment
//! would vanish), and `.` or `..` (the router would clean them away).
//!
//! | grouping key | path |
//! |---|---|
//! | `job="backup"`, `instance="db-1:5432"` | `/metrics/job/backup/instance/db-1%3A5432` |
//! | `job="cleaner"`, `path="/var/tmp"` | `/metrics/job/cleaner/path@base64/L3Zhci90bXA=` |
//! | `job="example"`, `first=""` | `/metrics/job/example/first@base64/=` |
//!
//! # Errors
//!
//! [`PushgatewayBuilder::build`] checks the address and the grouping key
//! ([`PushgatewayError`]: an empty job name, a label name that is not
//! `[a-zA-Z_][a-zA-Z0-9_]*`, a reserved one (`job`, `__…`), a label given
//! twice). Each request's errors are [`PushError`]s, classified as the
//! [pusher](super::push) does: a 2xx answer is success; 400 (the
//! Pushgateway found the metrics inconsistent with other groups' or its
//! own, or the request malformed) and 413 refuse the data
//! ([`PushError::Rejected`]); any other status is [`PushError::Http`];
//! unreachable, slow or broken servers give [`PushError::Io`],
//! [`PushError::TimedOut`] and the like. Connecting is bounded by
//! [`connect_timeout`](PushgatewayBuilder::connect_timeout), each send and
//! receive by [`timeout`](PushgatewayBuilder::timeout) (both 5 s by
//! default); nothing panics on a bad input or answer.
//!
//! # The background pusher
//!
//! [`Pushgateway::spawn`] starts the resilient pusher of
//! [`push`] (its own thread, interval, backoff, circuit
//! breaker, self-metrics with `sink="pushgateway"`) that `PUT`s the
//! registry's exposition at every attempt: the group always holds the
//! latest state. Nothing is kept between attempts, so a failed push loses
//! nothing but the attempt; a refused (400) body is counted in
//! [`PushStats::dropped_bytes`](super::push::PushStats::dropped_bytes).
//! The group stays on the Pushgateway after the pusher stops; call
//! [`delete`](Pushgateway::delete) to remove it.
//!
//! # Scraping the Pushgateway
//!
//! Prometheus scrapes the Pushgateway as one target. Without
//! `honor_labels: true` in that scrape job, the pushed `job` and
//! `instance` labels conflict with the target's own and are renamed
//! `exported_job` and `exported_instance`; with it, they are kept.
//! Prometheus drops empty labels: a grouping label with an empty value
//! is, to PromQL, no label.
//!
//! # Layout
//!
//! `path` builds and checks the grouping path ([`PushgatewayError`]),
//! `sink` is the background pusher's sink; the HTTP client is the
//! pushers' shared transport.

mod path;
mod sink;

pub use path::PushgatewayError;

use crate::export::push::{
    self, basic_auth, Method, PushError, PushOptions, PusherHandle, Transport,
};
use crate::export::{text, Format};
use crate::registry::Registry;
use std::fmt;
use std::time::Duration;

/// The body's `Content-Type`.
const CONTENT_TYPE: &str = Format::Prometheus.content_type();

/// Whether a status refuses the data itself: 400 (inconsistent metrics, a
/// malformed request) and 413 (too large a body).
fn refused(status: u16) -> bool {
    matches!(status, 400 | 413)
}

/// A client for one group of one Pushgateway; build one with
/// [`Pushgateway::builder`]. Each call is one HTTP request, made on the
/// calling thread.
///
/// ```no_run
/// use metricz::export::pushgateway::Pushgateway;
///
/// let reg = metricz::Registry::new();
/// reg.gauge("backup_last_success_seconds", "When the backup last succeeded.")?
///     .set(1.7e9);
/// let gateway = Pushgateway::builder("127.0.0.1:9091", "backup").build()?;
/// gateway.push(&reg)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Pushgateway {
    transport: Transport,
    /// `HOST:PORT` as given.
    addr: String,
    /// The group's URL.
    url: String,
    /// `Basic …`, with credentials.
    authorization: Option<String>,
    connect_timeout: Duration,
}

impl fmt::Debug for Pushgateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No credentials in debug output.
        f.debug_struct("Pushgateway")
            .field("url", &self.url)
            .field("credentials", &self.authorization.is_some())
            .finish_non_exhaustive()
    }
}

impl Pushgateway {
    /// A builder for a client of the Pushgateway at `addr` (`host:port`),
    /// pushing as job `job` (not empty; checked by
    /// [`build`](PushgatewayBuilder::build)).
    ///
    /// ```
    /// use metricz::export::pushgateway::Pushgateway;
    ///
    /// let gateway = Pushgateway::builder("localhost:9091", "nightly_report").build()?;
    /// assert_eq!(gateway.url(), "http://localhost:9091/metrics/job/nightly_report");
    /// # Ok::<(), metricz::export::pushgateway::PushgatewayError>(())
    /// ```
    pub fn builder(addr: impl Into<String>, job: impl Into<String>) -> PushgatewayBuilder {
        PushgatewayBuilder {
            addr: addr.into(),
            job: job.into(),
            grouping: Vec::new(),
            credentials: None,
            connect_timeout: push::DEFAULT_IO_TIMEOUT,
            io_timeout: push::DEFAULT_IO_TIMEOUT,
        }
    }

    /// The group's URL: `http://HOST:PORT/metrics/job/…` (see the [module
    /// docs](self) for the path).
    ///
    /// ```
    /// use metricz::export::pushgateway::Pushgateway;
    ///
    /// let gateway = Pushgateway::builder("127.0.0.1:9091", "cleaner")
    ///     .grouping("path", "/var/tmp")
    ///     .grouping("host", "")
    ///     .build()?;
    /// assert_eq!(
    ///     gateway.url(),
    ///     "http://127.0.0.1:9091/metrics/job/cleaner/path@base64/L3Zhci90bXA=/host@base64/="
    /// );
    /// # Ok::<(), metricz::export::pushgateway::PushgatewayError>(())
    /// ```
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `PUT`s `registry`'s exposition: the group's metrics are replaced by
    /// exactly these. Errors: see the [module docs](self#errors).
    ///
    /// ```no_run
    /// use metricz::export::pushgateway::Pushgateway;
    ///
    /// let reg = metricz::Registry::new();
    /// reg.counter("rows_total", "Rows.")?.add(7);
    /// Pushgateway::builder("127.0.0.1:9091", "etl").build()?.push(&reg)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push(&self, registry: &Registry) -> Result<(), PushError> {
        self.send_registry(Method::Put, registry)
    }

    /// `POST`s `registry`'s exposition: of the group's metrics, only the
    /// families with the names pushed are replaced; the others stay.
    /// Errors: see the [module docs](self#errors).
    ///
    /// ```no_run
    /// use metricz::export::pushgateway::Pushgateway;
    ///
    /// let gateway = Pushgateway::builder("127.0.0.1:9091", "etl").build()?;
    /// let stage = metricz::Registry::new();
    /// stage.gauge("etl_stage", "Stage reached.")?.set(2.0);
    /// gateway.push_add(&stage)?; // the group's other families stay
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push_add(&self, registry: &Registry) -> Result<(), PushError> {
        self.send_registry(Method::Post, registry)
    }

    /// `DELETE`s the group: all its metrics. Deleting a group that does
    /// not exist succeeds. Errors: see the [module docs](self#errors).
    ///
    /// ```no_run
    /// use metricz::export::pushgateway::Pushgateway;
    ///
    /// Pushgateway::builder("127.0.0.1:9091", "etl").build()?.delete()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn delete(&self) -> Result<(), PushError> {
        self.transport
            .send(Method::Delete, None, &[], b"", refused)
            .map_err(push::Failure::into_error)
    }

    /// Starts a background pusher that `PUT`s `registry` to this group at
    /// every attempt (see the [module docs](self#the-background-pusher)),
    /// with `options` (its `io_timeout` bounds each send and receive; the
    /// connect timeout is this client's). Errors: registering the
    /// self-metrics or starting the thread failed. Nothing is connected
    /// here: an unreachable Pushgateway shows up as failed pushes.
    ///
    /// ```no_run
    /// use metricz::export::push::PushOptions;
    /// use metricz::export::pushgateway::Pushgateway;
    /// use std::time::Duration;
    ///
    /// let reg = metricz::Registry::new();
    /// let rows = reg.counter("rows_total", "Rows.")?;
    /// let mut options = PushOptions::default();
    /// options.interval = Duration::from_secs(15);
    /// let gateway = Pushgateway::builder("127.0.0.1:9091", "etl").build()?;
    /// let pusher = gateway.spawn(reg.clone(), options)?;
    /// rows.add(100);
    /// pusher.shutdown()?; // pushes the last state, then stops
    /// gateway.delete()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn(
        &self,
        registry: Registry,
        options: PushOptions,
    ) -> Result<PusherHandle, PushError> {
        let options = options.bounded();
        let transport = Transport::new(
            self.addr.clone(),
            &self.url,
            self.connect_timeout,
            options.io_timeout,
        )?
        .with_authorization(self.authorization.clone());
        let sink = sink::PushgatewaySink {
            transport,
            body: String::new(),
            dropped: 0,
        };
        push::spawn(registry, sink, &options)
    }

    fn send_registry(&self, method: Method, registry: &Registry) -> Result<(), PushError> {
        let mut body = String::new();
        // Writing into a String cannot fail.
        let _ = text::encode(registry, Format::Prometheus, &mut body);
        self.transport
            .send(
                method,
                None,
                &[("Content-Type", CONTENT_TYPE.as_bytes())],
                body.as_bytes(),
                refused,
            )
            .map_err(push::Failure::into_error)
    }
}

/// Settings of a Pushgateway client; from [`Pushgateway::builder`].
#[derive(Clone)]
#[must_use]
pub struct PushgatewayBuilder {
    addr: String,
    job: String,
    grouping: Vec<(String, String)>,
    credentials: Option<(String, String)>,
    connect_timeout: Duration,
    io_timeout: Duration,
}

impl fmt::Debug for PushgatewayBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No credentials in debug output.
        f.debug_struct("PushgatewayBuilder")
            .field("addr", &self.addr)
            .field("job", &self.job)
            .field("grouping", &self.grouping)
            .field("credentials", &self.credentials.is_some())
            .field("connect_timeout", &self.connect_timeout)
            .field("io_timeout", &self.io_timeout)
            .finish()
    }
}

impl PushgatewayBuilder {
    /// Adds a grouping label (after the job, in the order given). The name
    /// must be a valid label name, neither `job` nor starting with `__`,
    /// and given once; the value may be anything, empty included (checked
    /// by [`build`](Self::build)).
    ///
    /// ```
    /// use metricz::export::pushgateway::Pushgateway;
    ///
    /// let gateway = Pushgateway::builder("127.0.0.1:9091", "backup")
    ///     .grouping("instance", "db-1")
    ///     .grouping("volume", "/srv/data")
    ///     .build()?;
    /// assert!(gateway.url().ends_with("/instance/db-1/volume@base64/L3Nydi9kYXRh"));
    /// # Ok::<(), metricz::export::pushgateway::PushgatewayError>(())
    /// ```
    pub fn grouping(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.grouping.push((name.into(), value.into()));
        self
    }

    /// HTTP Basic credentials, for a Pushgateway behind authentication.
    ///
    /// ```
    /// use metricz::export::pushgateway::Pushgateway;
    ///
    /// let gateway = Pushgateway::builder("127.0.0.1:9091", "backup")
    ///     .credentials("pusher", "secret")
    ///     .build()?;
    /// assert!(!format!("{gateway:?}").contains("secret"));
    /// # Ok::<(), metricz::export::pushgateway::PushgatewayError>(())
    /// ```
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some((user.into(), password.into()));
        self
    }

    /// Bound on connecting (default 5 s; at least 1 ms, at most
    /// [`MAX_SETTING`](push::MAX_SETTING)).
    ///
    /// ```
    /// use metricz::export::pushgateway::Pushgateway;
    /// use std::time::Duration;
    ///
    /// let builder = Pushgateway::builder("127.0.0.1:9091", "backup")
    ///     .connect_timeout(Duration::from_millis(500));
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = push::setting(timeout).max(Duration::from_millis(1));
        self
    }

    /// Bound on each send and receive of a request made by the client
    /// itself (default 5 s; at least 1 ms, at most
    /// [`MAX_SETTING`](push::MAX_SETTING)); a background pusher uses its
    /// options' `io_timeout` instead.
    ///
    /// ```
    /// use metricz::export::pushgateway::Pushgateway;
    /// use std::time::Duration;
    ///
    /// let builder = Pushgateway::builder("127.0.0.1:9091", "backup")
    ///     .timeout(Duration::from_secs(2));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.io_timeout = push::setting(timeout).max(Duration::from_millis(1));
        self
    }

    /// The client. Errors: the address is not `host:port`, the job name is
    /// empty, or a grouping label name is invalid, reserved or given twice
    /// (one [`PushgatewayError`] variant each). Nothing is resolved or
    /// connected here.
    ///
    /// ```
    /// use metricz::export::pushgateway::{Pushgateway, PushgatewayError};
    ///
    /// let err = Pushgateway::builder("127.0.0.1:9091", "").build().unwrap_err();
    /// assert_eq!(err, PushgatewayError::EmptyJob);
    /// let err = Pushgateway::builder("no-port", "backup").build().unwrap_err();
    /// assert_eq!(err, PushgatewayError::InvalidAddress("no-port".into()));
    /// let err = Pushgateway::builder("127.0.0.1:9091", "backup")
    ///     .grouping("job", "other")
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err, PushgatewayError::ReservedLabelName("job".into()));
    /// ```
    pub fn build(self) -> Result<Pushgateway, PushgatewayError> {
        let bad_address = || PushgatewayError::InvalidAddress(self.addr.clone());
        push::check_address(&self.addr).map_err(|_| bad_address())?;
        let path = path::group_path(&self.job, &self.grouping)?;
        let url = format!("http://{}{path}", self.addr);
        let authorization = self
            .credentials
            .as_ref()
            .map(|(user, password)| basic_auth(user, password));
        let transport = Transport::new(
            self.addr.clone(),
            &url,
            self.connect_timeout,
            self.io_timeout,
        )
        .map_err(|_| bad_address())?
        .with_authorization(authorization.clone());
        Ok(Pushgateway {
            transport,
            addr: self.addr,
            url,
            authorization,
            connect_timeout: self.connect_timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inconsistent_and_too_large_pushes_are_refused() {
        assert!(refused(400));
        assert!(refused(413));
        for status in [401, 403, 404, 405, 429, 500, 502, 503] {
            assert!(!refused(status), "{status}");
        }
    }

    #[test]
    fn build_checks_the_address_and_the_grouping() {
        let build = |addr: &str, job: &str, name: &str| {
            Pushgateway::builder(addr, job).grouping(name, "v").build()
        };
        assert!(build("127.0.0.1:9091", "j", "instance").is_ok());
        assert!(build("[::1]:9091", "j", "instance").is_ok());
        for addr in ["", "localhost", "a b:1", "host:port", "::1:9091"] {
            assert_eq!(
                build(addr, "j", "instance").unwrap_err(),
                PushgatewayError::InvalidAddress(addr.to_string()),
                "{addr}"
            );
        }
        assert_eq!(
            build("127.0.0.1:9091", "", "instance").unwrap_err(),
            PushgatewayError::EmptyJob
        );
        assert_eq!(
            build("127.0.0.1:9091", "j", "0x").unwrap_err(),
            PushgatewayError::InvalidLabelName("0x".to_string())
        );
        assert_eq!(
            build("127.0.0.1:9091", "j", "__x").unwrap_err(),
            PushgatewayError::ReservedLabelName("__x".to_string())
        );
    }

    #[test]
    fn the_url_carries_the_encoded_group() {
        let gateway = Pushgateway::builder("[::1]:9091", "a/b")
            .grouping("instance", "x y")
            .grouping("empty", "")
            .build()
            .unwrap();
        assert_eq!(
            gateway.url(),
            "http://[::1]:9091/metrics/job@base64/YS9i/instance/x%20y/empty@base64/="
        );
    }

    #[test]
    fn debug_output_hides_credentials() {
        let builder = Pushgateway::builder("127.0.0.1:9091", "j").credentials("user", "hunter2");
        assert!(!format!("{builder:?}").contains("hunter2"));
        let gateway = builder.build().unwrap();
        let debug = format!("{gateway:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(
            !debug.contains(&basic_auth("user", "hunter2")[6..]),
            "{debug}"
        );
        assert!(debug.contains("credentials: true"), "{debug}");
    }
}
