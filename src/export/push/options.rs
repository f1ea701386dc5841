//! The settings every pusher has: [`PushOptions`], their defaults, and
//! the bounds applied to them when a pusher starts.

use std::time::Duration;

/// Default time between pushes: 10 seconds.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// Default bound on each network operation (connecting, each write, reading
/// a whole response): 5 seconds.
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Default first backoff after a failure: 1 second.
pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_secs(1);
/// Default cap of the backoff: 2 minutes.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(120);
/// Default consecutive failures that open the circuit breaker: 5.
pub const DEFAULT_BREAKER_THRESHOLD: u32 = 5;
/// Default time the breaker stays open before a trial: 1 minute.
pub const DEFAULT_BREAKER_COOL_DOWN: Duration = Duration::from_secs(60);
/// Default bound on waiting for the pusher thread (a reply to
/// [`PusherHandle::push_now`](super::PusherHandle::push_now) or
/// [`PusherHandle::flush`](super::PusherHandle::flush), or its exit when
/// the handle drops): 10 seconds.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default bound on the undelivered data the InfluxDB and remote-write
/// pushers keep: 4 MiB.
pub const DEFAULT_MAX_PENDING_BYTES: usize = 4 << 20;

/// The longest duration a pusher setting takes (a year); longer ones are
/// cut to it, so deadlines never overflow.
pub const MAX_SETTING: Duration = Duration::from_secs(365 * 24 * 3600);

/// The shortest interval and I/O timeout a pusher takes.
const MIN_TICK: Duration = Duration::from_millis(1);

/// A duration setting, capped at [`MAX_SETTING`].
pub(crate) fn setting(d: Duration) -> Duration {
    d.min(MAX_SETTING)
}

/// The settings every pusher has (schedule, timeouts, backoff, circuit
/// breaker), given to a pusher builder with `options`
/// ([`StatsdPusherBuilder::options`](crate::export::statsd::StatsdPusherBuilder::options),
/// [`InfluxPusherBuilder::options`](crate::export::influx::InfluxPusherBuilder::options)).
///
/// Start from [`Default`] (the `DEFAULT_*` constants of this module) and
/// set the fields to change; the struct is `#[non_exhaustive]`, so that
/// settings can be added later, and cannot be built with a struct literal
/// outside this crate.
///
/// The values are taken as given and bounded when the pusher starts:
/// every duration is cut to [`MAX_SETTING`] (a year), and each field's
/// documentation says what zero means.
///
/// ```
/// use metricz::export::push::PushOptions;
/// use metricz::export::statsd::StatsdPusher;
/// use std::time::Duration;
///
/// let mut options = PushOptions::default();
/// options.interval = Duration::from_secs(30);
/// options.breaker_threshold = 3;
/// options.breaker_cool_down = Duration::from_secs(20);
///
/// let reg = metricz::Registry::new();
/// let builder = StatsdPusher::builder(reg, "127.0.0.1:8125").options(options);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PushOptions {
    /// Time between pushes (default [`DEFAULT_INTERVAL`]). Zero is raised
    /// to 1 ms.
    pub interval: Duration,
    /// Bound on each network operation: connecting, each write, and
    /// reading a whole response (default [`DEFAULT_IO_TIMEOUT`]). Zero is
    /// raised to 1 ms.
    pub io_timeout: Duration,
    /// First backoff after a failure (default [`DEFAULT_BACKOFF_INITIAL`]):
    /// after the n-th consecutive failure, attempts are skipped for
    /// `backoff_initial × 2^(n-1)`, capped at
    /// [`backoff_max`](Self::backoff_max). Zero turns the backoff off.
    pub backoff_initial: Duration,
    /// Cap of the backoff (default [`DEFAULT_BACKOFF_MAX`]). Less than
    /// [`backoff_initial`](Self::backoff_initial) (zero included) is raised
    /// to it.
    pub backoff_max: Duration,
    /// Consecutive failures that open the circuit breaker (default
    /// [`DEFAULT_BREAKER_THRESHOLD`]). Zero is raised to 1.
    pub breaker_threshold: u32,
    /// Time an open breaker skips attempts before one trial attempt
    /// decides (default [`DEFAULT_BREAKER_COOL_DOWN`]). With zero, the
    /// attempt after the one that opened the breaker is the trial.
    pub breaker_cool_down: Duration,
    /// Bound on waiting for the pusher thread: for the reply to
    /// [`push_now`](super::PusherHandle::push_now) or
    /// [`flush`](super::PusherHandle::flush), and for the thread's exit
    /// when the handle drops (default [`DEFAULT_WAIT_TIMEOUT`]). With zero
    /// nothing waits: a push answers [`NoReply`](super::PushError::NoReply)
    /// unless its result is already there, and dropping the handle detaches
    /// the thread unless it has already exited.
    pub wait_timeout: Duration,
}

impl Default for PushOptions {
    /// The `DEFAULT_*` constants of this module.
    ///
    /// ```
    /// use metricz::export::push::{self, PushOptions};
    /// let o = PushOptions::default();
    /// assert_eq!(o.interval, push::DEFAULT_INTERVAL);
    /// assert_eq!(o.breaker_threshold, push::DEFAULT_BREAKER_THRESHOLD);
    /// ```
    fn default() -> Self {
        PushOptions {
            interval: DEFAULT_INTERVAL,
            io_timeout: DEFAULT_IO_TIMEOUT,
            backoff_initial: DEFAULT_BACKOFF_INITIAL,
            backoff_max: DEFAULT_BACKOFF_MAX,
            breaker_threshold: DEFAULT_BREAKER_THRESHOLD,
            breaker_cool_down: DEFAULT_BREAKER_COOL_DOWN,
            wait_timeout: DEFAULT_WAIT_TIMEOUT,
        }
    }
}

impl PushOptions {
    /// The options a pusher runs with: durations cut to [`MAX_SETTING`],
    /// and zeros raised as each field's documentation says. Idempotent.
    pub(crate) fn bounded(&self) -> PushOptions {
        let backoff_initial = setting(self.backoff_initial);
        PushOptions {
            interval: setting(self.interval).max(MIN_TICK),
            io_timeout: setting(self.io_timeout).max(MIN_TICK),
            backoff_initial,
            backoff_max: setting(self.backoff_max).max(backoff_initial),
            breaker_threshold: self.breaker_threshold.max(1),
            breaker_cool_down: setting(self.breaker_cool_down),
            wait_timeout: setting(self.wait_timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_apply_at_both_ends() {
        let zero = PushOptions {
            interval: Duration::ZERO,
            io_timeout: Duration::ZERO,
            backoff_initial: Duration::ZERO,
            backoff_max: Duration::ZERO,
            breaker_threshold: 0,
            breaker_cool_down: Duration::ZERO,
            wait_timeout: Duration::ZERO,
        };
        let b = zero.bounded();
        assert_eq!((b.interval, b.io_timeout), (MIN_TICK, MIN_TICK));
        assert_eq!(
            (b.backoff_initial, b.backoff_max),
            (Duration::ZERO, Duration::ZERO)
        );
        assert_eq!(b.breaker_threshold, 1);
        assert_eq!(
            (b.breaker_cool_down, b.wait_timeout),
            (Duration::ZERO, Duration::ZERO)
        );

        let huge = PushOptions {
            interval: Duration::MAX,
            io_timeout: Duration::MAX,
            backoff_initial: Duration::MAX,
            backoff_max: Duration::from_secs(1),
            breaker_threshold: u32::MAX,
            breaker_cool_down: Duration::MAX,
            wait_timeout: Duration::MAX,
        };
        let b = huge.bounded();
        assert_eq!((b.interval, b.io_timeout), (MAX_SETTING, MAX_SETTING));
        // The cap is raised to the first backoff.
        assert_eq!(
            (b.backoff_initial, b.backoff_max),
            (MAX_SETTING, MAX_SETTING)
        );
        assert_eq!(b.breaker_threshold, u32::MAX);
        assert_eq!(
            (b.breaker_cool_down, b.wait_timeout),
            (MAX_SETTING, MAX_SETTING)
        );
        assert_eq!(b.bounded(), b);

        let d = PushOptions::default();
        assert_eq!(d.bounded(), d);
    }
}
