//! Per-CPU state, reached through the GS segment base.
//!
//! Each CPU's GS base points at its [`PerCpu`], whose first field points at
//! itself, so [`current`] is one `mov` from `gs:[0]`. A `PerCpu` is only
//! touched by its own CPU, with interrupts off or from a trap handler, which
//! is what makes its `Cell`s sound. The scheduler and the address-space layer
//! add their fields here (current thread, run queue, current address space).

use crate::arch::cpu::{write_msr, MSR_GS_BASE};
use crate::arch::gdt::{CpuTables, IstStack};
use core::arch::asm;
use core::cell::{Cell, UnsafeCell};

/// The state one CPU keeps for itself.
#[repr(C)]
pub struct PerCpu {
    /// Points at this structure: what `gs:[0]` reads.
    self_pointer: *const PerCpu,
    /// The kernel's number for this CPU (0 = the boot CPU).
    pub id: u32,
    /// Set while a trap handler runs on each IST stack (index = IST number),
    /// to catch a trap that re-entered a stack still in use.
    ist_in_use: [Cell<bool>; 8],
    /// This CPU's GDT, TSS and IST stacks.
    tables: *mut CpuTables,
}

// SAFETY: each `PerCpu` is used only by the CPU it belongs to (see the module
// documentation); sharing the reference across CPUs never leads to shared use.
unsafe impl Sync for PerCpu {}

impl PerCpu {
    /// The bounds of one of this CPU's IST stacks.
    pub fn ist_stack_bounds(&self, stack: IstStack) -> (u64, u64) {
        // SAFETY: `tables` was set from a `&'static mut CpuTables` in `install`.
        unsafe { (*self.tables).stack_bounds(stack) }
    }

    /// Marks `stack` in use; returns false if it already was (a nested trap
    /// on the same IST stack, which has overwritten the outer trap's frame).
    pub fn enter_ist(&self, stack: IstStack) -> bool {
        !self.ist_in_use[stack as usize].replace(true)
    }

    /// True while a trap handler runs on `stack`.
    pub fn is_ist_in_use(&self, stack: IstStack) -> bool {
        self.ist_in_use[stack as usize].get()
    }

    /// Marks `stack` free again.
    pub fn leave_ist(&self, stack: IstStack) {
        self.ist_in_use[stack as usize].set(false);
    }
}

/// Storage for the boot CPU's per-CPU structure and tables.
struct BootCpu {
    percpu: UnsafeCell<PerCpu>,
    tables: UnsafeCell<CpuTables>,
}

// SAFETY: used once, by the boot CPU, in `init_boot_cpu`.
unsafe impl Sync for BootCpu {}

static BOOT_CPU: BootCpu = BootCpu {
    percpu: UnsafeCell::new(PerCpu {
        self_pointer: core::ptr::null(),
        id: 0,
        ist_in_use: [const { Cell::new(false) }; 8],
        tables: core::ptr::null_mut(),
    }),
    tables: UnsafeCell::new(CpuTables::new()),
};

/// Sets up the boot CPU: loads its GDT and TSS and points GS at its `PerCpu`.
/// Call once, first thing after the console.
pub fn init_boot_cpu() {
    // SAFETY: called once, on the boot CPU, before anything else uses BOOT_CPU;
    // the references are unique from here on.
    let (percpu, tables) = unsafe { (&mut *BOOT_CPU.percpu.get(), &mut *BOOT_CPU.tables.get()) };
    install(percpu, tables);
}

/// Makes `percpu` the calling CPU's per-CPU structure, with `tables` as its
/// GDT, TSS and IST stacks (for the boot CPU, and later for each AP).
pub fn install(percpu: &'static mut PerCpu, tables: &'static mut CpuTables) {
    percpu.self_pointer = percpu as *const PerCpu;
    percpu.tables = tables as *mut CpuTables;
    tables.load();
    // SAFETY: IA32_GS_BASE exists on every x86-64 CPU; the structure lives forever.
    unsafe { write_msr(MSR_GS_BASE, percpu as *const PerCpu as u64) };
}

/// The calling CPU's per-CPU structure.
pub fn current() -> &'static PerCpu {
    let pointer: *const PerCpu;
    // SAFETY: GS base points at this CPU's `PerCpu` (set by `install`, which
    // runs before interrupts, traps or any caller of this function).
    unsafe {
        asm!("mov {}, qword ptr gs:[0]", out(reg) pointer, options(readonly, nostack, preserves_flags));
        &*pointer
    }
}
