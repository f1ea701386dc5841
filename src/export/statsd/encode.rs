//! [`encode`](fn@encode): the StatsD lines of a registry, written over its
//! collection walk ([`Registry::collect`]); counters as deltas against
//! [`Deltas`], gauges as they are, histograms and timers as gauges of
//! their summary.

use super::deltas::{push_series_key, Deltas};
use super::format::StatsdFormat;
use super::lines::Lines;
use crate::registry::{LabelSet, MetricKind, SeriesId, Value};
use crate::{Registry, Snapshot};
use std::convert::Infallible;

/// Appends the StatsD lines of `registry` to `buf` (each ending in `\n`)
/// and moves every counter's baseline in `deltas` to the value sent. See
/// the [module docs](crate::export::statsd).
///
/// Walks [`Registry::collect`] (which runs an idle-eviction pass first
/// when eviction is on). Once `buf` and `deltas` are warm (an encoding of
/// the same series before), an encode allocates nothing, except a
/// histogram snapshot per histogram or timer series.
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
    // The deltas lend their buffers, so a warm encode reuses them.
    let mut lines = std::mem::take(&mut deltas.lines);
    encode_lines(registry, format, deltas, &mut lines);
    for unit in 0..lines.units.len() {
        deltas.commit(&lines, unit);
        buf.push_str(lines.text(unit));
        buf.push('\n');
    }
    lines.clear();
    deltas.lines = lines;
}

/// Encodes `registry` into `out` (cleared first), reading baselines from
/// `deltas` without moving them, and forgetting baselines of series gone.
pub(super) fn encode_lines(
    registry: &Registry,
    format: &StatsdFormat,
    deltas: &mut Deltas,
    out: &mut Lines,
) {
    out.clear();
    deltas.begin();
    let mut e = Encoder {
        format,
        deltas,
        out,
    };
    registry
        .collect(|family| {
            let name = family.name();
            // Timers record nanoseconds and go in milliseconds (StatsD's
            // convention); histograms go in their recorded units.
            let divisor = if family.kind() == MetricKind::Timer {
                1e6
            } else {
                1.0
            };
            family.for_each_series(|mut view| {
                let series = Series {
                    name,
                    labels: (!view.is_overflow()).then(|| view.labels()),
                };
                match view.value() {
                    Value::Counter(n) => e.counter(series, view.id(), n),
                    Value::Gauge(x) => e.gauge(series, "", x),
                    Value::Distribution(d) => e.summary(series, &d.snapshot(), divisor),
                }
                Ok::<(), Infallible>(())
            })
        })
        .unwrap_or_else(|never| match never {});
    e.deltas.prune();
}

/// A series as its lines name it: its family's name and its labels
/// (`None` for the family's overflow series).
#[derive(Clone, Copy)]
struct Series<'a> {
    name: &'a str,
    labels: Option<LabelSet<'a>>,
}

struct Encoder<'a> {
    format: &'a StatsdFormat,
    deltas: &'a mut Deltas,
    out: &'a mut Lines,
}

impl Encoder<'_> {
    /// A counter line; `id` is the identity of a registry series (`None`
    /// for a family's overflow series and the overflow report, whose key
    /// alone identifies them).
    fn counter(&mut self, series: Series<'_>, id: Option<SeriesId>, current: u64) {
        // The key goes where the unit's commit keeps it; taken back when
        // there is no line.
        let key = self.out.keys.len();
        let values = series.labels.map(|l| l.iter().map(|(_, value)| value));
        push_series_key(&mut self.out.keys, series.name, values);
        let baseline = self.deltas.baseline(&self.out.keys[key..], id.as_ref());
        // A counter below its baseline was reset (removed, then created
        // again): its whole value is new.
        let delta = current.checked_sub(baseline).unwrap_or(current);
        if delta == 0 {
            self.out.keys.truncate(key);
            return;
        }
        let start = self.out.text.len();
        let mut value = itoa::Buffer::new();
        let value = value.format(delta);
        self.line(series, "", value, "c");
        self.out.push_counter(start, key, current, id);
    }

    fn gauge(&mut self, series: Series<'_>, suffix: &str, v: f64) {
        if !v.is_finite() {
            return;
        }
        let v = if v == 0.0 { 0.0 } else { v }; // no "-0.0"
        let start = self.out.text.len();
        let mut value = ryu::Buffer::new();
        let value = value.format_finite(v);
        if v < 0.0 {
            self.line(series, suffix, "0", "g");
            self.out.text.push('\n');
        }
        self.line(series, suffix, value, "g");
        self.out.push(start);
    }

    fn summary(&mut self, series: Series<'_>, s: &Snapshot, divisor: f64) {
        let count = s.count();
        if count == 0 {
            return;
        }
        let start = self.out.text.len();
        let mut value = itoa::Buffer::new();
        let value = value.format(count);
        self.line(series, ".count", value, "g");
        self.out.push(start);
        self.gauge(series, ".sum", s.sum() as f64 / divisor);
        self.gauge(series, ".min", s.min() as f64 / divisor);
        self.gauge(series, ".max", s.max() as f64 / divisor);
        self.gauge(series, ".p50", s.value_at_quantile(0.5) as f64 / divisor);
        self.gauge(series, ".p90", s.value_at_quantile(0.9) as f64 / divisor);
        self.gauge(series, ".p99", s.value_at_quantile(0.99) as f64 / divisor);
    }

    /// Appends one line of `series` (without its `\n`).
    fn line(&mut self, series: Series<'_>, suffix: &str, value: &str, kind: &str) {
        self.format.write_line(
            &mut self.out.text,
            series.name,
            series.labels,
            suffix,
            value,
            kind,
        );
    }
}
