//! The kernel's memory protections: W^X for its own map, guard pages under
//! its stacks, and the CPU's supervisor protections.
//!
//! - **The kernel half** ([`kernel_regions`]): in the upper half of every
//!   space the kernel runs in, the kernel image at its link address by
//!   sections (text read-only and executable, rodata read-only, data and
//!   bss writable) and the direct map of physical memory at
//!   [`PHYS_OFFSET`] (RAM, heap, stacks, page tables, low MMIO: writable
//!   and non-executable; the image's own frames there read-only). No page
//!   is both writable and executable. Supervisor-only (`k`) throughout.
//! - **The hardened identity map** ([`identity_regions`]): the same
//!   layout one to one in the lower half, the image by sections at its
//!   physical address. The kernel never uses it; the default address space
//!   (`base`) and the lab's spaces hold it as lab content (the paging lab
//!   maps, aliases and compares physical memory through it). Process
//!   spaces do not hold it.
//! - **Guard pages**: the page below every kernel stack (see
//!   [`crate::thread::stack`]) is unmapped in the default address space and
//!   in every hardened space, now and for stacks made later
//!   ([`guard_page_created`]). It stays in the region set as a region with
//!   no access rights, so `verify` still matches tables and regions. A
//!   fault there is reported as a stack overflow of the running thread
//!   ([`describe_guard_fault`]).
//! - **The CPU** ([`enable_cpu_protections`]): CR0.WP and EFER.NXE are set
//!   by the boot code; SMEP (no supervisor fetch from user pages) and SMAP
//!   (no supervisor access to user pages) are set on every CPU that has them.
//!
//! Page-table edits made here on spaces that may be live (a new guard page
//! in the default space) bypass [`Space::check_live_edit`]: they only take
//! away a page nothing may touch.

use crate::address_space::machine::KernelMachine;
use crate::arch::cpu;
use crate::direct_map::{image_phys, PHYS_OFFSET};
use crate::mem::guard::{self, GUARD_SIZE};
use alloc::vec::Vec;
use aspace::{Fault, PageFaultCode, Protection, Region, VirtAddr};
use core::fmt::Write;

/// The flags of every region of the kernel half and of the hardened
/// identity map besides their access rights: kernel-only, pinned, mapped at
/// once.
const MANAGED: Protection = Protection::PIN.union(Protection::KERN).union(Protection::EAGER);
/// Kernel text: read and execute.
const TEXT: Protection = Protection::READ.union(Protection::EXEC).union(MANAGED);
/// Read-only data: read only.
const READ_ONLY: Protection = Protection::READ.union(MANAGED);
/// Everything the kernel writes: read and write, never execute.
const READ_WRITE: Protection = Protection::READ.union(Protection::WRITE).union(MANAGED);
/// A guard page: no access at all (never mapped), still pinned and kernel-only.
pub const GUARD: Protection = Protection::PIN.union(Protection::KERN);

extern "C" {
    static __text_start: u8;
    static __rodata_start: u8;
    static __data_start: u8;
    static __image_end: u8;
}

/// One part of the kernel image: `[start, end)` (virtual, where the image is
/// linked), page-aligned by the linker script, and the access rights the
/// kernel needs there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageSection {
    /// What it holds.
    pub name: &'static str,
    /// The first byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// READ, WRITE and EXEC as the kernel needs them there.
    pub access: Protection,
}

/// The kernel image's sections: text, rodata (with the exception and test
/// tables), then data and bss (with the boot stack and boot page tables).
pub fn image_sections() -> [ImageSection; 3] {
    let text = core::ptr::addr_of!(__text_start) as u64;
    let rodata = core::ptr::addr_of!(__rodata_start) as u64;
    let data = core::ptr::addr_of!(__data_start) as u64;
    let end = core::ptr::addr_of!(__image_end) as u64;
    [
        ImageSection { name: "kernel text", start: text, end: rodata, access: TEXT.access() },
        ImageSection { name: "kernel rodata", start: rodata, end: data, access: READ_ONLY.access() },
        ImageSection { name: "kernel data and bss", start: data, end, access: READ_WRITE.access() },
    ]
}

/// The regions of the hardened identity map of `[0, len)`, in address
/// order, each with what it holds: the image by sections at its physical
/// address. `len` must lie above the kernel image. Lab content: the kernel
/// runs on [`kernel_regions`].
pub fn identity_regions(len: u64) -> Vec<(&'static str, Region)> {
    let [text, rodata, data] = image_sections().map(|section| ImageSection {
        start: image_phys(section.start),
        end: image_phys(section.end),
        ..section
    });
    let identity = |start: u64, end: u64, prot: Protection| Region::new(start, start, end - start, prot);
    let mut regions = Vec::new();
    if text.start > 0 {
        regions.push(("low memory", identity(0, text.start, READ_WRITE)));
    }
    regions.push((text.name, identity(text.start, text.end, TEXT)));
    regions.push((rodata.name, identity(rodata.start, rodata.end, READ_ONLY)));
    regions.push((data.name, identity(data.start, data.end, READ_WRITE)));
    if len > data.end {
        regions.push(("RAM and MMIO", identity(data.end, len, READ_WRITE)));
    }
    regions
}

/// The regions of the kernel half, in address order, each with what it
/// holds: the direct map of `[0, len)` at [`PHYS_OFFSET`] (the image's own
/// frames read-only there), then the image by sections where it is linked.
/// `len` must lie above the kernel image.
pub fn kernel_regions(len: u64) -> Vec<(&'static str, Region)> {
    let sections = image_sections();
    let image_start = image_phys(sections[0].start);
    let image_end = image_phys(sections[2].end);
    let direct = |start: u64, end: u64, prot: Protection| Region::new(PHYS_OFFSET + start, start, end - start, prot);
    let mut regions = Vec::new();
    if image_start > 0 {
        regions.push(("direct map: low memory", direct(0, image_start, READ_WRITE)));
    }
    regions.push(("direct map: kernel image", direct(image_start, image_end, READ_ONLY)));
    if len > image_end {
        regions.push(("direct map: RAM and MMIO", direct(image_end, len, READ_WRITE)));
    }
    for section in sections {
        let prot = if section.access.contains(Protection::EXEC) {
            TEXT
        } else if section.access.contains(Protection::WRITE) {
            READ_WRITE
        } else {
            READ_ONLY
        };
        let region = Region::new(section.start, image_phys(section.start), section.end - section.start, prot);
        regions.push((section.name, region));
    }
    regions
}

/// The region of the guard page at `page` (an address of the direct map,
/// where the kernel's stacks are, or of the image, the boot stack's): no
/// access, translating as the kernel half does there.
pub fn guard_region(page: u64) -> Region {
    let phys = crate::direct_map::virt_to_phys(page).unwrap_or(page);
    Region::new(page, phys, GUARD_SIZE as u64, GUARD)
}

/// Sets CR4.SMEP and CR4.SMAP on this CPU when it has them. Called by each
/// CPU as it starts (the boot code has already set CR0.WP and EFER.NXE).
pub fn enable_cpu_protections() {
    let features = cpu::features();
    let mut bits = 0;
    if features.smep {
        bits |= cpu::CR4_SMEP;
    }
    if features.smap {
        bits |= cpu::CR4_SMAP;
    }
    // SAFETY: the CPU reports both features; the kernel maps its own code
    // and data as supervisor pages, so neither changes what it may touch.
    unsafe { cpu::write_cr4(cpu::read_cr4() | bits) };
}

/// The protections in force on this CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuProtections {
    /// CR0.WP: supervisor writes honour read-only pages.
    pub write_protect: bool,
    /// EFER.NXE: the NX bit is honoured.
    pub no_execute: bool,
    /// CR4.SMEP.
    pub smep: bool,
    /// CR4.SMAP.
    pub smap: bool,
}

/// Reads the protections in force on this CPU.
pub fn cpu_protections() -> CpuProtections {
    let cr4 = cpu::read_cr4();
    CpuProtections {
        write_protect: cpu::read_cr0() & cpu::CR0_WRITE_PROTECT != 0,
        no_execute: cpu::nx_enabled(),
        smep: cr4 & cpu::CR4_SMEP != 0,
        smap: cr4 & cpu::CR4_SMAP != 0,
    }
}

/// True when `fault` is the kernel touching a user page that SMAP (or, for
/// a fetch, SMEP) forbids. The tables allow such an access, so the address
/// space would take it for a stale TLB entry and retry it for ever; the
/// address-space layer reports it instead.
pub fn supervisor_touched_user_page(fault: &Fault) -> bool {
    let code = fault.code;
    if fault.vector != Fault::PAGE_FAULT || !code.contains(PageFaultCode::PRESENT) || code.contains(PageFaultCode::USER)
    {
        return false;
    }
    let machine = KernelMachine;
    let root = paging::TableRef::current(&machine);
    let Some(translation) = paging::walk(&machine, root, VirtAddr::new(fault.addr)).translation() else {
        return false;
    };
    let protections = cpu_protections();
    let forbidden = if code.contains(PageFaultCode::FETCH) { protections.smep } else { protections.smap };
    // Only when the entry itself allows the access: a write to a read-only
    // user page (a page shared copy-on-write that the kernel's copy-out
    // writes, with SMAP's window open) is an ordinary fault to handle.
    let allowed = if code.contains(PageFaultCode::WRITE) {
        translation.writable
    } else if code.contains(PageFaultCode::FETCH) {
        translation.executable
    } else {
        true
    };
    translation.user && forbidden && allowed
}

/// The fault report's line for a fault at `addr` in a guard page, if it is
/// one: a stack overflow when the page lies right below the running
/// thread's stack. Only tries locks: the fault may have hit while they
/// were held.
pub fn describe_guard_fault(addr: u64, out: &mut dyn Write) {
    let Some(guard) = guard::try_guard_page_containing(addr) else { return };
    let running = crate::thread::try_current()
        .flatten()
        .map(|thread| (thread.id(), alloc::string::String::from(thread.name()), thread.canary_address()));
    let _ = match running {
        Some((id, name, stack_bottom)) if stack_bottom == guard + GUARD_SIZE as u64 => writeln!(
            out,
            "stack overflow in thread {id} '{name}': {addr:#x} is in the guard page {guard:#x} below its stack"
        ),
        _ => writeln!(out, "{addr:#x} is in the guard page {guard:#x} below another thread's stack"),
    };
}
