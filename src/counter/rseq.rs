//! Restartable-sequence increments: an unlocked add to the current CPU's
//! slot that the kernel restarts if the thread is preempted, migrated or
//! signalled inside it. [`Counter`](crate::Counter) increments with it by
//! default; [`RseqCounter`](crate::strategy::RseqCounter) is the contention
//! study's pure form of it.
//!
//! # The sequence (x86_64 and aarch64 Linux, glibc's registration)
//!
//! glibc (2.35+) registers a `struct rseq` for every thread and exports its
//! offset from the thread pointer (`__rseq_offset`) and size
//! (`__rseq_size`); metricz never registers a second one. The kernel's ABI
//! is the same on both architectures, and so is the interface below: each
//! architecture's file (`rseq/x86_64.rs`, `rseq/aarch64.rs`) provides the
//! same five sequences (`add`, `add_row`, `add_on`, `add_u16_on`, and the
//! stress build's `unarmed_add`) and `area`. An increment:
//!
//! 1. **arms**: stores the address of a critical-section descriptor
//!    (`struct rseq_cs`, emitted into the `__rseq_cs` section, `"aw"`, by the
//!    same `asm!` block) into the area's `rseq_cs` field;
//! 2. reads the area's `cpu_id`, and bounds-checks it against the slot count
//!    (out of range: the caller falls back to its separate atomic);
//! 3. loads the slot, adds, and **commits** with one plain store: the last
//!    instruction of the sequence.
//!
//! If the kernel preempts, migrates or delivers a signal to the thread
//! between the start of step 2 and the commit, it does not resume there: it
//! jumps to the descriptor's abort handler, which is preceded by the
//! signature glibc registered (x86_64: `0x53053053`, after a `ud1` opcode
//! so it is never executed as code; aarch64: the instruction word
//! `0xd428bc00`, `brk #0x45e0`), and which restarts the sequence. So a slot
//! is only ever written by a thread running on that slot's CPU, one
//! sequence at a time, and a plain load-add-store loses nothing.
//!
//! Slots are read with relaxed atomic loads; the commit is an aligned
//! 8-byte store, which both architectures perform as a single access, so a
//! reader sees either the old or the new value. Where x86_64's sequences
//! rely on its ordering (every load an acquire, every store a release: the
//! arena's directory entry, the histogram's words), the aarch64 ones say so
//! with `ldar`/`stlr` (see `rseq/aarch64.rs`).
//!
//! # Where rseq cannot be used
//!
//! No glibc registration (`__rseq_size` 0, symbols missing, another libc,
//! a statically linked binary, where `dlsym` finds nothing), a negative
//! `cpu_id` on the calling thread, loom, miri, other architectures
//! (big-endian and ILP32 aarch64 included): [`available`] is false and callers use a
//! **separate**
//! atomic word with `fetch_add`. Never an rseq slot: an unlocked add on CPU
//! k can overwrite a locked add to slot k made from another CPU.
//!
//! After a sequence the area's `rseq_cs` keeps pointing at its descriptor
//! (the kernel clears it at the next preemption or signal), so code holding
//! these sequences must stay mapped while its threads live: a library that
//! links metricz must not be unloaded (`dlclose`) while threads that
//! incremented through it are running.
//!
//! loom cannot model this (the kernel's restart is outside the program);
//! `tests/rseq_stress.rs` checks it instead (invariants RS1–RS3 in
//! `papers/invariants.md`): natively on x86_64, and on aarch64 under a real
//! kernel in full-system emulation (`scripts/aarch64-emulated`).

use crate::primitive::{AtomicPtr, AtomicU16, AtomicU64};

/// Whether this process increments with rseq: glibc registered an rseq
/// area for its threads (decided once per process). Even then, a thread
/// whose own registration failed (a negative `cpu_id`) cannot, and its
/// increments go to the counter's fallback word.
#[inline]
pub fn available() -> bool {
    imp::area().is_some()
}

/// How many times the kernel aborted (and the sequence restarted) an
/// increment in this process: preemptions, migrations and signals that
/// landed inside a sequence. A test hook (feature `test-hooks`), not part
/// of the API.
#[doc(hidden)]
#[cfg(any(test, feature = "test-hooks"))]
pub fn aborts() -> u64 {
    imp::ABORTS.load(crate::primitive::Ordering::Relaxed)
}

/// What [`add`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Added {
    /// Added to the current CPU's slot.
    Yes,
    /// The process uses rseq, but not this call (the thread has no
    /// registration, or its CPU is not below the slot count): add to the
    /// separate fallback word.
    Fallback,
    /// The process does not use rseq: use locked per-CPU adds.
    Unavailable,
}

/// Adds `n` to the slot of the current CPU, where slot `i` is the word
/// `i × stride` bytes after `first`, for CPUs below `slots`.
///
/// # Safety
///
/// For every `i < slots`, `first + i × stride` must be an 8-byte aligned
/// `AtomicU64` that stays valid for the call, and `first` must carry the
/// provenance of every slot (derived from the whole allocation, as
/// `shards::base` does, not from a reference to one word). While the
/// process uses rseq no one may write those words except through this
/// function (readers use atomic loads; a fallback goes to a separate word).
#[inline]
pub(crate) unsafe fn add(first: *const AtomicU64, stride: usize, slots: usize, n: u64) -> Added {
    let Some(area) = imp::area() else {
        return Added::Unavailable;
    };
    // SAFETY: `area` is the calling thread's registered area; the rest is
    // the forwarded contract.
    if unsafe { imp::add(area, first, stride, slots, n) } {
        Added::Yes
    } else {
        Added::Fallback
    }
}

/// What [`add_row`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowAdded {
    /// Added to the current CPU's row.
    Yes,
    /// The process uses rseq, but not this call (no registration of its
    /// own, or a CPU not below the row count): add to the fallback word.
    Fallback,
    /// The current CPU (this one) has no row installed yet: install it and
    /// call again.
    Missing(u32),
    /// The process does not use rseq: use locked per-CPU adds.
    Unavailable,
}

/// Adds `n` to word `slot` of the current CPU's row, where the row of CPU
/// `i` is what entry `i` of the directory `rows` points to, for CPUs below
/// `count`: the arena's lazily installed rows. The directory entry is read
/// inside the sequence, after the CPU, so the word written is always the
/// running CPU's; a null entry ends the sequence without writing.
///
/// # Safety
///
/// `rows` must point to `count` pointer-sized entries (an arena chunk's
/// row directory, as a pointer with the provenance of all of them), each
/// null or the address of an installed row — 8-byte aligned `AtomicU64`s,
/// more than `slot` of them — that stays installed (and valid) for the
/// call; an entry only ever changes from null to a row, published with a
/// Release store (x86_64 loads are Acquire; the aarch64 sequence loads the
/// entry with `ldar`), so the row's initialisation is seen. While the process uses rseq no one may write word `slot` of a
/// row except through this function (readers use atomic loads; a fallback
/// goes to a separate word), with one exception ordered before any
/// sequence on it: an arena slot's words are zeroed by the thread that
/// leases the slot, after the last handle of its previous counter dropped
/// (Release) and before the new counter is published (see
/// `counter::arena`).
#[inline]
pub(crate) unsafe fn add_row(
    rows: *const AtomicPtr<u8>,
    slot: usize,
    count: usize,
    n: u64,
) -> RowAdded {
    let Some(area) = imp::area() else {
        return RowAdded::Unavailable;
    };
    // SAFETY: `area` is the calling thread's registered area; the rest is
    // the forwarded contract.
    match unsafe { imp::add_row(area, rows, slot, count, n) } {
        1 => RowAdded::Yes,
        r => {
            let cpu = r.wrapping_sub(2);
            if cpu < count {
                RowAdded::Missing(cpu as u32)
            } else {
                RowAdded::Fallback
            }
        }
    }
}

/// The same sequence without arming: a plain load-add-store on the slot of
/// the CPU read at its start. For the stress test's negative control only:
/// it loses increments when the thread is preempted or migrated inside it.
/// A test hook (feature `test-hooks`, in `--cfg metricz_stress` builds), not
/// part of the API.
///
/// # Safety
///
/// As [`add`].
#[cfg(all(metricz_stress, feature = "test-hooks"))]
#[doc(hidden)]
pub unsafe fn unarmed_add(first: *const AtomicU64, stride: usize, slots: usize, n: u64) -> bool {
    // SAFETY: forwarded contract.
    unsafe { imp::unarmed_add(first, stride, slots, n) }
}

/// The calling thread's registered `struct rseq`, for sequences that name
/// the CPU they must run on ([`add_on`], [`add_u16_on`]): the histogram's,
/// whose per-CPU words are reached through lazily allocated blocks, so the
/// caller finds the word for the CPU it read and the sequence checks, inside
/// the critical section, that the thread still runs there (the kernel's
/// selftests call this `rseq_addv(v, count, cpu)`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Area(*mut u8);

impl Area {
    /// The calling thread's area, where the process uses rseq (on x86_64
    /// and aarch64 alike).
    #[inline]
    pub(crate) fn current() -> Option<Area> {
        imp::area().map(Area)
    }

    /// The CPU the kernel last wrote into the area's `cpu_id`: the CPU the
    /// thread runs on, or `u32::MAX` / `u32::MAX − 1` (−1, −2) when the
    /// thread's registration is missing or failed, which callers' bounds
    /// checks send to their fallback.
    #[inline]
    pub(crate) fn cpu(self) -> u32 {
        // SAFETY: `self.0` is the calling thread's registered area (an
        // `Area` is only made by `current`, and is not `Send`), at least
        // `MIN_SIZE` bytes, 32-byte aligned; `cpu_id` is the `u32` at +4,
        // written by the kernel behind the program's back, hence volatile.
        unsafe { self.0.add(4).cast::<u32>().read_volatile() }
    }
}

/// What [`add_u16_on`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnCpu {
    /// Committed; the word's new value.
    Done(u32),
    /// The thread no longer runs on the named CPU: nothing was written.
    /// (Only the rseq sequences, x86_64 and aarch64, construct it.)
    #[cfg_attr(
        not(all(
            not(loom),
            not(miri),
            target_os = "linux",
            target_env = "gnu",
            any(
                target_arch = "x86_64",
                all(
                    target_arch = "aarch64",
                    target_endian = "little",
                    target_pointer_width = "64"
                )
            )
        )),
        allow(dead_code)
    )]
    Moved,
    /// The new value would leave `0..=max`: nothing was written.
    Full,
}

/// Adds `n` (wrapping) to `word` in a restartable sequence that commits
/// only while the calling thread runs on `cpu`; false (nothing written) if
/// it runs elsewhere.
///
/// # Safety
///
/// `area` must be the calling thread's (from [`Area::current`]); `cpu`
/// must be a CPU id (below 2^31: not the −1 or −2 of an unregistered
/// thread, which would match such a thread's `cpu_id` with no kernel
/// protection); `word` must be an 8-byte aligned `AtomicU64` valid for the
/// call that, while the process uses rseq, nothing writes except sequences
/// on `cpu` (readers use atomic loads).
#[inline]
pub(crate) unsafe fn add_on(area: Area, cpu: u32, word: *const AtomicU64, n: u64) -> bool {
    debug_assert!(cpu < 1 << 31, "not a CPU id: {cpu}");
    // SAFETY: forwarded contract.
    unsafe { imp::add_on(area.0, cpu, word, n) }
}

/// Adds `delta` to the 16-bit `word`, computing in 32 bits (a "negative"
/// `delta`, `x.wrapping_neg()`, subtracts), in a restartable sequence that
/// commits only while the calling thread runs on `cpu` and only if the new
/// value is at most `max` (≤ `u16::MAX`); a subtraction below zero wraps
/// past `max` and is refused too.
///
/// # Safety
///
/// As [`add_on`], for a 2-byte aligned `AtomicU16`.
#[inline]
pub(crate) unsafe fn add_u16_on(
    area: Area,
    cpu: u32,
    word: *const AtomicU16,
    delta: u32,
    max: u32,
) -> OnCpu {
    debug_assert!(max <= u32::from(u16::MAX));
    debug_assert!(cpu < 1 << 31, "not a CPU id: {cpu}");
    #[cfg(all(metricz_stress, feature = "test-hooks"))]
    if UNARMED.load(crate::primitive::Ordering::Relaxed) {
        // SAFETY: forwarded contract; the negative control's lost updates
        // are its point.
        return unsafe { imp::add_u16_on::<false>(area.0, cpu, word, delta, max) };
    }
    // SAFETY: forwarded contract.
    unsafe { imp::add_u16_on::<true>(area.0, cpu, word, delta, max) }
}

#[cfg(all(metricz_stress, feature = "test-hooks"))]
static UNARMED: crate::primitive::std_only::AtomicBool =
    crate::primitive::std_only::AtomicBool::new(false);

/// Makes [`add_u16_on`] (the histogram's count sequence) skip arming, for
/// the histogram stress test's negative control: it then loses counts when
/// a thread is preempted, migrated or signalled inside it. A test hook
/// (feature `test-hooks`, in `--cfg metricz_stress` builds), not part of
/// the API.
#[cfg(all(metricz_stress, feature = "test-hooks"))]
#[doc(hidden)]
pub fn set_unarmed_for_tests(unarmed: bool) {
    UNARMED.store(unarmed, crate::primitive::Ordering::Relaxed);
}

#[cfg(all(
    not(loom),
    not(miri),
    target_os = "linux",
    target_env = "gnu",
    target_arch = "x86_64"
))]
#[path = "rseq/x86_64.rs"]
mod imp;

#[cfg(all(
    not(loom),
    not(miri),
    target_os = "linux",
    target_env = "gnu",
    target_arch = "aarch64",
    target_endian = "little",
    target_pointer_width = "64"
))]
#[path = "rseq/aarch64.rs"]
mod imp;

#[cfg(not(all(
    not(loom),
    not(miri),
    target_os = "linux",
    target_env = "gnu",
    any(
        target_arch = "x86_64",
        all(
            target_arch = "aarch64",
            target_endian = "little",
            target_pointer_width = "64"
        )
    )
)))]
mod imp {
    #[cfg(any(test, feature = "test-hooks"))]
    use crate::primitive::std_only::AtomicU64 as StdAtomicU64;
    use crate::primitive::{AtomicPtr, AtomicU16, AtomicU64};

    /// Never counted here.
    #[cfg(any(test, feature = "test-hooks"))]
    pub(super) static ABORTS: StdAtomicU64 = StdAtomicU64::new(0);

    #[inline]
    pub(super) fn area() -> Option<*mut u8> {
        None
    }

    #[inline]
    pub(super) unsafe fn add(_: *mut u8, _: *const AtomicU64, _: usize, _: usize, _: u64) -> bool {
        false
    }

    #[cfg(all(metricz_stress, feature = "test-hooks"))]
    pub(super) unsafe fn unarmed_add(_: *const AtomicU64, _: usize, _: usize, _: u64) -> bool {
        false
    }

    // No area: `super::add_row` returns before calling it.
    pub(super) unsafe fn add_row(
        _: *mut u8,
        _: *const AtomicPtr<u8>,
        _: usize,
        _: usize,
        _: u64,
    ) -> usize {
        unreachable!("no rseq area in this build")
    }

    // No `Area` exists in these builds (`area` is `None`), so the two
    // below are never called.
    pub(super) unsafe fn add_on(_: *mut u8, _: u32, _: *const AtomicU64, _: u64) -> bool {
        unreachable!("no rseq area in this build")
    }

    pub(super) unsafe fn add_u16_on<const ARMED: bool>(
        _: *mut u8,
        _: u32,
        _: *const AtomicU16,
        _: u32,
        _: u32,
    ) -> super::OnCpu {
        unreachable!("no rseq area in this build")
    }
}
