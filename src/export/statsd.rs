//! StatsD and DogStatsD: the encoder ([`encode`]) and a UDP pusher
//! ([`StatsdPusher`]).
//!
//! # What a registry becomes
//!
//! | kind | lines |
//! |---|---|
//! | counter | `name:<delta>\|c`: the increase since the last delivered push (nothing when it did not change) |
//! | gauge | `name:<value>\|g` (NaN and ±∞, which StatsD cannot carry, are left out) |
//! | histogram | gauges `name.count`, `name.sum`, and when not empty `name.min`, `name.max`, `name.p50`, `name.p90`, `name.p99` |
//! | timer | as a histogram, in milliseconds (the StatsD convention) |
//!
//! Histograms and timers are sent pre-aggregated, as gauges of their
//! summary since the series was created (the form of Dropwizard's and
//! go-metrics' StatsD reporters), not as `|ms` samples: the registry keeps
//! buckets, not samples, and a StatsD daemon's timer percentiles would
//! weigh each line as one sample.
//!
//! A negative gauge value is sent as `name:0|g` followed by
//! `name:-3.5|g` in the same datagram, because StatsD reads a signed gauge
//! value as a change of the gauge. DogStatsD gets the pair too: the
//! Datadog agent sets the gauge twice and keeps the last value, and a
//! plain StatsD daemon reading DogStatsD lines still ends at the value.
//!
//! **Names and labels.** Names are `prefix.name`, with the characters StatsD
//! gives a meaning (`:`, `|`, `@`, `#`, `,`, whitespace) replaced by `_`.
//! Plain StatsD has no tags: label values become dotted name segments, in
//! label order, with every character other than ASCII letters, digits,
//! `_` and `-` replaced by `_` (an empty value becomes `_`), and the
//! overflow series is the segment `metricz_overflow`. DogStatsD sends
//! labels as tags instead, `name:1|c|#label:value,...`, after the
//! configured global tags, with `,`, `|` and line breaks replaced by `_`
//! (and `:` in keys); labels with empty values are left out, and the
//! overflow series is tagged `metricz_overflow:true`. Overflow counts of
//! the families go out as `metricz_cardinality_overflow_total` (segment
//! or tag `family`), as in the Prometheus exposition.
//!
//! ```
//! use metricz::export::statsd::{self, Deltas, StatsdFormat};
//! use metricz::Registry;
//!
//! let reg = Registry::new();
//! let jobs = reg.counter_vec("jobs_total", "Jobs.", &["queue"])?;
//! jobs.with(&["mail"])?.add(3);
//! reg.gauge("balance", "Balance.")?.set(-2.5);
//!
//! let format = StatsdFormat::new().prefix("app");
//! let mut deltas = Deltas::new();
//! let mut buf = String::new();
//! statsd::encode(&reg, &format, &mut deltas, &mut buf);
//! assert_eq!(buf, "app.balance:0|g\napp.balance:-2.5|g\napp.jobs_total.mail:3|c\n");
//!
//! jobs.with(&["mail"])?.add(2);
//! buf.clear();
//! let dog = StatsdFormat::new().dogstatsd(true).tag("env", "prod");
//! statsd::encode(&reg, &dog, &mut deltas, &mut buf);
//! assert_eq!(
//!     buf,
//!     "balance:0|g|#env:prod\nbalance:-2.5|g|#env:prod\njobs_total:2|c|#env:prod,queue:mail\n"
//! );
//! # Ok::<(), metricz::RegistryError>(())
//! ```
//!
//! # Counters as deltas
//!
//! [`Deltas`] keeps, per counter series, the value last sent. The pusher
//! moves it only for the series of datagrams the kernel accepted (and for
//! which no ICMP error came back, on a connected socket), so a failed push
//! loses no count: the next push carries the whole accumulated delta,
//! once. UDP cannot confirm delivery: a datagram accepted and then lost on
//! the way, or refused by a remote host after the send returned, is lost
//! with its counts. A counter that went down (a removed series created
//! again) sends its whole value.
//!
//! # The pusher and datagrams
//!
//! [`StatsdPusher::builder`] starts a background pusher (see
//! [`push`] for the thread, backoff, breaker and counts).
//! Lines are packed into datagrams of at most
//! [`max_datagram`](StatsdPusherBuilder::max_datagram) bytes (default
//! [`DEFAULT_MAX_DATAGRAM`], which fits a 1500-byte Ethernet MTU), joined
//! by `\n`, never splitting a line (nor a negative gauge's pair); a line
//! longer than the bound goes alone. A datagram too long for UDP itself
//! (over 65 507 bytes: a line with an enormous label value) is dropped and
//! counted, and its counter deltas given up (retrying cannot help); the
//! push then fails, but its other datagrams still go.

use super::push::{self, Outcome, PushError, PushOptions, PusherHandle, Sink};
use crate::primitive::std_only::Arc;
use crate::registry::{AnyFamily, Registry};
use crate::Snapshot;
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::ops::Range;

/// Default datagram size bound: 1432 bytes, a 1500-byte MTU less IP and UDP
/// headers with room for options.
pub const DEFAULT_MAX_DATAGRAM: usize = 1432;

/// How lines are written: name prefix, plain StatsD or DogStatsD, global
/// tags.
///
/// ```
/// use metricz::export::statsd::StatsdFormat;
/// let format = StatsdFormat::new().prefix("app").dogstatsd(true).tag("env", "prod");
/// assert!(format.is_dogstatsd());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct StatsdFormat {
    /// Sanitised prefix, without the trailing dot.
    prefix: String,
    dogstatsd: bool,
    /// Sanitised `key:value` (or `key`) tags.
    tags: Vec<String>,
}

impl StatsdFormat {
    /// Plain StatsD, no prefix, no tags.
    ///
    /// ```
    /// let format = metricz::export::statsd::StatsdFormat::new();
    /// assert!(!format.is_dogstatsd());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// A prefix for every name, joined with a dot (`app` → `app.jobs`);
    /// trailing dots are dropped and StatsD's special characters replaced
    /// by `_`.
    ///
    /// ```
    /// let format = metricz::export::statsd::StatsdFormat::new().prefix("my app.");
    /// ```
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix.clear();
        push_name(&mut self.prefix, prefix.trim_end_matches('.'));
        self
    }

    /// DogStatsD (labels as `|#key:value` tags) instead of plain StatsD
    /// (labels as name segments).
    ///
    /// ```
    /// let format = metricz::export::statsd::StatsdFormat::new().dogstatsd(true);
    /// assert!(format.is_dogstatsd());
    /// ```
    pub fn dogstatsd(mut self, on: bool) -> Self {
        self.dogstatsd = on;
        self
    }

    /// Whether lines are DogStatsD.
    ///
    /// ```
    /// assert!(!metricz::export::statsd::StatsdFormat::new().is_dogstatsd());
    /// ```
    pub fn is_dogstatsd(&self) -> bool {
        self.dogstatsd
    }

    /// A tag for every line, DogStatsD only (plain StatsD has no tags and
    /// ignores it). An empty value makes a bare `key` tag.
    ///
    /// ```
    /// let format = metricz::export::statsd::StatsdFormat::new().dogstatsd(true).tag("host", "web-1");
    /// ```
    pub fn tag(mut self, key: &str, value: &str) -> Self {
        let mut tag = String::new();
        push_tag_part(&mut tag, key, true);
        if !value.is_empty() {
            tag.push(':');
            push_tag_part(&mut tag, value, false);
        }
        self.tags.push(tag);
        self
    }
}

/// Per counter series, the value last delivered: the baselines of
/// delta encoding. Series no longer in the registry are forgotten at the
/// next encoding.
///
/// ```
/// let deltas = metricz::export::statsd::Deltas::new();
/// assert!(deltas.is_empty());
/// ```
#[derive(Debug, Default)]
pub struct Deltas {
    baselines: HashMap<Box<str>, Baseline>,
    generation: u64,
}

#[derive(Debug)]
struct Baseline {
    value: u64,
    /// The last encoding that saw the series.
    seen: u64,
    /// Which series the baseline belongs to (its shared label values; kept,
    /// so the identity cannot be reused): a series removed and created
    /// again under the same labels is a new series whose whole value is
    /// new, even when it has already grown past the old baseline.
    series: Option<Series>,
}

/// A labelled series' identity: its shared label values.
type Series = Arc<[Box<str>]>;

impl Deltas {
    /// No baselines: the first encoding sends every counter's whole value.
    ///
    /// ```
    /// let deltas = metricz::export::statsd::Deltas::new();
    /// assert_eq!(deltas.len(), 0);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of counter series with a baseline.
    ///
    /// ```
    /// let reg = metricz::Registry::new();
    /// reg.counter("a_total", "A.")?.inc();
    /// let mut deltas = metricz::export::statsd::Deltas::new();
    /// let mut buf = String::new();
    /// metricz::export::statsd::encode(&reg, &Default::default(), &mut deltas, &mut buf);
    /// assert_eq!(deltas.len(), 1);
    /// # Ok::<(), metricz::RegistryError>(())
    /// ```
    pub fn len(&self) -> usize {
        self.baselines.len()
    }

    /// Whether there is no baseline.
    ///
    /// ```
    /// assert!(metricz::export::statsd::Deltas::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.baselines.is_empty()
    }

    fn baseline(&mut self, key: &str, series: Option<&Series>) -> u64 {
        match self.baselines.get_mut(key) {
            Some(b) => {
                b.seen = self.generation;
                let same = match (&b.series, series) {
                    (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                    (None, None) => true,
                    _ => false,
                };
                if same {
                    b.value
                } else {
                    0
                }
            }
            None => 0,
        }
    }

    fn commit(&mut self, key: &str, value: u64, series: Option<&Series>) {
        match self.baselines.get_mut(key) {
            Some(b) => {
                b.value = value;
                b.series = series.cloned();
            }
            None => {
                self.baselines.insert(
                    key.into(),
                    Baseline {
                        value,
                        seen: self.generation,
                        series: series.cloned(),
                    },
                );
            }
        }
    }

    /// Forgets the series the last encoding did not see.
    fn prune(&mut self) {
        let generation = self.generation;
        self.baselines.retain(|_, b| b.seen == generation);
    }
}

/// Appends the StatsD lines of `registry` to `buf` (each ending in `\n`)
/// and moves every counter's baseline in `deltas` to the value sent. See
/// the [module docs](self).
///
/// ```
/// use metricz::export::statsd::{encode, Deltas, StatsdFormat};
/// let reg = metricz::Registry::new();
/// let t = reg.timer("latency", "Latency.")?;
/// t.record(std::time::Duration::from_millis(3));
/// let mut buf = String::new();
/// encode(&reg, &StatsdFormat::new(), &mut Deltas::new(), &mut buf);
/// assert!(buf.starts_with("latency.count:1|g\nlatency.sum:3.0|g\n"));
/// # Ok::<(), metricz::RegistryError>(())
/// ```
pub fn encode(registry: &Registry, format: &StatsdFormat, deltas: &mut Deltas, buf: &mut String) {
    let mut lines = Lines::default();
    encode_lines(registry, format, deltas, &mut lines);
    for unit in 0..lines.units.len() {
        lines.commit(unit, deltas);
        buf.push_str(lines.text(unit));
        buf.push('\n');
    }
}

/// Encoded lines in units that must travel together, each with the
/// baseline to commit once it is delivered.
#[derive(Debug, Default)]
struct Lines {
    /// Every unit's text, one after the other.
    text: String,
    /// Baseline keys of the commits, one after the other.
    keys: String,
    units: Vec<Unit>,
}

#[derive(Debug)]
struct Unit {
    text: Range<usize>,
    /// Counter key range in `keys`, the value to commit, and the series.
    commit: Option<(Range<usize>, u64, Option<Series>)>,
}

impl Lines {
    fn clear(&mut self) {
        self.text.clear();
        self.keys.clear();
        self.units.clear();
    }

    fn text(&self, unit: usize) -> &str {
        &self.text[self.units[unit].text.clone()]
    }

    fn commit(&self, unit: usize, deltas: &mut Deltas) {
        if let Some((key, value, series)) = &self.units[unit].commit {
            deltas.commit(&self.keys[key.clone()], *value, series.as_ref());
        }
    }

    /// Packs units into datagrams of at most `max` bytes, joined by `\n`;
    /// calls `send` with each datagram and its unit range.
    fn pack(&self, max: usize, datagram: &mut String, mut send: impl FnMut(&str, Range<usize>)) {
        let mut first = 0;
        datagram.clear();
        for unit in 0..self.units.len() {
            let text = self.text(unit);
            if !datagram.is_empty() && datagram.len() + 1 + text.len() > max {
                send(datagram, first..unit);
                datagram.clear();
                first = unit;
            }
            if !datagram.is_empty() {
                datagram.push('\n');
            }
            datagram.push_str(text);
        }
        if !datagram.is_empty() {
            send(datagram, first..self.units.len());
        }
    }
}

/// One line's name: prefix, metric name, label path (plain StatsD) and a
/// suffix; tags written after the type by `finish`.
struct LineStart<'a> {
    format: &'a StatsdFormat,
    name: &'a str,
    label_names: &'a [String],
}

impl LineStart<'_> {
    fn write(
        &self,
        out: &mut String,
        labels: Option<&[Box<str>]>,
        suffix: &str,
        value: &str,
        kind: &str,
    ) {
        if !self.format.prefix.is_empty() {
            out.push_str(&self.format.prefix);
            out.push('.');
        }
        push_name(out, self.name);
        if !self.format.dogstatsd {
            match labels {
                Some(values) => {
                    for value in values {
                        out.push('.');
                        push_segment(out, value);
                    }
                }
                None => out.push_str(".metricz_overflow"),
            }
        }
        out.push_str(suffix);
        out.push(':');
        out.push_str(value);
        out.push('|');
        out.push_str(kind);
        if self.format.dogstatsd {
            let mut first = true;
            let mut sep = |out: &mut String| {
                out.push_str(if first { "|#" } else { "," });
                first = false;
            };
            for tag in &self.format.tags {
                sep(out);
                out.push_str(tag);
            }
            match labels {
                Some(values) => {
                    for (name, value) in self.label_names.iter().zip(values.iter()) {
                        if value.is_empty() {
                            continue;
                        }
                        sep(out);
                        push_tag_part(out, name, true);
                        out.push(':');
                        push_tag_part(out, value, false);
                    }
                }
                None => {
                    sep(out);
                    out.push_str("metricz_overflow:true");
                }
            }
        }
    }
}

/// The key of a counter series in [`Deltas`]: the name, then each label
/// value with its length (unambiguous for any values).
fn series_key(key: &mut String, name: &str, labels: Option<&[Box<str>]>) {
    key.clear();
    key.push_str(name);
    match labels {
        Some(values) => {
            for value in values {
                key.push('\0');
                key.push_str(itoa::Buffer::new().format(value.len()));
                key.push(':');
                key.push_str(value);
            }
        }
        None => key.push_str("\0overflow"),
    }
}

struct Encoder<'a> {
    deltas: &'a mut Deltas,
    out: &'a mut Lines,
    key: String,
    value: String,
}

impl Encoder<'_> {
    /// A counter line; `series` is the identity of a registry series (None
    /// for a family's overflow series and for synthetic series, whose key
    /// alone identifies them).
    fn counter(
        &mut self,
        line: &LineStart<'_>,
        labels: Option<&[Box<str>]>,
        series: Option<&Series>,
        current: u64,
    ) {
        series_key(&mut self.key, line.name, labels);
        let baseline = self.deltas.baseline(&self.key, series);
        // A counter below its baseline was reset (removed, then created
        // again): its whole value is new.
        let delta = current.checked_sub(baseline).unwrap_or(current);
        if delta == 0 {
            return;
        }
        let start = self.out.text.len();
        self.value.clear();
        self.value.push_str(itoa::Buffer::new().format(delta));
        line.write(&mut self.out.text, labels, "", &self.value, "c");
        let key_start = self.out.keys.len();
        self.out.keys.push_str(&self.key);
        self.out.units.push(Unit {
            text: start..self.out.text.len(),
            commit: Some((key_start..self.out.keys.len(), current, series.cloned())),
        });
    }

    fn gauge(&mut self, line: &LineStart<'_>, labels: Option<&[Box<str>]>, suffix: &str, v: f64) {
        if !v.is_finite() {
            return;
        }
        let v = if v == 0.0 { 0.0 } else { v }; // no "-0.0"
        let start = self.out.text.len();
        self.value.clear();
        self.value.push_str(ryu::Buffer::new().format_finite(v));
        if v < 0.0 {
            line.write(&mut self.out.text, labels, suffix, "0", "g");
            self.out.text.push('\n');
        }
        line.write(&mut self.out.text, labels, suffix, &self.value, "g");
        self.out.units.push(Unit {
            text: start..self.out.text.len(),
            commit: None,
        });
    }

    fn summary(
        &mut self,
        line: &LineStart<'_>,
        labels: Option<&[Box<str>]>,
        s: &Snapshot,
        divisor: f64,
    ) {
        let count = s.count();
        if count == 0 {
            return;
        }
        let start = self.out.text.len();
        self.value.clear();
        self.value.push_str(itoa::Buffer::new().format(count));
        line.write(&mut self.out.text, labels, ".count", &self.value, "g");
        self.out.units.push(Unit {
            text: start..self.out.text.len(),
            commit: None,
        });
        self.gauge(line, labels, ".sum", s.sum() as f64 / divisor);
        self.gauge(line, labels, ".min", s.min() as f64 / divisor);
        self.gauge(line, labels, ".max", s.max() as f64 / divisor);
        self.gauge(
            line,
            labels,
            ".p50",
            s.value_at_quantile(0.5) as f64 / divisor,
        );
        self.gauge(
            line,
            labels,
            ".p90",
            s.value_at_quantile(0.9) as f64 / divisor,
        );
        self.gauge(
            line,
            labels,
            ".p99",
            s.value_at_quantile(0.99) as f64 / divisor,
        );
    }
}

/// Encodes `registry` into `out` (cleared first), reading baselines from
/// `deltas` without moving them, and forgetting baselines of series gone.
fn encode_lines(registry: &Registry, format: &StatsdFormat, deltas: &mut Deltas, out: &mut Lines) {
    out.clear();
    deltas.generation += 1;
    let mut e = Encoder {
        deltas,
        out,
        key: String::new(),
        value: String::new(),
    };
    let mut overflows: Vec<(String, u64)> = Vec::new();
    for family in registry.families() {
        let (name, label_names, overflowed) = match &family {
            AnyFamily::Counter(f) => (f.name(), f.label_names(), f.overflowed()),
            AnyFamily::Gauge(f) => (f.name(), f.label_names(), f.overflowed()),
            AnyFamily::Histogram(f) => (f.name(), f.label_names(), f.overflowed()),
            AnyFamily::Timer(f) => (f.name(), f.label_names(), f.overflowed()),
        };
        let line = LineStart {
            format,
            name,
            label_names,
        };
        match &family {
            AnyFamily::Counter(f) => f.visit_sorted_shared(|series, c| {
                e.counter(&line, series.map(|l| &**l), series, c.get())
            }),
            AnyFamily::Gauge(f) => f.visit_sorted(|labels, g| e.gauge(&line, labels, "", g.get())),
            AnyFamily::Histogram(f) => {
                f.visit_sorted(|labels, h| e.summary(&line, labels, &h.snapshot(), 1.0));
            }
            AnyFamily::Timer(f) => {
                f.visit_sorted(|labels, t| e.summary(&line, labels, &t.snapshot(), 1e6));
            }
        }
        if overflowed > 0 {
            overflows.push((name.to_string(), overflowed));
        }
    }
    let names = ["family".to_string()];
    for (family, count) in overflows {
        let labels: [Box<str>; 1] = [family.into_boxed_str()];
        let line = LineStart {
            format,
            name: "metricz_cardinality_overflow_total",
            label_names: &names,
        };
        e.counter(&line, Some(&labels), None, count);
    }
    e.deltas.prune();
}

/// Appends a metric name (or prefix) with StatsD's special characters
/// replaced by `_`.
fn push_name(out: &mut String, name: &str) {
    for c in name.chars() {
        out.push(match c {
            ':' | '|' | '@' | '#' | ',' => '_',
            c if c.is_whitespace() || c.is_control() => '_',
            c => c,
        });
    }
}

/// Appends a label value as a name segment: ASCII letters, digits, `_` and
/// `-` kept, anything else `_`; empty becomes `_`.
fn push_segment(out: &mut String, value: &str) {
    if value.is_empty() {
        out.push('_');
    }
    for c in value.chars() {
        out.push(if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            c
        } else {
            '_'
        });
    }
}

/// Appends a DogStatsD tag key or value: `,`, `|`, line breaks (and `:` in
/// a key) replaced by `_`.
fn push_tag_part(out: &mut String, part: &str, key: bool) {
    for c in part.chars() {
        out.push(match c {
            ',' | '|' | '\n' | '\r' => '_',
            ':' if key => '_',
            c => c,
        });
    }
}

/// The StatsD pusher; start one with [`StatsdPusher::builder`].
///
/// ```no_run
/// use metricz::export::push::PushOptions;
/// use metricz::export::statsd::StatsdPusher;
/// use std::time::Duration;
///
/// let mut options = PushOptions::default();
/// options.interval = Duration::from_secs(10);
/// let reg = metricz::Registry::new();
/// let pusher = StatsdPusher::builder(reg.clone(), "127.0.0.1:8125")
///     .options(options)
///     .prefix("app")
///     .dogstatsd(true)
///     .max_datagram(1432)
///     .spawn()?;
/// reg.counter("jobs_total", "Jobs.")?.inc();
/// pusher.push_now()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub enum StatsdPusher {}

impl StatsdPusher {
    /// A builder for a pusher of `registry` to the StatsD daemon at `addr`
    /// (`host:port`, UDP).
    ///
    /// ```
    /// let reg = metricz::Registry::new();
    /// let builder = metricz::export::statsd::StatsdPusher::builder(reg, "127.0.0.1:8125");
    /// ```
    pub fn builder(registry: Registry, addr: impl Into<String>) -> StatsdPusherBuilder {
        StatsdPusherBuilder {
            registry,
            addr: addr.into(),
            format: StatsdFormat::new(),
            max_datagram: DEFAULT_MAX_DATAGRAM,
            push: PushOptions::default(),
        }
    }
}

/// Settings of a StatsD pusher; from [`StatsdPusher::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct StatsdPusherBuilder {
    registry: Registry,
    addr: String,
    format: StatsdFormat,
    max_datagram: usize,
    push: PushOptions,
}

impl StatsdPusherBuilder {
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
    /// let b = metricz::export::statsd::StatsdPusher::builder(reg, "127.0.0.1:8125")
    ///     .options(options);
    /// ```
    pub fn options(mut self, options: PushOptions) -> Self {
        self.push = options;
        self
    }

    /// A prefix for every name (see [`StatsdFormat::prefix`]).
    ///
    /// ```
    /// # let reg = metricz::Registry::new();
    /// let b = metricz::export::statsd::StatsdPusher::builder(reg, "127.0.0.1:8125").prefix("app");
    /// ```
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.format = self.format.prefix(prefix);
        self
    }

    /// DogStatsD tags instead of name segments for labels (default off).
    ///
    /// ```
    /// # let reg = metricz::Registry::new();
    /// let b = metricz::export::statsd::StatsdPusher::builder(reg, "127.0.0.1:8125").dogstatsd(true);
    /// ```
    pub fn dogstatsd(mut self, on: bool) -> Self {
        self.format = self.format.dogstatsd(on);
        self
    }

    /// A tag for every line (DogStatsD only; see [`StatsdFormat::tag`]).
    ///
    /// ```
    /// # let reg = metricz::Registry::new();
    /// let b = metricz::export::statsd::StatsdPusher::builder(reg, "127.0.0.1:8125")
    ///     .dogstatsd(true)
    ///     .tag("host", "web-1");
    /// ```
    pub fn tag(mut self, key: &str, value: &str) -> Self {
        self.format = self.format.tag(key, value);
        self
    }

    /// The whole line format at once (replaces prefix, DogStatsD and tags).
    ///
    /// ```
    /// # let reg = metricz::Registry::new();
    /// use metricz::export::statsd::{StatsdFormat, StatsdPusher};
    /// let b = StatsdPusher::builder(reg, "127.0.0.1:8125")
    ///     .format(StatsdFormat::new().prefix("app"));
    /// ```
    pub fn format(mut self, format: StatsdFormat) -> Self {
        self.format = format;
        self
    }

    /// Largest datagram in bytes (default [`DEFAULT_MAX_DATAGRAM`]; at
    /// least 1). Lines are never split; a longer line goes alone.
    ///
    /// ```
    /// # let reg = metricz::Registry::new();
    /// let b = metricz::export::statsd::StatsdPusher::builder(reg, "127.0.0.1:8125").max_datagram(8932);
    /// ```
    pub fn max_datagram(mut self, bytes: usize) -> Self {
        self.max_datagram = bytes.max(1);
        self
    }

    /// Starts the pusher thread. Errors: the address is not `host:port`
    /// ([`InvalidAddress`](PushError::InvalidAddress)), registering the
    /// self-metrics or starting the thread failed. Nothing is resolved
    /// here: that happens at each push until a socket is connected.
    ///
    /// ```
    /// # let reg = metricz::Registry::new();
    /// use metricz::export::{push::PushError, statsd::StatsdPusher};
    /// let err = StatsdPusher::builder(reg, "8125").spawn().unwrap_err();
    /// assert!(matches!(err, PushError::InvalidAddress(_)));
    /// ```
    pub fn spawn(self) -> Result<PusherHandle, PushError> {
        push::check_address(&self.addr)?;
        let options = self.push.bounded();
        let sink = StatsdSink {
            addr: self.addr,
            format: self.format,
            max_datagram: self.max_datagram,
            io_timeout: options.io_timeout,
            socket: None,
            deltas: Deltas::new(),
            lines: Lines::default(),
            datagram: String::new(),
            dropped: 0,
        };
        push::spawn(self.registry, sink, &options)
    }
}

/// Whether a send failed because the datagram is larger than UDP (or the
/// path) allows.
fn too_long(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(libc::EMSGSIZE)
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

struct StatsdSink {
    addr: String,
    format: StatsdFormat,
    max_datagram: usize,
    io_timeout: std::time::Duration,
    /// Connected to the daemon; `None` until the first push and after a
    /// send error (to resolve again).
    socket: Option<UdpSocket>,
    deltas: Deltas,
    lines: Lines,
    datagram: String,
    dropped: u64,
}

impl StatsdSink {
    /// Connects the socket if there is none.
    fn connect(&mut self) -> Result<(), PushError> {
        if self.socket.is_none() {
            let target = self
                .addr
                .to_socket_addrs()
                .map_err(|e| PushError::io("resolve", e))?
                .next()
                .ok_or_else(|| PushError::Unresolved(self.addr.clone()))?;
            let local: SocketAddr = if target.is_ipv4() {
                ([0u8; 4], 0).into()
            } else {
                ([0u16; 8], 0).into()
            };
            let socket = UdpSocket::bind(local).map_err(|e| PushError::io("bind", e))?;
            socket
                .connect(target)
                .map_err(|e| PushError::io("connect", e))?;
            socket
                .set_write_timeout(Some(self.io_timeout))
                .map_err(|e| PushError::io("connect", e))?;
            self.socket = Some(socket);
        }
        Ok(())
    }
}

impl Sink for StatsdSink {
    const NAME: &'static str = "statsd";

    fn deliver(&mut self, registry: &Registry) -> Outcome {
        encode_lines(registry, &self.format, &mut self.deltas, &mut self.lines);
        if self.lines.units.is_empty() {
            return Outcome::Delivered;
        }
        if let Err(e) = self.connect() {
            self.dropped += self.lines.text.len() as u64;
            return Outcome::Failed(e);
        }
        let Some(socket) = self.socket.as_ref() else {
            return Outcome::Failed(PushError::Unresolved(self.addr.clone()));
        };
        // An error left from an earlier push concerns datagrams already
        // counted as sent; start clean.
        let _ = socket.take_error();
        let mut failed: Option<PushError> = None;
        let mut refused: Option<PushError> = None;
        let mut dropped = 0u64;
        // Datagrams whose counter baselines move: delivered, or refused
        // for good (too long for UDP: retrying cannot help).
        let mut settled: Vec<Range<usize>> = Vec::new();
        self.lines
            .pack(self.max_datagram, &mut self.datagram, |datagram, units| {
                if failed.is_some() {
                    dropped += datagram.len() as u64;
                    return;
                }
                let sent = socket.send(datagram.as_bytes()).and_then(|_| {
                    match socket.take_error() {
                        // The ICMP error of this datagram (port
                        // unreachable): reported at once for a connected
                        // socket on loopback.
                        Ok(Some(e)) | Err(e) => Err(e),
                        Ok(None) => Ok(()),
                    }
                });
                match sent {
                    Ok(()) => settled.push(units),
                    Err(e) if too_long(&e) => {
                        dropped += datagram.len() as u64;
                        settled.push(units);
                        refused.get_or_insert(PushError::io("send", e));
                    }
                    Err(e) => {
                        dropped += datagram.len() as u64;
                        failed = Some(PushError::io("send", e));
                    }
                }
            });
        for units in settled {
            for unit in units {
                self.lines.commit(unit, &mut self.deltas);
            }
        }
        self.dropped += dropped;
        match (failed, refused) {
            (Some(e), _) => {
                self.socket = None;
                Outcome::Failed(e)
            }
            (None, Some(e)) => Outcome::Rejected(e),
            (None, None) => Outcome::Delivered,
        }
    }

    fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(texts: &[&str]) -> Lines {
        let mut l = Lines::default();
        for t in texts {
            let start = l.text.len();
            l.text.push_str(t);
            l.units.push(Unit {
                text: start..l.text.len(),
                commit: None,
            });
        }
        l
    }

    fn packed(l: &Lines, max: usize) -> Vec<(String, Range<usize>)> {
        let mut out = Vec::new();
        l.pack(max, &mut String::new(), |d, r| out.push((d.to_string(), r)));
        out
    }

    #[test]
    fn packing_fills_datagrams_without_splitting_lines() {
        let l = lines(&["aaaa", "bbbb", "cc", "dddddddddddd", "e"]);
        assert_eq!(
            packed(&l, 9),
            vec![
                ("aaaa\nbbbb".to_string(), 0..2),
                ("cc".to_string(), 2..3),
                ("dddddddddddd".to_string(), 3..4),
                ("e".to_string(), 4..5),
            ]
        );
        assert_eq!(packed(&l, 1).len(), 5);
        assert_eq!(packed(&l, 1000).len(), 1);
        assert!(packed(&lines(&[]), 10).is_empty());
    }

    #[test]
    fn names_segments_and_tags_are_sanitised() {
        let mut s = String::new();
        push_name(&mut s, "a:b|c@d#e,f g\n");
        assert_eq!(s, "a_b_c_d_e_f_g_");
        s.clear();
        push_segment(&mut s, "GET /a.b");
        push_segment(&mut s, "");
        assert_eq!(s, "GET__a_b_");
        s.clear();
        push_tag_part(&mut s, "k:e,y", true);
        s.push(':');
        push_tag_part(&mut s, "v:a|l\n", false);
        assert_eq!(s, "k_e_y:v:a_l_");
    }

    #[test]
    fn series_keys_are_unambiguous() {
        let (mut a, mut b) = (String::new(), String::new());
        let x: [Box<str>; 2] = ["a\0".into(), "b".into()];
        let y: [Box<str>; 2] = ["a".into(), "\0b".into()];
        series_key(&mut a, "n", Some(&x));
        series_key(&mut b, "n", Some(&y));
        assert_ne!(a, b);
    }
}
