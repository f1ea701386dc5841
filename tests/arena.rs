//! The per-CPU counter arena behind the registry's counter series: every
//! series gets its own arena slot, series are independent, the arena grows
//! by whole chunks of 512 slots (a 4 KiB page per shard), removed series give
//! their slot back once the last handle is gone (and not before), and a slot
//! is zeroed when it is handed out again.
//!
//! Removed series are destroyed through the epoch collector; the tests push
//! it along with `Family::collect_garbage` (hidden, for tests) and wait for
//! reclamation in bounded loops.

use metricz::{Counter, CounterVec, Registry};
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::thread;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Slots per arena chunk.
const SLOTS: usize = 512;
/// Bytes of one chunk row (one shard's 512 words).
const ROW: usize = 4096;

/// A chunk's fixed part: its row directory's pointer and length (16 bytes)
/// and its slot bitmap (8 words of 512 bits, each padded to its own cache
/// line, as `CachePadded` pads), rounded up to that alignment.
const CHUNK_HEADER: usize = {
    let line = std::mem::size_of::<crossbeam_utils::CachePadded<u64>>();
    (16 + 8 * line).next_multiple_of(line)
};

/// The registry's installed arena chunks, after checking that its arena
/// bytes are exactly those chunks (each a directory of `shards` row
/// pointers and a header) and their installed rows, at most one per shard
/// per chunk.
fn chunks(reg: &Registry, shards: usize) -> usize {
    let (chunks, rows) = reg.counter_arena_rows();
    assert!(rows <= chunks * shards, "{rows} rows in {chunks} chunks");
    assert_eq!(
        reg.counter_arena_bytes(),
        rows * ROW + chunks * (shards * 8 + CHUNK_HEADER),
        "{chunks} chunks, {rows} rows"
    );
    chunks
}

/// Serialises the tests of this file. The epoch collector is global: a
/// thread of another test that is descheduled while pinned holds back the
/// reclamation that the churn tests count on, so they run one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Pushes the epoch collector along: enough flushes for this thread's
/// deferred destructions to be run (if no other thread holds a pin long).
fn reclaim(fam: &CounterVec, rounds: usize) {
    for _ in 0..rounds {
        fam.collect_garbage();
    }
}

/// Registry counter series live in arena slots, distinct live series have
/// distinct slots, and series are independent: 2000 series incremented
/// from 4 threads (racing to create them) read exactly their own counts.
#[test]
fn series_are_arena_backed_distinct_and_independent() -> TestResult {
    let _serial = serial();
    const SERIES: usize = if cfg!(miri) { 64 } else { 2000 };
    const THREADS: usize = 4;
    const SHARDS: usize = 4;
    let reg = Registry::builder()
        .cardinality_limit(2 * SERIES)
        .shards(SHARDS)
        .build();
    let fam = reg.counter_vec("indep_total", "Independence.", &["group", "id"])?;
    let labels: Vec<(String, String)> = (0..SERIES)
        .map(|i| (format!("g{}", i % 10), format!("s{i}")))
        .collect();

    thread::scope(|s| {
        for t in 0..THREADS {
            let (fam, labels) = (&fam, &labels);
            s.spawn(move || {
                for k in 0..SERIES {
                    // Threads 0 and 1 go forwards, 2 and 3 backwards, so
                    // they race to create the same series.
                    let i = if t < 2 { k } else { SERIES - 1 - k };
                    let (g, id) = &labels[i];
                    let series = fam.with(&[g, id]).expect("with");
                    for _ in 0..i % 3 {
                        series.inc();
                    }
                    series.add(i as u64 * (t as u64 + 1));
                }
            });
        }
    });

    assert_eq!(fam.len(), SERIES);
    assert_eq!(fam.overflowed(), 0);
    let mut slots = HashSet::new();
    for (i, (g, id)) in labels.iter().enumerate() {
        let series = fam.with(&[g, id])?;
        // Per thread t: i % 3 increments and i × (t + 1).
        let expected = (THREADS * (i % 3)) as u64 + i as u64 * 10;
        assert_eq!(series.get(), expected, "series {i}");
        assert_eq!(series.shards(), SHARDS);
        assert_eq!(series.storage_bytes(), SHARDS * 8, "series {i}");
        let slot = series
            .arena_slot()
            .unwrap_or_else(|| panic!("series {i} is not in the arena"));
        assert!(slot.1 < SLOTS, "series {i}: slot {slot:?}");
        assert!(slots.insert(slot), "series {i} shares slot {slot:?}");
    }
    // 2000 series + the family's overflow series: 4 chunks; slots of the
    // series that lost creation races were given back, not leaked.
    assert_eq!(chunks(&reg, SHARDS), (SERIES + 1).div_ceil(SLOTS));

    // A handle cloned from a series is the same arena counter.
    let (g, id) = &labels[7];
    let handle: Counter = (*fam.with(&[g, id])?).clone();
    assert_eq!(handle.arena_slot(), fam.with(&[g, id])?.arena_slot());
    handle.add(1000);
    assert_eq!(fam.with(&[g, id])?.get(), 1000 + THREADS as u64 + 70);
    // The neighbours did not see it.
    assert_eq!(fam.with(&[&labels[6].0, &labels[6].1])?.get(), 60);
    assert_eq!(fam.with(&[&labels[8].0, &labels[8].1])?.get(), 2 * 4 + 80);
    Ok(())
}

/// Unlabelled registry counters and the overflow series are arena-backed
/// too; standalone counters are not.
#[test]
fn single_counters_and_overflow_are_arena_backed() -> TestResult {
    let _serial = serial();
    assert_eq!(Counter::new().arena_slot(), None);
    assert_eq!(Counter::with_shards(8).storage_bytes(), 8 * 128);

    let reg = Registry::builder().cardinality_limit(2).shards(8).build();
    assert_eq!(reg.counter_arena_bytes(), 0);
    let hits = reg.counter("hits_total", "Hits.")?;
    assert!(hits.arena_slot().is_some());
    assert_eq!(hits.storage_bytes(), 8 * 8);
    assert_eq!(chunks(&reg, 8), 1);
    // No row until a CPU writes: only the directory and header.
    assert_eq!(reg.counter_arena_rows(), (1, 0));
    assert_eq!(reg.counter_arena_bytes(), 8 * 8 + CHUNK_HEADER);

    let fam = reg.counter_vec("limited_total", "Limited.", &["k"])?;
    let a = fam.with(&["a"])?.arena_slot();
    let b = fam.with(&["b"])?.arena_slot();
    fam.with(&["c"])?.add(3); // over the limit: the overflow series
    fam.with(&["d"])?.add(4);
    assert_eq!(fam.overflowed(), 2);
    let overflow = fam.with(&["e"])?;
    assert_eq!(overflow.get(), 7);
    let o = overflow.arena_slot();
    drop(overflow);
    let all = [hits.arena_slot(), a, b, o];
    assert!(all.iter().all(Option::is_some), "{all:?}");
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "{all:?}");
    assert_eq!(fam.with(&["a"])?.get(), 0);
    assert_eq!(fam.with(&["b"])?.get(), 0);
    assert_eq!(hits.get(), 0);
    Ok(())
}

/// Fills a two-label family of a fresh registry with `n` series at
/// `shards` shards; returns the registry's arena bytes.
fn arena_bytes_for(n: usize, shards: usize) -> Result<usize, Box<dyn std::error::Error>> {
    let reg = Registry::builder()
        .cardinality_limit(n)
        .shards(shards)
        .build();
    let fam = reg.counter_vec("mem_total", "Memory.", &["method", "path"])?;
    for i in 0..n {
        let method = format!("m{}", i % 100);
        let path = format!("/p/{}", i / 100);
        fam.with(&[&method, &path])?.inc();
    }
    assert_eq!(fam.len(), n);
    assert_eq!(fam.overflowed(), 0);
    let series = fam.with(&["m0", "/p/0"])?;
    assert_eq!(series.get(), 1);
    assert_eq!(series.shards(), shards);
    assert_eq!(series.storage_bytes(), shards * 8);
    assert_eq!(chunks(&reg, shards), n.div_ceil(SLOTS));
    Ok(reg.counter_arena_bytes())
}

/// 10 000 series take whole chunks of 512 slots: ⌈10 000 / 512⌉ = 20
/// chunks (the overflow series fits in them), a 4 KiB page per shard each.
#[test]
#[cfg_attr(miri, ignore = "sizing only, 10 000 series: too slow under Miri")]
fn ten_thousand_series_at_64_shards_fit_in_6_mib() -> TestResult {
    let _serial = serial();
    let bytes = arena_bytes_for(10_000, 64)?;
    // 20 chunks, each with at most 64 rows: a row per CPU that wrote.
    assert!(bytes <= 20 * (64 * 4096 + 64 * 8 + CHUNK_HEADER), "{bytes}");
    assert!(bytes <= 6 << 20, "{bytes} bytes");
    // Standalone counters would take 128 bytes per shard per series.
    assert!(bytes * 15 < 10_000 * Counter::with_shards(64).storage_bytes());
    Ok(())
}

#[test]
#[cfg_attr(miri, ignore = "sizing only, 10 000 series: too slow under Miri")]
fn ten_thousand_series_at_2_shards() -> TestResult {
    let _serial = serial();
    let bytes = arena_bytes_for(10_000, 2)?;
    assert!(bytes <= 20 * (2 * 4096 + 2 * 8 + CHUNK_HEADER), "{bytes}");
    Ok(())
}

/// Create, count, remove, reclaim — 5000 times with distinct label values:
/// the slots are reused (the arena stays at one chunk) and every fresh
/// series reads 0 although its slot held the last series' count.
#[test]
fn churn_reuses_zeroed_slots() -> TestResult {
    let _serial = serial();
    const ROUNDS: usize = if cfg!(miri) { 20 } else { 5000 };
    const SHARDS: usize = 8;
    let reg = Registry::builder().shards(SHARDS).build();
    let fam = reg.counter_vec("churn_total", "Churn.", &["id"])?;
    // The family's overflow series takes the first slot.
    assert_eq!(chunks(&reg, SHARDS), 1);
    let mut slots = HashMap::new();
    for i in 0..ROUNDS {
        let id = format!("c{i}");
        let series = fam.with(&[&id])?;
        assert_eq!(series.get(), 0, "round {i}: fresh series not zeroed");
        let slot = series.arena_slot().expect("arena-backed");
        *slots.entry(slot).or_insert(0usize) += 1;
        series.add(i as u64 + 1);
        assert_eq!(series.get(), i as u64 + 1);
        drop(series);
        assert!(fam.remove(&[&id])?);
        reclaim(&fam, 4);
        assert_eq!(
            chunks(&reg, SHARDS),
            1,
            "round {i}: slots not reused ({} distinct so far)",
            slots.len()
        );
    }
    assert!(fam.is_empty());
    // Reuse, not just room in the first chunk: far fewer distinct slots
    // than series.
    assert!(slots.len() < SLOTS, "{} distinct slots", slots.len());
    assert!(slots.values().any(|&n| n > 1));
    Ok(())
}

/// Concurrent churn: threads create, count, check and remove their own
/// series while others do the same; every fresh series starts at 0 and
/// reads exactly its own count, and slots are reused.
#[test]
fn concurrent_churn_fresh_series_are_zero_and_exact() -> TestResult {
    let _serial = serial();
    const THREADS: usize = 4;
    const ROUNDS: usize = if cfg!(miri) { 8 } else { 1000 };
    const SHARDS: usize = 4;
    let reg = Registry::builder().shards(SHARDS).build();
    let fam = reg.counter_vec("cchurn_total", "Concurrent churn.", &["t", "id"])?;
    thread::scope(|s| {
        for t in 0..THREADS {
            let fam = &fam;
            s.spawn(move || {
                let t_label = t.to_string();
                for i in 0..ROUNDS {
                    let id = i.to_string();
                    let series = fam.with(&[&t_label, &id]).expect("with");
                    assert_eq!(series.get(), 0, "thread {t} round {i}: not zeroed");
                    let n = (t * ROUNDS + i) as u64 + 1;
                    series.add(n);
                    series.inc();
                    assert_eq!(series.get(), n + 1, "thread {t} round {i}");
                    drop(series);
                    assert!(fam.remove(&[&t_label, &id]).expect("remove"));
                    reclaim(fam, 2);
                }
            });
        }
    });
    assert!(fam.is_empty());
    // 4000 series went through. How far reclamation lagged behind the
    // removals depends on scheduling (a pinned thread that is descheduled
    // holds the epoch back), but no slot may leak: once the collector has
    // caught up, every slot of the installed chunks but the overflow
    // series' is free again, so that many new series fit without a new
    // chunk, each zeroed.
    let installed = chunks(&reg, SHARDS);
    assert!(
        (1..=(THREADS * ROUNDS + 1).div_ceil(SLOTS)).contains(&installed),
        "{installed} chunks"
    );
    reclaim(&fam, 256);
    // Under Miri a few new series, not all 511: minutes there.
    let fill = if cfg!(miri) {
        16
    } else {
        installed * SLOTS - 1
    };
    for i in 0..fill {
        reclaim(&fam, 2);
        let id = format!("after{i}");
        let series = fam.with(&["main", &id])?;
        assert_eq!(series.get(), 0, "new series {i}");
        series.inc();
    }
    assert_eq!(
        chunks(&reg, SHARDS),
        installed,
        "slots of removed series leaked"
    );
    Ok(())
}

/// A handle kept from a removed series keeps its slot: no new series gets
/// it while the handle lives, the handle still counts (privately), and the
/// slot is handed out again — zeroed — once the handle is dropped.
#[test]
fn kept_handle_pins_its_slot() -> TestResult {
    let _serial = serial();
    const SHARDS: usize = 4;
    // More than a chunk's 512 slots: a second chunk. Under Miri, a few
    // series in the first chunk (600 take minutes there).
    const NEW: usize = if cfg!(miri) { 8 } else { 600 };
    const CHUNKS: usize = if cfg!(miri) { 1 } else { 2 };
    let reg = Registry::builder().shards(SHARDS).build();
    let fam = reg.counter_vec("kept_total", "Kept.", &["id"])?;
    let kept: Counter = (*fam.with(&["a"])?).clone();
    let a_slot = kept.arena_slot().expect("arena-backed");
    kept.add(7);
    assert!(fam.remove(&["a"])?);
    reclaim(&fam, 64);
    assert_eq!(kept.get(), 7);

    // Chunk 0 fills completely (overflow + a + 510 new) and a second one
    // is installed: a's slot was not free.
    for i in 0..NEW {
        let id = format!("n{i}");
        let series = fam.with(&[&id])?;
        assert_ne!(series.arena_slot(), Some(a_slot), "series {i} got a's slot");
        assert_eq!(series.get(), 0, "series {i}");
        series.add(1000 + i as u64);
    }
    assert_eq!(chunks(&reg, SHARDS), CHUNKS);

    // The kept handle still counts, into its own slot only.
    kept.inc();
    assert_eq!(kept.get(), 8);
    for i in 0..NEW {
        let id = format!("n{i}");
        assert_eq!(fam.with(&[&id])?.get(), 1000 + i as u64, "series {i}");
    }
    // "a" again is a new series, not the detached one.
    let a2 = fam.with(&["a"])?;
    assert_eq!(a2.get(), 0);
    assert_ne!(a2.arena_slot(), Some(a_slot));
    drop(a2);
    assert_eq!(kept.get(), 8);

    // Dropping the last handle gives the slot back: a later new series
    // gets it, zeroed.
    drop(kept);
    let mut found = None;
    for round in 0..1000 {
        reclaim(&fam, 4);
        let id = format!("r{round}");
        let series = fam.with(&[&id])?;
        if series.arena_slot() == Some(a_slot) {
            assert_eq!(series.get(), 0, "a's slot handed out with its old count");
            found = Some(round);
            break;
        }
    }
    assert!(
        found.is_some(),
        "a's slot {a_slot:?} never handed out again"
    );
    // No chunk was added for the new series: freed slots come first.
    assert_eq!(chunks(&reg, SHARDS), CHUNKS);
    Ok(())
}

/// `take` on an arena counter returns the count (from every shard) and
/// resets it; `clear` then re-creating gives zeroed series in reused slots.
#[test]
fn take_and_clear() -> TestResult {
    let _serial = serial();
    const SERIES: usize = if cfg!(miri) { 16 } else { 100 };
    const THREADS: usize = 4;
    const SHARDS: usize = 2;
    let reg = Registry::builder().shards(SHARDS).build();
    let fam = reg.counter_vec("take_total", "Take.", &["id"])?;
    let ids: Vec<String> = (0..SERIES).map(|i| format!("t{i}")).collect();
    let count_all = |fam: &CounterVec| {
        thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| {
                    for (i, id) in ids.iter().enumerate() {
                        let series = fam.with(&[id]).expect("with");
                        for _ in 0..=i % 5 {
                            series.inc();
                        }
                    }
                });
            }
        });
    };
    let expected = |i: usize| (THREADS * (i % 5 + 1)) as u64;

    count_all(&fam);
    for (i, id) in ids.iter().enumerate() {
        let series = fam.with(&[id])?;
        assert_eq!(series.take(), expected(i), "series {i}");
        assert_eq!(series.get(), 0, "series {i} after take");
        assert_eq!(series.take(), 0);
        series.add(5);
        assert_eq!(series.get(), 5);
    }

    count_all(&fam);
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(fam.with(&[id])?.get(), expected(i) + 5, "series {i}");
    }
    let mut before: HashSet<_> = ids
        .iter()
        .map(|id| fam.with(&[id]).map(|s| s.arena_slot()))
        .collect::<Result<_, _>>()?;
    assert_eq!(before.len(), SERIES);

    // Clear and re-create ten times (1000 series in all, more than a
    // chunk): the re-created series read 0 (even in slots whose words were
    // written on other CPUs' rows) and the slots are reused: some series
    // of each round after the first takes a slot a series of the round
    // before held (a thread searches the bitmap from its CPU's word, so
    // the first round, created here, need not land where the counting
    // threads' series did).
    let mut reused = 0;
    for round in 0..if cfg!(miri) { 2 } else { 10 } {
        assert_eq!(fam.clear(), SERIES, "round {round}");
        assert!(fam.is_empty());
        reclaim(&fam, 64);
        let mut now = HashSet::new();
        for (i, id) in ids.iter().enumerate() {
            let series = fam.with(&[id])?;
            assert_eq!(series.get(), 0, "round {round}: series {i} after clear");
            if round > 0 {
                reused += usize::from(before.contains(&series.arena_slot()));
            }
            now.insert(series.arena_slot());
        }
        before = now;
        assert_eq!(fam.len(), SERIES);
        count_all(&fam);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(
                fam.with(&[id])?.get(),
                expected(i),
                "round {round}: series {i}"
            );
        }
        assert_eq!(chunks(&reg, SHARDS), 1, "round {round}");
    }
    assert!(reused > 0, "no slot of a cleared series was reused");

    // A handle kept from a cleared series keeps working on its own slot.
    let kept: Counter = (*fam.with(&["t0"])?).clone();
    assert_eq!(kept.take(), expected(0));
    kept.add(9);
    assert_eq!(fam.clear(), SERIES);
    assert_eq!(kept.take(), 9);
    assert_eq!(kept.get(), 0);
    assert_eq!(fam.with(&["t0"])?.get(), 0);
    Ok(())
}

/// The CPUs this process may run on (its affinity mask), in order.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: `set` is a plain bit set, zeroed, then filled by the kernel.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
            0
        );
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Runs `f` on a thread pinned to `cpu`.
fn on_cpu(cpu: usize, f: impl FnOnce() + Send) {
    thread::scope(|s| {
        s.spawn(move || {
            // SAFETY: as in `allowed_cpus`; 0 is the calling thread.
            unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut set);
                assert_eq!(
                    libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set),
                    0
                );
            }
            f();
        });
    });
}

/// Rows follow the CPUs that write: a registry with 256 shards whose
/// series are written from one pinned CPU holds one row per chunk, a
/// second CPU adds one more per chunk, and nothing else; the counts read
/// back exactly, through `get` and through the collection walk's streamed
/// sums. Memory then follows the CPUs in use: with two CPUs writing, 256
/// shards cost at most 2× what 2 shards cost for the same series.
#[test]
#[cfg_attr(miri, ignore = "pins threads; 2000 series")]
fn rows_follow_the_cpus_that_write() -> TestResult {
    let _serial = serial();
    const SERIES: usize = 2000;
    let cpus = allowed_cpus();
    let mut bytes = Vec::new();
    for shards in [256, 2] {
        let reg = Registry::builder()
            .cardinality_limit(SERIES)
            .shards(shards)
            .build();
        let fam = reg.counter_vec("rows_total", "Rows.", &["id"])?;
        let ids: Vec<String> = (0..SERIES).map(|i| format!("s{i}")).collect();
        let count = |n: u64| {
            for id in &ids {
                fam.with(&[id]).expect("with").add(n);
            }
        };
        let per_chunk_rows = |reg: &Registry| {
            let n = chunks(reg, shards);
            assert_eq!(n, (SERIES + 1).div_ceil(SLOTS));
            let (_, rows) = reg.counter_arena_rows();
            assert_eq!(rows % n, 0, "{rows} rows in {n} chunks");
            rows / n
        };
        on_cpu(cpus[0], || count(1));
        assert_eq!(per_chunk_rows(&reg), 1, "{shards} shards");
        let mut expected = 1;
        if let Some(&second) = cpus.get(1) {
            on_cpu(second, || count(2));
            expected += 2;
            // Two rows unless two shards mask both CPUs onto one.
            let rows = if shards > cpus[0].max(second) || (cpus[0] ^ second) & (shards - 1) != 0 {
                2
            } else {
                1
            };
            assert_eq!(per_chunk_rows(&reg), rows, "{shards} shards");
        }
        for id in &ids {
            assert_eq!(fam.with(&[id])?.get(), expected);
        }
        let mut walked = 0;
        reg.collect(|family| {
            family.for_each_series(|mut series| {
                if let metricz::registry::Value::Counter(n) = series.value() {
                    assert_eq!(n, expected);
                    walked += 1;
                }
                Ok::<(), std::convert::Infallible>(())
            })
        })?;
        assert_eq!(walked, SERIES);
        bytes.push(reg.counter_arena_bytes());
    }
    assert!(
        bytes[0] <= 2 * bytes[1],
        "256 shards: {} B; 2 shards: {} B",
        bytes[0],
        bytes[1]
    );
    Ok(())
}
