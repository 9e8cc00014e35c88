//! Per-CPU state, reached through the GS base.
//!
//! Every CPU owns one [`PerCpu`]: its ids, which of its IST stacks are in
//! use, its descriptor tables, the `need_resched` flag the timer sets and the
//! interrupt exit path reads, and its counters. It knows nothing of threads:
//! what the scheduler keeps per CPU lives with the threads
//! (`thread::CpuThreads`), indexed by the id found here. There is no global "current
//! thread": each CPU finds its own structure with one `mov reg, gs:[0]` (the
//! structure's first word points to itself), so another CPU only has to call
//! [`init_this_cpu`] with its own ids.
//!
//! The boot CPU's structure and descriptor tables are statics, so that
//! [`init_boot_cpu`] can run before the heap exists: the trap dispatcher
//! needs the per-CPU structure from the first exception on.

use crate::arch::cpu::{write_msr, MSR_GS_BASE};
use crate::arch::gdt::{CpuTables, IstStack};
use core::arch::asm;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

/// The most CPUs the kernel keeps per-CPU structures for.
pub const MAX_CPUS: usize = 64;

/// One CPU's state. `repr(C)` because assembly reads two fields at fixed
/// offsets from GS: the self pointer (offset 0) and [`PerCpu::need_resched`]
/// (see [`NEED_RESCHED_OFFSET`]).
#[repr(C)]
pub struct PerCpu {
    /// Points to this structure: `gs:[0]` yields the structure's address.
    self_pointer: AtomicPtr<PerCpu>,
    /// Set when the running thread should give the CPU up at the next chance
    /// (the end of an interrupt that arrived with interrupts enabled).
    pub need_resched: AtomicBool,
    /// Bit `n` set: IST stack `n` holds a trap frame right now (to catch a
    /// trap that re-entered a stack still in use).
    ist_in_use: AtomicU8,
    /// This CPU's GDT, TSS and IST stacks (set by [`install`]).
    tables: AtomicPtr<CpuTables>,
    /// The kernel's number for this CPU (0 for the boot CPU).
    pub id: u32,
    /// The local APIC id of this CPU.
    pub apic_id: AtomicU32,
    /// Context switches performed on this CPU.
    pub context_switches: AtomicU64,
    /// Timer interrupts taken on this CPU.
    pub timer_ticks: AtomicU64,
    /// The one record of the address space this CPU has loaded.
    pub loaded: LoadedSpace,
    /// Where an entry from ring 3 (a system call, or a trap moved off its
    /// IST stack to be preempted) puts its frame: the kernel stack of the
    /// running thread, if it runs a user program (0 otherwise). The
    /// scheduler sets it at every switch; assembly reads it at
    /// [`USER_ENTRY_STACK_OFFSET`].
    pub user_entry_stack: AtomicU64,
    /// The user stack pointer, kept for the few instructions of the system
    /// call entry before the kernel stack holds it
    /// ([`USER_RSP_SCRATCH_OFFSET`]).
    pub user_rsp_scratch: AtomicU64,
    /// The running thread's user tag (which process and user thread it
    /// runs, as the layer above keeps it): the scheduler copies it here at
    /// every switch, so a system call reads it without a lock.
    pub user_tag: AtomicU64,
    /// The running thread's user context (the pointer the layer above keeps
    /// beside the tag), copied here at every switch as the tag is.
    pub user_context: AtomicUsize,
    /// The running thread's attention flag (a flag the layer above keeps
    /// beside the context, true when the thread must look at its state
    /// before it runs ring-3 code again; null: none), copied here at every
    /// switch as the context is. A trap tests it on its way back to ring 3
    /// ([`PerCpu::user_attention_raised`]).
    pub user_attention: AtomicPtr<AtomicBool>,
}

/// Byte offset of [`PerCpu::user_entry_stack`], for assembly.
pub const USER_ENTRY_STACK_OFFSET: usize = core::mem::offset_of!(PerCpu, user_entry_stack);
/// Byte offset of [`PerCpu::user_rsp_scratch`], for assembly.
pub const USER_RSP_SCRATCH_OFFSET: usize = core::mem::offset_of!(PerCpu, user_rsp_scratch);

/// The one record of the address space a CPU has loaded: written by that
/// CPU alone, at the context switch, interrupts off; read by the switch,
/// the fault path, the TLB shootdown (which CPUs hold a root) and `cpus`.
///
/// Two layers fill it in, each its own part: the address-space layer keeps
/// its reference to the space object in [`LoadedSpace::owner`] (this module
/// knows nothing of that type), and the TLB layer, which loads CR3,
/// publishes the root in [`LoadedSpace::root`] and [`LoadedSpace::leaving`].
pub struct LoadedSpace {
    /// The address-space layer's strong reference to the loaded space object
    /// (null: the default space). Only the address-space layer reads it as a
    /// pointer; everyone else only compares it.
    pub owner: AtomicPtr<()>,
    /// The page-table root this CPU has loaded or is loading (0: none yet),
    /// published before the CR3 write.
    pub root: AtomicU64,
    /// The root this CPU is leaving, until its CR3 write is done (0: none).
    pub leaving: AtomicU64,
}

impl LoadedSpace {
    const fn new() -> LoadedSpace {
        LoadedSpace {
            owner: AtomicPtr::new(core::ptr::null_mut()),
            root: AtomicU64::new(0),
            leaving: AtomicU64::new(0),
        }
    }

    /// True when this CPU has `root` loaded, is loading it, or is still
    /// leaving it: a TLB entry of `root` may live here.
    pub fn may_hold(&self, root: u64) -> bool {
        self.root.load(Ordering::SeqCst) == root || self.leaving.load(Ordering::SeqCst) == root
    }
}

/// Byte offset of [`PerCpu::need_resched`], for `gs:[NEED_RESCHED_OFFSET]` in assembly.
pub const NEED_RESCHED_OFFSET: usize = core::mem::offset_of!(PerCpu, need_resched);

impl PerCpu {
    /// A structure for CPU `id`, not yet reachable through GS (see [`install`]).
    pub const fn new(id: u32) -> PerCpu {
        PerCpu {
            self_pointer: AtomicPtr::new(core::ptr::null_mut()),
            need_resched: AtomicBool::new(false),
            ist_in_use: AtomicU8::new(0),
            tables: AtomicPtr::new(core::ptr::null_mut()),
            id,
            apic_id: AtomicU32::new(0),
            context_switches: AtomicU64::new(0),
            timer_ticks: AtomicU64::new(0),
            loaded: LoadedSpace::new(),
            user_entry_stack: AtomicU64::new(0),
            user_rsp_scratch: AtomicU64::new(0),
            user_tag: AtomicU64::new(0),
            user_context: AtomicUsize::new(0),
            user_attention: AtomicPtr::new(core::ptr::null_mut()),
        }
    }

    /// True when the running thread's attention flag is raised (see
    /// [`PerCpu::user_attention`]); false when it has none. Interrupts off,
    /// on this CPU's structure (a trap on its way out).
    #[inline(always)]
    pub fn user_attention_raised(&self) -> bool {
        debug_assert!(!crate::arch::cpu::interrupts_enabled(), "interrupts are off");
        let flag = self.user_attention.load(Ordering::Relaxed);
        // SAFETY: a non-null pointer is the flag of the thread running on
        // this CPU, which its owner keeps alive while the thread holds it
        // (`thread::set_user_tag`); with interrupts off this CPU cannot
        // switch threads before the read.
        !flag.is_null() && unsafe { (*flag).load(Ordering::Acquire) }
    }

    /// Marks `stack` as holding a trap frame. False if it already did: a
    /// nested trap on the same IST stack has overwritten the outer frame.
    ///
    /// A load and a store, not an atomic read-modify-write (which costs a
    /// locked instruction on every trap): only this CPU changes its bits, and
    /// the only traps that can land between the two (NMI, #MC, #DF) stop
    /// the kernel without returning.
    pub fn enter_ist(&self, stack: IstStack) -> bool {
        let bit = 1 << stack as u8;
        let in_use = self.ist_in_use.load(Ordering::Relaxed);
        self.ist_in_use.store(in_use | bit, Ordering::Relaxed);
        in_use & bit == 0
    }

    /// Marks `stack` as free again (the trap is about to return).
    pub fn leave_ist(&self, stack: IstStack) {
        let in_use = self.ist_in_use.load(Ordering::Relaxed);
        self.ist_in_use.store(in_use & !(1 << stack as u8), Ordering::Relaxed);
    }

    /// True while a trap frame lives on `stack`.
    pub fn is_ist_in_use(&self, stack: IstStack) -> bool {
        self.ist_in_use.load(Ordering::Relaxed) & (1 << stack as u8) != 0
    }
}

static BOOT_CPU: PerCpu = PerCpu::new(0);

/// The boot CPU's GDT, TSS and IST stacks, in `.bss`.
struct BootCpuTables(UnsafeCell<CpuTables>);

// SAFETY: reached only once, by `init_boot_cpu` (guarded by `BOOT_CPU_TAKEN`).
unsafe impl Sync for BootCpuTables {}

static BOOT_CPU_TABLES: BootCpuTables = BootCpuTables(UnsafeCell::new(CpuTables::new()));
static BOOT_CPU_TAKEN: AtomicBool = AtomicBool::new(false);

/// The per-CPU structures of the CPUs brought up so far, by kernel CPU id.
static CPUS: [AtomicPtr<PerCpu>; MAX_CPUS] = [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CPUS];
/// One more than the highest CPU id brought up.
static CPU_COUNT: AtomicUsize = AtomicUsize::new(0);

/// Sets up the boot CPU (id 0): loads its GDT and TSS (with the IST stacks)
/// and points GS at its structure. Call once, first thing after the console,
/// interrupts off; needs no heap.
pub fn init_boot_cpu() -> &'static PerCpu {
    assert!(!BOOT_CPU_TAKEN.swap(true, Ordering::AcqRel), "the boot CPU is initialised once");
    // SAFETY: the flag above makes this the only reference ever made.
    let tables = unsafe { &mut *BOOT_CPU_TABLES.0.get() };
    install(&BOOT_CPU, tables)
}

/// Sets up another CPU with kernel id `id` (not 0): allocates its descriptor
/// tables and structure, then [`install`]s them. Call on that CPU, interrupts
/// off, before it runs any thread code.
pub fn init_this_cpu(id: u32) -> &'static PerCpu {
    assert!(id != 0 && (id as usize) < MAX_CPUS, "cpu id {id} is not an application processor id");
    let layout = core::alloc::Layout::new::<CpuTables>();
    // SAFETY: the layout has a non-zero size.
    let tables = unsafe { alloc::alloc::alloc_zeroed(layout) } as *mut CpuTables;
    assert!(!tables.is_null(), "no memory for cpu {id}'s descriptor tables");
    // SAFETY: all-zero bytes are a valid `CpuTables` (see `CpuTables::new`),
    // and the block is never freed, so the reference is `'static` and unique.
    let tables = unsafe { &mut *tables };
    install(alloc::boxed::Box::leak(alloc::boxed::Box::new(PerCpu::new(id))), tables)
}

/// Records the guard pages below `cpu`'s IST stacks and unmaps them in the
/// default map and every hardened address space. Needs the heap; for the
/// boot CPU call it before the default map is built (which unmaps every
/// guard page recorded by then), for the others once they run.
pub fn guard_ist_stacks(cpu: &PerCpu) {
    for page in ist_guard_pages(cpu) {
        crate::mem::guard::record(page);
    }
}

/// The guard pages below `cpu`'s IST stacks.
pub fn ist_guard_pages(cpu: &PerCpu) -> alloc::vec::Vec<u64> {
    let tables = cpu.tables.load(Ordering::Acquire);
    assert!(!tables.is_null(), "cpu {} has no descriptor tables yet", cpu.id);
    // SAFETY: `install` stored a `&'static mut CpuTables`; only shared
    // reads happen through it after the load.
    unsafe { (*tables).guard_pages().collect() }
}

/// Makes `cpu` the calling CPU's per-CPU structure, with `tables` as its GDT,
/// TSS and IST stacks: loads the tables, points GS at the structure and lists
/// it in [`all_cpus`].
pub fn install(cpu: &'static PerCpu, tables: &'static mut CpuTables) -> &'static PerCpu {
    assert!((cpu.id as usize) < MAX_CPUS, "cpu id {} beyond MAX_CPUS", cpu.id);
    let address = cpu as *const PerCpu as *mut PerCpu;
    cpu.self_pointer.store(address, Ordering::Release);
    cpu.tables.store(tables as *mut CpuTables, Ordering::Release);
    tables.load();
    // SAFETY: IA32_GS_BASE exists on every x86-64 CPU; the structure is
    // static or leaked, so the address stays valid for good.
    unsafe { write_msr(MSR_GS_BASE, address as u64) };
    let previous = CPUS[cpu.id as usize].swap(address, Ordering::AcqRel);
    assert!(previous.is_null(), "cpu {} initialised twice", cpu.id);
    CPU_COUNT.fetch_max(cpu.id as usize + 1, Ordering::AcqRel);
    cpu
}

/// The structure of the CPU this code runs on.
///
/// Valid once [`init_boot_cpu`] or [`init_this_cpu`] ran on this CPU. A
/// thread stays on the CPU it was placed on at spawn, so the answer stays
/// right for the caller.
pub fn current() -> &'static PerCpu {
    debug_assert!(initialized(), "per-CPU structure used before init_boot_cpu");
    let pointer: *const PerCpu;
    // SAFETY: GS base points to this CPU's static or leaked `PerCpu`, whose
    // first word is its own address.
    unsafe { asm!("mov {}, gs:[0]", out(reg) pointer, options(nostack, readonly, preserves_flags)) };
    // SAFETY: the pointer is to a static or leaked structure, never freed.
    unsafe { &*pointer }
}

/// The running thread's user context ([`PerCpu::user_context`]), read with
/// one `gs`-relative load (see [`own_word`]): right with interrupts on.
pub fn running_user_context() -> usize {
    own_word::<{ core::mem::offset_of!(PerCpu, user_context) }>() as usize
}

/// The running thread's user tag ([`PerCpu::user_tag`]), read as
/// [`running_user_context`] is.
pub fn running_user_tag() -> u64 {
    own_word::<{ core::mem::offset_of!(PerCpu, user_tag) }>()
}

/// The word at byte `OFFSET` of this CPU's structure, read with one
/// `gs`-relative load: the CPU that runs the load is the one whose word it
/// reads, so no switch or move of the thread can fall between finding the
/// structure and reading the field, and interrupts may stay on (under TCG,
/// turning them back on ends the translated block: tens of nanoseconds).
fn own_word<const OFFSET: usize>() -> u64 {
    debug_assert!(initialized(), "per-CPU structure used before init_boot_cpu");
    let word: u64;
    // SAFETY: GS base points to this CPU's `PerCpu`; OFFSET is that of an
    // atomic word-sized field (a plain aligned load reads it).
    unsafe {
        asm!("mov {}, gs:[{offset}]", out(reg) word, offset = const OFFSET, options(nostack, readonly, preserves_flags))
    };
    word
}

/// The structure of the CPU this code runs on, or the boot CPU's before
/// [`init_boot_cpu`] (when only the boot CPU runs).
pub fn current_or_boot() -> &'static PerCpu {
    if initialized() {
        current()
    } else {
        &BOOT_CPU
    }
}

/// True once the boot CPU has its per-CPU structure.
pub fn initialized() -> bool {
    CPU_COUNT.load(Ordering::Acquire) > 0
}

/// The structure of CPU `id`, if that CPU has been brought up.
pub fn by_id(id: u32) -> Option<&'static PerCpu> {
    let pointer = CPUS.get(id as usize)?.load(Ordering::Acquire);
    // SAFETY: non-null entries are static or leaked structures, never freed.
    (!pointer.is_null()).then(|| unsafe { &*pointer })
}

/// Every CPU brought up so far, by increasing CPU id.
pub fn all_cpus() -> impl Iterator<Item = &'static PerCpu> {
    CPUS[..CPU_COUNT.load(Ordering::Acquire)].iter().filter_map(|slot| {
        let pointer = slot.load(Ordering::Acquire);
        // SAFETY: non-null entries are static or leaked structures, never freed.
        (!pointer.is_null()).then(|| unsafe { &*pointer })
    })
}
