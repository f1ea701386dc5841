//! [`Rate`]: events per second over a sliding window.
//!
//! The window is a ring of `slots` slots, one slot width each, kept
//! separately per CPU shard. Time since the rate's creation is counted in
//! ticks (slot widths); tick `t` belongs to slot `t % slots` of lap
//! `t / slots`. Each slot is one atomic word packing the lap it counts with
//! its count, so moving a slot on to a new lap and counting the event that
//! moved it are one CAS: there is no reset that a racing mark could fall
//! into, and no lock. Events are never stored one by one and a mark never
//! allocates.

use crate::counter::shards;
use crate::primitive::{
    Arc, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use crossbeam_utils::CachePadded;
use std::fmt;
use std::time::{Duration, Instant};

/// Slot words per padded chunk: each shard's ring starts on its own cache
/// line(s), so shards never falsely share.
const CHUNK: usize = if cfg!(loom) { 2 } else { 16 };

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
/// shard (further events in the same slot saturate). A mark whose instant is
/// a whole window or more older than the slot it maps to (a marker that read
/// the clock and was then descheduled that long) counts nothing: its event
/// has already left every window that slot is part of.
///
/// Laps are kept modulo 2<sup>32</sup> in the slots. A mark tells a slot
/// left from an older lap from one already moved on by a newer mark by the
/// newest tick the rate has seen (kept in full), so a slot idle for any
/// number of laps is taken over by the next mark, except after exactly a
/// multiple of 2<sup>32</sup> laps (49.7 days for a 1 ms window of one slot;
/// 8 000 years for the default), when marks and reads take its old count as
/// current once.
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
    /// The newest tick any mark has been made at (monotonic, whole): how far
    /// ahead of a mark a slot's lap can be. Read by every mark, written
    /// (`fetch_max`) once per tick, so its line stays shared.
    newest_tick: CachePadded<AtomicU64>,
    words: Box<[CachePadded<[AtomicU64; CHUNK]>]>,
}

#[inline]
fn pack(lap: u32, count: u32) -> u64 {
    (u64::from(lap) << 32) | u64::from(count)
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
                newest_tick: CachePadded::new(AtomicU64::new(0)),
                words: (0..shards * chunks_per_shard)
                    .map(|_| CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0))))
                    .collect(),
            }),
        })
    }

    /// The number of per-CPU shards (the next power of two of the CPUs the
    /// machine can have).
    pub fn shards(&self) -> usize {
        self.inner.shard_mask + 1
    }

    /// The window's length.
    pub fn window(&self) -> Duration {
        Duration::from_nanos(self.inner.slot_nanos).saturating_mul(self.inner.slots as u32)
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
    ///
    /// `now` should not run ahead of the clock: the newest instant marked is
    /// how the rate tells a slot moved on by a newer mark from one idle for
    /// laps, so after a mark far in the future, marks of the present that
    /// meet a slot of another lap count nothing until the clock catches up.
    pub fn mark_at(&self, n: u32, now: Instant) {
        let inner = &*self.inner;
        let tick = inner.tick_of(now);
        // Relaxed load first, so the shared word is written only when the
        // tick moves on. Relaxed `fetch_max`: its order against the slot
        // word's CAS below is carried by that CAS's Release.
        if tick > inner.newest_tick.load(Relaxed) {
            inner.newest_tick.fetch_max(tick, Relaxed);
        }
        let (lap, slot) = inner.locate(tick);
        let shard = crate::cpu::current() & inner.shard_mask;
        let word = inner.word(shard, slot);
        // The CAS makes rotation and counting one step. Release on success
        // and Acquire on every load pair with each other: a mark that reads
        // a slot word another mark wrote sees a `newest_tick` at least that
        // mark's tick (its own `fetch_max`, or the value its Relaxed load
        // above saw, both before its CAS), so the bound below covers every
        // lap a slot can hold.
        let _ = word.fetch_update(Release, Acquire, |w| {
            let (slot_lap, count) = unpack(w);
            if slot_lap == lap {
                // This lap's slot: count here.
                return Some(pack(lap, count.saturating_add(n)));
            }
            // Laps modulo 2^32: the slot is newer than this mark only if it
            // is at most as far ahead as the newest tick seen allows.
            // Relaxed: the Acquire load of the slot word already ordered
            // this after what the mark that wrote it saw of `newest_tick`.
            let newest_lap = inner.newest_tick.load(Relaxed) / inner.slots as u64;
            let full_lap = tick / inner.slots as u64;
            let ahead = u64::from(slot_lap.wrapping_sub(lap));
            if ahead <= newest_lap.saturating_sub(full_lap) {
                // A newer lap: the slot already counts a tick at least a
                // whole window after ours, so our event is out of every
                // window it is in.
                None
            } else {
                // An older lap (however many laps old): its events have left
                // the window; start this lap with ours.
                Some(pack(lap, n))
            }
        });
    }

    /// The events in the window ending now.
    pub fn count_in_window(&self) -> u64 {
        self.count_in_window_at(Instant::now())
    }

    /// The events in the window ending at `now`.
    pub fn count_in_window_at(&self, now: Instant) -> u64 {
        let inner = &*self.inner;
        let (lap, current) = inner.locate(inner.tick_of(now));
        let mut total = 0u64;
        for shard in 0..=inner.shard_mask {
            for slot in 0..inner.slots {
                let (slot_lap, count) = unpack(inner.word(shard, slot).load(Relaxed));
                // The window is slots `current + 1 ..` of the previous lap
                // and slots `..= current` of this one.
                let expected = if slot <= current {
                    lap
                } else {
                    lap.wrapping_sub(1)
                };
                if slot_lap == expected {
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
        let nanos = now.saturating_duration_since(inner.start).as_nanos();
        let slot = u128::from(inner.slot_nanos);
        let covered = slot * (inner.slots as u128 - 1) + nanos % slot;
        Duration::from_nanos(u64::try_from(covered).unwrap_or(u64::MAX))
    }
}

impl Inner {
    /// Slot widths since creation (saturating; `now` before creation is 0).
    #[inline]
    fn tick_of(&self, now: Instant) -> u64 {
        let nanos = now.saturating_duration_since(self.start).as_nanos();
        u64::try_from(nanos / u128::from(self.slot_nanos)).unwrap_or(u64::MAX)
    }

    /// The lap (modulo 2^32) and slot of `tick`.
    #[inline]
    fn locate(&self, tick: u64) -> (u32, usize) {
        let slots = self.slots as u64;
        ((tick / slots) as u32, (tick % slots) as usize)
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
