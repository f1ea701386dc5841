//! The grouping key as a URL path, and the rules it must follow
//! ([`PushgatewayError`]): `/metrics/job/<job>{/<label>/<value>}`, each
//! job name and label value percent-encoded or, where that cannot work,
//! in the Pushgateway's base64 form.

use crate::registry::error::valid_label_name;
use base64::engine::general_purpose::URL_SAFE;
use base64::Engine as _;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::fmt;

/// Bytes kept as they are in a path segment: RFC 3986's unreserved
/// characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Why a Pushgateway client could not be built: one variant per rule of
/// the address and the grouping key.
///
/// ```
/// use metricz::export::pushgateway::{Pushgateway, PushgatewayError};
///
/// let err = Pushgateway::builder("127.0.0.1:9091", "backup")
///     .grouping("instance-name", "db-1")
///     .build()
///     .unwrap_err();
/// assert_eq!(err, PushgatewayError::InvalidLabelName("instance-name".into()));
/// assert_eq!(
///     err.to_string(),
///     "\"instance-name\" is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushgatewayError {
    /// The address is not `host:port`.
    InvalidAddress(String),
    /// The job name is empty (the Pushgateway requires one).
    EmptyJob,
    /// A grouping label name is not a valid Prometheus label name
    /// (`[a-zA-Z_][a-zA-Z0-9_]*`).
    InvalidLabelName(String),
    /// A grouping label name is reserved: `job` (the job name is the
    /// `job` label) or a name starting with `__` (the Pushgateway refuses
    /// those).
    ReservedLabelName(String),
    /// The same grouping label was given twice.
    DuplicateLabel(String),
}

impl fmt::Display for PushgatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushgatewayError::InvalidAddress(a) => write!(f, "{a:?} is not host:port"),
            PushgatewayError::EmptyJob => f.write_str("the job name is empty"),
            PushgatewayError::InvalidLabelName(n) => write!(
                f,
                "{n:?} is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)"
            ),
            PushgatewayError::ReservedLabelName(n) => {
                write!(
                    f,
                    "{n:?} is a reserved label name (job, or starting with __)"
                )
            }
            PushgatewayError::DuplicateLabel(n) => {
                write!(f, "the grouping label {n:?} is given twice")
            }
        }
    }
}

impl std::error::Error for PushgatewayError {}

/// `/metrics/job/<job>{/<label>/<value>}` for a job name and grouping
/// labels, checked (see [`PushgatewayError`]); the labels in the order
/// given.
pub(super) fn group_path(
    job: &str,
    grouping: &[(String, String)],
) -> Result<String, PushgatewayError> {
    if job.is_empty() {
        return Err(PushgatewayError::EmptyJob);
    }
    let mut path = String::from("/metrics");
    push_segment(&mut path, "job", job);
    for (i, (name, value)) in grouping.iter().enumerate() {
        check_label_name(name)?;
        if grouping[..i].iter().any(|(seen, _)| seen == name) {
            return Err(PushgatewayError::DuplicateLabel(name.clone()));
        }
        push_segment(&mut path, name, value);
    }
    Ok(path)
}

/// Checks a grouping label name: valid, and neither `job` nor `__…`.
fn check_label_name(name: &str) -> Result<(), PushgatewayError> {
    if !valid_label_name(name) {
        return Err(PushgatewayError::InvalidLabelName(name.to_string()));
    }
    if name == "job" || name.starts_with("__") {
        return Err(PushgatewayError::ReservedLabelName(name.to_string()));
    }
    Ok(())
}

/// Appends `/<name>/<value>`, or `/<name>@base64/<value in base64>` where
/// percent-encoding cannot carry the value (see [`needs_base64`]).
fn push_segment(path: &mut String, name: &str, value: &str) {
    path.push('/');
    path.push_str(name);
    if needs_base64(value) {
        path.push_str("@base64/");
        if value.is_empty() {
            // A lone `=`: an empty segment would vanish from the path.
            path.push('=');
        } else {
            URL_SAFE.encode_string(value, path);
        }
    } else {
        path.push('/');
        path.extend(utf8_percent_encode(value, SEGMENT));
    }
}

/// Whether a value must take the base64 form: it is empty (the segment
/// would vanish), holds a `/` (the Pushgateway splits the decoded path at
/// every `/`, `%2F` included), or is `.` or `..` (the router would clean
/// the path and redirect).
fn needs_base64(value: &str) -> bool {
    value.is_empty() || value.contains('/') || value == "." || value == ".."
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(job: &str, grouping: &[(&str, &str)]) -> Result<String, PushgatewayError> {
        let grouping: Vec<(String, String)> = grouping
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        group_path(job, &grouping)
    }

    #[test]
    fn plain_values_are_percent_encoded() {
        assert_eq!(path("backup", &[]).unwrap(), "/metrics/job/backup");
        assert_eq!(
            path(
                "nightly backup",
                &[("instance", "db-1:5432"), ("pct", "100%+é~._")]
            )
            .unwrap(),
            "/metrics/job/nightly%20backup/instance/db-1%3A5432/pct/100%25%2B%C3%A9~._"
        );
        // The README's example, "traditionally".
        assert_eq!(
            path("titan", &[("name", "Προμηθεύς")]).unwrap(),
            "/metrics/job/titan/name/%CE%A0%CF%81%CE%BF%CE%BC%CE%B7%CE%B8%CE%B5%CF%8D%CF%82"
        );
    }

    #[test]
    fn slashes_empty_values_and_dot_segments_take_base64() {
        // The README's examples.
        assert_eq!(
            path("directory_cleaner", &[("path", "/var/tmp")]).unwrap(),
            "/metrics/job/directory_cleaner/path@base64/L3Zhci90bXA="
        );
        assert_eq!(
            path(
                "example",
                &[("first_label", ""), ("second_label", "foobar")]
            )
            .unwrap(),
            "/metrics/job/example/first_label@base64/=/second_label/foobar"
        );
        // The URL-safe alphabet: `-` and `_` where the standard one has
        // `+` and `/`.
        assert_eq!(
            path("j", &[("v", "/>?")]).unwrap(),
            "/metrics/job/j/v@base64/Lz4_"
        );
        assert_eq!(
            path("j", &[("v", "a/~~")]).unwrap(),
            "/metrics/job/j/v@base64/YS9-fg=="
        );
        assert_eq!(path("a/b", &[]).unwrap(), "/metrics/job@base64/YS9i");
        assert_eq!(path(".", &[]).unwrap(), "/metrics/job@base64/Lg==");
        assert_eq!(
            path("j", &[("a", ".."), ("b", "...")]).unwrap(),
            "/metrics/job/j/a@base64/Li4=/b/..."
        );
    }

    #[test]
    fn an_empty_job_is_an_error() {
        assert_eq!(path("", &[]), Err(PushgatewayError::EmptyJob));
        assert_eq!(path("", &[("a", "b")]), Err(PushgatewayError::EmptyJob));
    }

    #[test]
    fn label_names_are_checked() {
        for bad in ["", "1st", "a-b", "a.b", "é", "a b", "a@base64"] {
            assert_eq!(
                path("j", &[(bad, "v")]),
                Err(PushgatewayError::InvalidLabelName(bad.to_string())),
                "{bad}"
            );
        }
        for reserved in ["job", "__name__", "__x"] {
            assert_eq!(
                path("j", &[(reserved, "v")]),
                Err(PushgatewayError::ReservedLabelName(reserved.to_string())),
                "{reserved}"
            );
        }
        for good in ["a", "_a", "A9_z", "instance", "job_name", "_"] {
            assert!(path("j", &[(good, "v")]).is_ok(), "{good}");
        }
        assert_eq!(
            path("j", &[("a", "1"), ("b", "2"), ("a", "3")]),
            Err(PushgatewayError::DuplicateLabel("a".to_string()))
        );
    }
}
