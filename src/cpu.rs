//! Which CPU the calling thread is running on: the shard index of per-CPU
//! structures.
//!
//! [`current`] tries, in order:
//!
//! 1. **rseq.** glibc (2.35 and later) registers a restartable-sequences area
//!    for every thread it creates, and the kernel keeps the area's `cpu_id`
//!    field up to date whenever the thread returns to user space. Reading it is
//!    one load at `thread pointer + __rseq_offset + 4`. The two glibc symbols
//!    are looked up once with `dlsym`, so the crate links and runs on any libc;
//!    a `__rseq_size` of 0, a missing symbol, or a negative `cpu_id` on the
//!    validating thread disables this path. A thread whose own `cpu_id` reads
//!    negative (registration failed for it) falls through to the next path.
//! 2. **`sched_getcpu`**, on Linux: a vDSO call (or a syscall) per lookup.
//! 3. **The thread index**: a dense per-thread index ([`thread_index`]), so
//!    threads still spread over shards round-robin where the CPU is unknown.
//!
//! Under `--cfg loom` [`current`] is the thread index, so models are
//! deterministic (loom's threads are not OS threads). Under Miri too: it
//! runs neither the inline asm, `dlsym` nor `sched_getcpu`.
//!
//! The answer is a hint: the thread may migrate the moment after the read.
//! Sharded structures use it only to pick a shard and stay correct whichever
//! shard they pick.
//!
//! # Cost
//!
//! Measured by `cargo bench --bench counter -- cpu/` (criterion, one thread,
//! median estimate) on the development machine: 2 vCPU AMD EPYC KVM guest,
//! Linux 6.18, glibc 2.36. Figures and method are in `papers/metricz.md`.
//!
//! | path | ns per lookup |
//! |---|---|
//! | [`rseq_cpu`] | 0.65 |
//! | [`sched_getcpu`] (vDSO) | 2.9 |
//! | [`thread_index`] | 0.36 |
//! | [`current`] (takes the rseq path here) | 0.39 |
//!
//! # Example
//!
//! ```
//! let cpu = metricz::cpu::current();
//! // The CPU is one the process may run on, or a thread index where the
//! // platform does not say.
//! println!("running on CPU {cpu} (source: {:?})", metricz::cpu::source());
//! ```

/// Where [`current`] gets its answer on the calling thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CpuSource {
    /// The `cpu_id` field of the rseq area glibc registered.
    Rseq,
    /// The `sched_getcpu` call.
    SchedGetcpu,
    /// The calling thread's dense index (no CPU information available, or
    /// running under loom).
    ThreadIndex,
}

/// The CPU the calling thread is running on, from the cheapest source that
/// works here (see the [module docs](self)).
///
/// Never fails: where no CPU can be read it returns the thread's index.
#[inline]
pub fn current() -> usize {
    #[cfg(not(loom))]
    if let Some(cpu) = rseq_cpu() {
        return cpu;
    }
    current_slow()
}

#[cold]
fn current_slow() -> usize {
    #[cfg(not(loom))]
    if let Some(cpu) = sched_getcpu() {
        return cpu;
    }
    thread_index()
}

/// Which source [`current`] uses on the calling thread.
pub fn source() -> CpuSource {
    if cfg!(loom) {
        CpuSource::ThreadIndex
    } else if rseq_cpu().is_some() {
        CpuSource::Rseq
    } else if sched_getcpu().is_some() {
        CpuSource::SchedGetcpu
    } else {
        CpuSource::ThreadIndex
    }
}

/// The calling thread's dense index: the smallest index no other live thread
/// holds, reused after a thread exits.
///
/// Returns 0 while the thread's thread-locals are being destroyed.
#[inline]
pub fn thread_index() -> usize {
    crate::thread_index::current().unwrap_or(0)
}

/// The CPU from `sched_getcpu`, or `None` where it is unavailable (not Linux,
/// Miri, or the call failed).
pub fn sched_getcpu() -> Option<usize> {
    // Miri has no `sched_getcpu` shim.
    #[cfg(all(target_os = "linux", not(miri)))]
    {
        // SAFETY: `sched_getcpu` takes no arguments and only returns a value.
        let cpu = unsafe { libc::sched_getcpu() };
        usize::try_from(cpu).ok()
    }
    #[cfg(not(all(target_os = "linux", not(miri))))]
    {
        None
    }
}

/// The CPU from the rseq area glibc registered for this thread, or `None`
/// where there is none (other libc or platform, rseq disabled, loom, Miri
/// (no inline asm, no `dlsym`), or this thread unregistered).
#[inline]
pub fn rseq_cpu() -> Option<usize> {
    #[cfg(all(
        not(loom),
        not(miri),
        target_os = "linux",
        target_env = "gnu",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    {
        rseq::cpu_id()
    }
    #[cfg(not(all(
        not(loom),
        not(miri),
        target_os = "linux",
        target_env = "gnu",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )))]
    {
        None
    }
}

#[cfg(all(
    not(loom),
    not(miri),
    target_os = "linux",
    target_env = "gnu",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
pub(crate) mod rseq {
    use crate::primitive::{AtomicIsize, Ordering::Relaxed};

    /// An offset from the thread pointer, computed once per process by a
    /// probe (or found unusable). Relaxed throughout: the value is a
    /// self-contained integer computed from immutable process-wide data,
    /// and racing initialisers store the same one.
    pub(crate) struct LazyOffset(AtomicIsize);

    /// Before the first lookup.
    const UNKNOWN: isize = isize::MIN;
    /// Once the probe found nothing usable.
    const UNAVAILABLE: isize = isize::MIN + 1;

    impl LazyOffset {
        pub(crate) const fn new() -> Self {
            LazyOffset(AtomicIsize::new(UNKNOWN))
        }

        /// The offset, probing on first use.
        #[inline]
        pub(crate) fn get(&self, probe: fn() -> Option<isize>) -> Option<isize> {
            match self.0.load(Relaxed) {
                UNAVAILABLE => None,
                UNKNOWN => self.init(probe),
                offset => Some(offset),
            }
        }

        #[cold]
        fn init(&self, probe: fn() -> Option<isize>) -> Option<isize> {
            let offset = probe().filter(|&o| o > UNAVAILABLE);
            self.0.store(offset.unwrap_or(UNAVAILABLE), Relaxed);
            offset
        }
    }

    /// Offset of `cpu_id` (a `u32` the kernel writes) in `struct rseq`.
    const CPU_ID_FIELD: isize = 4;
    /// The smallest `__rseq_size` that covers the `cpu_id` field.
    const MIN_SIZE: u32 = 8;

    /// `__rseq_offset + CPU_ID_FIELD`.
    static OFFSET: LazyOffset = LazyOffset::new();

    #[inline]
    pub(super) fn cpu_id() -> Option<usize> {
        let offset = OFFSET.get(probe)?;
        // SAFETY: `offset` is only stored by `init`, after glibc reported a
        // registered rseq area of at least `MIN_SIZE` bytes at `__rseq_offset`
        // from the thread pointer. glibc places that area in every thread's
        // control block, so the address is valid, aligned and live for the
        // calling thread. The kernel updates the field behind the program's
        // back, hence a volatile read.
        let id = unsafe { read_cpu_id(offset) };
        usize::try_from(id).ok()
    }

    /// Reads the `cpu_id` field of the calling thread's rseq area.
    ///
    /// # Safety
    ///
    /// `offset` must be `__rseq_offset + CPU_ID_FIELD` of a glibc that
    /// registered rseq areas of at least `MIN_SIZE` bytes.
    #[inline]
    unsafe fn read_cpu_id(offset: isize) -> i32 {
        let field = thread_pointer().wrapping_offset(offset).cast::<i32>();
        // SAFETY: per this function's contract, `field` is the calling
        // thread's `rseq.cpu_id`, 4-byte aligned and valid for reads.
        unsafe { field.read_volatile() }
    }

    /// glibc's rseq registration: `(__rseq_offset, __rseq_size)`, looked up
    /// with `dlsym` (so any libc links); `None` where the symbols are
    /// missing. Also used by the rseq increments.
    pub(crate) fn glibc_registration() -> Option<(isize, u32)> {
        // SAFETY: the names are NUL-terminated; `dlsym` with `RTLD_DEFAULT`
        // only searches the loaded objects and returns null when absent.
        let (offset_sym, size_sym) = unsafe {
            (
                libc::dlsym(libc::RTLD_DEFAULT, c"__rseq_offset".as_ptr()),
                libc::dlsym(libc::RTLD_DEFAULT, c"__rseq_size".as_ptr()),
            )
        };
        if offset_sym.is_null() || size_sym.is_null() {
            return None;
        }
        // SAFETY: glibc defines `__rseq_size` as `const unsigned int` and
        // `__rseq_offset` as `const ptrdiff_t`; both are set before `main`
        // and never change.
        unsafe {
            Some((
                offset_sym.cast::<isize>().read(),
                size_sym.cast::<u32>().read(),
            ))
        }
    }

    /// Finds glibc's rseq registration and checks it on the calling thread.
    fn probe() -> Option<isize> {
        let (offset, size) = glibc_registration()?;
        if size < MIN_SIZE {
            return None;
        }
        let offset = offset.checked_add(CPU_ID_FIELD)?;
        // Validate once: the calling thread must read a real CPU id.
        // SAFETY: glibc reported a registered area of at least `MIN_SIZE` bytes.
        let id = unsafe { read_cpu_id(offset) };
        (id >= 0).then_some(offset)
    }

    /// The thread pointer: the address `__rseq_offset` is relative to.
    #[inline(always)]
    pub(crate) fn thread_pointer() -> *const u8 {
        let tp: *const u8;
        #[cfg(target_arch = "x86_64")]
        // SAFETY: on x86_64 glibc, `fs:0` holds the thread control block's
        // self-pointer, which is the thread pointer. Reading it has no side
        // effects and its value is fixed for the thread's lifetime.
        unsafe {
            core::arch::asm!(
                "mov {}, qword ptr fs:[0]",
                out(reg) tp,
                options(nostack, readonly, preserves_flags, pure)
            );
        }
        #[cfg(target_arch = "aarch64")]
        // SAFETY: `tpidr_el0` is the thread pointer on aarch64 Linux; reading
        // it has no side effects and its value is fixed for the thread.
        unsafe {
            core::arch::asm!(
                "mrs {}, tpidr_el0",
                out(reg) tp,
                options(nomem, nostack, preserves_flags, pure)
            );
        }
        tp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rseq_agrees_with_sched_getcpu() {
        // Both read the same kernel state; a migration between the two reads
        // can make them differ, so retry a few times before failing.
        let (Some(_), Some(_)) = (rseq_cpu(), sched_getcpu()) else {
            return;
        };
        let agreed = (0..1000).any(|_| rseq_cpu() == sched_getcpu());
        assert!(agreed, "rseq cpu_id never matched sched_getcpu");
    }

    #[test]
    fn current_uses_cheapest_source() {
        let cpu = current();
        match source() {
            CpuSource::Rseq | CpuSource::SchedGetcpu => {
                let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
                // On a machine without CPU hot-plug gaps the id is below the
                // CPU count; allow headroom for sparse cpusets.
                assert!(cpu < cpus.max(1) * 64, "cpu {cpu} out of range");
            }
            CpuSource::ThreadIndex => assert_eq!(cpu, thread_index()),
        }
    }

    #[test]
    fn thread_indices_are_unique_among_live_threads() {
        let barrier = std::sync::Barrier::new(8);
        let mut ids: Vec<usize> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        let id = thread_index();
                        // Hold the index until all eight have one.
                        barrier.wait();
                        id
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 8);
    }
}
