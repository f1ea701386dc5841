//! The one place that names std or loom synchronisation primitives.
//!
//! Everything concurrent in metricz imports its atomics, `UnsafeCell`, mutex,
//! thread-locals and globals from here. Under `--cfg loom` they are loom's, so
//! the loom models in `loom-tests/` explore every interleaving of the real code;
//! in normal builds they are std's and cost nothing extra.

#![allow(unused_imports, unreachable_pub)]

/// Only for process-wide facts that loom never sees (the rseq offset, which
/// is cfg'd out under loom).
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::AtomicIsize;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{
    AtomicBool, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize,
};
#[cfg(not(loom))]
pub(crate) use std::sync::Mutex;
#[cfg(not(loom))]
pub(crate) use std::thread_local;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize,
};
#[cfg(loom)]
pub(crate) use loom::sync::Mutex;
#[cfg(loom)]
pub(crate) use loom::thread_local;

pub(crate) use std::sync::atomic::Ordering;

/// std's primitives in every build, for code that no loom model runs and
/// that must work in loom builds too (the exporters' background threads and
/// the HTTP server: loom's atomics panic outside a model).
pub(crate) mod std_only {
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize};
    pub(crate) use std::sync::mpsc;
    pub(crate) use std::sync::{Arc, Condvar, Mutex};
}

/// Reference counting is std's in every build: loom has no need to explore
/// `Arc`'s own orderings, and std's `Arc<[T]>` keeps a counter to one
/// allocation.
pub(crate) use std::sync::Arc;

/// One-time initialisation. std's in every build: under loom it only ever
/// lives inside a `global!` (a per-execution `lazy_static`), and loom runs
/// one thread at a time, so it never blocks.
pub(crate) use std::sync::OnceLock;

/// Declares a global `static` that loom can reset between executions.
///
/// In normal builds this is a plain `static` (so `$init` must be a constant
/// expression); under loom it is a `loom::lazy_static!`, which loom recreates
/// for every explored execution.
macro_rules! global {
    ($(#[$meta:meta])* static $name:ident: $ty:ty = $init:expr;) => {
        #[cfg(not(loom))]
        $(#[$meta])*
        static $name: $ty = $init;
        #[cfg(loom)]
        loom::lazy_static! {
            $(#[$meta])*
            static ref $name: $ty = $init;
        }
    };
}
pub(crate) use global;

/// One more than the highest CPU id this process may run on (its affinity
/// mask, read once), at least [`available_parallelism`]: CPU ids a thread
/// can report, so per-CPU slots indexed without masking cover them all.
/// Under loom, 2.
pub(crate) fn possible_cpus() -> usize {
    #[cfg(all(not(loom), target_os = "linux"))]
    {
        static CACHED: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        *CACHED.get_or_init(|| {
            // SAFETY: the kernel fills a zeroed set of the size passed.
            let highest = unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0
                {
                    (0..libc::CPU_SETSIZE as usize)
                        .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
                        .max()
                        .map_or(0, |cpu| cpu + 1)
                } else {
                    0
                }
            };
            highest.max(available_parallelism())
        })
    }
    #[cfg(not(all(not(loom), target_os = "linux")))]
    {
        available_parallelism()
    }
}

/// The number of CPUs the process may run on, used to size shards.
///
/// Under loom this is fixed at 2, so models are small and deterministic.
pub(crate) fn available_parallelism() -> usize {
    #[cfg(not(loom))]
    {
        // `std::thread::available_parallelism` reads cgroup files on Linux
        // (microseconds), so the answer is cached. Relaxed: the value is a
        // self-contained integer, and racing initialisers store the same one.
        static CACHED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        match CACHED.load(Ordering::Relaxed) {
            0 => {
                let n = std::thread::available_parallelism().map_or(1, |n| n.get());
                CACHED.store(n, Ordering::Relaxed);
                n
            }
            n => n,
        }
    }
    #[cfg(loom)]
    {
        2
    }
}
