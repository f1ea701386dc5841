//! The aarch64 glibc restartable sequences behind [`super`]'s functions:
//! the same five sequences as `x86_64.rs`, in the shape of the kernel's
//! `tools/testing/selftests/rseq/rseq-arm64.h`.
//!
//! - The descriptor (`struct rseq_cs`: version 0, flags 0, start,
//!   post-commit offset, abort address) is static data in `__rseq_cs`,
//!   32-byte aligned; the sequence arms it with `adrp`/`add :lo12:` and a
//!   64-bit store into the area's `rseq_cs` (+8).
//! - The abort handler is preceded by the signature glibc registered on
//!   aarch64, `0xd428bc00` (`brk #0x45e0`), as an instruction word
//!   (`.inst`, so it matches the code's endianness), inline after the
//!   sequence's exit, which branches over it (as `rseq-arm64.h` does).
//! - The critical section reads `cpu_id` (+4) and bounds-checks it; the
//!   commit is one store, the last instruction before the post-commit label.
//!
//! Ordering: a counter's slot is a tally (a plain `ldr`/`str`). Where the
//! x86_64 sequences lean on TSO, these say it: the arena's directory entry
//! is loaded with `ldar` (it pairs with the Release store that installed the
//! row), and the histogram's sequences (`add_on`, `add_u16_on`) load with
//! `ldar`/`ldarh` and commit with `stlr`/`stlrh`, which gives the acquire
//! loads and release stores the histogram's seqlock argument takes from
//! x86_64's `mov` (see `histogram::shard`).
use crate::cpu::rseq::LazyOffset;
use crate::primitive::std_only::AtomicU64 as StdAtomicU64;
use crate::primitive::{AtomicPtr, AtomicU16, AtomicU64};

/// The stress build's delay between load and commit: a `yield` loop
/// (uses `{ok}` as its counter, which is written afterwards anyway).
/// A `macro_rules!` so `asm!` can take it as a literal.
#[cfg(metricz_stress)]
macro_rules! widen {
    () => {
        "mov {ok}, #2000\n9:\nyield\nsubs {ok}, {ok}, #1\nb.ne 9b"
    };
}
#[cfg(not(metricz_stress))]
macro_rules! widen {
    () => {
        ""
    };
}

/// Abort-handler runs (an exclusive-pair add on a cold path: aborts are
/// rare, and the baseline ISA has no single-instruction atomic add).
pub(super) static ABORTS: StdAtomicU64 = StdAtomicU64::new(0);

/// The registered area must cover `cpu_id_start`, `cpu_id`, `rseq_cs`
/// and `flags`: the original 32-byte ABI.
const MIN_SIZE: u32 = 20;

/// `__rseq_offset`, where the registration is large enough.
static OFFSET: LazyOffset = LazyOffset::new();

/// The calling thread's registered `struct rseq`, if the process has
/// rseq. A thread whose registration failed has a negative `cpu_id`,
/// which the sequences' unsigned bounds checks send to the fallback.
#[inline]
pub(super) fn area() -> Option<*mut u8> {
    let offset = OFFSET.get(|| {
        let (offset, size) = crate::cpu::rseq::glibc_registration()?;
        (size >= MIN_SIZE).then_some(offset)
    })?;
    Some(
        crate::cpu::rseq::thread_pointer()
            .wrapping_offset(offset)
            .cast_mut(),
    )
}

/// The arming lines of a sequence: store the descriptor `3:` into the
/// area's `rseq_cs`. Empty for the negative control.
macro_rules! arm {
    (true) => {
        "adrp {tmp}, 3b\nadd {tmp}, {tmp}, :lo12:3b\nstr {tmp}, [{area}, #8]"
    };
    (false) => {
        ""
    };
}

/// The descriptor, the abort handler (after glibc's aarch64 signature)
/// and the restart label `2:` of a sequence whose critical section runs
/// from `4:` to the commit ending at `5:`; the handler counts the abort
/// (an exclusive-pair loop, label `10:`) and restarts at `2:` (re-arming).
///
/// The handler sits in the same section as the sequence, after its exit
/// (which branches over it to `11:`), as the kernel selftests' `rseq-arm64.h`
/// places it: its branch back to `2:` is then a short one the linker never
/// routes through a range-extension stub (which may clobber x16/x17, where
/// the sequence's operands can live), and it stays inside the function's
/// unwind information.
macro_rules! sequence {
    ($($body:expr),* $(,)?) => {
        concat!(
            ".pushsection __rseq_cs, \"aw\"\n",
            ".balign 32\n",
            "3:\n",
            ".long 0, 0\n",
            ".quad 4f, (5f - 4f), 6f\n",
            ".popsection\n",
            $($body, "\n",)*
            "b 11f\n",
            ".inst 0xd428bc00\n",
            "6:\n",
            "10:\n",
            "ldxr {tmp}, [{aborts}]\n",
            "add {tmp}, {tmp}, #1\n",
            "stxr {flag:w}, {tmp}, [{aborts}]\n",
            "cbnz {flag:w}, 10b\n",
            "b 2b\n",
            "11:\n",
        )
    };
}

/// See [`super::add`]; `area` must be the calling thread's registered
/// `struct rseq`, from [`area`].
#[inline]
pub(super) unsafe fn add(
    area: *mut u8,
    first: *const AtomicU64,
    stride: usize,
    slots: usize,
    n: u64,
) -> bool {
    let ok: usize;
    // SAFETY: `area` is the calling thread's registered `struct rseq`
    // (`cpu_id` at +4, `rseq_cs` at +8); the descriptor is static data
    // in `__rseq_cs`, 32-byte aligned, version 0, flags 0, its start,
    // post-commit offset and abort address labels of this block; the
    // abort address is preceded by glibc's aarch64 signature. The slot
    // written is `first + cpu × stride` with `cpu < slots`, valid per
    // the caller's contract, and written only by threads running on
    // `cpu` inside this sequence, which the kernel restarts on
    // preemption, migration or signal delivery before the commit (the
    // final store).
    unsafe {
        core::arch::asm!(
            sequence!(
                "2:",
                arm!(true),
                "4:",
                "ldr {cpu:w}, [{area}, #4]",
                "cmp {cpu}, {slots}",
                "b.hs 7f",
                "madd {cpu}, {cpu}, {stride}, {first}",
                "ldr {val}, [{cpu}]",
                // The stress build widens the window between the load and
                // the commit, so preemption and signals land inside it.
                widen!(),
                "add {val}, {val}, {n}",
                "str {val}, [{cpu}]",
                "5:",
                "mov {ok}, #1",
                "b 8f",
                "7:",
                "mov {ok}, #0",
                "8:",
            ),
            area = in(reg) area,
            first = in(reg) first,
            slots = in(reg) slots,
            stride = in(reg) stride,
            n = in(reg) n,
            aborts = in(reg) ABORTS.as_ptr(),
            tmp = out(reg) _,
            flag = out(reg) _,
            val = out(reg) _,
            cpu = out(reg) _,
            ok = out(reg) ok,
            options(nostack),
        );
    }
    ok != 0
}

/// See [`super::add_row`]; `area` from [`area`]. Returns 1 when the
/// add committed, else 2 + the CPU read (a CPU at or past `count`:
/// the fallback; below it: its row is missing).
#[inline]
pub(super) unsafe fn add_row(
    area: *mut u8,
    rows: *const AtomicPtr<u8>,
    slot: usize,
    count: usize,
    n: u64,
) -> usize {
    let ok: usize;
    // SAFETY: `area` is the calling thread's registered `struct rseq`
    // (`cpu_id` at +4, `rseq_cs` at +8), the descriptor static data in
    // `__rseq_cs` as in `add`. Inside the critical section (`4:` to the
    // commit) the CPU is read, bounds-checked against `count`, and its
    // directory entry loaded with `ldar` (`rows` has `count` entries,
    // per the caller's contract; Acquire pairs with the Release store
    // that installed the row, so its zeroed words are seen); a null
    // entry leaves without writing. The word written is `slot` of that
    // CPU's installed row, valid per the contract, and written only by
    // threads running on that CPU inside this sequence, which the kernel
    // restarts (re-reading the CPU and the entry) on preemption,
    // migration or signal delivery before the commit (the final store).
    unsafe {
        core::arch::asm!(
            sequence!(
                "2:",
                arm!(true),
                "4:",
                "ldr {cpu:w}, [{area}, #4]",
                "cmp {cpu}, {count}",
                "b.hs 7f",
                "add {row}, {rows}, {cpu}, lsl #3",
                "ldar {row}, [{row}]",
                "cbz {row}, 7f",
                "add {row}, {row}, {slot}, lsl #3",
                "ldr {val}, [{row}]",
                widen!(),
                "add {val}, {val}, {n}",
                "str {val}, [{row}]",
                "5:",
                "mov {ok}, #1",
                "b 8f",
                "7:",
                "add {ok}, {cpu}, #2",
                "8:",
            ),
            area = in(reg) area,
            rows = in(reg) rows,
            slot = in(reg) slot,
            count = in(reg) count,
            n = in(reg) n,
            aborts = in(reg) ABORTS.as_ptr(),
            tmp = out(reg) _,
            flag = out(reg) _,
            val = out(reg) _,
            cpu = out(reg) _,
            row = out(reg) _,
            ok = out(reg) ok,
            options(nostack),
        );
    }
    ok
}

/// See [`super::add_on`]; `area` from [`area`].
#[inline]
pub(super) unsafe fn add_on(area: *mut u8, cpu: u32, word: *const AtomicU64, n: u64) -> bool {
    let ok: usize;
    // SAFETY: `area` is the calling thread's registered `struct rseq`
    // (`cpu_id` at +4, `rseq_cs` at +8); the descriptor is static data
    // in `__rseq_cs` as in `add`. The critical section (`4:` to the
    // commit) first checks that `cpu_id` is `cpu`, so `word`, which per
    // the caller's contract only sequences on `cpu` write, is written
    // only by a thread running there, and the kernel restarts the
    // sequence (at `2:`, re-checking the CPU) on preemption, migration
    // or signal delivery before the commit. The word is loaded with
    // `ldar` and the commit is `stlr`: one aligned 8-byte access each,
    // acquire and release (the histogram's seqlock argument).
    unsafe {
        core::arch::asm!(
            sequence!(
                "2:",
                arm!(true),
                "4:",
                "ldr {now:w}, [{area}, #4]",
                "cmp {now:w}, {cpu:w}",
                "b.ne 7f",
                "ldar {val}, [{word}]",
                widen!(),
                "add {val}, {val}, {n}",
                "stlr {val}, [{word}]",
                "5:",
                "mov {ok}, #1",
                "b 8f",
                "7:",
                "mov {ok}, #0",
                "8:",
            ),
            area = in(reg) area,
            cpu = in(reg) cpu,
            word = in(reg) word,
            n = in(reg) n,
            aborts = in(reg) ABORTS.as_ptr(),
            tmp = out(reg) _,
            flag = out(reg) _,
            now = out(reg) _,
            val = out(reg) _,
            ok = out(reg) ok,
            options(nostack),
        );
    }
    ok != 0
}

/// See [`super::add_u16_on`]; `ARMED` false is the negative control.
#[inline]
pub(super) unsafe fn add_u16_on<const ARMED: bool>(
    area: *mut u8,
    cpu: u32,
    word: *const AtomicU16,
    delta: u32,
    max: u32,
) -> super::OnCpu {
    let ok: usize;
    let value: usize;
    // SAFETY: as in `add_on`, for a 2-byte word: the sequence checks
    // the CPU, loads the word zero-extended (`ldarh`), adds in 32 bits,
    // leaves (`12:`, nothing written) if the result is above `max` (a
    // wrapped subtraction is too), and commits with one aligned 2-byte
    // release store (`stlrh`). Unarmed (`ARMED` false, the stress test's
    // negative control only) nothing restarts it, which loses updates by
    // design.
    macro_rules! body {
        ($armed:tt) => {
            core::arch::asm!(
                sequence!(
                    "2:",
                    arm!($armed),
                    "4:",
                    "ldr {now:w}, [{area}, #4]",
                    "cmp {now:w}, {cpu:w}",
                    "b.ne 7f",
                    "ldarh {val:w}, [{word}]",
                    widen!(),
                    "add {val:w}, {val:w}, {delta:w}",
                    "cmp {val:w}, {max:w}",
                    // Not 9: `widen!` defines that label.
                    "b.hi 12f",
                    "stlrh {val:w}, [{word}]",
                    "5:",
                    "mov {ok}, #0",
                    "b 8f",
                    "7:",
                    "mov {ok}, #1",
                    "b 8f",
                    "12:",
                    "mov {ok}, #2",
                    "8:",
                ),
                area = in(reg) area,
                cpu = in(reg) cpu,
                word = in(reg) word,
                delta = in(reg) delta,
                max = in(reg) max,
                aborts = in(reg) ABORTS.as_ptr(),
                tmp = out(reg) _,
                flag = out(reg) _,
                now = out(reg) _,
                val = out(reg) value,
                ok = out(reg) ok,
                options(nostack),
            )
        };
    }
    // SAFETY: see above.
    unsafe {
        if ARMED {
            body!(true);
        } else {
            body!(false);
        }
    }
    match ok {
        0 => super::OnCpu::Done(value as u32),
        1 => super::OnCpu::Moved,
        _ => super::OnCpu::Full,
    }
}

/// See [`super::unarmed_add`].
#[cfg(all(metricz_stress, feature = "test-hooks"))]
pub(super) unsafe fn unarmed_add(
    first: *const AtomicU64,
    stride: usize,
    slots: usize,
    n: u64,
) -> bool {
    let Some(area) = area() else {
        return false;
    };
    let ok: usize;
    // SAFETY: as in `add`, except that nothing is armed: this is the
    // negative control, and its lost updates are the point.
    unsafe {
        core::arch::asm!(
            "ldr {cpu:w}, [{area}, #4]",
            "cmp {cpu}, {slots}",
            "b.hs 7f",
            "madd {cpu}, {cpu}, {stride}, {first}",
            "ldr {val}, [{cpu}]",
            widen!(),
            "add {val}, {val}, {n}",
            "str {val}, [{cpu}]",
            "mov {ok}, #1",
            "b 8f",
            "7:",
            "mov {ok}, #0",
            "8:",
            area = in(reg) area,
            first = in(reg) first,
            slots = in(reg) slots,
            stride = in(reg) stride,
            n = in(reg) n,
            val = out(reg) _,
            cpu = out(reg) _,
            ok = out(reg) ok,
            options(nostack),
        );
    }
    ok != 0
}
