//! What a pusher pushes to: the [`Sink`] trait that the StatsD and
//! InfluxDB pushers implement, the [`Outcome`] of one delivery, and the
//! check of a sink's `host:port` address.

use super::error::PushError;
use crate::registry::Registry;

/// What one delivery attempt came to.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Everything was delivered.
    Delivered,
    /// The sink failed (unreachable, timed out, answered an error): counts
    /// towards the breaker; the data is kept (InfluxDB) or re-derived
    /// (StatsD).
    Failed(PushError),
    /// The sink answered but refused the data, which was dropped: a failed
    /// push, but the sink is healthy.
    Rejected(PushError),
}

/// A destination: an encoding and a transport.
pub(crate) trait Sink: Send + 'static {
    /// The value of the self-metrics' `sink` label.
    const NAME: &'static str;

    /// Samples the registry for this attempt, whether or not delivery goes
    /// ahead (InfluxDB keeps timestamped batches; StatsD need not).
    fn sample(&mut self, _registry: &Registry) {}

    /// One delivery attempt.
    fn deliver(&mut self, registry: &Registry) -> Outcome;

    /// Drops the oldest undelivered data past the bound; returns the bytes
    /// dropped.
    fn trim(&mut self) -> u64 {
        0
    }

    /// Bytes of undelivered data kept.
    fn pending_bytes(&self) -> usize {
        0
    }

    /// Bytes given up on during the last [`deliver`](Self::deliver)
    /// (refused, or in failed datagrams); reset by the call.
    fn take_dropped(&mut self) -> u64 {
        0
    }
}

/// Checks that `addr` looks like `host:port` (a bracketed IPv6 host
/// allowed, nothing that would change a URL built from it: `/`, `\\`,
/// `@`, `?`, `#`, whitespace), without resolving it.
pub(crate) fn check_address(addr: &str) -> Result<(), PushError> {
    let bad = || PushError::InvalidAddress(addr.to_string());
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(bad());
    }
    // A host that would change the URL built from it: a path, user info,
    // a query or fragment, or whitespace.
    if host
        .chars()
        .any(|c| matches!(c, '/' | '\\' | '@' | '?' | '#') || c.is_whitespace() || c.is_control())
    {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert!(check_address("127.0.0.1:8125").is_ok());
        assert!(check_address("localhost:8086").is_ok());
        assert!(check_address("[::1]:8086").is_ok());
        for bad in [
            "",
            "localhost",
            ":80",
            "host:port",
            "host:99999",
            "::1:80",
            "a/b:9091",
            "user@host:9091",
            "host?x:80",
            "host#x:80",
            "ho st:80",
        ] {
            assert!(
                matches!(check_address(bad), Err(PushError::InvalidAddress(_))),
                "{bad}"
            );
        }
    }
}
