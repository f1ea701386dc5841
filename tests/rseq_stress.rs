//! Proof that restartable-sequence increments lose nothing, where loom
//! cannot look: the kernel's restart is outside the program. Built only
//! with `--cfg metricz_stress` (`scripts/test` runs it so), which widens
//! the window between an increment's load and its commit to a spin loop
//! (`pause` on x86_64, `yield` on aarch64) of microseconds, so preemptions,
//! migrations and signals land inside sequences all the time. On x86_64 it
//! runs natively; on aarch64 under a real kernel in full-system emulation
//! (`scripts/aarch64-emulated`, package `tests/emulated`; RS1–RS3 only,
//! since the histogram records with locked writes there for now), with the
//! knobs below raised: 1 M increments a test, at least 1 000 aborts, rare
//! yields, and a timer per worker.
//!
//! - more threads than cores, each rotating its CPU affinity and yielding,
//!   while another thread floods them with signals whose handler increments
//!   the same counter: the nested case, a sequence run by a signal handler
//!   that interrupted (and so aborted) a sequence of its own thread on the
//!   same CPU's slot;
//! - the abort handler must run (a non-zero abort count), some handler
//!   increments must have interrupted an increment, the total (the workers'
//!   increments plus the handlers', counted apart) must be exact, and a
//!   concurrent reader's values never decrease (RS1, RS2);
//! - a negative control runs the same sequence without arming it and must
//!   lose increments under the same load, so the test is known to be able
//!   to fail (RS3).
//!
//! The same load drives the histogram's restartable-sequence records (HS1,
//! HS2): in stress builds a count's 16-bit word holds at most 7 and moves
//! into its carry word from 4, so transfers (a sequence subtracting what a
//! locked add put in the carry word) and full words happen every few
//! records, on the same words the signal handlers record into, while a
//! reader takes intervals. Its negative control (HS3) runs the histogram
//! with its count sequences unarmed and must get the counts wrong.
#![cfg(metricz_stress)]

use metricz::counter::rseq;
use metricz::registry::Value;
use metricz::{Counter, Histogram, Registry};
use std::cell::Cell;
use std::sync::atomic::{compiler_fence, AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Barrier, Mutex};
use std::time::Duration;

const THREADS: usize = 8;
/// Increments per worker, unless `METRICZ_STRESS_PER_THREAD` says more
/// (the emulated aarch64 run, `scripts/aarch64-emulated`, asks for 1 M in
/// all).
const PER_THREAD: u64 = 3_000;

/// A number from the environment, else `default` (the emulated run's
/// `/init` sets them; see `scripts/aarch64-emulated`).
fn knob(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// [`PER_THREAD`], or `METRICZ_STRESS_PER_THREAD`.
fn per_thread() -> u64 {
    knob("METRICZ_STRESS_PER_THREAD", PER_THREAD)
}

/// A worker yields every this many increments: 31, or
/// `METRICZ_STRESS_YIELD_EVERY`. Under emulation a voluntary switch at a
/// yield (outside any sequence) would take the place of most of the
/// preemptions that abort sequences, so the emulated run yields rarely.
fn yield_every() -> u64 {
    knob("METRICZ_STRESS_YIELD_EVERY", 31).max(1)
}

/// Each worker's own timer period, µs: 0 (none), or
/// `METRICZ_STRESS_TIMER_US`. A high-resolution timer sends SIGUSR1 to
/// its worker a period after the worker's last handler returned, wherever
/// the worker is: a running worker is interrupted at once, inside a
/// sequence as often as it is in one. The flooder's signals are too few
/// under emulation (each of its system calls is slow there) to reach the
/// emulated run's abort count.
///
/// One-shot, re-armed by the handler as it returns, not periodic: a
/// periodic timer whose period is shorter than a handler's run keeps a
/// signal pending whenever a handler returns, so the worker runs handlers
/// back to back and its own loop never advances. Under emulation on a
/// loaded host that happens (a handler records into a histogram, two
/// widened sequences, and the virtual CPU may be descheduled in the middle
/// while the timer runs on), and is the likeliest cause of the one hang of
/// the emulated histogram run (HS1). Re-armed at the handler's end, each worker gets at least a period
/// of its own between two of its timer's signals.
fn timer_us() -> u64 {
    knob("METRICZ_STRESS_TIMER_US", 0)
}

/// Arms a one-shot timer (`CLOCK_MONOTONIC`) that sends SIGUSR1 to the
/// calling thread in `us` microseconds, and that the thread's signal
/// handler re-arms as it returns (see [`timer_us`]); `None` for 0.
fn arm_timer(us: u64) -> Option<libc::timer_t> {
    if us == 0 {
        return None;
    }
    // SAFETY: a zeroed `sigevent` filled in for SIGEV_THREAD_ID delivery
    // to the calling thread, and an `itimerspec` passed by reference; the
    // timer is deleted by `disarm` before the thread exits.
    unsafe {
        let mut event: libc::sigevent = std::mem::zeroed();
        event.sigev_notify = libc::SIGEV_THREAD_ID;
        event.sigev_signo = libc::SIGUSR1;
        event.sigev_notify_thread_id = libc::gettid();
        let mut timer: libc::timer_t = std::mem::zeroed();
        assert_eq!(
            libc::timer_create(libc::CLOCK_MONOTONIC, &mut event, &mut timer),
            0,
            "timer_create"
        );
        let period = libc::timespec {
            tv_sec: (us / 1_000_000) as libc::time_t,
            tv_nsec: (us % 1_000_000 * 1_000) as libc::c_long,
        };
        TIMER.with(|t| t.set(Some((timer as usize, period))));
        assert_eq!(rearm(), 0, "timer_settime");
        Some(timer)
    }
}

/// Starts the calling thread's timer's next period (from [`arm_timer`]),
/// if it has one: 0, or `timer_settime`'s -1. Async-signal-safe (a
/// thread-local load and `timer_settime`, which POSIX lists as such).
fn rearm() -> libc::c_int {
    let Some((timer, period)) = TIMER.with(Cell::get) else {
        return 0;
    };
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: period,
    };
    // SAFETY: a timer of this thread's, not yet deleted (`disarm` clears
    // `TIMER` first: a handler that interrupts it after that re-arms
    // nothing, and one that interrupts it before re-arms a live timer).
    unsafe { libc::timer_settime(timer as libc::timer_t, 0, &spec, std::ptr::null_mut()) }
}

/// Deletes a timer from [`arm_timer`]; a signal it raised before is
/// delivered at this system call's return, while the handler is still set.
fn disarm(timer: Option<libc::timer_t>) {
    TIMER.with(|t| t.set(None));
    if let Some(timer) = timer {
        // SAFETY: a timer this thread created and has not deleted.
        assert_eq!(unsafe { libc::timer_delete(timer) }, 0);
    }
}

/// The fewest aborts a sequence's stress run must count: 1, or
/// `METRICZ_STRESS_MIN_ABORTS` (the emulated run asks for 1 000).
fn min_aborts() -> u64 {
    knob("METRICZ_STRESS_MIN_ABORTS", 1)
}

thread_local! {
    /// What this thread's SIGUSR1 handler does (none: nothing): an
    /// increment of a counter or a record into a histogram, both
    /// async-signal-safe once the histogram's blocks exist. Const-initialised
    /// and without a destructor, so reading it in a signal handler is a
    /// plain thread-local load.
    static HANDLER: Cell<Option<&'static (dyn Fn() + Sync)>> = const { Cell::new(None) };
    /// Set while this thread is inside `inc` (between compiler fences), so
    /// the handler can tell that it interrupted an increment.
    static IN_INC: Cell<bool> = const { Cell::new(false) };
    /// This thread's timer (a `timer_t` as an address) and period, for
    /// the handler to re-arm; `None` without one.
    static TIMER: Cell<Option<(usize, libc::timespec)>> = const { Cell::new(None) };
}

/// Increments made by signal handlers.
static HANDLER_INCS: AtomicU64 = AtomicU64::new(0);
/// Of those, the ones whose handler interrupted an increment of its own
/// thread (the nested case).
static NESTED_INCS: AtomicU64 = AtomicU64::new(0);

/// Async-signal-safe: thread-local loads, an rseq increment (a sequence on
/// the current CPU's slot, or a lock-free `fetch_add` on the fallback word)
/// and lock-free atomic adds; no allocation, no lock. Last, it re-arms the
/// thread's timer, if any (see [`timer_us`]).
extern "C" fn on_signal(_: libc::c_int) {
    if let Some(handler) = HANDLER.with(Cell::get) {
        handler();
        HANDLER_INCS.fetch_add(1, Relaxed);
        if IN_INC.with(Cell::get) {
            NESTED_INCS.fetch_add(1, Relaxed);
        }
    }
    // A failure cannot be reported from here; the abort count shows a
    // timer that stopped.
    let _ = rearm();
}

/// Calls `inc` with [`IN_INC`] set around it. The compiler fences keep the
/// flag's stores on their side of the call as the signal handler (on this
/// thread) sees them.
fn flagged(inc: impl Fn()) {
    IN_INC.with(|f| f.set(true));
    compiler_fence(SeqCst);
    inc();
    compiler_fence(SeqCst);
    IN_INC.with(|f| f.set(false));
}

/// Serialises the tests: they share the signal handler's tallies, and HS3
/// switches the process's histogram count sequences to unarmed.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Installs the SIGUSR1 handler (without SA_RESTART, so signals really
/// interrupt).
fn install_handler() {
    // SAFETY: a plain sigaction with an async-signal-safe handler.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()),
            0
        );
    }
}

fn cpus() -> Vec<usize> {
    // SAFETY: the kernel fills a zeroed set of the size passed.
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

fn pin_to(cpu: usize) {
    set_affinity(0, cpu);
}

/// Lets the calling thread run on every CPU of `all` again (what
/// [`cpus`] read before it was pinned).
fn unpin(all: &[usize]) {
    // SAFETY: a set built with the libc macros, passed with its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in all {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Pins thread `tid` (0: the calling thread) to `cpu`.
fn set_affinity(tid: libc::pid_t, cpu: usize) {
    // SAFETY: a set built with the libc macros, passed with its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Fails the process (abort, after printing where every worker got to) if
/// `done` is not set within `METRICZ_STRESS_DEADLINE_S` (default 300 s): a
/// stress test that hangs must fail, not stall the test command.
fn watchdog(
    done: &AtomicBool,
    progress: &[AtomicU64; THREADS],
    running: &AtomicUsize,
    reads: &AtomicU64,
) {
    let deadline = Duration::from_secs(knob("METRICZ_STRESS_DEADLINE_S", 300));
    let started = std::time::Instant::now();
    while !done.load(Relaxed) {
        if started.elapsed() > deadline {
            let at: Vec<u64> = progress.iter().map(|p| p.load(Relaxed)).collect();
            eprintln!(
                "stress watchdog: not done after {deadline:?}: workers at {at:?} of {}, \
                 {} still running, {} reads, {} aborts, {} handler increments",
                per_thread(),
                running.load(Relaxed),
                reads.load(Relaxed),
                rseq::aborts(),
                HANDLER_INCS.load(Relaxed),
            );
            std::process::abort();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `THREADS` workers calling `inc` [`per_thread`] times each, rotating
/// their affinity and yielding, while a flooder signals them (their handler
/// run `in_handler`, if given) and a reader calls `read` (asserting, with
/// `monotone`, that it never decreases). Returns the reader's observation
/// count.
fn hammer(
    inc: impl Fn() + Sync,
    read: impl Fn() -> u64 + Sync,
    monotone: bool,
    in_handler: Option<&'static (dyn Fn() + Sync)>,
) -> u64 {
    install_handler();
    let cpus = cpus();
    let done = AtomicBool::new(false);
    let tids = Mutex::new(Vec::new());
    let start = Barrier::new(THREADS + 1);
    // Workers still incrementing; the flooder stops when it reaches 0, and
    // the workers stay alive (at `end`) until it has stopped, so no signal
    // is ever sent to a thread that has exited. Relaxed: only a stop flag;
    // the barrier orders the rest.
    let running = AtomicUsize::new(THREADS);
    let end = Barrier::new(THREADS + 1);
    let reads = AtomicU64::new(0);
    // Each worker's next increment, for the watchdog's report.
    let progress: [AtomicU64; THREADS] = std::array::from_fn(|_| AtomicU64::new(0));
    std::thread::scope(|s| {
        s.spawn(|| watchdog(&done, &progress, &running, &reads));
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (inc, cpus, tids, start) = (&inc, &cpus, &tids, &start);
                let (running, end, progress) = (&running, &end, &progress[t]);
                s.spawn(move || {
                    HANDLER.with(|c| c.set(in_handler));
                    // SAFETY: `pthread_self` and `gettid` have no
                    // preconditions.
                    tids.lock()
                        .unwrap()
                        .push((unsafe { libc::pthread_self() } as usize, unsafe {
                            libc::gettid()
                        }));
                    start.wait();
                    let yield_every = yield_every();
                    let timer = arm_timer(timer_us());
                    for i in 0..per_thread() {
                        if i % 97 == 0 {
                            pin_to(cpus[(t + i as usize / 97) % cpus.len()]);
                        }
                        if i % yield_every == 0 {
                            std::thread::yield_now();
                        }
                        flagged(inc);
                        progress.store(i + 1, Relaxed);
                    }
                    disarm(timer);
                    running.fetch_sub(1, Relaxed);
                    end.wait();
                    // Signals sent before the flooder reached `end` were
                    // delivered before this thread returned from `wait`.
                    HANDLER.with(|c| c.set(None));
                })
            })
            .collect();
        s.spawn(|| {
            start.wait();
            let ids: Vec<(usize, libc::pid_t)> = tids.lock().unwrap().clone();
            let mut round = 0usize;
            while running.load(Relaxed) > 0 {
                round += 1;
                for (k, &(id, tid)) in ids.iter().enumerate() {
                    // Move the worker, wherever it is (inside a sequence,
                    // or between a transfer's two halves): the kernel
                    // migrates a running thread off a CPU its affinity no
                    // longer allows.
                    set_affinity(tid, cpus[(round + k) % cpus.len()]);
                    // SAFETY: the ids are of this scope's workers, which
                    // stay alive until this thread reaches `end` below.
                    unsafe { libc::pthread_kill(id as libc::pthread_t, libc::SIGUSR1) };
                }
                std::thread::sleep(Duration::from_micros(50));
            }
            end.wait();
        });
        s.spawn(|| {
            let mut last = 0;
            while !done.load(Relaxed) {
                let now = read();
                assert!(
                    !monotone || now >= last,
                    "a read went back from {last} to {now}"
                );
                last = now;
                reads.fetch_add(1, Relaxed);
            }
        });
        for w in workers {
            w.join().unwrap();
        }
        done.store(true, Relaxed);
    });
    reads.load(Relaxed)
}

/// RS1 + RS2: rseq increments under preemption, migration and signals
/// (whose handler increments the same counter, nested inside interrupted
/// increments) are exact, the abort path runs, and reads never decrease.
#[test]
fn rseq_increments_lose_nothing_under_preemption_migration_and_signals() {
    let _serial = serial();
    // The default shard count covers every possible CPU, so increments are
    // rseq sequences (fewer shards would take locked adds). Leaked: the
    // signal handler needs a `'static` counter.
    let counter: &'static Counter = Box::leak(Box::new(Counter::new()));
    rs1("rseq stress", counter, || counter.get());
}

/// RS1' + RS2': the same for a registry counter, whose words are arena
/// rows installed per CPU: one sequence reads the CPU, then that CPU's
/// entry of the chunk's row directory, and commits the add to the slot's
/// word in that row (a restart re-reads both); a CPU without a row leaves
/// the sequence, installs it and runs it again. Every CPU's row is
/// installed first (installing allocates, which a signal handler must
/// not). Reads alternate between `get` and the collection walk's streamed
/// row sums.
#[test]
fn rseq_arena_increments_lose_nothing_under_preemption_migration_and_signals() {
    let _serial = serial();
    let reg: &'static Registry = Box::leak(Box::new(Registry::new()));
    let counter: &'static Counter =
        Box::leak(Box::new(reg.counter("stress_total", "Stress.").unwrap()));
    assert!(counter.arena_slot().is_some());
    let all = cpus();
    for &cpu in &all {
        pin_to(cpu);
        counter.add(0);
    }
    unpin(&all);
    let (_, rows) = reg.counter_arena_rows();
    assert_eq!(rows, all.len(), "one row per CPU");
    let flip = AtomicBool::new(false);
    rs1("rseq arena stress", counter, || {
        if flip.fetch_xor(true, Relaxed) {
            counter.get()
        } else {
            let mut value = 0;
            reg.collect(|family| {
                family.for_each_series(|mut series| {
                    if let Value::Counter(n) = series.value() {
                        value = n;
                    }
                    Ok::<(), std::convert::Infallible>(())
                })
            })
            .unwrap();
            value
        }
    });
    assert_eq!(reg.counter_arena_rows().1, rows, "no row added meanwhile");
}

/// Hammers `counter` (RS1's load), then checks the total, that aborts and
/// nested handler increments happened, and that `read` never went back.
fn rs1(name: &str, counter: &'static Counter, read: impl Fn() -> u64 + Sync) {
    assert!(
        rseq::available(),
        "this stress test needs glibc's rseq registration (glibc 2.35+, Linux 4.18+)"
    );
    let aborts_before = rseq::aborts();
    let (handled_before, nested_before) = (HANDLER_INCS.load(Relaxed), NESTED_INCS.load(Relaxed));
    let reads = hammer(|| counter.inc(), read, true, Some(leak(|| counter.inc())));
    let aborts = rseq::aborts() - aborts_before;
    // Every handler ran on a worker before it passed `end`, so before the
    // scope joined it: these counts are final.
    let handled = HANDLER_INCS.load(Relaxed) - handled_before;
    let nested = NESTED_INCS.load(Relaxed) - nested_before;
    assert_eq!(
        counter.get(),
        THREADS as u64 * per_thread() + handled,
        "lost increments ({handled} of them by signal handlers)"
    );
    assert!(
        aborts >= min_aborts(),
        "{aborts} aborts, fewer than {}: the test exercised too little",
        min_aborts()
    );
    assert!(
        nested > 0,
        "no signal handler interrupted an increment: the nested case was not exercised"
    );
    assert!(reads > 0);
    eprintln!(
        "{name}: {} increments, {aborts} aborts, {handled} handler increments ({nested} \
         inside an interrupted increment), {reads} concurrent reads, exact total",
        counter.get()
    );
}

/// RS3, the negative control: the same load-add-store without arming loses
/// increments under the same load.
#[test]
fn unarmed_sequence_loses_increments() {
    let _serial = serial();
    let slots: Vec<AtomicU64> = (0..=cpus().into_iter().max().unwrap())
        .map(|_| AtomicU64::new(0))
        .collect();
    let fallback = AtomicU64::new(0);
    let total = || slots.iter().map(|s| s.load(Relaxed)).sum::<u64>() + fallback.load(Relaxed);
    hammer(
        || {
            // SAFETY: `slots` are aligned atomics that outlive the call,
            // written only here (the point is that this loses updates).
            let added = unsafe { rseq::unarmed_add(slots.as_ptr(), 8, slots.len(), 1) };
            if !added {
                fallback.fetch_add(1, Relaxed);
            }
        },
        || 0,
        false,
        None,
    );
    let expected = THREADS as u64 * per_thread();
    let got = total();
    assert!(
        got < expected,
        "the unarmed sequence lost nothing ({got} of {expected}): the stress \
         test could not tell a broken sequence from a working one"
    );
    eprintln!(
        "negative control: {} of {expected} increments lost",
        expected - got
    );
}

/// `f` as a `'static` signal-handler action.
fn leak(f: impl Fn() + Sync + 'static) -> &'static (dyn Fn() + Sync) {
    Box::leak(Box::new(f))
}

/// The value the signal handlers record: in the workers' hot bucket.
const HOT: u64 = 1_000;

/// A leaked histogram with a shard per CPU (restartable-sequence records),
/// warmed on every CPU the process may use: each CPU's shard, the blocks
/// and carry blocks of the values below, and the interval baseline, so the
/// signal handler's records allocate nothing.
fn warm_histogram() -> &'static Histogram {
    let h: &'static Histogram = Box::leak(Box::new(Histogram::new()));
    let all = cpus();
    for &cpu in &all {
        pin_to(cpu);
        for v in [HOT, HOT + 1, 70_000] {
            // More than a 16-bit word holds in stress builds (7): straight
            // into the carry word, which this allocates.
            h.record_n(v, 8);
        }
    }
    unpin(&all);
    h.take_interval();
    h
}

/// Hammers `h` (workers record `HOT`, `HOT + 1` and `70_000` in turn, the
/// handlers `HOT`) while the reader alternates `count()` with taking
/// intervals, asserting that what it has taken plus `count()` never
/// decreases. Returns (records made, their sum, counted: taken + left,
/// summed: taken + left, aborts, nested handler records, reads, transfers
/// undone because the thread had moved off the block's CPU).
fn hammer_histogram(h: &'static Histogram, monotone: bool) -> [u64; 8] {
    let taken = AtomicU64::new(0);
    let taken_sum = AtomicU64::new(0);
    let calls = AtomicU64::new(0);
    let per_worker = AtomicU64::new(0);
    let aborts_before = rseq::aborts();
    let undone_before = metricz::histogram::transfers_undone();
    let (handled_before, nested_before) = (HANDLER_INCS.load(Relaxed), NESTED_INCS.load(Relaxed));
    let reads = hammer(
        || {
            let i = per_worker.fetch_add(1, Relaxed);
            h.record([HOT, HOT + 1, 70_000][(i % 3) as usize]);
        },
        || {
            // Only this thread takes, so its taken total plus the count
            // since its last take is the running total of records.
            if calls.fetch_add(1, Relaxed).is_multiple_of(8) {
                let interval = h.take_interval();
                taken.fetch_add(interval.count(), Relaxed);
                taken_sum.fetch_add(interval.sum(), Relaxed);
            }
            taken.load(Relaxed) + h.count()
        },
        monotone,
        Some(leak(move || h.record(HOT))),
    );
    let handled = HANDLER_INCS.load(Relaxed) - handled_before;
    let nested = NESTED_INCS.load(Relaxed) - nested_before;
    let made = THREADS as u64 * per_thread();
    // The workers' values, by `per_worker`'s global order, plus the
    // handlers' `HOT`s.
    let made_sum = (0..made)
        .map(|i| [HOT, HOT + 1, 70_000][(i % 3) as usize])
        .sum::<u64>()
        + handled * HOT;
    let left = h.snapshot();
    [
        made + handled,
        made_sum,
        taken.load(Relaxed) + left.count(),
        taken_sum.load(Relaxed) + left.sum(),
        rseq::aborts() - aborts_before,
        nested,
        reads,
        metricz::histogram::transfers_undone() - undone_before,
    ]
}

/// HS1 + HS2: histogram records (two sequences each, the count's with
/// transfers and full words every few records) under preemption,
/// migration and signals (handlers recording into the same bucket, nested
/// inside interrupted records) are exact, bucket by bucket and in the sum;
/// intervals taken meanwhile partition them; the reader's running total
/// never decreases; the abort path runs.
#[test]
fn histogram_rseq_records_lose_nothing_under_preemption_migration_and_signals() {
    let _serial = serial();
    assert!(
        rseq::available(),
        "this stress test needs glibc's rseq registration (glibc 2.35+, Linux 4.18+)"
    );
    let h = warm_histogram();
    let [made, made_sum, counted, summed, aborts, nested, reads, undone] =
        hammer_histogram(h, true);
    assert_eq!(counted, made, "lost or duplicated histogram records");
    assert_eq!(summed, made_sum, "lost or duplicated sums");
    assert!(
        aborts >= min_aborts(),
        "{aborts} aborts, fewer than {}: the test exercised too little",
        min_aborts()
    );
    assert!(nested > 0, "no signal handler interrupted a record");
    assert!(
        undone > 0,
        "no transfer found its thread moved: the undo path was not exercised"
    );
    assert!(reads > 0);
    assert!(
        !h.fallback_shard_in_use(),
        "a registered thread used the fallback shard"
    );
    eprintln!(
        "histogram rseq stress: {made} records ({} by signal handlers, {nested} nested), \
         {aborts} aborts, {undone} transfers undone, {reads} reads, exact counts and sums \
         across intervals",
        made - THREADS as u64 * per_thread()
    );
}

/// HS3, the negative control: the same load with the count sequences
/// unarmed gets the histogram's counts wrong (lost records, or transfers
/// overwritten so that records count twice).
///
/// It runs in a child process of this test binary. With the count
/// sequences unarmed, two CPUs' records can land in one 16-bit word and
/// drive it past what the record loop expects, and a record (a signal
/// handler's among them) may then never finish: one more way a broken
/// sequence shows itself, but not one a thread can be pulled out of. So the
/// parent kills the child after a deadline and counts a hang as the broken
/// sequence detected; a child that finishes must have found the counts
/// wrong (it asserts so), and a child that fails fails the test.
#[test]
fn unarmed_histogram_records_get_counts_wrong() {
    if std::env::var_os(HS3_CHILD).is_some() {
        unarmed_histogram_run();
        return;
    }
    let _serial = serial();
    let deadline = Duration::from_secs(knob("METRICZ_STRESS_HS3_TIMEOUT_S", 60));
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "unarmed_histogram_records_get_counts_wrong",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HS3_CHILD, "1")
        .spawn()
        .expect("the negative control's child process starts");
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.success(),
                "the negative control's child failed: {status}"
            );
            return;
        }
        if started.elapsed() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            eprintln!(
                "histogram negative control: hung, killed after {deadline:?}: an unarmed \
                 sequence left a record in a loop it never left"
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Set in HS3's child process (see [`unarmed_histogram_records_get_counts_wrong`]).
const HS3_CHILD: &str = "METRICZ_STRESS_HS3_CHILD";

/// HS3's body, in the child process.
fn unarmed_histogram_run() {
    let _serial = serial();
    let h = warm_histogram();
    rseq::set_unarmed_for_tests(true);
    struct Rearm;
    impl Drop for Rearm {
        fn drop(&mut self) {
            rseq::set_unarmed_for_tests(false);
        }
    }
    let _rearm = Rearm;
    // The reader's running total may go backwards when counts are wrong:
    // only the end result is checked.
    let [made, _, counted, ..] = hammer_histogram(h, false);
    assert_ne!(
        counted, made,
        "the unarmed histogram sequences lost nothing: the stress test could not tell \
         a broken sequence from a working one"
    );
    eprintln!(
        "histogram negative control: counted {counted} of {made} records ({:+})",
        counted as i64 - made as i64
    );
}
