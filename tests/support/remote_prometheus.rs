//! A real Prometheus server ([`Prometheus`], no scrape targets) that
//! receives remote write (`--web.enable-remote-write-receiver`) with native
//! histograms on, read back through its HTTP query API.
//!
//! A missing binary fails the test (never skips). Waiting is bounded
//! polling: no assertion depends on timing.

use super::process::poll;
use super::prometheus::{query_at, Prometheus};
use std::net::SocketAddr;

/// A Prometheus remote write receiver, killed (and its directory removed)
/// on drop.
pub(crate) struct RemotePrometheus {
    prometheus: Prometheus,
}

impl RemotePrometheus {
    /// Starts Prometheus with no scrape targets, the remote write receiver
    /// and native histograms on, and waits until it is ready.
    pub(crate) fn start() -> RemotePrometheus {
        let prometheus = Prometheus::start_with(
            &[],
            &[
                "--web.enable-remote-write-receiver",
                "--enable-feature=native-histograms",
            ],
        );
        RemotePrometheus { prometheus }
    }

    /// The remote write endpoint.
    pub(crate) fn write_url(&self) -> String {
        format!("http://{}/api/v1/write", self.prometheus.addr())
    }

    /// The single value of the instant query `promql`, waiting (bounded)
    /// until there is one; fails on more than one series.
    pub(crate) fn value(&self, promql: &str) -> f64 {
        let value = query_value(self.prometheus.addr(), promql);
        eprintln!("prometheus: {promql} = {value}");
        value
    }
}

/// The single value of the instant query `promql` at the Prometheus query
/// API at `addr` (Prometheus or VictoriaMetrics), polling (bounded) until
/// the result is not empty; fails on more than one series.
pub(crate) fn query_value(addr: SocketAddr, promql: &str) -> f64 {
    poll(&format!("a value for {promql}"), || {
        let result = query_at(addr, promql);
        assert!(
            result.len() <= 1,
            "{promql}: more than one series: {result:?}"
        );
        result.first().map(|(_, value)| *value)
    })
}
