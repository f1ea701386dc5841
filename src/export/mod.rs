//! Exporters: formatting lives here, walking the registry's collection;
//! metrics never format themselves.
//!
//! - Prometheus text 0.0.4 and OpenMetrics 1.0 text:
//!   [`Registry::encode_prometheus`](crate::Registry::encode_prometheus),
//!   [`Registry::encode_openmetrics`](crate::Registry::encode_openmetrics),
//!   [`Registry::encode`](crate::Registry::encode) with a [`Format`]
//!   (chosen from an HTTP `Accept` header by [`Format::negotiate`]).
//! - A JSON snapshot ([`json::snapshot`], [`json::to_string`]).
//! - InfluxDB line protocol ([`influx`]), StatsD and DogStatsD
//!   ([`statsd`]), and the resilient background pushers for both
//!   ([`push`]).
//! - The HTTP endpoint (`metricz::export::http`, feature `http`).
//!
//! Every exporter reads the registry through the same read-only walk:
//! families sorted by name, each family's series sorted by label values,
//! then its overflow series; the walk never blocks recording.

pub mod influx;
pub mod json;
pub mod push;
pub mod statsd;
pub mod text;

#[cfg(feature = "http")]
pub mod http;

/// A text exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0 text format.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of a response in this format.
    pub const fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// The format to answer an HTTP `Accept` header with: OpenMetrics when
    /// the client prefers `application/openmetrics-text` (by `q` value;
    /// ties go to OpenMetrics), Prometheus text otherwise, and when there
    /// is no header.
    ///
    /// ```
    /// use metricz::export::Format;
    ///
    /// // What a Prometheus server sends.
    /// let prometheus = "application/openmetrics-text;version=1.0.0,\
    ///     application/openmetrics-text;version=0.0.1;q=0.75,\
    ///     text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    /// assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
    /// assert_eq!(Format::negotiate(Some("text/plain")), Format::Prometheus);
    /// assert_eq!(Format::negotiate(None), Format::Prometheus);
    /// ```
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Prometheus;
        };
        let mut openmetrics = 0.0f32;
        let mut text = 0.0f32;
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim();
            let mut q = 1.0f32;
            for param in parts {
                if let Some((key, value)) = param.split_once('=') {
                    if key.trim().eq_ignore_ascii_case("q") {
                        q = value.trim().parse().unwrap_or(0.0);
                    }
                }
            }
            if media.eq_ignore_ascii_case("application/openmetrics-text") {
                openmetrics = openmetrics.max(q);
            } else if media.eq_ignore_ascii_case("text/plain")
                || media == "*/*"
                || media.eq_ignore_ascii_case("text/*")
            {
                text = text.max(q);
            }
        }
        if openmetrics > 0.0 && openmetrics >= text {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Format;

    #[test]
    fn negotiation_follows_q_values() {
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0.3, text/plain;q=0.9")),
            Format::Prometheus
        );
        assert_eq!(
            Format::negotiate(Some("text/plain;q=0.3, application/openmetrics-text")),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0")),
            Format::Prometheus
        );
        assert_eq!(Format::negotiate(Some("garbage;;;=")), Format::Prometheus);
        assert_eq!(Format::negotiate(Some("")), Format::Prometheus);
    }
}
