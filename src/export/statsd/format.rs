//! How a line is written: [`StatsdFormat`] (prefix, plain StatsD or
//! DogStatsD, global tags), and the pure functions that write one line and
//! sanitise its name, segments and tags.

use crate::registry::LabelSet;

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

    /// Appends one line, without its `\n`: prefix, metric `name`, the label
    /// path (plain StatsD), `suffix`, `:value|kind`, then the tags
    /// (DogStatsD). `labels` is `None` for a family's overflow series.
    pub(super) fn write_line(
        &self,
        out: &mut String,
        name: &str,
        labels: Option<LabelSet<'_>>,
        suffix: &str,
        value: &str,
        kind: &str,
    ) {
        if !self.prefix.is_empty() {
            out.push_str(&self.prefix);
            out.push('.');
        }
        push_name(out, name);
        if !self.dogstatsd {
            match labels {
                Some(labels) => {
                    for (_, value) in labels.iter() {
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
        if self.dogstatsd {
            let mut first = true;
            let mut sep = |out: &mut String| {
                out.push_str(if first { "|#" } else { "," });
                first = false;
            };
            for tag in &self.tags {
                sep(out);
                out.push_str(tag);
            }
            match labels {
                Some(labels) => {
                    for (name, value) in labels.iter() {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn overflow_series_lines() {
        let mut s = String::new();
        let format = StatsdFormat::new().prefix("p");
        format.write_line(&mut s, "n", None, ".sum", "1", "g");
        assert_eq!(s, "p.n.metricz_overflow.sum:1|g");
        s.clear();
        let dog = StatsdFormat::new().dogstatsd(true).tag("e", "x");
        dog.write_line(&mut s, "n", None, "", "2", "c");
        assert_eq!(s, "n:2|c|#e:x,metricz_overflow:true");
    }
}
