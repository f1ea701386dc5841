//! Backoff and the circuit breaker: which attempts go ahead after
//! failures (see the [module docs](super) for the rules), and
//! [`BreakerState`].

use super::error::PushError;
use super::options::PushOptions;
use std::fmt;
use std::time::{Duration, Instant};

/// The state of a pusher's circuit breaker.
///
/// ```
/// use metricz::export::push::BreakerState;
/// assert_eq!(BreakerState::Closed.to_string(), "closed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Attempts go ahead (subject to backoff after a failure).
    Closed,
    /// Too many consecutive failures: attempts are skipped until the
    /// cool-down ends.
    Open,
    /// The cool-down ended: the next attempt is a trial.
    HalfOpen,
}

impl BreakerState {
    /// The state as stored in an atomic.
    pub(crate) fn to_u8(self) -> u8 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }

    /// The state stored by [`to_u8`](Self::to_u8).
    pub(crate) fn from_u8(v: u8) -> Self {
        match v {
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        })
    }
}

/// Backoff and circuit breaker state (pusher thread only).
#[derive(Debug)]
pub(crate) struct Breaker {
    threshold: u32,
    cool_down: Duration,
    backoff_initial: Duration,
    backoff_max: Duration,
    failures: u32,
    state: BreakerState,
    /// Open: when the cool-down ends. Closed after a failure: when the
    /// backoff ends.
    until: Option<Instant>,
}

impl Breaker {
    /// A closed breaker with the backoff and breaker settings of
    /// `options` (taken as [bounded](PushOptions::bounded)).
    pub(crate) fn new(options: &PushOptions) -> Self {
        let options = options.bounded();
        Breaker {
            threshold: options.breaker_threshold,
            cool_down: options.breaker_cool_down,
            backoff_initial: options.backoff_initial,
            backoff_max: options.backoff_max,
            failures: 0,
            state: BreakerState::Closed,
            until: None,
        }
    }

    /// Failures since the last success.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// The breaker's state.
    pub(crate) fn state(&self) -> BreakerState {
        self.state
    }

    /// Whether an attempt may go ahead now (moving an open breaker whose
    /// cool-down has passed to half-open).
    pub(crate) fn gate(&mut self, now: Instant) -> Result<(), PushError> {
        match self.state {
            BreakerState::Open => match self.until {
                Some(until) if now < until => Err(PushError::BreakerOpen),
                _ => {
                    self.state = BreakerState::HalfOpen;
                    self.until = None;
                    Ok(())
                }
            },
            BreakerState::HalfOpen => Ok(()),
            BreakerState::Closed => match self.until {
                Some(until) if now < until => Err(PushError::BackingOff),
                _ => Ok(()),
            },
        }
    }

    /// An attempt succeeded (or the sink answered and refused the data):
    /// closes the breaker and resets the backoff.
    pub(crate) fn success(&mut self) {
        self.failures = 0;
        self.state = BreakerState::Closed;
        self.until = None;
    }

    /// An attempt failed at `now`: backs off, or opens the breaker.
    pub(crate) fn failure(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        if self.state == BreakerState::HalfOpen || self.failures >= self.threshold {
            self.state = BreakerState::Open;
            self.until = now.checked_add(self.cool_down);
        } else {
            let doublings = 1u32.checked_shl(self.failures - 1).unwrap_or(u32::MAX);
            let backoff = self
                .backoff_initial
                .saturating_mul(doublings)
                .min(self.backoff_max);
            self.until = now.checked_add(backoff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(threshold: u32, initial_ms: u64, max_ms: u64) -> PushOptions {
        PushOptions {
            breaker_threshold: threshold,
            breaker_cool_down: Duration::from_secs(60),
            backoff_initial: Duration::from_millis(initial_ms),
            backoff_max: Duration::from_millis(max_ms),
            ..PushOptions::default()
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let mut b = Breaker::new(&options(100, 100, 1_000));
        let t0 = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..6 {
            b.failure(t0);
            waits.push(b.until.map(|u| u - t0).unwrap_or_default());
        }
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, vec![100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(
            b.gate(t0 + Duration::from_millis(999))
                .unwrap_err()
                .to_string(),
            PushError::BackingOff.to_string()
        );
        assert!(b.gate(t0 + Duration::from_millis(1_000)).is_ok());
    }

    #[test]
    fn breaker_opens_half_opens_and_closes() {
        let mut b = Breaker::new(&options(3, 0, 0));
        let t0 = Instant::now();
        for _ in 0..2 {
            assert!(b.gate(t0).is_ok());
            b.failure(t0);
            assert_eq!(b.state, BreakerState::Closed);
        }
        b.failure(t0);
        assert_eq!(b.state, BreakerState::Open);
        assert!(matches!(
            b.gate(t0 + Duration::from_secs(59)),
            Err(PushError::BreakerOpen)
        ));
        assert!(b.gate(t0 + Duration::from_secs(60)).is_ok());
        assert_eq!(b.state, BreakerState::HalfOpen);
        // A failed trial opens it again at once.
        b.failure(t0 + Duration::from_secs(60));
        assert_eq!(b.state, BreakerState::Open);
        assert!(matches!(
            b.gate(t0 + Duration::from_secs(61)),
            Err(PushError::BreakerOpen)
        ));
        assert!(b.gate(t0 + Duration::from_secs(120)).is_ok());
        b.success();
        assert_eq!((b.state, b.failures), (BreakerState::Closed, 0));
        assert!(b.gate(t0 + Duration::from_secs(120)).is_ok());
    }

    #[test]
    fn huge_failure_counts_saturate() {
        let mut b = Breaker::new(&options(u32::MAX, 1, 10));
        b.failures = u32::MAX - 2;
        let t0 = Instant::now();
        b.failure(t0);
        assert_eq!(b.until, Some(t0 + Duration::from_millis(10)));
    }

    #[test]
    fn a_zero_threshold_opens_at_the_first_failure() {
        let mut b = Breaker::new(&options(0, 100, 1_000));
        b.failure(Instant::now());
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.failures(), 1);
    }
}
