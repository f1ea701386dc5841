//! [`render`]: the registry's exposition for one request's `Accept`
//! header, for this server and for programs that run their own.

use crate::export::Format;
use crate::Registry;

/// Renders `registry` for a request with the `Accept` header `accept`
/// (`None` when it has none) into `buf`, replacing its contents, and
/// returns the `Content-Type` of the response: the protobuf exposition or
/// OpenMetrics when the header prefers it, Prometheus text otherwise (see
/// [`Format::negotiate`](crate::export::Format::negotiate)).
///
/// For programs that already run an HTTP server (axum, hyper, …): keep
/// `buf` between requests to encode without growing it.
///
/// ```
/// use metricz::export::http::render;
/// use metricz::Registry;
///
/// let registry = Registry::new();
/// registry.gauge("temperature_celsius", "Temperature.")?.set(21.5);
///
/// let mut buf = Vec::new();
/// let content_type = render(&registry, None, &mut buf);
/// assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
/// assert!(buf.ends_with(b"temperature_celsius 21.5\n"));
///
/// let content_type = render(&registry, Some("application/openmetrics-text"), &mut buf);
/// assert!(content_type.starts_with("application/openmetrics-text"));
/// assert!(buf.ends_with(b"# EOF\n"));
///
/// let content_type = render(&registry, Some("application/vnd.google.protobuf"), &mut buf);
/// assert!(content_type.starts_with("application/vnd.google.protobuf"));
/// # Ok::<(), metricz::RegistryError>(())
/// ```
///
pub fn render(registry: &Registry, accept: Option<&str>, buf: &mut Vec<u8>) -> &'static str {
    let format = Format::negotiate(accept);
    format.encode_bytes(registry, buf);
    format.content_type()
}
