//! Hashing of label values: foldhash (the fast variant), keyed per
//! registry.
//!
//! Label values often come from requests, so the hash must not let anyone
//! choose colliding values ahead of time. foldhash is a keyed hash built for
//! hash tables: each registry gets a random per-hasher seed and the process
//! a random shared seed, both drawn from the operating system's randomness
//! (through std's `RandomState`). Equality is always checked in full behind
//! the hash, and each family's cardinality limit bounds what a flood of
//! label values can cost.

use foldhash::fast::SeedableRandomState;
use foldhash::SharedSeed;
use std::hash::{BuildHasher, Hasher};

/// A registry's hash key.
pub(crate) type Seed = SeedableRandomState;

/// The bytes of `b` (at most 8) as a little-endian word, read with at most
/// two overlapping loads (the equality check's fast path).
#[inline]
fn small_word(b: &[u8]) -> u64 {
    let n = b.len();
    if n >= 4 {
        let lo = u32::from_le_bytes(b[..4].try_into().expect("4 bytes")) as u64;
        let hi = u32::from_le_bytes(b[n - 4..n].try_into().expect("4 bytes")) as u64;
        lo | (hi << 32)
    } else if n > 0 {
        // First, middle and last byte.
        (b[0] as u64) | ((b[n / 2] as u64) << 8) | ((b[n - 1] as u64) << 16)
    } else {
        0
    }
}

/// Whether two label values are equal; values under 8 bytes are compared
/// as one word each (the reads of [`small_word`] cover every byte of a
/// value that short, so equal lengths and equal words mean equal bytes)
/// instead of through a `memcmp` call.
#[inline]
pub(crate) fn value_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    if a.len() < 8 {
        small_word(a) == small_word(b)
    } else {
        a == b
    }
}

/// The hash of `values` under `seed`: each value's bytes in turn (foldhash
/// folds a value's length into the state, so `["ab", "c"]` and
/// `["a", "bc"]` hash apart).
#[inline]
pub(crate) fn hash_values(seed: &Seed, values: &[&str]) -> u64 {
    hash_bytes(seed, values.iter().map(|v| v.as_bytes()))
}

/// [`hash_values`] over raw bytes.
#[inline]
fn hash_bytes<'a>(seed: &Seed, values: impl Iterator<Item = &'a [u8]>) -> u64 {
    let mut h = seed.build_hasher();
    for value in values {
        h.write(value);
    }
    h.finish()
}

/// A fresh random key for a registry (fixed under loom, whose executions
/// must be deterministic).
pub(crate) fn random_seed() -> Seed {
    if cfg!(loom) {
        return SeedableRandomState::fixed();
    }
    static SHARED: std::sync::OnceLock<SharedSeed> = std::sync::OnceLock::new();
    let shared = SHARED.get_or_init(|| SharedSeed::from_u64(os_random()));
    SeedableRandomState::with_seed(os_random(), shared)
}

/// 64 random bits from std's `RandomState` (keys from the operating
/// system's randomness, varied per call).
fn os_random() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x6d65_7472_6963_7a00);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_value_equality_sees_every_byte() {
        let values = [
            "", "a", "b", "ab", "ba", "aa", "abc", "abd", "xbc", "axc", "abcd", "abce", "abcde",
            "abXde", "abcdefg", "abcXefg", "abcdefgh", "abcdefgX", "ab\u{e9}",
        ];
        for a in values {
            for b in values {
                assert_eq!(value_eq(a, b), a == b, "{a:?} vs {b:?}");
            }
        }
        // Every single-byte change of every position, for lengths 1..=9.
        for n in 1..=9usize {
            let base: String = (0..n).map(|i| (b'a' + i as u8) as char).collect();
            for i in 0..n {
                let mut other = base.clone().into_bytes();
                other[i] = b'Z';
                let other = String::from_utf8(other).unwrap();
                assert!(!value_eq(&base, &other), "{base} vs {other}");
            }
            assert!(value_eq(&base, &base.clone()));
        }
    }

    fn seeded(n: u64) -> Seed {
        SeedableRandomState::with_seed(n, SharedSeed::global_fixed())
    }

    #[test]
    fn boundaries_between_values_matter() {
        let s = seeded(1);
        assert_ne!(hash_values(&s, &["ab", "c"]), hash_values(&s, &["a", "bc"]));
        assert_ne!(hash_values(&s, &["", "x"]), hash_values(&s, &["x", ""]));
        assert_ne!(hash_values(&s, &["a"]), hash_values(&seeded(2), &["a"]));
        // Every byte position of short values counts.
        assert_ne!(hash_values(&s, &["abc"]), hash_values(&s, &["abd"]));
        assert_ne!(hash_values(&s, &["abc"]), hash_values(&s, &["xbc"]));
        assert_ne!(hash_values(&s, &["abcde"]), hash_values(&s, &["abXde"]));
        assert_ne!(
            hash_values(&s, &["abcdefghi"]),
            hash_values(&s, &["abcdefghj"])
        );
        assert_eq!(
            hash_values(&seeded(7), &["GET", "200"]),
            hash_values(&seeded(7), &["GET", "200"])
        );
    }

    /// The previous hash (seed, then `(h.rotate_left(5) ^ word) × K` per
    /// 8-byte word) had seed-independent collisions: flipping the top bit
    /// of one word flips only the top bit of the product whatever the seed,
    /// which the next word can cancel (bit 4 after the rotation). Every seed
    /// collided on this pair; a keyed hash must not.
    #[test]
    fn no_seed_independent_collisions() {
        let a: [u8; 16] = *b"abcdefghijklmnop";
        let mut b = a;
        b[7] ^= 0x80; // top bit of the first word
        b[8] ^= 0x10; // bit 4 of the second
        let collisions = (0..64u64)
            .filter(|&n| {
                let s = seeded(n);
                hash_bytes(&s, [&a[..]].into_iter()) == hash_bytes(&s, [&b[..]].into_iter())
            })
            .count();
        assert_eq!(collisions, 0);
        // Random keys differ per registry.
        let (x, y) = (random_seed(), random_seed());
        assert_ne!(hash_values(&x, &["GET"]), hash_values(&y, &["GET"]));
    }
}
