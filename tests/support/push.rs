//! What the pusher tests (InfluxDB, StatsD, remote write) share: push
//! options for pushing by hand, and reading the registry's exposition.

use metricz::export::push::{PushOptions, PushStats, PusherHandle};
use metricz::Registry;
use std::time::Duration;

pub(crate) const HOUR: Duration = Duration::from_secs(3600);

/// Push options for tests that push by hand: no interval ticks, no
/// backoff; then `tweak` applied.
pub(crate) fn options(tweak: impl FnOnce(&mut PushOptions)) -> PushOptions {
    let mut options = PushOptions::default();
    options.interval = HOUR;
    options.backoff_initial = Duration::ZERO;
    options.backoff_max = Duration::ZERO;
    tweak(&mut options);
    options
}

/// The registry's Prometheus text exposition.
pub(crate) fn expose(reg: &Registry) -> String {
    let mut buf = String::new();
    reg.encode_prometheus(&mut buf).unwrap();
    buf
}

/// Asserts that the exposition reports `bytes` dropped by `sink`'s pusher.
pub(crate) fn assert_dropped_reported(reg: &Registry, sink: &str, bytes: u64) {
    let text = expose(reg);
    assert!(
        text.contains(&format!(
            "metricz_push_dropped_bytes_total{{sink=\"{sink}\"}} {bytes}\n"
        )),
        "{text}"
    );
}

/// Makes `attempts` pushes through `handle` to a sink that is down,
/// calling `before_each` before each: every one fails, and after each the
/// pending data and its peak stay within `bound` bytes. Then some data was
/// dropped, every attempt is counted as a failure, and the exposition
/// reports the drops as `sink`'s. Returns the stats at the end.
pub(crate) fn fail_within_bound(
    reg: &Registry,
    handle: &PusherHandle,
    sink: &str,
    bound: usize,
    attempts: u64,
    mut before_each: impl FnMut(),
) -> PushStats {
    for _ in 0..attempts {
        before_each();
        assert!(handle.push_now().is_err());
        let stats = handle.stats();
        assert!(stats.pending_bytes <= bound as u64, "{stats:?}");
        assert!(stats.peak_pending_bytes <= bound as u64, "{stats:?}");
    }
    let stats = handle.stats();
    assert!(stats.dropped_bytes > 0, "{stats:?}");
    assert_eq!(stats.failures, attempts);
    assert_dropped_reported(reg, sink, stats.dropped_bytes);
    stats
}
