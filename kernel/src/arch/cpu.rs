//! The processor: CPUID feature detection, control registers, model-specific
//! registers, the time-stamp counter, and interrupt masking. Each privileged
//! instruction is wrapped in one small function.

use core::arch::asm;
use core::arch::x86_64::{__cpuid_count, CpuidResult};
use core::fmt;

/// CR0.MP: `wait`/`fwait` honour CR0.TS.
pub const CR0_MONITOR_COPROCESSOR: u64 = 1 << 1;
/// CR0.EM: x87/SSE instructions trap (#UD/#NM) — must be clear for SSE.
pub const CR0_EMULATION: u64 = 1 << 2;
/// CR0.WP: supervisor writes honour read-only pages.
pub const CR0_WRITE_PROTECT: u64 = 1 << 16;
/// CR4.PAE: physical address extension (required by long mode).
pub const CR4_PAE: u64 = 1 << 5;
/// CR4.OSFXSR: the OS saves SSE state with `fxsave`; SSE instructions allowed.
pub const CR4_OSFXSR: u64 = 1 << 9;
/// CR4.OSXMMEXCPT: unmasked SIMD floating-point exceptions raise #XM.
pub const CR4_OSXMMEXCPT: u64 = 1 << 10;
/// CR4.LA57: 5-level paging.
pub const CR4_LA57: u64 = 1 << 12;
/// CR4.PCIDE: process-context identifiers.
pub const CR4_PCIDE: u64 = 1 << 17;
/// CR4.SMEP: supervisor-mode execution prevention.
pub const CR4_SMEP: u64 = 1 << 20;
/// CR4.SMAP: supervisor-mode access prevention.
pub const CR4_SMAP: u64 = 1 << 21;

/// IA32_EFER: extended feature enables.
pub const MSR_EFER: u32 = 0xc000_0080;
/// EFER.NXE: the execute-disable bit of page-table entries is honoured.
pub const EFER_NXE: u64 = 1 << 11;
/// IA32_GS_BASE: the base of the GS segment (the per-CPU pointer).
pub const MSR_GS_BASE: u32 = 0xc000_0101;

/// What this CPU offers, as CPUID reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuFeatures {
    /// 1 GiB pages (CPUID.80000001H:EDX[26]).
    pub huge_1g: bool,
    /// 5-level paging (CPUID.(7,0):ECX[16]).
    pub la57: bool,
    /// Process-context identifiers (CPUID.1:ECX[17]).
    pub pcid: bool,
    /// The `invpcid` instruction (CPUID.(7,0):EBX[10]).
    pub invpcid: bool,
    /// Supervisor-mode execution prevention (CPUID.(7,0):EBX[7]).
    pub smep: bool,
    /// Supervisor-mode access prevention (CPUID.(7,0):EBX[20]).
    pub smap: bool,
    /// Execute-disable (CPUID.80000001H:EDX[20]).
    pub nx: bool,
    /// A local APIC (CPUID.1:EDX[9]).
    pub apic: bool,
    /// The x2APIC mode (CPUID.1:ECX[21]).
    pub x2apic: bool,
    /// An invariant TSC (CPUID.80000007H:EDX[8]).
    pub invariant_tsc: bool,
    /// MAXPHYADDR: physical address bits (CPUID.80000008H:EAX[7:0]).
    pub phys_bits: u8,
    /// Linear address bits (CPUID.80000008H:EAX[15:8]).
    pub virt_bits: u8,
}

fn cpuid(leaf: u32, subleaf: u32) -> CpuidResult {
    __cpuid_count(leaf, subleaf)
}

fn bit(value: u32, index: u32) -> bool {
    value & (1 << index) != 0
}

impl CpuFeatures {
    /// Reads the features of the CPU this runs on.
    pub fn detect() -> CpuFeatures {
        let max_leaf = cpuid(0, 0).eax;
        let max_extended_leaf = cpuid(0x8000_0000, 0).eax;
        let leaf1 = cpuid(1, 0);
        let leaf7 = if max_leaf >= 7 { cpuid(7, 0) } else { CpuidResult { eax: 0, ebx: 0, ecx: 0, edx: 0 } };
        let extended = |leaf: u32| {
            if max_extended_leaf >= leaf {
                cpuid(leaf, 0)
            } else {
                CpuidResult { eax: 0, ebx: 0, ecx: 0, edx: 0 }
            }
        };
        let ext1 = extended(0x8000_0001);
        let ext7 = extended(0x8000_0007);
        let ext8 = extended(0x8000_0008);
        let (phys_bits, virt_bits) = if ext8.eax != 0 { (ext8.eax as u8, (ext8.eax >> 8) as u8) } else { (36, 48) };
        CpuFeatures {
            huge_1g: bit(ext1.edx, 26),
            la57: bit(leaf7.ecx, 16),
            pcid: bit(leaf1.ecx, 17),
            invpcid: bit(leaf7.ebx, 10),
            smep: bit(leaf7.ebx, 7),
            smap: bit(leaf7.ebx, 20),
            nx: bit(ext1.edx, 20),
            apic: bit(leaf1.edx, 9),
            x2apic: bit(leaf1.ecx, 21),
            invariant_tsc: bit(ext7.edx, 8),
            phys_bits,
            virt_bits,
        }
    }
}

impl fmt::Display for CpuFeatures {
    /// One line: `1g-pages la57 -pcid ... maxphyaddr=40 vaddr=57`; a minus
    /// marks a feature the CPU lacks.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flags = [
            ("1g-pages", self.huge_1g),
            ("la57", self.la57),
            ("pcid", self.pcid),
            ("invpcid", self.invpcid),
            ("smep", self.smep),
            ("smap", self.smap),
            ("nx", self.nx),
            ("apic", self.apic),
            ("x2apic", self.x2apic),
            ("invariant-tsc", self.invariant_tsc),
        ];
        for (name, present) in flags {
            write!(f, "{}{} ", if present { "" } else { "-" }, name)?;
        }
        write!(f, "maxphyaddr={} vaddr={}", self.phys_bits, self.virt_bits)
    }
}

/// Reads CR0.
pub fn read_cr0() -> u64 {
    let value: u64;
    // SAFETY: reading CR0 has no side effect.
    unsafe { asm!("mov {}, cr0", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

/// Writes CR0.
///
/// # Safety
/// CR0 controls paging, protection and the FPU: the new value must keep the
/// running code valid (PG and PE stay set).
pub unsafe fn write_cr0(value: u64) {
    // SAFETY: the caller guarantees the value is consistent.
    unsafe { asm!("mov cr0, {}", in(reg) value, options(nostack, preserves_flags)) };
}

/// Reads CR2: the linear address of the last page fault.
pub fn read_cr2() -> u64 {
    let value: u64;
    // SAFETY: reading CR2 has no side effect.
    unsafe { asm!("mov {}, cr2", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

/// Reads CR3: the physical address of the root table (and PCID bits).
pub fn read_cr3() -> u64 {
    let value: u64;
    // SAFETY: reading CR3 has no side effect.
    unsafe { asm!("mov {}, cr3", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

/// Writes CR3: switches to another root table (and drops non-global TLB
/// entries unless bit 63 asks to keep a PCID's).
///
/// # Safety
/// The new tables must map everything the kernel is using, the code being run
/// included.
pub unsafe fn write_cr3(value: u64) {
    // SAFETY: the caller guarantees the new tables map the running kernel.
    // Not `nomem`: the translation of every later access changes.
    unsafe { asm!("mov cr3, {}", in(reg) value, options(nostack, preserves_flags)) };
}

/// Reads CR4.
pub fn read_cr4() -> u64 {
    let value: u64;
    // SAFETY: reading CR4 has no side effect.
    unsafe { asm!("mov {}, cr4", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

/// Writes CR4.
///
/// # Safety
/// Every bit set must be supported by the CPU (else #GP), and the change must
/// keep the running code valid.
pub unsafe fn write_cr4(value: u64) {
    // SAFETY: the caller guarantees the value is supported and consistent.
    unsafe { asm!("mov cr4, {}", in(reg) value, options(nostack, preserves_flags)) };
}

/// Reads a model-specific register.
///
/// # Safety
/// The MSR must exist (else #GP).
pub unsafe fn read_msr(msr: u32) -> u64 {
    let (low, high): (u32, u32);
    // SAFETY: the caller guarantees the MSR exists.
    unsafe { asm!("rdmsr", in("ecx") msr, out("eax") low, out("edx") high, options(nomem, nostack, preserves_flags)) };
    (high as u64) << 32 | low as u64
}

/// Writes a model-specific register.
///
/// # Safety
/// The MSR must exist and the value must be valid for it.
pub unsafe fn write_msr(msr: u32, value: u64) {
    // SAFETY: the caller guarantees the MSR and value are valid.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32,
            options(nostack, preserves_flags))
    };
}

/// Reads the time-stamp counter.
pub fn rdtsc() -> u64 {
    let (low, high): (u32, u32);
    // SAFETY: RDTSC is allowed at CPL 0 and only reads the counter.
    unsafe { asm!("rdtsc", out("eax") low, out("edx") high, options(nomem, nostack, preserves_flags)) };
    (high as u64) << 32 | low as u64
}

/// Drops the TLB entries for the page containing `addr`.
pub fn invlpg(addr: u64) {
    // SAFETY: INVLPG only drops cached translations; it cannot make any
    // mapping incorrect.
    unsafe { asm!("invlpg [{}]", in(reg) addr, options(nostack, preserves_flags)) };
}

/// True when maskable interrupts are enabled (RFLAGS.IF).
pub fn interrupts_enabled() -> bool {
    let flags: u64;
    // SAFETY: pushfq/pop reads RFLAGS through the stack; this function's
    // code is built without a red zone, so the push does not clobber locals.
    unsafe { asm!("pushfq", "pop {}", out(reg) flags, options(nomem, preserves_flags)) };
    flags & (1 << 9) != 0
}

/// Masks maskable interrupts (`cli`).
pub fn disable_interrupts() {
    // SAFETY: masking interrupts cannot break memory safety.
    unsafe { asm!("cli", options(nomem, nostack)) };
}

/// Unmasks maskable interrupts (`sti`).
///
/// # Safety
/// The IDT must be loaded and every vector that can arrive must be handled.
pub unsafe fn enable_interrupts() {
    // SAFETY: the caller guarantees the interrupt handlers are ready.
    unsafe { asm!("sti", options(nomem, nostack)) };
}

/// Runs `f` with maskable interrupts off, then restores the previous state.
pub fn without_interrupts<R>(f: impl FnOnce() -> R) -> R {
    let were_enabled = interrupts_enabled();
    if were_enabled {
        disable_interrupts();
    }
    let result = f();
    if were_enabled {
        // SAFETY: interrupts were enabled on entry, so the handlers were ready.
        unsafe { enable_interrupts() };
    }
    result
}

/// Halts this CPU for good (interrupts off).
pub fn halt_forever() -> ! {
    loop {
        disable_interrupts();
        // SAFETY: HLT with interrupts off waits for an NMI or reset; nothing is touched.
        unsafe { asm!("hlt", options(nomem, nostack)) };
    }
}

/// True when 5-level paging is in force (CR4.LA57), as chosen at boot.
pub fn la57_enabled() -> bool {
    read_cr4() & CR4_LA57 != 0
}

/// True when execute-disable is in force (EFER.NXE), as chosen at boot.
pub fn nx_enabled() -> bool {
    // SAFETY: EFER exists on every x86-64 CPU.
    unsafe { read_msr(MSR_EFER) & EFER_NXE != 0 }
}

/// The virtual-address width in force.
pub fn virt_width() -> aspace::VirtWidth {
    if la57_enabled() {
        aspace::VirtWidth::Bits57
    } else {
        aspace::VirtWidth::Bits48
    }
}

/// The boot CPU's features, detected once.
pub fn features() -> CpuFeatures {
    static FEATURES: spin::Once<CpuFeatures> = spin::Once::new();
    *FEATURES.call_once(CpuFeatures::detect)
}

/// True when process-context identifiers are on (CR4.PCIDE).
pub fn pcid_enabled() -> bool {
    read_cr4() & CR4_PCIDE != 0
}
