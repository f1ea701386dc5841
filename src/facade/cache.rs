//! Each thread's cache from `metrics` keys to its own handles: the
//! facade's hot path.
//!
//! An open-addressing table (linear probing, power-of-two capacity) in a
//! thread-local, indexed by the key's precomputed hash mixed with the
//! recorder's id and the kind, and compared in full (recorder, kind, then
//! [`Key`]'s equality, which compares names and labels, in any order).
//! Nothing here is shared between threads: the only shared memory a hit
//! reads is the family's change number (one load) and the series' metric
//! it then writes.

use super::resolve::{Kind, Resolved};
use super::Shared;
use crate::{Counter, Gauge, Histogram};
use metrics::Key;
use std::cell::RefCell;

/// Keys a thread caches; past that, each new key replaces one.
pub(super) const MAX_ENTRIES: usize = 4096;
/// Slots of a cache that holds `MAX_ENTRIES` (half full).
const MAX_SLOTS: usize = 2 * MAX_ENTRIES;
/// Slots of a new cache.
const MIN_SLOTS: usize = 16;

/// A cached key's series, by kind.
pub(super) enum Slot {
    Counter(Resolved<Counter>),
    Gauge(Resolved<Gauge>),
    Histogram(Resolved<Histogram>),
}

/// Picks a kind's variant out of [`Slot`].
pub(super) trait Cached: Kind {
    /// Mixed into the index, so one key as two kinds takes two slots.
    const TAG: u64;
    fn get(slot: &mut Slot) -> Option<&mut Resolved<Self>>;
    fn put(resolved: Resolved<Self>) -> Slot;
}

macro_rules! cached {
    ($ty:ident, $tag:expr) => {
        impl Cached for $ty {
            const TAG: u64 = $tag;
            #[inline]
            fn get(slot: &mut Slot) -> Option<&mut Resolved<Self>> {
                match slot {
                    Slot::$ty(r) => Some(r),
                    _ => None,
                }
            }
            fn put(resolved: Resolved<Self>) -> Slot {
                Slot::$ty(resolved)
            }
        }
    };
}
cached!(Counter, 0x9e37_79b9_7f4a_7c15);
cached!(Gauge, 0xc2b2_ae3d_27d4_eb4f);
cached!(Histogram, 0x1656_67b1_9e37_79f9);

struct Entry {
    /// The mixed hash (index and a fast first comparison).
    hash: u64,
    recorder: u64,
    key: Key,
    slot: Slot,
}

/// One thread's table.
struct Cache {
    slots: Vec<Option<Entry>>,
    len: usize,
}

thread_local! {
    static CACHE: RefCell<Cache> = const {
        RefCell::new(Cache {
            slots: Vec::new(),
            len: 0,
        })
    };
}

/// The handle for `key` of kind `M` from `shared`'s recorder: this
/// thread's cached one, else resolved (and cached).
#[inline]
pub(super) fn lookup<M: Cached>(shared: &Shared, key: &Key) -> M::Handle {
    let hit = CACHE.try_with(|cache| match cache.try_borrow_mut() {
        Ok(mut cache) => Some(cache.handle::<M>(shared, key)),
        // Re-entered (a handle's drop inside a resolution called back):
        // resolve without the cache.
        Err(_) => None,
    });
    match hit {
        Ok(Some(handle)) => handle,
        // The thread's cache is gone (thread exit) or in use.
        _ => handle_of(&shared.resolve::<M>(key)),
    }
}

#[inline]
fn handle_of<M: Kind>(resolved: &Resolved<M>) -> M::Handle {
    match &resolved.local {
        Some(local) => M::handle(local),
        None => M::noop(),
    }
}

/// Full equality of a cached key and a looked-up one, comparing strings
/// first by where they live: two strings alive at the same address with
/// the same length are the same bytes, and so is a label slice. A static
/// key (whose clone in the cache borrows the same statics) compares in two
/// pointer comparisons; a key built at run time from static label names
/// and values, label by label without `memcmp`; other strings by content.
/// Labels in another order fall back to [`Key`]'s own equality, which
/// accepts any order.
#[inline]
fn same_key(cached: &Key, key: &Key) -> bool {
    #[inline]
    fn same_str(a: &str, b: &str) -> bool {
        (std::ptr::eq(a.as_ptr(), b.as_ptr()) && a.len() == b.len()) || a == b
    }
    if cached.get_hash() != key.get_hash() || !same_str(cached.name(), key.name()) {
        return false;
    }
    let (a, b) = (cached.labels().as_slice(), key.labels().as_slice());
    if a.len() != b.len() {
        return false;
    }
    std::ptr::eq(a.as_ptr(), b.as_ptr())
        || a.iter()
            .zip(b)
            .all(|(x, y)| same_str(x.key(), y.key()) && same_str(x.value(), y.value()))
        || cached == key
}

/// The slot index of a mixed hash: its top bits (the multiplication in
/// [`mix`] moves every input bit there).
#[inline]
fn index(hash: u64, slots: usize) -> usize {
    (hash >> (64 - slots.trailing_zeros())) as usize
}

/// The key's hash (whose low bits are not mixed) with the recorder and
/// kind, multiplied so all of them reach the top bits.
#[inline]
fn mix(key: u64, recorder: u64, tag: u64) -> u64 {
    (key ^ recorder.rotate_left(32) ^ tag).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl Cache {
    #[inline]
    fn handle<M: Cached>(&mut self, shared: &Shared, key: &Key) -> M::Handle {
        let hash = mix(key.get_hash(), shared.id, M::TAG);
        if !self.slots.is_empty() {
            let mask = self.slots.len() - 1;
            let mut i = index(hash, self.slots.len());
            while let Some(entry) = &mut self.slots[i] {
                if entry.hash == hash && entry.recorder == shared.id && same_key(&entry.key, key) {
                    if let Some(resolved) = M::get(&mut entry.slot) {
                        if !resolved.is_fresh() {
                            // Removed or evicted since (or the table grew):
                            // look the series up again.
                            *resolved = shared.resolve::<M>(key);
                        }
                        return handle_of(resolved);
                    }
                }
                i = (i + 1) & mask;
            }
        }
        self.insert::<M>(shared, key, hash)
    }

    #[cold]
    #[inline(never)]
    fn insert<M: Cached>(&mut self, shared: &Shared, key: &Key, hash: u64) -> M::Handle {
        let resolved = shared.resolve::<M>(key);
        let handle = handle_of(&resolved);
        if self.len >= MAX_ENTRIES {
            self.evict_near(hash);
        } else if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = index(hash, self.slots.len());
        while self.slots[i].is_some() {
            i = (i + 1) & mask;
        }
        self.slots[i] = Some(Entry {
            hash,
            recorder: shared.id,
            key: key.clone(),
            slot: M::put(resolved),
        });
        self.len += 1;
        handle
    }

    /// Doubles the table (at most to `MAX_SLOTS`).
    fn grow(&mut self) {
        let old = std::mem::take(&mut self.slots);
        let slots = (old.len() * 2).clamp(MIN_SLOTS, MAX_SLOTS);
        self.slots = (0..slots).map(|_| None).collect();
        let mask = slots - 1;
        for entry in old.into_iter().flatten() {
            let mut i = index(entry.hash, slots);
            while self.slots[i].is_some() {
                i = (i + 1) & mask;
            }
            self.slots[i] = Some(entry);
        }
    }

    /// Makes room in a full cache: removes the entry at or after the home
    /// slot of `hash` (so which key goes is as good as random, and the
    /// keys in use stay), then moves the entries after it back into the
    /// hole where their probe allows (backward-shift deletion), so every
    /// entry stays reachable from its home slot without an empty slot in
    /// between.
    fn evict_near(&mut self, hash: u64) {
        let slots = self.slots.len();
        let mask = slots - 1;
        let mut hole = index(hash, slots);
        while self.slots[hole].is_none() {
            hole = (hole + 1) & mask;
        }
        let victim = self.slots[hole].take();
        self.len -= 1;
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let Some(entry) = &self.slots[j] else { break };
            let home = index(entry.hash, slots);
            // Whether `home` lies cyclically in (hole, j]: then the entry
            // cannot move before its home slot.
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.slots[hole] = self.slots[j].take();
                hole = j;
            }
        }
        // Dropped once the table is consistent again.
        drop(victim);
    }
}

#[cfg(test)]
mod tests {
    use super::same_key;
    use metrics::{Key, Label};

    static LABELS: [Label; 2] = [
        Label::from_static_parts("method", "GET"),
        Label::from_static_parts("status", "200"),
    ];
    static KEY: Key = Key::from_static_parts("r_total", &LABELS);

    fn owned(name: &str, labels: &[(&str, &str)]) -> Key {
        let labels: Vec<Label> = labels
            .iter()
            .map(|(k, v)| Label::new(k.to_string(), v.to_string()))
            .collect();
        Key::from_parts(name.to_string(), labels)
    }

    /// Past `MAX_ENTRIES` keys, each new key replaces one: the cache stays
    /// at its bound, every entry stays reachable from its home slot (no
    /// empty slot on its probe path), and every lookup still gives the
    /// right series.
    #[test]
    fn a_full_cache_replaces_entries_and_stays_consistent() {
        use super::{index, CACHE, MAX_ENTRIES};
        let registry = crate::Registry::new();
        let recorder = crate::facade::Recorder::new(registry.clone());
        let keys = MAX_ENTRIES + 1500;
        let meta = metrics::Metadata::new("t", metrics::Level::INFO, None);
        for round in 0..2u64 {
            for i in 0..keys {
                let key = Key::from_parts("k_total", vec![Label::new("i", i.to_string())]);
                metrics::Recorder::register_counter(&recorder, &key, &meta).increment(round + 1);
            }
        }
        CACHE.with(|cache| {
            let cache = cache.borrow();
            let slots = cache.slots.len();
            let held = cache.slots.iter().flatten().count();
            assert_eq!((cache.len, held), (MAX_ENTRIES, MAX_ENTRIES));
            for (j, entry) in cache.slots.iter().enumerate() {
                let Some(entry) = entry else { continue };
                let mut i = index(entry.hash, slots);
                while i != j {
                    assert!(cache.slots[i].is_some(), "a gap before slot {j}");
                    i = (i + 1) & (slots - 1);
                }
            }
        });
        let family = registry.counter_vec("k_total", "", &["i"]).unwrap();
        assert_eq!(family.len(), keys);
        for i in [0, 1, MAX_ENTRIES, keys - 1] {
            assert_eq!(family.find(&[i]).unwrap().map(|c| c.get()), Some(3));
        }
    }

    #[test]
    fn same_key_is_full_equality() {
        let cached = KEY.clone();
        assert!(same_key(&cached, &KEY));
        // The same content elsewhere, in either order.
        assert!(same_key(
            &cached,
            &owned("r_total", &[("method", "GET"), ("status", "200")])
        ));
        assert!(same_key(
            &cached,
            &owned("r_total", &[("status", "200"), ("method", "GET")])
        ));
        assert!(same_key(
            &owned("r_total", &[("method", "GET"), ("status", "200")]),
            &KEY
        ));
        // Any difference.
        assert!(!same_key(
            &cached,
            &owned("r_total", &[("method", "GET"), ("status", "500")])
        ));
        assert!(!same_key(&cached, &owned("r_total", &[("method", "GET")])));
        assert!(!same_key(
            &cached,
            &owned("x_total", &[("method", "GET"), ("status", "200")])
        ));
        assert!(!same_key(
            &cached,
            &owned("r_total", &[("method", "GET"), ("state", "200")])
        ));
    }
}
