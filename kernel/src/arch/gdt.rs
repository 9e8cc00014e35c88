//! The global descriptor table and the task-state segment, one pair per CPU.
//!
//! Long mode ignores segment bases and limits for code and data, so the GDT
//! holds a code and a data segment for the kernel (ring 0) and for user
//! programs (ring 3), plus the TSS. Their order is the one `syscall` and
//! `sysretq` require (see [`SYSRET_BASE_SELECTOR`]). The TSS matters for
//! one thing here: the interrupt stack table (IST). Every IDT
//! entry switches to an IST stack, because the precompiled `core` uses the
//! red zone: an interrupt that pushed its frame onto the interrupted stack
//! would overwrite the 128 bytes below its stack pointer.

use core::arch::asm;
use core::mem::size_of;

/// The kernel code segment selector.
pub const KERNEL_CODE_SELECTOR: u16 = 0x08;
/// The kernel data segment selector.
pub const KERNEL_DATA_SELECTOR: u16 = 0x10;
/// The user (ring 3) data segment selector, with its RPL of 3.
pub const USER_DATA_SELECTOR: u16 = 0x18 | 3;
/// The user (ring 3) 64-bit code segment selector, with its RPL of 3.
pub const USER_CODE_SELECTOR: u16 = 0x20 | 3;
/// The TSS selector (a 16-byte system descriptor, slots 5 and 6).
pub const TSS_SELECTOR: u16 = 0x28;
/// `IA32_STAR[63:48]`: `sysretq` loads SS from this selector + 8 and CS from
/// this selector + 16, both with RPL 3 (Intel SDM vol. 2B, SYSRET), so the
/// user data segment must follow the kernel data segment and the user code
/// segment must follow it.
pub const SYSRET_BASE_SELECTOR: u16 = 0x10 | 3;
const _: () =
    assert!(SYSRET_BASE_SELECTOR + 8 == USER_DATA_SELECTOR && SYSRET_BASE_SELECTOR + 16 == USER_CODE_SELECTOR);

/// The IST stacks of a CPU. The discriminant is the IST index an IDT entry
/// names (1..=7; 0 would mean "no stack switch").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IstStack {
    /// #DF: always usable, whatever state the other stacks are in.
    DoubleFault = 1,
    /// NMI: may arrive at any instant, even inside another handler.
    Nmi = 2,
    /// #MC: may arrive at any instant.
    MachineCheck = 3,
    /// #PF: runs the page-fault path (the address-space layer, the paging code).
    PageFault = 4,
    /// Every other exception and every device interrupt or IPI.
    Shared = 5,
}

impl IstStack {
    /// All stacks, in IST order.
    pub const ALL: [IstStack; 5] =
        [IstStack::DoubleFault, IstStack::Nmi, IstStack::MachineCheck, IstStack::PageFault, IstStack::Shared];

    /// The size of this stack in bytes.
    pub const fn size(self) -> usize {
        match self {
            IstStack::DoubleFault | IstStack::Nmi | IstStack::MachineCheck => 16 * 1024,
            IstStack::PageFault | IstStack::Shared => 64 * 1024,
        }
    }

    /// Where this stack sits in [`CpuTables::stacks`]: every stack has a
    /// guard page of its own right below it.
    const fn offset(self) -> usize {
        let mut offset = IST_GUARD_SIZE;
        let mut index = 0;
        while index < self as usize - 1 {
            offset += IstStack::ALL[index].size() + IST_GUARD_SIZE;
            index += 1;
        }
        offset
    }

    /// A short name for reports.
    pub const fn name(self) -> &'static str {
        match self {
            IstStack::DoubleFault => "double-fault",
            IstStack::Nmi => "nmi",
            IstStack::MachineCheck => "machine-check",
            IstStack::PageFault => "page-fault",
            IstStack::Shared => "shared",
        }
    }
}

/// The page below each IST stack, unmapped once the address-space layer is
/// up, so that an overflowing handler faults instead of running into the
/// stack below it (or the TSS).
pub const IST_GUARD_SIZE: usize = 4096;

/// Null, kernel code, kernel data, user data, user code, TSS (two slots).
const GDT_ENTRIES: usize = 7;

const ALL_STACKS_SIZE: usize = IstStack::Shared.offset() + IstStack::Shared.size();

/// The 64-bit task-state segment (Intel SDM vol. 3 §8.7).
#[repr(C, packed(4))]
struct TaskStateSegment {
    reserved0: u32,
    /// Stack pointers for privilege changes (unused: every IDT entry names
    /// an IST stack, which the CPU takes even from ring 3).
    privilege_stacks: [u64; 3],
    reserved1: u64,
    /// IST1..IST7.
    interrupt_stacks: [u64; 7],
    reserved2: u64,
    reserved3: u16,
    /// Offset of the I/O permission bitmap; past the limit means "none".
    io_map_base: u16,
}

/// The IST stacks' memory, page-aligned so that each guard page is a page.
#[repr(C, align(4096))]
struct Stacks([u8; ALL_STACKS_SIZE]);

/// One CPU's GDT, TSS and IST stacks. Must stay where it is once loaded.
#[repr(C, align(16))]
pub struct CpuTables {
    gdt: [u64; GDT_ENTRIES],
    tss: TaskStateSegment,
    stacks: Stacks,
}

impl CpuTables {
    /// Tables with zeroed stacks, not yet loaded. All zero bits, so a static
    /// one lands in `.bss`, not in the image.
    pub const fn new() -> CpuTables {
        CpuTables {
            gdt: [0; GDT_ENTRIES],
            tss: TaskStateSegment {
                reserved0: 0,
                privilege_stacks: [0; 3],
                reserved1: 0,
                interrupt_stacks: [0; 7],
                reserved2: 0,
                reserved3: 0,
                io_map_base: 0,
            },
            stacks: Stacks([0; ALL_STACKS_SIZE]),
        }
    }

    /// The bounds `[bottom, top)` of one of this CPU's IST stacks.
    pub fn stack_bounds(&self, stack: IstStack) -> (u64, u64) {
        let bottom = self.stacks.0.as_ptr() as u64 + stack.offset() as u64;
        (bottom, bottom + stack.size() as u64)
    }

    /// The guard page below each IST stack.
    pub fn guard_pages(&self) -> impl Iterator<Item = u64> + '_ {
        IstStack::ALL.into_iter().map(|stack| self.stack_bounds(stack).0 - IST_GUARD_SIZE as u64)
    }

    /// Fills in the descriptors and stack pointers, then loads the GDT, reloads
    /// the segment registers and loads the task register, on the calling CPU.
    pub fn load(&'static mut self) {
        for stack in IstStack::ALL {
            let (_, top) = self.stack_bounds(stack);
            // Keep the top 16-byte aligned: the trap stubs rely on it.
            self.tss.interrupt_stacks[stack as usize - 1] = top & !0xf;
        }
        self.tss.io_map_base = size_of::<TaskStateSegment>() as u16;
        let tss_base = core::ptr::addr_of!(self.tss) as u64;
        let tss_limit = size_of::<TaskStateSegment>() as u64 - 1;
        self.gdt = [
            0,
            0x00af_9a00_0000_ffff, // code: present, ring 0, executable, long mode (L)
            0x00cf_9200_0000_ffff, // data: present, ring 0, writable
            0x00cf_f200_0000_ffff, // user data: present, ring 3, writable
            0x00af_fa00_0000_ffff, // user code: present, ring 3, executable, long mode (L)
            tss_low_descriptor(tss_base, tss_limit),
            tss_base >> 32,
        ];
        let pointer = DescriptorTablePointer {
            limit: (size_of::<[u64; GDT_ENTRIES]>() - 1) as u16,
            base: self.gdt.as_ptr() as u64,
        };
        // SAFETY: the GDT and TSS live in `'static` memory that is never moved
        // or freed; the selectors match the entries written just above.
        unsafe {
            load_gdt(&pointer);
            reload_segments();
            load_task_register(TSS_SELECTOR);
        }
    }
}

impl Default for CpuTables {
    fn default() -> Self {
        CpuTables::new()
    }
}

/// The low half of a 64-bit available-TSS descriptor.
fn tss_low_descriptor(base: u64, limit: u64) -> u64 {
    const PRESENT: u64 = 1 << 47;
    const TYPE_AVAILABLE_TSS: u64 = 0x9 << 40;
    (limit & 0xffff)
        | (base & 0xff_ffff) << 16
        | TYPE_AVAILABLE_TSS
        | PRESENT
        | ((limit >> 16) & 0xf) << 48
        | ((base >> 24) & 0xff) << 56
}

/// The operand of `lgdt` and `lidt`.
#[repr(C, packed(2))]
pub struct DescriptorTablePointer {
    /// Size of the table in bytes, minus one.
    pub limit: u16,
    /// Linear address of the table.
    pub base: u64,
}

/// # Safety
/// The table must stay valid for as long as it is loaded.
unsafe fn load_gdt(pointer: &DescriptorTablePointer) {
    // SAFETY: the caller guarantees the table's lifetime.
    unsafe { asm!("lgdt [{}]", in(reg) pointer, options(readonly, nostack, preserves_flags)) };
}

/// Reloads CS (with a far return) and the data segment registers.
///
/// # Safety
/// The loaded GDT must hold the kernel code and data segments at their selectors.
unsafe fn reload_segments() {
    // SAFETY: the caller guarantees the selectors are valid. The far return
    // pops the pushed RIP and CS; the stack is balanced afterwards.
    unsafe {
        asm!(
            "push {code}",
            "lea {tmp}, [rip + 2f]",
            "push {tmp}",
            "retfq",
            "2:",
            "mov ds, {data:e}",
            "mov es, {data:e}",
            "mov ss, {data:e}",
            code = in(reg) KERNEL_CODE_SELECTOR as u64,
            data = in(reg) KERNEL_DATA_SELECTOR as u32,
            tmp = lateout(reg) _,
        )
    };
}

/// # Safety
/// The selector must name an available TSS descriptor in the loaded GDT.
unsafe fn load_task_register(selector: u16) {
    // SAFETY: the caller guarantees the descriptor.
    unsafe { asm!("ltr {:x}", in(reg) selector, options(nostack, preserves_flags)) };
}
