//! The handle of a running pusher, [`PusherHandle`], and the counts it
//! reads, [`PushStats`].

use super::breaker::BreakerState;
use super::error::PushError;
use super::shared::{Command, Shared};
use crate::primitive::std_only::mpsc::{self, RecvTimeoutError};
use crate::primitive::std_only::Arc;
use crate::primitive::Ordering::Relaxed;
use std::fmt;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A snapshot of one pusher's counts, from [`PusherHandle::stats`].
///
/// ```
/// use metricz::export::push::{BreakerState, PushStats};
/// let s = PushStats::default();
/// assert_eq!((s.pushes, s.failures, s.breaker), (0, 0, BreakerState::Closed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushStats {
    /// Successful pushes.
    pub pushes: u64,
    /// Failed attempts.
    pub failures: u64,
    /// Attempts skipped while backing off or while the breaker was open.
    pub skipped: u64,
    /// Encoded bytes given up on (see the [module docs](super)).
    pub dropped_bytes: u64,
    /// Bytes of undelivered data kept for the next attempt now.
    pub pending_bytes: u64,
    /// The most bytes of undelivered data ever kept between attempts.
    pub peak_pending_bytes: u64,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// The circuit breaker's state.
    pub breaker: BreakerState,
}

impl Default for PushStats {
    fn default() -> Self {
        PushStats {
            pushes: 0,
            failures: 0,
            skipped: 0,
            dropped_bytes: 0,
            pending_bytes: 0,
            peak_pending_bytes: 0,
            consecutive_failures: 0,
            breaker: BreakerState::Closed,
        }
    }
}

/// Handle of a running pusher: triggers pushes, reads counts, and stops
/// the thread when dropped (waiting at most its wait bound).
///
/// `Send + Sync`: [`push_now`](Self::push_now) may be called from any
/// thread.
///
/// ```no_run
/// use metricz::export::statsd::StatsdPusher;
/// use metricz::Registry;
///
/// let reg = Registry::new();
/// reg.counter("jobs_total", "Jobs.")?.inc();
/// let pusher = StatsdPusher::builder(reg.clone(), "127.0.0.1:8125").spawn()?;
/// pusher.push_now()?;
/// assert_eq!(pusher.stats().pushes, 1);
/// pusher.shutdown()?; // flush, then stop
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PusherHandle {
    sink: &'static str,
    tx: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// The bound on waiting for the thread ([`PushOptions::wait_timeout`](super::PushOptions::wait_timeout)).
    wait: Duration,
}

impl fmt::Debug for PusherHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PusherHandle")
            .field("sink", &self.sink)
            .field("stats", &self.stats())
            .finish()
    }
}

impl PusherHandle {
    /// The handle of the thread `thread` of the sink named `sink`, which
    /// takes commands from `tx` and counts into `shared`; it waits at most
    /// `wait` for the thread.
    pub(crate) fn new(
        sink: &'static str,
        tx: mpsc::Sender<Command>,
        shared: Arc<Shared>,
        thread: JoinHandle<()>,
        wait: Duration,
    ) -> Self {
        PusherHandle {
            sink,
            tx,
            shared,
            thread: Some(thread),
            wait,
        }
    }

    /// Makes an attempt now, as an interval tick would (backoff and breaker
    /// apply: a skipped attempt is `Err` with
    /// [`BreakerOpen`](PushError::BreakerOpen) or
    /// [`BackingOff`](PushError::BackingOff)), and waits for its result at
    /// most the handle's wait bound ([`NoReply`](PushError::NoReply) past
    /// it).
    ///
    /// ```no_run
    /// # let reg = metricz::Registry::new();
    /// # let pusher = metricz::export::statsd::StatsdPusher::builder(reg, "127.0.0.1:8125").spawn()?;
    /// match pusher.push_now() {
    ///     Ok(()) => {}
    ///     Err(e) if e.is_skip() => eprintln!("not tried: {e}"),
    ///     Err(e) => eprintln!("failed: {e}"),
    /// }
    /// # Ok::<(), metricz::export::push::PushError>(())
    /// ```
    pub fn push_now(&self) -> Result<(), PushError> {
        self.request(false)
    }

    /// Delivers now, bypassing backoff and breaker (for shutdown and
    /// tests); waits for the result at most the handle's wait bound.
    ///
    /// ```no_run
    /// # let reg = metricz::Registry::new();
    /// # let pusher = metricz::export::statsd::StatsdPusher::builder(reg, "127.0.0.1:8125").spawn()?;
    /// pusher.flush()?;
    /// # Ok::<(), metricz::export::push::PushError>(())
    /// ```
    pub fn flush(&self) -> Result<(), PushError> {
        self.request(true)
    }

    /// [`flush`](Self::flush)es, then stops the thread (as dropping does);
    /// returns the flush's result.
    ///
    /// ```no_run
    /// # let reg = metricz::Registry::new();
    /// let pusher = metricz::export::statsd::StatsdPusher::builder(reg, "127.0.0.1:8125").spawn()?;
    /// pusher.shutdown()?;
    /// # Ok::<(), metricz::export::push::PushError>(())
    /// ```
    pub fn shutdown(self) -> Result<(), PushError> {
        self.flush()
    }

    /// The pusher's counts now.
    ///
    /// ```no_run
    /// # let reg = metricz::Registry::new();
    /// # let pusher = metricz::export::statsd::StatsdPusher::builder(reg, "127.0.0.1:8125").spawn()?;
    /// let s = pusher.stats();
    /// println!("{} pushed, {} failed, breaker {}", s.pushes, s.failures, s.breaker);
    /// # Ok::<(), metricz::export::push::PushError>(())
    /// ```
    pub fn stats(&self) -> PushStats {
        let s = &*self.shared;
        PushStats {
            pushes: s.pushes.load(Relaxed),
            failures: s.failures.load(Relaxed),
            skipped: s.skipped.load(Relaxed),
            dropped_bytes: s.dropped_bytes.load(Relaxed),
            pending_bytes: s.pending_bytes.load(Relaxed),
            peak_pending_bytes: s.peak_pending_bytes.load(Relaxed),
            consecutive_failures: s.consecutive_failures.load(Relaxed),
            breaker: BreakerState::from_u8(s.breaker.load(Relaxed)),
        }
    }

    /// The sink's name, the value of the self-metrics' `sink` label:
    /// `"statsd"` or `"influx"`.
    ///
    /// ```no_run
    /// # let reg = metricz::Registry::new();
    /// # let pusher = metricz::export::statsd::StatsdPusher::builder(reg, "127.0.0.1:8125").spawn()?;
    /// assert_eq!(pusher.sink(), "statsd");
    /// # Ok::<(), metricz::export::push::PushError>(())
    /// ```
    pub fn sink(&self) -> &'static str {
        self.sink
    }

    fn request(&self, force: bool) -> Result<(), PushError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.tx
            .send(Command::Push { force, reply })
            .map_err(|_| PushError::Stopped)?;
        match answer.recv_timeout(self.wait) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => Err(PushError::NoReply),
            Err(RecvTimeoutError::Disconnected) => Err(PushError::Stopped),
        }
    }
}

impl Drop for PusherHandle {
    fn drop(&mut self) {
        let _ = self.tx.send(Command::Stop);
        let deadline = Instant::now() + self.wait;
        let mut exited = self.shared.exited.lock().unwrap_or_else(|e| e.into_inner());
        while !*exited {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            exited = self
                .shared
                .exited_cv
                .wait_timeout(exited, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let done = *exited;
        drop(exited);
        if let Some(thread) = self.thread.take() {
            if done {
                let _ = thread.join();
            }
            // Otherwise the thread is detached: it is inside a network
            // operation bounded by its own timeout, and exits after it.
        }
    }
}
