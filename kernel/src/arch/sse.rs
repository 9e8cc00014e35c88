//! SSE: turning it on, and saving and restoring its state.
//!
//! The precompiled `core` and `alloc` use SSE registers (for copies and
//! floating point), so SSE must be on before any Rust code runs: the boot
//! code sets the bits below already, and [`init`] checks them.
//!
//! Two kinds of save:
//! * The thread switcher saves and restores each thread's whole x87/SSE
//!   state in a [`FxSaveArea`] (`fxsave64`/`fxrstor64`): another thread may
//!   run anything.
//! * A trap saves only xmm0–xmm15 ([`SseRegisters`]), what the handler's
//!   Rust code may change (the x86-64 calling convention lets a function
//!   clobber every xmm register). The kernel never uses x87 or MMX (Rust
//!   passes and computes floats in SSE registers on x86-64) and never
//!   changes MXCSR, so a handler leaves those as it found them. The frame's
//!   MXCSR slot is a request instead: [`KEEP_MXCSR`] (what the entry stubs
//!   write) leaves the register alone on the way out, any other value is
//!   loaded (a signal handler's start, `rt_sigreturn`, a new program, a
//!   forked child, a new thread). `stmxcsr` and `ldmxcsr` are helper calls
//!   under TCG: about 25 ns of every trap and system call. Sixteen `movaps`
//!   cost far less than `fxsave64` + `fxrstor64` under an emulator, which
//!   implements those two as a helper writing all 512 bytes (x87 included)
//!   one field at a time: about 600 ns of every trap under TCG (see
//!   docs/PERFORMANCE.md).

use super::cpu::{
    read_cr0, read_cr4, write_cr0, write_cr4, CR0_EMULATION, CR0_MONITOR_COPROCESSOR, CR4_OSFXSR, CR4_OSXMMEXCPT,
};

/// The 512-byte area `fxsave` writes: x87, MMX and SSE registers, MXCSR.
#[repr(C, align(16))]
#[derive(Clone, Copy)]
pub struct FxSaveArea(pub [u8; 512]);

impl FxSaveArea {
    /// A zeroed area.
    pub const fn new() -> FxSaveArea {
        FxSaveArea([0; 512])
    }
}

impl Default for FxSaveArea {
    fn default() -> Self {
        FxSaveArea::new()
    }
}

impl core::fmt::Debug for FxSaveArea {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("FxSaveArea { .. }")
    }
}

/// The SSE state a trap saves: xmm0–xmm15, then MXCSR. 16-byte aligned
/// for `movaps`.
#[repr(C, align(16))]
#[derive(Clone, Copy)]
pub struct SseRegisters {
    /// xmm0 to xmm15, in order.
    pub xmm: [[u8; 16]; 16],
    /// The MXCSR to load on the way out of the trap, or [`KEEP_MXCSR`].
    pub mxcsr: u32,
}

impl SseRegisters {
    /// All registers zero, MXCSR zero.
    pub const fn new() -> SseRegisters {
        SseRegisters { xmm: [[0; 16]; 16], mxcsr: 0 }
    }
}

impl core::fmt::Debug for SseRegisters {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SseRegisters {{ mxcsr: {:#x}, .. }}", self.mxcsr)
    }
}

/// In a frame's [`SseRegisters::mxcsr`]: load nothing on the way out (the
/// register already holds the thread's value). MXCSR's bits 16–31 are
/// reserved (`ldmxcsr` raises #GP for any of them), so it never holds this.
pub const KEEP_MXCSR: u32 = 0xffff_ffff;

/// This CPU's MXCSR (`stmxcsr`).
pub fn read_mxcsr() -> u32 {
    let mut value = 0u32;
    // SAFETY: stmxcsr writes the four bytes of `value`.
    unsafe { core::arch::asm!("stmxcsr [{}]", in(reg) &mut value, options(nostack, preserves_flags)) };
    value
}

/// The MXCSR a thread leaving through a frame whose slot holds `requested`
/// runs with: `requested`, or the live register's when the frame keeps it.
pub fn mxcsr_after(requested: u32) -> u32 {
    if requested == KEEP_MXCSR {
        read_mxcsr()
    } else {
        requested
    }
}

/// Makes sure SSE is enabled on this CPU: CR0.EM clear, CR0.MP set,
/// CR4.OSFXSR and CR4.OSXMMEXCPT set. Returns true if anything had to change.
pub fn init() -> bool {
    let cr0 = read_cr0();
    let cr4 = read_cr4();
    let wanted_cr0 = (cr0 & !CR0_EMULATION) | CR0_MONITOR_COPROCESSOR;
    let wanted_cr4 = cr4 | CR4_OSFXSR | CR4_OSXMMEXCPT;
    // SAFETY: these bits only govern the FPU and SSE, which every x86-64 CPU has.
    unsafe {
        write_cr0(wanted_cr0);
        write_cr4(wanted_cr4);
    }
    wanted_cr0 != cr0 || wanted_cr4 != cr4
}

/// Saves this CPU's x87/SSE state into `area` (`fxsave64`).
pub fn save_fpu(area: &mut FxSaveArea) {
    // SAFETY: `area` is 512 writable bytes, 16-byte aligned (the type's alignment).
    unsafe { core::arch::asm!("fxsave64 [{}]", in(reg) area.0.as_mut_ptr(), options(nostack, preserves_flags)) };
}

/// The MXCSR bits this CPU supports (`MXCSR_MASK` of an `fxsave` image;
/// 0xffbf when the CPU leaves it 0).
pub fn mxcsr_mask() -> u32 {
    let mut area = FxSaveArea::new();
    save_fpu(&mut area);
    match u32::from_le_bytes([area.0[28], area.0[29], area.0[30], area.0[31]]) {
        0 => 0xffbf,
        mask => mask,
    }
}

/// Loads the x87/SSE state of `area` (`fxrstor64`), after clearing the
/// MXCSR bits the CPU does not support (which would raise #GP).
pub fn restore_fpu(area: &mut FxSaveArea) {
    let mxcsr = u32::from_le_bytes([area.0[24], area.0[25], area.0[26], area.0[27]]) & mxcsr_mask();
    area.0[24..28].copy_from_slice(&mxcsr.to_le_bytes());
    // SAFETY: a 512-byte, 16-byte aligned image whose MXCSR holds only
    // supported bits: fxrstor64 cannot fault on it; the x87 and SSE state
    // it loads belong to the running user thread.
    unsafe { core::arch::asm!("fxrstor64 [{}]", in(reg) area.0.as_ptr(), options(nostack, preserves_flags)) };
}
