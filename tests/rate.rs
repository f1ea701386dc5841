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
    // At 13.5 s slot 3 has left too.
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
fn late_marks_are_counted_not_dropped() {
    // A mark whose clock read says tick 0 arrives after its slot moved to
    // tick 10: it is counted into the newer slot. (Only when both marks hit
    // the same CPU shard; a migration in between puts the late mark in
    // another shard's tick-0 slot, out of the window. So: try a few times,
    // and require the late mark to be counted at least once.)
    let mut counted_late = false;
    for _ in 0..100 {
        let (rate, t0) = ten_seconds();
        rate.mark_at(4, t0 + ms(10_100));
        rate.mark_at(1, t0 + ms(100));
        let n = rate.count_in_window_at(t0 + ms(10_200));
        assert!(n == 4 || n == 5, "{n}");
        if n == 5 {
            counted_late = true;
            break;
        }
    }
    assert!(counted_late, "a late mark was never counted");
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
