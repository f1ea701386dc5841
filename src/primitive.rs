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
    AtomicBool, AtomicI64, AtomicPtr, AtomicU16, AtomicU32, AtomicU64, AtomicUsize,
};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::thread_local;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicI64, AtomicPtr, AtomicU16, AtomicU32, AtomicU64, AtomicUsize,
};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
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

/// Gives up the rest of the time slice in a wait loop (loom's, under loom,
/// so its models can make progress).
#[inline]
pub(crate) fn yield_now() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::thread::yield_now();
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

/// One more than the highest CPU id the machine can have: the kernel's
/// *possible* CPUs (`/sys/devices/system/cpu/possible`, as tcmalloc and
/// librseq size their per-CPU data), at least [`available_parallelism`].
/// Read once per process. Any CPU id a thread can report is below it,
/// whatever the affinity of the thread that asked first (a thread pinned to
/// one CPU in a thread-per-core server, or a cpuset such as CPUs 64–127), so
/// per-CPU slots indexed without masking cover them all — where the sysfs
/// list was read ([`possible_cpus_exact`]). Elsewhere it is an estimate:
/// `sysconf(_SC_NPROCESSORS_CONF)` (which glibc may answer with a count of
/// CPUs rather than one past the highest id) or the calling thread's
/// affinity, whichever is larger. Under loom, 2.
pub(crate) fn possible_cpus() -> usize {
    possible().0
}

/// Whether [`possible_cpus`] was read from the kernel's possible list, so
/// that every CPU id is below it (under loom, true).
pub(crate) fn possible_cpus_exact() -> bool {
    possible().1
}

/// `(possible CPUs, exact)`, read once.
fn possible() -> (usize, bool) {
    #[cfg(all(not(loom), unix))]
    {
        static CACHED: std::sync::OnceLock<(usize, bool)> = std::sync::OnceLock::new();
        *CACHED.get_or_init(|| {
            let floor = available_parallelism();
            match possible_from_sysfs() {
                Some(n) => (n.max(floor), true),
                None => {
                    let estimate = configured_cpus().unwrap_or(0).max(affinity_end());
                    (estimate.max(floor), false)
                }
            }
        })
    }
    #[cfg(loom)]
    {
        (available_parallelism(), true)
    }
    #[cfg(all(not(loom), not(unix)))]
    {
        (available_parallelism(), false)
    }
}

/// One more than the highest CPU in the kernel's possible mask, e.g. 128 for
/// `0-127`. Not under Miri, whose isolation refuses file reads.
#[cfg(all(not(loom), unix))]
fn possible_from_sysfs() -> Option<usize> {
    if cfg!(miri) || !cfg!(target_os = "linux") {
        return None;
    }
    let list = std::fs::read_to_string("/sys/devices/system/cpu/possible").ok()?;
    cpu_list_end(&list)
}

/// One more than the highest CPU in the calling thread's affinity mask (0
/// where it cannot be read): a floor for the estimate only.
#[cfg(all(not(loom), unix))]
fn affinity_end() -> usize {
    #[cfg(all(target_os = "linux", not(miri)))]
    {
        // SAFETY: the kernel fills a zeroed set of the size passed.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
                (0..libc::CPU_SETSIZE as usize)
                    .rfind(|&cpu| libc::CPU_ISSET(cpu, &set))
                    .map_or(0, |cpu| cpu + 1)
            } else {
                0
            }
        }
    }
    #[cfg(not(all(target_os = "linux", not(miri))))]
    {
        0
    }
}

/// `sysconf(_SC_NPROCESSORS_CONF)`: the CPUs configured (possible or
/// present, by libc), whatever the calling thread's affinity.
#[cfg(all(not(loom), unix))]
fn configured_cpus() -> Option<usize> {
    // SAFETY: `sysconf` only reads a system setting.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
    usize::try_from(n).ok().filter(|&n| n > 0)
}

/// One more than the highest CPU id in a kernel CPU list (`0-3,8,10-11`
/// gives 12), or `None` if the list is malformed or empty.
#[cfg_attr(any(loom, not(unix)), allow(dead_code))]
pub(crate) fn cpu_list_end(list: &str) -> Option<usize> {
    let mut end = None;
    for range in list.trim().split(',') {
        let last = match range.split_once('-') {
            Some((first, last)) => {
                let (first, last) = (first.parse::<usize>().ok()?, last.parse::<usize>().ok()?);
                if first > last {
                    return None;
                }
                last
            }
            None => range.parse::<usize>().ok()?,
        };
        end = end.max(last.checked_add(1));
    }
    end
}

/// The number of CPUs the calling thread may run on (a floor for
/// [`possible_cpus`]; never used alone to size shards, since it depends on
/// the caller's affinity).
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

#[cfg(test)]
mod tests {
    use super::cpu_list_end;

    #[test]
    fn cpu_lists_parse_to_one_past_the_highest_id() {
        assert_eq!(cpu_list_end("0\n"), Some(1));
        assert_eq!(cpu_list_end("0-1\n"), Some(2));
        assert_eq!(cpu_list_end("0-127"), Some(128));
        assert_eq!(cpu_list_end("64-127"), Some(128));
        assert_eq!(cpu_list_end("0-3,8,10-11"), Some(12));
        assert_eq!(cpu_list_end("10-11,0-3"), Some(12));
        assert_eq!(cpu_list_end(""), None);
        assert_eq!(cpu_list_end("x"), None);
        assert_eq!(cpu_list_end("3-1"), None);
        assert_eq!(cpu_list_end("0-"), None);
        assert_eq!(cpu_list_end("18446744073709551615"), None);
    }
}
