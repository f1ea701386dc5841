//! Proof that restartable-sequence increments lose nothing, where loom
//! cannot look: the kernel's restart is outside the program. Built only
//! with `--cfg metricz_stress` (`scripts/test` runs it so), which widens
//! the window between an increment's load and its commit to a `pause` loop
//! of tens of microseconds, so preemptions, migrations and signals land
//! inside sequences all the time.
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
#![cfg(metricz_stress)]

use metricz::counter::rseq;
use metricz::Counter;
use std::cell::Cell;
use std::sync::atomic::{compiler_fence, AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Barrier, Mutex};
use std::time::Duration;

const THREADS: usize = 8;
const PER_THREAD: u64 = 3_000;

thread_local! {
    /// The counter this thread's SIGUSR1 handler increments (none: the
    /// handler does nothing). Const-initialised and without a destructor,
    /// so reading it in a signal handler is a plain thread-local load.
    static HANDLER_COUNTER: Cell<Option<&'static Counter>> = const { Cell::new(None) };
    /// Set while this thread is inside `inc` (between compiler fences), so
    /// the handler can tell that it interrupted an increment.
    static IN_INC: Cell<bool> = const { Cell::new(false) };
}

/// Increments made by signal handlers.
static HANDLER_INCS: AtomicU64 = AtomicU64::new(0);
/// Of those, the ones whose handler interrupted an increment of its own
/// thread (the nested case).
static NESTED_INCS: AtomicU64 = AtomicU64::new(0);

/// Async-signal-safe: thread-local loads, an rseq increment (a sequence on
/// the current CPU's slot, or a lock-free `fetch_add` on the fallback word)
/// and lock-free atomic adds; no allocation, no lock.
extern "C" fn on_signal(_: libc::c_int) {
    if let Some(counter) = HANDLER_COUNTER.with(Cell::get) {
        counter.inc();
        HANDLER_INCS.fetch_add(1, Relaxed);
        if IN_INC.with(Cell::get) {
            NESTED_INCS.fetch_add(1, Relaxed);
        }
    }
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
    // SAFETY: a set built with the libc macros, passed with its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Runs `THREADS` workers calling `inc` `PER_THREAD` times each, rotating
/// their affinity and yielding, while a flooder signals them (their handler
/// increments `in_handler`, if given) and a reader calls `read` (asserting
/// it never decreases). Returns the reader's observation count.
fn hammer(
    inc: impl Fn() + Sync,
    read: impl Fn() -> u64 + Sync,
    in_handler: Option<&'static Counter>,
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
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (inc, cpus, tids, start) = (&inc, &cpus, &tids, &start);
                let (running, end) = (&running, &end);
                s.spawn(move || {
                    HANDLER_COUNTER.with(|c| c.set(in_handler));
                    // SAFETY: `pthread_self` has no preconditions.
                    tids.lock()
                        .unwrap()
                        .push(unsafe { libc::pthread_self() } as usize);
                    start.wait();
                    for i in 0..PER_THREAD {
                        if i % 97 == 0 {
                            pin_to(cpus[(t + i as usize / 97) % cpus.len()]);
                        }
                        if i % 31 == 0 {
                            std::thread::yield_now();
                        }
                        flagged(inc);
                    }
                    running.fetch_sub(1, Relaxed);
                    end.wait();
                    // Signals sent before the flooder reached `end` were
                    // delivered before this thread returned from `wait`.
                    HANDLER_COUNTER.with(|c| c.set(None));
                })
            })
            .collect();
        s.spawn(|| {
            start.wait();
            let ids: Vec<usize> = tids.lock().unwrap().clone();
            while running.load(Relaxed) > 0 {
                for &id in &ids {
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
                assert!(now >= last, "a read went back from {last} to {now}");
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
    assert!(
        rseq::available(),
        "this stress test needs glibc's rseq registration (glibc 2.35+, Linux 4.18+)"
    );
    // The default shard count covers every possible CPU, so increments are
    // rseq sequences (fewer shards would take locked adds). Leaked: the
    // signal handler needs a `'static` counter.
    let counter: &'static Counter = Box::leak(Box::new(Counter::new()));
    let aborts_before = rseq::aborts();
    let (handled_before, nested_before) = (HANDLER_INCS.load(Relaxed), NESTED_INCS.load(Relaxed));
    let reads = hammer(|| counter.inc(), || counter.get(), Some(counter));
    let aborts = rseq::aborts() - aborts_before;
    // Every handler ran on a worker before it passed `end`, so before the
    // scope joined it: these counts are final.
    let handled = HANDLER_INCS.load(Relaxed) - handled_before;
    let nested = NESTED_INCS.load(Relaxed) - nested_before;
    assert_eq!(
        counter.get(),
        THREADS as u64 * PER_THREAD + handled,
        "lost increments ({handled} of them by signal handlers)"
    );
    assert!(
        aborts > 0,
        "the abort handler never ran: the test exercised nothing"
    );
    assert!(
        nested > 0,
        "no signal handler interrupted an increment: the nested case was not exercised"
    );
    assert!(reads > 0);
    eprintln!(
        "rseq stress: {aborts} aborts, {handled} handler increments ({nested} inside an \
         interrupted increment), {reads} concurrent reads, exact total"
    );
}

/// RS3, the negative control: the same load-add-store without arming loses
/// increments under the same load.
#[test]
fn unarmed_sequence_loses_increments() {
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
        None,
    );
    let expected = THREADS as u64 * PER_THREAD;
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
