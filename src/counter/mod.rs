//! Counters: [`Counter`], the per-CPU sharded default, and the strategies the
//! contention study compares it with.
//!
//! Every strategy implements [`CounterStrategy`], so the study, the benches and
//! the loom models drive them through one interface:
//!
//! | type | increment | read | memory |
//! |---|---|---|---|
//! | [`AtomicCounter`] | `lock xadd` on one shared word | one load | 8 bytes |
//! | [`Counter`] | where glibc registered rseq and there is a shard per possible CPU: an unlocked load-add-store on the current CPU's shard (or arena word) in a restartable sequence, a locked fallback word for threads that cannot; elsewhere (no rseq, or fewer shards than CPUs) `lock xadd` on the current CPU's shard, masked | sum of shards (+ fallback) − taken | 128 bytes × shards standalone; 8 bytes × shards in a registry's arena; + 16 bytes |
//! | [`LockedPerCpuCounter`] | `lock xadd` on the current CPU's padded shard | sum of shards | 128 bytes × shards |
//! | [`RseqCounter`](rseq::RseqCounter) | the rseq sequence on one padded slot per CPU id, else the fallback word | sum of slots + fallback − taken | 128 bytes × (CPU ids + 1) |
//! | [`ThreadShardedCounter`] | `lock xadd` on the shard the thread index hashes to | sum of shards | 128 bytes × shards |
//! | [`AdaptiveCounter`] | CAS on a base word; on contention, CAS on a padded cell picked by a per-thread probe | base + cells | 128 bytes (base) + 8 bytes per CPU, + 128 bytes per cell in use |
//! | [`SingleWriterCounter`] | plain load + store on the thread's own slot | sum of slots − taken | 128 bytes per slot, in buckets of doubling size up to the highest thread index used |
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
//! `papers/invariants.md`, checked under loom for every strategy.
//!
//! `Counter` and `RseqCounter` take **by baseline**: `take` reads the total
//! and claims what was not yet taken with one CAS on a baseline word, and
//! `get` reports the total less the baseline. Swapping a shard to zero from
//! another thread would race the unlocked rseq stores of that shard's CPU
//! and lose increments. The other strategies swap shards. The rseq
//! sequence itself is checked by stress test (RS1–RS3), since loom cannot
//! model the kernel's restart; see [`rseq`].
//!
//! # Overflow
//!
//! All counters count modulo 2<sup>64</sup>: `add` wraps, and `get` and
//! `take` return the total modulo 2<sup>64</sup> (shards are summed with
//! wrapping addition, so the result is exact even when single shards wrap).
//! A counter incremented a billion times a second takes 584 years to wrap;
//! Prometheus reads a wrap as a counter reset.

mod adaptive;
pub(crate) mod arena;
mod atomic;
mod locked_per_cpu;
pub(crate) mod per_cpu;
pub mod rseq;
pub(crate) mod shards;
mod single_writer;
mod thread_sharded;

pub use adaptive::AdaptiveCounter;
pub use atomic::AtomicCounter;
pub use locked_per_cpu::LockedPerCpuCounter;
pub use per_cpu::Counter;
pub use single_writer::SingleWriterCounter;
pub use thread_sharded::ThreadShardedCounter;

/// The interface the contention study, the benches and the loom models drive
/// every counter strategy through.
///
/// Implementations count modulo 2<sup>64</sup> and uphold the invariants in
/// the [module docs](self).
pub trait CounterStrategy: Send + Sync + std::fmt::Debug {
    /// A short name for tables and plots, e.g. `"per-cpu"`.
    const NAME: &'static str;

    /// Adds one.
    #[inline]
    fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`, wrapping at 2<sup>64</sup>.
    fn add(&self, n: u64);

    /// The count since creation or the last [`take`](Self::take).
    fn get(&self) -> u64;

    /// Returns the count and resets it to zero; an increment racing it is
    /// counted exactly once, by this `take` or by a later read.
    fn take(&self) -> u64;
}
