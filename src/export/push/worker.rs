//! The pusher thread: its schedule (one attempt per interval, and one per
//! command from the handle), one attempt (sample, gate, deliver, count),
//! and [`spawn`], which starts it.

use super::breaker::Breaker;
use super::error::PushError;
use super::handle::PusherHandle;
use super::options::PushOptions;
use super::self_metrics::SelfMetrics;
use super::shared::{Command, ExitSignal, Shared};
use super::sink::{Outcome, Sink};
use crate::primitive::std_only::mpsc::{self, RecvTimeoutError};
use crate::primitive::std_only::Arc;
use crate::primitive::Ordering::Relaxed;
use crate::registry::Registry;
use std::time::{Duration, Instant};

/// The pusher thread's state.
struct Worker<S> {
    registry: Registry,
    sink: S,
    breaker: Breaker,
    shared: Arc<Shared>,
    metrics: SelfMetrics,
}

impl<S: Sink> Worker<S> {
    fn run(mut self, rx: mpsc::Receiver<Command>, interval: Duration) {
        let _exit = ExitSignal(Arc::clone(&self.shared));
        let mut next = Instant::now() + interval;
        loop {
            let wait = next.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(Command::Push { force, reply }) => {
                    let result = self.attempt(force);
                    let _ = reply.send(result);
                }
                Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.attempt(false);
                    next += interval;
                    let now = Instant::now();
                    if next <= now {
                        // Fell behind (a slow attempt): skip the missed ticks.
                        next = now + interval;
                    }
                }
            }
        }
    }

    /// One attempt: sample, pass the gate (unless forced), deliver, count.
    fn attempt(&mut self, force: bool) -> Result<(), PushError> {
        self.sink.sample(&self.registry);
        let now = Instant::now();
        let gate = if force {
            Ok(())
        } else {
            self.breaker.gate(now)
        };
        let result = match gate {
            Err(skip) => {
                self.shared.skipped.fetch_add(1, Relaxed);
                self.metrics.add(&self.metrics.skipped, 1);
                Err(skip)
            }
            Ok(()) => match self.sink.deliver(&self.registry) {
                Outcome::Delivered => {
                    self.breaker.success();
                    self.shared.pushes.fetch_add(1, Relaxed);
                    self.metrics.add(&self.metrics.pushes, 1);
                    Ok(())
                }
                Outcome::Rejected(e) => {
                    self.breaker.success();
                    self.shared.failures.fetch_add(1, Relaxed);
                    self.metrics.add(&self.metrics.failures, 1);
                    Err(e)
                }
                Outcome::Failed(e) => {
                    self.breaker.failure(Instant::now());
                    self.shared.failures.fetch_add(1, Relaxed);
                    self.metrics.add(&self.metrics.failures, 1);
                    Err(e)
                }
            },
        };
        let dropped = self.sink.take_dropped() + self.sink.trim();
        if dropped > 0 {
            self.shared.dropped_bytes.fetch_add(dropped, Relaxed);
            self.metrics.add(&self.metrics.dropped_bytes, dropped);
        }
        let pending = self.sink.pending_bytes() as u64;
        self.shared.pending_bytes.store(pending, Relaxed);
        self.shared.peak_pending_bytes.fetch_max(pending, Relaxed);
        self.shared
            .consecutive_failures
            .store(self.breaker.failures(), Relaxed);
        self.shared
            .breaker
            .store(self.breaker.state().to_u8(), Relaxed);
        result
    }
}

/// Starts a pusher thread for `sink` with `options` (taken as
/// [bounded](PushOptions::bounded)).
pub(crate) fn spawn<S: Sink>(
    registry: Registry,
    sink: S,
    options: &PushOptions,
) -> Result<PusherHandle, PushError> {
    let options = options.bounded();
    let metrics = SelfMetrics::register(&registry, S::NAME)?;
    let shared = Arc::new(Shared::new());
    let worker = Worker {
        registry,
        sink,
        breaker: Breaker::new(&options),
        shared: Arc::clone(&shared),
        metrics,
    };
    let (tx, rx) = mpsc::channel();
    let interval = options.interval;
    let thread = std::thread::Builder::new()
        .name(format!("metricz-push-{}", S::NAME))
        .spawn(move || worker.run(rx, interval))
        .map_err(PushError::Spawn)?;
    Ok(PusherHandle::new(
        S::NAME,
        tx,
        shared,
        thread,
        options.wait_timeout,
    ))
}
