//! InfluxDB line protocol: the encoder ([`encode`]), a point writer
//! ([`Point`]), and a pusher to an InfluxDB 1.x `/write` endpoint
//! ([`InfluxPusher`]).
//!
//! # What a registry becomes
//!
//! One point per series, all stamped with the same nanosecond timestamp:
//! the measurement is the family name, the tags are the series' labels
//! (sorted by key; a label whose value is empty is left out, as InfluxDB
//! treats an empty tag as no tag), and the fields are:
//!
//! | kind | fields |
//! |---|---|
//! | counter | `value=<n>i` (an integer; clamped to `i64::MAX`) |
//! | gauge | `value=<x>` (a float; NaN and ±∞, which InfluxDB cannot store, leave the point out) |
//! | histogram | `count=<n>i,sum=<x>`, and when not empty `min`, `max`, `p50`, `p90`, `p99` (floats) |
//! | timer | as a histogram, in seconds |
//!
//! A family's overflow series is tagged `metricz_overflow=true`, and the
//! overflow counts are points of `metricz_cardinality_overflow_total` with
//! a `family` tag, as in the Prometheus exposition. A label named `time`
//! (a key InfluxDB 1.x refuses) is written as `time_` (and `time_` as
//! `time__`, …, so two labels never share a key).
//!
//! ```
//! use metricz::export::influx;
//! use metricz::Registry;
//!
//! let reg = Registry::new();
//! let requests = reg.counter_vec("requests_total", "Requests.", &["route"])?;
//! requests.with(&["/a b,c=d"])?.add(12);
//! reg.gauge("load", "Load.")?.set(0.5);
//!
//! let mut buf = String::new();
//! influx::encode(&reg, 1_700_000_000_000_000_000, &mut buf);
//! assert_eq!(
//!     buf,
//!     "load value=0.5 1700000000000000000\n\
//!      requests_total,route=/a\\ b\\,c\\=d value=12i 1700000000000000000\n"
//! );
//! # Ok::<(), metricz::RegistryError>(())
//! ```
//!
//! # Escaping
//!
//! The grammar is InfluxDB 1.x's: a special character is escaped by a
//! backslash before it, and other backslashes are literal.
//!
//! - Measurements: `,` and space are escaped.
//! - Tag keys, tag values and field keys: `,`, `=` and space are escaped.
//! - String field values: double-quoted, with `"` and `\` escaped (line
//!   breaks may appear as they are).
//! - Line breaks cannot appear in a measurement, key or tag value: `\n` and
//!   `\r` there are written as the two characters `\n` and `\r`.
//! - A measurement, key or tag value cannot end in a backslash (it would
//!   escape the separator after it): trailing backslashes are dropped.
//! - A measurement starting with `#` would be read as a comment: the `#`
//!   is escaped (InfluxDB keeps that backslash).
//! - An odd run of backslashes right before an escaped character gains
//!   one backslash. InfluxDB 1.x finds line ends reading backslashes in
//!   pairs; without it, the escape would be read out of step, and a later
//!   `"` taken for the start of a string could swallow the line break
//!   (the whole batch is then refused).
//!
//! InfluxDB 1.6 unescapes measurement names twice, so a backslash written
//! before an escaped `,` or space of a measurement name is lost there;
//! metric names, which cannot hold backslashes, are not affected.
//!
//! # The pusher
//!
//! [`InfluxPusher::builder`] starts a background pusher (see
//! [`push`] for the thread, backoff, breaker and counts) that
//! POSTs batches to `http://HOST:PORT/write?db=NAME&precision=ns` over a
//! plain `TcpStream` with HTTP/1.1 (`Content-Length`, `Connection: close`);
//! a 2xx answer (InfluxDB says 204) is success. Every attempt samples the
//! registry into a timestamped batch; undelivered batches are kept, oldest
//! first, up to [`max_pending_bytes`](InfluxPusherBuilder::max_pending_bytes),
//! and sent together (in bodies of at most 4 MiB) once the server answers
//! again. A 400 or 413 answer refuses the data itself: those batches are
//! dropped and counted, as retrying cannot help.

use super::push::{self, Outcome, PushError, PushOptions, PusherHandle, Sink};
use crate::registry::{AnyFamily, Registry, OVERFLOW_LABEL};
use crate::Snapshot;
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Why a [`Point`] could not be written.
///
/// ```
/// use metricz::export::influx::{LineError, Point};
///
/// let mut buf = String::new();
/// let err = Point::new(&mut buf, "m").float("x", f64::NAN).finish(None);
/// assert_eq!(err, Err(LineError::NonFiniteFloat("x".into())));
/// assert!(buf.is_empty()); // nothing of a failed point stays
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LineError {
    /// The measurement is empty (after dropping trailing backslashes).
    EmptyMeasurement,
    /// A field key is empty (after dropping trailing backslashes).
    EmptyFieldKey,
    /// The point has no field; line protocol needs at least one.
    NoFields,
    /// A tag was added after a field.
    TagAfterField(String),
    /// A float field is NaN or infinite, which line protocol cannot carry.
    NonFiniteFloat(String),
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::EmptyMeasurement => f.write_str("the measurement is empty"),
            LineError::EmptyFieldKey => f.write_str("a field key is empty"),
            LineError::NoFields => f.write_str("the point has no field"),
            LineError::TagAfterField(k) => write!(f, "tag {k:?} comes after a field"),
            LineError::NonFiniteFloat(k) => write!(f, "field {k:?} is not a finite float"),
        }
    }
}

impl std::error::Error for LineError {}

/// Writes one line-protocol point into a `String`: the measurement, then
/// tags, then at least one field, then [`finish`](Self::finish) with an
/// optional timestamp. On an error, or if dropped unfinished, the point
/// leaves nothing in the buffer.
///
/// ```
/// use metricz::export::influx::Point;
///
/// let mut buf = String::new();
/// Point::new(&mut buf, "disk usage")
///     .tag("host", "a,b")
///     .tag("empty", "") // left out
///     .integer("used", -3)
///     .float("ratio", 0.25)
///     .boolean("ok", true)
///     .string("note", "say \"hi\"")
///     .finish(Some(42))?;
/// assert_eq!(
///     buf,
///     "disk\\ usage,host=a\\,b used=-3i,ratio=0.25,ok=true,note=\"say \\\"hi\\\"\" 42\n"
/// );
/// # Ok::<(), metricz::export::influx::LineError>(())
/// ```
#[derive(Debug)]
pub struct Point<'a> {
    buf: &'a mut String,
    start: usize,
    fields: usize,
    error: Option<LineError>,
    done: bool,
}

impl<'a> Point<'a> {
    /// Starts a point of `measurement` at the end of `buf`.
    pub fn new(buf: &'a mut String, measurement: &str) -> Self {
        let start = buf.len();
        let mut error = None;
        if measurement.starts_with('#') {
            buf.push('\\');
        }
        if !write_escaped(buf, measurement, Escape::Measurement) {
            error = Some(LineError::EmptyMeasurement);
        }
        Point {
            buf,
            start,
            fields: 0,
            error,
            done: false,
        }
    }

    /// Adds a tag. An empty key or value (after dropping trailing
    /// backslashes) leaves the tag out. Tags must come before fields.
    pub fn tag(mut self, key: &str, value: &str) -> Self {
        if self.error.is_some() {
            return self;
        }
        if self.fields > 0 {
            self.error = Some(LineError::TagAfterField(key.to_string()));
            return self;
        }
        if is_blank(key) || is_blank(value) {
            return self;
        }
        self.buf.push(',');
        write_escaped(self.buf, key, Escape::Key);
        self.buf.push('=');
        write_escaped(self.buf, value, Escape::Key);
        self
    }

    /// Adds a float field (`key=1.5`); NaN and ±∞ are an error.
    pub fn float(mut self, key: &str, value: f64) -> Self {
        if !value.is_finite() {
            if self.error.is_none() {
                self.error = Some(LineError::NonFiniteFloat(key.to_string()));
            }
            return self;
        }
        if self.field_key(key) {
            write_float(self.buf, value);
        }
        self
    }

    /// Adds an integer field (`key=-3i`).
    pub fn integer(mut self, key: &str, value: i64) -> Self {
        if self.field_key(key) {
            self.buf.push_str(itoa::Buffer::new().format(value));
            self.buf.push('i');
        }
        self
    }

    /// Adds a boolean field (`key=true`).
    pub fn boolean(mut self, key: &str, value: bool) -> Self {
        if self.field_key(key) {
            self.buf.push_str(if value { "true" } else { "false" });
        }
        self
    }

    /// Adds a string field (`key="text"`, with `"` and `\` escaped).
    pub fn string(mut self, key: &str, value: &str) -> Self {
        if self.field_key(key) {
            self.buf.push('"');
            for c in value.chars() {
                if c == '"' || c == '\\' {
                    self.buf.push('\\');
                }
                self.buf.push(c);
            }
            self.buf.push('"');
        }
        self
    }

    /// Ends the point with `timestamp` (nanoseconds since the Unix epoch;
    /// `None` lets the server stamp it) and a newline; on an error removes
    /// what the point wrote.
    pub fn finish(mut self, timestamp: Option<i64>) -> Result<(), LineError> {
        self.done = true;
        if self.error.is_none() && self.fields == 0 {
            self.error = Some(LineError::NoFields);
        }
        if let Some(e) = self.error.take() {
            self.buf.truncate(self.start);
            return Err(e);
        }
        if let Some(ts) = timestamp {
            self.buf.push(' ');
            self.buf.push_str(itoa::Buffer::new().format(ts));
        }
        self.buf.push('\n');
        Ok(())
    }

    /// Writes the separator and key of a new field; false if the point has
    /// failed.
    fn field_key(&mut self, key: &str) -> bool {
        if self.error.is_some() {
            return false;
        }
        if is_blank(key) {
            self.error = Some(LineError::EmptyFieldKey);
            return false;
        }
        self.buf.push(if self.fields == 0 { ' ' } else { ',' });
        self.fields += 1;
        write_escaped(self.buf, key, Escape::Key);
        self.buf.push('=');
        true
    }
}

impl Drop for Point<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.buf.truncate(self.start);
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Escape {
    /// `,` and space.
    Measurement,
    /// `,`, `=` and space: tag keys, tag values, field keys.
    Key,
}

/// Whether `s` is empty once its trailing backslashes are dropped.
fn is_blank(s: &str) -> bool {
    s.trim_end_matches('\\').is_empty()
}

/// Appends `s` escaped; returns false if nothing was written (blank).
fn write_escaped(buf: &mut String, s: &str, escape: Escape) -> bool {
    let s = s.trim_end_matches('\\');
    // Backslashes written in a row just before this character.
    let mut run = 0usize;
    for c in s.chars() {
        let special = match c {
            ',' | ' ' => true,
            '=' => escape == Escape::Key,
            _ => false,
        };
        if special {
            // InfluxDB 1.x splits lines reading backslashes in pairs: keep
            // the run before an escape even so that the escape stays a pair.
            if run % 2 == 1 {
                buf.push('\\');
            }
            buf.push('\\');
            buf.push(c);
            run = 0;
            continue;
        }
        match c {
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            c => buf.push(c),
        }
        run = if c == '\\' { run + 1 } else { 0 };
    }
    !s.is_empty()
}

/// A finite float in the shortest form that round-trips (`1.5`, `1e300`).
fn write_float(buf: &mut String, v: f64) {
    buf.push_str(ryu::Buffer::new().format_finite(v));
}

/// Appends the line protocol of every series of `registry` to `buf`, each
/// point stamped `timestamp_ns` (nanoseconds since the Unix epoch). See the
/// [module docs](self) for the mapping.
///
/// ```
/// let reg = metricz::Registry::new();
/// reg.counter("jobs_total", "Jobs.")?.add(3);
/// let mut buf = String::new();
/// metricz::export::influx::encode(&reg, 5, &mut buf);
/// assert_eq!(buf, "jobs_total value=3i 5\n");
/// # Ok::<(), metricz::RegistryError>(())
/// ```
pub fn encode(registry: &Registry, timestamp_ns: i64, buf: &mut String) {
    encode_with_tags::<&str, &str>(registry, &[], timestamp_ns, buf);
}

/// [`encode`] with `tags` added to every point (a series' own label of the
/// same key wins).
///
/// ```
/// let reg = metricz::Registry::new();
/// reg.gauge_vec("temp", "Temperature.", &["room"])?.with(&["hall"])?.set(20.5);
/// let mut buf = String::new();
/// metricz::export::influx::encode_with_tags(&reg, &[("host", "web 1"), ("room", "x")], 5, &mut buf);
/// assert_eq!(buf, "temp,host=web\\ 1,room=hall value=20.5 5\n");
/// # Ok::<(), metricz::RegistryError>(())
/// ```
pub fn encode_with_tags<K: AsRef<str>, V: AsRef<str>>(
    registry: &Registry,
    tags: &[(K, V)],
    timestamp_ns: i64,
    buf: &mut String,
) {
    let mut global: Vec<(&str, &str)> =
        tags.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
    global.sort_by(|a, b| a.0.cmp(b.0));
    global.dedup_by(|a, b| a.0 == b.0);
    let ts = Some(timestamp_ns);
    let mut overflows: Vec<(String, u64)> = Vec::new();
    for family in registry.families() {
        match &family {
            AnyFamily::Counter(f) => {
                let plan = TagPlan::new(f.label_names(), &global);
                f.visit_sorted(|labels, c| {
                    let value = i64::try_from(c.get()).unwrap_or(i64::MAX);
                    let _ = plan
                        .point(buf, f.name(), labels)
                        .integer("value", value)
                        .finish(ts);
                });
                note_overflow(&mut overflows, f.name(), f.overflowed());
            }
            AnyFamily::Gauge(f) => {
                let plan = TagPlan::new(f.label_names(), &global);
                f.visit_sorted(|labels, g| {
                    let _ = plan
                        .point(buf, f.name(), labels)
                        .float("value", g.get())
                        .finish(ts);
                });
                note_overflow(&mut overflows, f.name(), f.overflowed());
            }
            AnyFamily::Histogram(f) => {
                let plan = TagPlan::new(f.label_names(), &global);
                f.visit_sorted(|labels, h| {
                    let point = plan.point(buf, f.name(), labels);
                    let _ = summary(point, &h.snapshot(), 1.0).finish(ts);
                });
                note_overflow(&mut overflows, f.name(), f.overflowed());
            }
            AnyFamily::Timer(f) => {
                let plan = TagPlan::new(f.label_names(), &global);
                f.visit_sorted(|labels, t| {
                    let point = plan.point(buf, f.name(), labels);
                    let _ = summary(point, &t.snapshot(), 1e9).finish(ts);
                });
                note_overflow(&mut overflows, f.name(), f.overflowed());
            }
        }
    }
    if !overflows.is_empty() {
        let names = ["family".to_string()];
        let plan = TagPlan::new(&names, &global);
        for (family, count) in overflows {
            let value = i64::try_from(count).unwrap_or(i64::MAX);
            let labels: [Box<str>; 1] = [family.into_boxed_str()];
            let _ = plan
                .point(buf, "metricz_cardinality_overflow_total", Some(&labels))
                .integer("value", value)
                .finish(ts);
        }
    }
}

fn note_overflow(overflows: &mut Vec<(String, u64)>, name: &str, count: u64) {
    if count > 0 {
        overflows.push((name.to_string(), count));
    }
}

/// Histogram fields; values divided by `divisor` (1e9 turns a timer's
/// nanoseconds into seconds).
fn summary<'a>(point: Point<'a>, s: &Snapshot, divisor: f64) -> Point<'a> {
    let count = i64::try_from(s.count()).unwrap_or(i64::MAX);
    let point = point
        .integer("count", count)
        .float("sum", s.sum() as f64 / divisor);
    if s.count() == 0 {
        return point;
    }
    point
        .float("min", s.min() as f64 / divisor)
        .float("max", s.max() as f64 / divisor)
        .float("p50", s.value_at_quantile(0.5) as f64 / divisor)
        .float("p90", s.value_at_quantile(0.9) as f64 / divisor)
        .float("p99", s.value_at_quantile(0.99) as f64 / divisor)
}

/// Where each tag of a family's points comes from, in key order.
struct TagPlan<'g> {
    /// Label tags: (key as written, label index), merged with the global
    /// tags whose keys no label has.
    tags: Vec<TagSource<'g>>,
    /// The overflow series' tags.
    overflow: Vec<TagSource<'g>>,
}

enum TagSource<'g> {
    Label(String, usize),
    Fixed(&'g str, &'g str),
}

impl<'g> TagSource<'g> {
    fn key(&self) -> &str {
        match self {
            TagSource::Label(k, _) => k,
            TagSource::Fixed(k, _) => k,
        }
    }
}

impl<'g> TagPlan<'g> {
    fn new(label_names: &[String], global: &[(&'g str, &'g str)]) -> Self {
        let merge = |mut tags: Vec<TagSource<'g>>| {
            for &(k, v) in global {
                if !tags.iter().any(|t| t.key() == k) {
                    tags.push(TagSource::Fixed(k, v));
                }
            }
            tags.sort_by(|a, b| a.key().cmp(b.key()));
            tags
        };
        let labels = label_names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                // InfluxDB 1.x refuses a tag key `time`: `time`, `time_`,
                // `time__`, … each get one more underscore, so the mapping
                // stays one-to-one (a family may have both `time` and
                // `time_`).
                let key = if name.starts_with("time") && name[4..].bytes().all(|b| b == b'_') {
                    format!("{name}_")
                } else {
                    name.clone()
                };
                TagSource::Label(key, i)
            })
            .collect();
        TagPlan {
            tags: merge(labels),
            overflow: merge(vec![TagSource::Fixed(OVERFLOW_LABEL, "true")]),
        }
    }

    fn point<'b>(&self, buf: &'b mut String, name: &str, labels: Option<&[Box<str>]>) -> Point<'b> {
        let mut point = Point::new(buf, name);
        let (tags, values) = match labels {
            Some(values) => (&self.tags, values),
            None => (&self.overflow, &[][..]),
        };
        for tag in tags {
            point = match tag {
                TagSource::Label(key, i) => point.tag(key, values.get(*i).map_or("", |v| v)),
                TagSource::Fixed(key, value) => point.tag(key, value),
            };
        }
        point
    }
}

/// Nanoseconds since the Unix epoch now (0 before it, `i64::MAX` after
/// 2262).
fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The InfluxDB 1.x pusher; start one with [`InfluxPusher::builder`].
///
/// ```no_run
/// use metricz::export::influx::InfluxPusher;
/// use metricz::export::push::PushOptions;
/// use std::time::Duration;
///
/// let mut options = PushOptions::default();
/// options.interval = Duration::from_secs(10);
/// let reg = metricz::Registry::new();
/// let pusher = InfluxPusher::builder(reg.clone(), "127.0.0.1:8086", "metrics")
///     .options(options)
///     .tag("host", "web-1")
///     .spawn()?;
/// reg.counter("jobs_total", "Jobs.")?.inc();
/// pusher.push_now()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub enum InfluxPusher {}

impl InfluxPusher {
    /// A builder for a pusher of `registry` to the InfluxDB 1.x server at
    /// `addr` (`host:port`), database `database`.
    ///
    /// ```
    /// let reg = metricz::Registry::new();
    /// let builder = metricz::export::influx::InfluxPusher::builder(reg, "localhost:8086", "db");
    /// ```
    pub fn builder(
        registry: Registry,
        addr: impl Into<String>,
        database: impl Into<String>,
    ) -> InfluxPusherBuilder {
        InfluxPusherBuilder {
            registry,
            addr: addr.into(),
            database: database.into(),
            retention_policy: None,
            credentials: None,
            tags: Vec::new(),
            connect_timeout: push::DEFAULT_IO_TIMEOUT,
            max_pending_bytes: push::DEFAULT_MAX_PENDING_BYTES,
            push: PushOptions::default(),
        }
    }
}

/// Settings of an InfluxDB pusher; from [`InfluxPusher::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct InfluxPusherBuilder {
    registry: Registry,
    addr: String,
    database: String,
    retention_policy: Option<String>,
    credentials: Option<(String, String)>,
    tags: Vec<(String, String)>,
    connect_timeout: Duration,
    max_pending_bytes: usize,
    push: PushOptions,
}

impl InfluxPusherBuilder {
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
    /// options.io_timeout = Duration::from_millis(500);
    /// options.backoff_initial = Duration::from_millis(100);
    /// options.backoff_max = Duration::from_secs(10);
    /// options.breaker_threshold = 3;
    /// options.breaker_cool_down = Duration::from_secs(30);
    /// options.wait_timeout = Duration::from_secs(2);
    ///
    /// let reg = metricz::Registry::new();
    /// let b = metricz::export::influx::InfluxPusher::builder(reg, "127.0.0.1:8086", "db")
    ///     .options(options);
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
    /// let b = metricz::export::influx::InfluxPusher::builder(reg, "127.0.0.1:8086", "db")
    ///     .connect_timeout(Duration::from_millis(500));
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = push::setting(timeout).max(Duration::from_millis(1));
        self
    }

    /// Bound on undelivered data kept for later attempts, in bytes (default
    /// [`DEFAULT_MAX_PENDING_BYTES`](push::DEFAULT_MAX_PENDING_BYTES));
    /// past it the oldest batches are dropped and counted.
    ///
    /// ```
    /// # let reg = metricz::Registry::new();
    /// let b = metricz::export::influx::InfluxPusher::builder(reg, "127.0.0.1:8086", "db")
    ///     .max_pending_bytes(1 << 20);
    /// ```
    pub fn max_pending_bytes(mut self, bytes: usize) -> Self {
        self.max_pending_bytes = bytes;
        self
    }

    /// A tag added to every point (a series' own label of the same key
    /// wins).
    ///
    /// ```
    /// # let reg = metricz::Registry::new();
    /// let b = metricz::export::influx::InfluxPusher::builder(reg, "127.0.0.1:8086", "db")
    ///     .tag("host", "web-1")
    ///     .tag("region", "eu");
    /// ```
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push((key.into(), value.into()));
        self
    }

    /// The retention policy to write into (`rp=`); default the database's
    /// default policy.
    ///
    /// ```
    /// # let reg = metricz::Registry::new();
    /// let b = metricz::export::influx::InfluxPusher::builder(reg, "127.0.0.1:8086", "db")
    ///     .retention_policy("one_week");
    /// ```
    pub fn retention_policy(mut self, policy: impl Into<String>) -> Self {
        self.retention_policy = Some(policy.into());
        self
    }

    /// HTTP Basic credentials, for a server with authentication on.
    ///
    /// ```
    /// # let reg = metricz::Registry::new();
    /// let b = metricz::export::influx::InfluxPusher::builder(reg, "127.0.0.1:8086", "db")
    ///     .credentials("writer", "secret");
    /// ```
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some((user.into(), password.into()));
        self
    }

    /// Starts the pusher thread. Errors: the address is not `host:port`
    /// ([`InvalidAddress`](PushError::InvalidAddress)), the database name
    /// is empty ([`EmptyDatabase`](PushError::EmptyDatabase)), registering
    /// the self-metrics or starting the thread failed. Nothing is resolved
    /// or connected here: an unreachable server shows up as failed pushes.
    ///
    /// ```
    /// # let reg = metricz::Registry::new();
    /// use metricz::export::{influx::InfluxPusher, push::PushError};
    /// let err = InfluxPusher::builder(reg, "no-port", "db").spawn().unwrap_err();
    /// assert!(matches!(err, PushError::InvalidAddress(_)));
    /// ```
    pub fn spawn(self) -> Result<PusherHandle, PushError> {
        push::check_address(&self.addr)?;
        let options = self.push.bounded();
        if self.database.is_empty() {
            return Err(PushError::EmptyDatabase);
        }
        let mut path = String::from("/write?db=");
        percent_encode(&mut path, &self.database);
        if let Some(rp) = &self.retention_policy {
            path.push_str("&rp=");
            percent_encode(&mut path, rp);
        }
        path.push_str("&precision=ns");
        let authorization = self.credentials.as_ref().map(|(user, password)| {
            let mut header = String::from("Basic ");
            base64(&mut header, format!("{user}:{password}").as_bytes());
            header
        });
        let sink = InfluxSink {
            http: Http {
                addr: self.addr,
                path,
                authorization,
                connect_timeout: self.connect_timeout,
                io_timeout: options.io_timeout,
            },
            tags: self.tags,
            pending: VecDeque::new(),
            pending_bytes: 0,
            max_pending_bytes: self.max_pending_bytes,
            dropped: 0,
            body: Vec::new(),
        };
        push::spawn(self.registry, sink, &options)
    }
}

/// Largest body sent in one request when catching up on pending batches
/// (a single larger batch goes alone).
const MAX_BODY_BYTES: usize = 4 << 20;

struct InfluxSink {
    http: Http,
    tags: Vec<(String, String)>,
    /// Undelivered batches, oldest first.
    pending: VecDeque<String>,
    pending_bytes: usize,
    max_pending_bytes: usize,
    dropped: u64,
    body: Vec<u8>,
}

impl Sink for InfluxSink {
    const NAME: &'static str = "influx";

    fn sample(&mut self, registry: &Registry) {
        let mut batch = String::new();
        encode_with_tags(registry, &self.tags, now_ns(), &mut batch);
        if !batch.is_empty() {
            self.pending_bytes += batch.len();
            self.pending.push_back(batch);
        }
    }

    fn deliver(&mut self, _registry: &Registry) -> Outcome {
        let mut rejected = None;
        while !self.pending.is_empty() {
            let mut n = 0;
            let mut len = 0;
            for batch in &self.pending {
                if n > 0 && len + batch.len() > MAX_BODY_BYTES {
                    break;
                }
                n += 1;
                len += batch.len();
            }
            self.body.clear();
            for batch in self.pending.iter().take(n) {
                self.body.extend_from_slice(batch.as_bytes());
            }
            match self.http.post(&self.body) {
                Ok(()) => self.pop(n),
                Err(Failure::Refused(e)) => {
                    self.dropped += len as u64;
                    self.pop(n);
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
        let mut dropped = 0;
        while self.pending_bytes > self.max_pending_bytes {
            let Some(oldest) = self.pending.pop_front() else {
                break;
            };
            self.pending_bytes -= oldest.len();
            dropped += oldest.len() as u64;
        }
        dropped
    }

    fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }
}

impl InfluxSink {
    fn pop(&mut self, n: usize) {
        for _ in 0..n {
            if let Some(batch) = self.pending.pop_front() {
                self.pending_bytes -= batch.len();
            }
        }
    }
}

/// Why a POST failed.
enum Failure {
    /// The server is unreachable, slow, or answered an error: retry later.
    Sink(PushError),
    /// The server refused the data: drop it.
    Refused(PushError),
}

/// A minimal HTTP/1.1 client for `POST /write`.
struct Http {
    addr: String,
    path: String,
    authorization: Option<String>,
    connect_timeout: Duration,
    io_timeout: Duration,
}

/// Response head bytes read at most.
const MAX_HEAD_BYTES: usize = 16 << 10;
/// Response body bytes kept for an error message.
const MAX_ERROR_BODY: usize = 512;

impl Http {
    fn post(&self, body: &[u8]) -> Result<(), Failure> {
        let mut stream = self.connect().map_err(Failure::Sink)?;
        let _ = stream.set_nodelay(true);
        let mut head = String::with_capacity(256);
        head.push_str("POST ");
        head.push_str(&self.path);
        head.push_str(" HTTP/1.1\r\nHost: ");
        head.push_str(&self.addr);
        head.push_str("\r\nUser-Agent: metricz/");
        head.push_str(env!("CARGO_PKG_VERSION"));
        head.push_str("\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ");
        head.push_str(itoa::Buffer::new().format(body.len()));
        if let Some(auth) = &self.authorization {
            head.push_str("\r\nAuthorization: ");
            head.push_str(auth);
        }
        head.push_str("\r\nConnection: close\r\n\r\n");
        let deadline = Instant::now() + self.io_timeout;
        write_all_by(&mut stream, head.as_bytes(), deadline)
            .and_then(|()| write_all_by(&mut stream, body, deadline))
            .map_err(|e| Failure::Sink(PushError::io("send", e)))?;
        let deadline = Instant::now() + self.io_timeout;
        read_response(&mut stream, deadline)
    }

    fn connect(&self) -> Result<TcpStream, PushError> {
        let addrs = self
            .addr
            .to_socket_addrs()
            .map_err(|e| PushError::io("resolve", e))?;
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.connect_timeout) {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) => PushError::io("connect", e),
            None => PushError::Unresolved(self.addr.clone()),
        })
    }
}

fn left(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(io::Error::from(io::ErrorKind::TimedOut))
    } else {
        Ok(left)
    }
}

fn write_all_by(stream: &mut TcpStream, mut data: &[u8], deadline: Instant) -> io::Result<()> {
    while !data.is_empty() {
        stream.set_write_timeout(Some(left(deadline)?))?;
        match stream.write(data) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads into `buf` once, within the deadline; the bytes read (0 at EOF).
fn read_by(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
    loop {
        stream.set_read_timeout(Some(left(deadline)?))?;
        match stream.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Reads the status line and headers (and, for an error, the start of the
/// body); success on 2xx.
fn read_response(stream: &mut TcpStream, deadline: Instant) -> Result<(), Failure> {
    let receive = |e| Failure::Sink(PushError::io("receive", e));
    let malformed = |what: &str| Failure::Sink(PushError::MalformedResponse(what.to_string()));
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let end = loop {
        if let Some(i) = find(&head, b"\r\n\r\n") {
            break i + 4;
        }
        if head.len() > MAX_HEAD_BYTES {
            return Err(malformed("headers too long"));
        }
        let n = read_by(stream, &mut chunk, deadline).map_err(receive)?;
        if n == 0 {
            if head.is_empty() {
                return Err(malformed("connection closed without a response"));
            }
            return Err(malformed("connection closed inside the headers"));
        }
        head.extend_from_slice(&chunk[..n]);
    };
    let text = String::from_utf8_lossy(&head[..end]);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let status = parts.next().and_then(|s| s.parse::<u16>().ok());
    let status = match status {
        Some(s) if version.starts_with("HTTP/1.") && (100..=999).contains(&s) => s,
        _ => {
            let shown: String = status_line.chars().take(80).collect();
            return Err(malformed(&format!("bad status line {shown:?}")));
        }
    };
    if (200..300).contains(&status) {
        return Ok(());
    }
    let content_length = lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if name.trim().eq_ignore_ascii_case("content-length") {
            value.trim().parse::<usize>().ok()
        } else {
            None
        }
    });
    let want = content_length.unwrap_or(MAX_ERROR_BODY).min(MAX_ERROR_BODY);
    let mut body = head[end..].to_vec();
    while body.len() < want {
        match read_by(stream, &mut chunk, deadline) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    body.truncate(want);
    let body = String::from_utf8_lossy(&body).trim().to_string();
    Err(match status {
        400 | 413 => Failure::Refused(PushError::Rejected { status, body }),
        _ => Failure::Sink(PushError::Http { status, body }),
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Percent-encodes a query parameter value (RFC 3986 unreserved kept).
fn percent_encode(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

/// Standard base64 with padding.
fn base64(out: &mut String, data: &[u8]) {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_follows_the_1x_grammar() {
        let mut buf = String::new();
        Point::new(&mut buf, "a b,c=d\\")
            .tag("k ,=", "v\\,\n")
            .tag("e", "\\\\")
            .float("f k", 1.0)
            .finish(None)
            .unwrap();
        assert_eq!(buf, "a\\ b\\,c=d,k\\ \\,\\==v\\\\\\,\\n f\\ k=1.0\n");
    }

    #[test]
    fn comment_measurements_are_escaped() {
        let mut buf = String::new();
        Point::new(&mut buf, "#m")
            .integer("x", 1)
            .finish(None)
            .unwrap();
        assert_eq!(buf, "\\#m x=1i\n");
    }

    #[test]
    fn failed_points_leave_nothing() {
        let mut buf = String::from("keep\n");
        assert_eq!(
            Point::new(&mut buf, "m").finish(None),
            Err(LineError::NoFields)
        );
        assert_eq!(
            Point::new(&mut buf, "\\\\").integer("x", 1).finish(None),
            Err(LineError::EmptyMeasurement)
        );
        assert_eq!(
            Point::new(&mut buf, "m")
                .integer("x", 1)
                .tag("a", "b")
                .finish(None),
            Err(LineError::TagAfterField("a".into()))
        );
        assert_eq!(
            Point::new(&mut buf, "m").integer("", 1).finish(None),
            Err(LineError::EmptyFieldKey)
        );
        drop(Point::new(&mut buf, "m").integer("x", 1));
        assert_eq!(buf, "keep\n");
    }

    #[test]
    fn base64_and_percent_encoding() {
        let mut s = String::new();
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("user:pass", "dXNlcjpwYXNz"),
        ] {
            s.clear();
            base64(&mut s, input.as_bytes());
            assert_eq!(s, want);
        }
        s.clear();
        percent_encode(&mut s, "my db&x=é");
        assert_eq!(s, "my%20db%26x%3D%C3%A9");
    }
}
