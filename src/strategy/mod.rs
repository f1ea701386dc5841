//! The counter strategies the contention study compares [`Counter`] with.
//!
//! Every strategy implements [`CounterStrategy`], and so does `Counter`, so
//! the study (`examples/contention/`), the benches and the loom models
//! drive them all through one interface:
//!
//! | type | increment | read | memory |
//! |---|---|---|---|
//! | [`AtomicCounter`] | `lock xadd` on one shared word | one load | 8 bytes |
//! | [`Counter`] | where glibc registered rseq and there is a shard per possible CPU: an unlocked load-add-store on the current CPU's shard (or arena word) in a restartable sequence, a locked fallback word for threads that cannot; elsewhere (no rseq, or fewer shards than CPUs) `lock xadd` on the current CPU's shard, masked | sum of shards (+ fallback) − taken | 128 bytes × shards standalone; 8 bytes × shards in a registry's arena; + 16 bytes |
//! | [`LockedPerCpuCounter`] | `lock xadd` on the current CPU's padded shard | sum of shards | 128 bytes × shards |
//! | [`RseqCounter`] | the rseq sequence on one padded slot per CPU id, else the fallback word | sum of slots + fallback − taken | 128 bytes × (CPU ids + 1) |
//! | [`ThreadShardedCounter`] | `lock xadd` on the shard the thread index hashes to | sum of shards | 128 bytes × shards |
//! | [`AdaptiveCounter`] | CAS on a base word; on contention, CAS on a padded cell picked by a per-thread probe | base + cells | 128 bytes (base) + 8 bytes per CPU, + 128 bytes per cell in use |
//! | [`SingleWriterCounter`] | plain load + store on the thread's own slot | sum of slots − taken | 128 bytes per slot, in buckets of doubling size up to the highest thread index used |
//!
//! # Reads, takes and overflow
//!
//! Every strategy keeps `Counter`'s guarantees (see the
//! [counter module docs](crate::counter#reads-are-not-linearizable)): a
//! sharded read is not linearizable but is exact once writers stop and never
//! decreases on an increment-only counter, and an increment racing a `take`
//! is counted exactly once (invariants C1–C3 in `papers/invariants.md`,
//! checked under loom for every strategy). Every strategy counts modulo
//! 2<sup>64</sup>.
//!
//! [`RseqCounter`] takes **by baseline**, as `Counter` does: its slots are
//! written by unlocked rseq stores, which a swap from another thread would
//! race. The other strategies take by swapping each shard (or cell, or
//! slot) to zero.

mod adaptive;
mod atomic;
mod interface;
mod locked_per_cpu;
mod rseq;
mod single_writer;
mod thread_sharded;

pub use adaptive::AdaptiveCounter;
pub use atomic::AtomicCounter;
pub use interface::CounterStrategy;
pub use locked_per_cpu::LockedPerCpuCounter;
pub use rseq::RseqCounter;
pub use single_writer::SingleWriterCounter;
pub use thread_sharded::ThreadShardedCounter;

use crate::Counter;

/// The study's subject: the metricz default, through the same interface.
impl CounterStrategy for Counter {
    const NAME: &'static str = "per-cpu";

    #[inline]
    fn add(&self, n: u64) {
        Counter::add(self, n);
    }

    fn get(&self) -> u64 {
        Counter::get(self)
    }

    fn take(&self) -> u64 {
        Counter::take(self)
    }
}
