//! Where the kernel finds memory: the kernel image, linked at
//! [`KERNEL_OFFSET`] + 1 MiB (loaded at 1 MiB), and the direct map of
//! physical memory at [`PHYS_OFFSET`], both in the upper half that every
//! address space the kernel runs in holds ([`crate::hardening::kernel_regions`]).
//!
//! [`phys_to_virt`] is the one way the kernel turns a physical address into
//! a pointer, and [`virt_to_phys`] the way back for an address of the direct
//! map or of the image.

/// Where the kernel image is linked: physical address `p` of the image is
/// virtual address `KERNEL_OFFSET + p` (the top 2 GiB, as Linux's
/// `__START_KERNEL_map`; `-C code-model=kernel` asks for it).
pub const KERNEL_OFFSET: u64 = 0xffff_ffff_8000_0000;

/// Where the direct map of physical memory starts: physical address `p`
/// (RAM, and the MMIO below 4 GiB) is virtual address `PHYS_OFFSET + p`.
/// Linux's own default under 4-level paging (`page_offset_base`), canonical
/// under both 4- and 5-level paging, and clear of the paging lab's lazy
/// alias at 0xffff_8000_0000_0000 (the first 512 GiB of the upper half,
/// NK's choice), which the lab's spaces map beside the kernel half.
pub const PHYS_OFFSET: u64 = 0xffff_8880_0000_0000;

/// The pointer through which the kernel reaches physical address `phys`
/// (in the direct map). Only a pointer: reading or writing through it needs
/// `phys` to lie in the direct map's length
/// ([`crate::address_space::kernel_map_len`], at least 4 GiB) and the
/// memory to be the caller's to touch.
#[inline(always)]
pub fn phys_to_virt(phys: u64) -> *mut u8 {
    (PHYS_OFFSET + phys) as *mut u8
}

/// The physical address behind `virt`, an address of the direct map or of
/// the kernel image; `None` for any other address.
pub fn virt_to_phys(virt: u64) -> Option<u64> {
    if virt >= KERNEL_OFFSET {
        Some(virt - KERNEL_OFFSET)
    } else if (PHYS_OFFSET..PHYS_OFFSET + (1 << 46)).contains(&virt) {
        Some(virt - PHYS_OFFSET)
    } else {
        None
    }
}

/// The physical address of `virt`, an address inside the kernel image.
pub fn image_phys(virt: u64) -> u64 {
    virt - KERNEL_OFFSET
}

/// The physical address of `virt`, an address of the direct map (a heap
/// block, a stack, a frame's pointer).
pub fn direct_phys(virt: u64) -> u64 {
    virt - PHYS_OFFSET
}

extern "C" {
    static __image_start: u8;
    static __image_end: u8;
}

/// The kernel image's virtual addresses, `[start, end)`, where it is linked.
pub fn image_range() -> core::ops::Range<u64> {
    core::ptr::addr_of!(__image_start) as u64..core::ptr::addr_of!(__image_end) as u64
}

/// True when `[addr, addr + 8)` lies in the part of the kernel half every
/// space the kernel runs in maps: the image, or the direct map of the first
/// 4 GiB (guard pages aside).
pub fn always_mapped_word(addr: u64) -> bool {
    const LOW_4G: u64 = 4 << 30;
    let image = image_range();
    let in_image = addr >= image.start && addr <= image.end.saturating_sub(8);
    let in_direct_map = (PHYS_OFFSET..=PHYS_OFFSET + LOW_4G - 8).contains(&addr);
    in_image || in_direct_map
}
