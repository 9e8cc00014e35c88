//! SSE: turning it on, and saving and restoring its state.
//!
//! The precompiled `core` and `alloc` use SSE registers (for copies and
//! floating point), so SSE must be on before any Rust code runs: the boot
//! code sets the bits below already, and [`init`] checks them. Interrupted
//! code's SSE state is saved in every trap frame, and the thread switcher
//! saves and restores each thread's in a [`FxSaveArea`].

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
