//! Exporters: formatting lives here, walking the registry's collection;
//! metrics never format themselves.
//!
//! - Prometheus text 0.0.4 and OpenMetrics 1.0 text:
//!   [`Registry::encode_prometheus`](crate::Registry::encode_prometheus),
//!   [`Registry::encode_openmetrics`](crate::Registry::encode_openmetrics),
//!   [`Registry::encode`](crate::Registry::encode) with a [`Format`]
//!   (chosen from an HTTP `Accept` header by [`Format::negotiate`]).
//! - The Prometheus protobuf exposition with native histograms derived
//!   from the HDR counts ([`protobuf`], [`native`]; the message types in
//!   [`proto`]): [`Registry::encode_protobuf`](crate::Registry::encode_protobuf),
//!   or [`Format::encode_bytes`] with [`Format::Protobuf`].
//! - A JSON snapshot ([`json::snapshot`], [`json::to_string`]).
//! - InfluxDB line protocol ([`influx`]), StatsD and DogStatsD
//!   ([`statsd`]), and the resilient background pushers for both
//!   ([`push`]).
//! - A Pushgateway client for batch jobs, synchronous or in the
//!   background ([`pushgateway`]).
//! - The HTTP endpoint (`metricz::export::http`, feature `http`), with TLS
//!   (feature `tls`) and authentication.
//!
//! Every exporter reads the registry through the same read-only walk:
//! families sorted by name, each family's series sorted by label values,
//! then its overflow series; the walk never blocks recording.

pub mod influx;
pub mod json;
pub mod native;
pub mod proto;
pub mod protobuf;
pub mod push;
pub mod pushgateway;
pub mod remote_write;
pub mod statsd;
pub mod text;

#[cfg(feature = "http")]
pub mod http;

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0 text format.
    OpenMetrics,
    /// The Prometheus protobuf format: length-delimited
    /// `io.prometheus.client.MetricFamily` messages, with native
    /// histograms ([`protobuf`]). Binary: the text encoders
    /// ([`text::encode`], [`Registry::encode`](crate::Registry::encode))
    /// refuse it; [`Format::encode_bytes`] writes every format.
    Protobuf,
}

impl Format {
    /// The `Content-Type` of a response in this format.
    pub const fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Protobuf => protobuf::CONTENT_TYPE,
        }
    }

    /// Whether this is a text format (Prometheus or OpenMetrics).
    pub const fn is_text(self) -> bool {
        !matches!(self, Format::Protobuf)
    }

    /// Replaces `buf`'s contents with `registry`'s exposition in this
    /// format (text as UTF-8). Allocates nothing once `buf` is warm (see
    /// each encoder for the exceptions).
    ///
    /// ```
    /// use metricz::export::Format;
    ///
    /// let reg = metricz::Registry::new();
    /// reg.counter("jobs_total", "Jobs.")?.add(2);
    /// let mut buf = Vec::new();
    /// Format::Prometheus.encode_bytes(&reg, &mut buf);
    /// assert!(buf.ends_with(b"jobs_total 2\n"));
    /// Format::Protobuf.encode_bytes(&reg, &mut buf);
    /// assert_eq!(buf[0] as usize, buf.len() - 1); // one delimited message
    /// # Ok::<(), metricz::RegistryError>(())
    /// ```
    pub fn encode_bytes(self, registry: &crate::Registry, buf: &mut Vec<u8>) {
        buf.clear();
        match self {
            Format::Protobuf => protobuf::encode(registry, buf),
            text => {
                // Writing into a byte buffer cannot fail.
                let _ = text::encode(registry, text, &mut Utf8Bytes(buf));
            }
        }
    }

    /// The format to answer an HTTP `Accept` header with: the media range
    /// the client gives the highest `q` value among the protobuf
    /// exposition (`application/vnd.google.protobuf` with, if given,
    /// `proto=io.prometheus.client.MetricFamily` and
    /// `encoding=delimited`), OpenMetrics (`application/openmetrics-text`)
    /// and Prometheus text (`text/plain`, `text/*`, `*/*`); ties go to
    /// protobuf, then OpenMetrics. Prometheus text when nothing matches,
    /// and when there is no header.
    ///
    /// ```
    /// use metricz::export::Format;
    ///
    /// // What a Prometheus server sends.
    /// let prometheus = "application/openmetrics-text;version=1.0.0,\
    ///     application/openmetrics-text;version=0.0.1;q=0.75,\
    ///     text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    /// assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
    /// // … with native histograms on.
    /// let native = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;\
    ///     encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,\
    ///     text/plain;version=0.0.4;q=0.4,*/*;q=0.1";
    /// assert_eq!(Format::negotiate(Some(native)), Format::Protobuf);
    /// assert_eq!(Format::negotiate(Some("text/plain")), Format::Prometheus);
    /// assert_eq!(Format::negotiate(None), Format::Prometheus);
    /// ```
    ///
    /// The answer may be [`Format::Protobuf`], which the text encoders
    /// refuse: encode with [`Format::encode_bytes`], or negotiate with
    /// [`negotiate_text`](Self::negotiate_text) when writing into a
    /// `String`.
    pub fn negotiate(accept: Option<&str>) -> Format {
        Self::negotiate_among(accept, true)
    }

    /// [`negotiate`](Self::negotiate) among the text formats only (never
    /// [`Format::Protobuf`]), for code that encodes into a `String`.
    ///
    /// ```
    /// use metricz::export::Format;
    ///
    /// let accept = "application/vnd.google.protobuf,text/plain;q=0.5";
    /// assert_eq!(Format::negotiate_text(Some(accept)), Format::Prometheus);
    /// ```
    pub fn negotiate_text(accept: Option<&str>) -> Format {
        Self::negotiate_among(accept, false)
    }

    fn negotiate_among(accept: Option<&str>, binary: bool) -> Format {
        let Some(accept) = accept else {
            return Format::Prometheus;
        };
        let mut protobuf = 0.0f32;
        let mut openmetrics = 0.0f32;
        let mut text = 0.0f32;
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim();
            let mut q = 1.0f32;
            let mut message_ok = true;
            for param in parts {
                if let Some((key, value)) = param.split_once('=') {
                    let (key, value) = (key.trim(), value.trim().trim_matches('"'));
                    if key.eq_ignore_ascii_case("q") {
                        q = value.parse().unwrap_or(0.0);
                    } else if key.eq_ignore_ascii_case("proto") {
                        message_ok &= value == "io.prometheus.client.MetricFamily";
                    } else if key.eq_ignore_ascii_case("encoding") {
                        message_ok &= value.eq_ignore_ascii_case("delimited");
                    }
                }
            }
            if !q.is_finite() {
                q = 0.0;
            }
            if media.eq_ignore_ascii_case("application/vnd.google.protobuf") {
                if message_ok {
                    protobuf = protobuf.max(q);
                }
            } else if media.eq_ignore_ascii_case("application/openmetrics-text") {
                openmetrics = openmetrics.max(q);
            } else if media.eq_ignore_ascii_case("text/plain")
                || media == "*/*"
                || media.eq_ignore_ascii_case("text/*")
            {
                text = text.max(q);
            }
        }
        if binary && protobuf > 0.0 && protobuf >= openmetrics && protobuf >= text {
            Format::Protobuf
        } else if openmetrics > 0.0 && openmetrics >= text {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }
}

/// `fmt::Write` into a byte buffer (text formats are UTF-8).
struct Utf8Bytes<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Utf8Bytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
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
        // Protobuf only for the exposition's message, delimited.
        let pb = "application/vnd.google.protobuf";
        assert_eq!(Format::negotiate(Some(pb)), Format::Protobuf);
        assert_eq!(
            Format::negotiate(Some(&format!(
                "{pb};proto=other.Message;encoding=delimited"
            ))),
            Format::Prometheus
        );
        assert_eq!(
            Format::negotiate(Some(&format!(
                "{pb};proto=io.prometheus.client.MetricFamily;encoding=text"
            ))),
            Format::Prometheus
        );
        assert_eq!(
            Format::negotiate(Some(&format!("{pb};q=0.5,text/plain;q=0.6"))),
            Format::Prometheus
        );
        assert_eq!(
            Format::negotiate(Some(&format!(
                "{pb};q=0.7,application/openmetrics-text;q=0.7"
            ))),
            Format::Protobuf
        );
        assert_eq!(
            Format::negotiate(Some(&format!("{pb};q=0"))),
            Format::Prometheus
        );
        assert_eq!(
            Format::negotiate(Some(&format!("{pb};q=NaN"))),
            Format::Prometheus
        );
        assert_eq!(Format::negotiate(Some("")), Format::Prometheus);
    }
}
