//! The in-kernel tests, by subject. Each is registered with
//! [`kernel_test!`](crate::kernel_test) and run by `cargo xtask test`
//! (kernel command line `test`).

/// Runs the assembly lines `$body` with every xmm register n holding
/// `$seed + n` in both halves, and puts in `$differing` (a `u64`) the bits
/// that differ afterwards: 0 when all sixteen registers kept their values
/// across whatever `$body` caused (a fault, an interrupt, a preemption).
/// `$operands` are the extra `asm!` operands `$body` uses; `seed`,
/// `expected`, `actual`, `differing` and xmm0–15 are taken. Must be used
/// inside an `unsafe` block with its own SAFETY comment.
macro_rules! with_xmm_pattern {
    ($seed:expr, $differing:ident, [$($body:literal),* $(,)?], $($operands:tt)*) => {
        core::arch::asm!(
            ".irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
            "lea {expected}, [{seed} + \\n]",
            "movq xmm\\n, {expected}",
            "punpcklqdq xmm\\n, xmm\\n",
            ".endr",
            $($body,)*
            "xor {differing:e}, {differing:e}",
            ".irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
            "lea {expected}, [{seed} + \\n]",
            "movq {actual}, xmm\\n",
            "xor {actual}, {expected}",
            "or {differing}, {actual}",
            "pshufd xmm\\n, xmm\\n, 0xee",
            "movq {actual}, xmm\\n",
            "xor {actual}, {expected}",
            "or {differing}, {actual}",
            ".endr",
            seed = in(reg) $seed,
            expected = out(reg) _,
            actual = out(reg) _,
            differing = out(reg) $differing,
            out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _,
            out("xmm4") _, out("xmm5") _, out("xmm6") _, out("xmm7") _,
            out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _,
            out("xmm12") _, out("xmm13") _, out("xmm14") _, out("xmm15") _,
            $($operands)*
        )
    };
}

mod cmdline;
mod files;
mod frames;
mod heap;
mod memfuncs;
mod paging;
mod probes;
mod robustness;
mod shell;
mod smp;
mod soak;
mod test_page;
mod threads;
mod traps;

pub use crate::labs::random::XorShift;

/// Asks `found` every `step_ms` milliseconds, at most `tries` times, until
/// it answers: for a test that waits on another thread, whose CPU the host
/// may run late, without assuming how late.
pub fn wait_for<T>(tries: u32, step_ms: u64, mut found: impl FnMut() -> Option<T>) -> Option<T> {
    for _ in 0..tries {
        if let Some(answer) = found() {
            return Some(answer);
        }
        crate::thread::sleep_ms(step_ms);
    }
    None
}
