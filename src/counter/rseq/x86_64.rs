//! The x86_64 glibc restartable sequences behind [`super`]'s functions.
use crate::cpu::rseq::LazyOffset;
use crate::primitive::std_only::AtomicU64 as StdAtomicU64;
use crate::primitive::{AtomicPtr, AtomicU16, AtomicU64};

/// The stress build's delay between load and commit: a `pause` loop
/// (uses `{ok}` as its counter, which is written afterwards anyway).
/// A `macro_rules!` so `asm!` can take it as a literal.
#[cfg(metricz_stress)]
macro_rules! widen {
    () => {
        "mov {ok}, 2000\n9:\npause\ndec {ok}\njnz 9b"
    };
}
#[cfg(not(metricz_stress))]
macro_rules! widen {
    () => {
        ""
    };
}

/// Abort-handler runs (a locked add on a cold path: aborts are rare).
pub(super) static ABORTS: StdAtomicU64 = StdAtomicU64::new(0);

/// The registered area must cover `cpu_id_start`, `cpu_id`, `rseq_cs`
/// and `flags`: the original 32-byte ABI.
const MIN_SIZE: u32 = 20;

/// `__rseq_offset`, where the registration is large enough.
static OFFSET: LazyOffset = LazyOffset::new();

/// The calling thread's registered `struct rseq`, if the process has
/// rseq. A thread whose registration failed has a negative `cpu_id`,
/// which the sequence's unsigned bounds check sends to the fallback.
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
    // abort address is preceded by glibc's signature. The slot written
    // is `first + cpu × stride` with `cpu < slots`, valid per the
    // caller's contract, and written only by threads running on `cpu`
    // inside this sequence, which the kernel restarts on preemption,
    // migration or signal delivery before the commit (the final store).
    unsafe {
        core::arch::asm!(
            ".pushsection __rseq_cs, \"aw\"",
            ".balign 32",
            "3:",
            ".long 0, 0",
            ".quad 4f, (5f - 4f), 6f",
            ".popsection",
            "2:",
            "lea {tmp}, [rip + 3b]",
            "mov qword ptr [{area} + 8], {tmp}",
            "4:",
            "mov {cpu:e}, dword ptr [{area} + 4]",
            "cmp {cpu}, {slots}",
            "jae 7f",
            "imul {cpu}, {stride}",
            "add {cpu}, {first}",
            "mov {tmp}, qword ptr [{cpu}]",
            // The stress build widens the window between the load and
            // the commit, so preemption and signals land inside it.
            widen!(),
            "add {tmp}, {n}",
            "mov qword ptr [{cpu}], {tmp}",
            "5:",
            "mov {ok}, 1",
            "jmp 8f",
            ".pushsection __rseq_failure, \"ax\"",
            ".byte 0x0f, 0xb9, 0x3d",
            ".long 0x53053053",
            "6:",
            "lock inc qword ptr [{aborts}]",
            "jmp 2b",
            ".popsection",
            "7:",
            "xor {ok:e}, {ok:e}",
            "8:",
            area = in(reg) area,
            first = in(reg) first,
            slots = in(reg) slots,
            stride = in(reg) stride,
            n = in(reg) n,
            aborts = in(reg) ABORTS.as_ptr(),
            tmp = out(reg) _,
            cpu = out(reg) _,
            ok = out(reg) ok,
            options(nostack),
        );
    }
    ok != 0
}

/// The arming lines of a sequence: store the descriptor `3:` into the
/// area's `rseq_cs`. Empty for the negative control.
macro_rules! arm {
    (true) => {
        "lea {tmp}, [rip + 3b]\nmov qword ptr [{area} + 8], {tmp}"
    };
    (false) => {
        ""
    };
}

/// The descriptor, the abort handler (after glibc's signature) and
/// the restart label `2:` of a sequence whose critical section runs
/// from `4:` to the commit ending at `5:`; the handler counts the abort
/// and restarts at `2:` (re-arming).
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
            ".pushsection __rseq_failure, \"ax\"\n",
            ".byte 0x0f, 0xb9, 0x3d\n",
            ".long 0x53053053\n",
            "6:\n",
            "lock inc qword ptr [{aborts}]\n",
            "jmp 2b\n",
            ".popsection\n",
        )
    };
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
    // directory entry loaded (`rows` has `count` entries, per the
    // caller's contract); a null entry leaves without writing. The
    // word written is `slot` of that CPU's installed row, valid per
    // the contract, and written only by threads running on that CPU
    // inside this sequence, which the kernel restarts (re-reading the
    // CPU and the entry) on preemption, migration or signal delivery
    // before the commit (the final store).
    unsafe {
        core::arch::asm!(
            sequence!(
                "2:",
                arm!(true),
                "4:",
                "mov {cpu:e}, dword ptr [{area} + 4]",
                "cmp {cpu}, {count}",
                "jae 7f",
                "mov {row}, qword ptr [{rows} + 8 * {cpu}]",
                "test {row}, {row}",
                "jz 7f",
                "mov {tmp}, qword ptr [{row} + 8 * {slot}]",
                widen!(),
                "add {tmp}, {n}",
                "mov qword ptr [{row} + 8 * {slot}], {tmp}",
                "5:",
                "mov {ok:e}, 1",
                "jmp 8f",
                "7:",
                "lea {ok}, [{cpu} + 2]",
                "8:",
            ),
            area = in(reg) area,
            rows = in(reg) rows,
            slot = in(reg) slot,
            count = in(reg) count,
            n = in(reg) n,
            aborts = in(reg) ABORTS.as_ptr(),
            tmp = out(reg) _,
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
    // or signal delivery before the commit. The commit is an aligned
    // 8-byte store: a single access, and on x86_64 a release store.
    unsafe {
        core::arch::asm!(
            sequence!(
                "2:",
                arm!(true),
                "4:",
                "cmp dword ptr [{area} + 4], {cpu:e}",
                "jne 7f",
                "mov {tmp}, qword ptr [{word}]",
                widen!(),
                "add {tmp}, {n}",
                "mov qword ptr [{word}], {tmp}",
                "5:",
                "mov {ok:e}, 1",
                "jmp 8f",
                "7:",
                "xor {ok:e}, {ok:e}",
                "8:",
            ),
            area = in(reg) area,
            cpu = in(reg) cpu,
            word = in(reg) word,
            n = in(reg) n,
            aborts = in(reg) ABORTS.as_ptr(),
            tmp = out(reg) _,
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
    // the CPU, loads the word zero-extended, adds in 32 bits, leaves
    // (`12:`, nothing written) if the result is above `max` (a wrapped
    // subtraction is too), and commits with one aligned 2-byte store.
    // Unarmed (`ARMED` false, the stress test's negative control only)
    // nothing restarts it, which loses updates by design.
    macro_rules! body {
        ($armed:tt) => {
            core::arch::asm!(
                sequence!(
                    "2:",
                    arm!($armed),
                    "4:",
                    "cmp dword ptr [{area} + 4], {cpu:e}",
                    "jne 7f",
                    "movzx {tmp:e}, word ptr [{word}]",
                    widen!(),
                    "add {tmp:e}, {delta:e}",
                    "cmp {tmp:e}, {max:e}",
                    // Not 9: `widen!` defines that label.
                    "ja 12f",
                    "mov word ptr [{word}], {tmp:x}",
                    "5:",
                    "xor {ok:e}, {ok:e}",
                    "jmp 8f",
                    "7:",
                    "mov {ok:e}, 1",
                    "jmp 8f",
                    "12:",
                    "mov {ok:e}, 2",
                    "8:",
                ),
                area = in(reg) area,
                cpu = in(reg) cpu,
                word = in(reg) word,
                delta = in(reg) delta,
                max = in(reg) max,
                aborts = in(reg) ABORTS.as_ptr(),
                tmp = out(reg) value,
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
            "mov {cpu:e}, dword ptr [{area} + 4]",
            "cmp {cpu}, {slots}",
            "jae 7f",
            "imul {cpu}, {stride}",
            "add {cpu}, {first}",
            "mov {tmp}, qword ptr [{cpu}]",
            widen!(),
            "add {tmp}, {n}",
            "mov qword ptr [{cpu}], {tmp}",
            "mov {ok}, 1",
            "jmp 8f",
            "7:",
            "xor {ok:e}, {ok:e}",
            "8:",
            area = in(reg) area,
            first = in(reg) first,
            slots = in(reg) slots,
            stride = in(reg) stride,
            n = in(reg) n,
            tmp = out(reg) _,
            cpu = out(reg) _,
            ok = out(reg) ok,
            options(nostack),
        );
    }
    ok != 0
}
