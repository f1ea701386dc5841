//! The line protocol itself: [`Point`], [`LineError`] and the escaping
//! rules (see the [module docs](super#escaping)). Pure formatting into a
//! `String`: no registry, no I/O.

use std::fmt;

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
}
