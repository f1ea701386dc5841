//! The read path: every count since the last interval take, read
//! consistently block by block across the shards and the shared carry
//! words, less the interval baseline (`for_each_bucket`, which exporters
//! derive buckets from, and `collect`, behind snapshots and interval
//! takes).

use super::shard::{self, Shard, Totals, BLOCK_LEN};
use super::{Histogram, Inner};

impl Histogram {
    /// Calls `f(lowest, highest, n)` for every HDR bucket holding records
    /// since the last [`take_interval`](Self::take_interval), in ascending
    /// order of value: the bucket's lowest and highest recorded integers
    /// and its count. No allocation. Returns `(count, sum)`. `f` runs
    /// while the baseline is held: it must not read this histogram.
    pub(crate) fn for_each_bucket(&self, mut f: impl FnMut(u64, u64, u64)) -> (u64, u64) {
        let layout = &self.inner.layout;
        self.for_each_count(|index, n| {
            let low = layout.value_at(index);
            f(low, layout.highest_equivalent(low), n);
        })
    }

    /// Calls `f(index, n)` for every index whose count less the baseline
    /// is not zero, in ascending index order; returns `(count, sum)` less
    /// the baseline.
    fn for_each_count(&self, mut f: impl FnMut(usize, u64)) -> (u64, u64) {
        let inner = &*self.inner;
        let baseline = inner.lock_baseline();
        let mut count = 0u64;
        // Every bucket total is at least its baseline (counts never go
        // backwards), so the differences are exact.
        inner.visit(|index, total| {
            let base = baseline
                .blocks
                .get(index / BLOCK_LEN)
                .and_then(Option::as_ref)
                .map_or(0, |block| block[index % BLOCK_LEN]);
            let n = total.wrapping_sub(base);
            if n != 0 {
                count = count.wrapping_add(n);
                f(index, n);
            }
        });
        let mut sum = 0u64.wrapping_sub(baseline.sum);
        for shard in inner.installed() {
            sum = sum.wrapping_add(shard.totals().sum);
        }
        (count, sum)
    }

    /// Sums every shard into `counts` (resized to the layout, its capacity
    /// reused), less the baseline; with `take`, makes these totals the
    /// baseline (and resets min, max and the clamp count).
    pub(super) fn collect(&self, take: bool, counts: &mut Vec<u64>) -> Totals {
        let inner = &*self.inner;
        // Held across the read: a take's baseline is never past what a
        // read that follows it sees, and takes run one at a time.
        let mut baseline = inner.lock_baseline();
        counts.clear();
        counts.resize(inner.layout.len, 0);
        inner.visit(|index, n| counts[index] = n);
        let mut merged = Totals::EMPTY;
        for shard in inner.installed() {
            let mut totals = shard.totals();
            if take {
                (totals.min, totals.max, totals.clamped) = shard.take_bounds();
            }
            merged.merge(totals);
        }
        let sum = merged.sum;
        merged.sum = sum.wrapping_sub(baseline.sum);
        if take && baseline.blocks.is_empty() {
            // The first take: one slot per block.
            baseline.blocks = (0..inner.layout.len.div_ceil(BLOCK_LEN))
                .map(|_| None)
                .collect();
        }
        let mut count = 0u64;
        for (chunk, base) in counts.chunks_mut(BLOCK_LEN).zip(
            baseline
                .blocks
                .iter_mut()
                .map(Some)
                .chain(std::iter::repeat_with(|| None)),
        ) {
            for &c in chunk.iter() {
                count = count.wrapping_add(c);
            }
            match base {
                Some(Some(base)) => {
                    for (c, b) in chunk.iter_mut().zip(base.iter_mut()) {
                        let total = *c;
                        *c = total.wrapping_sub(*b);
                        if take {
                            *b = total;
                        }
                    }
                }
                Some(base @ None) if take && chunk.iter().any(|&c| c != 0) => {
                    let mut block = Box::new([0u64; BLOCK_LEN]);
                    block[..chunk.len()].copy_from_slice(chunk);
                    *base = Some(block);
                }
                _ => {}
            }
        }
        if take {
            baseline.count = count;
            baseline.sum = sum;
        }
        merged
    }
}

impl Inner {
    /// Calls `f(index, count)` for every non-zero count since creation
    /// (all shards and the carry words), each block read consistently.
    pub(super) fn visit(&self, f: impl FnMut(usize, u64)) {
        // The installed shards, looked up once per read rather than once
        // per block (up to `CACHED` of them; beyond, once per block). A
        // shard installed after this lookup holds only records that race
        // the read; leaving its words out (while its carries, in the shared
        // words, are read) is a state the read could have seen.
        const CACHED: usize = 64;
        let mut cached = [None; CACHED];
        let mut installed = 0;
        for (slot, shard) in cached.iter_mut().zip(self.installed()) {
            *slot = Some(shard);
            installed += 1;
        }
        if installed < CACHED {
            self.visit_shards(cached.iter().flatten().copied(), f);
        } else {
            self.visit_shards(self.installed(), f);
        }
    }

    fn visit_shards<'a>(
        &'a self,
        shards: impl Iterator<Item = &'a Shard> + Clone,
        mut f: impl FnMut(usize, u64),
    ) {
        let mut counts = [0u64; BLOCK_LEN];
        let no_carries = !self.carries.any();
        for b in 0..self.layout.len.div_ceil(BLOCK_LEN) {
            if shard::read_block(b, shards.clone(), &self.carries, no_carries, &mut counts) {
                for (offset, &n) in counts.iter().enumerate() {
                    if n != 0 {
                        f(b * BLOCK_LEN + offset, n);
                    }
                }
            }
        }
    }
}
