//! [`Counter`], the per-CPU sharded default counter of metricz, and what it
//! is built from: its storage (cache-line-padded shards standalone, a slot
//! of the registry's per-CPU arena otherwise) and the restartable-sequence
//! increment ([`rseq`]).
//!
//! The strategies the contention study compares `Counter` with (a single
//! atomic, thread-indexed shards, a LongAdder-style adaptive counter,
//! single-writer slots, ...) are in [`strategy`](crate::strategy), with a
//! table of how each increments, reads and what it costs.
//!
//! # Reads are not linearizable
//!
//! A sharded `get` sums shards one after another while increments continue,
//! so its result need not equal the counter's value at any single instant. It
//! is exact once writers stop, and on a counter that is only incremented, one
//! thread's successive `get`s never decrease (each shard's load reads that
//! shard's value or a later one). `take` returns what it removed, and an
//! increment racing it is counted either by this `take` or by a later read,
//! never both, never neither. These are invariants C1–C3 in
//! `papers/invariants.md`, checked under loom for `Counter` and for every
//! [strategy](crate::strategy).
//!
//! `Counter` takes **by baseline**: `take` reads the total and claims what
//! was not yet taken with one CAS on a baseline word, and `get` reports the
//! total less the baseline. Swapping a shard to zero from another thread
//! would race the unlocked rseq stores of that shard's CPU and lose
//! increments. The rseq sequence itself is checked by stress test
//! (RS1–RS3), since loom cannot model the kernel's restart; see [`rseq`].
//!
//! # Overflow
//!
//! A `Counter` counts modulo 2<sup>64</sup>: `add` wraps, and `get` and
//! `take` return the total modulo 2<sup>64</sup> (shards are summed with
//! wrapping addition, so the result is exact even when single shards wrap).
//! A counter incremented a billion times a second takes 584 years to wrap;
//! Prometheus reads a wrap as a counter reset.

pub(crate) mod arena;
pub(crate) mod per_cpu;
pub mod rseq;
pub(crate) mod shards;

pub use per_cpu::Counter;
