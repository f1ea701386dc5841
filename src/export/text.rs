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
use crate::registry::{AnyFamily, ExportOptions, Family, Metric, OVERFLOW_LABEL};
use crate::{Histogram, Timer};
use std::fmt;

/// Quantiles exported for histograms and timers exported as summaries.
const QUANTILES: [(f64, &str); 3] = [(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99")];

/// Reusable buffers of one encode: bucket thresholds and counts.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    thresholds: Vec<u64>,
    counts: Vec<u64>,
}

/// Appends the exposition of `families` (sorted by name) to `buf`.
pub(crate) fn encode(
    format: Format,
    families: &[AnyFamily],
    scratch: &mut Scratch,
    buf: &mut String,
) -> fmt::Result {
    let om = format == Format::OpenMetrics;
    let mut any_overflow = false;
    for family in families {
        match family {
            AnyFamily::Counter(f) => {
                let base = if om {
                    crate::registry::counter_base(f.name())
                } else {
                    f.name()
                };
                header(buf, om, base, f.help(), "counter", f.unit());
                let sample_name = if om { "_total" } else { "" };
                f.visit_sorted(|labels, c| {
                    sample_start(buf, base, sample_name, f.label_names(), labels, None);
                    int(buf, c.get());
                    buf.push('\n');
                });
                any_overflow |= f.overflowed() > 0;
            }
            AnyFamily::Gauge(f) => {
                header(buf, om, f.name(), f.help(), "gauge", f.unit());
                f.visit_sorted(|labels, g| {
                    sample_start(buf, f.name(), "", f.label_names(), labels, None);
                    float(buf, g.get());
                    buf.push('\n');
                });
                any_overflow |= f.overflowed() > 0;
            }
            AnyFamily::Histogram(f) => {
                any_overflow |= distributions(buf, om, f, scratch, |h| h);
            }
            AnyFamily::Timer(f) => {
                any_overflow |= distributions(buf, om, f, scratch, Timer::histogram);
            }
        }
    }
    if any_overflow {
        overflow_family(buf, om, families);
    }
    if om {
        buf.push_str("# EOF\n");
    }
    Ok(())
}

/// A histogram or timer family: header, then every series' buckets (or
/// summary). Returns whether the family overflowed.
fn distributions<M: Metric + Clone>(
    buf: &mut String,
    om: bool,
    f: &Family<M>,
    scratch: &mut Scratch,
    histogram: impl Fn(&M) -> &Histogram,
) -> bool {
    let export = f.export_options();
    let kind = if export.summary {
        "summary"
    } else {
        "histogram"
    };
    header(buf, om, f.name(), f.help(), kind, f.unit());
    scratch.prepare(&export);
    f.visit_sorted(|labels, m| {
        distribution(
            buf,
            f.name(),
            f.label_names(),
            labels,
            histogram(m),
            &export,
            scratch,
        );
    });
    f.overflowed() > 0
}

/// `metricz_cardinality_overflow_total{family="…"}` for every family that
/// routed lookups to its overflow series.
fn overflow_family(buf: &mut String, om: bool, families: &[AnyFamily]) {
    let name = if om {
        "metricz_cardinality_overflow"
    } else {
        "metricz_cardinality_overflow_total"
    };
    header(
        buf,
        om,
        name,
        "Lookups of new label values routed to a family's overflow series.",
        "counter",
        None,
    );
    for family in families {
        let (family_name, count) = match family {
            AnyFamily::Counter(f) => (f.name(), f.overflowed()),
            AnyFamily::Gauge(f) => (f.name(), f.overflowed()),
            AnyFamily::Histogram(f) => (f.name(), f.overflowed()),
            AnyFamily::Timer(f) => (f.name(), f.overflowed()),
        };
        if count > 0 {
            buf.push_str(name);
            if om {
                buf.push_str("_total");
            }
            buf.push_str("{family=\"");
            escape_label_value(buf, family_name);
            buf.push_str("\"} ");
            int(buf, count);
            buf.push('\n');
        }
    }
}

impl Scratch {
    /// Thresholds in recorded units for the family's bounds, and zeroed
    /// counts.
    fn prepare(&mut self, export: &ExportOptions) {
        self.thresholds.clear();
        self.thresholds.extend(
            export
                .buckets
                .iter()
                .map(|&bound| threshold(bound, export.scale)),
        );
        self.counts.clear();
        self.counts.resize(self.thresholds.len(), 0);
    }
}

/// The largest recorded integer `v` with `v × scale ≤ bound` (saturating;
/// bounds are never negative, see `Family::set_buckets`).
pub(crate) fn threshold(bound: f64, scale: f64) -> u64 {
    let x = match inverse(scale) {
        Some(inv) => bound * inv,
        None => bound / scale,
    };
    let rounded = x.round();
    let t = if (x - rounded).abs() <= 1e-9 * rounded.abs().max(1.0) {
        rounded
    } else {
        x.floor()
    };
    if t <= 0.0 {
        0
    } else if t >= u64::MAX as f64 {
        u64::MAX
    } else {
        t as u64
    }
}

/// `1 / scale` when it is an integer (1e-9 → 1e9): dividing by it rounds
/// exported values correctly (9 ms is 0.009, not 0.009000000000000001).
fn inverse(scale: f64) -> Option<f64> {
    let inv = (1.0 / scale).round();
    (inv >= 1.0 && ((inv * scale) - 1.0).abs() < 1e-12).then_some(inv)
}

/// A recorded integer in the family's base unit.
pub(crate) fn scaled(v: u64, scale: f64) -> f64 {
    match inverse(scale) {
        Some(inv) if inv != 1.0 => v as f64 / inv,
        _ => v as f64 * scale,
    }
}

/// A histogram series: buckets, sum and count, or a summary.
fn distribution(
    buf: &mut String,
    name: &str,
    names: &[String],
    labels: Option<&[Box<str>]>,
    h: &Histogram,
    export: &ExportOptions,
    scratch: &mut Scratch,
) {
    if export.summary {
        let s = h.snapshot();
        for (q, text) in QUANTILES {
            sample_start(buf, name, "", names, labels, Some(("quantile", text)));
            float(buf, scaled(s.value_at_quantile(q), export.scale));
            buf.push('\n');
        }
        sum_count(buf, name, names, labels, s.sum(), s.count(), export.scale);
        return;
    }
    scratch.counts.iter_mut().for_each(|c| *c = 0);
    let (count, sum) = h.count_into(&scratch.thresholds, &mut scratch.counts);
    let mut cumulative = 0u64;
    let mut le = ryu::Buffer::new();
    for (k, &bound) in export.buckets.iter().enumerate() {
        cumulative = cumulative.wrapping_add(scratch.counts[k]);
        sample_start(
            buf,
            name,
            "_bucket",
            names,
            labels,
            Some(("le", finite(&mut le, bound))),
        );
        int(buf, cumulative);
        buf.push('\n');
    }
    sample_start(buf, name, "_bucket", names, labels, Some(("le", "+Inf")));
    int(buf, count);
    buf.push('\n');
    sum_count(buf, name, names, labels, sum, count, export.scale);
}

fn sum_count(
    buf: &mut String,
    name: &str,
    names: &[String],
    labels: Option<&[Box<str>]>,
    sum: u64,
    count: u64,
    scale: f64,
) {
    sample_start(buf, name, "_sum", names, labels, None);
    float(buf, scaled(sum, scale));
    buf.push('\n');
    sample_start(buf, name, "_count", names, labels, None);
    int(buf, count);
    buf.push('\n');
}

/// `# HELP`, `# TYPE` and (OpenMetrics) `# UNIT` lines.
fn header(buf: &mut String, om: bool, name: &str, help: &str, kind: &str, unit: Option<&str>) {
    buf.push_str("# HELP ");
    buf.push_str(name);
    buf.push(' ');
    // Prometheus's linter (`promtool check metrics`) rejects an empty help
    // text: the metric's name stands in for it.
    escape_help(buf, if help.trim().is_empty() { name } else { help }, om);
    buf.push_str("\n# TYPE ");
    buf.push_str(name);
    buf.push(' ');
    buf.push_str(kind);
    buf.push('\n');
    if om {
        if let Some(unit) = unit {
            // OpenMetrics requires the family name to end in the unit.
            if name.strip_suffix(unit).is_some_and(|n| n.ends_with('_')) {
                buf.push_str("# UNIT ");
                buf.push_str(name);
                buf.push(' ');
                buf.push_str(unit);
                buf.push('\n');
            }
        }
    }
}

/// Help text: backslash and newline escaped, and in OpenMetrics the double
/// quote too.
fn escape_help(buf: &mut String, help: &str, om: bool) {
    let special = |b: u8| b == b'\\' || b == b'\n' || (om && b == b'"');
    if !help.bytes().any(special) {
        buf.push_str(help);
        return;
    }
    for c in help.chars() {
        match c {
            '\\' => buf.push_str("\\\\"),
            '\n' => buf.push_str("\\n"),
            '"' if om => buf.push_str("\\\""),
            c => buf.push(c),
        }
    }
}

/// A label value: backslash, double quote and newline escaped (both
/// formats).
pub(crate) fn escape_label_value(buf: &mut String, value: &str) {
    if !value.bytes().any(|b| b == b'\\' || b == b'"' || b == b'\n') {
        buf.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => buf.push_str("\\\\"),
            '"' => buf.push_str("\\\""),
            '\n' => buf.push_str("\\n"),
            c => buf.push(c),
        }
    }
}

/// Writes `name suffix{labels,extra} ` (up to the value).
fn sample_start(
    buf: &mut String,
    name: &str,
    suffix: &str,
    names: &[String],
    values: Option<&[Box<str>]>,
    extra: Option<(&str, &str)>,
) {
    buf.push_str(name);
    buf.push_str(suffix);
    let mut first = true;
    let mut label = |buf: &mut String, n: &str, v: &str| {
        buf.push(if first { '{' } else { ',' });
        first = false;
        buf.push_str(n);
        buf.push_str("=\"");
        escape_label_value(buf, v);
        buf.push('"');
    };
    match values {
        Some(values) => {
            for (n, v) in names.iter().zip(values.iter()) {
                label(buf, n, v);
            }
        }
        None => label(buf, OVERFLOW_LABEL, "true"),
    }
    if let Some((n, v)) = extra {
        label(buf, n, v);
    }
    if !first {
        buf.push('}');
    }
    buf.push(' ');
}

fn int(buf: &mut String, v: u64) {
    buf.push_str(itoa::Buffer::new().format(v));
}

/// A float as both formats read it: `+Inf`, `-Inf`, `NaN`, or the
/// shortest decimal that round-trips.
pub(crate) fn float(buf: &mut String, v: f64) {
    if v.is_nan() {
        buf.push_str("NaN");
    } else if v.is_infinite() {
        buf.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        buf.push_str(finite(&mut ryu::Buffer::new(), v));
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
    fn thresholds_convert_bounds_to_recorded_units() {
        assert_eq!(threshold(0.005, 1e-9), 5_000_000);
        assert_eq!(threshold(10.0, 1e-9), 10_000_000_000);
        assert_eq!(threshold(2.5, 1.0), 2);
        assert_eq!(threshold(3.0, 1.0), 3);
        assert_eq!(threshold(1e300, 1.0), u64::MAX);
        assert_eq!(threshold(1.0, 0.25), 4);
    }

    #[test]
    fn scaled_values_divide_when_exact() {
        assert_eq!(scaled(9_000_000, 1e-9), 0.009);
        assert_eq!(scaled(3, 2.0), 6.0);
        assert_eq!(scaled(7, 1.0), 7.0);
    }

    #[test]
    fn floats_and_escapes() {
        let mut b = String::new();
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1.5, 1e21, 0.1] {
            float(&mut b, v);
            b.push(' ');
        }
        assert_eq!(b, "NaN +Inf -Inf 1.5 1e21 0.1 ");
        b.clear();
        for v in [1.0, 0.0, -3.0, 10.0, 2.5e-9] {
            float(&mut b, v);
            b.push(' ');
        }
        assert_eq!(b, "1 0 -3 10 2.5e-9 ");
        b.clear();
        escape_label_value(&mut b, "a\"b\\c\nd");
        assert_eq!(b, "a\\\"b\\\\c\\nd");
        b.clear();
        escape_help(&mut b, "say \"hi\"\\\n", true);
        assert_eq!(b, "say \\\"hi\\\"\\\\\\n");
        b.clear();
        escape_help(&mut b, "say \"hi\"", false);
        assert_eq!(b, "say \"hi\"");
    }
}
