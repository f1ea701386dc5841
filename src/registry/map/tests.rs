//! Unit tests of the series map.
use super::*;
use crate::registry::hash::{hash_values, Seed};

fn map(limit: usize) -> SeriesMap<u32> {
    SeriesMap::new(limit, Seed::fixed())
}

fn find<'g>(map: &SeriesMap<u32>, value: &str, guard: &'g Guard) -> Option<&'g Node<u32>> {
    map.get(map.hash(&[value]), &[value], guard)
}

fn capacity(map: &SeriesMap<u32>, guard: &Guard) -> usize {
    map.current(guard).slots.len()
}

/// The premise of the loom models M13–M16 (`loom-tests/tests/
/// registry_churn.rs`): under loom's fixed seed the routes `d`, `o`
/// and `w` share their home slot in a 16-slot table, and it is even, so
/// growing from 2 slots copies `d` before `o`.
#[test]
fn loom_churn_routes_share_a_home() {
    let seed = Seed::fixed();
    let home = |v: &str| hash_values(&seed, &[v]) as usize & 15;
    assert_eq!([home("d"), home("o"), home("w")], [12, 12, 12]);
}

/// Churn on one series reuses its tombstone: the filled-slot count and
/// the table stay as they are (no rebuild, so `changes` counts the
/// removals alone), and every cycle's series is found, then gone.
#[test]
fn churn_reuses_tombstones_and_never_rebuilds() {
    let map = map(1_000);
    let guard = map.pin();
    let live: Vec<String> = (0..64).map(|i| format!("live{i}")).collect();
    for (i, v) in live.iter().enumerate() {
        assert!(matches!(
            map.get_or_insert(&[v], || i as u32, &guard),
            Insert::Series(_)
        ));
    }
    let (cap, filled) = (capacity(&map, &guard), *map.lock_writer());
    assert_eq!((cap, filled), (256, 64));
    let changes = map.changes();
    // Fewer under Miri, where each cycle takes milliseconds.
    const CYCLES: u32 = if cfg!(miri) { 200 } else { 10_000 };
    for cycle in 0..CYCLES {
        match map.get_or_insert(&["churned"], || cycle, &guard) {
            Insert::Series(node) => assert_eq!(node.value, cycle),
            Insert::Full => panic!("full"),
        }
        assert!(map.remove(&["churned"], &guard));
        assert!(find(&map, "churned", &guard).is_none());
    }
    assert_eq!(*map.lock_writer(), 65, "one tombstone, reused");
    assert_eq!(capacity(&map, &guard), cap);
    assert_eq!(
        map.changes(),
        changes + u64::from(CYCLES),
        "no table replaced"
    );
    assert_eq!(map.len(), 64);
    for (i, v) in live.iter().enumerate() {
        assert_eq!(find(&map, v, &guard).map(|n| n.value), Some(i as u32));
    }
}

/// An insert into a tombstone moves the version (collection's cache
/// key), although it fills no new slot; a lookup finds nothing else.
#[test]
fn insert_into_tombstone_moves_the_version() {
    let map = map(10);
    let guard = map.pin();
    assert!(matches!(
        map.get_or_insert(&["a"], || 1, &guard),
        Insert::Series(_)
    ));
    assert!(map.remove(&["a"], &guard));
    let before = map.version(&guard);
    let filled = *map.lock_writer();
    assert!(matches!(
        map.get_or_insert(&["a"], || 2, &guard),
        Insert::Series(_)
    ));
    assert_eq!(*map.lock_writer(), filled, "the tombstone was reused");
    assert_ne!(map.version(&guard), before);
    assert_eq!(find(&map, "a", &guard).map(|n| n.value), Some(2));
    assert_eq!(map.len(), 1);
}

/// `clear` empties a table with tombstones and live series alike, and
/// inserts afterwards start from an empty table.
#[test]
fn clear_after_churn_resets_the_filled_count() {
    let map = map(10);
    let guard = map.pin();
    for v in ["a", "b", "c"] {
        assert!(matches!(
            map.get_or_insert(&[v], || 0, &guard),
            Insert::Series(_)
        ));
    }
    assert!(map.remove(&["b"], &guard));
    assert_eq!(map.clear(&guard), 2);
    assert_eq!((*map.lock_writer(), map.len()), (0, 0));
    assert!(matches!(
        map.get_or_insert(&["b"], || 7, &guard),
        Insert::Series(_)
    ));
    assert_eq!(find(&map, "b", &guard).map(|n| n.value), Some(7));
    assert!(find(&map, "a", &guard).is_none());
}
