//! Prometheus text exposition format 0.0.4.

use crate::registry::{AnyFamily, Registry, OVERFLOW_LABEL};
use crate::Snapshot;
use std::fmt::{self, Write};

/// Quantiles exported for histograms and timers.
const QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

pub(crate) fn encode(registry: &Registry, buf: &mut String) -> fmt::Result {
    let mut overflows: Vec<(String, u64)> = Vec::new();
    for family in registry.families() {
        match &family {
            AnyFamily::Counter(f) => {
                header(buf, f.name(), f.help(), "counter")?;
                f.visit_sorted(|labels, c| {
                    let _ = sample(buf, f.name(), "", f.label_names(), labels, None, |b| {
                        write!(b, "{}", c.get())
                    });
                });
                note_overflow(&mut overflows, f.name(), f.overflowed());
            }
            AnyFamily::Gauge(f) => {
                header(buf, f.name(), f.help(), "gauge")?;
                f.visit_sorted(|labels, g| {
                    let _ = sample(buf, f.name(), "", f.label_names(), labels, None, |b| {
                        float(b, g.get())
                    });
                });
                note_overflow(&mut overflows, f.name(), f.overflowed());
            }
            AnyFamily::Histogram(f) => {
                header(buf, f.name(), f.help(), "summary")?;
                f.visit_sorted(|labels, h| {
                    let _ = summary(buf, f.name(), f.label_names(), labels, &h.snapshot(), 1.0);
                });
                note_overflow(&mut overflows, f.name(), f.overflowed());
            }
            AnyFamily::Timer(f) => {
                header(buf, f.name(), f.help(), "summary")?;
                f.visit_sorted(|labels, t| {
                    let _ = summary(buf, f.name(), f.label_names(), labels, &t.snapshot(), 1e9);
                });
                note_overflow(&mut overflows, f.name(), f.overflowed());
            }
        }
    }
    if !overflows.is_empty() {
        let name = "metricz_cardinality_overflow_total";
        header(
            buf,
            name,
            "Lookups of new label values routed to a family's overflow series.",
            "counter",
        )?;
        for (family, count) in overflows {
            write!(buf, "{name}{{family=\"")?;
            escape_label_value(buf, &family);
            writeln!(buf, "\"}} {count}")?;
        }
    }
    Ok(())
}

fn note_overflow(overflows: &mut Vec<(String, u64)>, name: &str, count: u64) {
    if count > 0 {
        overflows.push((name.to_string(), count));
    }
}

fn header(buf: &mut String, name: &str, help: &str, kind: &str) -> fmt::Result {
    write!(buf, "# HELP {name} ")?;
    for c in help.chars() {
        match c {
            '\\' => buf.push_str("\\\\"),
            '\n' => buf.push_str("\\n"),
            c => buf.push(c),
        }
    }
    writeln!(buf, "\n# TYPE {name} {kind}")
}

fn escape_label_value(buf: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => buf.push_str("\\\\"),
            '"' => buf.push_str("\\\""),
            '\n' => buf.push_str("\\n"),
            c => buf.push(c),
        }
    }
}

/// Writes one sample line: `name{labels,extra} value`.
fn sample(
    buf: &mut String,
    name: &str,
    suffix: &str,
    names: &[String],
    values: Option<&[Box<str>]>,
    extra: Option<(&str, &str)>,
    value: impl FnOnce(&mut String) -> fmt::Result,
) -> fmt::Result {
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
    value(buf)?;
    buf.push('\n');
    Ok(())
}

fn summary(
    buf: &mut String,
    name: &str,
    names: &[String],
    values: Option<&[Box<str>]>,
    s: &Snapshot,
    divisor: f64,
) -> fmt::Result {
    // Dividing (not multiplying by the reciprocal) rounds correctly: 9 ms
    // is 0.009, not 0.009000000000000001.
    for q in QUANTILES {
        let q_text = format!("{q}");
        sample(
            buf,
            name,
            "",
            names,
            values,
            Some(("quantile", &q_text)),
            |b| float(b, s.value_at_quantile(q) as f64 / divisor),
        )?;
    }
    sample(buf, name, "_sum", names, values, None, |b| {
        float(b, s.sum() as f64 / divisor)
    })?;
    sample(buf, name, "_count", names, values, None, |b| {
        write!(b, "{}", s.count())
    })
}

/// A float as Prometheus reads it: `+Inf`, `-Inf`, `NaN`, or the shortest
/// decimal that round-trips.
fn float(buf: &mut String, v: f64) -> fmt::Result {
    if v.is_nan() {
        buf.push_str("NaN");
    } else if v.is_infinite() {
        buf.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        write!(buf, "{v}")?;
    }
    Ok(())
}
