//! [`CounterStrategy`]: the one interface every counter of the study
//! implements.

/// The interface the contention study, the benches and the loom models drive
/// every counter strategy through.
///
/// Implementations count modulo 2<sup>64</sup> and uphold the invariants in
/// the [module docs](super).
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
