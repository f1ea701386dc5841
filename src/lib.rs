//! Metrics whose hot paths scale with cores: per-CPU sharded counters and
//! HDR histograms, checked under [loom](https://docs.rs/loom), with published
//! contention curves.
//!
//! # Layers
//!
//! `src/` reads bottom-up, and no module imports one above it:
//! `primitive` (the only names of std or loom atomics and cells) →
//! [`cpu`] (the current CPU: rseq area, `sched_getcpu`, thread index) →
//! the metrics: [`counter`] (per-CPU shards, rseq increments, the
//! registry's arena), [`histogram`], `gauge`, [`rate`], and [`strategy`]
//! (the counters the contention study compares `Counter` with) →
//! [`registry`] (names, label sets, the epoch-reclaimed series maps, and
//! the one read-only collection walk, [`Registry::collect`]) →
//! [`export`] (encoders as functions over the walk, the pushers, the HTTP
//! endpoint). Metrics expose values, the registry exposes the walk, and
//! formatting lives only in `export`.
//!
//! # The idea
//!
//! A counter that every thread increments with `fetch_add` on one shared word
//! spends its time moving that word's cache line between cores: on the
//! 2-core development machine, one `AtomicU64` shared by two threads does
//! 53 M increments a second in total where [`Counter`] does 571 M, 10.8×
//! (`papers/contention.md`, the run of 2026-11-30: median of 5 runs, peers
//! in the same run; `papers/metricz.md` has the latest). `Counter` keeps one cache-line-padded shard per
//! CPU, reads the CPU from the rseq area glibc registers (one load, see
//! [`cpu`]), and increments its own CPU's shard with an
//! unlocked add in a restartable sequence; reads sum the shards. The other
//! strategies the contention study compares it with live in [`strategy`]
//! behind [`strategy::CounterStrategy`]: a single atomic, thread-indexed
//! shards, a LongAdder-style adaptive counter and per-thread single-writer
//! slots.
//!
//! The same idea carries the percentile metric: a [`Histogram`] uses
//! HdrHistogram's bucket layout (quantiles agree exactly with the
//! `hdrhistogram` crate) with 16-bit counts kept per CPU shard in lazily
//! allocated blocks (and a carry word per bucket shared by the CPUs), so
//! recording is two unlocked restartable-sequence adds (locked adds where
//! the process has no rseq) and memory follows the data. A [`Timer`] is a histogram of nanoseconds; a [`Rate`] counts events
//! per second over a sliding window of per-CPU slot words.
//!
//! A [`Registry`] names metrics and keeps labelled families: series maps
//! read without locks (an epoch-pinned probe of an open-addressing table),
//! grown and pruned with `crossbeam_epoch` reclamation, bounded by a
//! per-family cardinality limit, and read by every exporter through one
//! walk: Prometheus text and OpenMetrics, JSON, StatsD, InfluxDB.
//! With the `metrics` feature, [`facade`] makes a registry the backend of
//! the [`metrics`](https://docs.rs/metrics) facade's macros; with `http`,
//! `export::http` serves `/metrics` (with `tls`, over TLS, and with basic
//! or bearer authentication in either case).
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
//!
//! // Percentiles from an HDR histogram of nanoseconds.
//! let latency = metricz::Timer::new();
//! for micros in 1..=100 {
//!     latency.record(std::time::Duration::from_micros(micros));
//! }
//! let s = latency.snapshot();
//! assert_eq!((s.count(), s.min(), s.max()), (100, 1_000, 100_000));
//! assert_eq!(s.value_at_quantile(0.5), 50_015); // 50 µs to 3 figures
//! ```
//!
//! # Errors and panics
//!
//! Recording never fails and never panics. It takes no lock, with one
//! exception per thread: the first time a thread needs a thread index (the
//! thread-indexed, adaptive and single-writer strategies, or the CPU fallback
//! where neither rseq nor `sched_getcpu` works) it takes the index pool's lock
//! once, and again at thread exit to return it. Histograms and timers
//! clamp values above their range into it (and count them); nothing is
//! rejected at record time.
//!
//! Configurations that cannot work are typed errors, one variant per rule:
//! [`HistogramError`] from [`HistogramBuilder::build`], [`RateError`] from
//! [`Rate::with_window`]. Shard counts are clamped instead (0 becomes 1,
//! counts round up to a power of two).
//!
//! # Limits
//!
//! - Sharded reads are not linearizable: `get` sums shards while increments
//!   continue. It is exact once writers stop, and successive reads of an
//!   increment-only counter never decrease ([`counter`] module docs).
//! - Counters wrap at 2<sup>64</sup>.
//! - A standalone [`Counter`] costs 128 bytes per shard.
//! - The rseq CPU read and the rseq increments need glibc 2.35+ on x86_64 or
//!   (little-endian, 64-bit) aarch64 Linux, dynamically linked (the
//!   registration is found with `dlsym`); elsewhere [`cpu::current`] falls
//!   back to `sched_getcpu` (3–4 ns via the vDSO) or a thread index, and
//!   counters and histograms to locked per-CPU writes. The aarch64
//!   sequences are checked under a real kernel in full-system emulation, not
//!   on aarch64 hardware.
//! - A library that links metricz must stay loaded while threads that
//!   incremented through it run: the kernel keeps a pointer to the last
//!   sequence's descriptor (`counter::rseq` docs).
//! - Shards are sized from the CPUs the machine can have (its *possible*
//!   CPUs, `/sys/devices/system/cpu/possible`), so every CPU id has its own
//!   shard whatever the affinity of the thread that created the metric. Each
//!   shard costs memory on a host that reports many possible CPUs (hot-plug
//!   slots) but uses few; `with_shards` / `RegistryBuilder::shards` choose
//!   fewer, and then CPU ids are masked onto them and counters increment with
//!   locked adds (restartable sequences need a shard no other CPU writes).
//! - The first CPU lookup in a process calls `dlsym`, which may allocate: do
//!   not make it from inside a global allocator.
//! - `SingleWriterCounter`'s load + store is not safe against a signal handler
//!   on the same thread incrementing the same counter.
//!
//! The invariants each concurrent path keeps, and the loom model that checks
//! each, are catalogued in `papers/invariants.md`; the method and results of
//! the contention study are in the paper, `papers/metricz.md`.
// docs.rs builds with `--cfg docsrs` (Cargo.toml): badges name the feature
// an item needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod counter;
pub mod cpu;
pub mod export;
#[cfg(all(feature = "metrics", not(loom)))]
pub mod facade;
mod gauge;
pub mod histogram;
mod primitive;
pub mod rate;
pub mod registry;
pub mod strategy;
mod thread_index;

pub use counter::Counter;
pub use gauge::{Gauge, UpDownGauge};
pub use histogram::{Histogram, HistogramBuilder, HistogramError, Snapshot, Timer};
pub use rate::{Rate, RateError};
pub use registry::{
    CounterVec, Family, GaugeVec, HistogramVec, Registry, RegistryBuilder, RegistryError, TimerVec,
};

/// The README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
