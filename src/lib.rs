//! Metrics whose hot paths scale with cores: per-CPU sharded counters, checked
//! under [loom](https://docs.rs/loom), with published contention curves.
//!
//! # The idea
//!
//! A counter that every thread increments with `fetch_add` on one shared word
//! spends its time moving that word's cache line between cores: on the
//! development machine, one `AtomicU64` shared by two threads does 47 M
//! increments a second in total where two threads on separate cache lines do
//! 213 M. metricz's [`Counter`] keeps one cache-line-padded shard per CPU,
//! reads the CPU from the rseq area glibc registers (one load, ~0.5 ns, see
//! [`cpu`]), and increments its own CPU's shard; reads sum the shards. The
//! other strategies the contention study compares it with live in [`counter`]
//! behind [`CounterStrategy`]: a single atomic, thread-indexed shards, a
//! LongAdder-style adaptive counter and per-thread single-writer slots.
//!
//! # Example
//!
//! ```
//! use metricz::{Counter, Gauge, UpDownGauge};
//!
//! let served = Counter::new();
//! let in_flight = UpDownGauge::new();
//! let load = Gauge::new();
//!
//! std::thread::scope(|s| {
//!     for worker in 0..4 {
//!         let (served, in_flight, load) = (&served, &in_flight, &load);
//!         s.spawn(move || {
//!             for _ in 0..250 {
//!                 in_flight.inc();
//!                 served.inc();
//!                 in_flight.dec();
//!             }
//!             load.add(0.25 * f64::from(worker));
//!         });
//!     }
//! });
//!
//! assert_eq!(served.get(), 1000);
//! assert_eq!(in_flight.get(), 0);
//! assert_eq!(load.get(), 1.5);
//! assert_eq!(served.take(), 1000); // read-and-reset
//! assert_eq!(served.get(), 0);
//! ```
//!
//! # Errors and panics
//!
//! Recording never fails and never panics. It takes no lock, with one
//! exception per thread: the first time a thread needs a thread index (the
//! thread-indexed, adaptive and single-writer strategies, or the CPU fallback
//! where neither rseq nor `sched_getcpu` works) it takes the index pool's lock
//! once, and again at thread exit to return it. Constructors
//! clamp out-of-range settings (a shard count of 0 becomes 1, counts round up
//! to a power of two) rather than failing.
//!
//! # Limits
//!
//! - Sharded reads are not linearizable: `get` sums shards while increments
//!   continue. It is exact once writers stop, and successive reads of an
//!   increment-only counter never decrease ([`counter`] module docs).
//! - Counters wrap at 2<sup>64</sup>.
//! - A standalone [`Counter`] costs 128 bytes per shard.
//! - The rseq CPU read needs glibc 2.35+ on x86_64 or aarch64 Linux; elsewhere
//!   [`cpu::current`] falls back to `sched_getcpu` (≈ 10 ns) or a thread index.
//!
//! The invariants each concurrent path keeps, and the loom model that checks
//! each, are catalogued in `papers/invariants.md`; the method and results of
//! the contention study are in `papers/contention.md`.

pub mod counter;
pub mod cpu;
mod gauge;
mod primitive;
mod thread_index;

pub use counter::{
    AdaptiveCounter, AtomicCounter, Counter, CounterStrategy, SingleWriterCounter,
    ThreadShardedCounter,
};
pub use gauge::{Gauge, UpDownGauge};

/// The README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
