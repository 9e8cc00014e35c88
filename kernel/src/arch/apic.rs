//! The local APIC (xAPIC mode): enabling it, end-of-interrupt, its timer,
//! which drives preemption, and inter-processor interrupts (the INIT and
//! start-up IPIs that wake the other CPUs, and fixed IPIs between running
//! CPUs).
//!
//! The registers are memory-mapped at the base the IA32_APIC_BASE MSR gives
//! (0xfee0_0000 under QEMU), reached through the direct map. The legacy 8259
//! PICs are remapped away from the exception vectors and masked: every
//! interrupt comes through the APIC.
//!
//! The timer counts down from an initial count at a rate the CPU does not
//! report, so [`start_timer`] measures it against the time-stamp counter
//! (itself calibrated against the PIT in [`super::tsc`]) and then runs it in
//! periodic mode.

use super::cpu::{rdtsc, read_msr, write_msr};
use super::port::outb;
use super::tsc;
use core::sync::atomic::{AtomicU64, Ordering};

/// The vector of the local APIC timer interrupt.
pub const TIMER_VECTOR: u8 = 32;
/// The vector of the reschedule IPI: "a thread was queued on your run queue".
pub const RESCHEDULE_VECTOR: u8 = 0xf0;
/// The vector of the TLB shootdown IPI (see `crate::tlb`).
pub const SHOOTDOWN_VECTOR: u8 = 0xf1;
/// The vector of the APIC's spurious interrupt (needs no EOI).
pub const SPURIOUS_VECTOR: u8 = 0xff;
/// Where the two 8259 PICs deliver after remapping (masked; only their
/// spurious IRQ 7 / IRQ 15 could still show up, on 0xe7 and 0xef).
pub const LEGACY_PIC_VECTOR_BASE: u8 = 0xe0;
/// The timer period [`start_timer`] uses by default.
pub const DEFAULT_TICK_MS: u64 = 10;

const MSR_APIC_BASE: u32 = 0x1b;
const APIC_BASE_ENABLE: u64 = 1 << 11;
const APIC_BASE_ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;

// Register offsets from the base (Intel SDM vol. 3, table 11-1).
const REG_ID: usize = 0x20;
const REG_TASK_PRIORITY: usize = 0x80;
const REG_EOI: usize = 0xb0;
const REG_SPURIOUS: usize = 0xf0;
const REG_ICR_LOW: usize = 0x300;
const REG_ICR_HIGH: usize = 0x310;
const REG_LVT_TIMER: usize = 0x320;
const REG_LVT_LINT0: usize = 0x350;
const REG_LVT_LINT1: usize = 0x360;
const REG_LVT_ERROR: usize = 0x370;
const REG_TIMER_INITIAL_COUNT: usize = 0x380;
const REG_TIMER_CURRENT_COUNT: usize = 0x390;
const REG_TIMER_DIVIDE: usize = 0x3e0;

const SPURIOUS_APIC_ENABLE: u32 = 1 << 8;
const LVT_MASKED: u32 = 1 << 16;
const LVT_TIMER_PERIODIC: u32 = 1 << 17;
/// Divide configuration 0b0011: the timer counts at the bus clock / 16.
const TIMER_DIVIDE_BY_16: u32 = 0b0011;
const CALIBRATION_MS: u64 = 10;

// Interrupt command register fields (Intel SDM vol. 3 §11.6.1).
const ICR_DELIVERY_FIXED: u32 = 0b000 << 8;
const ICR_DELIVERY_INIT: u32 = 0b101 << 8;
const ICR_DELIVERY_STARTUP: u32 = 0b110 << 8;
/// Set while the APIC has not yet sent the last IPI.
const ICR_SEND_PENDING: u32 = 1 << 12;
const ICR_LEVEL_ASSERT: u32 = 1 << 14;

/// The APIC's register base, physical (0 before [`init`]).
static BASE: AtomicU64 = AtomicU64::new(0);
/// Timer counts per millisecond at divide-by-16 (0 before [`start_timer`]).
static TIMER_COUNTS_PER_MS: AtomicU64 = AtomicU64::new(0);

fn register(offset: usize) -> *mut u32 {
    crate::direct_map::phys_to_virt(BASE.load(Ordering::Relaxed) + offset as u64) as *mut u32
}

fn read(offset: usize) -> u32 {
    // SAFETY: `init` found the APIC's base; the register page is in the
    // direct map (below 4 GiB) and each register is an aligned 32-bit word.
    unsafe { register(offset).read_volatile() }
}

fn write(offset: usize, value: u32) {
    // SAFETY: as for `read`; the callers write values the SDM defines.
    unsafe { register(offset).write_volatile(value) }
}

/// Remaps the 8259 PICs to [`LEGACY_PIC_VECTOR_BASE`] (so that a stray
/// legacy interrupt cannot pose as an exception) and masks all their lines.
fn disable_legacy_pic() {
    const MASTER_COMMAND: u16 = 0x20;
    const MASTER_DATA: u16 = 0x21;
    const SLAVE_COMMAND: u16 = 0xa0;
    const SLAVE_DATA: u16 = 0xa1;
    // SAFETY: the standard ICW1..ICW4 initialisation of the two PICs,
    // followed by masking every line; nothing else drives them.
    unsafe {
        outb(MASTER_COMMAND, 0x11); // ICW1: initialise, ICW4 follows
        outb(SLAVE_COMMAND, 0x11);
        outb(MASTER_DATA, LEGACY_PIC_VECTOR_BASE); // ICW2: vector bases
        outb(SLAVE_DATA, LEGACY_PIC_VECTOR_BASE + 8);
        outb(MASTER_DATA, 0x04); // ICW3: slave on line 2
        outb(SLAVE_DATA, 0x02);
        outb(MASTER_DATA, 0x01); // ICW4: 8086 mode
        outb(SLAVE_DATA, 0x01);
        outb(MASTER_DATA, 0xff); // mask everything
        outb(SLAVE_DATA, 0xff);
    }
}

/// Masks the legacy PICs and enables this CPU's local APIC: software-enable
/// bit and spurious vector, local interrupt lines masked, task priority 0.
/// Returns the APIC id. Call on each CPU with interrupts off (the PICs are
/// reprogrammed only on the first call).
pub fn init() -> u32 {
    // SAFETY: IA32_APIC_BASE exists on CPUs with an APIC; the caller runs on
    // such a CPU (QEMU's q35 always has one).
    let base_msr = unsafe { read_msr(MSR_APIC_BASE) };
    if BASE.swap(base_msr & APIC_BASE_ADDRESS_MASK, Ordering::Relaxed) == 0 {
        disable_legacy_pic();
    }
    if base_msr & APIC_BASE_ENABLE == 0 {
        // SAFETY: setting the global enable bit keeps the base unchanged.
        unsafe { write_msr(MSR_APIC_BASE, base_msr | APIC_BASE_ENABLE) };
    }
    write(REG_LVT_LINT0, LVT_MASKED);
    write(REG_LVT_LINT1, LVT_MASKED);
    write(REG_LVT_ERROR, LVT_MASKED);
    write(REG_LVT_TIMER, LVT_MASKED);
    write(REG_TASK_PRIORITY, 0);
    write(REG_SPURIOUS, SPURIOUS_APIC_ENABLE | SPURIOUS_VECTOR as u32);
    id()
}

/// The physical address of the local APIC's registers (the kernel reaches
/// them through the direct map); 0 before [`init`].
pub fn mmio_base() -> u64 {
    BASE.load(Ordering::Relaxed)
}

/// This CPU's local APIC id.
pub fn id() -> u32 {
    read(REG_ID) >> 24
}

/// Signals the end of the interrupt being handled (not for the spurious vector).
pub fn end_of_interrupt() {
    write(REG_EOI, 0);
}

/// Measures the timer's rate against the TSC: counts per millisecond at
/// divide-by-16. Takes [`CALIBRATION_MS`] of busy waiting; interrupts off.
fn calibrate_timer() -> u64 {
    if tsc::ticks_per_ms() == 0 {
        tsc::calibrate();
    }
    let tsc_per_ms = tsc::ticks_per_ms();
    write(REG_TIMER_DIVIDE, TIMER_DIVIDE_BY_16);
    write(REG_LVT_TIMER, LVT_MASKED); // one-shot, no interrupt
    write(REG_TIMER_INITIAL_COUNT, u32::MAX);
    let start = rdtsc();
    while rdtsc().wrapping_sub(start) < CALIBRATION_MS * tsc_per_ms {
        core::hint::spin_loop();
    }
    let elapsed_counts = u32::MAX - read(REG_TIMER_CURRENT_COUNT);
    write(REG_TIMER_INITIAL_COUNT, 0);
    (elapsed_counts as u64 / CALIBRATION_MS).max(1)
}

/// Starts this CPU's timer in periodic mode on [`TIMER_VECTOR`], one
/// interrupt every `period_ms`. The rate is measured on the first call and
/// reused by the other CPUs. The timer handler must be registered first.
pub fn start_timer(period_ms: u64) {
    let mut counts_per_ms = TIMER_COUNTS_PER_MS.load(Ordering::Relaxed);
    if counts_per_ms == 0 {
        counts_per_ms = calibrate_timer();
        TIMER_COUNTS_PER_MS.store(counts_per_ms, Ordering::Relaxed);
    }
    let initial_count = (counts_per_ms * period_ms).clamp(1, u32::MAX as u64) as u32;
    write(REG_TIMER_DIVIDE, TIMER_DIVIDE_BY_16);
    write(REG_LVT_TIMER, LVT_TIMER_PERIODIC | TIMER_VECTOR as u32);
    write(REG_TIMER_INITIAL_COUNT, initial_count);
}

/// Writes the interrupt command register: waits until the previous IPI has
/// left (the APIC takes no new command before), then the destination, then
/// the low word, which sends. Waiting before rather than after sending (as
/// Linux and FreeBSD do for the xAPIC) keeps the register read off the path
/// from sending to the target's acknowledgement. Interrupts off: an
/// interrupt handler sending its own IPI in between would mix the halves.
fn send_ipi_raw(apic_id: u32, command: u32) {
    super::cpu::without_interrupts(|| {
        while read(REG_ICR_LOW) & ICR_SEND_PENDING != 0 {
            core::hint::spin_loop();
        }
        write(REG_ICR_HIGH, apic_id << 24);
        write(REG_ICR_LOW, command);
    })
}

/// Sends a fixed interrupt on `vector` to the CPU whose local APIC id is `apic_id`.
pub fn send_ipi(apic_id: u32, vector: u8) {
    send_ipi_raw(apic_id, ICR_DELIVERY_FIXED | vector as u32);
}

/// Sends an INIT IPI (asserted): the target CPU resets and waits for a
/// start-up IPI.
pub fn send_init(apic_id: u32) {
    send_ipi_raw(apic_id, ICR_DELIVERY_INIT | ICR_LEVEL_ASSERT);
}

/// Sends a start-up IPI: the target CPU starts in real mode at physical
/// address `page << 12` (so the start-up code lies below 1 MiB, page-aligned).
pub fn send_startup(apic_id: u32, page: u8) {
    send_ipi_raw(apic_id, ICR_DELIVERY_STARTUP | ICR_LEVEL_ASSERT | page as u32);
}
