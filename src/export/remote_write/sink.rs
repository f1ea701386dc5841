//! The pusher: [`RemoteWritePusher`] and its builder, and the [`Sink`]
//! that samples the registry into timestamped, compressed requests, keeps
//! the undelivered ones (bounded) and sends them, oldest first, through
//! the shared [transport](crate::export::push).

use super::encode::{Encoder, NAME_LABEL};
use crate::export::proto::remote::WriteRequest;
use crate::export::push::{
    self, basic_auth, parse_url, Failure, Method, Outcome, Pending, PushError, PushOptions,
    PusherHandle, Sink, Transport,
};
use crate::registry::error::valid_label_name;
use crate::registry::{Registry, RegistryError};
use prost::Message;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The headers of every request besides the transport's own (`Host`,
/// `User-Agent: metricz/VERSION`, `Content-Length`, `Connection`,
/// `Authorization`).
const HEADERS: [(&str, &[u8]); 3] = [
    ("Content-Encoding", b"snappy"),
    ("Content-Type", b"application/x-protobuf"),
    ("X-Prometheus-Remote-Write-Version", b"0.1.0"),
];

/// Whether an HTTP status refuses the data itself: every 4xx but 429 (the
/// spec forbids retrying them; 429 asks to slow down, so it is retried).
fn refused(status: u16) -> bool {
    (400..500).contains(&status) && status != 429
}

/// The Prometheus remote write 1.0 pusher; start one with
/// [`RemoteWritePusher::builder`].
///
/// ```no_run
/// use metricz::export::push::PushOptions;
/// use metricz::export::remote_write::RemoteWritePusher;
/// use std::time::Duration;
///
/// let mut options = PushOptions::default();
/// options.interval = Duration::from_secs(15);
/// let reg = metricz::Registry::new();
/// let pusher = RemoteWritePusher::builder(reg.clone(), "http://127.0.0.1:9090/api/v1/write")
///     .options(options)
///     .label("instance", "web-1")
///     .spawn()?;
/// reg.counter("jobs_total", "Jobs.")?.inc();
/// pusher.push_now()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub enum RemoteWritePusher {}

impl RemoteWritePusher {
    /// A builder for a pusher of `registry` to the remote write endpoint
    /// `url`, a whole `http://HOST[:PORT]/PATH` URL (port 80 when none is
    /// given; no TLS): Prometheus's `/api/v1/write`, VictoriaMetrics'
    /// `/api/v1/write`, Mimir's `/api/v1/push`, …
    ///
    /// ```
    /// let reg = metricz::Registry::new();
    /// let builder = metricz::export::remote_write::RemoteWritePusher::builder(
    ///     reg,
    ///     "http://localhost:9090/api/v1/write",
    /// );
    /// ```
    pub fn builder(registry: Registry, url: impl Into<String>) -> RemoteWritePusherBuilder {
        RemoteWritePusherBuilder {
            registry,
            url: url.into(),
            // Off unless asked for, as in Prometheus's own remote write
            // (`send_native_histograms`): a Prometheus receiver without
            // native histograms answers 500 to a request carrying them.
            encoder: Encoder::new().native_histograms(false),
            authorization: None,
            connect_timeout: push::DEFAULT_IO_TIMEOUT,
            max_pending_bytes: push::DEFAULT_MAX_PENDING_BYTES,
            push: PushOptions::default(),
        }
    }
}

/// Settings of a remote write pusher; from [`RemoteWritePusher::builder`].
#[derive(Clone)]
#[must_use]
pub struct RemoteWritePusherBuilder {
    registry: Registry,
    url: String,
    encoder: Encoder,
    authorization: Option<String>,
    connect_timeout: Duration,
    max_pending_bytes: usize,
    push: PushOptions,
}

impl std::fmt::Debug for RemoteWritePusherBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No credentials in debug output.
        f.debug_struct("RemoteWritePusherBuilder")
            .field("url", &self.url)
            .field("encoder", &self.encoder)
            .field("authorization", &self.authorization.as_ref().map(|_| ".."))
            .field("connect_timeout", &self.connect_timeout)
            .field("max_pending_bytes", &self.max_pending_bytes)
            .field("push", &self.push)
            .finish_non_exhaustive()
    }
}

impl RemoteWritePusherBuilder {
    /// The settings every pusher has: schedule, timeouts, backoff and
    /// circuit breaker (default [`PushOptions::default`]; see
    /// [`PushOptions`] for each field and its bounds). Replaces all of
    /// them.
    ///
    /// ```
    /// use metricz::export::push::PushOptions;
    /// use std::time::Duration;
    ///
    /// let mut options = PushOptions::default();
    /// options.interval = Duration::from_secs(30);
    /// options.io_timeout = Duration::from_secs(2);
    /// let reg = metricz::Registry::new();
    /// let b = metricz::export::remote_write::RemoteWritePusher::builder(
    ///     reg,
    ///     "http://127.0.0.1:9090/api/v1/write",
    /// )
    /// .options(options);
    /// ```
    pub fn options(mut self, options: PushOptions) -> Self {
        self.push = options;
        self
    }

    /// Bound on connecting (default 5 s; at least 1 ms).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let reg = metricz::Registry::new();
    /// let b = metricz::export::remote_write::RemoteWritePusher::builder(reg, "http://127.0.0.1:9090/api/v1/write")
    ///     .connect_timeout(Duration::from_millis(500));
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = push::setting(timeout).max(Duration::from_millis(1));
        self
    }

    /// Bound on undelivered requests kept for later attempts, in
    /// compressed bytes (default
    /// [`DEFAULT_MAX_PENDING_BYTES`](push::DEFAULT_MAX_PENDING_BYTES)); past
    /// it the oldest requests are dropped and counted. The newest request
    /// always gets one attempt before the bound applies.
    ///
    /// ```
    /// # let reg = metricz::Registry::new();
    /// let b = metricz::export::remote_write::RemoteWritePusher::builder(reg, "http://127.0.0.1:9090/api/v1/write")
    ///     .max_pending_bytes(1 << 20);
    /// ```
    pub fn max_pending_bytes(mut self, bytes: usize) -> Self {
        self.max_pending_bytes = bytes;
        self
    }

    /// An external label, added to every series (a series' own label of
    /// the same name wins; a later call with the same name replaces an
    /// earlier one; an empty value adds nothing). The name must match
    /// `[a-zA-Z_][a-zA-Z0-9_]*` and not start with `__`, or
    /// [`spawn`](Self::spawn) fails.
    ///
    /// ```
    /// # let reg = metricz::Registry::new();
    /// let b = metricz::export::remote_write::RemoteWritePusher::builder(reg, "http://127.0.0.1:9090/api/v1/write")
    ///     .label("instance", "web-1")
    ///     .label("region", "eu");
    /// ```
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.encoder = self.encoder.label(name, value);
        self
    }

    /// Whether histograms and timers carry native histograms (default
    /// `false`, as Prometheus's own `send_native_histograms`); see
    /// [`Encoder::native_histograms`]. Turn them on for a receiver that
    /// stores them (Prometheus with `--enable-feature=native-histograms`,
    /// Mimir): a Prometheus receiver without that feature answers `500`
    /// to every request carrying one, counters included, and the pusher
    /// would retry it forever. Off, the classic `_bucket`, `_sum` and
    /// `_count` series are sent.
    ///
    /// ```
    /// # let reg = metricz::Registry::new();
    /// let b = metricz::export::remote_write::RemoteWritePusher::builder(reg, "http://127.0.0.1:9090/api/v1/write")
    ///     .native_histograms(true);
    /// ```
    pub fn native_histograms(mut self, on: bool) -> Self {
        self.encoder = self.encoder.native_histograms(on);
        self
    }

    /// HTTP Basic credentials (replaces a [bearer token](Self::bearer_token)).
    ///
    /// ```
    /// # let reg = metricz::Registry::new();
    /// let b = metricz::export::remote_write::RemoteWritePusher::builder(reg, "http://127.0.0.1:9090/api/v1/write")
    ///     .basic_auth("writer", "secret");
    /// ```
    pub fn basic_auth(mut self, user: impl AsRef<str>, password: impl AsRef<str>) -> Self {
        self.authorization = Some(basic_auth(user.as_ref(), password.as_ref()));
        self
    }

    /// A bearer token, sent as `Authorization: Bearer TOKEN` (replaces
    /// [Basic credentials](Self::basic_auth)).
    ///
    /// ```
    /// # let reg = metricz::Registry::new();
    /// let b = metricz::export::remote_write::RemoteWritePusher::builder(reg, "http://127.0.0.1:9090/api/v1/write")
    ///     .bearer_token("s3cr3t");
    /// ```
    pub fn bearer_token(mut self, token: impl AsRef<str>) -> Self {
        self.authorization = Some(format!("Bearer {}", token.as_ref()));
        self
    }

    /// Starts the pusher thread. Errors: the URL is not an `http://` URL
    /// with a host ([`InvalidAddress`](PushError::InvalidAddress)), an
    /// external label name is invalid or reserved
    /// ([`InvalidLabel`](PushError::InvalidLabel) with
    /// [`InvalidLabelName`](RegistryError::InvalidLabelName) or
    /// [`ReservedLabelName`](RegistryError::ReservedLabelName)),
    /// registering the self-metrics (`sink="remote_write"`) or starting
    /// the thread failed. Nothing is resolved or connected here: an
    /// unreachable receiver shows up as failed pushes.
    ///
    /// ```
    /// # let reg = metricz::Registry::new();
    /// use metricz::export::{push::PushError, remote_write::RemoteWritePusher};
    /// let err = RemoteWritePusher::builder(reg.clone(), "localhost:9090").spawn().unwrap_err();
    /// assert!(matches!(err, PushError::InvalidAddress(_)));
    /// let err = RemoteWritePusher::builder(reg, "http://localhost:9090/api/v1/write")
    ///     .label("bad-name", "x")
    ///     .spawn()
    ///     .unwrap_err();
    /// assert!(matches!(err, PushError::InvalidLabel(_)));
    /// ```
    pub fn spawn(self) -> Result<PusherHandle, PushError> {
        let addr = address_of(&self.url)?;
        for (name, _) in self.encoder.labels() {
            check_label_name(name)?;
        }
        let options = self.push.bounded();
        let transport = Transport::new(addr, &self.url, self.connect_timeout, options.io_timeout)?
            .with_authorization(self.authorization);
        let sink = RemoteWriteSink {
            transport,
            encoder: self.encoder,
            request: WriteRequest::default(),
            proto: Vec::new(),
            snappy: snap::raw::Encoder::new(),
            pending: Pending::new(self.max_pending_bytes),
            dropped: 0,
            last_timestamp: i64::MIN,
        };
        push::spawn(self.registry, sink, &options)
    }
}

/// `HOST:PORT` of an `http://` URL (port 80 by default); anything else is
/// [`PushError::InvalidAddress`] naming the URL.
fn address_of(url: &str) -> Result<String, PushError> {
    let bad = || PushError::InvalidAddress(url.to_string());
    let uri = parse_url(url, url)?;
    if uri.scheme_str() != Some("http") {
        return Err(bad());
    }
    let authority = uri.authority().ok_or_else(bad)?;
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return Err(bad());
    }
    // `Authority::port` reads a port that is not a `u16` as none: read it
    // from the text after the host.
    let port = match authority.as_str().get(authority.host().len()..) {
        Some("") => 80,
        Some(rest) => rest
            .strip_prefix(':')
            .and_then(|p| p.parse::<u16>().ok())
            .ok_or_else(bad)?,
        None => return Err(bad()),
    };
    let addr = format!("{}:{port}", authority.host());
    push::check_address(&addr).map_err(|_| bad())?;
    Ok(addr)
}

/// An external label name: `[a-zA-Z_][a-zA-Z0-9_]*`, not `__…`.
fn check_label_name(name: &str) -> Result<(), PushError> {
    if !valid_label_name(name) {
        return Err(PushError::InvalidLabel(RegistryError::InvalidLabelName(
            name.to_string(),
        )));
    }
    if name.starts_with("__") || name == NAME_LABEL {
        return Err(PushError::InvalidLabel(RegistryError::ReservedLabelName(
            name.to_string(),
        )));
    }
    Ok(())
}

struct RemoteWriteSink {
    transport: Transport,
    encoder: Encoder,
    /// Reused between samples.
    request: WriteRequest,
    /// The request's protobuf bytes, reused between samples.
    proto: Vec<u8>,
    snappy: snap::raw::Encoder,
    /// Undelivered requests (snappy-compressed protobuf), oldest first.
    pending: Pending<Vec<u8>>,
    dropped: u64,
    /// The timestamp of the last sample taken: each sample's is later.
    last_timestamp: i64,
}

impl Sink for RemoteWriteSink {
    const NAME: &'static str = "remote_write";

    fn sample(&mut self, registry: &Registry) {
        // Strictly increasing, so that two samples in one millisecond do
        // not collide (a receiver refuses a second value at a timestamp).
        let ts = now_ms().max(self.last_timestamp.saturating_add(1));
        self.last_timestamp = ts;
        self.encoder.encode(registry, ts, &mut self.request);
        if self.request.timeseries.is_empty() {
            return;
        }
        self.proto.clear();
        // Encoding into a `Vec` cannot run out of room.
        let _ = self.request.encode(&mut self.proto);
        match self.snappy.compress_vec(&self.proto) {
            Ok(body) => self.pending.push(body),
            // Only a body too large for snappy's block format (4 GiB):
            // given up on and counted.
            Err(_) => self.dropped += self.proto.len() as u64,
        }
    }

    fn deliver(&mut self, _registry: &Registry) -> Outcome {
        let mut rejected = None;
        while let Some(body) = self.pending.front() {
            match self
                .transport
                .send(Method::Post, None, &HEADERS, body, refused)
            {
                Ok(()) => {
                    self.pending.pop(1);
                }
                Err(Failure::Refused(e)) => {
                    self.dropped += self.pending.pop(1) as u64;
                    rejected.get_or_insert(e);
                }
                Err(Failure::Sink(e)) => return Outcome::Failed(e),
            }
        }
        match rejected {
            Some(e) => Outcome::Rejected(e),
            None => Outcome::Delivered,
        }
    }

    fn trim(&mut self) -> u64 {
        self.pending.trim()
    }

    fn pending_bytes(&self) -> usize {
        self.pending.bytes()
    }

    fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }
}

/// Milliseconds since the Unix epoch now (0 before it).
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_host_and_port() {
        assert_eq!(
            address_of("http://127.0.0.1:9090/api/v1/write").unwrap(),
            "127.0.0.1:9090"
        );
        assert_eq!(
            address_of("http://example.com/push").unwrap(),
            "example.com:80"
        );
        assert_eq!(
            address_of("http://[::1]:8428/api/v1/write").unwrap(),
            "[::1]:8428"
        );
        for bad in [
            "",
            "localhost:9090",
            "https://localhost:9090/api/v1/write",
            "http:///x",
            "http://user:pw@host:1/x",
            "http://host:99999/x",
            "http://host:/x",
            "not a url",
        ] {
            assert!(
                matches!(address_of(bad), Err(PushError::InvalidAddress(u)) if u == bad),
                "{bad}"
            );
        }
    }

    #[test]
    fn label_names_are_checked() {
        for ok in ["instance", "_x", "A9_b"] {
            assert!(check_label_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "9a", "a-b", "é"] {
            assert!(
                matches!(
                    check_label_name(bad),
                    Err(PushError::InvalidLabel(RegistryError::InvalidLabelName(_)))
                ),
                "{bad}"
            );
        }
        for reserved in ["__name__", "__x"] {
            assert!(matches!(
                check_label_name(reserved),
                Err(PushError::InvalidLabel(RegistryError::ReservedLabelName(_)))
            ));
        }
    }

    #[test]
    fn only_4xx_but_429_refuses() {
        assert!(refused(400) && refused(404) && refused(413) && refused(499));
        assert!(!refused(429) && !refused(500) && !refused(503) && !refused(302));
    }

    #[test]
    #[cfg_attr(miri, ignore = "the wall clock (isolation)")]
    fn samples_are_timestamped_strictly_increasing_and_compressed() {
        let reg = Registry::new();
        reg.counter("jobs_total", "Jobs.").unwrap().add(2);
        let transport = Transport::new(
            "127.0.0.1:1".to_string(),
            "http://127.0.0.1:1/",
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
        .unwrap();
        let mut sink = RemoteWriteSink {
            transport,
            encoder: Encoder::new(),
            request: WriteRequest::default(),
            proto: Vec::new(),
            snappy: snap::raw::Encoder::new(),
            pending: Pending::new(usize::MAX),
            dropped: 0,
            last_timestamp: i64::MIN,
        };
        for _ in 0..5 {
            sink.sample(&reg);
        }
        let mut last = i64::MIN;
        for body in sink.pending.iter() {
            let proto = snap::raw::Decoder::new().decompress_vec(body).unwrap();
            let req = WriteRequest::decode(&proto[..]).unwrap();
            let ts = req.timeseries[0].samples[0].timestamp;
            assert!(ts > last);
            last = ts;
        }
        let total: usize = sink.pending.iter().map(Vec::len).sum();
        assert_eq!(sink.pending_bytes(), total);
        sink.pending.set_max_bytes(total - 1);
        let oldest = sink.pending.front().map_or(0, Vec::len);
        assert_eq!(sink.trim() as usize, oldest);
        assert_eq!(sink.pending.iter().count(), 4);
        assert_eq!(sink.pending_bytes(), total - oldest);
    }
}
