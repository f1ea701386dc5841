//! [`Pending`]: the undelivered batches a pusher keeps, oldest first, with
//! their total size and its bound (the InfluxDB and remote-write sinks).

use std::collections::VecDeque;

/// Undelivered batches, oldest first, and their total size in bytes.
#[derive(Debug)]
pub(crate) struct Pending<B> {
    batches: VecDeque<B>,
    bytes: usize,
    max_bytes: usize,
}

impl<B: AsRef<[u8]>> Pending<B> {
    /// Empty, bounded to `max_bytes` by [`trim`](Self::trim).
    pub(crate) fn new(max_bytes: usize) -> Self {
        Pending {
            batches: VecDeque::new(),
            bytes: 0,
            max_bytes,
        }
    }

    /// Keeps `batch` as the newest.
    pub(crate) fn push(&mut self, batch: B) {
        self.bytes += batch.as_ref().len();
        self.batches.push_back(batch);
    }

    /// The oldest batches first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &B> {
        self.batches.iter()
    }

    /// The oldest batch.
    pub(crate) fn front(&self) -> Option<&B> {
        self.batches.front()
    }

    /// Drops the oldest `n` batches (fewer if there are fewer); returns
    /// their bytes.
    pub(crate) fn pop(&mut self, n: usize) -> usize {
        let mut dropped = 0;
        for _ in 0..n {
            let Some(batch) = self.batches.pop_front() else {
                break;
            };
            dropped += batch.as_ref().len();
        }
        self.bytes -= dropped;
        dropped
    }

    /// Drops the oldest batches while the total is past the bound;
    /// returns the bytes dropped.
    pub(crate) fn trim(&mut self) -> u64 {
        let mut dropped = 0;
        while self.bytes > self.max_bytes {
            dropped += self.pop(1) as u64;
        }
        dropped
    }

    /// The total size of the batches kept.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether no batch is kept.
    pub(crate) fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Changes the bound (tests).
    #[cfg(test)]
    pub(crate) fn set_max_bytes(&mut self, max_bytes: usize) {
        self.max_bytes = max_bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::Pending;

    #[test]
    fn trims_the_oldest_past_the_bound() {
        let mut p = Pending::new(5);
        for batch in ["ab", "cde", "f"] {
            p.push(batch.to_string());
        }
        assert_eq!(p.bytes(), 6);
        assert_eq!(p.trim(), 2);
        assert_eq!(p.iter().collect::<Vec<_>>(), ["cde", "f"]);
        assert_eq!(p.pop(5), 4);
        assert!(p.is_empty() && p.bytes() == 0 && p.front().is_none());
    }
}
