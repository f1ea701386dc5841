//! [`Rate`]: events per second over a sliding window.
//!
//! The window is a ring of slots, one slot width each, kept separately per
//! CPU shard. Each slot is one atomic word that packs the slot's tick (which
//! slot width since the rate was created it counts) with its count, so
//! moving a slot on to a new tick and counting the event that moved it are
//! one CAS: there is no reset that a racing mark could fall into, and no
//! lock. Events are never stored one by one and a mark never allocates.

use crate::counter::shards;
use crate::primitive::{Arc, AtomicU64, Ordering::Relaxed};
use crossbeam_utils::CachePadded;
use std::fmt;
use std::time::{Duration, Instant};

/// Slot words per padded chunk: each shard's ring starts on its own cache
/// line(s), so shards never falsely share.
const CHUNK: usize = if cfg!(loom) { 2 } else { 16 };

/// A tick this far ahead of the marker's is taken for a slot the marker is
/// late for (it read the clock, then was descheduled); further ahead, for an
/// ancient tick that wrapped.
const LATE_TICKS: u32 = 1 << 20;

/// The shortest slot width.
pub const MIN_SLOT: Duration = Duration::from_millis(1);
/// The most slots in a window.
pub const MAX_SLOTS: usize = 1 << 16;

/// Why a rate's window was rejected: one variant per rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateError {
    /// The window needs at least one slot.
    NoSlots,
    /// At most [`MAX_SLOTS`] slots.
    TooManySlots(usize),
    /// Each slot (window ÷ slots) must be at least [`MIN_SLOT`] long.
    SlotTooShort(Duration),
}

impl fmt::Display for RateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateError::NoSlots => f.write_str("a rate window needs at least one slot"),
            RateError::TooManySlots(n) => {
                write!(f, "{n} slots is more than the {MAX_SLOTS} allowed")
            }
            RateError::SlotTooShort(d) => {
                write!(f, "slot width {d:?} is below the minimum {MIN_SLOT:?}")
            }
        }
    }
}

impl std::error::Error for RateError {}

/// Events per second over a sliding window, sharded per CPU.
///
/// [`mark`](Self::mark) counts an event now; [`per_second`](Self::per_second)
/// is the number of events in the window divided by the time the window
/// covers. The window is `slots` slots of `window / slots` each, so it slides
/// a slot width at a time: the newest slot fills as time passes, the oldest
/// falls out whole. Until the rate is a window old, the elapsed time since
/// creation is used instead. Memory: 128 bytes per 16 slots per shard,
/// whatever the event rate. Cloning is cheap and shares the rate.
///
/// A mark is a clock read ([`Instant::now`]), a CPU lookup and one CAS on the
/// shard's slot word. A slot counts up to 2<sup>32</sup> − 1 events per
/// shard (further events in the same slot saturate).
///
/// ```
/// use metricz::Rate;
/// use std::time::{Duration, Instant};
///
/// let rate = Rate::with_window(Duration::from_secs(10), 10).unwrap();
/// let t0 = Instant::now();
/// rate.mark_at(5, t0 + Duration::from_millis(500));
/// rate.mark_at(15, t0 + Duration::from_secs(4));
/// // At 9.5 s the window (slots 0–9 s) holds both marks.
/// assert_eq!(rate.count_in_window_at(t0 + Duration::from_millis(9_500)), 20);
/// // At 10.5 s the slot of 0–1 s has left the window.
/// assert_eq!(rate.count_in_window_at(t0 + Duration::from_millis(10_500)), 15);
/// ```
#[derive(Clone)]
pub struct Rate {
    inner: Arc<Inner>,
}

struct Inner {
    start: Instant,
    slot_nanos: u64,
    slots: usize,
    chunks_per_shard: usize,
    shard_mask: usize,
    words: Box<[CachePadded<[AtomicU64; CHUNK]>]>,
}

#[inline]
fn pack(tick: u32, count: u32) -> u64 {
    (u64::from(tick) << 32) | u64::from(count)
}

#[inline]
fn unpack(word: u64) -> (u32, u32) {
    ((word >> 32) as u32, word as u32)
}

impl Rate {
    /// A rate over a 60-second window of 60 one-second slots.
    pub fn new() -> Self {
        Self::with_window(Duration::from_secs(60), 60).expect("the default window is valid")
    }

    /// A rate over `window`, divided into `slots` slots.
    pub fn with_window(window: Duration, slots: usize) -> Result<Self, RateError> {
        if slots == 0 {
            return Err(RateError::NoSlots);
        }
        if slots > MAX_SLOTS {
            return Err(RateError::TooManySlots(slots));
        }
        let slot = window / slots as u32;
        if slot < MIN_SLOT {
            return Err(RateError::SlotTooShort(slot));
        }
        let shards = shards::default_count();
        let chunks_per_shard = slots.div_ceil(CHUNK);
        Ok(Rate {
            inner: Arc::new(Inner {
                start: Instant::now(),
                slot_nanos: u64::try_from(slot.as_nanos()).unwrap_or(u64::MAX),
                slots,
                chunks_per_shard,
                shard_mask: shards - 1,
                words: (0..shards * chunks_per_shard)
                    .map(|_| CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0))))
                    .collect(),
            }),
        })
    }

    /// The window's length.
    pub fn window(&self) -> Duration {
        Duration::from_nanos(self.inner.slot_nanos) * self.inner.slots as u32
    }

    /// Counts one event now.
    #[inline]
    pub fn mark(&self) {
        self.mark_at(1, Instant::now());
    }

    /// Counts `n` events now.
    #[inline]
    pub fn mark_n(&self, n: u32) {
        self.mark_at(n, Instant::now());
    }

    /// Counts `n` events at `now` (for callers that already read the clock,
    /// and for tests). Times before the rate's creation count as its start.
    pub fn mark_at(&self, n: u32, now: Instant) {
        let inner = &*self.inner;
        let tick = inner.tick_of(now);
        let shard = crate::cpu::current() & inner.shard_mask;
        let word = inner.word(shard, tick as usize % inner.slots);
        // Relaxed: the word is self-contained (tick and count together); the
        // CAS alone makes rotation and counting one step.
        let _ = word.fetch_update(Relaxed, Relaxed, |w| {
            let (slot_tick, count) = unpack(w);
            let ahead = slot_tick.wrapping_sub(tick);
            Some(if slot_tick == tick || (ahead != 0 && ahead < LATE_TICKS) {
                // This tick's slot, or a newer one we are late for: count
                // it there (late events are counted, not dropped).
                pack(slot_tick, count.saturating_add(n))
            } else {
                // An older tick: its events have left the window; start
                // this tick with ours.
                pack(tick, n)
            })
        });
    }

    /// The events in the window ending now.
    pub fn count_in_window(&self) -> u64 {
        self.count_in_window_at(Instant::now())
    }

    /// The events in the window ending at `now`.
    pub fn count_in_window_at(&self, now: Instant) -> u64 {
        let inner = &*self.inner;
        let tick = inner.tick_of(now);
        let mut total = 0u64;
        for shard in 0..=inner.shard_mask {
            for slot in 0..inner.slots {
                let (slot_tick, count) = unpack(inner.word(shard, slot).load(Relaxed));
                // In the window: the current tick or one of the `slots - 1`
                // before it; or a newer tick a late marker counted into.
                let age = tick.wrapping_sub(slot_tick);
                let ahead = slot_tick.wrapping_sub(tick);
                if (age as usize) < inner.slots || (ahead != 0 && ahead < LATE_TICKS) {
                    total += u64::from(count);
                }
            }
        }
        total
    }

    /// Events per second over the window ending now.
    pub fn per_second(&self) -> f64 {
        self.per_second_at(Instant::now())
    }

    /// Events per second over the window ending at `now`: the events in the
    /// window over the time it covers (the time since creation, while that
    /// is shorter than the window); 0.0 at the instant of creation.
    pub fn per_second_at(&self, now: Instant) -> f64 {
        let inner = &*self.inner;
        let elapsed = now.saturating_duration_since(inner.start);
        let covered = elapsed.min(self.window_covered(now));
        if covered.is_zero() {
            return 0.0;
        }
        self.count_in_window_at(now) as f64 / covered.as_secs_f64()
    }

    /// The time the window ending at `now` covers: the whole slots before
    /// the current one and the current one so far.
    fn window_covered(&self, now: Instant) -> Duration {
        let inner = &*self.inner;
        let nanos = u64::try_from(now.saturating_duration_since(inner.start).as_nanos())
            .unwrap_or(u64::MAX);
        let into_slot = nanos % inner.slot_nanos;
        Duration::from_nanos(inner.slot_nanos * (inner.slots as u64 - 1) + into_slot)
    }
}

impl Inner {
    #[inline]
    fn tick_of(&self, now: Instant) -> u32 {
        let nanos = now.saturating_duration_since(self.start).as_nanos();
        // Ticks wrap at 2^32 slot widths (49 days at the 1 ms minimum);
        // comparisons are modular, see `mark_at`.
        (nanos / u128::from(self.slot_nanos)) as u32
    }

    #[inline]
    fn word(&self, shard: usize, slot: usize) -> &AtomicU64 {
        &self.words[shard * self.chunks_per_shard + slot / CHUNK][slot % CHUNK]
    }
}

impl Default for Rate {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rate")
            .field("window", &self.window())
            .field("slots", &self.inner.slots)
            .field("per_second", &self.per_second())
            .finish()
    }
}
