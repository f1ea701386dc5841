//! Thread indices are reused after a thread exits. Alone in its own test binary
//! so no other test's threads take the freed index in between.

#[test]
fn thread_index_is_reused_after_exit() {
    let first = std::thread::spawn(metricz::cpu::thread_index)
        .join()
        .unwrap();
    let second = std::thread::spawn(metricz::cpu::thread_index)
        .join()
        .unwrap();
    // The first thread's index went back to the pool at its exit and the
    // smallest free index is handed out first.
    assert_eq!(first, second);
    // The main thread holds index 0 once it asks, so spawned threads that
    // asked before it got small indices too.
    assert!(first <= 1, "first spawned thread got index {first}");
}
