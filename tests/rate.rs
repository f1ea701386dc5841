//! `Rate`: window arithmetic with explicit instants, errors, and exact counts
//! under concurrent marks.

use metricz::{Rate, RateError};
use std::time::{Duration, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A 10 s window of 10 one-second slots, and an instant at its start (the
/// rate's own start is a few microseconds earlier, far from any slot edge
/// used below).
fn ten_seconds() -> (Rate, Instant) {
    let rate = Rate::with_window(Duration::from_secs(10), 10).unwrap();
    (rate, Instant::now())
}

#[test]
fn window_slides_a_slot_at_a_time() {
    let (rate, t0) = ten_seconds();
    rate.mark_at(1, t0 + ms(100)); // slot 0
    rate.mark_at(10, t0 + ms(3_500)); // slot 3
    rate.mark_at(100, t0 + ms(9_900)); // slot 9
    assert_eq!(rate.count_in_window_at(t0 + ms(9_950)), 111);
    // At 10.5 s the window is slots 1..=10: slot 0 has left.
    assert_eq!(rate.count_in_window_at(t0 + ms(10_500)), 110);
    // At 14.1 s slot 3 has left too.
    assert_eq!(rate.count_in_window_at(t0 + ms(14_100)), 100);
    // Much later, nothing is left.
    assert_eq!(rate.count_in_window_at(t0 + ms(25_000)), 0);
}

#[test]
fn reused_slot_starts_from_the_new_events() {
    let (rate, t0) = ten_seconds();
    rate.mark_at(7, t0 + ms(200)); // tick 0, slot 0
    rate.mark_at(3, t0 + ms(10_200)); // tick 10, slot 0 again
    assert_eq!(rate.count_in_window_at(t0 + ms(10_300)), 3);
    rate.mark_at(2, t0 + ms(10_400));
    assert_eq!(rate.count_in_window_at(t0 + ms(10_500)), 5);
}

#[test]
fn late_marks_within_the_window_count() {
    let (rate, t0) = ten_seconds();
    rate.mark_at(4, t0 + ms(10_100)); // tick 10
                                      // A marker that read the clock at 9.1 s and arrives late: tick 9 is
                                      // still in the window ending at tick 10.
    rate.mark_at(1, t0 + ms(9_100));
    assert_eq!(rate.count_in_window_at(t0 + ms(10_200)), 5);
}

#[test]
fn stale_marks_neither_wipe_nor_inflate_the_window() {
    let (rate, t0) = ten_seconds();
    for s in 10..20 {
        rate.mark_at(50, t0 + ms(s * 1_000 + 100)); // ticks 10..=19
    }
    // A marker a whole window late (tick 0, whose slot now counts tick 10)
    // counts nothing and leaves the window as it was.
    rate.mark_at(1_000, t0 + ms(100));
    assert_eq!(rate.count_in_window_at(t0 + ms(19_500)), 500);
}

#[test]
fn events_a_window_old_are_not_counted() {
    let rate = Rate::with_window(Duration::from_secs(60), 60).unwrap();
    let t0 = Instant::now();
    rate.mark_at(1_000, t0 + ms(500)); // tick 0
    rate.mark_at(1, t0 + ms(60_500)); // tick 60: same slot, next lap
    assert_eq!(rate.count_in_window_at(t0 + ms(60_600)), 1);
    // And a slot not marked since an earlier lap is not counted either.
    rate.mark_at(7, t0 + ms(1_500)); // tick 1
    assert_eq!(rate.count_in_window_at(t0 + ms(61_600)), 1);
}

#[test]
fn huge_windows_do_not_overflow() {
    let rate = Rate::with_window(Duration::MAX, 60).unwrap();
    rate.mark();
    assert_eq!(rate.count_in_window(), 1);
    assert!(rate.per_second() >= 0.0);
    assert!(rate.window() >= Duration::from_secs(1 << 40));
    let _ = format!("{rate:?}");
}

#[test]
fn per_second_divides_by_the_time_covered() {
    let (rate, t0) = ten_seconds();
    for s in 0..10 {
        rate.mark_at(50, t0 + ms(s * 1_000 + 500));
    }
    // At 9.5 s the window covers 9.5 s (the rate is younger than 10 s):
    // 500 events / 9.5 s.
    let r = rate.per_second_at(t0 + ms(9_500));
    assert!((r - 500.0 / 9.5).abs() < 0.01, "{r}");
    // At 15.5 s: slots 6..=15 hold 4 marks of 50 = 200 events over 9.5 s
    // (nine whole slots and half the current one).
    let r = rate.per_second_at(t0 + ms(15_500));
    assert!((r - 200.0 / 9.5).abs() < 0.01, "{r}");
    assert_eq!(rate.per_second_at(t0 - ms(1)), 0.0);
}

#[test]
fn concurrent_marks_are_exact() {
    let (rate, t0) = ten_seconds();
    let at = t0 + ms(4_000);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| (0..10_000).for_each(|_| rate.mark_at(1, at)));
        }
    });
    assert_eq!(rate.count_in_window_at(at), 40_000);
}

#[test]
fn concurrent_rotation_keeps_every_new_event() {
    let (rate, t0) = ten_seconds();
    rate.mark_at(1_000, t0 + ms(500)); // tick 0: will expire
    let new = t0 + ms(10_500); // tick 10 reuses tick 0's slot
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| (0..5_000).for_each(|_| rate.mark_at(1, new)));
        }
    });
    assert_eq!(rate.count_in_window_at(new), 20_000);
}

#[test]
fn marks_saturate_per_slot_instead_of_wrapping() {
    let rate = Rate::with_window(Duration::from_secs(1), 1).unwrap();
    let t = Instant::now();
    rate.mark_at(u32::MAX, t);
    rate.mark_at(5, t);
    // One shard took both (same thread, same CPU unless it migrated in
    // between; then the two shards hold u32::MAX and 5).
    let n = rate.count_in_window_at(t);
    assert!(
        n == u64::from(u32::MAX) || n == u64::from(u32::MAX) + 5,
        "{n}"
    );
}

#[test]
fn window_errors_name_the_rule() {
    assert_eq!(
        Rate::with_window(Duration::from_secs(1), 0).unwrap_err(),
        RateError::NoSlots
    );
    assert_eq!(
        Rate::with_window(Duration::from_secs(1_000_000), 1 << 17).unwrap_err(),
        RateError::TooManySlots(1 << 17)
    );
    assert_eq!(
        Rate::with_window(Duration::from_millis(5), 10).unwrap_err(),
        RateError::SlotTooShort(Duration::from_micros(500))
    );
    let rate = Rate::with_window(Duration::from_secs(60), 12).unwrap();
    assert_eq!(rate.window(), Duration::from_secs(60));
    assert!(format!("{}", RateError::NoSlots).contains("slot"));
}

#[test]
fn default_rate_is_a_minute_and_clones_share() {
    let rate = Rate::new();
    assert_eq!(rate.window(), Duration::from_secs(60));
    let clone = rate.clone();
    clone.mark();
    rate.mark_n(2);
    assert_eq!(rate.count_in_window(), 3);
    assert!(rate.per_second() > 0.0);
}

/// A slot left idle for 2^31 laps or more (laps are kept modulo 2^32 in the
/// slot) is still taken over by the next mark, and a slot idle for just
/// under 2^31 laps too; a mark made late, behind a slot a newer mark has
/// moved on, still counts nothing.
#[test]
fn slots_idle_for_two_to_the_31_laps_take_new_marks() {
    for laps in [
        (1u64 << 31) - 5,
        (1 << 31) - 1,
        1 << 31,
        (1 << 31) + 5,
        (1 << 32) - 1,
        (1 << 32) + 3,
    ] {
        // One 1 ms slot: a lap is a millisecond.
        let rate = Rate::with_window(ms(1), 1).unwrap();
        let t0 = Instant::now();
        rate.mark_at(3, t0);
        let later = t0 + ms(laps);
        rate.mark_at(1, later);
        assert_eq!(rate.count_in_window_at(later), 1, "{laps} laps idle");
        rate.mark_at(2, later);
        assert_eq!(rate.count_in_window_at(later), 3, "{laps} laps idle");
        // A late mark (its instant a lap before the slot's) counts nothing
        // and leaves the newer lap's events in place.
        rate.mark_at(100, later - ms(1));
        assert_eq!(
            rate.count_in_window_at(later),
            3,
            "{laps} laps idle, late mark"
        );
    }
}
