//! Shared by `benches/counter.rs` and `examples/contention.rs`: the peers and
//! baselines wrapped in [`CounterStrategy`], and the timed thread runner.
//!
//! Baselines that do not belong in the library live here: a `Mutex<u64>` and
//! the channel design from the metricz docs (every increment a message to one
//! aggregator thread).

#![allow(dead_code, unreachable_pub)]

use metricz::CounterStrategy;
use rayon::ThreadPool;
use std::sync::{mpsc, Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Calls `$m!` with every counter the study and the benches sweep: the
/// metricz strategies, then the peers, then the baselines.
macro_rules! for_each_counter {
    ($m:ident) => {
        $m!(
            metricz::AtomicCounter,
            metricz::Counter,
            metricz::ThreadShardedCounter,
            metricz::AdaptiveCounter,
            metricz::SingleWriterCounter,
            $crate::support::PromIntCounter,
            $crate::support::PromClientCounter,
            $crate::support::MutexCounter,
            $crate::support::ChannelCounter
        )
    };
}
pub(crate) use for_each_counter;

/// `prometheus::IntCounter`: one shared `AtomicU64` behind an `Arc`.
#[derive(Debug)]
pub struct PromIntCounter(prometheus::IntCounter);

impl Default for PromIntCounter {
    fn default() -> Self {
        PromIntCounter(prometheus::IntCounter::new("bench_total", "Bench.").expect("valid name"))
    }
}

impl CounterStrategy for PromIntCounter {
    const NAME: &'static str = "prometheus";

    #[inline]
    fn inc(&self) {
        self.0.inc();
    }

    #[inline]
    fn add(&self, n: u64) {
        self.0.inc_by(n);
    }

    fn get(&self) -> u64 {
        self.0.get()
    }

    fn take(&self) -> u64 {
        // prometheus has no atomic read-and-reset; not used by the study.
        let value = self.0.get();
        self.0.reset();
        value
    }
}

/// `prometheus_client::metrics::counter::Counter<u64>`: one shared
/// `AtomicU64` behind an `Arc`.
#[derive(Debug, Default)]
pub struct PromClientCounter(prometheus_client::metrics::counter::Counter<u64>);

impl CounterStrategy for PromClientCounter {
    const NAME: &'static str = "prometheus-client";

    #[inline]
    fn inc(&self) {
        self.0.inc();
    }

    #[inline]
    fn add(&self, n: u64) {
        self.0.inc_by(n);
    }

    fn get(&self) -> u64 {
        self.0.get()
    }

    fn take(&self) -> u64 {
        unimplemented!("prometheus-client counters cannot be reset")
    }
}

/// A `Mutex<u64>`: the lock every increment would take without atomics.
#[derive(Debug, Default)]
pub struct MutexCounter(Mutex<u64>);

impl MutexCounter {
    fn lock(&self) -> std::sync::MutexGuard<'_, u64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl CounterStrategy for MutexCounter {
    const NAME: &'static str = "mutex";

    #[inline]
    fn add(&self, n: u64) {
        let mut value = self.lock();
        *value = value.wrapping_add(n);
    }

    fn get(&self) -> u64 {
        *self.lock()
    }

    fn take(&self) -> u64 {
        std::mem::take(&mut *self.lock())
    }
}

enum Message {
    Add(u64),
    Get(mpsc::SyncSender<u64>),
    Take(mpsc::SyncSender<u64>),
}

/// The channel design: every increment is a message on a bounded channel to
/// one aggregator thread that owns the total. Bounded (1024 messages), so
/// writers that outrun the aggregator wait for it and the measured rate is the
/// rate increments are actually counted.
#[derive(Debug)]
pub struct ChannelCounter {
    tx: Option<mpsc::SyncSender<Message>>,
    aggregator: Option<JoinHandle<()>>,
}

impl Default for ChannelCounter {
    fn default() -> Self {
        let (tx, rx) = mpsc::sync_channel(1024);
        let aggregator = std::thread::spawn(move || {
            let mut total = 0u64;
            for message in rx {
                match message {
                    Message::Add(n) => total = total.wrapping_add(n),
                    Message::Get(reply) => {
                        let _ = reply.send(total);
                    }
                    Message::Take(reply) => {
                        let _ = reply.send(std::mem::take(&mut total));
                    }
                }
            }
        });
        ChannelCounter {
            tx: Some(tx),
            aggregator: Some(aggregator),
        }
    }
}

impl ChannelCounter {
    fn send(&self, message: Message) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(message);
        }
    }

    /// Asks the aggregator; it answers after every message sent before.
    fn ask(&self, make: fn(mpsc::SyncSender<u64>) -> Message) -> u64 {
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(make(reply));
        answer.recv().unwrap_or(0)
    }
}

impl CounterStrategy for ChannelCounter {
    const NAME: &'static str = "channel";

    #[inline]
    fn add(&self, n: u64) {
        self.send(Message::Add(n));
    }

    fn get(&self) -> u64 {
        self.ask(Message::Get)
    }

    fn take(&self) -> u64 {
        self.ask(Message::Take)
    }
}

impl Drop for ChannelCounter {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(aggregator) = self.aggregator.take() {
            let _ = aggregator.join();
        }
    }
}

/// Runs `warm` untimed then `ops` timed increments of `counter` on every
/// thread of `pool` at once, and returns the wall time from the first timed
/// start to the last timed end.
///
/// The pool is built by the caller, outside any timed region. All threads
/// finish their warm-up and then meet at a barrier, so the timed loops start
/// together and the result is steady-state throughput.
pub fn timed_run<S: CounterStrategy>(
    pool: &ThreadPool,
    counter: &S,
    warm: u64,
    ops: u64,
) -> Duration {
    let barrier = Barrier::new(pool.current_num_threads());
    let spans = pool.broadcast(|_| {
        for _ in 0..warm {
            counter.inc();
        }
        barrier.wait();
        let start = Instant::now();
        for _ in 0..ops {
            counter.inc();
        }
        (start, Instant::now())
    });
    let start = spans
        .iter()
        .map(|s| s.0)
        .min()
        .expect("at least one thread");
    let end = spans
        .iter()
        .map(|s| s.1)
        .max()
        .expect("at least one thread");
    end - start
}

/// A rayon pool of exactly `threads` threads.
pub fn pool(threads: usize) -> ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("metricz-bench-{i}"))
        .build()
        .expect("thread pool")
}
