//! Prometheus text format 0.0.4 and OpenMetrics 1.0 text.
//!
//! One encoder writes both; they differ in four places:
//!
//! | | Prometheus 0.0.4 | OpenMetrics 1.0 |
//! |---|---|---|
//! | counter family name | as registered (`requests_total`) | without `_total` (`requests`) |
//! | counter sample | as registered | `<family>_total` |
//! | `# UNIT` | never | when the family has a unit and its name ends in `_<unit>` |
//! | help escaping | `\\`, newline | `\\`, newline, `"` |
//! | end | — | `# EOF` |
//!
//! Histograms and timers are exported as histograms: cumulative
//! `_bucket{le="…"}` lines at the family's bounds (derived from the HDR
//! counts at scrape time), `le="+Inf"`, `_sum` and `_count`, in the family's
//! base unit (recorded integer × scale; timers record nanoseconds and export
//! seconds). With [`Family::set_summary`](crate::Family::set_summary) they
//! are summaries instead (quantiles 0.5, 0.9, 0.99). Label values are
//! escaped (`\\`, `"`, newline), floats are `+Inf`, `-Inf`, `NaN` or the
//! shortest decimal that reads back to the same value (ryu); integers go
//! through itoa. Once the buffer and the registry's scratch are warm, an
//! encode of an unchanged registry allocates nothing — except for families
//! exported as summaries (a histogram snapshot per series) and, when idle
//! eviction is on, its pass. An empty help text is written as the metric's
//! name (Prometheus's linter rejects empty help).

use super::Format;
use crate::registry::{counter_base, FamilyView, LabelSet, MetricKind, Value};
use crate::Registry;
use std::fmt::{self, Write};

/// Quantiles exported for histograms and timers exported as summaries.
const QUANTILES: [(f64, &str); 3] = [(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99")];

/// Writes the exposition of every family of `registry` in `format` to `out`
/// (see the [module docs](self)); walks [`Registry::collect`].
///
/// ```
/// use metricz::export::{text, Format};
///
/// let reg = metricz::Registry::new();
/// reg.counter("jobs_total", "Jobs.")?.add(2);
/// let mut out = String::new();
/// text::encode(&reg, Format::OpenMetrics, &mut out).unwrap();
/// assert_eq!(out, "# HELP jobs Jobs.\n# TYPE jobs counter\njobs_total 2\n# EOF\n");
/// # Ok::<(), metricz::RegistryError>(())
/// ```
///
/// [`Format::Protobuf`] is binary: it is refused with `fmt::Error` before
/// anything is written (use [`Format::encode_bytes`] or
/// [`protobuf::encode`](super::protobuf::encode)).
pub fn encode(registry: &Registry, format: Format, out: &mut impl Write) -> fmt::Result {
    if !format.is_text() {
        return Err(fmt::Error);
    }
    let om = format == Format::OpenMetrics;
    registry.collect(|family| encode_family(out, om, family))?;
    if om {
        out.write_str("# EOF\n")?;
    }
    Ok(())
}

/// These three are the names DESIGN's API contract gives the registry; the
/// registry knows nothing of formats, so they are defined here, over
/// [`encode`].
impl Registry {
    /// Appends the Prometheus text exposition (format 0.0.4) of every
    /// family to `buf`: counters and gauges as such, histograms and timers
    /// as histograms (or summaries, see
    /// [`Family::set_summary`](crate::Family::set_summary); timers in
    /// seconds). Never blocks recording; allocates nothing once `buf` and
    /// the registry are warm. Runs an idle-eviction pass first if eviction
    /// is on.
    pub fn encode_prometheus(&self, buf: &mut String) -> fmt::Result {
        encode(self, Format::Prometheus, buf)
    }

    /// Appends the OpenMetrics 1.0 text exposition of every family to
    /// `buf`, ending in `# EOF`. Runs an idle-eviction pass first if
    /// eviction is on.
    pub fn encode_openmetrics(&self, buf: &mut String) -> fmt::Result {
        encode(self, Format::OpenMetrics, buf)
    }

    /// Appends the exposition of every family in `format` to `buf` (see
    /// [`encode_prometheus`](Self::encode_prometheus) and
    /// [`encode_openmetrics`](Self::encode_openmetrics)). A text format
    /// only: [`Format::Protobuf`] returns `fmt::Error` and writes nothing
    /// (see [`encode_protobuf`](Self::encode_protobuf), and
    /// [`Format::negotiate_text`] to negotiate among text formats).
    pub fn encode(&self, format: Format, buf: &mut String) -> fmt::Result {
        encode(self, format, buf)
    }
}

fn encode_family(out: &mut impl Write, om: bool, family: &mut FamilyView<'_>) -> fmt::Result {
    let name = family.name();
    let summary = family.exported_as_summary();
    let (kind, name, suffix) = match family.kind() {
        // OpenMetrics names a counter family without `_total` and its
        // samples with it.
        MetricKind::Counter if om => ("counter", counter_base(name), "_total"),
        MetricKind::Counter => ("counter", name, ""),
        MetricKind::Gauge => ("gauge", name, ""),
        MetricKind::Histogram | MetricKind::Timer if summary => ("summary", name, ""),
        MetricKind::Histogram | MetricKind::Timer => ("histogram", name, ""),
    };
    header(out, om, name, family.help(), kind, family.unit())?;
    let mut le = ryu::Buffer::new();
    family.for_each_series(|series| {
        let labels = series.labels();
        match series.into_value() {
            Value::Counter(n) => {
                sample_start(out, name, suffix, labels, None)?;
                int(out, n)?;
            }
            Value::Gauge(x) => {
                sample_start(out, name, "", labels, None)?;
                float(out, x)?;
            }
            Value::Distribution(d) if summary => {
                let s = d.snapshot();
                for (q, text) in QUANTILES {
                    sample_start(out, name, "", labels, Some(("quantile", text)))?;
                    float(out, d.scaled(s.value_at_quantile(q)))?;
                    out.write_str("\n")?;
                }
                let sum = d.scaled(s.sum());
                sum_count(out, name, labels, sum, s.count())?;
                return Ok(());
            }
            Value::Distribution(mut d) => {
                let buckets = d.buckets();
                for (bound, cumulative) in buckets.cumulative() {
                    let le = finite(&mut le, bound);
                    sample_start(out, name, "_bucket", labels, Some(("le", le)))?;
                    int(out, cumulative)?;
                    out.write_str("\n")?;
                }
                sample_start(out, name, "_bucket", labels, Some(("le", "+Inf")))?;
                int(out, buckets.count())?;
                out.write_str("\n")?;
                return sum_count(out, name, labels, buckets.sum(), buckets.count());
            }
        }
        out.write_str("\n")
    })
}

fn sum_count(
    out: &mut impl Write,
    name: &str,
    labels: LabelSet<'_>,
    sum: f64,
    count: u64,
) -> fmt::Result {
    sample_start(out, name, "_sum", labels, None)?;
    float(out, sum)?;
    out.write_str("\n")?;
    sample_start(out, name, "_count", labels, None)?;
    int(out, count)?;
    out.write_str("\n")
}

/// `# HELP`, `# TYPE` and (OpenMetrics) `# UNIT` lines.
fn header(
    out: &mut impl Write,
    om: bool,
    name: &str,
    help: &str,
    kind: &str,
    unit: Option<&str>,
) -> fmt::Result {
    out.write_str("# HELP ")?;
    out.write_str(name)?;
    out.write_str(" ")?;
    // Prometheus's linter (`promtool check metrics`) rejects an empty help
    // text: the metric's name stands in for it.
    escape_help(out, if help.trim().is_empty() { name } else { help }, om)?;
    out.write_str("\n# TYPE ")?;
    out.write_str(name)?;
    out.write_str(" ")?;
    out.write_str(kind)?;
    out.write_str("\n")?;
    if let (true, Some(unit)) = (om, unit) {
        // OpenMetrics requires the family name to end in the unit.
        if name.strip_suffix(unit).is_some_and(|n| n.ends_with('_')) {
            out.write_str("# UNIT ")?;
            out.write_str(name)?;
            out.write_str(" ")?;
            out.write_str(unit)?;
            out.write_str("\n")?;
        }
    }
    Ok(())
}

/// Help text: backslash and newline escaped, and in OpenMetrics the double
/// quote too.
fn escape_help(out: &mut impl Write, help: &str, om: bool) -> fmt::Result {
    if om {
        escape::<true>(out, help)
    } else {
        escape::<false>(out, help)
    }
}

/// A label value: backslash, double quote and newline escaped (both
/// formats).
fn escape_label_value(out: &mut impl Write, value: &str) -> fmt::Result {
    escape::<true>(out, value)
}

/// Writes `text` with backslash, newline and (if `QUOTE`) double quote
/// escaped, in runs between them (all ASCII, so slices stay on character
/// boundaries).
fn escape<const QUOTE: bool>(out: &mut impl Write, mut text: &str) -> fmt::Result {
    let special = |b: &u8| *b == b'\\' || *b == b'\n' || (QUOTE && *b == b'"');
    if !text.as_bytes().iter().any(special) {
        return out.write_str(text);
    }
    while let Some(i) = text.as_bytes().iter().position(special) {
        out.write_str(&text[..i])?;
        out.write_str(match text.as_bytes()[i] {
            b'\\' => "\\\\",
            b'\n' => "\\n",
            _ => "\\\"",
        })?;
        text = &text[i + 1..];
    }
    out.write_str(text)
}

/// Writes `name suffix{labels,extra} ` (up to the value), joining the
/// punctuation between labels into one write (`",` and `"} `).
fn sample_start(
    out: &mut impl Write,
    name: &str,
    suffix: &str,
    labels: LabelSet<'_>,
    extra: Option<(&str, &str)>,
) -> fmt::Result {
    out.write_str(name)?;
    if !suffix.is_empty() {
        out.write_str(suffix)?;
    }
    let mut open = "{";
    let mut label = |n: &str, v: &str| {
        out.write_str(open)?;
        open = "\",";
        out.write_str(n)?;
        out.write_str("=\"")?;
        escape_label_value(out, v)
    };
    labels.try_for_each(&mut label)?;
    if let Some((n, v)) = extra {
        label(n, v)?;
    }
    out.write_str(if open.len() == 1 { " " } else { "\"} " })
}

fn int(out: &mut impl Write, v: u64) -> fmt::Result {
    out.write_str(itoa::Buffer::new().format(v))
}

/// A float as both formats read it: `+Inf`, `-Inf`, `NaN`, or the
/// shortest decimal that round-trips.
fn float(out: &mut impl Write, v: f64) -> fmt::Result {
    if v.is_nan() {
        out.write_str("NaN")
    } else if v.is_infinite() {
        out.write_str(if v > 0.0 { "+Inf" } else { "-Inf" })
    } else {
        out.write_str(finite(&mut ryu::Buffer::new(), v))
    }
}

/// The shortest round-tripping decimal of a finite `v`, without a trailing
/// `.0` (`1`, `0.005`, `1e21`), as Prometheus's own clients write numbers.
fn finite(b: &mut ryu::Buffer, v: f64) -> &str {
    let text = b.format_finite(v);
    text.strip_suffix(".0").unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_and_escapes() {
        let mut b = String::new();
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1.5, 1e21, 0.1] {
            float(&mut b, v).unwrap();
            b.push(' ');
        }
        assert_eq!(b, "NaN +Inf -Inf 1.5 1e21 0.1 ");
        b.clear();
        for v in [1.0, 0.0, -3.0, 10.0, 2.5e-9] {
            float(&mut b, v).unwrap();
            b.push(' ');
        }
        assert_eq!(b, "1 0 -3 10 2.5e-9 ");
        b.clear();
        escape_label_value(&mut b, "a\"b\\c\nd").unwrap();
        assert_eq!(b, "a\\\"b\\\\c\\nd");
        b.clear();
        escape_help(&mut b, "say \"hi\"\\\n", true).unwrap();
        assert_eq!(b, "say \\\"hi\\\"\\\\\\n");
        b.clear();
        escape_help(&mut b, "say \"hi\"", false).unwrap();
        assert_eq!(b, "say \"hi\"");
    }
}
