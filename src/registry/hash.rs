//! Hashing of label values: a fast multiplicative hash over the bytes of
//! each value (8 at a time) and its length, seeded per registry.
//!
//! The seed comes from std's `RandomState`, so collisions cannot be chosen
//! ahead of time; equality is always checked in full behind the hash, and
//! each family's cardinality limit bounds what a flood of label values can
//! cost.

const K: u64 = 0x517c_c1b7_2722_0a95;

#[inline]
fn mix(h: u64, word: u64) -> u64 {
    (h.rotate_left(5) ^ word).wrapping_mul(K)
}

/// The bytes of `b` (at most 8) as a little-endian word, read with at most
/// two overlapping loads: no copy through the stack, so no store-forwarding
/// stall on the next load.
#[inline]
fn small_word(b: &[u8]) -> u64 {
    let n = b.len();
    if n >= 4 {
        let lo = u32::from_le_bytes(b[..4].try_into().expect("4 bytes")) as u64;
        let hi = u32::from_le_bytes(b[n - 4..n].try_into().expect("4 bytes")) as u64;
        lo | (hi << 32)
    } else if n > 0 {
        // wyhash's small read: first, middle and last byte.
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

/// The hash of `values` under `seed`.
#[inline]
pub(crate) fn hash_values(seed: u64, values: &[&str]) -> u64 {
    let mut h = seed;
    for value in values {
        let bytes = value.as_bytes();
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            h = mix(h, u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        // The tail is at most 7 bytes, so its word's top byte is free for
        // the length, which separates ["ab", "c"] from ["a", "bc"] (and
        // makes the overlapping small reads unambiguous): one multiply per
        // short value instead of two.
        h = mix(
            h,
            small_word(chunks.remainder()) ^ ((bytes.len() as u64) << 56),
        );
    }
    // Final avalanche so the low bits (the table index) depend on all bits.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// A per-registry random seed (fixed under loom, whose executions must be
/// deterministic).
pub(crate) fn random_seed() -> u64 {
    if cfg!(loom) {
        return 0;
    }
    use std::hash::{BuildHasher, Hasher};
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

    #[test]
    fn boundaries_between_values_matter() {
        assert_ne!(hash_values(1, &["ab", "c"]), hash_values(1, &["a", "bc"]));
        assert_ne!(hash_values(1, &["", "x"]), hash_values(1, &["x", ""]));
        assert_ne!(hash_values(1, &["a"]), hash_values(2, &["a"]));
        // Every byte position of short values counts.
        assert_ne!(hash_values(1, &["abc"]), hash_values(1, &["abd"]));
        assert_ne!(hash_values(1, &["abc"]), hash_values(1, &["xbc"]));
        assert_ne!(hash_values(1, &["abcde"]), hash_values(1, &["abXde"]));
        assert_ne!(
            hash_values(1, &["abcdefghi"]),
            hash_values(1, &["abcdefghj"])
        );
        assert_eq!(
            hash_values(7, &["GET", "200"]),
            hash_values(7, &["GET", "200"])
        );
    }
}
